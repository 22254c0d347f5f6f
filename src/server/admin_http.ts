/**
 * The HTTP admin port (`--admin-addr`, off by default): `/metrics` for
 * Prometheus, `/healthz` (the process is alive), `/readyz` (etcd answers
 * and the watch stream is current) and ZooKeeper 3.8's AdminServer
 * commands: `/commands` lists them, `/commands/<name>` answers in its JSON.
 *
 * @module
 */

import type { ServerState } from "./state.ts";
import {
  allConnectionStats,
  answersCommands,
  type ConnectionStats,
  environment,
  monitorValues,
  NOT_SERVING,
  NotServingError,
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
import { elapsedMs } from "../admin/process.ts";

/** A command's fields besides `command` and `error`. */
type Fields = Record<string, unknown>;

/** One AdminServer command, as ZooKeeper 3.8 defines it. */
interface Command {
  /** The primary name, then aliases. */
  names: string[];
  /**
   * Needs a serving server: answered with {@link NOT_SERVING} while etcd
   * does not answer, unless read-only clients are served
   * ({@link answersCommands}; ZooKeeper's read-only server answers them).
   */
  serverRequired: boolean;
  run(state: ServerState): Fields | Promise<Fields>;
}

/** A connection's fields in `connections` (every one) and `stats` (`brief`: the first five). */
function connectionFields(c: ConnectionStats, brief: boolean): Fields {
  const fields: Fields = {
    remote_socket_address: c.address,
    interest_ops: c.interestOps,
    outstanding_requests: c.outstanding,
    packets_received: c.received,
    packets_sent: c.sent,
  };
  if (brief) return fields;
  const s = c.session;
  return {
    ...fields,
    session_id: s?.id ?? 0n,
    last_operation: s?.lastOperation ?? "NA",
    established: c.established,
    session_timeout: s?.timeout ?? 0,
    last_cxid: s?.lastCxid ?? -1,
    last_zxid: s?.lastZxid ?? -1n,
    last_response_time: s?.lastResponseTime ?? 0,
    last_latency: s?.lastLatency ?? 0,
    min_latency: s?.minLatency ?? 0,
    avg_latency: s?.avgLatency ?? 0,
    max_latency: s?.maxLatency ?? 0,
  };
}

/** `server_stats`' fields (also the first of `stats`); `read-only` while read-only clients are served. */
async function serverStatsFields(state: ServerState): Promise<Fields> {
  const s = await serverStats(state);
  const mode = serverMode(state);
  return {
    version: VERSION_TEXT,
    read_only: mode === "read-only",
    server_stats: {
      packets_sent: s.sent,
      packets_received: s.received,
      data_dir_size: 0,
      log_dir_size: 0,
      server_state: mode,
      last_processed_zxid: s.zxid,
      outstanding_requests: s.outstanding,
      avg_latency: s.avgLatency,
      max_latency: s.maxLatency,
      min_latency: s.minLatency,
      num_alive_client_connections: s.connections,
      uptime: Date.now() - state.started,
      auth_failed_count: state.metrics.errors.value({ code: "AUTHFAILED" }),
    },
    node_count: s.nodeCount,
  };
}

/** The commands this server answers, with ZooKeeper 3.8's names, aliases and JSON fields. */
const COMMANDS: Command[] = [
  {
    names: ["configuration", "conf", "config"],
    serverRequired: true,
    run: ({ conf }) => ({
      client_port: conf.port,
      data_dir: `etcd:${conf.prefix}`,
      data_log_dir: `etcd:${conf.prefix}`,
      tick_time: 2000,
      max_client_cnxns: conf.maxClientCnxns,
      min_session_timeout: conf.minSessionTimeout,
      max_session_timeout: conf.maxSessionTimeout,
      server_id: 0,
      client_port_listen_backlog: -1,
    }),
  },
  {
    names: ["connection_stat_reset", "crst"],
    serverRequired: true,
    run: (state) => {
      resetConnectionStats(state);
      return {};
    },
  },
  {
    names: ["connections", "cons"],
    serverRequired: true,
    run: (state) => ({
      connections: allConnectionStats(state, null).map((c) => connectionFields(c, false)),
      secure_connections: [],
    }),
  },
  {
    names: ["dirs"],
    serverRequired: true,
    run: () => ({ datadir_size: 0, logdir_size: 0 }),
  },
  {
    names: ["dump"],
    serverRequired: true,
    run: async (state) => {
      const { expiries, ephemerals } = await sessionDump(state);
      return {
        expiry_time_to_session_ids: Object.fromEntries(
          [...expiries].map(([at, ids]) => [elapsedMs(at), ids]),
        ),
        session_id_to_ephemeral_paths: Object.fromEntries(
          [...ephemerals].map(([id, paths]) => [String(id), paths]),
        ),
      };
    },
  },
  {
    names: ["environment", "env", "envi"],
    serverRequired: false,
    run: () => Object.fromEntries(environment()),
  },
  {
    names: ["is_read_only", "isro"],
    serverRequired: false,
    run: (state) => {
      if (serving(state)) return { read_only: false };
      if (servingReadOnly(state)) return { read_only: true };
      throw new NotServingError();
    },
  },
  {
    names: ["monitor", "mntr"],
    serverRequired: true,
    run: async (state) => Object.fromEntries(await monitorValues(state)),
  },
  {
    names: ["ruok"],
    serverRequired: true,
    run: () => ({}),
  },
  {
    names: ["server_stats", "srvr"],
    serverRequired: true,
    run: (state) => serverStatsFields(state),
  },
  {
    names: ["stats", "stat"],
    serverRequired: true,
    run: async (state) => ({
      ...await serverStatsFields(state),
      connections: allConnectionStats(state, null).map((c) => connectionFields(c, true)),
      secure_connections: [],
    }),
  },
  {
    names: ["stat_reset", "srst"],
    serverRequired: true,
    run: (state) => {
      resetServerStats(state);
      return {};
    },
  },
  {
    names: ["watch_summary", "wchs"],
    serverRequired: true,
    run: (state) => {
      const { connections, paths, watches } = watchSummary(state);
      return { num_connections: connections, num_paths: paths, num_total_watches: watches };
    },
  },
  {
    names: ["watches", "wchc"],
    serverRequired: true,
    run: (state) => ({
      session_id_to_watched_paths: Object.fromEntries(
        [...watchesBySession(state)].map(([id, paths]) => [String(id), paths]),
      ),
    }),
  },
  {
    names: ["watches_by_path", "wchp"],
    serverRequired: true,
    run: (state) => ({ path_to_session_ids: Object.fromEntries(watchesByPath(state)) }),
  },
];

/** Every command by each of its names. */
const BY_NAME = new Map(COMMANDS.flatMap((c) => c.names.map((name) => [name, c])));

/** `/commands`: a link to each command by its primary name, as ZooKeeper's page. */
function commandList(): Response {
  const names = COMMANDS.map((c) => c.names[0]).sort();
  const html = names.map((n) => `<a href="/commands/${n}">${n}</a>\n<br/>\n`).join("");
  return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
}

/** `JSON.rawJSON`: V8 has it, TypeScript's library does not declare it yet. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** JSON with 64-bit integers (session ids, zxids) written exactly. */
function jsonResponse(body: Fields): Response {
  const text = JSON.stringify(
    body,
    (_key, value) =>
      typeof value === "bigint" ? rawJSON(BigInt.asIntN(64, value).toString()) : value,
    2,
  );
  return new Response(text, { headers: { "content-type": "application/json" } });
}

/** The answer to `/commands/<name>`: the command's fields, `command` and `error`, as ZooKeeper's. */
async function runCommand(name: string, state: ServerState): Promise<Fields> {
  const command = BY_NAME.get(name);
  if (!command) return { command: name, error: `Unknown command: ${name}` };
  if (command.serverRequired && !answersCommands(state)) {
    return { command: name, error: NOT_SERVING };
  }
  try {
    return { ...await command.run(state), command: command.names[0], error: null };
  } catch (err) {
    if (err instanceof NotServingError) return { command: name, error: NOT_SERVING };
    throw err;
  }
}

/** How long `/readyz` waits for etcd and the watch stream. */
const READY_TIMEOUT_MS = 1500;

/** Whether etcd answers and the watch stream has delivered the prefix's newest change. */
export async function readiness(state: ServerState): Promise<{ ready: boolean; reason: string }> {
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)
  );
  try {
    const { seen } = await Promise.race([state.tree.sync(), timeout]);
    await Promise.race([state.tree.clock.reached(seen), timeout]);
    if (state.tree.clock.revision < seen) {
      return {
        ready: false,
        reason: `watch stream behind (${state.tree.clock.revision} < ${seen})`,
      };
    }
    return { ready: true, reason: "ready" };
  } catch (err) {
    return { ready: false, reason: `etcd: ${(err as Error).message}` };
  }
}

/** Serves the admin endpoints on `hostname:port` until `signal` aborts. */
export function serveAdmin(
  state: ServerState,
  options: { hostname: string; port: number; signal: AbortSignal },
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: options.signal,
    onListen: () => {},
  }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/metrics") {
      return new Response(state.metrics.render(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    }
    if (url.pathname === "/healthz") return new Response("ok\n");
    if (url.pathname === "/readyz") {
      const { ready, reason } = await readiness(state);
      return new Response(`${reason}\n`, { status: ready ? 200 : 503 });
    }
    if (url.pathname === "/commands" || url.pathname === "/commands/") return commandList();
    const m = /^\/commands\/([a-z_]+)$/.exec(url.pathname);
    if (m) return jsonResponse(await runCommand(m[1], state));
    return new Response("not found\n", { status: 404 });
  });
}
