/**
 * A frame-level ZooKeeper client for tests that need exact control over
 * the bytes (handshake variants, bad frames, opcodes no stock client sends).
 * Built on the project's own codec.
 *
 * @module
 */

import { readFrames } from "../../src/jute/frame.ts";
import { JuteReader } from "../../src/jute/reader.ts";
import type { JuteType } from "../../src/jute/schema.ts";
import { JuteWriter } from "../../src/jute/writer.ts";
import * as R from "../../src/zk/records.ts";

/** A decoded reply frame. */
export interface RawReply {
  xid: number;
  zxid: bigint;
  err: number;
  /** Reader positioned at the body. */
  body: JuteReader;
}

/** The fields of a handshake. */
export interface Hello {
  protocolVersion?: number;
  lastZxidSeen?: bigint;
  timeOut?: number;
  sessionId?: bigint;
  passwd?: Uint8Array;
  /** Send the trailing readOnly byte (default true). */
  readOnly?: boolean;
  /** The readOnly byte's value: the client accepts a read-only server (default false). */
  canBeReadOnly?: boolean;
}

/** A decoded ConnectResponse. */
export interface Welcome {
  protocolVersion: number;
  timeOut: number;
  sessionId: bigint;
  passwd: Uint8Array;
  /** Whether the response carried the trailing readOnly byte. */
  hasReadOnly: boolean;
  /** The readOnly byte's value (false when absent): the server serves read-only. */
  readOnly: boolean;
}

/** One TCP connection speaking raw frames. */
export class RawClient {
  readonly conn: Deno.Conn;
  readonly #frames: AsyncGenerator<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.#frames = readFrames(conn.readable, { maxFrame: 64 * 1024 * 1024 });
    this.#writer = conn.writable.getWriter();
  }

  /** Speaks over an already open connection (e.g. TLS). */
  static over(conn: Deno.Conn): RawClient {
    return new RawClient(conn);
  }

  /** Opens a TCP connection to `host:port`. */
  static async open(address: string): Promise<RawClient> {
    const [hostname, port] = address.split(":");
    const conn = await Deno.connect({ hostname, port: Number(port) });
    conn.setNoDelay(true);
    return new RawClient(conn);
  }

  /** Opens a connection and completes a new-session handshake. */
  static async session(address: string, hello: Hello = {}): Promise<[RawClient, Welcome]> {
    const c = await RawClient.open(address);
    const w = await c.handshake(hello);
    if (w === null) throw new Error(`${address} closed the connection during the handshake`);
    return [c, w];
  }

  /** Writes raw bytes. */
  async write(bytes: Uint8Array): Promise<void> {
    await this.#writer.write(bytes);
  }

  /**
   * Writes a frame the server is expected to refuse by closing the
   * connection: it may close before the frame is all written, so a broken
   * pipe or a reset while writing is that outcome, not an error.
   */
  async writeRefused(bytes: Uint8Array): Promise<void> {
    try {
      await this.write(bytes);
    } catch (err) {
      if (!(err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset)) {
        throw err;
      }
    }
  }

  /** Sends a ConnectRequest and reads the ConnectResponse (null if the server closed). */
  async handshake(hello: Hello = {}): Promise<Welcome | null> {
    await this.write(JuteWriter.frame((w) => {
      R.ConnectRequest.write(w, {
        protocolVersion: hello.protocolVersion ?? 0,
        lastZxidSeen: hello.lastZxidSeen ?? 0n,
        timeOut: hello.timeOut ?? 10000,
        sessionId: hello.sessionId ?? 0n,
        passwd: hello.passwd ?? new Uint8Array(16),
      });
      if (hello.readOnly ?? true) w.writeBool(hello.canBeReadOnly ?? false);
    }));
    const frame = await this.nextFrame();
    if (frame === null) return null;
    const r = new JuteReader(frame);
    const res = R.ConnectResponse.read(r);
    const hasReadOnly = r.remaining > 0;
    const readOnly = hasReadOnly && r.readBool();
    return { ...res, passwd: res.passwd ?? new Uint8Array(), hasReadOnly, readOnly };
  }

  /** Sends one request: header, then `value` encoded as `type` (if given). */
  async send<T>(xid: number, opcode: number, type?: JuteType<T>, value?: T): Promise<void> {
    await this.write(this.frame(xid, opcode, type, value));
  }

  /** Encodes one request frame without sending it. */
  frame<T>(xid: number, opcode: number, type?: JuteType<T>, value?: T): Uint8Array {
    return JuteWriter.frame((w) => {
      R.RequestHeader.write(w, { xid, type: opcode });
      if (type) type.write(w, value as T);
    });
  }

  /** The next frame's payload, or null once the server has closed. */
  async nextFrame(): Promise<Uint8Array | null> {
    try {
      const next = await this.#frames.next();
      return next.done ? null : next.value;
    } catch {
      return null;
    }
  }

  /** The next reply or notification, or null once the server has closed. */
  async reply(): Promise<RawReply | null> {
    const frame = await this.nextFrame();
    if (frame === null) return null;
    const body = new JuteReader(frame);
    const h = R.ReplyHeader.read(body);
    return { ...h, body };
  }

  /** The next reply that is not a notification. */
  async replySkippingEvents(): Promise<RawReply | null> {
    for (;;) {
      const r = await this.reply();
      if (r === null || r.xid !== -1) return r;
    }
  }

  /** Resolves true when the server closes the connection within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const open = new Promise<"open">((r) => timer = setTimeout(() => r("open"), ms));
    const drained = (async () => {
      while ((await this.nextFrame()) !== null) { /* discard */ }
      return "closed" as const;
    })();
    const outcome = await Promise.race([open, drained]);
    clearTimeout(timer);
    return outcome === "closed";
  }

  /** Closes the TCP connection (not the session). */
  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}
