/**
 * A linearizability checker for histories of ZooKeeper operations, in the
 * style of Porcupine: the Wing & Gong / Lowe ("WGL") depth-first search with
 * backtracking and memoization, written from scratch.
 *
 * Every key is one znode, whose state is `null` (absent) or its data and
 * version. A history is the list of operations several clients ran, each with
 * the times it was called and returned; it is linearizable when every
 * operation can be given one instant between its call and its return such that
 * applying the operations one after another in that order gives exactly the
 * outputs that were observed. Linearizability is compositional, so each key is
 * checked on its own.
 *
 * An operation whose outcome is unknown (the client saw ConnectionLoss) may
 * have taken effect at any instant after its call, or never: its return time is
 * +Infinity and it need not be linearized at all. An unknown `get` has no
 * effect and is dropped.
 *
 * ```ts
 * const result = checkHistory(history, { timeoutMs: 10_000 });
 * if (!result.ok) throw new Error(result.explanation);
 * ```
 *
 * @module
 */

/** What a client asked for, on one key (one znode). A `version` of -1 matches any version. */
export type Input =
  | { op: "create"; data: string }
  | { op: "set"; data: string; version: number }
  | { op: "delete"; version: number }
  | { op: "get" };

/**
 * What the client saw: success (a set reports the new version, a get the data and version), one of
 * the errors, or no answer at all (`unknown`: the operation may or may not have taken effect).
 */
export type Output =
  | { ok: true; version?: number; data?: string }
  | { err: "NONODE" | "NODEEXISTS" | "BADVERSION" }
  | { unknown: true };

/** One operation of a history. */
export interface Operation {
  /** Which client ran it; a client runs one operation at a time. */
  client: number;
  /** The key (znode) it acted on. */
  key: string;
  input: Input;
  output: Output;
  /** When it was called, on a monotonic clock such as `performance.now()`. */
  call: number;
  /** When it returned, on the same clock; ignored when the output is unknown. */
  ret: number;
}

/** The state of one key: absent (`null`), or its data and version (0 on create, +1 per set). */
export type ZnodeState = { data: string; version: number } | null;

/** The verdict of {@linkcode checkHistory}. */
export interface CheckResult {
  /** Whether every key's history is linearizable. */
  ok: boolean;
  /** How many keys the history touched (after dropping unknown gets). */
  keys: number;
  /** How many operations were checked (unknown gets are dropped, not counted). */
  operations: number;
  /** When !ok: the key whose history is not linearizable, or could not be decided in time. */
  key?: string;
  /**
   * When !ok: a human-readable explanation naming the failing key, the longest linearizable prefix
   * found and the operations that could not be placed after it, each printed as client, input,
   * output and [call, ret].
   */
  explanation?: string;
  /** True when the search hit the time budget before deciding (then `ok` is false). */
  timedOut?: boolean;
}

/** Options of {@linkcode checkHistory}. */
export interface CheckOptions {
  /** The state of each key before the history began; a key not in the map starts absent. */
  initial?: Map<string, ZnodeState>;
  /** The time budget for the whole history, in milliseconds (default 30000). */
  timeoutMs?: number;
}

/** How many operations of the longest linearizable prefix an explanation prints. */
const PREFIX_SHOWN = 20;

/**
 * Checks that a history of operations on znodes is linearizable, key by key.
 *
 * Throws a RangeError when an operation's times are not numbers or it returned before it was
 * called. Returns `ok: false, timedOut: true` when the budget ran out before a verdict.
 */
export function checkHistory(history: Operation[], options: CheckOptions = {}): CheckResult {
  const deadline = performance.now() + (options.timeoutMs ?? 30_000);
  const byKey = new Map<string, Operation[]>();
  let operations = 0;
  for (const op of history) {
    validate(op);
    if (op.input.op === "get" && isUnknown(op.output)) continue;
    let ops = byKey.get(op.key);
    if (ops === undefined) {
      ops = [];
      byKey.set(op.key, ops);
    }
    ops.push(op);
    operations++;
  }
  for (const [key, ops] of byKey) {
    const initial = options.initial?.get(key) ?? null;
    const verdict = checkKey(key, ops, initial, deadline);
    if (!verdict.ok) {
      const result: CheckResult = {
        ok: false,
        keys: byKey.size,
        operations,
        key,
        explanation: verdict.explanation,
      };
      if (verdict.timedOut) result.timedOut = true;
      return result;
    }
  }
  return { ok: true, keys: byKey.size, operations };
}

