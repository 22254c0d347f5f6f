/**
 * Preparing writes: what a write does to ZooKeeper's tree, decided in memory
 * with ZooKeeper's checks in its order — PrepRequestProcessor's work.
 *
 * A {@link Draft} is the state of every node a batch of writes has touched:
 * each node as it was read (its snapshot, which the commit pins) and as the
 * writes so far have left it. Writes are applied to it one after another,
 * each all or nothing (a multi whose third operation fails leaves no trace
 * but the pins of what its checks read), so every write sees the effects
 * of the ones before it — from any session — as ZooKeeper's leader
 * prepares each request against its tree plus its outstanding changes.
 * Nothing here talks to etcd: nodes come from a {@link Loader}, and
 * `commit.ts` turns a draft into one etcd transaction.
 *
 * @module
 */

import { permitted, type Principal } from "../zk/acl.ts";
import { Code, EventType, Perms } from "../zk/constants.ts";
import { Errors, ZkError } from "../zk/errors.ts";
import { parentOf, sequenceSuffix } from "../zk/path.ts";
import type { ACL, Stat } from "../zk/records.ts";
import { type NodeSnapshot, statFrom, type StatOf } from "./nodes.ts";

/** One operation of a write, decoded and pre-checked by the caller. */
export type WriteOp =
  | {
    kind: "create";
    /** The request's opcode (1, 15, 19 or 21): decides a multi result's shape. */
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
  | { kind: "setACL"; path: string; acl: ACL[]; version: number }
  | { kind: "check"; path: string; version: number }
  /** An operation that fails before it looks at the tree. */
  | { kind: "invalid"; error: ZkError };

/**
 * What one operation did, its Stat of type `S`: while prepared, a
 * {@link PendingStat} (this write's zxids filled in at commit).
 */
export type OpResult<S = PendingStat> =
  | { kind: "create"; path: string; stat: S }
  | { kind: "delete" }
  | { kind: "setData"; stat: S }
  | { kind: "setACL"; stat: S }
  | { kind: "check" };

/** Who writes, and how a final (post-sequence) path is checked. */
export interface WriteContext {
  /** Why a final path is invalid, or null. */
  validate: (path: string) => string | null;
  /** Who runs the write, for the ACL checks. */
  who: Principal;
}

/** Reads nodes as they were before this batch (null: absent). */
export type Loader = (paths: string[]) => Promise<(NodeSnapshot | null)[]>;

/** A node as the writes so far have left it. */
export interface Live {
  /** As read (null: absent). */
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
  /** null: set by this batch. */
  czxid: bigint | null;
  mzxid: bigint | null;
  pzxid: bigint | null;
  dataWrites: number;
  aclWrites: number;
  childCreates: number;
  childDeletes: number;
  /** Lease of a node created by this batch as an ephemeral. */
  lease?: bigint;
  /** Deleted and created again by this batch (it existed before). */
  recreated?: boolean;
  /** Time to live of a TTL node created by this batch, ms. */
  ttl?: bigint;
  /**
   * What the transaction must pin besides the node key, because a decision
   * relied on it: the ACL (a permission check), the exact child counter (a
   * sequence number, the counter's bias), the children (NotEmpty, a Stat
   * returned). Pinning no more than that lets writes of other servers under
   * one parent both succeed.
   */
  pins: Set<"acl" | "kids" | "gone">;
}

/** A node as read, before any write. */
export function fromSnapshot(s: NodeSnapshot | null): Live {
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
    aclWrites: 0,
    childCreates: 0,
    childDeletes: 0,
    pins: new Set(),
  };
}

/** A Stat whose zxids may still be this batch's (null: filled in at commit). */
export type PendingStat = StatOf<bigint | null>;

/** The Stat once the batch committed at `zxid`. */
export function settleStat(s: PendingStat, zxid: bigint): Stat {
  return { ...s, czxid: s.czxid ?? zxid, mzxid: s.mzxid ?? zxid, pzxid: s.pzxid ?? zxid };
}

/** A write that failed: the index of its failing operation and the error. */
export interface Failed {
  index: number;
  error: ZkError;
}

/** The state of the nodes a batch of writes touched, and the events they fire. */
export class Draft {
  /** Every node read or written, as the successful writes left it. */
  readonly nodes = new Map<string, Live>();
  /** The events of the successful writes, in order: [type, path]. */
  readonly events: [number, string][] = [];
  /** ctime and mtime of this batch. */
  readonly now: bigint;
  readonly #load: Loader;

  constructor(load: Loader, now: bigint) {
    this.#load = load;
    this.now = now;
  }

