/**
 * The key layout's versions (src/store/keys.ts): a prefix written by an
 * older layout is served as it is, and a newer one is refused. Layout 1
 * wrote every node with its `acl` and (persistent nodes) `kids` keys;
 * layout 2 leaves them out while they hold their defaults; both kept the
 * facts fixed at creation in a `meta` key, which layout 3 keeps in the node
 * record.
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { startZetcd, uniquePrefix } from "../_util/zetcd.ts";
import { startServerProcess } from "../_util/server_process.ts";
import { EtcdClient, type Op } from "../../src/etcd/client.ts";
import { Keys, LAYOUT_VERSION } from "../../src/store/keys.ts";
import { decodeNode, encodeAcl, encodeMeta, encodeNode } from "../../src/store/values.ts";
import { ZkClient } from "../../src/client/client.ts";
import { OPEN_ACL } from "../../src/zk/acl.ts";
import type { ACL } from "../../src/zk/records.ts";
import { CreateFlag } from "../../src/zk/constants.ts";

const text = new TextEncoder();

/** A node as layout 2 wrote it: a record of format 1 and its meta key. */
function layout2Node(k: Keys, path: string, ctime: bigint): Op[] {
  return [
    { put: k.node(path), value: encodeNode({ data: text.encode(path), mtime: ctime }) },
    { put: k.attr(path, "meta"), value: encodeMeta({ ctime, mode: 0, owner: 0n }) },
  ];
}

/** A persistent node as layout 1 wrote it: layout 2's keys, its acl and kids (`creates` children ever made). */
function layout1Node(k: Keys, path: string, acl: ACL[], creates: number): Op[] {
  return [
    ...layout2Node(k, path, 1n),
    { put: k.attr(path, "acl"), value: encodeAcl(acl) },
    { put: k.attr(path, "kids"), value: text.encode(creates ? String(creates) : "") },
  ];
}

Deno.test("a prefix written by layout 1 is served as it was, written on, and marked layout 3", async () => {
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  const k = new Keys(prefix);
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  const local: ACL[] = [{ perms: 31, id: { scheme: "ip", id: "127.0.0.1" } }];
  await raw.txn([], [
    { put: k.layout(), value: text.encode("1") },
    ...layout1Node(k, "/", OPEN_ACL, 2),
    ...layout1Node(k, "/zookeeper", OPEN_ACL, 1),
    ...layout1Node(k, "/zookeeper/quota", OPEN_ACL, 0),
    // Five children ever created under /q, two of them still there.
    ...layout1Node(k, "/q", local, 5),
    ...layout1Node(k, "/q/s-0000000003", OPEN_ACL, 0),
    ...layout1Node(k, "/q/s-0000000004", OPEN_ACL, 0),
  ]);
  const server = await startZetcd(etcd, { prefix });
  const zk = await ZkClient.connect(server.address);
  try {
    const before = await zk.getACL("/q");
    assert.deepEqual(before.acl, local);
    assert.equal(before.stat.cversion, 2 * 5 - 2);
    // The sequence counter goes on from layout 1's.
    assert.equal(
      await zk.create("/q/s-", null, CreateFlag.PERSISTENT_SEQUENTIAL),
      "/q/s-0000000005",
    );
    assert.equal((await zk.exists("/q"))!.cversion, 2 * 6 - 3);
    assert.equal((await zk.setACL("/q", OPEN_ACL, 0)).aversion, 1);

    const marker = await raw.read([{ get: k.layout() }]);
    assert.equal(new TextDecoder().decode(marker.results[0]!.kvs[0].value), `${LAYOUT_VERSION}`);
    assert.equal(LAYOUT_VERSION, 3);

    // Written now: an open node with no children is its node key alone.
    await zk.create("/fresh", text.encode("x"));
    const attrs = async (path: string) =>
      (await raw.read([{ get: k.attrs(path), prefix: true }])).results[0]!.kvs
        .map((kv) => k.attrName(kv.key)).sort();
    assert.deepEqual(await attrs("/fresh"), []);
    const fresh = (await zk.exists("/fresh"))!;
    assert.deepEqual([fresh.cversion, fresh.aversion, fresh.pzxid], [0, 0, fresh.czxid]);
    assert.deepEqual((await zk.getACL("/fresh")).acl, OPEN_ACL);
    // Its first child makes its counter.
    assert.equal(
      await zk.create("/fresh/c-", null, CreateFlag.PERSISTENT_SEQUENTIAL),
      "/fresh/c-0000000000",
    );
    assert.deepEqual(await attrs("/fresh"), ["kids"]);
    assert.equal(
      await zk.create("/fresh/c-", null, CreateFlag.PERSISTENT_SEQUENTIAL),
      "/fresh/c-0000000001",
    );
    const grown = (await zk.exists("/fresh"))!;
    assert.deepEqual([grown.cversion, grown.numChildren], [2, 2]);
  } finally {
    await zk.close();
    await server.close();
    raw.close();
  }
});

