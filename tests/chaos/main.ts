/**
 * `deno task chaos [scenario…]`: the long versions of the fault scenarios
 * that `deno task test` runs briefly. Each prints what it injected and what
 * it checked; the exit code is 1 when any promise was broken.
 *
 * Scenarios: fuzz, outage, cluster, cluster-replica, load (default: all, in
 * that order).
 * Lengths can be changed with CHAOS_SCALE (default 1; 0.2 is about the CI
 * length).
 *
 * @module
 */

import { clusterScenario, fuzzScenario, loadScenario, outageScenario } from "./scenarios.ts";

const scale = Number(Deno.env.get("CHAOS_SCALE") ?? 1);
const SCENARIOS: Record<string, () => Promise<void>> = {
  fuzz: () => fuzzScenario(300 * scale),
  outage: () => outageScenario(30_000 * scale),
  cluster: () => clusterScenario(300 * scale, 12, false),
  "cluster-replica": () => clusterScenario(300 * scale, 12, true),
  load: () => loadScenario(Math.round(10_000 * scale), 60 * scale),
};

const chosen = Deno.args.length > 0 ? Deno.args : Object.keys(SCENARIOS);
let failed = 0;
for (const name of chosen) {
  const run = SCENARIOS[name];
  if (!run) {
    console.error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(", ")}`);
    Deno.exit(2);
  }
  console.log(`\n==> chaos: ${name}`);
  const started = Date.now();
  try {
    await run();
    console.log(`==> ${name}: passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } catch (err) {
    failed++;
    console.log(`==> ${name}: FAILED: ${err instanceof Error ? err.stack : err}`);
  }
}
Deno.exit(failed > 0 ? 1 : 0);
