/**
 * The command line: flags compatible with the Go zetcd (`--zkaddr`,
 * `--endpoints`, `--certfile`, `--keyfile`, `--cafile`) plus our own.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  configure,
  getConsoleSink,
  getJsonLinesFormatter,
  getLogger,
  type Sink,
} from "@logtape/logtape";
import { DEFAULT_MAX_FRAME } from "../jute/frame.ts";
import { ListenError, type ServerOptions, ZetcdServer } from "../server/server.ts";
import { splitHostPort } from "../server/members.ts";
import { VERSION } from "../version.ts";
import { COMMIT } from "../build_info.ts";
import { type LocalEtcd, LocalEtcdError, startLocalEtcd } from "./local_etcd.ts";
import { systemdUnit } from "./systemd.ts";
import { ALL_FOUR_LETTER_WORDS } from "../server/four_letter.ts";
import { ctl } from "./ctl.ts";
import { bench } from "./bench.ts";
import { backup } from "./backup.ts";
import {
  ETCD_FLAGS,
  etcdSettings,
  prefixFlag,
  readKeyPair,
  readPemFile,
  UsageError,
} from "./etcd_flags.ts";
import { migrate } from "./migrate.ts";
import { readJaasUsers } from "./jaas.ts";

const USAGE = `zetcd ${VERSION}: a ZooKeeper server that stores its state in etcd

Usage: zetcd [flags]
       zetcd systemd-unit [flags]   print a systemd unit that runs zetcd with these flags
       zetcd ctl [--auth S:C] COMMAND ...
                                    a small client: get, set, create, ls, stat, rm, watch,
                                    getAcl, setAcl (zetcd ctl --help)
       zetcd dump [--server S] [--auth S:C] [--path P] [--file F]
                                    a tree to JSON Lines (zetcd dump --help)
       zetcd restore [--server S] [--auth S:C] [--file F]
                                    JSON Lines back into a tree
                                    (through the protocol; versions and times are new.
                                    zetcd migrate --from-dump F keeps them)
       zetcd bench [--endpoints S] [--conns N] [--duration S] WORKLOAD
                                    (create, set, get, mixed, watch, delete, etcd):
                                    load a ZooKeeper (or etcd) and print ops/s and latency
                                    (zetcd bench --help)
       zetcd migrate --from zk://HOST:PORT[/CHROOT] | --from-zetcd-prefix /zk/ [flags]
                                    copy a ZooKeeper or Go zetcd tree into etcd
                                    (zetcd migrate --help)

Every flag can also be set as ZETCD_<FLAG> (e.g. ZETCD_ENDPOINTS, ZETCD_LOG_LEVEL);
flags on the command line win.

  --zkaddr HOST:PORT          address for ZooKeeper clients (default 127.0.0.1:2181)
  --advertise-zkaddr HOST:PORT
                              address other machines reach this server's --zkaddr at, listed
                              in /zookeeper/config (default: --zkaddr; the machine's hostname
                              when it listens on 0.0.0.0)
  --endpoints URLS            comma-separated etcd endpoints; without it a local etcd
                              is started with its data under --data-dir
  --certfile FILE             client certificate for etcd (TLS)
  --keyfile FILE              client key for etcd (TLS)
  --cafile FILE               CA bundle to verify etcd (TLS)
  --etcd-user USER            etcd user (etcd with auth enabled); the password comes from
                              --etcd-password-file or ZETCD_ETCD_PASSWORD, never from argv
  --etcd-password-file FILE   file holding the etcd user's password
  --prefix PREFIX             etcd key prefix of this namespace (default /zk/)
  --min-session-timeout MS    lowest session timeout granted (default 4000)
  --max-session-timeout MS    highest session timeout granted (default 40000)
  --max-frame BYTES           largest request frame accepted (default 1048575, as
                              ZooKeeper's jute.maxbuffer)
  --max-connections N         most client connections open at once (default 10000; 0: no limit)
  --max-client-cnxns N        most connections from one IP address, as ZooKeeper's
                              maxClientCnxns (default 60; 0: no limit)
  --max-outgoing-bytes BYTES  replies queued for a client that does not read them, past which
                              its connection is cut (default 16777216)
  --extended-types BOOL       allow TTL nodes (true or false; default true, as ZooKeeper's
                              extendedTypesEnabled=true)
  --read-replica BOOL         answer reads from an in-memory copy of the tree kept by the
                              etcd watch stream (default true; false: every read goes to etcd)
  --read-only-mode BOOL       while etcd is unavailable, serve clients that connect with
                              canBeReadOnly read-only from the last known state, as ZooKeeper's
                              read-only server (default false; needs --read-replica true)
  --etcd-transport NAME       how every etcd call reaches etcd: direct (our own HTTP/2 client,
                              one connection, default) or etcd3 (the etcd3 library)
  --compact-interval MS       how often the elected server compacts etcd's history; 0: never.
                              Default: an etcd given by --endpoints is not compacted (etcd
                              compacts the whole cluster: its other users' history too); the
                              local etcd compacts itself every 5 minutes (etcd's auto-compaction)
  --compact-retain N          revisions kept behind the current one (default 10000)
  --container-check-interval MS
                              how often empty containers and expired TTL nodes are
                              deleted (default 60000, as ZooKeeper)
  --zkaddr-tls HOST:PORT      also serve ZooKeeper clients over TLS (ZooKeeper's secureClientPort),
                              with --zk-certfile and --zk-keyfile (PEM)
  --zk-certfile FILE          certificate chain of the TLS client port
  --zk-keyfile FILE           private key of the TLS client port
  --zk-cafile FILE            CA bundle (PEM) trusted for client certificates on the TLS port; a
                              good certificate gives the session the identity x509:<subject DN>
  --zk-client-auth MODE       client certificates on the TLS port: need (default with
                              --zk-cafile), want (optional) or none (not asked for)
  --oracle HOST:PORT          cross-check mode: send every request to this real ZooKeeper too
                              and log (and count) every difference
  --admin-addr HOST:PORT      HTTP admin port: /metrics, /healthz, /readyz, /commands/<name>
                              (off by default)
  --4lw-commands LIST         four-letter words to answer, comma-separated, or * for all
                              (default srvr,stat,ruok,mntr,conf,envi,cons,wchs,dirs,isro)
  --superdigest DIGEST        super user, as user:base64(sha1(user:password)); it passes
                              every ACL check (ZooKeeper's superDigest)
  --jaas-config FILE          SASL DIGEST-MD5 users from ZooKeeper's server JAAS file: the
                              user_<name>="<password>" options of its Server section
  --etcd-bin PATH             etcd binary for the local default (default: etcd on PATH)
  --data-dir DIR              data directory of the local etcd (default ./zetcd-data)
  --log-level LEVEL           trace, debug, info, warning, error (default info)
  --log-format FORMAT         text or json (default text)
  --help                      print this help
  --version                   print the version
`;

/** The server's flags, as `parseArgs` options. */
const OPTIONS = {
  zkaddr: { type: "string", default: "127.0.0.1:2181" },
  "advertise-zkaddr": { type: "string" },
  ...ETCD_FLAGS,
  prefix: { type: "string", default: "/zk/" },
  "min-session-timeout": { type: "string", default: "4000" },
  "max-session-timeout": { type: "string", default: "40000" },
  "max-frame": { type: "string", default: String(DEFAULT_MAX_FRAME) },
  "max-connections": { type: "string", default: "10000" },
  "max-client-cnxns": { type: "string", default: "60" },
  "max-outgoing-bytes": { type: "string", default: "16777216" },
  superdigest: { type: "string" },
  "jaas-config": { type: "string" },
  "4lw-commands": { type: "string" },
  "admin-addr": { type: "string" },
  oracle: { type: "string" },
  "zkaddr-tls": { type: "string" },
  "zk-certfile": { type: "string" },
  "zk-keyfile": { type: "string" },
  "zk-cafile": { type: "string" },
  "zk-client-auth": { type: "string" },
  "extended-types": { type: "string", default: "true" },
  "read-replica": { type: "string", default: "true" },
  "read-only-mode": { type: "string", default: "false" },
  "etcd-transport": { type: "string", default: "direct" },
  "compact-interval": { type: "string" },
  "compact-retain": { type: "string", default: "10000" },
  "container-check-interval": { type: "string", default: "60000" },
  "etcd-bin": { type: "string" },
  "data-dir": { type: "string", default: "./zetcd-data" },
  "log-level": { type: "string", default: "info" },
  "log-format": { type: "string", default: "text" },
  help: { type: "boolean", default: false },
  version: { type: "boolean", default: false },
} as const;

