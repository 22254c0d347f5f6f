/**
 * `--read-only-mode`: while etcd is unavailable, clients that connect with
 * canBeReadOnly are served the last known state read-only, as by
 * ZooKeeper's read-only server; writes get NotReadOnly; `isro` says `ro`;
 * clients without canBeReadOnly get no session. When etcd is back, the
 * read-only connections are closed and clients reconnect read-write.
 * (Checked against this server only: a ZooKeeper 3.8 in read-only mode needs
 * an ensemble of three losing its quorum.)
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { sendFourLetterWord } from "../_util/zookeeper.ts";
import { RawClient } from "../_util/raw_client.ts";
import { runKazooProgram } from "../_util/kazoo.ts";
import { runZetcd } from "../_util/cli.ts";
import { DEFAULT_ZKCLI } from "../_util/zkcli.ts";
import { runToCompletion } from "../_util/process.ts";
import { Code, OpCode } from "../../src/zk/constants.ts";
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

Deno.test({
  name: "read-only mode: raw frames during and after an etcd outage",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({
    readOnlyMode: true,
    fourLetterWords: ["isro", "ruok"],
    admin: { hostname: "127.0.0.1", port: 0 },
  });
  const isReadOnly = async () =>
    await (await fetch(`http://${stack.server.adminAddress}/commands/is_read_only`)).json();
  const address = stack.address;
  await stack.server.replicaLoaded;
  // The state read-only clients are to see, and a read-write session to keep.
  const [rw, kept] = await RawClient.session(address, { timeOut: 10_000 });
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
  const written =
    (await ask(rw, 3, OpCode.getData, R.GetDataRequest, { path: "/ro", watch: false }))
      .zxid;
  rw.close();
  assert.equal(await sendFourLetterWord(address, "isro"), "rw");

  await stack.etcd.freeze();
  let thawed = false;
  try {
    const toReadOnly = await isroBecomes(address, "ro");
    console.log(`etcd frozen → isro says ro after ${Math.round(toReadOnly)} ms`);
    assert.deepEqual(await isReadOnly(), {
      read_only: true,
      command: "is_read_only",
      error: null,
    });

    // A read-only client is served the last known state.
    const [ro, welcome] = await RawClient.session(address, { canBeReadOnly: true });
    assert.equal(welcome.readOnly, true, "the ConnectResponse says read-only");
    assert.notEqual(welcome.sessionId, 0n);
    assert.notEqual(welcome.sessionId, kept.sessionId);
    assert.equal(welcome.timeOut, 10_000);
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
    // Every write-kind request gets NotReadOnly, and the connection goes on.
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
    ];
    for (const [xid, op] of refused) {
      assert.equal((await ask(ro, xid, op)).err, Code.NOTREADONLY, `opcode ${op}`);
    }
    assert.equal(
      (await ask(ro, 20, OpCode.setData, R.SetDataRequest, {
        path: "/ro",
        data: text("new"),
        version: -1,
      })).err,
      Code.NOTREADONLY,
    );
    assert.equal((await ask(ro, 21, OpCode.ping)).err, 0);

    // A client that did not say canBeReadOnly gets no session, nor does an old client.
    for (const hello of [{ canBeReadOnly: false }, { readOnly: false }]) {
      const c = await RawClient.open(address);
      assert.equal(await c.handshake(hello), null, JSON.stringify(hello));
      c.close();
    }

    // A client resuming its session read-only keeps its id; a wrong password is refused.
    const again = await RawClient.open(address);
    const resumed = await again.handshake({
      sessionId: kept.sessionId,
      passwd: kept.passwd,
      canBeReadOnly: true,
    });
    assert.equal(resumed?.sessionId, kept.sessionId);
    assert.equal(resumed?.readOnly, true);
    assert.equal(
      (await ask(again, 1, OpCode.exists, R.ExistsRequest, { path: "/ro", watch: false })).err,
      0,
    );
    const thief = await RawClient.open(address);
    const stolen = await thief.handshake({
      sessionId: kept.sessionId,
      passwd: new Uint8Array(16),
      canBeReadOnly: true,
    });
    assert.equal(stolen?.timeOut, 0);
    thief.close();

    // etcd is back: read-only connections are closed, and read-write service resumes.
    stack.etcd.signal("SIGCONT");
    thawed = true;
    const start = performance.now();
    const [closed, closedAgain] = await Promise.all([
      ro.closedWithin(15_000),
      again.closedWithin(15_000),
    ]);
    const toClosed = performance.now() - start;
    assert.ok(closed && closedAgain, "read-only connections are closed when etcd is back");
    const toReadWrite = toClosed + await isroBecomes(address, "rw");
    console.log(
      `etcd thawed → read-only connections closed after ${Math.round(toClosed)} ms, ` +
        `isro rw by ${Math.round(toReadWrite)} ms`,
    );
    ro.close();
    again.close();
    assert.equal((await isReadOnly()).read_only, false);

    // The session kept across the outage resumes read-write, and writes.
    const back = await RawClient.open(address);
    const rwWelcome = await back.handshake({
      sessionId: kept.sessionId,
      passwd: kept.passwd,
      canBeReadOnly: true,
    });
    assert.equal(rwWelcome?.sessionId, kept.sessionId);
    assert.equal(rwWelcome?.readOnly, false);
    assert.equal(
      (await ask(back, 1, OpCode.setData, R.SetDataRequest, {
        path: "/ro",
        data: text("after"),
        version: -1,
      })).err,
      0,
    );
    // A read-only session's id is unknown to etcd: expired, as ZooKeeper's local session.
    const local = await RawClient.open(address);
    const gone = await local.handshake({
      sessionId: welcome.sessionId,
      passwd: welcome.passwd,
      canBeReadOnly: true,
    });
    assert.equal(gone?.timeOut, 0);
    local.close();
    back.close();
  } finally {
    if (!thawed) stack.etcd.signal("SIGCONT");
  }
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

Deno.test({
  name: "read-only mode: kazoo with read_only=True during and after an etcd outage",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ readOnlyMode: true, fourLetterWords: ["isro"] });
  await stack.server.replicaLoaded;
  const [rw] = await RawClient.session(stack.address);
  await ask(rw, 1, OpCode.create, R.CreateRequest, {
    path: "/kz",
    data: text("known"),
    acl: OPEN_ACL,
    flags: 0,
  });
  rw.close();
  const marker = await Deno.makeTempFile({ prefix: "zetcd-ro-" });
  await Deno.remove(marker);
  await stack.etcd.freeze();
  let thawed = false;
  try {
    await isroBecomes(stack.address, "ro");
    const program = `
import json, os, time
from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.protocol.states import KeeperState

zk = KazooClient(hosts=${JSON.stringify(stack.address)}, read_only=True, timeout=10,
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
    const run = runKazooProgram(program, "kazoo read-only client", { timeoutMs: 60_000 });
    // Once the read-only phase is done, etcd comes back.
    await markerOf(marker, run);
    stack.etcd.signal("SIGCONT");
    thawed = true;
    const out = await run as Record<string, unknown>;
    console.log(`kazoo: ${JSON.stringify(out)}`);
    assert.equal(out.ro_state, "CONNECTED_RO", JSON.stringify(out));
    assert.equal(out.data, "known");
    assert.equal(out.write, "NotReadOnlyCallError");
    assert.equal(out.rw_state, "CONNECTED", JSON.stringify(out));
    assert.equal(out.after, "after");
  } finally {
    if (!thawed) stack.etcd.signal("SIGCONT");
    await Deno.remove(marker).catch(() => {});
  }
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
  name: "read-only mode: a kazoo session rides out the outage read-only and keeps its ephemeral",
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

Deno.test({
  name: "read-only mode: a silent read-only client's connection closes after its timeout",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ readOnlyMode: true, fourLetterWords: ["isro"] });
  await stack.server.replicaLoaded;
  await stack.etcd.freeze();
  try {
    await isroBecomes(stack.address, "ro");
    const [quiet, welcome] = await RawClient.session(stack.address, {
      canBeReadOnly: true,
      timeOut: 4000,
    });
    assert.equal(welcome.readOnly, true);
    assert.equal(welcome.timeOut, 4000);
    const start = performance.now();
    assert.ok(await quiet.closedWithin(6000), "closed after a timeout of silence");
    const took = performance.now() - start;
    assert.ok(took >= 3900, `closed after ${Math.round(took)} ms`);
    quiet.close();
  } finally {
    stack.etcd.signal("SIGCONT");
  }
});

Deno.test({
  name: "read-only mode: zkCli.sh -r reads during the outage and is refused writes",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ readOnlyMode: true, fourLetterWords: ["isro"] });
  await stack.server.replicaLoaded;
  const [rw] = await RawClient.session(stack.address);
  await ask(rw, 1, OpCode.create, R.CreateRequest, {
    path: "/cli",
    data: text("seen"),
    acl: OPEN_ACL,
    flags: 0,
  });
  rw.close();
  await stack.etcd.freeze();
  try {
    await isroBecomes(stack.address, "ro");
    const run = await runToCompletion("sh", [
      "-c",
      'exec "$0" "$@" 2>&1',
      Deno.env.get("ZKCLI") ?? DEFAULT_ZKCLI,
      "-server",
      stack.address,
      "-r",
    ], {
      stdin: "get /cli\nset /cli x\nquit\n",
      timeoutMs: 60_000,
      ownProcessGroup: true,
      env: { CLIENT_JVMFLAGS: "-XX:+UseSerialGC -XX:TieredStopAtLevel=1" },
    });
    assert.match(run.stdout, /state:ConnectedReadOnly/, run.stdout);
    assert.match(run.stdout, /^seen$/m, run.stdout);
    // The Java client's NotReadOnlyException, as zkCli prints it.
    assert.match(run.stdout, /^Not a read-only call: \/cli$/m, run.stdout);
  } finally {
    stack.etcd.signal("SIGCONT");
  }
});
