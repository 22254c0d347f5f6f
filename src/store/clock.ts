/**
 * The revision clock: the one place that knows how far this server has
 * caught up with etcd — the highest revision whose changes the watch stream
 * has delivered (applied to the replica, notifications sent) — and where
 * whatever must not run ahead of it waits.
 *
 * Read consistency rests on it and on each session's floor, the newest
 * revision the session has seen (`Session.saw`):
 * 1. A reply that reflects a change (a write's, or a read's newest) waits
 *    until the clock reaches the change's revision, so the change's
 *    notifications go out first (ZooKeeper: a client sees the event before
 *    the data). The session's floor then moves to that revision.
 * 2. A session's read comes from the replica only once the replica shows
 *    its floor, else from etcd (`EtcdTree`'s `ReadFrom`): a session never
 *    reads older state than it has seen, here or on another server.
 * 3. A write is prepared on the replica once it shows the writers' floors
 *    and this server's last commit (`WritePipeline`), else from etcd.
 * 4. A reply that reflects nothing in particular (ping, errors) carries the
 *    clock's revision as its zxid.
 *
 * Waits are bounded: a stream that stalls must not hold every reply
 * forever; the caller then checks {@link RevisionClock.revision}.
 *
 * @module
 */

/** How long a reply waits, at most, for the watch stream to deliver the change it reflects. */
export const CATCH_UP_LIMIT_MS = 2000;

/** How far the watch stream has delivered etcd's changes. */
export class RevisionClock {
  #revision = 0n;
  #waiters: { revision: bigint; resolve: () => void }[] = [];

  /** The highest revision delivered. */
  get revision(): bigint {
    return this.#revision;
  }

  /** The watch stream delivered every change up to `revision` (or starts after it). */
  advance(revision: bigint): void {
    if (revision <= this.#revision) return;
    this.#revision = revision;
    if (this.#waiters.length === 0) return;
    const ready = this.#waiters.filter((w) => w.revision <= revision);
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.revision > revision);
    for (const w of ready) w.resolve();
  }

  /** Resolves once `revision` is delivered, or after `ms` when it is not by then. */
  reached(revision: bigint, ms = CATCH_UP_LIMIT_MS): Promise<void> {
    if (revision <= this.#revision) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    const waiter = {
      revision,
      resolve: () => {
        clearTimeout(timer);
        resolve();
      },
    };
    const timer = setTimeout(() => {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
      resolve();
    }, ms);
    this.#waiters.push(waiter);
    return promise;
  }

  /** Releases every waiter (the watch stream has stopped). */
  release(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const w of waiting) w.resolve();
  }
}
