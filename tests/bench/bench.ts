/**
 * `deno task bench`: the same workloads against a real ZooKeeper 3.8 and
 * against our server (on a fresh etcd) on this machine, in one run, printed
 * side by side with ratios. Bounded to well under a minute.
 *
 * Workloads (one connection each, requests sent one after another):
 * - getData and setData on one znode, ops/s;
 * - create of persistent nodes, ops/s;
 * - watch latency: a second connection holds a data watch; the time from
 *   the writer's setData reply to the watcher's notification (and from the
 *   write's send to the notification).
 *
 * @module
 */

import { startEtcd } from "../_util/etcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { startZetcd } from "../_util/zetcd.ts";
import { RawClient } from "../_util/raw_client.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode } from "../../src/zk/constants.ts";
import type { JuteType } from "../../src/jute/schema.ts";

const OPEN_ACL = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];
const DURATION_MS = Number(Deno.env.get("BENCH_MS") ?? 3000);
const WATCH_ROUNDS = Number(Deno.env.get("BENCH_WATCH_ROUNDS") ?? 300);
const value = new Uint8Array(128).fill(97);

interface Result {
  getData: number;
  setData: number;
  create: number;
  watchAfterReply: number[];
  watchAfterSend: number[];
}

async function timed(fn: (i: number) => Promise<void>): Promise<number> {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < DURATION_MS) await fn(n++);
  return n / ((performance.now() - start) / 1000);
}

async function run(address: string): Promise<Result> {
  const [c] = await RawClient.session(address);
  const [watcher] = await RawClient.session(address);
  let xid = 0;
  const call = async <T>(op: number, type: JuteType<T>, v: T) => {
    await c.send(++xid, op, type, v);
    const r = await c.replySkippingEvents();
    if (r?.err !== 0) throw new Error(`op ${op} failed with ${r?.err}`);
  };
  await call(OpCode.create, R.CreateRequest, {
    path: "/bench",
    data: value,
    acl: OPEN_ACL,
    flags: 0,
  });
  const getData = await timed(() =>
    call(OpCode.getData, R.GetDataRequest, { path: "/bench", watch: false })
  );
  const setData = await timed(() =>
    call(OpCode.setData, R.SetDataRequest, { path: "/bench", data: value, version: -1 })
  );
  const create = await timed((i) =>
    call(OpCode.create, R.CreateRequest, {
      path: `/bench/n${i}`,
      data: value,
      acl: OPEN_ACL,
      flags: 0,
    })
  );
  const watchAfterReply: number[] = [];
  const watchAfterSend: number[] = [];
  let wxid = 0;
  for (let i = 0; i < WATCH_ROUNDS; i++) {
    await watcher.send(++wxid, OpCode.getData, R.GetDataRequest, { path: "/bench", watch: true });
    await watcher.reply();
    const event = watcher.reply().then(() => performance.now());
    const sent = performance.now();
    await call(OpCode.setData, R.SetDataRequest, { path: "/bench", data: value, version: -1 });
    const replied = performance.now();
    const got = await event;
    watchAfterReply.push(got - replied);
    watchAfterSend.push(got - sent);
  }
  c.close();
  watcher.close();
  return { getData, setData, create, watchAfterReply, watchAfterSend };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const fmt = (n: number) => n.toFixed(n < 10 ? 2 : 0);

if (import.meta.main) {
  console.log(`bench: ${DURATION_MS} ms per throughput workload, ${WATCH_ROUNDS} watch rounds`);
  const zookeeper = await startZooKeeper();
  const zk = await run(zookeeper.hostPort);
  await zookeeper.stop();
  const etcd = await startEtcd();
  const server = await startZetcd(etcd);
  const us = await run(server.address);
  await server.close();
  await etcd.stop();
  const rows: [string, number, number][] = [
    ["getData ops/s (1 conn)", zk.getData, us.getData],
    ["setData ops/s (1 conn)", zk.setData, us.setData],
    ["create ops/s (1 conn)", zk.create, us.create],
    [
      "watch: event after write reply, p50 ms",
      pct(zk.watchAfterReply, 50),
      pct(us.watchAfterReply, 50),
    ],
    [
      "watch: event after write reply, p99 ms",
      pct(zk.watchAfterReply, 99),
      pct(us.watchAfterReply, 99),
    ],
    [
      "watch: event after write sent, p50 ms",
      pct(zk.watchAfterSend, 50),
      pct(us.watchAfterSend, 50),
    ],
    [
      "watch: event after write sent, p99 ms",
      pct(zk.watchAfterSend, 99),
      pct(us.watchAfterSend, 99),
    ],
  ];
  console.log("| workload | ZooKeeper 3.8 | zetcd | zetcd / ZooKeeper |");
  console.log("|---|---|---|---|");
  for (const [name, a, b] of rows) {
    // A ratio of sub-millisecond latencies says nothing: leave it out.
    const ratio = Math.abs(a) < 0.5 ? "—" : (b / a).toFixed(2);
    console.log(`| ${name} | ${fmt(a)} | ${fmt(b)} | ${ratio} |`);
  }
  console.log(
    `rss of this process (zetcd in it): ${(Deno.memoryUsage().rss / 1048576).toFixed(0)} MiB`,
  );
}
