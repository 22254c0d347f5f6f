/**
 * Handshake and session lifecycle, at the frame level (exact bytes) and
 * through a stock client. Steps that apply to any ZooKeeper server also run
 * against the ZooKeeper 3.8 oracle.
 */

import { differential } from "../_util/differential.ts";
import assert from "node:assert/strict";
import { startStack, startZetcd } from "../_util/zetcd.ts";
import { CreateMode, EventQueue, Nzk } from "../_util/nzk.ts";
import { RawClient } from "../_util/raw_client.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode } from "../../src/zk/constants.ts";

const OPEN_ACL = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];

async function rawCreate(c: RawClient, xid: number, path: string, flags: number) {
  await c.send(xid, OpCode.create, R.CreateRequest, { path, data: null, acl: OPEN_ACL, flags });
  return await c.replySkippingEvents();
}

async function sessionSpec(t: Deno.TestContext, address: string): Promise<void> {
  await t.step("the handshake answers with the readOnly byte when the client sent it", async () => {
    const [c, w] = await RawClient.session(address, { readOnly: true });
    assert.equal(w.hasReadOnly, true);
    assert.equal(w.passwd.byteLength, 16);
    assert.notEqual(w.sessionId, 0n);
    c.close();
  });

  await t.step("an old client's handshake (no readOnly byte) is answered without one", async () => {
    const [c, w] = await RawClient.session(address, { readOnly: false });
    assert.notEqual(w.sessionId, 0n);
    assert.equal(w.hasReadOnly, false, "the 36-byte ConnectResponse ClickHouse expects");
    await c.send(1, OpCode.exists, R.ExistsRequest, { path: "/", watch: false });
    assert.equal((await c.reply())?.err, 0);
    c.close();
  });

  await t.step("the session timeout is clamped into [4000, 40000] ms", async () => {
    const [a, low] = await RawClient.session(address, { timeOut: 1000 });
    assert.equal(low.timeOut, 4000);
    const [b, high] = await RawClient.session(address, { timeOut: 100_000 });
    assert.equal(high.timeOut, 40000);
    const [c, mid] = await RawClient.session(address, { timeOut: 12345 });
    assert.equal(mid.timeOut, 12345);
    for (const x of [a, b, c]) x.close();
  });

  await t.step("resuming with a wrong password gets the expired reply", async () => {
    const [c, w] = await RawClient.session(address);
    const thief = await RawClient.open(address);
    const reply = await thief.handshake({ sessionId: w.sessionId, passwd: new Uint8Array(16) });
    assert.equal(reply?.timeOut, 0);
    assert.equal(reply?.sessionId, 0n);
    assert.deepEqual(reply?.passwd, new Uint8Array(16));
    assert.ok(await thief.closedWithin(3000), "the server closes after refusing");
    c.close();
    thief.close();
  });

  await t.step(
    "an old client refused gets the expired reply without the readOnly byte",
    async () => {
      const [c, w] = await RawClient.session(address, { readOnly: false });
      const thief = await RawClient.open(address);
      const reply = await thief.handshake({
        sessionId: w.sessionId,
        passwd: new Uint8Array(16),
        readOnly: false,
      });
      assert.equal(reply?.timeOut, 0);
      assert.equal(reply?.hasReadOnly, false);
      c.close();
      thief.close();
    },
  );

  await t.step("resuming a closed session gets the expired reply", async () => {
    const [c, w] = await RawClient.session(address);
    await c.send(1, OpCode.closeSession);
    assert.equal((await c.reply())?.err, 0);
    assert.ok(await c.closedWithin(3000), "closeSession closes the connection");
    const again = await RawClient.open(address);
    const reply = await again.handshake({ sessionId: w.sessionId, passwd: w.passwd });
    assert.equal(reply?.timeOut, 0);
    assert.equal(reply?.sessionId, 0n);
    again.close();
  });

  await t.step("a session resumes on a new connection with its id and password", async () => {
    const [c, w] = await RawClient.session(address, { timeOut: 10000 });
    assert.equal((await rawCreate(c, 1, "/resumed-eph", 1))?.err, 0);
    c.close();
    const again = await RawClient.open(address);
    const reply = await again.handshake({ sessionId: w.sessionId, passwd: w.passwd });
    assert.equal(reply?.sessionId, w.sessionId);
    assert.equal(reply?.timeOut, 10000);
    await again.send(1, OpCode.exists, R.ExistsRequest, { path: "/resumed-eph", watch: false });
    const r = await again.reply();
    assert.equal(r?.err, 0, "the ephemeral node survived the reconnect");
    assert.equal(R.Stat.read(r!.body).ephemeralOwner, w.sessionId);
    await again.send(2, OpCode.closeSession);
    await again.reply();
    again.close();
  });

  await t.step("replies come back in request order for pipelined requests", async () => {
    const [c] = await RawClient.session(address);
    const frames = [];
    for (let xid = 1; xid <= 50; xid++) {
      frames.push(
        xid % 2
          ? c.frame(xid, OpCode.exists, R.ExistsRequest, { path: "/", watch: false })
          : c.frame(xid, OpCode.getData, R.GetDataRequest, { path: "/nope", watch: false }),
      );
    }
    await c.write(new Uint8Array(frames.flatMap((f) => [...f])));
    for (let xid = 1; xid <= 50; xid++) {
      const r = await c.reply();
      assert.equal(r?.xid, xid);
      assert.equal(r?.err, xid % 2 ? 0 : -101);
    }
    c.close();
  });

  await t.step("a client that has seen a newer zxid than the server is refused", async () => {
    const c = await RawClient.open(address);
    const reply = await c.handshake({ lastZxidSeen: 1n << 40n });
    assert.equal(reply, null, "the server closes without a ConnectResponse");
    c.close();
  });

  await t.step("a ping is answered with xid -2", async () => {
    const [c] = await RawClient.session(address);
    await c.send(-2, OpCode.ping);
    const r = await c.reply();
    assert.equal(r?.xid, -2);
    assert.equal(r?.err, 0);
    assert.equal(r?.body.remaining, 0);
    c.close();
  });

  await t.step("setAuth with an unknown scheme fails with AuthFailed and closes", async () => {
    const [c] = await RawClient.session(address);
    await c.send(-4, OpCode.auth, R.AuthPacket, {
      type: 0,
      scheme: "no-such-scheme",
      auth: new Uint8Array([1]),
    });
    const r = await c.reply();
    assert.equal(r?.xid, -4);
    assert.equal(r?.err, -115);
    assert.ok(await c.closedWithin(3000));
    c.close();
  });

  await t.step("an ephemeral node vanishes when its session is closed", async () => {
    const owner = await Nzk.connect(address);
    const watcher = await Nzk.connect(address);
    await owner.create("/closing-eph", null, CreateMode.EPHEMERAL);
    const q = new EventQueue();
    assert.ok(await watcher.exists("/closing-eph", q.watcher));
    await owner.close();
    assert.equal((await q.next()).type, 2);
    assert.equal(await watcher.exists("/closing-eph"), null);
    await watcher.close();
  });

  await t.step(
    "an ephemeral node vanishes within timeout plus a tick when its session expires",
    async () => {
      const watcher = await Nzk.connect(address);
      await watcher.create("/expiry-parent");
      const [c] = await RawClient.session(address, { timeOut: 4000 });
      assert.equal((await rawCreate(c, 1, "/expiry-parent/eph", 1))?.err, 0);
      const silentSince = Date.now();
      const before = (await watcher.exists("/expiry-parent"))!;
      const q = new EventQueue();
      assert.ok(await watcher.exists("/expiry-parent/eph", q.watcher));
      // The raw client never pings: the session must expire after about 4 s.
      assert.equal((await q.next(15_000)).type, 2);
      const took = Date.now() - silentSince;
      assert.ok(took >= 3500, `expired too early: ${took} ms`);
      assert.ok(took <= 4000 + 2500, `expired too late: ${took} ms`);
      assert.ok(await c.closedWithin(3000), "the expired session's connection is closed");
      c.close();
      const after = (await watcher.exists("/expiry-parent"))!;
      assert.equal(before.cversion, 1);
      assert.equal(after.cversion, 2, "the expiry counts as a child delete");
      assert.equal(after.numChildren, 0);
      assert.ok(after.pzxid > before.pzxid, "the expiry moves the parent's pzxid");
      await watcher.close();
    },
  );
}

