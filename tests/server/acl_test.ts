/**
 * ACL enforcement: for each operation × each permission, a client whose
 * identity lacks that permission on the node gets the same answer from our
 * server as from ZooKeeper 3.8 (NoAuth exactly where ZooKeeper checks it).
 */

import assert from "node:assert/strict";
import { differential } from "../_util/differential.ts";
import { startStack } from "../_util/zetcd.ts";
import { RawClient } from "../_util/raw_client.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import type { JuteType } from "../../src/jute/schema.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode, Perms } from "../../src/zk/constants.ts";
import { digestId } from "../../src/zk/acl.ts";

const text = new TextEncoder();
const ALICE = digestId("alice:secret");
const BOB = digestId("bob:pw");
const PERMS = {
  READ: Perms.READ,
  WRITE: Perms.WRITE,
  CREATE: Perms.CREATE,
  DELETE: Perms.DELETE,
  ADMIN: Perms.ADMIN,
};

/** A raw session authenticated with a digest credential. */
async function as(address: string, credential: string): Promise<RawClient> {
  const [c] = await RawClient.session(address);
  await c.send(-4, OpCode.auth, R.AuthPacket, {
    type: 0,
    scheme: "digest",
    auth: text.encode(credential),
  });
  const r = await c.reply();
  assert.equal(r?.err, 0);
  return c;
}

let xid = 0;
async function call<T>(
  c: RawClient,
  op: number,
  type: JuteType<T> | undefined,
  v?: T,
): Promise<number> {
  await c.send(++xid, op, type, v);
  const r = await c.replySkippingEvents();
  assert.ok(r, "the server answered");
  return r.err;
}

/** A one-op multi (or multiRead); its code is the op's result error, or the header's. */
async function multi1(c: RawClient, type: number, op: number, write: (w: JuteWriter) => void) {
  await c.write(JuteWriter.frame((w) => {
    R.RequestHeader.write(w, { xid: ++xid, type });
    R.MultiHeader.write(w, { type: op, done: false, err: -1 });
    write(w);
    R.MultiHeader.write(w, { type: -1, done: true, err: -1 });
  }));
  const r = await c.replySkippingEvents();
  if (r!.err !== 0) return r!.err;
  const h = R.MultiHeader.read(r!.body);
  return h.type === -1 ? h.err : 0;
}

const acl = (perms: number, scheme: string, id: string) => ({ perms, id: { scheme, id } });

/** Operations as bob on node `p` (which has a child `p/kid`), each returning its error code. */
const OPS: Record<string, (c: RawClient, p: string) => Promise<number>> = {
  getData: (c, p) => call(c, OpCode.getData, R.GetDataRequest, { path: p, watch: false }),
  exists: (c, p) => call(c, OpCode.exists, R.ExistsRequest, { path: p, watch: false }),
  getChildren: (c, p) =>
    call(c, OpCode.getChildren, R.GetChildrenRequest, { path: p, watch: false }),
  getChildren2: (c, p) =>
    call(c, OpCode.getChildren2, R.GetChildren2Request, { path: p, watch: false }),
  getACL: (c, p) => call(c, OpCode.getACL, R.GetACLRequest, { path: p }),
  setData: (c, p) =>
    call(c, OpCode.setData, R.SetDataRequest, { path: p, data: null, version: -1 }),
  setACL: (c, p) =>
    call(c, OpCode.setACL, R.SetACLRequest, {
      path: p,
      acl: [acl(31, "world", "anyone")],
      version: 99,
    }),
  "create child": (c, p) =>
    call(c, OpCode.create, R.CreateRequest, {
      path: `${p}/new`,
      data: null,
      acl: [acl(31, "world", "anyone")],
      flags: 0,
    }),
  "delete child": (c, p) =>
    call(c, OpCode.delete, R.DeleteRequest, { path: `${p}/kid`, version: 99 }),
  "delete missing child": (c, p) =>
    call(c, OpCode.delete, R.DeleteRequest, { path: `${p}/none`, version: -1 }),
  sync: (c, p) => call(c, OpCode.sync, R.SyncRequest, { path: p }),
  "multi check": (c, p) =>
    multi1(
      c,
      OpCode.multi,
      OpCode.check,
      (w) => R.CheckVersionRequest.write(w, { path: p, version: 0 }),
    ),
  "multi setData": (c, p) =>
    multi1(
      c,
      OpCode.multi,
      OpCode.setData,
      (w) => R.SetDataRequest.write(w, { path: p, data: null, version: 0 }),
    ),
  "multi create child": (c, p) =>
    multi1(c, OpCode.multi, OpCode.create, (w) =>
      R.CreateRequest.write(w, {
        path: `${p}/m`,
        data: null,
        acl: [acl(31, "world", "anyone")],
        flags: 0,
      })),
  "multi delete child": (c, p) =>
    multi1(
      c,
      OpCode.multi,
      OpCode.delete,
      (w) => R.DeleteRequest.write(w, { path: `${p}/kid`, version: 99 }),
    ),
  getAllChildrenNumber: (c, p) =>
    call(c, OpCode.getAllChildrenNumber, R.GetAllChildrenNumberRequest, { path: p }),
  addWatch: (c, p) => call(c, OpCode.addWatch, R.AddWatchRequest, { path: p, mode: 1 }),
  "createContainer child": (c, p) =>
    call(c, OpCode.createContainer, R.CreateRequest, {
      path: `${p}/box`,
      data: null,
      acl: [acl(31, "world", "anyone")],
      flags: 4,
    }),
  "createTTL child": (c, p) =>
    call(c, OpCode.createTTL, R.CreateTTLRequest, {
      path: `${p}/ttl`,
      data: null,
      acl: [acl(31, "world", "anyone")],
      flags: 5,
      ttl: 60_000n,
    }),
  getEphemerals: (c, p) => call(c, OpCode.getEphemerals, R.GetEphemeralsRequest, { prefixPath: p }),
  "multiRead getData": (c, p) =>
    multi1(
      c,
      OpCode.multiRead,
      OpCode.getData,
      (w) => R.GetDataRequest.write(w, { path: p, watch: false }),
    ),
  "multiRead getChildren": (c, p) =>
    multi1(
      c,
      OpCode.multiRead,
      OpCode.getChildren,
      (w) => R.GetChildrenRequest.write(w, { path: p, watch: false }),
    ),
};

