/**
 * Request statistics, per server and per connection, as ZooKeeper keeps
 * them for its four-letter words (`srvr`, `stat`, `cons`, `mntr`), and the
 * names of requests they are reported under.
 *
 * @module
 */

import { OPS } from "../zk/protocol.ts";

/** `n` to 4 decimals, as ZooKeeper prints a mean latency. */
function fourDecimals(n: number): number {
  return Math.round(n * 10000) / 10000;
}

/** Count, sum, min, max and mean of latencies, each in whole milliseconds as ZooKeeper's. */
export class LatencyStats {
  count = 0;
  sum = 0;
  min = 0;
  max = 0;

  /** Records one latency of `ms`; returns it in whole milliseconds. */
  add(ms: number): number {
    const rounded = Math.round(ms);
    if (this.count === 0 || rounded < this.min) this.min = rounded;
    if (rounded > this.max) this.max = rounded;
    this.count++;
    this.sum += rounded;
    return rounded;
  }

  /** Mean, ms, to 4 decimals (0 before the first sample). */
  get avg(): number {
    return this.count === 0 ? 0 : fourDecimals(this.sum / this.count);
  }
}

/** Samples kept for the percentiles of a {@link LatencySummary}. */
const WINDOW = 4096;

/**
 * ZooKeeper's summary of a latency (`zk_avg_readlatency`, `zk_p99_…`): the
 * {@link LatencyStats} since the start, and percentiles of the last 4096
 * samples.
 */
export class LatencySummary extends LatencyStats {
  readonly #window: number[] = [];
  #next = 0;

  /** Records one latency of `ms`; returns it in whole milliseconds. */
  override add(ms: number): number {
    const rounded = super.add(ms);
    if (this.#window.length < WINDOW) this.#window.push(rounded);
    else this.#window[this.#next] = rounded;
    this.#next = (this.#next + 1) % WINDOW;
    return rounded;
  }

  /** The `p`th percentile (0 < p < 100) of the recent samples, ms (0 before the first). */
  percentile(p: number): number {
    if (this.#window.length === 0) return 0;
    const sorted = [...this.#window].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  }
}

/** Packet counters and request latencies; `reset()` is `srst` / `crst`. */
export class Counters {
  received = 0;
  sent = 0;
  #latency = new LatencyStats();

  /** Records one answered request that took `ms`. */
  request(ms: number): void {
    this.#latency.add(ms);
  }

  /** Lowest latency, ms. */
  get minLatency(): number {
    return this.#latency.min;
  }

  /** Mean latency, ms, to 4 decimals. */
  get avgLatency(): number {
    return this.#latency.avg;
  }

  /** Highest latency, ms. */
  get maxLatency(): number {
    return this.#latency.max;
  }

  /** Starts counting afresh. */
  reset(): void {
    this.received = this.sent = 0;
    this.#latency = new LatencyStats();
  }
}

/** What `cons` shows of one connection. */
export interface ConnectionInfo {
  /** `host:port` of the client. */
  peer: string;
  counters: Counters;
  /** Session id once the handshake is done. */
  sessionId?: bigint;
  /** Negotiated session timeout, ms. */
  timeout?: number;
  /** Served read-only from the replica while etcd is unavailable (`--read-only-mode`). */
  readOnly?: boolean;
  /** When the connection was established, ms since the epoch. */
  established: number;
  /** Last operation's short name (ZooKeeper's `lop`), last xid and zxid, last response time and latency. */
  lastOp?: string;
  lastXid?: number;
  lastZxid?: bigint;
  lastResponse?: number;
  lastLatency?: number;
  /** Closes the connection. */
  close(): void;
}

/** ZooKeeper's four-letter short names of opcodes (`lop=` in `cons`), by opcode. */
export const SHORT_OP_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  [...OPS].map(([code, { short }]) => [code, short]),
);

/** Opcode name by short name (`GETD` → `getData`). */
const NAME_OF_SHORT = new Map([...OPS.values()].map(({ name, short }) => [short, name as string]));

/**
 * The `op` label of every Prometheus family: the request's name in
 * `OpCode` (`getData`), whether given that name or its short name
 * (`GETD`); anything else is returned as it is.
 */
export function opLabel(op: string): string {
  return NAME_OF_SHORT.get(op) ?? op;
}

/**
 * Requests that change the tree or the sessions: ZooKeeper's "update"
 * requests (transactions), whose latencies `mntr` reports apart from reads'.
 */
const UPDATES: ReadonlySet<string> = new Set(
  [...OPS.values()].filter((op) => op.update).map((op) => op.name as string),
);

/** Whether the request named `op` (an {@link opLabel}) is an update rather than a read. */
export function isUpdate(op: string): boolean {
  return UPDATES.has(op);
}
