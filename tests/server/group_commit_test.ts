/**
 * Group commit: writes that arrive together share one etcd transaction —
 * creates under one parent, setData calls on one node, and independent
 * writes on different nodes — and each must still succeed or fail exactly
 * as it would alone (checked against ZooKeeper).
 */

import assert from "node:assert/strict";
import { differential } from "../_util/differential.ts";
import { startStack } from "../_util/zetcd.ts";
import { ACL, CreateMode, Id, Nzk, NzkError } from "../_util/nzk.ts";
import { digestId } from "../../src/zk/acl.ts";
import { Code } from "../../src/zk/constants.ts";

const SESSIONS = 12;

const text = new TextEncoder();

/** Runs `body` with one session and SESSIONS others on `address`, and closes them all. */
async function withSessions(
  address: string,
  body: (zk: Nzk, others: Nzk[]) => Promise<void>,
): Promise<void> {
  const zk = await Nzk.connect(address);
  const others = await Promise.all(Array.from({ length: SESSIONS }, () => Nzk.connect(address)));
  try {
    await body(zk, others);
  } finally {
    await Promise.all([zk, ...others].map((s) => s.close().catch(() => {})));
  }
}

/**
 * Registers a check on our server alone: the writes `write` makes at once
 * from many sessions took fewer etcd transactions (distinct zxids, which
 * it returns) than half their number.
 */
function sharesTransactions(
  name: string,
  write: (zk: Nzk, others: Nzk[]) => Promise<bigint[]>,
): void {
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false }, async () => {
    await using stack = await startStack();
    await withSessions(stack.address, async (zk, others) => {
      const zxids = await write(zk, others);
      const distinct = new Set(zxids).size;
      assert.ok(
        distinct < zxids.length / 2,
        `${zxids.length} writes took ${distinct} transactions`,
      );
    });
  });
}

/** The error code a call ended with, or 0. */
function codeOf(outcome: PromiseSettledResult<unknown>): number {
  if (outcome.status === "fulfilled") return 0;
  assert.ok(outcome.reason instanceof NzkError, String(outcome.reason));
  return outcome.reason.code;
}

async function createTogetherSpec(t: Deno.TestContext, address: string): Promise<void> {
  await withSessions(address, async (zk, others) => {
    await t.step(
      "sequential creates made at once by many sessions take every number once",
      async () => {
        await zk.create("/seq");
        const perSession = 8;
        const names = await Promise.all(
          others.flatMap((s) =>
            Array.from(
              { length: perSession },
              () => s.create("/seq/n-", null, CreateMode.PERSISTENT_SEQUENTIAL),
            )
          ),
        );
        const total = SESSIONS * perSession;
        const numbers = names.map((n) => Number(n.slice("/seq/n-".length))).sort((a, b) => a - b);
        assert.deepEqual(numbers, Array.from({ length: total }, (_, i) => i));
        const parent = await zk.exists("/seq");
        assert.equal(parent?.numChildren, total);
        assert.equal(parent?.cversion, total);
        assert.equal(
          await zk.create("/seq/n-", null, CreateMode.PERSISTENT_SEQUENTIAL),
          `/seq/n-${String(total).padStart(10, "0")}`,
        );
      },
    );

    await t.step("creates made together each succeed or fail on their own", async () => {
      await zk.create("/b");
      await zk.create("/b/taken");
      const outcomes = await Promise.allSettled([
        ...others.map((s, i) => s.create(`/b/n${i}`)),
        ...others.slice(0, 3).map((s) => s.create("/b/taken")),
        ...others.slice(3, 5).map((s) => s.create("/b/same")),
        others[5].create("/b/missing/child"),
      ]);
      const codes = outcomes.map(codeOf);
      assert.deepEqual(codes.slice(0, SESSIONS), Array(SESSIONS).fill(0));
      assert.deepEqual(codes.slice(SESSIONS, SESSIONS + 3), Array(3).fill(Code.NODEEXISTS));
      assert.deepEqual(
        codes.slice(SESSIONS + 3, SESSIONS + 5).sort(),
        [Code.NODEEXISTS, 0].sort(),
        "two creates of one path: exactly one wins",
      );
      assert.equal(codes[SESSIONS + 5], Code.NONODE);
      const parent = await zk.exists("/b");
      assert.equal(parent?.numChildren, SESSIONS + 2);
      assert.equal(parent?.cversion, SESSIONS + 2);
    });

    await t.step("a parent's ACL refuses only the sessions it does not admit", async () => {
      const alice = new Id("digest", digestId("alice:secret"));
      await zk.create("/c", null, CreateMode.PERSISTENT, [
        new ACL(31, alice),
        new ACL(1, new Id("world", "anyone")),
      ]);
      const admitted = others.slice(0, SESSIONS / 2);
      for (const s of admitted) s.addAuth("digest", "alice:secret");
      await Promise.all(admitted.map((s) => s.exists("/c"))); // auth is in place
      const outcomes = await Promise.allSettled(others.map((s, i) => s.create(`/c/n${i}`)));
      const codes = outcomes.map(codeOf);
      assert.deepEqual(codes, others.map((_, i) => (i < SESSIONS / 2 ? 0 : Code.NOAUTH)));
      assert.equal((await zk.exists("/c"))?.numChildren, SESSIONS / 2);
    });

    await t.step("ephemerals created together belong each to its own session", async () => {
      await zk.create("/e");
      const paths = await Promise.all(others.flatMap((s, i) => [
        s.create(`/e/plain${i}`, null, CreateMode.EPHEMERAL),
        s.create(`/e/seq-`, null, CreateMode.EPHEMERAL_SEQUENTIAL),
      ]));
      for (const [j, path] of paths.entries()) {
        const owner = (await zk.exists(path))?.ephemeralOwner;
        assert.equal(owner, others[Math.floor(j / 2)].sessionId, path);
      }
      await others[0].close();
      const left = await zk.getChildren("/e");
      assert.equal(left.children.length, 2 * SESSIONS - 2, "the closed session's two are gone");
    });
  });
}

