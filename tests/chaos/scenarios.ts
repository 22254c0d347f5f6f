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
import { runFuzz } from "./fuzz.ts";

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
  let run;
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
