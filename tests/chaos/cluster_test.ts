/**
 * Faults under load, bounded for CI (`deno task chaos` runs five minutes
 * with more clients): three etcd members, two servers, one fault of each
 * kind, then a linearizability check of the whole history.
 */

import { clusterScenario } from "./scenarios.ts";

Deno.test({
  name:
    "no acknowledged write is lost and the history stays linearizable through etcd and server faults",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await clusterScenario(Number(Deno.env.get("CHAOS_SECONDS") ?? 24), 6, false);
});

Deno.test({
  name:
    "with read replicas, writes stay linearizable and no session's view goes back through faults",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await clusterScenario(Number(Deno.env.get("CHAOS_SECONDS") ?? 24), 6, true);
});
