/**
 * Group commit across keys. Single-node writes (creates, setData, delete,
 * setACL, and the per-key batches of {@link BatchQueue}) come here as etcd
 * transactions; one etcd call at a time is in flight, carrying every
 * transaction that arrived meanwhile as a nested transaction of one outer
 * transaction (they share its revision). Two transactions go together
 * only when neither writes a key the other compares, reads or writes: etcd
 * evaluates every compare before any write, and refuses a key written
 * twice, so only independent transactions can share a call — and then
 * running them together is the same as running them one after another.
 *
 * @module
 */

import { type EtcdClient, type Op, prefixEnd, type TxnResult, type TxnSpec } from "./client.ts";

/** Most transactions in one call (etcd allows 128 operations per branch). */
const MAX_TXNS = 64;

/** A call stops growing once its values add up to this (etcd refuses requests over 1.5 MiB). */
const MAX_BYTES = 1024 * 1024;

/** A key range `[start, end)`, as byte strings (one char per UTF-8 byte), so order is etcd's. */
interface Span {
  start: string;
  end: string;
}

/** What a transaction writes, and everything it touches (compares, reads and writes). */
interface Footprint {
  writeKeys: Set<string>;
  writeRanges: Span[];
  touchKeys: Set<string>;
  touchRanges: Span[];
}

/** A key as a byte string. */
function bytes(key: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(key)) return key;
  return String.fromCharCode(...new TextEncoder().encode(key));
}

/** The range of every key starting with `prefix`. */
function prefixSpan(prefix: string): Span {
  return { start: bytes(prefix), end: String.fromCharCode(...prefixEnd(prefix)) };
}

/** The footprint of a transaction. */
function footprintOf(t: TxnSpec): Footprint {
  const f: Footprint = {
    writeKeys: new Set(),
    writeRanges: [],
    touchKeys: new Set(),
    touchRanges: [],
  };
  for (const c of t.compare) {
    if ("prefix" in c && c.prefix) f.touchRanges.push(prefixSpan(c.key));
    else f.touchKeys.add(bytes(c.key));
  }
  const visit = (op: Op) => {
    if ("put" in op) {
      f.writeKeys.add(bytes(op.put));
      f.touchKeys.add(bytes(op.put));
    } else if ("del" in op) {
      if (op.prefix) {
        const span = prefixSpan(op.del);
        f.writeRanges.push(span);
        f.touchRanges.push(span);
      } else {
        f.writeKeys.add(bytes(op.del));
        f.touchKeys.add(bytes(op.del));
      }
    } else if (op.end !== undefined) {
      f.touchRanges.push({ start: bytes(op.from ?? op.get), end: bytes(op.end) });
    } else if (op.prefix) {
      f.touchRanges.push(prefixSpan(op.get));
    } else {
      f.touchKeys.add(bytes(op.get));
    }
  };
  t.success.forEach(visit);
  t.failure?.forEach(visit);
  return f;
}

function inRanges(key: string, ranges: Span[]): boolean {
  return ranges.some((r) => r.start <= key && key < r.end);
}

function overlap(a: Span[], b: Span[]): boolean {
  return a.some((x) => b.some((y) => x.start < y.end && y.start < x.end));
}

/** Whether `a`'s writes meet anything `b` touches. */
function writesMeet(a: Footprint, b: Footprint): boolean {
  for (const key of a.writeKeys) {
    if (b.touchKeys.has(key) || inRanges(key, b.touchRanges)) return true;
  }
  for (const key of b.touchKeys) if (inRanges(key, a.writeRanges)) return true;
  return overlap(a.writeRanges, b.touchRanges);
}

/** A transaction waiting for its call. */
interface Queued {
  spec: TxnSpec;
  /** Worked out only when another transaction could share its call. */
  footprint?: Footprint;
  bytes: number;
  done: PromiseWithResolvers<TxnResult>;
}

/** An etcd error that says the call was refused as a whole (nothing was applied). */
function refusedWhole(err: unknown): boolean {
  return /duplicate key|too many operations|too large|larger than max|invalid ?argument/i.test(
    String(err),
  );
}

/** Sends independent transactions together, one etcd call at a time. */
export class TxnBatcher {
  readonly #etcd: EtcdClient;
  #queue: Queued[] = [];
  #sending = false;

  constructor(etcd: EtcdClient) {
    this.#etcd = etcd;
  }

  /** Runs `spec`, together with the transactions it does not conflict with. */
  txn(spec: TxnSpec): Promise<TxnResult> {
    let size = 0;
    for (const op of spec.success) if ("put" in op) size += op.value?.byteLength ?? 0;
    const queued: Queued = { spec, bytes: size, done: Promise.withResolvers<TxnResult>() };
    this.#queue.push(queued);
    if (!this.#sending) this.#drain();
    return queued.done.promise;
  }

  async #drain(): Promise<void> {
    const footprint = (q: Queued) => q.footprint ??= footprintOf(q.spec);
    this.#sending = true;
    while (this.#queue.length > 0) {
      const batch: Queued[] = [];
      const rest: Queued[] = [];
      let total = 0;
      for (const q of this.#queue) {
        const fits = batch.length < MAX_TXNS &&
          (batch.length === 0 || total + q.bytes <= MAX_BYTES);
        if (
          fits &&
          batch.every((b) =>
            !writesMeet(footprint(b), footprint(q)) && !writesMeet(footprint(q), footprint(b))
          )
        ) {
          batch.push(q);
          total += q.bytes;
        } else rest.push(q);
      }
      this.#queue = rest;
      await this.#send(batch);
    }
    this.#sending = false;
  }

  async #send(batch: Queued[]): Promise<void> {
    const alone = (q: Queued) =>
      this.#etcd.txn(q.spec.compare, q.spec.success, q.spec.failure)
        .then((r) => q.done.resolve(r), (err) => q.done.reject(err));
    if (batch.length === 1) return await alone(batch[0]);
    try {
      const results = await this.#etcd.txnMany(batch.map((q) => q.spec));
      batch.forEach((q, i) => q.done.resolve(results[i]));
    } catch (err) {
      // Refused whole (nothing applied): each goes on its own. Otherwise the
      // outcome is unknown, and no write may be sent twice.
      if (refusedWhole(err)) await Promise.all(batch.map(alone));
      else for (const q of batch) q.done.reject(err);
    }
  }
}
