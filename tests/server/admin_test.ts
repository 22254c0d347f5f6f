/**
 * The HTTP admin port: Prometheus metrics (one `op` vocabulary, process
 * metrics, build info), health and readiness probes, and ZooKeeper 3.8's
 * AdminServer commands in its JSON shapes.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { CreateMode, Nzk } from "../_util/nzk.ts";
import { OpCode } from "../../src/zk/constants.ts";
import { opLabel, SHORT_OP_NAMES } from "../../src/admin/stats.ts";
import { VERSION } from "../../src/version.ts";

/**
 * The fields (besides `command` and `error`) of ZooKeeper 3.8.0's
 * AdminServer replies, recorded from a real 3.8.0 with its admin server on
 * (Jetty and servlet-api from Debian on its classpath) after a workload of
 * sessions, watches and ephemerals. `server_stats` and `stats` also carry
 * `client_response` there (reply buffer sizes, not measured here).
 */
const FIELDS: Record<string, string[]> = {
  ruok: [],
  configuration: [
    "client_port",
    "data_dir",
    "data_log_dir",
    "tick_time",
    "max_client_cnxns",
    "min_session_timeout",
    "max_session_timeout",
    "server_id",
    "client_port_listen_backlog",
  ],
  connections: ["connections", "secure_connections"],
  dirs: ["datadir_size", "logdir_size"],
  dump: ["expiry_time_to_session_ids", "session_id_to_ephemeral_paths"],
  is_read_only: ["read_only"],
  server_stats: ["version", "read_only", "server_stats", "node_count"],
  stats: [
    "version",
    "read_only",
    "server_stats",
    "node_count",
    "connections",
    "secure_connections",
  ],
  watch_summary: ["num_connections", "num_paths", "num_total_watches"],
  watches: ["session_id_to_watched_paths"],
  watches_by_path: ["path_to_session_ids"],
};

/** The fields of one connection in ZooKeeper 3.8's `connections` (`stats`: the first five). */
const CONNECTION_FIELDS = [
  "remote_socket_address",
  "interest_ops",
  "outstanding_requests",
  "packets_received",
  "packets_sent",
  "session_id",
  "last_operation",
  "established",
  "session_timeout",
  "last_cxid",
  "last_zxid",
  "last_response_time",
  "last_latency",
  "min_latency",
  "avg_latency",
  "max_latency",
];

/** The fields of ZooKeeper 3.8's `server_stats` object that zetcd gives. */
const SERVER_STATS_FIELDS = [
  "packets_sent",
  "packets_received",
  "data_dir_size",
  "log_dir_size",
  "server_state",
  "last_processed_zxid",
  "outstanding_requests",
  "avg_latency",
  "max_latency",
  "min_latency",
  "num_alive_client_connections",
  "uptime",
  "auth_failed_count",
];

/** Sorted keys of an object. */
const keysOf = (o: object) => Object.keys(o).sort();

