/**
 * Monitoring in ZooKeeper's shapes, checked against the real ZooKeeper 3.8:
 * the same small workload (two sessions, a data and a child watch on one
 * path, ephemerals, some data) runs on both servers, then
 *
 * - `mntr` has the keys that mean something here, on both, and no key
 *   ZooKeeper does not print; the counts of the workload (znodes,
 *   ephemerals, sessions, watches, data size, connections) move alike;
 * - a Prometheus exporter's parsing rules make the same valid samples of it;
 * - zktop's own parser (Debian's `zktop`) reads `stat` of both alike.
 */

import assert from "node:assert/strict";
import { ALL_FOUR_LETTER_WORDS } from "../../src/server/four_letter.ts";
import { startStack } from "../_util/zetcd.ts";
import { sendFourLetterWord, startZooKeeper } from "../_util/zookeeper.ts";
import { CreateMode, Nzk } from "../_util/nzk.ts";
import {
  exporterMetrics,
  haveZktop,
  parseMntr,
  PROMETHEUS_VALUE,
  type ZktopView,
  zktopView,
} from "../_util/monitoring.ts";

/** `mntr` keys ZooKeeper 3.8 prints that have a meaning on zetcd: both must print them. */
const MEANINGFUL_KEYS = [
  "zk_version",
  "zk_server_state",
  "zk_avg_latency",
  "zk_min_latency",
  "zk_max_latency",
  "zk_packets_received",
  "zk_packets_sent",
  "zk_num_alive_connections",
  "zk_outstanding_requests",
  "zk_znode_count",
  "zk_watch_count",
  "zk_ephemerals_count",
  "zk_approximate_data_size",
  "zk_open_file_descriptor_count",
  "zk_max_file_descriptor_count",
  "zk_uptime",
  "zk_global_sessions",
  "zk_local_sessions",
  "zk_auth_failed_count",
  "zk_connection_rejected",
  ...["readlatency", "updatelatency"].flatMap((name) =>
    ["avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999"].map((s) => `zk_${s}_${name}`)
  ),
];

/** Counts the workload adds, the same on both servers. */
const WORKLOAD_DELTAS: Record<string, number> = {
  zk_znode_count: 3,
  zk_ephemerals_count: 2,
  zk_global_sessions: 2,
  // A data and a child watch on /mon (ZooKeeper counts 2), a data watch of
  // the other session on /mon, an exists watch on a missing node.
  zk_watch_count: 4,
  // Path lengths plus data: /mon "hello", /mon/e1 "abc", /mon/e2.
  zk_approximate_data_size: 4 + 5 + 7 + 3 + 7,
};

const bytes = (s: string) => new TextEncoder().encode(s);

/** The workload: two sessions, left open while the server is looked at. */
async function workload(address: string): Promise<Nzk[]> {
  const a = await Nzk.connect(address);
  const b = await Nzk.connect(address);
  await a.create("/mon", bytes("hello"));
  await a.create("/mon/e1", bytes("abc"), CreateMode.EPHEMERAL);
  await b.create("/mon/e2", null, CreateMode.EPHEMERAL);
  await a.getData("/mon", () => {});
  await a.getChildren("/mon", () => {});
  await b.getData("/mon", () => {});
  await b.exists("/mon/none", () => {});
  return [a, b];
}

/** What one server showed: `mntr` before and during the workload, and zktop's view. */
interface Observed {
  before: Map<string, string>;
  during: Map<string, string>;
  mntrText: string;
  zktop: ZktopView | null;
}

async function observe(address: string, zktop: boolean): Promise<Observed> {
  const before = parseMntr(await sendFourLetterWord(address, "mntr"));
  const sessions = await workload(address);
  try {
    const mntrText = await sendFourLetterWord(address, "mntr");
    return {
      before,
      during: parseMntr(mntrText),
      mntrText,
      zktop: zktop ? await zktopView(address) : null,
    };
  } finally {
    for (const s of sessions) await s.close();
  }
}

