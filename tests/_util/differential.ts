/**
 * Registers one behaviour specification twice: against our server, and
 * against a real ZooKeeper 3.8 (the oracle), which checks that the
 * specification itself says what ZooKeeper does.
 *
 * @module
 */

import { startStack } from "./zetcd.ts";
import { startZooKeeper } from "./zookeeper.ts";

/** A specification: its steps, run against the server at `address`. */
export type Spec = (t: Deno.TestContext, address: string) => Promise<void>;

/** Registers `spec` as "<name> (zetcd)" and "<name> (the ZooKeeper 3.8 oracle, …)". */
export function differential(name: string, spec: Spec): void {
  Deno.test({
    name: `${name} (zetcd)`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async (t) => {
    await using stack = await startStack();
    await spec(t, stack.address);
  });
  Deno.test({
    name: `${name} (the ZooKeeper 3.8 oracle, checking the spec)`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async (t) => {
    await using zookeeper = await startZooKeeper();
    await spec(t, zookeeper.hostPort);
  });
}
