/**
 * Several servers on one etcd: sessions survive the server that held them,
 * move between servers, and end (with their ephemerals reaped) even when
 * their server is gone.
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { startServerProcess } from "../_util/server_process.ts";
import { startStack, startZetcd } from "../_util/zetcd.ts";
import { EventQueue, Nzk } from "../_util/nzk.ts";
import { RawClient } from "../_util/raw_client.ts";
import { runKazoo } from "../_util/kazoo.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode } from "../../src/zk/constants.ts";

const OPEN_ACL = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];

Deno.test({
  name: "resuming a session on another server closes its connection on the first",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ prefix: "/moved/" });
  const second = await startZetcd(stack.etcd, { prefix: "/moved/" });
  try {
    const [first, w] = await RawClient.session(stack.address, { timeOut: 10000 });
    const moved = await RawClient.open(second.address);
    const reply = await moved.handshake({ sessionId: w.sessionId, passwd: w.passwd });
    assert.equal(reply?.sessionId, w.sessionId);
    assert.ok(await first.closedWithin(3000), "the first server closed the stale connection");
    await moved.send(1, OpCode.exists, R.ExistsRequest, { path: "/", watch: false });
    assert.equal((await moved.reply())?.err, 0, "the new connection serves the session");
    first.close();
    moved.close();
  } finally {
    await second.close();
  }
});

Deno.test({
  name: "a client keeps its session and ephemerals when its server is killed (SIGKILL)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  await using a = await startServerProcess(etcd.endpoints, "/failover/");
  await using b = await startServerProcess(etcd.endpoints, "/failover/");
  // kazoo with both servers in its host list: it connects to the first,
  // and after the kill it reconnects to the second with its session.
  const script = `
import os, time
zk.stop(); zk.close()
from kazoo.client import KazooClient
zk = KazooClient(hosts="${a.address},${b.address}", timeout=10, randomize_hosts=False)
zk.start(timeout=10)
before = zk.client_id[0]
zk.create("/failover-eph", b("mine"), ephemeral=True)
open("/tmp/zetcd-failover-ready-${a.port}", "w").close()
deadline = time.time() + 20
while time.time() < deadline and not os.path.exists("/tmp/zetcd-failover-killed-${a.port}"):
    time.sleep(0.05)
data = None
deadline = time.time() + 20
while time.time() < deadline:
    try:
        data = zk.get("/failover-eph")[0].decode()
        break
    except Exception:
        time.sleep(0.1)
result = {"same_session": zk.client_id[0] == before, "data": data,
          "owner_is_me": zk.exists("/failover-eph").ephemeralOwner == before}
`;
  const ready = `/tmp/zetcd-failover-ready-${a.port}`;
  const killed = `/tmp/zetcd-failover-killed-${a.port}`;
  const running = runKazoo(a.address, script, { timeoutMs: 60_000 });
  try {
    const deadline = Date.now() + 20_000;
    while (!(await exists(ready))) {
      assert.ok(Date.now() < deadline, "kazoo created its ephemeral");
      await new Promise((r) => setTimeout(r, 50));
    }
    await a.kill("SIGKILL");
    await Deno.writeTextFile(killed, "");
    assert.deepEqual(await running, { same_session: true, data: "mine", owner_is_me: true });
  } finally {
    await Deno.remove(ready).catch(() => {});
    await Deno.remove(killed).catch(() => {});
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "a session expires and its ephemerals are reaped when its server and client are both gone",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  await using a = await startServerProcess(etcd.endpoints, "/orphan/");
  const b = await startZetcd(etcd, { prefix: "/orphan/" });
  try {
    const watcher = await Nzk.connect(b.address);
    await watcher.create("/parent");
    const before = (await watcher.exists("/parent"))!;
    const [c] = await RawClient.session(a.address, { timeOut: 4000 });
    await c.send(1, OpCode.create, R.CreateRequest, {
      path: "/parent/eph",
      data: null,
      acl: OPEN_ACL,
      flags: 1,
    });
    assert.equal((await c.reply())?.err, 0);
    const q = new EventQueue();
    assert.ok(await watcher.exists("/parent/eph", q.watcher));
    await a.kill("SIGKILL");
    c.close();
    const killedAt = Date.now();
    assert.equal((await q.next(20_000)).type, 2, "NodeDeleted once the session lease runs out");
    const took = Date.now() - killedAt;
    // The session lease (4/3 of the 4 s timeout + 1 s) runs out, then a reaper acts.
    assert.ok(took <= 7000 + 2500, `reaped after ${took} ms`);
    const after = (await watcher.exists("/parent"))!;
    assert.equal(after.cversion, before.cversion + 2, "one create, one delete");
    assert.ok(after.pzxid > before.pzxid, "the reaper moved the parent's pzxid");
    await watcher.close();
  } finally {
    await b.close();
  }
});

Deno.test({
  name: "SIGTERM stops a server cleanly without ending its sessions",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  await using a = await startServerProcess(etcd.endpoints, "/drain/");
  const b = await startZetcd(etcd, { prefix: "/drain/" });
  try {
    const [c, w] = await RawClient.session(a.address, { timeOut: 10000 });
    await c.send(1, OpCode.create, R.CreateRequest, {
      path: "/drained-eph",
      data: null,
      acl: OPEN_ACL,
      flags: 1,
    });
    assert.equal((await c.reply())?.err, 0);
    assert.equal(await a.kill("SIGTERM"), 0, "a clean exit");
    assert.ok(await c.closedWithin(1000), "its client connections were closed");
    c.close();
    const resumed = await RawClient.open(b.address);
    const reply = await resumed.handshake({ sessionId: w.sessionId, passwd: w.passwd });
    assert.equal(reply?.sessionId, w.sessionId, "the session lives on");
    await resumed.send(1, OpCode.exists, R.ExistsRequest, { path: "/drained-eph", watch: false });
    assert.equal((await resumed.reply())?.err, 0, "and so does its ephemeral node");
    resumed.close();
  } finally {
    await b.close();
  }
});
