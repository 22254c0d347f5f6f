/**
 * Our own gRPC transport to etcd (`src/etcd/grpc/`), against a real etcd:
 * the same answers as the etcd3 library, flow control both ways, etcd's
 * refusals with their codes, deadlines, and watches that survive a broken
 * connection.
 */

import assert from "node:assert/strict";
import { enableAuth, startEtcd } from "../_util/etcd.ts";
import { startRelay } from "../_util/tcp_relay.ts";
import { startMemberWithoutLeader } from "../_util/etcd_cluster.ts";
import {
  type Compare,
  EtcdClient,
  EtcdRefusedError,
  type Op,
  type WatchEvent,
} from "../../src/etcd/client.ts";
import { GrpcChannel, GrpcError } from "../../src/etcd/grpc/channel.ts";
import { decodeWatchResponse, encodeWatchCreate } from "../../src/etcd/grpc/proto.ts";

const enc = new TextEncoder();
const show = (v: unknown) =>
  JSON.stringify(
    v,
    (_, x) => typeof x === "bigint" ? `${x}n` : x instanceof Uint8Array ? [...x] : x,
  );

Deno.test("a transaction gets the same answer over our transport as over etcd3, for every operation and compare", async () => {
  await using etcd = await startEtcd();
  const direct = EtcdClient.connect({ endpoints: etcd.endpoints });
  const etcd3 = EtcdClient.connect({ endpoints: etcd.endpoints, transport: "etcd3" });
  try {
    const lease = await direct.grantLease(60);
    await direct.txn([], [
      { put: "/a/1", value: enc.encode("one") },
      { put: "/a/2", value: new Uint8Array(), lease },
      { put: "/a/3", value: enc.encode("x".repeat(300)) },
      { put: "/b", value: enc.encode("b") },
    ]);
    const compares: Compare[] = [
      { key: "/a/1", target: "create", op: ">", value: 0n },
      { key: "/a/1", target: "version", op: "==", value: 1n },
      { key: "/a/2", target: "lease", op: "==", value: lease },
      { key: "/a/3", target: "mod", op: "<", value: 1n << 40n },
      { key: "/a/", target: "create", op: "!=", value: 0n, prefix: true },
      { key: "/b", target: "value", op: "==", bytes: enc.encode("b") },
      { key: "/none", target: "version", op: "==", value: 0n },
    ];
    const reads: Op[] = [
      { get: "/a/", prefix: true },
      { get: "/a/", prefix: true, keysOnly: true, limit: 2 },
      { get: "/a/", prefix: true, countOnly: true },
      { get: "/a/", prefix: true, newestFirst: true, limit: 1 },
      { get: "/a/2", end: "/b" },
      { get: "/a/", prefix: true, from: "/a/2" },
      { get: "/a/1", revision: 2n },
      { get: "/none" },
    ];
    for (
      const c of [compares, [
        ...compares,
        { key: "/b", target: "value", op: "==", bytes: enc.encode("c") } as Compare,
      ]]
    ) {
      const a = await direct.txn(c, reads, reads.slice(0, 2));
      const b = await etcd3.txn(c, reads, reads.slice(0, 2));
      assert.equal(show(a), show(b));
    }
    // Writes of each kind, nested, with the same outcomes and revisions as a sequence of calls.
    const writes = (tag: string): Op[] => [
      { put: `/w/${tag}/p`, value: enc.encode(tag), lease },
      { put: "/a/1", ignoreValue: true, ignoreLease: true },
      { del: `/gone/${tag}/`, prefix: true },
      { del: "/none" },
    ];
    const one = await direct.txn([], writes("x"));
    const two = await etcd3.txn([], writes("y"));
    assert.equal(show({ ...one, revision: 0 }), show({ ...two, revision: 0 }));
  } finally {
    direct.close();
    etcd3.close();
  }
});

Deno.test("large requests and responses cross both flow-control windows whole", async () => {
  await using etcd = await startEtcd();
  const client = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    // 1 MB values: far over etcd's 64 KB initial window and the 16 KB frame size.
    const big = new Uint8Array(1_000_000).map((_, i) => i % 251);
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => client.txn([], [{ put: `/big/${i}`, value: big }])),
    );
    const res = await client.read([{ get: "/big/", prefix: true }]);
    assert.equal(res.results[0]!.kvs.length, 12);
    for (const kv of res.results[0]!.kvs) assert.deepEqual(kv.value, big);
  } finally {
    client.close();
  }
});

