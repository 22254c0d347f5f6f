/**
 * readFrames: splitting a byte stream into length-prefixed jute frames,
 * whatever the chunking, and refusing malformed streams with FrameError.
 */

import assert from "node:assert/strict";
import { DEFAULT_MAX_FRAME, FrameError, readFrames } from "../../src/jute/frame.ts";
import { concatBytes, fromHex, toHex } from "./_hex.ts";

/** Client frames recorded from kazoo 2.8.0 (shared/fixtures/wire/kazoo.json, conn 1). */
const RECORDED = [
  // connect request, 45 bytes with readOnly
  "0000002d000000000000000000000000000027100000000000000000000000100000000000000000000000000000000000",
  // xid=1 create /wirefix-kazoo
  "0000004100000001000000010000000e2f776972656669782d6b617a6f6f00000004726f6f74000000010000001f" +
  "00000005776f726c6400000006616e796f6e6500000000",
  // ping
  "00000008fffffffe0000000b",
  // xid=27 multi [create, check, delete]
  "000000980000001b0000000e0000000100ffffffff000000112f776972656669782d6b617a6f6f2f6d33000000017800" +
  "0000010000001f00000005776f726c6400000006616e796f6e65000000000000000d00ffffffff000000102f776972" +
  "656669782d6b617a6f6f2f70000000630000000200ffffffff000000132f776972656669782d6b617a6f6f2f63682f" +
  "62ffffffffffffffff01ffffffff",
];
const STREAM = concatBytes(...RECORDED.map(fromHex));
const PAYLOADS = RECORDED.map((hex) => hex.slice(8));

/** An async iterable over `chunks`; `pulls` counts the chunks handed out. */
function source(chunks: Uint8Array[]): AsyncIterable<Uint8Array> & { pulls: number } {
  const it = {
    pulls: 0,
    async *[Symbol.asyncIterator]() {
      for (const chunk of chunks) {
        it.pulls++;
        yield chunk;
      }
    },
  };
  return it;
}

function bytesOneByOne(bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (b) => new Uint8Array([b]));
}

/** Payloads of every frame, as hex. */
async function framesOf(
  chunks: Uint8Array[],
  options?: Parameters<typeof readFrames>[1],
): Promise<string[]> {
  const out: string[] = [];
  for await (const payload of readFrames(source(chunks), options)) out.push(toHex(payload));
  return out;
}

Deno.test(
  "recorded frames split into two chunks at every byte boundary yield the original payloads",
  {
    permissions: "none",
  },
  async () => {
    for (let cut = 0; cut <= STREAM.byteLength; cut++) {
      const chunks = [STREAM.slice(0, cut), STREAM.slice(cut)];
      assert.deepEqual(await framesOf(chunks), PAYLOADS, `cut at byte ${cut}`);
    }
  },
);

Deno.test("recorded frames delivered one byte per chunk yield the original payloads", {
  permissions: "none",
}, async () => {
  assert.deepEqual(await framesOf(bytesOneByOne(STREAM)), PAYLOADS);
});

Deno.test(
  "recorded frames delivered in one chunk, or in chunks of every size, yield the payloads",
  {
    permissions: "none",
  },
  async () => {
    assert.deepEqual(await framesOf([STREAM]), PAYLOADS);
    for (let size = 2; size <= 64; size++) {
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < STREAM.byteLength; at += size) chunks.push(STREAM.slice(at, at + size));
      assert.deepEqual(await framesOf(chunks), PAYLOADS, `chunks of ${size} bytes`);
    }
  },
);

Deno.test("a zero-length frame yields an empty payload", { permissions: "none" }, async () => {
  assert.deepEqual(await framesOf([fromHex("00000000 00000000 00000001 ff")]), ["", "", "ff"]);
});

Deno.test("an empty stream, or one of empty chunks, yields nothing", {
  permissions: "none",
}, async () => {
  assert.deepEqual(await framesOf([]), []);
  assert.deepEqual(await framesOf([new Uint8Array(0), new Uint8Array(0)]), []);
});

Deno.test("a negative frame length throws FrameError", { permissions: "none" }, async () => {
  for (const header of ["ffffffff", "80000000", "fffffff0"]) {
    await assert.rejects(framesOf([fromHex(header + "00000000")]), FrameError, header);
    await assert.rejects(framesOf(bytesOneByOne(fromHex(header))), FrameError, header);
  }
});

