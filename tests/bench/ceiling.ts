/**
 * `deno task bench-ceiling`: what etcd alone does with the write pipeline's
 * transaction, with no ZooKeeper server in the way. Starts a fresh etcd and
 * commits, one transaction in flight as the pipeline does, transactions
 * shaped like a batch of creates under one parent: the parent pinned, each
 * new node pinned absent, its node key put (layout 3), and one events key
 * (the `multi` log); a watch on the prefix reads every event back, as the
 * server's watch stream does. For each batch size it prints creates and
 * transactions per second, the time per transaction and etcd's CPU per
 * transaction.
 *
 * Set beside `deno task bench` (creates at 32 connections) and the pipeline's
 * batch size there, it tells how much of a create's time is etcd's and how
 * much the server's. CEILING_SIZES picks the batch sizes (default
 * 1,8,16,32,64), CEILING_SECONDS each one's time (default 3).
 *
 * @module
 */

import { startEtcd } from "../_util/etcd.ts";
import { absent, EtcdClient, type Op, unchanged } from "../../src/etcd/client.ts";
import { cpuSeconds } from "./usage.ts";

const SIZES = (Deno.env.get("CEILING_SIZES") ?? "1,8,16,32,64").split(",").map(Number);
const SECONDS = Number(Deno.env.get("CEILING_SECONDS") ?? 3);

/** A node's record as large as ours: 128 bytes of data and the header of format 2. */
const NODE = new Uint8Array(155);
/** About the bytes one create's events take in the `multi` log. */
const EVENT_BYTES = 40;

if (import.meta.main) {
  const etcd = await startEtcd();
  const client = EtcdClient.connect({ endpoints: etcd.endpoints });
  let events = 0;
  try {
    await client.txn([], [{ put: "/ceiling/n/p", value: NODE }]);
    const parent = (await client.txn([], [{ get: "/ceiling/n/p" }])).results[0]!.kvs[0];
    const stop = await client.watchPrefix(
      "/ceiling/",
      parent.modRevision,
      (batch) => events += batch.events.length,
      (err) => console.error(`watch: ${err.message}`),
    );
    console.log(`bench-ceiling: etcd alone, one transaction in flight, ${SECONDS} s per size`);
    console.log(
      "| creates per txn | creates/s | txn/s | ms per txn | etcd cores | etcd CPU per txn µs |",
    );
    console.log("| --- | --- | --- | --- | --- | --- |");
    let i = 0;
    for (const size of SIZES) {
      const multi = new Uint8Array(EVENT_BYTES * size);
      let txns = 0;
      const cpu0 = await cpuSeconds(etcd.pid);
      const t0 = performance.now();
      const until = t0 + SECONDS * 1000;
      while (performance.now() < until) {
        const compare = [unchanged("/ceiling/n/p", parent)];
        const success: Op[] = [];
        for (let j = 0; j < size; j++, i++) {
          compare.push(absent(`/ceiling/n/p/c${i}`));
          success.push({ put: `/ceiling/n/p/c${i}`, value: NODE });
        }
        success.push({ put: "/ceiling/multi", value: multi });
        const res = await client.txn(compare, success);
        if (!res.succeeded) throw new Error("a compare failed: is another writer on the prefix?");
        txns++;
      }
      const seconds = (performance.now() - t0) / 1000;
      const cpu = (await cpuSeconds(etcd.pid)) - cpu0;
      console.log(
        `| ${size} | ${Math.round((txns * size) / seconds).toLocaleString("en-US")} | ` +
          `${Math.round(txns / seconds).toLocaleString("en-US")} | ` +
          `${((1000 * seconds) / txns).toFixed(2)} | ${(cpu / seconds).toFixed(2)} | ` +
          `${Math.round((cpu * 1e6) / txns)} |`,
      );
    }
    await stop();
    console.log(`bench-ceiling: the watch read ${events.toLocaleString("en-US")} events`);
  } finally {
    client.close();
    await etcd.stop();
  }
}
