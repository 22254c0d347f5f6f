/**
 * One handler per opcode: each decodes its request record, translates it
 * into data-tree operations, and encodes its response record. This table is
 * the only place an opcode is interpreted; an opcode missing from it is
 * answered `UNIMPLEMENTED` by the connection.
 *
 * @module
 */

import type { EtcdTree } from "../store/tree.ts";
import type { NodeSnapshot } from "../store/nodes.ts";
import type { WriteOp } from "../store/changes.ts";
import type { Done, WriteOutcome, WritePipeline } from "../store/pipeline.ts";
import { JuteWriter } from "../jute/writer.ts";
import type { JuteReader } from "../jute/reader.ts";
import { encode, type JuteType } from "../jute/schema.ts";
import type { Session } from "./sessions.ts";
import type { WatchHub, WatchSink, WatchTable } from "./watches.ts";
import { authenticate, fixupACL, permitted, type Principal } from "../zk/acl.ts";
import { type DigestMd5Exchange, SaslError } from "./sasl.ts";
import { Code, CreateFlag, EventType, OpCode, Perms } from "../zk/constants.ts";
import { Errors, ZkError } from "../zk/errors.ts";
import {
  isRead,
  readMultiRequest,
  type SubRequest,
  type SubResult,
  writeMultiResponse,
} from "../zk/multi.ts";
import { invalidPathReason, SYSTEM_PATHS } from "../zk/path.ts";
import { PROTOCOL } from "../zk/protocol.ts";
import * as R from "../zk/records.ts";
import { ephemeralPaths } from "../store/reapers.ts";

/** The decoded type of record `K`. */
type Req<K extends keyof typeof R> = (typeof R)[K] extends JuteType<infer T> ? T : never;

/** What a handler may use while serving one request. */
export interface RequestContext {
  tree: EtcdTree;
  /** The write pipeline every write goes through. */
  writes: WritePipeline;
  session: Session;
  watches: WatchHub;
  /** Where this connection's notifications go. */
  sink: WatchSink;
  /** Ends the session: deletes its ephemerals and revokes its lease. */
  closeSession(): Promise<bigint>;
  /** Who is asking: the session's identities and the client's address. */
  who(): Principal;
  /** `user:base64(sha1(user:password))` of the super user, if configured. */
  superDigest?: string;
  /** Whether TTL nodes are allowed (ZooKeeper's extendedTypesEnabled). */
  extendedTypes: boolean;
  /** This connection's SASL DIGEST-MD5 exchange; absent when SASL is off. */
  sasl?: DigestMd5Exchange;
}

/** A handler's answer: the reply header's zxid and the response body, if any. */
export interface Reply {
  zxid: bigint;
  body?: Uint8Array;
  /** Error code for the header (default 0); the body, if any, still follows (failed SASL). */
  err?: number;
  /** Close the connection after sending this reply. */
  close?: boolean;
  /** Why the request failed, for the log line of a closing error reply (never a secret). */
  reason?: string;
}

/** Serves one opcode. */
export interface OpHandler {
  /** Reads the request from `r` (positioned after the header) and answers it. */
  run(ctx: RequestContext, r: JuteReader): Promise<Reply>;
  /**
   * A write: it goes through the write pipeline, queued before `run`'s
   * first await, so it may start while the session's earlier writes are
   * still in flight (their order is the pipeline's). Anything else starts
   * once every earlier request of the session is answered.
   */
  write: boolean;
}

/**
 * A handler for `code`: its request is decoded with the record the protocol
 * table lists for that opcode.
 */
function op<T>(
  code: number,
  run: (ctx: RequestContext, req: T, r: JuteReader) => Promise<Reply>,
  write = false,
): [number, OpHandler] {
  const request = PROTOCOL.get(code)?.request ?? null;
  return [code, {
    run: (ctx, r) => run(ctx, (request ? request.read(r) : undefined) as T, r),
    write,
  }];
}

/** A handler for a write (see {@link OpHandler.write}). */
function writeOp<T>(
  code: number,
  run: (ctx: RequestContext, req: T, r: JuteReader) => Promise<Reply>,
): [number, OpHandler] {
  return op(code, run, true);
}

