/**
 * JuteReader and the schema decoders on malformed input: every read is
 * bounds-checked, lengths are validated, strings must be UTF-8, and
 * `decode()` consumes its input exactly.
 */

import assert from "node:assert/strict";
import { JuteDecodeError, JuteReader } from "../../src/jute/reader.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import {
  bool,
  buffer,
  decode,
  encode,
  int,
  type JuteType,
  long,
  record,
  ustring,
  vector,
} from "../../src/jute/schema.ts";
import { Stat } from "../../src/zk/records.ts";
import { fromHex, toHex } from "./_hex.ts";

const reader = (hex: string) => new JuteReader(fromHex(hex));

Deno.test("a truncated int or long throws JuteDecodeError", { permissions: "none" }, () => {
  for (let n = 0; n < 4; n++) {
    assert.throws(() => reader("7f".repeat(n)).readInt(), JuteDecodeError, `int from ${n} bytes`);
  }
  for (let n = 0; n < 8; n++) {
    assert.throws(() => reader("7f".repeat(n)).readLong(), JuteDecodeError, `long from ${n} bytes`);
  }
  assert.throws(() => reader("").readBool(), JuteDecodeError);
  assert.equal(reader("00000001").readInt(), 1);
  assert.equal(reader("0000000000000001").readLong(), 1n);
});

Deno.test("a truncated buffer or ustring throws JuteDecodeError", { permissions: "none" }, () => {
  for (const hex of ["", "00", "000000", "00000005", "0000000568656c6c", "7fffffff00"]) {
    assert.throws(() => reader(hex).readBuffer(), JuteDecodeError, `buffer ${hex}`);
    assert.throws(() => reader(hex).readString(), JuteDecodeError, `ustring ${hex}`);
  }
  assert.equal(toHex(reader("0000000568656c6c6f").readBuffer()!), "68656c6c6f");
  assert.equal(reader("0000000568656c6c6f").readString(), "hello");
});

Deno.test("buffer and ustring length −1 decode to null; length 0 to empty", {
  permissions: "none",
}, () => {
  assert.equal(reader("ffffffff").readBuffer(), null);
  assert.equal(reader("ffffffff").readString(), null);
  assert.deepEqual(reader("00000000").readBuffer(), new Uint8Array(0));
  assert.equal(reader("00000000").readString(), "");
  // And null/empty survive a round trip as distinct encodings.
  assert.equal(toHex(encode(buffer, null)), "ffffffff");
  assert.equal(toHex(encode(ustring, null)), "ffffffff");
  assert.equal(toHex(encode(buffer, new Uint8Array(0))), "00000000");
  assert.equal(toHex(encode(ustring, "")), "00000000");
});

Deno.test("buffer and ustring lengths below −1 throw JuteDecodeError", {
  permissions: "none",
}, () => {
  for (const hex of ["fffffffe", "80000000", "ffffff00"]) {
    const withBytes = hex + "00".repeat(16);
    assert.throws(() => reader(withBytes).readBuffer(), JuteDecodeError, `buffer ${hex}`);
    assert.throws(() => reader(withBytes).readString(), JuteDecodeError, `ustring ${hex}`);
  }
});

/** An int type that counts how many elements were read. */
function countingInt(): JuteType<number> & { reads: number } {
  const t = {
    ...int,
    reads: 0,
    read(r: JuteReader) {
      t.reads++;
      return r.readInt();
    },
  };
  return t;
}