/**
 * Checks one key. Operations with unknown outcome make the search much wider, as each may take
 * effect at any later point; but one that took effect usually did so soon after its call. So when
 * there are some, a first search lets each take effect only up to twice the longest duration of an
 * operation with known outcome after its call. A linearization found that way is a linearization;
 * if none is found, the exact search decides. If that one runs out of time, the explanation also
 * gives the narrower search's, which is often the better clue.
 */
function checkKey(key: string, ops: Operation[], initial: ZnodeState, deadline: number): Verdict {
  let longest = 0;
  let unknown = false;
  for (const op of ops) {
    if (isUnknown(op.output)) unknown = true;
    else longest = Math.max(longest, op.ret - op.call);
  }
  if (!unknown) return new KeySearch(key, ops, initial, deadline, Infinity).run();
  const horizon = 2 * longest;
  const quick = new KeySearch(key, ops, initial, deadline, horizon).run();
  if (quick.ok || quick.timedOut) return quick;
  const exact = new KeySearch(key, ops, initial, deadline, Infinity).run();
  if (!exact.timedOut) return exact;
  return {
    ok: false,
    timedOut: true,
    explanation:
      `${exact.explanation}\n\nA narrower search, in which each operation with unknown ` +
      `outcome takes effect within ${formatTime(horizon)} of its call or never, found no ` +
      `linearization:\n${quick.explanation}`,
  };
}

/**
 * One operation on one line: client, input, output and [call, ret], e.g.
 * `client 2: set "/a" data="x" version=-1 -> ok version=3 [10.5, 12]`.
 */
export function describeOperation(op: Operation): string {
  const ret = isUnknown(op.output) ? "∞" : formatTime(op.ret);
  return `client ${op.client}: ${describeInput(op.key, op.input)} -> ${
    describeOutput(op.output)
  } [${formatTime(op.call)}, ${ret}]`;
}

function describeInput(key: string, input: Input): string {
  const k = JSON.stringify(key);
  switch (input.op) {
    case "create":
      return `create ${k} data=${JSON.stringify(input.data)}`;
    case "set":
      return `set ${k} data=${JSON.stringify(input.data)} version=${input.version}`;
    case "delete":
      return `delete ${k} version=${input.version}`;
    case "get":
      return `get ${k}`;
  }
}

function describeOutput(output: Output): string {
  if (isUnknown(output)) return "unknown (connection lost)";
  if ("err" in output) return output.err;
  let text = "ok";
  if (output.data !== undefined) text += ` data=${JSON.stringify(output.data)}`;
  if (output.version !== undefined) text += ` version=${output.version}`;
  return text;
}

function describeState(state: ZnodeState): string {
  return state === null ? "absent" : `data=${JSON.stringify(state.data)} version=${state.version}`;
}

function formatTime(t: number): string {
  return String(Math.round(t * 1000) / 1000);
}

function isUnknown(output: Output): output is { unknown: true } {
  return "unknown" in output && output.unknown === true;
}

function validate(op: Operation): void {
  if (typeof op.call !== "number" || !Number.isFinite(op.call)) {
    throw new RangeError(`operation has no finite call time: ${describeOperation(op)}`);
  }
  if (isUnknown(op.output)) return;
  if (typeof op.ret !== "number" || !Number.isFinite(op.ret) || op.ret < op.call) {
    throw new RangeError(`operation returned before it was called: ${describeOperation(op)}`);
  }
}

// ---------------------------------------------------------------------------
// The model

/**
 * The state after `input` took effect in `state` and produced `output`, or undefined when that
 * output is impossible in that state. An unknown output stands for success: an unknown operation
 * that failed had no effect, which is the same as never linearizing it.
 */