differential("creates made together under one parent", createTogetherSpec);

sharesTransactions(
  "creates that arrive together under one parent share one etcd transaction",
  async (zk, others) => {
    await zk.create("/p");
    const paths = await Promise.all(
      others.flatMap((s, i) =>
        Array.from(
          { length: 8 },
          (_, j) =>
            j % 2 === 0
              ? s.create(`/p/n${i}-${j}`)
              : s.create("/p/s-", null, CreateMode.PERSISTENT_SEQUENTIAL),
        )
      ),
    );
    const czxids: bigint[] = [];
    for (const path of paths) czxids.push((await zk.exists(path))!.czxid);
    return czxids;
  },
);

async function setTogetherSpec(t: Deno.TestContext, address: string): Promise<void> {
  await withSessions(address, async (zk, others) => {
    await t.step("setData calls made at once by many sessions each take one version", async () => {
      await zk.create("/v", text.encode("start"));
      const perSession = 4;
      const calls = others.flatMap((s, i) =>
        Array.from({ length: perSession }, (_, j) => {
          const data = `s${i}-${j}`;
          return s.setData("/v", text.encode(data)).then((stat) => ({ data, stat }));
        })
      );
      const done = await Promise.all(calls);
      const total = SESSIONS * perSession;
      const versions = done.map((d) => d.stat.version).sort((a, b) => a - b);
      assert.deepEqual(versions, Array.from({ length: total }, (_, i) => i + 1));
      const last = done.find((d) => d.stat.version === total)!;
      const now = await zk.getData("/v");
      assert.equal(new TextDecoder().decode(now.data!), last.data, "the last write's data stays");
      assert.equal(now.stat.version, total);
      assert.equal(now.stat.dataLength, last.data.length);
    });

    await t.step(
      "of setData calls expecting one version at once, exactly one succeeds",
      async () => {
        const before = (await zk.exists("/v"))!.version;
        const outcomes = await Promise.allSettled(
          others.map((s, i) => s.setData("/v", text.encode(`x${i}`), before)),
        );
        const codes = outcomes.map(codeOf);
        assert.equal(codes.filter((c) => c === 0).length, 1);
        assert.equal(codes.filter((c) => c === Code.BADVERSION).length, SESSIONS - 1);
        assert.equal((await zk.exists("/v"))!.version, before + 1);
      },
    );

    await t.step(
      "a node's ACL refuses only the sessions it does not admit, even at once",
      async () => {
        const alice = new Id("digest", digestId("alice:secret"));
        await zk.create("/w", null, CreateMode.PERSISTENT, [
          new ACL(31, alice),
          new ACL(1, new Id("world", "anyone")),
        ]);
        const admitted = others.slice(0, SESSIONS / 2);
        for (const s of admitted) s.addAuth("digest", "alice:secret");
        await Promise.all(admitted.map((s) => s.exists("/w")));
        const outcomes = await Promise.allSettled(
          others.map((s, i) => s.setData("/w", text.encode(`w${i}`))),
        );
        const codes = outcomes.map(codeOf);
        assert.deepEqual(codes, others.map((_, i) => (i < SESSIONS / 2 ? 0 : Code.NOAUTH)));
        assert.equal((await zk.exists("/w"))!.version, SESSIONS / 2);
      },
    );

    await t.step("a node deleted and created again starts at version 0", async () => {
      await Promise.all(others.map((s) => s.setData("/v", text.encode("again"))));
      await zk.remove("/v");
      await zk.create("/v", text.encode("new"));
      assert.equal((await zk.exists("/v"))!.version, 0);
      assert.equal((await zk.setData("/v", text.encode("one"), 0)).version, 1);
    });
  });
}

