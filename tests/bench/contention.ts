/**
 * `deno task bench-contention`: writes under one parent from two servers on
 * one etcd prefix, against the same load on one server and on ZooKeeper 3.8.
 *
 * Two servers contend where one never does: a batch whose compares fail
 * because the other server wrote what it read is prepared again from etcd,
 * and split after a second conflict, so a write that keeps losing does not
 * hold up the others. This measures what that costs and that every write
 * finishes (no livelock, no error ZooKeeper would not give): for each
 * workload and connection count, ops/s, p50 / p99 latency and errors for
 * ZooKeeper, one server, and two servers with the connections alternating
 * between them; for our servers, the pipeline's etcd transactions,
 * conflicts and splits per 1,000 writes, from their `/metrics`.
 *
 * BENCH_SECONDS sets each measured run (default 3 s), BENCH_CONNS the
 * connection counts (default 8,32).
 *
 * @module
 */

import { startEtcd } from "../_util/etcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { type ServerProcess, startServerProcess } from "../_util/server_process.ts";
import { freePort } from "../_util/ports.ts";
import { type BenchOptions, runBench } from "../../src/bench/load.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);
const CONNS = (Deno.env.get("BENCH_CONNS") ?? "8,32").split(",").map(Number);

const WORKLOADS: { name: string; options: Partial<BenchOptions> }[] = [
  { name: "create sequential, one parent", options: { workload: "create", sequential: true } },
  { name: "create, one parent", options: { workload: "create" } },
  { name: "setData, one znode", options: { workload: "set" } },
];

/** The write pipeline's counters of one server, from its admin port. */
const COUNTERS = ["writes", "commits", "conflicts", "splits"] as const;
type Counts = Record<(typeof COUNTERS)[number], number>;

async function counts(adminPort: number): Promise<Counts> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const out = {} as Counts;
  for (const c of COUNTERS) {
    const m = new RegExp(`^zetcd_pipeline_${c}_total (\\d+)`, "m").exec(text);
    out[c] = Number(m?.[1] ?? 0);
  }
  return out;
}

/** The sum of the counters' growth over `ports` while `run` runs. */
async function counted<T>(ports: number[], run: () => Promise<T>): Promise<[T, Counts]> {
  const before = await Promise.all(ports.map(counts));
  const result = await run();
  const after = await Promise.all(ports.map(counts));
  const delta = {} as Counts;
  for (const c of COUNTERS) {
    delta[c] = after.reduce((n, a, i) => n + a[c] - before[i][c], 0);
  }
  return [result, delta];
}

async function server(endpoints: string[]): Promise<ServerProcess & { admin: number }> {
  const admin = await freePort();
  const s = await startServerProcess(endpoints, "/contention/", [
    "--max-client-cnxns",
    "0",
    "--admin-addr",
    `127.0.0.1:${admin}`,
  ]);
  return Object.assign(s, { admin });
}

if (import.meta.main) {
  const zookeeper = await startZooKeeper({ fsync: true, heap: "1g" });
  const etcd = await startEtcd();
  const a = await server(etcd.endpoints);
  const b = await server(etcd.endpoints);
  const rows: string[] = [];
  const fmt = (n: number, digits = 0) =>
    n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  try {
    for (const w of WORKLOADS) {
      for (const conns of CONNS) {
        const run = (endpoints: string[]) =>
          runBench({ ...w.options, endpoints, conns, duration: SECONDS } as BenchOptions);
        // A warm-up of each, not measured.
        for (const e of [[zookeeper.hostPort], [a.address, b.address]]) {
          await runBench({ ...w.options, endpoints: e, conns, duration: 1 } as BenchOptions);
        }
        const zk = await run([zookeeper.hostPort]);
        const [one, oneCounts] = await counted([a.admin], () => run([a.address]));
        const [two, twoCounts] = await counted(
          [a.admin, b.admin],
          () => run([a.address, b.address]),
        );
        const per1000 = (c: Counts, k: keyof Counts) => fmt((1000 * c[k]) / Math.max(1, c.writes));
        rows.push(
          `| ${w.name} | ${conns} | ${fmt(zk.opsPerSecond)} | ${fmt(one.opsPerSecond)} | ` +
            `${fmt(two.opsPerSecond)} | ${fmt(two.opsPerSecond / zk.opsPerSecond, 2)} | ` +
            `${fmt(zk.p50, 2)} / ${fmt(zk.p99, 1)} | ${fmt(one.p50, 2)} / ${fmt(one.p99, 1)} | ` +
            `${fmt(two.p50, 2)} / ${
              fmt(two.p99, 1)
            } | ${zk.errors} / ${one.errors} / ${two.errors} | ` +
            `${per1000(oneCounts, "commits")} / ${per1000(twoCounts, "commits")} | ` +
            `${per1000(twoCounts, "conflicts")} | ${per1000(twoCounts, "splits")} |`,
        );
        console.error(`contention: ${rows[rows.length - 1]}`);
      }
    }
  } finally {
    await a.kill("SIGTERM");
    await b.kill("SIGTERM");
    await etcd.stop();
    await zookeeper.stop();
  }
  console.log(
    "\n| workload | conns | ZooKeeper ops/s | one server ops/s | two servers ops/s | two / ZooKeeper | " +
      "p50 / p99 ms: ZooKeeper | one server | two servers | errors: ZK / one / two | " +
      "etcd Txn per 1,000 writes: one / two | conflicts per 1,000 writes (two) | splits per 1,000 writes (two) |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
}