function reply<T>(zxid: bigint, type: JuteType<T>, value: T): Reply {
  return { zxid, body: encode(type, value) };
}

/**
 * Full path validation, as ZooKeeper applies it to setData and setACL:
 * BadArguments for an invalid path.
 */
function checkPath(path: string | null): string {
  const reason = invalidPathReason(path);
  if (reason !== null) throw Errors.badArguments(path ?? "", reason);
  return path!;
}

/**
 * The only check ZooKeeper makes before looking a create or delete path up:
 * it must contain a `/` and no NUL. Anything else wrong with it shows as
 * NoNode (its parent cannot exist) or, for create, BadArguments later.
 */
function checkSlash(path: string | null): string {
  if (path === null || !path.includes("/") || path.includes("\0")) {
    throw Errors.badArguments(path ?? "", "path needs a / and no NUL");
  }
  return path;
}

/**
 * Reads do no validation in ZooKeeper: a path that cannot exist is simply
 * not found.
 */
function readPath(path: string | null): string {
  if (path === null) throw Errors.badArguments("", "null path");
  return path;
}

/** What a read asks for besides the node itself. */
interface ReadOptions {
  /** Also list the children. */
  children?: boolean;
  /** Set a watch in this table. */
  watch?: WatchTable | false;
  /** Set the watch even if the node is missing (exists). */
  watchMissing?: boolean;
  /** Permission bits needed (any of them), checked once the node is found. */
  perm?: number;
}

/**
 * Holds a reply until the watch stream has delivered revision `revision`
 * (the change it reflects or made), and records that the session has seen
 * it: the session's later reads may come from the replica only once it has
 * reached that revision.
 */
async function settle(ctx: RequestContext, revision: bigint): Promise<void> {
  await ctx.tree.clock.reached(revision);
  ctx.session.saw(revision);
}

/**
 * Reads a node, sets the watch the request asks for, then holds the answer
 * until the notifications of every change it reflects have gone out (a
 * client must see an event before data that reflects it). NoNode when the
 * node is missing.
 */
async function read(
  ctx: RequestContext,
  path: string | null,
  opts: ReadOptions = {},
): Promise<{ zxid: bigint; node: NodeSnapshot; children: string[] }> {
  const p = readPath(path);
  const out = await ctx.tree.get(p, opts.children, { atLeast: ctx.session.seenZxid });
  const error = !out.node
    ? Errors.noNode(p)
    : opts.perm && !permitted(out.node.acl, opts.perm, ctx.who())
    ? new ZkError(Code.NOAUTH, p)
    : null;
  // A refused read leaves no watch; a missing node does for exists.
  if (opts.watch && (error === null || (!out.node && opts.watchMissing))) {
    ctx.watches.add(opts.watch, p, ctx.sink, out.zxid, !out.node);
  }
  await settle(ctx, out.seen);
  if (error) throw error;
  return { zxid: out.zxid, node: out.node!, children: out.children };
}

/** A create request that passed the checks needing no tree. */
interface PreparedCreate {
  path: string;
  data: Uint8Array | null;
  acl: R.ACL[];
  flags: number;
  ttl?: bigint;
  owner: bigint;
  lease: bigint;
}

/** Largest TTL ZooKeeper accepts: 2^40 − 1 ms. */
const MAX_TTL = (1n << 40n) - 1n;

/**
 * The checks of a create that come before ZooKeeper looks at the tree, in
 * its order: create mode against the opcode, TTL, path shape, ACL.
 * createContainer (19) always makes a container.
 */
