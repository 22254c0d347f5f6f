/**
 * Znode operations through a stock client (node-zookeeper-client), each
 * step one behaviour of ZooKeeper that the server must reproduce.
 */

import { differential } from "../_util/differential.ts";
import assert from "node:assert/strict";
import { ACL, CreateMode, Id, Nzk, NzkError } from "../_util/nzk.ts";

const text = new TextEncoder();
const str = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

async function rejectsWithCode(p: Promise<unknown>, code: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof NzkError, `expected a ZooKeeper error, got ${err}`);
    assert.equal(err.code, code, String(err));
    return true;
  });
}

/** The specification, run against our server and against real ZooKeeper. */
async function znodeSpec(t: Deno.TestContext, address: string): Promise<void> {
  const zk = await Nzk.connect(address);
  try {
    await t.step("a fresh tree holds /zookeeper with quota and config", async () => {
      assert.deepEqual((await zk.getChildren("/")).children, ["zookeeper"]);
      assert.deepEqual((await zk.getChildren("/zookeeper")).children, ["config", "quota"]);
      const root = await zk.exists("/");
      assert.equal(root?.cversion, -1, "root counts /zookeeper as never created");
    });

    await t.step("create then getData returns the data and a fresh stat", async () => {
      assert.equal(await zk.create("/plain", text.encode("hello")), "/plain");
      const { data, stat } = await zk.getData("/plain");
      assert.equal(str(data), "hello");
      assert.equal(stat.version, 0);
      assert.equal(stat.cversion, 0);
      assert.equal(stat.aversion, 0);
      assert.equal(stat.dataLength, 5);
      assert.equal(stat.numChildren, 0);
      assert.equal(stat.ephemeralOwner, 0n);
      assert.equal(stat.czxid, stat.mzxid);
      assert.equal(stat.pzxid, stat.czxid);
      assert.equal(stat.ctime, stat.mtime);
      assert.ok(Math.abs(Number(stat.ctime) - Date.now()) < 60_000, "ctime is ms since epoch");
    });

    await t.step("empty data stays empty", async () => {
      await zk.create("/emptydata", new Uint8Array());
      assert.deepEqual((await zk.getData("/emptydata")).data, new Uint8Array());
    });

    await t.step("setData bumps version and mzxid but not czxid", async () => {
      const before = (await zk.getData("/plain")).stat;
      const stat = await zk.setData("/plain", text.encode("v1"), 0);
      assert.equal(stat.version, 1);
      assert.equal(stat.czxid, before.czxid);
      assert.ok(stat.mzxid > before.mzxid);
      assert.equal(stat.dataLength, 2);
      assert.equal(str((await zk.getData("/plain")).data), "v1");
    });

    await t.step("setData with a stale version fails with BadVersion", async () => {
      await rejectsWithCode(zk.setData("/plain", text.encode("x"), 0), -103);
    });

    await t.step("operations on a missing node fail with NoNode", async () => {
      await rejectsWithCode(zk.getData("/missing"), -101);
      await rejectsWithCode(zk.setData("/missing", new Uint8Array()), -101);
      await rejectsWithCode(zk.remove("/missing"), -101);
      await rejectsWithCode(zk.getChildren("/missing"), -101);
      await rejectsWithCode(zk.getACL("/missing"), -101);
      assert.equal(await zk.exists("/missing"), null);
    });

    await t.step("create under a missing parent fails with NoNode", async () => {
      await rejectsWithCode(zk.create("/missing/child"), -101);
    });

    await t.step("creating an existing node fails with NodeExists", async () => {
      await rejectsWithCode(zk.create("/plain"), -110);
    });

    await t.step("deleting a node with children fails with NotEmpty", async () => {
      await zk.create("/parent");
      await zk.create("/parent/kid");
      await rejectsWithCode(zk.remove("/parent"), -111);
    });

    await t.step("delete with a wrong version fails with BadVersion", async () => {
      await rejectsWithCode(zk.remove("/parent/kid", 5), -103);
      await zk.remove("/parent/kid", 0);
      assert.equal(await zk.exists("/parent/kid"), null);
    });

    await t.step("ephemeral nodes cannot have children", async () => {
      await zk.create("/eph", null, CreateMode.EPHEMERAL);
      await rejectsWithCode(zk.create("/eph/kid"), -108);
      await rejectsWithCode(zk.create("/eph/kid-", null, CreateMode.PERSISTENT_SEQUENTIAL), -108);
    });

    await t.step("an ephemeral node records its session as owner", async () => {
      const stat = await zk.exists("/eph");
      assert.equal(stat?.ephemeralOwner, zk.sessionId);
    });

    await t.step("system nodes cannot be deleted", async () => {
      await rejectsWithCode(zk.remove("/zookeeper"), -8);
      await rejectsWithCode(zk.remove("/zookeeper/quota"), -8);
    });

    await t.step("sequential names count every child ever created", async () => {
      await zk.create("/q");
      assert.equal(await zk.create("/q/a"), "/q/a");
      assert.equal(
        await zk.create("/q/s-", null, CreateMode.PERSISTENT_SEQUENTIAL),
        "/q/s-0000000001",
      );
      await zk.remove("/q/a");
      await zk.remove("/q/s-0000000001");
      assert.equal(
        await zk.create("/q/e-", null, CreateMode.EPHEMERAL_SEQUENTIAL),
        "/q/e-0000000002",
      );
    });

    await t.step("cversion counts child creates and deletes", async () => {
      // /q: 3 creates, 2 deletes, 1 child left: ZooKeeper reports 2·3 − 1 = 5.
      const stat = await zk.exists("/q");
      assert.equal(stat?.cversion, 5);
      assert.equal(stat?.numChildren, 1);
    });

    await t.step("pzxid moves on child create and on child delete", async () => {
      await zk.create("/pz");
      const created = (await zk.exists("/pz"))!;
      await zk.create("/pz/c");
      const afterCreate = (await zk.exists("/pz"))!;
      assert.ok(afterCreate.pzxid > created.pzxid);
      assert.equal(afterCreate.mzxid, created.mzxid, "children do not change mzxid");
      await zk.remove("/pz/c");
      const afterDelete = (await zk.exists("/pz"))!;
      assert.ok(afterDelete.pzxid > afterCreate.pzxid);
      assert.equal(afterDelete.cversion, 2);
    });

    await t.step("getChildren lists bare names", async () => {
      await zk.create("/list");
      await zk.create("/list/b");
      await zk.create("/list/a");
      await zk.create("/list/a/deeper");
      const { children, stat } = await zk.getChildren("/list");
      assert.deepEqual(children, ["a", "b"]);
      assert.equal(stat.numChildren, 2);
    });

    await t.step("setACL stores the ACL and bumps aversion; a stale aversion fails", async () => {
      await zk.create("/acl");
      const acl = [new ACL(1, new Id("world", "anyone")), new ACL(31, new Id("ip", "127.0.0.1"))];
      const stat = await zk.setACL("/acl", acl, 0);
      assert.equal(stat.aversion, 1);
      const got = await zk.getACL("/acl");
      assert.deepEqual(got.acls, [
        { perms: 1, scheme: "world", id: "anyone" },
        { perms: 31, scheme: "ip", id: "127.0.0.1" },
      ]);
      await rejectsWithCode(zk.setACL("/acl", acl, 0), -103);
    });

    await t.step("an invalid ACL fails with InvalidACL", async () => {
      await rejectsWithCode(
        zk.create("/badacl", null, CreateMode.PERSISTENT, [new ACL(31, new Id("nope", "x"))]),
        -114,
      );
      await rejectsWithCode(
        zk.create("/badacl", null, CreateMode.PERSISTENT, [new ACL(31, new Id("auth", ""))]),
        -114,
      );
    });

    await t.step("an auth ACL expands to the session's digest identity", async () => {
      zk.addAuth("digest", "alice:secret");
      await zk.create("/mine", null, CreateMode.PERSISTENT, [new ACL(31, new Id("auth", ""))]);
      const { acls } = await zk.getACL("/mine");
      // base64(sha1("alice:secret"))
      assert.deepEqual(acls, [{
        perms: 31,
        scheme: "digest",
        id: "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=",
      }]);
    });
  } finally {
    await zk.close();
  }
}

differential("znode operations behave as ZooKeeper's", znodeSpec);