function step(state: ZnodeState, input: Input, output: Output): ZnodeState | undefined {
  const unknown = isUnknown(output);
  const err = "err" in output ? output.err : undefined;
  switch (input.op) {
    case "create": {
      if (err === "NODEEXISTS") return state !== null ? state : undefined;
      if (err !== undefined || state !== null) return undefined;
      return { data: input.data, version: 0 };
    }
    case "set": {
      if (err === "NONODE") return state === null ? state : undefined;
      if (state === null) return undefined;
      const matches = input.version === -1 || input.version === state.version;
      if (err === "BADVERSION") return matches ? undefined : state;
      if (err !== undefined || !matches) return undefined;
      const version = state.version + 1;
      // A set's reply carries the new version; a history may leave it out.
      if (
        !unknown && "ok" in output && output.version !== undefined && output.version !== version
      ) {
        return undefined;
      }
      return { data: input.data, version };
    }
    case "delete": {
      if (err === "NONODE") return state === null ? state : undefined;
      if (state === null) return undefined;
      const matches = input.version === -1 || input.version === state.version;
      if (err === "BADVERSION") return matches ? undefined : state;
      if (err !== undefined || !matches) return undefined;
      return null;
    }
    case "get": {
      if (unknown) return undefined; // dropped before the search; never linearized
      if (err === "NONODE") return state === null ? state : undefined;
      if (err !== undefined || state === null || !("ok" in output)) return undefined;
      if (output.data !== state.data) return undefined;
      if (output.version !== undefined && output.version !== state.version) return undefined;
      return state;
    }
  }
}

// ---------------------------------------------------------------------------
// The search

/** A call or return event of an operation with known outcome, in a doubly linked list. */
interface Entry {
  /** The operation's index in the key's operations (sorted by call time). */
  id: number;
  isCall: boolean;
  /** Rank in the order of all events: by time, calls before returns at equal times. */
  rank: number;
  /** A call entry's return entry; null for return entries. */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

/** One level of the search stack: the operation linearized there and how to resume after it. */
interface Frame {
  id: number;
  /** The call entry of an operation with known outcome; null for one with unknown outcome. */
  entry: Entry | null;
  /** The state before the operation. */
  state: ZnodeState;
  /** For an operation with unknown outcome: the level's `limit` and its index in `unknownIds`. */
  limit: number;
  index: number;
  /** Whether it was a read linearized as soon as it fit (see {@linkcode KeySearch.run}). */
  forced: boolean;
}

interface Verdict {
  ok: boolean;
  explanation?: string;
  timedOut?: boolean;
}

/**
 * The WGL search over one key's operations.
 *
 * Operations with a known outcome have a call and a return entry in a doubly linked list, ordered
 * by time (calls first at equal times); the list loses an operation's entries while it is
 * linearized. Operations with unknown outcome are an array ordered by call: their return is at
 * +Infinity, so those called before the first pending return are candidates at any point.
 *
 * At each level the search tries, in order, the known calls before the first pending return, then
 * those unknown operations: it applies the first whose output the model allows and whose
 * configuration (linearized operations and state) the memo does not cover, and starts the next
 * level. When no candidate is left it backtracks: it puts the last linearized operation back and
 * tries the candidates after it. The history is linearizable as soon as every operation with a
 * known outcome has been linearized; operations with unknown outcome may be left out.
 *
 * Operations with unknown outcome can stand in for many missing effects, so the search limits how
 * it uses them, in ways that keep it exact:
 *
 * - It tries them last, so it assumes they had no effect until an observation forces otherwise.
 * - Two of them with the same kind and version whose data no get returned are interchangeable:
 *   only the first not yet linearized is tried.
 * - One is only placed right before another of them, or before a known operation that it affects:
 *   when that operation would give the same state with the unknown one moved after it (or left
 *   out), the order is skipped, since moving an operation with unknown outcome later is always
 *   allowed by real time. This depends on the last operation and the state before it, so they are
 *   part of the memo key of a configuration reached by an operation with unknown outcome.
 * - A configuration is pruned when the memo holds one with the same known operations, state and
 *   last operation whose set of linearized unknown operations is a subset of this one's: having
 *   more of them left cannot make it worse.
 * - Data that no get returned is not told apart in the memo (no later operation can tell).
 *
 * With a finite `horizon`, an operation with unknown outcome may only take effect before any
 * operation called more than `horizon` after its own call: the search is then narrower, and a
 * linearization it finds is still a linearization.
 */
class KeySearch {
  readonly #key: string;
  readonly #ops: Operation[];
  readonly #initial: ZnodeState;
  readonly #deadline: number;
  /** The head of the list of entries of operations with known outcome. */
  readonly #head: Entry;
  /** The operations with unknown outcome, by call. */
  readonly #unknownIds: number[] = [];
  /** Each operation's call rank among all events. */
  readonly #callRank: Int32Array;
  /** For each operation with unknown outcome: the latest call time it may still precede. */
  readonly #expiry: Float64Array;
  /** For an operation with unknown outcome: the previous one it is interchangeable with, or -1. */
  readonly #twin: Int32Array;
  /** The data values that some get of the history returned. */
  readonly #observed = new Set<string>();
  readonly #linearized: LinearizedSet;
  readonly #memo = new Memo();
  readonly #stack: Frame[] = [];
  /** The ids of the operations on the stack, for cheap copies of the best prefix. */
  readonly #stackIds: Int32Array;
  /** The latest call time among the operations on the stack, at each depth. */
  readonly #maxCall: Float64Array;
  #bestPrefix: Int32Array | null = null;
  #bestCandidates: number[] = [];

