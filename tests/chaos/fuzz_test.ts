/**
 * Hostile input, bounded for CI: a structure-aware fuzzer drives a server
 * process for a few seconds (`deno task chaos` runs it for minutes).
 */

import { fuzzScenario } from "./scenarios.ts";

Deno.test({
  name: "fuzzed requests of every record leave the server serving, bounded, and explained",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const seed = Deno.env.get("FUZZ_SEED");
  await fuzzScenario(Number(Deno.env.get("FUZZ_SECONDS") ?? 12), seed ? Number(seed) : undefined);
});
