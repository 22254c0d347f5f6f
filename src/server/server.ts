/**
 * The ZooKeeper server: a TCP listener whose connections are translated
 * onto one etcd namespace.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { EtcdClient, type EtcdOptions } from "../etcd/client.ts";
import { unreachableReason } from "../etcd/grpc/channel.ts";
import { Keys } from "../store/keys.ts";
import { EtcdTree } from "../store/tree.ts";
import { WritePipeline } from "../store/pipeline.ts";
import { DEFAULT_MAX_FRAME } from "../jute/frame.ts";

/** Default of {@link ServerOptions.maxOutgoingBytes}. */
const DEFAULT_MAX_OUTGOING_BYTES = 16 * 1024 * 1024;
import { DEFAULT_FOUR_LETTER_WORDS } from "./four_letter.ts";
import { Counters } from "../admin/stats.ts";
import { Gauge, Metrics } from "../admin/metrics.ts";
import { serveAdmin } from "./admin_http.ts";
import { serveConnection } from "./connection.ts";
import { SessionManager } from "./sessions.ts";
import { EtcdHealth } from "./etcd_health.ts";
import { Replica } from "../etcd/replica.ts";
import { Compactor, HistoryCheck } from "./compactor.ts";
import { LagMonitor } from "../admin/lag.ts";
import type { ServerState } from "./state.ts";
import { WatchHub } from "./watches.ts";
import { type ClientAuth, ClientTlsListener } from "./client_certs.ts";
import { defaultAdvertise, Members } from "./members.ts";
import { reapExpired } from "../store/reapers.ts";

/** Settings of {@link ZetcdServer.start}; all but `endpoints` have defaults. */
export interface ServerOptions {
  /** etcd endpoints (`host:port` or URLs). */
  endpoints: string[];
  /** TLS material for etcd. */
  etcdTls?: EtcdOptions["tls"];
  /** etcd user and password. */
  etcdAuth?: EtcdOptions["auth"];
  /** Address to serve ZooKeeper clients on (default 127.0.0.1:2181; port 0 picks one). */
  hostname?: string;
  port?: number;
  /** etcd key prefix of this ZooKeeper namespace (default `/zk/`). */
  prefix?: string;
  /** Session timeout bounds in ms (defaults 4000 and 40000). */
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  /** Largest request frame in bytes. */
  maxFrame?: number;
  /** Most client connections open at once (default 10000; 0: no limit). */
  maxConnections?: number;
  /** Most connections from one IP address, as ZooKeeper's maxClientCnxns (default 60; 0: no limit). */
  maxClientCnxns?: number;
  /**
   * Most bytes of replies and notifications queued for one client that is
   * not reading them; past it the connection is cut (default 16 MiB).
   */
  maxOutgoingBytes?: number;
  /**
   * The super user's digest, `super:base64(sha1("super:password"))`, as
   * ZooKeeper's `zookeeper.DigestAuthenticationProvider.superDigest`: a
   * session authenticated with it passes every ACL check.
   */
  superDigest?: string;
  /**
   * SASL DIGEST-MD5 users, name → password (the `user_<name>` options of
   * ZooKeeper's server JAAS file); absent: opcode 102 is answered as by a
   * server without SASL.
   */
  saslUsers?: ReadonlyMap<string, string>;
  /** Allow TTL nodes (ZooKeeper's `extendedTypesEnabled`; default true). */
  extendedTypes?: boolean;
  /**
   * Answer reads from an in-memory copy of the tree kept by the watch stream
   * (default true); false sends every read to etcd (for trees too large for memory).
   */
  readReplica?: boolean;
  /**
   * While etcd is unavailable, serve clients that connect with canBeReadOnly
   * from the replica's last known state, refusing their writes with
   * NotReadOnly, as ZooKeeper's read-only server (default false; needs the
   * replica). Their connections are closed when etcd is back.
   */
  readOnlyMode?: boolean;
  /**
   * How every etcd call reaches etcd: `"direct"` (default, our own HTTP/2
   * client) or `"etcd3"` (the etcd3 library). See {@link EtcdOptions.transport}.
   */
  etcdTransport?: "direct" | "etcd3";
  /**
   * How often the elected server compacts etcd's history, ms (default 0:
   * never). etcd compacts the whole cluster, removing history other
   * applications' watches may need: set it only for an etcd nobody else
   * compacts. Either way the server warns once when etcd keeps more than
   * 1,000,000 revisions.
   */
  compactIntervalMs?: number;
  /** Revisions kept behind the current one when compacting (default 10000). */
  compactRetain?: number;
  /** A real ZooKeeper (`host:port`) to cross-check every request against, logging differences. */
  oracle?: string;
  /**
   * A TLS client port (ZooKeeper's secureClientPort): PEM certificate chain
   * and key; with `ca` (PEM CA bundle), client certificates are asked for
   * and checked (`clientAuth`, default `need`), and a good one gives the
   * session the identity `x509:<subject DN>`.
   */
  tls?: {
    hostname: string;
    port: number;
    cert: string;
    key: string;
    ca?: string;
    clientAuth?: ClientAuth;
  };
  /** Address of the HTTP admin port (`/metrics`, `/healthz`, `/readyz`, `/commands/…`); off when absent. */
  admin?: { hostname: string; port: number };
  /** Four-letter words to answer (default: srvr, stat, ruok, mntr, conf, envi, cons, wchs, dirs, isro; `*` for all). */
  fourLetterWords?: string[];
  /** How often containers and TTL nodes are checked for deletion, ms (default 60000). */
  reapIntervalMs?: number;
  /**
   * `HOST:PORT` this server is listed under in `/zookeeper/config` (default:
   * the client address it listens on, the machine's hostname for 0.0.0.0).
   */
  advertise?: string;
}

