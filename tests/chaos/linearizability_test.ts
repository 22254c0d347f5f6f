/**
 * Specs for the linearizability checker in tests/_util/linearizability.ts: hand-written histories
 * of one znode that are or are not linearizable, and long random histories recorded from an
 * in-memory register that is linearizable by construction (and a corrupted copy that is not).
 *
 * @module
 */

import assert from "node:assert/strict";
import { mulberry32 } from "../_util/random_ops.ts";
import {
  checkHistory,
  describeOperation,
  type Input,
  type Operation,
  type Output,
} from "../_util/linearizability.ts";

/** Shorthand for one operation on key "/k" unless another key is given. */
function op(
  client: number,
  input: Input,
  output: Output,
  call: number,
  ret: number,
  key = "/k",
): Operation {
  return { client, key, input, output, call, ret };
}

const create = (data: string): Input => ({ op: "create", data });
const set = (data: string, version = -1): Input => ({ op: "set", data, version });
const del = (version = -1): Input => ({ op: "delete", version });
const get: Input = { op: "get" };
const ok: Output = { ok: true };
const okVersion = (version: number): Output => ({ ok: true, version });
const read = (data: string, version: number): Output => ({ ok: true, data, version });
const NONODE: Output = { err: "NONODE" };
const NODEEXISTS: Output = { err: "NODEEXISTS" };
const BADVERSION: Output = { err: "BADVERSION" };
const UNKNOWN: Output = { unknown: true };

Deno.test("a sequential history of creates, sets, gets and deletes is linearizable", () => {
  const history = [
    op(0, get, NONODE, 0, 1),
    op(0, create("a"), ok, 2, 3),
    op(1, create("b"), NODEEXISTS, 4, 5),
    op(1, get, read("a", 0), 6, 7),
    op(0, set("b", 0), okVersion(1), 8, 9),
    op(1, set("c", 0), BADVERSION, 10, 11),
    op(1, set("c"), okVersion(2), 12, 13),
    op(0, get, read("c", 2), 14, 15),
    op(0, del(1), BADVERSION, 16, 17),
    op(1, del(2), ok, 18, 19),
    op(0, del(), NONODE, 20, 21),
    op(0, set("d"), NONODE, 22, 23),
    op(1, get, NONODE, 24, 25),
    op(1, create("e"), ok, 26, 27),
    op(0, get, read("e", 0), 28, 29),
  ];
  const result = checkHistory(history);
  assert.deepEqual(result, { ok: true, keys: 1, operations: history.length });
});

Deno.test("a get that returns a value no write produced is not linearizable", () => {
  const history = [
    op(0, create("a"), ok, 0, 1, "/x"),
    op(1, get, read("a", 0), 2, 3, "/x"),
    op(0, create("a"), ok, 0, 1, "/y"),
    op(1, get, read("zz", 0), 2, 3, "/y"),
  ];
  const result = checkHistory(history);
  assert.equal(result.ok, false);
  assert.equal(result.timedOut, undefined);
  assert.equal(result.key, "/y");
  assert.equal(result.keys, 2);
  assert.match(result.explanation ?? "", /key "\/y" is not linearizable/);
  assert.match(result.explanation ?? "", /longest linearizable prefix found: 1 operations/);
  assert.match(result.explanation ?? "", /client 1: get "\/y" -> ok data="zz" version=0 \[2, 3\]/);
});

Deno.test("a stale read after an acknowledged set completed is not linearizable", () => {
  const base = [
    op(0, create("a"), ok, 0, 1),
    op(0, set("b"), okVersion(1), 2, 3),
  ];
  assert.equal(checkHistory([...base, op(1, get, read("b", 1), 4, 5)]).ok, true);
  const stale = checkHistory([...base, op(1, get, read("a", 0), 4, 5)]);
  assert.equal(stale.ok, false);
  assert.equal(stale.key, "/k");
  // The same read overlapping the set may see the old value.
  assert.equal(checkHistory([...base, op(1, get, read("a", 0), 2.5, 5)]).ok, true);
});

