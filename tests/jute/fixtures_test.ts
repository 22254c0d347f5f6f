/**
 * Decodes every frame recorded between stock ZooKeeper clients and a real
 * ZooKeeper 3.8.0 server (shared/fixtures/wire), compares the decoded values
 * with the fixture's own decoding, and re-encodes them byte for byte.
 *
 * The fixtures live in `shared/`, beside the repository checkout.
 */

import assert from "node:assert/strict";
import { bool, type JuteType } from "../../src/jute/schema.ts";
import { JuteReader } from "../../src/jute/reader.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import { OpCode } from "../../src/zk/constants.ts";
import { PROTOCOL } from "../../src/zk/protocol.ts";
import {
  ConnectRequest,
  ConnectResponse,
  Create2Response,
  CreateResponse,
  ErrorResponse,
  GetChildrenResponse,
  GetDataResponse,
  MultiHeader,
  ReplyHeader,
  RequestHeader,
  SetDataResponse,
  WatcherEvent,
} from "../../src/zk/records.ts";
import { fromHex, toHex } from "./_hex.ts";

const FIXTURE_DIR = new URL("../../../shared/fixtures/wire/", import.meta.url);

/** Files the test insists on, so that a vanished fixture fails loudly. */
const EXPECTED_FILES = [
  "c-cli_mt.json",
  "four-letter-words.json",
  "java-api-35plus.json",
  "java-zkcli.json",
  "kazoo.json",
  "node-zookeeper-client.json",
];

/** Fewest length-prefixed frames the fixtures must hold in total. */
const MIN_TOTAL_FRAMES = 800;

/** Top-level request opcodes the fixture README says were recorded. */
const README_REQUEST_OPCODES = [
  -11,
  1,
  2,
  3,
  4,
  5,
  6,
  7,
  8,
  9,
  11,
  12,
  14,
  15,
  16,
  17,
  18,
  19,
  21,
  22,
  100,
  101,
  103,
  104,
  105,
  106,
  107,
];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Frame {
  dir: "c2s" | "s2c";
  conn: number;
  hex: string;
  note: string;
  t_ms: number;
  text?: string;
  decoded?: {
    record?: "ConnectRequest" | "ConnectResponse";
    header?: JsonObject;
    body: JsonObject;
    request_type?: number;
  };
}

interface FixtureFile {
  name: string;
  frames: Frame[];
}

async function loadFixtures(): Promise<FixtureFile[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(FIXTURE_DIR)) {
    if (entry.isFile && entry.name.endsWith(".json")) names.push(entry.name);
  }
  names.sort();
  const files: FixtureFile[] = [];
  for (const name of names) {
    const frames = JSON.parse(await Deno.readTextFile(new URL(name, FIXTURE_DIR))) as Frame[];
    assert.ok(Array.isArray(frames), `${name} is not a JSON array`);
    files.push({ name, frames });
  }
  return files;
}

// ---------------------------------------------------------------------------
// Comparing a decoded JS value with the fixture's JSON form.

/**
 * Field names that differ between src/zk/records.ts (zookeeper.jute names)
 * and the reader that wrote the fixtures. The wire bytes are the same.
 */
