/**
 * Our HTTP/2 client (`src/etcd/grpc/channel.ts`) against a hostile fake
 * etcd: a loopback server speaking raw HTTP/2 frames that breaks the rules
 * of RFC 9113 one at a time (bad lengths and SETTINGS, WINDOW_UPDATE 0 and
 * overflows, CONTINUATION floods, HPACK bombs, DATA past the window, PING
 * floods, garbage), then a seeded run of random frames and bytes. Each call
 * must fail with a GrpcError within a bound, the connection errors must end
 * the connection with a GOAWAY naming the rule, the heap must not grow, and
 * a fresh channel to a real etcd must still work afterwards.
 *
 * Run with `deno test -A --v8-flags=--expose-gc` for the heap check.
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { mulberry32 } from "../_util/random_ops.ts";
import { GrpcChannel, GrpcError } from "../../src/etcd/grpc/channel.ts";

const TXN = "/etcdserverpb.KV/Txn";

// Frame types, flags and error codes (RFC 9113 §6, §7).
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PROTOCOL_ERROR = 0x1;
const FLOW_CONTROL_ERROR = 0x3;
const STREAM_CLOSED = 0x5;
const FRAME_SIZE_ERROR = 0x6;
const CANCEL = 0x8;
const COMPRESSION_ERROR = 0x9;
const ENHANCE_YOUR_CALM = 0xb;

const enc = new TextEncoder();

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

function frame(
  type: number,
  flags: number,
  id: number,
  payload: Uint8Array = new Uint8Array(),
): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  out[0] = payload.length >>> 16;
  out[1] = (payload.length >>> 8) & 0xff;
  out[2] = payload.length & 0xff;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, id);
  out.set(payload, 9);
  return out;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function settings(...pairs: [number, number][]): Uint8Array {
  const payload = new Uint8Array(pairs.length * 6);
  const view = new DataView(payload.buffer);
  pairs.forEach(([key, value], i) => {
    view.setUint16(i * 6, key);
    view.setUint32(i * 6 + 2, value);
  });
  return frame(SETTINGS, 0, 0, payload);
}

/** HPACK: a literal header without indexing, new name, no Huffman (short strings only). */
function literal(name: string, value: string): number[] {
  const n = enc.encode(name);
  const v = enc.encode(value);
  return [0, n.length, ...n, v.length, ...v];
}

/** HPACK: ":status: 200" from the static table. */
const STATUS_200 = 0x88;

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** One client connection to the fake etcd: what the client sent, and writing to it. */
class Peer {
  readonly frames: Frame[] = [];
  /** The error code of the client's GOAWAY, once it came. */
  goaway: number | null = null;
  /** Resolves when the client closed the connection (or reading failed). */
  readonly eof = Promise.withResolvers<void>();
  /** Set to stop reading what the client sends (its writes then block). */
  reading = true;
  /** Whether no more frames will be read. */
  ended = false;
  readonly #waiters: (() => void)[] = [];
  readonly done: Promise<void>;

  constructor(readonly conn: Deno.Conn) {
    this.done = this.#read();
  }

