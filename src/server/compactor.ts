/**
 * Compaction of etcd's history, by one elected server among those sharing
 * a prefix. Without it etcd keeps every revision and slows down (the Go
 * zetcd never compacted).
 *
 * The election is a key, `P compactor`, created on a lease: the server
 * whose create succeeded compacts while it keeps the lease alive; if it
 * dies, the lease runs out and another server takes over. Every interval
 * the holder compacts up to the current revision minus `retain` revisions,
 * keeping a window of history for watch streams that are briefly behind.
 * Nothing of ZooKeeper's depends on older history: SetWatches reads the
 * current state, and a watch stream that falls behind a compaction starts
 * again from the current revision (and reloads the replica).
 *
 * etcd compacts the whole cluster, not one prefix, and removes history
 * other applications' watches may need: the compactor runs only when asked
 * for (`--compact-interval`); the local etcd the command line starts
 * compacts itself (etcd's auto-compaction). Whoever compacts, every server
 * runs a {@link HistoryCheck} that warns once when nobody does.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { absent, type EtcdClient, EtcdCompactedError } from "../etcd/client.ts";
import type { Keys } from "../store/keys.ts";

/** TTL of the election lease, s. */
const LEASE_TTL = 15;

/** Options of {@link Compactor}. */
export interface CompactorOptions {
  /** Time between compactions, ms. */
  intervalMs: number;
  /** Revisions kept behind the current one. */
  retain: number;
  /** Who this server is, written into the election key. */
  self: string;
}

/** Runs for election and, while elected, compacts etcd on a schedule. */
export class Compactor {
  readonly #etcd: EtcdClient;
  readonly #keys: Keys;
  readonly #log: Logger;
  readonly #options: CompactorOptions;
  #lease = 0n;
  #leader = false;
  #compacted = 0n;
  #timer?: ReturnType<typeof setInterval>;
  #busy = false;

  constructor(etcd: EtcdClient, keys: Keys, log: Logger, options: CompactorOptions) {
    this.#etcd = etcd;
    this.#keys = keys;
    this.#log = log;
    this.#options = options;
  }

  /** Whether this server is the elected compactor. */
  get leader(): boolean {
    return this.#leader;
  }

  /** The revision of this server's last compaction (0n: none yet). */
  get compacted(): bigint {
    return this.#compacted;
  }

