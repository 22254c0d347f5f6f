/**
 * `zetcd dump` / `zetcd restore`: a tree copied to JSON Lines and back,
 * into another namespace, comes back identical (data, ACLs, shape).
 */

import assert from "node:assert/strict";
import { startStack, startZetcd } from "./_util/zetcd.ts";
import { ZkClient } from "../src/client/client.ts";
import { digestId } from "../src/zk/acl.ts";
import { runZetcd } from "./_util/cli.ts";

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

Deno.test({
  name: "a dump restored into another namespace dumps back identical",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ prefix: "/source/" });
  const target = await startZetcd(stack.etcd, { prefix: "/target/" });
  const dir = await Deno.makeTempDir();
  try {
    const zk = await ZkClient.connect(stack.address);
    await zk.create("/app", new TextEncoder().encode("config"));
    await zk.create("/app/bin", new Uint8Array([0, 1, 2, 255]));
    await zk.create("/app/empty", new Uint8Array());
    await zk.create("/app/null", null);
    await zk.create("/app/deep");
    await zk.create("/app/deep/er", new TextEncoder().encode("x"));
    await zk.create("/app/job-", null, 2);
    await zk.create("/app/eph", null, 1);
    await zk.setACL("/app/deep", [
      { perms: 31, id: { scheme: "digest", id: digestId("alice:secret") } },
      { perms: 1, id: { scheme: "world", id: "anyone" } },
    ]);

    const first = `${dir}/first.jsonl`;
    const dumped = await zetcd("dump", "--server", stack.address, "--file", first);
    assert.equal(dumped.code, 0, dumped.stderr);
    assert.match(dumped.stderr, /skipped ephemeral \/app\/eph/);
    assert.match(dumped.stderr, /dumped 8 nodes/, "/, /app and its six persistent nodes");

    const restored = await zetcd("restore", "--server", target.address, "--file", first);
    assert.equal(restored.code, 0, restored.stderr);

    const second = `${dir}/second.jsonl`;
    assert.equal((await zetcd("dump", "--server", target.address, "--file", second)).code, 0);
    assert.deepEqual(await content(second), await content(first));
    await zk.close();
  } finally {
    await target.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a dump restored with migrate --from-dump dumps back byte-identical, Stat included",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ prefix: "/source/" });
  const dir = await Deno.makeTempDir();
  let target;
  try {
    const zk = await ZkClient.connect(stack.address);
    const text = (s: string) => new TextEncoder().encode(s);
    await zk.create("/app", text("config"));
    await zk.setData("/app", text("config v2"));
    await zk.setData("/app", text("config v3"));
    await zk.create("/app/bin", new Uint8Array([0, 1, 2, 255]));
    await zk.create("/app/null", null);
    await zk.create("/app/gone");
    await zk.delete("/app/gone");
    for (let i = 0; i < 3; i++) await zk.create("/app/job-", text(`${i}`), 2);
    await zk.create("/app/locked");
    await zk.setACL("/app/locked", [
      { perms: 31, id: { scheme: "digest", id: digestId("alice:secret") } },
      { perms: 1, id: { scheme: "world", id: "anyone" } },
    ]);
    await zk.close();

    const first = `${dir}/first.jsonl`;
    assert.equal((await zetcd("dump", "--server", stack.address, "--file", first)).code, 0);
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
    target = await startZetcd(stack.etcd, { prefix: "/copy/" });
    const second = `${dir}/second.jsonl`;
    assert.equal((await zetcd("dump", "--server", target.address, "--file", second)).code, 0);
    const [a, b] = [await Deno.readFile(first), await Deno.readFile(second)];
    assert.equal(new TextDecoder().decode(b), new TextDecoder().decode(a));
    assert.deepEqual(b, a);
  } finally {
    await target?.close();
    await Deno.remove(dir, { recursive: true });
  }
});
