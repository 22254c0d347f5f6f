/**
 * Many sessions and a slow reader, bounded for CI (`deno task chaos` opens
 * 10,000 sessions).
 */

import { loadScenario } from "./scenarios.ts";

Deno.test({
  name: "a thousand pinging sessions and a slow reader are all served",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await loadScenario(Number(Deno.env.get("LOAD_SESSIONS") ?? 1000), 15);
});
