/**
 * `zetcd ctl`, the small client for people and scripts, round-trips through
 * a real server.
 */

import assert from "node:assert/strict";
import { startStack } from "./_util/zetcd.ts";
import { runZetcd } from "./_util/cli.ts";
import { digestId } from "../src/zk/acl.ts";

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

Deno.test({
  name: "zetcd ctl reads and sets ACLs, with credentials from --auth",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await startStack();
  const at = stack.address;
  const alice = `digest:${digestId("alice:secret")}:cdrwa`;

  await t.step("getAcl prints one scheme:id:perms per line", async () => {
    assert.equal((await ctl(at, "create", "/acl", "v")).code, 0);
    assert.deepEqual(await ctl(at, "getAcl", "/acl"), {
      code: 0,
      stdout: "world:anyone:cdrwa\n",
      stderr: "",
    });
  });

  await t.step("setAcl replaces the ACL, optionally only at an ACL version", async () => {
    assert.equal((await ctl(at, "setAcl", "/acl", "world:anyone:adrc", "--version", "0")).code, 0);
    assert.equal((await ctl(at, "getAcl", "/acl")).stdout, "world:anyone:cdra\n");
    const stale = await ctl(at, "setAcl", "/acl", "world:anyone:cdrwa", "--version", "0");
    assert.equal(stale.code, 1);
    assert.equal(stale.stderr, "BADVERSION /acl\n");
    assert.equal((await ctl(at, "setAcl", "/acl", `${alice},ip:10.0.0.0/8:r`)).code, 0);
    const acl = await ctl(at, "--auth", "digest:alice:secret", "getAcl", "/acl");
    assert.equal(acl.stdout, `${alice}\nip:10.0.0.0/8:r\n`);
  });

  await t.step("--auth adds credentials to the session (addauth)", async () => {
    const refused = await ctl(at, "get", "/acl");
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, "NOAUTH /acl\n");
    assert.equal((await ctl(at, "--auth", "digest:alice:secret", "get", "/acl")).stdout, "v\n");
    const wrong = await ctl(at, "--auth", "digest:alice:wrong", "get", "/acl");
    assert.equal(wrong.stderr, "NOAUTH /acl\n");
    const unknown = await ctl(at, "--auth", "kerberos:alice", "get", "/acl");
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, "AUTHFAILED --auth kerberos\n", "the secret is not printed");
  });

  await t.step("a malformed ACL or --auth is a usage error in one line", async () => {
    for (
      const args of [
        ["setAcl", "/acl", "world:anyone:xyz"],
        ["setAcl", "/acl", "world"],
        ["setAcl", "/acl"],
        ["--auth", "digest", "get", "/acl"],
        ["set", "/acl", "x", "--version", "latest"],
      ]
    ) {
      const r = await ctl(at, ...args);
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /^zetcd ctl: /);
    }
  });
});

Deno.test("zetcd ctl: an unknown command says so in one line, without connecting", async () => {
  // Nothing listens on port 1: a command that connected would fail with code 1.
  for (const args of [["frobnicate", "/x"], ["frobnicate"]]) {
    const r = await ctl("127.0.0.1:1", ...args);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, 'zetcd ctl: unknown command "frobnicate" (see zetcd ctl --help)\n');
  }
  const addauth = await ctl("127.0.0.1:1", "addauth", "digest", "alice:secret");
  assert.equal(addauth.code, 2);
  assert.match(addauth.stderr, /^zetcd ctl: .*--auth SCHEME:AUTH.*\n$/);
});
