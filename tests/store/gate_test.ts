/**
 * When the write pipeline starts its next batch (src/store/gate.ts): once
 * the writers it just answered are back, or a full batch waits, or
 * GATHER_MS has passed; never later for a writer alone or one whose next
 * writes are already queued, and less and less for writers that do not
 * come back.
 */

import assert from "node:assert/strict";
import { BatchGate, GATHER_MS } from "../../src/store/gate.ts";

const none = () => false;

/** Whether `p` settles before the next macrotask (setImmediate-like: a resolved promise chain). */
async function settled(p: Promise<void>): Promise<boolean> {
  let done = false;
  p.then(() => done = true);
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return done;
}

Deno.test("a writer alone is never kept waiting: its next write is the one expected", () => {
  const gate = new BatchGate();
  const a = {};
  gate.answered([a], none);
  gate.arrived(a);
  assert.equal(gate.wait(), null);
});

Deno.test("the next batch waits for the writers just answered, and starts when the last is back", async () => {
  const gate = new BatchGate();
  const [a, b, c] = [{}, {}, {}];
  gate.answered([a, b, c], none);
  gate.arrived(a);
  const waiting = gate.wait();
  assert.ok(waiting, "two writers are still away");
  gate.arrived(b);
  assert.equal(await settled(waiting), false);
  gate.arrived(c);
  assert.equal(await settled(waiting), true);
});

Deno.test("a writer is expected back with as many writes as it had in the batch", async () => {
  const gate = new BatchGate();
  const a = {};
  gate.answered([a, a, a], none);
  gate.arrived(a);
  const waiting = gate.wait()!;
  gate.arrived(a);
  assert.equal(await settled(waiting), false);
  gate.arrived(a);
  assert.equal(await settled(waiting), true);
});

Deno.test("writes of writers that were not in the batch do not open the gate", async () => {
  const gate = new BatchGate();
  const [a, b] = [{}, {}];
  gate.answered([a], none);
  gate.arrived(b);
  gate.arrived(undefined);
  const waiting = gate.wait()!;
  assert.equal(await settled(waiting), false);
  gate.arrived(a);
  assert.equal(await settled(waiting), true);
});

Deno.test("a writer whose next writes are already queued is not waited for", () => {
  const gate = new BatchGate();
  const [a, b] = [{}, {}];
  gate.answered([a, b], (w) => w === b);
  gate.arrived(a);
  assert.equal(gate.wait(), null);
});

Deno.test("a full batch waiting opens the gate", async () => {
  const gate = new BatchGate();
  gate.answered([{}, {}], none);
  const waiting = gate.wait()!;
  gate.release();
  assert.equal(await settled(waiting), true);
});

Deno.test("writers that do not come back are waited for GATHER_MS at most", async () => {
  const gate = new BatchGate();
  gate.answered([{}], none);
  const waiting = gate.wait()!;
  assert.ok(waiting);
  // Deno's timers fire a millisecond or two late: bound the wait loosely.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<string>((r) =>
    timer = setTimeout(() => r("still waiting"), 50 * GATHER_MS)
  );
  assert.equal(await Promise.race([waiting.then(() => "started"), limit]), "started");
  clearTimeout(timer);
});

Deno.test("a load whose writers do not come back soon stops being waited for", async () => {
  const gate = new BatchGate();
  let cycles = 0;
  // Every batch answers four writers, none of whom writes again.
  for (;; cycles++) {
    gate.answered([{}, {}, {}, {}], none);
    const waiting = gate.wait();
    if (waiting === null) break;
    gate.release(); // as a full batch would: the test need not wait out each deadline
    await waiting;
    assert.ok(cycles < 20, "still waiting after 20 batches nobody came back from");
  }
  assert.ok(cycles > 0, "the first batch's writers were expected back");
});
