/**
 * Compaction of etcd's history: one elected server compacts on a schedule,
 * another takes over when it stops, and SetWatches keeps working on a
 * history that is gone.
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { startZetcd } from "../_util/zetcd.ts";
import { RawClient } from "../_util/raw_client.ts";
import { EtcdClient } from "../../src/etcd/client.ts";
import { ZkClient } from "../../src/client/client.ts";
import { EventType, OpCode } from "../../src/zk/constants.ts";
import * as R from "../../src/zk/records.ts";

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name:
    "one elected server compacts etcd's history, another takes over, and SetWatches still fires",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const options = { prefix: "/compact/", compactIntervalMs: 200, compactRetain: 5 };
  const a = await startZetcd(etcd, options);
  const b = await startZetcd(etcd, options);
  const closed = new Set<unknown>();
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    await until("one server is elected", () => a.compactor!.leader || b.compactor!.leader);
    assert.notEqual(a.compactor!.leader, b.compactor!.leader, "exactly one compacts");
    const [leader, other] = a.compactor!.leader ? [a, b] : [b, a];

    const zk = await ZkClient.connect(other.address);
    await zk.create("/x", new Uint8Array([0]));
    const before = (await zk.getData("/x")).stat.mzxid;
    for (let i = 1; i <= 30; i++) await zk.setData("/x", new Uint8Array([i]));
    await until(
      "history before the writes is compacted",
      () => leader.compactor!.compacted > before,
    );
    await assert.rejects(
      raw.read([{ get: "/compact/layout", revision: before }]),
      /compacted/,
      "etcd no longer has the old revision",
    );

    // A client that last saw the node before the compaction sets its watch
    // again: the change it missed fires at once.
    const [c] = await RawClient.session(other.address);
    await c.send(1, OpCode.setWatches, R.SetWatches, {
      relativeZxid: before,
      dataWatches: ["/x"],
      existWatches: [],
      childWatches: [],
    });
    const first = await c.reply();
    const second = first?.xid === -1 ? first : await c.reply();
    assert.equal(second?.xid, -1, "a notification arrives");
    const event = R.WatcherEvent.read(second!.body);
    assert.equal(event.type, EventType.NodeDataChanged);
    assert.equal(event.path, "/x");
    c.close();
    await zk.close();

    // The elected server stops: the other takes over.
    await leader.close();
    closed.add(leader);
    await until("the other server is elected", () => other.compactor!.leader);
  } finally {
    raw.close();
    for (const server of [a, b]) if (!closed.has(server)) await server.close();
  }
});
