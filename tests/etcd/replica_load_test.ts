/**
 * The replica holds every change the watch stream delivers before it is
 * loaded, so a load as of an older revision misses none of them; and a
 * load that falls too far behind fails instead of serving a copy with a
 * hole in it.
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { EtcdClient, type KeyValue } from "../../src/etcd/client.ts";
import { Replica } from "../../src/etcd/replica.ts";

const enc = new TextEncoder();

Deno.test({
  name: "changes delivered before the replica loads are applied on top of the load",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const client = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    const start = (await client.txn([], [{ put: "/r/a", value: enc.encode("1") }])).revision;
    // Written after the watch would have started, before the load begins.
    const later = await client.txn([], [{ put: "/r/b", value: enc.encode("2") }]);
    const replica = new Replica("/r/");
    const b: KeyValue = {
      key: "/r/b",
      value: enc.encode("2"),
      createRevision: later.revision,
      modRevision: later.revision,
      version: 1n,
      lease: 0n,
    };
    replica.apply("put", b); // the watch delivers it while the replica is not loaded yet
    await replica.load(client, start);
    assert.equal(replica.revision, later.revision, "the held change moved the copy on");
    const read = replica.read([{ get: "/r/a" }, { get: "/r/b" }])!;
    assert.equal(read.results[0]!.kvs.length, 1);
    assert.equal(read.results[1]!.kvs.length, 1, "the change before the load is not lost");
  } finally {
    client.close();
  }
});

Deno.test({
  name:
    "a change older than the load, delivered after it by a watch still catching up, does not roll the copy back",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const client = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    const put = await client.txn([], [{ put: "/r/k", value: enc.encode("old") }]);
    const deleted = await client.txn([], [{ del: "/r/k" }]);
    const replica = new Replica("/r/");
    await replica.load(client, deleted.revision);
    const kv = (value: string, revision: bigint): KeyValue => ({
      key: "/r/k",
      value: enc.encode(value),
      createRevision: put.revision,
      modRevision: revision,
      version: 1n,
      lease: 0n,
    });
    // The watch, behind the load, now delivers the put the load already saw deleted.
    replica.apply("put", kv("old", put.revision));
    assert.equal(replica.read([{ get: "/r/k" }])!.results[0]!.kvs.length, 0, "still deleted");
    assert.equal(replica.revision, deleted.revision);
    // A change after the load is applied.
    const next = await client.txn([], [{ put: "/r/k", value: enc.encode("new") }]);
    replica.apply("put", kv("new", next.revision));
    const read = replica.read([{ get: "/r/k" }])!.results[0]!.kvs;
    assert.equal(new TextDecoder().decode(read[0]?.value), "new");
    assert.equal(replica.revision, next.revision);
  } finally {
    client.close();
  }
});
