/**
 * A gRPC client for unary calls, over one HTTP/2 connection (RFC 9113) of
 * our own on `Deno.connect` / `Deno.connectTls`. etcd's transactions go
 * through it: in Deno, the npm gRPC stack (grpc-js over the `node:http2`
 * compatibility layer) costs about 0.5 ms of CPU per call and doubles the
 * latency of an etcd write; this client costs a fraction of that (see
 * README, "Performance"). Streams (watches, lease keep-alives) stay on
 * etcd3.
 *
 * What it does of HTTP/2: one connection per channel, opened on first use
 * and again after it fails; both flow-control windows when sending; receive
 * windows (4 MiB per stream, 2 GiB for the connection) topped up as data
 * arrives; SETTINGS, PING, GOAWAY (calls
 * the server did not take are sent again on a new connection),
 * RST_STREAM; HPACK header decoding ({@link HpackDecoder}). No server push,
 * no priorities, no compression.
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
}

/** Unary gRPC calls over one HTTP/2 connection at a time. */
export class GrpcChannel {
  readonly #options: ChannelOptions;
  #connection: Promise<H2Connection> | null = null;
  /** The connection once open, while usable: calls skip the promise. */
  #live: H2Connection | null = null;
  #endpoint = 0;
  #closed = false;

  constructor(options: ChannelOptions) {
    this.#options = options;
  }

