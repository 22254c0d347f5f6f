/**
 * Committing a draft: the one etcd transaction that writes the final state
 * of every node a batch of writes touched, guarded by compares that pin
 * every node as it was read — so the batch, error answers included, holds
 * only if nothing it read changed meanwhile.
 *
 * Counters live as an etcd version plus a bias (see `keys.ts`):
 * one put moves a key's version by one, so a node written several times in
 * one transaction, or a parent given several children, gets the rest in
 * its bias key.
 *
 * @module
 */

import { CreateFlag } from "../zk/constants.ts";
import { type Compare, type Op, unchanged } from "../etcd/client.ts";
import type { Keys } from "./keys.ts";
import { biasFor, metaOf, nodeDeletes, type NodeSnapshot, nodeWrites } from "./nodes.ts";
import { encodeAcl, encodeMeta, encodeNode } from "./values.ts";
import type { Live } from "./changes.ts";

/** The compares pinning what was read, and the writes of the final state. */
export function transaction(
  k: Keys,
  nodes: Map<string, Live>,
  now: bigint,
): { compare: Compare[]; success: Op[] } {
  const compare: Compare[] = [];
  const success: Op[] = [];
  const pin = (key: string, kv: { modRevision: bigint } | undefined) =>
    compare.push(unchanged(key, kv));
  for (const [path, n] of nodes) {
    const base = n.base;
    pin(k.node(path), base?.kvs.node);
    // Creates under a parent rely on it taking children (not ephemeral):
    // its node is pinned. More than one create there sets the counter's
    // bias from its value, and the first ever makes the counter: pinned.
    if (base && (n.childCreates > 1 || (n.childCreates > 0 && !base.kvs.kids))) {
      n.pins.add("kids");
    }
    if (base) {
      for (const attr of n.pins) pin(k.attr(path, attr), base.kvs[attr]);
    }
    if (base && !n.exists) {
      // No compare on the children themselves: those deleted by this batch
      // still exist before it; a new child would have moved the kids pin.
      success.push(...nodeDeletes(k, path));
      continue;
    }
    if (!base && n.exists) {
      const lease = n.lease ?? 0n;
      success.push(...nodeWrites(k, {
        path,
        data: n.data,
        acl: n.acl,
        mode: n.mode,
        owner: n.owner,
        lease,
        now,
        childCreates: n.childCreates,
        ttl: n.ttl,
        // Data and ACL set again after the create, in this batch.
        version: n.dataWrites,
        aversion: n.aclWrites,
      }));
    } else if (base && n.exists && n.recreated) {
      success.push(...recreation(k, path, base, n, now));
      continue;
    } else if (base && n.exists) {
      success.push(...rewrites(k, path, base, n));
    } else {
      continue; // created and deleted again within this batch, or never there
    }
    if (n.childDeletes > 0) success.push({ put: k.attr(path, "gone") });
  }
  return { compare, success };
}

/** The writes of a node that existed and still does: its data, ACL and counters. */
function rewrites(k: Keys, path: string, base: NodeSnapshot, n: Live): Op[] {
  const ops: Op[] = [];
  const lease = base.kvs.node.lease;
  if (n.dataWrites > 0) {
    ops.push({
      put: k.node(path),
      value: encodeNode({ data: n.data, mtime: n.mtime, meta: metaOf(base) }),
      ignoreLease: true,
    });
  }
  if (n.dataWrites > 1) {
    // One put bumps etcd's version once; the bias holds the rest.
    const value = biasFor(base.stat.version + n.dataWrites, base.kvs.node.version + 1n);
    ops.push({ put: k.attr(path, "vbias"), value, lease });
  }
  if (n.aclWrites > 0) {
    // A node without an ACL key (the open ACL, never set) gets one on its lease.
    const value = encodeAcl(n.acl);
    ops.push(
      base.kvs.acl
        ? { put: k.attr(path, "acl"), value, ignoreLease: true }
        : { put: k.attr(path, "acl"), value, lease },
    );
    // As for the data: the put counts one write, the bias the others (and
    // all of them for a key the put makes). The ACL is pinned (the
    // permission check read it), and its bias changes only with it.
    const before = base.kvs.acl?.version;
    if (n.aclWrites > 1 || before === undefined) {
      const value = biasFor(base.stat.aversion + n.aclWrites, (before ?? 0n) + 1n);
      ops.push({ put: k.attr(path, "abias"), value, lease });
    }
  }
  if (n.childCreates === 1 && !n.pins.has("kids")) {
    // One more create: the counter's next version counts it.
    ops.push({ put: k.attr(path, "kids"), ignoreValue: true });
  } else if (n.childCreates > 0) {
    const value = biasFor(base.creates + n.childCreates, (base.kvs.kids?.version ?? 0n) + 1n);
    ops.push({ put: k.attr(path, "kids"), value });
  }
  return ops;
}

/**
 * The writes that delete and create a node again within one transaction.
 * etcd refuses a put and a delete of one key in one transaction, so the
 * keys are overwritten instead, and the biases cancel the versions the old
 * node had counted: the node key keeps its create revision, so `meta` is
 * written too (its mod revision is the czxid), `vbias`/`abias`
 * bring the data and ACL versions back to this batch's count, the `kids`
 * bias the sequence counter.
 */
function recreation(k: Keys, path: string, base: NodeSnapshot, n: Live, now: bigint): Op[] {
  const lease = n.lease ?? 0n;
  const meta = { ctime: now, mode: n.mode, owner: n.owner, ttl: n.ttl };
  const ops: Op[] = [
    { put: k.node(path), value: encodeNode({ data: n.data, mtime: now, meta }), lease },
    { put: k.attr(path, "meta"), value: encodeMeta(meta), lease },
    { put: k.attr(path, "acl"), value: encodeAcl(n.acl), lease },
    {
      put: k.attr(path, "vbias"),
      value: biasFor(n.dataWrites, base.kvs.node.version + 1n),
      lease,
    },
    {
      put: k.attr(path, "abias"),
      value: biasFor(n.aclWrites, (base.kvs.acl?.version ?? 0n) + 1n),
      lease,
    },
  ];
  if (n.mode === CreateFlag.CONTAINER) ops.push({ put: k.index("container", path) });
  if (n.ttl !== undefined) ops.push({ put: k.index("ttl", path) });
  if (n.owner === 0n) {
    const value = biasFor(n.childCreates, (base.kvs.kids?.version ?? 0n) + 1n);
    ops.push({ put: k.attr(path, "kids"), value });
  } else if (base.kvs.kids) {
    ops.push({ del: k.attr(path, "kids") });
  }
  if (n.childDeletes > 0) ops.push({ put: k.attr(path, "gone") });
  else if (base.kvs.gone) ops.push({ del: k.attr(path, "gone") });
  return ops;
}
