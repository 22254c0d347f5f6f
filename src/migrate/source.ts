/**
 * What a migration reads from: a tree walked parents first, in batches, so
 * that a source of any size is copied with a bounded amount in memory.
 * The two sources are a live ZooKeeper (`zk_source.ts`) and the Go zetcd's
 * etcd layout (`zetcd_source.ts`).
 *
 * @module
 */

import type { ACL } from "../zk/records.ts";

/** One znode as a source holds it: everything our layout can keep. */
export interface SourceNode {
  /** Its path in the target tree (a chroot is already taken off). */
  path: string;
  data: Uint8Array | null;
  acl: ACL[];
  version: number;
  cversion: number;
  aversion: number;
  /** ms since the epoch. */
  ctime: bigint;
  mtime: bigint;
  numChildren: number;
  /** Create mode: 0 persistent, 4 container, 5 TTL. */
  mode: number;
  /** Time to live of a TTL node, ms. */
  ttl?: bigint;
  /** The sequence counter (children ever created), when the source keeps one. */
  creates?: number;
  /** The children's names, when the source lists them (for verification). */
  children?: string[];
}

/** A tree to copy or compare against. */
export interface Source {
  /** Where it is, for messages: `zk://…` or `etcd prefix …`. */
  readonly name: string;
  /**
   * Every node but the ephemeral ones and ZooKeeper's own `/zookeeper`
   * subtree, parents before their children, in batches of at most a few
   * hundred nodes (and a few MiB of data).
   */
  walk(): AsyncGenerator<SourceNode[]>;
  /** Ephemeral nodes met by the walks so far (they belong to sessions and are not copied). */
  readonly ephemerals: string[];
  /** Closes connections. */
  close(): Promise<void>;
}

/**
 * The children ever created under a node: the source's own counter, else
 * derived from ZooKeeper's rule that cversion counts every child create and
 * delete (so creates = (cversion + numChildren) / 2).
 */
export function createsOf(n: SourceNode): number {
  return n.creates ?? Math.ceil((n.cversion + n.numChildren) / 2);
}

/** At most this many skipped ephemeral paths are listed. */
const MAX_LISTED = 10_000;

/** Adds a skipped ephemeral to a source's list, which stops growing at 10,000 paths. */
export function listEphemeral(list: string[], path: string): void {
  if (list.length < MAX_LISTED) list.push(path);
}

/** Whether a path is ZooKeeper's own subtree, which is never copied. */
export function isSystemPath(path: string): boolean {
  return path === "/zookeeper" || path.startsWith("/zookeeper/");
}

/**
 * The user of a masked digest ACL entry, or null for any other entry:
 * ZooKeeper's getACL shows a reader without ADMIN on the node `user:x` in
 * place of `user:base64(sha1(user:password))`, whose hash is never `x`.
 * Written back, such an entry locks its user out of the node.
 */
export function maskedDigestUser(scheme: string | null, id: string | null): string | null {
  return scheme === "digest" && id !== null && id.endsWith(":x") ? id.slice(0, -2) : null;
}

/** Data bytes of a batch, to keep batches (and etcd requests) small. */
export function dataBytes(nodes: SourceNode[]): number {
  let n = 0;
  for (const node of nodes) n += node.data?.byteLength ?? 0;
  return n;
}

/** Whether two data values (null or bytes) are equal. */
export function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}
