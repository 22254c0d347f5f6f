/**
 * What every connection of one server shares.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { EtcdTree } from "../etcd/tree.ts";
import type { SessionManager } from "./sessions.ts";
import type { WatchHub } from "./watches.ts";

/** Shared state of a running server. */
export interface ServerState {
  tree: EtcdTree;
  sessions: SessionManager;
  watches: WatchHub;
  log: Logger;
  maxFrame: number;
  /** Whether TTL nodes are allowed. */
  extendedTypes: boolean;
  /** `user:base64(sha1(user:password))` of the super user, if any. */
  superDigest?: string;
  /** Close functions of the open connections. */
  connections: Set<() => void>;
}