differential("setData calls made together on one node", setTogetherSpec);

sharesTransactions(
  "setData calls that arrive together on one node share one etcd transaction",
  async (zk, others) => {
    await zk.create("/n");
    const stats = await Promise.all(
      others.flatMap((s) => Array.from({ length: 8 }, () => s.setData("/n", new Uint8Array(1)))),
    );
    return stats.map((st) => st.mzxid);
  },
);

async function differentNodesSpec(t: Deno.TestContext, address: string): Promise<void> {
  await withSessions(address, async (zk, others) => {
    await t.step("writes to different nodes made at once each keep their own outcome", async () => {
      await zk.create("/g");
      await zk.create("/g2");
      for (let i = 0; i < SESSIONS; i++) await zk.create(`/g/a${i}`);
      await zk.create("/g/gone");
      await zk.create("/g/full");
      await zk.create("/g/full/child");
      const outcomes = await Promise.allSettled<unknown>([
        ...others.slice(0, 9).map((s, i) => s.setData(`/g/a${i}`, text.encode(`d${i}`), 0)),
        others[9].setData("/g/a9", text.encode("late"), 5),
        others[10].remove("/g/gone"),
        others[11].remove("/g/full"),
        others[0].create("/g2/x"),
        others[1].remove("/g/missing"),
        others[2].setData("/g/missing", new Uint8Array(1)),
      ]);
      const codes = outcomes.map(codeOf);
      assert.deepEqual(codes, [
        ...Array(9).fill(0),
        Code.BADVERSION,
        0,
        Code.NOTEMPTY,
        0,
        Code.NONODE,
        Code.NONODE,
      ]);
      for (let i = 0; i < 9; i++) {
        const { data, stat } = await zk.getData(`/g/a${i}`);
        assert.equal(new TextDecoder().decode(data!), `d${i}`);
        assert.equal(stat.version, 1);
      }
      assert.equal((await zk.exists("/g/a9"))?.version, 0);
      assert.equal(await zk.exists("/g/gone"), null);
      assert.ok(await zk.exists("/g/full"));
      assert.deepEqual((await zk.getChildren("/g2")).children, ["x"]);
      const g = await zk.exists("/g");
      assert.equal(g?.numChildren, SESSIONS + 1);
      assert.equal(g?.cversion, SESSIONS + 2 + 1, "creates and the one delete count");
    });
  });
}

differential("writes to different nodes made together", differentNodesSpec);

sharesTransactions(
  "writes to different nodes that arrive together share one etcd transaction",
  async (zk, others) => {
    for (let i = 0; i < SESSIONS; i++) await zk.create(`/own${i}`);
    const stats = await Promise.all(
      others.flatMap((s, i) =>
        Array.from({ length: 8 }, () => s.setData(`/own${i}`, new Uint8Array(1)))
      ),
    );
    return stats.map((st) => st.mzxid);
  },
);
