/**
 * `deno task bench`: the `zetcd bench` workloads against a real ZooKeeper
 * 3.8, against our server (a separate process on a fresh etcd) and, for
 * writes and reads, against that etcd directly, in one run on this machine,
 * at 1, 8 and 32 connections. Prints a table with the ratios us/ZooKeeper
 * and us/etcd, the latencies (raw etcd's p50 is the floor of a write's),
 * and our server's peak RSS; then, in a second table, what our
 * server's measured turns cost per operation (etcd's CPU, the server's CPU,
 * the keys and Txn requests etcd wrote), and the same for raw etcd.
 *
 * Each system first gets 1 s of the cell's load, not measured (a warm-up, for
 * every system alike); then the systems take turns, 1/3 of the cell's time
 * each, three times over, and each system's figures are those of its three
 * turns together: a noisy moment of the machine falls on one turn, not on
 * one system's whole cell. BENCH_SECONDS sets the measured time of each
 * system in each cell (default 3 s); BENCH_CONNS the
 * connection counts (default 1,8,32); BENCH_ROWS, if set, keeps only the
 * workloads whose name contains one of its comma-separated words.
 *
 * @module
 */

import { startEtcd } from "../_util/etcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { rssMiB, startServerProcess } from "../_util/server_process.ts";
import { Meter } from "./usage.ts";
import {
  type BenchOptions,
  type BenchResult,
  mergeResults,
  runBench,
} from "../../src/bench/load.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);
const CONNS = (Deno.env.get("BENCH_CONNS") ?? "1,8,32").split(",").map(Number);
const ONLY = Deno.env.get("BENCH_ROWS")?.split(",");

/**
 * A row of the table: a workload, the etcd operation that is its floor (if
 * any), and its connection counts when not BENCH_CONNS's.
 */
interface Row {
  name: string;
  options: Partial<BenchOptions>;
  etcd?: "create" | "set" | "get";
  conns?: number[];
}

const ROWS: Row[] = [
  { name: "create", options: { workload: "create" }, etcd: "create" },
  { name: "create sequential, one parent", options: { workload: "create", sequential: true } },
  { name: "setData, one znode", options: { workload: "set" }, etcd: "set" },
  { name: "getData, one znode", options: { workload: "get" }, etcd: "get" },
  { name: "mixed 90% get / 10% set", options: { workload: "mixed", readRatio: 0.9 } },
  { name: "watch notification", options: { workload: "watch" } },
  { name: "delete", options: { workload: "delete" } },
  // Pipelined: each connection keeps many requests in flight.
  {
    name: "create, 1000 in flight",
    options: { workload: "create", depth: 1000 },
    etcd: "create",
    conns: [1],
  },
  { name: "setData, 1000 in flight", options: { workload: "set", depth: 1000 }, conns: [1] },
  { name: "delete, 1000 in flight", options: { workload: "delete", depth: 1000 }, conns: [1] },
  { name: "create, 8 in flight", options: { workload: "create", depth: 8 }, conns: [8] },
];

/** Seconds of the same load, not measured, before each cell: the JIT and caches of each system settle on it. */
const WARM_UP_SECONDS = 1;

/** Turns each system takes in a cell. */
const ROUNDS = 3;

/**
 * A system under load: where it listens, the workload it runs, and the meter
 * of what its measured turns cost, if any.
 */
interface System {
  endpoints: string[];
  options: Partial<BenchOptions>;
  meter?: Meter;
}

/**
 * One cell for each system, the systems taking turns (see the module doc);
 * the results in the order of `systems`.
 */
async function cells(systems: System[], conns: number): Promise<BenchResult[]> {
  const run = ({ endpoints, options }: System, duration: number, meter?: Meter) =>
    runBench(
      {
        workload: "get",
        ...options,
        endpoints,
        conns,
        duration,
        keepLatencies: true,
        onMeasure: meter?.onMeasure,
      } as BenchOptions,
    );
  for (const system of systems) await run(system, WARM_UP_SECONDS);
  const turns: BenchResult[][] = systems.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, system] of systems.entries()) {
      turns[i].push(await run(system, SECONDS / ROUNDS, system.meter));
    }
  }
  return turns.map(mergeResults);
}

