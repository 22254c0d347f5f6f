/**
 * Leases and compaction over our own gRPC transport (`src/etcd/grpc/`),
 * against a real etcd: the same answers as through the etcd3 library, a
 * keep-alive stream that comes back after its connection fails, and, with
 * etcd auth, one connection and one token for every call.
 */

import assert from "node:assert/strict";
import { enableAuth, startEtcd } from "../_util/etcd.ts";
import { startRelay } from "../_util/tcp_relay.ts";
import { EtcdClient, EtcdCompactedError } from "../../src/etcd/client.ts";

const enc = new TextEncoder();
const show = (v: unknown) => JSON.stringify(v, (_, x) => typeof x === "bigint" ? `${x}n` : x);

/** Both clients of a test: our transport (the default) and the etcd3 library. */
function clients(endpoints: string[]): { direct: EtcdClient; etcd3: EtcdClient } & Disposable {
  const direct = EtcdClient.connect({ endpoints });
  const etcd3 = EtcdClient.connect({ endpoints, transport: "etcd3" });
  assert.equal(direct.transport, "direct");
  assert.equal(etcd3.transport, "etcd3");
  return {
    direct,
    etcd3,
    [Symbol.dispose]() {
      direct.close();
      etcd3.close();
    },
  };
}

Deno.test("a lease granted, renewed, looked up and revoked answers the same over our transport as over etcd3", async () => {
  await using etcd = await startEtcd();
  using both = clients(etcd.endpoints);
  const { direct, etcd3 } = both;
  const leases = { direct: await direct.grantLease(30), etcd3: await etcd3.grantLease(30) };
  assert.notEqual(leases.direct, 0n);
  assert.notEqual(leases.etcd3, 0n);
  for (const [who, lease] of Object.entries(leases)) {
    await direct.txn([], [
      { put: `/l/${who}/1`, value: enc.encode("1"), lease },
      { put: `/l/${who}/2`, value: enc.encode("2"), lease },
    ]);
  }
  for (const [who, lease] of Object.entries(leases)) {
    // Time to live and attached keys: the same from both, whichever granted it.
    const [a, b] = [await direct.leaseInfo(lease), await etcd3.leaseInfo(lease)];
    assert.deepEqual(a.keys.toSorted(), [`/l/${who}/1`, `/l/${who}/2`]);
    assert.deepEqual(a.keys.toSorted(), b.keys.toSorted());
    for (const { ttl } of [a, b]) assert.ok(ttl >= 28n && ttl <= 30n, `ttl ${ttl}`);
    // A renewal gives the granted TTL back, from one stream for many renewals at once.
    const renewed = await Promise.all([
      direct.keepAliveOnce(lease),
      direct.keepAliveOnce(lease),
      direct.keepAliveOnce(leases.direct),
      etcd3.keepAliveOnce(lease),
    ]);
    assert.deepEqual(renewed, [30n, 30n, 30n, 30n]);
  }
  // Revoked by either: its keys are gone, and both see the lease gone the same way.
  await direct.revokeLease(leases.etcd3);
  await etcd3.revokeLease(leases.direct);
  const left = await direct.read([{ get: "/l/", prefix: true, countOnly: true }]);
  assert.equal(left.results[0]?.count, 0);
  for (const lease of Object.values(leases)) {
    const info = [await direct.leaseInfo(lease), await etcd3.leaseInfo(lease)];
    assert.equal(show(info[0]), show(info[1]));
    assert.equal(show(info[0]), show({ ttl: -1n, keys: [] }));
    const renewed = [await direct.keepAliveOnce(lease), await etcd3.keepAliveOnce(lease)];
    assert.equal(renewed[0], renewed[1]);
    assert.ok(renewed[0] <= 0n);
  }
});

Deno.test("revoking a lease etcd does not have succeeds quietly over both transports", async () => {
  await using etcd = await startEtcd();
  using both = clients(etcd.endpoints);
  const unknown = 0x7abc_def0_1234_5678n; // past 2^53: the id is exact over both
  for (const client of [both.direct, both.etcd3]) {
    await client.revokeLease(unknown);
    assert.equal(show(await client.leaseInfo(unknown)), show({ ttl: -1n, keys: [] }));
  }
});

Deno.test("compaction over our transport matches etcd3: older reads and compacting below it again are EtcdCompactedError", async () => {
  await using etcd = await startEtcd();
  using both = clients(etcd.endpoints);
  const { direct, etcd3 } = both;
  for (let i = 0; i < 6; i++) await direct.txn([], [{ put: "/c/k", value: enc.encode(`${i}`) }]);
  const { revision } = await direct.read([{ get: "/c/k" }]);
  await direct.compact(revision - 2n);
  for (const client of [direct, etcd3]) {
    await assert.rejects(
      client.read([{ get: "/c/k", revision: revision - 3n }]),
      EtcdCompactedError,
    );
  }
  const kept = [direct, etcd3].map((c) => c.read([{ get: "/c/k", revision: revision - 2n }]));
  assert.equal(show(await kept[0]), show(await kept[1]));
  // Compacting again at or below the compacted revision: typed the same way by both.
  await assert.rejects(direct.compact(revision - 3n), EtcdCompactedError);
  await assert.rejects(etcd3.compact(revision - 2n), EtcdCompactedError);
  // etcd3 compacts further; our transport sees it.
  await etcd3.compact(revision - 1n);
  await assert.rejects(direct.compact(revision - 1n), EtcdCompactedError);
  // A revision etcd does not have yet: refused by both, not as compacted.
  for (const client of [direct, etcd3]) {
    const err = await client.compact(revision + 100n).then(() => null, (e) => e);
    assert.ok(err instanceof Error && !(err instanceof EtcdCompactedError), String(err));
    assert.match(err.message, /future revision/);
  }
});

