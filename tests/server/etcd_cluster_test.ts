/**
 * Several etcd endpoints: when the member a server talks to dies, the
 * server goes on through the others, and nothing acknowledged is lost.
 */

import assert from "node:assert/strict";
import { startEtcdCluster } from "../_util/etcd_cluster.ts";
import { startZetcd } from "../_util/zetcd.ts";
import { Nzk } from "../_util/nzk.ts";
import type { EtcdProcess } from "../_util/etcd.ts";

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