if (import.meta.main) {
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1];
  console.log(
    `bench: ${SECONDS} s per cell, connections ${CONNS.join("/")}, 128-byte values; ` +
      `${navigator.hardwareConcurrency} cores (${cpu ?? "unknown cpu"})`,
  );
  // Both sync their logs to disk before answering a write, as in production.
  const zookeeper = await startZooKeeper({ fsync: true, heap: "1g" });
  const etcd = await startEtcd();
  const server = await startServerProcess(etcd.endpoints, "/bench/", ["--max-client-cnxns", "0"]);
  let rssPeak = 0;
  const sampler = setInterval(async () => {
    rssPeak = Math.max(rssPeak, await rssMiB(server.pid).catch(() => 0));
  }, 500);
  const results: {
    row: Row;
    conns: number;
    zk: BenchResult;
    us: BenchResult;
    raw?: BenchResult;
    usMeter: Meter;
    rawMeter: Meter;
  }[] = [];
  try {
    for (const row of ROWS.filter((r) => !ONLY || ONLY.some((w) => r.name.includes(w)))) {
      for (const conns of row.conns ?? CONNS) {
        const usMeter = new Meter([etcd.pid, server.pid], etcd.clientUrl);
        const rawMeter = new Meter([etcd.pid], etcd.clientUrl);
        const systems: System[] = [
          { endpoints: [zookeeper.hostPort], options: row.options },
          { endpoints: [server.address], options: row.options, meter: usMeter },
        ];
        if (row.etcd) {
          systems.push({
            endpoints: etcd.endpoints,
            options: { workload: "etcd", etcdOp: row.etcd, depth: row.options.depth },
            meter: rawMeter,
          });
        }
        const [zk, us, raw] = await cells(systems, conns);
        results.push({ row, conns, zk, us, raw, usMeter, rawMeter });
        console.error(
          `bench: ${row.name} × ${conns}: ZooKeeper ${zk.opsPerSecond.toFixed(0)}, zetcd ` +
            `${us.opsPerSecond.toFixed(0)}${
              raw ? `, etcd ${raw.opsPerSecond.toFixed(0)}` : ""
            } ops/s`,
        );
      }
    }
  } finally {
    clearInterval(sampler);
    await server.kill("SIGTERM");
    await etcd.stop();
    await zookeeper.stop();
  }
  const n = (x: number) => x.toFixed(0).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const ms = (x: number) => x.toFixed(x < 10 ? 2 : 1);
  console.log(
    "\n| workload | conns | ZooKeeper ops/s | zetcd ops/s | raw etcd ops/s | zetcd / ZooKeeper | " +
      "zetcd / etcd | ZooKeeper p50 / p99 ms | zetcd p50 / p99 ms | raw etcd p50 ms | " +
      "p50 zetcd / ZooKeeper |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const { row, conns, zk, us, raw } of results) {
    const errors = zk.errors + us.errors + (raw?.errors ?? 0);
    console.log(
      `| ${row.name} | ${conns} | ${n(zk.opsPerSecond)} | ${n(us.opsPerSecond)} | ` +
        `${raw ? n(raw.opsPerSecond) : "—"} | ${
          (us.opsPerSecond / zk.opsPerSecond).toFixed(2)
        } | ` +
        `${raw ? (us.opsPerSecond / raw.opsPerSecond).toFixed(2) : "—"} | ` +
        `${ms(zk.p50)} / ${ms(zk.p99)} | ${ms(us.p50)} / ${ms(us.p99)} | ` +
        `${raw ? ms(raw.p50) : "—"} | ${(us.p50 / zk.p50).toFixed(2)} |` +
        (errors > 0 ? ` (${errors} errors)` : ""),
    );
  }
  console.log(`\nzetcd server process peak RSS: ${rssPeak.toFixed(0)} MiB`);

  console.log(
    "\nPer operation, over the measured turns only (CPU from /proc/<pid>/stat; keys: etcd's " +
      "put + delete counters; Txn: etcd's Txn requests):",
  );
  console.log(
    "\n| workload | conns | zetcd: etcd CPU µs | zetcd: server CPU µs | zetcd: etcd keys | " +
      "zetcd: etcd Txn | raw etcd: etcd CPU µs | raw etcd: etcd keys | raw etcd: etcd Txn |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  const µs = (seconds: number, ops: number) => ops > 0 ? n((seconds * 1e6) / ops) : "—";
  const per = (count: number, ops: number) => ops > 0 ? (count / ops).toFixed(2) : "—";
  for (const { row, conns, us, raw, usMeter: u, rawMeter: r } of results) {
    const figures = [
      µs(u.total.cpu[0], us.ops),
      µs(u.total.cpu[1], us.ops),
      per(u.total.keys, us.ops),
      per(u.total.txns, us.ops),
      ...(raw
        ? [µs(r.total.cpu[0], raw.ops), per(r.total.keys, raw.ops), per(r.total.txns, raw.ops)]
        : ["—", "—", "—"]),
    ];
    console.log(`| ${row.name} | ${conns} | ${figures.join(" | ")} |`);
  }
}
