/**
 * `deno task leader-kill`: how long writes stall when etcd's leader dies
 * under load. A three-member etcd (election timeout 500 ms), two servers on
 * it, 16 sessions of node-zookeeper-client spread over both, each setting
 * its own node in a loop; after 3 s the etcd leader is killed (SIGKILL).
 * Prints how long after the kill the first write (sent after the kill) was
 * acknowledged, the longest time no write was acknowledged, how many
 * writes got ConnectionLoss, and whether every session lived.
 *
 * @module
 */

import { startEtcdCluster } from "../_util/etcd_cluster.ts";
import { startServerProcess } from "../_util/server_process.ts";
import { Nzk, NzkError } from "../_util/nzk.ts";
import { sleep } from "../_util/process.ts";
import { Code } from "../../src/zk/constants.ts";

const SESSIONS = 16;
const BEFORE_MS = 3000;
const AFTER_MS = 8000;

if (import.meta.main) {
  await using cluster = await startEtcdCluster();
  await cluster.waitHealthy();
  const endpoints = cluster.endpoints;
  await using a = await startServerProcess(endpoints, "/kill/");
  await using b = await startServerProcess([...endpoints].reverse(), "/kill/");
  const hosts = (i: number) => (i % 2 === 0 ? [a, b] : [b, a]).map((s) => s.address).join(",");
  const acks: { sent: number; at: number }[] = [];
  let losses = 0;
  let otherErrors = 0;
  let stop = false;
  const expired: number[] = [];
  const workers = Array.from({ length: SESSIONS }, async (_, i) => {
    const zk = await Nzk.connect(hosts(i), 10_000);
    zk.raw.on("expired", () => expired.push(i));
    const node = `/w${i}-${crypto.randomUUID().slice(0, 6)}`;
    await zk.create(node);
    while (!stop) {
      const sent = performance.now();
      try {
        await zk.setData(node, new Uint8Array([i]));
        acks.push({ sent, at: performance.now() });
      } catch (err) {
        if (err instanceof NzkError && err.code === Code.CONNECTIONLOSS) losses++;
        else otherErrors++;
        await sleep(20);
      }
    }
    await zk.close();
  });
  await sleep(BEFORE_MS);
  const leader = await cluster.leader();
  if (!leader) throw new Error("no etcd leader to kill");
  const killedAt = performance.now();
  await leader.kill();
  await sleep(AFTER_MS);
  stop = true;
  await Promise.all(workers);
  const after = acks.filter((x) => x.sent >= killedAt).sort((x, y) => x.at - y.at);
  const times = acks.map((x) => x.at).filter((t) => t >= killedAt - 1000).sort((x, y) => x - y);
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
  const first = after.length > 0 ? (after[0].at - killedAt).toFixed(0) : "none";
  console.log(
    `leader-kill: first write sent after the kill acknowledged ${first} ms after it; ` +
      `longest time without an acknowledged write ${gap.toFixed(0)} ms; ` +
      `${acks.length} writes acknowledged, ${losses} ConnectionLoss, ${otherErrors} other errors; ` +
      `sessions expired: ${expired.length}`,
  );
}
