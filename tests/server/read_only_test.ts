/**
 * `--read-only-mode`: while etcd is unavailable, clients that connect with
 * canBeReadOnly are served the last known state read-only, as by
 * ZooKeeper's read-only server; writes get NotReadOnly; `isro` says `ro`,
 * `srvr`, `stat` and `mntr` say `read-only` (on our server the admin port's
 * `monitor`, `srvr` and `stat` too, and `dump` answers from the replica);
 * clients without canBeReadOnly get no session. When etcd is back, the
 * read-only connections are closed and clients reconnect read-write.
 *
 * The specs of what a client sees run twice: against our server with etcd
 * frozen, and against the oracle, a member of a ZooKeeper 3.8 ensemble of
 * three (readonlymode.enabled) whose two other members are stopped. Where
 * the two legitimately differ (our server keeps a session across the
 * outage; ZooKeeper refuses to resume a global session read-only), the
 * steps run against our server only and say so.
 */

import assert from "node:assert/strict";
import { type Stack, startStack } from "../_util/zetcd.ts";
import { sendFourLetterWord } from "../_util/zookeeper.ts";
import { startZooKeeperEnsemble } from "../_util/zookeeper_ensemble.ts";
import { RawClient, type Welcome } from "../_util/raw_client.ts";
import { runKazooProgram } from "../_util/kazoo.ts";
import { runZetcd } from "../_util/cli.ts";
import { DEFAULT_ZKCLI } from "../_util/zkcli.ts";
import { runToCompletion } from "../_util/process.ts";
import { Code, CreateFlag, OpCode } from "../../src/zk/constants.ts";
import * as R from "../../src/zk/records.ts";
import type { JuteType } from "../../src/jute/schema.ts";

const OPEN_ACL = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];
const text = (s: string) => new TextEncoder().encode(s);