Deno.test("concurrent sets may be ordered either way", () => {
  const prefix = [
    op(0, create("a"), ok, 0, 1),
    op(1, set("b"), okVersion(1), 2, 5),
    op(2, set("c"), okVersion(2), 3, 6),
  ];
  // Client 1's set reported version 1, so it went first; the later get sees "c" version 2.
  assert.equal(checkHistory([...prefix, op(0, get, read("c", 2), 7, 8)]).ok, true);
  const swapped = [
    op(0, create("a"), ok, 0, 1),
    op(1, set("b"), okVersion(2), 2, 5),
    op(2, set("c"), okVersion(1), 3, 6),
  ];
  assert.equal(checkHistory([...swapped, op(0, get, read("b", 2), 7, 8)]).ok, true);
  // Sets whose replies leave out the version: either order is possible, but not both at once.
  const blind = [
    op(0, create("a"), ok, 0, 1),
    op(1, set("b"), ok, 2, 5),
    op(2, set("c"), ok, 3, 6),
  ];
  assert.equal(checkHistory([...blind, op(0, get, read("b", 2), 7, 8)]).ok, true);
  assert.equal(checkHistory([...blind, op(0, get, read("c", 2), 7, 8)]).ok, true);
  const both = [...blind, op(0, get, read("b", 2), 7, 8), op(0, get, read("c", 2), 9, 10)];
  assert.equal(checkHistory(both).ok, false);
  // The loser's value is never current after both returned.
  assert.equal(checkHistory([...prefix, op(0, get, read("b", 1), 7, 8)]).ok, false);
});

Deno.test("a write with an unknown outcome may have taken effect or not", () => {
  const prefix = [
    op(0, create("a"), ok, 0, 1),
    op(1, set("b"), UNKNOWN, 2, 3),
  ];
  assert.equal(checkHistory([...prefix, op(0, get, read("b", 1), 10, 11)]).ok, true);
  assert.equal(checkHistory([...prefix, op(0, get, read("a", 0), 10, 11)]).ok, true);
  // It may even take effect long after its client gave up, but only once.
  const late = [
    ...prefix,
    op(0, get, read("a", 0), 10, 11),
    op(0, get, read("b", 1), 12, 13),
  ];
  assert.equal(checkHistory(late).ok, true);
  const back = [...late, op(0, get, read("a", 0), 14, 15)];
  assert.equal(checkHistory(back).ok, false);
  // Nor before it was called.
  const early = [
    op(0, create("a"), ok, 0, 1),
    op(0, get, read("b", 1), 2, 3),
    op(1, set("b"), UNKNOWN, 4, 5),
  ];
  assert.equal(checkHistory(early).ok, false);
  // An unknown get is dropped, whatever it would have seen.
  const withUnknownGet = [...prefix, op(2, get, UNKNOWN, 4, 5)];
  assert.deepEqual(checkHistory(withUnknownGet), { ok: true, keys: 1, operations: 2 });
});

Deno.test("a write with an unknown outcome may take effect long after its call", () => {
  const history = [op(0, create("a"), ok, 0, 1), op(1, set("b"), UNKNOWN, 2, 3)];
  for (let t = 4; t < 100; t += 2) history.push(op(0, get, read("a", 0), t, t + 1));
  history.push(op(0, get, read("b", 1), 200, 201));
  assert.equal(checkHistory(history).ok, true);
  history.push(op(0, get, read("a", 0), 202, 203));
  assert.equal(checkHistory(history).ok, false);
});

Deno.test("an unknown write takes effect only where its version precondition holds", () => {
  const history = [
    op(0, create("a"), ok, 0, 1),
    op(1, set("b", 5), UNKNOWN, 2, 3),
    op(0, get, read("b", 1), 4, 5),
  ];
  assert.equal(checkHistory(history).ok, false);
  const unknownCreate = [
    op(0, create("a"), ok, 0, 1),
    op(1, create("b"), UNKNOWN, 2, 3),
    op(0, get, read("b", 0), 4, 5),
  ];
  assert.equal(checkHistory(unknownCreate).ok, false);
  const afterDelete = [
    op(0, create("a"), ok, 0, 1),
    op(1, create("b"), UNKNOWN, 2, 3),
    op(0, del(), ok, 4, 5),
    op(0, get, read("b", 0), 6, 7),
  ];
  assert.equal(checkHistory(afterDelete).ok, true);
});

Deno.test("an acknowledged create that a later read cannot see is not linearizable", () => {
  const created = [op(0, create("a"), ok, 0, 1)];
  assert.equal(checkHistory([...created, op(1, get, read("a", 0), 2, 3)]).ok, true);
  const result = checkHistory([...created, op(1, get, NONODE, 2, 3)]);
  assert.equal(result.ok, false);
  assert.match(result.explanation ?? "", /state after the prefix: data="a" version=0/);
  assert.match(result.explanation ?? "", /client 1: get "\/k" -> NONODE \[2, 3\]/);
  // A read concurrent with the create may miss it.
  assert.equal(checkHistory([...created, op(1, get, NONODE, 0.5, 3)]).ok, true);
});