Deno.test("a prefix written by layout 2 keeps every node's czxid, ctime and owner through writes", async () => {
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  const k = new Keys(prefix);
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  const written = await raw.txn([], [
    { put: k.layout(), value: text.encode("2") },
    ...layout2Node(k, "/", 1n),
    ...layout2Node(k, "/zookeeper", 1n),
    ...layout2Node(k, "/zookeeper/quota", 1n),
    ...layout2Node(k, "/old", 1234n),
  ]);
  const server = await startZetcd(etcd, { prefix });
  const zk = await ZkClient.connect(server.address);
  try {
    const before = (await zk.exists("/old"))!;
    assert.deepEqual([before.czxid, before.ctime, before.version], [written.revision, 1234n, 0]);
    const after = await zk.setData("/old", text.encode("new"), 0);
    assert.deepEqual(
      [after.czxid, after.ctime, after.version, after.ephemeralOwner],
      [written.revision, 1234n, 1, 0n],
    );
    // The record written now carries the facts too; the meta key still decides.
    const record = await raw.read([{ get: k.node("/old") }]);
    assert.equal(decodeNode(record.results[0]!.kvs[0].value).meta?.ctime, 1234n);
    // Deleted and created again, in two requests: a node of layout 3.
    await zk.delete("/old", 1);
    await zk.create("/old", null);
    const again = (await zk.exists("/old"))!;
    assert.ok(again.czxid > written.revision);
    assert.equal(again.version, 0);
  } finally {
    await zk.close();
    await server.close();
    raw.close();
  }
});

Deno.test("a server refuses a prefix of a newer layout, naming both versions", async () => {
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    const newer = LAYOUT_VERSION + 1;
    await raw.txn([], [{ put: new Keys(prefix).layout(), value: text.encode(`${newer}`) }]);
    await assert.rejects(
      startZetcd(etcd, { prefix }),
      new RegExp(`holds layout version ${newer}; this server reads up to ${LAYOUT_VERSION}`),
    );
  } finally {
    raw.close();
  }
});

Deno.test("a running server stops with one line when a newer release moves the prefix to its layout", async () => {
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  await using server = await startServerProcess(etcd.endpoints, prefix);
  const zk = await ZkClient.connect(server.address);
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    await zk.create("/before", null);
    const newer = LAYOUT_VERSION + 1;
    await raw.txn([], [{ put: new Keys(prefix).layout(), value: text.encode(`${newer}`) }]);
    const late = new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve("still running after 10 s"), 10_000);
      server.exited.finally(() => clearTimeout(timer));
    });
    assert.equal(await Promise.race([server.exited, late]), 1);
    assert.match(
      server.output(),
      new RegExp(
        `holds layout version ${newer}; this server reads up to ${LAYOUT_VERSION}: stopping`,
      ),
    );
  } finally {
    await zk.close().catch(() => {});
    raw.close();
  }
});
