/**
 * Minimises a divergence found by tests/server/random_differential_test.ts:
 * plays the seed's operations against ZooKeeper 3.8 and our server, then
 * removes operations (delta debugging) while the same divergence remains,
 * and prints the smallest sequence found, as text and as JSON (a `minimal`
 * list for tests/server/random_differential_seeds.json).
 *
 * ```sh
 * deno run -A --config deno.json tests/_util/random_minimize.ts --seed 1 --ops 1432 [--skip dup-acl]
 * deno run -A --config deno.json tests/_util/random_minimize.ts --list ops.json
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startStack } from "./zetcd.ts";
import { startZooKeeper } from "./zookeeper.ts";
import {
  compareWithOracle,
  describeOp,
  type Divergence,
  formatDivergence,
  type Op,
  recordOracle,
  type Source,
} from "./random_ops.ts";

/** What makes two divergences "the same": where, on which kind of operation, in which fields. */
export function signature(d: Divergence): string {
  if (d.what !== "result") return `${d.what}`;
  const o = d.oracle as Record<string, unknown>;
  const u = d.ours as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(o), ...Object.keys(u)])]
    .filter((k) => JSON.stringify(o[k]) !== JSON.stringify(u[k]))
    .sort();
  return `${d.what} ${d.op.kind} [${keys.join(",")}] err ${o.err ?? "-"}/${u.err ?? "-"}`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seed: { type: "string" },
      ops: { type: "string" },
      skip: { type: "string" },
      list: { type: "string" },
    },
  });
  const zookeeper = await startZooKeeper();
  const stack = await startStack();
  let trial = 0;
  const check = async (source: Source) => {
    const base = `/m${trial++}`;
    const oracle = await recordOracle(zookeeper.hostPort, base, source);
    const ours = await compareWithOracle(stack.address, base, source, oracle, 150);
    return { oracle, divergence: ours.divergence };
  };
  try {
    const source: Source = values.list
      ? { list: JSON.parse(await Deno.readTextFile(values.list)) }
      : {
        seed: Number(values.seed),
        ops: Number(values.ops ?? 2500),
        skip: values.skip ? values.skip.split(",") : [],
      };
    const first = await check(source);
    if (!first.divergence) {
      console.log("no divergence");
      Deno.exit(1);
    }
    const target = signature(first.divergence);
    console.log(`divergence: ${target}`);
    let ops: Op[] = first.oracle.records.slice(0, first.divergence.index + 1).map((r) => r.op);
    const same = async (list: Op[]) => {
      const { divergence } = await check({ list });
      return divergence !== undefined && signature(divergence) === target
        ? divergence.index
        : undefined;
    };
    // ddmin: remove ever smaller chunks while the divergence stays the same.
    let n = 2;
    while (ops.length >= 2) {
      const size = Math.ceil(ops.length / n);
      let reduced = false;
      for (let start = 0; start < ops.length; start += size) {
        const candidate = [...ops.slice(0, start), ...ops.slice(start + size)];
        const at = await same(candidate);
        if (at !== undefined) {
          ops = candidate.slice(0, at + 1);
          n = Math.max(n - 1, 2);
          reduced = true;
          console.log(`  ${ops.length} operations`);
          break;
        }
      }
      if (!reduced) {
        if (n >= ops.length) break;
        n = Math.min(ops.length, n * 2);
      }
    }
    const last = await check({ list: ops });
    console.log(`\nminimal sequence (${ops.length} operations, ${trial} trials):`);
    ops.forEach((op, i) => console.log(`  #${i} ${describeOp(op)}`));
    if (last.divergence) console.log("\n" + formatDivergence(last.divergence, "minimal"));
    console.log("\n" + JSON.stringify(ops));
  } finally {
    await stack.stop();
    await zookeeper.stop();
  }
  Deno.exit(0);
}
