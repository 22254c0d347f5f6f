/**
 * The etcd key layout, version 1 — the only module that builds or parses
 * keys. README.md documents the same table.
 *
 * Every key starts with the configured prefix `P` (default `/zk/`):
 *
 * | key                       | value                               | etcd metadata used                                      |
 * |---------------------------|-------------------------------------|---------------------------------------------------------|
 * | `P layout`                | layout version, `"1"`               | written once when the tree is initialised               |
 * | `P node/<depth><path>`    | node record: data + mtime           | create rev = czxid, mod rev = mzxid, version−1 = version, lease = ephemeral session |
 * | `P meta<path>`            | JSON: ctime, mode, owner (immutable)| lease = ephemeral session                               |
 * | `P acl<path>`             | JSON ACL list                       | version−1 = aversion                                    |
 * | `P kids<path>`            | decimal "extra" child-create count  | version−1+extra = child creates (sequence counter); mod rev ∈ pzxid; absent on ephemerals |
 * | `P gone<path>`            | empty                               | mod rev = last child delete (∈ pzxid)                   |
 * | `P session/<16 hex id>`   | JSON: password, timeout             | lease = the session's lease (session id = lease id)     |
 *
 * `<depth>` is the number of path segments in decimal, so the children of
 * `/a` are exactly the keys under `P node/2/a/`.
 *
 * @module
 */

import { depthOf } from "../zk/path.ts";

/** Version of this layout, stored under `P layout`. */
export const LAYOUT_VERSION = 1;

/** Builds and parses the keys of one ZooKeeper namespace under a prefix. */
export class Keys {
  /** The namespace prefix, e.g. `/zk/`. */
  readonly prefix: string;
  readonly #node: string;

  /** Keys under `prefix` (which should end with `/`). */
  constructor(prefix: string) {
    this.prefix = prefix;
    this.#node = `${prefix}node/`;
  }

  /** Layout version marker. */
  layout(): string {
    return `${this.prefix}layout`;
  }

  /** The znode's data record (existence marker). */
  node(path: string): string {
    return `${this.#node}${depthOf(path)}${path}`;
  }

  /** Prefix of the node keys of `path`'s direct children. */
  children(path: string): string {
    return `${this.#node}${depthOf(path) + 1}${path === "/" ? "/" : `${path}/`}`;
  }

  /** Prefix of every node key. */
  allNodes(): string {
    return this.#node;
  }

  /** The path of a node key, or null if `key` is not a node key. */
  pathOfNode(key: string): string | null {
    if (!key.startsWith(this.#node)) return null;
    const slash = key.indexOf("/", this.#node.length);
    return slash < 0 ? null : key.slice(slash);
  }

  /** The znode's immutable metadata. */
  meta(path: string): string {
    return `${this.prefix}meta${path}`;
  }

  /** The znode's ACL. */
  acl(path: string): string {
    return `${this.prefix}acl${path}`;
  }

  /** The znode's child-create counter (absent on ephemerals). */
  kids(path: string): string {
    return `${this.prefix}kids${path}`;
  }

  /** The znode's last-child-delete marker. */
  gone(path: string): string {
    return `${this.prefix}gone${path}`;
  }

  /** A session record. */
  session(id: bigint): string {
    return `${this.prefix}session/${BigInt.asUintN(64, id).toString(16).padStart(16, "0")}`;
  }
}
