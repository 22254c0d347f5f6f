/**
 * `zetcd migrate`: a tree copied from a live ZooKeeper 3.8, from a Go
 * zetcd keyspace, or from a dump, is the same tree when a client walks it
 * through our server: data, ACLs, versions, cversion, times, and the next
 * sequence number.
 */

import assert from "node:assert/strict";
import { startEtcd } from "./_util/etcd.ts";
import { startZooKeeper } from "./_util/zookeeper.ts";
import { startZetcd } from "./_util/zetcd.ts";
import { runKazoo } from "./_util/kazoo.ts";
import { ZkClient } from "../src/client/client.ts";
import { EtcdClient } from "../src/etcd/client.ts";
import { Keys } from "../src/store/keys.ts";
import { EtcdTree } from "../src/store/tree.ts";
import { MigrationTarget } from "../src/migrate/target.ts";
import { ZkSource } from "../src/migrate/zk_source.ts";
import { digestId } from "../src/zk/acl.ts";
import { OpCode } from "../src/zk/constants.ts";
import * as R from "../src/zk/records.ts";
import { runZetcd } from "./_util/cli.ts";

const ALICE = "alice:secret";
const OPEN = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];
const ALICE_ONLY = [{ perms: 31, id: { scheme: "digest", id: digestId(ALICE) } }];
const ALICE_AND_READERS = [...ALICE_ONLY, { perms: 1, id: { scheme: "world", id: "anyone" } }];

function zetcd(...args: string[]) {
  return runZetcd(args);
}

/** A small seeded generator, so that a failing tree can be rebuilt. */
function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

/**
 * Fills a server with about 3,300 nodes: binary, empty and null data, data
 * versions, digest ACLs (some readable by alice only), sequential nodes
 * with deleted siblings, a container and a large node; resolves to the
 * session (with alice's credentials) that made them.
 */
async function fill(address: string, seed = 7): Promise<ZkClient> {
  const zk = await ZkClient.connect(address);
  await zk.addAuth("digest", ALICE);
  const random = rng(seed);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
  const create = (path: string, data: Uint8Array | null, acl = OPEN, op: number = OpCode.create) =>
    zk.request(op, R.CreateRequest, {
      path,
      data,
      acl,
      flags: op === OpCode.createContainer ? 4 : 0,
    });
  for (let a = 0; a < 10; a++) {
    await create(`/app${a}`, bytes(a));
    await Promise.all(Array.from({ length: 20 }, (_, s) => create(`/app${a}/svc${s}`, null)));
    const leaves: Promise<unknown>[] = [];
    for (let s = 0; s < 20; s++) {
      for (let l = 0; l < 15; l++) {
        const path = `/app${a}/svc${s}/n${l}`;
        const data = l % 5 === 0 ? new Uint8Array() : l % 5 === 1 ? null : bytes(1 + l * 17);
        const acl = l === 3 ? ALICE_ONLY : l === 4 ? ALICE_AND_READERS : OPEN;
        leaves.push(create(path, data, acl));
      }
    }
    await Promise.all(leaves);
    const writes: Promise<unknown>[] = [];
    for (let s = 0; s < 20; s += 3) {
      for (let v = 0; v < 1 + (s % 4); v++) {
        writes.push(zk.setData(`/app${a}/svc${s}/n7`, bytes(9)));
      }
      writes.push(zk.setACL(`/app${a}/svc${s}/n8`, ALICE_AND_READERS));
    }
    await Promise.all(writes);
  }
  await create("/queue", null);
  for (let i = 0; i < 40; i++) await zk.create("/queue/job-", bytes(4), 2);
  for (let i = 0; i < 40; i += 3) await zk.delete(`/queue/job-${String(i).padStart(10, "0")}`);
  await create("/locks", null, OPEN, OpCode.createContainer);
  await create("/locks/lock-1", null);
  await create("/big", bytes(900 * 1024));
  await zk.setData("/", new TextEncoder().encode("root data"));
  return zk;
}