Deno.test("two creates of the same key both acknowledged is not linearizable", () => {
  const one = [op(0, create("a"), ok, 0, 2), op(1, create("b"), NODEEXISTS, 1, 3)];
  assert.equal(checkHistory(one).ok, true);
  const both = [op(0, create("a"), ok, 0, 2), op(1, create("b"), ok, 1, 3)];
  const result = checkHistory(both);
  assert.equal(result.ok, false);
  assert.match(result.explanation ?? "", /could not be placed/);
  // Unless a delete in between explains it.
  const withDelete = [...both, op(2, del(), ok, 0.5, 2.5)];
  assert.equal(checkHistory(withDelete).ok, true);
});

Deno.test("set versions must be consecutive", () => {
  const created = [op(0, create("a"), ok, 0, 1)];
  assert.equal(checkHistory([...created, op(0, set("b"), okVersion(1), 2, 3)]).ok, true);
  assert.equal(checkHistory([...created, op(0, set("b"), okVersion(2), 2, 3)]).ok, false);
  assert.equal(checkHistory([...created, op(0, set("b", 0), okVersion(1), 2, 3)]).ok, true);
  assert.equal(checkHistory([...created, op(0, set("b", 1), okVersion(2), 2, 3)]).ok, false);
  assert.equal(checkHistory([...created, op(0, set("b", 1), BADVERSION, 2, 3)]).ok, true);
  assert.equal(checkHistory([...created, op(0, set("b", 0), BADVERSION, 2, 3)]).ok, false);
});

Deno.test("a get must report the current version as well as the data", () => {
  const history = [op(0, create("a"), ok, 0, 1), op(0, set("a"), okVersion(1), 2, 3)];
  assert.equal(checkHistory([...history, op(1, get, read("a", 1), 4, 5)]).ok, true);
  assert.equal(checkHistory([...history, op(1, get, read("a", 0), 4, 5)]).ok, false);
  assert.equal(checkHistory([...history, op(1, get, read("a", 2), 4, 5)]).ok, false);
});

Deno.test("operations that meet at one instant are concurrent", () => {
  // The get is called at the very time the create returns: either order is allowed.
  const history = [op(0, create("a"), ok, 0, 1), op(1, get, NONODE, 1, 2)];
  assert.equal(checkHistory(history).ok, true);
  const after = [op(0, create("a"), ok, 0, 1), op(1, get, NONODE, 1.001, 2)];
  assert.equal(checkHistory(after).ok, false);
});

Deno.test("the initial state of each key comes from the caller", () => {
  const history = [op(0, get, read("seed", 4), 0, 1), op(0, set("x", 4), okVersion(5), 2, 3)];
  assert.equal(checkHistory(history).ok, false);
  const initial = new Map([["/k", { data: "seed", version: 4 }]]);
  assert.equal(checkHistory(history, { initial }).ok, true);
});

Deno.test("an operation is described with its client, input, output and times", () => {
  const text = describeOperation(op(3, set("v", 2), okVersion(3), 1.23456, 7, "/a"));
  assert.equal(text, 'client 3: set "/a" data="v" version=2 -> ok version=3 [1.235, 7]');
  assert.equal(
    describeOperation(op(1, del(), UNKNOWN, 5, 6, "/a")),
    'client 1: delete "/a" version=-1 -> unknown (connection lost) [5, ∞]',
  );
  assert.throws(() => checkHistory([op(0, get, NONODE, 5, 4)]), RangeError);
});

Deno.test("a search that runs out of its time budget reports timedOut instead of a verdict", () => {
  const history = [op(0, create("a"), ok, 0, 1), op(1, get, read("a", 0), 2, 3)];
  assert.equal(checkHistory(history).ok, true);
  const result = checkHistory(history, { timeoutMs: 0 });
  assert.equal(result.ok, false);
  assert.equal(result.timedOut, true);
  assert.equal(result.key, "/k");
  assert.match(result.explanation ?? "", /ran out of time/);
});

// ---------------------------------------------------------------------------
// Random histories from a linearizable register

interface Plan {
  op: Operation;
  /** When the register applies it, between call and return; Infinity when it never does. */
  at: number;
}

/**
 * A history of `count` operations by `clients` clients over `keys`, recorded from in-memory
 * znodes that apply every operation atomically at a random instant between its call and return.
 * A fraction `unknown` of operations report an unknown outcome; half of those never took effect.
 */
