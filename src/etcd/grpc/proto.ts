/**
 * The protobuf messages of etcd's KV.Txn, KV.Compact, Watch, Lease and
 * Auth.Authenticate calls (etcd's `rpc.proto` and `kv.proto`), encoded and
 * decoded by hand: a `TxnRequest` from our compares and operations, a
 * `TxnResponse` into our result types, a watch's creation and its
 * responses, a lease's grant, revocation, time to live and keep-alive, a
 * compaction, and the exchange of a user's password for a token. Field
 * numbers are etcd's; nothing else of protobuf is needed.
 *
 * @module
 */

import type { Compare, KeyValue, Op, RangeResult, WatchEvent } from "../ops.ts";

/** A decoded TxnResponse; a nested transaction keeps its own. */
export interface TxnResponse {
  revision: bigint;
  succeeded: boolean;
  /** Per operation: a range's result, a nested transaction's, or null for puts and deletes. */
  responses: (RangeResult | TxnResponse | null)[];
}

/** A transaction to encode: compares, then the two branches. */
export interface TxnRequest {
  compare: Compare[];
  success: (Op | TxnRequest)[];
  failure: (Op | TxnRequest)[];
}

const VARINT = 0;
const LEN = 2;

/** A growable buffer of protobuf fields. */
class Writer {
  buf = new Uint8Array(256);
  pos = 0;

