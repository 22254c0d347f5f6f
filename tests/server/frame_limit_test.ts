/**
 * ZooKeeper's size limit, `jute.maxbuffer` (1,048,575 bytes by default): a
 * request frame longer than that closes the connection, so a znode's data
 * stops a little under 1 MiB; replies have no such limit on the server. Runs
 * against the ZooKeeper 3.8 oracle too.
 */

import assert from "node:assert/strict";
import { differential } from "../_util/differential.ts";
import { RawClient } from "../_util/raw_client.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import { OpCode } from "../../src/zk/constants.ts";
import * as R from "../../src/zk/records.ts";

const OPEN_ACL = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];
const KIB = 1024;
const MIB = 1024 * KIB;
/** ZooKeeper's default jute.maxbuffer. */
const MAX_FRAME = 0xfffff;

function filled(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function create(c: RawClient, xid: number, path: string, data: Uint8Array | null = null) {
  await c.send(xid, OpCode.create, R.CreateRequest, { path, data, acl: OPEN_ACL, flags: 0 });
  const reply = await c.replySkippingEvents();
  assert.equal(reply?.err, 0, `create ${path}`);
}

/** Bytes of a setData request's payload besides its data. */
function setDataOverhead(c: RawClient, path: string): number {
  const empty = { path, data: new Uint8Array(), version: -1 };
  return c.frame(1, OpCode.setData, R.SetDataRequest, empty).byteLength - 4;
}

/** A setData frame for `path` whose whole payload is exactly `length` bytes. */
function setDataOfLength(c: RawClient, path: string, length: number): Uint8Array {
  const data = new Uint8Array(length - setDataOverhead(c, path));
  const frame = c.frame(1, OpCode.setData, R.SetDataRequest, { path, data, version: -1 });
  assert.equal(frame.byteLength - 4, length);
  return frame;
}

differential(
  "requests up to jute.maxbuffer are served; a longer frame closes the connection",
  async (t, address) => {
    const root = `/maxbuf-${crypto.randomUUID().slice(0, 8)}`;
    const [c] = await RawClient.session(address);
    await create(c, 1, root);
    await create(c, 2, `${root}/v`);

    await t.step("a value of 1 MiB − 1 KiB round-trips", async () => {
      const value = filled(MIB - KIB, 7);
      await c.send(3, OpCode.setData, R.SetDataRequest, {
        path: `${root}/v`,
        data: value,
        version: -1,
      });
      const set = await c.replySkippingEvents();
      assert.equal(set?.err, 0);
      assert.equal(R.SetDataResponse.read(set!.body).stat.dataLength, value.byteLength);
      await c.send(4, OpCode.getData, R.GetDataRequest, { path: `${root}/v`, watch: false });
      const got = await c.replySkippingEvents();
      assert.equal(got?.err, 0);
      assert.deepEqual(R.GetDataResponse.read(got!.body).data, value);
    });

    await t.step("a request frame of exactly 1,048,575 bytes is served", async () => {
      const [d] = await RawClient.session(address);
      await d.write(setDataOfLength(d, `${root}/v`, MAX_FRAME));
      assert.equal((await d.replySkippingEvents())?.err, 0);
      d.close();
    });

    await t.step("a request frame of 1,048,576 bytes closes the connection", async () => {
      const [d] = await RawClient.session(address);
      await d.writeRefused(setDataOfLength(d, `${root}/v`, MAX_FRAME + 1));
      assert.ok(await d.closedWithin(5000), "the server closed the connection");
      d.close();
    });

    await t.step("a value of 1 MiB + 1 KiB closes the connection and changes nothing", async () => {
      const [d] = await RawClient.session(address);
      await d.writeRefused(d.frame(1, OpCode.setData, R.SetDataRequest, {
        path: `${root}/v`,
        data: filled(MIB + KIB, 9),
        version: -1,
      }));
      assert.ok(await d.closedWithin(5000), "the server closed the connection");
      d.close();
      await c.send(5, OpCode.exists, R.ExistsRequest, { path: `${root}/v`, watch: false });
      const stat = await c.replySkippingEvents();
      assert.equal(stat?.err, 0);
      const atLimit = MAX_FRAME - setDataOverhead(c, `${root}/v`);
      assert.equal(R.ExistsResponse.read(stat!.body).stat.dataLength, atLimit, "as the last write");
    });

    await t.step("a multi over the limit closes the connection; one under it commits", async () => {
      /** A multi creating two nodes of `size` bytes each. */
      const multi = (xid: number, size: number) =>
        JuteWriter.frame((w) => {
          R.RequestHeader.write(w, { xid, type: OpCode.multi });
          for (const i of [0, 1]) {
            R.MultiHeader.write(w, { type: OpCode.create, done: false, err: -1 });
            R.CreateRequest.write(w, {
              path: `${root}/m${size}-${i}`,
              data: filled(size, i),
              acl: OPEN_ACL,
              flags: 0,
            });
          }
          R.MultiHeader.write(w, { type: -1, done: true, err: -1 });
        });
      const [d] = await RawClient.session(address);
      await d.writeRefused(multi(1, 600 * KIB));
      assert.ok(await d.closedWithin(5000), "1.2 MB of multi closed the connection");
      d.close();
      await c.write(multi(6, 400 * KIB));
      assert.equal((await c.replySkippingEvents())?.err, 0);
      await c.send(7, OpCode.getChildren, R.GetChildrenRequest, { path: root, watch: false });
      const kids = await c.replySkippingEvents();
      assert.deepEqual(R.GetChildrenResponse.read(kids!.body).children.sort(), [
        "m409600-0",
        "m409600-1",
        "v",
      ]);
    });

    await t.step(
      "a reply longer than 1 MiB (getChildren of a big parent) is sent whole",
      async () => {
        const name = (i: number) => `${String(i).padStart(4, "0")}-${"n".repeat(4000)}`;
        await create(c, 8, `${root}/wide`);
        const count = 280;
        for (let i = 0; i < count; i++) {
          await c.send(100 + i, OpCode.create, R.CreateRequest, {
            path: `${root}/wide/${name(i)}`,
            data: null,
            acl: OPEN_ACL,
            flags: 0,
          });
        }
        for (let i = 0; i < count; i++) assert.equal((await c.replySkippingEvents())?.err, 0);
        await c.send(9, OpCode.getChildren, R.GetChildrenRequest, {
          path: `${root}/wide`,
          watch: false,
        });
        const frame = await c.replySkippingEvents();
        assert.equal(frame?.err, 0);
        const children = R.GetChildrenResponse.read(frame!.body).children;
        assert.equal(children.length, count);
        assert.ok(
          children.reduce((n, s) => n + (s?.length ?? 0), 0) > MIB,
          "more than 1 MiB of names",
        );
      },
    );
    c.close();
  },
);
