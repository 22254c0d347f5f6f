/**
 * Group commit for writes that contend on one etcd key: the creates under
 * one parent (its counter key), the setData calls on one node. Writes queue
 * per key; one batch at a time runs per key, and it takes every write that
 * arrived while the batch before it was in flight. Writes on different keys
 * never wait for each other.
 *
 * @module
 */

/** A queued write: its input and the promise its caller waits on. */
export interface Pending<In, Out> {
  input: In;
  done: PromiseWithResolvers<Out>;
}

/** How big one batch may grow. */
export interface BatchLimits<In> {
  /** Most writes in a batch. */
  items: number;
  /** A batch stops growing once its writes' sizes add up to this. */
  bytes: number;
  /** The size of one write. */
  size: (input: In) => number;
}

/**
 * Mutual exclusion by key, first come first served. A holder takes all its
 * keys at once (registered in one synchronous step), so it waits only for
 * holders that came before it on some key: there is no cycle to deadlock.
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier holder of any of `keys` has finished. */
  async hold<T>(keys: Iterable<string>, fn: () => Promise<T>): Promise<T> {
    const mine = Promise.withResolvers<void>();
    const before: Promise<void>[] = [];
    const held = [...new Set(keys)];
    for (const key of held) {
      const tail = this.#tails.get(key);
      if (tail) before.push(tail);
      this.#tails.set(key, mine.promise);
    }
    try {
      if (before.length > 0) await Promise.all(before);
      return await fn();
    } finally {
      mine.resolve();
      for (const key of held) {
        if (this.#tails.get(key) === mine.promise) this.#tails.delete(key);
      }
    }
  }
}

/** Per-key queues of writes, run a batch at a time. */
export class BatchQueue<In, Out> {
  readonly #queues = new Map<string, Pending<In, Out>[]>();
  readonly #run: (key: string, batch: Pending<In, Out>[]) => Promise<void>;
  readonly #limits: BatchLimits<In>;
  readonly #idle: (key: string) => void;

  readonly #lock?: { lock: KeyedLock; name: (key: string) => string };

  /**
   * `run` settles every write of a batch (a throw rejects those it left);
   * `idle` is told when a key's queue empties (to drop what was kept for it).
   * With `lock`, each batch runs holding `name(key)` there, so that a writer
   * outside the queue (a multi) can take its turn between batches.
   */
  constructor(
    run: (key: string, batch: Pending<In, Out>[]) => Promise<void>,
    limits: BatchLimits<In>,
    idle: (key: string) => void,
    lock?: { lock: KeyedLock; name: (key: string) => string },
  ) {
    this.#run = run;
    this.#limits = limits;
    this.#idle = idle;
    this.#lock = lock;
  }

  /** Queues a write under `key`; it starts at once if nothing runs for that key. */
  push(key: string, input: In): Promise<Out> {
    const pending = { input, done: Promise.withResolvers<Out>() };
    const queue = this.#queues.get(key);
    if (queue) queue.push(pending);
    else {
      this.#queues.set(key, [pending]);
      this.#drain(key);
    }
    return pending.done.promise;
  }

  async #drain(key: string): Promise<void> {
    const queue = this.#queues.get(key)!;
    const { items, bytes, size } = this.#limits;
    while (queue.length > 0) {
      let n = 0;
      let total = 0;
      while (n < queue.length && n < items && (n === 0 || total < bytes)) {
        total += size(queue[n].input);
        n++;
      }
      const batch = queue.splice(0, n);
      try {
        const lock = this.#lock;
        if (lock) await lock.lock.hold([lock.name(key)], () => this.#run(key, batch));
        else await this.#run(key, batch);
      } catch (err) {
        for (const p of batch) p.done.reject(err); // a settled promise ignores this
      }
    }
    this.#queues.delete(key);
    this.#idle(key);
  }
}
