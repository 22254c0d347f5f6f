/**
 * The HTTP admin port: Prometheus metrics, health and readiness probes,
 * AdminServer-style commands.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { Nzk } from "../_util/nzk.ts";

/** Parses the Prometheus text format: every sample as name → labels → value. */
function parsePrometheus(text: string): Map<string, { labels: string; value: number }[]> {
  const samples = new Map<string, { labels: string; value: number }[]>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) {
      assert.match(line, /^$|^# (HELP|TYPE) [a-z_:][a-z0-9_:]* .+$/);
      continue;
    }
    const m = /^([a-z_:][a-z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+]+|\+Inf|NaN)$/.exec(line);
    assert.ok(m, `a Prometheus sample: ${line}`);
    const list = samples.get(m[1]) ?? [];
    list.push({ labels: m[2] ?? "", value: Number(m[3]) });
    samples.set(m[1], list);
  }
  return samples;
}

Deno.test({
  name: "the admin port serves metrics, probes and commands",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await startStack({ admin: { hostname: "127.0.0.1", port: 0 } });
  const base = `http://${stack.server.adminAddress}`;
  const zk = await Nzk.connect(stack.address);
  await zk.create("/m");
  await zk.getData("/m");
  await zk.getData("/missing").catch(() => {});

  await t.step("/metrics is Prometheus text with requests, errors and latencies", async () => {
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const samples = parsePrometheus(await res.text());
    const requests = samples.get("zetcd_requests_total")!;
    assert.ok(requests.find((s) => s.labels === '{op="create"}' && s.value >= 1));
    assert.ok(requests.find((s) => s.labels === '{op="getData"}' && s.value >= 2));
    assert.ok(samples.get("zetcd_errors_total")!.find((s) => s.labels === '{code="NONODE"}'));
    const buckets = samples.get("zetcd_request_duration_seconds_bucket")!
      .filter((s) => s.labels.includes('op="GETD"'));
    assert.ok(buckets.length > 1);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value);
    assert.ok(samples.get("zetcd_etcd_request_duration_seconds_count"));
    assert.equal(samples.get("zetcd_connections")![0].value, 1);
    assert.equal(samples.get("zetcd_sessions")![0].value, 1);
  });

  await t.step("/healthz answers while the process runs", async () => {
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });

  await t.step("/readyz is unready while etcd is frozen and ready again after", async () => {
    const ready = async () => {
      const res = await fetch(`${base}/readyz`);
      await res.body?.cancel();
      return res.status;
    };
    assert.equal(await ready(), 200);
    await stack.etcd.freeze();
    try {
      assert.equal(await ready(), 503);
    } finally {
      stack.etcd.signal("SIGCONT");
    }
    const deadline = Date.now() + 10_000;
    while ((await ready()) !== 200) {
      assert.ok(Date.now() < deadline, "ready again within 10 s");
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  await t.step("/commands/monitor returns mntr's values as JSON", async () => {
    const res = await fetch(`${base}/commands/monitor`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.command, "monitor");
    assert.equal(body.error, null);
    assert.equal(body.server_state, "standalone");
    assert.equal(typeof body.znode_count, "number");
    const unknown = await fetch(`${base}/commands/nope`);
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
  });

  await zk.close();
});