/** A running server. */
export class ZetcdServer {
  readonly #listener: Deno.Listener;
  readonly #state: ServerState;
  readonly #etcd: EtcdClient;
  readonly #serving: Promise<void>;
  readonly #tasks = new Set<Promise<void>>();
  /** Open connections per remote IP address. */
  readonly #perIp = new Map<string, number>();
  readonly #maxConnections: number;

  readonly #reaper?: ReturnType<typeof setInterval>;
  readonly #admin?: Deno.HttpServer<Deno.NetAddr>;
  readonly #stopAdmin: AbortController;
  readonly #tlsListener?: Deno.TlsListener;
  /** The etcd compaction election and schedule (absent when compaction is off). */
  readonly compactor?: Compactor;
  /** This server's entry in `/zookeeper/config`. */
  readonly members?: Members;
  readonly #historyCheck?: HistoryCheck;
  /** Settles once the read replica is loaded (or given up on at close; at once when it is off). */
  readonly replicaLoaded: Promise<void>;
  /**
   * Settles, with one line for the operator, if a server of a newer
   * release moves the prefix to a layout this one does not read: the
   * caller should close this server (`zetcd` exits with status 1).
   */
  readonly superseded: Promise<string>;
  readonly #closing = new AbortController();

  private constructor(
    listener: Deno.Listener,
    state: ServerState,
    etcd: EtcdClient,
    reaper: ReturnType<typeof setInterval> | undefined,
    extra: {
      admin?: Deno.HttpServer<Deno.NetAddr>;
      stopAdmin: AbortController;
      tlsListener?: Deno.TlsListener;
      maxConnections: number;
      compactor?: Compactor;
      historyCheck?: HistoryCheck;
      replica?: { replica: Replica; revision: bigint };
      members?: Members;
      superseded: Promise<string>;
    },
  ) {
    this.superseded = extra.superseded;
    this.members = extra.members;
    this.compactor = extra.compactor;
    this.#historyCheck = extra.historyCheck;
    this.#listener = listener;
    this.#maxConnections = extra.maxConnections;
    this.#state = state;
    this.#etcd = etcd;
    this.#reaper = reaper;
    this.#admin = extra.admin;
    this.#stopAdmin = extra.stopAdmin;
    this.#tlsListener = extra.tlsListener;
    this.replicaLoaded = extra.replica ? this.#loadReplica(extra.replica) : Promise.resolve();
    this.#serving = Promise.all([
      this.#accept(listener),
      ...(extra.tlsListener ? [this.#accept(extra.tlsListener)] : []),
    ]).then(() => {});
  }

