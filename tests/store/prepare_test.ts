/**
 * Preparing and committing writes, without etcd: a prepared batch is data
 * (each write's result, the etcd writes, the compares), built from node
 * snapshots given here. The behaviour specs check the same against
 * ZooKeeper through a server; these pin how a batch is put together.
 */

import assert from "node:assert/strict";
import { Draft, type Failed, type OpResult, type WriteOp } from "../../src/store/changes.ts";
import { transaction } from "../../src/store/commit.ts";
import { encodeAcl } from "../../src/store/values.ts";
import type { KeyValue } from "../../src/etcd/client.ts";
import { Keys } from "../../src/store/keys.ts";
import type { NodeSnapshot } from "../../src/store/nodes.ts";
import { OPEN_ACL } from "../../src/zk/acl.ts";
import { Code, OpCode } from "../../src/zk/constants.ts";
import { invalidPathReason } from "../../src/zk/path.ts";

const keys = new Keys("/p/");
const anyone = { ids: [], address: "127.0.0.1", superuser: false };
const ctx = { validate: invalidPathReason, who: anyone };

function kv(key: string, mod: bigint, version = 1n): KeyValue {
  return {
    key,
    value: new Uint8Array(),
    createRevision: mod,
    modRevision: mod,
    version,
    lease: 0n,
  };
}

/** A persistent node as read at revision `mod`: data version `version`, `creates` children ever made. */
function node(path: string, mod: bigint, { version = 0, creates = 0, children = 0 } = {}) {
  const snapshot: NodeSnapshot = {
    path,
    data: null,
    acl: OPEN_ACL,
    mode: 0,
    creates,
    kvs: {
      node: kv(keys.node(path), mod, BigInt(version + 1)),
      kids: kv(keys.attr(path, "kids"), mod, BigInt(creates + 1)),
      acl: kv(keys.attr(path, "acl"), mod),
    },
    stat: {
      czxid: mod,
      mzxid: mod,
      ctime: 0n,
      mtime: 0n,
      version,
      cversion: 2 * creates - children,
      aversion: 0,
      ephemeralOwner: 0n,
      dataLength: 0,
      numChildren: children,
      pzxid: mod,
    },
  };
  return snapshot;
}

/** A draft reading from `tree` (paths not in it are absent), and the paths it was asked for. */
function draftOf(...tree: NodeSnapshot[]) {
  const byPath = new Map(tree.map((n) => [n.path, n]));
  const asked: string[] = [];
  const draft = new Draft((paths) => {
    asked.push(...paths);
    return Promise.resolve(paths.map((p) => byPath.get(p) ?? null));
  }, 1000n);
  return { draft, asked };
}

const create = (path: string, flags = 0): WriteOp => ({
  kind: "create",
  opcode: OpCode.create,
  path,
  data: null,
  acl: OPEN_ACL,
  flags,
  owner: 0n,
  lease: 0n,
});

function succeeded(out: OpResult[] | Failed): OpResult[] {
  assert.ok(Array.isArray(out), `the write failed: ${JSON.stringify(out, (_, v) => String(v))}`);
  return out;
}

Deno.test("writes of one batch see the writes before them, from any session", async () => {
  const { draft } = draftOf(node("/", 5n));
  succeeded(await draft.apply([create("/a")], ctx));
  // Another session's write, prepared after it: /a exists for it.
  succeeded(await draft.apply([create("/a/b")], ctx));
  const set = succeeded(
    await draft.apply(
      [{ kind: "setData", path: "/a", data: new Uint8Array([1]), version: 0 }],
      ctx,
    ),
  );
  assert.equal(set[0].kind === "setData" && set[0].stat.version, 1);
  const { compare, success } = transaction(keys, draft.nodes, draft.now);
  const puts = success.flatMap((op) => "put" in op ? [op.put] : []);
  assert.ok(puts.includes(keys.node("/a")) && puts.includes(keys.node("/a/b")));
  // /a is created with its data already set once: its version bias says so.
  assert.ok(puts.includes(keys.attr("/a", "vbias")));
  // Nodes the batch made are pinned absent; the root as read.
  const pins = new Map(compare.map((c) => [c.key, "value" in c ? [c.target, c.value] : []]));
  assert.deepEqual(pins.get(keys.node("/")), ["mod", 5n]);
  assert.deepEqual(pins.get(keys.node("/a")), ["create", 0n]);
  assert.deepEqual(pins.get(keys.node("/a/b")), ["create", 0n]);
});

