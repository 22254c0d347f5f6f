/**
 * The read replica: reads are answered from memory, a session never reads
 * older state than it has seen, and sync brings it up to date with writes
 * made through other servers.
 */

import assert from "node:assert/strict";
import { startStack, startZetcd } from "../_util/zetcd.ts";
import { startEtcd } from "../_util/etcd.ts";
import { TreeWriter } from "../_util/tree_writer.ts";
import { startCompactionGap } from "../_util/compaction_gap.ts";
import { EtcdClient } from "../../src/etcd/client.ts";
import { ZkClient } from "../../src/client/client.ts";
import { OpCode } from "../../src/zk/constants.ts";
import * as R from "../../src/zk/records.ts";

/** The count of etcd round trips of `kind` in the server's metrics. */
async function etcdRoundTrips(admin: string, kind: string): Promise<number> {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  const m = new RegExp(
    `^zetcd_etcd_request_duration_seconds_count\\{kind="${kind}"\\} (\\d+)$`,
    "m",
  )
    .exec(text);
  return Number(m?.[1] ?? 0);
}

const text = (s: string) => new TextEncoder().encode(s);

for (const replica of [true, false]) {
  Deno.test({
    name: replica
      ? "with the replica, getData, exists and getChildren make no etcd round trip"
      : "with --read-replica false, every read is an etcd round trip",
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    await using stack = await startStack({
      readReplica: replica,
      admin: { hostname: "127.0.0.1", port: 0 },
    });
    const zk = await ZkClient.connect(stack.address);
    await zk.create("/r", text("v"));
    await zk.create("/r/c", null);
    const before = await etcdRoundTrips(stack.server.adminAddress!, "read");
    for (let i = 0; i < 50; i++) {
      assert.equal(new TextDecoder().decode((await zk.getData("/r")).data!), "v");
      assert.equal((await zk.exists("/r"))?.numChildren, 1);
      assert.deepEqual((await zk.getChildren("/r")).children, ["c"]);
    }
    const reads = (await etcdRoundTrips(stack.server.adminAddress!, "read")) - before;
    await zk.close();
    if (replica) assert.ok(reads < 10, `${reads} etcd reads for 150 ZooKeeper reads`);
    else assert.ok(reads >= 150, `${reads} etcd reads for 150 ZooKeeper reads`);
  });
}

Deno.test({
  name:
    "a session sees its own writes, and after sync another server's, when reading from replicas",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ prefix: "/replicas/" });
  const other = await startZetcd(stack.etcd, { prefix: "/replicas/" });
  try {
    const writer = await ZkClient.connect(stack.address);
    const reader = await ZkClient.connect(other.address);
    await writer.create("/s", text("0"));
    for (let i = 1; i <= 100; i++) {
      const stat = await writer.setData("/s", text(String(i)));
      // Its own write, at once, on its own server.
      const own = await writer.getData("/s");
      assert.equal(new TextDecoder().decode(own.data!), String(i));
      assert.ok(own.stat.mzxid >= stat.mzxid);
      // Another server's session, after sync.
      await reader.request(OpCode.sync, R.SyncRequest, { path: "/s" });
      const seen = await reader.getData("/s");
      assert.equal(new TextDecoder().decode(seen.data!), String(i), `after sync, write ${i}`);
    }
    await writer.close();
    await reader.close();
  } finally {
    await other.close();
  }
});

Deno.test({
  name:
    "a server serves while its replica loads, and the replica then holds the changes made meanwhile",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcdProcess = await startEtcd();
  const prefix = "/loading/";
  // A tree big enough that loading it outlasts a few writes: 40,000 znodes under /f.
  const etcd = EtcdClient.connect({ endpoints: etcdProcess.endpoints });
  const tree = await TreeWriter.open(etcd, prefix, text("x"));
  const total = 40_000;
  await etcd.txn([], tree.node("/f", total));
  await tree.leaves(Array.from({ length: total }, (_, i) => `/f/n${i}`));
  etcd.close();

  const server = await startZetcd(etcdProcess, {
    prefix,
    admin: { hostname: "127.0.0.1", port: 0 },
    // Only the health probe reads etcd by itself meanwhile (the reaper would, every 200 ms).
    reapIntervalMs: 60_000,
  });
  try {
    let loaded = false;
    server.replicaLoaded.then(() => loaded = true);
    const zk = await ZkClient.connect(server.address);
    await zk.create("/during", text("one"));
    await zk.setData("/during", text("two"));
    await zk.delete("/f/n5");
    assert.equal(new TextDecoder().decode((await zk.getData("/f/n7")).data!), "x");
    assert.equal(loaded, false, "the writes and the read were served while the replica loaded");
    await server.replicaLoaded;
    const before = await etcdRoundTrips(server.adminAddress!, "read");
    assert.equal(new TextDecoder().decode((await zk.getData("/during")).data!), "two");
    assert.equal(await zk.exists("/f/n5"), null);
    assert.equal((await zk.exists("/f"))?.numChildren, total - 1);
    const reads = await etcdRoundTrips(server.adminAddress!, "read") - before;
    // (One may be the health probe's, every 500 ms.)
    assert.ok(reads <= 1, `${reads} etcd reads for 3 reads: not from the replica`);
    await zk.close();
  } finally {
    await server.close();
  }
});