/** The matrix: for each op, the code bob gets when lacking each permission. */
async function matrix(address: string): Promise<Record<string, Record<string, number>>> {
  const alice = await as(address, "alice:secret");
  const bob = await as(address, "bob:pw");
  const out: Record<string, Record<string, number>> = {};
  try {
    for (const [permName, perm] of Object.entries(PERMS)) {
      const p = `/acl-${permName.toLowerCase()}`;
      const full = [acl(31, "world", "anyone")];
      assert.equal(
        await call(alice, OpCode.create, R.CreateRequest, {
          path: p,
          data: null,
          acl: full,
          flags: 0,
        }),
        0,
      );
      assert.equal(
        await call(alice, OpCode.create, R.CreateRequest, {
          path: `${p}/kid`,
          data: null,
          acl: full,
          flags: 0,
        }),
        0,
      );
      const restricted = [acl(31, "digest", ALICE), acl(31 & ~perm, "digest", BOB)];
      assert.equal(
        await call(alice, OpCode.setACL, R.SetACLRequest, {
          path: p,
          acl: restricted,
          version: -1,
        }),
        0,
      );
      for (const [opName, run] of Object.entries(OPS)) {
        (out[opName] ??= {})[`without ${permName}`] = await run(bob, p);
      }
    }
    return out;
  } finally {
    alice.close();
    bob.close();
  }
}

differential("ACLs are enforced where ZooKeeper enforces them", async (t, address) => {
  await t.step("getACL masks digest passwords from a reader without ADMIN", async () => {
    const alice = await as(address, "alice:secret");
    const bob = await as(address, "bob:pw");
    const restricted = [acl(31, "digest", ALICE), acl(1, "digest", BOB)];
    assert.equal(
      await call(alice, OpCode.create, R.CreateRequest, {
        path: "/acl-mask",
        data: null,
        acl: restricted,
        flags: 0,
      }),
      0,
    );
    await bob.send(++xid, OpCode.getACL, R.GetACLRequest, { path: "/acl-mask" });
    const r = await bob.reply();
    assert.equal(r?.err, 0);
    assert.deepEqual(R.GetACLResponse.read(r!.body).acl, [
      acl(31, "digest", "alice:x"),
      acl(1, "digest", "bob:x"),
    ]);
    alice.close();
    bob.close();
  });

  await t.step("an ip ACL admits only clients from that address", async () => {
    const alice = await as(address, "alice:secret");
    const ipOnly = (ip: string) => [acl(31, "digest", ALICE), acl(1, "ip", ip)];
    for (
      const [path, ip, expected] of [
        ["/acl-ip-ok", "127.0.0.1", 0],
        ["/acl-ip-net", "127.0.0.0/8", 0],
        ["/acl-ip-no", "10.1.2.3", -102],
      ] as const
    ) {
      assert.equal(
        await call(alice, OpCode.create, R.CreateRequest, {
          path,
          data: null,
          acl: ipOnly(ip),
          flags: 0,
        }),
        0,
      );
      const [anon] = await RawClient.session(address);
      assert.equal(
        await call(anon, OpCode.getData, R.GetDataRequest, { path, watch: false }),
        expected,
        `${ip}`,
      );
      anon.close();
    }
    alice.close();
  });

  await t.step("each operation needs the permission ZooKeeper's needs", async () => {
    const got = await matrix(address);
    // Printed so the matrix can be read in the test log.
    console.log(JSON.stringify(got));
    assert.deepEqual(got, EXPECTED);
  });
});

