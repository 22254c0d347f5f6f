/**
 * multi (14): several writes applied atomically in one etcd transaction.
 *
 * The state of every node the operations touch is read first, the
 * operations are applied in order to an in-memory copy (so later operations
 * see earlier ones, as in ZooKeeper), and the final state is written with
 * one transaction whose compares pin every node that was read. If any of
 * them changed in between, the whole multi is evaluated again.
 *
 * @module
 */

import { permitted, type Principal } from "../zk/acl.ts";
import { Code, CreateFlag, EventType, OpCode, Perms } from "../zk/constants.ts";
import { Errors, ZkError } from "../zk/errors.ts";
import { parentOf, sequenceSuffix } from "../zk/path.ts";
import type { ACL, Stat } from "../zk/records.ts";
import { type Compare, EtcdCompactedError, type Op } from "./client.ts";
import { biasValue, type EtcdTree, nodeDeletes, type NodeSnapshot, nodeWrites } from "./tree.ts";
import { encodeAcl, encodeEvents, encodeMeta, encodeNode } from "./values.ts";

/** One operation of a multi, already decoded and pre-checked by the caller. */
export type MultiOp =
  | {
    kind: "create";
    /** The sub-op's opcode (1, 15, 19 or 21): decides the result's shape. */
    opcode: number;
    path: string;
    data: Uint8Array | null;
    acl: ACL[];
    flags: number;
    ttl?: bigint;
    owner: bigint;
    lease: bigint;
  }
  | { kind: "delete"; path: string; version: number }
  | { kind: "setData"; path: string; data: Uint8Array | null; version: number }
  | { kind: "check"; path: string; version: number }
  /** An operation that fails before it looks at the tree. */
  | { kind: "invalid"; error: ZkError };

/** The result of one operation, as ZooKeeper encodes it. */
export type MultiResult =
  | { kind: "create"; path: string }
  | { kind: "create2"; path: string; stat: Stat }
  | { kind: "delete" }
  | { kind: "setData"; stat: Stat }
  | { kind: "check" }
  | { kind: "error"; err: number };

/** Options of {@link runMulti}. */
export interface MultiOptions {
  /** Why a final (post-sequence) path is invalid, or null. */
  validate: (path: string) => string | null;
  /** Who runs the multi, for the ACL checks. */
  who: Principal;
}

/** How often a multi is evaluated again when a node it read changed meanwhile. */
const MAX_ATTEMPTS = 32;

/** A node as the operations so far have left it. */
interface Live {
  /** As read from etcd (null: absent). */
  base: NodeSnapshot | null;
  exists: boolean;
  version: number;
  aversion: number;
  creates: number;
  numChildren: number;
  owner: bigint;
  mode: number;
  data: Uint8Array | null;
  acl: ACL[];
  ctime: bigint;
  mtime: bigint;
  /** null: set by this transaction. */
  czxid: bigint | null;
  mzxid: bigint | null;
  pzxid: bigint | null;
  dataWrites: number;
  childCreates: number;
  childDeletes: number;
  /** Lease of a node created by this multi as an ephemeral. */
  lease?: bigint;
  /** Deleted and created again by this multi (it existed before). */
  recreated?: boolean;
  /** Time to live of a TTL node created by this multi, ms. */
  ttl?: bigint;
  /**
   * What the transaction must pin besides the node key, because a decision
   * relied on it: the ACL (a permission check), the exact child counter (a
   * sequence number, the counter's bias), the children (NotEmpty, a Stat
   * returned). Pinning no more than that lets concurrent multis under one
   * parent both succeed.
   */
  pins: Set<"acl" | "kids" | "gone">;
}

