/**
 * The figures of the whole namespace that `mntr` reports as ZooKeeper
 * does: znodes, ephemeral znodes, approximate data size and sessions,
 * read from etcd at one revision.
 *
 * @module
 */

import type { EtcdTree } from "../store/tree.ts";
import { decodeNode } from "../store/values.ts";

/** Node keys read per page, at most. */
const MAX_PAGE = 10_000;

/** Bytes of data a page may hold before the next page is made smaller. */
const PAGE_BYTES = 16 * 1024 * 1024;

/** What `mntr` tells of the tree. */
export interface TreeFigures {
  /** Number of znodes (`zk_znode_count`). */
  znodes: number;
  /** Number of ephemeral znodes, of every session (`zk_ephemerals_count`). */
  ephemerals: number;
  /**
   * Sum over the znodes of the path's length and the data's, as ZooKeeper's
   * `zk_approximate_data_size` (its root counts as `/`).
   */
  dataSize: number;
  /** Sessions of the namespace, held by any server (`zk_global_sessions`). */
  sessions: number;
}

/**
 * Reads every node record of the namespace at one revision, in pages that
 * shrink where data is large (and after a failed page: a reply over the
 * client's size limit), and counts the session records. Its cost grows
 * with the tree's size and data.
 */
export async function treeFigures(tree: EtcdTree): Promise<TreeFigures> {
  const { keys } = tree;
  // A session key is the session prefix followed by 16 hex digits.
  const sessionPrefix = keys.session(0n).slice(0, -16);
  const first = await tree.etcd.read([{ get: sessionPrefix, prefix: true, countOnly: true }]);
  const figures: TreeFigures = {
    znodes: 0,
    ephemerals: 0,
    dataSize: 0,
    sessions: first.results[0]!.count,
  };
  let page = MAX_PAGE;
  for (let from = keys.nodePrefix();;) {
    let kvs;
    try {
      const res = await tree.etcd.read([
        { get: keys.nodePrefix(), prefix: true, from, revision: first.revision, limit: page },
      ]);
      kvs = res.results[0]!.kvs;
    } catch (err) {
      if (page === 1) throw err;
      page = Math.max(1, Math.floor(page / 8));
      continue;
    }
    let bytes = 0;
    for (const kv of kvs) {
      const path = keys.pathOfNode(kv.key);
      if (path === null) continue;
      const data = decodeNode(kv.value).data?.byteLength ?? 0;
      figures.znodes++;
      if (kv.lease !== 0n) figures.ephemerals++;
      figures.dataSize += path.length + data;
      bytes += data;
    }
    if (kvs.length < page) return figures;
    from = kvs[kvs.length - 1].key + "\0";
    if (bytes > PAGE_BYTES) page = Math.max(1, Math.floor(page / 2));
    else if (bytes < PAGE_BYTES / 4) page = Math.min(MAX_PAGE, page * 2);
  }
}
