/**
 * `zetcd dump` / `zetcd restore`: a tree copied to JSON Lines and back,
 * into another namespace, comes back identical (data, ACLs of every
 * scheme, shape); a digest ACL the server masks, a node the dumper cannot
 * read and a file that cannot be read or written each stop the command
 * with the path or the file named, and leave no partial file behind.
 */

import assert from "node:assert/strict";
import { type Stack, startStack, startZetcd } from "./_util/zetcd.ts";
import { ZkClient } from "../src/client/client.ts";
import { dump, restore } from "../src/cli/backup.ts";
import { digestId } from "../src/zk/acl.ts";
import type { ACL } from "../src/zk/records.ts";
import type { ZetcdServer } from "../src/server/server.ts";
import { runZetcd } from "./_util/cli.ts";

const ALICE = "alice:secret";
const BOB = "bob:hunter2";
const SUPER = "super:root-pw";
const READ = 1;
const ALL = 31;
const text = (s: string) => new TextEncoder().encode(s);
const acl = (perms: number, scheme: string, id: string): ACL => ({ perms, id: { scheme, id } });

function zetcd(...args: string[]) {
  return runZetcd(args);
}

/** The dump without the Stat (times and versions are the new tree's own). */
async function content(file: string): Promise<string[]> {
  return (await Deno.readTextFile(file)).trim().split("\n").map((l) => {
    const { stat: _, ...rest } = JSON.parse(l);
    return JSON.stringify(rest);
  });
}

/** The names in a directory, sorted. */
async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** The message is there, with no stack trace. */
function assertReadable(stderr: string, pattern: RegExp) {
  assert.match(stderr, pattern);
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
}

/**
 * A tree with every kind of ACL: digest (alice, readable by all), digest
 * only (unreadable without alice), `auth` (set by bob's session, stored as
 * his digest), ip, world read-only; data of every shape, sequential nodes.
 */
async function fill(address: string): Promise<void> {
  const zk = await ZkClient.connect(address);
  await zk.create("/app", text("config"));
  await zk.setData("/app", text("config v2"));
  await zk.create("/app/bin", new Uint8Array([0, 1, 2, 255]));
  await zk.create("/app/empty", new Uint8Array());
  await zk.create("/app/null", null);
  await zk.create("/app/gone");
  await zk.delete("/app/gone");
  for (let i = 0; i < 3; i++) await zk.create("/app/job-", text(`${i}`), 2);
  await zk.create("/app/alice", text("hers"));
  await zk.setACL("/app/alice", [
    acl(ALL, "digest", digestId(ALICE)),
    acl(READ, "world", "anyone"),
  ]);
  await zk.create("/app/alice-only", text("private"));
  await zk.create("/app/alice-only/child", text("under it"));
  await zk.setACL("/app/alice-only", [acl(ALL, "digest", digestId(ALICE))]);
  await zk.create("/app/ip", null);
  await zk.setACL("/app/ip", [acl(ALL, "ip", "127.0.0.1"), acl(READ, "ip", "10.1.0.0/16")]);
  await zk.create("/app/read-only", text("frozen"));
  await zk.setACL("/app/read-only", [acl(READ, "world", "anyone")]);
  const bob = await ZkClient.connect(address);
  await bob.addAuth("digest", BOB);
  await bob.create("/app/bob", text("his"));
  await bob.setACL("/app/bob", [acl(ALL, "auth", ""), acl(READ, "world", "anyone")]);
  await bob.close();
  await zk.close();
}

const AS_OWNERS = ["--auth", `digest:${ALICE}`, "--auth", `digest:${BOB}`];

