/**
 * The HTTP admin port (`--admin-addr`, off by default): `/metrics` for
 * Prometheus, `/healthz` (the process is alive), `/readyz` (etcd answers
 * and the watch stream is current) and ZooKeeper AdminServer-style
 * `/commands/<name>` JSON.
 *
 * @module
 */

import type { ServerState } from "../server/state.ts";
import { answerFourLetterWord } from "./four_letter.ts";
import { type ConnectionInfo, Counters } from "./stats.ts";

/** AdminServer command names and the four-letter word each stands for. */
const COMMANDS: Record<string, string> = {
  ruok: "ruok",
  server_stats: "srvr",
  srvr: "srvr",
  stat: "stat",
  monitor: "mntr",
  mntr: "mntr",
  configuration: "conf",
  conf: "conf",
  connections: "cons",
  cons: "cons",
  watch_summary: "wchs",
  wchs: "wchs",
  watches: "wchc",
  wchc: "wchc",
  watches_by_path: "wchp",
  wchp: "wchp",
  dump: "dump",
  environment: "envi",
  envi: "envi",
  is_read_only: "isro",
  isro: "isro",
  dirs: "dirs",
  stat_reset: "srst",
  srst: "srst",
  connection_stat_reset: "crst",
  crst: "crst",
};

/** How long `/readyz` waits for etcd and the watch stream. */
const READY_TIMEOUT_MS = 1500;

/** Whether etcd answers and the watch stream has delivered the prefix's newest change. */
export async function readiness(state: ServerState): Promise<{ ready: boolean; reason: string }> {
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)
  );
  try {
    const { seen } = await Promise.race([state.tree.sync(), timeout]);
    await Promise.race([state.watches.waitFor(seen), timeout]);
    if (state.watches.revision < seen) {
      return { ready: false, reason: `watch stream behind (${state.watches.revision} < ${seen})` };
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
  // A pseudo-connection for commands that describe "this connection".
  const self: ConnectionInfo = {
    peer: "admin",
    counters: new Counters(),
    established: Date.now(),
    close() {},
  };
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
    const m = /^\/commands\/([a-z_]+)$/.exec(url.pathname);
    if (m) {
      const word = COMMANDS[m[1]];
      if (!word) return Response.json({ command: m[1], error: "Unknown command" }, { status: 404 });
      const output = await answerFourLetterWord(word, { state, self, all: true });
      const body: Record<string, unknown> = { command: m[1], error: null, output };
      if (word === "mntr") {
        for (const line of output.trim().split("\n")) {
          const [k, v] = line.split("\t");
          body[k.replace(/^zk_/, "")] = Number.isNaN(Number(v)) ? v : Number(v);
        }
      }
      return Response.json(body);
    }
    return new Response("not found\n", { status: 404 });
  });
}
