/**
 * `deno task bench-scale`: memory and latency with a large tree. Writes
 * SCALE_NODES znodes (default 200,000; 1,000,000 takes several minutes)
 * straight into a fresh etcd in our layout: one parent with 100,000
 * children, the rest spread over 100 parents. Then starts servers on it and
 * reports the replica's load time, RSS per znode (against a server on an
 * empty prefix), and getChildren latency on the 100,000-child parent with
 * and without the replica.
 *
 * @module
 */

import { startEtcd } from "../_util/etcd.ts";
import { rssMiB, startServerProcess } from "../_util/server_process.ts";
import { TreeWriter } from "../_util/tree_writer.ts";
import { EtcdClient } from "../../src/etcd/client.ts";
import { ZkClient } from "../../src/client/client.ts";
import { OpCode } from "../../src/zk/constants.ts";
import * as R from "../../src/zk/records.ts";

const TOTAL = Number(Deno.env.get("SCALE_NODES") ?? 200_000);
const BIG = Math.min(100_000, Math.floor(TOTAL / 2));
const PARENTS = 100;
const PREFIX = "/scale/";
const value = new Uint8Array(128).fill(97);

/** Writes the tree: `/big` with BIG children, and PARENTS parents sharing the rest. */
async function fill(etcd: EtcdClient): Promise<void> {
  const tree = await TreeWriter.open(etcd, PREFIX, value);
  const rest = TOTAL - BIG - PARENTS - 1;
  const perParent = Math.ceil(rest / PARENTS);
  const paths: string[] = [];
  for (let i = 0; i < BIG; i++) paths.push(`/big/n${i}`);
  for (let p = 0; p < PARENTS; p++) {
    for (let i = 0; i < perParent && paths.length < TOTAL - PARENTS - 1; i++) {
      paths.push(`/p${p}/n${i}`);
    }
  }
  await etcd.txn([], [
    ...tree.node("/big", BIG),
    ...Array.from({ length: PARENTS }, (_, p) => tree.node(`/p${p}`, perParent)).flat(),
  ]).catch(async () => {
    // More than etcd's --max-txn-ops at once: one parent per transaction.
    await etcd.txn([], tree.node("/big", BIG));
    for (let p = 0; p < PARENTS; p++) await etcd.txn([], tree.node(`/p${p}`, perParent));
  });
  const started = performance.now();
  await tree.leaves(paths, (written) => {
    if (written % 50_000 < 25) {
      console.error(
        `scale: ${written} znodes written (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  });
}

async function childrenLatency(
  address: string,
  rounds = 30,
): Promise<{ p50: number; p99: number }> {
  const zk = await ZkClient.connect(address, { timeout: 30_000 });
  const times: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      const { children } = await zk.getChildren("/big");
      times.push(performance.now() - t0);
      if (children.length !== BIG) throw new Error(`${children.length} children, not ${BIG}`);
    }
  } finally {
    await zk.close();
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(rounds / 2)], p99: times[rounds - 1] };
}

/** ZooKeeper's sync on the big tree, p50 / p99 in ms. */
async function syncLatency(address: string, rounds = 50): Promise<{ p50: number; p99: number }> {
  const zk = await ZkClient.connect(address, { timeout: 30_000 });
  const times: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await zk.request(OpCode.sync, R.SyncRequest, { path: "/big" });
      times.push(performance.now() - t0);
    }
  } finally {
    await zk.close();
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(rounds / 2)], p99: times[rounds - 1] };
}

if (import.meta.main) {
  await using etcdProcess = await startEtcd();
  const etcd = EtcdClient.connect({ endpoints: etcdProcess.endpoints });
  const fillStarted = performance.now();
  await fill(etcd);
  // etcd may stall for seconds while it commits the last writes: let it settle first.
  const settling = performance.now();
  while (performance.now() - settling < 120_000) {
    const t = performance.now();
    await etcd.read([{ get: PREFIX, keysOnly: true, limit: 1 }]).catch(() => {});
    if (performance.now() - t < 500) break;
  }
  etcd.close();
  console.log(
    `scale: ${TOTAL} znodes (/big with ${BIG} children) written in ` +
      `${((performance.now() - fillStarted) / 1000).toFixed(0)} s`,
  );
  const start = (prefix: string, replica: boolean, listenWithinMs?: number) =>
    startServerProcess(
      etcdProcess.endpoints,
      prefix,
      ["--read-replica", String(replica)],
      listenWithinMs,
    );
  const empty = await start("/empty/", true);
  const baseline = await rssMiB(empty.pid);
  await empty.kill("SIGTERM");
  const started = performance.now();
  const server = await start(PREFIX, true, 600_000);
  const startSeconds = (performance.now() - started) / 1000;
  // The server serves at once (from etcd) while its replica loads.
  while (!/read replica: .*loaded/.test(server.output())) {
    if (performance.now() - started > 1_800_000) throw new Error("the replica did not load");
    await new Promise((r) => setTimeout(r, 200));
  }
  const loadSeconds = (performance.now() - started) / 1000;
  const rss = await rssMiB(server.pid);
  const loaded = /read replica: .*/.exec(server.output())?.[0] ?? "(no replica line)";
  const withReplica = await childrenLatency(server.address);
  const sync = await syncLatency(server.address);
  const rssAfter = await rssMiB(server.pid);
  await server.kill("SIGTERM");
  const direct = await start(PREFIX, false, 600_000);
  const withoutReplica = await childrenLatency(direct.address);
  const rssDirect = await rssMiB(direct.pid);
  await direct.kill("SIGTERM");
  const perNode = ((rssAfter - baseline) * 1024 * 1024) / TOTAL;
  console.log(
    `scale: server serving after ${startSeconds.toFixed(1)} s, its replica loaded after ` +
      `${loadSeconds.toFixed(1)} s; its log: ${loaded}`,
  );
  console.log(`| figure | value |`);
  console.log(`|---|---|`);
  console.log(`| znodes | ${TOTAL} |`);
  console.log(`| RSS, server on an empty prefix | ${baseline.toFixed(0)} MiB |`);
  console.log(
    `| RSS with the replica loaded | ${rss.toFixed(0)} MiB (${
      rssAfter.toFixed(0)
    } after the reads) |`,
  );
  console.log(`| RSS per znode | ${perNode.toFixed(0)} bytes |`);
  console.log(`| RSS with --read-replica false | ${rssDirect.toFixed(0)} MiB |`);
  console.log(
    `| getChildren of ${BIG} children, p50 / p99, replica | ${withReplica.p50.toFixed(0)} / ${
      withReplica.p99.toFixed(0)
    } ms |`,
  );
  console.log(`| sync, p50 / p99 | ${sync.p50.toFixed(1)} / ${sync.p99.toFixed(1)} ms |`);
  console.log(
    `| same, --read-replica false | ${withoutReplica.p50.toFixed(0)} / ${
      withoutReplica.p99.toFixed(0)
    } ms |`,
  );
}