const FIXTURE_FIELD_NAMES: Record<string, string> = {
  // GetEphemeralsRequest: zookeeper.jute calls it prefixPath; the fixtures say path.
  prefixPath: "path",
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * The fixture's reader inlines the nested Id of an ACL
 * (`{perms, scheme, id}`), where records.ts nests it (`{perms, id: {scheme, id}}`).
 * Renames fields per {@link FIXTURE_FIELD_NAMES}.
 */
function toFixtureShape(v: Record<string, unknown>): Record<string, unknown> {
  const keys = Object.keys(v);
  if (
    keys.length === 2 && keys[0] === "perms" && keys[1] === "id" && isPlainObject(v.id) &&
    Object.keys(v.id).join() === "scheme,id"
  ) {
    return { perms: v.perms, scheme: v.id.scheme, id: v.id.id };
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[FIXTURE_FIELD_NAMES[k] ?? k] = v[k];
  return out;
}

function describe(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (v instanceof Uint8Array) return `Uint8Array(${toHex(v)})`;
  return JSON.stringify(v) ?? String(v);
}

/**
 * Asserts that a decoded value matches its JSON form in a fixture: bigint ↔
 * decimal string, Uint8Array ↔ lowercase hex, null ↔ null (length −1),
 * arrays element-wise, objects field by field and in the same (wire) order.
 */
function assertMatchesJson(actual: unknown, expected: Json, path = "$"): void {
  const fail = (why: string): never => {
    throw new assert.AssertionError({
      message: `${path}: ${why} (decoded ${describe(actual)}, fixture ${JSON.stringify(expected)})`,
    });
  };
  if (typeof actual === "bigint") {
    if (typeof expected !== "string" || !/^-?\d+$/.test(expected)) fail("expected a long");
    if (actual !== BigInt(expected as string)) fail("long differs");
    return;
  }
  if (actual instanceof Uint8Array) {
    if (typeof expected !== "string") fail("expected a buffer");
    if (toHex(actual) !== expected) fail("buffer differs");
    return;
  }
  if (actual === null || typeof actual !== "object") {
    if (actual !== expected) fail("value differs");
    return;
  }
  if (Array.isArray(actual)) {
    if (!Array.isArray(expected)) return fail("expected an array");
    if (actual.length !== expected.length) fail(`length ${actual.length} ≠ ${expected.length}`);
    actual.forEach((item, i) => assertMatchesJson(item, expected[i], `${path}[${i}]`));
    return;
  }
  if (!isPlainObject(expected)) return fail("expected an object");
  const shaped = toFixtureShape(actual as Record<string, unknown>);
  const got = Object.keys(shaped);
  const want = Object.keys(expected);
  if (got.join() !== want.join()) fail(`fields [${got}] ≠ [${want}]`);
  for (const k of want) assertMatchesJson(shaped[k], expected[k], `${path}.${k}`);
}

Deno.test("the fixture comparison matches longs, buffers, nulls, ACLs and nesting", () => {
  assertMatchesJson(
    {
      zxid: 186701n,
      data: new Uint8Array([0x6e, 0x65, 0x77]),
      none: null,
      acl: [{ perms: 31, id: { scheme: "world", id: "anyone" } }],
      nested: { flag: true, list: ["a"] },
    },
    {
      zxid: "186701",
      data: "6e6577",
      none: null,
      acl: [{ perms: 31, scheme: "world", id: "anyone" }],
      nested: { flag: true, list: ["a"] },
    },
  );
  assert.throws(() => assertMatchesJson(1n, "2"), assert.AssertionError);
  assert.throws(() => assertMatchesJson(-1n, "18446744073709551615"), assert.AssertionError);
  assert.throws(() => assertMatchesJson(new Uint8Array([1]), "02"), assert.AssertionError);
  assert.throws(() => assertMatchesJson(new Uint8Array(0), null), assert.AssertionError);
  assert.throws(() => assertMatchesJson("", null), assert.AssertionError);
  assert.throws(() => assertMatchesJson(null, ""), assert.AssertionError);
  assert.throws(() => assertMatchesJson(0, false), assert.AssertionError);
  assert.throws(() => assertMatchesJson([], [1]), assert.AssertionError);
  assert.throws(() => assertMatchesJson({ a: 1, b: 2 }, { b: 2, a: 1 }), assert.AssertionError);
  assert.throws(() => assertMatchesJson({ a: 1 }, { a: 1, b: 2 }), assert.AssertionError);
});

// ---------------------------------------------------------------------------
// Decoding one recorded frame.

type Category =
  | "connect request"
  | "connect response"
  | "request"
  | "multi request"
  | "reply"
  | "error reply"
  | "multi reply"
  | "notification";

/** Result records of multi/multiRead replies, by result type (protocol doc §9). */
const MULTI_RESULT: ReadonlyMap<number, JuteType<unknown> | null> = new Map<
  number,
  JuteType<unknown> | null
>([
  [OpCode.error, ErrorResponse],
  [OpCode.create, CreateResponse],
  [OpCode.create2, Create2Response],
  [OpCode.setData, SetDataResponse],
  [OpCode.getData, GetDataResponse],
  [OpCode.getChildren, GetChildrenResponse],
  [OpCode.delete, null],
  [OpCode.check, null],
]);

const MULTI_SUB_OPS = new Set<number>([
  OpCode.create,
  OpCode.create2,
  OpCode.createContainer,
  OpCode.createTTL,
  OpCode.delete,
  OpCode.setData,
  OpCode.check,
]);
const MULTI_READ_SUB_OPS = new Set<number>([OpCode.getData, OpCode.getChildren]);

/**
 * Decodes one length-prefixed frame as its `decoded` says, compares every
 * value with the fixture, and re-encodes the decoded values into a frame that
 * must equal the recorded bytes.
 */
function checkFrame(frame: Frame): Category {
  const bytes = fromHex(frame.hex);
  assert.ok(bytes.byteLength >= 4, "shorter than a length prefix");
  const prefix = new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0);
  assert.equal(prefix, bytes.byteLength - 4, "length prefix ≠ payload length");
  const d = frame.decoded!;
  const r = new JuteReader(bytes.subarray(4));

  // Every value read, with its type, in wire order: re-encoded at the end.
  const parts: Array<[JuteType<unknown>, unknown]> = [];
  const take = <T>(type: JuteType<T>): T => {
    const v = type.read(r);
    parts.push([type as JuteType<unknown>, v]);
    return v;
  };

  let category: Category;
  let body: unknown;
  if (d.record !== undefined) {
    const isRequest = d.record === "ConnectRequest";
    assert.equal(frame.dir, isRequest ? "c2s" : "s2c", "connect record in the wrong direction");
    const rec = take<Record<string, unknown>>(isRequest ? ConnectRequest : ConnectResponse);
    // The readOnly byte is optional: present iff bytes remain.
    body = r.remaining > 0 ? { ...rec, readOnly: take(bool) } : rec;
    category = isRequest ? "connect request" : "connect response";
  } else if (frame.dir === "c2s") {
    const header = take(RequestHeader);
    assertMatchesJson(header, d.header!, "header");
    if (header.type === OpCode.multi || header.type === OpCode.multiRead) {
      const allowed = header.type === OpCode.multi ? MULTI_SUB_OPS : MULTI_READ_SUB_OPS;
      const ops: unknown[] = [];
      for (;;) {
        const h = take(MultiHeader);
        if (h.done) {
          ops.push({ header: h });
          break;
        }
        assert.ok(allowed.has(h.type), `sub-op type ${h.type} in op ${header.type}`);
        const rec = PROTOCOL.get(h.type)?.request;
        assert.ok(rec, `no request record for sub-op ${h.type}`);
        ops.push({ header: h, body: take(rec) });
      }
      body = { ops };
      category = "multi request";
    } else {
      const records = PROTOCOL.get(header.type);
      assert.ok(records, `opcode ${header.type} is not in PROTOCOL`);
      body = records.request ? take(records.request) : {};
      category = "request";
    }
  } else {
    const header = take(ReplyHeader);
    assertMatchesJson(header, d.header!, "header");
    if (header.xid === -1) {
      assert.equal(d.request_type, undefined, "a notification answers no request");
      body = take(WatcherEvent);
      category = "notification";
    } else if (header.err !== 0) {
      body = {};
      category = "error reply";
    } else {
      const type = d.request_type;
      assert.equal(typeof type, "number", "reply without request_type");
      if (type === OpCode.multi || type === OpCode.multiRead) {
        const results: unknown[] = [];
        for (;;) {
          const h = take(MultiHeader);
          if (h.done) {
            results.push({ header: h });
            break;
          }
          assert.ok(MULTI_RESULT.has(h.type), `unknown multi result type ${h.type}`);
          const rec = MULTI_RESULT.get(h.type);
          results.push({ header: h, body: rec ? take(rec) : {} });
        }
        body = { results };
        category = "multi reply";
      } else {
        const records = PROTOCOL.get(type!);
        assert.ok(records, `opcode ${type} is not in PROTOCOL`);
        body = records.response ? take(records.response) : {};
        category = "reply";
      }
    }
  }
  assert.equal(r.remaining, 0, `${r.remaining} bytes left over after decoding`);
  assertMatchesJson(body, d.body, "body");

  const again = JuteWriter.frame((w) => {
    for (const [type, value] of parts) type.write(w, value);
  });
  assert.equal(toHex(again), frame.hex, "re-encoded frame differs from the recording");
  return category;
}

/**
 * Four-letter-word frames carry no length prefix and no decoded form. The
 * reply to the unknown word `xyzw` is an empty placeholder (nothing was sent).
 */
function isFourLetterWordFrame(frame: Frame): boolean {
  if (frame.decoded !== undefined) return false;
  return /four-letter word/.test(frame.note) ||
    (frame.hex === "" && /placeholder/.test(frame.note));
}

// ---------------------------------------------------------------------------

Deno.test(
  "every recorded frame decodes to the recorded values and re-encodes byte for byte",
  { permissions: { read: true } },
  async (t) => {
    const files = await loadFixtures();
    const names = files.map((f) => f.name);
    for (const name of EXPECTED_FILES) assert.ok(names.includes(name), `fixture ${name} missing`);

    const summary: Record<string, Record<string, number>> = {};
    const requestOpcodes = new Set<number>();
    let total = 0;
    for (const file of files) {
      await t.step(`${file.name}: every length-prefixed frame round-trips`, () => {
        const counts: Record<string, number> = { checked: 0, "four-letter word (skipped)": 0 };
        const failures: string[] = [];
        file.frames.forEach((frame, index) => {
          if (isFourLetterWordFrame(frame)) {
            counts["four-letter word (skipped)"]++;
            return;
          }
          try {
            assert.ok(frame.decoded, "frame has no decoded form");
            const category = checkFrame(frame);
            counts.checked++;
            counts[category] = (counts[category] ?? 0) + 1;
            if (category === "request" || category === "multi request") {
              requestOpcodes.add(frame.decoded.header!.type as number);
            }
          } catch (error) {
            const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
            failures.push(`${file.name} index ${index} (${frame.note}): ${why}`);
          }
        });
        summary[file.name] = counts;
        total += counts.checked;
        assert.deepEqual(failures, [], `${failures.length} frame(s) failed`);
      });
    }

    console.log(`frames checked per fixture file (total ${total}):`);
    for (const [name, counts] of Object.entries(summary)) {
      console.log(`  ${name}: ${JSON.stringify(counts)}`);
    }
    assert.ok(
      total >= MIN_TOTAL_FRAMES,
      `only ${total} frames checked, want ≥ ${MIN_TOTAL_FRAMES}`,
    );
    for (const name of EXPECTED_FILES.filter((n) => n !== "four-letter-words.json")) {
      assert.ok(summary[name].checked >= 100, `${name}: only ${summary[name].checked} frames`);
    }
    const missing = README_REQUEST_OPCODES.filter((op) => !requestOpcodes.has(op));
    assert.deepEqual(missing, [], "request opcodes listed in the README but not checked");
  },
);

Deno.test(
  "the frame check rejects a recorded frame whose bytes or recorded values were altered",
  { permissions: { read: true } },
  async () => {
    const files = await loadFixtures();
    const frames = files.flatMap((f) => f.frames).filter((f) => !isFourLetterWordFrame(f));
    const create = frames.find((f) => f.dir === "c2s" && f.decoded?.header?.type === 1)!;
    const stat = frames.find((f) =>
      f.dir === "s2c" && f.decoded?.request_type === 4 &&
      f.decoded.header?.err === 0
    )!;
    assert.equal(checkFrame(create), "request");
    assert.equal(checkFrame(stat), "reply");
    const altered = (f: Frame, change: (copy: Frame) => void): Frame => {
      const copy = structuredClone(f);
      change(copy);
      return copy;
    };
    // A wrong length prefix.
    assert.throws(() => checkFrame(altered(create, (c) => c.hex = "000000ff" + c.hex.slice(8))));
    // A trailing byte the record does not account for.
    const longer = (parseInt(create.hex.slice(0, 8), 16) + 1).toString(16).padStart(8, "0");
    assert.throws(() => checkFrame(altered(create, (c) => c.hex = longer + c.hex.slice(8) + "00")));
    // Recorded values that differ from the bytes.
    assert.throws(() => checkFrame(altered(create, (c) => c.decoded!.body.path += "x")));
    assert.throws(() => checkFrame(altered(create, (c) => c.decoded!.body.flags = 99)));
    assert.throws(() =>
      checkFrame(altered(stat, (c) => (c.decoded!.body.stat as JsonObject).pzxid = "1"))
    );
    assert.throws(() => checkFrame(altered(stat, (c) => c.decoded!.request_type = 3)));
  },
);

Deno.test(
  "four-letter-word frames have no length prefix and are ASCII words, with text replies",
  { permissions: { read: true } },
  async () => {
    const files = await loadFixtures();
    const file = files.find((f) => f.name === "four-letter-words.json");
    assert.ok(file, "four-letter-words.json missing");
    let requests = 0;
    for (const frame of file.frames) {
      assert.ok(isFourLetterWordFrame(frame), `not a four-letter word: ${frame.note}`);
      const bytes = fromHex(frame.hex);
      if (frame.dir === "c2s") {
        requests++;
        const word = new TextDecoder().decode(bytes);
        assert.match(word, /^[a-z]{4}\n?$/, `request ${JSON.stringify(word)}`);
      } else {
        assert.equal(new TextDecoder().decode(bytes), frame.text ?? "", frame.note);
      }
    }
    assert.ok(requests >= 14, `only ${requests} four-letter-word requests`);
  },
);