  constructor(
    key: string,
    ops: Operation[],
    initial: ZnodeState,
    deadline: number,
    horizon: number,
  ) {
    this.#key = key;
    // Stable sort by call time: ids then follow the calls, and so do the bits of the memo key.
    this.#ops = [...ops].sort((a, b) => a.call - b.call);
    this.#initial = initial;
    this.#deadline = deadline;
    const n = this.#ops.length;
    this.#linearized = new LinearizedSet(this.#ops.map((op) => !isUnknown(op.output)));
    this.#stackIds = new Int32Array(n);
    this.#maxCall = new Float64Array(n);
    this.#callRank = new Int32Array(n);
    this.#expiry = new Float64Array(this.#ops.map((op) => op.call + horizon));
    for (const op of this.#ops) {
      if (op.input.op === "get" && "ok" in op.output && op.output.data !== undefined) {
        this.#observed.add(op.output.data);
      }
    }
    this.#twin = this.#findTwins();
    this.#head = newEntry(-1, false);
    this.#buildList();
  }

  #findTwins(): Int32Array {
    const twin = new Int32Array(this.#ops.length).fill(-1);
    const last = new Map<string, number>();
    this.#ops.forEach((op, id) => {
      if (!isUnknown(op.output)) return;
      const input = op.input;
      let effect: string;
      if (input.op === "delete") effect = `delete ${input.version}`;
      else if (input.op === "create" && !this.#observed.has(input.data)) effect = "create";
      else if (input.op === "set" && !this.#observed.has(input.data)) {
        effect = `set ${input.version}`;
      } else return;
      twin[id] = last.get(effect) ?? -1;
      last.set(effect, id);
    });
    return twin;
  }

