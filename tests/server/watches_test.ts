/**
 * One-shot watches through a stock client, run against our server and
 * against the ZooKeeper 3.8 oracle.
 */

import { differential } from "../_util/differential.ts";
import assert from "node:assert/strict";
import { EventQueue, Nzk } from "../_util/nzk.ts";
import { RawClient, type RawReply } from "../_util/raw_client.ts";
import type { JuteType } from "../../src/jute/schema.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode } from "../../src/zk/constants.ts";

const NodeCreated = 1;
const NodeDeleted = 2;
const NodeDataChanged = 3;
const NodeChildrenChanged = 4;
const bytes = (s: string) => new TextEncoder().encode(s);

async function assertQuiet(q: EventQueue, ms = 400): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  assert.deepEqual(q.events, [], "no event expected");
}

async function watchSpec(t: Deno.TestContext, address: string): Promise<void> {
  const zk = await Nzk.connect(address);
  const other = await Nzk.connect(address);
  try {
    await t.step("a data watch fires NodeDataChanged once on setData", async () => {
      await zk.create("/w1", bytes("a"));
      const q = new EventQueue();
      await zk.getData("/w1", q.watcher);
      await other.setData("/w1", bytes("b"));
      assert.deepEqual(await q.next(), {
        type: NodeDataChanged,
        name: "NODE_DATA_CHANGED",
        path: "/w1",
      });
      await other.setData("/w1", bytes("c"));
      await assertQuiet(q);
    });

    await t.step("an exists watch on a missing node fires NodeCreated", async () => {
      const q = new EventQueue();
      assert.equal(await zk.exists("/w2", q.watcher), null);
      await other.create("/w2");
      assert.equal((await q.next()).type, NodeCreated);
    });

    await t.step("a data watch fires NodeDeleted when the node goes", async () => {
      const q = new EventQueue();
      await zk.getData("/w2", q.watcher);
      await other.remove("/w2");
      assert.equal((await q.next()).type, NodeDeleted);
    });

    await t.step("a child watch fires NodeChildrenChanged on child create and delete", async () => {
      await zk.create("/w3");
      const q = new EventQueue();
      await zk.getChildren("/w3", q.watcher);
      await other.create("/w3/kid");
      assert.deepEqual(await q.next(), {
        type: NodeChildrenChanged,
        name: "NODE_CHILDREN_CHANGED",
        path: "/w3",
      });
      await zk.getChildren("/w3", q.watcher);
      await other.remove("/w3/kid");
      assert.equal((await q.next()).type, NodeChildrenChanged);
    });

    await t.step("setData on a child does not fire the parent's child watch", async () => {
      await zk.create("/w3/kid2");
      const q = new EventQueue();
      await zk.getChildren("/w3", q.watcher);
      await other.setData("/w3/kid2", bytes("x"));
      await assertQuiet(q);
    });

    await t.step("a child watch fires NodeDeleted when its node is deleted", async () => {
      await zk.create("/w4");
      const q = new EventQueue();
      await zk.getChildren("/w4", q.watcher);
      await other.remove("/w4");
      assert.equal((await q.next()).type, NodeDeleted);
    });

    await t.step("a failed getData leaves no watch behind", async () => {
      const q = new EventQueue();
      await assert.rejects(zk.getData("/w5", q.watcher));
      await other.create("/w5");
      await assertQuiet(q);
    });

    await t.step("the writer's own notification arrives before its reply", async () => {
      await zk.create("/w6");
      const order: string[] = [];
      await zk.getData("/w6", () => order.push("event"));
      await zk.setData("/w6", bytes("y"));
      order.push("reply");
      assert.deepEqual(order, ["event", "reply"]);
    });

    await t.step("a watch set by one client is not fired for another", async () => {
      await zk.create("/w7");
      const mine = new EventQueue();
      await zk.getData("/w7", mine.watcher);
      const theirs = new EventQueue();
      await other.exists("/w7-missing", theirs.watcher);
      await other.setData("/w7", bytes("z"));
      assert.equal((await mine.next()).type, NodeDataChanged);
      await assertQuiet(theirs);
    });
  } finally {
    await zk.close();
    await other.close();
  }
}