// NoAuth = -102, BadVersion = -103, NoNode = -101: ZooKeeper 3.8's answers, recorded.
const EXPECTED: Record<string, Record<string, number>> = {
  "getData": {
    "without READ": -102,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "exists": {
    "without READ": 0,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "getChildren": {
    "without READ": -102,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "getChildren2": {
    "without READ": -102,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "getACL": {
    "without READ": 0,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "setData": {
    "without READ": 0,
    "without WRITE": -102,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "setACL": {
    "without READ": -103,
    "without WRITE": -103,
    "without CREATE": -103,
    "without DELETE": -103,
    "without ADMIN": -102,
  },
  "create child": {
    "without READ": 0,
    "without WRITE": 0,
    "without CREATE": -102,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "delete child": {
    "without READ": -103,
    "without WRITE": -103,
    "without CREATE": -103,
    "without DELETE": -102,
    "without ADMIN": -103,
  },
  "delete missing child": {
    "without READ": -101,
    "without WRITE": -101,
    "without CREATE": -101,
    "without DELETE": -102,
    "without ADMIN": -101,
  },
  "sync": {
    "without READ": 0,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "multi check": {
    "without READ": -102,
    "without WRITE": 0,
    "without CREATE": -103,
    "without DELETE": -103,
    "without ADMIN": -103,
  },
  "multi setData": {
    "without READ": -103,
    "without WRITE": -102,
    "without CREATE": -103,
    "without DELETE": -103,
    "without ADMIN": -103,
  },
  "multi create child": {
    "without READ": 0,
    "without WRITE": 0,
    "without CREATE": -102,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "multi delete child": {
    "without READ": -103,
    "without WRITE": -103,
    "without CREATE": -103,
    "without DELETE": -102,
    "without ADMIN": -103,
  },
  "getAllChildrenNumber": {
    "without READ": -102,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "addWatch": {
    "without READ": 0,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "createContainer child": {
    "without READ": 0,
    "without WRITE": 0,
    "without CREATE": -102,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "createTTL child": {
    "without READ": 0,
    "without WRITE": 0,
    "without CREATE": -102,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "getEphemerals": {
    "without READ": 0,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "multiRead getData": {
    "without READ": -102,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
  "multiRead getChildren": {
    "without READ": -102,
    "without WRITE": 0,
    "without CREATE": 0,
    "without DELETE": 0,
    "without ADMIN": 0,
  },
};

Deno.test({
  name: "the super user (--superdigest) passes every ACL check",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ superDigest: digestId("super:admin") });
  const alice = await as(stack.address, "alice:secret");
  const locked = [acl(31, "digest", ALICE)];
  assert.equal(
    await call(alice, OpCode.create, R.CreateRequest, {
      path: "/locked",
      data: null,
      acl: locked,
      flags: 0,
    }),
    0,
  );
  const bob = await as(stack.address, "bob:pw");
  assert.equal(
    await call(bob, OpCode.getData, R.GetDataRequest, { path: "/locked", watch: false }),
    -102,
  );
  const root = await as(stack.address, "super:admin");
  assert.equal(
    await call(root, OpCode.getData, R.GetDataRequest, { path: "/locked", watch: false }),
    0,
  );
  assert.equal(
    await call(root, OpCode.delete, R.DeleteRequest, { path: "/locked", version: -1 }),
    0,
  );
  for (const c of [alice, bob, root]) c.close();
});