interface Config {
  hostname: string;
  port: number;
  /** `--advertise-zkaddr`: where others reach the client port (absent: derived from it). */
  advertise?: string;
  endpoints: string[];
  tls?: { ca?: Uint8Array; cert?: Uint8Array; key?: Uint8Array };
  auth?: { username: string; password: string };
  prefix: string;
  minSessionTimeout: number;
  maxSessionTimeout: number;
  maxFrame: number;
  maxConnections: number;
  maxClientCnxns: number;
  maxOutgoingBytes: number;
  superDigest?: string;
  /** SASL DIGEST-MD5 users from `--jaas-config`. */
  saslUsers?: Map<string, string>;
  fourLetterWords?: string[];
  admin?: { hostname: string; port: number };
  oracle?: string;
  clientTls?: ServerOptions["tls"];
  extendedTypes: boolean;
  readReplica: boolean;
  readOnlyMode: boolean;
  etcdTransport: "direct" | "etcd3";
  /** Absent when `--compact-interval` is not given (see {@link compaction}). */
  compactIntervalMs?: number;
  compactRetain: number;
  reapIntervalMs: number;
  etcdBin?: string;
  dataDir: string;
  logLevel: "trace" | "debug" | "info" | "warning" | "error";
  logFormat: "text" | "json";
}