  async #read(): Promise<void> {
    let buf: Uint8Array = new Uint8Array(0);
    let preface = 24;
    const chunk = new Uint8Array(65536);
    try {
      while (this.reading) {
        const n = await this.conn.read(chunk);
        if (n === null) break;
        buf = concat(buf, chunk.subarray(0, n));
        if (preface > 0) {
          const skip = Math.min(preface, buf.length);
          preface -= skip;
          buf = buf.subarray(skip);
        }
        while (buf.length >= 9) {
          const length = (buf[0] << 16) | (buf[1] << 8) | buf[2];
          if (buf.length < 9 + length) break;
          const f: Frame = {
            type: buf[3],
            flags: buf[4],
            id: new DataView(buf.buffer, buf.byteOffset).getUint32(5) & 0x7fffffff,
            payload: buf.slice(9, 9 + length),
          };
          if (f.type === GOAWAY) this.goaway = new DataView(f.payload.buffer).getUint32(4);
          this.frames.push(f);
          buf = buf.subarray(9 + length);
        }
        for (const wake of this.#waiters.splice(0)) wake();
      }
    } catch {
      // closed under us
    }
    if (this.reading) this.eof.resolve();
    this.ended = true;
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** The first frame of `type` the client sent (waiting up to 3 s for it). */
  async next(type: number, match: (f: Frame) => boolean = () => true): Promise<Frame> {
    const until = performance.now() + 3000;
    for (;;) {
      const found = this.frames.find((f) => f.type === type && match(f));
      if (found) return found;
      if (this.ended || performance.now() > until) {
        throw new Error(`the client sent no frame of type ${type}`);
      }
      await within(new Promise<void>((r) => this.#waiters.push(r)), 3000, "a frame").catch(
        () => {},
      );
    }
  }

  /** Writes `frames` in order; false once the client has closed. */
  async write(...frames: Uint8Array[]): Promise<boolean> {
    try {
      for (const f of frames) {
        for (let off = 0; off < f.length;) off += await this.conn.write(f.subarray(off));
      }
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed already */ }
  }
}

/** A fake etcd on a loopback port: runs `script` for each connection. */
class FakeEtcd {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly peers: Peer[] = [];
  /** The first connection. */
  readonly first = Promise.withResolvers<Peer>();
  readonly #tasks: Promise<unknown>[] = [];
  readonly #accepting: Promise<void>;

  constructor(script: (peer: Peer) => Promise<void>) {
    this.#accepting = (async () => {
      try {
        for await (const conn of this.#listener) {
          const peer = new Peer(conn);
          this.peers.push(peer);
          this.first.resolve(peer);
          this.#tasks.push(script(peer).catch(() => {}), peer.done);
        }
      } catch {
        // the listener was closed
      }
    })();
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#listener.close();
    } catch { /* closed */ }
    for (const p of this.peers) p.close();
    await this.#accepting;
    await Promise.all(this.#tasks);
  }
}

/** What the client must see, and tell the server, for one kind of hostility. */
interface Case {
  name: string;
  script(peer: Peer): Promise<void>;
  /** The call's error message. */
  message: RegExp;
  /** The call's gRPC code (default 14 UNAVAILABLE). */
  code?: number;
  /** For a connection error: the code of the client's GOAWAY. */
  goaway?: number;
  /** For a stream error: the code of the client's RST_STREAM on stream 1. */
  reset?: number;
}

/** Waits for the client's request, then sends the server's SETTINGS and `frames`. */
const afterRequest = (...frames: Uint8Array[]) => async (peer: Peer) => {
  await peer.next(HEADERS);
  await peer.write(settings(), ...frames);
};

/** A 16 KiB DATA frame of zeroes on `id`. */
const fullData = (id: number) => frame(DATA, 0, id, new Uint8Array(16384));

