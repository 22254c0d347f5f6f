/**
 * A structure-aware fuzzer of the client protocol. Requests are generated
 * from the record declarations themselves (`PROTOCOL`, `src/zk/records.ts`):
 * every field gets a valid but hostile value (deep or malformed paths, bad
 * UTF-8, 1 MiB data, extreme integers, many or null vector elements), and
 * one structural fault may be injected on top: a length or count prefix
 * replaced (negative, huge, off by one), a wrong frame length, a truncated
 * body, trailing garbage, an unknown opcode, a request before the
 * handshake, or after closeSession.
 *
 * The runner sends each case on its own connection and waits for a reply or
 * for the server to close; it records which connections the server closed,
 * so the caller can check there is one log line for each.
 *
 * @module
 */

import type { JuteRecord, JuteType, JuteVector } from "../../src/jute/schema.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import { OpCode } from "../../src/zk/constants.ts";
import { PROTOCOL } from "../../src/zk/protocol.ts";
import * as R from "../../src/zk/records.ts";
import { RawClient } from "../_util/raw_client.ts";
import { mulberry32 } from "../_util/random_ops.ts";

/** A string field's bytes that are not UTF-8 (the writer cannot produce them). */
class RawString {
  constructor(readonly bytes: Uint8Array) {}
}

/** Structural faults; "none" sends the hostile values in a well-formed frame. */
export const FAULTS = [
  "none",
  "length-prefix",
  "frame-length",
  "truncated",
  "trailing-garbage",
  "unknown-opcode",
  "before-handshake",
  "after-close",
] as const;
/** One structural fault. */
export type Fault = (typeof FAULTS)[number];

/** One generated case. */
export interface FuzzCase {
  /** Opcode of the request (possibly unknown). */
  op: number;
  fault: Fault;
  /** Complete a handshake before sending `bytes`. */
  handshake: boolean;
  /** What is written after the handshake (if any), frames included. */
  bytes: Uint8Array;
}

const ONE_MIB = 1024 * 1024;
const BAD_UTF8 = [
  [0xff, 0xfe],
  [0x2f, 0xc0, 0xaf], // overlong "/"
  [0x2f, 0xed, 0xa0, 0x80], // a lone surrogate
  [0x2f, 0xe2, 0x82], // cut in the middle of a character
];
const OPS_WITH_REQUESTS = [...PROTOCOL.entries()]
  .filter(([, records]) => records.request !== null)
  .map(([op]) => op);
const WRITE_SUB_OPS = [
  OpCode.create,
  OpCode.create2,
  OpCode.createContainer,
  OpCode.createTTL,
  OpCode.delete,
  OpCode.setData,
  OpCode.check,
];
const READ_SUB_OPS = [OpCode.getData, OpCode.getChildren];

/** Generates fuzz cases from a seed. */
export class Fuzzer {
  readonly #random: () => number;

  constructor(seed: number) {
    this.#random = mulberry32(seed);
  }

  #int(n: number): number {
    return Math.floor(this.#random() * n);
  }

  #pick<T>(items: readonly T[]): T {
    return items[this.#int(items.length)];
  }