Deno.test("the keep-alive stream fails the renewals waiting on it when its connection is cut, and is opened again by the next", async () => {
  await using etcd = await startEtcd();
  const relay = startRelay(etcd.endpoints[0]);
  const client = EtcdClient.connect({ endpoints: [relay.address] });
  try {
    const lease = await client.grantLease(30);
    assert.equal(await client.keepAliveOnce(lease), 30n);
    const waiting = [client.keepAliveOnce(lease), client.keepAliveOnce(lease)];
    relay.cut();
    for (const renewal of waiting) await assert.rejects(renewal);
    assert.equal(await client.keepAliveOnce(lease), 30n);
    assert.equal(relay.accepted, 2);
  } finally {
    client.close();
    relay.close();
  }
});

/**
 * A relay to etcd that keeps what clients send: the paths of our calls are
 * HPACK literals there (no Huffman, no indexing), so they can be counted.
 */
function startSniffer(target: string) {
  const [hostname, port] = target.split(":");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sent: string[] = [];
  const conns = new Set<Deno.Conn>();
  let accepted = 0;
  const latin1 = new TextDecoder("latin1");
  (async () => {
    for await (const client of listener) {
      accepted++;
      const server = await Deno.connect({ hostname, port: Number(port) });
      conns.add(client).add(server);
      const index = sent.push("") - 1;
      const sniff = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, out) {
          sent[index] += latin1.decode(chunk, { stream: true });
          out.enqueue(chunk);
        },
      });
      client.readable.pipeThrough(sniff).pipeTo(server.writable).catch(() => {});
      server.readable.pipeTo(client.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    get accepted() {
      return accepted;
    },
    /** Calls of `path` sent so far, over every connection. */
    calls(path: string): number {
      return sent.reduce((n, text) => n + text.split(path).length - 1, 0);
    },
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    },
  };
}

Deno.test("with etcd auth, the default transport does leases, keep-alives, compaction, transactions and the watch over one connection with one token", async () => {
  await using etcd = await startEtcd();
  await enableAuth(etcd, { name: "app", password: "apppw", prefix: "/a/" });
  const sniffer = startSniffer(etcd.endpoints[0]);
  const client = EtcdClient.connect({
    endpoints: [sniffer.address],
    auth: { username: "app", password: "apppw" },
  });
  try {
    assert.equal(client.transport, "direct");
    // From the next revision: a watch behind it could be compacted away below.
    const now = (await client.read([{ get: "/a/none" }])).revision;
    const seen: string[] = [];
    const failed: Error[] = [];
    const stop = await client.watchPrefix("/a/", now + 1n, (b) => {
      seen.push(...b.events.map((e) => e.kv.key));
    }, (err) => failed.push(err));
    const lease = await client.grantLease(30);
    const { revision } = await client.txn([], [{ put: "/a/1", value: enc.encode("1"), lease }]);
    assert.deepEqual((await client.leaseInfo(lease)).keys, ["/a/1"]);
    assert.equal(await client.keepAliveOnce(lease), 30n);
    await client.compact(revision);
    await assert.rejects(client.compact(revision - 1n), EtcdCompactedError);
    await client.revokeLease(lease);
    await client.revokeLease(lease); // not found: ignored
    assert.equal((await client.leaseInfo(lease)).ttl, -1n);
    const until = performance.now() + 10_000;
    while (seen.length < 2 && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(failed, []);
    assert.deepEqual(seen, ["/a/1", "/a/1"]); // put, then deleted with its lease
    await stop();
    for (
      const path of [
        "/etcdserverpb.Lease/LeaseGrant",
        "/etcdserverpb.Lease/LeaseTimeToLive",
        "/etcdserverpb.Lease/LeaseKeepAlive",
        "/etcdserverpb.Lease/LeaseRevoke",
        "/etcdserverpb.KV/Compact",
        "/etcdserverpb.KV/Txn",
        "/etcdserverpb.Watch/Watch",
      ]
    ) {
      assert.ok(sniffer.calls(path) > 0, `${path} not called over our connection`);
    }
    assert.equal(sniffer.calls("/etcdserverpb.Auth/Authenticate"), 1);
    assert.equal(sniffer.accepted, 1);
  } finally {
    client.close();
    sniffer.close();
  }
});

Deno.test("with etcd auth, lease calls and compaction renew an expired token once and go on", async () => {
  // etcd forgets a token unused for a second.
  await using etcd = await startEtcd(["--auth-token-ttl=1"]);
  await enableAuth(etcd, { name: "app", password: "apppw", prefix: "/a/" });
  const sniffer = startSniffer(etcd.endpoints[0]);
  const client = EtcdClient.connect({
    endpoints: [sniffer.address],
    auth: { username: "app", password: "apppw" },
  });
  const tokenExpires = () => new Promise((r) => setTimeout(r, 2500));
  try {
    await client.read([{ get: "/a/1" }]);
    await tokenExpires();
    const lease = await client.grantLease(30);
    const { revision } = await client.txn([], [{ put: "/a/1", value: enc.encode("1"), lease }]);
    await tokenExpires();
    assert.deepEqual((await client.leaseInfo(lease)).keys, ["/a/1"]);
    assert.equal(await client.keepAliveOnce(lease), 30n);
    await tokenExpires();
    await client.compact(revision);
    await tokenExpires();
    await client.revokeLease(lease);
    assert.equal((await client.leaseInfo(lease)).ttl, -1n);
    const authenticated = sniffer.calls("/etcdserverpb.Auth/Authenticate");
    assert.ok(authenticated >= 3 && authenticated <= 5, `${authenticated} Authenticate calls`);
    assert.equal(sniffer.accepted, 1);
  } finally {
    client.close();
    sniffer.close();
  }
});
