/**
 * ZooKeeper sessions kept in etcd, so that any server on the same etcd and
 * prefix can serve, resume or end any session.
 *
 * A session has two leases. Its id is the **session lease**, which holds
 * the session record (`P session/<id>`: password, timeout, ephemeral lease).
 * Its ephemeral nodes hold the **ephemeral lease**, granted with a longer
 * TTL. The server holding the session renews both while it hears from the
 * client.
 *
 * - **Holding.** Whoever created or last resumed the session wrote its
 *   record; that write's mod revision is the holder's claim. Every server
 *   sees record writes on its watch stream: a write that is not its own
 *   claim means the session moved, and its connection for it is closed.
 * - **Expiry.** The holder ends a session whose client was silent for its
 *   timeout by deleting the record (a transaction that holds only while its
 *   claim is current). If the holder itself is gone, the session lease runs
 *   out and etcd deletes the record.
 * - **Reaping.** Every server sees the record's deletion on its watch
 *   stream and deletes the ephemerals of the session's ephemeral lease in
 *   one transaction, updating the parents' pzxid; concurrent reapers are
 *   harmless. The ephemeral lease's own TTL is the backstop when no server
 *   is running: etcd then deletes the ephemerals itself.
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";
import type { Logger } from "@logtape/logtape";
import {
  type EtcdClient,
  EtcdCompactedError,
  type KeyValue,
  unchanged,
  type WatchEvent,
} from "../etcd/client.ts";
import { sessionHex } from "../zk/acl.ts";
import type { EtcdTree } from "../store/tree.ts";
import { decodeSession, encodeSession } from "../store/values.ts";
import { reapEphemerals } from "../store/reapers.ts";

/** One ZooKeeper session as this server knows it. */
export class Session {
  /** Session id (= the session lease's id). */
  readonly id: bigint;
  /** 16-byte password. */
  readonly passwd: Uint8Array;
  /** The lease this session's ephemeral nodes are attached to. */
  readonly ephemeralLease: bigint;
  /** TTL of the session lease, ms (renewals come often enough for it). */
  readonly leaseTtlMs: number;
  /** Negotiated timeout, ms. */
  timeout: number;
  /** Identities added with setAuth (e.g. digest `user:hash`). */
  readonly authIds: { scheme: string; id: string }[] = [];
  /** Authenticated as the super user. */
  superuser = false;
  /** Last time (ms) the client was heard from. */
  lastHeard = Date.now();
  /** Requests being served right now (the session is active while any is). */
  busy = 0;
  /** Last time (ms) the leases were renewed. */
  lastRenewed = Date.now();
  /** Mod revision of this server's write of the session record (its claim); 0n while writing. */
  claim = 0n;
  /** Highest record revision seen on the watch stream while the claim was being written. */
  seenWhileClaiming = 0n;
  /** Highest zxid the client has been sent (its reads never go back before it). */
  seenZxid = 0n;
  /** Set once the session ended or moved away from this server. */
  closed = false;
  /**
   * A read-only session (`--read-only-mode`, while etcd is unavailable): it
   * lives only in its connection, with no record or lease in etcd.
   */
  readOnly = false;
  /** Closes the connection that serves this session on this server, if any. */
  detach?: (why: string) => void;

  constructor(
    id: bigint,
    passwd: Uint8Array,
    ephemeralLease: bigint,
    leaseTtlMs: number,
    timeout: number,
  ) {
    this.id = id;
    this.passwd = passwd;
    this.ephemeralLease = ephemeralLease;
    this.leaseTtlMs = leaseTtlMs;
    this.timeout = timeout;
  }

  /** Records that the client has seen `zxid`: its later reads are never older. */
  saw(zxid: bigint): void {
    if (zxid > this.seenZxid) this.seenZxid = zxid;
  }
}

/** Options of {@link SessionManager}. */
export interface SessionOptions {
  minSessionTimeout: number;
  maxSessionTimeout: number;
  log: Logger;
  /** False while etcd is unavailable: no session expires then. */
  etcdAvailable: () => boolean;
}

/**
 * TTL (s) of a session lease for `timeout` ms: 4/3 of the timeout plus a
 * second, so that renewals every TTL/3 keep it alive for at least 8/9 of
 * the timeout after the holder's last renewal.
 */
function leaseTtlFor(timeout: number): number {
  return Math.ceil((timeout * 4) / 3 / 1000) + 1;
}

/** The longest timeout (ms) a session lease of `ttl` seconds can carry. */
function longestTimeoutFor(ttl: number): number {
  return Math.floor(((ttl - 1) * 1000 * 3) / 4);
}

/** Extra TTL of the ephemeral lease over the session lease: time for a reaper to act. */
const EPHEMERAL_GRACE_SECONDS = 10;

