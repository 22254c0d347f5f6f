/**
 * The local default etcd (no --endpoints): how it is started, compacted,
 * shared and stopped, as operators meet it.
 */

import assert from "node:assert/strict";
import { spawnServer } from "./_util/server_process.ts";
import { drainStream, sleep } from "./_util/process.ts";
import { LocalEtcdError, startLocalEtcd } from "../src/cli/local_etcd.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;

/**
 * Runs `zetcd ARGS…` for at most `ms`: its exit code (undefined when it was
 * still running and was killed) and what it printed. Does not wait for its
 * output to end: an etcd it left behind may hold the pipes.
 */
async function runWithin(
  ms: number,
  args: string[],
): Promise<{ code?: number; output: string; pid: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [stdout, stderr] = [drainStream(child.stdout), drainStream(child.stderr)];
  const code = await Promise.race([
    child.status.then((s) => s.code),
    sleep(ms).then(() => undefined),
  ]);
  if (code === undefined) child.kill("SIGKILL");
  else await Promise.race([Promise.all([stdout.done, stderr.done]), sleep(1000)]);
  return { code, output: stderr.text() + stdout.text(), pid: child.pid };
}

/** Process ids whose command line contains `text` (ours: our etcds, by their data dir). */
async function pidsWith(text: string): Promise<number[]> {
  const out = await new Deno.Command("pgrep", { args: ["-f", text], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

/** Whether process `pid` runs (a zombie left to a container's init counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Kills the processes we started (by id; those naming `dir` are ours) still running, then removes `dir`. */
async function cleanUp(dir: string, pids: number[]): Promise<void> {
  for (const pid of [...pids, ...await pidsWith(dir)]) {
    if (alive(pid)) Deno.kill(pid, "SIGKILL");
  }
  await Deno.remove(dir, { recursive: true });
}

Deno.test({
  name: "the local etcd compacts its own history (etcd's auto-compaction); our compactor stays off",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-local-" });
  try {
    const server = await spawnServer(["--data-dir", dir]);
    const [etcd] = await pidsWith(`data-dir=${dir}/etcd`);
    const args = Deno.readTextFileSync(`/proc/${etcd}/cmdline`).split("\0");
    assert.equal(await server.kill("SIGTERM"), 0);
    assert.ok(args.includes("--auto-compaction-mode=revision"), args.join(" "));
    assert.ok(args.includes("--auto-compaction-retention=10000"), args.join(" "));
    assert.doesNotMatch(server.output(), /elected to compact/, server.output());
    assert.match(server.output(), /keeping 10000 revisions/, server.output());
  } finally {
    await cleanUp(dir, []);
  }
});

Deno.test({
  name: "a second server on the same --data-dir says at once that its etcd is in use",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-local-" });
  try {
    const first = await spawnServer(["--data-dir", dir]);
    try {
      const [etcd] = await pidsWith(`data-dir=${dir}/etcd`);
      const started = Date.now();
      const second = await runWithin(15_000, ["--data-dir", dir, "--zkaddr", "127.0.0.1:0"]);
      const out = second.output.split("\n").filter(Boolean);
      assert.notEqual(second.code, undefined, `the second start ends by itself: ${out.join("\n")}`);
      assert.ok(Date.now() - started < 10_000);
      assert.equal(second.code, 1, out.join("\n"));
      assert.equal(out.length, 1, out.join("\n"));
      assert.ok(
        out[0].endsWith(`data directory ${dir} is in use by another etcd (pid ${etcd})`),
        out[0],
      );
    } finally {
      assert.equal(await first.kill("SIGTERM"), 0);
    }
  } finally {
    await cleanUp(dir, []);
  }
});

Deno.test({
  name: "SIGTERM while the local etcd is starting stops the server at once, etcd with it",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-local-" });
  const pids: number[] = [];
  try {
    // An etcd that never becomes ready.
    const fake = `${dir}/etcd`;
    await Deno.writeTextFile(fake, `#!/bin/sh\necho $$ > ${dir}/pid\nexec sleep 600\n`);
    await Deno.chmod(fake, 0o755);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MOD,
        "--data-dir",
        `${dir}/data`,
        "--etcd-bin",
        fake,
        "--zkaddr",
        "127.0.0.1:0",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    pids.push(child.pid);
    const [stdout, stderr] = [drainStream(child.stdout), drainStream(child.stderr)];
    while (!(await Deno.stat(`${dir}/pid`).then(() => true, () => false))) await sleep(50);
    await sleep(200);
    pids.push(Number(Deno.readTextFileSync(`${dir}/pid`)));
    child.kill("SIGTERM");
    const ended = await Promise.race([
      child.status.then((s) => s.code),
      sleep(5000).then(() => undefined),
    ]);
    assert.equal(ended, 0, `stopped within 5 s, as by SIGTERM: ${stderr.text()}${stdout.text()}`);
    assert.equal(alive(pids[1]), false, "the etcd it started is gone");
  } finally {
    await cleanUp(dir, pids);
  }
});

Deno.test({
  name:
    "the local etcd's start is bounded, even by an etcd that takes connections but never answers",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-local-" });
  try {
    // Listens where told, accepts connections and says nothing (as an etcd
    // waiting for a locked database).
    await Deno.writeTextFile(
      `${dir}/silent.ts`,
      `const url = Deno.args.find((a) => a.startsWith("--listen-client-urls="))!.split("=")[1];
const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
const held = [];
for await (const conn of listener) held.push(conn);
`,
    );
    const fake = `${dir}/etcd`;
    await Deno.writeTextFile(
      fake,
      `#!/bin/sh\nexec ${Deno.execPath()} run -A ${dir}/silent.ts "$@"\n`,
    );
    await Deno.chmod(fake, 0o755);
    const started = Date.now();
    const starting = startLocalEtcd({ etcdBin: fake, dataDir: `${dir}/data`, readyWithinMs: 3000 });
    const outcome = await Promise.race([
      starting.then(() => "started", (err) => err),
      sleep(10_000).then(() => "still starting after 10 s"),
    ]);
    assert.ok(outcome instanceof LocalEtcdError, String(outcome));
    assert.match(outcome.message, /did not become ready within 3 s/);
    assert.ok(Date.now() - started < 9000);
  } finally {
    await cleanUp(dir, []);
  }
});