function prepareCreate(
  ctx: RequestContext,
  opcode: number,
  req: R.CreateRequestT & { ttl?: bigint },
): PreparedCreate {
  let flags = req.flags;
  const ttlMode = flags === CreateFlag.PERSISTENT_WITH_TTL ||
    flags === CreateFlag.PERSISTENT_SEQUENTIAL_WITH_TTL;
  if (opcode === OpCode.createTTL) {
    if (!ctx.extendedTypes) throw Errors.unimplemented("TTL nodes (extended types are off)");
    if (!ttlMode) throw Errors.badArguments(req.path ?? "", `create mode ${flags} with a TTL`);
    const ttl = req.ttl ?? 0n;
    if (ttl <= 0n || ttl > MAX_TTL) throw Errors.badArguments(req.path ?? "", `TTL ${ttl}`);
  } else if (ttlMode) {
    throw Errors.badArguments(req.path ?? "", "TTL modes need createTTL");
  } else if (opcode === OpCode.createContainer) {
    flags = CreateFlag.CONTAINER;
  } else if (flags < 0 || flags > CreateFlag.CONTAINER) {
    throw Errors.badArguments(req.path ?? "", `unknown create flags ${flags}`);
  }
  const path = checkSlash(req.path);
  const acl = fixupACL(path, req.acl, ctx.session.authIds);
  const ephemeral = flags === CreateFlag.EPHEMERAL || flags === CreateFlag.EPHEMERAL_SEQUENTIAL;
  return {
    path,
    data: req.data,
    acl,
    flags,
    ttl: ttlMode ? req.ttl : undefined,
    owner: ephemeral ? ctx.session.id : 0n,
    lease: ephemeral ? ctx.session.ephemeralLease : 0n,
  };
}

/**
 * Runs a write through the write pipeline, and holds the answer until the
 * watch stream has delivered what it wrote (its events go out first, and
 * the session reads it back). It is queued before this returns its first
 * promise, so a session's writes keep their order.
 */
async function write(ctx: RequestContext, ops: WriteOp[]): Promise<WriteOutcome> {
  const out = await ctx.writes.submit({
    ops,
    writer: ctx.session,
    who: ctx.who(),
    validate: invalidPathReason,
    atLeast: ctx.session.seenZxid,
  });
  if (out.wrote) await settle(ctx, out.zxid);
  return out;
}

/** The Stat a setData or setACL answers with. */
function statOf(done: Done): R.Stat {
  if (!("stat" in done)) throw new Error(`${done.kind} has no Stat`);
  return done.stat;
}

/** A write of one operation: its result, or its error thrown. */
async function writeOne(ctx: RequestContext, op: WriteOp): Promise<{ zxid: bigint; done: Done }> {
  const out = await write(ctx, [op]);
  if (out.failed) throw out.failed.error;
  return { zxid: out.zxid, done: out.results![0] };
}

async function create(
  ctx: RequestContext,
  opcode: number,
  req: R.CreateRequestT & { ttl?: bigint },
): Promise<{ zxid: bigint; path: string; stat: R.Stat }> {
  const c = prepareCreate(ctx, opcode, req);
  if ((c.flags & 2) === 0 && c.path === "/") throw Errors.nodeExists("/");
  const { zxid, done } = await writeOne(ctx, { kind: "create", opcode, ...c });
  if (done.kind !== "create") throw new Error(`a create answered ${done.kind}`);
  return { zxid, path: done.path, stat: done.stat };
}

/** The path of a delete: ZooKeeper's slash check, and system nodes are off limits. */
function deletePath(path: string | null): string {
  const p = checkSlash(path);
  if (SYSTEM_PATHS.includes(p)) throw Errors.badArguments(p, "cannot delete a system node");
  return p;
}

/** Turns a decoded sub-request into a multi's operation, or the error it fails with. */
function multiOp(ctx: RequestContext, sub: SubRequest): WriteOp {
  try {
    switch (sub.type) {
      case OpCode.create:
      case OpCode.create2:
      case OpCode.createContainer:
      case OpCode.createTTL: {
        return { kind: "create", opcode: sub.type, ...prepareCreate(ctx, sub.type, sub.req) };
      }
      case OpCode.delete:
        return { kind: "delete", path: deletePath(sub.req.path), version: sub.req.version };
      case OpCode.setData:
        return {
          kind: "setData",
          path: checkPath(sub.req.path),
          data: sub.req.data,
          version: sub.req.version,
        };
      case OpCode.check:
        return { kind: "check", path: checkPath(sub.req.path), version: sub.req.version };
      default:
        throw new ZkError(Code.MARSHALLINGERROR, sub.req.path ?? "", "a read in a multi");
    }
  } catch (err) {
    if (err instanceof ZkError) return { kind: "invalid", error: err };
    throw err;
  }
}

/**
 * The result of one operation of a successful multi, as ZooKeeper 3.8
 * encodes it: create and create2 sub-operations answer with the path only,
 * container and TTL creates with path and Stat.
 */
