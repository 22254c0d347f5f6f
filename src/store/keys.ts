/**
 * The etcd key layout, version 3 — the only module that builds or parses
 * keys. docs/design.md documents the same table.
 *
 * Every key starts with the configured prefix `P` (default `/zk/`). `<d>` is
 * the number of segments of the path in decimal (`/` → 0, `/a/b` → 2):
 *
 * | key                          | value                                 | etcd metadata used |
 * |------------------------------|---------------------------------------|--------------------|
 * | `P layout`                   | layout version, `3`                   | written when the namespace is initialised; a server moves an older one on at start |
 * | `P node/<d><path>`           | node record: mtime + data             | mod rev = mzxid; version − 1 (+ `vbias`) = version; lease = owning session of an ephemeral |
 * | `P attr/<d><path>/meta`      | JSON: ctime, create mode, owner       | written once per creation: mod rev = czxid; lease as the node |
 * | `P attr/<d><path>/acl`       | JSON ACL list; absent: the open ACL, never set (aversion 0) | version − 1 (+ `abias`) = aversion; lease as the node |
 * | `P attr/<d><path>/kids`      | decimal bias (usually empty)          | version − 1 + bias = children ever created (the sequence counter; a batch of creates puts it once, the rest in the bias); mod rev ∈ pzxid; absent until the first child is created (0), and on ephemerals |
 * | `P attr/<d><path>/gone`      | empty                                 | mod rev = last child delete (∈ pzxid) |
 * | `P attr/<d><path>/vbias`     | decimal                               | added to the data version (a batch of writes that sets one node's data twice or re-creates it writes it; on the node's lease) |
 * | `P attr/<d><path>/abias`     | decimal                               | added to the ACL version (a batch that sets one node's ACL twice or re-creates it writes it; on the node's lease) |
 * | `P index/container/<d><path>`, `P index/ttl/<d><path>` | empty | nodes the server deletes by itself (containers, TTL nodes); stale entries are dropped by the reaper |
 * | `P multi`                    | JSON: the ZooKeeper events of the last batch of writes, in order | mod rev = that batch's zxid; watch streams fire these instead of deriving events from the keys |
 * | `P migration`                | JSON: the source, state and counts of the last `zetcd migrate` into this prefix | lets an interrupted migration resume |
 * | `P compactor`                | the address of the server that compacts etcd's history | lease = that server's election lease; absent when none runs |
 * | `P sync`                     | empty                                 | put by ZooKeeper's sync and readiness checks: its mod rev is a point the watch stream must reach |
 * | `P session/<16 hex digits>`  | JSON: password, timeout, ephemeral lease | lease = the session's lease; session id = lease id; mod rev = the holding connection's claim |
 * | `P member/<N>`               | the client address a server advertises, `HOST:PORT` | lease = that server's member lease; N (decimal, from 1) = its `server.N` in `/zookeeper/config` |
 *
 * Version 3 keeps the facts fixed at creation in the node record (format
 * 2, see `values.ts`), so a create writes one key. Version 2 wrote them to
 * `meta` with every node, in a node record of format 1; version 1 also
 * wrote `acl` and `kids` with every node. This version reads all three as
 * they are (a `meta` key, when present, decides), and moves the marker on
 * at start; a server of an older version refuses a prefix of a newer one
 * (version 2 would not read a record of format 2, version 1 pinned `kids`
 * on every create under a node).
 *
 * The children of `/a` are exactly the keys under `P node/2/a/`, and every
 * attribute of `/a` is under `P attr/1/a/`, so a node is deleted with two
 * operations and read with three. Depth prefixes keep both ranges from
 * catching other nodes' keys.
 *
 * @module
 */

import { depthOf } from "../zk/path.ts";

/** Version of this layout, stored under `P layout`. */
export const LAYOUT_VERSION = 3;

/** The attribute keys of a node, by name. */
export type Attr = "meta" | "acl" | "kids" | "gone" | "vbias" | "abias";

/** Builds and parses the keys of one ZooKeeper namespace under a prefix. */
export class Keys {
  /** The namespace prefix, e.g. `/zk/`. */
  readonly prefix: string;
  readonly #node: string;
  readonly #attr: string;
  readonly #session: string;
  readonly #multi: string;

