/**
 * ZooKeeper's one-shot watches, fed by this server's single etcd watch
 * stream over the namespace prefix. Each etcd change to a node key becomes
 * the ZooKeeper events it stands for and is delivered to the connections
 * that registered a matching watch before that change happened.
 *
 * @module
 */

import {
  type EtcdClient,
  EtcdCompactedError,
  type WatchBatch,
  type WatchEvent,
} from "../etcd/client.ts";
import type { Keys } from "../store/keys.ts";
import type { RevisionClock } from "../store/clock.ts";
import type { Replica } from "../etcd/replica.ts";
import type { NodeSnapshot } from "../store/nodes.ts";
import type { Stat } from "../zk/records.ts";
import { EventType } from "../zk/constants.ts";
import { parentOf } from "../zk/path.ts";
import { decodeEvents } from "../store/values.ts";

/** Where a connection receives notifications. */
export interface WatchSink {
  /** The session the watches belong to (for `wchc`, `wchp`). */
  sessionId: bigint;
  /** Called once per triggered watch; must not throw. */
  notify(type: EventType, path: string): void;
}

/**
 * ZooKeeper's watch tables: one-shot data (getData, exists) and child
 * (getChildren) watches, and addWatch's persistent and persistent-recursive
 * watches, which stay until removed. As in ZooKeeper, a persistent watch is
 * registered on both the data side and the child side, and removeWatches
 * of type Data or Children removes one side only.
 */
export type WatchTable =
  | "data"
  | "child"
  | "persistentData"
  | "persistentChild"
  | "recursiveData"
  | "recursiveChild";

/** Tables of one-shot watches, removed when they fire. */
const ONE_SHOT: ReadonlySet<WatchTable> = new Set(["data", "child"]);

/** One connection's watch on one path of one table. */
interface Watch {
  /** The revision it was set at: only later changes trigger it. */
  since: bigint;
  /** Set by exists on a node that was missing (a data watch waiting for a create). */
  missing: boolean;
}

type Registrations = Map<string, Map<WatchSink, Watch>>;

/**
 * The event a one-shot watch of `table` missed, judged from its node as it
 * is now (`stat`, null: missing), or null if the node did not change.
 */
function missedEvent(table: WatchTable, watch: Watch, stat: Stat | null): EventType | null {
  const { since, missing } = watch;
  if (table === "data" && missing) return stat ? EventType.NodeCreated : null;
  if (!stat || stat.czxid > since) return EventType.NodeDeleted;
  if (table === "child") return stat.pzxid > since ? EventType.NodeChildrenChanged : null;
  return stat.mzxid > since ? EventType.NodeDataChanged : null;
}

