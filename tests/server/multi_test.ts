/**
 * multi (14) at the frame level: per-operation results, atomicity, and
 * operations seeing the effects of earlier ones — against our server and
 * the ZooKeeper 3.8 oracle.
 */

import { differential } from "../_util/differential.ts";
import assert from "node:assert/strict";
import { RawClient } from "../_util/raw_client.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import type { JuteReader } from "../../src/jute/reader.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode } from "../../src/zk/constants.ts";

const OPEN_ACL = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];
const bytes = (s: string) => new TextEncoder().encode(s);

type Sub =
  | ["create", string, number?]
  | ["create2", string]
  | ["delete", string, number?]
  | ["setData", string, string, number?]
  | ["check", string, number];

/** A decoded multi result: type and error, plus what its body holds. */
interface Result {
  type: number;
  err: number;
  path?: string;
  stat?: R.Stat;
  data?: string;
  children?: string[];
}

function readResults(r: JuteReader): Result[] {
  const out: Result[] = [];
  for (;;) {
    const h = R.MultiHeader.read(r);
    if (h.done) return out;
    const res: Result = { type: h.type, err: h.err };
    if (h.type === 1) res.path = R.CreateResponse.read(r).path!;
    if (h.type === 15) Object.assign(res, R.Create2Response.read(r));
    if (h.type === 5) res.stat = R.SetDataResponse.read(r).stat;
    if (h.type === 4) {
      const d = R.GetDataResponse.read(r);
      res.data = new TextDecoder().decode(d.data ?? new Uint8Array());
      res.stat = d.stat;
    }
    if (h.type === 8) res.children = R.GetChildrenResponse.read(r).children.map(String).sort();
    if (h.type === -1) assert.equal(R.ErrorResponse.read(r).err, h.err);
    out.push(res);
  }
}

let xid = 100;

async function multi(c: RawClient, subs: Sub[]): Promise<Result[]> {
  const frame = JuteWriter.frame((w) => {
    R.RequestHeader.write(w, { xid: ++xid, type: OpCode.multi });
    for (const s of subs) {
      const head = (type: number) => R.MultiHeader.write(w, { type, done: false, err: -1 });
      switch (s[0]) {
        case "create":
        case "create2":
          head(s[0] === "create" ? OpCode.create : OpCode.create2);
          R.CreateRequest.write(w, {
            path: s[1],
            data: bytes("d"),
            acl: OPEN_ACL,
            flags: s[0] === "create" ? s[2] ?? 0 : 0,
          });
          break;
        case "delete":
          head(OpCode.delete);
          R.DeleteRequest.write(w, { path: s[1], version: s[2] ?? -1 });
          break;
        case "setData":
          head(OpCode.setData);
          R.SetDataRequest.write(w, { path: s[1], data: bytes(s[2]), version: s[3] ?? -1 });
          break;
        case "check":
          head(OpCode.check);
          R.CheckVersionRequest.write(w, { path: s[1], version: s[2] });
          break;
      }
    }
    R.MultiHeader.write(w, { type: -1, done: true, err: -1 });
  });
  await c.write(frame);
  const r = await c.replySkippingEvents();
  assert.equal(r?.xid, xid);
  assert.equal(r?.err, 0, "a multi's header carries no error, even when it fails");
  return readResults(r!.body);
}

/**
 * Sends a multi or multiRead of creates and reads; resolves to the results,
 * or to the reply header's error code when the server refused it whole.
 */
async function rawMulti(
  c: RawClient,
  type: number,
  subs: [number, string][],
): Promise<Result[] | number> {
  await c.write(JuteWriter.frame((w) => {
    R.RequestHeader.write(w, { xid: ++xid, type });
    for (const [op, path] of subs) {
      R.MultiHeader.write(w, { type: op, done: false, err: -1 });
      if (op === OpCode.create) {
        R.CreateRequest.write(w, { path, data: null, acl: OPEN_ACL, flags: 0 });
      } else R.GetDataRequest.write(w, { path, watch: false });
    }
    R.MultiHeader.write(w, { type: -1, done: true, err: -1 });
  }));
  const r = await c.replySkippingEvents();
  assert.equal(r?.xid, xid);
  return r!.err !== 0 ? r!.err : readResults(r!.body);
}

async function stat(c: RawClient, path: string): Promise<R.Stat | null> {
  await c.send(++xid, OpCode.exists, R.ExistsRequest, { path, watch: false });
  const r = await c.replySkippingEvents();
  return r?.err === 0 ? R.Stat.read(r.body) : null;
}

const kinds = (rs: Result[] | number) =>
  typeof rs === "number" ? rs : rs.map((r) => [r.type, r.err]);