  /**
   * Applies one write's operations in order: their results, or the failing
   * one's index and error — and then the draft keeps nothing of it but what
   * its checks read (the commit pins that too, so an error answer holds).
   */
  async apply(ops: WriteOp[], ctx: WriteContext): Promise<OpResult[] | Failed> {
    if (ops.length === 1) return await this.#applyOne(ops[0], ctx);
    const layer = new Map<string, Live>();
    const events: [number, string][] = [];
    const load = (paths: string[]) => this.#loadInto(layer, paths);
    const step: StepContext = { ...ctx, nodes: layer, events, load, now: this.now };
    await load(ops.flatMap(pathsOf));
    const results: OpResult[] = [];
    for (const [index, op] of ops.entries()) {
      try {
        results.push(await applyOne(op, step));
      } catch (err) {
        if (!(err instanceof ZkError)) throw err;
        this.#keepPins(layer);
        return { index, error: err };
      }
    }
    for (const [p, n] of layer) this.nodes.set(p, n);
    this.events.push(...events);
    return results;
  }

  /**
   * A write of one operation, applied to the draft itself: an operation
   * changes nothing before its last check (see {@link applyOne}), so if it
   * fails, the draft keeps only its pins and the nodes it read — what a
   * multi's layer would leave — without copying a node.
   */
  async #applyOne(op: WriteOp, ctx: WriteContext): Promise<OpResult[] | Failed> {
    const load = (paths: string[]) => this.#loadInto(this.nodes, paths);
    const step: StepContext = {
      ...ctx,
      nodes: this.nodes,
      events: this.events,
      load,
      now: this.now,
    };
    await load(pathsOf(op));
    try {
      return [await applyOne(op, step)];
    } catch (err) {
      if (!(err instanceof ZkError)) throw err;
      return { index: 0, error: err };
    }
  }

  /**
   * Puts the nodes at `paths` into `into` (the draft's nodes, or a multi's
   * layer over them) unless it holds them: a layer gets a copy of the
   * draft's node, and nodes neither holds are read, all in one call.
   */
  async #loadInto(into: Map<string, Live>, paths: string[]): Promise<void> {
    const missing: string[] = [];
    for (const p of new Set(paths)) {
      if (into.has(p)) continue;
      const drafted = this.nodes.get(p);
      if (drafted) into.set(p, { ...drafted, pins: new Set(drafted.pins) });
      else missing.push(p);
    }
    if (missing.length === 0) return;
    const read = await this.#load(missing);
    missing.forEach((p, i) => into.set(p, fromSnapshot(read[i])));
  }

  /** Keeps what a failed write read: its nodes' pins, on their state before it. */
  #keepPins(layer: Map<string, Live>): void {
    for (const [p, n] of layer) {
      const drafted = this.nodes.get(p) ?? fromSnapshot(n.base);
      for (const pin of n.pins) drafted.pins.add(pin);
      this.nodes.set(p, drafted);
    }
  }
}

/** The nodes an operation reads first (more, such as a sequential name, as it goes). */
function pathsOf(op: WriteOp): string[] {
  if (op.kind === "invalid") return [];
  return op.kind === "create" || op.kind === "delete" ? [op.path, parentOf(op.path)] : [op.path];
}

interface StepContext extends WriteContext {
  nodes: Map<string, Live>;
  /** The ZooKeeper events of the operations so far, in order: [type, path]. */
  events: [number, string][];
  load: (paths: string[]) => Promise<void>;
  now: bigint;
}

/**
 * Applies one operation, with ZooKeeper's checks in its order. Every check
 * comes before the first change (pins aside, which a failure keeps): a
 * single write is applied to the draft itself on that rule.
 */
async function applyOne(op: WriteOp, ctx: StepContext): Promise<OpResult> {
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
      // A node deleted earlier in this batch may be created again.
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
      return { kind: "create", path, stat: statFrom(node) };
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
      // "No children" must still hold when it is written: no child created
      // since it was read (kids) — with none there, none can have been
      // deleted since. NotEmpty must hold too: no child deleted since (gone).
      node.pins.add("kids");
      if (node.numChildren > 0) {
        node.pins.add("gone");
        throw Errors.notEmpty(op.path);
      }
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
      return { kind: "setData", stat: statFrom(node) };
    }
    case "setACL": {
      await ctx.load([op.path]);
      const node = nodes.get(op.path)!;
      if (!node.exists) throw Errors.noNode(op.path);
      need(node, Perms.ADMIN, op.path, ctx.who);
      if (op.version !== -1 && node.aversion !== op.version) throw Errors.badVersion(op.path);
      node.pins.add("kids").add("gone"); // the Stat it returns
      node.acl = op.acl;
      node.aversion++;
      node.aclWrites++;
      // No event: ZooKeeper fires none for an ACL change.
      return { kind: "setACL", stat: statFrom(node) };
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

/** NoAuth unless `who` holds `perm` on the node (as the writes so far have left it). */
function need(n: Live, perm: number, path: string, who: Principal): void {
  n.pins.add("acl");
  if (!permitted(n.acl, perm, who)) throw new ZkError(Code.NOAUTH, path);
}
