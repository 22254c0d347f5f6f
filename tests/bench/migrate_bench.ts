/**
 * `deno task bench-migrate`: how fast a ZooKeeper tree moves into etcd with
 * `zetcd migrate`, side by side, in one run, with the copies the ZooKeeper
 * protocol alone allows (`zetcd dump` then `zetcd restore`, one request at
 * a time) into a second ZooKeeper 3.8 and into our server.
 *
 * The tree: BENCH_MIGRATE_NODES nodes (default 10,000) of 128 bytes, as
 * parents of 1,000 children each.
 *
 * @module
 */

import { startEtcd } from "../_util/etcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { startZetcd } from "../_util/zetcd.ts";
import { runZetcd } from "../_util/cli.ts";
import { ZkClient } from "../../src/client/client.ts";
import { dump, type DumpedNode, restore } from "../../src/cli/backup.ts";

const NODES = Number(Deno.env.get("BENCH_MIGRATE_NODES") ?? 10_000);
const PER_PARENT = 1000;

/** Creates the tree, pipelined a parent's children at a time. */
async function fill(zk: ZkClient): Promise<number> {
  const data = new Uint8Array(128).fill(97);
  let made = 0;
  for (let p = 0; made < NODES; p++) {
    await zk.create(`/p${p}`, data);
    made++;
    const children = Math.min(PER_PARENT, NODES - made);
    await Promise.all(
      Array.from({ length: children }, (_, i) => zk.create(`/p${p}/n${i}`, data)),
    );
    made += children;
  }
  return made;
}

/** Nodes per second of `fn`, which handles `n` nodes. */
async function rate(n: number, fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return n / ((performance.now() - started) / 1000);
}

if (import.meta.main) {
  await using source = await startZooKeeper();
  await using copy = await startZooKeeper();
  await using etcd = await startEtcd();
  const server = await startZetcd(etcd, { prefix: "/protocol/" });
  try {
    const zk = await ZkClient.connect(source.hostPort);
    const n = await fill(zk);
    await zk.close();
    console.log(`bench-migrate: a tree of ${n} nodes of 128 bytes in ZooKeeper 3.8`);

    const nodes: DumpedNode[] = [];
    const reader = await ZkClient.connect(source.hostPort);
    const dumpRate = await rate(n, () =>
      dump(reader, "/", (l) => {
        nodes.push(JSON.parse(l));
        return Promise.resolve();
      }));
    await reader.close();
    const restoreInto = async (address: string) => {
      const writer = await ZkClient.connect(address);
      try {
        return await rate(n, () => restore(writer, nodes));
      } finally {
        await writer.close();
      }
    };
    const intoZooKeeper = await restoreInto(copy.hostPort);
    const intoZetcd = await restoreInto(server.address);
    // One way: read and write in turn, as the two commands run.
    const through = (write: number) => 1 / (1 / dumpRate + 1 / write);

    const run = await runZetcd([
      "migrate",
      "--from",
      `zk://${source.hostPort}`,
      "--endpoints",
      etcd.endpoints[0],
      "--prefix",
      "/migrated/",
    ]);
    const copied = /copied (\d+) nodes in ([\d.]+) s .*peak RSS (\d+) MiB/.exec(run.stderr);
    const verified = /verified (\d+) nodes in ([\d.]+) s: (\d+) difference/.exec(run.stderr);
    if (run.code !== 0 || !copied || !verified) {
      throw new Error(`zetcd migrate failed (exit ${run.code}):\n${run.stderr}`);
    }
    const migrateRate = Number(copied[1]) / Number(copied[2]);
    const fmt = (x: number) => x.toFixed(0);
    console.log("| copy of the tree | nodes/s | zetcd migrate / this |");
    console.log("|---|---|---|");
    const row = (name: string, r: number) =>
      console.log(`| ${name} | ${fmt(r)} | ${(migrateRate / r).toFixed(2)} |`);
    row("ZooKeeper → ZooKeeper 3.8: zetcd dump, then restore (protocol)", through(intoZooKeeper));
    row("ZooKeeper → zetcd: zetcd dump, then restore (protocol)", through(intoZetcd));
    console.log(`| ZooKeeper → etcd: zetcd migrate | ${fmt(migrateRate)} | 1.00 |`);
    console.log(
      `dump alone ${fmt(dumpRate)} nodes/s; restore alone: into ZooKeeper ${fmt(intoZooKeeper)}, ` +
        `into zetcd ${fmt(intoZetcd)} nodes/s`,
    );
    console.log(
      `zetcd migrate: peak RSS ${copied[3]} MiB; verification read ${verified[1]} nodes in ` +
        `${verified[2]} s, ${verified[3]} differences`,
    );
  } finally {
    await server.close();
  }
}
