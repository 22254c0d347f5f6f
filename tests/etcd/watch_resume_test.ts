/**
 * A watch whose connection fails while etcd is still sending it history
 * comes back from the revision after the last event it delivered: no
 * revision skipped, none delivered twice — over our transport and over the
 * etcd3 library's, whose own resume point is the revision in each answer's
 * header (etcd's current one, ahead of the history not yet sent).
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { startRelay } from "../_util/tcp_relay.ts";
import { EtcdClient } from "../../src/etcd/client.ts";

/** Revisions more than one watch answer holds: etcd sends history 1,000 revisions at a time. */
const WRITES = 2500;

for (const transport of ["direct", "etcd3"] as const) {
  Deno.test({
    name:
      `${transport}: a watch cut while catching up on history resumes after the last revision it delivered`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    await using etcd = await startEtcd();
    const writer = EtcdClient.connect({ endpoints: etcd.endpoints });
    const relay = startRelay(etcd.endpoints[0]);
    const client = EtcdClient.connect({ endpoints: [relay.address], transport });
    let stop: (() => Promise<void>) | undefined;
    try {
      const first = (await writer.txn([], [{ put: "/w/0" }])).revision;
      for (let i = 1; i < WRITES; i++) await writer.txn([], [{ put: `/w/${i % 50}` }]);
      const last = first + BigInt(WRITES - 1);
      const seen: bigint[] = [];
      const all = Promise.withResolvers<void>();
      let cut = false;
      stop = await client.watchPrefix("/w/", first, (batch) => {
        for (const e of batch.events) seen.push(e.kv.modRevision);
        if (!cut) {
          // The first answer in: the connection fails before the rest of the history.
          cut = true;
          relay.cut();
        }
        if (seen.at(-1) === last) all.resolve();
      }, (err) => all.reject(err));
      const timer = setTimeout(() => all.reject(new Error(`saw ${seen.length} events`)), 20_000);
      await all.promise.finally(() => clearTimeout(timer));
      assert.ok(cut && relay.accepted >= 2, "the watch's connection was cut and made again");
      const expected = Array.from({ length: WRITES }, (_, i) => first + BigInt(i));
      assert.deepEqual(seen, expected, "every revision once, in order");
    } finally {
      await stop?.().catch(() => {});
      client.close();
      writer.close();
      relay.close();
    }
  });
}
