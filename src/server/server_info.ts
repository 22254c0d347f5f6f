/**
 * What the four-letter words and the admin port's commands report, as
 * data: server and connection statistics, `mntr`'s values, watches,
 * sessions and the environment. `four_letter.ts` renders it as ZooKeeper
 * 3.8's text, `admin_http.ts` as its AdminServer's JSON.
 *
 * @module
 */

import type { ServerState } from "./state.ts";
import type { KeyValue } from "../etcd/client.ts";
import { VERSION } from "../version.ts";
import { elapsedMs, maxFileDescriptors, openFileDescriptors } from "../admin/process.ts";
import type { ConnectionInfo, LatencySummary } from "../admin/stats.ts";
import { type TreeFigures, treeFigures } from "../admin/tree_figures.ts";
import { decodeNode } from "../store/values.ts";
import { ephemeralPaths } from "../store/reapers.ts";

/** The version line ZooKeeper prints, naming this server. */
export const VERSION_TEXT = `3.8.0-zetcd-${VERSION}, built on zetcd for Deno`;

/** The second line of `srvr` and `stat` while read-only clients are served, as ZooKeeper's. */
export const READ_ONLY_TEXT = "READ-ONLY mode; serving only read-only clients";

/** ZooKeeper's answer while it does not serve clients; here, while etcd does not answer. */
export const NOT_SERVING = "This ZooKeeper instance is not currently serving requests";

/** How often a command waiting for etcd checks that etcd is still available. */
const CHECK_EVERY_MS = 100;

/** Thrown when etcd becomes unavailable while a command waits for it. */
export class NotServingError extends Error {
  constructor() {
    super(NOT_SERVING);
  }
}

/** Whether the server serves clients: whether etcd answers. */
export function serving(state: ServerState): boolean {
  return state.health.available;
}

/**
 * Whether the server serves read-only clients (`--read-only-mode`): etcd is
 * unavailable and the replica holds the last known state.
 */
export function servingReadOnly(state: ServerState): boolean {
  return state.readOnlyMode && !state.health.available && (state.tree.replica?.ready ?? false);
}

/**
 * The server's mode, as `srvr`'s `Mode:` and `mntr`'s `zk_server_state`
 * say it: `standalone`, or `read-only` while read-only clients are served
 * (ZooKeeper's read-only server says so too).
 */
export function serverMode(state: ServerState): "standalone" | "read-only" {
  return servingReadOnly(state) ? "read-only" : "standalone";
}

/**
 * Whether the commands that need a serving server (ZooKeeper's running
 * server) answer: while etcd answers, and while read-only clients are
 * served (ZooKeeper's read-only server answers them too): then from the
 * replica, saying {@link serverMode} `read-only`. The four-letter words and
 * the admin port's commands both ask this.
 */
export function answersCommands(state: ServerState): boolean {
  return serving(state) || servingReadOnly(state);
}

/**
 * Walks the tree of the replica's last known state from `/`, for read-only
 * service (see `EtcdTree.walkReplica`). Throws {@link NotServingError} when
 * the replica cannot answer.
 */
async function walkReplica(
  state: ServerState,
  visit: (path: string, kv: KeyValue) => void,
): Promise<void> {
  if (await state.tree.walkReplica("/", visit) === null) throw new NotServingError();
}

/**
 * {@link TreeFigures} of the replica's last known state, for read-only
 * service: a {@link walkReplica}. Without `withData`, only znodes and
 * ephemerals are counted (no record decoded). Throws
 * {@link NotServingError} when the replica cannot answer.
 */
