/**
 * Compaction of etcd's history: one elected server compacts on a schedule,
 * another takes over when it stops, and SetWatches keeps working on a
 * history that is gone.
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { startZetcd } from "../_util/zetcd.ts";
import { startCompactionGap } from "../_util/compaction_gap.ts";
import { RawClient } from "../_util/raw_client.ts";
import { EtcdClient } from "../../src/etcd/client.ts";
import { ZkClient } from "../../src/client/client.ts";
import { EventType, OpCode } from "../../src/zk/constants.ts";
import * as R from "../../src/zk/records.ts";
import { HistoryCheck } from "../../src/server/compactor.ts";
import type { Logger } from "@logtape/logtape";

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

/** A logger that keeps what is warned. */
function warnings(): { log: Logger; warned: string[] } {
  const warned: string[] = [];
  const log = {
    warn: (message: string, props: Record<string, unknown> = {}) =>
      warned.push(message.replace(/\{(\w+)\}/g, (_, name) => String(props[name]))),
  } as unknown as Logger;
  return { log, warned };
}

Deno.test({
  name: "nothing is compacted by default, and a warning comes once when history grows large",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const server = await startZetcd(etcd);
  assert.equal(server.compactor, undefined, "no compactor unless asked for");
  await server.close();
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    let revision = 0n;
    for (let i = 0; i < 30; i++) {
      revision = (await raw.txn([], [{ put: "/k", value: new Uint8Array([i]) }])).revision;
    }
    const { log, warned } = warnings();
    const check = new HistoryCheck(raw, "/k", log, { maxRevisions: 20, intervalMs: 20 });
    check.start();
    await until("a warning", () => warned.length > 0);
    await new Promise((r) => setTimeout(r, 200));
    check.stop();
    assert.equal(warned.length, 1, "once");
    assert.match(warned[0], /more than 20 revisions/);
    assert.match(warned[0], /--compact-interval/);

    await raw.compact(revision - 5n);
    const after = warnings();
    const compacted = new HistoryCheck(raw, "/k", after.log, { maxRevisions: 20, intervalMs: 20 });
    assert.equal(await compacted.check(), false, "compacted history is small");
    assert.deepEqual(after.warned, []);
  } finally {
    raw.close();
  }
});

Deno.test({
  name:
    "watches set before a compaction gap fire for what changed in it, judged as SetWatches judges them",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using gap = await startCompactionGap("/gap/");
  const events: string[] = [];
  const watcher = await ZkClient.connect(gap.cut.address, {
    onEvent: (e) => events.push(`${eventName(e.type)} ${e.path}`),
  });
  const writer = await ZkClient.connect(gap.other.address);
  try {
    for (const path of ["/x", "/gone", "/p", "/same"]) await writer.create(path, null);
    // Set on the server that is about to lose etcd: each reads the node first.
    await waitFor(async () => (await watcher.exists("/same")) !== null);
    await watcher.getData("/x", true);
    await watcher.exists("/gone", true);
    assert.equal(await watcher.exists("/later", true), null);
    await watcher.getChildren("/p", true);
    await watcher.getData("/same", true);
    await gap.during(async () => {
      await writer.setData("/x", new Uint8Array([1]));
      await writer.delete("/gone");
      await writer.create("/later", null);
      await writer.create("/p/c", null);
    });
    const expected = [
      "NodeChildrenChanged /p",
      "NodeCreated /later",
      "NodeDataChanged /x",
      "NodeDeleted /gone",
    ];
    await waitFor(() => Promise.resolve(events.length >= expected.length));
    // A watch whose node did not change stays, and fires on the next change.
    await writer.setData("/same", new Uint8Array([2]));
    await waitFor(() => Promise.resolve(events.includes("NodeDataChanged /same")));
    assert.deepEqual(events.toSorted(), [...expected, "NodeDataChanged /same"].toSorted());
  } finally {
    await watcher.close();
    await writer.close();
  }
});

/** Resolves once `check` holds, polling for up to 15 s. */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, "not within 15 s");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An event type's name, as ZooKeeper spells it. */
function eventName(type: number): string {
  return Object.entries(EventType).find(([, v]) => v === type)?.[0] ?? String(type);
}