function parseConfig(
  args: string[],
  env: Record<string, string> = {},
): Config | "help" | "version" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: OPTIONS,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return "help";
  if (v.version) return "version";
  const m = /^(.*):(\d+)$/.exec(v.zkaddr!);
  if (!m || Number(m[2]) > 65535) {
    throw new UsageError(`--zkaddr must be HOST:PORT, got "${v.zkaddr}"`);
  }
  const advertise = v["advertise-zkaddr"];
  if (advertise !== undefined) {
    const hp = splitHostPort(advertise);
    if (!hp || hp.port === 0 || hp.host === "0.0.0.0" || hp.host === "::") {
      throw new UsageError(
        `--advertise-zkaddr must be HOST:PORT with a host and port clients can reach, got "${advertise}"`,
      );
    }
  }
  const int = (name: string, value: string) => {
    if (!/^\d+$/.test(value)) {
      throw new UsageError(`--${name} must be a whole number, got "${value}"`);
    }
    return Number(value);
  };
  const etcdTransport = (value: string) => {
    if (value !== "direct" && value !== "etcd3") {
      throw new UsageError(`--etcd-transport must be direct or etcd3, got "${value}"`);
    }
    return value;
  };
  const bool = (name: string, value: string) => {
    if (value !== "true" && value !== "false") {
      throw new UsageError(`--${name} must be true or false, got "${value}"`);
    }
    return value === "true";
  };
  const minSessionTimeout = int("min-session-timeout", v["min-session-timeout"]!);
  const maxSessionTimeout = int("max-session-timeout", v["max-session-timeout"]!);
  if (minSessionTimeout > maxSessionTimeout) {
    throw new UsageError("--min-session-timeout must not exceed --max-session-timeout");
  }
  const logLevel = v["log-level"]!;
  if (!["trace", "debug", "info", "warning", "error"].includes(logLevel)) {
    throw new UsageError(
      `--log-level must be trace, debug, info, warning or error, got "${logLevel}"`,
    );
  }
  const logFormat = v["log-format"]!;
  if (logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`--log-format must be text or json, got "${logFormat}"`);
  }
  const prefix = prefixFlag(v.prefix!);
  const etcd = etcdSettings(v, env);
  return {
    hostname: m[1].replace(/^\[(.*)\]$/, "$1") || "0.0.0.0",
    port: Number(m[2]),
    advertise,
    endpoints: etcd.endpoints,
    tls: etcd.tls,
    auth: etcd.auth,
    prefix,
    minSessionTimeout,
    maxSessionTimeout,
    maxFrame: int("max-frame", v["max-frame"]!),
    maxConnections: int("max-connections", v["max-connections"]!),
    maxClientCnxns: int("max-client-cnxns", v["max-client-cnxns"]!),
    maxOutgoingBytes: int("max-outgoing-bytes", v["max-outgoing-bytes"]!),
    superDigest: superDigest(v.superdigest),
    saslUsers: v["jaas-config"] === undefined ? undefined : readJaasUsers(v["jaas-config"]),
    fourLetterWords: fourLetterWords(v["4lw-commands"]),
    admin: v["admin-addr"] === undefined ? undefined : hostPort("admin-addr", v["admin-addr"]),
    clientTls: clientCertificates(
      clientTls(v["zkaddr-tls"], v["zk-certfile"], v["zk-keyfile"]),
      v["zk-cafile"],
      v["zk-client-auth"],
    ),
    oracle: v.oracle === undefined ? undefined : (hostPort("oracle", v.oracle), v.oracle),
    extendedTypes: bool("extended-types", v["extended-types"]!),
    readReplica: bool("read-replica", v["read-replica"]!),
    readOnlyMode: readOnlyMode(
      bool("read-only-mode", v["read-only-mode"]!),
      bool("read-replica", v["read-replica"]!),
    ),
    etcdTransport: etcdTransport(v["etcd-transport"]!),
    compactIntervalMs: v["compact-interval"] === undefined
      ? undefined
      : int("compact-interval", v["compact-interval"]),
    compactRetain: int("compact-retain", v["compact-retain"]!),
    reapIntervalMs: Math.max(10, int("container-check-interval", v["container-check-interval"]!)),
    etcdBin: v["etcd-bin"],
    dataDir: v["data-dir"]!,
    logLevel: logLevel as Config["logLevel"],
    logFormat,
  };
}

