/**
 * Four-letter words: plain-text admin commands sent instead of a
 * ConnectRequest (`ruok`, `srvr`, `mntr`, …), answered in the shapes of
 * ZooKeeper 3.8 so that zktop and Prometheus exporters can read them. Only
 * the words of `--4lw-commands` run; others get ZooKeeper's refusal text.
 *
 * @module
 */

import type { ServerState } from "./state.ts";
import { sessionHex } from "../zk/acl.ts";
import {
  allConnectionStats,
  answersCommands,
  type ConnectionStats,
  environment,
  monitorValues,
  NOT_SERVING,
  NotServingError,
  READ_ONLY_TEXT,
  resetConnectionStats,
  resetServerStats,
  serverMode,
  serverStats,
  serving,
  servingReadOnly,
  sessionDump,
  VERSION_TEXT,
  watchesByPath,
  watchesBySession,
  watchSummary,
} from "./server_info.ts";
import type { ConnectionInfo } from "../admin/stats.ts";

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

const hex = sessionHex;

/**
 * Words that need a serving server, as in ZooKeeper: while etcd does not
 * answer they reply {@link NOT_SERVING} (`isro` replies `null`, or `ro`
 * while read-only clients are served: `--read-only-mode`). While read-only
 * clients are served they answer, as ZooKeeper's read-only server does
 * ({@link answersCommands}: `srvr`, `stat`, `mntr` and `dump` from the
 * replica, saying `read-only`).
 */
const NEED_SERVING: ReadonlySet<string> = new Set([
  "srvr",
  "stat",
  "mntr",
  "cons",
  "conf",
  "crst",
  "srst",
  "wchs",
  "wchc",
  "wchp",
  "dump",
  "dirs",
  "hash",
]);

/** What a word needs: the server's state and the asking connection. */
export interface WordContext {
  state: ServerState;
  self: ConnectionInfo;
}

/** The reply text to a four-letter word. */
export async function answerFourLetterWord(word: string, ctx: WordContext): Promise<string> {
  const { state } = ctx;
  if (!state.fourLetterWords.has(word)) {
    return `${word} is not executed because it is not in the whitelist.\n`;
  }
  if (word === "isro") return serving(state) ? "rw" : servingReadOnly(state) ? "ro" : "null";
  if (NEED_SERVING.has(word) && !answersCommands(state)) return `${NOT_SERVING}\n`;
  try {
    return await answer(word, ctx);
  } catch (err) {
    if (err instanceof NotServingError) return `${NOT_SERVING}\n`;
    throw err;
  }
}

/** The reply to a word the server may answer now. */
async function answer(word: string, { state, self }: WordContext): Promise<string> {
  switch (word) {
    case "ruok":
      return "imok";
    case "srvr":
      return await serverLines(state, null);
    case "stat":
      return await serverLines(state, self);
    case "cons":
      return allConnectionStats(state, self).map((c) => ` ${connectionLine(c)}\n`).join("") +
        "\n";
    case "crst":
      resetConnectionStats(state);
      return "Connection stats reset.\n";
    case "srst":
      resetServerStats(state);
      return "Server stats reset.\n";
    case "mntr":
      return (await monitorValues(state)).map(([k, v]) => `zk_${k}\t${v}\n`).join("");
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
      return ["Environment:", ...environment().map(([k, v]) => `${k}=${v}`), ""].join("\n");
    case "wchs": {
      const { connections, paths, watches } = watchSummary(state);
      return `${connections} connections watching ${paths} paths\nTotal watches:${watches}\n`;
    }
    case "wchc":
      return grouped([...watchesBySession(state)].map(([id, paths]) => [hex(id), paths]));
    case "wchp":
      return grouped([...watchesByPath(state)].map(([path, ids]) => [path, ids.map(hex)]));
    case "dump":
      return await dump(state);
    case "dirs":
      return "datadir_size: 0\nlogdir_size: 0\n";
    default:
      // gtmk, stmk, hash: nothing to report on a server without a trace mask or digests.
      return "0\n";
  }
}

/** `srvr`'s lines; with `self`, `stat`'s (the connections after the version). */
async function serverLines(state: ServerState, self: ConnectionInfo | null): Promise<string> {
  const s = await serverStats(state);
  const mode = serverMode(state);
  const lines = [`Zookeeper version: ${VERSION_TEXT}`];
  if (mode === "read-only") lines.push(READ_ONLY_TEXT);
  if (self) {
    lines.push("Clients:");
    for (const c of allConnectionStats(state, self)) lines.push(` ${shortConnection(c)}`);
    lines.push("");
  }
  lines.push(
    `Latency min/avg/max: ${s.minLatency}/${s.avgLatency}/${s.maxLatency}`,
    `Received: ${s.received}`,
    `Sent: ${s.sent}`,
    `Connections: ${s.connections}`,
    `Outstanding: ${s.outstanding}`,
    `Zxid: ${hex(s.zxid)}`,
    `Mode: ${mode}`,
    `Node count: ${s.nodeCount}`,
    "",
  );
  return lines.join("\n");
}

/** ` /host:port[ops](queued=…,recved=…,sent=…)`, as `stat` lists a connection. */
function shortConnection(c: ConnectionStats): string {
  return `/${c.address}[${c.interestOps}](queued=${c.outstanding},recved=${c.received},sent=${c.sent})`;
}

/** A connection as `cons` lists it; `lcxid` is left out after a negative xid (a ping), as ZooKeeper does. */
function connectionLine(c: ConnectionStats): string {
  const base = shortConnection(c);
  const s = c.session;
  if (!s) return base;
  return base.slice(0, -1) + [
    `,sid=${hex(s.id)}`,
    `lop=${s.lastOperation}`,
    `est=${c.established}`,
    `to=${s.timeout}`,
    ...(s.lastCxid >= 0 ? [`lcxid=0x${s.lastCxid.toString(16)}`] : []),
    `lzxid=${hex(s.lastZxid)}`,
    `lresp=${s.lastResponseTime}`,
    `llat=${s.lastLatency}`,
    `minlat=${s.minLatency}`,
    `avglat=${s.avgLatency}`,
    `maxlat=${s.maxLatency})`,
  ].join(",");
}

/** `key\n\tvalue…` blocks, then a blank line. */
function grouped(groups: [string, string[]][]): string {
  return groups.map(([k, vs]) => `${k}\n${vs.map((v) => `\t${v}\n`).join("")}`).join("") + "\n";
}

async function dump(state: ServerState): Promise<string> {
  const { expiries, ephemerals } = await sessionDump(state);
  const count = [...expiries.values()].reduce((n, ids) => n + ids.length, 0);
  const lines = ["SessionTracker dump:", `Session Sets (${expiries.size})/(${count}):`];
  for (const [at, ids] of expiries) {
    lines.push(
      `${ids.length} expire at ${new Date(at).toUTCString()}:`,
      ...ids.map((id) => `\t${hex(id)}`),
    );
  }
  lines.push("ephemeral nodes dump:", `Sessions with Ephemerals (${ephemerals.size}):`);
  for (const [id, paths] of ephemerals) {
    lines.push(`${hex(id)}:`, ...paths.map((p) => `\t${p}`));
  }
  lines.push("Connections dump:", `Connections Sets (${state.connections.size})/(1):`);
  return lines.join("\n") + "\n";
}