  #buildList(): void {
    const events: { entry: Entry; time: number }[] = [];
    this.#ops.forEach((op, id) => {
      const call = newEntry(id, true);
      events.push({ entry: call, time: op.call });
      if (!isUnknown(op.output)) {
        call.match = newEntry(id, false);
        events.push({ entry: call.match, time: op.ret });
      }
    });
    events.sort((a, b) => {
      if (a.time !== b.time) return a.time - b.time;
      if (a.entry.isCall !== b.entry.isCall) return a.entry.isCall ? -1 : 1;
      return a.entry.id - b.entry.id;
    });
    let last = this.#head;
    events.forEach(({ entry }, rank) => {
      entry.rank = rank;
      if (entry.isCall) this.#callRank[entry.id] = rank;
      if (entry.isCall && entry.match === null) {
        this.#unknownIds.push(entry.id);
      } else {
        last.next = entry;
        entry.prev = last;
        last = entry;
      }
    });
  }

  /**
   * Runs the search. At each level, `entry` first walks the list from its head to the first
   * pending return; then `limit` is that return's rank and `index` walks `unknownIds` from the
   * first one not expired to the first called at or after `limit`.
   *
   * A level starts by looking for a read: a candidate with known outcome that leaves the state as
   * it is (a get, or any error). If one fits the state, it is linearized right away and the level
   * tries nothing else: any linearization that places it later can place it here instead, since it
   * changes nothing for the operations in between and all that must precede it already do.
   */
  run(): Verdict {
    let remaining = this.#ops.length - this.#unknownIds.length;
    if (remaining === 0) return { ok: true };

    let state = this.#initial;
    let entry: Entry | null = this.#head.next;
    let limit = Infinity;
    let index = -1;
    let fresh = true;
    let iterations = 0;
    for (;;) {
      if ((iterations++ & 1023) === 0 && performance.now() >= this.#deadline) {
        this.#recordBestIfDeeper();
        return { ok: false, timedOut: true, explanation: this.#explain(true) };
      }
      const depth = this.#stack.length;
      const maxCall = depth > 0 ? this.#maxCall[depth - 1] : -Infinity;
      let id = -1;
      let forced = false;
      if (fresh) {
        fresh = false;
        const read = this.#findRead(state);
        if (read === null) continue; // no read fits: try every candidate
        id = read.id;
        forced = true;
        entry = read;
      } else if (index < 0) {
        if (entry === null) throw new Error("unreachable: no pending return");
        if (entry.isCall) {
          id = entry.id;
        } else {
          // The first pending return: after the known calls, try the unknown ones called before it.
          limit = entry.rank;
          index = this.#firstLive(maxCall);
          continue;
        }
      } else if (index < this.#unknownIds.length) {
        const candidate = this.#unknownIds[index];
        if (this.#callRank[candidate] < limit) {
          const twin = this.#twin[candidate];
          const skip = this.#linearized.has(candidate) ||
            // The interchangeable operation before it comes first.
            (twin !== -1 && !this.#linearized.has(twin) && this.#expiry[twin] >= maxCall);
          if (skip) {
            index++;
            continue;
          }
          id = candidate;
        }
      }

      if (id >= 0) {
        const op = this.#ops[id];
        const next = forced ? state : step(state, op.input, op.output);
        if (next !== undefined && (forced || !this.#movesPastTop(op, next))) {
          this.#linearized.add(id);
          let memoKey = this.#linearized.knownKey() + this.#serialize(next);
          if (index >= 0) memoKey += `^${id}^${this.#serialize(state)}`;
          if (this.#memo.add(memoKey, this.#linearized.unknownBits())) {
            this.#stackIds[depth] = id;
            this.#maxCall[depth] = Math.max(maxCall, op.call);
            const known = index < 0 ? entry : null;
            this.#stack.push({ id, entry: known, state, limit, index, forced });
            state = next;
            if (known !== null) {
              lift(known);
              if (--remaining === 0) return { ok: true };
            }
            entry = this.#head.next;
            limit = Infinity;
            index = -1;
            fresh = true;
            continue;
          }
          this.#linearized.delete(id);
        }
        if (!forced) {
          if (index < 0) entry = entry!.next;
          else index++;
          continue;
        }
        // The read's configuration was explored already: so was this level's.
      }

      // No candidate left at this level: backtrack, past levels that had a read.
      this.#recordBestIfDeeper();
      let frame: Frame | undefined;
      do {
        frame = this.#stack.pop();
        if (frame === undefined) return { ok: false, explanation: this.#explain(false) };
        this.#linearized.delete(frame.id);
        state = frame.state;
        if (frame.entry !== null) {
          unlift(frame.entry);
          remaining++;
        }
      } while (frame.forced);
      if (frame.entry !== null) {
        entry = frame.entry.next;
        limit = Infinity;
        index = -1;
      } else {
        limit = frame.limit;
        index = frame.index + 1;
      }
    }
  }

  /**
   * The call entry of a candidate with known outcome that fits `state` and leaves it as it is,
   * and may follow the operation on top of the stack (see `#movesPastTop`); or null.
   */
  #findRead(state: ZnodeState): Entry | null {
    for (let entry = this.#head.next; entry !== null && entry.isCall; entry = entry.next) {
      const op = this.#ops[entry.id];
      if (step(state, op.input, op.output) === state && !this.#movesPastTop(op, state)) {
        return entry;
      }
    }
    return null;
  }

  /** The index in `unknownIds` of the first operation not expired after a call at `maxCall`. */
  #firstLive(maxCall: number): number {
    let lo = 0;
    let hi = this.#unknownIds.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#expiry[this.#unknownIds[mid]] < maxCall) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Whether the operation on top of the stack has an unknown outcome and could as well be
   * linearized after `op` (or not at all) with the same result, given that applying `op` after it
   * gives `next`.
   */
  #movesPastTop(op: Operation, next: ZnodeState): boolean {
    if (isUnknown(op.output)) return false;
    const top = this.#stack.at(-1);
    if (top === undefined || top.entry !== null) return false;
    const unknown = this.#ops[top.id];
    const first = step(top.state, op.input, op.output);
    if (first === undefined) return false;
    const then = step(first, unknown.input, unknown.output);
    return this.#serialize(then === undefined ? first : then) === this.#serialize(next);
  }

  /**
   * A state as a string for the memo: absent is "-", present is the version then "=" and the data,
   * or "*" when no get of the history returned that data (so no later operation can tell it apart).
   */
  #serialize(state: ZnodeState): string {
    if (state === null) return "-";
    return this.#observed.has(state.data) ? `${state.version}=${state.data}` : `${state.version}*`;
  }

  /** Remembers the current stack and the candidates after it, if it is the deepest so far. */
  #recordBestIfDeeper(): void {
    const depth = this.#stack.length;
    if (this.#bestPrefix !== null && depth <= this.#bestPrefix.length) return;
    this.#bestPrefix = this.#stackIds.slice(0, depth);
    const candidates: number[] = [];
    let entry = this.#head.next;
    while (entry !== null && entry.isCall) {
      candidates.push(entry.id);
      entry = entry.next;
    }
    const limit = entry === null ? Infinity : entry.rank;
    const maxCall = depth > 0 ? this.#maxCall[depth - 1] : -Infinity;
    for (let i = this.#firstLive(maxCall); i < this.#unknownIds.length; i++) {
      const id = this.#unknownIds[i];
      if (this.#callRank[id] >= limit) break;
      if (!this.#linearized.has(id)) candidates.push(id);
    }
    this.#bestCandidates = candidates;
  }

  #explain(timedOut: boolean): string {
    const prefix = this.#bestPrefix ?? new Int32Array(0);
    const known = this.#ops.length - this.#unknownIds.length;
    const counts = `(${this.#ops.length} operations, ${known} with a known outcome)`;
    const lines = [
      timedOut
        ? `key ${JSON.stringify(this.#key)}: the linearizability check ran out of time ${counts}`
        : `key ${JSON.stringify(this.#key)} is not linearizable ${counts}`,
      `initial state: ${describeState(this.#initial)}`,
      `longest linearizable prefix found: ${prefix.length} operations` +
      (prefix.length > 0 ? ", each followed by the state after it:" : ""),
    ];
    let state = this.#initial;
    const first = Math.max(0, prefix.length - PREFIX_SHOWN);
    if (first > 0) lines.push(`  ... ${first} earlier operations`);
    prefix.forEach((id, i) => {
      const op = this.#ops[id];
      const after = step(state, op.input, op.output);
      if (after !== undefined) state = after;
      if (i >= first) {
        lines.push(`  ${i + 1}. ${describeOperation(op)}  => ${describeState(state)}`);
      }
    });
    lines.push(`state after the prefix: ${describeState(state)}`);
    lines.push(
      timedOut
        ? "operations still to place after it:"
        : "operations that could not be placed after it (none fits the state, or each leads " +
          "to a dead end):",
    );
    for (const id of this.#bestCandidates) lines.push(`  ${describeOperation(this.#ops[id])}`);
    return lines.join("\n");
  }
}

/**
 * The memo of configurations already explored. Each is stored as a string key (the linearized
 * operations with a known outcome, the state, and for a configuration reached by an operation with
 * unknown outcome that operation and the state before it) and the bitset of linearized operations
 * with unknown outcome; a configuration is covered by one with the same key and a subset of those.
 */
class Memo {
  readonly #seen = new Map<string, Uint16Array[]>();
  /** The keys, when there are no operations with unknown outcome. */
  readonly #plain = new Set<string>();

  /** Adds the configuration and returns true, or returns false if the memo already covers it. */
  add(key: string, unknown: Uint16Array): boolean {
    if (unknown.length === 0) {
      if (this.#plain.has(key)) return false;
      this.#plain.add(key);
      return true;
    }
    const list = this.#seen.get(key);
    if (list === undefined) {
      this.#seen.set(key, [unknown.slice()]);
      return true;
    }
    for (const seen of list) if (isSubset(seen, unknown)) return false;
    // Drop the entries the new one covers, then add it.
    let kept = 0;
    for (const seen of list) if (!isSubset(unknown, seen)) list[kept++] = seen;
    list.length = kept;
    list.push(unknown.slice());
    return true;
  }
}

function isSubset(a: Uint16Array, b: Uint16Array): boolean {
  for (let i = 0; i < a.length; i++) if ((a[i] & ~b[i]) !== 0) return false;
  return true;
}

/**
 * The set of linearized operations of one key, as two bitsets: one over the operations with a known
 * outcome, one over the others, each numbered by call. Operations with a known outcome are
 * linearized roughly in call order, so that bitset is all ones below its lowest missing operation
 * (`lo`) and all zeros above its highest present one (`hi`): its string form for the memo is only
 * the words between, which keeps memo keys short however long the history.
 */
class LinearizedSet {
  readonly #known: Uint16Array;
  readonly #unknown: Uint16Array;
  /** Each operation's number among those with a known outcome, or among the others. */
  readonly #slot: Int32Array;
  readonly #isKnown: boolean[];
  readonly #knownCount: number;
  #lo = 0;
  #hi = -1;

  constructor(isKnown: boolean[]) {
    this.#isKnown = isKnown;
    this.#slot = new Int32Array(isKnown.length);
    let known = 0;
    let unknown = 0;
    isKnown.forEach((k, id) => {
      this.#slot[id] = k ? known++ : unknown++;
    });
    this.#knownCount = known;
    this.#known = new Uint16Array(Math.ceil(known / 16));
    this.#unknown = new Uint16Array(Math.ceil(unknown / 16));
  }

  has(id: number): boolean {
    const bits = this.#isKnown[id] ? this.#known : this.#unknown;
    const slot = this.#slot[id];
    return (bits[slot >>> 4] & (1 << (slot & 15))) !== 0;
  }

  add(id: number): void {
    const slot = this.#slot[id];
    if (!this.#isKnown[id]) {
      this.#unknown[slot >>> 4] |= 1 << (slot & 15);
      return;
    }
    this.#known[slot >>> 4] |= 1 << (slot & 15);
    if (slot > this.#hi) this.#hi = slot;
    while (this.#lo < this.#knownCount && this.#hasKnown(this.#lo)) this.#lo++;
  }

  delete(id: number): void {
    const slot = this.#slot[id];
    if (!this.#isKnown[id]) {
      this.#unknown[slot >>> 4] &= ~(1 << (slot & 15));
      return;
    }
    this.#known[slot >>> 4] &= ~(1 << (slot & 15));
    if (slot < this.#lo) this.#lo = slot;
    while (this.#hi >= 0 && !this.#hasKnown(this.#hi)) this.#hi--;
  }

  /**
   * The linearized operations with a known outcome as a string: the word holding `lo`, how many
   * words follow it up to `hi`, and those words as characters (all words before are full).
   */
  knownKey(): string {
    const first = this.#lo >>> 4;
    const last = Math.max(first, this.#hi >> 4);
    let key = `${first}.${last - first}.`;
    for (let i = first; i <= last && i < this.#known.length; i++) {
      key += String.fromCharCode(this.#known[i]);
    }
    return key;
  }

  /** The bitset of linearized operations with unknown outcome (a live view: copy to keep). */
  unknownBits(): Uint16Array {
    return this.#unknown;
  }

  #hasKnown(slot: number): boolean {
    return (this.#known[slot >>> 4] & (1 << (slot & 15))) !== 0;
  }
}

function newEntry(id: number, isCall: boolean): Entry {
  return { id, isCall, rank: -1, match: null, prev: null, next: null };
}

/** Removes a call entry and its return entry from the list. */
function lift(call: Entry): void {
  unlink(call);
  unlink(call.match!);
}

/** Undoes {@linkcode lift}; entries must be put back in the reverse order they were lifted. */
function unlift(call: Entry): void {
  relink(call.match!);
  relink(call);
}

function unlink(entry: Entry): void {
  entry.prev!.next = entry.next;
  if (entry.next !== null) entry.next.prev = entry.prev;
}

function relink(entry: Entry): void {
  entry.prev!.next = entry;
  if (entry.next !== null) entry.next.prev = entry;
}
