/**
 * How monitoring tools read ZooKeeper's four-letter words, for tests that
 * check both servers' replies with them: `mntr` as key/value pairs, the
 * parsing rules of a Prometheus ZooKeeper exporter, and zktop's own parser
 * (Debian's `zktop`, run through python3).
 *
 * @module
 */

/** `mntr`'s `zk_key\tvalue` lines as a map. */
export function parseMntr(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const tab = line.indexOf("\t");
    out.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return out;
}

/** What a Prometheus exporter makes of a `mntr` reply. */
export type ExporterResult =
  | { kind: "metrics"; samples: Map<string, string> }
  | { kind: "not serving" }
  | { kind: "not whitelisted" };

/**
 * The parsing rules of dabealu/zookeeper-exporter (a widely used exporter,
 * not packaged for Debian), ported: a reply whose first line is ZooKeeper's
 * not-serving text or a whitelist refusal is recognised as such; otherwise
 * each line, tabs made spaces, is split on spaces: `zk_server_state` becomes
 * `zk_server_leader`, `zk_version`'s first word a `version` label (its
 * `x.y.z` prefix), and every other key a sample whose value is the second
 * field, written out as it is.
 */
export function exporterMetrics(text: string): ExporterResult {
  const lines = text.split("\n");
  if (lines[0] === "This ZooKeeper instance is not currently serving requests") {
    return { kind: "not serving" };
  }
  if (lines[0].includes("is not executed because it is not in the whitelist.")) {
    return { kind: "not whitelisted" };
  }
  const samples = new Map<string, string>();
  for (const line of lines) {
    const kv = line.replaceAll("\t", " ").split(" ");
    if (kv[0] === "zk_server_state") {
      samples.set("zk_server_leader", kv[1] === "leader" ? "1" : "0");
    } else if (kv[0] === "zk_version") {
      const version = kv[1].replace(/^([0-9]+\.[0-9]+\.[0-9]+).*$/, "$1");
      samples.set(`zk_version{version="${version}"}`, "1");
    } else if (kv[0] !== "") {
      samples.set(kv[0].replaceAll("-", "_"), kv[1]);
    }
  }
  return { kind: "metrics", samples };
}

/** A value Prometheus' text format accepts as a sample value. */
export const PROMETHEUS_VALUE = /^(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[-+]Inf)$/;

/** What zktop read from `stat`: its ZKServer object's fields, and the figures its screens compute. */
export interface ZktopView {
  unavailable: boolean;
  version: string;
  mode: string;
  sessions: Record<string, string | number>[];
  /** `int(node_count)`, `int(zxid, 16)`, `int(outstanding)`…, as its screens compute them. */
  nodeCount: number;
  zxid: number;
  outstanding: number;
  received: number;
  sent: number;
  minLatency: number;
  avgLatency: number;
  maxLatency: number;
}

const ZKTOP_MODULE = "/usr/lib/python3/dist-packages/zktop.py";

/** Whether Debian's zktop is installed (`apt-get install zktop`). */
export async function haveZktop(): Promise<boolean> {
  try {
    await Deno.stat(ZKTOP_MODULE);
    return true;
  } catch {
    return false;
  }
}

/** Runs zktop's parser of `stat` (its ZKServer class) against `address`. */
export async function zktopView(address: string): Promise<ZktopView> {
  const script = `
import json, sys
address = sys.argv[1]
sys.argv = ["zktop", "--timeout", "5"]
import zktop
s = zktop.ZKServer(address, 0)
view = {"unavailable": s.unavailable, "version": s.version, "mode": s.mode,
        "sessions": [vars(x) for x in s.sessions]}
if not s.unavailable:
    view.update({"nodeCount": int(s.node_count), "zxid": zktop.strToLong(s.zxid, 16),
                 "outstanding": int(s.outstanding), "received": int(s.received),
                 "sent": int(s.sent), "minLatency": float(s.min_latency),
                 "avgLatency": float(s.avg_latency), "maxLatency": float(s.max_latency)})
    for x in s.sessions:
        int(x.queued), int(x.recved), int(x.sent), int(x.interest_ops)
print(json.dumps(view))
`;
  const out = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", script, address],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000),
  }).output();
  if (!out.success) {
    throw new Error(`zktop's parser failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
