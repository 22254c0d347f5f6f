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

/** Per-key queues of writes, run a batch at a time. */
export class BatchQueue<In, Out> {
  readonly #queues = new Map<string, Pending<In, Out>[]>();
  readonly #run: (key: string, batch: Pending<In, Out>[]) => Promise<void>;
  readonly #limits: BatchLimits<In>;
  readonly #idle: (key: string) => void;

  /**
   * `run` settles every write of a batch (a throw rejects those it left);
   * `idle` is told when a key's queue empties (to drop what was kept for it).
   */
  constructor(
    run: (key: string, batch: Pending<In, Out>[]) => Promise<void>,
    limits: BatchLimits<In>,
    idle: (key: string) => void,
  ) {
    this.#run = run;
    this.#limits = limits;
    this.#idle = idle;
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
        await this.#run(key, batch);
      } catch (err) {
        for (const p of batch) p.done.reject(err); // a settled promise ignores this
      }
    }
    this.#queues.delete(key);
    this.#idle(key);
  }
}
