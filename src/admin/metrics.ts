/**
 * A small Prometheus registry: counters and histograms with labels, and
 * gauges read when scraped, rendered in the text exposition format. Every
 * family labelled by request uses one `op` vocabulary: the names of
 * `OpCode` ({@link opLabel}).
 *
 * @module
 */

import { COMMIT } from "../build_info.ts";
import { VERSION } from "../version.ts";
import * as proc from "./process.ts";
import { isUpdate, LatencySummary, opLabel } from "./stats.ts";

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** A series' key in its family's map: cheap, as it is made on every update. */
function seriesKey(labels: Labels): string {
  let key = "";
  for (const name in labels) key += `${name}\u0000${labels[name]}\u0001`;
  return key;
}

/** A counter family. */
export class Counter {
  readonly #values = new Map<string, [Labels, number]>();
  constructor(readonly name: string, readonly help: string) {}

  /** Adds `by` (default 1) to the series with `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    const key = seriesKey(labels);
    const entry = this.#values.get(key);
    if (entry) entry[1] += by;
    else this.#values.set(key, [labels, by]);
  }

  /** The value of the series with `labels` (0 if it has none yet). */
  value(labels: Labels = {}): number {
    return this.#values.get(seriesKey(labels))?.[1] ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [labels, v] of this.#values.values()) {
      lines.push(`${this.name}${labelText(labels)} ${v}`);
    }
    return lines.join("\n");
  }
}

/** Latency buckets in seconds, from 0.5 ms to 10 s. */
export const LATENCY_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  10,
];

/** A histogram family. */
export class Histogram {
  readonly #series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; n: number }
  >();
  constructor(readonly name: string, readonly help: string, readonly buckets = LATENCY_BUCKETS) {}

  /** Records one observation (seconds, for latencies). */
  observe(value: number, labels: Labels = {}): void {
    const key = seriesKey(labels);
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, s = { labels, counts: this.buckets.map(() => 0), sum: 0, n: 0 });
    // Cumulative buckets: every one from the first that holds the value.
    for (let i = this.buckets.length - 1; i >= 0 && value <= this.buckets[i]; i--) s.counts[i]++;
    s.sum += value;
    s.n++;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.#series.values()) {
      this.buckets.forEach((b, i) => {
        lines.push(
          `${this.name}_bucket${labelText({ ...s.labels, le: String(b) })} ${s.counts[i]}`,
        );
      });
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.n}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.n}`);
    }
    return lines.join("\n");
  }
}

/** `labels` with its `op` label, if any, made an {@link opLabel}. */
function withOpLabel(labels: Labels): Labels {
  return "op" in labels ? { ...labels, op: opLabel(labels.op) } : labels;
}

/** A counter family whose `op` label is always an {@link opLabel}. */
export class OpCounter extends Counter {
  /** Adds `by` to a series; `labels.op` may be a short name (`GETD`). */
  override inc(labels: Labels = {}, by = 1): void {
    super.inc(withOpLabel(labels), by);
  }
}

/** A histogram family whose `op` label is always an {@link opLabel}. */
export class OpHistogram extends Histogram {
  /** Records one observation; `labels.op` may be a short name (`GETD`). */
  override observe(value: number, labels: Labels = {}): void {
    super.observe(value, withOpLabel(labels));
  }
}

/**
 * A value read at scrape time (a gauge, or a counter kept elsewhere); no
 * sample when `read` gives null.
 */
export class Gauge {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => number | null,
    readonly options: { type?: "gauge" | "counter"; labels?: Labels } = {},
  ) {}

  render(): string {
    const lines = [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} ${this.options.type ?? "gauge"}`,
    ];
    const value = this.read();
    if (value !== null) lines.push(`${this.name}${labelText(this.options.labels ?? {})} ${value}`);
    return lines.join("\n");
  }
}

/** Prometheus' standard process metrics and this build's `zetcd_build_info`. */
function processGauges(): Gauge[] {
  return [
    new Gauge(
      "process_cpu_seconds_total",
      "User and system CPU time spent, seconds.",
      proc.cpuSeconds,
      { type: "counter" },
    ),
    new Gauge(
      "process_resident_memory_bytes",
      "Resident memory size, bytes.",
      proc.residentMemoryBytes,
    ),
    new Gauge(
      "process_virtual_memory_bytes",
      "Virtual memory size, bytes.",
      proc.virtualMemoryBytes,
    ),
    new Gauge("process_open_fds", "Open file descriptors.", proc.openFileDescriptors),
    new Gauge("process_max_fds", "Most open file descriptors allowed.", proc.maxFileDescriptors),
    new Gauge(
      "process_start_time_seconds",
      "When the process started, seconds since the epoch.",
      proc.startTimeSeconds,
    ),
    new Gauge(
      "zetcd_build_info",
      "This build: version, commit and Deno version; always 1.",
      () => 1,
      {
        labels: { version: VERSION, commit: COMMIT, deno: Deno.version.deno },
      },
    ),
  ];
}

/**
 * Request latencies: the Prometheus histogram by `op`, and ZooKeeper's
 * summaries of read and update latencies (`mntr`'s `zk_*_readlatency`,
 * `zk_*_updatelatency`).
 */
export class RequestLatency extends OpHistogram {
  /** Latencies of reads (and pings), ms. */
  readonly read = new LatencySummary();
  /** Latencies of updates ({@link isUpdate}), ms. */
  readonly update = new LatencySummary();

  /** Records one request that took `seconds`, labelled with its `op`. */
  override observe(seconds: number, labels: Labels = {}): void {
    super.observe(seconds, labels);
    const summary = isUpdate(opLabel(labels.op ?? "")) ? this.update : this.read;
    summary.add(seconds * 1000);
  }
}

/** The metrics of one server. */
export class Metrics {
  readonly requests = new OpCounter("zetcd_requests_total", "ZooKeeper requests by opcode.");
  readonly errors = new Counter("zetcd_errors_total", "ZooKeeper error replies by code.");
  readonly latency = new RequestLatency(
    "zetcd_request_duration_seconds",
    "Time to answer a ZooKeeper request, by opcode.",
  );
  readonly etcdLatency = new Histogram(
    "zetcd_etcd_request_duration_seconds",
    "Time of one etcd round trip, by kind.",
  );
  readonly divergences = new OpCounter(
    "zetcd_oracle_divergences_total",
    "Answers that differed from the cross-check oracle's (--oracle), by opcode.",
  );
  readonly dropped = new Counter(
    "zetcd_connections_dropped_total",
    "Connections refused or cut by a limit: max_connections, max_client_cnxns, not_reading.",
  );
  /** Values read at scrape time; the process metrics and build info come first. */
  readonly gauges: Gauge[] = processGauges();

  /** The Prometheus text of every metric. */
  render(): string {
    return [
      this.requests,
      this.errors,
      this.latency,
      this.etcdLatency,
      this.divergences,
      this.dropped,
      ...this.gauges,
    ]
      .map((m) => m.render()).join("\n") + "\n";
  }
}