async function replicaFigures(state: ServerState, withData: boolean): Promise<TreeFigures> {
  const { replica, keys } = state.tree;
  // A session key is the session prefix followed by 16 hex digits.
  const sessionPrefix = keys.session(0n).slice(0, -16);
  const sessions = replica?.read([{ get: sessionPrefix, prefix: true, countOnly: true }]);
  if (!sessions) throw new NotServingError();
  const figures: TreeFigures = {
    znodes: 0,
    ephemerals: 0,
    dataSize: 0,
    sessions: sessions.results[0]!.count,
  };
  await walkReplica(state, (path, kv) => {
    figures.znodes++;
    if (kv.lease !== 0n) figures.ephemerals++;
    if (withData) figures.dataSize += path.length + (decodeNode(kv.value).data?.byteLength ?? 0);
  });
  return figures;
}

/**
 * `read()`'s result; a {@link NotServingError} when etcd is or becomes
 * unavailable before it comes (however long a read of a large tree takes
 * while etcd answers), or when the read fails (logged).
 */
async function fromEtcd<T>(state: ServerState, read: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setInterval> | undefined;
  const down = new Promise<never>((_, reject) => {
    const check = () => {
      if (!serving(state)) reject(new NotServingError());
    };
    check();
    timer = setInterval(check, CHECK_EVERY_MS);
  });
  try {
    return await Promise.race([read(), down]);
  } catch (err) {
    if (!(err instanceof NotServingError)) {
      state.log.warn("a monitoring command could not read etcd: {err}", { err: String(err) });
    }
    throw new NotServingError();
  } finally {
    clearInterval(timer);
  }
}

/** ZooKeeper's `crst`: every connection's statistics start afresh. */
export function resetConnectionStats(state: ServerState): void {
  for (const c of state.connections) c.counters.reset();
}

/** ZooKeeper's `srst`: the server's statistics start afresh. */
export function resetServerStats(state: ServerState): void {
  state.counters.reset();
}

/** Requests being served now: ZooKeeper's outstanding requests (of one session, or all). */
export function outstandingRequests(state: ServerState, sessionId?: bigint): number {
  if (sessionId !== undefined) return state.sessions.local.get(sessionId)?.busy ?? 0;
  let n = 0;
  for (const session of state.sessions.local.values()) n += session.busy;
  return n;
}

/** What `srvr` tells (ZooKeeper's `ServerStats`). */
export interface ServerStats {
  minLatency: number;
  avgLatency: number;
  maxLatency: number;
  received: number;
  sent: number;
  connections: number;
  outstanding: number;
  zxid: bigint;
  nodeCount: number;
}

/**
 * The server's statistics; throws {@link NotServingError} when etcd does not
 * answer, unless read-only clients are served: then the node count is the
 * replica's.
 */
export async function serverStats(state: ServerState): Promise<ServerStats> {
  const c = state.counters;
  return {
    minLatency: c.minLatency,
    avgLatency: c.avgLatency,
    maxLatency: c.maxLatency,
    received: c.received,
    sent: c.sent,
    connections: state.connections.size,
    outstanding: outstandingRequests(state),
    zxid: state.tree.clock.revision,
    nodeCount: asZooKeeperCounts(
      serverMode(state) === "read-only"
        ? (await replicaFigures(state, false)).znodes
        : await fromEtcd(state, () => state.tree.countNodes()),
    ),
  };
}

/**
 * A znode count as ZooKeeper reports it (`Node count`, `zk_znode_count`):
 * its DataTree holds the root twice, as "" and as "/", so a fresh server
 * says 5 for its 4 nodes.
 */
function asZooKeeperCounts(znodes: number): number {
  return znodes + 1;
}

/** What `cons` tells of one connection (ZooKeeper's connection info). */
export interface ConnectionStats {
  /** `host:port` of the client. */
  address: string;
  /** 0 for the connection asking (it is not being read), else 1. */
  interestOps: number;
  outstanding: number;
  received: number;
  sent: number;
  /** When the connection opened, ms since the epoch. */
  established: number;
  /** The rest once a session is established. */
  session?: {
    id: bigint;
    lastOperation: string;
    timeout: number;
    lastCxid: number;
    lastZxid: bigint;
    /** On the elapsed-time clock ({@link elapsedMs}), 0 before the first reply. */
    lastResponseTime: number;
    lastLatency: number;
    minLatency: number;
    avgLatency: number;
    maxLatency: number;
  };
}