  /** Starts: a round now, then one every interval (and lease renewals in between). */
  start(): void {
    const every = Math.min(this.#options.intervalMs, (LEASE_TTL * 1000) / 3);
    let last = 0;
    const round = () => {
      if (this.#busy) return;
      this.#busy = true;
      const compactNow = Date.now() - last >= this.#options.intervalMs;
      this.#round(compactNow).then(() => {
        if (compactNow) last = Date.now();
      }).catch((err) => {
        this.#log.warn("etcd compaction round failed: {err}", { err: String(err) });
      }).finally(() => this.#busy = false);
    };
    this.#timer = setInterval(round, every);
    round();
  }

  /** Stops, giving up the election. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    if (this.#lease !== 0n) await this.#etcd.revokeLease(this.#lease).catch(() => {});
  }

  async #round(compactNow: boolean): Promise<void> {
    const revision = await this.#elect();
    if (!this.#leader || !compactNow) return;
    const target = revision - BigInt(this.#options.retain);
    if (target <= this.#compacted || target <= 1n) return;
    try {
      await this.#etcd.compact(target);
    } catch (err) {
      // Someone compacted further already (etcd, an operator): nothing to do.
      if (!(err instanceof EtcdCompactedError)) throw err;
    }
    this.#log.info("compacted etcd history up to revision {revision}", {
      revision: Number(target),
    });
    this.#compacted = target;
  }

  /**
   * Keeps our lease alive and takes the election key if nobody holds it;
   * resolves to etcd's current revision.
   */
  async #elect(): Promise<bigint> {
    if (this.#lease !== 0n && (await this.#etcd.keepAliveOnce(this.#lease)) <= 0n) {
      this.#lease = 0n;
    }
    if (this.#lease === 0n) this.#lease = await this.#etcd.grantLease(LEASE_TTL);
    const key = this.#keys.compactor();
    const res = await this.#etcd.txn(
      [absent(key)],
      [{ put: key, value: new TextEncoder().encode(this.#options.self), lease: this.#lease }],
      [{ get: key }],
    );
    const holder = res.succeeded ? this.#lease : res.results[0]?.kvs[0]?.lease;
    const leader = holder === this.#lease;
    if (leader !== this.#leader) {
      this.#log.info(
        leader
          ? "elected to compact etcd history every {s} s, keeping {retain} revisions"
          : "no longer the server that compacts etcd history",
        { s: this.#options.intervalMs / 1000, retain: this.#options.retain },
      );
    }
    this.#leader = leader;
    return res.revision;
  }
}

/** Default of {@link HistoryCheckOptions.maxRevisions}. */
export const HISTORY_WARN_REVISIONS = 1_000_000;

/** Default of {@link HistoryCheckOptions.intervalMs}: 5 minutes. */
const HISTORY_CHECK_INTERVAL_MS = 300_000;

/** Options of {@link HistoryCheck}. */
export interface HistoryCheckOptions {
  /** Uncompacted revisions that are too many (default 1,000,000). */
  maxRevisions?: number;
  /** Time between checks, ms (default 5 minutes). */
  intervalMs?: number;
}

/**
 * Warns once when etcd keeps more than `maxRevisions` revisions of history
 * uncompacted: nobody compacts it (neither a compactor, nor etcd's own
 * auto-compaction, nor an operator), and etcd grows and slows until its
 * space quota stops every write. A check is two reads: etcd's revision, then
 * `key` as of `maxRevisions` revisions before it, which etcd refuses once
 * that revision is compacted.
 */
export class HistoryCheck {
  readonly #etcd: EtcdClient;
  readonly #key: string;
  readonly #log: Logger;
  readonly #maxRevisions: number;
  readonly #intervalMs: number;
  #timer?: ReturnType<typeof setInterval>;
  #warned = false;

  constructor(etcd: EtcdClient, key: string, log: Logger, options: HistoryCheckOptions = {}) {
    this.#etcd = etcd;
    this.#key = key;
    this.#log = log;
    this.#maxRevisions = options.maxRevisions ?? HISTORY_WARN_REVISIONS;
    this.#intervalMs = options.intervalMs ?? HISTORY_CHECK_INTERVAL_MS;
  }

  /** Checks now and every interval, until it has warned or is stopped. */
  start(): void {
    const run = () => {
      this.check().then((tooLong) => {
        if (tooLong) this.stop();
      }).catch(() => {/* etcd unavailable: the next round checks */});
    };
    this.#timer = setInterval(run, this.#intervalMs);
    run();
  }

  /** Stops checking. */
  stop(): void {
    clearInterval(this.#timer);
  }

  /** Whether etcd keeps more than `maxRevisions` revisions; warns the first time it does. */
  async check(): Promise<boolean> {
    const { revision } = await this.#etcd.read([{ get: this.#key, countOnly: true }]);
    const old = revision - BigInt(this.#maxRevisions);
    if (old < 1n) return false;
    try {
      await this.#etcd.read([{ get: this.#key, countOnly: true, revision: old }]);
    } catch (err) {
      if (err instanceof EtcdCompactedError) return false;
      throw err;
    }
    if (!this.#warned) {
      this.#warned = true;
      this.#log.warn(
        "etcd keeps more than {max} revisions of history uncompacted (it is at revision {revision}): it grows and slows until its space quota stops every write; have etcd compact it (--auto-compaction-mode=revision --auto-compaction-retention=10000), or zetcd with --compact-interval MS",
        { max: this.#maxRevisions, revision: Number(revision) },
      );
    }
    return true;
  }
}
