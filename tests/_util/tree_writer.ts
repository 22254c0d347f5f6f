/**
 * Writes a synthetic tree straight into etcd in our layout (no server, no
 * ZooKeeper protocol), for tests and benchmarks that need many znodes fast.
 *
 * @module
 */

import type { EtcdClient, Op } from "../../src/etcd/client.ts";
import { Keys } from "../../src/store/keys.ts";
import { EtcdTree } from "../../src/store/tree.ts";
import { nodeWrites } from "../../src/store/nodes.ts";
import { OPEN_ACL } from "../../src/zk/acl.ts";

/** Persistent, open-ACL nodes holding `data`, under one prefix. */
export class TreeWriter {
  readonly #etcd: EtcdClient;
  readonly #keys: Keys;
  readonly #data: Uint8Array;
  readonly #now = BigInt(Date.now());

  private constructor(etcd: EtcdClient, keys: Keys, data: Uint8Array) {
    this.#etcd = etcd;
    this.#keys = keys;
    this.#data = data;
  }

  /** Initialises the prefix (root and system nodes) and returns a writer for it. */
  static async open(etcd: EtcdClient, prefix: string, data: Uint8Array): Promise<TreeWriter> {
    const keys = new Keys(prefix);
    await new EtcdTree(etcd, keys).init();
    return new TreeWriter(etcd, keys, data);
  }

  /** The puts of one node, counting `childCreates` children as created under it. */
  node(path: string, childCreates = 0): Op[] {
    return nodeWrites(this.#keys, {
      path,
      data: this.#data,
      acl: OPEN_ACL,
      mode: 0,
      owner: 0n,
      lease: 0n,
      now: this.#now,
      childCreates,
    });
  }

  /**
   * Writes childless nodes at `paths` (their parents counted already), 25
   * per transaction, 8 transactions at a time; `onProgress` is told the
   * count written after each transaction.
   */
  async leaves(paths: string[], onProgress?: (written: number) => void): Promise<void> {
    let next = 0;
    let written = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < paths.length) {
        const batch = paths.slice(next, next += 25);
        await this.#etcd.txn([], batch.flatMap((p) => this.node(p)));
        written += batch.length;
        onProgress?.(written);
      }
    }));
  }
}