/** Every node but /zookeeper, as kazoo reads it (alice's credentials added); zxids left out. */
function walk(hostPort: string): Promise<unknown> {
  return runKazoo(
    hostPort,
    `
    zk.add_auth("digest", "${ALICE}")
    out = []
    def visit(p):
        if p == "/zookeeper":
            return
        data, st = zk.get(p)
        acl, _ = zk.get_acls(p)
        out.append([p, None if data is None else data.hex(),
                    sorted([a.perms, a.id.scheme, a.id.id] for a in acl),
                    st.version, st.cversion, st.aversion, st.ctime, st.mtime,
                    st.numChildren, st.dataLength, st.ephemeralOwner])
        for c in sorted(zk.get_children(p)):
            visit(p.rstrip("/") + "/" + c)
    visit("/")
    result = out
    `,
    { timeoutMs: 120_000 },
  );
}

/** The name a sequential create under `parent` gets. */
async function nextSequential(address: string, parent: string): Promise<string> {
  const zk = await ZkClient.connect(address);
  try {
    return await zk.create(`${parent}/job-`, null, 2);
  } finally {
    await zk.close();
  }
}

Deno.test({
  name: "a ZooKeeper tree of thousands of nodes migrates into etcd equal to its source",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using zookeeper = await startZooKeeper();
  await using etcd = await startEtcd();
  const zk = await fill(zookeeper.hostPort);
  const owner = await ZkClient.connect(zookeeper.hostPort);
  await owner.create("/app0/session-lock", null, 1);

  const from = `zk://${zookeeper.hostPort}`;
  const args = ["--endpoints", etcd.endpoints[0], "--prefix", "/m/", "--auth", `digest:${ALICE}`];
  const dry = await zetcd("migrate", "--from", from, "--dry-run", ...args);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stderr, /dry run, nothing written: 3\d\d\d nodes/);
  const etcdClient = EtcdClient.connect({ endpoints: etcd.endpoints });
  const keys = await etcdClient.read([{ get: "/m/", prefix: true, countOnly: true }]);
  assert.equal(keys.results[0]!.count, 0, "a dry run writes nothing");

  const copy = await zetcd("migrate", "--from", from, ...args, "--container", "/locks");
  assert.equal(copy.code, 0, copy.stderr);
  assert.match(
    copy.stderr,
    /copied 3\d\d\d nodes .*: 3\d\d\d created, 1 updated, 0 unchanged, 1 ephemeral/,
  );
  assert.match(copy.stderr, /skipped ephemeral \/app0\/session-lock/);
  assert.match(copy.stderr, /verified 3\d\d\d nodes in .*: 0 differences/);

  await owner.close(); // its ephemeral goes; the copies' counters already account for it
  const server = await startZetcd(etcd, { prefix: "/m/" });
  try {
    assert.deepEqual(await walk(server.address), await walk(zookeeper.hostPort));
    assert.equal(
      await nextSequential(server.address, "/queue"),
      await nextSequential(zookeeper.hostPort, "/queue"),
      "the next sequence number continues the source's",
    );
    const kinds = await etcdClient.read([{ get: "/m/index/container/", prefix: true }]);
    assert.deepEqual(kinds.results[0]!.kvs.map((kv) => kv.key), ["/m/index/container/1/locks"]);

    const again = await zetcd("migrate", "--from", from, ...args);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds \d+ znodes .*pass --merge/);

    await zk.setData("/app1/svc1/n9", new TextEncoder().encode("changed"));
    await zk.create("/app1/svc1/new", null);
    const merged = await zetcd("migrate", "--from", from, ...args, "--merge");
    assert.equal(merged.code, 0, merged.stderr);
    assert.match(merged.stderr, /: 1 created, \d updated, 3\d\d\d unchanged/);
    assert.match(merged.stderr, /0 differences/);
    const r = await runKazoo(server.address, `result = zk.get("/app1/svc1/n9")[0]`);
    assert.equal(r, "changed");
  } finally {
    await server.close();
    etcdClient.close();
    await zk.close();
  }
});

