/**
 * Two servers on one prefix, one of them reaching etcd through a relay
 * that a test can hold closed: how a test makes that server's watch stream
 * fall behind a compaction (it loses etcd for a moment, shorter than its
 * 2 s of grace, while the other writes and etcd's history is compacted
 * past it).
 *
 * @module
 */

import type { ServerOptions, ZetcdServer } from "../../src/server/server.ts";
import { EtcdClient } from "../../src/etcd/client.ts";
import { type EtcdProcess, startEtcd } from "./etcd.ts";
import { startRelay, type TcpRelay } from "./tcp_relay.ts";
import { startZetcd } from "./zetcd.ts";

/** The servers of a gap, and how to open one. */
export interface CompactionGap {
  /** The server that loses etcd. */
  cut: ZetcdServer;
  /** The server that keeps it, through which `during` writes. */
  other: ZetcdServer;
  /**
   * Holds `cut` away from etcd, runs `writes`, compacts etcd's history up
   * to its current revision, and lets `cut` reach etcd again.
   */
  during(writes: () => Promise<void>): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts etcd and the two servers under `prefix`; `cut` takes `options` too. */
export async function startCompactionGap(
  prefix: string,
  options: Partial<ServerOptions> = {},
): Promise<CompactionGap> {
  const etcd: EtcdProcess = await startEtcd();
  const relay: TcpRelay = startRelay(etcd.endpoints[0]);
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  const cut = await startZetcd(etcd, { prefix, endpoints: [relay.address], ...options });
  const other = await startZetcd(etcd, { prefix });
  return {
    cut,
    other,
    async during(writes) {
      relay.pause();
      try {
        await writes();
        const { revision } = await raw.read([{ get: prefix, keysOnly: true, limit: 1 }]);
        await raw.compact(revision);
      } finally {
        relay.resume();
      }
    },
    async [Symbol.asyncDispose]() {
      raw.close();
      relay.close();
      await cut.close();
      await other.close();
      await etcd.stop();
    },
  };
}
