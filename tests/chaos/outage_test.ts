/**
 * etcd without quorum, bounded for CI (`deno task chaos` runs a longer
 * outage): clients get ConnectionLoss, the server reports unready and
 * recovers by itself, and sessions survive.
 */

import { outageScenario } from "./scenarios.ts";

Deno.test({
  name: "while etcd has no quorum clients get ConnectionLoss, and sessions survive its return",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await outageScenario(6000);
});
