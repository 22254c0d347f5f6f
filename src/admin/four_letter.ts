/**
 * Four-letter words: plain-text admin commands sent instead of a
 * ConnectRequest (`ruok`, `srvr`, `mntr`, …), answered in the shapes of
 * ZooKeeper 3.8 so that zktop and Prometheus exporters can read them. Only
 * the words of `--4lw-commands` run; others get ZooKeeper's refusal text.
 *
 * @module
 */

import type { ServerState } from "../server/state.ts";
import { VERSION } from "../version.ts";
import { sessionHex } from "../zk/acl.ts";
import type { ConnectionInfo } from "./stats.ts";

/** Every word ZooKeeper 3.8 knows. */
export const ALL_FOUR_LETTER_WORDS: readonly string[] = [
  "ruok",
  "srvr",
  "stat",
  "mntr",
  "conf",
  "envi",
  "cons",
  "crst",
  "srst",
  "wchs",
  "wchc",
  "wchp",
  "dump",
  "isro",
  "dirs",
  "gtmk",
  "stmk",
  "hash",
];

const WORDS = new Set(ALL_FOUR_LETTER_WORDS);

/** The words answered by default (`--4lw-commands`). */
export const DEFAULT_FOUR_LETTER_WORDS = [
  "srvr",
  "stat",
  "ruok",
  "mntr",
  "conf",
  "envi",
  "cons",
  "wchs",
  "dirs",
  "isro",
];

/** The word spelled by a connection's first 4 bytes, or null if they are a frame length. */
export function fourLetterWord(first4: Uint8Array): string | null {
  const word = String.fromCharCode(...first4);
  return WORDS.has(word) ? word : null;
}

/** The version line ZooKeeper prints, naming this server. */
export const VERSION_TEXT = `3.8.0-zetcd-${VERSION}, built on zetcd for Deno`;

const hex = sessionHex;

/** What a word needs: the server's state and the asking connection. */
export interface WordContext {
  state: ServerState;
  self: ConnectionInfo;
  /** Answer every word, whatever `--4lw-commands` says (the HTTP admin port). */
  all?: boolean;
}

/** The reply text to a four-letter word. */
export async function answerFourLetterWord(word: string, ctx: WordContext): Promise<string> {
  const { state } = ctx;
  if (!ctx.all && !state.fourLetterWords.has(word)) {
    return `${word} is not executed because it is not in the whitelist.\n`;
  }
  switch (word) {
    case "ruok":
      return "imok";
    case "isro":
      return "rw";
    case "srvr":
      return serverLines(state, await state.tree.countNodes(), null);
    case "stat":
      return serverLines(state, await state.tree.countNodes(), ctx.self);
    case "cons":
      return [...state.connections].map((c) => ` ${connectionLine(c, c === ctx.self)}\n`).join("") +
        "\n";
    case "crst":
      for (const c of state.connections) c.counters.reset();
      return "Connection stats reset.\n";
    case "srst":
      state.counters.reset();
      return "Server stats reset.\n";
    case "mntr":
      return mntr(state, await state.tree.countNodes());
    case "conf":
      return [
        `clientPort=${state.conf.port}`,
        "secureClientPort=-1",
        `dataDir=etcd:${state.conf.prefix}`,
        "dataDirSize=0",
        `dataLogDir=etcd:${state.conf.prefix}`,
        "dataLogSize=0",
        "tickTime=2000",
        `maxClientCnxns=${state.conf.maxClientCnxns}`,
        `minSessionTimeout=${state.conf.minSessionTimeout}`,
        `maxSessionTimeout=${state.conf.maxSessionTimeout}`,
        "clientPortListenBacklog=-1",
        "serverId=0",
        "",
      ].join("\n");
    case "envi":
      return environment();
    case "wchs": {
      const watches = state.watches.list();
      const sessions = new Set(watches.map(([, s]) => s));
      const paths = new Set(watches.map(([p]) => p));
      return `${sessions.size} connections watching ${paths.size} paths\nTotal watches:${watches.length}\n`;
    }
    case "wchc":
      return grouped(state.watches.list().map(([p, s]) => [hex(s), p]));
    case "wchp":
      return grouped(state.watches.list().map(([p, s]) => [p, hex(s)]));
    case "dump":
      return await dump(state);
    case "dirs":
      return "datadir_size: 0\nlogdir_size: 0\n";
    default:
      // gtmk, stmk, hash: nothing to report on a server without a trace mask or digests.
      return "0\n";
  }
}

function serverLines(state: ServerState, nodes: number, self: ConnectionInfo | null): string {
  const c = state.counters;
  const lines = [`Zookeeper version: ${VERSION_TEXT}`];
  if (self) {
    lines.push("Clients:");
    for (const conn of state.connections) lines.push(` ${shortConnection(conn, conn === self)}`);
    lines.push("");
  }
  lines.push(
    `Latency min/avg/max: ${c.minLatency}/${round(c.avgLatency)}/${c.maxLatency}`,
    `Received: ${c.received}`,
    `Sent: ${c.sent}`,
    `Connections: ${state.connections.size}`,
    "Outstanding: 0",
    `Zxid: ${hex(state.watches.revision)}`,
    "Mode: standalone",
    `Node count: ${nodes}`,
    "",
  );
  return lines.join("\n");
}