/** `--read-only-mode`: read-only clients are served from the replica, so it needs one. */
function readOnlyMode(on: boolean, replica: boolean): boolean {
  if (on && !replica) throw new UsageError("--read-only-mode true needs --read-replica true");
  return on;
}

/**
 * `--zk-cafile` and `--zk-client-auth` added to the TLS client port: `need`
 * by default with a CA file, `none` without; `need` and `want` need a CA file.
 */
function clientCertificates(
  port: Config["clientTls"],
  caFile?: string,
  mode?: string,
): Config["clientTls"] {
  if (mode !== undefined && mode !== "need" && mode !== "want" && mode !== "none") {
    throw new UsageError(`--zk-client-auth must be need, want or none, got "${mode}"`);
  }
  if (!port) {
    if (caFile !== undefined || mode !== undefined) {
      throw new UsageError("--zk-cafile and --zk-client-auth go with --zkaddr-tls");
    }
    return undefined;
  }
  if (caFile === undefined) {
    if (mode === "need" || mode === "want") {
      throw new UsageError(`--zk-client-auth ${mode} needs --zk-cafile`);
    }
    return port;
  }
  const ca = new TextDecoder().decode(readPemFile("zk-cafile", caFile, "certificates"));
  return { ...port, ca, clientAuth: mode ?? "need" };
}

function clientTls(addr?: string, certFile?: string, keyFile?: string): Config["clientTls"] {
  if (addr === undefined) {
    if (certFile !== undefined || keyFile !== undefined) {
      throw new UsageError("--zk-certfile and --zk-keyfile go with --zkaddr-tls");
    }
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) {
    throw new UsageError("--zkaddr-tls needs --zk-certfile and --zk-keyfile");
  }
  const pair = readKeyPair(
    { flag: "zk-certfile", file: certFile },
    { flag: "zk-keyfile", file: keyFile },
  );
  const text = new TextDecoder();
  return {
    ...hostPort("zkaddr-tls", addr),
    cert: text.decode(pair.cert),
    key: text.decode(pair.key),
  };
}

