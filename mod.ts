/**
 * zetcd for Deno: a ZooKeeper-protocol server that keeps its state in etcd v3.
 *
 * Run it with `deno task start`, or embed it:
 *
 * @example
 * ```ts
 * import { ZetcdServer } from "./mod.ts";
 * const server = await ZetcdServer.start({ endpoints: ["127.0.0.1:2379"], port: 2181 });
 * await server.close();
 * ```
 *
 * @module
 */

export { type ServerOptions, ZetcdServer } from "./src/server/server.ts";
export { Keys, LAYOUT_VERSION } from "./src/store/keys.ts";
export { type ClientOptions, ZkClient } from "./src/client/client.ts";
export { ZkError } from "./src/zk/errors.ts";
export { Code, EventType, OpCode } from "./src/zk/constants.ts";
export * as records from "./src/zk/records.ts";
export { decode, encode } from "./src/jute/schema.ts";
export { JuteReader } from "./src/jute/reader.ts";
export { JuteWriter } from "./src/jute/writer.ts";
export { readFrames } from "./src/jute/frame.ts";
export { VERSION } from "./src/version.ts";
export { main } from "./src/cli/main.ts";

if (import.meta.main) {
  const { main } = await import("./src/cli/main.ts");
  Deno.exit(await main(Deno.args));
}
