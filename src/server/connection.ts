/**
 * One client TCP connection: the handshake, then requests served in the
 * session's order (ZooKeeper's per-session FIFO order) — writes pipelined
 * through the write pipeline, everything else after the requests before
 * it — with replies in order and watch notifications interleaved on the
 * same ordered writer.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { timingSafeEqual } from "node:crypto";
import { answerFourLetterWord, fourLetterWord } from "./four_letter.ts";
import { servingReadOnly } from "./server_info.ts";
import { type ConnectionInfo, Counters, SHORT_OP_NAMES } from "../admin/stats.ts";
import { readFrames, readsOf } from "../jute/frame.ts";
import { JuteDecodeError, JuteReader } from "../jute/reader.ts";
import { JuteWriter } from "../jute/writer.ts";
import type { Infer } from "../jute/schema.ts";
import {
  Code,
  codeName,
  type EventType,
  KeeperState,
  OpCode,
  opName,
  Xid,
} from "../zk/constants.ts";
import { ZkError } from "../zk/errors.ts";
import { EtcdRefusedError } from "../etcd/client.ts";
import { type AuthId, type Principal, sessionHex } from "../zk/acl.ts";
import { HANDLERS, type Reply, type RequestContext } from "./handlers.ts";
import * as R from "../zk/records.ts";
import { OPS } from "../zk/protocol.ts";
import type { ServerState } from "./state.ts";
import { Session } from "./sessions.ts";
import { decodeSession } from "../store/values.ts";
import type { WatchSink } from "./watches.ts";
import { CrossCheck } from "./cross_check.ts";
import { certificateIdentity } from "./client_certs.ts";
import { DigestMd5Exchange } from "./sasl.ts";

const EMPTY_PASSWD = new Uint8Array(16);

/**
 * What a read-only session is refused with NotReadOnly, as by ZooKeeper's
 * read-only server: every update of the tree (the opcode table's, but the
 * sessions' own) and sync.
 */
const READ_ONLY_REFUSED: ReadonlySet<number> = new Set([
  ...[...OPS]
    .filter(([code, op]) =>
      op.update && code !== OpCode.createSession && code !== OpCode.closeSession
    )
    .map(([code]) => code),
  OpCode.sync,
]);

/**
 * Most requests of one connection served at once; frames behind them are
 * not read until the oldest is answered (ZooKeeper throttles at 1000
 * outstanding requests too).
 */
const MAX_IN_FLIGHT = 1000;

