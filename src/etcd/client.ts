/**
 * The only module that talks to etcd. It offers exactly what the
 * translation layer needs — ranges, transactions with compares, one watch
 * stream from a revision, and leases — with revisions as bigints and keys as
 * strings, so nothing else depends on the etcd3 library's types.
 *
 * Every call — transactions, the watch stream, leases (grant, revoke, time
 * to live, the keep-alive stream) and compaction — goes over our own gRPC
 * client (`./grpc/`): one HTTP/2 connection, and with etcd auth one token
 * for the user, renewed when etcd no longer takes it. With
 * {@link EtcdOptions.transport} `"etcd3"`, every call goes through the etcd3
 * library instead (its own connections and token); the etcd3 client is
 * only made then.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { circuitBreaker, ConsecutiveBreaker, handleWhen, noop } from "cockatiel";
import { Etcd3, type IOptions, isRecoverableError } from "etcd3";

/** Deadline of one etcd call (streams excepted). */
const ETCD_CALL_TIMEOUT_MS = 10_000;
import type * as RPC from "etcd3/lib/rpc";
import { type ClientStream, GrpcChannel, GrpcError, type Metadata } from "./grpc/channel.ts";
import {
  decodeAuthenticateToken,
  decodeLeaseGrantResponse,
  decodeLeaseKeepAliveResponse,
  decodeLeaseTimeToLiveResponse,
  decodeTxnResponse,
  decodeWatchResponse,
  EMPTY,
  encodeAuthenticateRequest,
  encodeCompactionRequest,
  encodeLeaseGrantRequest,
  encodeLeaseKeepAliveRequest,
  encodeLeaseRevokeRequest,
  encodeLeaseTimeToLiveRequest,
  encodeTxnRequest,
  encodeWatchCreate,
  prefixEndBytes,
  smallBig,
  type TxnRequest,
  type TxnResponse,
} from "./grpc/proto.ts";

/** Largest etcd response accepted (a page of the replica's load shrinks below it). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export {
  absent,
  type Compare,
  type CompareTarget,
  type DeleteOp,
  type GetOp,
  type KeyValue,
  type MetaCompare,
  type Op,
  type PutOp,
  type RangeResult,
  type TxnResult,
  unchanged,
  type ValueCompare,
  type WatchBatch,
  type WatchEvent,
} from "./ops.ts";
import type {
  Compare,
  GetOp,
  KeyValue,
  Op,
  RangeResult,
  TxnResult,
  WatchBatch,
  WatchEvent,
} from "./ops.ts";

/**
 * etcd refused a read as of a revision it has compacted away. Reads pinned
 * to a revision (one snapshot across several round trips) start again from
 * the current one.
 */
export class EtcdCompactedError extends Error {
  override name = "EtcdCompactedError";
}

/**
 * etcd refused a transaction for good, whatever the moment: more operations
 * than its `--max-txn-ops`, or a request or reply larger than it (or this
 * client) accepts. Sending the same again fails again; smaller parts may not.
 */
export class EtcdRefusedError extends Error {
  override name = "EtcdRefusedError";
  /** Which limit: operations per transaction, or bytes. */
  readonly limit: "ops" | "bytes";

  constructor(limit: "ops" | "bytes", message: string, options?: ErrorOptions) {
    super(message, options);
    this.limit = limit;
  }
}

/**
 * etcd refused a transaction that puts a key on a lease it no longer has (a
 * session's, revoked or expired). The same transaction without that put
 * may succeed.
 */
export class EtcdLeaseNotFoundError extends Error {
  override name = "EtcdLeaseNotFoundError";
}

/** etcd's words (as gRPC status details, or as the etcd3 library passes them on) for each kind. */
const COMPACTED = /required revision has been compacted/i;
const TOO_MANY_OPS = /too many operations in txn request/i;
const TOO_LARGE = /request is too large|message larger than max|resource ?exhausted/i;
const LEASE_NOT_FOUND = /lease not found/i;

