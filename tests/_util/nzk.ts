/**
 * Promise wrappers over the stock `node-zookeeper-client` (npm), so tests
 * drive the server through a real ZooKeeper client library.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import zookeeper from "node-zookeeper-client";

/** A Stat with its 64-bit fields as bigints. */
export interface NzkStat {
  czxid: bigint;
  mzxid: bigint;
  ctime: bigint;
  mtime: bigint;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
  pzxid: bigint;
}

/** A client error with its ZooKeeper code (`err.code === -101` for NoNode). */
export class NzkError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** One operation of a multi. */
export type MultiStep =
  | { op: "create"; path: string; data: Uint8Array | null; mode?: number }
  | { op: "setData"; path: string; data: Uint8Array; version: number }
  | { op: "check"; path: string; version: number }
  | { op: "delete"; path: string; version: number };

/** A failed multi: the failing operation's code (on `code`, as NzkError) and index. */
export class MultiError extends NzkError {
  constructor(cause: Error, readonly index: number) {
    super(cause instanceof NzkError ? cause.code : 0, cause.message);
  }
}

/** A watch event as the client reports it. */
export interface NzkEvent {
  type: number;
  name: string;
  path: string;
}

// deno-lint-ignore no-explicit-any
type Raw = any;

function long(b: Raw): bigint {
  return Buffer.from(b).readBigInt64BE(0);
}

/** A Stat as node-zookeeper-client gives it (longs as 8-byte buffers), with bigints. */
export function statOf(s: Raw): NzkStat {
  return {
    czxid: long(s.czxid),
    mzxid: long(s.mzxid),
    ctime: long(s.ctime),
    mtime: long(s.mtime),
    version: s.version,
    cversion: s.cversion,
    aversion: s.aversion,
    ephemeralOwner: long(s.ephemeralOwner),
    dataLength: s.dataLength,
    numChildren: s.numChildren,
    pzxid: long(s.pzxid),
  };
}

function wrapErr(err: Raw): Error {
  if (err && typeof err.getCode === "function") return new NzkError(err.getCode(), String(err));
  return err instanceof Error ? err : new Error(String(err));
}

/** Create modes by name. */
export const CreateMode = zookeeper.CreateMode as {
  PERSISTENT: number;
  EPHEMERAL: number;
  PERSISTENT_SEQUENTIAL: number;
  EPHEMERAL_SEQUENTIAL: number;
};

/** ACL helpers of the client library. */
export const { ACL, Id, Permission } = zookeeper as Raw;

/** A connected node-zookeeper-client with promise methods. */
export class Nzk {
  readonly raw: Raw;
  private constructor(raw: Raw) {
    this.raw = raw;
  }

  /** Connects to `address` and waits for the session. */
  static connect(address: string, sessionTimeout = 10000): Promise<Nzk> {
    const raw = zookeeper.createClient(address, { sessionTimeout, spinDelay: 100, retries: 0 });
    const { promise, resolve, reject } = Promise.withResolvers<Nzk>();
    const timer = setTimeout(() => {
      raw.close();
      reject(new Error(`no session from ${address} within 10 s`));
    }, 10_000);
    raw.once("connected", () => {
      clearTimeout(timer);
      resolve(new Nzk(raw));
    });
    raw.connect();
    return promise;
  }

