/**
 * The ZooKeeper data tree on etcd: each ZooKeeper operation becomes one etcd
 * round trip where it can (a transaction whose compares carry the
 * preconditions; the failure branch reads what is needed to name the error).
 * Creates under one parent queue up on each server and go as one
 * transaction per batch (group commit): it compares the parent's counter
 * key as the batch before left it and moves the counter past every node at
 * once, so sequential creates need no read first and plain ones do not
 * contend on the parent.
 *
 * @module
 */

import { OPEN_ACL, permitted, type Principal } from "../zk/acl.ts";
import { Code, CreateFlag, Perms } from "../zk/constants.ts";
import { Errors, ZkError } from "../zk/errors.ts";
import { baseName, depthOf, parentOf, sequenceSuffix } from "../zk/path.ts";
import type { ACL, Stat } from "../zk/records.ts";
import type { Compare, EtcdClient, GetOp, KeyValue, Op, RangeResult, TxnResult } from "./client.ts";
import { BatchQueue, KeyedLock, type Pending } from "./batch_queue.ts";
import { type Keys, LAYOUT_VERSION } from "./keys.ts";
import { TxnBatcher } from "./txn_batcher.ts";
import type { Replica } from "./replica.ts";
import {
  decodeAcl,
  decodeBias,
  decodeMeta,
  decodeNode,
  encodeAcl,
  encodeMeta,
  encodeNode,
} from "./values.ts";

const READ_ACL: ACL[] = [{ perms: 1, id: { scheme: "world", id: "anyone" } }];

/** A znode as read at one revision. */
export interface NodeSnapshot {
  path: string;
  data: Uint8Array | null;
  acl: ACL[];
  stat: Stat;
  /** The create flags it was made with. */
  mode: number;
  /** Time to live of a TTL node, ms. */
  ttl?: bigint;
  /** Children ever created (the sequence counter). */
  creates: number;
  /** The etcd keys that multi compares against. */
  kvs: { node: KeyValue; kids?: KeyValue; gone?: KeyValue; acl?: KeyValue };
}

/** Every successful answer carries the etcd revision it was read or written at. */
export interface AtRevision {
  zxid: bigint;
}

/** A permission a write needs: `perm` on the node at `path`, for `who`. */
interface Guard {
  path: string;
  perm: number;
  who: Principal;
}

/** The stored form of the open ACL (world:anyone, all permissions). */
const OPEN_ACL_BYTES = encodeAcl(OPEN_ACL);

/** Whether a stored ACL is the open one, which permits everything to everyone. */
function isOpen(kv: KeyValue): boolean {
  const v = kv.value;
  return v.byteLength === OPEN_ACL_BYTES.byteLength && v.every((b, i) => b === OPEN_ACL_BYTES[i]);
}

/** Whether a stored ACL (absent: open) grants `perm` to `who`. */
function aclAdmits(acl: KeyValue | undefined, perm: number, who: Principal): boolean {
  return !acl || isOpen(acl) || permitted(decodeAcl(acl.value), perm, who);
}

/** The two versions kept as an etcd version plus a bias: data and ACL. */
type Counted = "data" | "acl";

/** What to create: `flags` is the create mode (4 container, 5 and 6 TTL). */
export interface CreateRequest {
  path: string;
  data: Uint8Array | null;
  acl: ACL[];
  flags: number;
  /** Time to live of a TTL node, ms. */
  ttl?: bigint;
}

/** Who owns a new node, and how its final path is checked. */
export interface CreateOptions {
  /** Owning session id for ephemerals, else 0n. */
  owner: bigint;
  /** Lease the ephemeral's keys are attached to, else 0n. */
  lease: bigint;
  /** Why a final path is invalid, or null (ZooKeeper's full path rules). */
  validate: (path: string) => string | null;
  /** Who creates: needs CREATE on the parent. */
  who: Principal;
}

/** How many times a sequential create retries when other creates race it. */
const MAX_SEQUENCE_ATTEMPTS = 64;

/** Number of reads {@link EtcdTree.statReads} adds to a transaction. */
const STAT_READS = 3;

/** Rounds of reaping before the lease is revoked anyway (etcd then deletes what is left). */
const MAX_REAP_ROUNDS = 8;

/** Paths read per transaction, so a read stays under etcd's default of 128 operations. */
const PATHS_PER_READ = 40;

/** Most creates one transaction makes (each is up to 6 puts; etcd allows 128 per branch). */
const MAX_CREATE_BATCH = 20;

/** Most setData calls on one node one transaction carries. */
const MAX_SET_BATCH = 64;

/** A batch stops growing once its data (and ACLs) reach about this many bytes. */
const MAX_BATCH_BYTES = 256 * 1024;

/** How many times a batch of creates is tried whole before they go one at a time. */
const MAX_MERGE_ATTEMPTS = 4;

/** What a create answers. */
export type Created = AtRevision & { path: string; stat: Stat };

/** What a write of a node's data or ACL answers. */
export type Written = AtRevision & { stat: Stat };

/** A create, as queued under its parent. */
interface CreateInput {
  req: CreateRequest;
  opts: CreateOptions;
}
type PendingCreate = Pending<CreateInput, Created>;

/** A setData call, as queued on its node. */
interface SetInput {
  data: Uint8Array | null;
  version: number;
  who: Principal;
}

/** A node's keys that a setData must know: the node, its data version bias and its ACL. */
interface NodeHint {
  node: KeyValue;
  vbias?: KeyValue;
  acl?: KeyValue;
}

/** The Stat of a node just created at `zxid`. */
function newStat(zxid: bigint, now: bigint, owner: bigint, data: Uint8Array | null): Stat {
  return {
    czxid: zxid,
    mzxid: zxid,
    ctime: now,
    mtime: now,
    version: 0,
    cversion: 0,
    aversion: 0,
    ephemeralOwner: owner,
    dataLength: data?.byteLength ?? 0,
    numChildren: 0,
    pzxid: zxid,
  };
}

/** A parent's node, counter (`kids`) and ACL keys, as a create needs them. */
interface SequenceHint {
  parent?: KeyValue;
  kids?: KeyValue;
  acl?: KeyValue;
}

