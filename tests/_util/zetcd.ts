/**
 * Starts our server for tests: on a free loopback port, against a given
 * etcd, under a fresh key prefix so tests sharing one etcd never collide.
 *
 * @module
 */

import { type ServerOptions, ZetcdServer } from "../../src/server/server.ts";
import { type EtcdProcess, startEtcd } from "./etcd.ts";

let prefixes = 0;

/** A unique key prefix for one test. */
export function uniquePrefix(): string {
  return `/t${Date.now().toString(36)}${(prefixes++).toString(36)}/`;
}

/** Starts a server on 127.0.0.1, port 0, under `options.prefix` or a fresh prefix. */
export function startZetcd(
  etcd: EtcdProcess,
  options: Partial<ServerOptions> = {},
): Promise<ZetcdServer> {
  return ZetcdServer.start({
    endpoints: etcd.endpoints,
    hostname: "127.0.0.1",
    port: 0,
    prefix: options.prefix ?? uniquePrefix(),
    reapIntervalMs: 200,
    ...options,
  });
}

/** An etcd and one server on it, stopped together. */
export interface Stack {
  etcd: EtcdProcess;
  server: ZetcdServer;
  /** `127.0.0.1:PORT` of the server. */
  address: string;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a fresh etcd and one server on it. */
export async function startStack(options: Partial<ServerOptions> = {}): Promise<Stack> {
  const etcd = await startEtcd();
  let server: ZetcdServer;
  try {
    server = await startZetcd(etcd, options);
  } catch (err) {
    await etcd.stop();
    throw err;
  }
  const stop = async () => {
    await server.close();
    await etcd.stop();
  };
  return { etcd, server, address: server.address, stop, [Symbol.asyncDispose]: stop };
}
