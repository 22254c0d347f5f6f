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
