/**
 * When the write pipeline starts its next batch: at once, or after a short
 * wait for the writers it has just answered to send their next writes.
 *
 * Why: etcd's cost is mostly per transaction, not per write. Clients that
 * wait for each answer (most do) come back a few hundred microseconds after
 * it; a batch started at once takes only the writes already queued, and
 * the writers answered a moment ago miss it and form a batch of their own.
 * At 32 connections the writers then split into cohorts of every size
 * (batches of 1 to 31 creates, about 15 on average), each paying for a
 * whole transaction. Waiting for them merges the cohorts: one batch of 32.
 *
 * Protocol:
 * 1. When a batch is answered, its writers that have nothing more queued
 *    are *away*: each is expected back with as many writes as it had in the
 *    batch.
 * 2. The next batch starts once the writes expected back have arrived, or
 *    the pipeline's queue holds a full batch, or {@link GATHER_MS} has
 *    passed since the answer — whichever comes first.
 * 3. Not every writer comes back (a session that only reads now, or that
 *    closed): how many are expected is the share that came back within a
 *    cycle before (a moving average), so a load that does not come back
 *    soon is not waited for.
 *
 * A client alone is never kept waiting: its next write is the one
 * expected. One pipelining its writes is not waited for while its next
 * writes are queued; once a burst of them is answered, it is expected back
 * with as many, and the next batch waits at most GATHER_MS if fewer come.
 *
 * @module
 */

/** Longest wait for the writers just answered: about one commit at 32 connections. */
export const GATHER_MS = 2;

/** Weight of the last cycle in the share of writers expected back. */
const RATE_WEIGHT = 0.25;

/** Decides when the next batch starts. */
export class BatchGate {
  /** Writers answered and not back yet, with the writes still expected of each. */
  #away = new Map<object, number>();
  /** Writes the last batch's writers were expected back with. */
  #total = 0;
  /** How many of them to wait for. */
  #expected = 0;
  /** How many came back since the last answer. */
  #back = 0;
  /** The share of writes expected back that came back within a cycle (moving average). */
  #rate = 1;
  /** When the wait ends at the latest (performance.now()). */
  #deadline = 0;
  #open: (() => void) | null = null;

  /**
   * A batch was answered: `writers`, one entry a write, are expected back,
   * but for those `stillQueued` (their next writes are already queued).
   */
  answered(writers: Iterable<object | undefined>, stillQueued: (writer: object) => boolean): void {
    if (this.#total > 0) {
      this.#rate += RATE_WEIGHT * (this.#back / this.#total - this.#rate);
    }
    this.#away.clear();
    this.#total = 0;
    for (const w of writers) {
      if (w === undefined || stillQueued(w)) continue;
      this.#away.set(w, (this.#away.get(w) ?? 0) + 1);
      this.#total++;
    }
    this.#back = 0;
    this.#expected = Math.round(this.#rate * this.#total);
    this.#deadline = performance.now() + GATHER_MS;
  }

  /** A write of `writer` was queued. */
  arrived(writer: object | undefined): void {
    if (writer === undefined) return;
    const left = this.#away.get(writer);
    if (left === undefined) return;
    if (left === 1) this.#away.delete(writer);
    else this.#away.set(writer, left - 1);
    this.#back++;
    if (this.#back >= this.#expected) this.release();
  }

  /** The queue holds a full batch: whoever waits goes now. */
  release(): void {
    this.#open?.();
  }

  /** Resolves when the next batch may start; null when it may start now. */
  wait(): Promise<void> | null {
    if (this.#back >= this.#expected) return null;
    const left = this.#deadline - performance.now();
    if (left <= 0) return null;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#open?.(), left);
      this.#open = () => {
        clearTimeout(timer);
        this.#open = null;
        resolve();
      };
    });
  }
}
