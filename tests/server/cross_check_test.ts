/**
 * Cross-check mode: requests are mirrored to a real ZooKeeper, and a
 * difference is logged and counted, never crashing the server.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { Nzk } from "../_util/nzk.ts";

async function divergences(adminAddress: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://${adminAddress}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^zetcd_oracle_divergences_total\{op="(\w+)"\} (\d+)$/gm)) {
    out[m[1]] = Number(m[2]);
  }
  return out;
}

Deno.test({
  name: "cross-check mode reports an injected divergence and keeps serving",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using zookeeper = await startZooKeeper();
  await using stack = await startStack({
    oracle: zookeeper.hostPort,
    admin: { hostname: "127.0.0.1", port: 0 },
  });
  const admin = stack.server.adminAddress!;
  const zk = await Nzk.connect(stack.address);
  try {
    await zk.create("/same", new TextEncoder().encode("x"));
    await zk.getData("/same");
    await zk.setData("/same", new TextEncoder().encode("y"));
    await zk.getChildren("/");
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await divergences(admin), {}, "identical answers: nothing reported");

    // A node only the oracle has: the two servers now answer differently.
    const direct = await Nzk.connect(zookeeper.hostPort);
    await direct.create("/only-in-zookeeper");
    await direct.close();
    await assert.rejects(zk.getData("/only-in-zookeeper"));
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await divergences(admin), { getData: 1 });

    assert.ok(await zk.exists("/same"), "the server kept serving");
  } finally {
    await zk.close();
  }
});
