/**
 * `deno task compile` builds one self-contained binary. deno compile
 * downloads its runtime (denort) unless DENORT_BIN names one, and our
 * machines cannot download it: without DENORT_BIN this test is skipped
 * with one line saying so.
 */

import assert from "node:assert/strict";
import { startEtcd } from "./_util/etcd.ts";
import { freePort, isListening } from "./_util/ports.ts";
import { Nzk } from "./_util/nzk.ts";

const denort = Deno.env.get("DENORT_BIN");
if (!denort) {
  console.log(
    "compile_test: skipped: deno compile needs its runtime; set DENORT_BIN to a denort binary to run it",
  );
}

Deno.test({
  name: "the compiled binary serves ZooKeeper clients from etcd",
  ignore: !denort,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const root = new URL("..", import.meta.url).pathname;
  const build = await new Deno.Command(Deno.execPath(), {
    args: ["task", "compile"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
  const binary = `${root}dist/zetcd`;
  const version = await new Deno.Command(binary, { args: ["--version"] }).output();
  assert.match(new TextDecoder().decode(version.stdout), /^zetcd /);

  await using etcd = await startEtcd();
  const port = await freePort();
  const child = new Deno.Command(binary, {
    args: ["--endpoints", etcd.endpoints[0], "--zkaddr", `127.0.0.1:${port}`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const deadline = Date.now() + 20_000;
    while (!(await isListening(port))) {
      assert.ok(Date.now() < deadline, "the binary listens within 20 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    const zk = await Nzk.connect(`127.0.0.1:${port}`);
    assert.equal(await zk.create("/compiled"), "/compiled");
    await zk.close();
  } finally {
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
  }
});

/** Runs `deno task compile` with `env` added and DENORT_BIN only if given there. */
async function compileTask(env: Record<string, string>) {
  const inherited = Deno.env.toObject();
  delete inherited.DENORT_BIN;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "compile"],
    cwd: new URL("..", import.meta.url).pathname,
    clearEnv: true,
    env: { ...inherited, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Terminal colour codes. */
// deno-lint-ignore no-control-regex
const COLOURS = /\x1b\[[\d;]*m/g;

/** The lines a run printed on stderr, but for `deno task`'s own "Task compile …". */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) =>
    l.trim() !== "" && !l.replace(COLOURS, "").startsWith("Task ")
  );
}

/** The denort that `deno compile` of this deno needs, as the messages name it. */
const NEEDED = `denort ${Deno.version.deno} for ${Deno.build.target}`;

Deno.test("compile: a DENORT_BIN that does not exist is one line naming the denort needed", async () => {
  const r = await compileTask({ DENORT_BIN: "/nonexistent/denort" });
  assert.equal(r.code, 1);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^zetcd: DENORT_BIN=\/nonexistent\/denort does not exist/);
  assert.ok(lines[0].includes(NEEDED), lines[0]);
});

Deno.test("compile: a failing deno compile shows deno's own error under our one line", async () => {
  // deno compile cannot get denort: a cache with our npm packages but no
  // downloads (where denort would be), and every download refused.
  const cache = await Deno.makeTempDir({ prefix: "zetcd-test-deno-dir-" });
  try {
    const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
    const { npmCache, modulesCache } = JSON.parse(new TextDecoder().decode(info.stdout));
    await Deno.symlink(npmCache, `${cache}/npm`);
    await Deno.symlink(modulesCache, `${cache}/remote`);
    const refused = "http://127.0.0.1:9";
    const r = await compileTask({ DENO_DIR: cache, HTTP_PROXY: refused, HTTPS_PROXY: refused });
    assert.equal(r.code, 1, r.stderr);
    const lines = errorLines(r.stderr);
    assert.match(lines[0], /^zetcd: deno compile could not build dist\/zetcd/);
    assert.ok(lines[0].includes(NEEDED), "our line names the denort needed");
    assert.ok(lines.slice(1).some((l) => /^error: /.test(l)), "deno's error comes under it");
    // The stamped sources type-check: what fails is getting denort.
    assert.match(lines.slice(1).join("\n"), /denort/, r.stderr);
    assert.doesNotMatch(lines.join("\n"), /Stack backtrace/, "no backtrace");
    assert.ok(!lines.join("\n").includes("\x1b"), "no colours");
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});