Deno.test("a vector count larger than the bytes left throws before reading or allocating", {
  permissions: "none",
}, () => {
  // count 0x7fffffff in an 8-byte input.
  const elem = countingInt();
  const started = performance.now();
  assert.throws(() => decode(vector(elem), fromHex("7fffffff 00000001")), JuteDecodeError);
  assert.equal(elem.reads, 0, "elements were read before the count was checked");
  assert.ok(performance.now() - started < 1000, "took too long: did it allocate?");

  // Two ints announced, one present: refused up front, not after the first element.
  const two = countingInt();
  assert.throws(() => decode(vector(two), fromHex("00000002 00000001")), JuteDecodeError);
  assert.equal(two.reads, 0);

  // The element's minimum size bounds the count: each ustring takes ≥ 4 bytes,
  // each Stat 68, and a zero-size record still at least 1.
  assert.throws(
    () => decode(vector(ustring), fromHex("00000003 00000000 00000000")),
    JuteDecodeError,
  );
  assert.throws(() => decode(vector(Stat), fromHex("00000001" + "00".repeat(67))), JuteDecodeError);
  const empty = record("Empty", {});
  assert.throws(() => decode(vector(empty), fromHex("7fffffff 00000000")), JuteDecodeError);
  assert.throws(() => decode(vector(empty), fromHex("00000005 00000000")), JuteDecodeError);

  // Counts that fit are accepted.
  assert.deepEqual(decode(vector(int), fromHex("00000002 00000001 ffffffff")), [1, -1]);
  assert.deepEqual(decode(vector(ustring), fromHex("00000002 00000000 ffffffff")), ["", null]);
  assert.deepEqual(decode(vector(int), fromHex("00000000")), []);
});

Deno.test("a vector count of −1 decodes as empty, and counts below −1 throw", {
  permissions: "none",
}, () => {
  // schema.ts documents that a null vector (count −1) is decoded as an empty array.
  assert.deepEqual(decode(vector(ustring), fromHex("ffffffff")), []);
  for (const hex of ["fffffffe", "80000000"]) {
    assert.throws(() => decode(vector(int), fromHex(hex + "00".repeat(16))), JuteDecodeError, hex);
  }
});

Deno.test(
  "a ustring that is not valid UTF-8 throws JuteDecodeError",
  { permissions: "none" },
  () => {
    const invalid = [
      "ff", // never valid
      "c0af", // overlong "/"
      "e282", // truncated 3-byte sequence
      "eda080", // UTF-16 surrogate D800 encoded in UTF-8
      "f4908080", // above U+10FFFF
      "2f61ff", // valid prefix, invalid tail
      "80", // lone continuation byte
    ];
    for (const bytes of invalid) {
      const len = (bytes.length / 2).toString(16).padStart(8, "0");
      assert.throws(() => reader(len + bytes).readString(), JuteDecodeError, bytes);
    }
  },
);

Deno.test("ustring lengths count UTF-8 bytes, and multi-byte text round-trips", {
  permissions: "none",
}, () => {
  for (const text of ["/é", "/日本", "/😀", "/a\u0000b"]) {
    const bytes = encode(ustring, text);
    const utf8 = new TextEncoder().encode(text);
    assert.equal(new DataView(bytes.buffer).getInt32(0), utf8.byteLength);
    assert.equal(decode(ustring, bytes), text);
  }
});

Deno.test("a ustring keeps a leading U+FEFF (byte order mark) instead of stripping it", {
  permissions: "none",
}, () => {
  // ZooKeeper decodes strings with new String(bytes, UTF_8), which keeps U+FEFF,
  // and its path validation allows it: "/\uFEFFx" and "/x" are different znodes.
  const bytes = fromHex("00000005 efbbbf 2f78");
  const text = decode(ustring, bytes);
  assert.equal(text, "\uFEFF/x");
  assert.equal(toHex(encode(ustring, text)), toHex(bytes));
  assert.equal(decode(ustring, fromHex("00000005 2f efbbbf 78")), "/\uFEFFx");
});

