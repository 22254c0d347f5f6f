/**
 * The live server list in `/zookeeper/config`: servers of one prefix list
 * each other, a data watch fires when one joins or leaves, a server that
 * dies leaves at its lease's expiry, and the format parses as ZooKeeper's
 * dynamic config.
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { startZetcd, uniquePrefix } from "../_util/zetcd.ts";
import { runZetcd } from "../_util/cli.ts";
import { ZkClient } from "../../src/client/client.ts";
import { EtcdClient } from "../../src/etcd/client.ts";
import { Keys } from "../../src/store/keys.ts";
import { EventType } from "../../src/zk/constants.ts";
import type * as R from "../../src/zk/records.ts";
import {
  configText,
  defaultAdvertise,
  serverLines,
  splitHostPort,
} from "../../src/server/members.ts";

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The client addresses listed in a config text, in its order. */
function listed(data: Uint8Array | null): string[] {
  const text = new TextDecoder().decode(data ?? new Uint8Array());
  return text.split("\n").filter((l) => l.startsWith("server.")).map((l) =>
    l.slice(l.indexOf(";") + 1)
  );
}

Deno.test("the config text is ZooKeeper's dynamic-config format", () => {
  assert.equal(
    configText([{ id: 2, address: "zk2:2182" }, { id: 1, address: "[::1]:2181" }], 0x1a2n),
    "server.1=[::1]:2888:3888:participant;[::1]:2181\n" +
      "server.2=zk2:2888:3888:participant;zk2:2182\nversion=1a2",
  );
  assert.equal(serverLines([]), "");
  assert.deepEqual(splitHostPort("[::1]:2181"), { host: "::1", port: 2181 });
  assert.equal(splitHostPort(":2181"), null);
  assert.equal(defaultAdvertise("127.0.0.1", 2181), "127.0.0.1:2181");
  assert.equal(defaultAdvertise("0.0.0.0", 2181), `${Deno.hostname()}:2181`);
});

Deno.test("--advertise-zkaddr refuses what clients cannot reach, with exit 2", async () => {
  for (const bad of ["0.0.0.0:2181", "zk1:0", ":2181", "zk1", "[::]:2181"]) {
    const r = await runZetcd(["--advertise-zkaddr", bad, "--endpoints", "127.0.0.1:1"]);
    assert.equal(r.code, 2, `${bad}: ${r.stderr}${r.stdout}`);
    assert.match(r.stderr + r.stdout, /--advertise-zkaddr must be HOST:PORT/);
  }
});

Deno.test({
  name:
    "servers of one prefix list each other in /zookeeper/config; a watch fires when one joins and when one leaves",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  const a = await startZetcd(etcd, { prefix });
  // A server alone lists itself, also once reads come from its replica.
  await a.replicaLoaded;
  const alone = await ZkClient.connect(a.address);
  assert.deepEqual(listed((await alone.getData("/zookeeper/config")).data), [a.address]);
  await alone.close();
  const b = await startZetcd(etcd, { prefix, advertise: "localhost:" + 0 });
  const closed = new Set<unknown>();
  const events: R.WatcherEvent[] = [];
  let c: ZkClient | undefined;
  try {
    // b advertises what it was given, whatever it listens on.
    assert.equal(b.members!.advertise, "localhost:0");
    assert.equal(a.members!.id, 1);
    assert.equal(b.members!.id, 2);
    c = await ZkClient.connect(a.address, { onEvent: (e) => events.push(e) });
    await until("both servers are listed", async () => {
      const { data } = await c!.getData("/zookeeper/config");
      return listed(data).join(",") === `${a.address},localhost:0`;
    });
    const before = await c.getData("/zookeeper/config", true);
    const text = new TextDecoder().decode(before.data!);
    assert.match(text, /^server\.1=127\.0\.0\.1:2888:3888:participant;127\.0\.0\.1:\d+\n/);
    assert.match(text, /\nversion=[0-9a-f]+$/);
    // The read-only ACL stays.
    const { acl } = await c.getACL("/zookeeper/config");
    assert.deepEqual(acl, [{ perms: 1, id: { scheme: "world", id: "anyone" } }]);

    // A third server joins: the watch fires, the Stat moves, the list grows.
    const third = await startZetcd(etcd, { prefix });
    await until("the watch fires when a server joins", () => events.length === 1);
    assert.deepEqual(events[0], {
      type: EventType.NodeDataChanged,
      state: 3,
      path: "/zookeeper/config",
    });
    const joined = await c.getData("/zookeeper/config", true);
    assert.deepEqual(listed(joined.data), [a.address, "localhost:0", third.address]);
    assert.ok(joined.stat.mzxid > before.stat.mzxid, "mzxid moved");
    assert.ok(joined.stat.version > before.stat.version, "version moved");
    const version = (d: Uint8Array | null) =>
      BigInt(`0x${/version=([0-9a-f]+)$/.exec(new TextDecoder().decode(d!))![1]}`);
    assert.ok(version(joined.data) > version(before.data), "version= grew");
    // getData through the other server shows the same.
    const cb = await ZkClient.connect(b.address);
    await until("b shows the same list", async () => {
      const { data } = await cb.getData("/zookeeper/config");
      return listed(data).join(",") === listed(joined.data).join(",");
    });
    await cb.close();

    // b stops cleanly: it leaves the list at once, the watch fires again.
    await b.close();
    closed.add(b);
    await until("the watch fires when a server leaves", () => events.length === 2, 5000);
    const left = await c.getData("/zookeeper/config");
    assert.deepEqual(listed(left.data), [a.address, third.address]);

    // A new server takes the lowest free number.
    const fourth = await startZetcd(etcd, { prefix });
    assert.equal(fourth.members!.id, 2);
    await fourth.close();
    await third.close();
    await until("only a is left", async () => {
      const { data } = await c!.getData("/zookeeper/config");
      return listed(data).join(",") === a.address;
    });
  } finally {
    await c?.close().catch(() => {});
    for (const s of [a, b]) if (!closed.has(s)) await s.close();
  }
});

Deno.test({
  name: "a server that dies leaves /zookeeper/config when its member lease expires",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  const a = await startZetcd(etcd, { prefix });
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  const keys = new Keys(prefix);
  let c: ZkClient | undefined;
  try {
    // A member that was never revoked, on a short lease: a dead server.
    const lease = await raw.grantLease(2);
    await raw.txn([], [{
      put: keys.member(7),
      value: new TextEncoder().encode("127.0.0.1:1"),
      lease,
    }]);
    c = await ZkClient.connect(a.address);
    await until("the dead server is listed", async () => {
      const { data } = await c!.getData("/zookeeper/config");
      return listed(data).includes("127.0.0.1:1");
    });
    await until("it vanishes at lease expiry", async () => {
      const { data } = await c!.getData("/zookeeper/config");
      return listed(data).join(",") === a.address;
    }, 8000);
  } finally {
    await c?.close().catch(() => {});
    raw.close();
    await a.close();
  }
});
