/**
 * A load generator for any ZooKeeper endpoint (and for raw etcd, the floor
 * our writes are measured against), with the Go zetcd's `zkboom` workloads:
 * create, set, get, mixed, watch, etcd. Each connection keeps `depth`
 * requests in flight (pipelining); a global `rate` spaces requests evenly.
 * Reports ops/s and latency percentiles.
 *
 * @module
 */

import { ZkClient } from "../client/client.ts";
import { absent, EtcdClient } from "../etcd/client.ts";
import { CreateFlag, OpCode } from "../zk/constants.ts";
import * as R from "../zk/records.ts";

/** A workload. */
export type Workload = "create" | "set" | "get" | "mixed" | "watch" | "delete" | "etcd";

/** What to run. */
export interface BenchOptions {
  workload: Workload;
  /** ZooKeeper endpoints (or etcd endpoints for `etcd`); connections take them in turn. */
  endpoints: string[];
  /** Connections (sessions) (default 1). */
  conns?: number;
  /** Requests in flight per connection (default 1). */
  depth?: number;
  /** Stop after this many requests… */
  total?: number;
  /** …or after this many seconds (default 10 when `total` is absent). */
  duration?: number;
  /** Requests per second over all connections (default: as fast as answered). */
  rate?: number;
  /** Bytes of each created node's name (default 16). */
  keySize?: number;
  /** Bytes of data written (default 128). */
  valSize?: number;
  /** create: sequential nodes under one parent. */
  sequential?: boolean;
  /** create: ephemeral nodes. */
  ephemeral?: boolean;
  /** delete: nodes made for each connection before the run, to delete (default 30,000 / conns). */
  prefill?: number;
  /** mixed: share of reads (default 0.9). */
  readRatio?: number;
  /** etcd: `create` (Txn put guarded by create revision 0), `set` (Txn put) or `get` (range). */
  etcdOp?: "create" | "set" | "get";
  /** Called about once a second while running. */
  onProgress?: (line: string) => void;
  /** Keep every latency in the result (`latencies`), to merge runs with {@link mergeResults}. */
  keepLatencies?: boolean;
  /** Awaited when the measured run starts (sessions open) and when it ends (before clean-up). */
  onMeasure?: (phase: "start" | "end") => Promise<void> | void;
}

/** What a run measured. */
export interface BenchResult {
  workload: string;
  conns: number;
  ops: number;
  errors: number;
  seconds: number;
  opsPerSecond: number;
  /** Latency percentiles in ms. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Every latency in ms, ascending (with `keepLatencies`). */
  latencies?: Float64Array;
}

/**
 * One connection's way of doing one operation of the workload; resolves
 * false on an error, null when it has nothing left to do.
 */
type Step = (i: number) => Promise<boolean | null>;

/** Runs a workload and returns its figures. */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const conns = options.conns ?? 1;
  const depth = options.depth ?? 1;
  const run = crypto.randomUUID().slice(0, 8);
  const root = `/bench-${run}`;
  const value = new Uint8Array(options.valSize ?? 128).fill(97);
  const pad = "k".repeat(Math.max(0, (options.keySize ?? 16) - 12));
  const closers: (() => Promise<void>)[] = [];
  const steps: Step[] = [];
  try {
    if (options.workload === "etcd") {
      for (let c = 0; c < conns; c++) {
        const etcd = EtcdClient.connect({
          endpoints: [options.endpoints[c % options.endpoints.length]],
        });
        closers.push(() => Promise.resolve(etcd.close()));
        steps.push(etcdStep(etcd, options.etcdOp ?? "create", `${root}/c${c}`, value, pad));
      }
      if (options.etcdOp === "get" || options.etcdOp === "set") {
        const etcd = EtcdClient.connect({ endpoints: options.endpoints });
        await etcd.txn([], [{ put: `${root}/one`, value }]);
        etcd.close();
      }
    } else {
      const setup = await ZkClient.connect(options.endpoints[0]);
      await setup.create(root, null);
      await setup.create(`${root}/one`, value);
      await setup.close();
      for (let c = 0; c < conns; c++) {
        const address = options.endpoints[c % options.endpoints.length];
        const watcher = options.workload === "watch" ? await openWatcher(address) : null;
        const zk = await ZkClient.connect(address, { timeout: 30_000 });
        closers.push(async () => {
          await zk.close().catch(() => {});
          await watcher?.zk.close().catch(() => {});
        });
        if (options.workload === "delete") {
          const count = options.prefill ?? Math.ceil(30_000 / conns);
          await prefill(zk, `${root}/d${c}-`, count, value);
          steps.push(deleteStep(zk, `${root}/d${c}-`, count));
        } else steps.push(zkStep(zk, options, `${root}`, c, value, pad, watcher));
      }
    }
    await options.onMeasure?.("start");
    const result = await drive(options, steps, depth);
    await options.onMeasure?.("end");
    return result;
  } finally {
    await Promise.all(closers.map((close) => close()));
    // Leave nothing behind on a ZooKeeper being measured.
    if (options.workload !== "etcd") await removeTree(options.endpoints[0], root).catch(() => {});
  }
}