/** How long a new connection may take to send its ConnectRequest. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Serves one accepted connection until it closes. Never throws. */
export async function serveConnection(conn: Deno.Conn, state: ServerState): Promise<void> {
  const remote = conn.remoteAddr as Deno.NetAddr;
  const peer = `${remote.hostname}:${remote.port}`;
  const log = state.log.with({ peer });
  const writer = conn.writable.getWriter();
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    writer.close().catch(() => {});
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  const info: ConnectionInfo = {
    peer,
    counters: new Counters(),
    established: Date.now(),
    close: () => close(),
  };
  /** Bytes handed to the socket and not yet taken by it. */
  let queued = 0;
  const send = (frame: Uint8Array) => {
    if (closed) return;
    // A reply is always let through when nothing is queued, however large.
    if (queued > 0 && queued + frame.byteLength > state.maxOutgoingBytes) {
      // A client that stops reading must not make the server buffer without bound.
      log.warn("closing connection: the client is not reading ({bytes} bytes queued)", {
        bytes: queued,
      });
      state.metrics.dropped.inc({ reason: "not_reading" });
      close();
      return;
    }
    info.counters.sent++;
    state.counters.sent++;
    queued += frame.byteLength;
    writer.write(frame).then(() => queued -= frame.byteLength, () => close());
  };
  let word: string | null = null;
  const frames = readFrames(readsOf(conn), {
    maxFrame: state.maxFrame,
    peekFirst: (first4) => (word = fourLetterWord(first4)) !== null,
  });
  state.connections.add(info);
  let session: Session | undefined;
  let idle: ReturnType<typeof setInterval> | undefined;
  let certificateId: AuthId | undefined;
  let crossCheck: CrossCheck | null = null;
  /** A reply closed the connection, or a request or the connection failed: nothing more runs. */
  let stopped = false;
  const sink: WatchSink = {
    sessionId: 0n,
    notify(type: EventType, path: string) {
      send(JuteWriter.frame((w) => {
        R.ReplyHeader.write(w, { xid: Xid.notification, zxid: -1n, err: 0 });
        R.WatcherEvent.write(w, { type, state: KeeperState.SyncConnected, path });
      }));
    },
  };
  // A connection must say what it is within this time.
  const handshakeDeadline = setTimeout(() => {
    log.info("closing connection: no handshake within {ms} ms", { ms: HANDSHAKE_TIMEOUT_MS });
    close();
  }, HANDSHAKE_TIMEOUT_MS);
  try {
    const first = await frames.next();
    clearTimeout(handshakeDeadline);
    if (word !== null) {
      log.debug("four-letter word {word}", { word });
      const text = await answerFourLetterWord(word, { state, self: info });
      await writer.write(new TextEncoder().encode(text));
      return;
    }
    if (first.done) return;
    info.counters.received++;
    state.counters.received++;
    session = await handshake(first.value, state, send, log);
    if (!session) return;
    const owned = session;
    // A client certificate's identity (x509) holds while this connection does, listed first.
    certificateId = certificateIdentity(conn);
    if (certificateId) owned.authIds.unshift(certificateId);
    info.sessionId = sink.sessionId = owned.id;
    info.timeout = owned.timeout;
    info.readOnly = owned.readOnly;
    if (owned.readOnly) {
      // No session manager expires a read-only session: its connection goes
      // after a timeout of silence.
      idle = setInterval(() => {
        // etcd came back while this connection was being set up.
        if (state.health.available) close();
        if (owned.busy > 0 || Date.now() - owned.lastHeard <= owned.timeout) return;
        log.info("read-only session {session} silent for {timeout} ms: closing its connection", {
          session: sessionHex(owned.id),
          timeout: owned.timeout,
        });
        close();
      }, 250);
    }
    crossCheck = state.oracle
      ? CrossCheck.attach(state.oracle, owned, log, state.metrics.divergences)
      : null;
    owned.detach = (why) => {
      log.info("session {session} {why}: closing its connection", {
        session: sessionHex(owned.id),
        why,
      });
      close();
    };
    // Who the session is, made again only when its identities change.
    let principal: Principal | undefined;
    const ctx: RequestContext = {
      tree: state.tree,
      writes: state.writes,
      session: owned,
      watches: state.watches,
      sink,
      superDigest: state.superDigest,
      extendedTypes: state.extendedTypes,
      sasl: state.saslUsers ? new DigestMd5Exchange(state.saslUsers) : undefined,
      who: () => {
        if (!samePrincipal(principal, owned)) {
          principal = {
            ids: [...owned.authIds, { scheme: "ip", id: remote.hostname }],
            address: remote.hostname,
            superuser: owned.superuser,
          };
        }
        return principal!;
      },
      closeSession: async () => {
        owned.detach = undefined;
        if (owned.readOnly) {
          // Nothing in etcd to end (a session resumed read-only lives on there).
          owned.closed = true;
          return state.tree.clock.revision;
        }
        const zxid = await state.sessions.close(owned);
        await state.tree.clock.reached(zxid);
        log.info("session {session} closed by client", { session: sessionHex(owned.id) });
        return zxid;
      },
    };
    // Requests are served in the session's order, several at once: a write
    // starts as soon as every earlier request that is not a write is
    // answered (the write pipeline keeps the order of writes), anything
    // else once every earlier request is; replies go out in order. A
    // request that fails closes the connection, and nothing after it runs.
    let replied: Promise<void> = Promise.resolve(); // the latest request's reply is out
    let barrier: Promise<void> = Promise.resolve(); // so is every earlier one but writes
    const inFlight: Promise<void>[] = [];
    for await (const frame of frames) {
      if (stopped) break;
      // A request being served counts as activity.
      const started = performance.now();
      owned.lastHeard = Date.now();
      owned.busy++;
      info.counters.received++;
      state.counters.received++;
      const type = frame.byteLength >= 8
        ? new DataView(frame.buffer, frame.byteOffset + 4, 4).getInt32(0)
        : 0;
      let bytes: Uint8Array | undefined;
      // A read also waits for the client to take its replies (backpressure).
      const write = HANDLERS.get(type)?.write === true;
      const served = (write ? barrier : replied.then(() => writer.ready)).then(() =>
        stopped ? false : serveRequest(frame, ctx, (b) => bytes = b, log, info, state, crossCheck)
      ).finally(() => {
        owned.busy--;
        owned.lastHeard = Date.now();
        const took = performance.now() - started;
        state.metrics.latency.observe(took / 1000, { op: info.lastOp ?? "UNKN" });
        info.counters.request(took);
        state.counters.request(took);
        info.lastLatency = Math.round(took);
        info.lastResponse = Date.now();
      });
      const out = Promise.all([replied, served]).then(([, done]) => {
        if (stopped) return;
        if (bytes) send(bytes);
        if (done) {
          stopped = true;
          close();
        }
      });
      replied = out.catch((err) => {
        if (stopped) return;
        stopped = true;
        log.warn("closing connection: {reason}", { reason: describe(err) });
        close();
      });
      if (!write) barrier = replied;
      // Nothing is read after a closeSession: its reply ends the connection.
      if (type === OpCode.closeSession) break;
      inFlight.push(replied);
      if (inFlight.length > MAX_IN_FLIGHT) await inFlight.shift();
      // Backpressure: a client that does not read its replies is not read either.
      await writer.ready;
    }
    await replied;
  } catch (err) {
    // One line a connection: a request that failed meanwhile says nothing more.
    if (!closed && !stopped) log.warn("closing connection: {reason}", { reason: describe(err) });
    stopped = true;
  } finally {
    clearTimeout(handshakeDeadline);
    clearInterval(idle);
    crossCheck?.detach();
    state.connections.delete(info);
    state.watches.removeAll(sink);
    if (session && certificateId) {
      const at = session.authIds.indexOf(certificateId);
      if (at >= 0) session.authIds.splice(at, 1);
    }
    if (session && !session.closed) {
      // The session outlives its connection until its timeout.
      session.lastHeard = Date.now();
      session.detach = undefined;
    }
    close();
  }
}

