/**
 * Event-loop lag: how late a timer that should fire every 100 ms fires.
 * A server whose loop lags answers every client late, pings included, so
 * this is the first figure to look at under load.
 *
 * @module
 */

const EVERY_MS = 100;
/** Window over which the worst lag is kept. */
const WINDOW_MS = 10_000;

/** Measures the event loop's lag while started. */
export class LagMonitor {
  #timer?: ReturnType<typeof setInterval>;
  #expected = 0;
  /** Worst lag (ms) of each second of the window, newest last. */
  #worst: number[] = [0];
  #secondStarted = 0;
  /** Worst lag (ms) since start. */
  maxEver = 0;

  /** Starts measuring. */
  start(): void {
    this.#expected = performance.now() + EVERY_MS;
    this.#secondStarted = performance.now();
    this.#timer = setInterval(() => {
      const now = performance.now();
      const lag = Math.max(0, now - this.#expected);
      this.#expected = now + EVERY_MS;
      if (now - this.#secondStarted >= 1000) {
        this.#secondStarted = now;
        this.#worst.push(0);
        if (this.#worst.length > WINDOW_MS / 1000) this.#worst.shift();
      }
      const last = this.#worst.length - 1;
      if (lag > this.#worst[last]) this.#worst[last] = lag;
      if (lag > this.maxEver) this.maxEver = lag;
    }, EVERY_MS);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops measuring. */
  stop(): void {
    clearInterval(this.#timer);
  }

  /** Worst lag (ms) over the last 10 s. */
  get recentMax(): number {
    return Math.max(...this.#worst);
  }
}