function fromSnapshot(s: NodeSnapshot | null): Live {
  return {
    base: s,
    exists: s !== null,
    version: s?.stat.version ?? 0,
    aversion: s?.stat.aversion ?? 0,
    creates: s?.creates ?? 0,
    numChildren: s?.stat.numChildren ?? 0,
    owner: s?.stat.ephemeralOwner ?? 0n,
    mode: s?.mode ?? 0,
    data: s?.data ?? null,
    acl: s?.acl ?? [],
    ctime: s?.stat.ctime ?? 0n,
    mtime: s?.stat.mtime ?? 0n,
    czxid: s?.stat.czxid ?? null,
    mzxid: s?.stat.mzxid ?? null,
    pzxid: s?.stat.pzxid ?? null,
    dataWrites: 0,
    childCreates: 0,
    childDeletes: 0,
    pins: new Set(),
  };
}

/** A Stat whose zxids may still be this transaction's (filled in later). */
type PendingStat = Omit<Stat, "czxid" | "mzxid" | "pzxid"> & {
  czxid: bigint | null;
  mzxid: bigint | null;
  pzxid: bigint | null;
};

function statOf(n: Live): PendingStat {
  return {
    czxid: n.czxid,
    mzxid: n.mzxid,
    ctime: n.ctime,
    mtime: n.mtime,
    version: n.version,
    cversion: (2 * n.creates - n.numChildren) | 0,
    aversion: n.aversion,
    ephemeralOwner: n.owner,
    dataLength: n.data?.byteLength ?? 0,
    numChildren: n.numChildren,
    pzxid: n.pzxid,
  };
}

function settle(s: PendingStat, zxid: bigint): Stat {
  return { ...s, czxid: s.czxid ?? zxid, mzxid: s.mzxid ?? zxid, pzxid: s.pzxid ?? zxid };
}

type Pending =
  | Exclude<MultiResult, { stat: Stat }>
  | { kind: "create2"; path: string; stat: PendingStat }
  | { kind: "setData"; stat: PendingStat };

/**
 * Runs a multi. On success every result is the operation's; on failure the
 * failing operation carries its code, earlier ones 0 and later ones
 * RuntimeInconsistency, and nothing is written — as ZooKeeper answers.
 */
export async function runMulti(
  tree: EtcdTree,
  ops: MultiOp[],
  options: MultiOptions,
): Promise<{ zxid: bigint; results: MultiResult[] }> {
  if (ops.length === 0) return { zxid: await tree.revision(), results: [] };
  // The keys this server's queues write that the multi pins: the counters
  // of the parents it creates under (and of the nodes it sets or deletes),
  // the data of the nodes it names.
  const parents = ops.flatMap((op) =>
    op.kind === "create" ? [parentOf(op.path)] : op.kind === "invalid" ? [] : [op.path]
  );
  const nodes = ops.flatMap((op) =>
    op.kind === "invalid" ? [] : op.kind === "create" ? [parentOf(op.path)] : [op.path]
  );
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const done = await tree.holding(parents, nodes, () => attemptMulti(tree, ops, options));
    if (done) return done;
    // Another server's writes won the race: let them pass before the next try.
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** attempt, 50)));
  }
  throw new ZkError(Code.SYSTEMERROR, undefined, "multi kept racing other writes; giving up");
}