/** The statistics of connection `c`; `self` when it is the one asking (a four-letter word's). */
export function connectionStats(
  state: ServerState,
  c: ConnectionInfo,
  self: boolean,
): ConnectionStats {
  const n = c.counters;
  const stats: ConnectionStats = {
    address: c.peer,
    interestOps: self ? 0 : 1,
    outstanding: c.sessionId === undefined ? 0 : outstandingRequests(state, c.sessionId),
    received: n.received,
    sent: n.sent,
    established: c.established,
  };
  if (c.sessionId === undefined) return stats;
  stats.session = {
    id: c.sessionId,
    lastOperation: c.lastOp ?? "NA",
    timeout: c.timeout ?? 0,
    lastCxid: c.lastXid ?? 0,
    lastZxid: c.lastZxid ?? 0n,
    lastResponseTime: c.lastResponse === undefined ? 0 : elapsedMs(c.lastResponse),
    lastLatency: c.lastLatency ?? 0,
    minLatency: n.minLatency,
    avgLatency: Math.round(n.avgLatency),
    maxLatency: n.maxLatency,
  };
  return stats;
}

/** The statistics of every open connection, in the order they opened; `self` is the one asking, if any. */
export function allConnectionStats(
  state: ServerState,
  self: ConnectionInfo | null,
): ConnectionStats[] {
  return [...state.connections].map((c) => connectionStats(state, c, c === self));
}

/** `mntr`'s nine keys of one latency summary (`avg_readlatency`, …, `p999_readlatency`). */
function summaryValues(name: string, s: LatencySummary): [string, number][] {
  return [
    [`avg_${name}`, s.avg],
    [`min_${name}`, s.min],
    [`max_${name}`, s.max],
    [`cnt_${name}`, s.count],
    [`sum_${name}`, s.sum],
    [`p50_${name}`, s.percentile(50)],
    [`p95_${name}`, s.percentile(95)],
    [`p99_${name}`, s.percentile(99)],
    [`p999_${name}`, s.percentile(99.9)],
  ];
}

/**
 * `mntr`'s values, keys without `zk_`: each a key ZooKeeper 3.8 prints,
 * with what it means here. Throws {@link NotServingError} when etcd does
 * not answer, unless read-only clients are served: then `server_state` is
 * `read-only` and the tree's figures are the replica's.
 */
export async function monitorValues(state: ServerState): Promise<[string, string | number][]> {
  const c = state.counters;
  const mode = serverMode(state);
  const tree = mode === "read-only"
    ? await replicaFigures(state, true)
    : await fromEtcd(state, () => treeFigures(state.tree));
  const { errors, dropped, latency } = state.metrics;
  const rows: [string, string | number | null][] = [
    ["version", VERSION_TEXT],
    ["server_state", mode],
    ["ephemerals_count", tree.ephemerals],
    ["num_alive_connections", state.connections.size],
    ["avg_latency", c.avgLatency],
    ["outstanding_requests", outstandingRequests(state)],
    ["znode_count", asZooKeeperCounts(tree.znodes)],
    ["global_sessions", tree.sessions],
    ["packets_sent", c.sent],
    ["packets_received", c.received],
    ["watch_count", state.watches.count()],
    ["auth_failed_count", errors.value({ code: "AUTHFAILED" })],
    ["min_latency", c.minLatency],
    ["max_file_descriptor_count", maxFileDescriptors()],
    ["approximate_data_size", tree.dataSize],
    ["open_file_descriptor_count", openFileDescriptors()],
    ["local_sessions", 0],
    ["uptime", Date.now() - state.started],
    ["max_latency", c.maxLatency],
    [
      "connection_rejected",
      dropped.value({ reason: "max_connections" }) + dropped.value({ reason: "max_client_cnxns" }),
    ],
    ...summaryValues("readlatency", latency.read),
    ...summaryValues("updatelatency", latency.update),
  ];
  // File descriptor figures are left out where /proc cannot be read.
  return rows.filter((row): row is [string, string | number] => row[1] !== null);
}

