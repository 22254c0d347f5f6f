/**
 * A small ZooKeeper client on the project's own codec: one session over
 * one connection, requests pipelined and matched to replies by xid, pings
 * while idle, notifications handed to a callback. `zetcd ctl` uses it;
 * anyone embedding the server can too.
 *
 * @example
 * ```ts
 * const zk = await ZkClient.connect("127.0.0.1:2181");
 * await zk.create("/a", new TextEncoder().encode("hi"));
 * const { data } = await zk.getData("/a");
 * await zk.close();
 * ```
 *
 * @module
 */

import { readFrames, readsOf } from "../jute/frame.ts";
import { JuteReader } from "../jute/reader.ts";
import type { JuteType } from "../jute/schema.ts";
import { JuteWriter } from "../jute/writer.ts";
import { codeName, OpCode, Xid } from "../zk/constants.ts";
import { OPEN_ACL } from "../zk/acl.ts";
import { childPath } from "../zk/path.ts";
import { ZkError } from "../zk/errors.ts";
import * as R from "../zk/records.ts";

/** Options of {@link ZkClient.connect}. */
export interface ClientOptions {
  /** Requested session timeout, ms (default 10000). */
  timeout?: number;
  /** Called with each watch notification. */
  onEvent?: (event: R.WatcherEvent) => void;
}

/** A connected ZooKeeper session. */
export class ZkClient {
  readonly #conn: Deno.Conn;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, PromiseWithResolvers<{ err: number; body: JuteReader }>>();
  /** addAuth calls waiting for their replies, oldest first. */
  readonly #authWaiters: PromiseWithResolvers<number>[] = [];
  readonly #onEvent?: (event: R.WatcherEvent) => void;
  #xid = 0;
  /** Set once the connection has ended: requests then fail at once. */
  #lost = false;
  #ping?: ReturnType<typeof setInterval>;
  /** The session id. */
  readonly sessionId: bigint;
  /** The negotiated timeout, ms. */
  readonly timeout: number;

  private constructor(conn: Deno.Conn, sessionId: bigint, timeout: number, options: ClientOptions) {
    this.#conn = conn;
    this.#writer = conn.writable.getWriter();
    this.sessionId = sessionId;
    this.timeout = timeout;
    this.#onEvent = options.onEvent;
  }

  /** Connects to `host:port` and starts a session. */
  static async connect(address: string, options: ClientOptions = {}): Promise<ZkClient> {
    const i = address.lastIndexOf(":");
    const conn = await Deno.connect({
      hostname: address.slice(0, i),
      port: Number(address.slice(i + 1)),
    });
    const frames = readFrames(readsOf(conn));
    const writer = conn.writable.getWriter();
    await writer.write(JuteWriter.frame((w) => {
      R.ConnectRequest.write(w, {
        protocolVersion: 0,
        lastZxidSeen: 0n,
        timeOut: options.timeout ?? 10000,
        sessionId: 0n,
        passwd: new Uint8Array(16),
      });
      w.writeBool(false);
    }));
    writer.releaseLock();
    const first = await frames.next();
    if (first.done) throw new Error(`${address} closed the connection during the handshake`);
    const res = R.ConnectResponse.read(new JuteReader(first.value));
    if (res.timeOut <= 0) throw new Error(`${address} refused the session`);
    const client = new ZkClient(conn, res.sessionId, res.timeOut, options);
    client.#read(frames);
    client.#ping = setInterval(() => client.#send(Xid.ping, OpCode.ping), res.timeOut / 3);
    return client;
  }