function shortConnection(c: ConnectionInfo, self: boolean): string {
  return `/${c.peer}[${
    self ? 0 : 1
  }](queued=0,recved=${c.counters.received},sent=${c.counters.sent})`;
}

function connectionLine(c: ConnectionInfo, self: boolean): string {
  const base = shortConnection(c, self);
  if (c.sessionId === undefined) return base;
  const n = c.counters;
  return base.slice(0, -1) + [
    `,sid=${hex(c.sessionId)}`,
    `lop=${c.lastOp ?? "NA"}`,
    `est=${c.established}`,
    `to=${c.timeout ?? 0}`,
    `lcxid=0x${(c.lastXid ?? 0).toString(16)}`,
    `lzxid=${hex(c.lastZxid ?? 0n)}`,
    `lresp=${c.lastResponse ?? 0}`,
    `llat=${c.lastLatency ?? 0}`,
    `minlat=${n.minLatency}`,
    `avglat=${Math.round(n.avgLatency)}`,
    `maxlat=${n.maxLatency})`,
  ].join(",");
}

function mntr(state: ServerState, nodes: number): string {
  const c = state.counters;
  const watches = state.watches.list();
  const rows: [string, string | number][] = [
    ["zk_version", VERSION_TEXT],
    ["zk_server_state", "standalone"],
    ["zk_avg_latency", round(c.avgLatency)],
    ["zk_max_latency", c.maxLatency],
    ["zk_min_latency", c.minLatency],
    ["zk_packets_received", c.received],
    ["zk_packets_sent", c.sent],
    ["zk_num_alive_connections", state.connections.size],
    ["zk_outstanding_requests", 0],
    ["zk_znode_count", nodes],
    ["zk_watch_count", watches.length],
    ["zk_ephemerals_count", 0],
    ["zk_approximate_data_size", 0],
    ["zk_open_file_descriptor_count", openFiles()],
    ["zk_max_file_descriptor_count", 0],
    ["zk_uptime", Date.now() - state.started],
    ["zk_global_sessions", state.sessions.local.size],
    ["zk_local_sessions", 0],
  ];
  return rows.map(([k, v]) => `${k}\t${v}\n`).join("");
}

function openFiles(): number {
  try {
    return [...Deno.readDirSync("/proc/self/fd")].length;
  } catch {
    return 0;
  }
}

function environment(): string {
  const env = (f: () => string) => {
    try {
      return f();
    } catch {
      return "<NA>";
    }
  };
  const mem = Deno.memoryUsage();
  return [
    "Environment:",
    `zookeeper.version=${VERSION_TEXT}`,
    `host.name=${env(() => Deno.hostname())}`,
    `deno.version=${Deno.version.deno}`,
    `v8.version=${Deno.version.v8}`,
    `os.name=${Deno.build.os}`,
    `os.arch=${Deno.build.arch}`,
    `os.version=${env(() => Deno.osRelease())}`,
    `user.dir=${env(() => Deno.cwd())}`,
    `os.memory.free=${Math.round((mem.heapTotal - mem.heapUsed) / 1048576)}MB`,
    `os.memory.total=${Math.round(mem.rss / 1048576)}MB`,
    "",
  ].join("\n");
}

/** `key\n\tvalue…` blocks, keys in order of first appearance, then a blank line. */
function grouped(pairs: [string, string][]): string {
  const groups = new Map<string, string[]>();
  for (const [k, v] of pairs) groups.set(k, [...(groups.get(k) ?? []), v]);
  return [...groups].map(([k, vs]) => `${k}\n${vs.map((v) => `\t${v}\n`).join("")}`).join("") +
    "\n";
}

async function dump(state: ServerState): Promise<string> {
  const sessions = [...state.sessions.local.values()];
  const lines = ["SessionTracker dump:", `Session Sets (${sessions.length})/(${sessions.length}):`];
  for (const s of sessions) {
    lines.push(`0 expire at ${new Date(s.lastHeard + s.timeout).toUTCString()}:`, `\t${hex(s.id)}`);
  }
  const withEphemerals: [bigint, string[]][] = [];
  for (const s of sessions) {
    const paths = await state.tree.ephemerals(s.ephemeralLease);
    if (paths.length > 0) withEphemerals.push([s.id, paths.sort()]);
  }
  lines.push("ephemeral nodes dump:", `Sessions with Ephemerals (${withEphemerals.length}):`);
  for (const [id, paths] of withEphemerals) {
    lines.push(`${hex(id)}:`, ...paths.map((p) => `\t${p}`));
  }
  lines.push("Connections dump:", `Connections Sets (${state.connections.size})/(1):`);
  return lines.join("\n") + "\n";
}

function round(n: number): number {
  return Math.round(n * 10000) / 10000;
}