/**
 * The error as this module's callers see it: etcd's "compacted", "too many
 * operations" and "too large" typed; any other as it came (its outcome
 * unknown).
 */
function typed(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const text = err instanceof GrpcError ? err.details : err.message;
  if (COMPACTED.test(text)) return new EtcdCompactedError(err.message, { cause: err });
  if (TOO_MANY_OPS.test(text)) return new EtcdRefusedError("ops", err.message, { cause: err });
  if (LEASE_NOT_FOUND.test(text)) return new EtcdLeaseNotFoundError(err.message, { cause: err });
  if (TOO_LARGE.test(text) || (err instanceof GrpcError && err.code === GRPC_RESOURCE_EXHAUSTED)) {
    return new EtcdRefusedError("bytes", err.message, { cause: err });
  }
  return err;
}

/** gRPC's RESOURCE_EXHAUSTED: a message over a size limit. */
const GRPC_RESOURCE_EXHAUSTED = 8;

/** gRPC's UNAVAILABLE. */
const GRPC_UNAVAILABLE = 14;

/** etcd's words for a call refused because the member has no leader (with `hasleader` asked). */
const NO_LEADER = /^etcdserver: no leader$/;

/** Whether etcd refused a call for its auth token (expired, or older than a change of permissions). */
function staleToken(err: unknown): boolean {
  return err instanceof GrpcError && STALE_TOKEN.test(err.details);
}

/** etcd's words for a token it no longer takes. */
const STALE_TOKEN = /invalid auth token|auth store is old/;

/** Connection settings for {@link EtcdClient.connect}. */
export interface EtcdOptions {
  /** `host:port` or URLs. */
  endpoints: string[];
  /** PEM contents for TLS. */
  tls?: { ca?: Uint8Array; cert?: Uint8Array; key?: Uint8Array };
  /** etcd user and password (etcd with auth enabled). */
  auth?: { username: string; password: string };
  /**
   * How every call reaches etcd: `"direct"` (the default) over our own
   * HTTP/2 client ({@link GrpcChannel}), `"etcd3"` through the etcd3 library.
   */
  transport?: "direct" | "etcd3";
}

/** The narrow etcd API used by the rest of the server. */
export class EtcdClient {
  /** The etcd3 library's client: with the `"etcd3"` transport only. */
  readonly #etcd: Etcd3 | null;
  /** Our own HTTP/2 client for every call, when used (see {@link EtcdOptions.transport}). */
  readonly #direct: GrpcChannel | null;
  /** With etcd auth: the user the direct transport authenticates as. */
  readonly #auth?: { username: string; password: string };
  /** The direct transport's auth token, once asked for. */
  #token: Promise<string> | null = null;
  /** That token, once etcd gave it. */
  #tokenValue: string | null = null;
  /** The etcd3 library's lease keep-alive stream, once opened. */
  #keepAlive?: Promise<RPC.IDuplexStream<RPC.ILeaseKeepAliveRequest, RPC.ILeaseKeepAliveResponse>>;
  /** The direct transport's lease keep-alive stream, once opened (again after it ends). */
  #keepAliveDirect: Promise<ClientStream> | null = null;
  /** Keep-alives sent and not answered yet, by lease id: each stream rejects them when it fails. */
  #keepAliveWaiters = new Map<string, PromiseWithResolvers<bigint>[]>();

  private constructor(
    etcd: Etcd3 | null,
    direct: GrpcChannel | null,
    auth?: { username: string; password: string },
  ) {
    this.#etcd = etcd;
    this.#direct = direct;
    this.#auth = auth;
  }

  /** How calls reach etcd (see {@link EtcdOptions.transport}). */
  get transport(): "direct" | "etcd3" {
    return this.#direct ? "direct" : "etcd3";
  }

  /**
   * Told when the connection to an etcd member ended (with why), as the
   * next call goes to the next of the endpoints (over our own transport).
   */
  onMemberLeft?: (endpoint: string, why: string) => void;