Deno.test({
  name: "a replica loads a tree whose values overflow one etcd reply, in smaller pages",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ prefix: "/bigvalues/" });
  const zk = await ZkClient.connect(stack.address);
  const data = new Uint8Array(1_000_000).fill(7);
  // 70 MB of values: more than the 64 MiB one gRPC reply may carry.
  for (let i = 0; i < 70; i++) await zk.create(`/v${i}`, data);
  await zk.close();
  const second = await startZetcd(stack.etcd, {
    prefix: "/bigvalues/",
    admin: { hostname: "127.0.0.1", port: 0 },
    // Only the health probe reads etcd by itself meanwhile (the reaper would, every 200 ms).
    reapIntervalMs: 60_000,
  });
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      second.replicaLoaded,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("the replica did not load within 30 s")), 30_000);
      }),
    ]).finally(() => clearTimeout(timer));
    const reader = await ZkClient.connect(second.address);
    for (const i of [0, 35, 69]) assert.deepEqual((await reader.getData(`/v${i}`)).data, data);
    const before = await etcdRoundTrips(second.adminAddress!, "read");
    for (let i = 0; i < 70; i++) {
      assert.equal((await reader.exists(`/v${i}`))?.dataLength, 1_000_000);
    }
    // (The health probe reads etcd every 500 ms; the 70 reads take a few ms.)
    const reads = await etcdRoundTrips(second.adminAddress!, "read") - before;
    assert.ok(reads <= 1, `${reads} etcd reads for 70 reads: not from the replica`);
    await reader.close();
  } finally {
    await second.close();
  }
});

Deno.test({
  name:
    "a write's error answer is never decided on a replica behind another server's acknowledged write",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const prefix = "/behind/";
  const a = await startZetcd(etcd, { prefix });
  const b = await startZetcd(etcd, { prefix });
  const [za, zb] = [await ZkClient.connect(a.address), await ZkClient.connect(b.address)];
  try {
    // Each write goes to the server that did not make the one before: its
    // replica may not show that write yet, but etcd does, as ZooKeeper's
    // leader would.
    for (let i = 0; i < 300; i++) {
      await za.create("/x", text(`${i}`));
      await zb.delete("/x");
      await za.create("/x", text(`${i}`));
      await zb.setData("/x", text("set"), 0);
      await za.delete("/x", 1);
    }
  } finally {
    await za.close();
    await zb.close();
    await a.close();
    await b.close();
  }
});

Deno.test({
  name:
    "a server whose watch fell behind a compaction reads its replica again and serves what it missed from memory",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using gap = await startCompactionGap("/behind/", {
    admin: { hostname: "127.0.0.1", port: 0 },
    reapIntervalMs: 60_000,
  });
  const { cut } = gap;
  await cut.replicaLoaded;
  const writer = await ZkClient.connect(gap.other.address);
  await writer.create("/x", text("a"));
  await gap.during(async () => {
    for (let i = 0; i < 5; i++) await writer.setData("/x", text(`b${i}`));
    await writer.create("/y", null);
  });
  await writer.close();
  const reader = await ZkClient.connect(cut.address);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const before = await etcdRoundTrips(cut.adminAddress!, "read");
    const data = new TextDecoder().decode((await reader.getData("/x")).data!);
    const y = await reader.exists("/y");
    const reads = await etcdRoundTrips(cut.adminAddress!, "read") - before;
    // From memory (one read may be the health probe's), with every write it missed.
    if (data === "b4" && y !== null && reads <= 1) break;
    assert.ok(
      Date.now() < deadline,
      `still "${data}", /y ${y ? "seen" : "missing"}, ${reads} reads`,
    );
    await new Promise((r) => setTimeout(r, 100));
  }
  await reader.close();
});