function hostPort(flag: string, value: string): { hostname: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(value);
  if (!m || Number(m[2]) > 65535) {
    throw new UsageError(`--${flag} must be HOST:PORT, got "${value}"`);
  }
  return { hostname: m[1].replace(/^\[(.*)\]$/, "$1") || "0.0.0.0", port: Number(m[2]) };
}

function fourLetterWords(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === "*") return [...ALL_FOUR_LETTER_WORDS];
  const words = value.split(",").map((w) => w.trim()).filter(Boolean);
  const unknown = words.filter((w) => !ALL_FOUR_LETTER_WORDS.includes(w));
  if (unknown.length > 0) {
    throw new UsageError(`--4lw-commands: unknown word(s) ${unknown.join(", ")}`);
  }
  return words;
}

function superDigest(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[^:]+:[A-Za-z0-9+/]{27}=$/.test(value)) {
    throw new UsageError(
      "--superdigest must be user:base64(sha1(user:password)), e.g. super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
    );
  }
  return value;
}

/**
 * Flags from `ZETCD_*` environment variables: `ZETCD_ENDPOINTS=a,b` is
 * `--endpoints a,b`, `ZETCD_LOG_LEVEL=debug` is `--log-level debug`. A
 * variable that names no flag taking a value is left out and listed in
 * `ignored` (to be warned about: a stray variable must not stop a server).
 */
export function envArgs(env: Record<string, string>): { args: string[]; ignored: string[] } {
  const args: string[] = [];
  const ignored: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    // The etcd password is read as a secret, not as a flag.
    if (!name.startsWith("ZETCD_") || name === "ZETCD_ETCD_PASSWORD") continue;
    const flag = name.slice("ZETCD_".length).toLowerCase().replaceAll("_", "-");
    const option = (OPTIONS as Record<string, { type: string }>)[flag];
    if (option?.type === "string") args.push(`--${flag}`, value);
    else ignored.push(name);
  }
  return { args, ignored };
}

/**
 * Who compacts etcd's history. An etcd given by `--endpoints` is compacted
 * only with `--compact-interval`: etcd compacts the whole cluster, history
 * its other users' watches may need. The local etcd compacts itself (etcd's
 * revision auto-compaction, keeping `--compact-retain` revisions) unless
 * `--compact-interval` says otherwise.
 */
function compaction(
  local: boolean,
  intervalMs: number | undefined,
  retain: number,
): { etcdRetain?: number; intervalMs: number } {
  if (local && intervalMs === undefined) return { etcdRetain: retain, intervalMs: 0 };
  return { intervalMs: intervalMs ?? 0 };
}

/** Log records with bigint values (revisions, zxids) as numbers: `1076`, not `1076n`. */
function withPlainNumbers(sink: Sink): Sink {
  const plain = (value: unknown) =>
    typeof value !== "bigint"
      ? value
      : value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : String(value);
  return (record) =>
    sink({
      ...record,
      message: record.message.map(plain),
      properties: Object.fromEntries(
        Object.entries(record.properties).map(([key, value]) => [key, plain(value)]),
      ),
    });
}

/** The build's commit, or (running from a checkout) what git says, or "unknown". */
async function commit(): Promise<string> {
  if (COMMIT !== "unknown") return COMMIT;
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "--short=12", "HEAD"],
      cwd: new URL("../..", import.meta.url).pathname,
      stderr: "null",
    }).output();
    if (out.success) return new TextDecoder().decode(out.stdout).trim();
  } catch { /* no git, or no permission to run it */ }
  return "unknown";
}

