/**
 * The Java zkCli.sh and the C cli_mt, driven with the same commands against
 * our server and the ZooKeeper 3.8 oracle: what they print must match, apart
 * from times, zxids and session ids.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { maskVolatile, runCliMt, runZkCli } from "../_util/zkcli.ts";

const ZKCLI_COMMANDS = [
  "create /app hello",
  "create /app hello",
  "create -e /app/eph",
  "create -s /app/seq- one",
  "create -e -s /app/eseq- two",
  "get /app",
  "get -s /app",
  "set /app world",
  "set -v 0 /app again",
  "get -s /app",
  "ls /app",
  "ls -s /app",
  "stat /app",
  "stat /missing",
  "get /missing",
  "create /missing/child",
  "create /app/eph/child",
  "delete /app",
  "delete -v 9 /app/seq-0000000001",
  "delete /app/seq-0000000001",
  "ls /",
  "create /tree",
  "create /tree/a",
  "create /tree/a/b",
  "create /tree/c",
  "deleteall /tree",
  "ls /",
  "getAcl /app",
  "setAcl /app world:anyone:r",
  "getAcl /app",
  "addauth digest alice:secret",
  "create /mine data auth::cdrwa",
  "getAcl /mine",
  "sync /app",
  "create -c /box",
  "create /box/kid",
  "create -t 600000 /ttl",
  "create -t 600000 -s /ttl/seq-",
  "stat /box",
  "addWatch /app",
  "addWatch -m PERSISTENT /box",
  "set /app watched",
  "removewatches /app",
  "removewatches /missing",
  "whoami",
  "create -e /app/eph2",
  "getEphemerals /",
  "getEphemerals /app",
  "getAllChildrenNumber /app",
  "getAllChildrenNumber /",
  "reconfig -add server.5=127.0.0.1:2888:3888;2181",
  "config",
];

async function zkCliOutputs(address: string): Promise<string[]> {
  const run = await runZkCli(address, ZKCLI_COMMANDS, { timeoutMs: 60_000 });
  return run.outputs.map(maskVolatile);
}

Deno.test({
  name: "zkCli.sh prints the same for every command as against ZooKeeper 3.8",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  let expected: string[];
  {
    await using zookeeper = await startZooKeeper();
    expected = await zkCliOutputs(zookeeper.hostPort);
  }
  await using stack = await startStack();
  const actual = await zkCliOutputs(stack.address);
  ZKCLI_COMMANDS.forEach((command, i) => {
    if (command === "config") {
      // A standalone ZooKeeper has no server list; zetcd lists its live servers.
      const self = stack.address.replaceAll(".", "\\.");
      const line = `server\\.1=127\\.0\\.0\\.1:2888:3888:participant;${self}`;
      assert.match(actual[i], new RegExp(`^${line}\\nversion=[0-9a-f]+$`), `zkCli "config"`);
      return;
    }
    assert.equal(actual[i], expected[i], `zkCli "${command}"`);
  });
  // Guard against a harness that prints nothing for both.
  assert.match(expected[0], /Created \/app/);
  assert.match(expected[1], /Node already exists: \/app/);
});

const CLI_MT_COMMANDS = [
  "create /c",
  "create +e /c/eph",
  "create +s /c/seq",
  "get /c",
  "set /c hi",
  "get /c",
  "ls /c",
  "exists /c",
  "exists /nope",
  "get /nope",
  "delete /c",
  "delete /c/seq0000000001",
];

Deno.test({
  name: "the C client cli_mt gets the same answers as from ZooKeeper 3.8",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  let expected: string[];
  {
    await using zookeeper = await startZooKeeper();
    expected = (await runCliMt(zookeeper.hostPort, CLI_MT_COMMANDS)).outputs.map(maskVolatile);
  }
  await using stack = await startStack();
  const actual = (await runCliMt(stack.address, CLI_MT_COMMANDS)).outputs.map(maskVolatile);
  CLI_MT_COMMANDS.forEach((command, i) => {
    assert.equal(actual[i], expected[i], `cli_mt "${command}"`);
  });
});
