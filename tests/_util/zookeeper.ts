/**
 * Starts a real standalone Apache ZooKeeper 3.8 (the "oracle" that zetcd's
 * behaviour is compared against) from the Debian `zookeeper` package.
 *
 * @module
 */

import { freePort, isListening } from "./ports.ts";
import { sleep, stopChild, tailLines } from "./process.ts";
import { type ZooKeeperTls, zooKeeperTlsSettings } from "./zookeeper_tls.ts";
import { zooKeeperSaslSettings } from "./zookeeper_sasl.ts";

/** A running ZooKeeper started by {@linkcode startZooKeeper}. */
export interface ZooKeeperProcess {
  /** The client port on 127.0.0.1. */
  port: number;
  /** `127.0.0.1:PORT`, ready for a client's connect string. */
  hostPort: string;
  /** `127.0.0.1:PORT` of the TLS client port (`secureClientPort`), when started with `tls`. */
  tlsHostPort?: string;
  /** The temporary dir with zoo.cfg, data/ and zookeeper.log. */
  dir: string;
  /** The server's log file (JVM output and ZooKeeper's own log). */
  logFile: string;
  /** Stops the server (SIGTERM, SIGKILL after 3 s) and removes its dir. */
  stop(): Promise<void>;
  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Classpath used when env `ZOOKEEPER_CLASSPATH` is not set. The Debian
 * zookeeper.jar lists its dependencies in its manifest's Class-Path;
 * slf4j-simple is added so the server logs (into the log file) instead of
 * falling back to SLF4J's no-op logger.
 */
export const DEFAULT_ZOOKEEPER_CLASSPATH =
  "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

const READY_TIMEOUT_MS = 20_000;

/**
 * Starts a standalone ZooKeeper (java from env `JAVA_BIN`, else `java` on
 * PATH; main class `org.apache.zookeeper.server.ZooKeeperServerMain`) on a
 * free loopback port with a fresh temporary data dir, and resolves once it
 * answers `ruok` with `imok` and `srvr` reports it serving (and its TLS
 * port, if any, takes connections). Throws, with the tail of its log, when it does
 * not within 20 s.
 */
export async function startZooKeeper(
  // jaas: a server JAAS file's text, for SASL DIGEST-MD5 (see zookeeper_sasl.ts).
  options: { fsync?: boolean; heap?: string; tls?: ZooKeeperTls; jaas?: string } = {},
): Promise<ZooKeeperProcess> {
  const classpath = Deno.env.get("ZOOKEEPER_CLASSPATH") ??
    DEFAULT_ZOOKEEPER_CLASSPATH;
  await checkClasspath(classpath);
  const port = await freePort();
  const dir = await Deno.makeTempDir({ prefix: "zetcd-test-zookeeper-" });
  const configFile = `${dir}/zoo.cfg`;
  const logFile = `${dir}/zookeeper.log`;
  await Deno.mkdir(`${dir}/data`);
  // With `tls`: also a TLS client port with client certificates (x509).
  const tlsPort = options.tls ? await freePort() : undefined;
  const tls = options.tls && tlsPort !== undefined
    ? await zooKeeperTlsSettings(dir, tlsPort, options.tls)
    : { cfg: [], jvm: [], classpath: [] };
  const sasl = await zooKeeperSaslSettings(dir, options.jaas);
  await Deno.writeTextFile(
    configFile,
    zooCfg(port, `${dir}/data`) + sasl.cfg + tls.cfg.join("\n"),
  );

  const child = spawnJava([
    ...tls.jvm,
    ...sasl.jvm,
    ...jvmArgs([classpath, ...tls.classpath].join(":"), options),
    "org.apache.zookeeper.server.ZooKeeperServerMain",
    configFile,
  ], logFile);

  let stopped: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopped ??= stopZooKeeper(child, dir);
    return stopped;
  }