/** Polls `isro` until it answers `want`; the ms it took. */
async function isroBecomes(address: string, want: string, limitMs = 20_000): Promise<number> {
  const start = performance.now();
  for (;;) {
    const got = await sendFourLetterWord(address, "isro").catch(() => "");
    if (got === want) return performance.now() - start;
    assert.ok(performance.now() - start < limitMs, `isro still answers ${JSON.stringify(got)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves once `path` exists; throws (with Python's output) if `run` ends first. */
async function markerOf(path: string, run: Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (await Deno.stat(path).then(() => true, () => false)) return;
    const failed = await Promise.race([
      run.then(() => true, () => true),
      new Promise<false>((r) => setTimeout(() => r(false), 20)),
    ]);
    if (failed) {
      await run;
      throw new Error(`kazoo ended before ${path} was made`);
    }
    assert.ok(Date.now() < deadline, `kazoo did not make ${path}`);
  }
}

/** Sends one request and returns its reply (skipping notifications). */
async function ask<T>(c: RawClient, xid: number, op: number, type?: JuteType<T>, value?: T) {
  await c.send(xid, op, type, value);
  const reply = await c.replySkippingEvents();
  assert.ok(reply, `the server closed the connection on opcode ${op}`);
  assert.equal(reply.xid, xid);
  return reply;
}

/** Milliseconds, rounded, for the log. */
const ms = (n: number) => Math.round(n);

/** Runs a step; throws when it failed, so that the steps after it (which build on it) do not run. */
async function step(t: Deno.TestContext, name: string, fn: () => Promise<void>): Promise<void> {
  if (!(await t.step(name, fn))) throw new Error(`step failed: ${name}`);
}

/** The second line of ZooKeeper's `srvr` and `stat` while it serves read-only. */
const READ_ONLY_LINE = "READ-ONLY mode; serving only read-only clients";

/** `Mode:` of a `srvr` or `stat` answer. */
function modeIn(answer: string): string | undefined {
  return answer.match(/^Mode: (.*)$/m)?.[1];
}

/** Asserts `srvr` at `address` tells a read-write mode (standalone, leader, follower). */
async function assertReadWrite(address: string): Promise<void> {
  const srvr = await sendFourLetterWord(address, "srvr");
  assert.match(modeIn(srvr) ?? "", /^(standalone|leader|follower)$/, srvr);
  assert.ok(!srvr.includes(READ_ONLY_LINE), srvr);
  const mntr = await sendFourLetterWord(address, "mntr");
  assert.match(mntr, /^zk_server_state\t(standalone|leader|follower)$/m);
}

/**
 * A server about to serve read-only: ours losing etcd, or a member of a
 * ZooKeeper ensemble losing its quorum.
 */
interface ReadOnlyTarget {
  /** Where clients connect: `127.0.0.1:PORT`. */
  address: string;
  /** Takes etcd or the quorum away; resolves once `isro` answers `ro`, with the ms it took. */
  lose(): Promise<number>;
  /** Gives it back; resolves once `isro` answers `rw`, with the ms it took. */
  recover(): Promise<number>;
}

/** The words our server answers in these specs. */
const WORDS = ["isro", "ruok", "srvr", "stat", "mntr", "cons", "wchs", "dump"];

/** Our server with read-only mode on: losing etcd freezes it (SIGSTOP), recovering thaws it. */
async function zetcdTarget(): Promise<ReadOnlyTarget & AsyncDisposable & { stack: Stack }> {
  const stack = await startStack({
    readOnlyMode: true,
    fourLetterWords: WORDS,
    admin: { hostname: "127.0.0.1", port: 0 },
  });
  await stack.server.replicaLoaded;
  let frozen = false;
  return {
    stack,
    address: stack.address,
    async lose() {
      const start = performance.now();
      await stack.etcd.freeze();
      frozen = true;
      await isroBecomes(stack.address, "ro");
      return performance.now() - start;
    },
    async recover() {
      const start = performance.now();
      stack.etcd.signal("SIGCONT");
      frozen = false;
      await isroBecomes(stack.address, "rw");
      return performance.now() - start;
    },
    async [Symbol.asyncDispose]() {
      if (frozen) stack.etcd.signal("SIGCONT");
      await stack.stop();
    },
  };
}

/**
 * Member 1 of a ZooKeeper 3.8 ensemble of three with read-only mode on:
 * losing the quorum stops members 2 and 3, recovering starts them again.
 */
async function zooKeeperTarget(): Promise<ReadOnlyTarget & AsyncDisposable> {
  const ensemble = await startZooKeeperEnsemble({ readOnlyMode: true });
  console.log(`ZooKeeper ensemble of 3 serving after ${ms(ensemble.startedInMs)} ms`);
  const [survivor, ...others] = ensemble.members;
  return {
    address: survivor.hostPort,
    async lose() {
      const start = performance.now();
      await Promise.all(others.map((m) => m.stop()));
      await isroBecomes(survivor.hostPort, "ro");
      return performance.now() - start;
    },
    async recover() {
      const start = performance.now();
      for (const m of others) m.start();
      await isroBecomes(survivor.hostPort, "rw", 30_000);
      return performance.now() - start;
    },
    [Symbol.asyncDispose]: () => ensemble.stop(),
  };
}

/** What the raw-frame spec hands to a target's own steps. */
interface RawContext {
  /** A read-write session made before the outage (its connection closed). */
  kept: Welcome;
  /** The read-only client (open during the outage, closed once it is over). */
  ro: RawClient;
  /** Its ConnectResponse. */
  welcome: Welcome;
}

/** Steps of one target only, run within the raw-frame spec. */
interface OwnSteps {
  /** Before the outage, after the shared steps. */
  before?(t: Deno.TestContext): Promise<void>;
  /** During read-only service, after the shared steps. */
  during?(t: Deno.TestContext, ctx: RawContext): Promise<void>;
  /** Once read-write service is back, after the shared steps. */
  after?(t: Deno.TestContext, ctx: RawContext): Promise<void>;
}

/** The raw-frame spec of read-only service: before, during and after the outage. */
async function rawFrameSpec(
  t: Deno.TestContext,
  target: ReadOnlyTarget,
  own: OwnSteps = {},
): Promise<void> {
  const { address } = target;
  let kept!: Welcome;
  let written = 0n;
  await step(t, "before the outage: isro says rw, srvr and mntr a read-write mode", async () => {
    assert.equal(await sendFourLetterWord(address, "isro"), "rw");
    await assertReadWrite(address);
    // The state read-only clients are to see, and a read-write session.
    const [rw, welcome] = await RawClient.session(address, { timeOut: 10_000 });
    kept = welcome;
    assert.equal(
      (await ask(rw, 1, OpCode.create, R.CreateRequest, {
        path: "/ro",
        data: text("last"),
        acl: OPEN_ACL,
        flags: 0,
      })).err,
      0,
    );
    assert.equal(
      (await ask(rw, 2, OpCode.create, R.CreateRequest, {
        path: "/ro/a",
        data: null,
        acl: OPEN_ACL,
        flags: 0,
      })).err,
      0,
    );
    written =
      (await ask(rw, 3, OpCode.getData, R.GetDataRequest, { path: "/ro", watch: false })).zxid;
    rw.close();
  });
  await own.before?.(t);

  console.log(`outage → isro says ro after ${ms(await target.lose())} ms`);
  // A read-only client that never says a word: its session times out meanwhile.
  const [quiet, quietWelcome] = await RawClient.session(address, {
    canBeReadOnly: true,
    timeOut: 4000,
  });
  const quietSince = performance.now();
  const quietClosed = quiet.closedWithin(10_000).then((closed) => ({
    closed,
    after: performance.now() - quietSince,
  }));

  let ro!: RawClient;
  let welcome!: Welcome;
  await step(
    t,
    "a canBeReadOnly client gets a session whose ConnectResponse says read-only",
    async () => {
      [ro, welcome] = await RawClient.session(address, { canBeReadOnly: true });
      assert.equal(welcome.readOnly, true, "the ConnectResponse says read-only");
      assert.notEqual(welcome.sessionId, 0n);
      assert.notEqual(welcome.sessionId, kept.sessionId);
      assert.equal(welcome.timeOut, 10_000);
      assert.equal(await sendFourLetterWord(address, "ruok"), "imok");
    },
  );

  await step(t, "getData, getChildren and exists answer the last known state", async () => {
    const data = await ask(ro, 1, OpCode.getData, R.GetDataRequest, { path: "/ro", watch: true });
    assert.equal(data.err, 0);
    assert.ok(data.zxid >= written);
    assert.deepEqual(R.GetDataResponse.read(data.body).data, text("last"));
    const kids = await ask(ro, 2, OpCode.getChildren2, R.GetChildren2Request, {
      path: "/ro",
      watch: false,
    });
    assert.equal(kids.err, 0);
    assert.deepEqual(R.GetChildren2Response.read(kids.body).children, ["a"]);
    const exists = await ask(ro, 3, OpCode.exists, R.ExistsRequest, {
      path: "/ro/a",
      watch: false,
    });
    assert.equal(exists.err, 0);
    const missing = await ask(ro, 4, OpCode.exists, R.ExistsRequest, {
      path: "/ro/none",
      watch: true,
    });
    assert.equal(missing.err, Code.NONODE);
  });

  await step(t, "getAllChildrenNumber counts the last known descendants", async () => {
    const all = await ask(ro, 5, OpCode.getAllChildrenNumber, R.GetAllChildrenNumberRequest, {
      path: "/ro",
    });
    assert.equal(all.err, 0);
    assert.equal(R.GetAllChildrenNumberResponse.read(all.body).totalNumber, 1);
    const none = await ask(ro, 6, OpCode.getAllChildrenNumber, R.GetAllChildrenNumberRequest, {
      path: "/ro/none",
    });
    assert.equal(none.err, Code.NONODE);
  });

  await step(
    t,
    "every write-kind request gets NotReadOnly, and the connection goes on",
    async () => {
      // Refused on the opcode alone, before the body is read.
      const refused: [number, number][] = [
        [10, OpCode.create],
        [11, OpCode.setData],
        [12, OpCode.delete],
        [13, OpCode.setACL],
        [14, OpCode.multi],
        [15, OpCode.sync],
        [16, OpCode.check],
        [17, OpCode.create2],
        [18, OpCode.reconfig],
        [19, OpCode.createContainer],
        [20, OpCode.deleteContainer],
        [21, OpCode.createTTL],
      ];
      for (const [xid, op] of refused) {
        assert.equal((await ask(ro, xid, op)).err, Code.NOTREADONLY, `opcode ${op}`);
      }
      const whole: [number, number, JuteType<unknown>, unknown][] = [
        [30, OpCode.create, R.CreateRequest, {
          path: "/ro/b",
          data: null,
          acl: OPEN_ACL,
          flags: 0,
        }],
        [31, OpCode.setData, R.SetDataRequest, { path: "/ro", data: text("new"), version: -1 }],
        [32, OpCode.delete, R.DeleteRequest, { path: "/ro/a", version: -1 }],
        [33, OpCode.sync, R.SyncRequest, { path: "/ro" }],
      ];
      for (const [xid, op, type, value] of whole) {
        assert.equal((await ask(ro, xid, op, type, value)).err, Code.NOTREADONLY, `opcode ${op}`);
      }
      assert.equal((await ask(ro, -2, OpCode.ping)).err, 0);
      const still = await ask(ro, 34, OpCode.getData, R.GetDataRequest, {
        path: "/ro",
        watch: false,
      });
      assert.deepEqual(R.GetDataResponse.read(still.body).data, text("last"));
    },
  );

  await step(
    t,
    "a client without canBeReadOnly gets no session, nor does an old client",
    async () => {
      for (const hello of [{ canBeReadOnly: false }, { readOnly: false }]) {
        const c = await RawClient.open(address);
        assert.equal(await c.handshake(hello), null, JSON.stringify(hello));
        c.close();
      }
    },
  );

  await step(t, "isro says ro; srvr, stat and mntr say read-only", async () => {
    assert.equal(await sendFourLetterWord(address, "isro"), "ro");
    const srvr = await sendFourLetterWord(address, "srvr");
    const lines = srvr.split("\n");
    assert.match(lines[0], /^Zookeeper version: 3\.8\./, srvr);
    assert.equal(lines[1], READ_ONLY_LINE, srvr);
    assert.match(lines[2], /^Latency min\/avg\/max: /, srvr);
    assert.equal(modeIn(srvr), "read-only", srvr);
    assert.ok(Number(srvr.match(/^Node count: (\d+)$/m)?.[1]) >= 3, srvr);
    const stat = await sendFourLetterWord(address, "stat");
    assert.deepEqual(stat.split("\n").slice(1, 3), [READ_ONLY_LINE, "Clients:"], stat);
    assert.equal(modeIn(stat), "read-only", stat);
    const mntr = await sendFourLetterWord(address, "mntr");
    assert.match(mntr, /^zk_server_state\tread-only$/m, mntr);
    assert.ok(Number(mntr.match(/^zk_znode_count\t(\d+)$/m)?.[1]) >= 3, mntr);
  });

  await step(t, "cons and wchs answer during read-only service", async () => {
    const cons = await sendFourLetterWord(address, "cons");
    assert.match(cons, /sid=0x[0-9a-f]+,lop=/, cons);
    const wchs = await sendFourLetterWord(address, "wchs");
    assert.match(wchs, /^1 connections watching 2 paths\nTotal watches:2\n$/, wchs);
  });

  const ctx = { kept, ro, welcome };
  await own.during?.(t, ctx);

  await step(
    t,
    "a silent read-only client's connection is closed after its session timeout",
    async () => {
      assert.equal(quietWelcome.readOnly, true);
      assert.equal(quietWelcome.timeOut, 4000);
      const { closed, after } = await quietClosed;
      assert.ok(closed, "closed after a timeout of silence");
      assert.ok(after >= 3900, `closed after ${ms(after)} ms`);
      console.log(`silent read-only client closed after ${ms(after)} ms`);
      quiet.close();
    },
  );

  const back = await target.recover();
  await step(
    t,
    "once it is over, read-only connections are closed; sessions are read-write",
    async () => {
      assert.ok(await ro.closedWithin(5000), "the read-only connection is closed");
      ro.close();
      console.log(`outage over → isro says rw after ${ms(back)} ms`);
      await assertReadWrite(address);
      const [c, w] = await RawClient.session(address, { canBeReadOnly: true });
      assert.equal(w.readOnly, false);
      const set = await ask(c, 1, OpCode.setData, R.SetDataRequest, {
        path: "/ro",
        data: text("after"),
        version: -1,
      });
      assert.equal(set.err, 0);
      c.close();
      // The read-only session was known to this server alone (ZooKeeper's local session): expired.
      const local = await RawClient.open(address);
      const gone = await local.handshake({
        sessionId: welcome.sessionId,
        passwd: welcome.passwd,
        canBeReadOnly: true,
      });
      assert.equal(gone?.timeOut, 0);
      local.close();
    },
  );
  await own.after?.(t, ctx);
}

/**
 * The stock clients' spec: zkCli.sh -r and kazoo read_only=True are served
 * read-only during the outage, refused writes, and kazoo writes again after.
 */
async function clientsSpec(t: Deno.TestContext, target: ReadOnlyTarget): Promise<void> {
  const { address } = target;
  await step(t, "before the outage: /kz is written", async () => {
    const [rw] = await RawClient.session(address);
    const created = await ask(rw, 1, OpCode.create, R.CreateRequest, {
      path: "/kz",
      data: text("known"),
      acl: OPEN_ACL,
      flags: 0,
    });
    assert.equal(created.err, 0);
    rw.close();
  });
  console.log(`outage → isro says ro after ${ms(await target.lose())} ms`);

  await step(t, "zkCli.sh -r reads during the outage and is refused writes", async () => {
    const run = await runToCompletion("sh", [
      "-c",
      'exec "$0" "$@" 2>&1',
      Deno.env.get("ZKCLI") ?? DEFAULT_ZKCLI,
      "-server",
      address,
      "-r",
    ], {
      stdin: "get /kz\nset /kz x\nquit\n",
      timeoutMs: 60_000,
      ownProcessGroup: true,
      env: { CLIENT_JVMFLAGS: "-XX:+UseSerialGC -XX:TieredStopAtLevel=1" },
    });
    assert.match(run.stdout, /state:ConnectedReadOnly/, run.stdout);
    assert.match(run.stdout, /^known$/m, run.stdout);
    // The Java client's NotReadOnlyException, as zkCli prints it.
    assert.match(run.stdout, /^Not a read-only call: \/kz$/m, run.stdout);
  });

  await step(
    t,
    "kazoo read_only=True: CONNECTED_RO, reads, NotReadOnlyCallError; CONNECTED after",
    async () => {
      const marker = await Deno.makeTempFile({ prefix: "zetcd-ro-" });
      await Deno.remove(marker);
      const program = `
import json, os, time
from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.protocol.states import KeeperState

zk = KazooClient(hosts=${JSON.stringify(address)}, read_only=True, timeout=10,
                 connection_retry=dict(max_tries=-1, delay=0.1, max_delay=0.5))
states = []
zk.add_listener(lambda s: states.append(str(s)))
zk.start(timeout=15)
out = {"ro_state": str(zk.client_state), "data": zk.get("/kz")[0].decode()}
try:
    zk.set("/kz", b"x")
    out["write"] = "ok"
except NotReadOnlyCallError:
    out["write"] = "NotReadOnlyCallError"
open(${JSON.stringify(marker)}, "w").close()
start = time.time()
deadline = start + 30
while zk.client_state != KeeperState.CONNECTED and time.time() < deadline:
    time.sleep(0.01)
out["rw_after_ms"] = round((time.time() - start) * 1000)
out["rw_state"] = str(zk.client_state)
zk.set("/kz", b"after")
out["after"] = zk.get("/kz")[0].decode()
out["states"] = states
zk.stop()
zk.close()
print(json.dumps(out))
`;
      try {
        const run = runKazooProgram(program, "kazoo read-only client", { timeoutMs: 60_000 });
        // Once the read-only phase is done, the outage ends.
        await markerOf(marker, run);
        console.log(`outage over → isro says rw after ${ms(await target.recover())} ms`);
        const out = await run as Record<string, unknown>;
        console.log(`kazoo: ${JSON.stringify(out)}`);
        assert.equal(out.ro_state, "CONNECTED_RO", JSON.stringify(out));
        assert.equal(out.data, "known");
        assert.equal(out.write, "NotReadOnlyCallError");
        assert.equal(out.rw_state, "CONNECTED", JSON.stringify(out));
        assert.equal(out.after, "after");
      } finally {
        await Deno.remove(marker).catch(() => {});
      }
    },
  );
}

Deno.test({
  name: "read-only specs (zetcd, etcd frozen)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using target = await zetcdTarget();
  const { address, stack } = target;
  /** An admin port command's JSON reply. */
  const admin = async (name: string) =>
    await (await fetch(`http://${stack.server.adminAddress}/commands/${name}`)).json();
  const isReadOnly = () => admin("is_read_only");
  /** Asserts the admin port's monitor, server_stats and stats answer in `mode`. */
  const assertAdminMode = async (mode: "standalone" | "read-only") => {
    const monitor = await admin("monitor");
    assert.equal(monitor.error, null, JSON.stringify(monitor));
    assert.equal(monitor.server_state, mode);
    assert.ok(monitor.znode_count >= 3, JSON.stringify(monitor));
    assert.ok(monitor.ephemerals_count >= 1, JSON.stringify(monitor));
    for (const name of ["srvr", "stat"]) {
      const body = await admin(name);
      assert.equal(body.error, null, JSON.stringify(body));
      assert.equal(body.read_only, mode === "read-only", name);
      assert.equal(body.server_stats.server_state, mode, name);
      assert.ok(body.node_count >= 3, JSON.stringify(body));
    }
  };
  let again!: RawClient;
  let holder!: RawClient;
  let holderId!: bigint;
  await rawFrameSpec(t, target, {
    before: async (t) => {
      await step(
        t,
        "(zetcd only) a session holds the ephemeral /ro-eph; the admin port says standalone",
        async () => {
          let hello: Welcome;
          [holder, hello] = await RawClient.session(address, { timeOut: 30_000 });
          holderId = hello.sessionId;
          const created = await ask(holder, 1, OpCode.create, R.CreateRequest, {
            path: "/ro-eph",
            data: null,
            acl: OPEN_ACL,
            flags: CreateFlag.EPHEMERAL,
          });
          assert.equal(created.err, 0);
          await assertAdminMode("standalone");
        },
      );
    },
    during: async (t, { kept }) => {
      await step(t, "(zetcd only) the admin port's is_read_only says true", async () => {
        assert.deepEqual(await isReadOnly(), {
          read_only: true,
          command: "is_read_only",
          error: null,
        });
      });
      await step(
        t,
        "(zetcd only) the admin port's monitor says server_state read-only; srvr and stat " +
          "answer, read_only true",
        async () => {
          await assertAdminMode("read-only");
        },
      );
      await step(
        t,
        "(zetcd only) dump answers from the replica, over HTTP and as a four-letter word",
        async () => {
          const dump = await admin("dump");
          assert.equal(dump.error, null, JSON.stringify(dump));
          assert.deepEqual(
            dump.session_id_to_ephemeral_paths[String(holderId)],
            ["/ro-eph"],
            JSON.stringify(dump),
          );
          const words = await sendFourLetterWord(address, "dump");
          assert.match(words, /^SessionTracker dump:\n/, words);
          const holderHex = `0x${BigInt.asUintN(64, holderId).toString(16)}`;
          assert.ok(words.includes(`\n${holderHex}:\n\t/ro-eph\n`), words);
        },
      );
      await step(
        t,
        "(zetcd only: ZooKeeper refuses a global session read-only) a session resumed read-only " +
          "keeps its id; a wrong password gets the expired reply",
        async () => {
          again = await RawClient.open(address);
          const resumed = await again.handshake({
            sessionId: kept.sessionId,
            passwd: kept.passwd,
            canBeReadOnly: true,
          });
          assert.equal(resumed?.sessionId, kept.sessionId);
          assert.equal(resumed?.readOnly, true);
          const exists = await ask(again, 1, OpCode.exists, R.ExistsRequest, {
            path: "/ro",
            watch: false,
          });
          assert.equal(exists.err, 0);
          const thief = await RawClient.open(address);
          const stolen = await thief.handshake({
            sessionId: kept.sessionId,
            passwd: new Uint8Array(16),
            canBeReadOnly: true,
          });
          assert.equal(stolen?.timeOut, 0);
          thief.close();
        },
      );
    },
    after: async (t, { kept }) => {
      await step(
        t,
        "(zetcd only) the session kept across the outage resumes read-write, and writes",
        async () => {
          assert.ok(await again.closedWithin(5000), "its read-only connection was closed");
          again.close();
          assert.equal((await isReadOnly()).read_only, false);
          const back = await RawClient.open(address);
          const rwWelcome = await back.handshake({
            sessionId: kept.sessionId,
            passwd: kept.passwd,
            canBeReadOnly: true,
          });
          assert.equal(rwWelcome?.sessionId, kept.sessionId);
          assert.equal(rwWelcome?.readOnly, false);
          const set = await ask(back, 1, OpCode.setData, R.SetDataRequest, {
            path: "/ro",
            data: text("again"),
            version: -1,
          });
          assert.equal(set.err, 0);
          back.close();
        },
      );
      await step(
        t,
        "(zetcd only) the admin port's monitor, srvr and stat say standalone again",
        async () => {
          await assertAdminMode("standalone");
          holder.close();
        },
      );
    },
  });
  await clientsSpec(t, target);
});

Deno.test({
  name: "read-only specs (a ZooKeeper 3.8 member that lost its quorum, checking the specs)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using target = await zooKeeperTarget();
  await rawFrameSpec(t, target);
  await clientsSpec(t, target);
});

Deno.test({
  name: "read-only mode off: a canBeReadOnly client gets no session while etcd is unavailable",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({
    fourLetterWords: ["isro"],
    admin: { hostname: "127.0.0.1", port: 0 },
  });
  await stack.server.replicaLoaded;
  await stack.etcd.freeze();
  try {
    await isroBecomes(stack.address, "null");
    const c = await RawClient.open(stack.address);
    assert.equal(await c.handshake({ canBeReadOnly: true }), null);
    c.close();
    const res = await fetch(`http://${stack.server.adminAddress}/commands/is_read_only`);
    assert.deepEqual(await res.json(), {
      command: "is_read_only",
      error: "This ZooKeeper instance is not currently serving requests",
    });
  } finally {
    stack.etcd.signal("SIGCONT");
  }
  await isroBecomes(stack.address, "rw");
});

Deno.test("--read-only-mode true without the replica is refused with exit code 2", async () => {
  const r = await runZetcd(["--read-only-mode", "true", "--read-replica", "false"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--read-only-mode true needs --read-replica true/);
  const bad = await runZetcd(["--read-only-mode", "yes"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--read-only-mode must be true or false/);
});

Deno.test({
  name: "read-only mode (zetcd only: ZooKeeper refuses to resume a global session read-only): " +
    "a kazoo session rides out the outage read-only and keeps its ephemeral",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ readOnlyMode: true, fourLetterWords: ["isro"] });
  await stack.server.replicaLoaded;
  const dir = await Deno.makeTempDir({ prefix: "zetcd-ro-" });
  const [connected, readOnly] = [`${dir}/connected`, `${dir}/read-only`];
  const program = `
import json, time
from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.protocol.states import KeeperState

def until(state, seconds=30):
    start = time.time()
    while zk.client_state != state and time.time() < start + seconds:
        time.sleep(0.01)
    return round((time.time() - start) * 1000)

zk = KazooClient(hosts=${JSON.stringify(stack.address)}, read_only=True, timeout=10,
                 connection_retry=dict(max_tries=-1, delay=0.1, max_delay=0.5))
zk.start(timeout=15)
zk.create("/lock", b"mine", ephemeral=True)
session = zk.client_id
open(${JSON.stringify(connected)}, "w").close()
out = {"ro_after_ms": until(KeeperState.CONNECTED_RO), "ro_state": str(zk.client_state)}
out["ro_same_session"] = zk.client_id == session
out["ro_data"] = zk.get("/lock")[0].decode()
try:
    zk.delete("/lock")
    out["write"] = "ok"
except NotReadOnlyCallError:
    out["write"] = "NotReadOnlyCallError"
open(${JSON.stringify(readOnly)}, "w").close()
out["rw_after_ms"] = until(KeeperState.CONNECTED)
out["rw_state"] = str(zk.client_state)
out["rw_same_session"] = zk.client_id == session
out["ephemeral_owner_is_us"] = zk.exists("/lock").ephemeralOwner == session[0]
zk.stop()
zk.close()
print(json.dumps(out))
`;
  let thawed = true;
  try {
    const run = runKazooProgram(program, "kazoo session across the outage", { timeoutMs: 90_000 });
    await markerOf(connected, run);
    await stack.etcd.freeze();
    thawed = false;
    await markerOf(readOnly, run);
    stack.etcd.signal("SIGCONT");
    thawed = true;
    const out = await run as Record<string, unknown>;
    console.log(`kazoo: ${JSON.stringify(out)}`);
    assert.equal(out.ro_state, "CONNECTED_RO", JSON.stringify(out));
    assert.equal(out.ro_same_session, true);
    assert.equal(out.ro_data, "mine");
    assert.equal(out.write, "NotReadOnlyCallError");
    assert.equal(out.rw_state, "CONNECTED", JSON.stringify(out));
    assert.equal(out.rw_same_session, true, "the session is kept across the outage");
    assert.equal(out.ephemeral_owner_is_us, true, "and its ephemeral node");
  } finally {
    if (!thawed) stack.etcd.signal("SIGCONT");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