/** The hint in the results of `#sequenceReads`, from `offset` on. */
function sequenceHintAt(results: (RangeResult | null)[], offset = 0): SequenceHint {
  return {
    parent: results[offset]!.kvs[0],
    kids: results[offset + 1]!.kvs[0],
    acl: results[offset + 2]!.kvs[0],
  };
}

/**
 * Where a read may be answered: only by etcd (linearizable), or by the
 * replica if it has reached revision `atLeast` (what the session has seen).
 */
export type ReadFrom = "etcd" | { atLeast: bigint };

/** The lock name of the creates under `parent`. */
const creatingUnder = (parent: string) => `creates ${parent}`;
/** The lock name of the setData calls on `path`. */
const settingData = (path: string) => `sets ${path}`;

/** The data tree of one namespace (key prefix) in etcd. */
export class EtcdTree {
  readonly etcd: EtcdClient;
  readonly keys: Keys;
  /** Taken by each batch of a queue below, and by a multi (see {@link holding}). */
  readonly #lock = new KeyedLock();
  /** Creates, queued per parent. */
  readonly #creates = new BatchQueue<CreateInput, Created>(
    (parent, batch) => this.#createBatch(parent, batch),
    {
      items: MAX_CREATE_BATCH,
      bytes: MAX_BATCH_BYTES,
      size: ({ req }) => (req.data?.byteLength ?? 0) + 64 * req.acl.length,
    },
    (parent) => this.#sequenceHints.delete(parent),
    { lock: this.#lock, name: creatingUnder },
  );
  /** setData calls, queued per node. */
  readonly #sets = new BatchQueue<SetInput, Written>(
    (path, batch) => this.#setBatch(path, batch),
    { items: MAX_SET_BATCH, bytes: MAX_BATCH_BYTES, size: ({ data }) => data?.byteLength ?? 0 },
    (path) => this.#nodeHints.delete(path),
    { lock: this.#lock, name: settingData },
  );
  /** Per node, while setData calls on it are queued: its keys as the last of them left them. */
  readonly #nodeHints = new Map<string, NodeHint>();
  /** Clock for ctime/mtime; replaceable in tests. */
  now: () => bigint = () => BigInt(Date.now());

  /** Per parent, while creates under it are queued: its keys as the last of them left them. */
  readonly #sequenceHints = new Map<string, SequenceHint>();

  /**
   * Runs `fn` between the batches of this server's create queues under
   * `parents` and setData queues on `nodes`: a multi that names their keys
   * (a parent's counter, a node's data) takes its turn with them instead of
   * racing them, which on a busy parent it would lose again and again.
   */
  holding<T>(parents: string[], nodes: string[], fn: () => Promise<T>): Promise<T> {
    return this.#lock.hold([...parents.map(creatingUnder), ...nodes.map(settingData)], fn);
  }

  /** The in-memory copy reads may be answered from (absent: every read goes to etcd). */
  replica?: Replica;

