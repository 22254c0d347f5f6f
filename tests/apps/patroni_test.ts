/**
 * Patroni 3 (Debian's `patroni`, whose ZooKeeper DCS is kazoo) runs a
 * PostgreSQL 15 cluster with our server as its coordination service, and
 * the same scenario runs against a real ZooKeeper 3.8 (the oracle), so a
 * failure is ours only when ZooKeeper passes.
 *
 * Patroni keeps its cluster state under `/service/<scope>/`: `initialize`
 * (the system identifier), `config` (the dynamic configuration), one
 * ephemeral `members/<name>` per running member and the ephemeral `leader`
 * lock, owned by the leader's session. The scenario specifies that a member
 * bootstraps and takes the lock, that the lock and its member key are
 * ephemerals of its session, that PostgreSQL takes writes, that a second
 * member clones the leader and replicates from it, and that when the
 * leader's Patroni stops, its keys go and the replica takes over the lock
 * and accepts writes; when the last member stops, the lock is gone.
 *
 * PostgreSQL refuses to run as root, and CI runs as root: Patroni then runs
 * as the `postgres` user (through `setpriv`) in temporary dirs it owns.
 * Without Patroni or PostgreSQL 15 the test is skipped with one line saying
 * so, except when env CI is "true", where it fails.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { runKazoo } from "../_util/kazoo.ts";
import { freePorts } from "../_util/ports.ts";
import {
  drainStream,
  runToCompletion,
  signalChild,
  signalGroup,
  sleep,
  type StreamText,
  tailLines,
} from "../_util/process.ts";

const PATRONI = "/usr/bin/patroni";
const PG_BIN = "/usr/lib/postgresql/15/bin";
const INSTALL_HINT = "apt-get install -y patroni postgresql-15";

/** Dynamic configuration: short timings keep the scenario quick. */
const TTL = 12;
const LOOP_WAIT = 2;
const RETRY_TIMEOUT = 5;

const SUPERUSER_PASSWORD = "zetcd-superuser";
const REPLICATION_PASSWORD = "zetcd-replicator";

/** Bounds of the waits. */
const BOOTSTRAP_TIMEOUT_MS = 90_000;
const REPLICA_TIMEOUT_MS = 90_000;
const SHUTDOWN_TIMEOUT_MS = 60_000;
/** Ephemerals of a member that exited go when its session expires (TTL). */
const KEYS_GONE_TIMEOUT_MS = (TTL + 25) * 1000;

const missing = await missingPrograms();
const installed = missing.length === 0;
const mustRun = Deno.env.get("CI") === "true";
if (!installed && !mustRun) {
  console.log(
    `patroni_test: skipped: ${missing.join(" and ")} not installed; install with: ${INSTALL_HINT}`,
  );
}

const NAME = "Patroni with PostgreSQL 15 bootstraps, replicates and fails over";

Deno.test({
  name: `${NAME} (zetcd)`,
  ignore: !installed && !mustRun,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  assertInstalled();
  await using stack = await startStack();
  await patroniScenario(t, stack.address);
});

Deno.test({
  name: `${NAME} (the ZooKeeper 3.8 oracle)`,
  ignore: !installed && !mustRun,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  assertInstalled();
  await using zookeeper = await startZooKeeper();
  await patroniScenario(t, zookeeper.hostPort);
});