differential("sessions behave as ZooKeeper's", sessionSpec);

Deno.test({
  name: "a session resumes on another server sharing the etcd and prefix",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ prefix: "/shared/" });
  const second = await startZetcd(stack.etcd, { prefix: "/shared/" });
  try {
    const [c, w] = await RawClient.session(stack.address, { timeOut: 10000 });
    const created = await rawCreate(c, 1, "/moving-eph", 1);
    assert.equal(created?.err, 0);
    c.close();
    const moved = await RawClient.open(second.address);
    // As every client does, it says what it has seen: the other server must not answer from before it.
    const reply = await moved.handshake({
      sessionId: w.sessionId,
      passwd: w.passwd,
      lastZxidSeen: created!.zxid,
    });
    assert.equal(reply?.sessionId, w.sessionId);
    await moved.send(1, OpCode.getData, R.GetDataRequest, { path: "/moving-eph", watch: false });
    const r = await moved.reply();
    assert.equal(r?.err, 0);
    r!.body.readBuffer(); // the data, then the stat
    assert.equal(R.Stat.read(r!.body).ephemeralOwner, w.sessionId);
    moved.close();
  } finally {
    await second.close();
  }
});

Deno.test({
  name: "a ConnectRequest with an unknown protocol version gets the expired reply",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack();
  const c = await RawClient.open(stack.address);
  const reply = await c.handshake({ protocolVersion: 7 });
  assert.equal(reply?.timeOut, 0);
  assert.equal(reply?.sessionId, 0n);
  assert.deepEqual(reply?.passwd, new Uint8Array(16));
  c.close();
  await assertStillServing(stack.address);
});

async function assertStillServing(address: string): Promise<void> {
  const [c] = await RawClient.session(address);
  await c.send(1, OpCode.exists, R.ExistsRequest, { path: "/", watch: false });
  assert.equal((await c.reply())?.err, 0);
  c.close();
}