  /**
   * The answer to `reads` from the replica, when `from` allows it and the
   * replica has reached the revision asked for; null otherwise.
   */
  #fromReplica(reads: GetOp[], from: ReadFrom): TxnResult | null {
    if (from === "etcd" || !this.replica) return null;
    if (this.replica.revision < from.atLeast) return null;
    return this.replica.read(reads);
  }

  constructor(etcd: EtcdClient, keys: Keys) {
    this.etcd = etcd;
    this.keys = keys;
    this.#writes = new TxnBatcher(etcd);
  }

  /** Independent single-node writes, sent together (group commit across keys). */
  readonly #writes: TxnBatcher;

  /** A single-node write: one transaction, possibly sharing its etcd call with others. */
  #write(compare: Compare[], success: Op[], failure: Op[] = []): Promise<TxnResult> {
    return this.#writes.txn({ compare, success, failure });
  }

  /**
   * Creates the root and ZooKeeper's system nodes the first time any server
   * uses this prefix; refuses a prefix written by a newer layout.
   */
  async init(): Promise<void> {
    const k = this.keys;
    const now = this.now();
    const success: Op[] = [{
      put: k.layout(),
      value: new TextEncoder().encode(`${LAYOUT_VERSION}`),
    }];
    const system: [string, ACL[]][] = [
      ["/", OPEN_ACL],
      ["/zookeeper", OPEN_ACL],
      ["/zookeeper/quota", OPEN_ACL],
      ["/zookeeper/config", READ_ACL],
    ];
    for (const [path, acl] of system) {
      success.push(
        ...nodeWrites(k, { path, data: new Uint8Array(), acl, mode: 0, owner: 0n, lease: 0n, now }),
      );
    }
    const res = await this.etcd.txn(
      [{ key: k.layout(), target: "create", op: "==", value: 0n }],
      success,
      [{ get: k.layout() }],
    );
    if (res.succeeded) return;
    const stored = new TextDecoder().decode(res.results[0]!.kvs[0]?.value);
    if (Number(stored) > LAYOUT_VERSION) {
      throw new Error(
        `etcd prefix ${k.prefix} holds layout version ${stored}; this server reads up to ${LAYOUT_VERSION}`,
      );
    }
  }

  /** The reads from which {@link snapshotAt} builds a node's Stat, data and ACL. */
  statReads(path: string): GetOp[] {
    const k = this.keys;
    return [
      { get: k.node(path) },
      { get: k.attrs(path), prefix: true },
      { get: k.children(path), prefix: true, countOnly: true },
    ];
  }

  /** Builds the snapshot from the results of {@link statReads} at `offset`. */
  snapshotAt(path: string, results: (RangeResult | null)[], offset: number): NodeSnapshot | null {
    const [nodeR, attrR, countR] = results.slice(offset, offset + STAT_READS);
    const node = nodeR?.kvs[0];
    if (!node) return null;
    const attrs = new Map<string, KeyValue>();
    for (const kv of attrR?.kvs ?? []) attrs.set(this.keys.attrName(kv.key), kv);
    const metaKv = attrs.get("meta");
    if (!metaKv) return null;
    const { data, mtime } = decodeNode(node.value);
    const meta = decodeMeta(metaKv.value);
    const aclKv = attrs.get("acl");
    const kids = attrs.get("kids");
    const gone = attrs.get("gone");
    const numChildren = countR?.count ?? 0;
    const creates = kids ? Number(kids.version - 1n) + decodeBias(kids.value) : 0;
    let pzxid = metaKv.modRevision;
    if (kids && kids.modRevision > pzxid) pzxid = kids.modRevision;
    if (gone && gone.modRevision > pzxid) pzxid = gone.modRevision;
    return {
      path,
      data,
      acl: aclKv ? decodeAcl(aclKv.value) : OPEN_ACL,
      kvs: { node, kids, gone, acl: aclKv },
      mode: meta.mode,
      ttl: meta.ttl,
      creates,
      stat: {
        // meta is written once per creation, also when a multi deletes and
        // re-creates the node (when the node key itself lives on).
        czxid: metaKv.modRevision,
        mzxid: node.modRevision,
        ctime: meta.ctime,
        mtime,
        version: (Number(node.version - 1n) + decodeBias(attrs.get("vbias")?.value)) | 0,
        cversion: (2 * creates - numChildren) | 0,
        aversion: aclKv
          ? (Number(aclKv.version - 1n) + decodeBias(attrs.get("abias")?.value)) | 0
          : 0,
        ephemeralOwner: meta.owner,
        dataLength: data?.byteLength ?? 0,
        numChildren,
        pzxid,
      },
    };
  }

  /**
   * Reads one node (null when it does not exist) and, if asked, its
   * children's names. `seen` is the revision of the last change the answer
   * reflects — the node's mzxid or pzxid, or for a missing node its
   * parent's last child change — so that a reply can be held back until
   * that change's notifications have gone out.
   */
  async get(
    path: string,
    withChildren = false,
    from: ReadFrom = "etcd",
  ): Promise<AtRevision & { node: NodeSnapshot | null; seen: bigint; children: string[] }> {
    const reads = this.statReads(path);
    if (path !== "/") {
      reads.push({ get: this.keys.attrs(parentOf(path)), prefix: true, keysOnly: true });
    }
    if (withChildren) reads.push({ get: this.keys.children(path), prefix: true, keysOnly: true });
    const copy = this.#fromReplica(reads, from);
    const res = copy ?? await this.etcd.read(reads);
    const node = this.snapshotAt(path, res.results, 0);
    let seen = 0n;
    if (copy) {
      // The copy is at the watch stream's revision: every change it shows
      // has had its notifications sent.
      seen = res.revision;
    } else if (node) {
      seen = node.stat.mzxid > node.stat.pzxid ? node.stat.mzxid : node.stat.pzxid;
    } else if (path !== "/") {
      for (const kv of res.results[STAT_READS]!.kvs) {
        if (kv.modRevision > seen) seen = kv.modRevision;
      }
      // The parent is gone too: order the answer after the prefix's newest change.
      if (seen === 0n) seen = (await this.sync()).seen;
    }
    const children = withChildren && node
      ? res.results[res.results.length - 1]!.kvs.map((kv) =>
        baseName(this.keys.pathOfNode(kv.key)!)
      )
      : [];
    return { zxid: res.revision, node, seen, children };
  }

  /**
   * Reads several nodes (used by SetWatches and multi), 40 per etcd round
   * trip, all as of one revision (`zxid`): the first round trip's, or `at`
   * when given (a multi's later reads join its first one's snapshot). A
   * revision compacted meanwhile throws {@link EtcdCompactedError}.
   */
  async getMany(
    paths: string[],
    from: ReadFrom = "etcd",
    at?: bigint,
  ): Promise<AtRevision & { nodes: (NodeSnapshot | null)[] }> {
    const nodes: (NodeSnapshot | null)[] = [];
    let zxid = at ?? 0n;
    // The replica answers every chunk or none: it cannot move between
    // chunks it answers, as nothing is awaited; once etcd answered, etcd
    // answers the rest as of its revision.
    let copy: ReadFrom = at === undefined ? from : "etcd";
    for (let i = 0; i < paths.length; i += PATHS_PER_READ) {
      const chunk = paths.slice(i, i + PATHS_PER_READ);
      const reads = chunk.flatMap((p) => this.statReads(p));
      let res = this.#fromReplica(reads, copy);
      if (!res) {
        copy = "etcd";
        res = await this.etcd.read(
          zxid === 0n ? reads : reads.map((r) => ({ ...r, revision: zxid })),
        );
      }
      if (zxid === 0n) zxid = res.revision; // a pinned read's header has the current one
      chunk.forEach((p, j) => nodes.push(this.snapshotAt(p, res.results, j * STAT_READS)));
    }
    if (zxid === 0n) zxid = await this.revision();
    return { zxid, nodes };
  }

  /** etcd's current revision, read linearizably (one key: cheap at any tree size). */
  async revision(): Promise<bigint> {
    return (await this.etcd.read([{ get: this.keys.layout(), keysOnly: true }])).revision;
  }

  /**
   * ZooKeeper's sync: a point the watch stream must reach before the
   * session reads on. As ZooKeeper's own sync goes through the leader's
   * write pipeline, this writes one key (`P sync`): its revision is after
   * every write acknowledged before, and the watch stream delivers it like
   * any change under the prefix. (Finding the prefix's newest change by a
   * read means sorting every key under it: seconds at a million znodes.)
   * `seen` is that revision, as is `zxid`.
   */
  async sync(): Promise<AtRevision & { seen: bigint }> {
    const res = await this.etcd.txn([], [{ put: this.keys.syncMark() }]);
    return { zxid: res.revision, seen: res.revision };
  }

  /**
   * Creates a node, checking in ZooKeeper's order: parent exists (NoNode),
   * final path valid (BadArguments, via `validate`), node absent
   * (NodeExists), parent not ephemeral (NoChildrenForEphemerals). `path` is
   * the requested path, before any sequence suffix.
   */
  create(req: CreateRequest, opts: CreateOptions): Promise<Created> {
    if ((req.flags & 2) === 0 && req.path === "/") return Promise.reject(Errors.nodeExists("/"));
    // Creates under one parent queue up on this server: one transaction at
    // a time per parent, carrying every create that arrived while the one
    // before it was in flight (group commit). Other servers' creates race
    // them; a lost race costs a retry.
    return this.#creates.push(parentOf(req.path), { req, opts });
  }

  /**
   * Creates a batch of nodes under `parent` in one transaction when the
   * parent's keys are known (from the create before, or the replica): it
   * compares the parent's counter key as known, puts every node and moves
   * the counter past all of them at once. Creates it cannot take (a
   * parent that refuses some of them, a path twice, a final path to
   * reject) and every create of a batch that failed its compares run one
   * at a time instead, each with its own checks and errors.
   */
  async #createBatch(parent: string, batch: PendingCreate[]): Promise<void> {
    /** Creates left to run one at a time, after the merged transaction. */
    const alone: PendingCreate[] = [];
    let todo = batch.length > 1 ? batch : [];
    if (todo.length === 0) alone.push(...batch);
    for (let attempt = 0; todo.length > 0; attempt++) {
      const hint = this.#sequenceHint(parent) ??
        sequenceHintAt((await this.etcd.read(this.#sequenceReads(parent))).results);
      if (attempt === MAX_MERGE_ATTEMPTS || !hint.parent || !hint.kids) {
        alone.push(...todo);
        break;
      }
      const merged: { p: PendingCreate; path: string }[] = [];
      const paths = new Set<string>();
      let counter = Number(hint.kids.version - 1n) + decodeBias(hint.kids.value);
      for (const p of todo) {
        const sequential = (p.input.req.flags & 2) !== 0;
        const path = sequential ? p.input.req.path + sequenceSuffix(counter) : p.input.req.path;
        if (
          paths.has(path) || p.input.opts.validate(path) !== null ||
          !this.#hintAllows(hint, p.input.opts.who)
        ) {
          alone.push(p);
          continue;
        }
        paths.add(path);
        merged.push({ p, path });
        counter++;
      }
      if (merged.length === 0) break;
      const existing = await this.#createMerged(parent, hint, merged);
      if (existing === null) break; // created
      // A node that exists fails on its own (NodeExists); the rest go again.
      todo = [];
      for (const { p, path } of merged) {
        if (existing.has(path) && (p.input.req.flags & 2) === 0) alone.push(p);
        else todo.push(p);
      }
    }
    for (const p of alone) {
      await this.#create(p.input.req, p.input.opts).then(p.done.resolve, p.done.reject);
    }
  }

  /**
   * One transaction creating `merged` (final paths given) under `parent`,
   * whose keys are as `hint` says; settles each create it made. Resolves
   * null when it created them all, else (having created none, because the
   * parent's counter or ACL changed or a node exists) to the paths that
   * exist.
   */
  async #createMerged(
    parent: string,
    hint: SequenceHint,
    merged: { p: PendingCreate; path: string }[],
  ): Promise<Set<string> | null> {
    const k = this.keys;
    const kids = hint.kids!;
    const compare: Compare[] = [
      { key: k.attr(parent, "kids"), target: "mod", op: "==", value: kids.modRevision },
    ];
    for (const { path } of merged) {
      compare.push({ key: k.node(path), target: "create", op: "==", value: 0n });
    }
    const whos = merged.map(({ p }) => p.input.opts.who);
    compare.push(...this.#batchAclCompares(parent, Perms.CREATE, whos, hint.acl));
    const now = this.now();
    const success: Op[] = [];
    for (const { p, path } of merged) {
      success.push(...nodeWrites(k, {
        path,
        data: p.input.req.data,
        acl: p.input.req.acl,
        mode: p.input.req.flags,
        owner: p.input.opts.owner,
        lease: p.input.opts.lease,
        now,
        ttl: p.input.req.ttl,
      }));
    }
    // One put moves the counter by one; its bias adds the rest.
    const value = biasValue(decodeBias(kids.value) + merged.length - 1);
    success.push({ put: k.attr(parent, "kids"), value });
    const failure = [
      ...this.#sequenceReads(parent),
      ...merged.map(({ path }): GetOp => ({ get: k.node(path), keysOnly: true })),
    ];
    const res = await this.#write(compare, success, failure);
    // After a success the parent's keys are as compared, but for the counter's one put.
    this.#sequenceHints.set(
      parent,
      res.succeeded
        ? {
          ...hint,
          kids: { ...kids, value, version: kids.version + 1n, modRevision: res.revision },
        }
        : sequenceHintAt(res.results),
    );
    if (!res.succeeded) {
      const existing = new Set<string>();
      merged.forEach(({ path }, i) => {
        if (res.results[3 + i]!.kvs.length > 0) existing.add(path);
      });
      return existing;
    }
    const zxid = res.revision;
    for (const { p, path } of merged) {
      p.done.resolve({
        zxid,
        path,
        stat: newStat(zxid, now, p.input.opts.owner, p.input.req.data),
      });
    }
    return null;
  }

  /** What a sequential create must know of the parent: its node, counter and ACL keys. */
  #sequenceReads(parent: string): GetOp[] {
    const k = this.keys;
    return [
      { get: k.node(parent), keysOnly: true },
      { get: k.attr(parent, "kids") },
      { get: k.attr(parent, "acl") },
    ];
  }

  /** Whether a remembered parent exists, can have children and lets `who` create under it. */
  #hintAllows(hint: SequenceHint, who: Principal): boolean {
    return !!hint.parent && !!hint.kids && aclAdmits(hint.acl, Perms.CREATE, who);
  }

  /**
   * The compares a batch of writes by `whos` needs on `path`'s ACL key, as
   * last read (`acl`): none if all are superusers, else that the ACL is
   * still the open one or still the one read (each write was checked
   * against it).
   */
  #batchAclCompares(path: string, perm: number, whos: Principal[], acl?: KeyValue): Compare[] {
    const who = whos.find((w) => !w.superuser);
    if (!who) return [];
    return this.#aclCompares({ path, perm, who }, acl && !isOpen(acl) ? acl : undefined);
  }

  /** The parent's keys as last known without a read (null: read them). */
  #sequenceHint(parent: string): SequenceHint | null {
    const mine = this.#sequenceHints.get(parent);
    const copy = this.replica?.read(this.#sequenceReads(parent));
    const fromCopy = copy ? sequenceHintAt(copy.results) : null;
    if (!mine) return fromCopy;
    // The replica may have caught up with (or passed) our own last create.
    if (fromCopy?.kids && mine.kids && fromCopy.kids.modRevision >= mine.kids.modRevision) {
      return fromCopy;
    }
    return mine;
  }

  async #create(req: CreateRequest, opts: CreateOptions): Promise<Created> {
    const k = this.keys;
    const { owner, lease } = opts;
    const sequential = (req.flags & 2) !== 0;
    const parent = parentOf(req.path);
    if (!sequential && req.path === "/") throw Errors.nodeExists("/");
    const checkFinal = (path: string) => {
      const reason = opts.validate(path);
      if (reason !== null) throw Errors.badArguments(path, reason);
    };
    const guard: Guard = { path: parent, perm: Perms.CREATE, who: opts.who };
    /** The parent's ACL once read and found to permit the create (null: not read). */
    let checkedAcl: KeyValue | undefined;
    /** NoAuth unless the parent's ACL (as read) permits the create. */
    const checkAcl = (aclKv: KeyValue | undefined) => {
      if (aclKv && isOpen(aclKv) && checkedAcl) {
        checkedAcl = undefined; // the ACL became the open one: compare on that again
        return true;
      }
      if (!aclKv || isOpen(aclKv) || aclKv.modRevision === checkedAcl?.modRevision) return false;
      if (!permitted(decodeAcl(aclKv.value), Perms.CREATE, opts.who)) {
        throw new ZkError(Code.NOAUTH, parent);
      }
      checkedAcl = aclKv;
      return true;
    };
    if (!sequential && opts.validate(req.path) !== null) {
      const r = await this.etcd.read([
        { get: k.node(parent), keysOnly: true },
        { get: k.attr(parent, "acl") },
      ]);
      if (r.results[0]!.kvs.length === 0) throw Errors.noNode(parent);
      checkAcl(r.results[1]!.kvs[0]);
      checkFinal(req.path);
    }
    // A sequential create needs the parent's counter. It comes from the last
    // sequential create under the parent on this server, or the replica,
    // or after a lost race the failed transaction's own reads; only without
    // any of those is it read first. (The compare on the counter's version
    // catches a stale one.)
    let known = sequential ? this.#sequenceHint(parent) : null;
    /** Whether `known` was read from etcd now, not remembered. */
    let fresh = false;
    for (let attempt = 0; attempt < MAX_SEQUENCE_ATTEMPTS; attempt++) {
      const compare: Compare[] = [];
      let path = req.path;
      let counterAt = 0n;
      if (sequential) {
        // A remembered parent that is missing, refuses the create or cannot
        // have children may be out of date: read it before saying so.
        if (known && !fresh && !this.#hintAllows(known, opts.who)) known = null;
        if (!known) {
          known = sequenceHintAt((await this.etcd.read(this.#sequenceReads(parent))).results);
          fresh = true;
        }
        if (!known.parent) throw Errors.noNode(parent);
        checkAcl(known.acl);
        const kids = known.kids;
        const counter = kids ? Number(kids.version - 1n) + decodeBias(kids.value) : 0;
        path = req.path + sequenceSuffix(counter);
        checkFinal(path);
        if (!kids) throw Errors.noChildrenForEphemerals(parent);
        // The counter's mod revision, not its version: a parent deleted and
        // made again starts its counter key's version over.
        counterAt = kids.modRevision;
        compare.push({ key: k.attr(parent, "kids"), target: "mod", op: "==", value: counterAt });
      } else {
        compare.push({ key: k.attr(parent, "kids"), target: "create", op: ">", value: 0n });
      }
      compare.push({ key: k.node(path), target: "create", op: "==", value: 0n });
      compare.push(...this.#aclCompares(guard, checkedAcl));
      const now = this.now();
      const writes = nodeWrites(k, {
        path,
        data: req.data,
        acl: req.acl,
        mode: req.flags,
        owner,
        lease,
        now,
        ttl: req.ttl,
      });
      const res = await this.#write(
        compare,
        [
          ...writes,
          { put: k.attr(parent, "kids"), ignoreValue: true },
          // The parent's keys as this create left them, for the next create under it.
          ...this.#sequenceReads(parent),
        ],
        [
          ...this.#sequenceReads(parent),
          { get: k.node(path), keysOnly: true },
        ],
      );
      if (res.succeeded) {
        const zxid = res.revision;
        this.#sequenceHints.set(parent, sequenceHintAt(res.results, writes.length + 1));
        return { zxid, path, stat: newStat(zxid, now, owner, req.data) };
      }
      const [parentR, kidsR, aclR, nodeR] = res.results;
      this.#sequenceHints.delete(parent);
      known = sequenceHintAt(res.results);
      fresh = true;
      if (parentR!.kvs.length === 0) throw Errors.noNode(parent);
      // A parent whose ACL is not the open one: check it, then try again pinned to it.
      if (checkAcl(aclR!.kvs[0])) continue;
      const kidsNow = kidsR!.kvs[0];
      // Another create took this sequence number first: try the next one.
      if (sequential && kidsNow && kidsNow.modRevision !== counterAt) continue;
      if (nodeR!.kvs.length > 0) throw Errors.nodeExists(path);
      if (!kidsNow) throw Errors.noChildrenForEphemerals(parent);
    }
    throw new ZkError(Code.SYSTEMERROR, req.path, "sequential create kept racing; giving up");
  }

  /**
   * Compares that hold when `path` exists and its data version (or ACL
   * version, for `"acl"`) is `version` (−1: any). Such a version is the
   * counted key's etcd version minus one plus a bias key (`vbias`,
   * `abias`), so the compare needs the bias: absent (the usual case) or as
   * last read.
   */
  #versionCompares(
    path: string,
    which: Counted,
    version: number,
    bias: KeyValue | undefined,
  ): Compare[] {
    const k = this.keys;
    const out: Compare[] = [{ key: k.node(path), target: "create", op: ">", value: 0n }];
    if (version === -1) return out;
    const counted = which === "data" ? k.node(path) : k.attr(path, "acl");
    const biasKey = k.attr(path, which === "data" ? "vbias" : "abias");
    const etcdVersion = BigInt(version - decodeBias(bias?.value)) + 1n;
    out.push({ key: counted, target: "version", op: "==", value: etcdVersion });
    out.push(
      bias
        ? { key: biasKey, target: "mod", op: "==", value: bias.modRevision }
        : { key: biasKey, target: "create", op: "==", value: 0n },
    );
    return out;
  }

  /**
   * Runs a write guarded by {@link #versionCompares} and by `guard`'s
   * permission. Its failure branch reads the node key, the bias key, the
   * guarded node and its ACL, then `extraFailure`. It retries when the bias
   * or a non-open ACL turns out to differ from what was assumed, and throws
   * NoAuth when the ACL refuses (once the guarded node is known to exist,
   * as ZooKeeper checks).
   */
  async #guarded(
    path: string,
    which: Counted,
    version: number,
    guard: Guard,
    extra: Compare[],
    success: Op[],
    extraFailure: Op[] = [],
  ): Promise<TxnResult> {
    const k = this.keys;
    const failure: Op[] = [
      { get: k.node(path), keysOnly: true },
      { get: k.attr(path, which === "data" ? "vbias" : "abias") },
      { get: k.node(guard.path), keysOnly: true },
      { get: k.attr(guard.path, "acl") },
      ...extraFailure,
    ];
    let bias: KeyValue | undefined;
    let acl: KeyValue | undefined;
    for (let attempt = 0; attempt < 8; attempt++) {
      const res = await this.#write(
        [
          ...this.#versionCompares(path, which, version, bias),
          ...this.#aclCompares(guard, acl),
          ...extra,
        ],
        success,
        failure,
      );
      if (res.succeeded) return res;
      const [nodeR, biasR, guardedR, aclR] = res.results;
      if (!guardedR!.kvs[0]) return res;
      let again = false;
      const aclKv = aclR!.kvs[0];
      if (aclKv && !isOpen(aclKv) && aclKv.modRevision !== acl?.modRevision) {
        if (!permitted(decodeAcl(aclKv.value), guard.perm, guard.who)) {
          throw new ZkError(Code.NOAUTH, guard.path);
        }
        acl = aclKv;
        again = true;
      } else if (aclKv && isOpen(aclKv) && acl) {
        acl = undefined; // the ACL became the open one: compare on that again
        again = true;
      }
      const seen = biasR!.kvs[0];
      if (version !== -1 && nodeR!.kvs[0] && seen?.modRevision !== bias?.modRevision) {
        bias = seen;
        again = true;
      }
      if (!again) return res;
    }
    throw new ZkError(Code.SYSTEMERROR, path, "the node kept changing; giving up");
  }

  /**
   * The compare that carries a permission check: the guarded node's ACL is
   * the open one (anyone may do anything: no check needed), or is still the
   * one that was read and found to permit the operation.
   */
  #aclCompares(guard: Guard, checked: KeyValue | undefined): Compare[] {
    const key = this.keys.attr(guard.path, "acl");
    if (guard.who.superuser) return [];
    return checked
      ? [{ key, target: "mod", op: "==", value: checked.modRevision }]
      : [{ key, target: "value", op: "==", bytes: OPEN_ACL_BYTES }];
  }

  /** Deletes a node (version −1 matches any version); needs DELETE on its parent. */
  async delete(path: string, version: number, who: Principal): Promise<AtRevision> {
    const k = this.keys;
    const res = await this.#guarded(
      path,
      "data",
      version,
      { path: parentOf(path), perm: Perms.DELETE, who },
      [{ key: k.children(path), target: "create", op: "==", value: 0n, prefix: true }],
      [...nodeDeletes(k, path), { put: k.attr(parentOf(path), "gone") }],
      [{ get: k.children(path), prefix: true, countOnly: true }],
    );
    if (res.succeeded) return { zxid: res.revision };
    const node = res.results[0]!.kvs[0];
    if (!node) throw Errors.noNode(path);
    // ZooKeeper checks the version before the children.
    const actual = Number(node.version - 1n) + decodeBias(res.results[1]!.kvs[0]?.value);
    if (version !== -1 && actual !== version) throw Errors.badVersion(path);
    if (res.results[4]!.count > 0) throw Errors.notEmpty(path);
    throw new ZkError(Code.SYSTEMERROR, path, "delete raced another write; try again");
  }

  /**
   * Replaces a node's data (version is the expected data version; −1
   * matches any); needs WRITE. Calls on one node queue up on this server
   * and go as one transaction per batch (see {@link #setBatch}).
   */
  setData(
    path: string,
    data: Uint8Array | null,
    version: number,
    who: Principal,
  ): Promise<Written> {
    return this.#sets.push(path, { data, version, who });
  }

  /**
   * Runs a batch of setData calls on `path`. With the node's keys known
   * (from the call before), one transaction compares them as known, writes
   * the last successful call's data and moves the data version past every
   * successful call (one put, plus the rest in the version bias); calls
   * whose expected version is not the one they would meet fail with
   * BadVersion, as they would one after another. Otherwise, or when the
   * compares fail, the calls run one at a time.
   */
  async #setBatch(path: string, batch: Pending<SetInput, Written>[]): Promise<void> {
    let rest = batch;
    const alone = (p: Pending<SetInput, Written>) =>
      this.#setDataOne(path, p.input).then(p.done.resolve, p.done.reject);
    if (!this.#nodeHints.has(path)) {
      await alone(rest[0]);
      rest = rest.slice(1);
    }
    const hint = this.#nodeHints.get(path);
    if (rest.length > 1 && hint) {
      const merged = rest.filter((p) => aclAdmits(hint.acl, Perms.WRITE, p.input.who));
      if (await this.#setMerged(path, hint, merged)) rest = rest.filter((p) => !merged.includes(p));
    }
    for (const p of rest) await alone(p);
  }

  /** One transaction for `merged` on `path`, keys as `hint`; false when it wrote nothing. */
  async #setMerged(
    path: string,
    hint: NodeHint,
    merged: Pending<SetInput, Written>[],
  ): Promise<boolean> {
    const k = this.keys;
    const bias = decodeBias(hint.vbias?.value);
    let version = Number(hint.node.version - 1n) + bias;
    /** The version each call leaves, or null for a BadVersion. */
    const after = merged.map(({ input }) => {
      if (input.version !== -1 && input.version !== version) return null;
      return ++version;
    });
    const last = merged.findLast((_, i) => after[i] !== null);
    if (!last) return false;
    const writes = after.filter((v) => v !== null).length;
    const compare: Compare[] = [
      { key: k.node(path), target: "mod", op: "==", value: hint.node.modRevision },
      hint.vbias
        ? { key: k.attr(path, "vbias"), target: "mod", op: "==", value: hint.vbias.modRevision }
        : { key: k.attr(path, "vbias"), target: "create", op: "==", value: 0n },
    ];
    const whos = merged.map((p) => p.input.who);
    compare.push(...this.#batchAclCompares(path, Perms.WRITE, whos, hint.acl));
    const now = this.now();
    const success: Op[] = [
      {
        put: k.node(path),
        value: encodeNode({ data: last.input.data, mtime: now }),
        ignoreLease: true,
      },
    ];
    if (writes > 1) {
      // With the node's lease, so that it goes with an ephemeral node.
      success.push({
        put: k.attr(path, "vbias"),
        value: biasValue(bias + writes - 1),
        lease: hint.node.lease,
      });
    }
    const offset = success.length;
    success.push(...this.statReads(path));
    const res = await this.#write(compare, success);
    if (!res.succeeded) {
      this.#nodeHints.delete(path);
      return false;
    }
    this.#rememberNode(path, res.results, offset);
    const stat = this.snapshotAt(path, res.results, offset)!.stat;
    merged.forEach((p, i) => {
      const v = after[i];
      if (v === null) p.done.reject(Errors.badVersion(path));
      else {
        p.done.resolve({
          zxid: res.revision,
          stat: { ...stat, version: v, dataLength: p.input.data?.byteLength ?? 0 },
        });
      }
    });
    return true;
  }

  /** Keeps a node's keys, from the results of {@link statReads} at `offset`, for the next setData. */
  #rememberNode(path: string, results: (RangeResult | null)[], offset: number): void {
    const node = results[offset]!.kvs[0];
    if (!node) {
      this.#nodeHints.delete(path);
      return;
    }
    const attrs = results[offset + 1]!.kvs;
    const attr = (name: string) => attrs.find((kv) => this.keys.attrName(kv.key) === name);
    this.#nodeHints.set(path, { node, vbias: attr("vbias"), acl: attr("acl") });
  }

  /** One setData on its own: one guarded transaction. */
  async #setDataOne(path: string, { data, version, who }: SetInput): Promise<Written> {
    const k = this.keys;
    const res = await this.#guarded(path, "data", version, { path, perm: Perms.WRITE, who }, [], [
      { put: k.node(path), value: encodeNode({ data, mtime: this.now() }), ignoreLease: true },
      ...this.statReads(path),
    ]);
    if (!res.succeeded) {
      this.#nodeHints.delete(path);
      if (!res.results[0]!.kvs[0]) throw Errors.noNode(path);
      throw Errors.badVersion(path);
    }
    this.#rememberNode(path, res.results, 1);
    return { zxid: res.revision, stat: this.snapshotAt(path, res.results, 1)!.stat };
  }

  /** Replaces a node's ACL (version is the expected aversion; −1 matches any); needs ADMIN. */
  async setACL(
    path: string,
    acl: ACL[],
    version: number,
    who: Principal,
  ): Promise<AtRevision & { stat: Stat }> {
    const k = this.keys;
    const res = await this.#guarded(path, "acl", version, { path, perm: Perms.ADMIN, who }, [], [
      { put: k.attr(path, "acl"), value: encodeAcl(acl), ignoreLease: true },
      ...this.statReads(path),
    ]);
    if (!res.succeeded) {
      if (res.results[0]!.kvs.length === 0) throw Errors.noNode(path);
      throw Errors.badVersion(path);
    }
    return { zxid: res.revision, stat: this.snapshotAt(path, res.results, 1)!.stat };
  }

  /**
   * Number of all descendants of a node (not the node itself), counted one
   * depth at a time, eight depths per round trip; null when it is missing.
   */
  async countDescendants(path: string): Promise<AtRevision & { count: number | null }> {
    const k = this.keys;
    const base = depthOf(path);
    const under = path === "/" ? "/" : `${path}/`;
    let count = 0;
    let zxid = 0n;
    for (let depth = base + 1;; depth += 8) {
      const depths = Array.from({ length: 8 }, (_, i) => depth + i);
      const res = await this.etcd.read([
        { get: k.node(path), keysOnly: true },
        ...depths.map((d) => ({
          get: `${k.nodePrefix()}${d}${under}`,
          prefix: true,
          countOnly: true,
        })),
      ]);
      zxid = res.revision;
      if (res.results[0]!.kvs.length === 0) return { zxid, count: null };
      const counts = res.results.slice(1).map((r) => r!.count);
      count += counts.reduce((a, b) => a + b, 0);
      if (counts.some((n) => n === 0)) return { zxid, count };
    }
  }

  /** Number of znodes (for `srvr`, `mntr`). */
  async countNodes(): Promise<number> {
    const res = await this.etcd.read([{
      get: this.keys.nodePrefix(),
      prefix: true,
      countOnly: true,
    }]);
    return res.results[0]!.count;
  }

  /** The ephemeral nodes attached to `lease` (a session's), as paths. */
  async ephemerals(lease: bigint): Promise<string[]> {
    const { keys } = await this.etcd.leaseInfo(lease);
    return keys.map((key) => this.keys.pathOfNode(key)).filter((p): p is string => p !== null);
  }

  /**
   * What ZooKeeper's container manager does: deletes the containers that
   * had children and have none left, and the TTL nodes that have no
   * children and were not modified for their TTL. Each delete holds only
   * if the node did not change since it was read, so several servers may
   * run this at once. Index entries whose node is gone are dropped.
   * Returns the paths deleted.
   */
  async reapExpired(now: bigint): Promise<string[]> {
    const k = this.keys;
    const deleted: string[] = [];
    for (const kind of ["container", "ttl"] as const) {
      const listed = await this.etcd.read([{ get: k.indexOf(kind), prefix: true, keysOnly: true }]);
      const paths = listed.results[0]!.kvs.map((kv) => k.pathOfIndex(kind, kv.key)!);
      const { nodes } = await this.getMany(paths);
      for (const [i, path] of paths.entries()) {
        const node = nodes[i];
        const index = k.index(kind, path);
        const stale = !node ||
          (kind === "container" ? node.mode !== CreateFlag.CONTAINER : node.ttl === undefined);
        if (stale) {
          // Only while the node is still gone (or still not of this kind).
          await this.etcd.txn(
            [
              node
                ? { key: k.node(path), target: "mod", op: "==", value: node.kvs.node.modRevision }
                : { key: k.node(path), target: "create", op: "==", value: 0n },
            ],
            [{ del: index }],
          );
          continue;
        }
        const { numChildren, cversion, mtime } = node.stat;
        const due = numChildren === 0 &&
          (kind === "container" ? cversion > 0 : now - mtime > node.ttl!);
        if (!due) continue;
        const pin = (key: string, kv: KeyValue | undefined): Compare =>
          kv
            ? { key, target: "mod", op: "==", value: kv.modRevision }
            : { key, target: "create", op: "==", value: 0n };
        const res = await this.etcd.txn(
          [
            pin(k.node(path), node.kvs.node),
            pin(k.attr(path, "kids"), node.kvs.kids),
            pin(k.attr(path, "gone"), node.kvs.gone),
            { key: k.children(path), target: "create", op: "==", value: 0n, prefix: true },
          ],
          [...nodeDeletes(k, path), { put: k.attr(parentOf(path), "gone") }, { del: index }],
        );
        if (res.succeeded) deleted.push(path);
      }
    }
    return deleted;
  }

  /**
   * Deletes the ephemeral nodes attached to `lease` in one transaction,
   * touching each parent's `gone` key (so pzxid and cversion move as in
   * ZooKeeper), then revokes the lease. Safe to run from several servers at
   * once: each node is deleted only while it still carries the lease.
   * Returns the revision of the deletion (0n when there was nothing to do).
   */
  async reapEphemerals(lease: bigint): Promise<AtRevision & { paths: string[] }> {
    const reaped: string[] = [];
    let zxid = 0n;
    for (let attempt = 0; attempt < MAX_REAP_ROUNDS; attempt++) {
      const { keys } = await this.etcd.leaseInfo(lease);
      const paths = keys.map((key) => this.keys.pathOfNode(key)).filter((p): p is string =>
        p !== null
      );
      if (paths.length === 0) break;
      // In chunks, to stay within etcd's default of 128 operations per transaction.
      for (let i = 0; i < paths.length; i += PATHS_PER_READ) {
        const chunk = paths.slice(i, i + PATHS_PER_READ);
        const parents = new Set(chunk.map(parentOf));
        const res = await this.etcd.txn(
          chunk.map((p) => ({ key: this.keys.node(p), target: "lease", op: "==", value: lease })),
          [
            ...chunk.flatMap((p) => nodeDeletes(this.keys, p)),
            ...[...parents].map((p) => ({ put: this.keys.attr(p, "gone") })),
          ],
        );
        if (res.succeeded) {
          reaped.push(...chunk);
          zxid = res.revision;
        }
      }
    }
    await this.etcd.revokeLease(lease);
    return { zxid, paths: reaped };
  }
}