/** One evaluation and commit of a multi: its answer, or null when a node it read changed. */
async function attemptMulti(
  tree: EtcdTree,
  ops: MultiOp[],
  options: MultiOptions,
): Promise<{ zxid: bigint; results: MultiResult[] } | null> {
  const nodes = new Map<string, Live>();
  /**
   * Every read of one attempt is of one snapshot, as of its first read's
   * revision: an answer decided on it (an error included, which commits
   * nothing to catch a stale read) is what ZooKeeper would answer at that
   * point. A sequential create's name is read from the parent before the
   * node of that name: read later, it could show a node another create gave
   * that name meanwhile, and a NodeExists no serial order produces.
   */
  let readAt: bigint | undefined;
  const load = async (paths: string[]) => {
    const missing = [...new Set(paths)].filter((p) => !nodes.has(p));
    if (missing.length === 0) return;
    const { zxid, nodes: read } = await tree.getMany(missing, "etcd", readAt);
    readAt = zxid;
    missing.forEach((p, i) => nodes.set(p, fromSnapshot(read[i])));
  };
  const now = tree.now();
  const events: [number, string][] = [];
  let evaluated: Pending[] | { index: number; code: number };
  try {
    evaluated = await evaluate(ops, { nodes, events, load, now, ...options });
  } catch (err) {
    if (err instanceof EtcdCompactedError) return null; // the snapshot is gone: take a new one
    throw err;
  }
  if (!Array.isArray(evaluated)) {
    const failure = evaluated;
    return {
      zxid: readAt ?? 0n,
      results: ops.map((_, i) => ({
        kind: "error",
        err: i < failure.index ? 0 : i === failure.index ? failure.code : Code.RUNTIMEINCONSISTENCY,
      })),
    };
  }
  const { compare, success } = transaction(tree, nodes, now);
  // The events in the order ZooKeeper fires them, for every server's
  // watch stream: etcd only shows the final state of each key.
  success.push({ put: tree.keys.multiLog(), value: encodeEvents(events) });
  const res = await tree.etcd.txn(compare, success);
  if (!res.succeeded) return null;
  const zxid = res.revision;
  return {
    zxid,
    results: evaluated.map((r) =>
      r.kind === "create2" || r.kind === "setData" ? { ...r, stat: settle(r.stat, zxid) } : r
    ),
  };
}

/**
 * Reads every node the operations name, then applies them in order to the
 * in-memory copy: their pending results, or the first failing one's index
 * and code.
 */
async function evaluate(
  ops: MultiOp[],
  ctx: ApplyContext,
): Promise<Pending[] | { index: number; code: number }> {
  await ctx.load(
    ops.flatMap((op) =>
      op.kind === "invalid"
        ? []
        : op.kind === "create" || op.kind === "delete"
        ? [op.path, parentOf(op.path)]
        : [op.path]
    ),
  );
  const pending: Pending[] = [];
  for (const [index, op] of ops.entries()) {
    try {
      pending.push(await apply(op, ctx));
    } catch (err) {
      if (!(err instanceof ZkError)) throw err;
      return { index, code: err.code };
    }
  }
  return pending;
}

interface ApplyContext {
  nodes: Map<string, Live>;
  who: Principal;
  /** The ZooKeeper events of the operations so far, in order: [type, path]. */
  events: [number, string][];
  load: (paths: string[]) => Promise<void>;
  now: bigint;
  validate: (path: string) => string | null;
}

