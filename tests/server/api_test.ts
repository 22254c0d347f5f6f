/**
 * The ZooKeeper 3.5+ API: containers, TTL nodes, getEphemerals,
 * getAllChildrenNumber, whoAmI, reconfig and SASL on a standalone server —
 * against our server and the ZooKeeper 3.8 oracle.
 */

import assert from "node:assert/strict";
import { differential } from "../_util/differential.ts";
import { RawClient } from "../_util/raw_client.ts";
import type { JuteType } from "../../src/jute/schema.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode } from "../../src/zk/constants.ts";

const OPEN = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];
let xid = 0;

async function call<T>(c: RawClient, op: number, type?: JuteType<T>, v?: T) {
  await c.send(++xid, op, type, v);
  const r = await c.replySkippingEvents();
  assert.ok(r, "the server answered");
  return r;
}

async function exists(c: RawClient, path: string): Promise<R.Stat | null> {
  const r = await call(c, OpCode.exists, R.ExistsRequest, { path, watch: false });
  return r.err === 0 ? R.Stat.read(r.body) : null;
}

async function waitGone(c: RawClient, path: string, ms: number): Promise<number> {
  const start = Date.now();
  while (await exists(c, path)) {
    if (Date.now() - start > ms) return -1;
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - start;
}

async function apiSpec(t: Deno.TestContext, address: string): Promise<void> {
  const [c] = await RawClient.session(address);
  const create = (op: number, path: string, flags: number, ttl?: bigint) =>
    op === OpCode.createTTL
      ? call(c, op, R.CreateTTLRequest, { path, data: null, acl: OPEN, flags, ttl: ttl ?? 0n })
      : call(c, op, R.CreateRequest, { path, data: null, acl: OPEN, flags });
  try {
    await t.step("create modes are checked against the opcode as ZooKeeper does", async () => {
      const cases: [number, number, bigint | undefined, number][] = [
        [OpCode.create, 5, undefined, -8],
        [OpCode.createTTL, 0, 5n, -8],
        [OpCode.createTTL, 5, 0n, -8],
        [OpCode.createTTL, 5, 1n << 40n, -8],
        [OpCode.createTTL, 1, 100n, -8],
        [OpCode.createTTL, 4, 100n, -8],
        [OpCode.create, 7, undefined, -8],
      ];
      for (const [op, flags, ttl, code] of cases) {
        assert.equal((await create(op, "/mode", flags, ttl)).err, code, `op ${op} flags ${flags}`);
      }
    });

    await t.step("a container answers create2 with a Stat whose owner is 0", async () => {
      const r = await create(OpCode.createContainer, "/box", 4);
      assert.equal(r.err, 0);
      const res = R.Create2Response.read(r.body);
      assert.equal(res.path, "/box");
      assert.equal(res.stat.ephemeralOwner, 0n);
      const plain = await create(OpCode.create, "/box-by-flags", 4);
      assert.equal(plain.err, 0);
      assert.equal(R.CreateResponse.read(plain.body).path, "/box-by-flags");
    });

    await t.step("an empty container stays until it has had a child", async () => {
      assert.equal(await waitGone(c, "/box", 800), -1);
    });

    await t.step("a container is deleted once its last child has gone", async () => {
      assert.equal((await create(OpCode.create, "/box/kid", 0)).err, 0);
      assert.equal(
        (await call(c, OpCode.delete, R.DeleteRequest, { path: "/box/kid", version: -1 })).err,
        0,
      );
      assert.ok((await waitGone(c, "/box", 5000)) >= 0, "the container was deleted");
    });

    await t.step("a TTL node answers with a Stat whose owner is 0", async () => {
      const r = await create(OpCode.createTTL, "/ttl", 5, 1000n);
      assert.equal(r.err, 0);
      assert.equal(R.Create2Response.read(r.body).stat.ephemeralOwner, 0n);
      const seq = await create(OpCode.createTTL, "/ttl-seq-", 6, 60_000n);
      assert.equal(seq.err, 0);
      assert.match(R.Create2Response.read(seq.body).path!, /^\/ttl-seq-\d{10}$/);
    });

    await t.step(
      "a TTL node with a child stays; once childless and idle for its TTL it goes",
      async () => {
        assert.equal((await create(OpCode.create, "/ttl/kid", 0)).err, 0);
        await new Promise((r) => setTimeout(r, 1500));
        assert.ok(await exists(c, "/ttl"), "a child keeps it");
        assert.equal(
          (await call(c, OpCode.delete, R.DeleteRequest, { path: "/ttl/kid", version: -1 })).err,
          0,
        );
        assert.ok((await waitGone(c, "/ttl", 5000)) >= 0, "the TTL node was deleted");
      },
    );

    await t.step("getAllChildrenNumber counts every descendant", async () => {
      for (const p of ["/count", "/count/a", "/count/a/b", "/count/a/b/c", "/count/d"]) {
        assert.equal((await create(OpCode.create, p, 0)).err, 0);
      }
      const r = await call(c, OpCode.getAllChildrenNumber, R.GetAllChildrenNumberRequest, {
        path: "/count",
      });
      assert.equal(r.err, 0);
      assert.equal(R.GetAllChildrenNumberResponse.read(r.body).totalNumber, 4);
      const missing = await call(c, OpCode.getAllChildrenNumber, R.GetAllChildrenNumberRequest, {
        path: "/nope",
      });
      assert.equal(missing.err, -101);
    });

    await t.step("getEphemerals lists this session's ephemerals under a prefix", async () => {
      for (const p of ["/count/e1", "/count/a/e2", "/e3"]) {
        assert.equal((await create(OpCode.create, p, 1)).err, 0);
      }
      const list = async (prefixPath: string) => {
        const r = await call(c, OpCode.getEphemerals, R.GetEphemeralsRequest, { prefixPath });
        assert.equal(r.err, 0);
        return R.GetEphemeralsResponse.read(r.body).ephemerals.map(String).sort();
      };
      assert.deepEqual(await list("/"), ["/count/a/e2", "/count/e1", "/e3"]);
      assert.deepEqual(await list("/count"), ["/count/a/e2", "/count/e1"]);
      const [other] = await RawClient.session(address);
      await other.send(1, OpCode.getEphemerals, R.GetEphemeralsRequest, { prefixPath: "/" });
      const r = await other.reply();
      assert.deepEqual(R.GetEphemeralsResponse.read(r!.body).ephemerals, []);
      other.close();
    });

    await t.step("whoAmI names the digest users, then the client's address", async () => {
      const before = await call(c, OpCode.whoAmI);
      assert.deepEqual(R.WhoAmIResponse.read(before.body).clientInfo, [
        { authScheme: "ip", user: "127.0.0.1" },
      ]);
      await c.send(-4, OpCode.auth, R.AuthPacket, {
        type: 0,
        scheme: "digest",
        auth: new TextEncoder().encode("alice:secret"),
      });
      assert.equal((await c.reply())?.err, 0);
      const after = await call(c, OpCode.whoAmI);
      assert.deepEqual(R.WhoAmIResponse.read(after.body).clientInfo, [
        { authScheme: "digest", user: "alice" },
        { authScheme: "ip", user: "127.0.0.1" },
      ]);
    });

    await t.step("reconfig is refused as on a standalone server", async () => {
      const r = await call(c, OpCode.reconfig, R.ReconfigRequest, {
        joiningServers: "",
        leavingServers: "",
        newMembers: "",
        curConfigId: -1n,
      });
      assert.equal(r.err, -123);
    });

    await t.step("a SASL token gets the answer of a server without SASL", async () => {
      const r = await call(c, OpCode.sasl, R.GetSASLRequest, { token: new Uint8Array([1, 2]) });
      assert.equal(r.err, 0);
      assert.deepEqual(R.SetSASLResponse.read(r.body), { token: null });
    });

    await t.step(
      "getConfig reads /zookeeper/config: empty on a standalone ZooKeeper, the live servers on zetcd",
      async () => {
        const r = await call(c, OpCode.getData, R.GetDataRequest, {
          path: "/zookeeper/config",
          watch: false,
        });
        assert.equal(r.err, 0);
        const data = R.GetDataResponse.read(r.body).data ?? new Uint8Array();
        const text = new TextDecoder().decode(data);
        if (text !== "") {
          const self = address.replaceAll(".", "\\.");
          assert.match(text, new RegExp(`^server\\.1=[^;]+;${self}\\nversion=[0-9a-f]+$`));
        }
      },
    );
  } finally {
    c.close();
  }
}

differential("the 3.5+ API behaves as ZooKeeper's", apiSpec);
