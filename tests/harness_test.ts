/**
 * Proves the test harness under tests/_util works against the real
 * programs: etcd, the Apache ZooKeeper oracle, kazoo, zkCli.sh and cli_mt.
 */

import assert from "node:assert/strict";
import { startEtcd } from "./_util/etcd.ts";
import { dedent, runKazoo } from "./_util/kazoo.ts";
import { freePort, isListening } from "./_util/ports.ts";
import { cliMtOutputs, maskVolatile, runCliMt, runZkCli, zkCliOutputs } from "./_util/zkcli.ts";
import { sendFourLetterWord, startZooKeeper } from "./_util/zookeeper.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function base64(text: string): string {
  return btoa(text);
}

Deno.test("freePort returns a loopback port that can be bound", async () => {
  const port = await freePort();
  assert.ok(port > 0 && port < 65536);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  listener.close();
});

Deno.test("etcd harness starts a healthy etcd on a free port and removes its data dir on stop", async () => {
  const etcd = await startEtcd();
  const port = Number(etcd.endpoints[0].split(":")[1]);
  assert.deepEqual(etcd.endpoints, [`127.0.0.1:${port}`]);
  assert.equal(etcd.clientUrl, `http://127.0.0.1:${port}`);

  const health = await fetch(`${etcd.clientUrl}/health`);
  assert.equal((await health.json()).health, "true");

  const put = await fetch(`${etcd.clientUrl}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: base64("/k"), value: base64("v") }),
  });
  assert.equal(put.status, 200);
  await put.body?.cancel();
  const range = await fetch(`${etcd.clientUrl}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: base64("/k") }),
  });
  const kvs = (await range.json()).kvs;
  assert.equal(atob(kvs[0].value), "v");

  assert.ok(await exists(etcd.dataDir));
  await etcd.stop();
  await etcd.stop(); // a second stop is a no-op
  assert.equal(await exists(etcd.dataDir), false);
  assert.equal(await isListening(port), false);
});

Deno.test("etcd harness stops etcd at the end of an await using block", async () => {
  let dataDir: string;
  {
    await using etcd = await startEtcd();
    dataDir = etcd.dataDir;
    assert.ok(await exists(dataDir));
  }
  assert.equal(await exists(dataDir), false);
});

Deno.test("ZooKeeper oracle serves kazoo, zkCli.sh and cli_mt", async (t) => {
  const zk = await startZooKeeper();
  try {
    await t.step("answers ruok with imok and srvr in standalone mode", async () => {
      assert.equal(await sendFourLetterWord(zk.hostPort, "ruok"), "imok");
      const srvr = await sendFourLetterWord(zk.hostPort, "srvr");
      assert.match(srvr, /^Zookeeper version: 3\.8\./);
      assert.match(srvr, /Mode: standalone/);
    });

    await t.step("kazoo against the ZooKeeper oracle creates and reads a znode", async () => {
      const result = await runKazoo(
        zk.hostPort,
        `
        zk.create("/kazoo", b("hello"))
        data, stat = zk.get("/kazoo")
        if stat.version == 0:
            result = {"data": data, "stat": stat_to_dict(stat)}
        `,
      );
      const { data, stat } = result as {
        data: string;
        stat: Record<string, number>;
      };
      assert.equal(data, "hello");
      assert.equal(stat.version, 0);
      assert.equal(stat.dataLength, 5);
      assert.equal(stat.numChildren, 0);
      assert.equal(stat.ephemeralOwner, 0);
    });

    await t.step(
      "kazoo against the ZooKeeper oracle reports NoNodeError for a missing znode",
      async () => {
        const result = await runKazoo(zk.hostPort, `zk.get("/missing")`);
        assert.deepEqual(result, { error: "NoNodeError" });
      },
    );

    await t.step(
      "kazoo against the ZooKeeper oracle reports NodeExistsError for a second create",
      async () => {
        const result = await runKazoo(zk.hostPort, `zk.create("/kazoo")`);
        assert.deepEqual(result, { error: "NodeExistsError" });
      },
    );

    await t.step(
      "zkCli against the ZooKeeper oracle prints Node does not exist for a missing path",
      async () => {
        const run = await runZkCli(zk.hostPort, ["get /nope"]);
        assert.deepEqual(run.outputs, ["Node does not exist: /nope"]);
      },
    );

    await t.step(
      "zkCli against the ZooKeeper oracle prints Created, Node already exists, data and the get -s stat block",
      async () => {
        const run = await runZkCli(zk.hostPort, [
          "create /cli hello",
          "create /cli again",
          "get /cli",
          "get -s /cli",
          "ls /cli",
        ]);
        assert.equal(run.code, 0);
        assert.deepEqual(run.outputs.slice(0, 3), [
          "Created /cli",
          "Node already exists: /cli",
          "hello",
        ]);
        assert.equal(
          maskVolatile(run.outputs[3]),
          [
            "hello",
            "cZxid = <zxid>",
            "ctime = <time>",
            "mZxid = <zxid>",
            "mtime = <time>",
            "pZxid = <zxid>",
            "cversion = 0",
            "dataVersion = 0",
            "aclVersion = 0",
            "ephemeralOwner = 0x0",
            "dataLength = 5",
            "numChildren = 0",
          ].join("\n"),
        );
        assert.equal(run.outputs[4], "[]");
      },
    );

    await t.step(
      "cli_mt against the ZooKeeper oracle prints each command's result in order",
      async () => {
        const run = await runCliMt(zk.hostPort, [
          "create /mt",
          "create /mt",
          "get /mt",
          "exists /nope",
          "ls /mt",
        ]);
        assert.equal(run.code, 0);
        assert.deepEqual(run.outputs.map(maskVolatile), [
          "Creating [/mt] node (mode: 0)\n[/mt]: rc = 0\n\tname = /mt",
          "Creating [/mt] node (mode: 0)\n[/mt]: rc = -110",
          [
            "/mt: rc = 0",
            " value_len = 3",
            "new",
            "Stat:",
            "\tctime = <time>",
            "\tczxid=<zxid>",
            "\tmtime=<time>",
            "\tmzxid=<zxid>",
            "\tversion=0\taversion=0",
            "\tephemeralOwner = 0",
          ].join("\n"),
          "Error -101 for /nope",
          "/mt: rc = 0",
        ]);
      },
    );
  } finally {
    await zk.stop();
  }
  assert.equal(await isListening(zk.port), false);
  assert.equal(await exists(zk.dir), false);
});

