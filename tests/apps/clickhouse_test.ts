/**
 * ClickHouse 18.16 (Debian's clickhouse-server) keeps a ReplicatedMergeTree
 * table on two replicas in step through its coordination service: the
 * replicas register, allocate block numbers for concurrent inserts on both
 * at once, deduplicate a block inserted twice (on either replica), spread
 * an ALTER and a merge (OPTIMIZE FINAL) through the replication log, and a
 * replica restarted from its data dir catches up on what it missed.
 *
 * The specification runs twice: against our server and against a real
 * ZooKeeper 3.8 (the oracle), so a failure is ours only when ZooKeeper
 * passes. Each replica is a clickhouse-server of its own, on free loopback
 * ports, with a config written here and its data and logs in a temporary
 * dir; queries go through its HTTP interface. ClickHouse 18.16 runs as
 * root (as here and on CI) without complaint, so it runs as the current
 * user.
 *
 * The server is env CLICKHOUSE_SERVER_BIN, else /usr/bin/clickhouse-server
 * or /usr/sbin/clickhouse-server (where Debian's 18.16 package puts it).
 * Without it the tests are skipped with one line saying so, unless env CI
 * is "true", where they fail instead.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { freePorts } from "../_util/ports.ts";
import { drainStream, sleep, stopChild, type StreamText, tailLines } from "../_util/process.ts";

/** Where Debian's clickhouse-server package puts its binary (18.16: /usr/sbin). */
const SERVER_PATHS = ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"];
const INSTALL_HINT = "install: apt-get install clickhouse-server";

/** Every wait for ClickHouse (start, replication, shutdown) is bounded by this. */
const WAIT_MS = 60_000;
/** And the whole specification by this: queries and waits still running then are aborted. */
const SPEC_MS = 240_000;
/** ZooKeeper session timeout ClickHouse asks for. */
const SESSION_TIMEOUT_MS = 10_000;
/** The replicas' shard (the {shard} macro). */
const SHARD = "01";

