/**
 * Writes migrated nodes straight into our etcd layout (not through the
 * ZooKeeper protocol), so that each keeps its data, ACL, data and ACL
 * versions, children counter (hence cversion and future sequence numbers),
 * ctime and mtime. zxids are etcd revisions and cannot be kept.
 *
 * A batch is written in as few transactions as etcd allows (at most 120
 * operations and about 1 MiB each). Into a fresh prefix every node is a
 * create guarded by "the node key does not exist"; when that guard fails
 * (a resumed or merged copy), the batch's nodes are read and each one is
 * created, updated to the source's state, or left alone when it is already
 * equal. Re-running a copy therefore redoes no work, which is what makes it
 * resumable.
 *
 * @module
 */

import { SYSTEM_PATHS } from "../zk/path.ts";
import { absent, type Compare, type KeyValue, type Op, unchanged } from "../etcd/client.ts";
import type { EtcdTree } from "../store/tree.ts";
import { biasFor, type NodeSnapshot, nodeWrites } from "../store/nodes.ts";
import { encodeAcl, encodeNode } from "../store/values.ts";
import { createsOf, maskedDigestUser, sameBytes, type SourceNode } from "./source.ts";

/** How a copy starts: into an empty prefix, resuming an interrupted copy, or merging. */
export type CopyMode = "fresh" | "resume" | "merge";

/** Counts of what a copy did (or, dry, would do). */
export interface CopyCounts {
  created: number;
  updated: number;
  unchanged: number;
  /** Nodes left alone because the target holds an ephemeral node there. */
  conflicts: string[];
}

/** The record under `P migration`. */
interface MigrationRecord {
  v: 1;
  from: string;
  state: "running" | "done";
  started: string;
  finished?: string;
  nodes?: number;
}

const MAX_OPS = 120;
const MAX_BYTES = 1024 * 1024;
const MAX_ATTEMPTS = 5;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Thrown when the prefix already holds a tree and no merge was asked for. */
export class NotEmptyError extends Error {}

/** A prefix of our layout, written by a migration. */
export class MigrationTarget {
  readonly tree: EtcdTree;
  readonly dryRun: boolean;
  readonly counts: CopyCounts = { created: 0, updated: 0, unchanged: 0, conflicts: [] };
  #initialised = false;
  #mode: CopyMode = "fresh";

  constructor(tree: EtcdTree, dryRun = false) {
    this.tree = tree;
    this.dryRun = dryRun;
  }

