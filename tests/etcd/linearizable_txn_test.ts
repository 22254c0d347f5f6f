/**
 * etcd serves a transaction that only compares (no read, no write) from the
 * member's own state, without asking the leader: a member that lags
 * (frozen, cut off, or an old leader) would confirm what it no longer
 * holds. The client makes every transaction linearizable.
 */

import assert from "node:assert/strict";
import { startEtcdCluster } from "../_util/etcd_cluster.ts";
import { absent, EtcdClient } from "../../src/etcd/client.ts";

Deno.test({
  name:
    "a transaction of compares only is answered as of now, even by a member that was frozen while others wrote",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using cluster = await startEtcdCluster();
  const lagging = await cluster.follower();
  const others = cluster.members.filter((m) => m !== lagging).map((m) => m.endpoint);
  for (const transport of ["direct", "etcd3"] as const) {
    const key = `/lin/${transport}`;
    const there = EtcdClient.connect({ endpoints: [lagging.endpoint], transport });
    const elsewhere = EtcdClient.connect({ endpoints: others, transport });
    try {
      assert.equal((await there.txn([absent(key)], [])).succeeded, true);
      await lagging.pause();
      await elsewhere.txn([], [{ put: key }]);
      const asked = there.txn([absent(key)], []);
      await new Promise((r) => setTimeout(r, 50));
      lagging.resume();
      const res = await asked;
      assert.equal(res.succeeded, false, `${transport}: the key written elsewhere is seen`);
      assert.deepEqual(res.results, []);
    } finally {
      lagging.resume();
      there.close();
      elsewhere.close();
    }
  }
});