/** A second session holding a data watch, for the watch workload. */
async function openWatcher(address: string) {
  let fired: (() => void) | null = null;
  const zk = await ZkClient.connect(address, {
    timeout: 30_000,
    onEvent: () => fired?.(),
  });
  return {
    zk,
    /** Resolves when the next notification arrives. */
    next(): Promise<void> {
      return new Promise((resolve) => fired = resolve);
    },
  };
}

function zkStep(
  zk: ZkClient,
  options: BenchOptions,
  root: string,
  conn: number,
  value: Uint8Array,
  pad: string,
  watcher: Awaited<ReturnType<typeof openWatcher>> | null,
): Step {
  const one = `${root}/one`;
  const ok = () => true;
  const fail = () => false;
  const get = () => zk.getData(one).then(ok, fail);
  const set = () => zk.setData(one, value).then(ok, fail);
  switch (options.workload) {
    case "create": {
      const flags = (options.sequential ? CreateFlag.PERSISTENT_SEQUENTIAL : 0) |
        (options.ephemeral ? CreateFlag.EPHEMERAL : 0);
      return (i) =>
        zk.create(
          options.sequential ? `${root}/${pad}-` : `${root}/${pad}-${conn}-${i}`,
          value,
          flags,
        )
          .then(ok, fail);
    }
    case "set":
      return set;
    case "get":
      return get;
    case "mixed": {
      const reads = options.readRatio ?? 0.9;
      return () => Math.random() < reads ? get() : set();
    }
    case "watch": {
      // Each connection writes its own node; its watcher measures the notification.
      const node = `${root}/w${conn}`;
      let created = false;
      return async () => {
        if (!created) {
          await zk.create(node, value);
          created = true;
        }
        await watcher!.zk.request(OpCode.getData, R.GetDataRequest, { path: node, watch: true });
        const fired = watcher!.next();
        await zk.setData(node, value);
        await fired;
        return true;
      };
    }
    default:
      throw new Error(`unknown workload ${options.workload}`);
  }
}

/** Creates `prefix0` … `prefix(count − 1)`, 500 at a time. */
async function prefill(zk: ZkClient, prefix: string, count: number, value: Uint8Array) {
  for (let i = 0; i < count; i += 500) {
    const batch = Array.from({ length: Math.min(500, count - i) }, (_, j) => i + j);
    await Promise.all(batch.map((j) => zk.create(`${prefix}${j}`, value)));
  }
}

/** Deletes the nodes {@link prefill} made, one per step, until none is left. */
function deleteStep(zk: ZkClient, prefix: string, count: number): Step {
  let next = 0;
  return () => {
    if (next >= count) return Promise.resolve(null);
    return zk.delete(`${prefix}${next++}`).then(() => true, () => false);
  };
}

function etcdStep(
  etcd: EtcdClient,
  op: "create" | "set" | "get",
  prefix: string,
  value: Uint8Array,
  pad: string,
): Step {
  const one = `${prefix.slice(0, prefix.lastIndexOf("/"))}/one`;
  const ok = () => true;
  const fail = () => false;
  if (op === "get") return () => etcd.read([{ get: one }]).then(ok, fail);
  if (op === "set") return () => etcd.txn([], [{ put: one, value }]).then(ok, fail);
  return (i) => {
    const key = `${prefix}/${pad}-${i}`;
    return etcd.txn([absent(key)], [{ put: key, value }])
      .then((r) => r.succeeded, fail);
  };
}