  /**
   * Decides how the copy from `from` starts and (unless dry) initialises
   * the prefix and records the copy as running. A prefix holding more
   * than ZooKeeper's system nodes is refused unless `merge`, or unless it
   * holds an interrupted copy from the same source.
   */
  async prepare(from: string, merge: boolean): Promise<CopyMode> {
    const k = this.tree.keys;
    const res = await this.tree.etcd.read([
      { get: k.layout() },
      { get: k.migration() },
      { get: k.nodePrefix(), prefix: true, countOnly: true },
    ]);
    this.#initialised = res.results[0]!.kvs.length > 0;
    const markerKv = res.results[1]!.kvs[0];
    const marker = markerKv ? JSON.parse(decoder.decode(markerKv.value)) as MigrationRecord : null;
    const nodes = res.results[2]!.count;
    if (!this.#initialised || nodes <= SYSTEM_PATHS.length) this.#mode = "fresh";
    else if (marker?.from === from && marker.state === "running") this.#mode = "resume";
    else if (merge) this.#mode = "merge";
    else {
      throw new NotEmptyError(
        `etcd prefix ${k.prefix} already holds ${nodes - SYSTEM_PATHS.length} znodes besides ` +
          `/ and /zookeeper${
            marker ? ` (a ${marker.state} copy from ${marker.from})` : ""
          }; pass --merge to copy into it anyway`,
      );
    }
    if (!this.dryRun) {
      await this.tree.init();
      this.#initialised = true;
      await this.#record({
        v: 1,
        from,
        state: "running",
        started: this.#mode === "resume" ? marker!.started : new Date().toISOString(),
      });
    }
    return this.#mode;
  }

  /** Marks the copy finished. */
  async finish(from: string, nodes: number): Promise<void> {
    if (this.dryRun) return;
    const res = await this.tree.etcd.read([{ get: this.tree.keys.migration() }]);
    const kv = res.results[0]!.kvs[0];
    const started = kv ? (JSON.parse(decoder.decode(kv.value)) as MigrationRecord).started : "";
    await this.#record({
      v: 1,
      from,
      state: "done",
      started,
      finished: new Date().toISOString(),
      nodes,
    });
  }

  async #record(r: MigrationRecord): Promise<void> {
    await this.tree.etcd.txn([], [{
      put: this.tree.keys.migration(),
      value: encoder.encode(JSON.stringify(r)),
    }]);
  }

  /** Writes one batch (parents before children, parents of the first already written). */
  async write(batch: SourceNode[]): Promise<void> {
    for (const node of batch) refuseMasked(node);
    for (
      const chunk of chunks(batch.map((node) => ({ node, create: createOps(this.tree, node) })))
    ) {
      if (this.#mode === "fresh" && !this.dryRun) {
        const res = await this.tree.etcd.txn(
          chunk.map(({ node }) => this.#absent(node.path)),
          chunk.flatMap(({ create }) => create),
        );
        if (res.succeeded) {
          this.counts.created += chunk.length;
          continue;
        }
      }
      await this.#reconcile(chunk);
    }
  }

  /** Holds while `path` does not exist. */
  #absent(path: string): Compare {
    return absent(this.tree.keys.node(path));
  }

  /** Reads the nodes of `chunk` and brings each to the source's state. */
  async #reconcile(chunk: Planned[]): Promise<void> {
    for (let attempt = 1;; attempt++) {
      const { nodes } = this.#initialised
        ? await this.tree.getMany(chunk.map(({ node }) => node.path))
        : { nodes: chunk.map(() => null) };
      const compares: Compare[] = [];
      const ops: Op[] = [];
      const counts: CopyCounts = { created: 0, updated: 0, unchanged: 0, conflicts: [] };
      chunk.forEach(({ node: n, create }, i) => {
        const cur = nodes[i];
        if (!cur) {
          compares.push(this.#absent(n.path));
          ops.push(...create);
          counts.created++;
        } else if (cur.stat.ephemeralOwner !== 0n) {
          counts.conflicts.push(n.path);
        } else {
          const update = updateOps(this.tree, n, cur);
          if (update.length === 0) {
            counts.unchanged++;
            return;
          }
          compares.push(...unchangedSince(cur));
          ops.push(...update);
          counts.updated++;
        }
      });
      if (this.dryRun || ops.length === 0 || (await this.tree.etcd.txn(compares, ops)).succeeded) {
        this.counts.created += counts.created;
        this.counts.updated += counts.updated;
        this.counts.unchanged += counts.unchanged;
        this.counts.conflicts.push(...counts.conflicts);
        return;
      }
      if (attempt >= MAX_ATTEMPTS) {
        const [first, last] = [chunk[0].node.path, chunk.at(-1)!.node.path];
        throw new Error(
          `the target changed under ${first} … ${last} ${attempt} times ` +
            `while it was being written; stop the servers writing to ${this.tree.keys.prefix} and run again`,
        );
      }
    }
  }
}

/** A node to write, with the puts that would create it. */
interface Planned {
  node: SourceNode;
  create: Op[];
}