  #chance(p: number): boolean {
    return this.#random() < p;
  }

  #bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#int(256);
    return out;
  }

  /** A path-like string: mostly valid, often hostile. */
  #path(): string | null | RawString {
    switch (this.#int(12)) {
      case 0:
        return null;
      case 1:
        return "";
      case 2:
        return "/fz" + "/d".repeat(1 + this.#int(2000)); // deep
      case 3:
        return "/" + "n".repeat(1 + this.#int(200_000)); // long name
      case 4:
        return this.#pick(["//", "/a/", "x", "/a/./b", "/a/../b", "/a\u0000b", "/zookeeper/quota"]);
      case 5:
        return new RawString(Uint8Array.from(this.#pick(BAD_UTF8)));
      case 6:
        return "/fz/\u{1F600}\uFFFF\u0001";
      case 7:
        return "/";
      default:
        return `/fz${this.#chance(0.5) ? "" : `/c${this.#int(8)}`}`;
    }
  }

  #value(type: JuteType<unknown>, field: string): unknown {
    if ("fields" in type) {
      const rec = type as JuteRecord<Record<string, JuteType<unknown>>>;
      const out: Record<string, unknown> = {};
      for (const [name, t] of Object.entries(rec.fields)) out[name] = this.#value(t, name);
      return out;
    }
    if ("element" in type) {
      const { element } = type as JuteVector<unknown>;
      if (this.#chance(0.05)) return null; // count −1
      const n = this.#chance(0.05) ? 200 + this.#int(2000) : this.#int(4);
      return Array.from({ length: n }, () => this.#value(element, field));
    }
    switch (type.name) {
      case "int":
        return this.#pick([0, 1, -1, 31, 0x7fffffff, -0x80000000, this.#int(64) - 8]);
      case "long":
        return this.#pick([0n, -1n, 1n, 0x7fffffffffffffffn, -0x8000000000000000n, 1000n]);
      case "boolean":
        return this.#chance(0.5);
      case "buffer":
        if (this.#chance(0.1)) return null;
        if (this.#chance(0.02)) return new Uint8Array(ONE_MIB - this.#int(2) * 64); // ~1 MiB
        return this.#bytes(this.#int(64));
      case "ustring":
        if (field === "scheme") return this.#pick(["world", "digest", "ip", "auth", "sasl", "x"]);
        if (field === "id") return this.#pick(["anyone", "u:p", "127.0.0.1/33", "", "a:b:c"]);
        return this.#path();
      default:
        throw new Error(`no generator for jute type ${type.name}`);
    }
  }

  /** Writes `value` as `type`; the `corrupt`-th length prefix (0-based) is replaced. */
  #write(
    w: JuteWriter,
    type: JuteType<unknown>,
    value: unknown,
    state: { index: number; corrupt: number },
  ): void {
    const prefix = (real: number) => {
      const mine = state.index++ === state.corrupt;
      w.writeInt(
        mine ? this.#pick([-2, -1000, 0x7fffffff, real + 1, Math.max(0, real - 1), 1 << 30]) : real,
      );
    };
    if ("fields" in type) {
      const rec = type as JuteRecord<Record<string, JuteType<unknown>>>;
      const v = value as Record<string, unknown>;
      for (const [name, t] of Object.entries(rec.fields)) this.#write(w, t, v[name], state);
      return;
    }
    if ("element" in type) {
      const items = value as unknown[] | null;
      prefix(items === null ? -1 : items.length);
      for (const item of items ?? []) {
        this.#write(w, (type as JuteVector<unknown>).element, item, state);
      }
      return;
    }
    if (type.name === "buffer" || type.name === "ustring") {
      if (value === null) return prefix(-1);
      const bytes = value instanceof RawString
        ? value.bytes
        : value instanceof Uint8Array
        ? value
        : new TextEncoder().encode(value as string);
      prefix(bytes.byteLength);
      w.writeRaw(bytes);
      return;
    }
    type.write(w, value);
  }

  /** The body of a multi (or multiRead) request: sub-requests between MultiHeaders. */
  #multiBody(w: JuteWriter, read: boolean, state: { index: number; corrupt: number }): void {
    const n = this.#chance(0.05) ? 500 : this.#int(5);
    for (let i = 0; i < n; i++) {
      const type = this.#chance(0.05) ? 999 : this.#pick(read ? READ_SUB_OPS : WRITE_SUB_OPS);
      R.MultiHeader.write(w, { type, done: false, err: -1 });
      const request = PROTOCOL.get(type)?.request;
      if (request) this.#write(w, request, this.#value(request, ""), state);
    }
    if (!this.#chance(0.05)) R.MultiHeader.write(w, { type: -1, done: true, err: -1 });
  }

  /** The next case. */
  next(): FuzzCase {
    const fault = this.#pick(FAULTS);
    let op = this.#chance(0.15)
      ? this.#pick([OpCode.multi, OpCode.multiRead])
      : this.#pick(OPS_WITH_REQUESTS);
    if (fault === "unknown-opcode") op = this.#pick([10, 23, 99, 108, 999, -2, -12, 0x7fffffff]);
    const state = { index: 0, corrupt: fault === "length-prefix" ? this.#int(4) : -1 };
    const body = new JuteWriter();
    R.RequestHeader.write(body, { xid: 1 + this.#int(1000), type: op });
    if (op === OpCode.multi || op === OpCode.multiRead) {
      this.#multiBody(body, op === OpCode.multiRead, state);
    } else {
      const request = PROTOCOL.get(op)?.request ?? R.GetDataRequest;
      this.#write(body, request, this.#value(request, ""), state);
    }
    let payload = body.bytes();
    if (fault === "truncated") payload = payload.subarray(0, this.#int(payload.byteLength));
    if (fault === "trailing-garbage") {
      payload = concat(payload, this.#bytes(1 + this.#int(32)));
    }
    let length = payload.byteLength;
    if (fault === "frame-length") {
      length = this.#pick([length - 1, length + 1, length + 1000, -1, 0, 0x7fffffff]);
    }
    let bytes = concat(int32(length), payload);
    if (fault === "after-close") {
      const close = JuteWriter.frame((w) => {
        R.RequestHeader.write(w, { xid: 1, type: OpCode.closeSession });
      });
      bytes = concat(close, bytes);
    }
    return { op, fault, handshake: fault !== "before-handshake", bytes };
  }
}

function int32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return b;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

/** What one fuzz run did. */
export interface FuzzRun {
  seed: number;
  cases: number;
  /** Cases by fault. */
  byFault: Record<string, number>;
  /** Cases the server answered with a reply frame. */
  answered: number;
  /** Each connection the server closed: its local `host:port` and its case. */
  closedByServer: { peer: string; fault: Fault; op: number }[];
  /** Connections opened from each local `host:port` (the system reuses ports). */
  opened: Map<string, number>;
}

/**
 * Sends fuzz cases to `address` from `concurrency` connections at a time
 * until `seconds` have passed.
 */
export async function runFuzz(
  address: string,
  options: { seed: number; seconds: number; concurrency?: number },
): Promise<FuzzRun> {
  const fuzzer = new Fuzzer(options.seed);
  const run: FuzzRun = {
    seed: options.seed,
    cases: 0,
    byFault: {},
    answered: 0,
    closedByServer: [],
    opened: new Map(),
  };
  const deadline = Date.now() + options.seconds * 1000;
  const one = async (c: FuzzCase) => {
    const client = await RawClient.open(address);
    const local = client.conn.localAddr as Deno.NetAddr;
    const peer = `${local.hostname}:${local.port}`;
    run.opened.set(peer, (run.opened.get(peer) ?? 0) + 1);
    try {
      if (c.handshake && (await client.handshake({ timeOut: 4000 })) === null) {
        throw new Error("the server refused a plain handshake");
      }
      await client.write(c.bytes).catch(() => {});
      // A reply, or the server closing, within the time a reply would take.
      const frame = await Promise.race([
        client.nextFrame().then((f) => f === null ? "closed" : "reply"),
        new Promise<"silent">((r) => setTimeout(() => r("silent"), 300)),
      ]);
      if (frame === "reply") run.answered++;
      const closed = frame === "closed" || await client.closedWithin(frame === "reply" ? 50 : 0);
      if (closed) {
        run.closedByServer.push({ peer, fault: c.fault, op: c.op });
      }
    } finally {
      client.close();
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, async () => {
    while (Date.now() < deadline) {
      const c = fuzzer.next();
      run.cases++;
      run.byFault[c.fault] = (run.byFault[c.fault] ?? 0) + 1;
      await one(c);
    }
  }));
  return run;
}
