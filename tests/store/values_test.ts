/**
 * The node record's formats (src/store/values.ts): format 2, which layout 3
 * writes, carries the facts fixed at creation; format 1, which layouts 1 and
 * 2 wrote, is still read. Golden bytes pin the encoding that data written
 * today must keep being read as.
 */

import assert from "node:assert/strict";
import { decodeNode, encodeNode } from "../../src/store/values.ts";

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

Deno.test("a node record of format 2 is the flags, mtime, ctime, owner, mode, then the data", () => {
  const bytes = encodeNode({
    data: new Uint8Array([0xab]),
    mtime: 2n,
    meta: { ctime: 1n, owner: 0x0102030405060708n, mode: 1 },
  });
  assert.equal(
    hex(bytes),
    "02" + "00" + "0000000000000002" + "0000000000000001" + "0102030405060708" + "01" + "ab",
  );
  assert.deepEqual(decodeNode(bytes), {
    data: new Uint8Array([0xab]),
    mtime: 2n,
    meta: { ctime: 1n, owner: 0x0102030405060708n, mode: 1 },
  });
});

Deno.test("a TTL node's record carries its TTL after the mode; null data is a flag, not empty data", () => {
  const bytes = encodeNode({
    data: null,
    mtime: 5n,
    meta: { ctime: 4n, owner: 0n, mode: 5, ttl: 60_000n },
  });
  assert.equal(
    hex(bytes),
    "02" + "03" + "0000000000000005" + "0000000000000004" + "0000000000000000" + "05" +
      "000000000000ea60",
  );
  assert.deepEqual(decodeNode(bytes), {
    data: null,
    mtime: 5n,
    meta: { ctime: 4n, owner: 0n, mode: 5, ttl: 60_000n },
  });
  const empty = decodeNode(
    encodeNode({ data: new Uint8Array(), mtime: 5n, meta: { ctime: 4n, owner: 0n, mode: 0 } }),
  );
  assert.deepEqual(empty.data, new Uint8Array());
});

Deno.test("a record of format 1 (layouts 1 and 2) reads without facts: the meta key holds them", () => {
  const bytes = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0x68, 0x69]);
  assert.deepEqual(decodeNode(bytes), { data: new TextEncoder().encode("hi"), mtime: 9n });
  assert.deepEqual(encodeNode({ data: new TextEncoder().encode("hi"), mtime: 9n }), bytes);
});

Deno.test("an unknown or truncated record format is refused with its number", () => {
  assert.throws(() => decodeNode(new Uint8Array([3, 0, 0, 0, 0, 0, 0, 0, 0, 0])), /format 3/);
  assert.throws(() => decodeNode(new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0, 0])), /format 2/);
});
