/**
 * The fault scenarios, each a function that runs one scenario for a given
 * length, prints what it injected and what it checked, and throws on the
 * first broken promise. `deno task test` runs them briefly (the
 * `*_test.ts` files next to this one); `deno task chaos` runs them long.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { type ServerProcess, spawnServer } from "../_util/server_process.ts";
import { sendFourLetterWord } from "../_util/zookeeper.ts";
import { RawClient } from "../_util/raw_client.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode } from "../../src/zk/constants.ts";
import { ZkClient } from "../../src/client/client.ts";
import { startEtcdCluster } from "../_util/etcd_cluster.ts";
import { freePorts } from "../_util/ports.ts";
import { CreateMode, Nzk } from "../_util/nzk.ts";
import { type FuzzRun, runFuzz } from "./fuzz.ts";

/** Resident set size of process `pid`, in MiB (Linux). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** A fresh session on `address` gets an answer to exists("/"). */
export async function assertServing(address: string): Promise<void> {
  const [c] = await RawClient.session(address);
  try {
    await c.send(1, OpCode.exists, R.ExistsRequest, { path: "/", watch: false });
    assert.equal((await c.reply())?.err, 0, "a fresh client is still served");
  } finally {
    c.close();
  }
}

/** The server's JSON log lines. */
function logLines(server: ServerProcess): { message: string; peer?: string }[] {
  const out = [];
  for (const line of server.output().split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const rec = JSON.parse(line);
      out.push({ message: String(rec.message), peer: rec.properties?.peer });
    } catch { /* a partial line */ }
  }
  return out;
}

/**
 * Hostile input: structure-aware fuzz cases against a server process for
 * `seconds`. Checks the server is alive and serving, released every
 * connection, stayed within its memory bound, and logged one line for each
 * connection it dropped.
 */