/** Splits a batch so that each part fits in one etcd transaction. */
function chunks(batch: Planned[]): Planned[][] {
  const out: Planned[][] = [];
  let cur: Planned[] = [];
  let ops = 0;
  let bytes = 0;
  for (const p of batch) {
    // An update can take two more operations than a create (vbias, abias).
    const o = p.create.length + 2;
    const b = (p.node.data?.byteLength ?? 0) + 512;
    if (cur.length > 0 && (ops + o > MAX_OPS || bytes + b > MAX_BYTES)) {
      out.push(cur);
      cur = [];
      ops = 0;
      bytes = 0;
    }
    cur.push(p);
    ops += o;
    bytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** The puts that create `n` as the source has it. */
function createOps(tree: EtcdTree, n: SourceNode): Op[] {
  return nodeWrites(tree.keys, {
    path: n.path,
    data: n.data,
    acl: n.acl,
    mode: n.mode,
    ttl: n.ttl,
    owner: 0n,
    lease: 0n,
    now: n.ctime,
    mtime: n.mtime,
    childCreates: createsOf(n),
    version: n.version,
    aversion: n.aversion,
  });
}

/**
 * The writes that turn the existing node `cur` into `n` (none when they
 * are equal). A counter kept as an etcd version plus a bias gets the bias
 * that makes the version after this put equal the source's.
 */
function updateOps(tree: EtcdTree, n: SourceNode, cur: NodeSnapshot): Op[] {
  const k = tree.keys;
  const ops: Op[] = [];
  /** The version of `kv` after one more put. */
  const next = (kv: KeyValue | undefined) => (kv?.version ?? 0n) + 1n;
  const meta = { ctime: n.ctime, mode: n.mode, owner: 0n, ttl: n.ttl };
  const metaChanged = n.ctime !== cur.stat.ctime || n.mode !== cur.mode || n.ttl !== cur.ttl;
  if (
    metaChanged || !sameBytes(n.data, cur.data) || n.mtime !== cur.stat.mtime ||
    n.version !== cur.stat.version
  ) {
    ops.push(
      { put: k.node(n.path), value: encodeNode({ data: n.data, mtime: n.mtime, meta }) },
      { put: k.attr(n.path, "vbias"), value: biasFor(n.version, next(cur.kvs.node)) },
    );
    // The record carries the new facts; a `meta` key an older layout wrote would override them.
    if (metaChanged && cur.kvs.meta) ops.push({ del: k.attr(n.path, "meta") });
  }
  if (
    !sameBytes(encodeAcl(n.acl), encodeAcl(cur.acl)) ||
    n.aversion !== cur.stat.aversion
  ) {
    ops.push(
      { put: k.attr(n.path, "acl"), value: encodeAcl(n.acl) },
      { put: k.attr(n.path, "abias"), value: biasFor(n.aversion, next(cur.kvs.acl)) },
    );
  }
  const creates = createsOf(n);
  if (creates !== cur.creates) {
    ops.push({ put: k.attr(n.path, "kids"), value: biasFor(creates, next(cur.kvs.kids)) });
  }
  if (metaChanged) {
    if (n.mode === 4) ops.push({ put: k.index("container", n.path) });
    if (n.ttl !== undefined) ops.push({ put: k.index("ttl", n.path) });
  }
  return ops;
}

/** Compares that hold while the keys an update is computed from are unchanged. */
function unchangedSince(cur: NodeSnapshot): Compare[] {
  const out: Compare[] = [];
  for (const kv of [cur.kvs.node, cur.kvs.acl, cur.kvs.kids]) {
    if (kv) out.push(unchanged(kv.key, kv));
  }
  return out;
}

/**
 * Throws for a node with an ACL entry its source showed masked (a digest
 * as `user:x`, to a reader without ADMIN on the node): written as shown,
 * the entry would lock its user out.
 */
function refuseMasked(node: SourceNode): void {
  for (const { id } of node.acl) {
    const user = maskedDigestUser(id.scheme, id.id);
    if (user === null) continue;
    throw new Error(
      `${node.path}: its ACL entry digest ${id.id} is masked (the source let this session read ` +
        `the node but not administer it); give ${user}'s credentials with ` +
        `--auth digest:${user}:PASSWORD`,
    );
  }
}
