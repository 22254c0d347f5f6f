/**
 * Hostile and broken input: bad frames close only the connection that sent
 * them, and a fuzz run leaves the server serving with no connection or
 * memory left behind.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { RawClient } from "../_util/raw_client.ts";
import { mulberry32 } from "../_util/random_ops.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode } from "../../src/zk/constants.ts";
import type { ZetcdServer } from "../../src/server/server.ts";

function int32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return b;
}

async function assertServing(address: string): Promise<void> {
  const [c] = await RawClient.session(address);
  await c.send(1, OpCode.exists, R.ExistsRequest, { path: "/", watch: false });
  assert.equal((await c.reply())?.err, 0, "a fresh client is still served");
  c.close();
}

async function waitForNoConnections(server: ZetcdServer, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (server.connectionCount > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(server.connectionCount, 0, "every connection was released");
}

Deno.test({
  name: "bad frames close only the connection that sent them",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await startStack({ maxFrame: 4096 });
  const [bystander] = await RawClient.session(stack.address);

  await t.step("a negative frame length closes the connection", async () => {
    const [c] = await RawClient.session(stack.address);
    await c.write(int32(-5));
    assert.ok(await c.closedWithin(3000));
    c.close();
  });

  await t.step("a frame longer than the maximum closes the connection", async () => {
    const [c] = await RawClient.session(stack.address);
    await c.write(int32(4097));
    assert.ok(await c.closedWithin(3000));
    c.close();
  });

  await t.step("a negative length instead of a ConnectRequest closes the connection", async () => {
    const c = await RawClient.open(stack.address);
    await c.write(int32(-1));
    assert.ok(await c.closedWithin(3000));
    c.close();
  });

  await t.step("a garbage first frame closes the connection", async () => {
    const c = await RawClient.open(stack.address);
    await c.write(JuteWriter.frame((w) => w.writeRaw(new Uint8Array([1, 2, 3]))));
    assert.ok(await c.closedWithin(3000));
    c.close();
  });

  await t.step("a request with a truncated body closes the connection", async () => {
    const [c] = await RawClient.session(stack.address);
    await c.write(JuteWriter.frame((w) => {
      R.RequestHeader.write(w, { xid: 1, type: OpCode.getData });
      w.writeInt(100).writeRaw(new TextEncoder().encode("/short"));
    }));
    assert.ok(await c.closedWithin(3000));
    c.close();
  });

  await t.step(
    "a vector count beyond the frame closes the connection without allocating",
    async () => {
      const [c] = await RawClient.session(stack.address);
      await c.write(JuteWriter.frame((w) => {
        R.RequestHeader.write(w, { xid: 1, type: OpCode.setWatches });
        w.writeLong(0n).writeInt(0x7fffffff);
      }));
      assert.ok(await c.closedWithin(3000));
      c.close();
    },
  );

  await t.step("a client that disconnects mid-frame is dropped", async () => {
    const [c] = await RawClient.session(stack.address);
    await c.write(new Uint8Array([0, 0, 0, 50, 0, 0]));
    c.close();
  });

  await t.step("the other session was not disturbed", async () => {
    await bystander.send(7, OpCode.exists, R.ExistsRequest, { path: "/", watch: false });
    const r = await bystander.reply();
    assert.equal(r?.xid, 7);
    assert.equal(r?.err, 0);
    bystander.close();
    await assertServing(stack.address);
    await waitForNoConnections(stack.server);
  });
});

Deno.test({
  name: "thousands of fuzzed frames leave the server serving, with no leak",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ maxFrame: 64 * 1024 });
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 1_000_000);
  const cases = Number(Deno.env.get("FUZZ_CASES") ?? 2000);
  const random = mulberry32(seed);
  const byte = () => Math.floor(random() * 256);
  const bytes = (n: number) => Uint8Array.from({ length: n }, byte);
  const opcodes = [...Object.values(OpCode), 999, -999];

  /** One fuzz case: returns once the server has answered or closed. */
  async function fuzzCase(): Promise<void> {
    const kind = Math.floor(random() * 4);
    const c = await RawClient.open(stack.address);
    try {
      if (kind === 0) {
        // Random bytes instead of a handshake.
        await c.write(bytes(1 + Math.floor(random() * 64)));
      } else {
        await c.handshake({ timeOut: 4000 });
        if (kind === 1) {
          // Random bytes after a good handshake.
          await c.write(bytes(1 + Math.floor(random() * 64)));
        } else {
          // A well-framed request with a random opcode and a random body.
          const op = opcodes[Math.floor(random() * opcodes.length)];
          const body = kind === 2 ? bytes(Math.floor(random() * 48)) : new Uint8Array();
          await c.write(JuteWriter.frame((w) => {
            R.RequestHeader.write(w, { xid: 1, type: op });
            w.writeRaw(body);
          }));
        }
      }
      await c.closedWithin(200);
    } catch {
      // The server may close while we write: that is an acceptable outcome.
    } finally {
      c.close();
    }
  }

  /** Heap in use after a full collection (when the test runs with --expose-gc). */
  const heapUsed = () => {
    (globalThis as { gc?: () => void }).gc?.();
    return Deno.memoryUsage().heapUsed;
  };
  await assertServing(stack.address);
  const before = heapUsed();
  const concurrency = 16;
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < cases) {
      next++;
      await fuzzCase();
    }
  }));
  await assertServing(stack.address);
  await waitForNoConnections(stack.server, 15_000);
  const grown = (heapUsed() - before) / 1024 / 1024;
  console.log(`fuzz: seed ${seed}, ${cases} cases, heap grew ${grown.toFixed(1)} MiB`);
  const gcAvailable = "gc" in globalThis;
  const limit = gcAvailable ? 16 : 128;
  assert.ok(grown < limit, `heap grew by ${grown.toFixed(1)} MiB (seed ${seed})`);
});