async function multiSpec(t: Deno.TestContext, address: string): Promise<void> {
  const [c] = await RawClient.session(address);
  try {
    await t.step("an empty multi succeeds with no results", async () => {
      assert.deepEqual(await multi(c, []), []);
    });

    await t.step("operations see the effects of earlier ones in the same multi", async () => {
      const rs = await multi(c, [
        ["create", "/m"],
        ["setData", "/m", "v1", 0],
        ["check", "/m", 1],
        ["create", "/m/s-", 2],
        ["create", "/m/s-", 2],
        ["delete", "/m/s-0000000000"],
      ]);
      assert.deepEqual(kinds(rs), [[1, 0], [5, 0], [13, 0], [1, 0], [1, 0], [2, 0]]);
      assert.equal(rs[0].path, "/m");
      assert.equal(rs[1].stat?.version, 1);
      assert.equal(rs[3].path, "/m/s-0000000000");
      assert.equal(rs[4].path, "/m/s-0000000001");
      const m = await stat(c, "/m");
      assert.equal(m?.version, 1);
      assert.equal(m?.numChildren, 1);
      assert.equal(m?.cversion, 3, "two creates and one delete");
      assert.equal(m?.czxid, m?.mzxid, "one multi, one zxid");
    });

    await t.step(
      "a node deleted and created again in one multi is new: the multi's czxid, versions from 0",
      async () => {
        await multi(c, [["create", "/re"], ["setData", "/re", "v", 0]]);
        const before = await stat(c, "/re");
        assert.deepEqual(kinds(await multi(c, [["delete", "/re"], ["create", "/re"]])), [[2, 0], [
          1,
          0,
        ]]);
        const after = await stat(c, "/re");
        assert.ok(after!.czxid > before!.czxid);
        assert.deepEqual([after!.mzxid, after!.version], [after!.czxid, 0]);
        // A later write keeps the new czxid.
        assert.deepEqual(kinds(await multi(c, [["setData", "/re", "w", 0]])), [[5, 0]]);
        const later = await stat(c, "/re");
        assert.deepEqual([later!.czxid, later!.version], [after!.czxid, 1]);
        assert.deepEqual(kinds(await multi(c, [["delete", "/re"]])), [[2, 0]]);
      },
    );

    await t.step("a failing multi reports every operation and applies none", async () => {
      const rs = await multi(c, [
        ["create", "/m/a"],
        ["setData", "/m", "x"],
        ["check", "/m", 7],
        ["create", "/m/b"],
      ]);
      assert.deepEqual(kinds(rs), [[-1, 0], [-1, 0], [-1, -103], [-1, -2]]);
      assert.equal(await stat(c, "/m/a"), null);
      assert.equal((await stat(c, "/m"))?.version, 1);
    });

    await t.step("the first failing operation decides the error", async () => {
      const rs = await multi(c, [["delete", "/nowhere"], ["create", "/m"]]);
      assert.deepEqual(kinds(rs), [[-1, -101], [-1, -2]]);
      const exists = await multi(c, [["create", "/m"]]);
      assert.deepEqual(kinds(exists), [[-1, -110]]);
      const notEmpty = await multi(c, [["delete", "/m"]]);
      assert.deepEqual(kinds(notEmpty), [[-1, -111]]);
    });

    await t.step(
      "a create2 sub-operation answers with the path only, as ZooKeeper 3.8 does",
      async () => {
        const rs = await multi(c, [["create2", "/m2"]]);
        assert.deepEqual(kinds(rs), [[1, 0]]);
        assert.equal(rs[0].path, "/m2");
        assert.equal(rs[0].stat, undefined);
      },
    );

    await t.step("two setData on one node in one multi bump its version twice", async () => {
      const rs = await multi(c, [["setData", "/m2", "a"], ["setData", "/m2", "b", 1]]);
      assert.deepEqual(kinds(rs), [[5, 0], [5, 0]]);
      assert.equal(rs[1].stat?.version, 2);
      assert.equal((await stat(c, "/m2"))?.version, 2);
      const after = await multi(c, [["setData", "/m2", "c", 2]]);
      assert.equal(after[0].stat?.version, 3, "later writes keep counting");
    });

    await t.step("reads in a multi are refused as a marshalling error", async () => {
      assert.equal(await rawMulti(c, OpCode.multi, [[OpCode.getData, "/"]]), -5);
      assert.equal(
        await rawMulti(c, OpCode.multi, [[OpCode.create, "/mixed"], [OpCode.getData, "/"]]),
        -5,
      );
      assert.equal(await stat(c, "/mixed"), null, "nothing of it was applied");
    });

    await t.step("multiRead answers each read on its own, failures included", async () => {
      const rs = await rawMulti(c, OpCode.multiRead, [
        [OpCode.getData, "/m2"],
        [OpCode.getData, "/nope"],
        [OpCode.getChildren, "/m"],
      ]);
      assert.ok(Array.isArray(rs));
      assert.deepEqual(kinds(rs), [[4, 0], [-1, -101], [8, 0]]);
      assert.deepEqual(rs[2].children, ["s-0000000001"]);
      assert.equal(rs[0].data, "c");
      assert.deepEqual(await rawMulti(c, OpCode.multiRead, []), []);
    });

    await t.step("a write in a multiRead is refused as a marshalling error", async () => {
      assert.equal(await rawMulti(c, OpCode.multiRead, [[OpCode.create, "/y"]]), -5);
    });

    await t.step("a subtree is deleted children first in one multi", async () => {
      const rs = await multi(c, [
        ["delete", "/m/s-0000000001"],
        ["delete", "/m"],
        ["delete", "/m2", 3],
      ]);
      assert.deepEqual(kinds(rs), [[2, 0], [2, 0], [2, 0]]);
      assert.equal(await stat(c, "/m"), null);
      assert.equal(await stat(c, "/m2"), null);
    });
  } finally {
    c.close();
  }
}

differential("multi behaves as ZooKeeper's", multiSpec);