Deno.test({
  name:
    "a dump restored into another namespace dumps back identical, ACLs of every scheme included",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await startStack({ prefix: "/source/" });
  const dir = await Deno.makeTempDir();
  await fill(stack.address);
  const first = `${dir}/first.jsonl`;
  const targets: ZetcdServer[] = [];
  try {
    await t.step("the dump holds the real digests of alice and bob, ip and world", async () => {
      const dumped = await zetcd("dump", "--server", stack.address, "--file", first, ...AS_OWNERS);
      assert.equal(dumped.code, 0, dumped.stderr);
      assert.match(
        dumped.stderr,
        /dumped 14 nodes in [\d.]+ s \(\d+\/s\)/,
        "/, /app and its twelve nodes",
      );
      const byPath = new Map(
        (await Deno.readTextFile(first)).trim().split("\n").map((l) => {
          const n = JSON.parse(l);
          return [n.path, n.acl.map((a: Record<string, unknown>) => `${a.scheme}:${a.id}`)];
        }),
      );
      assert.deepEqual(byPath.get("/app/alice"), [`digest:${digestId(ALICE)}`, "world:anyone"]);
      assert.deepEqual(byPath.get("/app/alice-only"), [`digest:${digestId(ALICE)}`]);
      assert.deepEqual(byPath.get("/app/bob"), [`digest:${digestId(BOB)}`, "world:anyone"]);
      assert.deepEqual(byPath.get("/app/ip"), ["ip:127.0.0.1", "ip:10.1.0.0/16"]);
      assert.deepEqual(byPath.get("/app/read-only"), ["world:anyone"]);
    });

    await t.step("zetcd restore, then dump: the same lines but for the Stat", async () => {
      const target = await startZetcd(stack.etcd, { prefix: "/target/" });
      targets.push(target);
      const restored = await zetcd("restore", "--server", target.address, "--file", first);
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(restored.stderr, /restored 14 nodes in [\d.]+ s \(\d+\/s\)/);
      const second = `${dir}/second.jsonl`;
      const again = await zetcd("dump", "--server", target.address, "--file", second, ...AS_OWNERS);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(await content(second), await content(first));
      const alice = await ZkClient.connect(target.address);
      await alice.addAuth("digest", ALICE);
      await alice.setData("/app/alice", text("still hers"));
      await alice.close();
    });

    await t.step("migrate --from-dump, then dump: byte-identical, Stat included", async () => {
      const restored = await zetcd(
        "migrate",
        "--from-dump",
        first,
        "--endpoints",
        stack.etcd.endpoints[0],
        "--prefix",
        "/copy/",
      );
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(restored.stderr, /0 differences/);
      const target = await startZetcd(stack.etcd, { prefix: "/copy/" });
      targets.push(target);
      const third = `${dir}/third.jsonl`;
      const again = await zetcd("dump", "--server", target.address, "--file", third, ...AS_OWNERS);
      assert.equal(again.code, 0, again.stderr);
      const [a, b] = [await Deno.readFile(first), await Deno.readFile(third)];
      assert.equal(new TextDecoder().decode(b), new TextDecoder().decode(a));
      assert.deepEqual(b, a);
    });

    await t.step("--path dumps a subtree with its paths as they are", async () => {
      const sub = `${dir}/sub.jsonl`;
      const dumped = await zetcd(
        "dump",
        "--server",
        stack.address,
        "--path",
        "/app/alice-only",
        "--file",
        sub,
        "--auth",
        `digest:${ALICE}`,
      );
      assert.equal(dumped.code, 0, dumped.stderr);
      const paths = (await Deno.readTextFile(sub)).trim().split("\n").map((l) =>
        JSON.parse(l).path
      );
      assert.deepEqual(paths, ["/app/alice-only", "/app/alice-only/child"]);
    });

    await t.step("an ephemeral node is skipped, and listed", async () => {
      const owner = await ZkClient.connect(stack.address);
      await owner.create("/app/eph", null, 1);
      const file = `${dir}/eph.jsonl`;
      const dumped = await zetcd("dump", "--server", stack.address, "--file", file, ...AS_OWNERS);
      await owner.close();
      assert.equal(dumped.code, 0, dumped.stderr);
      assert.match(dumped.stderr, /dumped 14 nodes .*\n {2}skipped ephemeral \/app\/eph\n/);
      assert.doesNotMatch(await Deno.readTextFile(file), /"\/app\/eph"/);
    });
  } finally {
    for (const target of targets) await target.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A stack with a super user, and a tree whose /app/alice only alice administers. */
async function stackWithAlice(): Promise<Stack> {
  const stack = await startStack({ prefix: "/masked/", superDigest: digestId(SUPER) });
  const zk = await ZkClient.connect(stack.address);
  await zk.create("/app", text("config"));
  await zk.create("/app/alice", text("hers"));
  await zk.setACL("/app/alice", [
    acl(ALL, "digest", digestId(ALICE)),
    acl(READ, "world", "anyone"),
  ]);
  await zk.close();
  return stack;
}

Deno.test({
  name: "zetcd dump refuses a digest ACL the server masks, unless given its owner's credentials",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await stackWithAlice();
  const dir = await Deno.makeTempDir();
  const file = `${dir}/backup.jsonl`;
  const dumpAs = (...args: string[]) =>
    zetcd("dump", "--server", stack.address, "--file", file, ...args);
  try {
    await t.step("without credentials: the path and user named, exit 1, no file", async () => {
      const run = await dumpAs();
      assert.equal(run.code, 1, run.stderr);
      assertReadable(run.stderr, /\/app\/alice: .*masked.*digest alice:x/);
      assert.match(run.stderr, /--auth digest:alice:PASSWORD/);
      assert.deepEqual(await names(dir), [], "neither the file nor a temporary one");
    });

    await t.step("to stdout: the same refusal and a non-zero exit", async () => {
      const run = await zetcd("dump", "--server", stack.address);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /\/app\/alice: .*masked/);
    });

    await t.step("with a wrong password: still masked, still refused", async () => {
      const run = await dumpAs("--auth", "digest:alice:wrong");
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /\/app\/alice: .*masked/);
    });

    await t.step("with alice's credentials: her real digest", async () => {
      const run = await dumpAs("--auth", `digest:${ALICE}`);
      assert.equal(run.code, 0, run.stderr);
      assert.match(await Deno.readTextFile(file), new RegExp(`"id":"${digestId(ALICE)}"`));
      assert.doesNotMatch(await Deno.readTextFile(file), /:x"/);
    });

    await t.step("as the super user: the real digest too", async () => {
      await Deno.remove(file);
      const run = await dumpAs("--auth", `digest:${SUPER}`);
      assert.equal(run.code, 0, run.stderr);
      assert.match(await Deno.readTextFile(file), new RegExp(`"id":"${digestId(ALICE)}"`));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "zetcd dump stops at a node it cannot read, naming it, and leaves the old file as it was",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await startStack({ prefix: "/noauth/" });
  const zk = await ZkClient.connect(stack.address);
  for (const p of ["/a", "/b", "/c"]) await zk.create(p, text(p));
  await zk.setACL("/b", [acl(ALL, "digest", digestId(ALICE))]);
  await zk.close();
  const dir = await Deno.makeTempDir();
  const file = `${dir}/backup.jsonl`;
  await Deno.writeTextFile(file, "yesterday's dump\n");
  try {
    await t.step("NOAUTH with the path and a hint, exit 1, the file untouched", async () => {
      const run = await zetcd("dump", "--server", stack.address, "--file", file);
      assert.equal(run.code, 1, run.stderr);
      assertReadable(run.stderr, /zetcd dump: cannot read \/b.*: NOAUTH .*--auth digest:/);
      assert.equal(await Deno.readTextFile(file), "yesterday's dump\n");
      assert.deepEqual(await names(dir), ["backup.jsonl"], "no temporary file left");
    });

    await t.step("with the credentials: the whole tree", async () => {
      const run = await zetcd(
        "dump",
        "--server",
        stack.address,
        "--file",
        file,
        "--auth",
        `digest:${ALICE}`,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /dumped 4 nodes/);
      assert.deepEqual(await names(dir), ["backup.jsonl"]);
    });

    await t.step("a missing --path is named", async () => {
      const run = await zetcd("dump", "--server", stack.address, "--path", "/nope");
      assert.equal(run.code, 1, run.stderr);
      assertReadable(run.stderr, /\/nope: NONODE/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "zetcd restore with --auth writes into nodes only alice may write, and names the path when refused",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await stackWithAlice();
  const dir = await Deno.makeTempDir();
  const file = `${dir}/backup.jsonl`;
  const line = (path: string, data: string) =>
    JSON.stringify({
      path,
      data: btoa(data),
      acl: [
        { perms: ALL, scheme: "digest", id: digestId(ALICE) },
        { perms: READ, scheme: "world", id: "anyone" },
      ],
      stat: { version: 0, cversion: 0, aversion: 0, ctime: "0", mtime: "0" },
    });
  await Deno.writeTextFile(file, [line("/app/alice", "restored"), ""].join("\n"));
  const read = async () => {
    const zk = await ZkClient.connect(stack.address);
    const { data } = await zk.getData("/app/alice");
    await zk.close();
    return new TextDecoder().decode(data!);
  };
  try {
    await t.step("without credentials: NOAUTH with the path, exit 1", async () => {
      const run = await zetcd("restore", "--server", stack.address, "--file", file);
      assert.equal(run.code, 1, run.stderr);
      assertReadable(run.stderr, /zetcd restore: cannot write \/app\/alice: NOAUTH .*--auth/);
      assert.equal(await read(), "hers");
    });

    await t.step("with alice's credentials: written", async () => {
      const run = await zetcd(
        "restore",
        "--server",
        stack.address,
        "--file",
        file,
        "--auth",
        `digest:${ALICE}`,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.equal(await read(), "restored");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "zetcd restore refuses a dump holding a masked ACL, naming the file, line and path",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ prefix: "/refuse/" });
  const dir = await Deno.makeTempDir();
  const file = `${dir}/old.jsonl`;
  const node = (path: string, id: string) =>
    JSON.stringify({
      path,
      data: null,
      acl: [{ perms: ALL, scheme: "digest", id }, { perms: READ, scheme: "world", id: "anyone" }],
      stat: { version: 0, cversion: 0, aversion: 0, ctime: "0", mtime: "0" },
    });
  await Deno.writeTextFile(
    file,
    [node("/kept", digestId(ALICE)), node("/locked", "alice:x"), ""].join("\n"),
  );
  try {
    const run = await zetcd("restore", "--server", stack.address, "--file", file);
    assert.equal(run.code, 2, run.stderr);
    assertReadable(run.stderr, new RegExp(`${file} line 2: /locked: .*masked.*alice:x`));
    const zk = await ZkClient.connect(stack.address);
    assert.equal(await zk.exists("/kept"), null, "nothing written");
    await zk.close();

    const migrated = await zetcd(
      "migrate",
      "--from-dump",
      file,
      "--endpoints",
      stack.etcd.endpoints[0],
      "--prefix",
      "/copy/",
    );
    assert.notEqual(migrated.code, 0, migrated.stderr);
    assert.match(migrated.stderr, /line 2: \/locked: .*masked/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "zetcd dump and restore name a file they cannot write or read, and exit 2",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await startStack({ prefix: "/files/" });
  const dir = await Deno.makeTempDir();
  try {
    await t.step("dump into a missing directory", async () => {
      const file = `${dir}/missing/backup.jsonl`;
      const run = await zetcd("dump", "--server", stack.address, "--file", file);
      assert.equal(run.code, 2, run.stderr);
      assertReadable(run.stderr, new RegExp(`zetcd dump: ${dir}/missing/backup.jsonl: `));
    });

    await t.step("restore from a missing file", async () => {
      const file = `${dir}/nope.jsonl`;
      const run = await zetcd("restore", "--server", stack.address, "--file", file);
      assert.equal(run.code, 2, run.stderr);
      assertReadable(run.stderr, new RegExp(`zetcd restore: ${file}: `));
    });

    await t.step("restore from a file with a line that is not JSON", async () => {
      const file = `${dir}/bad.jsonl`;
      await Deno.writeTextFile(file, '{"path":"/"\n');
      const run = await zetcd("restore", "--server", stack.address, "--file", file);
      assert.equal(run.code, 2, run.stderr);
      assertReadable(run.stderr, new RegExp(`zetcd restore: .*${file} line 1: `));
    });

    await t.step("restore from a file with a line that is not a node", async () => {
      const file = `${dir}/other.jsonl`;
      await Deno.writeTextFile(file, '{"path":"/","data":null,"acl":[],"stat":{}}\n{"a":1}\n');
      const run = await zetcd("restore", "--server", stack.address, "--file", file);
      assert.equal(run.code, 2, run.stderr);
      assertReadable(run.stderr, new RegExp(`zetcd restore: ${file} line 2: not a node`));
    });

    await t.step("a bad flag", async () => {
      const run = await zetcd("dump", "--bogus");
      assert.equal(run.code, 2, run.stderr);
      assertReadable(run.stderr, /zetcd dump: .*bogus.*\(see zetcd dump --help\)/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("zetcd dump --help and zetcd restore --help print their usage", async () => {
  for (const command of ["dump", "restore"]) {
    const run = await zetcd(command, "--help");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`Usage: zetcd ${command} `));
    assert.match(run.stdout, /--auth SCHEME:CREDENTIALS/);
    assert.match(run.stdout, /--server HOST:PORT/);
    assert.match(run.stdout, /--file FILE/);
  }
});

Deno.test({
  name: "dump() and restore() report progress as they go, as zetcd migrate does",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ prefix: "/progress/" });
  const target = await startZetcd(stack.etcd, { prefix: "/progress-copy/" });
  const zk = await ZkClient.connect(stack.address);
  const copy = await ZkClient.connect(target.address);
  try {
    await zk.create("/p");
    await Promise.all(Array.from({ length: 60 }, (_, i) => zk.create(`/p/n${i}`, text(`${i}`))));
    const lines: string[] = [];
    const dumped: string[] = [];
    const log = (line: string) => lines.push(line);
    const result = await dump(zk, "/", (line) => {
      dumped.push(line);
      return Promise.resolve();
    }, { log, progressMs: 0 });
    assert.equal(result.count, 62);
    assert.ok(lines.length >= 3, lines.join("\n"));
    for (const l of lines) assert.match(l, /^(dumped )?\d+ nodes in [\d.]+ s \(\d+\/s\)$/);
    assert.match(lines.at(-1)!, /^dumped 62 nodes in /);

    lines.length = 0;
    await restore(copy, dumped.map((l) => JSON.parse(l)), { log, progressMs: 0 });
    assert.ok(lines.some((l) => /^created \d+ nodes in [\d.]+ s/.test(l)), lines.join("\n"));
    assert.ok(lines.some((l) => /^ACLs set on \d+ nodes in [\d.]+ s/.test(l)), lines.join("\n"));
    assert.match(lines.at(-1)!, /^restored 62 nodes in [\d.]+ s \(\d+\/s\)$/);
  } finally {
    await copy.close();
    await zk.close();
    await target.close();
  }
});