Deno.test("etcd's refusals are typed at the client, keeping their gRPC code and message", async () => {
  await using etcd = await startEtcd();
  const client = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    const tooMany = Array.from({ length: 20_000 }, (_, i): Op => ({ put: `/n/${i}` }));
    await assert.rejects(client.txn([], tooMany), (err: EtcdRefusedError) => {
      assert.ok(err instanceof EtcdRefusedError);
      assert.equal(err.limit, "ops");
      assert.ok(err.cause instanceof GrpcError);
      assert.equal(err.cause.code, 3);
      assert.match(err.message, /too many operations in txn request/);
      return true;
    });
    await assert.rejects(
      client.txn([], [{ put: "/huge", value: new Uint8Array(3_000_000) }]),
      (err: EtcdRefusedError) =>
        err instanceof EtcdRefusedError && err.limit === "bytes" &&
        (err.cause as GrpcError).code === 8 && /larger than max/.test(err.message),
    );
    // The connection is still good for the next call.
    assert.equal((await client.txn([], [{ put: "/ok" }])).succeeded, true);
  } finally {
    client.close();
  }
});

Deno.test("a call etcd does not answer fails at its deadline, and the next call gets through", async () => {
  await using etcd = await startEtcd();
  const channel = new GrpcChannel({
    endpoints: [etcd.clientUrl],
    callTimeoutMs: 500,
    maxResponseBytes: 1 << 20,
  });
  const client = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    // An empty TxnRequest is a valid read-nothing transaction.
    await channel.unary("/etcdserverpb.KV/Txn", new Uint8Array());
    await etcd.freeze();
    const started = performance.now();
    await assert.rejects(
      channel.unary("/etcdserverpb.KV/Txn", new Uint8Array()),
      (err: GrpcError) => err.code === 4,
    );
    assert.ok(performance.now() - started < 2000);
    etcd.signal("SIGCONT");
    await channel.unary("/etcdserverpb.KV/Txn", new Uint8Array());
  } finally {
    etcd.signal("SIGCONT");
    channel.close();
    client.close();
  }
});

Deno.test("a call to an etcd nobody listens for fails with UNAVAILABLE at once", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const channel = new GrpcChannel({
    endpoints: [`http://127.0.0.1:${port}`],
    callTimeoutMs: 10_000,
    maxResponseBytes: 1 << 20,
  });
  const started = performance.now();
  await assert.rejects(
    channel.unary("/etcdserverpb.KV/Txn", new Uint8Array()),
    (err: GrpcError) => err.code === 14 && /cannot reach etcd/.test(err.message),
  );
  assert.ok(performance.now() - started < 2000);
  channel.close();
});

Deno.test("the watch comes back after its connection is cut, losing and repeating no event", async () => {
  await using etcd = await startEtcd();
  const relay = startRelay(etcd.endpoints[0]);
  const watched = EtcdClient.connect({ endpoints: [relay.address] });
  const writer = EtcdClient.connect({ endpoints: etcd.endpoints });
  const seen: WatchEvent[] = [];
  try {
    const start = (await writer.read([{ get: "/w/" }])).revision;
    const stop = await watched.watchPrefix(
      "/w/",
      start + 1n,
      (b) => seen.push(...b.events),
      (err) => {
        throw err;
      },
    );
    const put = (i: number) => writer.txn([], [{ put: `/w/${i}`, value: enc.encode(String(i)) }]);
    for (let i = 0; i < 20; i++) await put(i);
    await waitFor(() => seen.length === 20);
    relay.cut();
    for (let i = 20; i < 40; i++) await put(i);
    await waitFor(() => seen.length >= 40);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(seen.map((e) => e.kv.key), Array.from({ length: 40 }, (_, i) => `/w/${i}`));
    assert.ok(relay.accepted >= 2, "the watch reconnected");
    await stop();
  } finally {
    watched.close();
    writer.close();
    relay.close();
  }
});

Deno.test("a watch from a compacted revision is cancelled with a reason that names compaction", async () => {
  await using etcd = await startEtcd();
  const client = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    for (let i = 0; i < 5; i++) {
      await client.txn([], [{ put: "/c/k", value: enc.encode(String(i)) }]);
    }
    const { revision } = await client.read([{ get: "/c/k" }]);
    await client.compact(revision);
    const failed = Promise.withResolvers<Error>();
    const stop = await client.watchPrefix("/c/", 2n, () => {}, failed.resolve);
    assert.match((await failed.promise).message, /compact/);
    await stop();
  } finally {
    client.close();
  }
});

