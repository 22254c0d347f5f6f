/**
 * The write pipeline: every write of every session on this server, single
 * operations and multis alike, goes through it — as ZooKeeper's leader
 * prepares each request in order against its tree plus the changes it has
 * prepared but not yet committed (PrepRequestProcessor), logs many in one
 * group commit, then applies and answers them in order.
 *
 * Protocol:
 * 1. Writes queue in arrival order. One batch runs at a time: the writes
 *    queued when it starts (up to {@link MAX_BATCH}, or about
 *    {@link MAX_BATCH_BYTES} of data). It starts once the writers the
 *    batch before it answered are back with their next writes, or a full
 *    batch waits, or `GATHER_MS` has passed (`gate.ts`): etcd's
 *    cost is per transaction, so writers are gathered, not split.
 * 2. Prepare. The batch's writes are applied in order to a {@link Draft},
 *    which reads nodes from the replica once it shows the previous batch
 *    (else from etcd, every read as of one revision). Each write sees the
 *    writes before it, from any session; each decides its answer —
 *    success with its Stat and name, or ZooKeeper's error.
 * 3. Commit. One etcd transaction writes the final state of every node the
 *    batch touched (and the events, in order, for every server's watch
 *    stream), guarded by compares pinning every node as read — those an
 *    error answer was decided on too. A batch that only fails is still
 *    sent, its compares alone: an answer read from the replica holds only
 *    if etcd agrees (another server may have written since), as of now
 *    (the client makes such a transaction linearizable).
 * 4. Conflict. A compare that fails (another server wrote in between) voids
 *    the batch: its writes go back to the front of the queue, in order, and
 *    the next batch — those writes and whatever queued meanwhile — is
 *    prepared once the replica shows the revision the failure was seen at
 *    (the other server's write), as soon as that server prepares its own
 *    next batch. Nothing sleeps, and no other write waits behind a retry
 *    loop, so under contention the servers take turns; a write still not
 *    committed {@link CONFLICT_DEADLINE_MS} after its first conflict gets
 *    SYSTEMERROR. etcd refusing a batch (too large, or an ephemeral on a
 *    lease that is gone) splits it in halves, each run in turn, down to the
 *    write it refuses.
 * 5. Answer. Every write of the batch is told its result and the commit's
 *    revision; its handler answers once the watch stream has delivered it.
 *    A session's writes keep their order: they are queued in order, and
 *    each is prepared after (or in the same batch as) those before it.
 *
 * @module
 */

import { Code } from "../zk/constants.ts";
import { ZkError } from "../zk/errors.ts";
import type { Stat } from "../zk/records.ts";
import { EtcdCompactedError, EtcdLeaseNotFoundError, EtcdRefusedError } from "../etcd/client.ts";
import type { EtcdTree } from "./tree.ts";
import { encodeEvents } from "./values.ts";
import {
  Draft,
  type Failed,
  type Loader,
  type OpResult,
  settleStat,
  type WriteContext,
  type WriteOp,
} from "./changes.ts";
import { transaction } from "./commit.ts";
import { BatchGate } from "./gate.ts";

/** Most writes one batch prepares and commits together. */
const MAX_BATCH = 64;

/** A batch stops growing once its writes' data add up to this many bytes. */
const MAX_BATCH_BYTES = 512 * 1024;

/** How long a batch waits for the replica to show the last commit before reading etcd instead. */
const REPLICA_WAIT_MS = 100;

/**
 * How long a batch's transaction may wait for etcd. A call caught in an
 * etcd leader change waits out etcd's own request timeout (5 s plus two
 * election timeouts) while a new leader takes writes after about one
 * election timeout: past this deadline the batch's writes get
 * ConnectionLoss (their outcome unknown, as ZooKeeper's clients know it)
 * and the writes behind them go on. Far above a healthy commit (ms).
 */
const COMMIT_TIMEOUT_MS = 1500;