Deno.test("sequential creates of one batch take consecutive numbers from the parent's counter", async () => {
  const { draft } = draftOf(node("/q", 7n, { creates: 5, children: 5 }));
  const names = [];
  for (let i = 0; i < 3; i++) {
    const [res] = succeeded(await draft.apply([create("/q/s-", 2)], ctx));
    names.push(res.kind === "create" && res.path);
  }
  assert.deepEqual(names, ["/q/s-0000000005", "/q/s-0000000006", "/q/s-0000000007"]);
  const { compare, success } = transaction(keys, draft.nodes, draft.now);
  // One put moves the counter by one, the bias by the other two: 5 − (6 − 1) + 3 − 1 = 2.
  const kids = success.find((op) => "put" in op && op.put === keys.attr("/q", "kids"));
  assert.deepEqual(kids && "value" in kids && new TextDecoder().decode(kids.value), "2");
  assert.ok(compare.some((c) => c.key === keys.attr("/q", "kids") && c.target === "mod"));
});

Deno.test("an open node is created as its node key alone; the first child makes its parent's counter, pinned absent", async () => {
  const fresh = node("/f", 4n);
  delete fresh.kvs.kids; // no child ever created: layout 2 has no counter key yet
  const { draft } = draftOf(fresh);
  succeeded(await draft.apply([create("/f/a")], ctx));
  const { compare, success } = transaction(keys, draft.nodes, draft.now);
  const puts = success.flatMap((op) => "put" in op ? [op.put] : []);
  assert.deepEqual(
    puts.sort(),
    [
      keys.attr("/f", "kids"),
      keys.node("/f/a"),
    ].sort(),
  );
  const kids = success.find((op) => "put" in op && op.put === keys.attr("/f", "kids"));
  // Its first put is version 1, counted as 0 creates: the bias counts this one.
  assert.equal(kids && "value" in kids && new TextDecoder().decode(kids.value), "1");
  assert.deepEqual(compare.find((c) => c.key === keys.attr("/f", "kids")), {
    key: keys.attr("/f", "kids"),
    target: "create",
    op: "==",
    value: 0n,
  });
});

Deno.test("a failed multi writes nothing, but what its checks read is pinned", async () => {
  const { draft } = draftOf(node("/", 5n), node("/taken", 6n));
  const out = await draft.apply([
    create("/fresh"),
    { kind: "setData", path: "/missing", data: null, version: -1 },
  ], ctx);
  assert.ok(!Array.isArray(out));
  assert.equal(out.index, 1);
  assert.equal(out.error.code, Code.NONODE);
  // A NodeExists answer is pinned on the node that exists, as read.
  const exists = await draft.apply([create("/taken")], ctx);
  assert.ok(!Array.isArray(exists) && exists.error.code === Code.NODEEXISTS);
  const { compare, success } = transaction(keys, draft.nodes, draft.now);
  assert.deepEqual(success, [], "nothing is written");
  assert.deepEqual(draft.events, [], "and no event fires");
  const pinned = (path: string) =>
    compare.find((c) => c.key === keys.node(path)) as { target: string; value: bigint };
  assert.deepEqual([pinned("/missing").target, pinned("/missing").value], ["create", 0n]);
  assert.deepEqual([pinned("/fresh").target, pinned("/fresh").value], ["create", 0n]);
  assert.deepEqual([pinned("/taken").target, pinned("/taken").value], ["mod", 6n]);
});

Deno.test("two setACL calls in one batch: one put of the ACL, and its bias counts the other", async () => {
  const { draft } = draftOf(node("/n", 9n));
  for (const version of [0, 1]) {
    const [res] = succeeded(
      await draft.apply([{ kind: "setACL", path: "/n", acl: OPEN_ACL, version }], ctx),
    );
    assert.equal(res.kind === "setACL" && res.stat.aversion, version + 1);
  }
  const stale = await draft.apply([{ kind: "setACL", path: "/n", acl: OPEN_ACL, version: 0 }], ctx);
  assert.ok(!Array.isArray(stale) && stale.error.code === Code.BADVERSION);
  const { success } = transaction(keys, draft.nodes, draft.now);
  const written = success.flatMap((op) => "put" in op ? [op.put] : []);
  assert.deepEqual(written, [keys.attr("/n", "acl"), keys.attr("/n", "abias")]);
  const bias = success[1];
  // aversion 2 = (ACL key's version 2 after the put) − 1 + bias 1.
  assert.equal("value" in bias && new TextDecoder().decode(bias.value), "1");
});