  /**
   * Calls `path` (e.g. `/etcdserverpb.KV/Txn`) with an encoded request;
   * resolves to the encoded response. `timeoutMs` (default: the channel's
   * `callTimeoutMs`) is how long the call may wait for its answer.
   */
  async unary(
    path: string,
    request: Uint8Array,
    metadata?: Metadata,
    timeoutMs?: number,
  ): Promise<Uint8Array> {
    for (let attempt = 0;; attempt++) {
      const live = this.#live?.usable ? this.#live : null;
      const conn = live ?? await this.#connect();
      try {
        return await conn.call(path, request, metadata, timeoutMs ?? this.#options.callTimeoutMs);
      } catch (err) {
        // Refused before processing (GOAWAY, REFUSED_STREAM): send it again, elsewhere.
        if (!(err instanceof GrpcError && err.unprocessed) || attempt >= 3) throw err;
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
      return current.then((c) => c.usable ? c : (this.#drop(current), this.#connect()));
    }
    const opening = this.#open();
    this.#connection = opening;
    opening.then((c) => this.#live = c, () => this.#drop(opening));
    return opening;
  }

  #drop(which: Promise<H2Connection>): void {
    if (this.#connection !== which) return;
    this.#connection = null;
    this.#live = null;
  }

  /** Opens a connection to the first endpoint that answers, starting with the last one used. */
  async #open(): Promise<H2Connection> {
    const { endpoints } = this.#options;
    let lastError: unknown;
    for (let i = 0; i < endpoints.length; i++) {
      const index = (this.#endpoint + i) % endpoints.length;
      try {
        const conn = await H2Connection.open(endpoints[index], this.#options);
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
/** The frame size every peer accepts, until it announces a larger one. */
const DEFAULT_FRAME = 16384;
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
  /** Calls waiting for the server's concurrent-stream limit. */
  readonly #waiting: (() => void)[] = [];
  #nextId = 1;
  #sendWindow = 65535;
  #initialWindow = 65535;
  #maxFrame = DEFAULT_FRAME;
  #maxStreams = Infinity;
  #unacknowledged = 0;
  /** Stream id and fragments of a header block still arriving in CONTINUATION frames. */
  #continuing: { id: number; endStream: boolean; parts: Uint8Array[] } | null = null;
  #out: Uint8Array[] = [];
  #writing = false;
  #draining = false;
  #dead: GrpcError | null = null;
  #lastFrameAt = performance.now();

  private constructor(conn: Deno.Conn, options: ChannelOptions, authority: string, tls: boolean) {
    this.#conn = conn;
    this.#options = options;
    this.#authority = authority;
    this.#scheme = tls ? STATIC_INDEX.schemeHttps : STATIC_INDEX.schemeHttp;
  }

  static async open(endpoint: string, options: ChannelOptions): Promise<H2Connection> {
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
    const h2 = new H2Connection(conn, options, url.host, tls);
    h2.#start();
    return h2;
  }

  /** Whether new calls may use this connection. */
  get usable(): boolean {
    return !this.#dead && !this.#draining;
  }

  call(
    path: string,
    request: Uint8Array,
    metadata: Metadata | undefined,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    if (this.#dead) return Promise.reject(this.#dead);
    if (this.#streams.size >= this.#maxStreams) {
      return new Promise<void>((resolve) => this.#waiting.push(resolve))
        .then(() => this.call(path, request, metadata, timeoutMs));
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
    stream.timer = setTimeout(() => this.#timeout(stream, timeoutMs), timeoutMs);
    return promise;
  }

  /** Opens a streaming call that sends `first`; its request side stays open. */
  stream(
    path: string,
    first: Uint8Array,
    handlers: Pick<Stream, "onMessage" | "onEnd">,
    metadata?: Metadata,
  ): ClientStream {
    if (this.#dead) throw this.#dead;
    const stream = this.#open(path, first, false, metadata, handlers);
    return {
      close: () => {
        if (!this.#streams.has(stream.id)) return;
        this.#streams.delete(stream.id);
        this.#cancel(stream);
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
    if (this.#nextId >= LAST_STREAM_ID) this.#draining = true; // closes once its calls end
    const stream: Stream = {
      id,
      unary,
      pending: frameMessage(request),
      sendWindow: this.#initialWindow,
      chunks: [],
      received: 0,
      need: 0,
      unacknowledged: 0,
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
        ...extra.map(([name, value]) => ({ name, value })),
      ]);
      this.#headerBlocks.set(key, block);
    }
    return block;
  }

  #start(): void {
    const settings = new Uint8Array(12);
    const view = new DataView(settings.buffer);
    view.setUint16(0, 0x2); // ENABLE_PUSH
    view.setUint32(2, 0);
    view.setUint16(6, 0x4); // INITIAL_WINDOW_SIZE
    view.setUint32(8, STREAM_WINDOW);
    this.#out.push(PREFACE);
    this.#frame(SETTINGS, 0, 0, settings);
    this.#windowUpdate(0, WINDOW - 65535);
    this.#flush();
    this.#readLoop().catch((err) => this.#fail(lost(err)));
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
    const frame = new Uint8Array(9 + payload.length);
    frame[0] = payload.length >>> 16;
    frame[1] = (payload.length >>> 8) & 0xff;
    frame[2] = payload.length & 0xff;
    frame[3] = type;
    frame[4] = flags;
    new DataView(frame.buffer).setUint32(5, id);
    frame.set(payload, 9);
    this.#out.push(frame);
  }

  #windowUpdate(id: number, increment: number): void {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, increment);
    this.#frame(WINDOW_UPDATE, 0, id, payload);
  }

  /** Writes every queued frame, in order, in as few writes as possible. */
  #flush(): void {
    if (this.#writing || this.#out.length === 0 || this.#dead) return;
    this.#writing = true;
    (async () => {
      try {
        while (this.#out.length > 0) {
          const frames = this.#out;
          this.#out = [];
          const bytes = frames.length === 1 ? frames[0] : concat(frames);
          for (let off = 0; off < bytes.length;) off += await this.#conn.write(bytes.subarray(off));
        }
      } finally {
        this.#writing = false;
      }
    })().catch((err) => this.#fail(lost(err)));
  }

  async #readLoop(): Promise<void> {
    let buf = new Uint8Array(4 * DEFAULT_FRAME + 9);
    let start = 0;
    let end = 0;
    for (;;) {
      if (buf.length - end < DEFAULT_FRAME) {
        // Move what is left to the front; grow for a frame larger than the buffer.
        const need = end - start + DEFAULT_FRAME;
        const next = need > buf.length ? new Uint8Array(need * 2) : buf;
        next.copyWithin(0, start, end);
        if (next !== buf) next.set(buf.subarray(start, end));
        buf = next;
        end -= start;
        start = 0;
      }
      const n = await this.#conn.read(buf.subarray(end));
      if (n === null) throw new Error("etcd closed the connection");
      end += n;
      this.#lastFrameAt = performance.now();
      while (end - start >= 9) {
        const length = (buf[start] << 16) | (buf[start + 1] << 8) | buf[start + 2];
        if (end - start < 9 + length) {
          if (9 + length > buf.length) {
            const next = new Uint8Array(9 + length + DEFAULT_FRAME);
            next.set(buf.subarray(start, end));
            buf = next;
            end -= start;
            start = 0;
          }
          break;
        }
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
    if (this.#continuing && type !== CONTINUATION) {
      throw new Error("HTTP/2: header block interrupted");
    }
    switch (type) {
      case DATA:
        return this.#onData(flags, id, payload);
      case HEADERS: {
        let fragment = unpad(flags, payload);
        if (flags & PRIORITY) fragment = fragment.subarray(5);
        this.#continuing = { id, endStream: (flags & END_STREAM) !== 0, parts: [fragment.slice()] };
        if (flags & END_HEADERS) this.#onHeaderBlock();
        return;
      }
      case CONTINUATION:
        if (!this.#continuing || this.#continuing.id !== id) {
          throw new Error("HTTP/2: unexpected CONTINUATION");
        }
        this.#continuing.parts.push(payload.slice());
        if (flags & END_HEADERS) this.#onHeaderBlock();
        return;
      case RST_STREAM: {
        const code = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
        // REFUSED_STREAM: the server did nothing with it.
        this.#end(
          id,
          new GrpcError(UNAVAILABLE, `etcd reset the call (HTTP/2 error ${code})`, code === 0x7),
        );
        return;
      }
      case SETTINGS:
        if (!(flags & ACK)) this.#onSettings(payload);
        return;
      case PING:
        if (!(flags & ACK)) this.#frame(PING, ACK, 0, payload.slice());
        return;
      case GOAWAY:
        return this.#onGoAway(payload);
      case WINDOW_UPDATE: {
        const increment = new DataView(payload.buffer, payload.byteOffset).getUint32(0) &
          0x7fffffff;
        if (id === 0) this.#sendWindow += increment;
        else {
          const stream = this.#streams.get(id);
          if (stream) stream.sendWindow += increment;
        }
        this.#sendPending();
        return;
      }
      default:
        return; // PRIORITY, unknown types: ignored, as RFC 9113 allows
    }
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    this.#unacknowledged += payload.length;
    if (this.#unacknowledged >= WINDOW_TOP_UP) {
      this.#windowUpdate(0, this.#unacknowledged);
      this.#unacknowledged = 0;
    }
    const stream = this.#streams.get(id);
    if (!stream) return; // a call that timed out or was closed meanwhile
    stream.unacknowledged += payload.length;
    if (stream.unacknowledged >= STREAM_WINDOW / 2) {
      this.#windowUpdate(id, stream.unacknowledged);
      stream.unacknowledged = 0;
    }
    const data = unpad(flags, payload);
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
      this.#end(id, new GrpcError(13, "etcd ended the call without a status"));
    }
  }

  /** Cancels a call and ends it with `err`. */
  #abort(stream: Stream, err: GrpcError): void {
    this.#cancel(stream);
    this.#end(stream.id, err);
  }

  #onHeaderBlock(): void {
    const { id, endStream, parts } = this.#continuing!;
    this.#continuing = null;
    // Every block is decoded, even for calls already given up: the table must stay in step.
    const headers = this.#decoder.decode(parts.length === 1 ? parts[0] : concat(parts));
    const stream = this.#streams.get(id);
    if (!stream) return;
    const get = (name: string) => headers.find((h: Header) => h[0] === name)?.[1];
    if (!stream.headersSeen) {
      stream.headersSeen = true;
      const status = get(":status");
      if (status !== undefined && status !== "200") {
        this.#end(id, new GrpcError(httpStatusCode(status), `etcd answered HTTP ${status}`));
        return;
      }
    }
    if (!endStream) return;
    const code = Number(get("grpc-status") ?? 2);
    if (code !== 0) {
      const message = decodeURIComponentSafe(get("grpc-message") ?? "");
      this.#end(id, new GrpcError(code, message || "etcd refused the call"));
      return;
    }
    this.#end(id, null);
  }

  #onSettings(payload: Uint8Array): void {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    for (let off = 0; off + 6 <= payload.length; off += 6) {
      const key = view.getUint16(off);
      const value = view.getUint32(off + 2);
      if (key === 0x3) this.#maxStreams = value;
      else if (key === 0x4) {
        const delta = value - this.#initialWindow;
        this.#initialWindow = value;
        for (const s of this.#streams.values()) s.sendWindow += delta;
      } else if (key === 0x5) this.#maxFrame = value;
    }
    this.#frame(SETTINGS, ACK, 0, new Uint8Array());
    this.#sendPending();
  }

  #onGoAway(payload: Uint8Array): void {
    const lastId = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
    this.#draining = true;
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

  /** Finishes a call: status OK when `err` is null. */
  #end(id: number, err: GrpcError | null): void {
    const stream = this.#streams.get(id);
    if (!stream) return;
    this.#streams.delete(id);
    clearTimeout(stream.timer);
    this.#waiting.shift()?.();
    stream.onEnd(err);
    if (this.#draining && this.#streams.size === 0) this.close();
  }

  #cancel(stream: Stream): void {
    const payload = new Uint8Array(4);
    payload[3] = 0x8; // CANCEL
    this.#frame(RST_STREAM, 0, stream.id, payload);
    this.#flush();
  }

  #timeout(stream: Stream, ms: number): void {
    this.#cancel(stream);
    this.#end(stream.id, new GrpcError(4, `etcd did not answer within ${ms} ms`));
    // Nothing heard for a while: the connection may be dead; later calls open another.
    if (performance.now() - this.#lastFrameAt > ms / 2) {
      this.#fail(new GrpcError(UNAVAILABLE, `etcd connection silent for ${ms} ms`));
    }
  }

  /** Ends the connection and every call on it. */
  #fail(err: GrpcError): void {
    if (this.#dead) return;
    this.#dead = err;
    for (const id of [...this.#streams.keys()]) this.#end(id, err);
    for (const wake of this.#waiting.splice(0)) wake();
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
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
  const pad = payload[0];
  if (pad >= payload.length) throw new Error("HTTP/2: padding longer than the frame");
  return payload.subarray(1, payload.length - pad);
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
