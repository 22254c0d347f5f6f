/**
 * Progress of a long copy, as `zetcd migrate`, `zetcd dump` and `zetcd
 * restore` print it on stderr: `N nodes in S s (R/s)`, a line due every
 * two seconds.
 *
 * @example
 * ```ts
 * const progress = new Progress();
 * for (const batch of [[1, 2], [3]]) {
 *   if (progress.count(batch.length)) console.error(`copying: ${progress.rate()}`);
 * }
 * console.error(`copied ${progress.rate()}`); // copied 3 nodes in 0.0 s (…/s)
 * ```
 *
 * @module
 */

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

/** Counts nodes and says when the next progress line is due. */
export class Progress {
  /** Nodes counted so far. */
  nodes = 0;
  readonly #everyMs: number;
  readonly #started = performance.now();
  #lastLine = this.#started;
  #peakRss = 0;

  /** A line falls due every `everyMs` (default 2000; 0: at every count). */
  constructor(everyMs = 2000) {
    this.#everyMs = everyMs;
  }

  /** Counts `n` more nodes; true when a progress line is due. */
  count(n: number): boolean {
    this.nodes += n;
    const now = performance.now();
    if (now - this.#lastLine < this.#everyMs) return false;
    this.#lastLine = now;
    return true;
  }

  /** `N nodes in S s (R/s)`. */
  rate(): string {
    const seconds = (performance.now() - this.#started) / 1000;
    const perSecond = (this.nodes / Math.max(seconds, 0.001)).toFixed(0);
    return `${this.nodes} nodes in ${seconds.toFixed(1)} s (${perSecond}/s)`;
  }

  /** `peak RSS M MiB`: the highest resident set size seen by this call or an earlier one. */
  peakRss(): string {
    this.#peakRss = Math.max(this.#peakRss, Deno.memoryUsage().rss);
    return `peak RSS ${mib(this.#peakRss)} MiB`;
  }
}
