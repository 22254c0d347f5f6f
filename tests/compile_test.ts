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