  #room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  varint(value: number): void {
    this.#room(10);
    this.pos = this.#varintAt(this.pos, value);
  }

  /** Writes `value` (a safe integer) as a varint at `p`, in room already made; returns the end. */
  #varintAt(p: number, value: number): number {
    while (value >= 0x80) {
      this.buf[p++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buf[p++] = value;
    return p;
  }

  /** An int64 field (omitted when zero, as proto3 does, unless `always`). */
  int64(field: number, value: bigint | number | undefined, always = false): void {
    if (!always && (value === undefined || value === 0 || value === 0n)) return;
    value ??= 0;
    this.varint(field << 3 | VARINT);
    if (typeof value === "number" && value >= 0 && value <= Number.MAX_SAFE_INTEGER) {
      this.varint(value);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    this.#room(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  bool(field: number, value: boolean | undefined): void {
    if (!value) return;
    this.varint(field << 3 | VARINT);
    this.varint(1);
  }

  /** A bytes or embedded-message field (empty bytes are omitted unless `always`). */
  bytes(field: number, bytes: Uint8Array | undefined, always = false): void {
    if (!bytes || (bytes.length === 0 && !always)) return;
    this.varint(field << 3 | LEN);
    this.varint(bytes.length);
    this.#room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /**
   * A string field as UTF-8, encoded straight into the buffer (empty
   * strings are omitted unless `always`): its length is reserved as for
   * {@link message}.
   */
  string(field: number, text: string, always = false): void {
    if (text.length === 0 && !always) return;
    this.message(field, (w) => {
      // UTF-8 takes at most 3 bytes per UTF-16 code unit.
      w.#room(3 * text.length);
      w.pos += encoder.encodeInto(text, w.buf.subarray(w.pos)).written;
    });
  }

  /**
   * An embedded message, written by `fill` in place: its length is not
   * known before, so one byte is left for it (the usual case) and the
   * message moved along when its length needs more.
   */
  message(field: number, fill: (w: Writer) => void): void {
    this.varint(field << 3 | LEN);
    this.#room(1);
    const at = this.pos++;
    fill(this);
    const length = this.pos - at - 1;
    let extra = 0;
    for (let v = length; v >= 0x80; v = Math.floor(v / 128)) extra++;
    if (extra > 0) {
      this.#room(extra);
      this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
      this.pos += extra;
    }
    this.#varintAt(at, length);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

const encoder = new TextEncoder();

/** The smallest key greater than every key starting with `prefix`. */
export function prefixEndBytes(prefix: string): Uint8Array {
  const bytes = encoder.encode(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = bytes.slice(0, i + 1);
      end[i]++;
      return end;
    }
  }
  return new Uint8Array([0]);
}

const COMPARE_TARGET = { version: 0, create: 1, mod: 2, value: 3, lease: 4 } as const;
/** The field of Compare.target_union for each target. */
const COMPARE_FIELD = { version: 4, create: 5, mod: 6, value: 7, lease: 8 } as const;
const COMPARE_RESULT = { "==": 0, ">": 1, "<": 2, "!=": 3 } as const;

function writeCompare(w: Writer, c: Compare): void {
  w.int64(1, COMPARE_RESULT[c.op]);
  w.int64(2, COMPARE_TARGET[c.target]);
  w.string(3, c.key, true);
  if (c.target === "value") {
    w.bytes(COMPARE_FIELD.value, c.bytes, true);
  } else {
    // A oneof member is written even when zero, so etcd knows which one is set.
    w.int64(COMPARE_FIELD[c.target], c.value, true);
    if (c.prefix) w.bytes(64, prefixEndBytes(c.key), true);
  }
}

function writeOp(w: Writer, op: Op | TxnRequest): void {
  if ("compare" in op) {
    w.message(4, (t) => writeTxn(t, op));
  } else if ("get" in op) {
    w.message(1, (r) => {
      r.string(1, op.from ?? op.get, true);
      if (op.end !== undefined) r.string(2, op.end);
      else if (op.prefix) r.bytes(2, prefixEndBytes(op.get));
      r.int64(3, op.limit);
      r.int64(4, op.revision);
      // etcd's SortOrder.DESCEND = 2, SortTarget.MOD = 3.
      if (op.newestFirst) {
        r.int64(5, 2);
        r.int64(6, 3);
      }
      r.bool(8, op.keysOnly);
      r.bool(9, op.countOnly);
    });
  } else if ("put" in op) {
    w.message(2, (p) => {
      p.string(1, op.put, true);
      if (!op.ignoreValue) p.bytes(2, op.value);
      p.int64(3, op.lease);
      p.bool(5, op.ignoreValue);
      p.bool(6, op.ignoreLease);
    });
  } else {
    w.message(3, (d) => {
      d.string(1, op.del, true);
      if (op.prefix) d.bytes(2, prefixEndBytes(op.del));
    });
  }
}

function writeTxn(w: Writer, txn: TxnRequest): void {
  for (const c of txn.compare) w.message(1, (m) => writeCompare(m, c));
  for (const op of txn.success) w.message(2, (m) => writeOp(m, op));
  for (const op of txn.failure) w.message(3, (m) => writeOp(m, op));
}

/** Encodes a TxnRequest. */
export function encodeTxnRequest(txn: TxnRequest): Uint8Array {
  const w = new Writer();
  writeTxn(w, txn);
  return w.finish();
}

/** A cursor over protobuf bytes. */
class Reader {
  constructor(readonly buf: Uint8Array, public pos = 0, readonly end = buf.length) {}

  /** A varint as a number (exact below 2^53; int64 fields above that are read by {@link big}). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error("protobuf: truncated varint");
      const b = this.buf[this.pos++];
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
      if (scale > 2 ** 63) throw new Error("protobuf: varint too long");
    }
  }

  /** An int64 varint as a bigint (exact for every value). */
  big(): bigint {
    const start = this.pos;
    const n = this.varint();
    if (n <= Number.MAX_SAFE_INTEGER) return smallBig(n);
    let v = 0n;
    let shift = 0n;
    for (let i = start; i < this.pos; i++) {
      v |= BigInt(this.buf[i] & 0x7f) << shift;
      shift += 7n;
    }
    return BigInt.asIntN(64, v);
  }

  /** A length-delimited field: the reader over its bytes. */
  sub(): Reader {
    const len = this.varint();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.end) throw new Error("protobuf: truncated field");
    return new Reader(this.buf, start, this.pos);
  }

  bytes(): Uint8Array {
    const r = this.sub();
    return this.buf.subarray(r.pos, r.end);
  }

  skip(wireType: number): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === LEN) this.sub();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`protobuf: unexpected wire type ${wireType}`);
  }
}

/** Small versions, made once: most keys have been written only a few times. */
const SMALL = Array.from({ length: 64 }, (_, i) => BigInt(i));
let lastNumber = 0;
let lastBig = 0n;

/** A bigint for `n` (a safe integer), reusing the last one: keys written together share their revisions. */
export function smallBig(n: number): bigint {
  if (n < SMALL.length) return SMALL[n];
  if (n !== lastNumber) {
    lastNumber = n;
    lastBig = BigInt(n);
  }
  return lastBig;
}

const utf8 = new TextDecoder();
/** Shared by every empty value (most attribute keys hold none). */
export const EMPTY = new Uint8Array();

