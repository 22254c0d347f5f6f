/**
 * Starts a real ZooKeeper 3.8 ensemble (by default three members, from the
 * Debian `zookeeper` package, as {@link startZooKeeper} does a standalone
 * one) on free loopback ports, whose members can be stopped and started
 * again. With `readOnlyMode`, the members run with
 * `-Dreadonlymode.enabled=true`: a member that loses its quorum serves
 * clients that sent canBeReadOnly read-only, about 2 s later (ZooKeeper's
 * fixed grace period). That is the oracle of the read-only specs.
 *
 * The ensemble is tuned to start fast and small: a 200 ms tick (sessions
 * still negotiate 4000–40000 ms, as our servers'), short init and sync
 * limits, a 128 MB heap and the C1 compiler only per JVM, no fsync.
 *
 * @module
 */

import { freePorts } from "./ports.ts";
import { sleep, stopChild } from "./process.ts";
import {
  checkClasspath,
  DEFAULT_ZOOKEEPER_CLASSPATH,
  jvmArgs,
  logTail,
  sendFourLetterWord,
  spawnJava,
} from "./zookeeper.ts";

/** One member of a {@link ZooKeeperEnsemble}. */
export interface EnsembleMember {
  /** Its `myid` (1, 2, 3, …). */
  id: number;
  /** The client port on 127.0.0.1. */
  port: number;
  /** `127.0.0.1:PORT`, ready for a client's connect string. */
  hostPort: string;
  /** Its log file (JVM output and ZooKeeper's own log). */
  logFile: string;
  /** Whether its JVM is running (started and not stopped). */
  readonly running: boolean;
  /** Stops it (SIGTERM, SIGKILL after 3 s); its data dir is kept. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data (does not wait for it to serve). */
  start(): void;
  /** `Mode: …` of its `srvr` answer (`leader`, `follower`, `read-only`), or null when not serving. */
  mode(): Promise<string | null>;
}

/** A running ensemble started by {@linkcode startZooKeeperEnsemble}. */
export interface ZooKeeperEnsemble {
  members: EnsembleMember[];
  /** Every member's `127.0.0.1:PORT`, comma-separated. */
  connectString: string;
  /** The temporary dir holding every member's dir. */
  dir: string;
  /** Milliseconds from the first spawn to every member serving as leader or follower. */
  startedInMs: number;
  /** Stops every member and removes the dir. */
  stop(): Promise<void>;
  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@linkcode startZooKeeperEnsemble}. */
export interface EnsembleOptions {
  /** Members (default 3). */
  size?: number;
  /** Run with `-Dreadonlymode.enabled=true` (default false). */
  readOnlyMode?: boolean;
  /** ZooKeeper's tickTime, ms (default 200). */
  tickTime?: number;
  /** Each JVM's -Xmx (default `128m`). */
  heap?: string;
}

const READY_TIMEOUT_MS = 30_000;

/**
 * Starts an ensemble with fresh temporary data dirs and resolves once every
 * member serves as leader or follower. Throws, with the tail of each
 * member's log, when it does not within 30 s.
 */
export async function startZooKeeperEnsemble(
  options: EnsembleOptions = {},
): Promise<ZooKeeperEnsemble> {
  const size = options.size ?? 3;
  const tickTime = options.tickTime ?? 200;
  const classpath = Deno.env.get("ZOOKEEPER_CLASSPATH") ?? DEFAULT_ZOOKEEPER_CLASSPATH;
  await checkClasspath(classpath);
  const ports = await freePorts(3 * size);
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const clientPort = (id: number) => ports[3 * (id - 1)];
  const servers = ids.map((id) =>
    `server.${id}=127.0.0.1:${ports[3 * (id - 1) + 1]}:${ports[3 * (id - 1) + 2]}`
  );
  const dir = await Deno.makeTempDir({ prefix: "zetcd-test-zookeeper-ensemble-" });
  const jvm = [
    ...(options.readOnlyMode ? ["-Dreadonlymode.enabled=true"] : []),
    "-XX:TieredStopAtLevel=1",
    "-XX:CICompilerCount=1",
    "-Xss512k",
    ...jvmArgs(classpath, { heap: options.heap ?? "128m" }),
  ];

  const members: EnsembleMember[] = [];
  for (const id of ids) {
    const memberDir = `${dir}/${id}`;
    await Deno.mkdir(`${memberDir}/data`, { recursive: true });
    await Deno.writeTextFile(`${memberDir}/data/myid`, `${id}\n`);
    const configFile = `${memberDir}/zoo.cfg`;
    await Deno.writeTextFile(
      configFile,
      [
        `tickTime=${tickTime}`,
        "initLimit=10",
        "syncLimit=5",
        `dataDir=${memberDir}/data`,
        `clientPort=${clientPort(id)}`,
        "clientPortAddress=127.0.0.1",
        "minSessionTimeout=4000",
        "maxSessionTimeout=40000",
        "maxClientCnxns=0",
        "4lw.commands.whitelist=*",
        "admin.enableServer=false",
        // Elections on loopback only; a quick retry of a refused peer.
        "cnxTimeout=500",
        // A read-only server creates local sessions only: with global ones (the default), its
        // ReadOnlyRequestProcessor refuses a new session's createSession, and the client gets a
        // bare NotReadOnly reply header instead of a ConnectResponse.
        ...(options.readOnlyMode
          ? ["localSessionsEnabled=true", "localSessionsUpgradingEnabled=true"]
          : []),
        ...servers,
        "",
      ].join("\n"),
    );
    const logFile = `${memberDir}/zookeeper.log`;
    const hostPort = `127.0.0.1:${clientPort(id)}`;
    let child: Deno.ChildProcess | undefined;
    let stopping: Promise<void> | undefined;
    const member = {
      id,
      port: clientPort(id),
      hostPort,
      logFile,
      get running() {
        return child !== undefined;
      },
      start() {
        if (child) return;
        child = spawnJava(
          [...jvm, "org.apache.zookeeper.server.quorum.QuorumPeerMain", configFile],
          logFile,
        );
      },
      stop(): Promise<void> {
        if (!child) return stopping ?? Promise.resolve();
        const running = child;
        child = undefined;
        stopping = stopChild(running, 3000).then(() => {});
        return stopping;
      },
      mode: () => modeOf(hostPort),
    };
    members.push(member);
  }

  const started = performance.now();
  for (const m of members) m.start();
  const stop = async () => {
    await Promise.all(members.map((m) => m.stop()));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const modes = await Promise.all(members.map((m) => m.mode()));
      if (modes.every((m) => m === "leader" || m === "follower")) break;
      if (Date.now() > deadline) {
        const logs = await Promise.all(
          members.map(async (m) => `member ${m.id} (${m.logFile}):\n${await logTail(m.logFile)}`),
        );
        throw new Error(
          `the ZooKeeper ensemble did not serve within ${READY_TIMEOUT_MS} ms ` +
            `(modes ${JSON.stringify(modes)}).\n${logs.join("\n")}`,
        );
      }
      await sleep(50);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    members,
    connectString: members.map((m) => m.hostPort).join(","),
    dir,
    startedInMs: performance.now() - started,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** The `Mode:` of `srvr` at `hostPort`, or null when it does not serve (or answer). */
export async function modeOf(hostPort: string): Promise<string | null> {
  try {
    const srvr = await sendFourLetterWord(hostPort, "srvr", 1000);
    return srvr.match(/^Mode: (.*)$/m)?.[1] ?? null;
  } catch {
    return null;
  }
}