const serverBin = Deno.env.get("CLICKHOUSE_SERVER_BIN") ?? SERVER_PATHS.find(isFile);
const onCi = Deno.env.get("CI") === "true";
if (!serverBin && !onCi) {
  console.log(
    `clickhouse_test: skipped: ${SERVER_PATHS.join(" and ")} are missing (${INSTALL_HINT})`,
  );
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

Deno.test({
  name: "ClickHouse 18.16 keeps two ReplicatedMergeTree replicas in step (zetcd)",
  ignore: !serverBin && !onCi,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const bin = requireServer();
  await using stack = await startStack();
  await clickHouseSpec(t, bin, stack.address);
});

Deno.test({
  name:
    "ClickHouse 18.16 keeps two ReplicatedMergeTree replicas in step (the ZooKeeper 3.8 oracle, checking the spec)",
  ignore: !serverBin && !onCi,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const bin = requireServer();
  await using zookeeper = await startZooKeeper();
  await clickHouseSpec(t, bin, zookeeper.hostPort);
});

/** The server binary; on CI (where the test is not skipped) its absence fails the test. */
function requireServer(): string {
  if (!serverBin) {
    throw new Error(`${SERVER_PATHS.join(" and ")} are missing and CI=true (${INSTALL_HINT})`);
  }
  return serverBin;
}

/** One row of the test table. */
interface Row {
  d: string;
  id: number;
  v: number;
}

/**
 * A block of `n` rows with ids from `firstId`, spread over two months (so
 * two partitions, each needing its own block number).
 */
function block(firstId: number, n: number = 4): Row[] {
  return Array.from({ length: n }, (_, i) => {
    const id = firstId + i;
    return { d: id % 2 === 0 ? "2024-01-15" : "2024-02-15", id, v: id * 10 + 1 };
  });
}

function valuesOf(rows: Row[]): string {
  return rows.map((r) => `('${r.d}', ${r.id}, ${r.v})`).join(", ");
}

/** What the replicas must agree on: row count, sum of v, and a hash of all rows. */
interface Summary {
  count: number;
  sum: number;
  hash: string;
}

async function clickHouseSpec(
  t: Deno.TestContext,
  bin: string,
  coordinator: string,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-test-clickhouse-" });
  const table = `events_${Date.now().toString(36)}`;
  const overall = AbortSignal.timeout(SPEC_MS);
  const r1 = new Replica(bin, dir, "r1", coordinator, overall);
  const r2 = new Replica(bin, dir, "r2", coordinator, overall);
  const replicas = [r1, r2];
  try {
    const summary = (r: Replica) => summarize(r, table);
    const sync = (r: Replica) => r.query(`SYSTEM SYNC REPLICA ${table}`);
    const insert = (r: Replica, rows: Row[]) =>
      r.query(`INSERT INTO ${table} (d, id, v) VALUES ${valuesOf(rows)}`);
    const waitFor = (what: string, check: () => Promise<true | string>) =>
      waitUntil(what, overall, check);

    const started = await t.step(
      "two replicas start, answer SELECT 1 and reach the coordination service",
      () =>
        withLogs(replicas, async () => {
          await Promise.all(replicas.map((r) => r.start()));
          for (const r of replicas) {
            assert.equal(await r.query("SELECT 1"), "1\n");
            // system.zookeeper needs a live session: it lists / through it.
            const children = await r.query(
              "SELECT name FROM system.zookeeper WHERE path = '/' ORDER BY name",
            );
            assert.ok(children.split("\n").includes("zookeeper"), `${r.name} lists /: ${children}`);
          }
        }),
    );
    if (!started) return;

    const created = await t.step(
      "CREATE TABLE ... ReplicatedMergeTree on both makes them two active replicas of one table",
      () =>
        withLogs(replicas, async () => {
          for (const r of replicas) {
            await r.query(
              `CREATE TABLE ${table} (d Date, id UInt32, v UInt64) ` +
                `ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/${table}', '{replica}') ` +
                `PARTITION BY toYYYYMM(d) ORDER BY id`,
            );
          }
          for (const r of replicas) {
            await waitFor(`${r.name} sees both replicas active and writable`, async () => {
              const row = await r.query(
                "SELECT is_readonly, is_session_expired, total_replicas, active_replicas " +
                  `FROM system.replicas WHERE table = '${table}'`,
              );
              return row === "0\t0\t2\t2\n" ? true : row;
            });
          }
          const names = await r1.query(
            `SELECT name FROM system.zookeeper ` +
              `WHERE path = '/clickhouse/tables/${SHARD}/${table}/replicas' ORDER BY name`,
          );
          assert.equal(names, "r1\nr2\n");
        }),
    );
    if (!created) return;

    await t.step(
      "12 concurrent inserts on each replica at once all succeed, and both replicas then hold all rows",
      () =>
        withLogs(replicas, async () => {
          const blocks = Array.from({ length: 24 }, (_, i) => block(1000 + i * 10));
          const results = await Promise.allSettled(
            blocks.map((rows, i) => insert(replicas[i % 2], rows)),
          );
          const failures = results.flatMap((r, i) =>
            r.status === "rejected" ? [`insert ${i} on ${replicas[i % 2].name}: ${r.reason}`] : []
          );
          assert.equal(failures.length, 0, `every insert succeeds:\n${failures.join("\n")}`);
          for (const r of replicas) await sync(r);
          const rows = blocks.flat();
          const expected = { count: rows.length, sum: rows.reduce((s, r) => s + r.v, 0) };
          const [a, b] = [await summary(r1), await summary(r2)];
          assert.deepEqual({ count: a.count, sum: a.sum }, expected, "r1 holds every row");
          assert.deepEqual(b, a, "r2 holds the same rows as r1");
        }),
    );

    await t.step(
      "a block inserted again, on the same replica or the other, is deduplicated",
      () =>
        withLogs(replicas, async () => {
          for (const r of replicas) await sync(r);
          const before = await summary(r1);
          const rows = block(5000, 6);
          await insert(r1, rows);
          await sync(r1);
          const once = await summary(r1);
          assert.equal(once.count, before.count + rows.length, "the first insert adds its rows");
          await insert(r1, rows);
          await insert(r2, rows);
          for (const r of replicas) await sync(r);
          assert.deepEqual(await summary(r1), once, "r1: the repeated block added nothing");
          assert.deepEqual(await summary(r2), once, "r2: the repeated block added nothing");
        }),
    );

    await t.step(
      "ALTER TABLE ... ADD COLUMN on one replica reaches the other",
      () =>
        withLogs(replicas, async () => {
          await r1.query(`ALTER TABLE ${table} ADD COLUMN note String DEFAULT 'none'`);
          await waitFor("r2 has the new column", async () => {
            const columns = await r2.query(
              `SELECT name FROM system.columns WHERE database = 'default' AND table = '${table}' ORDER BY name`,
            );
            return columns === "d\nid\nnote\nv\n" ? true : columns;
          });
          await insert(r2, [{ d: "2024-01-15", id: 6000, v: 60001 }]);
          await r2.query(
            `INSERT INTO ${table} (d, id, v, note) VALUES ('2024-02-15', 6001, 60011, 'noted')`,
          );
          await sync(r1);
          assert.equal(
            await r1.query(`SELECT id, note FROM ${table} WHERE id >= 6000 ORDER BY id`),
            "6000\tnone\n6001\tnoted\n",
            "r1 reads the new column of rows inserted on r2",
          );
        }),
    );

    await t.step(
      "OPTIMIZE TABLE ... FINAL on one replica leaves one part per partition on both",
      () =>
        withLogs(replicas, async () => {
          for (const r of replicas) await sync(r);
          const before = await summary(r1);
          await r1.query(`OPTIMIZE TABLE ${table} FINAL`);
          for (const r of replicas) {
            await sync(r);
            await waitFor(`${r.name} has one active part per partition`, async () => {
              const parts = await r.query(
                "SELECT partition, count() FROM system.parts " +
                  `WHERE database = 'default' AND table = '${table}' AND active ` +
                  "GROUP BY partition ORDER BY partition",
              );
              return parts === "202401\t1\n202402\t1\n" ? true : parts;
            });
          }
          assert.deepEqual(await summary(r1), before, "r1: the merge kept the rows");
          assert.deepEqual(await summary(r2), before, "r2: the merge kept the rows");
        }),
    );

    await t.step(
      "a replica restarted from its data dir catches up on inserts made while it was down",
      () =>
        withLogs(replicas, async () => {
          const status = await r2.stop();
          assert.equal(status.success, true, `r2 exits cleanly on SIGTERM (code ${status.code})`);
          const blocks = Array.from({ length: 5 }, (_, i) => block(7000 + i * 10));
          for (const rows of blocks) await insert(r1, rows);
          await sync(r1);
          const expected = await summary(r1);
          await r2.start();
          await waitFor("r2 is a writable replica again", async () => {
            const row = await r2.query(
              `SELECT is_readonly, is_session_expired FROM system.replicas WHERE table = '${table}'`,
            );
            return row === "0\t0\n" ? true : row;
          });
          await sync(r2);
          assert.deepEqual(await summary(r2), expected, "r2 holds what r1 holds");
          const missed = await r2.query(`SELECT count() FROM ${table} WHERE id >= 7000`);
          assert.equal(missed, `${blocks.flat().length}\n`, "r2 has the rows it missed");
        }),
    );
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
    for (const r of replicas) r.closeClient();
    await Deno.remove(dir, { recursive: true });
  }
}

async function summarize(r: Replica, table: string): Promise<Summary> {
  const line = await r.query(
    `SELECT count(), sum(v), sum(cityHash64(d, id, v)) FROM ${table}`,
  );
  const [count, sum, hash] = line.trim().split("\t");
  return { count: Number(count), sum: Number(sum), hash };
}

/**
 * Calls `check` every 200 ms until it returns true; throws after
 * {@linkcode WAIT_MS}, or once `overall` is aborted, with the last thing it
 * returned (or threw).
 */
async function waitUntil(
  what: string,
  overall: AbortSignal,
  check: () => Promise<true | string>,
): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  let last = "";
  for (;;) {
    if (overall.aborted) throw new Error(`${what}: the test ran out of time; last: ${last}`);
    try {
      const result = await check();
      if (result === true) return;
      last = JSON.stringify(result);
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${WAIT_MS} ms; last: ${last}`);
    }
    await sleep(200);
  }
}

/** Runs `fn`; when it throws, adds the last errors of each replica's log to the message. */
async function withLogs(replicas: Replica[], fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    const logs = await Promise.all(replicas.map((r) => r.lastErrors()));
    error.message += "\n" + logs.join("\n");
    throw error;
  }
}

/**
 * One clickhouse-server: replica `name` of shard {@linkcode SHARD}, its
 * config, data and logs under `<dir>/<name>/`. It can be stopped and started
 * again on the same ports and data.
 */
class Replica {
  readonly home: string;
  #ports: { tcp: number; http: number; interserver: number } | undefined;
  #child: Deno.ChildProcess | undefined;
  #output: StreamText | undefined;
  #status: Promise<Deno.CommandStatus> | undefined;
  #client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

  constructor(
    readonly bin: string,
    dir: string,
    readonly name: string,
    readonly coordinator: string,
    readonly overall: AbortSignal,
  ) {
    this.home = `${dir}/${name}`;
  }

  get logFile(): string {
    return `${this.home}/server.log`;
  }

  get errorLogFile(): string {
    return `${this.home}/server.err.log`;
  }

  /** Starts the server (writing its config the first time) and waits until it answers SELECT 1. */
  async start(): Promise<void> {
    if (!this.#ports) {
      const [tcp, http, interserver] = await freePorts(3);
      this.#ports = { tcp, http, interserver };
      await Deno.mkdir(`${this.home}/data`, { recursive: true });
      await Deno.writeTextFile(`${this.home}/users.xml`, USERS_XML);
      await Deno.writeTextFile(`${this.home}/config.xml`, this.#config());
    }
    const child = new Deno.Command(this.bin, {
      args: [`--config-file=${this.home}/config.xml`],
      cwd: this.home,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    drainStream(child.stdout, 4096);
    this.#output = drainStream(child.stderr, 8192);
    this.#status = child.status;
    let exited: Deno.CommandStatus | undefined;
    child.status.then((s) => exited = s);
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      if (exited) {
        throw new Error(
          `clickhouse-server ${this.name} exited with code ${exited.code} before answering. ` +
            await this.#logTails(),
        );
      }
      try {
        if (await this.query("SELECT 1") === "1\n") return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline || this.overall.aborted) {
        throw new Error(
          `clickhouse-server ${this.name} did not answer SELECT 1 within ${WAIT_MS} ms. ` +
            await this.#logTails(),
        );
      }
      await sleep(100);
    }
  }

  /** Runs `sql` through the HTTP interface; resolves with the TSV answer, throws ClickHouse's error. */
  async query(sql: string): Promise<string> {
    assert.ok(this.#ports, `${this.name} was started`);
    // receive_timeout bounds SYSTEM SYNC REPLICA (default 300 s).
    const url = `http://127.0.0.1:${this.#ports.http}/?receive_timeout=${WAIT_MS / 1000}`;
    const response = await fetch(url, {
      method: "POST",
      body: sql,
      client: this.#client,
      signal: AbortSignal.any([AbortSignal.timeout(WAIT_MS + 5000), this.overall]),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(
        `${this.name}: ${sql.slice(0, 60)}...: HTTP ${response.status}: ${text.trim()}`,
      );
    }
    return text;
  }

  /** Stops the server (SIGTERM, SIGKILL after the wait) and resolves with its exit status. */
  async stop(): Promise<Deno.CommandStatus> {
    const child = this.#child;
    if (!child) return (await this.#status) ?? { success: true, code: 0, signal: null };
    this.#child = undefined;
    return await stopChild(child, WAIT_MS);
  }

  /** Closes the HTTP client of {@linkcode query}. */
  closeClient(): void {
    this.#client.close();
  }

  /** The last error lines of the server's log (without stack traces), for failure messages. */
  async lastErrors(lines: number = 8): Promise<string> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.errorLogFile);
    } catch {
      return `${this.name}: no error log`;
    }
    const errors = text.split("\n").filter((l) => /<(Error|Fatal)>/.test(l));
    return `last errors in ${this.name}'s log:\n${tailLines(errors.join("\n"), lines)}`;
  }

  async #logTails(): Promise<string> {
    let log = "(no log file)";
    try {
      log = tailLines(await Deno.readTextFile(this.logFile), 15);
    } catch {
      // Not written yet.
    }
    return `Its output:\n${tailLines(this.#output?.text() ?? "", 10)}\n` +
      `Last lines of ${this.logFile}:\n${log}`;
  }

  #config(): string {
    const p = this.#ports!;
    const [zkHost, zkPort] = [
      this.coordinator.slice(0, this.coordinator.lastIndexOf(":")),
      this.coordinator.slice(this.coordinator.lastIndexOf(":") + 1),
    ];
    const data = `${this.home}/data`;
    return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>${this.logFile}</log>
    <errorlog>${this.errorLogFile}</errorlog>
    <console>0</console>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>${p.tcp}</tcp_port>
  <http_port>${p.http}</http_port>
  <interserver_http_port>${p.interserver}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>${data}/</path>
  <tmp_path>${data}/tmp/</tmp_path>
  <user_files_path>${data}/user_files/</user_files_path>
  <format_schema_path>${data}/format_schemas/</format_schema_path>
  <users_config>${this.home}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <zookeeper>
    <node index="1">
      <host>${zkHost}</host>
      <port>${zkPort}</port>
    </node>
    <session_timeout_ms>${SESSION_TIMEOUT_MS}</session_timeout_ms>
  </zookeeper>
  <macros>
    <shard>${SHARD}</shard>
    <replica>${this.name}</replica>
  </macros>
</yandex>
`;
  }
}

/** A default user without password, from loopback only. */
const USERS_XML = `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>1000000000</max_memory_usage>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks>
        <ip>127.0.0.1</ip>
      </networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`;
