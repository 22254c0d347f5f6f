/**
 * The cross-key group commit: transactions queued while a call is in flight
 * share the next call only when they are independent.
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { EtcdClient } from "../../src/etcd/client.ts";
import { TxnBatcher } from "../../src/etcd/txn_batcher.ts";

const v = (s: string) => new TextEncoder().encode(s);

Deno.test("independent transactions queued together share one etcd call; dependent ones wait", async (t) => {
  await using etcd = await startEtcd();
  const client = EtcdClient.connect({ endpoints: etcd.endpoints });
  const batcher = new TxnBatcher(client);
  try {
    await t.step("transactions on different keys share a revision", async () => {
      const first = batcher.txn({ compare: [], success: [{ put: "/b/first", value: v("1") }] });
      const rest = ["a", "b", "c"].map((k) =>
        batcher.txn({
          compare: [{ key: `/b/${k}`, target: "create", op: "==", value: 0n }],
          success: [{ put: `/b/${k}`, value: v(k) }],
        })
      );
      const firstRev = (await first).revision;
      const revs = (await Promise.all(rest)).map((r) => r.revision);
      assert.ok(revs.every((r) => r === revs[0]), `one revision for all three: ${revs}`);
      assert.ok(revs[0] > firstRev);
    });

    await t.step("a transaction that compares a key another writes sees that write", async () => {
      const first = batcher.txn({ compare: [], success: [{ put: "/c/first", value: v("1") }] });
      const writer = batcher.txn({ compare: [], success: [{ put: "/c/k", value: v("x") }] });
      // Holds only if /c/k is still absent: true before the writer, false after it.
      const reader = batcher.txn({
        compare: [{ key: "/c/k", target: "create", op: "==", value: 0n }],
        success: [{ put: "/c/other", value: v("y") }],
      });
      await first;
      const [w, r] = await Promise.all([writer, reader]);
      assert.ok(w.succeeded);
      assert.equal(r.succeeded, false, "the compare saw the write queued before it");
      assert.ok(r.revision >= w.revision);
    });

    await t.step("a prefix read waits for a write under that prefix", async () => {
      const first = batcher.txn({ compare: [], success: [{ put: "/d/first", value: v("1") }] });
      const writer = batcher.txn({ compare: [], success: [{ put: "/d/dir/x", value: v("x") }] });
      const reader = batcher.txn({
        compare: [],
        success: [{ put: "/d/elsewhere", value: v("z") }, { get: "/d/dir/", prefix: true }],
      });
      await first;
      const r = await reader;
      assert.equal(r.results[1]!.kvs.length, 1, "the read saw the write queued before it");
      assert.ok(r.revision > (await writer).revision);
    });
  } finally {
    client.close();
  }
});
