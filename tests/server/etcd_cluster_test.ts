/**
 * Several etcd endpoints: when the member a server talks to dies, the
 * server goes on through the others, and nothing acknowledged is lost.
 */

import assert from "node:assert/strict";
import { startEtcdCluster, startMemberWithoutLeader } from "../_util/etcd_cluster.ts";
import { startZetcd, uniquePrefix } from "../_util/zetcd.ts";
import { spawnServer } from "../_util/server_process.ts";
import { Nzk } from "../_util/nzk.ts";
import type { EtcdProcess } from "../_util/etcd.ts";

/**
 * Sets `path` again and again for `ms`, each write given 2 s: when each
 * acknowledged write was, in ms from the start.
 */
async function keepWriting(zk: Nzk, path: string, ms: number): Promise<number[]> {
  const start = Date.now();
  const acknowledged: number[] = [];
  while (Date.now() - start < ms) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        zk.setData(path, new Uint8Array([1]), -1),
        new Promise((_, reject) => timer = setTimeout(() => reject(new Error("no answer")), 2_000)),
      ]);
      acknowledged.push(Date.now() - start);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      clearTimeout(timer);
    }
  }
  return acknowledged;
}

/**
 * A client with a session timeout of 6 s creates `/k`, `fault` strikes, and
 * the client keeps setting `/k` for `ms` (see {@link keepWriting}); its
 * session must not expire meanwhile.
 */
async function writesThrough(address: string, fault: () => Promise<void>, ms: number) {
  const zk = await Nzk.connect(address, 6_000);
  const states: string[] = [];
  zk.raw.on("state", (s: unknown) => states.push(String(s)));
  try {
    await zk.create("/k");
    await fault();
    const acknowledged = await keepWriting(zk, "/k", ms);
    assert.ok(!states.some((s) => s.startsWith("EXPIRED")), `no expiry: ${states.join(", ")}`);
    return acknowledged;
  } finally {
    await Promise.race([zk.close().catch(() => {}), new Promise((r) => setTimeout(r, 5_000))]);
  }
}

Deno.test({
  name: "with several etcd endpoints the server survives the loss of the member it used",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using cluster = await startEtcdCluster();
  {
    const server = await startZetcd({ endpoints: cluster.endpoints } as EtcdProcess);
    try {
      const zk = await Nzk.connect(server.address);
      for (let i = 0; i < 20; i++) await zk.create(`/before-${i}`);
      await zk.close().catch(() => {});
      await cluster.members[0].kill();
      // Requests that reached the dead member fail (the client sees a lost
      // connection); later ones go through the other two.
      let done = 0;
      const deadline = Date.now() + 20_000;
      while (done < 10) {
        assert.ok(Date.now() < deadline, `10 creates after the loss within 20 s (got ${done})`);
        try {
          const again = await Nzk.connect(server.address);
          try {
            await again.create(`/after-${done}`);
            done++;
          } finally {
            await again.close().catch(() => {});
          }
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      const check = await Nzk.connect(server.address);
      const { children } = await check.getChildren("/");
      for (let i = 0; i < 20; i++) assert.ok(children.includes(`before-${i}`), `before-${i} kept`);
      await check.close();
    } finally {
      await server.close();
    }
  }
});

Deno.test({
  name:
    "a server whose etcd member freezes moves to another: writes go on within seconds and no session expires",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using cluster = await startEtcdCluster();
  const frozen = await cluster.follower();
  // The server talks to the member that freezes (a frozen process still
  // takes TCP connections: only silence tells it apart).
  const endpoints = [frozen, ...cluster.members.filter((m) => m !== frozen)].map((m) => m.endpoint);
  const server = await startZetcd({ endpoints } as EtcdProcess);
  try {
    // Writes through a freeze longer than the session's timeout.
    const acknowledged = await writesThrough(server.address, () => frozen.pause(), 10_000);
    assert.ok(acknowledged.length > 0, "writes acknowledged while the member is frozen");
    assert.ok(acknowledged[0] < 5_000, `the first write after the freeze at ${acknowledged[0]} ms`);
  } finally {
    frozen.resume();
    await server.close();
  }
});

Deno.test({
  name:
    "a server moves off an etcd member without a leader: it starts through the next one, and writes go on within seconds when it reaches one",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using cluster = await startEtcdCluster();
  // It belongs to a cluster of its own; the server cannot tell.
  await using cutOff = await startMemberWithoutLeader();
  const lost = cutOff.member;
  const [first, ...others] = cluster.members;
  // The member the server uses dies, and the next one has no leader.
  const prefix = uniquePrefix();
  const server = await startZetcd(
    { endpoints: [first, lost, ...others].map((m) => m.endpoint) } as EtcdProcess,
    { prefix },
  );
  try {
    const acknowledged = await writesThrough(server.address, () => first.kill(), 6_000);
    assert.ok(acknowledged.length > 0, "writes acknowledged after the loss");
    assert.ok(acknowledged[0] < 3_000, `the first write after the loss at ${acknowledged[0]} ms`);
  } finally {
    await server.close();
  }
  // A server whose first member has no leader starts through the next,
  // and says so.
  const endpoints = [lost, ...others].map((m) => m.endpoint).join(",");
  await using second = await spawnServer(["--endpoints", endpoints, "--prefix", prefix]);
  const zk2 = await Nzk.connect(second.address, 6_000);
  try {
    const { data } = await Promise.race([
      zk2.getData("/k"),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("no answer in 5 s")), 5_000)
      ),
    ]);
    assert.deepEqual([...data ?? []], [1]);
  } finally {
    await zk2.close().catch(() => {});
  }
  const said = new RegExp(
    `etcd at "?http://${lost.endpoint}"?: "?etcdserver: no leader"?; going on with the next`,
  );
  assert.match(second.output(), said, "the log says why it moved");
});