/** A command's JSON reply and its raw text (64-bit ids are exact only there). */
// deno-lint-ignore no-explicit-any -- replies of every shape, checked field by field
async function command(base: string, name: string): Promise<{ body: any; text: string }> {
  const res = await fetch(`${base}/commands/${name}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^application\/json/);
  const text = await res.text();
  return { body: JSON.parse(text), text };
}

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
  await zk.getData("/m", () => {});
  await zk.getData("/missing").catch(() => {});
  await zk.create("/m/e", null, CreateMode.EPHEMERAL);

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
      .filter((s) => s.labels.includes('op="getData"'));
    assert.ok(buckets.length > 1);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value);
    assert.ok(samples.get("zetcd_etcd_request_duration_seconds_count"));
    assert.equal(samples.get("zetcd_connections")![0].value, 1);
    assert.equal(samples.get("zetcd_sessions")![0].value, 1);
  });

  await t.step("every op label of every family is an OpCode name", async () => {
    const samples = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
    const names = new Set(Object.keys(OpCode));
    let labelled = 0;
    for (const [family, list] of samples) {
      for (const { labels } of list) {
        const op = /op="([^"]*)"/.exec(labels)?.[1];
        if (op === undefined) continue;
        labelled++;
        assert.ok(names.has(op), `${family}${labels}`);
      }
    }
    assert.ok(labelled > 0);
  });

  await t.step("/metrics has the process metrics and zetcd_build_info", async () => {
    const samples = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
    const value = (name: string) => samples.get(name)?.[0].value ?? NaN;
    assert.ok(value("process_cpu_seconds_total") > 0);
    assert.ok(value("process_resident_memory_bytes") > 1e6);
    assert.ok(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
    assert.ok(value("process_open_fds") > 0);
    assert.ok(value("process_max_fds") >= value("process_open_fds"));
    const started = value("process_start_time_seconds");
    assert.ok(started > Date.now() / 1000 - 3600 && started <= Date.now() / 1000);
    const info = samples.get("zetcd_build_info")!;
    assert.equal(info.length, 1);
    assert.equal(info[0].value, 1);
    assert.match(info[0].labels, new RegExp(`version="${VERSION}"`));
    assert.match(info[0].labels, /commit="[^"]+"/);
    assert.match(info[0].labels, /deno="\d+\.\d+\.\d+"/);
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
    assert.equal(body.ephemerals_count, 1);
    assert.equal(body.watch_count, 1);
    assert.ok(body.max_file_descriptor_count > 0);
  });

  await t.step("an unknown command answers as ZooKeeper's: 200 and an error", async () => {
    const { body } = await command(base, "nope");
    assert.deepEqual(body, { command: "nope", error: "Unknown command: nope" });
  });

  await t.step(
    "the commands answer ZooKeeper 3.8's fields, aliases naming the command",
    async () => {
      for (const [name, fields] of Object.entries(FIELDS)) {
        const { body } = await command(base, name);
        assert.equal(body.command, name);
        assert.equal(body.error, null, name);
        const rest = keysOf(body).filter((k) => k !== "command" && k !== "error");
        assert.deepEqual(rest, [...fields].sort(), name);
      }
      assert.equal((await command(base, "srvr")).body.command, "server_stats");
      assert.equal((await command(base, "stat")).body.command, "stats");
      assert.equal((await command(base, "cons")).body.command, "connections");
      const stats = (await command(base, "server_stats")).body;
      assert.deepEqual(keysOf(stats.server_stats), [...SERVER_STATS_FIELDS].sort());
      assert.equal(stats.server_stats.server_state, "standalone");
      assert.equal(typeof stats.node_count, "number");
      const brief = (await command(base, "stats")).body.connections;
      assert.deepEqual(keysOf(brief[0]), CONNECTION_FIELDS.slice(0, 5).sort());
    },
  );

  await t.step("connections: ZooKeeper's fields, session ids exact", async () => {
    const { body, text } = await command(base, "connections");
    assert.deepEqual(body.secure_connections, []);
    assert.equal(body.connections.length, 1);
    const c = body.connections[0];
    assert.deepEqual(keysOf(c), [...CONNECTION_FIELDS].sort());
    assert.match(c.remote_socket_address, /^127\.0\.0\.1:\d+$/);
    assert.equal(c.interest_ops, 1);
    assert.equal(typeof c.last_operation, "string");
    assert.ok(c.established <= Date.now() && c.established > Date.now() - 60_000);
    assert.equal(c.session_timeout, 10000);
    // A 64-bit session id is exact in the text, whatever JSON.parse makes of it.
    assert.equal(BigInt(/"session_id": *(\d+)/.exec(text)![1]), zk.sessionId);
  });

  await t.step("watches, watches_by_path and dump name sessions by their exact ids", async () => {
    const id = String(zk.sessionId);
    const watches = (await command(base, "watches")).body.session_id_to_watched_paths;
    assert.deepEqual(watches, { [id]: ["/m"] });
    const byPath = await command(base, "watches_by_path");
    assert.deepEqual(Object.keys(byPath.body.path_to_session_ids), ["/m"]);
    assert.match(byPath.text, new RegExp(`"/m": \\[\\s*${id}\\s*\\]`));
    const dump = (await command(base, "dump")).body;
    assert.deepEqual(dump.session_id_to_ephemeral_paths, { [id]: ["/m/e"] });
    assert.equal(Object.keys(dump.expiry_time_to_session_ids).length, 1);
    const summary = (await command(base, "watch_summary")).body;
    assert.deepEqual(
      [summary.num_connections, summary.num_paths, summary.num_total_watches],
      [1, 1, 1],
    );
  });

  await t.step("/commands lists every command, as ZooKeeper's page", async () => {
    const res = await fetch(`${base}/commands`);
    assert.equal(res.status, 200);
    const html = await res.text();
    const names = [...html.matchAll(/<a href="\/commands\/([a-z_]+)">([a-z_]+)<\/a>\n<br\/>\n/g)];
    assert.deepEqual(
      names.map((m) => m[1]),
      names.map((m) => m[2]),
    );
    const listed = names.map((m) => m[1]);
    assert.deepEqual(listed, [...listed].sort());
    for (const name of Object.keys(FIELDS)) assert.ok(listed.includes(name), name);
    for (const name of listed) {
      const { body } = await command(base, name);
      assert.equal(body.command, name);
      assert.equal(body.error, null, name);
    }
  });

  await zk.close();
});

Deno.test("one op vocabulary: each short name is unique and names its OpCode", () => {
  const shorts = Object.values(SHORT_OP_NAMES);
  assert.equal(new Set(shorts).size, shorts.length);
  for (const [type, short] of Object.entries(SHORT_OP_NAMES)) {
    assert.match(short, /^[A-Z0-9]{4}$/);
    assert.equal(OpCode[opLabel(short) as keyof typeof OpCode], Number(type), short);
  }
  assert.equal(opLabel("getData"), "getData");
});
