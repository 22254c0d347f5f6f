/**
 * A gRPC client for unary and streaming calls, over one HTTP/2 connection
 * (RFC 9113) of our own on `Deno.connect` / `Deno.connectTls`. Every call
 * of the server to etcd goes through it (unless told to use the etcd3
 * library): in Deno, the npm gRPC stack (grpc-js over the `node:http2`
 * compatibility layer) costs about 0.5 ms of CPU per call and doubles the
 * latency of an etcd write; this client costs a fraction of that (see
 * README, "Performance"). Streams (the watch, lease keep-alives) send
 * further messages with {@link ClientStream.send}.
 *
 * What it does of HTTP/2: one connection per channel, opened on first use
 * and again after it fails; both flow-control windows when sending; receive
 * windows (4 MiB per stream, 2 GiB for the connection) topped up as data
 * arrives; SETTINGS, PING (etcd's are acknowledged behind our next write,
 * see {@link PING_ACK_DELAY_MS}), GOAWAY (calls
 * the server did not take are sent again on a new connection),
 * RST_STREAM; HPACK header decoding ({@link HpackDecoder}). No server push,
 * no priorities, no compression.
 *
 * What a server cannot push past (RFC 9113 §4-6): frames larger than the
 * 16 KiB we accept, header blocks over 64 KiB (across CONTINUATION frames,
 * at most 64 of them), the HPACK table over 4 KiB, SETTINGS values out of
 * range, connection WINDOW_UPDATEs of 0 or past 2^31-1, DATA past the
 * connection's receive window or past what a cancelled call's window had
 * left, frames on streams never opened or already ended by the server, and
 * more than 4096 PING/SETTINGS acknowledgements waiting for a server that
 * does not read them. Each is a connection error: a GOAWAY naming it, and
 * every call on the connection fails with UNAVAILABLE; the next call opens
 * a new connection. A stream WINDOW_UPDATE of 0 or past 2^31-1, DATA past a
 * call's window and headers decoding to more than 64 KiB fail that call
 * alone (RST_STREAM). While calls are open, a connection silent for
 * `keepAliveMs` is sent a PING, and one that does not answer within
 * `keepAliveTimeoutMs` fails with UNAVAILABLE.
 *
 * Members: a connection that fails is replaced by one to the next endpoint.
 * A call its member refuses as a whole ({@link ChannelOptions.memberRefuses},
 * etcd's "no leader") leaves that member too, and a unary call is sent
 * again to the next, until its deadline.
 *
 * @module
 */

import { encodeHeaders, type Header, HpackDecoder, STATIC_INDEX } from "./hpack.ts";

/** A failed call, with its gRPC status code (e.g. 14 UNAVAILABLE). */
export class GrpcError extends Error {
  override name = "GrpcError";
  /** gRPC status code. */
  readonly code: number;
  /** What went wrong, without the code. */
  readonly details: string;
  /** True when the server is known not to have processed the call (safe to send again). */
  readonly unprocessed: boolean;

  constructor(code: number, details: string, unprocessed = false) {
    super(`${code} ${STATUS_NAMES[code] ?? "UNKNOWN"}: ${details}`);
    this.code = code;
    this.details = details;
    this.unprocessed = unprocessed;
  }
}

const STATUS_NAMES: Record<number, string> = {
  1: "CANCELLED",
  2: "UNKNOWN",
  3: "INVALID_ARGUMENT",
  4: "DEADLINE_EXCEEDED",
  5: "NOT_FOUND",
  6: "ALREADY_EXISTS",
  7: "PERMISSION_DENIED",
  8: "RESOURCE_EXHAUSTED",
  9: "FAILED_PRECONDITION",
  10: "ABORTED",
  11: "OUT_OF_RANGE",
  12: "UNIMPLEMENTED",
  13: "INTERNAL",
  14: "UNAVAILABLE",
  15: "DATA_LOSS",
  16: "UNAUTHENTICATED",
};
const UNAVAILABLE = 14;

/** Request header blocks kept for reuse, per connection. */
const MAX_HEADER_BLOCKS = 64;

/** Extra request headers of a call (gRPC metadata), e.g. etcd's `token`. */
export type Metadata = Readonly<Record<string, string>>;

/** Settings of a {@link GrpcChannel}. */
export interface ChannelOptions {
  /** URLs, `http://host:port` or `https://host:port`; tried in turn when one cannot be reached. */
  endpoints: string[];
  /** PEM contents for TLS (with `https` endpoints). */
  tls?: { ca?: Uint8Array; cert?: Uint8Array; key?: Uint8Array };
  /** A call not answered within this many ms fails with DEADLINE_EXCEEDED. */
  callTimeoutMs: number;
  /** A response larger than this fails with RESOURCE_EXHAUSTED. */
  maxResponseBytes: number;
  /**
   * While calls are open, a connection that has received nothing for this
   * many ms is sent a PING (default 10 s; 0: never). Not without calls:
   * etcd answers pings on a connection without streams with a GOAWAY.
   */
  keepAliveMs?: number;
  /** A PING not answered within this many ms fails the connection (default 5 s). */
  keepAliveTimeoutMs?: number;
  /** Headers sent with every call, besides a call's own (e.g. etcd's `hasleader`). */
  metadata?: Metadata;
  /**
   * Whether the status a server ended a call with says that this member
   * takes no call now (etcd's "no leader"). Such a call was not processed
   * and is sent again (see {@link GrpcChannel.unary}). With several
   * endpoints the member is left: its connection takes no new call, its
   * streaming calls end (to be opened again on the next member), and its
   * unary calls get their own answers.
   */
  memberRefuses?: (code: number, details: string) => boolean;
  /**
   * Told when the connection to `endpoint` ended, and why, as the next call
   * opens another: once for each endpoint and reason until a call succeeds.
   */
  onLeave?: (endpoint: string, why: string) => void;
}

/** The first pause before a call refused by every member is sent around them again; it doubles. */
const ROUND_PAUSE_MS = 100;
/** The longest of those pauses. */
const MAX_ROUND_PAUSE_MS = 1000;
/** A refused call is not sent again with less than this many ms left before its deadline. */
const RESEND_MIN_MS = 250;
/** Once every member has been left for refusing, how long before leaving one again. */
const LEAVE_AGAIN_MS = 1000;
/** Most reasons remembered as told to `onLeave`. */
const MAX_REPORTED = 64;

