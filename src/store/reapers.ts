/**
 * The server's own deletes, outside the write pipeline: the ephemeral
 * nodes of an ended session, and the containers and TTL nodes ZooKeeper's
 * container manager would delete. Each holds only if what it read did not
 * change (the node still on the lease, still empty, still unmodified), so
 * several servers may reap at once.
 *
 * @module
 */

import { CreateFlag } from "../zk/constants.ts";
import { parentOf } from "../zk/path.ts";
import { absent, unchanged } from "../etcd/client.ts";
import { type AtRevision, type EtcdTree, PATHS_PER_READ } from "./tree.ts";
import { nodeDeletes } from "./nodes.ts";

/** Rounds of reaping before the lease is revoked anyway (etcd then deletes what is left). */
const MAX_REAP_ROUNDS = 8;

/** The ephemeral nodes attached to `lease` (a session's), as paths. */
export async function ephemeralPaths(tree: EtcdTree, lease: bigint): Promise<string[]> {
  const { keys } = await tree.etcd.leaseInfo(lease);
  return keys.map((key) => tree.keys.pathOfNode(key)).filter((p): p is string => p !== null);
}

/**
 * What ZooKeeper's container manager does: deletes the containers that
 * had children and have none left, and the TTL nodes that have no
 * children and were not modified for their TTL. Each delete holds only
 * if the node did not change since it was read, so several servers may
 * run this at once. Index entries whose node is gone are dropped.
 * Returns the paths deleted.
 */
export async function reapExpired(tree: EtcdTree, now: bigint): Promise<string[]> {
  const k = tree.keys;
  const deleted: string[] = [];
  for (const kind of ["container", "ttl"] as const) {
    const listed = await tree.etcd.read([{ get: k.indexOf(kind), prefix: true, keysOnly: true }]);
    const paths = listed.results[0]!.kvs.map((kv) => k.pathOfIndex(kind, kv.key)!);
    const { nodes } = await tree.getMany(paths);
    for (const [i, path] of paths.entries()) {
      const node = nodes[i];
      const index = k.index(kind, path);
      const stale = !node ||
        (kind === "container" ? node.mode !== CreateFlag.CONTAINER : node.ttl === undefined);
      if (stale) {
        // Only while the node is still gone (or still not of this kind).
        await tree.etcd.txn(
          [unchanged(k.node(path), node?.kvs.node)],
          [{ del: index }],
        );
        continue;
      }
      const { numChildren, cversion, mtime } = node.stat;
      const due = numChildren === 0 &&
        (kind === "container" ? cversion > 0 : now - mtime > node.ttl!);
      if (!due) continue;
      const res = await tree.etcd.txn(
        [
          unchanged(k.node(path), node.kvs.node),
          unchanged(k.attr(path, "kids"), node.kvs.kids),
          unchanged(k.attr(path, "gone"), node.kvs.gone),
          absent(k.children(path), true),
        ],
        [...nodeDeletes(k, path), { put: k.attr(parentOf(path), "gone") }, { del: index }],
      );
      if (res.succeeded) deleted.push(path);
    }
  }
  return deleted;
}

/**
 * Deletes the ephemeral nodes attached to `lease` in one transaction,
 * touching each parent's `gone` key (so pzxid and cversion move as in
 * ZooKeeper), then revokes the lease. Safe to run from several servers at
 * once: each node is deleted only while it still carries the lease.
 * Returns the revision of the deletion (0n when there was nothing to do).
 */
export async function reapEphemerals(
  tree: EtcdTree,
  lease: bigint,
): Promise<AtRevision & { paths: string[] }> {
  const reaped: string[] = [];
  let zxid = 0n;
  for (let attempt = 0; attempt < MAX_REAP_ROUNDS; attempt++) {
    const paths = await ephemeralPaths(tree, lease);
    if (paths.length === 0) break;
    // In chunks, to stay within etcd's default of 128 operations per transaction.
    for (let i = 0; i < paths.length; i += PATHS_PER_READ) {
      const chunk = paths.slice(i, i + PATHS_PER_READ);
      const parents = new Set(chunk.map(parentOf));
      const res = await tree.etcd.txn(
        chunk.map((p) => ({ key: tree.keys.node(p), target: "lease", op: "==", value: lease })),
        [
          ...chunk.flatMap((p) => nodeDeletes(tree.keys, p)),
          ...[...parents].map((p) => ({ put: tree.keys.attr(p, "gone") })),
        ],
      );
      if (res.succeeded) {
        reaped.push(...chunk);
        zxid = res.revision;
      }
    }
  }
  await tree.etcd.revokeLease(lease);
  return { zxid, paths: reaped };
}