export async function fuzzScenario(seconds: number, seed?: number): Promise<void> {
  await using etcd = await startEtcd();
  await using server = await spawnServer([
    "--endpoints",
    etcd.endpoints.join(","),
    "--prefix",
    "/fuzz/",
    "--max-client-cnxns",
    "0",
    "--log-format",
    "json",
  ]);
  await assertServing(server.address);
  const rssBefore = await rssMiB(server.pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(async () => {
    rssPeak = Math.max(rssPeak, await rssMiB(server.pid).catch(() => 0));
  }, 200);
  const chosen = seed ?? Date.now() % 1_000_000;
  let run: FuzzRun;
  try {
    run = await runFuzz(server.address, { seed: chosen, seconds });
  } finally {
    clearInterval(sampler);
  }
  console.log(
    `fuzz: seed ${chosen} (FUZZ_SEED replays it), ${run.cases} cases in ${seconds} s: ` +
      Object.entries(run.byFault).map(([k, v]) => `${k} ${v}`).join(", "),
  );
  await assertServing(server.address);
  // Every connection released (the mntr connection itself is the one left).
  let alive = -1;
  for (let i = 0; i < 50 && alive !== 1; i++) {
    const mntr = await sendFourLetterWord(server.address, "mntr");
    alive = Number(/zk_num_alive_connections\s+(\d+)/.exec(mntr)?.[1]);
    if (alive !== 1) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(alive, 1, "every fuzz connection was released");
  const rssAfter = await rssMiB(server.pid);
  console.log(
    `fuzz: ${run.answered} answered, ${run.closedByServer.length} dropped by the server; ` +
      `RSS ${rssBefore.toFixed(0)} MiB before, peak ${rssPeak.toFixed(0)}, ` +
      `after ${rssAfter.toFixed(0)}`,
  );
  assert.ok(rssPeak < rssBefore + 256, `RSS peaked at ${rssPeak.toFixed(0)} MiB`);
  // One line for each dropped connection, none twice (ports are reused, so
  // lines and connections are counted per local port).
  const drops = new Map<string, string[]>();
  for (const line of logLines(server)) {
    if (!line.peer) continue;
    if (/^(closing connection|refusing|session \S+ closed by client)/.test(line.message)) {
      drops.set(line.peer, [...drops.get(line.peer) ?? [], line.message]);
    }
  }
  for (const [peer, lines] of drops) {
    const opened = run.opened.get(peer) ?? 0;
    assert.ok(lines.length <= opened, `${opened} connection(s) from ${peer}:\n${lines.join("\n")}`);
  }
  const closed = new Map<string, number>();
  for (const c of run.closedByServer) closed.set(c.peer, (closed.get(c.peer) ?? 0) + 1);
  const unexplained = run.closedByServer.filter((c) =>
    (drops.get(c.peer)?.length ?? 0) < closed.get(c.peer)!
  );
  assert.deepEqual(unexplained, [], "every connection the server dropped has its log line");
  assert.ok(server.output().includes("undecodable request"), "decoding errors were logged");
  assert.ok(!/uncaught|panic/i.test(server.output()), "no uncaught error");
}

/** Status code of `GET http://admin/path` (0 when the request fails). */
async function httpStatus(admin: string, path: string): Promise<number> {
  try {
    const res = await fetch(`http://${admin}${path}`, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

/** Polls `check` every 100 ms until it holds; returns the ms it took, throws after `ms`. */
async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - started;
}

/** A node-zookeeper-client session that records its state changes. */
async function watchedClient(address: string, timeout: number) {
  const zk = await Nzk.connect(address, timeout);
  const states: string[] = [];
  zk.raw.on("state", (s: unknown) => states.push(String(s)));
  return { zk, states, id: zk.sessionId };
}

/**
 * etcd unavailable: two of the three members are paused (SIGSTOP) for
 * `outageMs`, so no quorum exists. Checks that requests get ConnectionLoss
 * (never an answer, never a wait beyond the session timeout), that new
 * sessions are refused, that `/readyz` says unready, that the server
 * recovers by itself, that sessions whose clients kept trying survive (a
 * 10 s one, and a 4 s one: time without etcd does not count), and that a
 * session whose client left still expires afterwards.
 */
export async function outageScenario(outageMs: number): Promise<void> {
  await using cluster = await startEtcdCluster();
  const [adminPort] = await freePorts(1);
  const admin = `127.0.0.1:${adminPort}`;
  await using server = await spawnServer([
    "--endpoints",
    cluster.endpoints.join(","),
    "--prefix",
    "/outage/",
    "--admin-addr",
    admin,
  ]);
  const long = await watchedClient(server.address, 10_000);
  const short = await watchedClient(server.address, 4000);
  await long.zk.create("/long", null, CreateMode.EPHEMERAL);
  await short.zk.create("/short", null, CreateMode.EPHEMERAL);
  const [gone] = await RawClient.session(server.address, { timeOut: 4000 });
  await gone.send(1, OpCode.create, R.CreateRequest, {
    path: "/gone",
    data: null,
    acl: [{ perms: 31, id: { scheme: "world", id: "anyone" } }],
    flags: 1,
  });
  assert.equal((await gone.reply())?.err, 0);
  gone.close(); // its client leaves: the session must still expire later
  const probe = await ZkClient.connect(server.address, { timeout: 10_000 });
  assert.equal(await httpStatus(admin, "/readyz"), 200);

  const leader = await cluster.leader();
  const paused = [leader ?? cluster.members[0], ...cluster.members.filter((m) => m !== leader)]
    .slice(0, 2);
  const started = Date.now();
  for (const m of paused) m.pause();
  console.log(`outage: paused ${paused.map((m) => m.name).join(" and ")} (leader first)`);
  try {
    // A request in flight when etcd went away: ConnectionLoss, well within its timeout.
    const outcome = await probe.getData("/").then(() => "answered", () => "connection lost");
    const lostAfter = Date.now() - started;
    assert.equal(outcome, "connection lost", "a request without etcd gets ConnectionLoss");
    assert.ok(lostAfter < probe.timeout, `ConnectionLoss after ${lostAfter} ms`);
    // New sessions are refused; readiness says why.
    const [newcomer, welcome] = await RawClient.open(server.address).then(async (c) =>
      [c, await c.handshake({ timeOut: 4000 })] as const
    );
    newcomer.close();
    assert.equal(welcome, null, "no session is created without etcd");
    assert.equal(await httpStatus(admin, "/readyz"), 503, "/readyz is unready");
    console.log(`outage: ConnectionLoss after ${lostAfter} ms; handshakes refused; /readyz 503`);
    const rest = outageMs - (Date.now() - started);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  } finally {
    for (const m of paused) m.resume();
  }
  const outage = Date.now() - started;
  const ready = await until(
    "/readyz back to 200",
    30_000,
    async () => await httpStatus(admin, "/readyz") === 200,
  );
  console.log(`outage: ${outage} ms without quorum; ready again ${ready} ms after resuming`);
  for (const [name, c, timeout] of [["/long", long, 10_000], ["/short", short, 4000]] as const) {
    const stat = await c.zk.exists(name);
    assert.equal(c.zk.sessionId, c.id, `the ${timeout} ms session kept its id`);
    assert.ok(!c.states.some((s) => /EXPIRED/.test(s)), `${name}: ${c.states.join(", ")}`);
    assert.equal(stat?.ephemeralOwner, c.id, `the ${timeout} ms session's ephemeral is there`);
    await c.zk.setData(name, new TextEncoder().encode("after"));
  }
  const expired = await until(
    "/gone's ephemeral deleted",
    20_000,
    async () => (await long.zk.exists("/gone")) === null,
  );
  console.log(
    `outage: 10 s and 4 s sessions survived a ${outage} ms outage; the departed ` +
      `session's ephemeral went ${expired} ms after recovery`,
  );
  await Promise.all([long.zk.close(), short.zk.close(), probe.close().catch(() => {})]);
}
