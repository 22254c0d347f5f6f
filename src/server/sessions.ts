/**
 * ZooKeeper sessions backed by etcd leases. The session id is the lease id,
 * and the session record (password, timeout) lives in etcd attached to the
 * lease, so any server on the same etcd and prefix can resume the session.
 * Ephemeral nodes are attached to the same lease: when the session ends,
 * etcd removes them even if no server is left to do it.
 *
 * A server renews the leases of the sessions whose clients it has heard from
 * since the last renewal (clients ping every timeout/3 when idle); a silent
 * session stops being renewed and etcd expires it at most timeout +
 * timeout/3 after the client was last heard from.
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";
import type { EtcdClient } from "../etcd/client.ts";
import type { Keys } from "../etcd/keys.ts";
import { decodeSession, encodeSession } from "../etcd/values.ts";

/** One ZooKeeper session as this server knows it. */
export class Session {
  /** Session id (= etcd lease id). */
  readonly id: bigint;
  /** 16-byte password. */
  readonly passwd: Uint8Array;
  /** Negotiated timeout, ms. */
  timeout: number;
  /** Identities added with setAuth (e.g. digest `user:hash`). */
  readonly authIds: { scheme: string; id: string }[] = [];
  /** Last time (ms) the client was heard from. */
  lastHeard = Date.now();
  /** Last time (ms) the lease was renewed. */
  lastRenewed = Date.now();
  /** Set once the session is closed or expired. */
  closed = false;
  /** Called when another connection takes this session over. */
  detach?: () => void;

  constructor(id: bigint, passwd: Uint8Array, timeout: number) {
    this.id = id;
    this.passwd = passwd;
    this.timeout = timeout;
  }

  /** The etcd lease of this session. */
  get lease(): bigint {
    return this.id;
  }
}

/** Options of {@link SessionManager}. */
export interface SessionOptions {
  minSessionTimeout: number;
  maxSessionTimeout: number;
  /** Called when a session this server was renewing turns out to be gone. */
  onExpired?: (session: Session) => void;
}

/** Creates, resumes and keeps alive the sessions of this server. */
export class SessionManager {
  readonly #etcd: EtcdClient;
  readonly #keys: Keys;
  readonly #options: SessionOptions;
  readonly #local = new Map<bigint, Session>();
  #timer?: ReturnType<typeof setInterval>;

  constructor(etcd: EtcdClient, keys: Keys, options: SessionOptions) {
    this.#etcd = etcd;
    this.#keys = keys;
    this.#options = options;
  }

  /** The requested timeout clamped into the configured bounds. */
  negotiate(requested: number): number {
    const { minSessionTimeout: min, maxSessionTimeout: max } = this.#options;
    return Math.min(max, Math.max(min, requested));
  }

  /** Sessions held by connections of this server. */
  get local(): ReadonlyMap<bigint, Session> {
    return this.#local;
  }

  /** Starts a new session. */
  async create(timeout: number): Promise<Session> {
    const ttl = Math.max(1, Math.ceil(timeout / 1000));
    const lease = await this.#etcd.grantLease(ttl);
    const passwd = crypto.getRandomValues(new Uint8Array(16));
    await this.#etcd.txn([], [{
      put: this.#keys.session(lease),
      value: encodeSession({ passwd, timeout }),
      lease,
    }]);
    const session = new Session(lease, passwd, timeout);
    this.#local.set(session.id, session);
    return session;
  }

  /**
   * Resumes a session by id and password; null when it does not exist, has
   * expired or the password is wrong.
   */
  async resume(id: bigint, passwd: Uint8Array | null, timeout: number): Promise<Session | null> {
    const res = await this.#etcd.read([{ get: this.#keys.session(id) }]);
    const kv = res.results[0]!.kvs[0];
    if (!kv) return null;
    const stored = decodeSession(kv.value);
    if (!passwd || passwd.byteLength !== stored.passwd.byteLength) return null;
    if (!timingSafeEqual(passwd, stored.passwd)) return null;
    const ttl = await this.#etcd.keepAliveOnce(kv.lease);
    if (ttl <= 0n) return null;
    let session = this.#local.get(id);
    if (!session) {
      session = new Session(id, stored.passwd, timeout);
      this.#local.set(id, session);
    }
    session.timeout = timeout;
    session.lastHeard = session.lastRenewed = Date.now();
    return session;
  }

  /** Forgets a session that was closed by its client. */
  forget(session: Session): void {
    session.closed = true;
    this.#local.delete(session.id);
  }

  /** Starts renewing leases (every `tickMs`). */
  start(tickMs = 500): void {
    this.#timer = setInterval(() => this.#tick(), tickMs);
  }

  /** Stops renewing; sessions then expire unless another server resumes them. */
  stop(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    const now = Date.now();
    for (const session of this.#local.values()) {
      const silentFor = now - session.lastHeard;
      if (silentFor > session.timeout) {
        // The client went quiet: stop renewing and let etcd expire the lease.
        this.#local.delete(session.id);
        session.closed = true;
        this.#options.onExpired?.(session);
        continue;
      }
      // Renew only for clients heard since the last renewal, so a lease runs
      // out at most timeout + timeout/3 after the client was last heard.
      if (session.lastHeard <= session.lastRenewed) continue;
      if (now - session.lastRenewed < session.timeout / 3) continue;
      session.lastRenewed = now;
      this.#etcd.keepAliveOnce(session.lease).then((ttl) => {
        if (ttl > 0n || session.closed) return;
        this.#local.delete(session.id);
        session.closed = true;
        this.#options.onExpired?.(session);
      }).catch(() => {
        // etcd unreachable right now: try again on the next tick.
        session.lastRenewed = 0;
      });
    }
  }
}