/** Runs the steps `depth` at a time per connection until the total or the duration is reached. */
async function drive(options: BenchOptions, steps: Step[], depth: number): Promise<BenchResult> {
  const total = options.total ?? Infinity;
  const durationMs = options.total === undefined ? (options.duration ?? 10) * 1000 : Infinity;
  const latencies: number[] = [];
  let issued = 0;
  let errors = 0;
  const started = performance.now();
  let lastProgress = started;
  let lastOps = 0;
  const nextSlot = () => {
    if (issued >= total || performance.now() - started >= durationMs) return -1;
    return issued++;
  };
  const worker = async (step: Step) => {
    for (;;) {
      const i = nextSlot();
      if (i < 0) return;
      if (options.rate) {
        const due = started + (i * 1000) / options.rate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const t0 = performance.now();
      const ok = await step(i);
      if (ok === null) return;
      const t1 = performance.now();
      latencies.push(t1 - t0);
      if (!ok) errors++;
      if (options.onProgress && t1 - lastProgress >= 1000) {
        const rate = ((latencies.length - lastOps) * 1000) / (t1 - lastProgress);
        lastProgress = t1;
        lastOps = latencies.length;
        options.onProgress(
          `${((t1 - started) / 1000).toFixed(0)} s: ${latencies.length} ops, ${
            rate.toFixed(0)
          } ops/s, ` +
            `${errors} errors`,
        );
      }
    }
  };
  await Promise.all(steps.flatMap((step) => Array.from({ length: depth }, () => worker(step))));
  const seconds = (performance.now() - started) / 1000;
  const workload = options.workload === "etcd"
    ? `etcd ${options.etcdOp ?? "create"}`
    : options.workload;
  const result = summarize(workload, steps.length, errors, seconds, Float64Array.from(latencies));
  if (!options.keepLatencies) delete result.latencies;
  return result;
}

/** A result from its latencies (in any order). */
function summarize(
  workload: string,
  conns: number,
  errors: number,
  seconds: number,
  latencies: Float64Array,
): BenchResult {
  const sorted = latencies.sort();
  const pct = (p: number) =>
    sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return {
    workload,
    conns,
    ops: sorted.length,
    errors,
    seconds,
    opsPerSecond: sorted.length / seconds,
    p50: pct(0.5),
    p90: pct(0.9),
    p99: pct(0.99),
    max: sorted.length === 0 ? 0 : sorted[sorted.length - 1],
    latencies: sorted,
  };
}

/**
 * One result from several runs of the same workload (each made with
 * `keepLatencies`): operations and seconds add up, percentiles are those of
 * every latency together.
 */
export function mergeResults(runs: BenchResult[]): BenchResult {
  const all = new Float64Array(runs.reduce((n, r) => n + r.ops, 0));
  let at = 0;
  for (const r of runs) {
    if (!r.latencies) throw new Error("mergeResults needs runs made with keepLatencies");
    all.set(r.latencies, at);
    at += r.latencies.length;
  }
  return summarize(
    runs[0].workload,
    runs[0].conns,
    runs.reduce((n, r) => n + r.errors, 0),
    runs.reduce((s, r) => s + r.seconds, 0),
    all,
  );
}

/** Deletes `path` and everything under it. */
async function removeTree(address: string, path: string): Promise<void> {
  const zk = await ZkClient.connect(address);
  try {
    await zk.deleteAll(path);
  } finally {
    await zk.close();
  }
}

/** One line of figures. */
export function formatResult(r: BenchResult): string {
  const ms = (x: number) => x.toFixed(x < 10 ? 2 : 1);
  return `${r.workload}: ${r.ops} ops in ${
    r.seconds.toFixed(1)
  } s over ${r.conns} connection(s): ` +
    `${r.opsPerSecond.toFixed(0)} ops/s, ${r.errors} errors; latency ms p50 ${ms(r.p50)} ` +
    `p90 ${ms(r.p90)} p99 ${ms(r.p99)} max ${ms(r.max)}`;
}