/** The operations that delete a node: its record and every attribute. */
export function nodeDeletes(keys: Keys, path: string): Op[] {
  return [{ del: keys.node(path) }, { del: keys.attrs(path), prefix: true }];
}

/** What a new node is made of. */
export interface NewNode {
  path: string;
  data: Uint8Array | null;
  acl: ACL[];
  /** Create flags. */
  mode: number;
  /** Owning session of an ephemeral, else 0n. */
  owner: bigint;
  /** Lease of an ephemeral's keys, else 0n. */
  lease: bigint;
  /** ctime (and mtime unless `mtime` is given), ms. */
  now: bigint;
  /** Last modification time, ms, when it differs from `now` (migration). */
  mtime?: bigint;
  /** Children created under it in the same transaction (multi), or ever (migration). */
  childCreates?: number;
  /** Starting data and ACL versions (migration keeps the source's). */
  version?: number;
  aversion?: number;
  /** Time to live of a TTL node, ms. */
  ttl?: bigint;
}

/** The puts that create a node (its parent's counter is the caller's). */
export function nodeWrites(keys: Keys, n: NewNode): Op[] {
  const ops: Op[] = [
    {
      put: keys.node(n.path),
      value: encodeNode({ data: n.data, mtime: n.mtime ?? n.now }),
      lease: n.lease,
    },
    {
      put: keys.attr(n.path, "meta"),
      value: encodeMeta({ ctime: n.now, mode: n.mode, owner: n.owner, ttl: n.ttl }),
      lease: n.lease,
    },
    { put: keys.attr(n.path, "acl"), value: encodeAcl(n.acl), lease: n.lease },
  ];
  if (n.version) ops.push({ put: keys.attr(n.path, "vbias"), value: biasValue(n.version) });
  if (n.aversion) ops.push({ put: keys.attr(n.path, "abias"), value: biasValue(n.aversion) });
  if (n.mode === CreateFlag.CONTAINER) ops.push({ put: keys.index("container", n.path) });
  if (n.ttl !== undefined) ops.push({ put: keys.index("ttl", n.path) });
  if (n.owner === 0n) {
    // The kids key's first put counts as zero creates; children created in
    // the same transaction go in its bias.
    ops.push({ put: keys.attr(n.path, "kids"), value: biasValue(n.childCreates ?? 0) });
  }
  return ops;
}

/** A bias value: empty for 0, else the decimal number. */
export function biasValue(n: number): Uint8Array {
  return new TextEncoder().encode(n === 0 ? "" : String(n));
}