Deno.test({
  name: "monitoring answers as ZooKeeper 3.8's under the same workload (mntr, an exporter, zktop)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const zktop = await haveZktop();
  let zk: Observed;
  let ours: Observed;
  {
    await using zookeeper = await startZooKeeper();
    zk = await observe(zookeeper.hostPort, zktop);
  }
  {
    await using stack = await startStack({ fourLetterWords: [...ALL_FOUR_LETTER_WORDS] });
    ours = await observe(stack.address, zktop);
  }

  await t.step("mntr prints every meaningful key, as ZooKeeper does, and no other key", () => {
    for (const key of MEANINGFUL_KEYS) {
      assert.ok(zk.during.has(key), `ZooKeeper prints ${key}`);
      assert.ok(ours.during.has(key), `zetcd prints ${key}`);
    }
    for (const key of ours.during.keys()) assert.ok(zk.during.has(key), `ZooKeeper prints ${key}`);
  });

  await t.step("the workload's counts move alike on both", () => {
    for (const [key, delta] of Object.entries(WORKLOAD_DELTAS)) {
      for (const [name, o] of [["ZooKeeper", zk], ["zetcd", ours]] as const) {
        const moved = Number(o.during.get(key)) - Number(o.before.get(key));
        assert.equal(
          moved,
          delta,
          `${key} on ${name}: ${o.before.get(key)} → ${o.during.get(key)}`,
        );
      }
    }
  });

  await t.step(
    "the znode count is ZooKeeper's, its root counted twice as its DataTree does",
    () => {
      for (const o of [zk.before, zk.during]) assert.ok(Number(o.get("zk_znode_count")) > 0);
      assert.equal(ours.before.get("zk_znode_count"), zk.before.get("zk_znode_count"));
      assert.equal(ours.during.get("zk_znode_count"), zk.during.get("zk_znode_count"));
    },
  );

  await t.step("connections, outstanding requests, file descriptors and times are real", () => {
    for (const [name, o] of [["ZooKeeper", zk], ["zetcd", ours]] as const) {
      const v = (key: string) => Number(o.during.get(key));
      // The two sessions and the connection asking.
      assert.equal(v("zk_num_alive_connections"), 3, name);
      assert.equal(v("zk_outstanding_requests"), 0, name);
      assert.equal(v("zk_local_sessions"), 0, name);
      assert.ok(v("zk_max_file_descriptor_count") > 0, `${name}: an open/max alert divides by it`);
      assert.ok(v("zk_open_file_descriptor_count") > 0, name);
      assert.ok(v("zk_open_file_descriptor_count") <= v("zk_max_file_descriptor_count"), name);
      assert.ok(v("zk_uptime") > 0, name);
      assert.ok(v("zk_packets_received") >= 9, `${name}: the workload's requests`);
      assert.ok(v("zk_packets_sent") >= 9, name);
      assert.ok(v("zk_cnt_readlatency") >= 4, `${name}: the workload's reads`);
      assert.ok(v("zk_max_latency") >= v("zk_min_latency"), name);
      assert.equal(o.during.get("zk_server_state"), "standalone", name);
      assert.match(o.during.get("zk_version")!, /^3\.8\.0-.*, built on /, name);
    }
  });

  await t.step("a Prometheus exporter's parsing makes the same valid samples of both", () => {
    const parsed = [exporterMetrics(zk.mntrText), exporterMetrics(ours.mntrText)];
    const [zkSamples, ourSamples] = parsed.map((p) => {
      assert.equal(p.kind, "metrics");
      return (p as { samples: Map<string, string> }).samples;
    });
    for (const [name, value] of ourSamples) {
      assert.match(value, PROMETHEUS_VALUE, `${name} ${value}`);
      assert.ok(zkSamples.has(name), `ZooKeeper's exporter output has ${name}`);
    }
    assert.equal(ourSamples.get('zk_version{version="3.8.0"}'), "1");
    assert.equal(ourSamples.get("zk_server_leader"), "0");
  });

  await t.step({
    name: "zktop's parser reads stat of both alike",
    ignore: !zktop,
    fn: () => {
      for (const [name, view] of [["ZooKeeper", zk.zktop!], ["zetcd", ours.zktop!]] as const) {
        assert.equal(view.unavailable, false, `zktop reads ${name}'s stat`);
        assert.equal(view.version, "3.8.0", name);
        assert.equal(view.mode, "standalone", name);
        assert.equal(view.sessions.length, 3, `${name}: the two sessions and zktop's own`);
        assert.ok(view.nodeCount >= 7, name);
        assert.ok(view.zxid > 0, name);
        assert.equal(view.outstanding, 0, name);
      }
      assert.deepEqual(
        ours.zktop!.sessions.map((s) => Object.keys(s).sort()),
        zk.zktop!.sessions.map((s) => Object.keys(s).sort()),
      );
    },
  });
  if (!zktop) console.log("zktop is not installed (apt-get install zktop): its step was skipped");
});
