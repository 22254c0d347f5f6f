/**
 * `zetcd bench`: load any ZooKeeper endpoint (or etcd itself) with the Go
 * zetcd's `zkboom` workloads and print ops/s and latency percentiles.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type BenchOptions, formatResult, runBench, type Workload } from "../bench/load.ts";

/** Usage of `zetcd bench`. */
export const BENCH_USAGE = `Usage: zetcd bench [flags] WORKLOAD [workload flags]

Workloads:
  create [--key-size N] [--val-size N] [--sequential] [--ephemeral]
                                 create nodes (sequential ones all under one parent)
  set [--val-size N]             setData on one node
  get                            getData of one node
  mixed [--read-ratio R]         getData with probability R (default 0.9), else setData
  watch                          notification latency: each connection sets its node while a
                                 second session holds a data watch on it
  delete                         delete nodes each connection made before the run
                                 (30,000 over all connections), until none is left
  etcd [--etcd-op create|set|get]
                                 raw etcd through the same client library (--endpoints are
                                 etcd's): a Txn put guarded by "key absent", a put, or a range

Flags:
  --endpoints HOST:PORT[,...]    servers; connections take them in turn (default 127.0.0.1:2181)
  --conns N                      connections, each its own session (default 1)
  --depth N                      requests in flight per connection (default 1)
  --total N                      stop after N requests
  --duration S                   stop after S seconds (default 10 without --total)
  --rate R                       requests per second in all (default: as fast as answered)
  --json                         print the result as one JSON object

A progress line goes to stderr every second. Nodes are created under /bench-<random> and
deleted afterwards.
`;

const WORKLOADS = ["create", "set", "get", "mixed", "watch", "delete", "etcd"];

/** Runs `zetcd bench`; resolves to the exit code. */
export async function bench(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        endpoints: { type: "string", default: "127.0.0.1:2181" },
        conns: { type: "string", default: "1" },
        depth: { type: "string", default: "1" },
        total: { type: "string" },
        duration: { type: "string" },
        rate: { type: "string" },
        "key-size": { type: "string", default: "16" },
        "val-size": { type: "string", default: "128" },
        sequential: { type: "boolean", default: false },
        ephemeral: { type: "boolean", default: false },
        "read-ratio": { type: "string", default: "0.9" },
        "etcd-op": { type: "string", default: "create" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    });
  } catch (err) {
    console.error(`zetcd bench: ${(err as Error).message}\n${BENCH_USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    console.log(BENCH_USAGE);
    return 0;
  }
  const workload = parsed.positionals[0];
  const number = (name: string, s: string | undefined, min: number) => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}`);
    return n;
  };
  let options: BenchOptions;
  try {
    if (!workload || !WORKLOADS.includes(workload)) {
      throw new Error(`WORKLOAD must be one of ${WORKLOADS.join(", ")}`);
    }
    const etcdOp = v["etcd-op"];
    if (etcdOp !== "create" && etcdOp !== "set" && etcdOp !== "get") {
      throw new Error("--etcd-op must be create, set or get");
    }
    options = {
      workload: workload as Workload,
      endpoints: v.endpoints!.split(",").map((e) => e.trim()).filter(Boolean),
      conns: number("conns", v.conns, 1),
      depth: workload === "watch" ? 1 : number("depth", v.depth, 1),
      total: number("total", v.total, 1),
      duration: number("duration", v.duration, 0.1),
      rate: number("rate", v.rate, 0.1),
      keySize: number("key-size", v["key-size"], 1),
      valSize: number("val-size", v["val-size"], 0),
      sequential: v.sequential,
      ephemeral: v.ephemeral,
      readRatio: number("read-ratio", v["read-ratio"], 0),
      etcdOp,
      onProgress: (line) => console.error(`bench: ${line}`),
    };
  } catch (err) {
    console.error(`zetcd bench: ${(err as Error).message}\n${BENCH_USAGE}`);
    return 2;
  }
  const result = await runBench(options);
  console.log(v.json ? JSON.stringify(result) : formatResult(result));
  return result.errors > 0 ? 1 : 0;
}