function randomHistory(
  seed: number,
  count: number,
  clients: number,
  keys: string[],
  unknown: number,
): Operation[] {
  const rand = mulberry32(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const plans: Plan[] = [];
  const clock = new Array<number>(clients).fill(0);
  for (let i = 0; i < count; i++) {
    const client = int(clients);
    const call = clock[client] + rand() * 2;
    const ret = call + 0.1 + rand() * 4;
    clock[client] = ret;
    const data = `c${client}-${i}`;
    const version = rand() < 0.5 ? -1 : int(4);
    const kind = rand();
    const input: Input = kind < 0.15
      ? { op: "create", data }
      : kind < 0.5
      ? { op: "set", data, version }
      : kind < 0.6
      ? { op: "delete", version }
      : { op: "get" };
    const isUnknown = rand() < unknown;
    const at = isUnknown && rand() < 0.5 ? Infinity : call + rand() * (ret - call);
    const output: Output = isUnknown ? { unknown: true } : { ok: true };
    plans.push({ op: { client, key: keys[int(keys.length)], input, output, call, ret }, at });
  }
  const state = new Map<string, { data: string; version: number } | null>();
  for (const plan of [...plans].sort((a, b) => a.at - b.at)) {
    if (plan.at === Infinity) break;
    const { key, input } = plan.op;
    const current = state.get(key) ?? null;
    const [next, output] = apply(current, input);
    state.set(key, next);
    if (!("unknown" in plan.op.output)) plan.op.output = output;
  }
  return plans.map((p) => p.op);
}

/** The register: the next state and the output of one operation. */
function apply(
  state: { data: string; version: number } | null,
  input: Input,
): [{ data: string; version: number } | null, Output] {
  switch (input.op) {
    case "create":
      if (state !== null) return [state, { err: "NODEEXISTS" }];
      return [{ data: input.data, version: 0 }, { ok: true }];
    case "set":
      if (state === null) return [state, { err: "NONODE" }];
      if (input.version !== -1 && input.version !== state.version) {
        return [state, { err: "BADVERSION" }];
      }
      return [{ data: input.data, version: state.version + 1 }, {
        ok: true,
        version: state.version + 1,
      }];
    case "delete":
      if (state === null) return [state, { err: "NONODE" }];
      if (input.version !== -1 && input.version !== state.version) {
        return [state, { err: "BADVERSION" }];
      }
      return [null, { ok: true }];
    case "get":
      if (state === null) return [state, { err: "NONODE" }];
      return [state, { ok: true, data: state.data, version: state.version }];
  }
}

/** A copy of the history where one successful get reports data that no write produced. */
function corruptOneGet(history: Operation[], seed: number): Operation[] {
  const copy = history.map((o) => ({ ...o }));
  const reads = copy.filter((o) => o.input.op === "get" && "ok" in o.output);
  const victim = reads[Math.floor(mulberry32(seed)() * reads.length)];
  victim.output = { ...victim.output, data: "never written" } as Output;
  return copy;
}

Deno.test(
  "a long random history generated from a real linearizable register with 8 concurrent clients is accepted in under a few seconds",
  () => {
    const history = randomHistory(42, 3000, 8, ["/a", "/b", "/c"], 0.05);
    const t0 = performance.now();
    const result = checkHistory(history, { timeoutMs: 20_000 });
    const ms = performance.now() - t0;
    console.log(
      `linearizability: ${result.operations} operations on ${result.keys} keys, 8 clients, ` +
        `checked in ${ms.toFixed(0)} ms`,
    );
    assert.equal(result.ok, true, result.explanation ?? "");
    assert.ok(ms < 5_000, `took ${ms.toFixed(0)} ms`);

    const corrupted = checkHistory(corruptOneGet(history, 7), { timeoutMs: 20_000 });
    assert.equal(corrupted.ok, false);
    assert.equal(corrupted.timedOut, undefined);
    assert.match(corrupted.explanation ?? "", /never written/);
  },
);

Deno.test("5,000 operations on one key by 16 concurrent clients are checked in seconds", () => {
  const history = randomHistory(2024, 5000, 16, ["/hot"], 0.02);
  const t0 = performance.now();
  const result = checkHistory(history, { timeoutMs: 20_000 });
  const ms = performance.now() - t0;
  console.log(`linearizability: 5000 operations on one key, 16 clients, ${ms.toFixed(0)} ms`);
  assert.equal(result.ok, true, result.explanation ?? "");
  assert.ok(ms < 10_000, `took ${ms.toFixed(0)} ms`);

  // Proving a history wrong means ruling out every order, which is harder: near its end.
  const sure = randomHistory(2025, 5000, 16, ["/hot"], 0);
  const reads = sure.filter((o) => o.input.op === "get" && "ok" in o.output);
  reads[reads.length - 10].output = { ok: true, data: "never written", version: 0 };
  const t1 = performance.now();
  const corrupted = checkHistory(sure, { timeoutMs: 20_000 });
  console.log(`linearizability: rejected in ${(performance.now() - t1).toFixed(0)} ms`);
  assert.equal(corrupted.ok, false);
  assert.equal(corrupted.timedOut, undefined);
});
