/**
 * An in-memory copy of every etcd key under the prefix, kept current by the
 * server's one watch stream, so that reads are answered at memory speed.
 *
 * It answers the same {@link GetOp} reads etcd does (single keys, and
 * prefix ranges of one "directory": a prefix ending in `/`, under which no
 * key has a further `/` — a node's children, a node's attributes), as of
 * the last revision the watch stream delivered. Any other read returns null
 * and goes to etcd. A read from the copy is not linearizable: like a
 * ZooKeeper follower, it may lag the newest write, and the caller makes
 * sure a session never reads older state than it has already seen.
 *
 * @module
 */

import {
  type EtcdClient,
  EtcdRefusedError,
  type GetOp,
  type KeyValue,
  type RangeResult,
  type TxnResult,
} from "./client.ts";

/**
 * Keys read per page while loading, at most. Larger pages cost etcd less
 * (etcd 3.4 counts every key to the end of the range for each page); a
 * page too large for one gRPC message (64 MiB: big values) is read again
 * in smaller pages.
 */
const MAX_PAGE = 100_000;

/** Bytes of values a page may hold before the next page is made smaller. */
const PAGE_BYTES = 16 * 1024 * 1024;

/** Changes held back while not loaded; past this many the oldest are dropped and the load starts again later. */
const MAX_PENDING = 500_000;

/** ACL values are shared by many nodes: equal ones are held once (up to this many kinds). */
const MAX_SHARED_ACLS = 10_000;

/** The directory of a key: everything up to and including its last `/`. */
function directoryOf(key: string): string {
  return key.slice(0, key.lastIndexOf("/") + 1);
}

/** The copy of one prefix. */
export class Replica {
  readonly #prefix: string;
  readonly #kvs = new Map<string, KeyValue>();
  readonly #dirs = new Map<string, Set<string>>();
  /** Distinct ACL values, by their bytes as a latin1 string. */
  readonly #acls = new Map<string, Uint8Array>();
  /** The ACL value held last: the next node's is usually the same. */
  #lastAcl?: Uint8Array;
  /** Revision the copy reflects; 0n while it is not loaded. */
  revision = 0n;
  /**
   * The revision of the last load: the copy already holds every change up to
   * it, so a change the watch stream delivers later at or below it (a watch
   * still catching up when the load read a newer revision) is old news and
   * must not roll the copy back.
   */
  #loadedAt = 0n;
  /** Changes from the watch stream that arrived while loading, to apply after. */
  #pending: { type: "put" | "delete"; kv: KeyValue }[] = [];
  /** The newest revision of a held change that was dropped (too many held): a load must be at or past it. */
  #droppedThrough = 0n;
  /** Counts loads and invalidations: a load that sees it move was abandoned. */
  #generation = 0;

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** Number of keys held. */
  get size(): number {
    return this.#kvs.size;
  }

  /** Whether the copy can answer reads. */
  get ready(): boolean {
    return this.revision > 0n;
  }

  /**
   * Replaces the copy with every key under the prefix as of `revision`,
   * read in pages. Changes the watch stream delivers meanwhile are held and
   * applied after, so the copy may load while the server serves (reads go
   * to etcd until it is ready). Throws if it fell too far behind (too many
   * changes held) or was invalidated meanwhile; load it again then.
   */
  async load(etcd: EtcdClient, revision: bigint): Promise<void> {
    const generation = ++this.#generation;
    this.revision = 0n;
    this.#empty();
    try {
      let from = this.#prefix;
      let page = MAX_PAGE;
      for (;;) {
        let res;
        try {
          res = await etcd.read([{
            get: this.#prefix,
            prefix: true,
            from,
            revision,
            limit: page,
          }]);
        } catch (err) {
          if (page === 1 || !(err instanceof EtcdRefusedError && err.limit === "bytes")) throw err;
          page = Math.max(1, Math.floor(page / 8));
          continue;
        }
        if (this.#generation !== generation) throw new Error("the load was abandoned");
        const kvs = res.results[0]!.kvs;
        let bytes = 0;
        for (const kv of kvs) {
          this.#put(kv);
          bytes += kv.value.byteLength;
        }
        if (kvs.length < page) break;
        from = kvs[kvs.length - 1].key + "\0";
        if (bytes > PAGE_BYTES) page = Math.max(1, Math.floor(page / 2));
        else if (bytes < PAGE_BYTES / 4) page = Math.min(MAX_PAGE, page * 2);
      }
      if (revision < this.#droppedThrough) {
        throw new Error(
          `changes up to revision ${this.#droppedThrough} were dropped while loading as of ${revision}`,
        );
      }
    } catch (err) {
      this.#empty(); // a partial copy must not linger in memory
      throw err;
    }
    // The changes held since the copy was last ready: those after the load's revision go on top.
    const held = this.#pending;
    this.#pending = [];
    this.#droppedThrough = 0n;
    this.revision = revision;
    this.#loadedAt = revision;
    for (const { type, kv } of held) this.apply(type, kv);
  }

  /** Drops every key of the copy. */
  #empty(): void {
    this.#kvs.clear();
    this.#dirs.clear();
  }

