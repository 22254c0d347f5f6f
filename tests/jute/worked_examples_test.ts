/**
 * The byte-level worked examples of the protocol document (§19), encoded with
 * JuteWriter.frame and the records of src/zk/records.ts, compared byte for
 * byte, and decoded back.
 */

import assert from "node:assert/strict";
import { bool, type JuteType } from "../../src/jute/schema.ts";
import { JuteReader } from "../../src/jute/reader.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import { Code, EventType, KeeperState, OpCode, Xid } from "../../src/zk/constants.ts";
import {
  ConnectRequest,
  ConnectResponse,
  CreateRequest,
  CreateResponse,
  DeleteRequest,
  ErrorResponse,
  GetDataRequest,
  GetDataResponse,
  MultiHeader,
  ReplyHeader,
  RequestHeader,
  WatcherEvent,
} from "../../src/zk/records.ts";
import { connectResponse } from "../../src/server/connection.ts";
import { fromHex, toHex } from "./_hex.ts";

type Part = readonly [JuteType<unknown>, unknown];

function part<T>(type: JuteType<T>, value: T): Part {
  return [type as JuteType<unknown>, value];
}

/** One frame holding `parts` in order, as lowercase hex. */
function frameHex(...parts: Part[]): string {
  return toHex(JuteWriter.frame((w) => {
    for (const [type, value] of parts) type.write(w, value);
  }));
}

/**
 * Checks the length prefix of `hex`, then reads the payload as `types` in
 * order and asserts that nothing is left over.
 */
function decodeFrame(hex: string, ...types: JuteType<unknown>[]): unknown[] {
  const bytes = fromHex(hex);
  const length = new DataView(bytes.buffer).getInt32(0);
  assert.equal(length, bytes.byteLength - 4, "length prefix");
  const r = new JuteReader(bytes.subarray(4));
  const values = types.map((t) => t.read(r));
  assert.equal(r.remaining, 0, "bytes left over");
  return values;
}

/** Asserts that `parts` encode to `hex` and that `hex` decodes to `parts`. */
function assertRoundTrip(hex: string, ...parts: Part[]): void {
  const want = hex.replace(/[\s|]/g, "");
  assert.equal(frameHex(...parts), want);
  assert.deepEqual(decodeFrame(want, ...parts.map(([t]) => t)), parts.map(([, v]) => v));
}

const ZERO_PASSWD = new Uint8Array(16);
const PASSWD_0_TO_F = Uint8Array.from({ length: 16 }, (_, i) => i);

const newSession = {
  protocolVersion: 0,
  lastZxidSeen: 0n,
  timeOut: 30000,
  sessionId: 0n,
  passwd: ZERO_PASSWD,
};

Deno.test("§19.1 a new-session connect request with readOnly is 45 bytes", {
  permissions: "none",
}, () => {
  assertRoundTrip(
    "0000002d 00000000 0000000000000000 00007530 0000000000000000 00000010 " +
      "00000000000000000000000000000000 00",
    part(ConnectRequest, newSession),
    part(bool, false),
  );
});

Deno.test("§19.1 the old-client connect request without readOnly is 44 bytes", {
  permissions: "none",
}, () => {
  assertRoundTrip(
    "0000002c 00000000 0000000000000000 00007530 0000000000000000 00000010 " +
      "00000000000000000000000000000000",
    part(ConnectRequest, newSession),
  );
});

Deno.test("§19.2 connect responses with and without readOnly, and the invalid-session reply", {
  permissions: "none",
}, () => {
  const response = {
    protocolVersion: 0,
    timeOut: 30000,
    sessionId: 0x01000000abcd0001n,
    passwd: PASSWD_0_TO_F,
  };
  assertRoundTrip(
    "00000025 00000000 00007530 01000000abcd0001 00000010 000102030405060708090a0b0c0d0e0f 00",
    part(ConnectResponse, response),
    part(bool, false),
  );
  assertRoundTrip(
    "00000024 00000000 00007530 01000000abcd0001 00000010 000102030405060708090a0b0c0d0e0f",
    part(ConnectResponse, response),
  );
  assertRoundTrip(
    "00000025 00000000 00000000 0000000000000000 00000010 00000000000000000000000000000000 00",
    part(ConnectResponse, { protocolVersion: 0, timeOut: 0, sessionId: 0n, passwd: ZERO_PASSWD }),
    part(bool, false),
  );
});

Deno.test("§19.2 the server answers each client in the form it spoke: readOnly byte only if sent", {
  permissions: "none",
}, () => {
  const passwd = PASSWD_0_TO_F;
  const hex = (oldClient: boolean) =>
    toHex(connectResponse(30000, 0x01000000abcd0001n, passwd, oldClient));
  assert.equal(
    hex(false),
    "00000025000000000000753001000000abcd000100000010000102030405060708090a0b0c0d0e0f00",
  );
  assert.equal(
    hex(true),
    "00000024000000000000753001000000abcd000100000010000102030405060708090a0b0c0d0e0f",
  );
  assert.equal(
    toHex(connectResponse(0, 0n, ZERO_PASSWD, true)),
    "00000024" + "00000000".repeat(2) + "0000000000000000" + "00000010" + "00".repeat(16),
    "the expired reply to an old client has no readOnly byte either",
  );
});

