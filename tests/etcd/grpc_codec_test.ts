/**
 * The codecs of our own gRPC transport: HPACK (with RFC 7541's examples as
 * golden bytes), its Huffman code, and the protobuf of a transaction.
 */

import assert from "node:assert/strict";
import { huffmanCode, huffmanDecode } from "../../src/etcd/grpc/huffman.ts";
import { encodeHeaders, HpackDecoder } from "../../src/etcd/grpc/hpack.ts";
import { encodeTxnRequest } from "../../src/etcd/grpc/proto.ts";

const hex = (s: string) =>
  Uint8Array.from(s.replace(/\s/g, "").match(/../g)!, (h) => parseInt(h, 16));

Deno.test("Huffman codes derived from the code lengths are RFC 7541's table", () => {
  // [symbol, code, length], from RFC 7541 Appendix B: a wrong length anywhere shifts every later code.
  const table: [number, number, number][] = [
    [0, 0x1ff8, 13],
    [9, 0xffffea, 24],
    [10, 0x3ffffffc, 30],
    [32, 0x14, 6],
    [48, 0x0, 5],
    [65, 0x21, 6],
    [92, 0x7fff0, 19],
    [127, 0xffffffc, 28],
    [195, 0x7fff1, 19],
    [232, 0x3fffea, 22],
    [255, 0x3ffffee, 26],
    [256, 0x3fffffff, 30],
  ];
  for (const [symbol, code, length] of table) {
    assert.deepEqual(huffmanCode(symbol), { code, length }, `symbol ${symbol}`);
  }
});

Deno.test("Huffman decoding reads RFC 7541's example and refuses bad padding", () => {
  const text = new TextDecoder().decode(huffmanDecode(hex("f1e3c2e5f23a6ba0ab90f4ff")));
  assert.equal(text, "www.example.com");
  // Padding of zeros, and padding of 8 or more bits, are decoding errors (§5.2).
  assert.throws(() => huffmanDecode(hex("f1e3c2e5f23a6ba0ab90f400")), /padding/);
  assert.throws(() => huffmanDecode(hex("f1e3c2e5f23a6ba0ab90f4ffff")), /padding/);
});

Deno.test("HPACK decodes RFC 7541's request examples, with and without Huffman, keeping the dynamic table", () => {
  for (
    const blocks of [
      // C.3: without Huffman coding.
      [
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
      ],
      // C.4: the same requests, Huffman-coded.
      [
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
      ],
    ]
  ) {
    const decoder = new HpackDecoder();
    const [first, second, third] = blocks.map((b) => decoder.decode(hex(b)));
    assert.deepEqual(first, [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ]);
    assert.deepEqual(second.at(-1), ["cache-control", "no-cache"]);
    assert.deepEqual(second[3], [":authority", "www.example.com"]); // from the dynamic table
    assert.deepEqual(third, [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ]);
  }
});

Deno.test("HPACK evicts the oldest entries past the table size, and refuses a size above the announced one", () => {
  const decoder = new HpackDecoder(100);
  // Literal with incremental indexing, new name: 0x40, name, value (each entry: 32 + 1 + 30 bytes).
  const entry = (name: string) =>
    new Uint8Array([0x40, 1, name.charCodeAt(0), 30, ...new Uint8Array(30).fill(0x61)]);
  decoder.decode(entry("a"));
  assert.equal(decoder.decode(new Uint8Array([0x80 | 62]))[0][0], "a");
  decoder.decode(entry("b")); // 2 × 63 > 100: "a" goes
  assert.equal(decoder.decode(new Uint8Array([0x80 | 62]))[0][0], "b");
  assert.throws(() => decoder.decode(new Uint8Array([0x80 | 63])), /no table entry/);
  assert.throws(() => decoder.decode(new Uint8Array([0x3f, 0x46])), /table size/); // 31 + 70 = 101
});

Deno.test("HPACK encoding (literals only) decodes back to the same fields", () => {
  const block = encodeHeaders([
    { indexed: 3 },
    { indexed: 6 },
    { name: 4, value: "/etcdserverpb.KV/Txn" },
    { name: 31, value: "application/grpc" },
    { name: "te", value: "trailers" },
    { name: "x-long", value: "v".repeat(300) }, // a length past the 7-bit prefix
  ]);
  assert.deepEqual(new HpackDecoder().decode(block), [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/etcdserverpb.KV/Txn"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["x-long", "v".repeat(300)],
  ]);
});

Deno.test("HPACK gives null for a block past the header list limit, and keeps its table in step", () => {
  const decoder = new HpackDecoder(100);
  // An entry of 1 + 30 + 32 = 63 bytes, then the same entry named 1000 times: 63 KB from 1 KB.
  const entry = new Uint8Array([0x40, 1, 0x61, 30, ...new Uint8Array(30).fill(0x62)]);
  const bomb = new Uint8Array([...entry, ...new Uint8Array(1000).fill(0x80 | 62)]);
  assert.equal(decoder.decode(bomb, 4096), null);
  // The entry was added all the same, and a block under the limit decodes.
  assert.deepEqual(decoder.decode(new Uint8Array([0x80 | 62]), 4096), [["a", "b".repeat(30)]]);
  assert.equal(decoder.decode(new Uint8Array([0x80 | 62, 0x80 | 62]), 126)?.length, 2);
  assert.equal(decoder.decode(new Uint8Array([0x80 | 62, 0x80 | 62]), 125), null);
});

Deno.test("a transaction's keys are UTF-8 in the request, with lengths past one varint byte", () => {
  // Compare{target: MOD, key: "/é", mod_revision: 5} as TxnRequest.compare (field 1).
  assert.deepEqual(
    encodeTxnRequest({
      compare: [{ key: "/é", target: "mod", op: "==", value: 5n }],
      success: [],
      failure: [],
    }),
    new Uint8Array([0x0a, 9, 0x10, 2, 0x1a, 3, 0x2f, 0xc3, 0xa9, 0x30, 5]),
  );
  // A put of a 400-byte key: PutRequest 403 bytes, RequestOp 406, in TxnRequest.success (field 2).
  const key = "é".repeat(200);
  const bytes = encodeTxnRequest({ compare: [], success: [{ put: key }], failure: [] });
  assert.deepEqual(
    [...bytes.subarray(0, 9)],
    [0x12, 0x96, 0x03, 0x12, 0x93, 0x03, 0x0a, 0x90, 0x03],
  );
  assert.equal(bytes.length, 409);
  assert.equal(new TextDecoder().decode(bytes.subarray(9)), key);
});
