/**
 * `zetcd migrate --from-zetcd-prefix`: a keyspace written in the Go
 * zetcd's layout (by this test, from the layout's description in the
 * protocol document) becomes our tree, in the same etcd and under the same
 * prefix, with its data, ACLs, versions, times and sequence counters.
 */

import assert from "node:assert/strict";
import { startEtcd } from "./_util/etcd.ts";
import { startZetcd } from "./_util/zetcd.ts";
import { runKazoo } from "./_util/kazoo.ts";
import { ZkClient } from "../src/client/client.ts";
import { EtcdClient, type Op } from "../src/etcd/client.ts";
import { decodeGobAcls, decodeVarint } from "../src/migrate/gob.ts";
import { digestId } from "../src/zk/acl.ts";
import type { ACL } from "../src/zk/records.ts";
import { runZetcd } from "./_util/cli.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));

/** The gob type definitions of `[]ACL`, as the protocol document gives them. */
const GOB_TYPES = hex(
  "0dff83020102ff840001ff8200002dff810301010341434c01ff8200010301055065726d730104000106536368656d65010c0001024944010c000000",
);

function gobUint(n: number): number[] {
  if (n < 128) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return [256 - bytes.length, ...bytes];
}
const gobInt = (n: number) => gobUint(n < 0 ? (-n - 1) * 2 + 1 : n * 2);
const gobString = (s: string) => {
  const b = new TextEncoder().encode(s);
  return [...gobUint(b.length), ...b];
};

/** A Go zetcd ACL value: the type definitions, then the slice (zero fields omitted). */
function gobAcls(acls: ACL[]): Uint8Array {
  const body = [...gobInt(66), 0, ...gobUint(acls.length)];
  for (const a of acls) {
    let last = -1;
    const field = (i: number, bytes: number[]) => {
      body.push(i - last, ...bytes);
      last = i;
    };
    if (a.perms !== 0) field(0, gobInt(a.perms));
    if (a.id.scheme) field(1, gobString(a.id.scheme!));
    if (a.id.id) field(2, gobString(a.id.id!));
    body.push(0);
  }
  return new Uint8Array([...GOB_TYPES, ...gobUint(body.length), ...body]);
}

/** Go's binary.PutVarint. */
function varint(n: bigint): Uint8Array {
  let u = n < 0n ? ((-n - 1n) << 1n) | 1n : n << 1n;
  const out: number[] = [];
  while (u >= 0x80n) {
    out.push(Number(u & 0x7fn) | 0x80);
    u >>= 7n;
  }
  out.push(Number(u));
  return new Uint8Array(out);
}

Deno.test("Go zetcd values decode: varints and the gob ACL of the protocol document", () => {
  const worldAnyone = new Uint8Array([
    ...GOB_TYPES,
    ...hex("16ff840001013e0105776f726c640106616e796f6e6500"),
  ]);
  assert.deepEqual(decodeGobAcls(worldAnyone), [
    { perms: 31, id: { scheme: "world", id: "anyone" } },
  ]);
  assert.deepEqual(gobAcls([{ perms: 31, id: { scheme: "world", id: "anyone" } }]), worldAnyone);
  const two: ACL[] = [
    { perms: 1, id: { scheme: "world", id: "anyone" } },
    { perms: 31, id: { scheme: "digest", id: digestId("alice:secret") } },
    { perms: 0, id: { scheme: "ip", id: "" } },
  ];
  assert.deepEqual(decodeGobAcls(gobAcls(two)), two);
  for (const n of [0n, 1n, -1n, 63n, -64n, 1_700_000_000_000_000n]) {
    assert.equal(decodeVarint(varint(n)), n);
  }
  assert.deepEqual([...varint(0n)], [0]);
  assert.deepEqual([...varint(1n)], [2]);
  assert.deepEqual([...varint(-1n)], [1]);
  assert.throws(() => decodeGobAcls(worldAnyone.subarray(0, worldAnyone.length - 3)));
});

/** One znode in the Go zetcd's layout. */
interface ZetcdNode {
  path: string;
  data: Uint8Array;
  version: number;
  cversion: number;
  aversion: number;
  /** µs, as the Go zetcd stored them. */
  ctime: bigint;
  mtime: bigint;
  acl: ACL[];
  counter: number;
  lease?: bigint;
}

/** Writes `n` as the Go zetcd did: one key per field, versions as etcd versions. */
async function putZetcd(etcd: EtcdClient, n: ZetcdNode): Promise<void> {
  const depth = n.path.split("/").length - 1;
  const key = (tag: number) => "/zk/" + String.fromCharCode(tag, depth) + n.path;
  const lease = n.lease ?? 0n;
  await etcd.txn([], [
    { put: key(1), value: n.data, lease },
    { put: key(2), value: varint(BigInt(n.version)), lease },
    { put: key(4), value: varint(n.ctime), lease },
    { put: key(7), value: varint(BigInt(n.counter)), lease },
  ]);
  const times = async (count: number, op: Op) => {
    for (let i = 0; i < count; i++) await etcd.txn([], [op]);
  };
  await times(n.cversion + 1, { put: key(3), lease });
  await times(n.version + 1, { put: key(5), value: varint(n.mtime), lease });
  await times(n.aversion + 1, { put: key(6), value: gobAcls(n.acl), lease });
}

