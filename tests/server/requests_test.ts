/**
 * Requests no stock client sends, or sends only after validating them
 * itself: exact error codes at the frame level, against our server and
 * the ZooKeeper 3.8 oracle.
 */

import { differential } from "../_util/differential.ts";
import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { RawClient } from "../_util/raw_client.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode } from "../../src/zk/constants.ts";

const OPEN_ACL = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];

async function createCode(
  c: RawClient,
  path: string,
  options: { flags?: number; acl?: R.ACL[]; data?: Uint8Array | null } = {},
): Promise<number> {
  await c.send(1, OpCode.create, R.CreateRequest, {
    path,
    data: options.data ?? null,
    acl: options.acl ?? OPEN_ACL,
    flags: options.flags ?? 0,
  });
  return (await c.replySkippingEvents())!.err;
}

async function requestSpec(t: Deno.TestContext, address: string): Promise<void> {
  const [c] = await RawClient.session(address);
  try {
    await t.step("create checks the parent before the full path, as ZooKeeper does", async () => {
      const cases: [string, number][] = [
        ["noslash", -8],
        ["", -8],
        ["/nul\u0000", -8],
        ["/ctl\u0001", -8],
        ["/missing/", -101],
        ["/a//b", -101],
        ["/a/./b", -101],
        ["/zookeeper/", -8],
        ["/zookeeper/.", -8],
        ["/zookeeper/..", -8],
        ["/\ud83d\ude00", -8],
      ];
      for (const [path, code] of cases) {
        assert.equal(await createCode(c, path), code, `create ${JSON.stringify(path)}`);
      }
    });

    await t.step("reads of paths that cannot exist fail with NoNode", async () => {
      await c.send(2, OpCode.getData, R.GetDataRequest, { path: "/x/", watch: false });
      assert.equal((await c.reply())?.err, -101);
      await c.send(3, OpCode.getChildren, R.GetChildrenRequest, { path: "/a//b", watch: false });
      assert.equal((await c.reply())?.err, -101);
    });

    await t.step("setData validates the whole path", async () => {
      await c.send(4, OpCode.setData, R.SetDataRequest, { path: "/x/", data: null, version: -1 });
      assert.equal((await c.reply())?.err, -8);
    });

    await t.step("delete checks only for a slash and NUL, then looks the node up", async () => {
      await c.send(5, OpCode.delete, R.DeleteRequest, { path: "/x/", version: -1 });
      assert.equal((await c.reply())?.err, -101);
      await c.send(6, OpCode.delete, R.DeleteRequest, { path: "x", version: -1 });
      assert.equal((await c.reply())?.err, -8);
    });

    await t.step("a sequential create may end in a slash", async () => {
      assert.equal(await createCode(c, "/seqdir"), 0);
      await c.send(1, OpCode.create, R.CreateRequest, {
        path: "/seqdir/",
        data: null,
        acl: OPEN_ACL,
        flags: 2,
      });
      const r = await c.reply();
      assert.equal(r?.err, 0);
      assert.equal(R.CreateResponse.read(r!.body).path, "/seqdir/0000000000");
    });

    await t.step("unknown create flags fail with BadArguments", async () => {
      assert.equal(await createCode(c, "/flags", { flags: 7 }), -8);
      assert.equal(await createCode(c, "/flags", { flags: -1 }), -8);
    });

    await t.step("an empty ACL fails with InvalidACL", async () => {
      assert.equal(await createCode(c, "/noacl", { acl: [] }), -114);
    });

    await t.step("null data reads back as null", async () => {
      assert.equal(await createCode(c, "/null", { data: null }), 0);
      await c.send(2, OpCode.getData, R.GetDataRequest, { path: "/null", watch: false });
      const r = await c.reply();
      assert.equal(r?.err, 0);
      assert.equal(R.GetDataResponse.read(r!.body).data, null);
    });

    await t.step("the root can be written and synced", async () => {
      await c.send(3, OpCode.setData, R.SetDataRequest, {
        path: "/",
        data: new Uint8Array([1]),
        version: -1,
      });
      assert.equal((await c.reply())?.err, 0);
      await c.send(4, OpCode.sync, R.SyncRequest, { path: "/" });
      const r = await c.reply();
      assert.equal(r?.err, 0);
      assert.equal(R.SyncResponse.read(r!.body).path, "/");
    });

    await t.step("create2 answers with the path and a Stat", async () => {
      await c.send(5, OpCode.create2, R.CreateRequest, {
        path: "/c2",
        data: new Uint8Array([7, 7]),
        acl: OPEN_ACL,
        flags: 0,
      });
      const r = await c.reply();
      assert.equal(r?.err, 0);
      const res = R.Create2Response.read(r!.body);
      assert.equal(res.path, "/c2");
      assert.equal(res.stat.dataLength, 2);
      assert.equal(res.stat.czxid, r?.zxid);
    });

    await t.step("a write's reply zxid is the write's zxid", async () => {
      await c.send(6, OpCode.setData, R.SetDataRequest, {
        path: "/c2",
        data: null,
        version: -1,
      });
      const r = await c.reply();
      assert.equal(r?.err, 0);
      assert.equal(R.SetDataResponse.read(r!.body).stat.mzxid, r?.zxid);
    });
  } finally {
    c.close();
  }
}

differential("raw requests get ZooKeeper's answers", requestSpec);

Deno.test({
  name: "an unimplemented opcode is answered UNIMPLEMENTED and the connection stays usable",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack();
  const [c] = await RawClient.session(stack.address);
  for (const [xid, op] of [[1, 999], [2, OpCode.deleteContainer], [3, -77]]) {
    await c.send(xid, op, R.GetAllChildrenNumberRequest, { path: "/" });
    const r = await c.reply();
    assert.equal(r?.xid, xid);
    assert.equal(r?.err, -6);
  }
  await c.send(9, OpCode.exists, R.ExistsRequest, { path: "/", watch: false });
  assert.equal((await c.reply())?.err, 0);
  c.close();
});
