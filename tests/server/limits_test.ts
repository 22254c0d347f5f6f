/**
 * Resource limits: connections beyond --max-connections or beyond
 * --max-client-cnxns from one address are closed at once (as ZooKeeper
 * does), and a client that stops reading is cut off rather than making
 * the server buffer its replies without bound.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { RawClient } from "../_util/raw_client.ts";
import { sleep } from "../_util/process.ts";
import { sendFourLetterWord } from "../_util/zookeeper.ts";
import { ZkClient } from "../../src/client/client.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import { OpCode } from "../../src/zk/constants.ts";
import * as R from "../../src/zk/records.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function refused(address: string): Promise<boolean> {
  try {
    const zk = await ZkClient.connect(address);
    await zk.close();
    return false;
  } catch {
    return true;
  }
}

Deno.test({
  name: "connections beyond --max-client-cnxns from one address are closed at once",
  ...opts,
}, async () => {
  await using stack = await startStack({ maxClientCnxns: 3 });
  assert.match(await sendFourLetterWord(stack.address, "conf"), /^maxClientCnxns=3$/m);
  const held = await Promise.all([1, 2, 3].map(() => ZkClient.connect(stack.address)));
  assert.ok(await refused(stack.address), "a fourth connection from 127.0.0.1 is closed");
  await held.pop()!.close();
  await sleep(100);
  assert.ok(!(await refused(stack.address)), "once one closes, another is let in");
  for (const zk of held) await zk.close();
});

Deno.test({
  name: "connections beyond --max-connections are closed at once",
  ...opts,
}, async () => {
  await using stack = await startStack({ maxConnections: 2, maxClientCnxns: 0 });
  const held = await Promise.all([1, 2].map(() => ZkClient.connect(stack.address)));
  assert.ok(await refused(stack.address));
  assert.equal(stack.server.connectionCount, 2);
  for (const zk of held) await zk.close();
  await sleep(100);
  assert.ok(!(await refused(stack.address)));
});

Deno.test({
  name: "a client that stops reading is cut off once its queued replies pass --max-outgoing-bytes",
  ...opts,
}, async () => {
  await using stack = await startStack({ maxOutgoingBytes: 64 * 1024 });
  const writer = await ZkClient.connect(stack.address);
  const paths = Array.from({ length: 1500 }, (_, i) => `/w${i}`);
  await Promise.all(paths.map((p) => writer.create(p)));
  await writer.create("/big", new Uint8Array(1000 * 1024));

  // The reader sets a watch on every node, then asks for the big node
  // again and again, and never reads a byte: its socket buffers fill up.
  const [reader] = await RawClient.session(stack.address);
  const frames: Uint8Array[] = [];
  let xid = 1;
  for (const path of paths) {
    frames.push(JuteWriter.frame((w) => {
      R.RequestHeader.write(w, { xid: xid++, type: OpCode.exists });
      R.ExistsRequest.write(w, { path, watch: true });
    }));
  }
  for (let i = 0; i < 12; i++) {
    frames.push(JuteWriter.frame((w) => {
      R.RequestHeader.write(w, { xid: xid++, type: OpCode.getData });
      R.GetDataRequest.write(w, { path: "/big", watch: false });
    }));
  }
  await reader.write(new Uint8Array(frames.flatMap((f) => [...f])));
  await sleep(1000);
  assert.equal(stack.server.connectionCount, 2, "the reader is still connected");

  // Each change sends the reader a notification that can only queue up.
  await Promise.all(paths.map((p) => writer.setData(p, new Uint8Array([1]))));
  let count = stack.server.connectionCount;
  for (let i = 0; i < 50 && count > 1; i++) {
    await sleep(100);
    count = stack.server.connectionCount;
  }
  assert.equal(count, 1, "the reader's connection was cut");
  await writer.close();
  try {
    reader.conn.close();
  } catch { /* closed */ }
});
