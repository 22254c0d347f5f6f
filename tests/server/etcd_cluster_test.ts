/**
 * Several etcd endpoints: when the member a server talks to dies, the
 * server goes on through the others, and nothing acknowledged is lost.
 */

import assert from "node:assert/strict";
import { freePorts } from "../_util/ports.ts";
import { startZetcd } from "../_util/zetcd.ts";
import { Nzk } from "../_util/nzk.ts";
import type { EtcdProcess } from "../_util/etcd.ts";

/** Three etcd members on loopback, as one cluster. */
async function startCluster(dir: string) {
  const ports = await freePorts(6);
  const members = [0, 1, 2].map((i) => ({
    name: `m${i}`,
    client: ports[2 * i],
    peer: ports[2 * i + 1],
  }));
  const initial = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
  const procs = members.map((m) =>
    new Deno.Command("etcd", {
      args: [
        `--name=${m.name}`,
        `--data-dir=${dir}/${m.name}`,
        `--listen-client-urls=http://127.0.0.1:${m.client}`,
        `--advertise-client-urls=http://127.0.0.1:${m.client}`,
        `--listen-peer-urls=http://127.0.0.1:${m.peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${m.peer}`,
        `--initial-cluster=${initial}`,
        "--initial-cluster-state=new",
        "--heartbeat-interval=50",
        "--election-timeout=500",
        "--max-txn-ops=10000",
        "--logger=zap",
        "--log-level=error",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
  const deadline = Date.now() + 20_000;
  for (const m of members) {
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${m.client}/health`);
        if ((await res.text()).includes('"true"')) break;
      } catch { /* not yet */ }
      assert.ok(Date.now() < deadline, "the cluster became healthy");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { endpoints: members.map((m) => `127.0.0.1:${m.client}`), procs };
}

Deno.test({
  name: "with several etcd endpoints the server survives the loss of the member it used",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-cluster-" });
  const cluster = await startCluster(dir);
  try {
    const server = await startZetcd({ endpoints: cluster.endpoints } as EtcdProcess);
    try {
      const zk = await Nzk.connect(server.address);
      for (let i = 0; i < 20; i++) await zk.create(`/before-${i}`);
      await zk.close().catch(() => {});
      cluster.procs[0].kill("SIGKILL");
      await cluster.procs[0].status;
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
  } finally {
    for (const p of cluster.procs) {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
      await p.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
});