/** Watches by session, then path, each once (ZooKeeper's `wchc`). */
export function watchesBySession(state: ServerState): Map<bigint, string[]> {
  const out = new Map<bigint, string[]>();
  for (const [path, id] of state.watches.list()) out.set(id, [...(out.get(id) ?? []), path]);
  return out;
}

/** Watches by path, then session, each once (ZooKeeper's `wchp`). */
export function watchesByPath(state: ServerState): Map<string, bigint[]> {
  const out = new Map<string, bigint[]>();
  for (const [path, id] of state.watches.list()) out.set(path, [...(out.get(path) ?? []), id]);
  return out;
}

/** ZooKeeper's `wchs`: sessions watching, paths watched and watches, one per path and session. */
export function watchSummary(
  state: ServerState,
): { connections: number; paths: number; watches: number } {
  const watches = state.watches.list();
  return {
    connections: new Set(watches.map(([, s]) => s)).size,
    paths: new Set(watches.map(([p]) => p)).size,
    watches: watches.length,
  };
}

/** Sessions held here by expiry time (ms since the epoch), and their ephemeral znodes. */
export interface SessionDump {
  expiries: Map<number, bigint[]>;
  ephemerals: Map<bigint, string[]>;
}

/**
 * The sessions held here and their ephemerals; throws {@link NotServingError}
 * when etcd does not answer, unless read-only clients are served: then the
 * ephemerals are the replica's (the nodes on each session's ephemeral
 * lease). Read-only sessions live in their connections only, with no
 * ephemerals: they are not listed.
 */
export async function sessionDump(state: ServerState): Promise<SessionDump> {
  const sessions = [...state.sessions.local.values()];
  const expiries = new Map<number, bigint[]>();
  for (const s of sessions) {
    const at = s.lastHeard + s.timeout;
    expiries.set(at, [...(expiries.get(at) ?? []), s.id]);
  }
  const ephemerals = new Map<bigint, string[]>();
  if (serverMode(state) === "read-only") {
    const byLease = new Map<bigint, string[]>(sessions.map((s) => [s.ephemeralLease, []]));
    byLease.delete(0n);
    await walkReplica(state, (path, kv) => byLease.get(kv.lease)?.push(path));
    for (const s of sessions) {
      const paths = byLease.get(s.ephemeralLease);
      if (paths && paths.length > 0) ephemerals.set(s.id, paths.sort());
    }
    return { expiries, ephemerals };
  }
  for (const s of sessions) {
    const paths = await fromEtcd(state, () => ephemeralPaths(state.tree, s.ephemeralLease));
    if (paths.length > 0) ephemerals.set(s.id, paths.sort());
  }
  return { expiries, ephemerals };
}

/** `envi`'s `key=value` pairs: this server, Deno and the machine. */
export function environment(): [string, string][] {
  const env = (f: () => string) => {
    try {
      return f();
    } catch {
      return "<NA>";
    }
  };
  const mem = Deno.memoryUsage();
  return [
    ["zookeeper.version", VERSION_TEXT],
    ["host.name", env(() => Deno.hostname())],
    ["deno.version", Deno.version.deno],
    ["v8.version", Deno.version.v8],
    ["os.name", Deno.build.os],
    ["os.arch", Deno.build.arch],
    ["os.version", env(() => Deno.osRelease())],
    ["user.dir", env(() => Deno.cwd())],
    ["os.memory.free", `${Math.round((mem.heapTotal - mem.heapUsed) / 1048576)}MB`],
    ["os.memory.total", `${Math.round(mem.rss / 1048576)}MB`],
  ];
}