const cases: Case[] = [
  {
    name: "a frame over the MAX_FRAME_SIZE we announced",
    script: afterRequest(frame(DATA, 0, 1, new Uint8Array(16385))),
    message: /FRAME_SIZE_ERROR: a frame of 16385 bytes/,
    goaway: FRAME_SIZE_ERROR,
  },
  {
    name: "garbage instead of HTTP/2",
    script: async (peer) => {
      await peer.write(enc.encode("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
    },
    message: /FRAME_SIZE_ERROR/,
    goaway: FRAME_SIZE_ERROR,
  },
  {
    name: "a first frame that is not SETTINGS",
    script: async (peer) => {
      await peer.write(frame(PING, 0, 0, new Uint8Array(8)));
    },
    message: /PROTOCOL_ERROR: the server did not begin with its SETTINGS/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "SETTINGS of 7 bytes",
    script: async (peer) => {
      await peer.write(frame(SETTINGS, 0, 0, new Uint8Array(7)));
    },
    message: /FRAME_SIZE_ERROR: SETTINGS not a multiple of 6/,
    goaway: FRAME_SIZE_ERROR,
  },
  {
    name: "SETTINGS on a stream",
    script: async (peer) => {
      await peer.write(settings(), frame(SETTINGS, 0, 1));
    },
    message: /PROTOCOL_ERROR: SETTINGS on a stream/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "a SETTINGS ACK with a payload",
    script: async (peer) => {
      await peer.write(settings(), frame(SETTINGS, ACK, 0, new Uint8Array(6)));
    },
    message: /FRAME_SIZE_ERROR: SETTINGS ACK with a payload/,
    goaway: FRAME_SIZE_ERROR,
  },
  {
    name: "SETTINGS_MAX_FRAME_SIZE of 0 (it would stall every send)",
    script: async (peer) => {
      await peer.write(settings([0x5, 0]));
    },
    message: /PROTOCOL_ERROR: SETTINGS_MAX_FRAME_SIZE of 0/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "SETTINGS_MAX_FRAME_SIZE of 2^24",
    script: async (peer) => {
      await peer.write(settings([0x5, 1 << 24]));
    },
    message: /PROTOCOL_ERROR: SETTINGS_MAX_FRAME_SIZE of 16777216/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "SETTINGS_INITIAL_WINDOW_SIZE of 2^31",
    script: async (peer) => {
      await peer.write(settings([0x4, 2 ** 31]));
    },
    message: /FLOW_CONTROL_ERROR: SETTINGS_INITIAL_WINDOW_SIZE of 2147483648/,
    goaway: FLOW_CONTROL_ERROR,
  },
  {
    name: "SETTINGS_ENABLE_PUSH of 2",
    script: async (peer) => {
      await peer.write(settings([0x2, 2]));
    },
    message: /PROTOCOL_ERROR: SETTINGS_ENABLE_PUSH of 2/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "a connection WINDOW_UPDATE of 0",
    script: afterRequest(frame(WINDOW_UPDATE, 0, 0, u32(0))),
    message: /PROTOCOL_ERROR: a WINDOW_UPDATE of 0/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "a connection WINDOW_UPDATE past 2^31-1",
    script: afterRequest(frame(WINDOW_UPDATE, 0, 0, u32(0x7fffffff))),
    message: /FLOW_CONTROL_ERROR: the connection window past 2\^31-1/,
    goaway: FLOW_CONTROL_ERROR,
  },
  {
    name: "a WINDOW_UPDATE of 3 bytes",
    script: afterRequest(frame(WINDOW_UPDATE, 0, 0, new Uint8Array(3))),
    message: /FRAME_SIZE_ERROR: WINDOW_UPDATE not 4 bytes/,
    goaway: FRAME_SIZE_ERROR,
  },
  {
    name: "a stream WINDOW_UPDATE of 0 (a stream error)",
    script: afterRequest(frame(WINDOW_UPDATE, 0, 1, u32(0))),
    message: /stream WINDOW_UPDATE of 0 \(HTTP\/2 PROTOCOL_ERROR\)/,
    code: 13,
    reset: PROTOCOL_ERROR,
  },
  {
    name: "a stream WINDOW_UPDATE past 2^31-1 (a stream error)",
    script: afterRequest(frame(WINDOW_UPDATE, 0, 1, u32(0x7fffffff))),
    message: /stream window past 2\^31-1 \(HTTP\/2 FLOW_CONTROL_ERROR\)/,
    code: 13,
    reset: FLOW_CONTROL_ERROR,
  },
  {
    name: "a HEADERS + CONTINUATION flood past 64 KiB",
    script: afterRequest(
      frame(HEADERS, 0, 1, new Uint8Array([STATUS_200])),
      ...Array.from({ length: 8 }, () => frame(CONTINUATION, 0, 1, new Uint8Array(16384))),
    ),
    message: /ENHANCE_YOUR_CALM: a header block over 65536 bytes/,
    goaway: ENHANCE_YOUR_CALM,
  },
  {
    name: "a flood of empty CONTINUATION frames",
    script: afterRequest(
      frame(HEADERS, 0, 1, new Uint8Array([STATUS_200])),
      ...Array.from({ length: 2000 }, () => frame(CONTINUATION, 0, 1)),
    ),
    message: /ENHANCE_YOUR_CALM: a header block over .* or 64 frames/,
    goaway: ENHANCE_YOUR_CALM,
  },
  {
    name: "a header block interrupted by another frame",
    script: afterRequest(frame(HEADERS, 0, 1, new Uint8Array([STATUS_200])), fullData(1)),
    message: /PROTOCOL_ERROR: header block interrupted/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "an HPACK bomb: a 4 KiB table entry named 12000 times (a stream error)",
    script: afterRequest(frame(
      HEADERS,
      END_HEADERS | END_STREAM,
      1,
      new Uint8Array([
        STATUS_200,
        // Literal with incremental indexing, new name: "x-bomb" = 4000 bytes, table entry 62.
        0x40,
        6,
        ...enc.encode("x-bomb"),
        0x7f,
        ...[4000 - 127].flatMap((n) => [(n & 0x7f) | 0x80, n >> 7]),
        ...new Uint8Array(4000).fill(0x61),
        ...new Uint8Array(12000).fill(0x80 | 62),
      ]),
    )),
    message: /etcd sent headers over 65536 bytes/,
    code: 8,
    reset: CANCEL,
  },
  {
    name: "an HPACK table size over the 4 KiB we allow",
    script: afterRequest(
      frame(HEADERS, END_HEADERS | END_STREAM, 1, new Uint8Array([0x3f, 0xe1, 0xff, 0x3f])),
    ),
    message: /COMPRESSION_ERROR: HPACK: table size over the announced limit/,
    goaway: COMPRESSION_ERROR,
  },
  {
    name: "an HPACK index past both tables",
    script: afterRequest(frame(HEADERS, END_HEADERS, 1, new Uint8Array([0x80 | 70]))),
    message: /COMPRESSION_ERROR: HPACK: no table entry 70/,
    goaway: COMPRESSION_ERROR,
  },
  {
    name: "padding longer than its frame",
    script: afterRequest(frame(HEADERS, END_HEADERS | PADDED, 1, new Uint8Array([200, 0x88]))),
    message: /PROTOCOL_ERROR: padding longer than the frame/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "DATA on a stream never opened",
    script: afterRequest(frame(DATA, 0, 3, new Uint8Array(5))),
    message: /PROTOCOL_ERROR: DATA on stream 3, which was never opened/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "HEADERS on stream 0",
    script: afterRequest(frame(HEADERS, END_HEADERS, 0, new Uint8Array([STATUS_200]))),
    message: /PROTOCOL_ERROR: HEADERS on stream 0/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "a PUSH_PROMISE, with push disabled",
    script: afterRequest(frame(PUSH_PROMISE, END_HEADERS, 1, new Uint8Array([0, 0, 0, 2, 0x82]))),
    message: /PROTOCOL_ERROR: PUSH_PROMISE/,
    goaway: PROTOCOL_ERROR,
  },
  {
    name: "a GOAWAY of 3 bytes",
    script: afterRequest(frame(GOAWAY, 0, 0, new Uint8Array(3))),
    message: /FRAME_SIZE_ERROR: GOAWAY under 8 bytes/,
    goaway: FRAME_SIZE_ERROR,
  },
  {
    name: "a PING of 7 bytes",
    script: afterRequest(frame(PING, 0, 0, new Uint8Array(7))),
    message: /FRAME_SIZE_ERROR: PING not 8 bytes/,
    goaway: FRAME_SIZE_ERROR,
  },
  {
    name: "DATA after the call's last HEADERS",
    script: afterRequest(
      frame(HEADERS, END_HEADERS | END_STREAM, 1, new Uint8Array(literal("grpc-status", "0"))),
      frame(DATA, 0, 1, new Uint8Array(5)),
    ),
    message: /etcd sent no response message/,
    code: 13,
    goaway: STREAM_CLOSED,
  },
  {
    name: "a DATA flood past the window of a call we cancelled",
    script: async (peer) => {
      await peer.next(HEADERS);
      // A message of 2 MiB: over the call's 1 MiB limit, so the client cancels it.
      const head = new Uint8Array(16384);
      new DataView(head.buffer).setUint32(1, 2 << 20);
      await peer.write(
        settings(),
        frame(HEADERS, END_HEADERS, 1, new Uint8Array([STATUS_200])),
        frame(DATA, 0, 1, head),
      );
      // Then 5 MiB more, past the 4 MiB the stream was given.
      const burst = concatAll(Array.from({ length: 16 }, () => fullData(1)));
      for (let i = 0; i < 20; i++) if (!await peer.write(burst)) return;
    },
    message: /received message larger than max/,
    code: 8,
    goaway: FLOW_CONTROL_ERROR,
  },
  {
    name: "a PING flood from a server that does not read our ACKs",
    script: async (peer) => {
      await peer.next(HEADERS);
      peer.reading = false;
      const burst = concatAll(
        Array.from({ length: 1024 }, () => frame(PING, 0, 0, new Uint8Array(8))),
      );
      await peer.write(settings());
      for (let i = 0; i < 2000; i++) if (!await peer.write(burst)) return;
    },
    message: /ENHANCE_YOUR_CALM: over 4096 PING\/SETTINGS not read/,
  },
];

function concatAll(parts: Uint8Array[]): Uint8Array {
  return parts.reduce((a, b) => concat(a, b), new Uint8Array(0));
}

/**
 * Runs one call against `fake`; returns its error and how long it took.
 * The channel closes once `after` is done.
 */
async function failedCall(
  fake: FakeEtcd,
  options: Partial<ConstructorParameters<typeof GrpcChannel>[0]> = {},
  after: (err: GrpcError) => Promise<void> = async () => {},
): Promise<{ err: GrpcError; ms: number }> {
  const channel = new GrpcChannel({
    endpoints: [fake.url],
    callTimeoutMs: 2000,
    maxResponseBytes: 1 << 20,
    ...options,
  });
  const started = performance.now();
  try {
    const err = await channel.unary(TXN, new Uint8Array()).then(() => null, (e) => e);
    const ms = performance.now() - started;
    assert.ok(err instanceof GrpcError, `the call failed with a GrpcError (${err})`);
    await after(err);
    return { err, ms };
  } finally {
    channel.close();
  }
}

for (const c of cases) {
  Deno.test({
    name: `hostile etcd: ${c.name}`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    await using fake = new FakeEtcd(c.script);
    const { err, ms } = await failedCall(fake, {}, async () => {
      // Checked before the channel closes (a close sends no GOAWAY).
      const peer = fake.peers[0];
      if (c.goaway !== undefined) {
        await within(peer.eof.promise, 2000, "the client closing");
        assert.equal(peer.goaway, c.goaway, "the client's GOAWAY names the error");
      }
      if (c.reset !== undefined) {
        const rst = await peer.next(RST_STREAM, (f) => f.id === 1);
        assert.equal(new DataView(rst.payload.buffer).getUint32(0), c.reset);
        assert.equal(peer.goaway, null, "a stream error leaves the connection");
      }
    });
    assert.match(err.message, c.message);
    assert.equal(err.code, c.code ?? 14, err.message);
    assert.ok(ms < 3000, `failed within 3 s (${ms.toFixed(0)} ms)`);
  });
}

Deno.test({
  name: "hostile etcd: after a connection error the next call opens a new connection",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using fake = new FakeEtcd(afterRequest(frame(WINDOW_UPDATE, 0, 0, u32(0))));
  const channel = new GrpcChannel({
    endpoints: [fake.url],
    callTimeoutMs: 2000,
    maxResponseBytes: 1 << 20,
  });
  try {
    for (let i = 1; i <= 2; i++) {
      await assert.rejects(channel.unary(TXN, new Uint8Array()), /a WINDOW_UPDATE of 0/);
      assert.equal(fake.peers.length, i);
    }
  } finally {
    channel.close();
  }
});

Deno.test({
  name: "hostile etcd: a SETTINGS_MAX_CONCURRENT_STREAMS of 0 fails calls at their deadline",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using fake = new FakeEtcd(async (peer) => {
    await peer.next(HEADERS);
    await peer.write(settings([0x3, 0]));
  });
  const channel = new GrpcChannel({
    endpoints: [fake.url],
    callTimeoutMs: 600,
    maxResponseBytes: 1 << 20,
    keepAliveMs: 0,
  });
  try {
    // The first call is on the wire before the limit comes; its own deadline is longer.
    const first = channel.unary(TXN, new Uint8Array(), undefined, 10_000).catch((e) => e);
    const peer = await fake.first.promise;
    await peer.next(SETTINGS, (f) => (f.flags & ACK) !== 0); // the limit is in force
    const started = performance.now();
    const second = await channel.unary(TXN, new Uint8Array()).catch((e) => e);
    assert.equal((second as GrpcError).code, 4, String(second));
    assert.ok(performance.now() - started < 1500);
    channel.close();
    assert.equal(((await first) as GrpcError).code, 1);
  } finally {
    channel.close();
  }
});

Deno.test({
  name: "hostile etcd: a server gone silent is found by a PING, not at the call's deadline",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using fake = new FakeEtcd(async (peer) => {
    await peer.next(HEADERS);
    await peer.write(settings()); // and then nothing, PINGs unanswered
  });
  const { err, ms } = await failedCall(fake, {
    callTimeoutMs: 30_000,
    keepAliveMs: 200,
    keepAliveTimeoutMs: 300,
  });
  assert.equal(err.code, 14);
  assert.match(err.message, /did not answer a PING within 300 ms/);
  assert.ok(ms < 2000, `found in ${ms.toFixed(0)} ms`);
  assert.ok(fake.peers[0].frames.some((f) => f.type === PING && !(f.flags & ACK)));
});

Deno.test({
  name: "hostile etcd: a server that answers PINGs keeps its connection; none without calls",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  let acked = 0;
  await using fake = new FakeEtcd(async (peer) => {
    await peer.next(HEADERS);
    await peer.write(settings());
    // Answers every PING, never the call.
    const answered = new Set<Frame>();
    for (;;) {
      const ping = await peer.next(PING, (f) => !(f.flags & ACK) && !answered.has(f));
      answered.add(ping);
      if (!await peer.write(frame(PING, ACK, 0, ping.payload))) return;
      acked++;
    }
  });
  const channel = new GrpcChannel({
    endpoints: [fake.url],
    callTimeoutMs: 1200,
    maxResponseBytes: 1 << 20,
    keepAliveMs: 100,
    keepAliveTimeoutMs: 400,
  });
  try {
    const err = await channel.unary(TXN, new Uint8Array()).catch((e) => e);
    assert.equal((err as GrpcError).code, 4, String(err));
    assert.ok(acked >= 3, `${acked} PINGs answered`);
    // The connection lived through the call; idle now, it is not pinged.
    const before = acked;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(acked, before);
    assert.equal(fake.peers.length, 1);
    assert.equal(fake.peers[0].goaway, null);
  } finally {
    channel.close();
  }
});

Deno.test({
  name:
    "hostile etcd: seeded random frames and bytes never crash, hang or grow the heap, and real etcd still works",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 1_000_000);
  const count = Number(Deno.env.get("FUZZ_CASES") ?? 300);
  /** Outcomes by gRPC code (0: the call went through), and connection errors by HTTP/2 name. */
  const tally: Record<string, number> = {};
  const heapUsed = () => {
    (globalThis as { gc?: () => void }).gc?.();
    return Deno.memoryUsage().heapUsed;
  };

  /** One case: a random mix of SETTINGS, frames of random types, flags, streams and lengths, and raw bytes. */
  async function fuzzCase(i: number): Promise<void> {
    const random = mulberry32(seed * 7919 + i);
    const int = (n: number) => Math.floor(random() * n);
    const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
    const parts: Uint8Array[] = [];
    if (random() < 0.8) parts.push(settings());
    if (random() < 0.3) parts.push(frame(HEADERS, END_HEADERS, 1, new Uint8Array([STATUS_200])));
    for (let k = 1 + int(12); k > 0; k--) {
      if (random() < 0.2) {
        parts.push(bytes(int(100)));
      } else {
        const lengths = [0, 1, 3, 4, 5, 6, 7, 8, 9, 12, int(64), int(2000)];
        const payload = bytes(lengths[int(lengths.length)]);
        if (random() < 0.3 && payload.length >= 5) payload[0] = 0; // a gRPC message prefix
        parts.push(frame(int(12), int(256), [0, 1, 1, 1, 2, 3, 0x7fffffff][int(7)], payload));
      }
    }
    const hangUp = random() < 0.85;
    await using fake = new FakeEtcd(async (peer) => {
      await peer.next(HEADERS);
      await peer.write(...parts);
      if (hangUp) peer.close();
    });
    const channel = new GrpcChannel({
      endpoints: [fake.url],
      callTimeoutMs: 800,
      maxResponseBytes: 1 << 16,
    });
    const started = performance.now();
    try {
      const outcome = await channel.unary(TXN, new Uint8Array()).then(() => null, (e) => e);
      const ms = performance.now() - started;
      // A random success is allowed (it is not a crash); anything thrown must be a GrpcError.
      assert.ok(outcome === null || outcome instanceof GrpcError, `case ${i}: ${outcome}`);
      const kind = outcome === null
        ? "ok"
        : /HTTP\/2 ([A-Z_]+)/.exec(outcome.message)?.[1] ?? `code ${outcome.code}`;
      tally[kind] = (tally[kind] ?? 0) + 1;
      assert.ok(ms < 3000, `case ${i} (seed ${seed}) took ${ms.toFixed(0)} ms`);
    } finally {
      channel.close();
    }
  }

  // One round first so that the heap measure leaves out what the first cases load once.
  await Promise.all(Array.from({ length: 8 }, (_, i) => fuzzCase(count + i)));
  const before = heapUsed();
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < count) await fuzzCase(next++);
  }));
  const grown = (heapUsed() - before) / 1024 / 1024;
  console.log(
    `hostile etcd fuzz: seed ${seed}, ${count} cases, heap grew ${grown.toFixed(1)} MiB,`,
    JSON.stringify(tally),
  );
  const limit = "gc" in globalThis ? 16 : 128;
  assert.ok(grown < limit, `heap grew by ${grown.toFixed(1)} MiB (seed ${seed})`);

  // And a real etcd is still served, on a fresh channel.
  await using etcd = await startEtcd();
  const channel = new GrpcChannel({
    endpoints: [etcd.clientUrl],
    callTimeoutMs: 5000,
    maxResponseBytes: 1 << 20,
  });
  try {
    await channel.unary(TXN, new Uint8Array());
  } finally {
    channel.close();
  }
});