Deno.test("§19.3 a getData request for /a with a watch", { permissions: "none" }, () => {
  assertRoundTrip(
    "0000000f 00000001 00000004 00000002 2f61 01",
    part(RequestHeader, { xid: 1, type: OpCode.getData }),
    part(GetDataRequest, { path: "/a", watch: true }),
  );
});

Deno.test("§19.4 a getData reply carries the data and the 68-byte Stat", {
  permissions: "none",
}, () => {
  assertRoundTrip(
    "0000005d 00000001 0000000000000005 00000000 00000005 68656c6c6f 0000000000000003 " +
      "0000000000000005 0000018bcfe56800 0000018bcfe56be8 00000001 00000000 00000000 " +
      "0000000000000000 00000005 00000000 0000000000000003",
    part(ReplyHeader, { xid: 1, zxid: 5n, err: 0 }),
    part(GetDataResponse, {
      data: new TextEncoder().encode("hello"),
      stat: {
        czxid: 3n,
        mzxid: 5n,
        ctime: 1700000000000n,
        mtime: 1700000001000n,
        version: 1,
        cversion: 0,
        aversion: 0,
        ephemeralOwner: 0n,
        dataLength: 5,
        numChildren: 0,
        pzxid: 3n,
      },
    }),
  );
});

Deno.test("§19.4 an error reply (NoNode) is a 16-byte header with no body", {
  permissions: "none",
}, () => {
  assertRoundTrip(
    "00000010 00000001 0000000000000005 ffffff9b",
    part(ReplyHeader, { xid: 1, zxid: 5n, err: Code.NONODE }),
  );
});

Deno.test("§19.5 a ping request and its reply are headers only", { permissions: "none" }, () => {
  assertRoundTrip(
    "00000008 fffffffe 0000000b",
    part(RequestHeader, { xid: Xid.ping, type: OpCode.ping }),
  );
  assertRoundTrip(
    "00000010 fffffffe 0000000000000005 00000000",
    part(ReplyHeader, { xid: Xid.ping, zxid: 5n, err: 0 }),
  );
});

Deno.test("§19.5 a NodeDataChanged notification has xid −1, zxid −1 and a WatcherEvent", {
  permissions: "none",
}, () => {
  assertRoundTrip(
    "0000001e ffffffff ffffffffffffffff 00000000 00000003 00000003 00000002 2f61",
    part(ReplyHeader, { xid: Xid.notification, zxid: -1n, err: 0 }),
    part(WatcherEvent, {
      type: EventType.NodeDataChanged,
      state: KeeperState.SyncConnected,
      path: "/a",
    }),
  );
});

const open = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];
const END = { type: OpCode.error, done: true, err: -1 };

Deno.test("§19.6 a multi request: create /x, delete /y, end marker", {
  permissions: "none",
}, () => {
  assertRoundTrip(
    "00000056 00000002 0000000e | 00000001 00 ffffffff | 00000002 2f78 00000000 00000001 " +
      "0000001f 00000005 776f726c64 00000006 616e796f6e65 00000000 | 00000002 00 ffffffff | " +
      "00000002 2f79 ffffffff | ffffffff 01 ffffffff",
    part(RequestHeader, { xid: 2, type: OpCode.multi }),
    part(MultiHeader, { type: OpCode.create, done: false, err: -1 }),
    part(CreateRequest, { path: "/x", data: new Uint8Array(0), acl: open, flags: 0 }),
    part(MultiHeader, { type: OpCode.delete, done: false, err: -1 }),
    part(DeleteRequest, { path: "/y", version: -1 }),
    part(MultiHeader, END),
  );
});

Deno.test("§19.6 multi replies: success results, and per-op errors with header err 0", {
  permissions: "none",
}, () => {
  assertRoundTrip(
    "00000031 00000002 0000000000000006 00000000 | 00000001 00 00000000 | 00000002 2f78 | " +
      "00000002 00 00000000 | ffffffff 01 ffffffff",
    part(ReplyHeader, { xid: 2, zxid: 6n, err: 0 }),
    part(MultiHeader, { type: OpCode.create, done: false, err: 0 }),
    part(CreateResponse, { path: "/x" }),
    part(MultiHeader, { type: OpCode.delete, done: false, err: 0 }),
    part(MultiHeader, END),
  );
  assertRoundTrip(
    "00000033 00000002 0000000000000006 00000000 | ffffffff 00 00000000 | 00000000 | " +
      "ffffffff 00 ffffff9b | ffffff9b | ffffffff 01 ffffffff",
    part(ReplyHeader, { xid: 2, zxid: 6n, err: 0 }),
    part(MultiHeader, { type: OpCode.error, done: false, err: 0 }),
    part(ErrorResponse, { err: 0 }),
    part(MultiHeader, { type: OpCode.error, done: false, err: Code.NONODE }),
    part(ErrorResponse, { err: Code.NONODE }),
    part(MultiHeader, END),
  );
});