  /** Told the duration (seconds) of each transaction: a write ("txn") or reads only ("read"). */
  onRoundTrip?: (kind: "txn" | "read", seconds: number) => void;

  /** Connects (lazily: the first call fails if etcd is unreachable). */
  static connect(options: EtcdOptions): EtcdClient {
    const secure = options.tls !== undefined;
    const hosts = options.endpoints.map((e) =>
      e.includes("://") ? e : `${secure ? "https" : "http"}://${e}`
    );
    if (options.transport !== "etcd3") {
      // Our own client only: the etcd3 library's is not made at all.
      const direct = new GrpcChannel({
        endpoints: hosts,
        tls: options.tls,
        callTimeoutMs: ETCD_CALL_TIMEOUT_MS,
        maxResponseBytes: MAX_RESPONSE_BYTES,
        // A member without a leader (cut off from the others, or in an
        // election) refuses every call at once instead of holding it until
        // etcd's request timeout: the channel sends the call again, leaving
        // that member for the next (see ChannelOptions.memberRefuses).
        metadata: { hasleader: "true" },
        memberRefuses: (code, details) => code === GRPC_UNAVAILABLE && NO_LEADER.test(details),
        onLeave: (endpoint, why) => client.onMemberLeft?.(endpoint, why),
      });
      const client = new EtcdClient(null, direct, options.auth);
      return client;
    }
    const opts: IOptions = {
      hosts,
      dialTimeout: 5000,
      // No retries: a write whose answer was lost may have been applied, so
      // it must not be sent again (the client sees a lost connection and
      // decides). No circuit breaker on a single endpoint: one failure must
      // not refuse every request of the server for seconds.
      // With several endpoints, a host that keeps failing is skipped for 5 s
      // (a call blocked that way tries the next host; one that reached a
      // host and failed is never sent again).
      faultHandling: {
        host: () =>
          hosts.length > 1
            ? circuitBreaker(handleWhen(isRecoverableError), {
              halfOpenAfter: 5000,
              breaker: new ConsecutiveBreaker(3),
            })
            : noop,
        global: noop,
      },
      // A stuck etcd call fails instead of holding its connection forever.
      defaultCallOptions: (context) =>
        context.isStream ? {} : { deadline: Date.now() + ETCD_CALL_TIMEOUT_MS },
      grpcOptions: { "grpc.max_receive_message_length": 64 * 1024 * 1024 },
    };
    if (options.tls) {
      opts.credentials = {
        // Without a CA file the system's roots verify etcd.
        rootCertificate: options.tls.ca
          ? Buffer.from(options.tls.ca)
          : (undefined as unknown as Buffer),
        certChain: options.tls.cert ? Buffer.from(options.tls.cert) : undefined,
        privateKey: options.tls.key ? Buffer.from(options.tls.key) : undefined,
      };
    }
    if (options.auth) opts.auth = options.auth;
    return new EtcdClient(new Etcd3(opts), null, options.auth);
  }

  /** Sends a TxnRequest over the direct transport (see {@link #directUnary}). */
  async #directTxn(request: TxnRequest, timeoutMs?: number): Promise<TxnResponse> {
    const body = encodeTxnRequest(request);
    return decodeTxnResponse(await this.#directUnary("/etcdserverpb.KV/Txn", body, timeoutMs));
  }