function readKv(r: Reader): KeyValue {
  let key = "";
  let value = EMPTY;
  let createRevision = 0n;
  let modRevision = 0n;
  let version = 0n;
  let lease = 0n;
  while (r.pos < r.end) {
    const tag = r.varint();
    switch (tag) {
      case 1 << 3 | LEN:
        key = utf8.decode(r.bytes());
        break;
      case 2 << 3 | VARINT:
        createRevision = r.big();
        break;
      case 3 << 3 | VARINT:
        modRevision = r.big();
        break;
      case 4 << 3 | VARINT:
        version = r.big();
        break;
      case 5 << 3 | LEN: {
        const bytes = r.bytes();
        // A copy: the value may outlive the response it came in.
        if (bytes.length > 0) value = bytes.slice();
        break;
      }
      case 6 << 3 | VARINT:
        lease = r.big();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return { key, value, createRevision, modRevision, version, lease };
}

function readRange(r: Reader): RangeResult {
  const kvs: KeyValue[] = [];
  let count = 0;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (2 << 3 | LEN)) kvs.push(readKv(r.sub()));
    else if (tag === (4 << 3 | VARINT)) count = r.varint();
    else r.skip(tag & 7);
  }
  return { kvs, count };
}

function readHeaderRevision(r: Reader): bigint {
  let revision = 0n;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (3 << 3 | VARINT)) revision = r.big();
    else r.skip(tag & 7);
  }
  return revision;
}

function readResponseOp(r: Reader): RangeResult | TxnResponse | null {
  let out: RangeResult | TxnResponse | null = null;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | LEN)) out = readRange(r.sub());
    else if (tag === (4 << 3 | LEN)) out = readTxn(r.sub());
    else r.skip(tag & 7);
  }
  return out;
}

function readTxn(r: Reader): TxnResponse {
  const out: TxnResponse = { revision: 0n, succeeded: false, responses: [] };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | LEN)) out.revision = readHeaderRevision(r.sub());
    else if (tag === (2 << 3 | VARINT)) out.succeeded = r.varint() !== 0;
    else if (tag === (3 << 3 | LEN)) out.responses.push(readResponseOp(r.sub()));
    else r.skip(tag & 7);
  }
  return out;
}

/** Decodes a TxnResponse. */
export function decodeTxnResponse(bytes: Uint8Array): TxnResponse {
  return readTxn(new Reader(bytes));
}

/** Encodes an AuthenticateRequest: a user's name and password. */
export function encodeAuthenticateRequest(name: string, password: string): Uint8Array {
  const w = new Writer();
  w.bytes(1, encoder.encode(name));
  w.bytes(2, encoder.encode(password));
  return w.finish();
}

/** The token of an AuthenticateResponse. */
export function decodeAuthenticateToken(bytes: Uint8Array): string {
  const r = new Reader(bytes);
  let token = "";
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (2 << 3 | LEN)) token = utf8.decode(r.bytes());
    else r.skip(tag & 7);
  }
  return token;
}

/**
 * Encodes a WatchRequest creating a watch of every key under `prefix`, from
 * `from` on. Without previous values: etcd would read each changed key's
 * previous revision from its backend for every event (about 10% of a watch
 * notification's latency here).
 */
export function encodeWatchCreate(prefix: string, from: bigint): Uint8Array {
  const w = new Writer();
  w.message(1, (c) => {
    c.bytes(1, encoder.encode(prefix), true);
    c.bytes(2, prefixEndBytes(prefix));
    c.int64(3, from);
  });
  return w.finish();
}

/** A decoded WatchResponse. */
export interface WatchResponse {
  revision: bigint;
  created: boolean;
  canceled: boolean;
  /** With `canceled`: the oldest revision etcd still has, when the start was compacted away. */
  compactRevision: bigint;
  cancelReason: string;
  events: WatchEvent[];
}

function readEvent(r: Reader): WatchEvent {
  let type: WatchEvent["type"] = "put";
  let kv: KeyValue | undefined;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | VARINT)) type = r.varint() === 1 ? "delete" : "put";
    else if (tag === (2 << 3 | LEN)) kv = readKv(r.sub());
    else r.skip(tag & 7);
  }
  if (!kv) throw new Error("protobuf: watch event without a key");
  return { type, kv };
}

/** Decodes a WatchResponse. */
export function decodeWatchResponse(bytes: Uint8Array): WatchResponse {
  const r = new Reader(bytes);
  const out: WatchResponse = {
    revision: 0n,
    created: false,
    canceled: false,
    compactRevision: 0n,
    cancelReason: "",
    events: [],
  };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (1 << 3 | LEN)) out.revision = readHeaderRevision(r.sub());
    else if (tag === (3 << 3 | VARINT)) out.created = r.varint() !== 0;
    else if (tag === (4 << 3 | VARINT)) out.canceled = r.varint() !== 0;
    else if (tag === (5 << 3 | VARINT)) out.compactRevision = r.big();
    else if (tag === (6 << 3 | LEN)) out.cancelReason = utf8.decode(r.bytes());
    else if (tag === (11 << 3 | LEN)) out.events.push(readEvent(r.sub()));
    else r.skip(tag & 7);
  }
  return out;
}