/** Runs the server until SIGINT or SIGTERM; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "ctl") return await ctl(args.slice(1));
  if (args[0] === "dump" || args[0] === "restore") return await backup(args[0], args.slice(1));
  if (args[0] === "migrate") return await migrate(args.slice(1));
  if (args[0] === "bench") return await bench(args.slice(1));
  if (args[0] === "systemd-unit") {
    if (args.includes("--help") || args.includes("-h")) {
      console.log(
        "Usage: zetcd systemd-unit [flags]\n\nPrints a systemd unit that runs zetcd with these " +
          "flags (any of zetcd --help's).",
      );
      return 0;
    }
    const exec = Deno.execPath().endsWith("/deno") ? "/usr/local/bin/zetcd" : Deno.execPath();
    console.log(systemdUnit(exec, args.slice(1)));
    return 0;
  }
  let config;
  const env = Deno.env.toObject();
  const fromEnv = envArgs(env);
  try {
    // ZETCD_<FLAG> variables come first, so flags given on the command line win.
    config = parseConfig([...fromEnv.args, ...args], env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`zetcd: ${err.message} (see --help)`);
    return 2;
  }
  if (config === "help") {
    console.log(USAGE);
    return 0;
  }
  if (config === "version") {
    console.log(`zetcd ${VERSION} (commit ${await commit()})`);
    return 0;
  }
  await configure({
    sinks: {
      console: withPlainNumbers(
        config.logFormat === "json"
          ? getConsoleSink({ formatter: getJsonLinesFormatter() })
          : getConsoleSink(),
      ),
    },
    loggers: [
      { category: ["zetcd"], lowestLevel: config.logLevel, sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
  const log = getLogger(["zetcd", "cli"]);
  for (const name of fromEnv.ignored) {
    log.warn("ignoring environment variable {name}: it sets no zetcd flag (see --help)", { name });
  }
  let local: LocalEtcd | undefined;
  let server: ZetcdServer | undefined;
  // Listening for signals first: one that comes while starting interrupts
  // the local etcd's start, or stops the server as soon as it has started.
  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  const interrupt = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      stop(signal);
      interrupt.abort(new Error(`${signal} while starting`));
    });
  }
  const compact = compaction(
    config.endpoints.length === 0,
    config.compactIntervalMs,
    config.compactRetain,
  );
  try {
    if (config.endpoints.length === 0) {
      local = await startLocalEtcd({
        etcdBin: config.etcdBin,
        dataDir: config.dataDir,
        autoCompactRetain: compact.etcdRetain,
        signal: interrupt.signal,
      });
      log.info(
        compact.etcdRetain === undefined
          ? "started a local etcd on {endpoint} with data in {dir}"
          : "started a local etcd on {endpoint} with data in {dir}; it compacts its history every 5 minutes, keeping {retain} revisions",
        { endpoint: local.endpoint, dir: config.dataDir, retain: compact.etcdRetain },
      );
      config.endpoints = [local.endpoint];
    }
    server = await ZetcdServer.start({
      endpoints: config.endpoints,
      etcdTls: config.tls,
      etcdAuth: config.auth,
      hostname: config.hostname,
      port: config.port,
      advertise: config.advertise,
      prefix: config.prefix,
      minSessionTimeout: config.minSessionTimeout,
      maxSessionTimeout: config.maxSessionTimeout,
      maxFrame: config.maxFrame,
      maxConnections: config.maxConnections,
      maxClientCnxns: config.maxClientCnxns,
      maxOutgoingBytes: config.maxOutgoingBytes,
      superDigest: config.superDigest,
      saslUsers: config.saslUsers,
      fourLetterWords: config.fourLetterWords,
      admin: config.admin,
      tls: config.clientTls,
      oracle: config.oracle,
      extendedTypes: config.extendedTypes,
      readReplica: config.readReplica,
      readOnlyMode: config.readOnlyMode,
      etcdTransport: config.etcdTransport,
      compactIntervalMs: compact.intervalMs,
      compactRetain: config.compactRetain,
      reapIntervalMs: config.reapIntervalMs,
    });
  } catch (err) {
    await local?.stop();
    if (interrupt.signal.aborted) {
      log.info("{signal}: stopping", { signal: await stopped });
      return 0;
    }
    log.error(startProblem(err));
    return 1;
  }
  const superseded = server.superseded.then((reason) => ({ reason }));
  const ended = await Promise.race([stopped, superseded]);
  if (typeof ended === "string") log.info("{signal}: stopping", { signal: ended });
  else log.error(ended.reason);
  await server.close();
  await local?.stop();
  return typeof ended === "string" ? 0 : 1;
}

/** Why the server could not start, in one line. */
function startProblem(err: unknown): string {
  if (err instanceof LocalEtcdError || err instanceof ListenError) return err.message;
  return `cannot start: ${(err as Error).message}`;
}