Deno.test("a frame length above maxFrame throws FrameError; maxFrame itself is accepted", {
  permissions: "none",
}, async () => {
  await assert.rejects(
    framesOf([fromHex("00000011"), new Uint8Array(17)], { maxFrame: 16 }),
    FrameError,
  );
  assert.deepEqual(
    await framesOf([fromHex("00000010"), new Uint8Array(16)], { maxFrame: 16 }),
    ["00".repeat(16)],
  );
  const atMax = new Uint8Array(4 + DEFAULT_MAX_FRAME);
  new DataView(atMax.buffer).setInt32(0, DEFAULT_MAX_FRAME);
  let frames = 0;
  for await (const payload of readFrames(source([atMax]))) {
    assert.equal(payload.byteLength, DEFAULT_MAX_FRAME);
    frames++;
  }
  assert.equal(frames, 1);
});

Deno.test("an oversized length is refused as soon as its 4 bytes arrive, before the payload", {
  permissions: "none",
}, async () => {
  const header = new Uint8Array(4);
  new DataView(header.buffer).setInt32(0, DEFAULT_MAX_FRAME + 1);
  const src = source([header, new Uint8Array(DEFAULT_MAX_FRAME + 1)]);
  await assert.rejects(async () => {
    for await (const _ of readFrames(src)) assert.fail("no frame expected");
  }, FrameError);
  assert.equal(src.pulls, 1, "the payload chunk was read");

  const huge = source([fromHex("7fff"), fromHex("ffff"), new Uint8Array(64)]);
  await assert.rejects(async () => {
    for await (const _ of readFrames(huge)) assert.fail("no frame expected");
  }, FrameError);
  assert.equal(huge.pulls, 2, "read past the length prefix");
});

Deno.test("a stream ending inside a frame throws FrameError after the complete frames", {
  permissions: "none",
}, async () => {
  // Ends inside the payload.
  await assert.rejects(framesOf([fromHex("0000000a 0102030405")]), FrameError);
  // Ends inside the length prefix.
  await assert.rejects(framesOf([fromHex("0000")]), FrameError);
  // Complete frames come out before the error.
  for (const cut of [1, 4, 20, STREAM.byteLength - 1]) {
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const p of readFrames(source([STREAM.slice(0, cut)]))) seen.push(toHex(p));
    }, FrameError);
    const complete = PAYLOADS.filter((_, i) =>
      RECORDED.slice(0, i + 1).reduce((n, h) => n + h.length / 2, 0) <= cut
    );
    assert.deepEqual(seen, complete, `cut at ${cut}`);
  }
});

Deno.test("peekFirst sees the first 4 bytes once and, returning true, stops framing", {
  permissions: "none",
}, async () => {
  for (const chunks of [[fromHex("72756f6b")], bytesOneByOne(fromHex("72756f6b0a"))]) {
    const peeked: string[] = [];
    const src = source(chunks);
    const frames: Uint8Array[] = [];
    // "ruok" read as a length (0x72756f6b) would be a FrameError.
    for await (
      const f of readFrames(src, {
        peekFirst: (first4) => {
          peeked.push(new TextDecoder().decode(first4));
          return true;
        },
      })
    ) frames.push(f);
    assert.deepEqual(peeked, ["ruok"]);
    assert.deepEqual(frames, []);
    assert.equal(src.pulls, Math.min(4, chunks.length), "read past the first 4 bytes");
  }
});

Deno.test("peekFirst returning false lets every frame through and is asked only once", {
  permissions: "none",
}, async () => {
  for (const chunks of [[STREAM], bytesOneByOne(STREAM)]) {
    const peeked: string[] = [];
    const frames = await framesOf(chunks, {
      peekFirst: (first4) => {
        peeked.push(toHex(first4));
        return false;
      },
    });
    assert.deepEqual(frames, PAYLOADS);
    assert.deepEqual(peeked, ["0000002d"]);
  }
});

Deno.test("peekFirst is not asked when the stream ends before 4 bytes", {
  permissions: "none",
}, async () => {
  let asked = 0;
  await assert.rejects(
    framesOf([fromHex("7275"), fromHex("6f")], { peekFirst: () => (asked++, true) }),
    FrameError,
  );
  assert.equal(asked, 0);
  assert.deepEqual(await framesOf([], { peekFirst: () => (asked++, true) }), []);
  assert.equal(asked, 0);
});