differential("watches fire exactly as ZooKeeper's", watchSpec);

async function setWatchesSpec(t: Deno.TestContext, address: string): Promise<void> {
  const other = await Nzk.connect(address);
  const [c] = await RawClient.session(address);
  try {
    for (const p of ["/sw", "/sw/data", "/sw/same", "/sw/kids", "/sw/samekids", "/sw/gone"]) {
      await other.create(p);
    }
    await c.send(1, OpCode.sync, R.SyncRequest, { path: "/" });
    const seen = (await c.reply())!.zxid;
    await other.setData("/sw/data", bytes("new"));
    await other.create("/sw/kids/c");
    await other.remove("/sw/gone");
    await other.create("/sw/born");

    await t.step("SetWatches fires at once for what changed after the client's zxid", async () => {
      await c.send(2, OpCode.setWatches, R.SetWatches, {
        relativeZxid: seen,
        dataWatches: ["/sw/data", "/sw/gone", "/sw/same"],
        existWatches: ["/sw/born", "/sw/unborn"],
        childWatches: ["/sw/kids", "/sw/samekids"],
      });
      const events: string[] = [];
      for (;;) {
        const r = await c.reply();
        assert.ok(r, "the server answered");
        if (r.xid === 2) break;
        const e = R.WatcherEvent.read(r.body);
        events.push(`${e.type} ${e.path}`);
      }
      assert.deepEqual(
        events.sort(),
        [
          `${NodeCreated} /sw/born`,
          `${NodeDeleted} /sw/gone`,
          `${NodeDataChanged} /sw/data`,
          `${NodeChildrenChanged} /sw/kids`,
        ].sort(),
      );
    });

    await t.step("SetWatches registers the watches whose nodes did not change", async () => {
      await other.setData("/sw/same", bytes("x"));
      await other.create("/sw/unborn");
      await other.create("/sw/samekids/k");
      const events: string[] = [];
      while (events.length < 3) {
        const r = await c.reply();
        assert.equal(r?.xid, -1);
        const e = R.WatcherEvent.read(r!.body);
        events.push(`${e.type} ${e.path}`);
      }
      assert.deepEqual(
        events.sort(),
        [
          `${NodeCreated} /sw/unborn`,
          `${NodeDataChanged} /sw/same`,
          `${NodeChildrenChanged} /sw/samekids`,
        ].sort(),
      );
    });
  } finally {
    c.close();
    await other.close();
  }
}

differential("SetWatches after a reconnect delivers what was missed, once", setWatchesSpec);

