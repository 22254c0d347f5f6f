/**
 * What an etcd transaction is made of: keys as read, the operations of a
 * branch, compares and results, and the changes a watch delivers — the
 * vocabulary that the client (`client.ts`) and the protobuf codec
 * (`grpc/proto.ts`) share. Everything here is data; `client.ts`
 * re-exports it.
 *
 * @module
 */

/** One key as stored in etcd, with the metadata the layout relies on. */
export interface KeyValue {
  key: string;
  value: Uint8Array;
  createRevision: bigint;
  modRevision: bigint;
  /** Number of puts since the key was (re)created: 1 after its creation. */
  version: bigint;
  /** Lease the key is attached to, 0n for none. */
  lease: bigint;
}

/** A read inside a transaction: one key, or every key under a prefix. */
export interface GetOp {
  get: string;
  /** Read every key starting with `get`. */
  prefix?: boolean;
  /** With `prefix`: start at this key instead of `get` (to read a prefix in pages). */
  from?: string;
  /** Return metadata only. */
  keysOnly?: boolean;
  /** Return only the number of keys. */
  countOnly?: boolean;
  /** At most this many keys. */
  limit?: number;
  /** Sort by mod revision, newest first (with `limit: 1`: the latest change). */
  newestFirst?: boolean;
  /** Read every key from `get` up to (not including) this one. */
  end?: string;
  /** Read as of this revision (0 or absent: the latest). */
  revision?: bigint;
}

/** A write of one key. */
export interface PutOp {
  put: string;
  value?: Uint8Array;
  /** Attach to this lease. */
  lease?: bigint;
  /** Keep the key's current value (bumps its version and mod revision). */
  ignoreValue?: boolean;
  /** Keep the key's current lease. */
  ignoreLease?: boolean;
}

/** A delete of one key, or every key under a prefix. */
export interface DeleteOp {
  del: string;
  prefix?: boolean;
}

/** One operation of a transaction branch. */
export type Op = GetOp | PutOp | DeleteOp;

/** What a compare looks at: a key's create/mod revision, version or lease. */
export type CompareTarget = "create" | "mod" | "version" | "lease";

/** A precondition of a transaction: on a key's metadata, or its value's bytes. */
export type Compare = MetaCompare | ValueCompare;

/** Holds when the key's value equals `bytes` (false for a missing key). */
export interface ValueCompare {
  key: string;
  target: "value";
  op: "==";
  bytes: Uint8Array;
}

/** A compare of a key's revision, version or lease. */
export interface MetaCompare {
  key: string;
  target: CompareTarget;
  op: "==" | "!=" | ">" | "<";
  value: bigint;
  /** Compare every key under `key` as a prefix (true when there are none). */
  prefix?: boolean;
}

/** Holds while `key` does not exist (with `prefix`: while no key under it does). */
export function absent(key: string, prefix = false): MetaCompare {
  return prefix
    ? { key, target: "create", op: "==", value: 0n, prefix }
    : { key, target: "create", op: "==", value: 0n };
}

/**
 * Holds while `key` is as it was read: still at `modRevision`, or — for a
 * revision of 0n, or no key read — still absent.
 */
export function unchanged(
  key: string,
  read: { modRevision: bigint } | bigint | undefined,
): Compare {
  const at = typeof read === "bigint" ? read : read?.modRevision ?? 0n;
  return at === 0n ? absent(key) : { key, target: "mod", op: "==", value: at };
}

/** The answer to one `get` of a transaction (null for puts and deletes). */
export interface RangeResult {
  kvs: KeyValue[];
  count: number;
}

/** The outcome of a transaction. */
export interface TxnResult {
  succeeded: boolean;
  /** etcd's revision after the transaction (its own revision if it wrote). */
  revision: bigint;
  /** One entry per operation of the branch that ran. */
  results: (RangeResult | null)[];
}

/** One change seen by the watch stream. */
export interface WatchEvent {
  type: "put" | "delete";
  kv: KeyValue;
}

/** A batch of changes that etcd delivered together, all at or below `revision`. */
export interface WatchBatch {
  revision: bigint;
  events: WatchEvent[];
}