  try {
    await waitUntilServing(port, child, logFile, tlsPort);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    port,
    hostPort: `127.0.0.1:${port}`,
    tlsHostPort: tlsPort === undefined ? undefined : `127.0.0.1:${tlsPort}`,
    dir,
    logFile,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** The zoo.cfg of a standalone test server. */
function zooCfg(port: number, dataDir: string): string {
  return [
    "tickTime=2000",
    `clientPort=${port}`,
    "clientPortAddress=127.0.0.1",
    `dataDir=${dataDir}`,
    "minSessionTimeout=4000",
    "maxSessionTimeout=40000",
    "maxClientCnxns=0",
    "4lw.commands.whitelist=*",
    "admin.enableServer=false",
    "",
  ].join("\n");
}

/**
 * Runs java with `args`, its output appended to `logFile`. sh only
 * redirects the output, then execs java, so the child's pid is the JVM's.
 */
export function spawnJava(args: string[], logFile: string): Deno.ChildProcess {
  const java = Deno.env.get("JAVA_BIN") ?? "java";
  return new Deno.Command("sh", {
    args: ["-c", 'exec "$@" >>"$ZK_LOG_FILE" 2>&1', "sh", java, ...args],
    env: { ZK_LOG_FILE: logFile },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/**
 * JVM flags: small heap, serial GC, no fsync (unless asked: the benchmark
 * syncs as etcd does), logs to stderr (the file).
 */
export function jvmArgs(classpath: string, options: { fsync?: boolean; heap?: string }): string[] {
  return [
    `-Xmx${options.heap ?? "256m"}`,
    "-XX:+UseSerialGC",
    "-Djava.net.preferIPv4Stack=true",
    "-Dzookeeper.extendedTypesEnabled=true",
    // Containers and TTL nodes are checked every 200 ms (ZooKeeper: 60 s), as our test servers do.
    "-Dznode.container.checkIntervalMs=200",
    "-Dzookeeper.admin.enableServer=false",
    `-Dzookeeper.forceSync=${options.fsync ? "yes" : "no"}`,
    "-Dzookeeper.jmx.log4j.disable=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-cp",
    classpath,
  ];
}

/** Throws a clear error when a jar of `classpath` is missing. */
export async function checkClasspath(classpath: string): Promise<void> {
  for (const jar of classpath.split(":")) {
    try {
      await Deno.stat(jar);
    } catch {
      throw new Error(
        `ZooKeeper jar ${jar} not found. Install the Debian packages ` +
          "(apt-get install zookeeper, or run .ci/run) or set " +
          "ZOOKEEPER_CLASSPATH.",
      );
    }
  }
}

/**
 * Waits until the server is serving clients (and, with `tlsPort`, also
 * takes connections there: ZooKeeper opens its TLS port after the plain
 * one); throws when it exits first or the deadline passes.
 */
async function waitUntilServing(
  port: number,
  child: Deno.ChildProcess,
  logFile: string,
  tlsPort?: number,
): Promise<void> {
  let exited: Deno.CommandStatus | undefined;
  child.status.then((status) => exited = status);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(
        `ZooKeeper exited with code ${exited.code} before serving. ` +
          `Last lines of ${logFile}:\n${await logTail(logFile)}`,
      );
    }
    if (
      await isServing(`127.0.0.1:${port}`) &&
      (tlsPort === undefined || await isListening(tlsPort))
    ) return;
    await sleep(50);
  }
  throw new Error(
    `ZooKeeper on port ${port} did not answer ruok within ` +
      `${READY_TIMEOUT_MS} ms. Last lines of ${logFile}:\n` +
      await logTail(logFile),
  );
}

/**
 * True when the server answers `ruok` with `imok` and `srvr` with its
 * standalone mode. `ruok` alone is not enough: ZooKeeper 3.8 says `imok` as
 * soon as it listens, while `srvr` still says "This ZooKeeper instance is
 * not currently serving requests".
 */
async function isServing(hostPort: string): Promise<boolean> {
  try {
    if (await sendFourLetterWord(hostPort, "ruok") !== "imok") return false;
    return (await sendFourLetterWord(hostPort, "srvr")).includes(
      "Mode: standalone",
    );
  } catch {
    return false;
  }
}

export async function logTail(logFile: string): Promise<string> {
  try {
    return tailLines(await Deno.readTextFile(logFile));
  } catch {
    return "(no log file)";
  }
}

/**
 * Sends a ZooKeeper four-letter word (`ruok`, `srvr`, `stat`, `mntr`,
 * `cons`, ...) to `hostPort` and resolves with the whole answer, read until
 * the server closes the connection (at most `timeoutMs`).
 */
export async function sendFourLetterWord(
  hostPort: string,
  word: string,
  timeoutMs: number = 2000,
): Promise<string> {
  const [hostname, port] = splitHostPort(hostPort);
  const conn = await Deno.connect({ hostname, port });
  const timer = setTimeout(() => closeQuietly(conn), timeoutMs);
  try {
    await conn.write(new TextEncoder().encode(word));
    return await new Response(conn.readable).text();
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}

function splitHostPort(hostPort: string): [string, number] {
  const colon = hostPort.lastIndexOf(":");
  return [hostPort.slice(0, colon), Number(hostPort.slice(colon + 1))];
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed (e.g. by consuming conn.readable to its end).
  }
}

async function stopZooKeeper(
  child: Deno.ChildProcess,
  dir: string,
): Promise<void> {
  await stopChild(child, 3000);
  await Deno.remove(dir, { recursive: true });
}