/** Answers the ConnectRequest; returns the session, or undefined after refusing it. */
async function handshake(
  frame: Uint8Array,
  state: ServerState,
  send: (frame: Uint8Array) => void,
  log: Logger,
): Promise<Session | undefined> {
  const r = new JuteReader(frame);
  const req = R.ConnectRequest.read(r);
  // A client that sent the readOnly byte gets one back; an old client (the
  // 44-byte request: ClickHouse, go-zookeeper) gets the 36-byte answer it
  // expects, as ZooKeeper answers each in the form it spoke. The byte is the
  // client's canBeReadOnly (an old client cannot be read-only).
  const oldClient = r.remaining === 0;
  const canBeReadOnly = oldClient ? false : r.readBool();
  const refuse = (why: string) => {
    log.info("refusing session {session}: {why}", { session: sessionHex(req.sessionId), why });
    send(connectResponse(0, 0n, EMPTY_PASSWD, oldClient));
    return undefined;
  };
  if (req.protocolVersion !== 0) return refuse(`protocol version ${req.protocolVersion}`);
  if (!state.health.available) {
    if (canBeReadOnly && servingReadOnly(state)) {
      return readOnlyHandshake(req, state, send, log, oldClient);
    }
    // As a ZooKeeper server without a quorum: no answer; the client tries again.
    log.info("refusing client: etcd is unavailable");
    return undefined;
  }
  if (req.lastZxidSeen > state.tree.clock.revision) {
    const zxid = await state.tree.revision();
    if (req.lastZxidSeen > zxid) {
      log.info("refusing client: it has seen zxid {seen}, newer than ours {ours}", {
        seen: req.lastZxidSeen,
        ours: zxid,
      });
      return undefined;
    }
  }
  const timeout = state.sessions.negotiate(req.timeOut);
  let session: Session | null;
  if (req.sessionId === 0n) {
    session = await state.sessions.create(timeout);
    log.info("session {session} created, timeout {timeout} ms", {
      session: sessionHex(session.id),
      timeout,
    });
  } else {
    session = await state.sessions.resume(req.sessionId, req.passwd, timeout);
    if (!session) return refuse("unknown, expired or wrong password");
    log.info("session {session} resumed", { session: sessionHex(session.id) });
  }
  // ZooKeeper answers a connect once the session's creation (or renewal) is
  // applied in order, so the session never reads state older than what was
  // acknowledged before it connected. Here the answer waits for the watch
  // stream to deliver the session record's write, and the session's reads
  // come from the replica only once it has reached that write (else from etcd).
  session.saw(req.lastZxidSeen);
  session.saw(session.claim);
  await state.tree.clock.reached(session.claim);
  send(connectResponse(session.timeout, session.id, session.passwd, oldClient));
  return session;
}

