/**
 * The ZooKeeper data tree on etcd: its reads (a node's Stat, data and ACL
 * from its keys; from the replica when it may answer), the creation of the
 * root and system nodes, and sync. Every write of a client goes through
 * the write pipeline (`pipeline.ts`); the server's own deletes, through
 * the reapers (`reapers.ts`).
 *
 * @module
 */

import { OPEN_ACL } from "../zk/acl.ts";
import { baseName, depthOf, parentOf } from "../zk/path.ts";
import type { ACL } from "../zk/records.ts";
import {
  absent,
  type EtcdClient,
  type GetOp,
  type KeyValue,
  type Op,
  type RangeResult,
  type TxnResult,
  unchanged,
} from "../etcd/client.ts";
import { type Keys, LAYOUT_VERSION } from "./keys.ts";
import type { Replica } from "../etcd/replica.ts";
import { RevisionClock } from "./clock.ts";
import { counterOf, type NodeSnapshot, nodeWrites, statFrom } from "./nodes.ts";
import { decodeAcl, decodeBias, decodeMeta, decodeNode } from "./values.ts";

const READ_ACL: ACL[] = [{ perms: 1, id: { scheme: "world", id: "anyone" } }];

/** Every successful answer carries the etcd revision it was read or written at. */
export interface AtRevision {
  zxid: bigint;
}

/** Number of reads {@link EtcdTree.statReads} adds to a transaction. */
const STAT_READS = 3;

/** Nodes a walk of the replica visits between yields to other work. */
const WALK_SLICE = 1000;

/** Paths read per transaction, so a read stays under etcd's default of 128 operations. */
export const PATHS_PER_READ = 40;

/**
 * Where a read may be answered: only by etcd (linearizable), or by the
 * replica if it has reached revision `atLeast` (what the session has seen).
 */
export type ReadFrom = "etcd" | { atLeast: bigint };

export class EtcdTree {
  readonly etcd: EtcdClient;
  readonly keys: Keys;
  /** Clock for ctime/mtime; replaceable in tests. */
  now: () => bigint = () => BigInt(Date.now());

  /** The in-memory copy reads may be answered from (absent: every read goes to etcd). */
  replica?: Replica;

  /** How far the watch stream has delivered etcd's changes (see `clock.ts`). */
  readonly clock = new RevisionClock();