Deno.test({
  name: "etcd's PINGs are acknowledged behind our next call's frames, or within 10 ms without one",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const payload = (n: number) => new Uint8Array([n, 0, 0, 0, 0, 0, 0, n]);
  const answer = (id: number) => [
    frame(HEADERS, END_HEADERS, id, new Uint8Array([STATUS_200])),
    frame(DATA, 0, id, new Uint8Array(5)), // an empty message
    frame(HEADERS, END_HEADERS | END_STREAM, id, new Uint8Array(literal("grpc-status", "0"))),
  ];
  await using fake = new FakeEtcd(async (peer) => {
    await peer.next(HEADERS, (f) => f.id === 1);
    await peer.write(settings());
    await peer.next(SETTINGS, (f) => (f.flags & ACK) !== 0);
    // grpc-go pings as a call's request arrives; here with the answer.
    await peer.write(concatAll([frame(PING, 0, 0, payload(1)), ...answer(1)]));
    await peer.next(HEADERS, (f) => f.id === 3);
    await peer.write(...answer(3), frame(PING, 0, 0, payload(2)));
  });
  const channel = new GrpcChannel({
    endpoints: [fake.url],
    callTimeoutMs: 5000,
    maxResponseBytes: 1 << 20,
    keepAliveMs: 0,
  });
  try {
    await channel.unary(TXN, new Uint8Array());
    // The next call, at once: the first PING's ACK goes out behind it.
    await channel.unary(TXN, new Uint8Array());
    const peer = fake.peers[0];
    const acks = () => peer.frames.filter((f) => f.type === PING && (f.flags & ACK) !== 0);
    const second = peer.frames.findIndex((f) => f.type === HEADERS && f.id === 3);
    assert.deepEqual(acks()[0]?.payload, payload(1));
    assert.ok(peer.frames.indexOf(acks()[0]) > second, "the ACK came behind the second call");
    // No call after the second PING: its ACK goes out on its own, soon.
    const started = performance.now();
    const ack = await peer.next(PING, (f) => (f.flags & ACK) !== 0 && f.payload[0] === 2);
    assert.deepEqual(ack.payload, payload(2));
    assert.ok(performance.now() - started < 500);
  } finally {
    channel.close();
  }
});