Deno.test({
  name: "an interrupted migration resumes where it stopped and ends equal to its source",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using zookeeper = await startZooKeeper();
  await using etcd = await startEtcd();
  await (await fill(zookeeper.hostPort, 11)).close();

  // The first run stops after a few batches, as if it had been killed.
  const from = `zk://${zookeeper.hostPort}`;
  const etcdClient = EtcdClient.connect({ endpoints: etcd.endpoints });
  const source = await ZkSource.open(from, { auth: [`digest:${ALICE}`] });
  const target = new MigrationTarget(new EtcdTree(etcdClient, new Keys("/r/")));
  assert.equal(await target.prepare(source.name, false), "fresh");
  let batches = 0;
  for await (const batch of source.walk()) {
    await target.write(batch);
    if (++batches === 4) break;
  }
  const first = target.counts.created + target.counts.updated;
  assert.ok(first > 100 && first < 3000, `the first run copied part of the tree (${first})`);
  await source.close();
  etcdClient.close();

  const args = ["--endpoints", etcd.endpoints[0], "--prefix", "/r/", "--auth", `digest:${ALICE}`];
  const resumed = await zetcd("migrate", "--from", from, ...args);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming an interrupted copy/);
  const m = /: (\d+) created, (\d+) updated, (\d+) unchanged/.exec(resumed.stderr)!;
  assert.equal(Number(m[3]), first, "what the first run wrote is not written again");
  assert.match(resumed.stderr, /0 differences/);

  // A chroot becomes the root of the copy, which also holds /zookeeper.
  const chrooted = await zetcd(
    "migrate",
    "--from",
    `${from}/app3`,
    "--endpoints",
    etcd.endpoints[0],
    "--prefix",
    "/c/",
    "--auth",
    `digest:${ALICE}`,
  );
  assert.equal(chrooted.code, 0, chrooted.stderr);
  assert.match(
    chrooted.stderr,
    /copied 321 nodes .*0 differences/s,
    "app3, its 20 svc and 300 leaves",
  );
});

Deno.test({
  name:
    "migrating without the owner's credentials stops at an ACL ZooKeeper shows masked, rather than copy an entry that locks its owner out",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using zookeeper = await startZooKeeper();
  await using etcd = await startEtcd();
  const owner = await ZkClient.connect(zookeeper.hostPort);
  await owner.addAuth("digest", ALICE);
  // Anyone may read it; only alice administers it.
  await owner.request(OpCode.create, R.CreateRequest, {
    path: "/shared",
    data: new TextEncoder().encode("x"),
    acl: ALICE_AND_READERS,
    flags: 0,
  });
  await owner.close();
  const from = `zk://${zookeeper.hostPort}`;
  const args = ["--from", from, "--endpoints", etcd.endpoints[0], "--prefix", "/x/"];

  const masked = await zetcd("migrate", ...args);
  assert.notEqual(masked.code, 0);
  assert.match(
    masked.stderr,
    /\/shared: its ACL entry digest alice:x is masked/,
  );
  assert.match(masked.stderr, /--auth digest:alice:PASSWORD/);

  const copy = await zetcd("migrate", ...args, "--auth", `digest:${ALICE}`);
  assert.equal(copy.code, 0, copy.stderr);
  const server = await startZetcd(etcd, { prefix: "/x/" });
  try {
    const zk = await ZkClient.connect(server.address);
    await zk.addAuth("digest", ALICE); // without ADMIN, this server masks the digest too
    const { acl } = await zk.getACL("/shared");
    assert.deepEqual(acl, ALICE_AND_READERS, "alice's digest, not the masked entry");
    await zk.close();
  } finally {
    await server.close();
  }
});