/** Creates, resumes, renews and ends sessions; reaps ended sessions' ephemerals. */
export class SessionManager {
  readonly #etcd: EtcdClient;
  readonly #tree: EtcdTree;
  readonly #options: SessionOptions;
  readonly #local = new Map<bigint, Session>();
  #timer?: ReturnType<typeof setInterval>;

  constructor(etcd: EtcdClient, tree: EtcdTree, options: SessionOptions) {
    this.#etcd = etcd;
    this.#tree = tree;
    this.#options = options;
  }

  /** The requested timeout clamped into the configured bounds. */
  negotiate(requested: number): number {
    const { minSessionTimeout: min, maxSessionTimeout: max } = this.#options;
    return Math.min(max, Math.max(min, requested));
  }

  /** Sessions held by this server. */
  get local(): ReadonlyMap<bigint, Session> {
    return this.#local;
  }

  /** Starts a new session. */
  async create(timeout: number): Promise<Session> {
    const ttl = leaseTtlFor(timeout);
    const [id, ephemeralLease] = await Promise.all([
      this.#etcd.grantLease(ttl),
      this.#etcd.grantLease(2 * ttl + EPHEMERAL_GRACE_SECONDS),
    ]);
    const passwd = crypto.getRandomValues(new Uint8Array(16));
    const session = new Session(id, passwd, ephemeralLease, ttl * 1000, timeout);
    this.#local.set(id, session);
    try {
      if (!(await this.#claim(session, id, 0n))) {
        throw new Error(`session record ${sessionHex(id)} already exists`);
      }
    } catch (err) {
      this.#local.delete(id);
      throw err;
    }
    return session;
  }

  /**
   * Resumes a session by id and password, taking it over from whichever
   * server held it; null when it does not exist, has ended or the password
   * is wrong.
   */
  async resume(id: bigint, passwd: Uint8Array | null, timeout: number): Promise<Session | null> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const res = await this.#etcd.read([{ get: this.#tree.keys.session(id) }]);
      const kv = res.results[0]!.kvs[0];
      if (!kv) return null;
      const stored = decodeSession(kv.value);
      if (!passwd || passwd.byteLength !== stored.passwd.byteLength) return null;
      if (!timingSafeEqual(passwd, stored.passwd)) return null;
      const [ttl] = await Promise.all([
        this.#etcd.keepAliveOnce(kv.lease),
        this.#etcd.keepAliveOnce(stored.ephemeralLease),
      ]);
      if (ttl <= 0n) return null;
      const previous = this.#local.get(id);
      // The lease's TTL was fixed when the session began: a longer timeout
      // than it can carry is cut to what it can.
      const session = new Session(
        id,
        stored.passwd,
        stored.ephemeralLease,
        Number(ttl) * 1000,
        Math.min(timeout, longestTimeoutFor(Number(ttl))),
      );
      this.#local.set(id, session);
      let claimed = false;
      try {
        // The claim holds only if nobody ended or claimed the session since the read.
        claimed = await this.#claim(session, kv.lease, kv.modRevision);
      } finally {
        if (!claimed && this.#local.get(id) === session) {
          if (previous) this.#local.set(id, previous);
          else this.#local.delete(id);
        }
      }
      if (claimed) {
        if (previous && previous !== session) this.#drop(previous, "resumed by a new connection");
        return session;
      }
    }
    return null;
  }

  /**
   * Writes the session record, making this server (and connection) its
   * holder, if the record is still at revision `expected` (0n: absent).
   */
  async #claim(session: Session, lease: bigint, expected: bigint): Promise<boolean> {
    const key = this.#tree.keys.session(session.id);
    const res = await this.#etcd.txn(
      [unchanged(key, expected)],
      [{
        put: key,
        value: encodeSession({
          passwd: session.passwd,
          timeout: session.timeout,
          ephemeralLease: session.ephemeralLease,
        }),
        lease,
      }],
    );
    if (!res.succeeded) return false;
    session.claim = res.revision;
    if (session.seenWhileClaiming > res.revision) this.#drop(session, "moved to another server");
    return true;
  }

  /**
   * Ends a session now (closeSession): deletes its ephemerals, then its
   * record and leases. Returns the revision of the ephemerals' deletion.
   */
  async close(session: Session): Promise<bigint> {
    this.#local.delete(session.id);
    session.closed = true;
    const { zxid } = await reapEphemerals(this.#tree, session.ephemeralLease);
    const res = await this.#etcd.txn([], [{ del: this.#tree.keys.session(session.id) }]);
    await this.#etcd.revokeLease(session.id);
    return zxid || res.revision;
  }

  /**
   * Reacts to a change of a session record seen on the watch stream: a
   * write by someone else moves the session away from this server; a
   * deletion ends it, and its ephemerals are reaped.
   */
  onRecordChange(event: WatchEvent): void {
    const id = this.#tree.keys.sessionOf(event.kv.key);
    if (id === null) return;
    const session = this.#local.get(id);
    if (event.type === "put") {
      if (!session) return;
      if (session.claim === 0n) {
        if (event.kv.modRevision > session.seenWhileClaiming) {
          session.seenWhileClaiming = event.kv.modRevision;
        }
      } else if (event.kv.modRevision > session.claim) {
        this.#drop(session, "moved to another connection");
      }
      return;
    }
    if (session) this.#drop(session, "ended");
    this.#ephemeralLeaseOf(session, event.kv).then(async (lease) => {
      if (lease === null) {
        this.#options.log.warn(
          "session {session} ended, but its record's history is compacted: its ephemeral nodes go when their lease expires",
          { session: sessionHex(id) },
        );
        return;
      }
      const { paths } = await reapEphemerals(this.#tree, lease);
      if (paths.length > 0) {
        this.#options.log.info("session {session} ended: deleted {count} ephemeral node(s)", {
          session: sessionHex(id),
          count: paths.length,
        });
      }
    }).catch((err) => {
      this.#options.log.warn("reaping session {session} failed: {err}", {
        session: sessionHex(id),
        err: String(err),
      });
    });
  }

  /**
   * The ephemeral lease of the session whose record `deleted` removed. This
   * server's own session knows it; otherwise the record is read as it was
   * just before the deletion (the watch carries no previous values), null
   * if compaction has removed that revision.
   */
  async #ephemeralLeaseOf(session: Session | undefined, deleted: KeyValue): Promise<bigint | null> {
    if (session) return session.ephemeralLease;
    try {
      const res = await this.#etcd.read([{ get: deleted.key, revision: deleted.modRevision - 1n }]);
      const record = res.results[0]?.kvs[0];
      return record ? decodeSession(record.value).ephemeralLease : null;
    } catch (err) {
      if (err instanceof EtcdCompactedError) return null;
      throw err;
    }
  }

  #drop(session: Session, why: string): void {
    if (this.#local.get(session.id) === session) this.#local.delete(session.id);
    session.closed = true;
    session.detach?.(why);
  }

  /** Starts renewing and expiring sessions (every `tickMs`). */
  start(tickMs = 250): void {
    this.#timer = setInterval(() => this.#tick(), tickMs);
  }

  /** Stops renewing; the sessions then expire unless another server resumes them. */
  stop(): void {
    clearInterval(this.#timer);
  }

  /**
   * Gives every session held here a fresh timeout and renews its leases
   * soon: called when etcd is back after an outage, which clients could
   * not have bridged by talking to us.
   */
  restartTimeouts(): void {
    const now = Date.now();
    for (const session of this.#local.values()) {
      session.lastHeard = now;
      session.lastRenewed = 0;
    }
  }

  #tick(): void {
    const now = Date.now();
    const mayExpire = this.#options.etcdAvailable();
    for (const session of this.#local.values()) {
      if (session.claim === 0n) continue;
      if (session.busy > 0) session.lastHeard = now;
      if (mayExpire && now - session.lastHeard > session.timeout) {
        this.#expire(session);
        continue;
      }
      // Renew every third of the lease's TTL while the session lives here, so
      // that if this server dies the lease outlives the client's own
      // failure detection (2/3 of the timeout) and it can resume elsewhere.
      if (now - session.lastRenewed < session.leaseTtlMs / 3) continue;
      session.lastRenewed = now;
      Promise.all([
        this.#etcd.keepAliveOnce(session.id),
        this.#etcd.keepAliveOnce(session.ephemeralLease),
      ]).then(([ttl]) => {
        if (ttl <= 0n) this.#drop(session, "its lease is gone");
      }).catch(() => {
        session.lastRenewed = 0; // etcd unreachable right now: retry on the next tick
      });
    }
  }

  /** The client was silent for the whole timeout: end the session if we still hold it. */
  #expire(session: Session): void {
    this.#local.delete(session.id);
    session.closed = true;
    this.#options.log.info("session {session} expired after {timeout} ms of silence", {
      session: sessionHex(session.id),
      timeout: session.timeout,
    });
    const key = this.#tree.keys.session(session.id);
    // Only while our claim is current: if the session moved meanwhile, its
    // new holder decides.
    this.#etcd.txn([unchanged(key, session.claim)], [{ del: key }])
      .then((res) => res.succeeded ? this.#etcd.revokeLease(session.id) : undefined)
      .catch((err) => {
        this.#options.log.warn("ending session {session} failed: {err}", {
          session: sessionHex(session.id),
          err: String(err),
        });
      });
    session.detach?.("expired");
  }
}
