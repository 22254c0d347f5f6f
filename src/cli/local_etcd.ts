/**
 * The local default: with no `--endpoints`, the server runs its own etcd on
 * loopback with its data under `--data-dir`, and stops it on exit.
 *
 * Its start is bounded (`readyWithinMs`) and can be interrupted (`signal`);
 * a data directory whose database another etcd holds is refused at once,
 * naming that etcd's process id.
 *
 * @module
 */

/** A supervised local etcd. */
export interface LocalEtcd {
  endpoint: string;
  stop(): Promise<void>;
}

/** Settings of {@link startLocalEtcd}. */
export interface LocalEtcdOptions {
  /** etcd binary: a path, or a name looked up on PATH (default `etcd`). */
  etcdBin?: string;
  /** Data directory; etcd keeps its data in its `etcd/` subdirectory. */
  dataDir: string;
  /**
   * etcd compacts its own history every 5 minutes, keeping this many
   * revisions (its `--auto-compaction-mode revision`); absent: it never does.
   */
  autoCompactRetain?: number;
  /** How long etcd may take to become ready, ms (default 20000). */
  readyWithinMs?: number;
  /** Aborting stops the start: etcd is stopped and the start rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Why the local etcd cannot start; its message is one line for the operator. */
export class LocalEtcdError extends Error {
  override name = "LocalEtcdError";
}

/** Thrown when no etcd binary can be found; its message tells the operator what to do. */
export class EtcdNotFoundError extends LocalEtcdError {
  override name = "EtcdNotFoundError";
}

/** Default of {@link LocalEtcdOptions.readyWithinMs}. */
const READY_WITHIN_MS = 20_000;

/** How long etcd has to stop after SIGTERM before it is killed. */
const STOP_GRACE_MS = 5000;

/** Finds `name` on PATH, or returns null. */
function which(name: string): string | null {
  const candidates = name.includes("/")
    ? [name]
    : (Deno.env.get("PATH") ?? "").split(":").map((dir) => `${dir || "."}/${name}`);
  for (const candidate of candidates) {
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch { /* not here */ }
  }
  return null;
}

/** Two distinct free loopback ports: both bound at once, then released. */
function freePorts(): [number, number] {
  const a = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const b = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  a.close();
  b.close();
  return [(a.addr as Deno.NetAddr).port, (b.addr as Deno.NetAddr).port];
}

/**
 * Starts etcd with its data in `options.dataDir` and resolves once it is
 * healthy. Rejects with a {@link LocalEtcdError} when there is no etcd
 * binary, the data directory is in use by another etcd, or etcd exits or is
 * not ready in time; with the signal's reason when `options.signal` aborts.
 */
export async function startLocalEtcd(options: LocalEtcdOptions): Promise<LocalEtcd> {
  const bin = which(options.etcdBin ?? "etcd");
  if (!bin) {
    throw new EtcdNotFoundError(
      `no etcd binary found (${
        options.etcdBin ?? "etcd on PATH"
      }): install one (Debian: apt-get install etcd-server), pass --etcd-bin PATH, or point at a running etcd with --endpoints HOST:PORT`,
    );
  }
  await Deno.mkdir(options.dataDir, { recursive: true });
  refuseIfInUse(options.dataDir, undefined);
  const [clientPort, peerPort] = freePorts();
  const child = new Deno.Command(bin, {
    args: etcdArgs(options, clientPort, peerPort),
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = () => stopChild(child);
  try {
    await untilReady(`http://127.0.0.1:${clientPort}`, child, bin, options);
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint: `127.0.0.1:${clientPort}`, stop };
}

/** etcd's command line: one member on loopback, quiet, and compacting itself when asked. */
function etcdArgs(options: LocalEtcdOptions, clientPort: number, peerPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const retain = options.autoCompactRetain;
  return [
    "--name=zetcd-local",
    `--data-dir=${options.dataDir}/etcd`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=zetcd-local=${peer}`,
    "--logger=zap",
    "--log-level=error",
    // Large multis (e.g. zkCli deleteall) need more than the default 128.
    "--max-txn-ops=10000",
    // etcd's retention 0 means "off": keep at least one revision.
    ...(retain === undefined
      ? []
      : ["--auto-compaction-mode=revision", `--auto-compaction-retention=${Math.max(1, retain)}`]),
  ];
}

/**
 * Polls etcd's `/health` until it answers healthy; throws when etcd exits,
 * when `readyWithinMs` passes, or when `signal` aborts.
 */
async function untilReady(
  url: string,
  child: Deno.ChildProcess,
  bin: string,
  options: LocalEtcdOptions,
): Promise<void> {
  let exited: Deno.CommandStatus | undefined;
  child.status.then((status) => exited = status);
  const within = options.readyWithinMs ?? READY_WITHIN_MS;
  const deadline = Date.now() + within;
  while (Date.now() < deadline) {
    options.signal?.throwIfAborted();
    if (exited) {
      throw new LocalEtcdError(
        `local etcd (${bin}) exited with code ${exited.code} before it was ready`,
      );
    }
    if (await healthy(url, options.signal)) return;
    await pause(100, options.signal);
  }
  options.signal?.throwIfAborted();
  // Another etcd may have taken the data directory since we looked.
  refuseIfInUse(options.dataDir, child.pid);
  throw new LocalEtcdError(`local etcd (${bin}) did not become ready within ${within / 1000} s`);
}

/** Whether etcd at `url` says it is healthy within a second. */
async function healthy(url: string, signal?: AbortSignal): Promise<boolean> {
  const timeout = AbortSignal.timeout(1000);
  try {
    const res = await fetch(`${url}/health`, {
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    return (await res.text()).includes('"true"');
  } catch {
    return false; // not up yet, or not answering
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Stops etcd: SIGTERM, then SIGKILL if it is still running after {@link STOP_GRACE_MS}. */
async function stopChild(child: Deno.ChildProcess): Promise<void> {
  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch { /* already gone */ }
  };
  signal("SIGTERM");
  const timer = setTimeout(() => signal("SIGKILL"), STOP_GRACE_MS);
  await child.status;
  clearTimeout(timer);
}

/**
 * Throws when another process holds the data directory's etcd database:
 * etcd locks it while it runs, and a second etcd on it waits for the lock
 * forever, listening but never answering. `self`, the etcd we started, may
 * hold it (then only a holder known to be another process counts).
 */
function refuseIfInUse(dataDir: string, self: number | undefined): void {
  const holder = databaseHolder(`${dataDir}/etcd/member/snap/db`);
  if (holder === undefined || holder === self || (self !== undefined && holder === 0)) return;
  throw new LocalEtcdError(
    `data directory ${dataDir} is in use by another etcd${holder ? ` (pid ${holder})` : ""}`,
  );
}

/**
 * Who holds the lock on etcd's database file `db`: its process id, 0 when
 * it is locked by a process that cannot be told (not Linux), or undefined
 * when nobody holds it (or there is no database yet).
 */
function databaseHolder(db: string): number | undefined {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(db, { read: true });
  } catch {
    return undefined;
  }
  try {
    if (file.tryLockSync(true)) {
      file.unlockSync();
      return undefined;
    }
  } finally {
    file.close();
  }
  return flockHolder(db) ?? 0;
}

/**
 * The process holding a flock on `path`, from Linux's `/proc/locks`
 * (`5: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF`), or undefined.
 */
function flockHolder(path: string): number | undefined {
  let locks: string;
  let id: string;
  try {
    const { dev, ino } = Deno.statSync(path);
    locks = Deno.readTextFileSync("/proc/locks");
    id = `${deviceNumbers(dev)}:${ino}`;
  } catch {
    return undefined;
  }
  for (const line of locks.split("\n")) {
    const [, kind, , , pid, file] = line.trim().split(/\s+/);
    if (kind === "FLOCK" && file === id && Number(pid) > 0) return Number(pid);
  }
  return undefined;
}

/** A Linux device number as `/proc/locks` prints it: major and minor in hex, e.g. `fe:00`. */
function deviceNumbers(dev: number): string {
  const major = (Math.floor(dev / 0x100) & 0xfff) | (Math.floor(dev / 0x100000000) & ~0xfff);
  const minor = (dev & 0xff) | (Math.floor(dev / 0x1000) & ~0xff & 0xfffff);
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return `${hex(major)}:${hex(minor)}`;
}