async function waitFor(done: () => boolean, ms = 10_000): Promise<void> {
  const until = performance.now() + ms;
  while (!done()) {
    if (performance.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("with etcd auth, transactions and the watch go over our transport and renew an expired token", async () => {
  // etcd forgets a token unused for a second.
  await using etcd = await startEtcd(["--auth-token-ttl=1"]);
  await enableAuth(etcd, { name: "app", password: "apppw", prefix: "/a/" });
  const app = EtcdClient.connect({
    endpoints: etcd.endpoints,
    auth: { username: "app", password: "apppw" },
  });
  const root = EtcdClient.connect({
    endpoints: etcd.endpoints,
    auth: { username: "root", password: "rootpw" },
  });
  const put = (client: EtcdClient, key: string) =>
    client.txn([], [{ put: key, value: enc.encode(key) }]);
  const tokenExpires = () => new Promise((r) => setTimeout(r, 2500));
  try {
    assert.equal(app.transport, "direct");
    await put(app, "/a/1");
    await tokenExpires();
    const { revision } = await put(app, "/a/2");
    await tokenExpires();
    const seen: string[] = [];
    const stop = await app.watchPrefix("/a/", revision + 1n, (b) => {
      seen.push(...b.events.map((e) => e.kv.key));
    }, (err) => {
      throw err;
    });
    await put(root, "/a/3");
    await waitFor(() => seen.length === 1);
    assert.deepEqual(seen, ["/a/3"]);
    await stop();
    // Outside its permissions: refused, not retried for ever.
    await assert.rejects(put(app, "/b/1"), /permission denied/);
    const refused = Promise.withResolvers<Error>();
    const stopB = await app.watchPrefix("/b/", 1n, () => {}, refused.resolve);
    assert.match((await refused.promise).message, /permission denied/);
    await stopB();
  } finally {
    app.close();
    root.close();
  }
});

Deno.test("a watch's idle connection is kept by PINGs etcd answers, and a frozen etcd is found by one", async () => {
  // etcd lets a client with an open stream ping every --grpc-keepalive-min-time (5 s by default).
  await using etcd = await startEtcd(["--grpc-keepalive-min-time=100ms"]);
  const channel = new GrpcChannel({
    endpoints: [etcd.clientUrl],
    callTimeoutMs: 5000,
    maxResponseBytes: 1 << 20,
    keepAliveMs: 200,
    keepAliveTimeoutMs: 500,
  });
  const created = Promise.withResolvers<void>();
  const ended = Promise.withResolvers<GrpcError | null>();
  try {
    const watch = await channel.stream("/etcdserverpb.Watch/Watch", encodeWatchCreate("/k/", 1n), {
      onMessage: (m) => decodeWatchResponse(m).created && created.resolve(),
      onEnd: ended.resolve,
    });
    await created.promise;
    // Idle for 1.5 s: several PINGs, answered; the watch (and its connection) lives on.
    const idle = await Promise.race([
      ended.promise,
      new Promise((r) => setTimeout(() => r("alive"), 1500)),
    ]);
    assert.equal(idle, "alive");
    await etcd.freeze();
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const err = await Promise.race([
      ended.promise,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error("no end")), 3000)
      ),
    ]).finally(() => clearTimeout(timer));
    assert.match(String(err?.message), /did not answer a PING within 500 ms/);
    assert.ok(performance.now() - started < 1500, "found well before any deadline");
    watch.close();
  } finally {
    etcd.signal("SIGCONT");
    channel.close();
  }
});

Deno.test({
  name:
    "a call an etcd member refuses for want of a leader is sent again until its deadline; the member is left, and told once",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using cutOff = await startMemberWithoutLeader();
  const lost = cutOff.member;
  const read = [{ get: "/k" }];
  for (const endpoints of [[lost.endpoint], [lost.endpoint, lost.endpoint]]) {
    const client = EtcdClient.connect({ endpoints });
    const left: string[] = [];
    client.onMemberLeft = (endpoint, why) => left.push(`${endpoint} ${why}`);
    try {
      const started = performance.now();
      const err = await client.txn([], read, [], { timeoutMs: 1500 }).then(() => null, (e) => e);
      const took = performance.now() - started;
      assert.ok(err instanceof GrpcError && err.code === 14, String(err));
      assert.match(err.details, /no leader/);
      // Sent again (not held by the member until its deadline, nor given up at once).
      assert.ok(took > 500 && took < 2_000, `refused for ${took} ms`);
      if (endpoints.length === 1) assert.deepEqual(left, [], "one endpoint: nowhere to go");
      else assert.deepEqual(left, [`http://${lost.endpoint} etcdserver: no leader`]);
    } finally {
      client.close();
    }
  }
});
