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
import { rssMiB, type ServerProcess, startServerProcess } from "../_util/server_process.ts";
import { sendFourLetterWord } from "../_util/zookeeper.ts";
import { RawClient } from "../_util/raw_client.ts";
import * as R from "../../src/zk/records.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import { OpCode } from "../../src/zk/constants.ts";
import { ZkClient } from "../../src/client/client.ts";
import { type Member, startEtcdCluster } from "../_util/etcd_cluster.ts";
import { checkHistory } from "../_util/linearizability.ts";
import { runLoad, sessionOrderViolations } from "./workload.ts";
import { freePorts } from "../_util/ports.ts";
import { sleep } from "../_util/process.ts";
import { CreateMode, Nzk, NzkError } from "../_util/nzk.ts";
import { type FuzzRun, runFuzz } from "./fuzz.ts";

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
  await using server = await startServerProcess(etcd.endpoints, "/fuzz/", [
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
    if (alive !== 1) await sleep(100);
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
    await sleep(100);
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
 * etcd unavailable: the two followers of three members are paused (SIGSTOP) for
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
  await using server = await startServerProcess(cluster.endpoints, "/outage/", [
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
  await probe.create("/probe", null);
  assert.equal(await httpStatus(admin, "/readyz"), 200);

  // The two followers are frozen: the leader, alone, steps down. (A frozen
  // leader that wakes up still leader expires the leases whose TTL passed
  // meanwhile: etcd renews leases only on a change of leader. See README.)
  const leader = await cluster.leader();
  const paused = cluster.members.filter((m) => m !== leader).slice(0, 2);
  const started = Date.now();
  await Promise.all(paused.map((m) => m.pause()));
  console.log(`outage: paused followers ${paused.map((m) => m.name).join(" and ")} (SIGSTOP)`);
  try {
    // A write in flight when etcd went away: ConnectionLoss, well within its
    // timeout. (Reads may still be answered from the replica until the
    // server notices, as a ZooKeeper follower does until it loses its leader.)
    const outcome = await probe.setData("/probe", new Uint8Array([1])).then(
      () => "answered",
      () => "connection lost",
    );
    const lostAfter = Date.now() - started;
    assert.equal(outcome, "connection lost", "a write without etcd gets ConnectionLoss");
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
    if (rest > 0) await sleep(rest);
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

/** One fault of the cluster scenario: what it does, and how it is undone. */
interface Fault {
  name: string;
  inject(): Promise<string>;
  heal(): Promise<void>;
}

/**
 * Faults under load: three etcd members, two servers, `clients` clients
 * (each with both servers in its connection string) doing reads, writes
 * and sequential creates. For `seconds`, faults come one after another
 * (etcd leader killed and restarted, a follower killed and restarted, a
 * member paused and resumed, one server killed and restarted), with calm
 * between them. Afterwards: the history is checked for linearizability,
 * every acknowledged sequential create is present with a unique name and
 * nothing else is (except outcomes reported unknown), and no session expired.
 */
export async function clusterScenario(
  seconds: number,
  clients = 6,
  replica = false,
): Promise<void> {
  await using cluster = await startEtcdCluster();
  const [portA, portB] = await freePorts(2);
  const startServer = (port: number) =>
    startServerProcess(cluster.endpoints, "/chaos/", [
      "--zkaddr",
      `127.0.0.1:${port}`,
      "--max-client-cnxns",
      "0",
      "--read-replica",
      String(replica),
    ]);
  const servers = [await startServer(portA), await startServer(portB)];
  console.log(
    replica
      ? "cluster: reads from each server's replica (ZooKeeper's guarantees: writes linearizable, " +
        "each session's view never goes back)"
      : "cluster: reads from etcd (every operation linearizable)",
  );
  try {
    const hosts = `127.0.0.1:${portA},127.0.0.1:${portB}`;
    const faults: Fault[] = [];
    let killed: Member | null = null;
    const killMember = (which: "leader" | "follower"): Fault => ({
      name: `kill the etcd ${which}`,
      async inject() {
        const leader = await cluster.leader();
        killed = which === "leader"
          ? leader ?? cluster.members[0]
          : cluster.members.find((m) => m !== leader && m.running)!;
        await killed.kill();
        return `killed ${which} ${killed.name}`;
      },
      async heal() {
        killed?.restart();
        await cluster.waitHealthy();
      },
    });
    faults.push(killMember("leader"), killMember("follower"));
    let paused: Member | null = null;
    faults.push({
      name: "pause an etcd member",
      async inject() {
        paused = cluster.members[Math.floor(Math.random() * 3)];
        await paused.pause();
        return `paused ${paused.name} (SIGSTOP)`;
      },
      async heal() {
        paused?.resume();
        await cluster.waitHealthy();
      },
    });
    let restarting = 0;
    faults.push({
      name: "restart one of our servers",
      async inject() {
        restarting = Math.floor(Math.random() * 2);
        await servers[restarting].kill("SIGKILL");
        return `killed server ${restarting === 0 ? "A" : "B"} (SIGKILL)`;
      },
      async heal() {
        servers[restarting] = await startServer(restarting === 0 ? portA : portB);
      },
    });

    const { promise: stop, resolve: stopLoad } = Promise.withResolvers<void>();
    const loading = runLoad({ hosts, root: "/load", keys: 6, clients, stop });
    const started = Date.now();
    const injected: string[] = [];
    // Each fault lasts as long as the calm before it: at most 5 s, so a long
    // run injects many.
    const calm = Math.min(5000, Math.max(1000, (seconds * 1000) / (faults.length * 2 + 1)));
    for (let i = 0; Date.now() - started < seconds * 1000; i++) {
      await sleep(calm);
      const fault = faults[i % faults.length];
      const what = await fault.inject();
      const at = ((Date.now() - started) / 1000).toFixed(1);
      await sleep(calm);
      await fault.heal();
      injected.push(`${at} s: ${what}, healed after ${(calm / 1000).toFixed(1)} s`);
    }
    await sleep(calm);
    stopLoad();
    const load = await Promise.race([
      loading,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("the load did not finish within 60 s")), 60_000)
      ),
    ]);
    console.log(`cluster: faults injected over ${seconds} s:\n  ${injected.join("\n  ")}`);

    // Final reads, after every fault healed, belong to the history too.
    const reader = await Nzk.connect(hosts, 10_000);
    try {
      for (let k = 0; k < 6; k++) {
        const key = `/load/k${k}`;
        const call = performance.now();
        const output = await reader.getData(key).then(
          ({ data, stat }) => ({
            ok: true as const,
            data: new TextDecoder().decode(data ?? new Uint8Array()),
            version: stat.version,
          }),
          (err) => {
            if (err instanceof NzkError && err.code === -101) return { err: "NONODE" as const };
            throw err;
          },
        );
        load.history.push({
          client: -1,
          key,
          input: { op: "get" },
          output,
          call,
          ret: performance.now(),
        });
      }
      const unknown = load.history.filter((op) => "unknown" in op.output).length;
      const checkStarted = performance.now();
      // With replicas, reads may lag other sessions' writes (as on ZooKeeper):
      // the writes must still be linearizable, and each session's view monotonic.
      const checked = replica ? load.history.filter((op) => op.input.op !== "get") : load.history;
      const verdict = checkHistory(checked, { timeoutMs: 120_000 });
      const took = ((performance.now() - checkStarted) / 1000).toFixed(1);
      console.log(
        `cluster: ${load.history.length} operations on ${verdict.keys} znodes by ${clients} ` +
          `clients (${unknown} with unknown outcome), ${checked.length} of them checked; ` +
          `linearizability check: ` +
          `${verdict.ok ? "linearizable" : verdict.timedOut ? "undecided" : "NOT linearizable"} ` +
          `in ${took} s`,
      );
      assert.ok(verdict.ok, verdict.explanation ?? "linearizability check undecided");
      const backwards = sessionOrderViolations(load);
      console.log(
        `cluster: ${load.mzxids.size} reads and writes checked for each session's order: ` +
          `${backwards.length} went back`,
      );
      assert.deepEqual(backwards.slice(0, 10), [], "no session's view went back");

      // Sequential creates: unique names; acknowledged ones present; others only if unknown.
      const { children } = await reader.getChildren("/load/seq");
      const byData = new Map<string, string>();
      for (const name of children) {
        const { data } = await reader.getData(`/load/seq/${name}`);
        byData.set(new TextDecoder().decode(data ?? new Uint8Array()), name);
      }
      const acked = load.sequential.filter((s) => s.outcome === "ok");
      const names = new Set(acked.map((s) => s.name));
      assert.equal(names.size, acked.length, "every acknowledged sequential name is unique");
      for (const s of acked) {
        assert.equal(byData.get(s.data), s.name, `acknowledged ${s.name} (${s.data}) is present`);
      }
      const known = new Map(load.sequential.map((s) => [s.data, s]));
      for (const [data, name] of byData) {
        const s = known.get(data);
        assert.ok(s, `${name} holds data no client wrote`);
        assert.notEqual(s.outcome, "failed", `${name} was created although reported failed`);
      }
      const unknownSeq = load.sequential.filter((s) => s.outcome === "unknown").length;
      console.log(
        `cluster: ${acked.length} acknowledged sequential creates all present and unique; ` +
          `${
            children.length - acked.length
          } more present out of ${unknownSeq} with unknown outcome`,
      );

      // No session expired: every client kept its session through every fault.
      for (const c of load.clients) {
        assert.ok(!c.states.some((s) => /EXPIRED/.test(s)), `session expired: ${c.states}`);
        assert.equal(c.client.sessionId, c.id, "the client kept its session");
      }
      assert.deepEqual(load.anomalies, [], "no unexpected error");
      console.log(`cluster: ${load.clients.length} sessions kept through every fault`);
    } finally {
      await reader.close();
      await Promise.all(load.clients.map((c) => c.client.close()));
    }
  } finally {
    await Promise.all(servers.map((s) => s.kill("SIGKILL")));
  }
}

/** One gauge's value from the server's `/metrics`. */
async function gauge(admin: string, name: string): Promise<number> {
  const res = await fetch(`http://${admin}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
}

/**
 * A client that asks for much and reads slowly: it pipelines `requests`
 * getData requests of a 256 KiB node and reads 16 KiB every 100 ms.
 * Resolves to the bytes it read once the server closes or `stop` is set.
 */
async function slowReader(address: string, requests: number, stop: { done: boolean }) {
  const [c] = await RawClient.session(address, { timeOut: 30_000 });
  await c.send(1, OpCode.create, R.CreateRequest, {
    path: "/big",
    data: new Uint8Array(256 * 1024),
    acl: [{ perms: 31, id: { scheme: "world", id: "anyone" } }],
    flags: 0,
  });
  await c.reply();
  c.close();
  const conn = await Deno.connect({
    hostname: address.split(":")[0],
    port: Number(address.split(":")[1]),
  });
  const w = conn.writable.getWriter();
  await w.write(JuteWriter.frame((f) => {
    R.ConnectRequest.write(f, {
      protocolVersion: 0,
      lastZxidSeen: 0n,
      timeOut: 30_000,
      sessionId: 0n,
      passwd: new Uint8Array(16),
    });
  }));
  for (let i = 0; i < requests; i++) {
    await w.write(JuteWriter.frame((f) => {
      R.RequestHeader.write(f, { xid: 1 + i, type: OpCode.getData });
      R.GetDataRequest.write(f, { path: "/big", watch: false });
    }));
  }
  const buf = new Uint8Array(16 * 1024);
  let read = 0;
  while (!stop.done) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return { read, cut: true };
    read += n;
    await sleep(100);
  }
  conn.close();
  return { read, cut: false };
}

/**
 * Many sessions on one server: `sessions` clients connect (200 at a time),
 * then each pings every 10 s for `holdSeconds`, while a slow reader pulls
 * 15 MiB of replies at 160 KiB/s. Reports the rate of session creation, RSS
 * per session and the event-loop lag; checks that no session was dropped
 * and that the slow reader was served, not cut, within its queue bound.
 */
export async function loadScenario(sessions: number, holdSeconds: number): Promise<void> {
  await using etcd = await startEtcd();
  const [adminPort] = await freePorts(1);
  const admin = `127.0.0.1:${adminPort}`;
  await using server = await startServerProcess(etcd.endpoints, "/load/", [
    "--max-client-cnxns",
    "0",
    "--max-connections",
    String(sessions + 100),
    "--admin-addr",
    admin,
  ]);
  await assertServing(server.address);
  const rssIdle = await rssMiB(server.pid);
  const clients: RawClient[] = [];
  let dropped = 0;
  let replies = 0;
  const started = Date.now();
  let lagWhileOpening = 0;
  const sampler = setInterval(async () => {
    lagWhileOpening = Math.max(lagWhileOpening, await gauge(admin, "zetcd_event_loop_lag_seconds"));
  }, 1000);
  let next = 0;
  try {
    await Promise.all(Array.from({ length: 200 }, async () => {
      while (next < sessions) {
        next++;
        const [c] = await RawClient.session(server.address, { timeOut: 30_000 });
        clients.push(c);
        (async () => {
          while ((await c.nextFrame()) !== null) replies++;
          dropped++;
        })();
      }
    }));
  } finally {
    clearInterval(sampler);
  }
  const openSeconds = (Date.now() - started) / 1000;
  const rssOpen = await rssMiB(server.pid);
  console.log(
    `load: ${sessions} sessions opened in ${openSeconds.toFixed(1)} s ` +
      `(${(sessions / openSeconds).toFixed(0)}/s), worst event-loop lag meanwhile ` +
      `${(lagWhileOpening * 1000).toFixed(0)} ms; RSS ${rssIdle.toFixed(0)} MiB idle, ` +
      `${rssOpen.toFixed(0)} MiB with them (${
        ((rssOpen - rssIdle) * 1024 / sessions).toFixed(1)
      } ` +
      `KiB per session)`,
  );
  // Steady state: every session pings every 10 s (spread over the 10 s).
  const stop = { done: false };
  const slow = slowReader(server.address, 60, stop);
  let i = 0;
  const perTick = Math.ceil(sessions / 100);
  const pinger = setInterval(() => {
    for (let k = 0; k < perTick; k++) {
      const c = clients[i++ % clients.length];
      c.send(-2, OpCode.ping).catch(() => {});
    }
  }, 100);
  let lag = 0;
  let rssPeak = rssOpen;
  const holdStarted = Date.now();
  try {
    while (Date.now() < holdStarted + holdSeconds * 1000) {
      await sleep(1000);
      // The gauge is the worst lag of the last 10 s: after 10 s it no longer
      // covers the opening.
      if (Date.now() - holdStarted > 10_500) {
        lag = Math.max(lag, await gauge(admin, "zetcd_event_loop_lag_seconds"));
      }
      rssPeak = Math.max(rssPeak, await rssMiB(server.pid));
    }
  } finally {
    clearInterval(pinger);
    stop.done = true;
  }
  const slowRead = await slow;
  const alive = await gauge(admin, "zetcd_connections");
  console.log(
    `load: held ${holdSeconds} s with ${sessions} sessions pinging every 10 s (${replies} ` +
      `replies): worst event-loop lag after the opening ${(lag * 1000).toFixed(0)} ms, peak RSS ` +
      `${rssPeak.toFixed(0)} MiB; the slow reader read ${(slowRead.read / 1024).toFixed(0)} KiB ` +
      `at 160 KiB/s and was ${slowRead.cut ? "cut" : "served"}`,
  );
  assert.equal(dropped, 0, "no session's connection was dropped");
  assert.ok(alive >= sessions, `${alive} connections open`);
  assert.ok(!slowRead.cut, "a slow reader within the queue bound is served, not cut");
  assert.ok(replies >= sessions, "pings were answered");
  await assertServing(server.address);
  for (const c of clients) c.close();
}