  /** Applies one change from the watch stream (held while loading; dropped while invalid). */
  apply(type: "put" | "delete", kv: KeyValue): void {
    if (!this.ready) {
      // Held until a load: every change since the copy was last ready, so
      // none between the watch's start and the load's revision is lost.
      this.#pending.push({ type, kv });
      if (this.#pending.length > MAX_PENDING) {
        // Too far behind: drop what is held; a load must then be at or past it.
        this.#droppedThrough = kv.modRevision;
        this.#pending = [];
      }
      return;
    }
    // Not `this.revision`: one revision's changes arrive one key at a time.
    if (kv.modRevision <= this.#loadedAt) return;
    if (type === "put") this.#put(kv);
    else this.#delete(kv.key);
    if (kv.modRevision > this.revision) this.revision = kv.modRevision;
  }

  /** Marks the copy unusable until the next {@link load} (a load under way is abandoned). */
  invalidate(): void {
    this.revision = 0n;
    this.#generation++;
  }

  #put(kv: KeyValue): void {
    if (kv.key.endsWith("/acl") && kv.value.byteLength <= 512) kv.value = this.#sharedAcl(kv.value);
    if (!this.#kvs.has(kv.key)) {
      const dir = directoryOf(kv.key);
      let keys = this.#dirs.get(dir);
      if (!keys) this.#dirs.set(dir, keys = new Set());
      keys.add(kv.key);
    }
    this.#kvs.set(kv.key, kv);
  }

  /** The one copy held of an ACL value equal to `value` (most nodes share the last one seen). */
  #sharedAcl(value: Uint8Array): Uint8Array {
    const last = this.#lastAcl;
    if (last && sameBytes(last, value)) return last;
    const text = String.fromCharCode(...value);
    let shared = this.#acls.get(text);
    if (!shared) {
      shared = value;
      if (this.#acls.size < MAX_SHARED_ACLS) this.#acls.set(text, value);
    }
    this.#lastAcl = shared;
    return shared;
  }

  #delete(key: string): void {
    if (!this.#kvs.delete(key)) return;
    const dir = directoryOf(key);
    const keys = this.#dirs.get(dir);
    keys?.delete(key);
    if (keys?.size === 0) this.#dirs.delete(dir);
  }

  /**
   * Answers `ops` from the copy as etcd would at {@link revision}, or null
   * when one of them is not a read the copy can answer.
   */
  read(ops: GetOp[]): TxnResult | null {
    if (!this.ready) return null;
    const results: RangeResult[] = [];
    for (const op of ops) {
      const r = this.#range(op);
      if (r === null) return null;
      results.push(r);
    }
    return { succeeded: true, revision: this.revision, results };
  }

  /** Whether the copy holds `key` (false also while it is not ready). */
  has(key: string): boolean {
    return this.ready && this.#kvs.has(key);
  }

  #range(op: GetOp): RangeResult | null {
    if (op.end !== undefined || op.from !== undefined || op.revision || op.newestFirst) {
      return null;
    }
    if (!op.prefix) {
      const kv = this.#kvs.get(op.get);
      const kvs = kv ? [kv] : [];
      return { kvs: op.countOnly ? [] : kvs, count: kvs.length };
    }
    if (!op.get.endsWith("/") || op.get === this.#prefix) return null;
    const keys = this.#dirs.get(op.get);
    const count = keys?.size ?? 0;
    if (op.countOnly || count === 0) return { kvs: [], count };
    let sorted = [...keys!].sort();
    if (op.limit) sorted = sorted.slice(0, op.limit);
    return { kvs: sorted.map((k) => this.#kvs.get(k)!), count };
  }
}

/** Whether two byte arrays hold the same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
