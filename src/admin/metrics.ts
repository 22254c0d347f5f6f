/**
 * A small Prometheus registry: counters and histograms with labels, and
 * gauges read when scraped, rendered in the text exposition format.
 *
 * @module
 */

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** A counter family. */
export class Counter {
  readonly #values = new Map<string, [Labels, number]>();
  constructor(readonly name: string, readonly help: string) {}

  /** Adds `by` (default 1) to the series with `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.#values.get(key);
    if (entry) entry[1] += by;
    else this.#values.set(key, [labels, by]);
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
    const key = labelText(labels);
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, s = { labels, counts: this.buckets.map(() => 0), sum: 0, n: 0 });
    this.buckets.forEach((b, i) => {
      if (value <= b) s.counts[i]++;
    });
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

/** A gauge whose value is read at scrape time. */
export class Gauge {
  constructor(readonly name: string, readonly help: string, readonly read: () => number) {}

  render(): string {
    return [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} gauge`,
      `${this.name} ${this.read()}`,
    ]
      .join("\n");
  }
}

/** The metrics of one server. */
export class Metrics {
  readonly requests = new Counter("zetcd_requests_total", "ZooKeeper requests by opcode.");
  readonly errors = new Counter("zetcd_errors_total", "ZooKeeper error replies by code.");
  readonly latency = new Histogram(
    "zetcd_request_duration_seconds",
    "Time to answer a ZooKeeper request, by opcode.",
  );
  readonly etcdLatency = new Histogram(
    "zetcd_etcd_request_duration_seconds",
    "Time of one etcd round trip, by kind.",
  );
  readonly divergences = new Counter(
    "zetcd_oracle_divergences_total",
    "Answers that differed from the cross-check oracle's (--oracle), by opcode.",
  );
  readonly dropped = new Counter(
    "zetcd_connections_dropped_total",
    "Connections refused or cut by a limit: max_connections, max_client_cnxns, not_reading.",
  );
  readonly gauges: Gauge[] = [];

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