/** Applies one operation to the in-memory copy, with ZooKeeper's checks in its order. */
async function apply(op: MultiOp, ctx: ApplyContext): Promise<Pending> {
  const { nodes } = ctx;
  switch (op.kind) {
    case "invalid":
      throw op.error;
    case "create": {
      const parentPath = parentOf(op.path);
      await ctx.load([parentPath]);
      const parent = nodes.get(parentPath)!;
      if (!parent.exists) throw Errors.noNode(parentPath);
      need(parent, Perms.CREATE, parentPath, ctx.who);
      if (op.flags & 2) parent.pins.add("kids");
      const path = (op.flags & 2) ? op.path + sequenceSuffix(parent.creates) : op.path;
      const reason = ctx.validate(path);
      if (reason !== null) throw Errors.badArguments(path, reason);
      await ctx.load([path]);
      const node = nodes.get(path)!;
      if (node.exists) throw Errors.nodeExists(path);
      if (parent.owner !== 0n) throw Errors.noChildrenForEphemerals(parentPath);
      // A node deleted earlier in this multi may be created again.
      const base = node.base;
      Object.assign(node, fromSnapshot(null), {
        base,
        recreated: base !== null,
        pins: base ? new Set(["kids", "gone"]) : new Set(),
        exists: true,
        owner: op.owner,
        mode: op.flags,
        data: op.data,
        acl: op.acl,
        ctime: ctx.now,
        mtime: ctx.now,
        ttl: op.ttl,
      });
      node.lease = op.lease;
      parent.creates++;
      parent.numChildren++;
      parent.childCreates++;
      parent.pzxid = null;
      ctx.events.push([EventType.NodeCreated, path], [EventType.NodeChildrenChanged, parentPath]);
      // ZooKeeper 3.8 answers create and create2 sub-operations with the
      // path only; container and TTL creates with path and Stat.
      return op.opcode === OpCode.create || op.opcode === OpCode.create2
        ? { kind: "create", path }
        : { kind: "create2", path, stat: statOf(node) };
    }
    case "delete": {
      const parentPath = parentOf(op.path);
      await ctx.load([op.path, parentPath]);
      const parent = nodes.get(parentPath)!;
      const node = nodes.get(op.path)!;
      if (!parent.exists) throw Errors.noNode(op.path);
      need(parent, Perms.DELETE, parentPath, ctx.who);
      if (!node.exists) throw Errors.noNode(op.path);
      if (op.version !== -1 && node.version !== op.version) throw Errors.badVersion(op.path);
      node.pins.add("kids"); // "no children" must still hold when it is written
      if (node.numChildren > 0) throw Errors.notEmpty(op.path);
      node.exists = false;
      parent.numChildren--;
      parent.childDeletes++;
      parent.pzxid = null;
      ctx.events.push([EventType.NodeDeleted, op.path], [
        EventType.NodeChildrenChanged,
        parentPath,
      ]);
      return { kind: "delete" };
    }
    case "setData": {
      await ctx.load([op.path]);
      const node = nodes.get(op.path)!;
      if (!node.exists) throw Errors.noNode(op.path);
      need(node, Perms.WRITE, op.path, ctx.who);
      if (op.version !== -1 && node.version !== op.version) throw Errors.badVersion(op.path);
      node.pins.add("kids").add("gone"); // the Stat it returns
      node.data = op.data;
      node.version++;
      node.mtime = ctx.now;
      node.mzxid = null;
      node.dataWrites++;
      ctx.events.push([EventType.NodeDataChanged, op.path]);
      return { kind: "setData", stat: statOf(node) };
    }
    case "check": {
      await ctx.load([op.path]);
      const node = nodes.get(op.path)!;
      if (!node.exists) throw Errors.noNode(op.path);
      need(node, Perms.READ, op.path, ctx.who);
      if (op.version !== -1 && node.version !== op.version) throw Errors.badVersion(op.path);
      return { kind: "check" };
    }
  }
}

/** NoAuth unless `who` holds `perm` on the node (as this multi has left it). */
function need(n: Live, perm: number, path: string, who: Principal): void {
  n.pins.add("acl");
  if (!permitted(n.acl, perm, who)) throw new ZkError(Code.NOAUTH, path);
}