/** The scenario's steps, against the coordination service at `hostPort`. */
async function patroniScenario(t: Deno.TestContext, hostPort: string): Promise<void> {
  await using cluster = await PatroniCluster.create(hostPort);
  const base = `/service/${cluster.scope}`;
  let pg1: PatroniMember;
  let pg2: PatroniMember;

  if (
    !await t.step("a member bootstraps PostgreSQL and takes the leader lock", async () => {
      pg1 = await cluster.start("pg1");
      const status = await pg1.waitForStatus(
        (s) => isPrimary(s) && s.state === "running",
        "role primary, state running and GET /leader answering 200",
        BOOTSTRAP_TIMEOUT_MS,
        "/leader",
      );
      assert.equal(status.patroni?.scope, cluster.scope);
      assert.equal((await pg1.get("/leader")).status, 200, "GET /leader on pg1");
      assert.equal((await pg1.get("/primary")).status, 200, "GET /primary on pg1");
      assert.equal((await pg1.get("/replica")).status, 503, "GET /replica on pg1");
    })
  ) return;

  if (
    !await t.step(
      "the leader lock and the member key are ephemerals of one session, beside initialize and config",
      async () => {
        const keys = await readKeys(hostPort, base, [
          "leader",
          "members/pg1",
          "initialize",
          "config",
        ]);
        const details = `${JSON.stringify(keys)}\n${cluster.output()}`;
        const leader = keys.leader;
        const member = keys["members/pg1"];
        assert.ok(leader && member && keys.initialize && keys.config, `all keys exist: ${details}`);
        assert.equal(leader.data, "pg1", "the leader lock names pg1");
        assert.notEqual(leader.ephemeralOwner, "0", "the leader lock is ephemeral");
        assert.notEqual(member.ephemeralOwner, "0", "the member key is ephemeral");
        assert.equal(member.ephemeralOwner, leader.ephemeralOwner, "both belong to one session");
        assert.equal(keys.initialize.ephemeralOwner, "0", "initialize is persistent");
        assert.equal(keys.config.ephemeralOwner, "0", "config is persistent");
        const memberData = JSON.parse(member.data);
        assert.equal(memberData.api_url, `http://127.0.0.1:${pg1.apiPort}/patroni`);
        assert.equal(memberData.conn_url, `postgres://127.0.0.1:${pg1.pgPort}/postgres`);
        assert.equal(memberData.state, "running");
        assert.match(keys.initialize.data, /^\d+$/, "initialize holds the system identifier");
        const config = JSON.parse(keys.config.data);
        assert.deepEqual(
          [config.ttl, config.loop_wait, config.retry_timeout],
          [TTL, LOOP_WAIT, RETRY_TIMEOUT],
          "config holds the bootstrap dynamic configuration",
        );
      },
    )
  ) return;

  if (
    !await t.step("PostgreSQL on the leader takes writes", async () => {
      await psql(pg1.pgPort, "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)");
      await psql(pg1.pgPort, "INSERT INTO notes VALUES (1, 'written on pg1')");
      assert.equal(await psql(pg1.pgPort, "SELECT body FROM notes WHERE id = 1"), "written on pg1");
      assert.equal(await psql(pg1.pgPort, "SELECT pg_is_in_recovery()"), "f");
    })
  ) return;

  if (
    !await t.step("a second member clones the leader and replicates its writes", async () => {
      pg2 = await cluster.start("pg2");
      await pg2.waitForStatus(
        (s) => s.role === "replica" && s.state === "running",
        "role replica, state running and GET /replica answering 200",
        REPLICA_TIMEOUT_MS,
        "/replica",
      );
      assert.equal((await pg2.get("/replica")).status, 200, "GET /replica on pg2");
      assert.equal((await pg2.get("/leader")).status, 503, "GET /leader on pg2");
      assert.equal(await psql(pg2.pgPort, "SELECT pg_is_in_recovery()"), "t");
      const body = await until(
        "the row written on pg1 is on pg2",
        30_000,
        async () =>
          await psql(pg2.pgPort, "SELECT body FROM notes WHERE id = 1").catch(() => "") ||
          undefined,
        () => cluster.output(),
      );
      assert.equal(body, "written on pg1");
      const keys = await readKeys(hostPort, base, ["leader", "members/pg2"]);
      assert.equal(keys.leader?.data, "pg1", "pg1 keeps the lock");
      assert.ok(keys["members/pg2"], "members/pg2 exists");
      assert.notEqual(keys["members/pg2"].ephemeralOwner, "0", "members/pg2 is ephemeral");
      assert.notEqual(
        keys["members/pg2"].ephemeralOwner,
        keys.leader?.ephemeralOwner,
        "members/pg2 belongs to pg2's own session",
      );
    })
  ) return;

  if (
    !await t.step(
      "when the leader's Patroni stops, its keys go and the replica takes the lock and writes",
      async () => {
        const status = await pg1.stop(SHUTDOWN_TIMEOUT_MS);
        assert.equal(status.code, 0, `pg1's Patroni exits cleanly:\n${pg1.output()}`);
        assert.equal(await pg1.postmasterRunning(), false, "pg1's Patroni stopped PostgreSQL");
        // Patroni released the lock by closing its session before it exited.
        const released = await readKeys(hostPort, base, ["leader"]);
        assert.notEqual(released.leader?.data, "pg1", "pg1's lock is gone as soon as it exited");
        const keys = await waitForKeys(
          hostPort,
          base,
          ["leader", "members/pg1"],
          "leader is not None and leader['data'] == 'pg2' and keys['members/pg1'] is None",
          KEYS_GONE_TIMEOUT_MS,
        );
        assert.equal(keys["members/pg1"], null, `members/pg1 is gone:\n${cluster.output()}`);
        assert.equal(keys.leader?.data, "pg2", `pg2 holds the lock:\n${cluster.output()}`);
        await pg2.waitForStatus(
          (s) => isPrimary(s) && s.state === "running",
          "role primary and GET /leader answering 200 after the failover",
          30_000,
          "/leader",
        );
        assert.equal((await pg2.get("/leader")).status, 200, "GET /leader on pg2");
        await psql(pg2.pgPort, "INSERT INTO notes VALUES (2, 'written on pg2')");
        assert.equal(await psql(pg2.pgPort, "SELECT count(*) FROM notes"), "2");
      },
    )
  ) return;

  await t.step("when the last member stops, the leader lock and its member key go", async () => {
    const status = await pg2.stop(SHUTDOWN_TIMEOUT_MS);
    assert.equal(status.code, 0, `pg2's Patroni exits cleanly:\n${pg2.output()}`);
    assert.equal(await pg2.postmasterRunning(), false, "pg2's Patroni stopped PostgreSQL");
    // Patroni deletes the lock by closing its session, so it is gone at once;
    // the member key goes when the session of the exited Patroni expires.
    assert.equal(
      (await readKeys(hostPort, base, ["leader"])).leader,
      null,
      `the leader lock is gone as soon as pg2 exited:\n${cluster.output()}`,
    );
    const keys = await waitForKeys(
      hostPort,
      base,
      ["leader", "members/pg2", "initialize"],
      "leader is None and keys['members/pg2'] is None",
      KEYS_GONE_TIMEOUT_MS,
    );
    assert.equal(keys.leader, null, `the leader lock is gone:\n${cluster.output()}`);
    assert.equal(keys["members/pg2"], null, `members/pg2 is gone:\n${cluster.output()}`);
    assert.ok(keys.initialize, "initialize stays");
  });
}

