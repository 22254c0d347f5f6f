/**
 * What a znode is made of in etcd: its snapshot as read (data, ACL, Stat
 * and the keys a write pins), and the operations that create or delete its
 * keys (the layout is `keys.ts`'s table).
 *
 * @module
 */

import { CreateFlag } from "../zk/constants.ts";
import type { ACL, Stat } from "../zk/records.ts";
import type { KeyValue, Op } from "../etcd/client.ts";
import type { Keys } from "./keys.ts";
import { OPEN_ACL } from "../zk/acl.ts";
import { encodeAcl, encodeNode, type MetaValue } from "./values.ts";

/** A znode as read at one revision. */
export interface NodeSnapshot {
  path: string;
  data: Uint8Array | null;
  acl: ACL[];
  stat: Stat;
  /** The create flags it was made with. */
  mode: number;
  /** Time to live of a TTL node, ms. */
  ttl?: bigint;
  /** Children ever created (the sequence counter). */
  creates: number;
  /** The etcd keys that multi compares against (and `meta`, where one is kept). */
  kvs: { node: KeyValue; kids?: KeyValue; gone?: KeyValue; acl?: KeyValue; meta?: KeyValue };
}

/** The facts a node was created with, which every rewrite of its record carries on. */
export function metaOf(s: NodeSnapshot): MetaValue {
  const meta: MetaValue = { ctime: s.stat.ctime, mode: s.mode, owner: s.stat.ephemeralOwner };
  if (s.ttl !== undefined) meta.ttl = s.ttl;
  return meta;
}

/** What a Stat is made from: the counters and times kept of a node; zxids of type `Z`. */
export interface StatParts<Z> {
  czxid: Z;
  mzxid: Z;
  pzxid: Z;
  ctime: bigint;
  mtime: bigint;
  version: number;
  aversion: number;
  /** Children ever created (the sequence counter). */
  creates: number;
  numChildren: number;
  /** Owning session of an ephemeral, else 0n. */
  owner: bigint;
  data: Uint8Array | null;
}

/** A Stat whose zxids are of type `Z` (a pending write's may be null: its own, not known yet). */
export type StatOf<Z> = Omit<Stat, "czxid" | "mzxid" | "pzxid"> & { czxid: Z; mzxid: Z; pzxid: Z };

/**
 * The one place a Stat is built: cversion counts every child created and
 * deleted (creates + (creates − numChildren)), as ZooKeeper's does.
 */
export function statFrom<Z>(n: StatParts<Z>): StatOf<Z> {
  return {
    czxid: n.czxid,
    mzxid: n.mzxid,
    ctime: n.ctime,
    mtime: n.mtime,
    version: n.version | 0,
    cversion: (2 * n.creates - n.numChildren) | 0,
    aversion: n.aversion | 0,
    ephemeralOwner: n.owner,
    dataLength: n.data?.byteLength ?? 0,
    numChildren: n.numChildren,
    pzxid: n.pzxid,
  };
}

/** The operations that delete a node: its record and every attribute. */
export function nodeDeletes(keys: Keys, path: string): Op[] {
  return [{ del: keys.node(path) }, { del: keys.attrs(path), prefix: true }];
}

/** What a new node is made of. */
export interface NewNode {
  path: string;
  data: Uint8Array | null;
  acl: ACL[];
  /** Create flags. */
  mode: number;
  /** Owning session of an ephemeral, else 0n. */
  owner: bigint;
  /** Lease of an ephemeral's keys, else 0n. */
  lease: bigint;
  /** ctime (and mtime unless `mtime` is given), ms. */
  now: bigint;
  /** Last modification time, ms, when it differs from `now` (migration). */
  mtime?: bigint;
  /** Children created under it in the same transaction (multi), or ever (migration). */
  childCreates?: number;
  /** Starting data and ACL versions: the source's (migration), or writes in the same batch. */
  version?: number;
  aversion?: number;
  /** Time to live of a TTL node, ms. */
  ttl?: bigint;
}

/** Whether `acl` is the open ACL (world:anyone, every permission). */
function isOpen(acl: ACL[]): boolean {
  const [open] = OPEN_ACL;
  return acl.length === 1 && acl[0].perms === open.perms &&
    acl[0].id.scheme === open.id.scheme && acl[0].id.id === open.id.id;
}

/**
 * The puts that create a node (its parent's counter is the caller's). Keys
 * that would hold their defaults are left out, and read as those defaults:
 * no `acl` key for the open ACL never set, no `kids` key before the first
 * child — most creates write the node record alone, which carries the
 * facts fixed at creation and whose create revision is the czxid.
 */
export function nodeWrites(keys: Keys, n: NewNode): Op[] {
  const lease = n.lease;
  const ops: Op[] = [
    {
      put: keys.node(n.path),
      value: encodeNode({
        data: n.data,
        mtime: n.mtime ?? n.now,
        meta: { ctime: n.now, mode: n.mode, owner: n.owner, ttl: n.ttl },
      }),
      lease,
    },
  ];
  if (n.aversion || !isOpen(n.acl)) {
    ops.push({ put: keys.attr(n.path, "acl"), value: encodeAcl(n.acl), lease });
  }
  if (n.version) {
    ops.push({ put: keys.attr(n.path, "vbias"), value: biasFor(n.version, 1n), lease });
  }
  if (n.aversion) {
    ops.push({ put: keys.attr(n.path, "abias"), value: biasFor(n.aversion, 1n), lease });
  }
  if (n.mode === CreateFlag.CONTAINER) ops.push({ put: keys.index("container", n.path) });
  if (n.ttl !== undefined) ops.push({ put: keys.index("ttl", n.path) });
  if (n.owner === 0n && n.childCreates) {
    // Children created in the same transaction: the key's first put counts
    // as none, its bias counts them.
    ops.push({ put: keys.attr(n.path, "kids"), value: biasFor(n.childCreates, 1n) });
  }
  return ops;
}

/*
 * Counters kept as an etcd key's version plus a bias key (see `keys.ts`):
 * a data version (`node` + `vbias`), an ACL version (`acl` + `abias`), the
 * children a parent ever had (`kids` + its own value). A put moves a key's
 * version by one; the bias holds the rest. These two functions are the
 * only place that arithmetic is written.
 */

/** The counter that a key at etcd `version` (1 after its first put) and `bias` stand for. */
export function counterOf(version: bigint, bias: number): number {
  return Number(version) - 1 + bias;
}

/** The bias value that makes a key at etcd version `versionAfter` stand for `count`. */
export function biasFor(count: number, versionAfter: bigint): Uint8Array {
  return biasValue(count - counterOf(versionAfter, 0));
}

/** A bias value: empty for 0, else the decimal number. */
function biasValue(n: number): Uint8Array {
  return new TextEncoder().encode(n === 0 ? "" : String(n));
}