  /**
   * The answer to `reads` from the replica, when `from` allows it and the
   * replica has reached the revision asked for; null otherwise.
   */
  #fromReplica(reads: GetOp[], from: ReadFrom): TxnResult | null {
    return this.#replicaFor(from)?.read(reads) ?? null;
  }

  /** The replica, when `from` allows it and it has reached the revision asked for. */
  #replicaFor(from: ReadFrom): Replica | null {
    if (from === "etcd" || !this.replica?.ready) return null;
    return this.replica.revision < from.atLeast ? null : this.replica;
  }

  constructor(etcd: EtcdClient, keys: Keys) {
    this.etcd = etcd;
    this.keys = keys;
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
      [absent(k.layout())],
      success,
      [{ get: k.layout() }],
    );
    if (res.succeeded) return;
    const kv = res.results[0]!.kvs[0];
    const newer = this.newerLayout(kv?.value);
    if (newer) throw new Error(newer);
    if (kv && Number(new TextDecoder().decode(kv.value)) < LAYOUT_VERSION) {
      // An older layout is read as it is; the marker moves on so that a
      // server of an older release refuses the prefix: it would not read
      // the node records written since (see keys.ts).
      await this.etcd.txn([unchanged(k.layout(), kv)], [{
        put: k.layout(),
        value: new TextEncoder().encode(`${LAYOUT_VERSION}`),
      }]);
    }
  }

  /**
   * Why this server may not serve the prefix, in one line, when `marker`
   * (the value of `P layout`) names a newer layout than it reads; else null.
   */
  newerLayout(marker: Uint8Array | undefined): string | null {
    const stored = Number(new TextDecoder().decode(marker));
    if (!(stored > LAYOUT_VERSION)) return null;
    return `etcd prefix ${this.keys.prefix} holds layout version ${stored}; this server reads up to ${LAYOUT_VERSION}`;
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
    const { data, mtime, meta: inRecord } = decodeNode(node.value);
    // Layouts 1 and 2 kept the facts fixed at creation in `meta`, whose
    // mod revision is the czxid; layout 3 keeps them in the node record,
    // whose create revision is the czxid, and writes `meta` only where a
    // batch deletes and creates a node again (the node key lives on): when
    // there is one, it decides.
    const metaKv = attrs.get("meta");
    const meta = metaKv ? decodeMeta(metaKv.value) : inRecord;
    if (!meta) return null;
    const czxid = metaKv ? metaKv.modRevision : node.createRevision;
    const aclKv = attrs.get("acl");
    const kids = attrs.get("kids");
    const gone = attrs.get("gone");
    const numChildren = countR?.count ?? 0;
    const creates = kids ? counterOf(kids.version, decodeBias(kids.value)) : 0;
    let pzxid = czxid;
    if (kids && kids.modRevision > pzxid) pzxid = kids.modRevision;
    if (gone && gone.modRevision > pzxid) pzxid = gone.modRevision;
    return {
      path,
      data,
      acl: aclKv ? decodeAcl(aclKv.value) : OPEN_ACL,
      kvs: { node, kids, gone, acl: aclKv, meta: metaKv },
      mode: meta.mode,
      ttl: meta.ttl,
      creates,
      stat: statFrom({
        czxid,
        mzxid: node.modRevision,
        pzxid,
        ctime: meta.ctime,
        mtime,
        version: counterOf(node.version, decodeBias(attrs.get("vbias")?.value)),
        aversion: aclKv ? counterOf(aclKv.version, decodeBias(attrs.get("abias")?.value)) : 0,
        creates,
        numChildren,
        owner: meta.owner,
        data,
      }),
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
      const replica = this.#replicaFor(copy);
      if (replica) {
        // A node the replica does not hold is absent: nothing more to read.
        for (const p of chunk) {
          if (!replica.has(this.keys.node(p))) {
            nodes.push(null);
            continue;
          }
          const res = replica.read(this.statReads(p));
          if (!res) throw new Error(`the replica cannot answer the reads of ${p}`);
          nodes.push(this.snapshotAt(p, res.results, 0));
        }
        if (zxid === 0n) zxid = replica.revision;
        continue;
      }
      const reads = chunk.flatMap((p) => this.statReads(p));
      copy = "etcd";
      const res = await this.etcd.read(
        zxid === 0n ? reads : reads.map((r) => ({ ...r, revision: zxid })),
      );
      if (zxid === 0n) zxid = res.revision; // a pinned read's header has the current one
      chunk.forEach((p, j) => nodes.push(this.snapshotAt(p, res.results, j * STAT_READS)));
    }
    if (zxid === 0n) zxid = await this.revision();
    return { zxid, nodes };
  }

  /**
   * Visits `path` and every node under it, parents first, in the replica's
   * last known state (each with its node key), yielding to other work every
   * {@link WALK_SLICE} nodes: for what read-only service must count without
   * etcd. False when `path` does not exist; null when the replica cannot
   * answer (not loaded, or invalidated meanwhile).
   */
  async walkReplica(
    path: string,
    visit: (path: string, kv: KeyValue) => void,
  ): Promise<boolean | null> {
    const { replica, keys } = this;
    const read = (get: string, prefix = false) => {
      const res = replica?.read([{ get, prefix }]);
      return res ? res.results[0]!.kvs : undefined;
    };
    const top = read(keys.node(path));
    if (!top) return null;
    if (top.length === 0) return false;
    visit(path, top[0]);
    const pending = [path];
    for (let walked = 1; pending.length > 0; walked++) {
      if (walked % WALK_SLICE === 0) await new Promise((r) => setTimeout(r, 0));
      const children = read(keys.children(pending.pop()!), true);
      if (!children) return null;
      for (const kv of children) {
        const child = keys.pathOfNode(kv.key);
        if (child === null) continue;
        visit(child, kv);
        pending.push(child);
      }
    }
    return true;
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
}