/**
 * Answers a client that allows read-only service while etcd is unavailable
 * (`--read-only-mode`), as ZooKeeper's read-only server: a session that
 * lives only in this connection, reading the replica's last known state. A
 * client resuming a session keeps its id, if its password matches the
 * session record in the replica: nothing is written, so the session lives
 * on in etcd and the client resumes it read-write once etcd is back. A new
 * client gets a random id, unknown to etcd (as ZooKeeper's local session).
 */
function readOnlyHandshake(
  req: Infer<typeof R.ConnectRequest>,
  state: ServerState,
  send: (frame: Uint8Array) => void,
  log: Logger,
  oldClient: boolean,
): Session | undefined {
  const replica = state.tree.replica!;
  if (req.lastZxidSeen > replica.revision) {
    log.info("refusing read-only client: it has seen zxid {seen}, newer than ours {ours}", {
      seen: req.lastZxidSeen,
      ours: replica.revision,
    });
    return undefined;
  }
  const timeout = state.sessions.negotiate(req.timeOut);
  let id = req.sessionId;
  let passwd: Uint8Array;
  if (id === 0n) {
    do {
      id = crypto.getRandomValues(new BigUint64Array(1))[0] & 0x7fff_ffff_ffff_ffffn;
    } while (id === 0n);
    passwd = crypto.getRandomValues(new Uint8Array(16));
  } else {
    const kv = replica.read([{ get: state.tree.keys.session(id) }])?.results[0]?.kvs[0];
    const stored = kv ? decodeSession(kv.value).passwd : null;
    if (
      !stored || !req.passwd || req.passwd.byteLength !== stored.byteLength ||
      !timingSafeEqual(req.passwd, stored)
    ) {
      log.info("refusing read-only session {session}: unknown, expired or wrong password", {
        session: sessionHex(id),
      });
      send(connectResponse(0, 0n, EMPTY_PASSWD, oldClient));
      return undefined;
    }
    passwd = stored;
  }
  const session = new Session(id, passwd, 0n, 0, timeout);
  session.readOnly = true;
  session.saw(req.lastZxidSeen);
  log.info("session {session} served read-only at zxid {zxid}, timeout {timeout} ms", {
    session: sessionHex(id),
    zxid: replica.revision,
    timeout,
  });
  send(connectResponse(timeout, id, passwd, oldClient, true));
  return session;
}

/** The ConnectResponse frame; its readOnly byte only for a client that sent one. */
export function connectResponse(
  timeOut: number,
  sessionId: bigint,
  passwd: Uint8Array,
  oldClient: boolean,
  readOnly = false,
): Uint8Array {
  return JuteWriter.frame((w) => {
    R.ConnectResponse.write(w, { protocolVersion: 0, timeOut, sessionId, passwd });
    if (!oldClient) w.writeBool(readOnly);
  });
}