Deno.test(
  "decode() rejects trailing bytes and accepts an exact fit",
  { permissions: "none" },
  () => {
    assert.throws(() => decode(int, fromHex("00000001 00")), JuteDecodeError);
    assert.throws(() => decode(long, fromHex("0000000000000001 00000000")), JuteDecodeError);
    assert.throws(() => decode(ustring, fromHex("00000001 61 62")), JuteDecodeError);
    assert.throws(() => decode(buffer, fromHex("ffffffff 00")), JuteDecodeError);
    const Id = record("Id", { scheme: ustring, id: ustring });
    assert.throws(() => decode(Id, fromHex("ffffffff ffffffff ff")), JuteDecodeError);
    assert.deepEqual(decode(Id, fromHex("ffffffff ffffffff")), { scheme: null, id: null });
    assert.equal(decode(int, fromHex("00000001")), 1);
    // Too few bytes is also an error.
    assert.throws(() => decode(Id, fromHex("ffffffff")), JuteDecodeError);
  },
);

Deno.test("longs round-trip at −1, the extremes of 64 bits and beyond 2^53", {
  permissions: "none",
}, () => {
  const cases: Array<[bigint, string]> = [
    [-1n, "ffffffffffffffff"],
    [2n ** 63n - 1n, "7fffffffffffffff"],
    [-(2n ** 63n), "8000000000000000"],
    [0n, "0000000000000000"],
    [2n ** 53n + 1n, "0020000000000001"],
    [0x0100002aaa310198n, "0100002aaa310198"],
  ];
  for (const [value, hex] of cases) {
    assert.equal(toHex(encode(long, value)), hex, `encode ${value}`);
    assert.equal(decode(long, fromHex(hex)), value, `decode ${hex}`);
    const r = reader(hex + hex);
    assert.equal(r.readLong(), value);
    assert.equal(r.readLong(), value);
    assert.equal(r.remaining, 0);
  }
});

Deno.test("ints round-trip at −1 and the extremes of 32 bits", { permissions: "none" }, () => {
  const cases: Array<[number, string]> = [
    [-1, "ffffffff"],
    [2 ** 31 - 1, "7fffffff"],
    [-(2 ** 31), "80000000"],
    [-101, "ffffff9b"],
  ];
  for (const [value, hex] of cases) {
    assert.equal(toHex(encode(int, value)), hex);
    assert.equal(decode(int, fromHex(hex)), value);
  }
});

Deno.test("bool reads any non-zero byte as true and writes 0 or 1", { permissions: "none" }, () => {
  assert.equal(decode(bool, fromHex("00")), false);
  for (const hex of ["01", "02", "7f", "80", "ff"]) {
    assert.equal(decode(bool, fromHex(hex)), true, hex);
  }
  assert.equal(toHex(encode(bool, true)), "01");
  assert.equal(toHex(encode(bool, false)), "00");
});

Deno.test("a reader over a subarray reads only that window and tracks its offset", {
  permissions: "none",
}, () => {
  const whole = fromHex("aabb 00000001 00000002 ccdd");
  const r = new JuteReader(whole.subarray(2, 10));
  assert.equal(r.remaining, 8);
  assert.equal(r.readInt(), 1);
  assert.equal(r.offset, 4);
  assert.equal(r.readInt(), 2);
  assert.equal(r.remaining, 0);
  assert.throws(() => r.readBool(), JuteDecodeError, "read past the window into the parent array");
});

Deno.test("JuteWriter grows past its initial capacity without losing bytes", {
  permissions: "none",
}, () => {
  const w = new JuteWriter(1);
  const data = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  w.writeInt(7).writeBuffer(data).writeLong(-2n).writeString("/z").writeBool(true);
  const r = new JuteReader(w.bytes());
  assert.equal(r.readInt(), 7);
  assert.deepEqual(r.readBuffer(), data);
  assert.equal(r.readLong(), -2n);
  assert.equal(r.readString(), "/z");
  assert.equal(r.readBool(), true);
  assert.equal(r.remaining, 0);
  const framed = JuteWriter.frame((fw) => fw.writeBuffer(data));
  assert.equal(new DataView(framed.buffer).getInt32(0), 1004);
  assert.equal(framed.byteLength, 1008);
});