/** Watches of every connection of one server. */
export class WatchHub {
  readonly #tables: Record<WatchTable, Registrations> = {
    data: new Map(),
    child: new Map(),
    persistentData: new Map(),
    persistentChild: new Map(),
    recursiveData: new Map(),
    recursiveChild: new Map(),
  };
  #stop?: () => Promise<void>;
  #etcd?: EtcdClient;
  #stopped = false;
  #reopening = false;
  #reopenedAt = 0;
  /**
   * The stream fell behind a compaction and the copy has not been read
   * again since: a reopen that failed midway (etcd unreachable while the
   * copy loads) is still one, or the copy would stay unloaded for good.
   */
  #behind = false;
  readonly #keys: Keys;
  readonly #onError: (err: Error) => void;
  /** The in-memory copy of the prefix this stream keeps current, if any. */
  replica?: Replica;
  /** Receives every change that is not a node's (session records, attributes). */
  onOtherChange?: (event: WatchEvent) => void;
  /** Reads nodes as etcd has them now (null: missing): for the watches a compaction gap skipped. */
  readNodes?: (paths: string[]) => Promise<(NodeSnapshot | null)[]>;

  /** The clock this stream advances: how far its changes are delivered. */
  readonly #clock: RevisionClock;

  /** A hub for the namespace of `keys`, advancing `clock`. */
  constructor(keys: Keys, clock: RevisionClock, onError: (err: Error) => void) {
    this.#keys = keys;
    this.#clock = clock;
    this.#onError = onError;
  }

  /** Opens the etcd watch stream, starting after revision `after`. */
  async start(etcd: EtcdClient, after: bigint): Promise<void> {
    this.#clock.advance(after);
    this.#etcd = etcd;
    await this.#open(after + 1n);
  }

  async #open(from: bigint): Promise<void> {
    this.#stop = await this.#etcd!.watchPrefix(
      this.#keys.prefix,
      from,
      (batch) => this.#apply(batch),
      (err) => this.#reopen(err),
    );
  }

  /**
   * The etcd watch ended (etcd cancels a watch that fell behind a
   * compaction; the library itself reconnects after network errors): open
   * it again after the last revision delivered, or — if etcd no longer has
   * that history — from now on, saying that events were lost.
   */
  async #reopen(err: Error): Promise<void> {
    this.#onError(err);
    if (this.#stopped || this.#reopening) return;
    this.#reopening = true;
    // A watch cancelled again right after it was reopened is behind a
    // compaction (etcd 3.4 gives no reason with the cancellation).
    const compacted = this.#behind || err instanceof EtcdCompactedError ||
      Date.now() - this.#reopenedAt < 5000;
    try {
      // The old watch has ended: do not wait for its cancellation.
      this.#stop?.().catch(() => {});
      await new Promise((r) => setTimeout(r, 200));
      if (this.#stopped) return;
      if (compacted) {
        this.#behind = true;
        const { revision: zxid } = await this.#etcd!.read([{
          get: this.#keys.prefix,
          keysOnly: true,
          limit: 1,
        }]);
        this.#onError(
          new Error(
            `events after revision ${this.#clock.revision} were compacted away; watching again from ${zxid}: watches on nodes changed in between fire from the nodes as they are`,
          ),
        );
        this.#clock.advance(zxid);
        // The copy missed changes too: read it again at the new start.
        if (this.replica) {
          this.replica.invalidate();
          await this.replica.load(this.#etcd!, zxid);
        }
        await this.#fireMissed(zxid);
        this.#behind = false;
      }
      await this.#open(this.#clock.revision + 1n);
      this.#reopenedAt = Date.now();
    } catch (again) {
      this.#reopening = false;
      setTimeout(() => this.#reopen(again as Error), 1000);
      return;
    }
    this.#reopening = false;
  }

  /**
   * The events before revision `zxid` are lost (compacted away): each
   * one-shot watch set before it fires if its node changed since the watch
   * was set, judged from the node as it is now — as ZooKeeper's SetWatches
   * judges a reconnecting client's watches: a data watch NodeDeleted if the
   * node is gone (or gone and made again), NodeDataChanged if its data
   * changed, NodeCreated if an exists was waiting for it; a child watch
   * NodeDeleted, or NodeChildrenChanged if its children changed.
   * Persistent watches stay, and see the changes from `zxid` on.
   */
  async #fireMissed(zxid: bigint): Promise<void> {
    const paths = new Set<string>();
    for (const table of ONE_SHOT) {
      for (const [path, sinks] of this.#tables[table]) {
        for (const { since } of sinks.values()) if (since < zxid) paths.add(path);
      }
    }
    if (paths.size === 0 || !this.readNodes) return;
    const list = [...paths];
    const read = await this.readNodes(list);
    const nodes = new Map(list.map((p, i) => [p, read[i]]));
    // Each connection is told of one event on a path once (a deleted node's
    // data and child watches).
    const told = new Map<WatchSink, Set<string>>();
    for (const table of ONE_SHOT) {
      for (const [path, sinks] of this.#tables[table]) {
        const node = nodes.get(path);
        if (node === undefined) continue; // set after the gap
        for (const [sink, watch] of sinks) {
          if (watch.since >= zxid) continue;
          const type = missedEvent(table, watch, node?.stat ?? null);
          if (type === null) continue;
          sinks.delete(sink);
          const seen = told.get(sink) ?? new Set<string>();
          told.set(sink, seen);
          if (seen.has(`${type} ${path}`)) continue;
          seen.add(`${type} ${path}`);
          sink.notify(type, path);
        }
        if (sinks.size === 0) this.#tables[table].delete(path);
      }
    }
  }

  /** Closes the etcd watch stream and releases every waiter. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#stop?.();
    this.#clock.release();
  }

  /**
   * Registers a watch on `path` for `sink`, seen at `revision` (`missing`:
   * an exists on a node that was not there): only changes after that
   * revision trigger it. Registering twice keeps one watch.
   */
  add(table: WatchTable, path: string, sink: WatchSink, revision: bigint, missing = false): void {
    const byPath = this.#tables[table];
    let sinks = byPath.get(path);
    if (!sinks) byPath.set(path, sinks = new Map());
    const prev = sinks.get(sink);
    if (prev === undefined || revision < prev.since) sinks.set(sink, { since: revision, missing });
  }

  /** Whether `sink` has a watch on `path` in `table`. */
  has(table: WatchTable, path: string, sink: WatchSink): boolean {
    return this.#tables[table].get(path)?.has(sink) ?? false;
  }

  /** Removes `sink`'s watch on `path` in `table`; whether there was one. */
  remove(table: WatchTable, path: string, sink: WatchSink): boolean {
    const sinks = this.#tables[table].get(path);
    if (!sinks?.delete(sink)) return false;
    if (sinks.size === 0) this.#tables[table].delete(path);
    return true;
  }

  /** Drops every watch of `sink` (its connection closed). */
  removeAll(sink: WatchSink): void {
    for (const byPath of Object.values(this.#tables)) {
      for (const [path, sinks] of byPath) {
        if (sinks.delete(sink) && sinks.size === 0) byPath.delete(path);
      }
    }
  }

  /**
   * Every registered watch as [path, session id], one per path and
   * connection (the tables of a path merged), for `wchc`/`wchp`.
   */
  list(): [string, bigint][] {
    const seen = new Map<string, Set<WatchSink>>();
    for (const byPath of Object.values(this.#tables)) {
      for (const [path, sinks] of byPath) {
        const set = seen.get(path) ?? new Set();
        for (const sink of sinks.keys()) set.add(sink);
        seen.set(path, set);
      }
    }
    return [...seen].flatMap(([path, sinks]) =>
      [...sinks].map((s): [string, bigint] => [path, s.sessionId])
    );
  }

  /** Number of registered watches (path × connection × table). */
  count(): number {
    let n = 0;
    for (const byPath of Object.values(this.#tables)) for (const s of byPath.values()) n += s.size;
    return n;
  }

  #apply(batch: WatchBatch): void {
    // A multi writes the events it caused, in ZooKeeper's order: at its
    // revision those replace the events derived from its keys' changes.
    const scripted = new Map<bigint, [number, string][]>();
    for (const { type, kv } of batch.events) {
      if (type === "put" && kv.key === this.#keys.multiLog()) {
        scripted.set(kv.modRevision, decodeEvents(kv.value));
      }
    }
    // The copy first: a read made when a notification goes out sees its change.
    if (this.replica) {
      for (const { type, kv } of batch.events) {
        this.replica.apply(type, kv);
      }
    }
    let delivered = 0n;
    for (const event of batch.events) {
      const { type, kv } = event;
      const at = kv.modRevision;
      if (at > delivered) delivered = at;
      const script = scripted.get(at);
      if (script) {
        if (kv.key === this.#keys.multiLog()) {
          for (const [eventType, path] of script) this.#fireEvent(at, eventType, path);
        }
        continue;
      }
      const path = this.#keys.pathOfNode(kv.key);
      if (path === null) {
        this.onOtherChange?.(event);
        continue;
      }
      if (type === "delete") {
        this.#fireEvent(at, EventType.NodeDeleted, path);
        if (path !== "/") this.#fireEvent(at, EventType.NodeChildrenChanged, parentOf(path));
      } else if (kv.version === 1n) {
        this.#fireEvent(at, EventType.NodeCreated, path);
        if (path !== "/") this.#fireEvent(at, EventType.NodeChildrenChanged, parentOf(path));
      } else {
        this.#fireEvent(at, EventType.NodeDataChanged, path);
      }
    }
    this.#clock.advance(delivered);
  }

  /**
   * Fires one ZooKeeper event, set before revision `at`, at the watches it
   * triggers — each connection is notified once — and removes the one-shot
   * ones. NodeDeleted reaches data and child watches, NodeChildrenChanged
   * child watches, the others data watches; a persistent watch on the path
   * sees all of them, a recursive one on the path or an ancestor all but
   * NodeChildrenChanged.
   */
  #fireEvent(at: bigint, type: number, path: string): void {
    const deleted = type === EventType.NodeDeleted;
    const children = type === EventType.NodeChildrenChanged;
    const sides: ("data" | "child")[] = deleted
      ? ["data", "child"]
      : children
      ? ["child"]
      : ["data"];
    // Only tables holding watches are looked at: most writes have none.
    const tables = this.#tables;
    const matches: [WatchTable, string][] = [];
    for (const side of sides) {
      const persistent = side === "data" ? "persistentData" : "persistentChild";
      if (tables[side].size > 0) matches.push([side, path]);
      if (tables[persistent].size > 0) matches.push([persistent, path]);
      if (children) continue; // recursive watches never see NodeChildrenChanged
      const recursive = side === "data" ? "recursiveData" : "recursiveChild";
      if (tables[recursive].size === 0) continue;
      for (let p = path;; p = parentOf(p)) {
        matches.push([recursive, p]);
        if (p === "/") break;
      }
    }
    if (matches.length === 0) return;
    const notified = new Set<WatchSink>();
    for (const [table, p] of matches) {
      const sinks = this.#tables[table].get(p);
      if (!sinks) continue;
      for (const [sink, { since }] of sinks) {
        if (since >= at) continue;
        if (ONE_SHOT.has(table)) sinks.delete(sink);
        if (!notified.has(sink)) {
          notified.add(sink);
          sink.notify(type as EventType, path);
        }
      }
      if (sinks.size === 0) this.#tables[table].delete(p);
    }
  }
}
