/**
 * `zetcd bench`: loads a ZooKeeper endpoint, reports what it measured, and
 * leaves nothing behind.
 */

import assert from "node:assert/strict";
import { runZetcd } from "./_util/cli.ts";
import { startStack } from "./_util/zetcd.ts";
import { startEtcd } from "./_util/etcd.ts";
import { ZkClient } from "../src/client/client.ts";

Deno.test({
  name: "zetcd bench runs a workload to its total and reports ops/s and percentiles as JSON",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await startStack();
  for (const workload of ["create", "set", "get", "mixed", "watch"]) {
    await t.step(workload, async () => {
      const run = await runZetcd([
        "bench",
        "--endpoints",
        stack.address,
        "--conns",
        "3",
        "--total",
        "120",
        "--json",
        workload,
      ]);
      assert.equal(run.code, 0, run.stderr);
      const result = JSON.parse(run.stdout);
      assert.equal(result.ops, 120);
      assert.equal(result.errors, 0);
      assert.equal(result.conns, 3);
      assert.ok(result.opsPerSecond > 0 && result.p50 <= result.p99 && result.p99 <= result.max);
    });
  }
  const zk = await ZkClient.connect(stack.address);
  const { children } = await zk.getChildren("/");
  await zk.close();
  assert.deepEqual(children.filter((c) => c.startsWith("bench-")), [], "nothing left behind");
});

Deno.test({
  name: "zetcd bench measures raw etcd and refuses an unknown workload",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const run = await runZetcd([
    "bench",
    "--endpoints",
    etcd.endpoints[0],
    "--total",
    "50",
    "etcd",
    "--etcd-op",
    "create",
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^etcd create: 50 ops in .* ops\/s, 0 errors; latency ms p50/);
  const bad = await runZetcd(["bench", "dance"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /WORKLOAD must be one of create, set, get, mixed, watch, delete, etcd/);
});