/**
 * How long a write may keep losing to other servers' writes before it gets
 * SYSTEMERROR: far longer than any contention measured (two servers writing
 * under one parent), shorter than a usual session timeout.
 */
const CONFLICT_DEADLINE_MS = 10_000;

/** A write: its operations (one, or a multi's), who writes, and what the session has seen. */
export interface WriteRequest extends WriteContext {
  ops: WriteOp[];
  /** The writer (its session): whom the next batch waits for once answered. */
  writer?: object;
  /** The revision the writer's session has seen: nothing older is read to prepare it. */
  atLeast: bigint;
}

/** What one operation did, with its Stat's zxids filled in. */
export type Done = OpResult<Stat>;

/** The answer to a write. */
export interface WriteOutcome {
  /** The commit's revision, or that of the snapshot a batch that wrote nothing read. */
  zxid: bigint;
  /** Whether the batch wrote: the answer waits until the watch stream delivered `zxid`. */
  wrote: boolean;
  /** Each operation's result, when the write succeeded. */
  results?: Done[];
  /** The failing operation, when it failed (nothing of it was written). */
  failed?: Failed;
}

interface Queued {
  req: WriteRequest;
  bytes: number;
  done: PromiseWithResolvers<WriteOutcome>;
  /** When its first batch failed on a conflict (ms since the epoch). */
  conflictedAt?: number;
  /** How many of its batches failed on a conflict. */
  conflicts?: number;
}

/** What a prepared batch is made of. */
interface Prepared {
  draft: Draft;
  outcomes: (OpResult[] | Failed)[];
  /** Revision of the first read. */
  readAt?: bigint;
}

/** What the pipeline has done since it started (for metrics). */
export interface PipelineCounts {
  /** Writes answered (a multi counts once). */
  writes: number;
  /** etcd transactions sent. */
  commits: number;
  /** Transactions that failed their compares: another server wrote what a batch read. */
  conflicts: number;
  /** Batches split in halves (refused by etcd). */
  splits: number;
}

/** The single write pipeline of one data tree. */
export class WritePipeline {
  /** Counts since start (see {@link PipelineCounts}). */
  readonly counts: PipelineCounts = { writes: 0, commits: 0, conflicts: 0, splits: 0 };
  readonly #tree: EtcdTree;
  #queue: Queued[] = [];
  #running = false;
  /** When the next batch starts. */
  readonly #gate = new BatchGate();
  /** The last commit's revision: the next batch reads no older state. */
  #floor = 0n;
  /** Most operations (compares, or writes) etcd takes in one transaction: its --max-txn-ops. */
  #maxOps: number;

  /**
   * `maxOps` is etcd's --max-txn-ops when known (a batch larger than it is
   * split before it is sent); a refusal lowers it.
   */
  constructor(tree: EtcdTree, options: { maxOps?: number } = {}) {
    this.#tree = tree;
    this.#maxOps = options.maxOps ?? Infinity;
  }

