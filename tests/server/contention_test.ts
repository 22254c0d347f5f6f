/**
 * Two servers on one etcd prefix writing as fast as they are answered under
 * one parent: every write finishes with ZooKeeper's answer, none with an
 * error ZooKeeper would not give (SYSTEMERROR once ended the write that
 * kept losing to the other server), and the result is ZooKeeper's — every
 * sequential name given once, in order, and the counters exact. The
 * sessions use the project's own client (the benchmark's): the losing
 * streaks only show at the rate it writes.
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { startServerProcess } from "../_util/server_process.ts";
import { ZkClient } from "../../src/client/client.ts";
import { CreateFlag } from "../../src/zk/constants.ts";

/** Sessions, half on each server. */
const SESSIONS = 16;

/** How long they write. */
const SECONDS = 5;

Deno.test({
  name: "writes under one parent from two servers all finish, with ZooKeeper's results",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using etcd = await startEtcd();
    // Separate processes, as two servers run: each with its own event loop.
    await using a = await startServerProcess(etcd.endpoints, "/contention/");
    await using b = await startServerProcess(etcd.endpoints, "/contention/");
    const clients: ZkClient[] = [];
    try {
      for (let i = 0; i < SESSIONS; i++) {
        clients.push(await ZkClient.connect(i % 2 ? b.address : a.address, { timeout: 30_000 }));
      }
      await clients[0].create("/hot");
      await clients[0].create("/hot/one");
      const names: string[] = [];
      const errors: string[] = [];
      let sets = 0;
      const end = Date.now() + SECONDS * 1000;
      await Promise.all(clients.map(async (zk, i) => {
        while (Date.now() < end) {
          try {
            // Three in four sessions take sequential names, the others set one node.
            if (i % 4 < 3) {
              names.push(await zk.create("/hot/s-", null, CreateFlag.PERSISTENT_SEQUENTIAL));
            } else {
              await zk.setData("/hot/one", new Uint8Array([i]));
              sets++;
            }
          } catch (err) {
            errors.push(String(err));
          }
        }
      }));
      assert.deepEqual(errors, [], "every write finishes with success");
      assert.ok(names.length > 100 && sets > 100, `${names.length} creates, ${sets} sets`);
      // Every name given once, and the names are 1 .. n (child 0 is /hot/one): the counter
      // never skipped or repeated a number.
      const numbers = names.map((n) => Number(n.slice("/hot/s-".length))).sort((x, y) => x - y);
      assert.deepEqual(numbers, numbers.map((_, i) => i + 1));
      const one = (await clients[1].exists("/hot/one"))!;
      assert.equal(one.version, sets, "the data version counts every setData");
      const hot = (await clients[1].exists("/hot"))!;
      assert.equal(hot.numChildren, names.length + 1);
      assert.equal(hot.cversion, names.length + 1);
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
    }
  },
});

Deno.test({
  name: "a delete and a create under the node, through two servers at once: never both succeed",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using etcd = await startEtcd();
    await using a = await startServerProcess(etcd.endpoints, "/race/");
    await using b = await startServerProcess(etcd.endpoints, "/race/");
    const za = await ZkClient.connect(a.address, { timeout: 30_000 });
    const zb = await ZkClient.connect(b.address, { timeout: 30_000 });
    try {
      const outcomes = new Map<string, number>();
      for (let i = 0; i < 200; i++) {
        await za.create(`/p${i}`);
        // Several deletes of leaves ride in one batch on server a, as under load.
        const [deleted, created] = await Promise.allSettled([
          za.delete(`/p${i}`),
          zb.create(`/p${i}/c`),
        ]);
        const outcome = `${deleted.status === "fulfilled" ? "deleted" : String(deleted.reason)} / ${
          created.status === "fulfilled" ? "created" : String(created.reason)
        }`;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        // Whatever the order: the child exists exactly when its parent does.
        const parent = await za.exists(`/p${i}`);
        const child = await za.exists(`/p${i}/c`);
        assert.equal(child !== null, parent !== null, `round ${i}: ${outcome}`);
        if (child) await za.delete(`/p${i}/c`);
        if (parent) await za.delete(`/p${i}`);
      }
      for (const outcome of outcomes.keys()) {
        assert.ok(
          /^deleted \/ .*NONODE|NotEmpty|NOTEMPTY.* \/ created$/i.test(outcome),
          `an outcome ZooKeeper never gives: ${outcome} (${JSON.stringify([...outcomes])})`,
        );
      }
    } finally {
      await za.close();
      await zb.close();
    }
  },
});