/** The compares pinning what was read, and the writes of the final state. */
function transaction(
  tree: EtcdTree,
  nodes: Map<string, Live>,
  now: bigint,
): { compare: Compare[]; success: Op[] } {
  const k = tree.keys;
  const compare: Compare[] = [];
  const success: Op[] = [];
  const pin = (key: string, kv: { modRevision: bigint } | undefined) =>
    compare.push(
      kv
        ? { key, target: "mod", op: "==", value: kv.modRevision }
        : { key, target: "create", op: "==", value: 0n },
    );
  for (const [path, n] of nodes) {
    const base = n.base;
    pin(k.node(path), base?.kvs.node);
    // Creates under a parent rely on it taking children (not ephemeral);
    // more than one create there sets the counter's bias from its value.
    if (base && n.childCreates > 1) n.pins.add("kids");
    if (base) {
      for (const attr of n.pins) pin(k.attr(path, attr), base.kvs[attr]);
      if (n.childCreates > 0 && !n.pins.has("kids")) {
        compare.push({ key: k.attr(path, "kids"), target: "create", op: ">", value: 0n });
      }
    }
    if (base && !n.exists) {
      // No compare on the children themselves: those deleted by this multi
      // still exist before it; a new child would have moved the kids pin.
      success.push(...nodeDeletes(k, path));
      continue;
    }
    if (!base && n.exists) {
      success.push(...nodeWrites(k, {
        path,
        data: n.data,
        acl: n.acl,
        mode: n.mode,
        owner: n.owner,
        lease: n.lease ?? 0n,
        now,
        childCreates: n.childCreates,
        ttl: n.ttl,
      }));
      if (n.dataWrites > 0) {
        success.push({
          put: k.attr(path, "vbias"),
          value: biasValue(n.dataWrites),
          lease: n.lease ?? 0n,
        });
      }
    } else if (base && n.exists && n.recreated) {
      success.push(...recreation(k, path, base, n, now));
      continue;
    } else if (base && n.exists) {
      if (n.dataWrites > 0) {
        success.push({
          put: k.node(path),
          value: encodeNode({ data: n.data, mtime: n.mtime }),
          ignoreLease: true,
        });
      }
      if (n.dataWrites > 1) {
        // One put bumps etcd's version once; the bias holds the rest.
        const bias = base.stat.version - Number(base.kvs.node.version - 1n) + n.dataWrites - 1;
        success.push({
          put: k.attr(path, "vbias"),
          value: biasValue(bias),
          lease: base.kvs.node.lease,
        });
      }
      if (n.childCreates === 1 && !n.pins.has("kids")) {
        // One more create: the counter's next version counts it.
        success.push({ put: k.attr(path, "kids"), ignoreValue: true });
      } else if (n.childCreates > 0) {
        const bias = base.creates - Number((base.kvs.kids?.version ?? 1n) - 1n) +
          n.childCreates - 1;
        success.push({ put: k.attr(path, "kids"), value: biasValue(bias) });
      }
    } else {
      continue; // created and deleted again within this multi, or never there
    }
    if (n.childDeletes > 0) success.push({ put: k.attr(path, "gone") });
  }
  return { compare, success };
}

/**
 * The writes that delete and create a node again within one transaction.
 * etcd refuses a put and a delete of one key in one transaction, so the
 * keys are overwritten instead, and the biases cancel the versions the old
 * node had counted: meta's new write gives the czxid, `vbias`/`abias`
 * bring the data and ACL versions back to zero, the `kids` bias the
 * sequence counter.
 */
function recreation(
  k: EtcdTree["keys"],
  path: string,
  base: NodeSnapshot,
  n: Live,
  now: bigint,
): Op[] {
  const lease = n.lease ?? 0n;
  const ops: Op[] = [
    { put: k.node(path), value: encodeNode({ data: n.data, mtime: now }), lease },
    {
      put: k.attr(path, "meta"),
      value: encodeMeta({ ctime: now, mode: n.mode, owner: n.owner, ttl: n.ttl }),
      lease,
    },
    { put: k.attr(path, "acl"), value: encodeAcl(n.acl), lease },
    {
      put: k.attr(path, "vbias"),
      value: biasValue(n.dataWrites - Number(base.kvs.node.version)),
      lease,
    },
    { put: k.attr(path, "abias"), value: biasValue(-Number(base.kvs.acl?.version ?? 0n)), lease },
  ];
  if (n.mode === CreateFlag.CONTAINER) ops.push({ put: k.index("container", path) });
  if (n.ttl !== undefined) ops.push({ put: k.index("ttl", path) });
  if (n.owner === 0n) {
    const old = Number(base.kvs.kids?.version ?? 0n);
    ops.push({ put: k.attr(path, "kids"), value: biasValue(n.childCreates - old) });
  } else if (base.kvs.kids) {
    ops.push({ del: k.attr(path, "kids") });
  }
  if (n.childDeletes > 0) ops.push({ put: k.attr(path, "gone") });
  else if (base.kvs.gone) ops.push({ del: k.attr(path, "gone") });
  return ops;
}
