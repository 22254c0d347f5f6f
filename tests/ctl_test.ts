/**
 * `zetcd ctl`, the small client for people and scripts, round-trips through
 * a real server.
 */

import assert from "node:assert/strict";
import { startStack } from "./_util/zetcd.ts";
import { runZetcd } from "./_util/cli.ts";

function ctl(server: string, ...args: string[]) {
  return runZetcd(["ctl", "--server", server, ...args]);
}

Deno.test({
  name: "zetcd ctl creates, reads, lists, stats, watches and removes nodes",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await startStack();
  const at = stack.address;

  await t.step("create, set and get round-trip data", async () => {
    assert.deepEqual(await ctl(at, "create", "/app", "v1"), {
      code: 0,
      stdout: "/app\n",
      stderr: "",
    });
    assert.equal((await ctl(at, "set", "/app", "v2", "--version", "0")).code, 0);
    assert.equal((await ctl(at, "get", "/app")).stdout, "v2\n");
    const stale = await ctl(at, "set", "/app", "v3", "--version", "0");
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /BADVERSION/);
  });

  await t.step("create modes, ls and stat", async () => {
    assert.equal(
      (await ctl(at, "create", "/app/job-", "--sequential")).stdout,
      "/app/job-0000000000\n",
    );
    assert.equal((await ctl(at, "create", "/app/box", "--container")).code, 0);
    assert.equal((await ctl(at, "ls", "/app")).stdout, "box\njob-0000000000\n");
    const stat = await ctl(at, "stat", "/app");
    assert.match(stat.stdout, /^dataVersion = 1$/m);
    assert.match(stat.stdout, /^numChildren = 2$/m);
  });

  await t.step("watch prints a change made by someone else", async () => {
    const watching = ctl(at, "watch", "/app", "--count", "1");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await ctl(at, "set", "/app", "v4")).code, 0);
    const out = await watching;
    assert.equal(out.code, 0);
    assert.equal(out.stdout, "NodeDataChanged /app\n");
  });

  await t.step("rm -r removes a subtree; errors are one line with exit code 1", async () => {
    const notEmpty = await ctl(at, "rm", "/app");
    assert.equal(notEmpty.code, 1);
    assert.equal(notEmpty.stderr, "NOTEMPTY /app\n");
    assert.equal((await ctl(at, "rm", "-r", "/app")).code, 0);
    const gone = await ctl(at, "get", "/app");
    assert.equal(gone.code, 1);
    assert.equal(gone.stderr, "NONODE /app\n");
    assert.equal((await ctl(at, "frobnicate", "/x")).code, 2);
  });
});
