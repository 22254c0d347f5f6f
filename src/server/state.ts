/**
 * What every connection of one server shares.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { ConnectionInfo, Counters } from "../admin/stats.ts";
import type { Metrics } from "../admin/metrics.ts";
import type { EtcdTree } from "../store/tree.ts";
import type { WritePipeline } from "../store/pipeline.ts";
import type { EtcdHealth } from "./etcd_health.ts";
import type { LagMonitor } from "../admin/lag.ts";
import type { SessionManager } from "./sessions.ts";
import type { WatchHub } from "./watches.ts";
import type { SaslUsers } from "./sasl.ts";

/** Shared state of a running server. */
export interface ServerState {
  tree: EtcdTree;
  /** Every client write goes through it. */
  writes: WritePipeline;
  sessions: SessionManager;
  watches: WatchHub;
  /** Whether an etcd quorum answers. */
  health: EtcdHealth;
  /**
   * `--read-only-mode`: while etcd is unavailable, serve clients that allow
   * it (canBeReadOnly) from the replica, refusing their writes.
   */
  readOnlyMode: boolean;
  log: Logger;
  maxFrame: number;
  /** Bytes queued for a client that does not read, past which it is cut off. */
  maxOutgoingBytes: number;
  /** Whether TTL nodes are allowed. */
  extendedTypes: boolean;
  /** `user:base64(sha1(user:password))` of the super user, if any. */
  superDigest?: string;
  /** SASL DIGEST-MD5 users (name → password); absent: SASL is off. */
  saslUsers?: SaslUsers;
  /** The open client connections. */
  connections: Set<ConnectionInfo>;
  /** Event-loop lag. */
  lag: LagMonitor;
  /** Prometheus metrics. */
  metrics: Metrics;
  /** Requests and replies of the whole server. */
  counters: Counters;
  /** When the server started, ms since the epoch. */
  started: number;
  /** The settings `conf` reports. */
  conf: {
    port: number;
    minSessionTimeout: number;
    maxSessionTimeout: number;
    prefix: string;
    /** Connections allowed per IP address (0: no limit). */
    maxClientCnxns: number;
  };
  /** A real ZooKeeper to cross-check every request against (`--oracle`). */
  oracle?: string;
  /** Four-letter words this server answers. */
  fourLetterWords: ReadonlySet<string>;
}