/** Encodes a LeaseGrantRequest: a lease of `ttl` seconds, its id chosen by etcd (`id` 0). */
export function encodeLeaseGrantRequest(ttl: number | bigint, id: bigint = 0n): Uint8Array {
  const w = new Writer();
  w.int64(1, ttl);
  w.int64(2, id);
  return w.finish();
}

/** A decoded LeaseGrantResponse. */
export interface LeaseGrantResponse {
  id: bigint;
  /** The TTL etcd chose, in seconds. */
  ttl: bigint;
  /** etcd's error text, if any (etcd refuses with a gRPC status instead). */
  error: string;
}

/** Decodes a LeaseGrantResponse. */
export function decodeLeaseGrantResponse(bytes: Uint8Array): LeaseGrantResponse {
  const r = new Reader(bytes);
  const out: LeaseGrantResponse = { id: 0n, ttl: 0n, error: "" };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (2 << 3 | VARINT)) out.id = r.big();
    else if (tag === (3 << 3 | VARINT)) out.ttl = r.big();
    else if (tag === (4 << 3 | LEN)) out.error = utf8.decode(r.bytes());
    else r.skip(tag & 7);
  }
  return out;
}

/** Encodes a LeaseRevokeRequest (the answer, a header only, is not decoded). */
export function encodeLeaseRevokeRequest(id: bigint): Uint8Array {
  const w = new Writer();
  w.int64(1, id);
  return w.finish();
}

/** Encodes a LeaseTimeToLiveRequest; with `keys`, etcd lists the keys attached to the lease. */
export function encodeLeaseTimeToLiveRequest(id: bigint, keys: boolean): Uint8Array {
  const w = new Writer();
  w.int64(1, id);
  w.bool(2, keys);
  return w.finish();
}

/** A decoded LeaseTimeToLiveResponse. */
export interface LeaseTimeToLiveResponse {
  id: bigint;
  /** Seconds left (-1 for a lease etcd does not have). */
  ttl: bigint;
  /** The TTL the lease was granted (or last renewed) with. */
  grantedTtl: bigint;
  /** The keys attached, when asked for. */
  keys: string[];
}

/** Decodes a LeaseTimeToLiveResponse. */
export function decodeLeaseTimeToLiveResponse(bytes: Uint8Array): LeaseTimeToLiveResponse {
  const r = new Reader(bytes);
  const out: LeaseTimeToLiveResponse = { id: 0n, ttl: 0n, grantedTtl: 0n, keys: [] };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (2 << 3 | VARINT)) out.id = r.big();
    else if (tag === (3 << 3 | VARINT)) out.ttl = r.big();
    else if (tag === (4 << 3 | VARINT)) out.grantedTtl = r.big();
    else if (tag === (5 << 3 | LEN)) out.keys.push(utf8.decode(r.bytes()));
    else r.skip(tag & 7);
  }
  return out;
}

/** Encodes a LeaseKeepAliveRequest: one message of the keep-alive stream. */
export function encodeLeaseKeepAliveRequest(id: bigint): Uint8Array {
  const w = new Writer();
  w.int64(1, id);
  return w.finish();
}

/** A decoded LeaseKeepAliveResponse. */
export interface LeaseKeepAliveResponse {
  id: bigint;
  /** The lease's new TTL in seconds; 0 when etcd does not have it. */
  ttl: bigint;
}

/** Decodes a LeaseKeepAliveResponse. */
export function decodeLeaseKeepAliveResponse(bytes: Uint8Array): LeaseKeepAliveResponse {
  const r = new Reader(bytes);
  const out: LeaseKeepAliveResponse = { id: 0n, ttl: 0n };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === (2 << 3 | VARINT)) out.id = r.big();
    else if (tag === (3 << 3 | VARINT)) out.ttl = r.big();
    else r.skip(tag & 7);
  }
  return out;
}

/**
 * Encodes a CompactionRequest: discard the history before `revision`;
 * `physical` waits until it is gone from the backend (the answer, a header
 * only, is not decoded).
 */
export function encodeCompactionRequest(revision: bigint, physical = false): Uint8Array {
  const w = new Writer();
  w.int64(1, revision);
  w.bool(2, physical);
  return w.finish();
}