Deno.test("runKazoo fails with a timeout error naming the server when nothing listens", async () => {
  const hostPort = `127.0.0.1:${await freePort()}`;
  await assert.rejects(
    runKazoo(hostPort, "result = 1", { timeoutMs: 1500 }),
    (error: Error) => {
      assert.match(error.message, /timed out after 1500 ms/);
      assert.ok(error.message.includes(hostPort));
      return true;
    },
  );
});

/** Command lines of running processes that mention `text`. */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = (await Deno.readTextFile(`/proc/${entry.name}/cmdline`))
        .replaceAll("\0", " ");
      if (cmdline.includes(text)) found.push(cmdline);
    } catch {
      // The process exited meanwhile.
    }
  }
  return found;
}

Deno.test("runZkCli times out with a clear error and leaves no JVM behind when nothing listens", async () => {
  const hostPort = `127.0.0.1:${await freePort()}`;
  await assert.rejects(
    runZkCli(hostPort, ["ls /"], { timeoutMs: 2000 }),
    /zkCli\.sh -server 127\.0\.0\.1:\d+ with commands \["ls \/"\] timed out after 2000 ms/,
  );
  assert.deepEqual(await processesMentioning(hostPort), []);
});

Deno.test("runCliMt fails with a clear error when nothing listens", async () => {
  const hostPort = `127.0.0.1:${await freePort()}`;
  await assert.rejects(
    runCliMt(hostPort, ["ls /"], { timeoutMs: 5000 }),
    /could not talk to the server/,
  );
});

Deno.test("zkCliOutputs keeps one section per command and drops banner and quit noise", () => {
  const stdout = [
    "Connecting to 127.0.0.1:2181",
    "Welcome to ZooKeeper!",
    "JLine support is disabled",
    "printwatches is off",
    "Created /a",
    "printwatches is off",
    "",
    "printwatches is off",
    "[a, zookeeper]",
    "printwatches is off",
    "",
  ].join("\n");
  assert.deepEqual(zkCliOutputs(stdout), ["Created /a", "", "[a, zookeeper]"]);
});

Deno.test("cliMtOutputs drops separators and time lines", () => {
  const stdout = [
    "Watcher SESSION_EVENT state = CONNECTED_STATE",
    "time = 3 msec",
    "/zetcd-test-harness-barrier: rc = -101",
    "time = 3 msec",
    "time = 5 msec",
    "/: rc = 0",
    "\tzookeeper",
    "time = 5 msec",
    "/zetcd-test-harness-barrier: rc = -101",
    "Quitting...",
  ].join("\n");
  assert.deepEqual(cliMtOutputs(stdout), ["/: rc = 0\n\tzookeeper"]);
});

Deno.test("maskVolatile masks times, zxids and session ids but keeps the rest", () => {
  const stat = [
    "cZxid = 0x2",
    "ctime = Wed Nov 25 15:38:30 UTC 2026",
    "dataVersion = 3",
    "ephemeralOwner = 0x100000750fa0002",
    "\tczxid=2",
    "\tephemeralOwner = 0",
  ].join("\n");
  assert.equal(
    maskVolatile(stat),
    [
      "cZxid = <zxid>",
      "ctime = <time>",
      "dataVersion = 3",
      "ephemeralOwner = <session>",
      "\tczxid=<zxid>",
      "\tephemeralOwner = 0",
    ].join("\n"),
  );
});

Deno.test("dedent removes the indentation common to a kazoo body", () => {
  assert.equal(
    dedent("\n    if x:\n        y()\n\n    z()\n"),
    "\nif x:\n    y()\n\nz()\n",
  );
});