  /**
   * Calls `path` over the direct transport, with the token under etcd auth.
   * A token etcd no longer takes (expired, or older than a change of
   * permissions) is refused before the call runs: it is renewed and the
   * request sent again, once.
   */
  async #directUnary(path: string, body: Uint8Array, timeoutMs?: number): Promise<Uint8Array> {
    for (let attempt = 0;; attempt++) {
      const metadata = this.#auth ? await this.#tokenMetadata(this.#auth) : undefined;
      try {
        return await this.#direct!.unary(path, body, metadata, timeoutMs);
      } catch (err) {
        if (attempt > 0 || !metadata || !staleToken(err)) throw err;
        this.#renewToken(metadata.token);
      }
    }
  }

  /** The direct transport's request metadata with etcd auth: `auth`'s token, asked for once. */
  async #tokenMetadata(auth: { username: string; password: string }): Promise<Metadata> {
    if (!this.#token) {
      const { username, password } = auth;
      const asked = this.#direct!.unary(
        "/etcdserverpb.Auth/Authenticate",
        encodeAuthenticateRequest(username, password),
      ).then(decodeAuthenticateToken);
      this.#token = asked;
      asked.then((token) => {
        if (this.#token === asked) this.#tokenValue = token;
      }, () => {
        if (this.#token === asked) this.#token = null; // the next call asks again
      });
    }
    return { token: await this.#token };
  }

  /** Forgets `stale` (if it is still the current token): the next call authenticates again. */
  #renewToken(stale: string): void {
    // Calls in flight together may all find it stale: one renewal serves them.
    if (this.#tokenValue !== stale) return;
    this.#token = null;
    this.#tokenValue = null;
  }

  /**
   * Runs one transaction: `success` if every compare holds, else `failure`.
   * `options.timeoutMs` bounds the wait for its answer (default 10 s; over
   * our own transport only): past it, it fails with its outcome unknown.
   *
   * Every transaction is linearizable. etcd answers one with no operation
   * in either branch from the member's own state, without asking the
   * leader (its `isTxnSerializable` holds for empty branches), so a member
   * that lags — frozen, cut off, or a deposed leader — would confirm
   * compares that no longer hold. Such a transaction is sent with a count
   * of its first key added to `success`, which etcd serves after a read
   * barrier; that count is dropped from the answer.
   */
  async txn(
    compare: Compare[],
    success: Op[],
    failure: Op[] = [],
    options: { timeoutMs?: number } = {},
  ): Promise<TxnResult> {
    const comparesOnly = compare.length > 0 && success.length === 0 && failure.length === 0;
    if (comparesOnly) {
      const res = await this.txn(compare, [{ get: compare[0].key, countOnly: true }], [], options);
      return { ...res, results: [] };
    }
    const started = performance.now();
    const result =
      await (this.#direct
        ? this.#directTxn({ compare, success, failure }, options.timeoutMs).then(fromDirect)
        : this.#etcd!.kv.txn({
          compare: compare.map(toCompare),
          success: success.map(toRequestOp),
          failure: failure.map(toRequestOp),
        }).then(fromEtcd3)).catch((err) => {
          throw typed(err);
        });
    const writes = success.some((op) => !("get" in op));
    this.onRoundTrip?.(writes ? "txn" : "read", (performance.now() - started) / 1000);
    return result;
  }

  /** Runs reads only; shorthand for an unconditional transaction. */
  read(ops: GetOp[]): Promise<TxnResult> {
    return this.txn([], ops);
  }

  /**
   * Watches every key under `prefix` from revision `fromRevision` on, calling
   * `onBatch` for each batch in revision order. Returns a function that stops it.
   */
  async watchPrefix(
    prefix: string,
    fromRevision: bigint,
    onBatch: (batch: WatchBatch) => void,
    onError: (err: Error) => void,
  ): Promise<() => Promise<void>> {
    if (this.#direct) return this.#watchDirect(prefix, fromRevision, onBatch, onError);
    // The library resumes a watch from the revision in the header of each
    // answer, plus one: etcd's current revision, ahead of the history a
    // watch still catching up has not been sent (skipped on a reconnect),
    // or behind it on a lagging member (sent twice). It resumes from the
    // revision after the last event delivered instead, set as each
    // (re)created watch is sent; anything older that comes again is dropped.
    let next = fromRevision;
    const watcher = await this.#etcd!.watch().prefix(prefix).startRevision(String(fromRevision))
      .create();
    watcher.on("connecting", () => {
      watcher.request.start_revision = String(next);
    });
    watcher.on("data", (res: RPC.IWatchResponse) => {
      const events: WatchEvent[] = [];
      for (const e of res.events ?? []) {
        const kv = fromKv(e.kv);
        if (kv.modRevision < next) continue;
        events.push({ type: e.type === "Delete" ? "delete" : "put", kv });
      }
      if (events.length > 0) next = events[events.length - 1].kv.modRevision + 1n;
      onBatch({ revision: BigInt(res.header.revision), events });
    });
    watcher.on("error", onError);
    return () => watcher.cancel();
  }

  /**
   * {@link watchPrefix} over the direct transport. Like etcd3's watcher, it
   * comes back by itself when the connection fails (from the revision after
   * the last one delivered); only etcd cancelling the watch reaches `onError`.
   */
  #watchDirect(
    prefix: string,
    fromRevision: bigint,
    onBatch: (batch: WatchBatch) => void,
    onError: (err: Error) => void,
  ): Promise<() => Promise<void>> {
    const channel = this.#direct!;
    let next = fromRevision;
    let stopped = false;
    let current: ClientStream | null = null;
    let delay = 100;
    /** Whether the last attempt was refused for its token, which was renewed. */
    let renewed = false;
    /**
     * One attempt: resolves once etcd confirms the watch, rejects if it
     * fails before. A watch that ends after its confirmation tries again.
     */
    const open = async () => {
      const created = Promise.withResolvers<void>();
      let confirmed = false;
      const metadata = this.#auth ? await this.#tokenMetadata(this.#auth) : undefined;
      const token = metadata?.token ?? null;
      const request = encodeWatchCreate(prefix, next);
      current = await channel.stream("/etcdserverpb.Watch/Watch", request, {
        onMessage: (bytes) => {
          if (stopped) return;
          const res = decodeWatchResponse(bytes);
          if (
            res.canceled && !confirmed && token && !renewed && STALE_TOKEN.test(res.cancelReason)
          ) {
            // etcd refuses a watch with a stale token this way: renew the
            // token and try again (a refusal with a fresh one is final).
            renewed = true;
            this.#renewToken(token);
            current?.close();
            created.reject(new Error(`etcd refused the watch: ${res.cancelReason}`));
            return;
          }
          if (res.canceled) {
            stopped = true;
            current?.close();
            onError(
              res.compactRevision > 0n
                ? new EtcdCompactedError(
                  `etcd cancelled the watch: revision ${next} has been compacted ` +
                    `(etcd has ${res.compactRevision} on)`,
                )
                : new Error(`etcd cancelled the watch: ${res.cancelReason || "no reason given"}`),
            );
            created.resolve();
            return;
          }
          if (res.created) {
            confirmed = true;
            renewed = false;
            delay = 100;
            created.resolve();
            return;
          }
          const last = res.events.at(-1)?.kv.modRevision ?? res.revision;
          if (last >= next) next = last + 1n;
          onBatch({ revision: res.revision, events: res.events });
        },
        onEnd: (err) => {
          if (confirmed) again();
          else {
            if (token && staleToken(err)) this.#renewToken(token);
            created.reject(err ?? new Error("the etcd watch ended"));
          }
        },
      }, metadata);
      // Stopped while it was being opened: nothing will come for it.
      if (stopped) return current?.close();
      await created.promise;
    };
    const again = () => {
      current = null;
      if (stopped || channel.closed) return;
      setTimeout(() => {
        if (!stopped && !channel.closed) open().catch(again);
      }, delay);
      delay = Math.min(delay * 2, 2000);
    };
    const stop = () => {
      stopped = true;
      current?.close();
      return Promise.resolve();
    };
    // Like etcd3's, resolves once etcd has the watch; a first attempt that fails is retried.
    return open().then(() => stop, () => {
      again();
      return stop;
    });
  }

  /** Calls `path` over the direct transport (see {@link #directUnary}), its error {@link typed}. */
  #directCall(path: string, body: Uint8Array): Promise<Uint8Array> {
    return this.#directUnary(path, body).catch((err) => {
      throw typed(err);
    });
  }

  /** Grants a lease of `ttlSeconds`; returns its id. */
  async grantLease(ttlSeconds: number): Promise<bigint> {
    if (this.#direct) {
      const res = decodeLeaseGrantResponse(
        await this.#directCall(
          "/etcdserverpb.Lease/LeaseGrant",
          encodeLeaseGrantRequest(ttlSeconds),
        ),
      );
      // Lease 0 means "no lease" in every put: never hand it out as one.
      if (res.id === 0n) throw new Error(`etcd granted no lease: ${res.error || "no id given"}`);
      return res.id;
    }
    const res = await this.#etcd!.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 });
    return BigInt(res.ID);
  }

  /** Revokes a lease, deleting every key attached to it. Unknown leases are ignored. */
  async revokeLease(id: bigint): Promise<void> {
    try {
      if (this.#direct) {
        await this.#directCall("/etcdserverpb.Lease/LeaseRevoke", encodeLeaseRevokeRequest(id));
      } else {
        await this.#etcd!.leaseClient.leaseRevoke({ ID: String(id) });
      }
    } catch (err) {
      if (!LEASE_NOT_FOUND.test(String(err))) throw err;
    }
  }

  /** Remaining TTL of a lease in seconds (≤ 0 when gone) and the keys attached to it. */
  async leaseInfo(id: bigint): Promise<{ ttl: bigint; keys: string[] }> {
    if (this.#direct) {
      const res = decodeLeaseTimeToLiveResponse(
        await this.#directCall(
          "/etcdserverpb.Lease/LeaseTimeToLive",
          encodeLeaseTimeToLiveRequest(id, true),
        ),
      );
      return { ttl: res.ttl, keys: res.keys };
    }
    const res = await this.#etcd!.leaseClient.leaseTimeToLive({ ID: String(id), keys: true });
    return {
      ttl: BigInt(res.TTL),
      keys: (res.keys ?? []).map((k: Buffer) => k.toString("utf8")),
    };
  }

  /**
   * Renews a lease once; resolves to its new TTL in seconds (≤ 0 when it is
   * gone). Every renewal goes over one keep-alive stream, opened on first use
   * and again after it ends; when it fails, every renewal waiting on it fails.
   */
  async keepAliveOnce(id: bigint): Promise<bigint> {
    if (!this.#direct) {
      const stream = await this.#keepAliveStream();
      const waiter = this.#keepAliveWaiter(id);
      stream.write({ ID: String(id) });
      return await waiter.promise;
    }
    for (let attempt = 0;; attempt++) {
      const waiter = this.#keepAliveWaiter(id);
      // Not sent (no stream could be opened, or it ended meanwhile): this renewal fails.
      this.#keepAliveSend(encodeLeaseKeepAliveRequest(id)).catch((err) => {
        const key = String(id);
        const others = (this.#keepAliveWaiters.get(key) ?? []).filter((w) => w !== waiter);
        if (others.length > 0) this.#keepAliveWaiters.set(key, others);
        else this.#keepAliveWaiters.delete(key);
        waiter.reject(err);
      });
      try {
        return await waiter.promise;
      } catch (err) {
        // A stream etcd refused for its token (renewed as it ended) is opened again, once.
        if (attempt > 0 || !this.#auth || !staleToken(err)) throw err;
      }
    }
  }

  /** A renewal of lease `id` waiting for etcd's answer on the keep-alive stream. */
  #keepAliveWaiter(id: bigint): PromiseWithResolvers<bigint> {
    const key = String(id);
    const waiter = Promise.withResolvers<bigint>();
    const waiters = this.#keepAliveWaiters.get(key) ?? [];
    waiters.push(waiter);
    this.#keepAliveWaiters.set(key, waiters);
    return waiter;
  }

  /** Every renewal waiting on the keep-alive stream fails with `err`. */
  #rejectKeepAlives(err: Error): void {
    const waiting = [...this.#keepAliveWaiters.values()].flat();
    this.#keepAliveWaiters.clear();
    for (const w of waiting) w.reject(err);
  }

  /**
   * Sends one LeaseKeepAliveRequest on the direct transport's keep-alive
   * stream, opening it (with it as the first message) when there is none.
   */
  async #keepAliveSend(request: Uint8Array): Promise<void> {
    if (this.#keepAliveDirect) return (await this.#keepAliveDirect).send(request);
    const ended = (err: Error) => {
      if (this.#keepAliveDirect === opening) this.#keepAliveDirect = null;
      this.#rejectKeepAlives(err);
    };
    const opening = (async () => {
      const metadata = this.#auth ? await this.#tokenMetadata(this.#auth) : undefined;
      const token = metadata?.token ?? null;
      return await this.#direct!.stream("/etcdserverpb.Lease/LeaseKeepAlive", request, {
        onMessage: (bytes) => {
          const res = decodeLeaseKeepAliveResponse(bytes);
          const key = String(res.id);
          const waiters = this.#keepAliveWaiters.get(key);
          this.#keepAliveWaiters.delete(key);
          for (const w of waiters ?? []) w.resolve(res.ttl);
        },
        onEnd: (err) => {
          if (token && staleToken(err)) this.#renewToken(token);
          ended(err ?? new Error("etcd lease keep-alive stream ended"));
        },
      }, metadata);
    })();
    this.#keepAliveDirect = opening;
    opening.catch(ended);
    await opening;
  }

  /** The etcd3 library's keep-alive stream (with the `"etcd3"` transport). */
  #keepAliveStream(): Promise<
    RPC.IDuplexStream<RPC.ILeaseKeepAliveRequest, RPC.ILeaseKeepAliveResponse>
  > {
    if (this.#keepAlive) return this.#keepAlive;
    const opening = this.#etcd!.leaseClient.leaseKeepAlive().then((stream) => {
      stream.on("data", (res: RPC.ILeaseKeepAliveResponse) => {
        const key = String(res.ID);
        const waiters = this.#keepAliveWaiters.get(key);
        this.#keepAliveWaiters.delete(key);
        for (const w of waiters ?? []) w.resolve(BigInt(res.TTL));
      });
      const reset = (err?: Error) => {
        if (this.#keepAlive === opening) this.#keepAlive = undefined;
        this.#rejectKeepAlives(err ?? new Error("etcd lease keep-alive stream ended"));
      };
      stream.on("error", reset);
      stream.on("end", () => reset());
      return stream;
    });
    this.#keepAlive = opening;
    opening.catch(() => {
      if (this.#keepAlive === opening) this.#keepAlive = undefined;
    });
    return opening;
  }

  /**
   * Discards etcd's history before `revision` (for the whole cluster);
   * already compacted past it: {@link EtcdCompactedError}.
   */
  async compact(revision: bigint): Promise<void> {
    if (this.#direct) {
      await this.#directCall("/etcdserverpb.KV/Compact", encodeCompactionRequest(revision));
      return;
    }
    await this.#etcd!.kv.compact({ revision: String(revision), physical: false }).catch((err) => {
      throw typed(err);
    });
  }

  /** Closes every connection to etcd (renewals waiting on the keep-alive stream fail). */
  close(): void {
    this.#keepAlive?.then((s) => s.end()).catch(() => {});
    this.#direct?.close();
    this.#etcd?.close();
  }
}