  /**
   * Binds its ports (a {@link ListenError} if one is taken, before anything
   * is written into etcd), connects to etcd, initialises the namespace if it
   * is new, opens the watch stream and starts serving.
   *
   * @example
   * ```ts
   * const server = await ZetcdServer.start({ endpoints: ["127.0.0.1:2379"], port: 2181 });
   * // … later
   * await server.close();
   * ```
   */
  static async start(options: ServerOptions): Promise<ZetcdServer> {
    const log = getLogger(["zetcd", "server"]);
    const etcd = EtcdClient.connect({
      endpoints: options.endpoints,
      tls: options.etcdTls,
      auth: options.etcdAuth,
      transport: options.etcdTransport,
    });
    etcd.onMemberLeft = (endpoint, why) => {
      if (options.endpoints.length > 1) {
        log.warn("etcd at {endpoint}: {why}; going on with the next of the endpoints", {
          endpoint,
          why,
        });
      } else log.warn("etcd at {endpoint}: {why}; reconnecting", { endpoint, why });
    };
    const keys = new Keys(options.prefix ?? "/zk/");
    let reaper: ReturnType<typeof setInterval> | undefined;
    const tree = new EtcdTree(etcd, keys);
    const superseded = Promise.withResolvers<string>();
    let ports: Ports | undefined;
    let members: Members | undefined;
    try {
      // Ports first: a server that cannot listen writes nothing into etcd.
      ports = bindPorts(options);
      if (ports.tls instanceof ClientTlsListener) {
        const { hostname, port } = ports.tls.addr;
        await ports.tls.listening.catch((err) => {
          throw new ListenError(`cannot listen on ${hostname}:${port} (TLS clients): ${err}`);
        });
      }
      await tree.init();
      // etcd's --max-txn-ops (default 128) bounds how large a multi, and a
      // batch of writes, can be.
      const probe = await etcd.txn(
        Array.from({ length: 129 }, () => ({
          key: `${keys.prefix}probe`,
          target: "create" as const,
          op: "==" as const,
          value: 0n,
        })),
        [],
      ).then(() => true, () => false);
      if (!probe) {
        log.warn(
          "etcd allows at most 128 operations per transaction (--max-txn-ops): multis of more than about 30 creates or 60 deletes will be refused; raise it on the etcd servers",
        );
      }
      // Listed in /zookeeper/config before the revision the replica loads
      // at: the copy then holds that write.
      const clientAddr = ports.client.addr as Deno.NetAddr;
      members = new Members(etcd, keys, log, {
        advertise: options.advertise ?? defaultAdvertise(clientAddr.hostname, clientAddr.port),
      });
      await members.start();
      const zxid = await tree.revision();
      const watches = new WatchHub(
        keys,
        tree.clock,
        (err) => log.error("etcd watch failed: {err}", { err }),
      );
      let replica: Replica | undefined;
      if (options.readReplica ?? true) {
        replica = new Replica(keys.prefix);
        tree.replica = replica;
        watches.replica = replica;
      }
      watches.readNodes = async (paths) => (await tree.getMany(paths, "etcd")).nodes;
      await watches.start(etcd, zxid);
      const health = new EtcdHealth(etcd, keys.layout(), log);
      const state: ServerState = {
        tree,
        writes: new WritePipeline(tree, { maxOps: probe ? undefined : 128 }),
        watches,
        health,
        readOnlyMode: (options.readOnlyMode ?? false) && replica !== undefined,
        lag: new LagMonitor(),
        log,
        maxFrame: options.maxFrame ?? DEFAULT_MAX_FRAME,
        maxOutgoingBytes: options.maxOutgoingBytes ?? DEFAULT_MAX_OUTGOING_BYTES,
        superDigest: options.superDigest,
        saslUsers: options.saslUsers,
        extendedTypes: options.extendedTypes ?? true,
        connections: new Set(),
        counters: new Counters(),
        metrics: new Metrics(),
        started: Date.now(),
        conf: {
          port: 0,
          minSessionTimeout: options.minSessionTimeout ?? 4000,
          maxSessionTimeout: options.maxSessionTimeout ?? 40000,
          prefix: keys.prefix,
          maxClientCnxns: options.maxClientCnxns ?? 60,
        },
        fourLetterWords: new Set(options.fourLetterWords ?? DEFAULT_FOUR_LETTER_WORDS),
        oracle: options.oracle,
        sessions: new SessionManager(etcd, tree, {
          minSessionTimeout: options.minSessionTimeout ?? 4000,
          maxSessionTimeout: options.maxSessionTimeout ?? 40000,
          log,
          etcdAvailable: () => health.available,
        }),
      };
      health.onDown.push(() => {
        for (const conn of [...state.connections]) conn.close();
        if (state.readOnlyMode && replica?.ready) {
          log.warn("serving read-only clients the last known state, zxid {zxid}", {
            zxid: replica.revision,
          });
        }
      });
      health.onUp.push(() => {
        state.sessions.restartTimeouts();
        // Read-only clients reconnect, and get read-write sessions.
        for (const conn of [...state.connections]) if (conn.readOnly) conn.close();
      });
      watches.onOtherChange = (event) => {
        if (event.kv.key === keys.layout()) {
          // A server of a newer release took the prefix over: its records
          // may not read here, so this one stops rather than answer wrongly.
          const newer = event.type === "put" ? tree.newerLayout(event.kv.value) : null;
          if (newer) superseded.resolve(`${newer}: stopping; upgrade this server`);
          return;
        }
        if (!members!.onChange(event)) state.sessions.onRecordChange(event);
      };
      etcd.onRoundTrip = (kind, seconds) => state.metrics.etcdLatency.observe(seconds, { kind });
      state.metrics.gauges.push(
        new Gauge("zetcd_connections", "Open client connections.", () => state.connections.size),
        new Gauge(
          "zetcd_sessions",
          "Sessions held by this server.",
          () => state.sessions.local.size,
        ),
        new Gauge("zetcd_watches", "Registered watches.", () => watches.count()),
        new Gauge(
          "zetcd_replica_keys",
          "etcd keys held by the read replica (0 when it is off).",
          () => tree.replica?.size ?? 0,
        ),
        new Gauge(
          "zetcd_event_loop_lag_seconds",
          "Worst event-loop lag over the last 10 s.",
          () => state.lag.recentMax / 1000,
        ),
        new Gauge(
          "zetcd_etcd_available",
          "1 while an etcd quorum answers, 0 while etcd is unavailable.",
          () => health.available ? 1 : 0,
        ),
        ...(["writes", "commits", "conflicts", "splits"] as const).map((kind) =>
          new Gauge(
            `zetcd_pipeline_${kind}_total`,
            {
              writes: "Writes the write pipeline answered (a multi counts once).",
              commits: "etcd transactions the write pipeline sent.",
              conflicts:
                "Write transactions that failed their compares (another server wrote in between).",
              splits: "Write batches split in halves (after conflicts, or refused by etcd).",
            }[kind],
            () => state.writes.counts[kind],
            { type: "counter" },
          )
        ),
        new Gauge(
          "zetcd_zxid",
          "Last revision seen on the watch stream.",
          () => Number(tree.clock.revision),
        ),
      );
      state.sessions.start();
      health.start();
      state.lag.start();
      const reapEvery = options.reapIntervalMs ?? 60_000;
      reaper = setInterval(() => {
        reapExpired(tree, tree.now()).then((paths) => {
          if (paths.length > 0) {
            log.info("deleted {count} expired container/TTL node(s): {paths}", {
              count: paths.length,
              paths: paths.join(" "),
            });
          }
        }).catch((err) => log.warn("container/TTL check failed: {err}", { err: String(err) }));
      }, reapEvery);
      const { client: listener, tls: tlsListener } = ports;
      state.conf.port = (listener.addr as Deno.NetAddr).port;
      const stopAdmin = new AbortController();
      const adminAddress = ports.takeAdmin();
      const admin = adminAddress
        ? listen(
          "admin",
          adminAddress,
          (a) => serveAdmin(state, { ...a, signal: stopAdmin.signal }),
        )
        : undefined;
      const compactEvery = options.compactIntervalMs ?? 0;
      const compactor = compactEvery > 0
        ? new Compactor(etcd, keys, log, {
          intervalMs: compactEvery,
          retain: options.compactRetain ?? 10_000,
          self: `${(listener.addr as Deno.NetAddr).hostname}:${state.conf.port}`,
        })
        : undefined;
      compactor?.start();
      const historyCheck = new HistoryCheck(etcd, keys.layout(), log);
      historyCheck.start();
      const server = new ZetcdServer(listener, state, etcd, reaper, {
        members,
        compactor,
        historyCheck,
        admin,
        stopAdmin,
        tlsListener,
        maxConnections: options.maxConnections ?? 10_000,
        replica: replica ? { replica, revision: zxid } : undefined,
        superseded: superseded.promise,
      });
      if (server.tlsAddress) {
        log.info("serving ZooKeeper clients over TLS on {addr}", { addr: server.tlsAddress });
      }
      log.info("serving ZooKeeper clients on {addr}, etcd {endpoints} prefix {prefix}", {
        addr: server.address,
        endpoints: options.endpoints.join(","),
        prefix: keys.prefix,
      });
      return server;
    } catch (err) {
      clearInterval(reaper);
      await members?.stop();
      ports?.close();
      etcd.close();
      // Listening problems are reported as they are; the rest comes from etcd.
      if (err instanceof ListenError) throw err;
      throw new Error(`etcd at ${options.endpoints.join(",")}: ${etcdProblem(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * Loads the read replica while the server serves (reads go to etcd until
   * it is ready); after a failure, tries again every 5 s at etcd's revision
   * then. Logs the time it took and the heap it took per znode.
   */
  async #loadReplica({ replica, revision }: { replica: Replica; revision: bigint }) {
    const { log, tree } = this.#state;
    const closing = this.#closing.signal;
    for (let at = revision; !closing.aborted;) {
      const heapBefore = Deno.memoryUsage().heapUsed;
      const loading = performance.now();
      try {
        await replica.load(this.#etcd, at);
        const nodes = await tree.countNodes();
        log.info(
          "read replica: {keys} etcd keys ({nodes} znodes) loaded in {ms} ms, about {bytes} bytes of heap per znode",
          {
            keys: replica.size,
            nodes,
            ms: Math.round(performance.now() - loading),
            bytes: Math.round((Deno.memoryUsage().heapUsed - heapBefore) / Math.max(1, nodes)),
          },
        );
        return;
      } catch (err) {
        if (closing.aborted) return;
        log.warn("read replica: loading failed ({err}); reads go to etcd; trying again in 5 s", {
          err: String(err),
        });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5000);
          closing.addEventListener("abort", () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
        at = await tree.revision().catch(() => at);
      }
    }
  }

  /** `host:port` the server listens on. */
  get address(): string {
    const a = this.#listener.addr as Deno.NetAddr;
    return `${a.hostname}:${a.port}`;
  }

  /** `host:port` of the TLS client port, if it is on. */
  get tlsAddress(): string | undefined {
    const a = this.#tlsListener?.addr as Deno.NetAddr | undefined;
    return a ? `${a.hostname}:${a.port}` : undefined;
  }

  /** `host:port` of the HTTP admin port, if it is on. */
  get adminAddress(): string | undefined {
    const a = this.#admin?.addr;
    return a ? `${a.hostname}:${a.port}` : undefined;
  }

  /** Number of open client connections. */
  get connectionCount(): number {
    return this.#state.connections.size;
  }

  /** Port the server listens on. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Why a new connection from `ip` (which has `fromIp` open) is refused, or null. */
  #refusal(ip: string, fromIp: number): { reason: string; why: string } | null {
    const max = this.#maxConnections;
    if (max > 0 && this.#tasks.size >= max) {
      return {
        reason: "max_connections",
        why: `${this.#tasks.size} connections are open (--max-connections ${max})`,
      };
    }
    const perIp = this.#state.conf.maxClientCnxns;
    if (perIp > 0 && fromIp >= perIp) {
      return {
        reason: "max_client_cnxns",
        why: `${fromIp} connections from ${ip} are open (--max-client-cnxns ${perIp})`,
      };
    }
    return null;
  }

  async #accept(listener: Deno.Listener | Deno.TlsListener): Promise<void> {
    for await (const conn of listener) {
      const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
      const fromIp = this.#perIp.get(ip) ?? 0;
      const refusal = this.#refusal(ip, fromIp);
      if (refusal) {
        // As ZooKeeper: the connection is closed at once; the client tries another server.
        this.#state.log.warn("refusing a connection from {ip}: {why}", { ip, why: refusal.why });
        this.#state.metrics.dropped.inc({ reason: refusal.reason });
        try {
          conn.close();
        } catch { /* already closed */ }
        continue;
      }
      this.#perIp.set(ip, fromIp + 1);
      // Replies and notifications are small frames: send each at once
      // rather than waiting for the peer's delayed ACK (Nagle).
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      const task = serveConnection(conn, this.#state);
      this.#tasks.add(task);
      task.finally(() => {
        this.#tasks.delete(task);
        const left = (this.#perIp.get(ip) ?? 1) - 1;
        if (left > 0) this.#perIp.set(ip, left);
        else this.#perIp.delete(ip);
      });
    }
  }

  /**
   * Stops accepting, closes every client connection and the etcd client.
   * Sessions are not ended: clients can resume them on another server
   * within their timeout.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    this.#state.tree.replica?.invalidate();
    await this.replicaLoaded;
    for (const listener of [this.#listener, this.#tlsListener]) {
      try {
        listener?.close();
      } catch { /* already closed */ }
    }
    await this.#serving.catch(() => {});
    for (const conn of [...this.#state.connections]) conn.close();
    await Promise.allSettled([...this.#tasks]);
    this.#state.sessions.stop();
    this.#state.health.stop();
    this.#state.lag.stop();
    clearInterval(this.#reaper);
    await this.compactor?.stop();
    await this.members?.stop();
    this.#historyCheck?.stop();
    this.#stopAdmin.abort();
    await this.#admin?.finished;
    await this.#state.watches.stop();
    this.#etcd.close();
  }
}

/** A port the server cannot listen on; the message names it and what it is for. */
export class ListenError extends Error {
  override name = "ListenError";
}

/**
 * The server's ports, bound before anything is written into etcd. The admin
 * port is held until the admin server takes it ({@link Ports.takeAdmin}).
 */
interface Ports {
  client: Deno.Listener;
  tls?: Deno.TlsListener;
  /** Frees the held admin port for the admin server to bind at once; its address. */
  takeAdmin(): { hostname: string; port: number } | undefined;
  /** Closes every port still held. */
  close(): void;
}

/** Binds the client, TLS and admin ports of `options`; throws a {@link ListenError}. */
function bindPorts(options: ServerOptions): Ports {
  const held: (Deno.Listener | Deno.TlsListener)[] = [];
  const close = () => {
    for (const listener of held) {
      try {
        listener.close();
      } catch { /* already closed */ }
    }
  };
  try {
    const address = { hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 2181 };
    const client = listen("ZooKeeper clients", address, (a) => Deno.listen(a));
    held.push(client);
    const { tls, admin } = options;
    const tlsListener = tls
      ? listen("TLS clients", tls, (a) =>
        tls.ca !== undefined
          ? ClientTlsListener.bind({
            ...a,
            cert: tls.cert,
            key: tls.key,
            ca: tls.ca,
            clientAuth: tls.clientAuth ?? "need",
            log: getLogger(["zetcd", "server"]),
          })
          : Deno.listenTls({ ...a, cert: tls.cert, key: tls.key }))
      : undefined;
    if (tlsListener) held.push(tlsListener);
    const adminListener = admin ? listen("admin", admin, (a) => Deno.listen(a)) : undefined;
    if (adminListener) held.push(adminListener);
    const takeAdmin = () => {
      if (!admin || !adminListener) return undefined;
      adminListener.close();
      return { hostname: admin.hostname, port: adminListener.addr.port };
    };
    return { client, tls: tlsListener, takeAdmin, close };
  } catch (err) {
    close();
    throw err;
  }
}

/** `bind(address)`, its failure a {@link ListenError} naming the address and `what` it is for. */
function listen<L>(
  what: string,
  address: { hostname: string; port: number },
  bind: (address: { hostname: string; port: number }) => L,
): L {
  try {
    return bind({ hostname: address.hostname, port: address.port });
  } catch (err) {
    const why = err instanceof Deno.errors.AddrInUse
      ? "address in use"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (err as Error).message;
    const message = `cannot listen on ${address.hostname}:${address.port} (${what}): ${why}`;
    throw new ListenError(message, { cause: err });
  }
}

/** The useful part of an etcd client error, for a one-line message. */
function etcdProblem(err: unknown): string {
  const reason = unreachableReason(err);
  if (reason) return `unreachable (${reason})`;
  const message = err instanceof Error ? err.message : String(err);
  const last = /Last error: (?:Error: )?(.*?)(?:\. Resolution note|$)/m.exec(message);
  if (last) return `unreachable (${last[1].trim()})`;
  return message.split("\n")[0];
}