/** Serves one request; returns true when the connection should close. */
async function serveRequest(
  frame: Uint8Array,
  ctx: RequestContext,
  send: (frame: Uint8Array) => void,
  log: Logger,
  info: ConnectionInfo,
  state: ServerState,
  crossCheck: CrossCheck | null,
): Promise<boolean> {
  const r = new JuteReader(frame);
  const header = R.RequestHeader.read(r);
  info.lastOp = SHORT_OP_NAMES[header.type] ?? "UNKN";
  info.lastXid = header.xid;
  state.metrics.requests.inc({ op: opName(header.type) });
  const handler = HANDLERS.get(header.type);
  let out: Reply;
  if (ctx.session.readOnly && READ_ONLY_REFUSED.has(header.type)) {
    out = { zxid: ctx.tree.clock.revision, err: Code.NOTREADONLY };
  } else if (!handler) {
    log.debug("unimplemented opcode {op}", { op: header.type });
    out = { zxid: ctx.tree.clock.revision, err: Code.UNIMPLEMENTED };
  } else {
    try {
      out = await handler.run(ctx, r);
    } catch (err) {
      const zk = err instanceof ZkError ? err : etcdRefusal(err);
      if (!zk) {
        // etcd unreachable or failing: the outcome is unknown, so the client
        // must see a lost connection (and retry), not an answer.
        throw new Error(`${opName(header.type)} failed: ${describe(err)}`);
      }
      const level = zk.code === Code.SYSTEMERROR ? "warn" : "debug";
      log[level]("{op} {path}: {code} {message}", {
        op: opName(header.type),
        path: zk.path,
        code: codeName(zk.code),
        message: zk.message,
      });
      out = { zxid: ctx.tree.clock.revision, err: zk.code };
    }
  }
  // A client's zxid never goes back: error and ping replies carry the last
  // revision under our prefix, which can be older than a read's.
  // (Auth replies carry zxid 0, as ZooKeeper's.)
  const last = info.lastZxid ?? 0n;
  const zxid = out.zxid !== 0n && last > out.zxid ? last : out.zxid;
  if (zxid > last) info.lastZxid = zxid;
  if (out.err) state.metrics.errors.inc({ code: codeName(out.err) });
  if (out.close && out.err) {
    const fields = { op: opName(header.type), code: codeName(out.err), reason: out.reason };
    if (out.reason) log.info("closing connection: {op} failed with {code}: {reason}", fields);
    else log.info("closing connection: {op} failed with {code}", fields);
  }
  crossCheck?.check(header.type, frame.subarray(8), { err: out.err ?? 0, body: out.body });
  send(JuteWriter.frame((w) => {
    R.ReplyHeader.write(w, { xid: header.xid, zxid, err: out.err ?? 0 });
    // An error reply has no body, but a failed SASL's carries one, as ZooKeeper's.
    if (out.body) w.writeRaw(out.body);
  }));
  return out.close === true;
}

/**
 * etcd's refusals for good (too many operations, too large) become a
 * ZooKeeper error reply; null for any other error.
 */
function etcdRefusal(err: unknown): ZkError | null {
  if (!(err instanceof EtcdRefusedError)) return null;
  return new ZkError(
    Code.BADARGUMENTS,
    undefined,
    err.limit === "ops"
      ? "the request needs more operations than etcd's --max-txn-ops allows"
      : "the request is larger than etcd accepts",
  );
}

function describe(err: unknown): string {
  if (err instanceof JuteDecodeError) return `undecodable request: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Whether `p` still names the session: its identities (then its IP's) and super user flag. */
function samePrincipal(
  p: Principal | undefined,
  session: { authIds: AuthId[]; superuser: boolean },
): boolean {
  if (!p || p.superuser !== session.superuser) return false;
  if (p.ids.length !== session.authIds.length + 1) return false;
  for (let i = 0; i < session.authIds.length; i++) {
    if (p.ids[i] !== session.authIds[i]) return false;
  }
  return true;
}