/** A transaction's result from the direct transport (nested transactions have none here). */
function fromDirect(res: TxnResponse): TxnResult {
  return {
    succeeded: res.succeeded,
    revision: res.revision,
    results: res.responses.map((r) => r && "kvs" in r ? r : null),
  };
}

const encoder = new TextEncoder();

/** A Buffer over the same bytes (no copy: the request is encoded before they could change). */
function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function keyBytes(key: string): Buffer {
  return view(encoder.encode(key));
}

/** The smallest key greater than every key starting with `prefix` (as {@link prefixEndBytes}). */
export function prefixEnd(prefix: string): Buffer {
  return view(prefixEndBytes(prefix));
}

const COMPARE_TARGET = { create: 1, mod: 2, version: 0, lease: 4 } as const;
const COMPARE_FIELD = {
  create: "create_revision",
  mod: "mod_revision",
  version: "version",
  lease: "lease",
} as const;
const COMPARE_RESULT = { "==": 0, ">": 1, "<": 2, "!=": 3 } as const;

function toCompare(c: Compare): RPC.ICompare {
  if (c.target === "value") {
    return { key: keyBytes(c.key), target: 3, result: 0, value: view(c.bytes) };
  }
  const out: RPC.ICompare = {
    key: keyBytes(c.key),
    target: COMPARE_TARGET[c.target],
    result: COMPARE_RESULT[c.op],
    [COMPARE_FIELD[c.target]]: String(c.value),
  };
  if (c.prefix) out.range_end = prefixEnd(c.key);
  return out;
}

