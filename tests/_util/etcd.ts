/**
 * Starts a throwaway single-member etcd for tests.
 *
 * @module
 */

import { Etcd3 } from "etcd3";
import { freePorts } from "./ports.ts";
import {
  drainStream,
  explainSpawnError,
  freezeChild,
  sleep,
  stopChild,
  type StreamText,
  tailLines,
} from "./process.ts";

/** A running etcd started by {@linkcode startEtcd}. */
export interface EtcdProcess {
  /** Client endpoints as `host:port`, e.g. `["127.0.0.1:23790"]`. */
  endpoints: string[];
  /** Client URL, e.g. `http://127.0.0.1:23790`. */
  clientUrl: string;
  /** Process id. */
  pid: number;
  /** The temporary data dir; removed by {@linkcode EtcdProcess.stop}. */
  dataDir: string;
  /** Stops etcd (SIGTERM, SIGKILL after 3 s) and removes its data dir. */
  stop(): Promise<void>;
  /** Sends etcd a signal, e.g. SIGCONT to let a frozen etcd go on. */
  signal(signal: Deno.Signal): void;
  /**
   * Freezes etcd (SIGSTOP) and resolves once every one of its threads has
   * stopped: the kernel stops them a moment after `kill` returns, and a
   * request sent in that moment can still be answered.
   */
  freeze(): Promise<void>;
  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const OUTPUT_LIMIT = 8192;

/**
 * Starts etcd (from env `ETCD_BIN`, else `etcd` on PATH) on two free
 * loopback ports with a fresh temporary data dir, and resolves once
 * `/health` reports healthy. Throws, with the tail of etcd's output, when it
 * is not healthy within 15 s. `extraArgs` go after our flags (e.g.
 * `--auth-token-ttl=1`).
 */
export async function startEtcd(extraArgs: string[] = []): Promise<EtcdProcess> {
  const bin = Deno.env.get("ETCD_BIN") ?? "etcd";
  const [clientPort, peerPort] = await freePorts(2);
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const dataDir = await Deno.makeTempDir({ prefix: "zetcd-test-etcd-" });

  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(bin, {
      args: [...etcdArgs(dataDir, clientUrl, peerUrl), ...extraArgs],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    await Deno.remove(dataDir, { recursive: true });
    explainSpawnError(
      error,
      bin,
      "Install etcd (apt-get install etcd-server, or run .ci/run) or set ETCD_BIN.",
    );
  }
  const stdout = drainStream(child.stdout, OUTPUT_LIMIT);
  const stderr = drainStream(child.stderr, OUTPUT_LIMIT);

  let stopped: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopped ??= stopEtcd(child, stdout, stderr, dataDir);
    return stopped;
  }

  try {
    await waitUntilHealthy(clientUrl, child, stderr);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    endpoints: [`127.0.0.1:${clientPort}`],
    clientUrl,
    pid: child.pid,
    dataDir,
    stop,
    signal: (signal: Deno.Signal) => child.kill(signal),
    freeze: () => freezeChild(child),
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * Turns etcd's auth on: a `root` user (password `rootpw`), and `user` with
 * `password`, allowed to read and write the keys under `prefix`.
 */
export async function enableAuth(
  etcd: EtcdProcess,
  user: { name: string; password: string; prefix: string },
): Promise<void> {
  const admin = new Etcd3({ hosts: etcd.clientUrl });
  try {
    await admin.user("root").create("rootpw");
    await admin.role("root").create().catch(() => {}); // etcd may have it already
    await admin.user("root").addRole("root");
    await admin.user(user.name).create(user.password);
    const role = await admin.role(user.name).create();
    await role.grant({ permission: "Readwrite", range: admin.range({ prefix: user.prefix }) });
    await admin.user(user.name).addRole(user.name);
    await admin.auth.authEnable();
  } finally {
    admin.close();
  }
}

/** Command-line flags for a quiet, fast single-member etcd 3.4. */
function etcdArgs(
  dataDir: string,
  clientUrl: string,
  peerUrl: string,
): string[] {
  return [
    "--name=test",
    `--data-dir=${dataDir}/data`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=test=${peerUrl}`,
    "--initial-cluster-state=new",
    "--heartbeat-interval=50",
    "--election-timeout=500",
    "--logger=zap",
    "--log-level=error",
    // As the local default: large multis need more than 128 operations.
    "--max-txn-ops=10000",
    // Room for the million-znode scale run (etcd's default quota is 2 GiB).
    "--quota-backend-bytes=8589934592",
  ];
}

/**
 * Polls `clientUrl/health` until it reports `{"health":"true"}`; throws when
 * etcd exits first or the deadline passes.
 */
async function waitUntilHealthy(
  clientUrl: string,
  child: Deno.ChildProcess,
  stderr: StreamText,
): Promise<void> {
  let exited: Deno.CommandStatus | undefined;
  child.status.then((status) => exited = status);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(
        `etcd exited with code ${exited.code} before becoming healthy. ` +
          `Last output:\n${tailLines(stderr.text())}`,
      );
    }
    if (await isHealthy(clientUrl)) return;
    await sleep(50);
  }
  throw new Error(
    `etcd at ${clientUrl} was not healthy after ${READY_TIMEOUT_MS} ms. ` +
      `Last output:\n${tailLines(stderr.text())}`,
  );
}

/** True when `clientUrl/health` answers `{"health":"true"}`. */
async function isHealthy(clientUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${clientUrl}/health`, {
      signal: AbortSignal.timeout(1000),
    });
    const body = await response.text();
    return JSON.parse(body).health === "true";
  } catch {
    return false;
  }
}

async function stopEtcd(
  child: Deno.ChildProcess,
  stdout: StreamText,
  stderr: StreamText,
  dataDir: string,
): Promise<void> {
  await stopChild(child, 3000);
  await Promise.all([stdout.done, stderr.done]);
  await Deno.remove(dataDir, { recursive: true });
}
