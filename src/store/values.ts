/**
 * Encodings of the values stored under the layout's keys (see `keys.ts`).
 * Each starts with or carries a format version so that later releases can
 * read what this one wrote.
 *
 * @module
 */

import type { ACL } from "../zk/records.ts";

const NULL_DATA = 1;
const HAS_TTL = 2;

/**
 * The node record: the znode's data, its last modification time and, from
 * layout 3 on, the facts fixed when it was created (before, those lived in
 * the `meta` key alone).
 */
export interface NodeValue {
  data: Uint8Array | null;
  mtime: bigint;
  /** Absent in a record of format 1: the node's `meta` key holds them. */
  meta?: MetaValue;
}

/**
 * Format 2 (with `meta`): `[2][flags: bit 0 = null data, bit 1 = ttl][mtime
 * int64 ms][ctime int64 ms][owner int64][mode uint8][ttl int64 ms, if bit
 * 1][data bytes]`. Format 1 (without): `[1][flags: bit 0][mtime][data]`.
 */
export function encodeNode(v: NodeValue): Uint8Array {
  const data = v.data ?? new Uint8Array();
  const m = v.meta;
  const head = m === undefined ? 10 : m.ttl === undefined ? 27 : 35;
  const out = new Uint8Array(head + data.byteLength);
  const view = new DataView(out.buffer);
  out[0] = m === undefined ? 1 : 2;
  out[1] = (v.data === null ? NULL_DATA : 0) | (m?.ttl === undefined ? 0 : HAS_TTL);
  view.setBigInt64(2, v.mtime);
  if (m !== undefined) {
    view.setBigInt64(10, m.ctime);
    view.setBigInt64(18, m.owner);
    out[26] = m.mode;
    if (m.ttl !== undefined) view.setBigInt64(27, m.ttl);
  }
  out.set(data, head);
  return out;
}

/** Reads a node record written by any release so far. */
export function decodeNode(bytes: Uint8Array): NodeValue {
  const format = bytes[0];
  const flags = bytes[1];
  const head = format === 1 ? 10 : format === 2 ? (flags & HAS_TTL ? 35 : 27) : -1;
  if (head < 0 || bytes.byteLength < head) {
    throw new Error(`unreadable node record: format ${format}, ${bytes.byteLength} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data = (flags & NULL_DATA) ? null : bytes.slice(head);
  const mtime = view.getBigInt64(2);
  if (format === 1) return { data, mtime };
  const meta: MetaValue = {
    ctime: view.getBigInt64(10),
    owner: view.getBigInt64(18),
    mode: bytes[26],
  };
  if (flags & HAS_TTL) meta.ttl = view.getBigInt64(27);
  return { data, mtime, meta };
}

/** Immutable facts about a znode, fixed when it is created. */
export interface MetaValue {
  /** Creation time, ms since the epoch. */
  ctime: bigint;
  /** The create flags (`CreateMode`) it was created with. */
  mode: number;
  /** Owning session for ephemerals, else 0n. */
  owner: bigint;
  /** Time to live of a TTL node, ms. */
  ttl?: bigint;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The `meta` key's JSON `{"v":1,"ctime":"…","mode":n,"owner":"<hex>"[,"ttl":"<ms>"]}`:
 * written by layouts 1 and 2 with every node, and from layout 3 only where
 * a batch deletes and creates a node again (see `keys.ts`).
 */
export function encodeMeta(v: MetaValue): Uint8Array {
  return encoder.encode(JSON.stringify({
    v: 1,
    ctime: String(v.ctime),
    mode: v.mode,
    owner: BigInt.asUintN(64, v.owner).toString(16),
    ...(v.ttl === undefined ? {} : { ttl: String(v.ttl) }),
  }));
}

/** Reads a meta record. */
export function decodeMeta(bytes: Uint8Array): MetaValue {
  const j = JSON.parse(decoder.decode(bytes));
  return {
    ctime: BigInt(j.ctime),
    mode: j.mode,
    owner: BigInt.asIntN(64, BigInt(`0x${j.owner}`)),
    ttl: j.ttl === undefined ? undefined : BigInt(j.ttl),
  };
}

/** JSON list of `{"perms":n,"scheme":"…","id":"…"}`. */
export function encodeAcl(acl: ACL[]): Uint8Array {
  return encoder.encode(
    JSON.stringify(acl.map((a) => ({ perms: a.perms, scheme: a.id.scheme, id: a.id.id }))),
  );
}

/** Reads an ACL list. */
export function decodeAcl(bytes: Uint8Array): ACL[] {
  const list = JSON.parse(decoder.decode(bytes)) as { perms: number; scheme: string; id: string }[];
  return list.map((a) => ({ perms: a.perms, id: { scheme: a.scheme, id: a.id } }));
}

/** A session as stored in etcd. */
export interface SessionValue {
  /** The 16-byte password clients resume with. */
  passwd: Uint8Array;
  /** Negotiated timeout, ms. */
  timeout: number;
  /** The lease the session's ephemeral nodes are attached to. */
  ephemeralLease: bigint;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(text: string): Uint8Array {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** JSON `{"v":1,"passwd":"<hex>","timeout":n,"eph":"<hex lease>"}`. */
export function encodeSession(v: SessionValue): Uint8Array {
  return encoder.encode(JSON.stringify({
    v: 1,
    passwd: hex(v.passwd),
    timeout: v.timeout,
    eph: BigInt.asUintN(64, v.ephemeralLease).toString(16),
  }));
}

/** Reads a session record. */
export function decodeSession(bytes: Uint8Array): SessionValue {
  const j = JSON.parse(decoder.decode(bytes));
  return {
    passwd: unhex(j.passwd),
    timeout: j.timeout,
    ephemeralLease: BigInt.asIntN(64, BigInt(`0x${j.eph}`)),
  };
}

/** A bias value (`kids`, `vbias`): a decimal integer, empty meaning 0. */
export function decodeBias(bytes: Uint8Array | undefined): number {
  return !bytes || bytes.byteLength === 0 ? 0 : Number(decoder.decode(bytes));
}

/** The events of one multi: JSON `{"v":1,"events":[[type, path], …]}`, in firing order. */
export function encodeEvents(events: [number, string][]): Uint8Array {
  return encoder.encode(JSON.stringify({ v: 1, events }));
}

/** Reads the events of a multi. */
export function decodeEvents(bytes: Uint8Array): [number, string][] {
  return JSON.parse(decoder.decode(bytes)).events;
}