/** Unary gRPC calls over one HTTP/2 connection at a time. */
export class GrpcChannel {
  readonly #options: ChannelOptions;
  #connection: Promise<H2Connection> | null = null;
  /** The connection once open, while usable: calls skip the promise. */
  #live: H2Connection | null = null;
  #endpoint = 0;
  #closed = false;
  /** Endpoints and reasons told to `onLeave` since the last call that succeeded. */
  #reported = new Set<string>();
  /** Endpoints (indexes) left for refusing a call since the last call that succeeded. */
  #refusedBy = new Set<number>();
  /** When the last of them was added (performance.now()). */
  #everyoneRefusedAt = 0;

  constructor(options: ChannelOptions) {
    this.#options = options;
  }

  /**
   * Calls `path` (e.g. `/etcdserverpb.KV/Txn`) with an encoded request;
   * resolves to the encoded response. `timeoutMs` (default: the channel's
   * `callTimeoutMs`) is how long the call may wait for its answer, from
   * when it is first sent.
   *
   * A call refused before it was processed (GOAWAY, REFUSED_STREAM, a
   * member without a leader) is sent again, on the next member's connection
   * when the member was left, until its deadline: once every member has
   * refused it, after a pause that doubles from {@link ROUND_PAUSE_MS}.
   */
  async unary(
    path: string,
    request: Uint8Array,
    metadata?: Metadata,
    timeoutMs?: number,
  ): Promise<Uint8Array> {
    const endpoints = this.#options.endpoints.length;
    const budget = timeoutMs ?? this.#options.callTimeoutMs;
    let deadline = 0;
    let refused: GrpcError | null = null;
    for (let attempt = 1;; attempt++) {
      const live = this.#live?.usable ? this.#live : null;
      const conn = live ??
        (refused
          ? await this.#connectWithin(deadline - RESEND_MIN_MS, refused)
          : await this.#connect());
      const now = performance.now();
      if (!refused) deadline = now + budget;
      else if (deadline - now < RESEND_MIN_MS) throw refused;
      try {
        const left = Math.round(deadline - now);
        // A connection silent for half the whole budget is given up, as for a first attempt.
        const answer = await conn.call(path, request, metadata, left, budget / 2);
        this.#succeeded();
        return answer;
      } catch (err) {
        if (!(err instanceof GrpcError && err.unprocessed)) throw err;
        refused = err;
        const rounds = attempt / endpoints;
        const pause = Number.isInteger(rounds)
          ? Math.min(ROUND_PAUSE_MS * 2 ** (rounds - 1), MAX_ROUND_PAUSE_MS)
          : 0;
        if (deadline - (performance.now() + pause) < RESEND_MIN_MS) throw err;
        if (pause > 0) await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  /** Opens a streaming call on the current connection (see {@link ClientStream}). */
  async stream(
    path: string,
    first: Uint8Array,
    handlers: { onMessage(message: Uint8Array): void; onEnd(err: GrpcError | null): void },
    metadata?: Metadata,
  ): Promise<ClientStream> {
    const conn = await this.#connect();
    return conn.stream(path, first, handlers, metadata);
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the connection; later calls fail. */
  close(): void {
    this.#closed = true;
    this.#connection?.then((c) => c.close(), () => {});
    this.#connection = null;
    this.#live = null;
  }

  #connect(): Promise<H2Connection> {
    if (this.#closed) return Promise.reject(new GrpcError(1, "the etcd client is closed"));
    const current = this.#connection;
    if (current) {
      return current.then((c) => {
        if (c.usable) return c;
        if (this.#connection === current) {
          // It failed (its member killed, frozen, cut off or without a
          // leader, or going away): the next connection tries the next
          // member first.
          const left = this.#options.endpoints[this.#endpoint];
          this.#endpoint = (this.#endpoint + 1) % this.#options.endpoints.length;
          this.#drop(current);
          this.#tellLeft(left, c.endedBecause);
        }
        return this.#connect();
      });
    }
    const opening = this.#open();
    this.#connection = opening;
    opening.then((c) => this.#live = c, () => this.#drop(opening));
    return opening;
  }

  /** {@link #connect}, or `refused` thrown once `deadline` (performance.now()) passes first. */
  async #connectWithin(deadline: number, refused: GrpcError): Promise<H2Connection> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        this.#connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(refused), Math.max(0, deadline - performance.now()));
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A call succeeded: leaves are told again, and members that refused may be left again. */
  #succeeded(): void {
    if (this.#reported.size > 0) this.#reported.clear();
    if (this.#refusedBy.size > 0) this.#refusedBy.clear();
  }

  /**
   * Whether the connection to endpoint `index`, which refused a call for
   * want of a leader, is left. Not with one endpoint; nor once every one
   * has been left that way since a call last succeeded, until
   * {@link LEAVE_AGAIN_MS} later: the calls then wait on the member they
   * have (each pausing between tries) instead of opening connection after
   * connection.
   */
  #mayLeave(index: number): boolean {
    const endpoints = this.#options.endpoints.length;
    if (endpoints < 2) return false;
    const now = performance.now();
    if (this.#refusedBy.size >= endpoints) {
      if (now - this.#everyoneRefusedAt < LEAVE_AGAIN_MS) return false;
      this.#refusedBy.clear();
    }
    this.#refusedBy.add(index);
    if (this.#refusedBy.size >= endpoints) this.#everyoneRefusedAt = now;
    return true;
  }

  /** Tells `onLeave`, once for each endpoint and reason until a call succeeds. */
  #tellLeft(endpoint: string, why: string): void {
    const key = `${endpoint} ${why}`;
    if (this.#reported.has(key)) return;
    if (this.#reported.size >= MAX_REPORTED) this.#reported.clear();
    this.#reported.add(key);
    try {
      this.#options.onLeave?.(endpoint, why);
    } catch { /* a listener's error is not the call's */ }
  }

  #drop(which: Promise<H2Connection>): void {
    if (this.#connection !== which) return;
    this.#connection = null;
    this.#live = null;
  }

  /**
   * Opens a connection to the first endpoint that answers, starting with the
   * last one used (the one after it, when that connection failed).
   */
  async #open(): Promise<H2Connection> {
    const { endpoints } = this.#options;
    let lastError: unknown;
    for (let i = 0; i < endpoints.length; i++) {
      const index = (this.#endpoint + i) % endpoints.length;
      try {
        const conn = await H2Connection.open(
          endpoints[index],
          this.#options,
          () => this.#mayLeave(index),
        );
        this.#endpoint = index;
        return conn;
      } catch (err) {
        lastError = err;
      }
    }
    this.#endpoint = (this.#endpoint + 1) % endpoints.length;
    const why = lastError instanceof Error ? lastError.message : String(lastError);
    throw new GrpcError(UNAVAILABLE, `cannot reach etcd at ${endpoints.join(", ")}: ${why}`, true);
  }
}

/** The reason in a {@link GrpcError} for an etcd that cannot be reached, if it is one. */
export function unreachableReason(err: unknown): string | null {
  if (!(err instanceof GrpcError) || err.code !== UNAVAILABLE) return null;
  return /^cannot reach etcd at .*?: (.*)$/.exec(err.details)?.[1] ?? null;
}

// Frame types and flags (RFC 9113 §6).
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const PUSH_PROMISE = 0x5;

// Error codes (RFC 9113 §7).
const PROTOCOL_ERROR = 0x1;
const FLOW_CONTROL_ERROR = 0x3;
const STREAM_CLOSED = 0x5;
const FRAME_SIZE_ERROR = 0x6;
const REFUSED_STREAM = 0x7;
const CANCEL = 0x8;
const COMPRESSION_ERROR = 0x9;
const ENHANCE_YOUR_CALM = 0xb;
const H2_ERROR_NAMES: Record<number, string> = {
  [PROTOCOL_ERROR]: "PROTOCOL_ERROR",
  [FLOW_CONTROL_ERROR]: "FLOW_CONTROL_ERROR",
  [STREAM_CLOSED]: "STREAM_CLOSED",
  [FRAME_SIZE_ERROR]: "FRAME_SIZE_ERROR",
  [COMPRESSION_ERROR]: "COMPRESSION_ERROR",
  [ENHANCE_YOUR_CALM]: "ENHANCE_YOUR_CALM",
};

/** A connection error (RFC 9113 §5.4.1): the connection ends with a GOAWAY carrying `code`. */
class H2Error extends Error {
  constructor(readonly code: number, message: string) {
    super(`HTTP/2 ${H2_ERROR_NAMES[code] ?? code}: ${message}`);
  }
}

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** Our receive window for the connection (after the first WINDOW_UPDATE): as large as allowed. */
const WINDOW = 0x7fffffff;
/** Received bytes after which the connection window is topped up again. */
const WINDOW_TOP_UP = 1 << 24;
/**
 * Our receive window per stream. Not larger: it is also how much etcd sends
 * of a response after we cancel its call (e.g. one over the size limit).
 */
const STREAM_WINDOW = 4 << 20;
/** The frame size every peer accepts, until it announces a larger one; also the largest we accept. */
const DEFAULT_FRAME = 16384;
/** The largest SETTINGS_MAX_FRAME_SIZE allowed (2^24-1). */
const MAX_FRAME_LIMIT = 0xffffff;
/** The largest flow-control window (2^31-1). */
const MAX_WINDOW = 0x7fffffff;
/** The largest header block (HEADERS and its CONTINUATIONs) we take, compressed. */
const MAX_HEADER_BLOCK = 64 * 1024;
/** The largest header list we take, decoded (RFC 9113's size: name, value, 32 per field); announced as SETTINGS_MAX_HEADER_LIST_SIZE. */
const MAX_HEADER_LIST = 64 * 1024;
/** Ended streams remembered, for the frames that may still come on them. */
const MAX_CLOSED = 256;
/** CONTINUATION frames one header block may have (empty ones cost nothing else). */
const MAX_CONTINUATIONS = 64;
/**
 * PING and SETTINGS acknowledgements waiting for a write: a peer that
 * floods them without reading ours is failed, not buffered for.
 */
const MAX_QUEUED_ACKS = 4096;

/**
 * Longest a PING's acknowledgement waits to go out with our next write.
 * etcd's gRPC server pings whenever data arrives and none of its pings is
 * unanswered (grpc-go's flow-control window estimate): answered at once,
 * that is one more write and one more wake-up of each side per call.
 * Held until the next write, it goes behind that write's frames, so the
 * data it carries sets off no new ping. Far below any keep-alive timeout.
 */
const PING_ACK_DELAY_MS = 10;
/**
 * Default {@link ChannelOptions.keepAliveMs} and {@link ChannelOptions.keepAliveTimeoutMs}:
 * a member that stops answering (frozen, or cut off) is left within about
 * 4 s, well inside a session's lease, whose renewals go through it too —
 * while it holds the connection, every call waits and sessions expire. A
 * live etcd answers a PING from its HTTP/2 reader at once, however busy.
 */
const KEEPALIVE_MS = 2_000;
const KEEPALIVE_TIMEOUT_MS = 2_000;
/** How long opening a connection may take (as etcd3's dial timeout). */
const CONNECT_TIMEOUT_MS = 5000;
/** Stream ids past this: open a new connection (ids end at 2^31). */
const LAST_STREAM_ID = 0x7fff0000;

/** One call on a connection: unary, or a stream of responses. */
interface Stream {
  id: number;
  /** A unary call: its one request ends the request side. Streams keep it open. */
  unary: boolean;
  /** Request bytes not sent yet (flow control). */
  pending: Uint8Array;
  sendWindow: number;
  /** Received bytes not yet cut into messages, their total, and the current message's full size (0: not known yet). */
  chunks: Uint8Array[];
  received: number;
  need: number;
  /** Received bytes not yet given back with a stream WINDOW_UPDATE. */
  unacknowledged: number;
  /** What the server may still send on this stream (our receive window). */
  recvWindow: number;
  headersSeen: boolean;
  /** Unary calls only. */
  timer?: ReturnType<typeof setTimeout>;
  /** Called with each response message. */
  onMessage(message: Uint8Array): void;
  /** Called once when the call ends: null for status OK. */
  onEnd(err: GrpcError | null): void;
}

/** A streaming call; {@link close} cancels it. */
export interface ClientStream {
  close(): void;
  /**
   * Sends one more request message (a bidirectional call, e.g. lease
   * keep-alives). Throws a {@link GrpcError} when the call has ended.
   */
  send(message: Uint8Array): void;
}

/** One HTTP/2 connection and its calls. */
class H2Connection {
  readonly #conn: Deno.Conn;
  readonly #options: ChannelOptions;
  readonly #headerBlocks = new Map<string, Uint8Array>();
  readonly #authority: string;
  readonly #scheme: number;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, Stream>();
  /**
   * Streams ended lately, oldest first, and how much DATA the server may
   * still send on each: what was left of its window when we ended it, -1
   * when the server ended it (nothing may follow).
   */
  readonly #closed = new Map<number, number>();
  /** Calls waiting for the server's concurrent-stream limit. */
  readonly #waiting: (() => void)[] = [];
  #nextId = 1;
  #sendWindow = 65535;
  #initialWindow = 65535;
  #maxFrame = DEFAULT_FRAME;
  #maxStreams = Infinity;
  #unacknowledged = 0;
  /** What the server may still send on the connection (our receive window). */
  #recvWindow = WINDOW;
  /** Stream id and fragments of a header block still arriving in CONTINUATION frames. */
  #continuing: { id: number; endStream: boolean; parts: Uint8Array[]; size: number } | null = null;
  /** Whether the server's first frame, its SETTINGS, has come. */
  #settingsSeen = false;
  #out: Uint8Array[] = [];
  /** PING and SETTINGS ACKs in {@link #out} and {@link #heldAcks}. */
  #queuedAcks = 0;
  /** PING ACKs waiting to go behind our next write (see {@link PING_ACK_DELAY_MS}). */
  #heldAcks: Uint8Array[] = [];
  #heldAckTimer?: ReturnType<typeof setTimeout>;
  #keepAliveTimer?: ReturnType<typeof setInterval>;
  /** Our PING waiting for its ACK, and when it fails the connection. */
  #ping: { payload: Uint8Array; timer: ReturnType<typeof setTimeout> } | null = null;
  #writing = false;
  #draining = false;
  #drainedBecause: string | null = null;
  #dead: GrpcError | null = null;
  /** Dead with a GOAWAY still to write: the socket closes once it is written (or in 1 s). */
  #closing = false;
  #closeTimer?: ReturnType<typeof setTimeout>;
  #lastFrameAt = performance.now();
  /** Whether to leave this member when it refuses a call (see {@link ChannelOptions.memberRefuses}). */
  readonly #mayLeave: () => boolean;

  private constructor(
    conn: Deno.Conn,
    options: ChannelOptions,
    authority: string,
    tls: boolean,
    mayLeave: () => boolean,
  ) {
    this.#conn = conn;
    this.#options = options;
    this.#mayLeave = mayLeave;
    this.#authority = authority;
    this.#scheme = tls ? STATIC_INDEX.schemeHttps : STATIC_INDEX.schemeHttp;
  }

  static async open(
    endpoint: string,
    options: ChannelOptions,
    mayLeave: () => boolean,
  ): Promise<H2Connection> {
    const url = new URL(endpoint.includes("://") ? endpoint : `http://${endpoint}`);
    const tls = url.protocol === "https:";
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    const port = Number(url.port || (tls ? 443 : 80));
    const decode = (b?: Uint8Array) => b ? new TextDecoder().decode(b) : undefined;
    const connecting = tls
      ? Deno.connectTls({
        hostname,
        port,
        caCerts: options.tls?.ca ? [decode(options.tls.ca)!] : undefined,
        cert: decode(options.tls?.cert),
        key: decode(options.tls?.key),
        alpnProtocols: ["h2"],
      } as Deno.ConnectTlsOptions)
      : Deno.connect({ hostname, port });
    // A host that drops packets would hold the call (which has no deadline yet) for minutes.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const conn = await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`)),
          CONNECT_TIMEOUT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    connecting.then((late) => late !== conn && late.close(), () => {});
    if (!tls) (conn as Deno.TcpConn).setNoDelay(true);
    const h2 = new H2Connection(conn, options, url.host, tls, mayLeave);
    h2.#start();
    return h2;
  }

  /** Whether new calls may use this connection. */
  get usable(): boolean {
    return !this.#dead && !this.#draining;
  }

  /** Why it is no longer usable. */
  get endedBecause(): string {
    return this.#drainedBecause ?? this.#dead?.details ?? "";
  }

  /** Takes no new call, and closes once its calls have ended. */
  #drain(why: string): void {
    this.#draining = true;
    this.#drainedBecause ??= why;
    // Calls waiting for a stream go elsewhere.
    for (const wake of this.#waiting.splice(0)) wake();
  }

  /**
   * Leaves a member that takes no call now: no new call, its streaming
   * calls end (their callers open them again, on the next member), its
   * unary calls get their own answers.
   */
  #leave(why: string): void {
    this.#drain(why);
    for (const stream of [...this.#streams.values()]) {
      if (stream.unary) continue;
      try {
        this.#abort(stream, new GrpcError(UNAVAILABLE, why, true));
      } catch { /* a handler's error must not keep the others from ending */ }
    }
    if (this.#streams.size === 0) this.close();
  }

  call(
    path: string,
    request: Uint8Array,
    metadata: Metadata | undefined,
    timeoutMs: number,
    silentMs = timeoutMs / 2,
  ): Promise<Uint8Array> {
    // Not sent: it may go elsewhere.
    if (!this.usable) return Promise.reject(new GrpcError(UNAVAILABLE, this.endedBecause, true));
    if (this.#streams.size >= this.#maxStreams) {
      // The deadline runs while waiting for a free stream too (a limit of 0 would hold it for ever).
      const started = performance.now();
      return new Promise<Uint8Array>((resolve, reject) => {
        const wake = () => {
          clearTimeout(timer);
          const left = Math.max(1, Math.round(timeoutMs - (performance.now() - started)));
          resolve(this.call(path, request, metadata, left, silentMs));
        };
        const timer = setTimeout(() => {
          const at = this.#waiting.indexOf(wake);
          if (at >= 0) this.#waiting.splice(at, 1);
          // Never sent.
          reject(new GrpcError(4, `etcd did not answer within ${timeoutMs} ms`, true));
        }, timeoutMs);
        this.#waiting.push(wake);
      });
    }
    const { promise, resolve, reject } = Promise.withResolvers<Uint8Array>();
    let response: Uint8Array | null = null;
    const stream = this.#open(path, request, true, metadata, {
      onMessage: (message) => response = message,
      onEnd: (err) => {
        if (err) reject(err);
        else if (response) resolve(response);
        else reject(new GrpcError(13, "etcd sent no response message"));
      },
    });
    stream.timer = setTimeout(() => this.#timeout(stream, timeoutMs, silentMs), timeoutMs);
    return promise;
  }

  /** Opens a streaming call that sends `first`; its request side stays open. */
  stream(
    path: string,
    first: Uint8Array,
    handlers: Pick<Stream, "onMessage" | "onEnd">,
    metadata?: Metadata,
  ): ClientStream {
    if (!this.usable) throw new GrpcError(UNAVAILABLE, this.endedBecause, true);
    const stream = this.#open(path, first, false, metadata, handlers);
    return {
      close: () => {
        if (!this.#streams.has(stream.id)) return;
        this.#streams.delete(stream.id);
        this.#remember(stream.id, Math.max(0, stream.recvWindow));
        this.#cancel(stream);
      },
      send: (message) => {
        if (this.#streams.get(stream.id) !== stream) {
          throw this.#dead ?? new GrpcError(1, "the etcd call has ended");
        }
        const framed = frameMessage(message);
        stream.pending = stream.pending.length === 0 ? framed : concat([stream.pending, framed]);
        this.#send(stream);
        this.#flush();
      },
    };
  }

  #open(
    path: string,
    request: Uint8Array,
    unary: boolean,
    metadata: Metadata | undefined,
    handlers: Pick<Stream, "onMessage" | "onEnd">,
  ): Stream {
    const id = this.#nextId;
    this.#nextId += 2;
    if (this.#nextId >= LAST_STREAM_ID) this.#drain("its stream ids ran out"); // closes once its calls end
    const stream: Stream = {
      id,
      unary,
      pending: frameMessage(request),
      sendWindow: this.#initialWindow,
      chunks: [],
      received: 0,
      need: 0,
      unacknowledged: 0,
      recvWindow: STREAM_WINDOW,
      headersSeen: false,
      ...handlers,
    };
    this.#streams.set(id, stream);
    this.#frame(HEADERS, END_HEADERS, id, this.#headers(path, unary, metadata));
    this.#send(stream);
    this.#flush();
    return stream;
  }

  close(): void {
    this.#fail(new GrpcError(1, "the etcd connection was closed"));
  }

  /**
   * The request header block for `path` with `metadata`, made once for each
   * (unary calls carry their deadline).
   */
  #headers(path: string, unary: boolean, metadata: Metadata | undefined): Uint8Array {
    const extra = metadata ? Object.entries(metadata) : [];
    const key = `${unary}${path}${extra.length ? JSON.stringify(extra) : ""}`;
    let block = this.#headerBlocks.get(key);
    if (!block) {
      // Metadata changes now and then (a renewed token): old blocks go.
      if (this.#headerBlocks.size >= MAX_HEADER_BLOCKS) this.#headerBlocks.clear();
      block = encodeHeaders([
        { indexed: STATIC_INDEX.methodPost },
        { indexed: this.#scheme },
        { name: STATIC_INDEX.path, value: path },
        { name: STATIC_INDEX.authority, value: this.#authority },
        { name: STATIC_INDEX.contentType, value: "application/grpc" },
        { name: "te", value: "trailers" },
        ...(unary ? [{ name: "grpc-timeout", value: `${this.#options.callTimeoutMs}m` }] : []),
        { name: STATIC_INDEX.userAgent, value: "zetcd-deno" },
        ...Object.entries(this.#options.metadata ?? {}).map(([name, value]) => ({ name, value })),
        ...extra.map(([name, value]) => ({ name, value })),
      ]);
      this.#headerBlocks.set(key, block);
    }
    return block;
  }

  #start(): void {
    const settings = new Uint8Array(18);
    const view = new DataView(settings.buffer);
    view.setUint16(0, 0x2); // ENABLE_PUSH
    view.setUint32(2, 0);
    view.setUint16(6, 0x4); // INITIAL_WINDOW_SIZE
    view.setUint32(8, STREAM_WINDOW);
    view.setUint16(12, 0x6); // MAX_HEADER_LIST_SIZE
    view.setUint32(14, MAX_HEADER_LIST);
    this.#out.push(PREFACE);
    this.#frame(SETTINGS, 0, 0, settings);
    this.#windowUpdate(0, WINDOW - 65535);
    this.#flush();
    this.#readLoop().catch((err) => this.#fail(lost(err), err instanceof H2Error ? err.code : -1));
    const idle = this.#options.keepAliveMs ?? KEEPALIVE_MS;
    if (idle > 0) {
      const every = Math.max(10, Math.min(1000, idle / 4));
      this.#keepAliveTimer = setInterval(() => this.#keepAlive(idle), every);
      Deno.unrefTimer(this.#keepAliveTimer);
    }
  }

  /** Sends a PING when calls are open and nothing has come for `idle` ms; no ACK in time fails the connection. */
  #keepAlive(idle: number): void {
    if (this.#dead || this.#ping || this.#streams.size === 0) return;
    if (performance.now() - this.#lastFrameAt < idle) return;
    const wait = this.#options.keepAliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS;
    const payload = crypto.getRandomValues(new Uint8Array(8));
    const timer = setTimeout(() => {
      this.#fail(new GrpcError(UNAVAILABLE, `etcd did not answer a PING within ${wait} ms`));
    }, wait);
    Deno.unrefTimer(timer);
    this.#ping = { payload, timer };
    this.#frame(PING, 0, 0, payload);
    this.#flush();
  }

  /** Sends what flow control allows of a stream's request bytes (a unary call's last frame ends its request side). */
  #send(stream: Stream): void {
    while (stream.pending.length > 0) {
      const n = Math.min(
        stream.pending.length,
        this.#maxFrame,
        this.#sendWindow,
        stream.sendWindow,
      );
      if (n <= 0) return;
      const last = n === stream.pending.length && stream.unary;
      this.#frame(DATA, last ? END_STREAM : 0, stream.id, stream.pending.subarray(0, n));
      stream.pending = stream.pending.subarray(n);
      this.#sendWindow -= n;
      stream.sendWindow -= n;
    }
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#dead) return;
    this.#out.push(frameBytes(type, flags, id, payload));
  }

  #windowUpdate(id: number, increment: number): void {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, increment);
    this.#frame(WINDOW_UPDATE, 0, id, payload);
  }

  /** Writes every queued frame, in order, in as few writes as possible. */
  #flush(): void {
    if (this.#writing || this.#out.length === 0 || (this.#dead && !this.#closing)) return;
    this.#writing = true;
    (async () => {
      try {
        while (this.#out.length > 0) {
          const frames = this.#out;
          this.#out = [];
          // Held PING ACKs go behind the frames they waited for.
          if (this.#heldAcks.length > 0) {
            frames.push(...this.#heldAcks.splice(0));
            clearTimeout(this.#heldAckTimer);
            this.#heldAckTimer = undefined;
          }
          this.#queuedAcks = 0;
          const bytes = frames.length === 1 ? frames[0] : concat(frames);
          for (let off = 0; off < bytes.length;) off += await this.#conn.write(bytes.subarray(off));
        }
      } finally {
        this.#writing = false;
        if (this.#closing) this.#closeSocket();
      }
    })().catch((err) => this.#fail(lost(err)));
  }

  async #readLoop(): Promise<void> {
    // Frames are at most 9 + DEFAULT_FRAME bytes: what is left after the
    // whole ones (less than a frame) always fits at the front with room.
    const buf = new Uint8Array(4 * DEFAULT_FRAME + 9);
    let start = 0;
    let end = 0;
    while (!this.#dead) {
      if (buf.length - end < DEFAULT_FRAME) {
        // Move what is left to the front.
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      const n = await this.#conn.read(buf.subarray(end));
      if (n === null) throw new Error("etcd closed the connection");
      end += n;
      this.#lastFrameAt = performance.now();
      while (end - start >= 9 && !this.#dead) {
        const length = (buf[start] << 16) | (buf[start + 1] << 8) | buf[start + 2];
        if (length > DEFAULT_FRAME) {
          // We never announce a larger SETTINGS_MAX_FRAME_SIZE.
          throw new H2Error(
            FRAME_SIZE_ERROR,
            `a frame of ${length} bytes, over the ${DEFAULT_FRAME} we accept`,
          );
        }
        if (end - start < 9 + length) break;
        const type = buf[start + 3];
        const flags = buf[start + 4];
        const id = ((buf[start + 5] << 24) | (buf[start + 6] << 16) | (buf[start + 7] << 8) |
          buf[start + 8]) & 0x7fffffff;
        this.#onFrame(type, flags, id, buf.subarray(start + 9, start + 9 + length));
        start += 9 + length;
      }
      if (start === end) start = end = 0;
      this.#flush();
    }
  }

  #onFrame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (!this.#settingsSeen) {
      if (type !== SETTINGS || flags & ACK) {
        throw new H2Error(PROTOCOL_ERROR, "the server did not begin with its SETTINGS");
      }
      this.#settingsSeen = true;
    }
    if (this.#continuing && type !== CONTINUATION) {
      throw new H2Error(PROTOCOL_ERROR, "header block interrupted");
    }
    switch (type) {
      case DATA:
        this.#checkStreamId(id, "DATA");
        return this.#onData(flags, id, payload);
      case HEADERS: {
        this.#checkStreamId(id, "HEADERS");
        if (this.#closed.get(id) === -1) {
          throw new H2Error(STREAM_CLOSED, `HEADERS on stream ${id} after it ended`);
        }
        let fragment = unpad(flags, payload);
        if (flags & PRIORITY) {
          if (fragment.length < 5) throw new H2Error(FRAME_SIZE_ERROR, "HEADERS too short");
          fragment = fragment.subarray(5);
        }
        this.#continuing = {
          id,
          endStream: (flags & END_STREAM) !== 0,
          parts: [fragment.slice()],
          size: fragment.length,
        };
        if (flags & END_HEADERS) this.#onHeaderBlock();
        return;
      }
      case CONTINUATION: {
        const block = this.#continuing;
        if (!block || block.id !== id) {
          throw new H2Error(PROTOCOL_ERROR, "unexpected CONTINUATION");
        }
        block.size += payload.length;
        if (block.size > MAX_HEADER_BLOCK || block.parts.length >= MAX_CONTINUATIONS) {
          throw new H2Error(
            ENHANCE_YOUR_CALM,
            `a header block over ${MAX_HEADER_BLOCK} bytes or ${MAX_CONTINUATIONS} frames`,
          );
        }
        block.parts.push(payload.slice());
        if (flags & END_HEADERS) this.#onHeaderBlock();
        return;
      }
      case RST_STREAM: {
        if (payload.length !== 4) throw new H2Error(FRAME_SIZE_ERROR, "RST_STREAM not 4 bytes");
        this.#checkStreamId(id, "RST_STREAM");
        const code = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
        // REFUSED_STREAM: the server did nothing with it.
        this.#end(
          id,
          new GrpcError(
            UNAVAILABLE,
            `etcd reset the call (HTTP/2 error ${code})`,
            code === REFUSED_STREAM,
          ),
          true,
        );
        return;
      }
      case SETTINGS:
        if (id !== 0) throw new H2Error(PROTOCOL_ERROR, "SETTINGS on a stream");
        if (flags & ACK) {
          if (payload.length !== 0) {
            throw new H2Error(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
          }
          return;
        }
        return this.#onSettings(payload);
      case PING:
        if (id !== 0) throw new H2Error(PROTOCOL_ERROR, "PING on a stream");
        if (payload.length !== 8) throw new H2Error(FRAME_SIZE_ERROR, "PING not 8 bytes");
        if (flags & ACK) {
          if (this.#ping && sameBytes(payload, this.#ping.payload)) {
            clearTimeout(this.#ping.timer);
            this.#ping = null;
          }
          return;
        }
        this.#ack();
        this.#heldAcks.push(frameBytes(PING, ACK, 0, payload));
        this.#heldAckTimer ??= setTimeout(() => {
          this.#heldAckTimer = undefined;
          this.#out.push(...this.#heldAcks.splice(0));
          this.#flush();
        }, PING_ACK_DELAY_MS);
        Deno.unrefTimer(this.#heldAckTimer);
        return;
      case GOAWAY:
        if (id !== 0) throw new H2Error(PROTOCOL_ERROR, "GOAWAY on a stream");
        if (payload.length < 8) throw new H2Error(FRAME_SIZE_ERROR, "GOAWAY under 8 bytes");
        return this.#onGoAway(payload);
      case WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload);
      case PUSH_PROMISE:
        throw new H2Error(PROTOCOL_ERROR, "PUSH_PROMISE, with push disabled");
      default:
        return; // PRIORITY, unknown types: ignored, as RFC 9113 allows
    }
  }

  /** Frames on stream 0, or on a stream we never opened (none of the server's: no push), are connection errors. */
  #checkStreamId(id: number, what: string): void {
    if (id === 0 || id % 2 === 0 || id >= this.#nextId) {
      throw new H2Error(PROTOCOL_ERROR, `${what} on stream ${id}, which was never opened`);
    }
  }

  /** Counts a PING or SETTINGS ACK queued; too many unsent: the peer floods without reading. */
  #ack(): void {
    if (++this.#queuedAcks > MAX_QUEUED_ACKS) {
      throw new H2Error(ENHANCE_YOUR_CALM, `over ${MAX_QUEUED_ACKS} PING/SETTINGS not read`);
    }
  }

  #onWindowUpdate(id: number, payload: Uint8Array): void {
    if (payload.length !== 4) throw new H2Error(FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 bytes");
    const increment = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) throw new H2Error(PROTOCOL_ERROR, "a WINDOW_UPDATE of 0");
      if (this.#sendWindow + increment > MAX_WINDOW) {
        throw new H2Error(FLOW_CONTROL_ERROR, "the connection window past 2^31-1");
      }
      this.#sendWindow += increment;
    } else {
      this.#checkStreamId(id, "WINDOW_UPDATE");
      const stream = this.#streams.get(id);
      if (!stream) return; // ended meanwhile
      // Stream errors: that call fails, the connection goes on.
      if (increment === 0) {
        return this.#reset(stream, PROTOCOL_ERROR, "etcd sent a stream WINDOW_UPDATE of 0");
      }
      if (stream.sendWindow + increment > MAX_WINDOW) {
        return this.#reset(stream, FLOW_CONTROL_ERROR, "etcd grew a stream window past 2^31-1");
      }
      stream.sendWindow += increment;
    }
    this.#sendPending();
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    this.#recvWindow -= payload.length;
    if (this.#recvWindow < 0) {
      throw new H2Error(FLOW_CONTROL_ERROR, "DATA past the connection's receive window");
    }
    this.#unacknowledged += payload.length;
    if (this.#unacknowledged >= WINDOW_TOP_UP) {
      this.#windowUpdate(0, this.#unacknowledged);
      this.#recvWindow += this.#unacknowledged;
      this.#unacknowledged = 0;
    }
    const data = unpad(flags, payload);
    const stream = this.#streams.get(id);
    if (!stream) {
      // A call that timed out or was cancelled: what was in flight may still come, no more.
      const left = this.#closed.get(id);
      if (left === undefined) return; // long ago
      if (left < 0) throw new H2Error(STREAM_CLOSED, `DATA on stream ${id} after it ended`);
      if (left < payload.length) {
        throw new H2Error(FLOW_CONTROL_ERROR, `DATA on stream ${id} past its receive window`);
      }
      this.#closed.set(id, left - payload.length);
      return;
    }
    stream.recvWindow -= payload.length;
    if (stream.recvWindow < 0) {
      return this.#reset(stream, FLOW_CONTROL_ERROR, "etcd sent past the call's receive window");
    }
    if (!stream.headersSeen) {
      return this.#reset(stream, PROTOCOL_ERROR, "etcd sent DATA before HEADERS");
    }
    stream.unacknowledged += payload.length;
    if (stream.unacknowledged >= STREAM_WINDOW / 2) {
      this.#windowUpdate(id, stream.unacknowledged);
      stream.recvWindow += stream.unacknowledged;
      stream.unacknowledged = 0;
    }
    if (data.length > 0) {
      stream.chunks.push(data.slice());
      stream.received += data.length;
    }
    // Cut the received bytes into messages: 1 byte compressed flag, 4 bytes length, the message.
    // The chunks are joined once per message (and once for a prefix split across chunks).
    while (stream.received >= 5) {
      if (stream.need === 0) {
        if (stream.chunks[0].length < 5) stream.chunks = [concat(stream.chunks)];
        const head = stream.chunks[0];
        if (head[0] !== 0) {
          return this.#abort(stream, new GrpcError(13, "etcd sent a compressed message"));
        }
        const length = new DataView(head.buffer, head.byteOffset).getUint32(1);
        if (length > this.#options.maxResponseBytes) {
          const max = this.#options.maxResponseBytes;
          return this.#abort(
            stream,
            new GrpcError(8, `received message larger than max (${length} vs. ${max})`),
          );
        }
        stream.need = 5 + length;
      }
      if (stream.received < stream.need) break;
      const bytes = stream.chunks.length === 1 ? stream.chunks[0] : concat(stream.chunks);
      const message = bytes.subarray(5, stream.need);
      const rest = bytes.subarray(stream.need);
      stream.chunks = rest.length > 0 ? [rest] : [];
      stream.received = rest.length;
      stream.need = 0;
      stream.onMessage(message);
    }
    if (flags & END_STREAM) {
      this.#end(id, new GrpcError(13, "etcd ended the call without a status"), true);
    }
  }

  /** Cancels a call and ends it with `err`. */
  #abort(stream: Stream, err: GrpcError, code = CANCEL): void {
    this.#cancel(stream, code);
    this.#end(stream.id, err);
  }

  /** A stream error (RFC 9113 §5.4.2): the call fails, the server is told with RST_STREAM `code`. */
  #reset(stream: Stream, code: number, why: string): void {
    this.#abort(stream, new GrpcError(13, `${why} (HTTP/2 ${H2_ERROR_NAMES[code]})`), code);
  }

  #onHeaderBlock(): void {
    const { id, endStream, parts } = this.#continuing!;
    this.#continuing = null;
    // Every block is decoded, even for calls already given up: the table must stay in step.
    let headers: Header[] | null;
    try {
      headers = this.#decoder.decode(
        parts.length === 1 ? parts[0] : concat(parts),
        MAX_HEADER_LIST,
      );
    } catch (err) {
      throw new H2Error(COMPRESSION_ERROR, err instanceof Error ? err.message : String(err));
    }
    const stream = this.#streams.get(id);
    if (!stream) return;
    if (!headers) {
      const why = `etcd sent headers over ${MAX_HEADER_LIST} bytes`;
      return this.#abort(stream, new GrpcError(8, why));
    }
    const get = (name: string) => headers.find((h: Header) => h[0] === name)?.[1];
    if (!stream.headersSeen) {
      stream.headersSeen = true;
      const status = get(":status");
      if (status !== undefined && status !== "200") {
        const err = new GrpcError(httpStatusCode(status), `etcd answered HTTP ${status}`);
        this.#end(id, err, endStream);
        return;
      }
    }
    if (!endStream) return;
    const code = Number(get("grpc-status") ?? 2);
    if (code !== 0) {
      const message = decodeURIComponentSafe(get("grpc-message") ?? "");
      const refuses = this.#options.memberRefuses?.(code, message) ?? false;
      // Left before the call ends, so that no waiting call takes its place here.
      const leaving = refuses && this.#mayLeave();
      if (leaving) this.#drain(message);
      this.#end(id, new GrpcError(code, message || "etcd refused the call", refuses), true);
      if (leaving) this.#leave(message);
      return;
    }
    this.#end(id, null, true);
  }

  #onSettings(payload: Uint8Array): void {
    if (payload.length % 6 !== 0) {
      throw new H2Error(FRAME_SIZE_ERROR, "SETTINGS not a multiple of 6 bytes");
    }
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    // Checked whole before any is applied.
    for (let off = 0; off < payload.length; off += 6) {
      const key = view.getUint16(off);
      const value = view.getUint32(off + 2);
      if (key === 0x2 && value > 1) {
        throw new H2Error(PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH of ${value}`);
      } else if (key === 0x4 && value > MAX_WINDOW) {
        throw new H2Error(FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE of ${value}`);
      } else if (key === 0x5 && (value < DEFAULT_FRAME || value > MAX_FRAME_LIMIT)) {
        throw new H2Error(PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE of ${value}`);
      }
    }
    for (let off = 0; off < payload.length; off += 6) {
      const key = view.getUint16(off);
      const value = view.getUint32(off + 2);
      if (key === 0x3) this.#maxStreams = value;
      else if (key === 0x4) {
        const delta = value - this.#initialWindow;
        for (const s of this.#streams.values()) {
          if (s.sendWindow + delta > MAX_WINDOW) {
            throw new H2Error(
              FLOW_CONTROL_ERROR,
              "SETTINGS_INITIAL_WINDOW_SIZE grew a window past 2^31-1",
            );
          }
        }
        this.#initialWindow = value;
        for (const s of this.#streams.values()) s.sendWindow += delta;
      } else if (key === 0x5) this.#maxFrame = value;
    }
    this.#ack();
    this.#frame(SETTINGS, ACK, 0, new Uint8Array());
    this.#sendPending();
    // A larger limit lets waiting calls go.
    while (this.#waiting.length > 0 && this.#streams.size < this.#maxStreams) {
      this.#waiting.shift()!();
    }
  }

  #onGoAway(payload: Uint8Array): void {
    const lastId = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
    this.#drain("etcd is closing it (GOAWAY)");
    for (const id of [...this.#streams.keys()]) {
      if (id > lastId) {
        this.#end(id, new GrpcError(UNAVAILABLE, "etcd is closing the connection", true));
      }
    }
    if (this.#streams.size === 0) this.close();
  }

  #sendPending(): void {
    for (const stream of this.#streams.values()) {
      if (stream.pending.length > 0) this.#send(stream);
    }
  }

  /** Finishes a call: status OK when `err` is null. `byServer`: the server ended the stream. */
  #end(id: number, err: GrpcError | null, byServer = false): void {
    const stream = this.#streams.get(id);
    if (!stream) return;
    this.#streams.delete(id);
    this.#remember(id, byServer ? -1 : Math.max(0, stream.recvWindow));
    clearTimeout(stream.timer);
    this.#waiting.shift()?.();
    stream.onEnd(err);
    if (this.#draining && this.#streams.size === 0) this.close();
  }

  #remember(id: number, window: number): void {
    this.#closed.set(id, window);
    if (this.#closed.size > MAX_CLOSED) this.#closed.delete(this.#closed.keys().next().value!);
  }

  #cancel(stream: Stream, code = CANCEL): void {
    const payload = new Uint8Array(4);
    payload[3] = code;
    this.#frame(RST_STREAM, 0, stream.id, payload);
    this.#flush();
  }

  #timeout(stream: Stream, ms: number, silentMs: number): void {
    this.#cancel(stream);
    this.#end(stream.id, new GrpcError(4, `etcd did not answer within ${ms} ms`));
    // Nothing heard for a while: the connection may be dead; later calls open another.
    if (performance.now() - this.#lastFrameAt > silentMs) {
      this.#fail(
        new GrpcError(UNAVAILABLE, `etcd connection silent for ${Math.round(silentMs)} ms`),
      );
    }
  }

  /**
   * Ends the connection and every call on it. `goaway`: the HTTP/2 error
   * code of a connection error, told to the server in a GOAWAY before the
   * socket closes; -1 for none.
   */
  #fail(err: GrpcError, goaway = -1): void {
    if (this.#dead) return;
    this.#dead = err;
    clearInterval(this.#keepAliveTimer);
    if (this.#ping) clearTimeout(this.#ping.timer);
    this.#ping = null;
    for (const id of [...this.#streams.keys()]) {
      try {
        this.#end(id, err);
      } catch { /* a handler's error must not keep the others from ending */ }
    }
    for (const wake of this.#waiting.splice(0)) wake();
    this.#out = [];
    this.#heldAcks = [];
    clearTimeout(this.#heldAckTimer);
    this.#heldAckTimer = undefined;
    if (goaway < 0) return this.#closeSocket();
    // GOAWAY: last stream id 0 (the server opened none), then the error code.
    const frame = new Uint8Array(17);
    frame[2] = 8;
    frame[3] = GOAWAY;
    new DataView(frame.buffer).setUint32(13, goaway);
    this.#out.push(frame);
    this.#closing = true;
    // A server that does not read would hold the socket open.
    this.#closeTimer = setTimeout(() => this.#closeSocket(), 1000);
    this.#flush();
  }

  #closeSocket(): void {
    clearTimeout(this.#closeTimer);
    this.#closing = false;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

/** An HTTP/2 frame: its 9-byte header, then `payload`. */
function frameBytes(type: number, flags: number, id: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(9 + payload.length);
  frame[0] = payload.length >>> 16;
  frame[1] = (payload.length >>> 8) & 0xff;
  frame[2] = payload.length & 0xff;
  frame[3] = type;
  frame[4] = flags;
  new DataView(frame.buffer).setUint32(5, id);
  frame.set(payload, 9);
  return frame;
}

/** A message with gRPC's 5-byte prefix: not compressed, then its length. */
function frameMessage(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

function lost(err: unknown): GrpcError {
  if (err instanceof GrpcError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new GrpcError(UNAVAILABLE, `etcd connection lost: ${why}`);
}

/** The payload of a frame without its padding (PADDED flag). */
function unpad(flags: number, payload: Uint8Array): Uint8Array {
  if (!(flags & PADDED)) return payload;
  if (payload.length === 0 || payload[0] >= payload.length) {
    throw new H2Error(PROTOCOL_ERROR, "padding longer than the frame");
  }
  return payload.subarray(1, payload.length - payload[0]);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The gRPC code for an HTTP status other than 200 (gRPC's HTTP-to-gRPC mapping). */
function httpStatusCode(status: string): number {
  switch (status) {
    case "400":
      return 13;
    case "401":
      return 16;
    case "403":
      return 7;
    case "404":
      return 12;
    case "429":
    case "502":
    case "503":
    case "504":
      return UNAVAILABLE;
    default:
      return 2;
  }
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