  /** Keys under `prefix` (which should end with `/`). */
  constructor(prefix: string) {
    this.prefix = prefix;
    this.#node = `${prefix}node/`;
    this.#attr = `${prefix}attr/`;
    this.#session = `${prefix}session/`;
    this.#multi = `${prefix}multi`;
  }

  /** Layout version marker. */
  layout(): string {
    return `${this.prefix}layout`;
  }

  /**
   * An index entry of a node the server deletes by itself: containers and
   * TTL nodes. Entries are never removed with their node; the reaper drops
   * those whose node is gone or is no longer of that kind.
   */
  index(kind: "container" | "ttl", path: string): string {
    return `${this.prefix}index/${kind}/${depthOf(path)}${path}`;
  }

  /** Prefix of every index entry of one kind. */
  indexOf(kind: "container" | "ttl"): string {
    return `${this.prefix}index/${kind}/`;
  }

  /** The path of an index entry of `kind`. */
  pathOfIndex(kind: "container" | "ttl", key: string): string | null {
    const prefix = this.indexOf(kind);
    if (!key.startsWith(prefix)) return null;
    const slash = key.indexOf("/", prefix.length);
    return slash < 0 ? null : key.slice(slash);
  }

  /** The record of the last `zetcd migrate` into this prefix. */
  migration(): string {
    return `${this.prefix}migration`;
  }

  /** The election of the server that compacts etcd's history. */
  compactor(): string {
    return `${this.prefix}compactor`;
  }

  /** Written by ZooKeeper's sync: its revision is a point the watch stream must reach. */
  syncMark(): string {
    return `${this.prefix}sync`;
  }

  /** The events of the latest multi (see `values.ts` encodeEvents). */
  multiLog(): string {
    return this.#multi;
  }

  /** The znode's record (also its existence marker). */
  node(path: string): string {
    return `${this.#node}${depthOf(path)}${path}`;
  }

  /** Prefix of every node key (followed by a depth, then a path). */
  nodePrefix(): string {
    return this.#node;
  }

  /** Prefix of the node keys of `path`'s direct children. */
  children(path: string): string {
    return `${this.#node}${depthOf(path) + 1}${path === "/" ? "/" : `${path}/`}`;
  }

  /** The path of a node key, or null if `key` is not a node key. */
  pathOfNode(key: string): string | null {
    if (!key.startsWith(this.#node)) return null;
    const slash = key.indexOf("/", this.#node.length);
    return slash < 0 ? null : key.slice(slash);
  }

  /** Prefix of every attribute key of `path`. */
  attrs(path: string): string {
    return `${this.#attr}${depthOf(path)}${path}/`;
  }

  /** One attribute key of `path`. */
  attr(path: string, name: Attr): string {
    return `${this.attrs(path)}${name}`;
  }

  /** The attribute name of a key under {@link attrs}. */
  attrName(key: string): string {
    return key.slice(key.lastIndexOf("/") + 1);
  }

  /** The member key of server number `id` (its `server.N` in `/zookeeper/config`). */
  member(id: number): string {
    return `${this.prefix}member/${id}`;
  }

  /** Prefix of every member key. */
  memberPrefix(): string {
    return `${this.prefix}member/`;
  }

  /** The server number of a member key, or null if `key` is not one. */
  memberOf(key: string): number | null {
    const prefix = this.memberPrefix();
    if (!key.startsWith(prefix)) return null;
    const id = key.slice(prefix.length);
    return /^[1-9]\d{0,9}$/.test(id) ? Number(id) : null;
  }

  /** A session record. */
  session(id: bigint): string {
    return `${this.#session}${BigInt.asUintN(64, id).toString(16).padStart(16, "0")}`;
  }

  /** The session id of a session key, or null if `key` is not one. */
  sessionOf(key: string): bigint | null {
    if (!key.startsWith(this.#session)) return null;
    const hex = key.slice(this.#session.length);
    return /^[0-9a-f]{16}$/.test(hex) ? BigInt.asIntN(64, BigInt(`0x${hex}`)) : null;
  }
}