function subResult(op: WriteOp, done: Done): SubResult {
  switch (done.kind) {
    case "create":
      return op.kind === "create" && (op.opcode === OpCode.create || op.opcode === OpCode.create2)
        ? { type: OpCode.create, path: done.path }
        : { type: OpCode.create2, path: done.path, stat: done.stat };
    case "delete":
      return { type: OpCode.delete };
    case "setData":
      return { type: OpCode.setData, stat: done.stat };
    case "check":
      return { type: OpCode.check };
    case "setACL":
      throw new Error("setACL is no operation of a multi");
  }
}

/**
 * The results of a failed multi: the failing operation carries its code,
 * earlier ones 0 and later ones RuntimeInconsistency — as ZooKeeper answers.
 */
function failedResults(count: number, index: number, code: number): SubResult[] {
  return Array.from({ length: count }, (_, i) => ({
    type: -1,
    err: i < index ? 0 : i === index ? code : Code.RUNTIMEINCONSISTENCY,
  }));
}

/**
 * SetWatches after a reconnect: for each path, compare the node's current
 * state with the client's last zxid — fire at once what it missed, watch
 * the rest. Needs no etcd history, so it works after compaction.
 */
async function setWatches(
  ctx: RequestContext,
  req: {
    relativeZxid: bigint;
    dataWatches: (string | null)[];
    existWatches: (string | null)[];
    childWatches: (string | null)[];
  },
): Promise<Reply> {
  const rel = req.relativeZxid;
  const asked = [
    ...req.dataWatches.map((path) => ({ kind: "data", path })),
    ...req.existWatches.map((path) => ({ kind: "exist", path })),
    ...req.childWatches.map((path) => ({ kind: "child", path })),
  ].filter((w): w is { kind: string; path: string } =>
    w.path !== null && invalidPathReason(w.path) === null
  );
  const read = await ctx.tree.getMany(asked.map((w) => w.path), {
    atLeast: ctx.session.seenZxid,
  });
  asked.forEach(({ kind, path }, i) => {
    const node = read.nodes[i];
    const fire = (type: EventType) => ctx.sink.notify(type, path);
    const watch = (table: WatchTable, missing = false) =>
      ctx.watches.add(table, path, ctx.sink, read.zxid, missing);
    if (kind === "data") {
      if (!node) fire(EventType.NodeDeleted);
      else if (node.stat.mzxid > rel) fire(EventType.NodeDataChanged);
      else watch("data");
    } else if (kind === "exist") {
      if (node) fire(EventType.NodeCreated);
      else watch("data", true);
    } else {
      if (!node) fire(EventType.NodeDeleted);
      else if (node.stat.pzxid > rel) fire(EventType.NodeChildrenChanged);
      else watch("child");
    }
  });
  return { zxid: read.zxid };
}

/** The watch tables each WatcherType (checkWatches, removeWatches) covers. */
const WATCHER_TYPES: Record<number, WatchTable[]> = {
  1: ["child", "persistentChild", "recursiveChild"],
  2: ["data", "persistentData", "recursiveData"],
  3: ["data", "child", "persistentData", "persistentChild", "recursiveData", "recursiveChild"],
};

/** The two tables an addWatch mode registers in. */
const WATCH_MODES: Record<number, [WatchTable, WatchTable]> = {
  0: ["persistentData", "persistentChild"],
  1: ["recursiveData", "recursiveChild"],
};

/**
 * checkWatches and removeWatches: whether this connection has a watch of
 * `type` on `path` (NoWatcher if not), removing it for removeWatches.
 */
function matchWatches(
  ctx: RequestContext,
  req: { path: string | null; type: number },
  remove: boolean,
): Reply {
  const tables = WATCHER_TYPES[req.type];
  if (!tables) throw new ZkError(Code.MARSHALLINGERROR, req.path ?? "", `watcher type ${req.type}`);
  const path = readPath(req.path);
  let found = false;
  for (const table of tables) {
    found = (remove
      ? ctx.watches.remove(table, path, ctx.sink)
      : ctx.watches.has(table, path, ctx.sink)) ||
      found;
  }
  if (!found) throw new ZkError(Code.NOWATCHER, path);
  return { zxid: ctx.tree.clock.revision };
}