// ---------------------------------------------------------------------------
// Patroni members

/** What `GET /patroni` answers (the fields used here). */
interface PatroniStatus {
  state?: string;
  role?: string;
  patroni?: { scope?: string; version?: string };
}

function isPrimary(status: PatroniStatus): boolean {
  return status.role === "master" || status.role === "primary";
}

/**
 * The members of one Patroni cluster (one scope) in one temporary dir,
 * stopped (Patroni, then any PostgreSQL left behind) and removed together.
 */
class PatroniCluster {
  readonly members: PatroniMember[] = [];

  private constructor(
    readonly hostPort: string,
    readonly scope: string,
    readonly root: string,
    readonly owner: { uid: number; gid: number } | undefined,
  ) {}

  static async create(hostPort: string): Promise<PatroniCluster> {
    const owner = Deno.uid() === 0 ? await postgresUser() : undefined;
    const root = await Deno.makeTempDir({ prefix: "zetcd-test-patroni-" });
    if (owner) await Deno.chown(root, owner.uid, owner.gid);
    const scope = `zetcd-${Date.now().toString(36)}${crypto.randomUUID().slice(0, 4)}`;
    return new PatroniCluster(hostPort, scope, root, owner);
  }

  /** Starts a member `name` with its own PostgreSQL and REST API ports. */
  async start(name: string): Promise<PatroniMember> {
    const dir = `${this.root}/${name}`;
    await Deno.mkdir(dir, { mode: 0o700 });
    if (this.owner) await Deno.chown(dir, this.owner.uid, this.owner.gid);
    const [pgPort, apiPort] = await freePorts(2);
    const configFile = `${dir}/patroni.yml`;
    // JSON is YAML.
    await Deno.writeTextFile(
      configFile,
      JSON.stringify(patroniConfig(this.hostPort, this.scope, name, dir, pgPort, apiPort), null, 2),
    );
    if (this.owner) await Deno.chown(configFile, this.owner.uid, this.owner.gid);
    const asPostgres = this.owner
      ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
      : [];
    // setsid execs (the test process leads the group, not this child), so
    // the child's pid is Patroni's and leads a group of its own, which
    // holds initdb or pg_basebackup while they run. PostgreSQL itself is
    // started by Patroni in a session of its own (see postmasterRunning).
    const child = new Deno.Command("setsid", {
      args: [...asPostgres, PATRONI, configFile],
      cwd: dir,
      clearEnv: true,
      env: {
        PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        HOME: dir,
        USER: this.owner ? "postgres" : Deno.env.get("USER") ?? "",
        LOGNAME: this.owner ? "postgres" : Deno.env.get("LOGNAME") ?? "",
        LANG: "C.UTF-8",
        PYTHONDONTWRITEBYTECODE: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const member = new PatroniMember(
      name,
      dir,
      pgPort,
      apiPort,
      child,
      drainStream(child.stdout, 200_000),
      drainStream(child.stderr, 200_000),
    );
    this.members.push(member);
    return member;
  }

  /** The tail of every member's output, for failure messages. */
  output(): string {
    return this.members.map((m) => m.output()).join("\n");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const member of this.members) await member.cleanUp();
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }
}

/** One running (or stopped) Patroni member. */
class PatroniMember {
  private exited: Deno.CommandStatus | undefined;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly pgPort: number,
    readonly apiPort: number,
    private readonly child: Deno.ChildProcess,
    private readonly stdout: StreamText,
    private readonly stderr: StreamText,
  ) {
    child.status.then((status) => this.exited = status);
  }

  get dataDir(): string {
    return `${this.dir}/data`;
  }

  /** The tail of Patroni's output (its log goes to stderr). */
  output(lines: number = 40): string {
    return `--- ${this.name} (Patroni, REST ${this.apiPort}, PostgreSQL ${this.pgPort}) ---\n` +
      tailLines(this.stdout.text() + this.stderr.text(), lines);
  }

  /** GETs `path` of the REST API; status 0 when it does not answer. */
  async get(path: string): Promise<{ status: number; body: PatroniStatus }> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.apiPort}${path}`, {
        signal: AbortSignal.timeout(3000),
      });
      const text = await response.text();
      let body: PatroniStatus = {};
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON: only the status matters then.
      }
      return { status: response.status, body };
    } catch {
      return { status: 0, body: {} };
    }
  }

  /**
   * Polls `GET /patroni` until `accept` holds (and `GET <answering200>`
   * answers 200, when given); throws with Patroni's output
   * when Patroni exits first or `timeoutMs` passes.
   */
  async waitForStatus(
    accept: (status: PatroniStatus) => boolean,
    what: string,
    timeoutMs: number,
    answering200?: string,
  ): Promise<PatroniStatus> {
    let last: PatroniStatus = {};
    return await until(`${this.name}: ${what}`, timeoutMs, async () => {
      if (this.exited) {
        throw new Error(
          `${this.name}'s Patroni exited with code ${this.exited.code}:\n${this.output(60)}`,
        );
      }
      const { status, body } = await this.get("/patroni");
      if (status !== 0) last = body;
      if (!accept(body)) return undefined;
      if (answering200 && (await this.get(answering200)).status !== 200) return undefined;
      return body;
    }, () => `last GET /patroni: ${JSON.stringify(last)}\n${this.output(60)}`);
  }

  /**
   * Stops Patroni (SIGTERM: it stops PostgreSQL, then exits), killing its
   * process group when it has not exited within `timeoutMs`.
   */
  async stop(timeoutMs: number): Promise<Deno.CommandStatus> {
    signalChild(this.child, "SIGTERM");
    const timer = setTimeout(() => signalGroup(this.child.pid, "SIGKILL"), timeoutMs);
    try {
      return await this.child.status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The postmaster's pid when the data dir's PostgreSQL is running. */
  async postmasterPid(): Promise<number | undefined> {
    let pid: number;
    try {
      pid = Number((await Deno.readTextFile(`${this.dataDir}/postmaster.pid`)).split("\n")[0]);
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return comm === "postgres" && state !== "Z" ? pid : undefined;
  }

  async postmasterRunning(): Promise<boolean> {
    return await this.postmasterPid() !== undefined;
  }

  /**
   * Stops Patroni (SIGKILL to its group after 30 s), then any PostgreSQL
   * it left running: SIGQUIT (immediate shutdown) to the postmaster, then
   * SIGKILL after 5 s.
   */
  async cleanUp(): Promise<void> {
    if (!this.exited) await this.stop(30_000);
    signalGroup(this.child.pid, "SIGKILL");
    const pid = await this.postmasterPid();
    if (pid === undefined) return;
    try {
      Deno.kill(pid, "SIGQUIT");
    } catch {
      return;
    }
    const deadline = Date.now() + 5000;
    while (await this.postmasterPid() === pid && Date.now() < deadline) await sleep(100);
    if (await this.postmasterPid() === pid) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
  }
}

/** A member's Patroni configuration (YAML, written as JSON). */
function patroniConfig(
  hostPort: string,
  scope: string,
  name: string,
  dir: string,
  pgPort: number,
  apiPort: number,
): Record<string, unknown> {
  return {
    scope,
    name,
    log: { level: "INFO" },
    restapi: { listen: `127.0.0.1:${apiPort}`, connect_address: `127.0.0.1:${apiPort}` },
    zookeeper: { hosts: [hostPort] },
    bootstrap: {
      dcs: {
        ttl: TTL,
        loop_wait: LOOP_WAIT,
        retry_timeout: RETRY_TIMEOUT,
        maximum_lag_on_failover: 1048576,
        postgresql: {
          use_pg_rewind: false,
          use_slots: true,
          parameters: {
            wal_level: "replica",
            hot_standby: "on",
            max_wal_senders: 5,
            max_replication_slots: 5,
            wal_keep_size: "64MB",
          },
        },
      },
      initdb: [{ encoding: "UTF8" }, { locale: "C" }],
      pg_hba: [
        "local all all trust",
        "host replication replicator 127.0.0.1/32 md5",
        "host all all 127.0.0.1/32 md5",
      ],
    },
    postgresql: {
      listen: `127.0.0.1:${pgPort}`,
      connect_address: `127.0.0.1:${pgPort}`,
      data_dir: `${dir}/data`,
      bin_dir: PG_BIN,
      pgpass: `${dir}/pgpass`,
      authentication: {
        superuser: { username: "postgres", password: SUPERUSER_PASSWORD },
        replication: { username: "replicator", password: REPLICATION_PASSWORD },
      },
      parameters: {
        unix_socket_directories: dir,
        max_connections: 20,
        shared_buffers: "16MB",
        fsync: "off",
        full_page_writes: "off",
      },
    },
  };
}

// ---------------------------------------------------------------------------
// The coordination service's view, through kazoo

/**
 * A znode's data and owner (the session id in hex, "0" for a persistent
 * znode: a JSON number would lose the low bits of a 64-bit id), or null
 * when it does not exist.
 */
type Key = { data: string; ephemeralOwner: string } | null;

/** Reads the znodes `names` under `base` (one kazoo session). */
async function readKeys(
  hostPort: string,
  base: string,
  names: string[],
): Promise<Record<string, Key>> {
  return await waitForKeys(hostPort, base, names, "True", 0);
}

/**
 * Reads the znodes `names` under `base` until the Python condition `until`
 * holds (it sees `keys`, a dict of name to `{data, ephemeralOwner}` or None,
 * and `leader`, `keys.get('leader')`) or `timeoutMs` passes, and resolves
 * with the last reading.
 */
async function waitForKeys(
  hostPort: string,
  base: string,
  names: string[],
  until: string,
  timeoutMs: number,
): Promise<Record<string, Key>> {
  return await runKazoo(
    hostPort,
    `
    import time
    def read():
        keys = {}
        for name in ${JSON.stringify(names)}:
            try:
                data, stat = zk.get(${JSON.stringify(base)} + "/" + name)
                keys[name] = {"data": data.decode(), "ephemeralOwner": "%x" % stat.ephemeralOwner}
            except NoNodeError:
                keys[name] = None
        return keys
    deadline = time.time() + ${timeoutMs / 1000}
    while True:
        keys = read()
        leader = keys.get("leader")
        if (${until}) or time.time() >= deadline:
            break
        time.sleep(0.25)
    result = keys
    `,
    { timeoutMs: timeoutMs + 30_000 },
  ) as Record<string, Key>;
}

// ---------------------------------------------------------------------------
// Helpers

/** Runs `sql` with psql as the superuser on 127.0.0.1:`port`; resolves with its unaligned output. */
async function psql(port: number, sql: string): Promise<string> {
  const run = await runToCompletion(`${PG_BIN}/psql`, [
    "-X",
    "-A",
    "-t",
    "-v",
    "ON_ERROR_STOP=1",
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "-U",
    "postgres",
    "-d",
    "postgres",
    "-c",
    sql,
  ], {
    env: { PGPASSWORD: SUPERUSER_PASSWORD, PGCONNECT_TIMEOUT: "5" },
    timeoutMs: 20_000,
  });
  if (run.code !== 0 || run.timedOut) {
    throw new Error(
      `psql on port ${port} failed (code ${run.code}${run.timedOut ? ", timed out" : ""}) ` +
        `running ${sql}:\n${tailLines(run.stderr)}`,
    );
  }
  return run.stdout.trim();
}

/**
 * Calls `probe` until it resolves with a value other than undefined, and
 * resolves with it; throws with `details()` when `timeoutMs` passes first.
 */
async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  details: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}\n${details()}`);
    }
    await sleep(250);
  }
}

/** The programs this test runs that are missing. */
async function missingPrograms(): Promise<string[]> {
  const missing = [];
  if (!await isFile(PATRONI)) missing.push(`Patroni (${PATRONI})`);
  if (!await isFile(`${PG_BIN}/postgres`)) missing.push(`PostgreSQL 15 (${PG_BIN})`);
  return missing;
}

function assertInstalled(): void {
  if (!installed) {
    throw new Error(`${missing.join(" and ")} not installed; install with: ${INSTALL_HINT}`);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** The uid and gid of the `postgres` user (the Debian packages create it). */
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const passwd = await Deno.readTextFile("/etc/passwd");
  const entry = passwd.split("\n").find((line) => line.startsWith("postgres:"));
  if (!entry) {
    throw new Error(
      `PostgreSQL refuses to run as root and there is no postgres user; install with: ${INSTALL_HINT}`,
    );
  }
  const fields = entry.split(":");
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}