  async #read(frames: AsyncGenerator<Uint8Array>): Promise<void> {
    try {
      for await (const frame of frames) {
        const r = new JuteReader(frame);
        const h = R.ReplyHeader.read(r);
        if (h.xid === Xid.notification) {
          this.#onEvent?.(R.WatcherEvent.read(r));
          continue;
        }
        if (h.xid === Xid.auth) {
          this.#authWaiters.shift()?.resolve(h.err);
          continue;
        }
        const waiter = this.#pending.get(h.xid);
        if (!waiter) continue;
        this.#pending.delete(h.xid);
        waiter.resolve({ err: h.err, body: r });
      }
    } catch { /* the connection ended */ }
    this.#lost = true;
    for (const w of [...this.#pending.values(), ...this.#authWaiters]) {
      w.reject(new Error("connection lost"));
    }
    this.#pending.clear();
    this.#authWaiters.length = 0;
    clearInterval(this.#ping);
  }

  #send<T>(xid: number, op: number, type?: JuteType<T>, value?: T): void {
    this.#writer.write(JuteWriter.frame((w) => {
      R.RequestHeader.write(w, { xid, type: op });
      if (type) type.write(w, value as T);
    })).catch(() => {});
  }

  /**
   * Sends one request whose body is already encoded; resolves to the
   * reply's error code and body, whatever the code.
   */
  requestRaw(op: number, body: Uint8Array): Promise<{ err: number; body: JuteReader }> {
    const xid = this.#xid = (this.#xid % 0x7fffffff) + 1;
    const waiter = Promise.withResolvers<{ err: number; body: JuteReader }>();
    if (this.#lost) {
      waiter.reject(new Error("connection lost"));
      return waiter.promise;
    }
    this.#pending.set(xid, waiter);
    this.#writer.write(JuteWriter.frame((w) => {
      R.RequestHeader.write(w, { xid, type: op });
      w.writeRaw(body);
    })).catch(() => {});
    return waiter.promise;
  }

  /** Sends one request and resolves to the reader of its reply's body; rejects with ZkError. */
  async request<T>(op: number, type?: JuteType<T>, value?: T): Promise<JuteReader> {
    const w = new JuteWriter();
    if (type) type.write(w, value as T);
    const { err, body } = await this.requestRaw(op, w.bytes());
    if (err !== 0) throw new ZkError(err, undefined, codeName(err));
    return body;
  }

  /**
   * Adds credentials to the session (`addauth`), e.g. `("digest",
   * "user:password")`; rejects with ZkError AuthFailed when refused.
   */
  addAuth(scheme: string, auth: string | Uint8Array): Promise<void> {
    if (this.#lost) return Promise.reject(new Error("connection lost"));
    const waiter = Promise.withResolvers<number>();
    // Auth replies all carry the same xid, and come in order.
    this.#authWaiters.push(waiter);
    this.#send(Xid.auth, OpCode.auth, R.AuthPacket, {
      type: 0,
      scheme,
      auth: typeof auth === "string" ? new TextEncoder().encode(auth) : auth,
    });
    return waiter.promise.then((err) => {
      if (err !== 0) throw new ZkError(err, undefined, codeName(err));
    });
  }

  /** Creates a node; `flags` is the create mode (0 persistent, 1 ephemeral, 2 sequential, …). */
  async create(path: string, data: Uint8Array | null = null, flags = 0): Promise<string> {
    const r = await this.request(OpCode.create, R.CreateRequest, {
      path,
      data,
      acl: OPEN_ACL,
      flags,
    });
    return R.CreateResponse.read(r).path!;
  }

  /** A node's data and Stat. */
  async getData(path: string, watch = false): Promise<{ data: Uint8Array | null; stat: R.Stat }> {
    return R.GetDataResponse.read(
      await this.request(OpCode.getData, R.GetDataRequest, { path, watch }),
    );
  }

  /** Replaces a node's data (version −1: any). */
  async setData(path: string, data: Uint8Array | null, version = -1): Promise<R.Stat> {
    const r = await this.request(OpCode.setData, R.SetDataRequest, { path, data, version });
    return R.SetDataResponse.read(r).stat;
  }

  /** A node's Stat, or null when it does not exist. */
  async exists(path: string, watch = false): Promise<R.Stat | null> {
    try {
      return R.ExistsResponse.read(
        await this.request(OpCode.exists, R.ExistsRequest, { path, watch }),
      )
        .stat;
    } catch (err) {
      if (err instanceof ZkError && err.code === -101) return null;
      throw err;
    }
  }

  /** A node's children's names and its Stat. */
  async getChildren(path: string, watch = false): Promise<{ children: string[]; stat: R.Stat }> {
    const r = await this.request(OpCode.getChildren2, R.GetChildren2Request, { path, watch });
    const res = R.GetChildren2Response.read(r);
    return { children: res.children.map(String), stat: res.stat };
  }

  /** A node's ACL and Stat. */
  async getACL(path: string): Promise<{ acl: R.ACL[]; stat: R.Stat }> {
    return R.GetACLResponse.read(await this.request(OpCode.getACL, R.GetACLRequest, { path }));
  }

  /** Replaces a node's ACL (version −1: any). */
  async setACL(path: string, acl: R.ACL[], version = -1): Promise<R.Stat> {
    const r = await this.request(OpCode.setACL, R.SetACLRequest, { path, acl, version });
    return R.SetACLResponse.read(r).stat;
  }

  /** Deletes a node (version −1: any). */
  async delete(path: string, version = -1): Promise<void> {
    await this.request(OpCode.delete, R.DeleteRequest, { path, version });
  }

  /** Deletes a node and everything under it (of `/`, only what is under it). */
  async deleteAll(path: string): Promise<void> {
    const { children } = await this.getChildren(path);
    await Promise.all(children.map((child) => this.deleteAll(childPath(path, child))));
    if (path !== "/") await this.delete(path);
  }

  /** Ends the session and closes the connection. */
  async close(): Promise<void> {
    clearInterval(this.#ping);
    try {
      await this.request(OpCode.closeSession);
    } catch { /* already gone */ }
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}