/** A digest entry with its password hash replaced by `x`. */
function maskDigest(entry: R.ACL): R.ACL {
  if (entry.id.scheme !== "digest" || !entry.id.id) return entry;
  const user = entry.id.id.slice(0, entry.id.id.indexOf(":"));
  return { perms: entry.perms, id: { scheme: "digest", id: `${user}:x` } };
}

/** The handler of every implemented opcode. */
export const HANDLERS: ReadonlyMap<number, OpHandler> = new Map<number, OpHandler>([
  writeOp<Req<"CreateRequest">>(OpCode.create, async (ctx, req) => {
    const out = await create(ctx, OpCode.create, req);
    return reply(out.zxid, R.CreateResponse, { path: out.path });
  }),
  ...[OpCode.create2, OpCode.createContainer, OpCode.createTTL].map((code) =>
    writeOp<Req<"CreateTTLRequest">>(code, async (ctx, req) => {
      const out = await create(ctx, code, req);
      return reply(out.zxid, R.Create2Response, { path: out.path, stat: out.stat });
    })
  ),
  writeOp<Req<"DeleteRequest">>(OpCode.delete, async (ctx, req) => {
    const path = deletePath(req.path);
    const { zxid } = await writeOne(ctx, { kind: "delete", path, version: req.version });
    return { zxid };
  }),
  op<Req<"ExistsRequest">>(OpCode.exists, async (ctx, req) => {
    const { zxid, node } = await read(ctx, req.path, {
      watch: req.watch && "data",
      watchMissing: true,
    });
    return reply(zxid, R.ExistsResponse, { stat: node.stat });
  }),
  op<Req<"GetDataRequest">>(OpCode.getData, async (ctx, req) => {
    const { zxid, node } = await read(ctx, req.path, {
      watch: req.watch && "data",
      perm: Perms.READ,
    });
    return reply(zxid, R.GetDataResponse, { data: node.data, stat: node.stat });
  }),
  writeOp<Req<"SetDataRequest">>(OpCode.setData, async (ctx, req) => {
    const path = checkPath(req.path);
    const { zxid, done } = await writeOne(ctx, {
      kind: "setData",
      path,
      data: req.data,
      version: req.version,
    });
    return reply(zxid, R.SetDataResponse, { stat: statOf(done) });
  }),
  op<Req<"GetACLRequest">>(OpCode.getACL, async (ctx, req) => {
    const { zxid, node } = await read(ctx, req.path, { perm: Perms.READ | Perms.ADMIN });
    // As ZooKeeper, digest hashes are shown only to those with ADMIN.
    const acl = permitted(node.acl, Perms.ADMIN, ctx.who()) ? node.acl : node.acl.map(maskDigest);
    return reply(zxid, R.GetACLResponse, { acl, stat: node.stat });
  }),
  writeOp<Req<"SetACLRequest">>(OpCode.setACL, async (ctx, req) => {
    const path = checkPath(req.path);
    const acl = fixupACL(path, req.acl, ctx.session.authIds);
    // No watch fires on an ACL change, but the answer waits for the
    // replica to show it (reads come from it).
    const { zxid, done } = await writeOne(ctx, { kind: "setACL", path, acl, version: req.version });
    return reply(zxid, R.SetACLResponse, { stat: statOf(done) });
  }),
  op<Req<"GetChildrenRequest">>(OpCode.getChildren, async (ctx, req) => {
    const out = await read(ctx, req.path, {
      children: true,
      watch: req.watch && "child",
      perm: Perms.READ,
    });
    return reply(out.zxid, R.GetChildrenResponse, { children: out.children });
  }),
  op<Req<"GetChildren2Request">>(OpCode.getChildren2, async (ctx, req) => {
    const out = await read(ctx, req.path, {
      children: true,
      watch: req.watch && "child",
      perm: Perms.READ,
    });
    return reply(out.zxid, R.GetChildren2Response, {
      children: out.children,
      stat: out.node.stat,
    });
  }),
  op<Req<"SyncRequest">>(OpCode.sync, async (ctx, req) => {
    const path = readPath(req.path);
    const { zxid, seen } = await ctx.tree.sync();
    await settle(ctx, seen);
    return reply(zxid, R.SyncResponse, { path });
  }),
  op<Req<"CheckVersionRequest">>(OpCode.check, async (ctx, req) => {
    const { zxid, node } = await read(ctx, req.path, { perm: Perms.READ });
    if (req.version !== -1 && node.stat.version !== req.version) {
      throw Errors.badVersion(node.path);
    }
    return { zxid };
  }),
  writeOp<void>(OpCode.multi, async (ctx, _req, r) => {
    const subs = readMultiRequest(r);
    // ZooKeeper refuses reads in a multi (and writes in a multiRead) as a marshalling error.
    if (subs.some(isRead)) throw new ZkError(Code.MARSHALLINGERROR);
    const ops = subs.map((sub) => multiOp(ctx, sub));
    const out = ops.length === 0 ? null : await write(ctx, ops);
    const results = !out
      ? []
      : out.failed
      ? failedResults(ops.length, out.failed.index, out.failed.error.code)
      : out.results!.map((done, i) => subResult(ops[i], done));
    const w = new JuteWriter();
    writeMultiResponse(w, results);
    return { zxid: out?.zxid || ctx.tree.clock.revision, body: w.bytes() };
  }),
  op<void>(OpCode.multiRead, async (ctx, _req, r) => {
    const subs = readMultiRequest(r);
    if (!subs.every(isRead)) throw new ZkError(Code.MARSHALLINGERROR);
    // Not atomic, as in ZooKeeper: each read stands alone; watch flags are ignored.
    const results: SubResult[] = [];
    let zxid = ctx.tree.clock.revision;
    for (const sub of subs) {
      try {
        const children = sub.type === OpCode.getChildren;
        const out = await read(ctx, sub.req.path, { children, perm: Perms.READ });
        results.push(
          children
            ? { type: 8, children: out.children }
            : { type: 4, data: out.node.data, stat: out.node.stat },
        );
        zxid = out.zxid;
      } catch (err) {
        if (!(err instanceof ZkError)) throw err;
        results.push({ type: -1, err: err.code });
      }
    }
    const w = new JuteWriter();
    writeMultiResponse(w, results);
    return { zxid, body: w.bytes() };
  }),
  op<void>(OpCode.ping, (ctx) => Promise.resolve({ zxid: ctx.tree.clock.revision })),
  op<void>(OpCode.closeSession, async (ctx) => ({ zxid: await ctx.closeSession(), close: true })),
  op<Req<"AuthPacket">>(OpCode.auth, (ctx, req) => {
    const id = authenticate(req.scheme, req.auth);
    if (!id) return Promise.resolve({ zxid: 0n, err: Code.AUTHFAILED, close: true });
    if (!ctx.session.authIds.some((a) => a.scheme === id.scheme && a.id === id.id)) {
      ctx.session.authIds.push(id);
    }
    // The super user's digest (--superdigest) passes every ACL check.
    if (id.id === ctx.superDigest) ctx.session.superuser = true;
    return Promise.resolve({ zxid: 0n });
  }),
  op<Req<"GetAllChildrenNumberRequest">>(OpCode.getAllChildrenNumber, async (ctx, req) => {
    const path = readPath(req.path);
    const { node } = await read(ctx, path, { perm: Perms.READ });
    if (ctx.session.readOnly) {
      // etcd is away: count in the replica's last known state.
      let count = -1; // the node itself is visited too
      const walked = await ctx.tree.walkReplica(node.path, () => count++);
      if (!walked) throw Errors.noNode(path);
      return reply(ctx.tree.clock.revision, R.GetAllChildrenNumberResponse, { totalNumber: count });
    }
    const { zxid, count } = await ctx.tree.countDescendants(node.path);
    if (count === null) throw Errors.noNode(path);
    return reply(zxid, R.GetAllChildrenNumberResponse, { totalNumber: count });
  }),
  op<Req<"GetEphemeralsRequest">>(OpCode.getEphemerals, async (ctx, req) => {
    const prefix = req.prefixPath ?? "";
    // A read-only session creates none (and etcd, which knows the lease's keys, is away).
    const all = ctx.session.readOnly
      ? []
      : await ephemeralPaths(ctx.tree, ctx.session.ephemeralLease);
    const ephemerals = prefix === "" || prefix === "/"
      ? all
      : all.filter((p) => p.startsWith(prefix));
    return reply(ctx.tree.clock.revision, R.GetEphemeralsResponse, {
      ephemerals: ephemerals.sort(),
    });
  }),
  op<void>(OpCode.whoAmI, (ctx) => {
    const who = ctx.who();
    // As ZooKeeper lists them: the identities from setAuth, then the address.
    const clientInfo = [
      ...ctx.session.authIds.map((a) => ({
        authScheme: a.scheme,
        user: a.scheme === "digest" ? a.id.slice(0, a.id.indexOf(":")) : a.id,
      })),
      { authScheme: "ip", user: who.address },
    ];
    return Promise.resolve(reply(ctx.tree.clock.revision, R.WhoAmIResponse, { clientInfo }));
  }),
  // A standalone ZooKeeper refuses reconfiguration.
  op<Req<"ReconfigRequest">>(
    OpCode.reconfig,
    () => Promise.reject(new ZkError(Code.RECONFIGDISABLED, undefined, "reconfig is disabled")),
  ),
  op<Req<"GetSASLRequest">>(OpCode.sasl, (ctx, req) => {
    // SASL is not configured: answered as a ZooKeeper server without SASL does.
    if (!ctx.sasl) {
      return Promise.resolve(reply(ctx.tree.clock.revision, R.SetSASLResponse, { token: null }));
    }
    // DIGEST-MD5 (src/server/sasl.ts); ZooKeeper's SASL replies carry zxid 0.
    try {
      const token = ctx.sasl.evaluate(req.token ?? new Uint8Array());
      const user = ctx.sasl.complete ? ctx.sasl.username : null;
      if (user !== null && !ctx.session.authIds.some((a) => a.scheme === "sasl" && a.id === user)) {
        ctx.session.authIds.push({ scheme: "sasl", id: user });
      }
      return Promise.resolve(reply(0n, R.SetSASLResponse, { token }));
    } catch (err) {
      if (!(err instanceof SaslError)) throw err;
      // ZooKeeper's failure carries an empty SetSASLResponse (a null token) too.
      return Promise.resolve({
        ...reply(0n, R.SetSASLResponse, { token: null }),
        err: Code.AUTHFAILED,
        close: true,
        reason: err.message,
      });
    }
  }),
  op<Req<"SetWatches">>(OpCode.setWatches, setWatches),
  op<Req<"SetWatches2">>(OpCode.setWatches2, async (ctx, req) => {
    const out = await setWatches(ctx, req);
    // Persistent watches are registered again as they were; they fire from now on.
    const lists = [[0, req.persistentWatches], [1, req.persistentRecursiveWatches]] as const;
    for (const [mode, paths] of lists) {
      for (const path of paths) {
        if (path === null) continue;
        for (const table of WATCH_MODES[mode]) ctx.watches.add(table, path, ctx.sink, out.zxid);
      }
    }
    return out;
  }),
  op<Req<"AddWatchRequest">>(OpCode.addWatch, async (ctx, req) => {
    const tables = WATCH_MODES[req.mode];
    if (!tables) throw new ZkError(Code.MARSHALLINGERROR, req.path ?? "", `watch mode ${req.mode}`);
    const path = readPath(req.path);
    // ZooKeeper 3.8 checks no permission for addWatch. (A read-only session
    // reads the replica: etcd is unavailable.)
    const from = ctx.session.readOnly ? { atLeast: ctx.session.seenZxid } : "etcd";
    const { zxid, seen } = await ctx.tree.get(path, false, from);
    for (const table of tables) ctx.watches.add(table, path, ctx.sink, zxid);
    await settle(ctx, seen);
    return reply(zxid, R.ErrorResponse, { err: 0 });
  }),
  op<Req<"CheckWatchesRequest">>(
    OpCode.checkWatches,
    (ctx, req) => Promise.resolve(matchWatches(ctx, req, false)),
  ),
  op<Req<"RemoveWatchesRequest">>(
    OpCode.removeWatches,
    (ctx, req) => Promise.resolve(matchWatches(ctx, req, true)),
  ),
]);