async function persistentSpec(t: Deno.TestContext, address: string): Promise<void> {
  const other = await Nzk.connect(address);
  const [c] = await RawClient.session(address);
  let x = 100;
  const call = async <T>(op: number, type: JuteType<T>, v: T) => {
    await c.send(++x, op, type, v);
    for (;;) {
      const r = await c.reply();
      assert.ok(r);
      if (r.xid === x) return r;
      received.push(eventOf(r));
    }
  };
  const received: string[] = [];
  const eventOf = (r: RawReply) => {
    const e = R.WatcherEvent.read(r.body);
    return `${e.type} ${e.path}`;
  };
  /** Waits until `n` more notifications arrived, then returns them all. */
  const events = async (n: number) => {
    while (received.length < n) {
      const r = await c.reply();
      assert.equal(r?.xid, -1);
      received.push(eventOf(r!));
    }
    await new Promise((r) => setTimeout(r, 200));
    return received.splice(0);
  };
  try {
    await t.step("a persistent watch sees every change of its node and stays", async () => {
      assert.equal(
        (await call(OpCode.addWatch, R.AddWatchRequest, { path: "/pw", mode: 0 })).err,
        0,
      );
      await other.create("/pw");
      await other.setData("/pw", bytes("1"));
      await other.setData("/pw", bytes("2"));
      await other.create("/pw/c");
      await other.remove("/pw/c");
      await other.remove("/pw");
      assert.deepEqual(await events(6), [
        `${NodeCreated} /pw`,
        `${NodeDataChanged} /pw`,
        `${NodeDataChanged} /pw`,
        `${NodeChildrenChanged} /pw`,
        `${NodeChildrenChanged} /pw`,
        `${NodeDeleted} /pw`,
      ]);
    });

    await t.step("a recursive watch sees its subtree, never NodeChildrenChanged", async () => {
      assert.equal(
        (await call(OpCode.addWatch, R.AddWatchRequest, { path: "/rw", mode: 1 })).err,
        0,
      );
      await other.create("/rw");
      await other.create("/rw/a");
      await other.setData("/rw/a", bytes("x"));
      await other.create("/rw/a/b");
      await other.remove("/rw/a/b");
      assert.deepEqual(await events(5), [
        `${NodeCreated} /rw`,
        `${NodeCreated} /rw/a`,
        `${NodeDataChanged} /rw/a`,
        `${NodeCreated} /rw/a/b`,
        `${NodeDeleted} /rw/a/b`,
      ]);
    });

    await t.step("a one-shot and a persistent watch on one node give one event", async () => {
      await other.create("/pw");
      assert.equal(
        (await call(OpCode.getData, R.GetDataRequest, { path: "/pw", watch: true })).err,
        0,
      );
      await other.setData("/pw", bytes("3"));
      assert.deepEqual(await events(2), [`${NodeCreated} /pw`, `${NodeDataChanged} /pw`]);
    });

    await t.step("SetWatches2 registers persistent watches again after a reconnect", async () => {
      const [again] = await RawClient.session(address);
      await again.send(1, OpCode.sync, R.SyncRequest, { path: "/" });
      const seen = (await again.reply())!.zxid;
      await again.send(2, OpCode.setWatches2, R.SetWatches2, {
        relativeZxid: seen,
        dataWatches: [],
        existWatches: [],
        childWatches: [],
        persistentWatches: ["/sw2"],
        persistentRecursiveWatches: ["/sw2r"],
      });
      assert.equal((await again.reply())?.err, 0);
      await other.create("/sw2");
      await other.create("/sw2r");
      await other.create("/sw2r/deep");
      const got: string[] = [];
      while (got.length < 3) {
        const r = await again.reply();
        assert.equal(r?.xid, -1);
        got.push(eventOf(r!));
      }
      assert.deepEqual(got, [
        `${NodeCreated} /sw2`,
        `${NodeCreated} /sw2r`,
        `${NodeCreated} /sw2r/deep`,
      ]);
      again.close();
    });

    await t.step("checkWatches and removeWatches match by watcher type", async () => {
      const check = async (path: string, type: number) =>
        (await call(OpCode.checkWatches, R.CheckWatchesRequest, { path, type })).err;
      const remove = async (path: string, type: number) =>
        (await call(OpCode.removeWatches, R.RemoveWatchesRequest, { path, type })).err;
      await other.create("/cw");
      assert.equal(
        (await call(OpCode.getData, R.GetDataRequest, { path: "/cw", watch: true })).err,
        0,
      );
      assert.equal(await check("/cw", 2), 0);
      assert.equal(await check("/cw", 1), -121);
      assert.equal(await remove("/cw", 1), -121);
      assert.equal(await remove("/cw", 3), 0);
      assert.equal(await check("/cw", 3), -121);
      assert.equal(await remove("/rw", 2), 0, "Data removes a persistent watch's data side");
      assert.equal(await check("/rw", 2), -121);
      assert.equal(await check("/rw", 1), 0, "its child side stays");
      assert.equal(await remove("/rw", 3), 0, "Any removes the rest");
      assert.equal(await remove("/rw", 4), -5);
      assert.equal(
        (await call(OpCode.addWatch, R.AddWatchRequest, { path: "/rw", mode: 7 })).err,
        -5,
      );
      await other.create("/rw/gone");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(received.splice(0), [], "the removed recursive watch is silent");
    });
  } finally {
    c.close();
    await other.close();
  }
}

differential("persistent watches behave as ZooKeeper's", persistentSpec);