  /** Queues a write; resolves with its outcome (rejects when the outcome is unknown). */
  submit(req: WriteRequest): Promise<WriteOutcome> {
    const done = Promise.withResolvers<WriteOutcome>();
    const bytes = req.ops.reduce((n, op) => n + ("data" in op ? op.data?.byteLength ?? 0 : 0), 0);
    this.#queue.push({ req, bytes, done });
    this.#gate.arrived(req.writer);
    if (this.#nextBatch().full) this.#gate.release();
    if (!this.#running) this.#drain();
    return done.promise;
  }

  /**
   * How many writes at the head of the queue the next batch takes (up to
   * {@link MAX_BATCH}, or until their data reach {@link MAX_BATCH_BYTES}),
   * and whether that batch is full: no later write would join it.
   */
  #nextBatch(): { size: number; full: boolean } {
    let n = 0;
    let bytes = 0;
    while (n < this.#queue.length && n < MAX_BATCH && (n === 0 || bytes < MAX_BATCH_BYTES)) {
      bytes += this.#queue[n].bytes;
      n++;
    }
    return { size: n, full: n === MAX_BATCH || bytes >= MAX_BATCH_BYTES };
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        // A full batch goes at once; one with room waits for the writers expected.
        const gathering = this.#nextBatch().full ? null : this.#gate.wait();
        if (gathering) await gathering;
        await this.#runOrReject(this.#queue.splice(0, this.#nextBatch().size));
      }
    } finally {
      this.#running = false;
    }
  }

  /**
   * Prepares and commits `batch`, splitting it when etcd refuses it; returns
   * how many of its writes went back to the front of the queue (a conflict).
   */
  async #run(batch: Queued[]): Promise<number> {
    let prepared: Prepared | undefined;
    // Every fourth try of a write that keeps losing reads etcd itself, in
    // case what the replica shows is what keeps it losing.
    const suspect = batch.some((q) => (q.conflicts ?? 0) % 4 === 3);
    for (let fromEtcd = suspect; !prepared; fromEtcd = true) {
      try {
        prepared = await this.#prepare(batch, fromEtcd);
      } catch (err) {
        // The snapshot it read is gone: read the current one.
        if (!(err instanceof EtcdCompactedError) || fromEtcd) throw err;
      }
    }
    const committed = await this.#commit(batch, prepared);
    if (committed === "split") return await this.#halves(batch);
    if ("conflict" in committed) return this.#again(batch, committed.conflict);
    this.#answer(batch, prepared, committed);
    return 0;
  }

  /**
   * Another server wrote what `batch` read (etcd was at `revision` when its
   * compares failed): its writes go back to the front of the queue, in
   * order, and the next batch reads no older state than `revision`. A write
   * that has kept losing for {@link CONFLICT_DEADLINE_MS} gets SYSTEMERROR.
   */
  #again(batch: Queued[], revision: bigint): number {
    if (revision > this.#floor) this.#floor = revision;
    const now = Date.now();
    const again: Queued[] = [];
    for (const q of batch) {
      q.conflictedAt ??= now;
      q.conflicts = (q.conflicts ?? 0) + 1;
      if (now - q.conflictedAt <= CONFLICT_DEADLINE_MS) {
        again.push(q);
        continue;
      }
      const error = new ZkError(Code.SYSTEMERROR, undefined, "the write kept racing other writes");
      q.done.resolve({ zxid: 0n, wrote: false, failed: { index: 0, error } });
    }
    this.#queue.unshift(...again);
    return again.length;
  }

  /**
   * Runs the two halves of `batch` one after the other; a half that fails
   * fails alone. When the first half's writes went back to the queue, the
   * second's go right behind them.
   */
  async #halves(batch: Queued[]): Promise<number> {
    this.counts.splits++;
    const half = Math.ceil(batch.length / 2);
    const back = await this.#runOrReject(batch.slice(0, half));
    if (back === 0) return await this.#runOrReject(batch.slice(half));
    this.#queue.splice(back, 0, ...batch.slice(half));
    return back + batch.length - half;
  }

  /**
   * Runs `batch`; an error (its outcome unknown) rejects its writes not yet
   * answered. Returns how many of its writes went back to the queue.
   */
  async #runOrReject(batch: Queued[]): Promise<number> {
    try {
      return await this.#run(batch);
    } catch (err) {
      for (const q of batch) q.done.reject(err); // a settled promise ignores this
      return 0;
    }
  }

  /** Applies the batch's writes in order to a draft read from the replica or etcd. */
  async #prepare(batch: Queued[], fromEtcd: boolean): Promise<Prepared> {
    const tree = this.#tree;
    const replica = tree.replica;
    // The replica soon shows this server's last commit: wait for it. A
    // session may have seen a later revision elsewhere (another server's,
    // or one of etcd's not under the prefix): then read etcd at once.
    if (!fromEtcd && replica?.ready && replica.revision < this.#floor) {
      await tree.clock.reached(this.#floor, REPLICA_WAIT_MS);
    }
    let floor = this.#floor;
    for (const q of batch) if (q.req.atLeast > floor) floor = q.req.atLeast;
    const useReplica = !fromEtcd && replica !== undefined && replica.ready &&
      replica.revision >= floor;
    let readAt: bigint | undefined;
    const load: Loader = async (paths) => {
      const { zxid, nodes } = useReplica
        ? await tree.getMany(paths, { atLeast: floor })
        : await tree.getMany(paths, "etcd", readAt);
      if (readAt === undefined) readAt = zxid;
      return nodes;
    };
    const draft = new Draft(load, tree.now());
    const outcomes: (OpResult[] | Failed)[] = [];
    for (const q of batch) outcomes.push(await draft.apply(q.req.ops, q.req));
    return { draft, outcomes, readAt };
  }

  /** The batch's transaction: its revision, or why it must be tried again or split. */
  async #commit(
    batch: Queued[],
    { draft, readAt }: Prepared,
  ): Promise<{ zxid: bigint; wrote: boolean } | { conflict: bigint } | "split"> {
    const keys = this.#tree.keys;
    const { compare, success } = transaction(keys, draft.nodes, draft.now);
    const wrote = success.length > 0;
    // Answers that read nothing hold as they are. Error answers decided on
    // the replica are confirmed by their compares alone (a read of etcd):
    // the replica may not show another server's write acknowledged before
    // this one was sent — a create after another session's delete must
    // not be answered NodeExists, as ZooKeeper's leader never would.
    if (!wrote && compare.length === 0) {
      return { zxid: readAt ?? this.#tree.replica?.revision ?? 0n, wrote };
    }
    // The events in the order ZooKeeper fires them, for every server's
    // watch stream: etcd only shows the final state of each key.
    if (wrote) success.push({ put: keys.multiLog(), value: encodeEvents(draft.events) });
    const ops = Math.max(compare.length, success.length);
    if (ops > this.#maxOps && batch.length > 1) return "split";
    let res;
    this.counts.commits++;
    try {
      res = await this.#tree.etcd.txn(compare, success, [], { timeoutMs: COMMIT_TIMEOUT_MS });
    } catch (err) {
      // A write etcd refuses for what it is (too large, or an ephemeral of a
      // session whose lease is gone) must not take its batch down with it.
      if (err instanceof EtcdRefusedError && err.limit === "ops") {
        this.#maxOps = Math.min(this.#maxOps, ops - 1);
      }
      const refused = err instanceof EtcdRefusedError || err instanceof EtcdLeaseNotFoundError;
      if (refused && batch.length > 1) return "split";
      throw err;
    }
    if (!res.succeeded) {
      this.counts.conflicts++;
      return { conflict: res.revision };
    }
    if (!wrote) return { zxid: readAt ?? res.revision, wrote };
    this.#floor = res.revision;
    return { zxid: res.revision, wrote };
  }

  /** Tells every write of the batch its outcome. */
  #answer(
    batch: Queued[],
    { outcomes }: Prepared,
    { zxid, wrote }: { zxid: bigint; wrote: boolean },
  ): void {
    this.counts.writes += batch.length;
    const queued = new Set<object | undefined>();
    for (const q of this.#queue) queued.add(q.req.writer);
    this.#gate.answered(batch.map((q) => q.req.writer), (w) => queued.has(w));
    batch.forEach((q, i) => {
      const outcome = outcomes[i];
      if (!Array.isArray(outcome)) {
        q.done.resolve({ zxid, wrote, failed: outcome });
        return;
      }
      const results = outcome.map((r): Done =>
        "stat" in r ? { ...r, stat: settleStat(r.stat, zxid) } : r
      );
      q.done.resolve({ zxid, wrote, results });
    });
  }
}