Deno.test({
  name: "a Go zetcd keyspace becomes our tree in the same etcd, under the same prefix",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const client = EtcdClient.connect({ endpoints: etcd.endpoints });
  const open = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];
  const guarded = [
    { perms: 1, id: { scheme: "world", id: "anyone" } },
    { perms: 31, id: { scheme: "digest", id: digestId("alice:secret") } },
  ];
  const base = { version: 0, cversion: 0, aversion: 0, acl: open, counter: 0 };
  const t = (s: number) => BigInt(1_700_000_000 + s) * 1_000_000n + 123n;
  // /a had children b, job-0000000001 (deleted), job-0000000002 and the ephemeral e.
  const lease = await client.grantLease(60);
  const nodes: ZetcdNode[] = [
    {
      ...base,
      path: "/a",
      data: new TextEncoder().encode("hello"),
      version: 2,
      cversion: 5,
      aversion: 1,
      acl: guarded,
      counter: 4,
      ctime: t(1),
      mtime: t(5),
    },
    {
      ...base,
      path: "/a/b",
      data: new Uint8Array([0, 1, 254, 255]),
      counter: 1,
      cversion: 1,
      ctime: t(2),
      mtime: t(2),
    },
    { ...base, path: "/a/b/c", data: new Uint8Array(), ctime: t(3), mtime: t(3) },
    { ...base, path: "/a/job-0000000002", data: new Uint8Array([7]), ctime: t(4), mtime: t(4) },
    { ...base, path: "/a/e", data: new Uint8Array(), ctime: t(6), mtime: t(6), lease },
    {
      ...base,
      path: "/many",
      data: new Uint8Array(),
      counter: 250,
      cversion: 250,
      ctime: t(7),
      mtime: t(7),
    },
  ];
  for (let i = 0; i < 250; i++) {
    const name = `n${String(i).padStart(3, "0")}`;
    nodes.push({
      ...base,
      path: `/many/${name}`,
      data: new TextEncoder().encode(name),
      ctime: t(8),
      mtime: t(9),
    });
  }
  for (const n of nodes) await putZetcd(client, n);

  const { code, stderr } = await runZetcd([
    "migrate",
    "--from-zetcd-prefix",
    "/zk/",
    "--endpoints",
    etcd.endpoints[0],
  ]);
  assert.equal(code, 0, stderr);
  assert.match(
    stderr,
    /copied 256 nodes .*: 255 created, 1 updated/,
    "the root, /a and its subtree, /many and its 250 children",
  );
  assert.match(stderr, /skipped ephemeral \/a\/e/);
  assert.match(stderr, /verified 256 nodes .*: 0 differences/);

  const server = await startZetcd(etcd, { prefix: "/zk/" });
  try {
    const seen = await runKazoo(
      server.address,
      `
      zk.add_auth("digest", "alice:secret")
      def node(p):
          data, st = zk.get(p)
          acl, _ = zk.get_acls(p)
          return [data.hex(), sorted([a.perms, a.id.scheme, a.id.id] for a in acl),
                  st.version, st.cversion, st.aversion, st.ctime, st.mtime, st.numChildren]
      result = {
          "a": node("/a"), "b": node("/a/b"), "c": node("/a/b/c"),
          "children": sorted(zk.get_children("/a")),
          "many": len(zk.get_children("/many")), "n249": node("/many/n249"),
          "root": sorted(zk.get_children("/")),
      }
      `,
    ) as Record<string, unknown>;
    const ms = (s: number) => (1_700_000_000 + s) * 1000;
    assert.deepEqual(seen.a, [
      "68656c6c6f",
      [[1, "world", "anyone"], [31, "digest", digestId("alice:secret")]],
      2,
      6, // 4 creates, 1 delete, and the ephemeral e, which did not come along, counts as deleted
      1,
      ms(1),
      ms(5),
      2,
    ]);
    assert.deepEqual(seen.b, ["0001feff", [[31, "world", "anyone"]], 0, 1, 0, ms(2), ms(2), 1]);
    assert.deepEqual(seen.c, ["", [[31, "world", "anyone"]], 0, 0, 0, ms(3), ms(3), 0]);
    assert.deepEqual(seen.children, ["b", "job-0000000002"]);
    assert.equal(seen.many, 250);
    assert.deepEqual(seen.n249, ["6e323439", [[31, "world", "anyone"]], 0, 0, 0, ms(8), ms(9), 0]);
    assert.deepEqual(seen.root, ["a", "many", "zookeeper"]);

    const zk = await ZkClient.connect(server.address);
    await zk.addAuth("digest", "alice:secret");
    assert.equal(
      await zk.create("/a/job-", null, 2),
      "/a/job-0000000004",
      "the counter carries on",
    );
    await zk.close();
  } finally {
    await server.close();
    client.close();
  }
});
