/**
 * A session that pipelines its requests (sends many before reading any
 * reply, as the C client, Curator's async API and ClickHouse do) gets its
 * replies in order, each write seeing every write before it and each read
 * every request before it — on this server, where writes of one session are
 * prepared together, as on ZooKeeper.
 */

import assert from "node:assert/strict";
import { differential } from "../_util/differential.ts";
import { startStack, startZetcd, uniquePrefix } from "../_util/zetcd.ts";
import { startEtcd } from "../_util/etcd.ts";
import { EtcdClient } from "../../src/etcd/client.ts";
import { Keys } from "../../src/store/keys.ts";
import { decodeSession } from "../../src/store/values.ts";
import { RawClient } from "../_util/raw_client.ts";
import { Code, OpCode } from "../../src/zk/constants.ts";
import * as R from "../../src/zk/records.ts";
import type { JuteReader } from "../../src/jute/reader.ts";

const OPEN_ACL = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];
const text = new TextEncoder();

/** Frames of a create, setData, delete, exists and getChildren, by xid. */
function requests(c: RawClient, root: string) {
  return {
    create: (xid: number, path: string, flags = 0) =>
      c.frame(xid, OpCode.create, R.CreateRequest, { path, data: null, acl: OPEN_ACL, flags }),
    setData: (xid: number, path: string, data: string, version: number) =>
      c.frame(xid, OpCode.setData, R.SetDataRequest, { path, data: text.encode(data), version }),
    delete: (xid: number, path: string) =>
      c.frame(xid, OpCode.delete, R.DeleteRequest, { path, version: -1 }),
    exists: (xid: number, path: string) =>
      c.frame(xid, OpCode.exists, R.ExistsRequest, { path, watch: false }),
    getData: (xid: number, path: string) =>
      c.frame(xid, OpCode.getData, R.GetDataRequest, { path, watch: false }),
    children: (xid: number) =>
      c.frame(xid, OpCode.getChildren, R.GetChildrenRequest, { path: root, watch: false }),
  };
}

differential(
  "pipelined requests are answered in order, each seeing those before it",
  async (t, address) => {
    const root = `/pipe-${crypto.randomUUID().slice(0, 8)}`;
    const [c] = await RawClient.session(address);
    const q = requests(c, root);

    await t.step("writes that depend on each other, and reads between them", async () => {
      const frames = [
        q.create(1, root),
        q.create(2, `${root}/a`),
        q.create(3, `${root}/a/b`),
        q.setData(4, `${root}/a`, "one", 0),
        q.setData(5, `${root}/a`, "two", 0), // BadVersion: the one before moved it to 1
        q.getData(6, `${root}/a`),
        q.delete(7, `${root}/a`), // NotEmpty: b is there
        q.delete(8, `${root}/a/b`),
        q.delete(9, `${root}/a`),
        q.exists(10, `${root}/a`), // NoNode
        q.create(11, `${root}/s-`, 2),
        q.create(12, `${root}/s-`, 2),
        q.children(13),
      ];
      await c.write(concat(frames));
      const codes: [number, number][] = [];
      const bodies = new Map<number, JuteReader>();
      for (let i = 0; i < frames.length; i++) {
        const reply = await c.replySkippingEvents();
        assert.ok(reply, "the server answered");
        codes.push([reply.xid, reply.err]);
        bodies.set(reply.xid, reply.body);
      }
      assert.deepEqual(codes, [
        [1, 0],
        [2, 0],
        [3, 0],
        [4, 0],
        [5, Code.BADVERSION],
        [6, 0],
        [7, Code.NOTEMPTY],
        [8, 0],
        [9, 0],
        [10, Code.NONODE],
        [11, 0],
        [12, 0],
        [13, 0],
      ]);
      const got = R.GetDataResponse.read(bodies.get(6)!);
      assert.equal(new TextDecoder().decode(got.data ?? new Uint8Array()), "one");
      assert.equal(got.stat.version, 1);
      // a was the parent's first child: the sequence goes on from 1.
      assert.equal(R.CreateResponse.read(bodies.get(11)!).path, `${root}/s-0000000001`);
      assert.equal(R.CreateResponse.read(bodies.get(12)!).path, `${root}/s-0000000002`);
      assert.deepEqual(R.GetChildrenResponse.read(bodies.get(13)!).children.sort(), [
        "s-0000000001",
        "s-0000000002",
      ]);
    });

    await t.step(
      "a thousand pipelined sequential creates get consecutive numbers in order",
      async () => {
        const count = 1000;
        const frames = Array.from({ length: count }, (_, i) => q.create(100 + i, `${root}/n-`, 2));
        await c.write(concat(frames));
        for (let i = 0; i < count; i++) {
          const reply = await c.replySkippingEvents();
          assert.equal(reply?.xid, 100 + i);
          assert.equal(reply?.err, 0);
          const n = String(3 + i).padStart(10, "0");
          assert.equal(R.CreateResponse.read(reply!.body).path, `${root}/n-${n}`);
        }
      },
    );
    c.close();
  },
);

function concat(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.byteLength, 0));
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.byteLength;
  }
  return out;
}

Deno.test({
  name:
    "an ephemeral on a lease etcd no longer has fails alone; the writes batched with it succeed",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const prefix = uniquePrefix();
  await using stack = await startStack({ prefix });
  const [gone, goneHello] = await RawClient.session(stack.address);
  const [other] = await RawClient.session(stack.address);
  // The session's ephemeral lease ends behind the server's back (as when it expires in etcd).
  const etcd = EtcdClient.connect({ endpoints: stack.etcd.endpoints });
  try {
    const record = await etcd.read([{ get: new Keys(prefix).session(goneHello.sessionId) }]);
    const { ephemeralLease } = decodeSession(record.results[0]!.kvs[0].value);
    await etcd.revokeLease(ephemeralLease);
  } finally {
    etcd.close();
  }
  const q = requests(other, "/");
  const frames = Array.from({ length: 40 }, (_, i) => q.create(i + 1, `/batched-${i}`));
  await other.write(concat(frames.slice(0, 20)));
  await gone.write(requests(gone, "/").create(1, "/ephemeral-of-a-gone-lease", 1));
  await other.write(concat(frames.slice(20)));
  for (let i = 0; i < frames.length; i++) {
    const reply = await other.replySkippingEvents();
    assert.equal(reply?.err, 0, `create ${i + 1} of the other session`);
  }
  const reply = await gone.replySkippingEvents();
  assert.ok(reply === null || reply.err !== 0, "the ephemeral was not created");
  gone.close();
  other.close();
});

Deno.test({
  name: "on an etcd with the default --max-txn-ops (128), a large batch of writes goes in parts",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd(["--max-txn-ops=128"]);
  const server = await startZetcd(etcd);
  try {
    const [c] = await RawClient.session(server.address);
    const q = requests(c, "/");
    // 200 creates, each a handful of etcd operations: far more than 128 in one batch.
    const frames = Array.from({ length: 200 }, (_, i) => q.create(i + 1, `/part-${i}`));
    await c.write(concat(frames));
    for (let i = 0; i < frames.length; i++) {
      const reply = await c.replySkippingEvents();
      assert.equal(reply?.err, 0, `create ${i + 1}`);
    }
    c.close();
  } finally {
    await server.close();
  }
});