function toRequestOp(op: Op): RPC.IRequestOp {
  if ("get" in op) {
    return {
      request_range: {
        key: keyBytes(op.from ?? op.get),
        range_end: op.end !== undefined
          ? keyBytes(op.end)
          : op.prefix
          ? prefixEnd(op.get)
          : undefined,
        revision: op.revision === undefined ? undefined : String(op.revision),
        keys_only: op.keysOnly ?? false,
        count_only: op.countOnly ?? false,
        limit: op.limit ?? 0,
        // etcd's SortTarget.MOD = 3, SortOrder.DESCEND = 2.
        ...(op.newestFirst ? { sort_target: 3, sort_order: 2 } : {}),
      },
    };
  }
  if ("put" in op) {
    return {
      request_put: {
        key: keyBytes(op.put),
        value: op.ignoreValue ? undefined : view(op.value ?? new Uint8Array()),
        lease: op.lease === undefined ? undefined : String(op.lease),
        ignore_value: op.ignoreValue ?? false,
        ignore_lease: op.ignoreLease ?? false,
      },
    };
  }
  return {
    request_delete_range: {
      key: keyBytes(op.del),
      range_end: op.prefix ? prefixEnd(op.del) : undefined,
    },
  };
}

/** A transaction's result from etcd3 (a nested one with its outer transaction's header). */
function fromEtcd3(res: RPC.ITxnResponse): TxnResult {
  return {
    succeeded: res.succeeded,
    revision: BigInt(res.header.revision),
    results: (res.responses ?? []).map(fromResponseOp),
  };
}

function fromResponseOp(r: RPC.IResponseOp): RangeResult | null {
  return r.response_range
    ? { kvs: (r.response_range.kvs ?? []).map(fromKv), count: Number(r.response_range.count) }
    : null;
}

/** The last revision string converted, and its bigint: keys written together share one. */
let lastRevision = "";
let lastRevisionBig = 0n;

/** A revision (or version) as a bigint, reusing the last one when it repeats. */
function big(value: string | number | undefined | null): bigint {
  const text = String(value ?? 0);
  if (text === "0") return 0n;
  if (text !== lastRevision) {
    lastRevision = text;
    lastRevisionBig = BigInt(text);
  }
  return lastRevisionBig;
}

function fromKv(kv: RPC.IKeyValue): KeyValue {
  const version = Number(kv.version ?? 0);
  return {
    key: kv.key.toString("utf8"),
    value: kv.value && kv.value.byteLength > 0 ? new Uint8Array(kv.value) : EMPTY,
    createRevision: big(kv.create_revision),
    modRevision: big(kv.mod_revision),
    version: Number.isSafeInteger(version) ? smallBig(version) : BigInt(kv.version ?? 0),
    lease: big(kv.lease),
  };
}
