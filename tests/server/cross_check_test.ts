/**
 * Cross-check mode: requests are mirrored to a real ZooKeeper, and a
 * difference is logged and counted, never crashing the server.
 */

import assert from "node:assert/strict";
import { startStack, uniquePrefix } from "../_util/zetcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { Nzk } from "../_util/nzk.ts";
import { startEtcd } from "../_util/etcd.ts";
import { startServerProcess } from "../_util/server_process.ts";
import { sleep } from "../_util/process.ts";
import { RawClient } from "../_util/raw_client.ts";
import { ZkClient } from "../../src/client/client.ts";
import { OpCode, Xid } from "../../src/zk/constants.ts";
import { OPEN_ACL } from "../../src/zk/acl.ts";
import type { JuteType } from "../../src/jute/schema.ts";
import * as R from "../../src/zk/records.ts";

async function divergences(adminAddress: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://${adminAddress}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^zetcd_oracle_divergences_total\{op="(\w+)"\} (\d+)$/gm)) {
    out[m[1]] = Number(m[2]);
  }
  return out;
}

Deno.test({
  name: "cross-check mode reports an injected divergence and keeps serving",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using zookeeper = await startZooKeeper();
  await using stack = await startStack({
    oracle: zookeeper.hostPort,
    admin: { hostname: "127.0.0.1", port: 0 },
  });
  const admin = stack.server.adminAddress!;
  const zk = await Nzk.connect(stack.address);
  try {
    await zk.create("/same", new TextEncoder().encode("x"));
    await zk.getData("/same");
    await zk.setData("/same", new TextEncoder().encode("y"));
    await zk.getChildren("/");
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await divergences(admin), {}, "identical answers: nothing reported");

    // A node only the oracle has: the two servers now answer differently.
    const direct = await Nzk.connect(zookeeper.hostPort);
    await direct.create("/only-in-zookeeper");
    await direct.close();
    await assert.rejects(zk.getData("/only-in-zookeeper"));
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await divergences(admin), { getData: 1 });

    assert.ok(await zk.exists("/same"), "the server kept serving");
  } finally {
    await zk.close();
  }
});

Deno.test({
  name: "cross-check mode survives an idle session's pings and its client leaving",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // A real process: an unhandled rejection would end it.
  await using zookeeper = await startZooKeeper();
  await using etcd = await startEtcd();
  await using server = await startServerProcess(etcd.endpoints, uniquePrefix(), [
    "--oracle",
    zookeeper.hostPort,
  ]);
  const idle = await ZkClient.connect(server.address, { timeout: 4000 });
  await idle.create("/idle");
  await sleep(4500); // pings every 1.3 s pass through the server
  await idle.close();
  await sleep(1000);

  const after = await ZkClient.connect(server.address).catch((err) => {
    assert.fail(`the server is gone (${err}):\n${server.output()}`);
  });
  try {
    assert.ok(await after.exists("/idle"), "the server still serves");
  } finally {
    await after.close();
  }
  assert.doesNotMatch(server.output(), /Uncaught/);
});

/** Sends one request over a raw connection and returns its reply. */
async function call<T>(c: RawClient, xid: number, op: number, type?: JuteType<T>, value?: T) {
  await c.send(xid, op, type, value);
  const reply = await c.replySkippingEvents();
  assert.ok(reply, "the server answered");
  return reply;
}

Deno.test({
  name: "cross-check's mirror session follows the client's session, not its connection",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using zookeeper = await startZooKeeper();
  await using stack = await startStack({
    oracle: zookeeper.hostPort,
    admin: { hostname: "127.0.0.1", port: 0 },
  });
  const admin = stack.server.adminAddress!;
  const direct = await Nzk.connect(zookeeper.hostPort);
  const ephemeral = (path: string) => ({ path, data: null, acl: OPEN_ACL, flags: 1 });
  try {
    await t.step("a reconnect keeps the mirror session and its ephemerals", async () => {
      const [first, hello] = await RawClient.session(stack.address, { timeOut: 10_000 });
      assert.equal((await call(first, 1, OpCode.create, R.CreateRequest, ephemeral("/e"))).err, 0);
      first.close(); // the connection goes, not the session
      await sleep(500);
      assert.ok(await direct.exists("/e"), "the oracle still has the session's ephemeral");

      const second = await RawClient.open(stack.address);
      await second.handshake({ sessionId: hello.sessionId, passwd: hello.passwd });
      const read = await call(second, 2, OpCode.getData, R.GetDataRequest, {
        path: "/e",
        watch: false,
      });
      assert.equal(read.err, 0);
      // The mirror takes the session's identities too: the ACL below needs one.
      const auth = await call(second, Xid.auth, OpCode.auth, R.AuthPacket, {
        type: 0,
        scheme: "digest",
        auth: new TextEncoder().encode("alice:secret"),
      });
      assert.equal(auth.err, 0);
      const creatorOnly = [{ perms: 31, id: { scheme: "auth", id: "" } }];
      const secret = await call(second, 3, OpCode.create, R.CreateRequest, {
        path: "/secret",
        data: null,
        acl: creatorOnly,
        flags: 0,
      });
      assert.equal(secret.err, 0);
      await sleep(500);
      assert.deepEqual(await divergences(admin), {}, "no false NONODE after the reconnect");
      assert.ok(await direct.exists("/secret"), "the oracle took the create");

      await call(second, 4, OpCode.closeSession);
      second.close();
      await sleep(500);
      assert.equal(await direct.exists("/e"), null, "closing the session closed its mirror");
    });

    await t.step("a session that expires takes its mirror session with it", async () => {
      const [c] = await RawClient.session(stack.address, { timeOut: 4000 });
      assert.equal((await call(c, 1, OpCode.create, R.CreateRequest, ephemeral("/x"))).err, 0);
      c.close();
      await sleep(1000);
      assert.ok(await direct.exists("/x"), "the session lives on for its timeout");
      await sleep(6000);
      assert.equal(await direct.exists("/x"), null, "expired with the session");
    });
  } finally {
    await direct.close();
  }
});