Deno.test("setACL of a node whose open ACL was never stored makes its ACL key, on the node's lease", async () => {
  const open = node("/o", 9n);
  delete open.kvs.acl; // layout 2: the open ACL, never set, has no key
  open.kvs.node = { ...open.kvs.node, lease: 77n };
  const { draft } = draftOf(open);
  const [res] = succeeded(
    await draft.apply([{ kind: "setACL", path: "/o", acl: OPEN_ACL, version: 0 }], ctx),
  );
  assert.equal(res.kind === "setACL" && res.stat.aversion, 1);
  const { compare, success } = transaction(keys, draft.nodes, draft.now);
  // etcd refuses to keep the lease of a key that does not exist: it is given.
  assert.deepEqual(success.find((op) => "put" in op && op.put === keys.attr("/o", "acl")), {
    put: keys.attr("/o", "acl"),
    value: encodeAcl(OPEN_ACL),
    lease: 77n,
  });
  // Its first put is version 1, counted as aversion 0: the bias counts this write.
  const bias = success.find((op) => "put" in op && op.put === keys.attr("/o", "abias"));
  assert.equal(bias && "value" in bias && new TextDecoder().decode(bias.value), "1");
  assert.ok(compare.some((c) => c.key === keys.attr("/o", "acl") && c.target === "create"));
});

Deno.test("a delete rests on no child created since the read; NotEmpty on none deleted since", async () => {
  const { draft } = draftOf(
    node("/", 5n),
    node("/leaf", 8n),
    node("/full", 9n, { creates: 1, children: 1 }),
  );
  succeeded(await draft.apply([{ kind: "delete", path: "/leaf", version: -1 }], ctx));
  const notEmpty = await draft.apply([{ kind: "delete", path: "/full", version: -1 }], ctx);
  assert.ok(!Array.isArray(notEmpty) && notEmpty.error.code === Code.NOTEMPTY);
  const { compare } = transaction(keys, draft.nodes, draft.now);
  const pinned = (key: string) => compare.find((c) => c.key === key);
  // The children counter as read: a child created meanwhile by another
  // server would move it. With no child, none can be deleted: no pin on
  // the child-delete marker, one compare less for etcd.
  assert.ok(pinned(keys.attr("/leaf", "kids")));
  assert.equal(pinned(keys.attr("/leaf", "gone")), undefined);
  // NotEmpty holds only while the child is there: the marker as read.
  assert.ok(pinned(keys.attr("/full", "kids")));
  assert.deepEqual(pinned(keys.attr("/full", "gone")), {
    key: keys.attr("/full", "gone"),
    target: "create",
    op: "==",
    value: 0n,
  });
});

Deno.test("a single write that fails changes nothing in the batch but the pins of what it read", async () => {
  const parent = node("/e", 3n, { creates: 4 });
  parent.stat.ephemeralOwner = 42n; // an ephemeral: it takes no children
  const { draft } = draftOf(parent, node("/", 2n));
  const out = await draft.apply([create("/e/s-", 2)], ctx);
  assert.ok(!Array.isArray(out) && out.error.code === Code.NOCHILDRENFOREPHEMERALS);
  // Its name was taken from the counter, but the counter did not move.
  const e = draft.nodes.get("/e")!;
  assert.deepEqual([e.creates, e.childCreates, e.numChildren], [4, 0, 0]);
  assert.deepEqual([...e.pins].sort(), ["acl", "kids"]);
  assert.equal(draft.nodes.get("/e/s-0000000004")?.exists, false);
  assert.deepEqual(draft.events, []);
  // The next write of the batch sees the nodes as they were.
  succeeded(await draft.apply([create("/f")], ctx));
  const { success } = transaction(keys, draft.nodes, draft.now);
  assert.deepEqual(success.flatMap((op) => "put" in op ? [op.put] : []), [
    keys.node("/f"),
    keys.attr("/", "kids"),
  ]);
});
