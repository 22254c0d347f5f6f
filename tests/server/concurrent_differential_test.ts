/**
 * The concurrent differential test: 16 sessions at once, spread over two
 * servers on one etcd, each running a seeded random mix of every write shape
 * (creates of all four kinds under shared parents, multis with sequential
 * and ephemeral-sequential creates, deletes racing creates, conditional and
 * unconditional setData, checks, session closes), while their connections
 * are cut now and then so that sessions reconnect, moving between servers.
 * The same seeds run against the real ZooKeeper 3.8. Interleavings differ
 * between the two, so the test compares what must hold for any
 * interleaving (see {@link invariantViolations}) and the error rate of each
 * kind of operation.
 *
 * ZETCD_CONCURRENT_OPS sets the operations per session (default 150) and
 * ZETCD_CONCURRENT_SEED the seed, for longer or repeated runs.
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { startZetcd, uniquePrefix } from "../_util/zetcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { startRelay, type TcpRelay } from "../_util/tcp_relay.ts";
import { Nzk } from "../_util/nzk.ts";
import {
  type ConcurrentRecord,
  errorRates,
  invariantViolations,
  type Kind,
  KINDS,
  runConcurrent,
} from "../_util/concurrent.ts";

const SESSIONS = 16;
const OPS = Number(Deno.env.get("ZETCD_CONCURRENT_OPS") ?? 150);
const SEED = Number(Deno.env.get("ZETCD_CONCURRENT_SEED") ?? 20261206);
/** How far one kind's error rate may stray from ZooKeeper's (absolute). */
const RATE_MARGIN = 0.2;
/** Fewest answers of a kind on each side for its rate to be compared. */
const RATE_SAMPLES = 30;

/** Runs the workload through relays (which `cut` breaks) to `targets`. */
async function runThrough(targets: string[], seed: number): Promise<[ConcurrentRecord, string[]]> {
  const relays: TcpRelay[] = targets.map(startRelay);
  try {
    const hosts = (slot: number) => {
      const order = relays.map((r) => r.address);
      if (slot % 2 === 1) order.reverse();
      return order.join(",");
    };
    const record = await runConcurrent({
      hosts,
      sessions: SESSIONS,
      opsPerSession: OPS,
      seed,
      cut: (random) => relays[Math.floor(random() * relays.length)].cut(),
    });
    const zk = await Nzk.connect(targets[0]);
    try {
      return [record, await invariantViolations(zk, record)];
    } finally {
      await zk.close();
    }
  } finally {
    for (const r of relays) r.close();
  }
}

function summary(record: ConcurrentRecord): string {
  const rows = [...errorRates(record)].map(([kind, { rate, n }]) =>
    `${kind}: ${(rate * 100).toFixed(0)}% of ${n}`
  );
  return `${record.sessions} sessions; error rates: ${rows.join(", ")}`;
}

Deno.test({
  name: "16 sessions over two servers keep every invariant ZooKeeper keeps, with its error rates",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  let ours: ConcurrentRecord | undefined;
  let oracle: ConcurrentRecord | undefined;

  await t.step("on two servers sharing one etcd, no interleaving breaks an invariant", async () => {
    await using etcd = await startEtcd();
    const prefix = uniquePrefix();
    const a = await startZetcd(etcd, { prefix });
    const b = await startZetcd(etcd, { prefix });
    try {
      const [record, violations] = await runThrough([a.address, b.address], SEED);
      console.log(`zetcd: ${summary(record)}`);
      assert.deepEqual(violations, [], violations.join("\n"));
      ours = record;
    } finally {
      await a.close();
      await b.close();
    }
  });

  await t.step(
    "on the ZooKeeper 3.8 oracle, the same invariants hold (checking the spec)",
    async () => {
      await using zookeeper = await startZooKeeper();
      const [record, violations] = await runThrough([zookeeper.hostPort], SEED);
      console.log(`ZooKeeper: ${summary(record)}`);
      assert.deepEqual(violations, [], violations.join("\n"));
      oracle = record;
    },
  );

  await t.step("each kind of operation fails about as often as on ZooKeeper", () => {
    assert.ok(ours && oracle, "both runs finished");
    const mine = errorRates(ours);
    const theirs = errorRates(oracle);
    const off: string[] = [];
    for (const kind of Object.keys(KINDS) as Kind[]) {
      const x = mine.get(kind);
      const y = theirs.get(kind);
      if (!x || !y || x.n < RATE_SAMPLES || y.n < RATE_SAMPLES) continue;
      if (Math.abs(x.rate - y.rate) > RATE_MARGIN) {
        off.push(
          `${kind}: ${(x.rate * 100).toFixed(0)}% here, ${(y.rate * 100).toFixed(0)}% on ZooKeeper`,
        );
      }
    }
    assert.deepEqual(off, [], off.join("\n"));
  });
});