  #call<T>(fn: (cb: (err: Raw, ...rest: Raw[]) => void) => void, map: (...rest: Raw[]) => T) {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    fn((err, ...rest) => (err ? reject(wrapErr(err)) : resolve(map(...rest))));
    return promise;
  }

  /** Session id. */
  get sessionId(): bigint {
    return long(this.raw.getSessionId());
  }

  create(
    path: string,
    data: Uint8Array | null = null,
    mode = CreateMode.PERSISTENT,
    acls?: Raw[],
  ): Promise<string> {
    return this.#call(
      (cb) =>
        this.raw.create(
          path,
          data === null ? null : Buffer.from(data),
          acls ?? zookeeper.ACL.OPEN_ACL_UNSAFE,
          mode,
          cb,
        ),
      (p: string) => p,
    );
  }

  getData(
    path: string,
    watcher?: (e: NzkEvent) => void,
  ): Promise<{ data: Uint8Array | null; stat: NzkStat }> {
    return this.#call(
      (cb) => watcher ? this.raw.getData(path, event(watcher), cb) : this.raw.getData(path, cb),
      (data: Raw, s: Raw) => ({
        data: data === null ? null : new Uint8Array(data),
        stat: statOf(s),
      }),
    );
  }

  setData(path: string, data: Uint8Array | null, version = -1): Promise<NzkStat> {
    return this.#call(
      (cb) => this.raw.setData(path, data === null ? null : Buffer.from(data), version, cb),
      statOf,
    );
  }

  exists(path: string, watcher?: (e: NzkEvent) => void): Promise<NzkStat | null> {
    return this.#call(
      (cb) => watcher ? this.raw.exists(path, event(watcher), cb) : this.raw.exists(path, cb),
      (s: Raw) => (s ? statOf(s) : null),
    );
  }

  getChildren(
    path: string,
    watcher?: (e: NzkEvent) => void,
  ): Promise<{ children: string[]; stat: NzkStat }> {
    return this.#call(
      (cb) =>
        watcher ? this.raw.getChildren(path, event(watcher), cb) : this.raw.getChildren(path, cb),
      (children: string[], s: Raw) => ({ children: [...children].sort(), stat: statOf(s) }),
    );
  }

  remove(path: string, version = -1): Promise<void> {
    return this.#call((cb) => this.raw.remove(path, version, cb), () => undefined);
  }

  getACL(
    path: string,
  ): Promise<{ acls: { perms: number; scheme: string; id: string }[]; stat: NzkStat }> {
    return this.#call(
      (cb) => this.raw.getACL(path, cb),
      (acls: Raw[], s: Raw) => ({
        acls: acls.map((a) => ({ perms: a.permission, scheme: a.id.scheme, id: a.id.id })),
        stat: statOf(s),
      }),
    );
  }

  setACL(path: string, acls: Raw[], version = -1): Promise<NzkStat> {
    return this.#call((cb) => this.raw.setACL(path, acls, version, cb), statOf);
  }

  /**
   * Runs a multi (the client's transaction). A failed one rejects with the
   * failing operation's code, as the client reports it, and its `index`.
   */
  multi(steps: MultiStep[]): Promise<{ type: number; path?: string }[]> {
    const t = this.raw.transaction();
    for (const s of steps) {
      if (s.op === "create") {
        const data = s.data === null ? null : Buffer.from(s.data);
        t.create(s.path, data, zookeeper.ACL.OPEN_ACL_UNSAFE, s.mode ?? CreateMode.PERSISTENT);
      } else if (s.op === "setData") t.setData(s.path, Buffer.from(s.data), s.version);
      else if (s.op === "check") t.check(s.path, s.version);
      else t.remove(s.path, s.version);
    }
    const { promise, resolve, reject } = Promise.withResolvers<{ type: number; path?: string }[]>();
    t.commit((err: Raw, results: Raw[]) => {
      if (!err) return resolve(results);
      const failed = new MultiError(wrapErr(err), results?.findIndex((r) => r.err !== 0) ?? -1);
      reject(failed);
    });
    return promise;
  }

  addAuth(scheme: string, auth: string): void {
    this.raw.addAuthInfo(scheme, Buffer.from(auth));
  }

  /** Closes the session (closeSession) and the connection. */
  close(): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(resolve, 3000);
    this.raw.once("disconnected", () => {
      clearTimeout(timer);
      resolve();
    });
    this.raw.close();
    return promise;
  }
}

function event(watcher: (e: NzkEvent) => void) {
  return (e: Raw) => watcher({ type: e.getType(), name: e.getName(), path: e.getPath() });
}

/** Collects watch events; `next()` waits for the next one (or fails after `ms`). */
export class EventQueue {
  readonly events: NzkEvent[] = [];
  #waiters: ((e: NzkEvent) => void)[] = [];

  /** The watcher function to pass to a read. */
  readonly watcher = (e: NzkEvent): void => {
    const w = this.#waiters.shift();
    if (w) w(e);
    else this.events.push(e);
  };

  /** The next event, waiting up to `ms`. */
  next(ms = 5000): Promise<NzkEvent> {
    const queued = this.events.shift();
    if (queued) return Promise.resolve(queued);
    const { promise, resolve, reject } = Promise.withResolvers<NzkEvent>();
    const timer = setTimeout(() => {
      this.#waiters = this.#waiters.filter((w) => w !== deliver);
      reject(new Error(`no watch event within ${ms} ms`));
    }, ms);
    const deliver = (e: NzkEvent) => {
      clearTimeout(timer);
      resolve(e);
    };
    this.#waiters.push(deliver);
    return promise;
  }
}
