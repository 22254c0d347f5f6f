/**
 * A seeded random workload for the randomized differential test: a
 * generator of ZooKeeper operations over a small tree of paths, a runner
 * that plays them through node-zookeeper-client (several sessions) against
 * one server, and a canonical form of every result (zxids as labels ordered
 * by first appearance, session ids as "which of our sessions", times reduced
 * to ctime ≤ mtime) so two servers' runs compare with plain equality.
 *
 * Paths in operations and results are *logical*: `/r` stands for the run's
 * base node (a fresh real path per run), so a run prints the same on every
 * server and every base.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { ACL, CreateMode, Id, Nzk, NzkError, type NzkStat, Permission, statOf } from "./nzk.ts";

// ---------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: a small, fast, seeded PRNG giving floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rand {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  float(): number {
    return this.#next();
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** Picks a key of `weights` with probability proportional to its weight. */
  weighted<K extends string>(weights: Record<K, number>): K {
    const entries = Object.entries(weights) as [K, number][];
    let total = 0;
    for (const [, w] of entries) total += w;
    let x = this.#next() * total;
    for (const [k, w] of entries) {
      x -= w;
      if (x < 0) return k;
    }
    return entries[entries.length - 1][0];
  }
}

// ---------------------------------------------------------------------------
// Operations

export type Mode = "P" | "E" | "PS" | "ES";
const MODE_VALUE: Record<Mode, number> = {
  P: CreateMode.PERSISTENT,
  E: CreateMode.EPHEMERAL,
  PS: CreateMode.PERSISTENT_SEQUENTIAL,
  ES: CreateMode.EPHEMERAL_SEQUENTIAL,
};

/** Named ACL lists; all of them grant everything to everyone (ACLs are not enforced by us yet). */
export type AclName =
  | "open"
  | "open+ip"
  | "dup"
  | "open+digest"
  | "bad-scheme"
  | "bad-ip"
  | "read-only"
  | "alice";

export type SubOp =
  | { t: "create"; path: string; data: string | null; mode: Mode }
  | { t: "setData"; path: string; data: string | null; version: number }
  | { t: "check"; path: string; version: number }
  | { t: "remove"; path: string; version: number };

export type Op =
  | { kind: "create"; c: number; path: string; data: string | null; mode: Mode; acl: AclName }
  | { kind: "getData"; c: number; path: string; watch: boolean }
  | { kind: "exists"; c: number; path: string; watch: boolean }
  | { kind: "getChildren"; c: number; path: string; watch: boolean }
  | { kind: "setData"; c: number; path: string; data: string | null; version: number }
  | { kind: "remove"; c: number; path: string; version: number }
  | { kind: "multi"; c: number; subs: SubOp[] }
  | { kind: "setACL"; c: number; path: string; acl: AclName; version: number }
  | { kind: "getACL"; c: number; path: string }
  | { kind: "reconnect"; c: number };

/**
 * A long string shortened for messages: its start, its length and a hash,
 * so two different long strings still look different.
 */
export function short(s: string): string {
  if (s.length <= 64) return s;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return `${s.slice(0, 24)}…(${s.length} chars, fnv ${(h >>> 0).toString(16)})`;
}

/** JSON for messages, long strings shortened. */
export function show(x: unknown): string {
  return JSON.stringify(x, (_k, v) => (typeof v === "string" ? short(v) : v));
}

/** One line describing an operation, e.g. `c1 create /r/a/s- ES data="x"`. */
export function describeOp(op: Op): string {
  const d = (x: string | null) => (x === null ? "null" : JSON.stringify(short(x)));
  const sub = (s: SubOp) => {
    switch (s.t) {
      case "create":
        return `create ${s.path} ${s.mode} data=${d(s.data)}`;
      case "setData":
        return `setData ${s.path} data=${d(s.data)} v=${s.version}`;
      case "check":
        return `check ${s.path} v=${s.version}`;
      case "remove":
        return `remove ${s.path} v=${s.version}`;
    }
  };
  const w = (x: boolean) => (x ? " watch" : "");
  const head = `c${op.c} ${op.kind}`;
  switch (op.kind) {
    case "create":
      return `${head} ${op.path} ${op.mode} data=${d(op.data)}${
        op.acl === "open" ? "" : ` acl=${op.acl}`
      }`;
    case "getData":
    case "exists":
    case "getChildren":
      return `${head} ${op.path}${w(op.watch)}`;
    case "setData":
      return `${head} ${op.path} data=${d(op.data)} v=${op.version}`;
    case "remove":
      return `${head} ${op.path} v=${op.version}`;
    case "multi":
      return `${head} [${op.subs.map(sub).join("; ")}]`;
    case "setACL":
      return `${head} ${op.path} acl=${op.acl} v=${op.version}`;
    case "getACL":
      return `${head} ${op.path}`;
    case "reconnect":
      return `${head} (close the session, open a fresh one)`;
  }
}

/** The fixed part of the tree: every operation's path comes from here or from sequential names. */
export const PATHS: readonly string[] = [
  "/r",
  "/r/a",
  "/r/b",
  "/r/c",
  "/r/a/x",
  "/r/a/y",
  "/r/b/x",
  "/r/b/y",
  "/r/c/x",
  "/r/a/x/z",
  "/r/a/y/z",
  "/r/b/x/z",
];
/** Parents of sequential creates (the created name is `<parent>/s-<10 digits>`). */
const SEQ_PARENTS: readonly string[] = ["/r", "/r", "/r/a", "/r/b", "/r/a/x", "/r/c/x"];
const DATA: readonly (string | null)[] = [
  "",
  "x",
  "hello",
  "data-1",
  null,
  "0123456789abcdef",
  "h\u00e9llo \u2603",
  "L".repeat(3000),
];

/**
 * The workload generator. Deterministic for a seed, given the same results:
 * it learns the names of sequential nodes from create results (`observe`),
 * which are equal on both servers up to the first divergence.
 */
export class OpGenerator {
  readonly #r: Rand;
  readonly #clients: number;
  readonly #skip: readonly string[];
  #seqNames: string[] = [];
  /** Data and ACL versions last seen in a result, by path. */
  #versions = new Map<string, number>();
  #aversions = new Map<string, number>();

  /** `skip` names {@linkcode KNOWN_DIVERGENCES} whose operations are drawn again. */
  constructor(seed: number, clients = 3, skip: readonly string[] = []) {
    this.#r = new Rand(seed);
    this.#clients = clients;
    for (const name of skip) {
      if (!(name in KNOWN_DIVERGENCES)) throw new Error(`unknown divergence to skip: ${name}`);
    }
    this.#skip = skip;
  }

  #path(): string {
    const r = this.#r;
    if (this.#seqNames.length > 0 && r.chance(0.25)) return r.pick(this.#seqNames);
    // Shallow paths more often, so deeper creates find their parents.
    const i = Math.min(r.int(PATHS.length), r.int(PATHS.length));
    return PATHS[i];
  }

  #createPath(): { path: string; mode: Mode } {
    const r = this.#r;
    const mode = r.weighted<Mode>({ P: 5, E: 2, PS: 2, ES: 2 });
    const seq = mode === "PS" || mode === "ES";
    if (seq) {
      const parent = this.#seqNames.length > 0 && r.chance(0.1)
        ? r.pick(this.#seqNames)
        : r.pick(SEQ_PARENTS);
      return { path: `${parent}/s-`, mode };
    }
    if (this.#seqNames.length > 0 && r.chance(0.08)) {
      return { path: `${r.pick(this.#seqNames)}/k`, mode };
    }
    // The base itself now and then: it is rarely deleted, but it can be.
    if (r.chance(0.03)) return { path: "/r", mode };
    return { path: PATHS[1 + Math.min(r.int(PATHS.length - 1), r.int(PATHS.length - 1))], mode };
  }

  #data(): string | null {
    const r = this.#r;
    return r.chance(0.85) ? r.pick(DATA) : `d${r.int(1000)}`;
  }

  /** setData's data: node-zookeeper-client cannot send null there (it throws). */
  #setData(): string {
    return this.#data() ?? "";
  }

  /** A path for a delete: the base only now and then. */
  #removePath(): string {
    const path = this.#path();
    return path === "/r" && !this.#r.chance(0.1) ? this.#path() : path;
  }

  /** -1, the last version seen for `path` (so versioned writes also succeed), or a small one. */
  #version(path: string): number {
    const r = this.#r;
    const known = this.#versions.get(path);
    if (r.chance(0.45)) return -1;
    if (known !== undefined && r.chance(0.5)) return known;
    return r.int(4);
  }

  #aversion(path: string): number {
    const r = this.#r;
    const known = this.#aversions.get(path);
    if (r.chance(0.45)) return -1;
    if (known !== undefined && r.chance(0.5)) return known;
    return r.int(3);
  }

  /** A multi's sub-operation; `prev` (the previous sub-op's path) is often reused. */
  #sub(prev: string | undefined): SubOp {
    const r = this.#r;
    const same = prev !== undefined && r.chance(0.4);
    const path = () => (same ? prev : this.#path());
    switch (r.weighted({ create: 4, setData: 2, check: 2, remove: 2 })) {
      case "create": {
        const made = this.#createPath();
        const mode = made.mode;
        if (same && (mode === "P" || mode === "E")) {
          return { t: "create", path: prev, data: this.#data(), mode };
        }
        return { t: "create", path: made.path, data: this.#data(), mode };
      }
      case "setData": {
        const at = path();
        return { t: "setData", path: at, data: this.#setData(), version: this.#version(at) };
      }
      case "check": {
        const at = path();
        return { t: "check", path: at, version: this.#version(at) };
      }
      default: {
        const at = same ? prev : this.#removePath();
        return { t: "remove", path: at, version: this.#version(at) };
      }
    }
  }

  next(): Op {
    for (;;) {
      const op = this.#draw();
      if (!this.#skip.some((name) => KNOWN_DIVERGENCES[name](op))) return op;
    }
  }

  #draw(): Op {
    const r = this.#r;
    const c = r.int(this.#clients);
    const kind = r.weighted({
      create: 22,
      getData: 11,
      exists: 9,
      getChildren: 11,
      setData: 12,
      remove: 14,
      multi: 11,
      setACL: 3,
      getACL: 3,
      reconnect: 1,
    });
    const acl = (): AclName =>
      r.weighted<AclName>({
        open: 8,
        "open+ip": 1,
        dup: 1,
        "open+digest": 1,
        "bad-scheme": 1,
        "bad-ip": 1,
        "read-only": 1,
        alice: 2,
      });
    switch (kind) {
      case "create": {
        const { path, mode } = this.#createPath();
        return { kind, c, path, data: this.#data(), mode, acl: r.chance(0.9) ? "open" : acl() };
      }
      case "getData":
      case "exists":
      case "getChildren":
        return { kind, c, path: this.#path(), watch: r.chance(0.6) };
      case "setData": {
        const path = this.#path();
        return { kind, c, path, data: this.#setData(), version: this.#version(path) };
      }
      case "remove": {
        const path = this.#removePath();
        return { kind, c, path, version: this.#version(path) };
      }
      case "multi": {
        const n = r.chance(0.02) ? 0 : 1 + r.int(4);
        const subs: SubOp[] = [];
        for (let i = 0; i < n; i++) subs.push(this.#sub(subs[i - 1]?.path));
        return { kind, c, subs };
      }
      case "setACL": {
        const path = this.#path();
        return { kind, c, path, acl: acl(), version: this.#aversion(path) };
      }
      case "getACL":
        return { kind, c, path: this.#path() };
      case "reconnect":
        return { kind, c };
    }
  }

  /** Learns sequential names, and versions of nodes, from an operation's canonical result. */
  observe(op: Op, result: Canon): void {
    if ("path" in op && result.stat) {
      this.#versions.set(op.path, result.stat.version);
      this.#aversions.set(op.path, result.stat.aversion);
    }
    const names: string[] = [];
    if (typeof result.path === "string") names.push(result.path);
    if (Array.isArray(result.results)) {
      for (const r of result.results as Canon[]) if (typeof r.path === "string") names.push(r.path);
    }
    for (const name of names) {
      if (/\/s-\d{10}$/.test(name) && !this.#seqNames.includes(name)) {
        this.#seqNames.push(name);
        if (this.#seqNames.length > 24) this.#seqNames.shift();
      }
    }
  }
}

/**
 * Operations that show a divergence already reported, by name. The
 * generator can be told to skip them (env `DIFF_SKIP` of the test) to look
 * for further divergences past a known one.
 */
export const KNOWN_DIVERGENCES: Record<string, (op: Op) => boolean> = {
  /** A multi that deletes a node and creates it again (our server: Unimplemented). */
  "multi-recreate": (op) =>
    op.kind === "multi" &&
    op.subs.some((s, i) =>
      s.t === "create" && (s.mode === "P" || s.mode === "E") &&
      op.subs.slice(0, i).some((d) => d.t === "remove" && d.path === s.path)
    ),
  /** An ACL list with the same entry twice (ZooKeeper drops the duplicate). */
  "dup-acl": (op) => (op.kind === "create" || op.kind === "setACL") && op.acl === "dup",
  /**
   * A multi that writes a node and then deletes it: ZooKeeper fires the
   * watches of the intermediate state (NodeDataChanged, or the parent's
   * NodeChildrenChanged for a node created and deleted), our server only
   * those of the final state.
   */
  "multi-transient": (op) =>
    op.kind === "multi" &&
    op.subs.some((s, i) =>
      s.t === "remove" &&
      op.subs.slice(0, i).some((w) => (w.t === "create" || w.t === "setData") && w.path === s.path)
    ),
};

// ---------------------------------------------------------------------------
// Canonical results

/** A canonical result: JSON-friendly, equal on both servers when they agree. */
// deno-lint-ignore no-explicit-any
export type Canon = Record<string, any>;

const ERROR_NAMES: Record<number, string> = {
  [-4]: "ConnectionLoss",
  [-2]: "RuntimeInconsistency",
  [-6]: "Unimplemented",
  [-8]: "BadArguments",
  [-101]: "NoNode",
  [-102]: "NoAuth",
  [-103]: "BadVersion",
  [-108]: "NoChildrenForEphemerals",
  [-110]: "NodeExists",
  [-111]: "NotEmpty",
  [-112]: "SessionExpired",
  [-114]: "InvalidACL",
  [-118]: "SessionMoved",
};

/** `NoNode(-101)`, `Ok(0)`. */
export function errName(code: number): string {
  return `${code === 0 ? "Ok" : ERROR_NAMES[code] ?? "Error"}(${code})`;
}

/**
 * Labels zxids by order of first appearance in a run (`Z0`, `Z1`, …). A
 * zxid seen for the first time is also placed among those seen so far
 * (`Z7 new >Z3 <Z5`), so equality *and* order are compared across servers
 * without comparing raw values (ZooKeeper burns zxids on failed writes,
 * etcd revisions move differently).
 */
class ZxidLabels {
  readonly #labels = new Map<bigint, string>();
  #sorted: bigint[] = [];
  label(z: bigint, fresh: string[]): string {
    const known = this.#labels.get(z);
    if (known !== undefined) return known;
    const name = `Z${this.#labels.size}`;
    let lo = 0;
    let hi = this.#sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#sorted[mid] < z) lo = mid + 1;
      else hi = mid;
    }
    const below = lo > 0 ? this.#labels.get(this.#sorted[lo - 1]) : "-";
    const above = lo < this.#sorted.length ? this.#labels.get(this.#sorted[lo]) : "-";
    this.#sorted.splice(lo, 0, z);
    this.#labels.set(z, name);
    fresh.push(`${name} new >${below} <${above}`);
    return name;
  }
}

// ---------------------------------------------------------------------------
// The runner

const ACLS: Record<AclName, () => unknown[]> = {
  open: () => [new ACL(Permission.ALL, new Id("world", "anyone"))],
  "open+ip": () => [
    new ACL(Permission.ALL, new Id("world", "anyone")),
    new ACL(Permission.ALL, new Id("ip", "127.0.0.1")),
  ],
  dup: () => [
    new ACL(Permission.ALL, new Id("world", "anyone")),
    new ACL(Permission.ALL, new Id("world", "anyone")),
  ],
  "open+digest": () => [
    new ACL(Permission.ALL, new Id("world", "anyone")),
    new ACL(Permission.ALL, new Id("digest", "user:tU+mo9Y2nQd0Rsl6LqG5sH1BAiU=")),
  ],
  /** This and "bad-ip" are invalid: ZooKeeper answers InvalidACL. */
  "bad-scheme": () => [
    new ACL(Permission.ALL, new Id("world", "anyone")),
    new ACL(Permission.ALL, new Id("nosuchscheme", "x")),
  ],
  "bad-ip": () => [
    new ACL(Permission.ALL, new Id("world", "anyone")),
    new ACL(Permission.ALL, new Id("ip", "not-an-address")),
  ],
  /** Enforced ACLs: everyone may read; only the sessions authenticated as alice may change. */
  "read-only": () => [new ACL(Permission.READ, new Id("world", "anyone"))],
  alice: () => [
    new ACL(Permission.ALL, new Id("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=")),
    new ACL(Permission.READ, new Id("world", "anyone")),
  ],
};

/**
 * Env `DIFF_EVENT_ORDER=1`: compare the events a session receives after one
 * operation in their order of arrival, not as a multiset — except after a
 * session close, whose ephemerals ZooKeeper deletes in the iteration order of
 * a hash set.
 */
const STRICT_EVENT_ORDER = Deno.env.get("DIFF_EVENT_ORDER") === "1";

/** Whether two sessions→events maps agree (per session, as multisets unless `ordered`). */
function sameEvents(a: Window, b: Window, ordered: boolean): boolean {
  const norm = (w: Window) =>
    JSON.stringify(
      Object.entries(w).map(([k, v]) => [k, ordered ? v : [...v].sort()]),
    );
  return norm(a) === norm(b);
}

const EVENT_NAMES: Record<number, string> = {
  1: "NodeCreated",
  2: "NodeDeleted",
  3: "NodeDataChanged",
  4: "NodeChildrenChanged",
};

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytesOf = (s: string | null) => (s === null ? null : enc.encode(s));

// deno-lint-ignore no-explicit-any
type Raw = any;

/** One session of the run: its client, its index in the run, and the events it received. */
interface Session {
  index: number;
  id: bigint;
  nzk: Nzk;
  /** Notifications as `Type /logical/path`, in arrival order. */
  events: string[];
  /** Events before this index were already assigned to an operation. */
  cursor: number;
  closed: boolean;
  wake?: () => void;
  /** Watches the server may still hold for this session: `d:/path` (data/exist), `c:/path`. */
  armed: Set<string>;
}

/** Events per session index delivered "after" one operation. */
export type Window = Record<string, string[]>;

/** Options of a {@linkcode Runner}. */
export interface RunnerOptions {
  /** `host:port` of the server. */
  address: string;
  /** Real path standing for the logical `/r`. */
  base: string;
  clients?: number;
  /** Deadline of one operation, ms. */
  opTimeoutMs?: number;
}

/**
 * Plays operations against one server through several node-zookeeper-client
 * sessions and canonicalises their results. Watch notifications are
 * recorded at the connection (every notification the server sends, whether
 * or not a client-side watcher takes it).
 */
export class Runner {
  readonly #o: Required<RunnerOptions>;
  readonly #slots: Session[] = [];
  readonly #all: Session[] = [];
  readonly #zxids = new ZxidLabels();
  #fresh: string[] = [];

  private constructor(options: RunnerOptions) {
    this.#o = { clients: 3, opTimeoutMs: 10_000, ...options };
  }

  /** Connects the sessions and creates the base node. */
  static async open(options: RunnerOptions): Promise<Runner> {
    const runner = new Runner(options);
    for (let i = 0; i < runner.#o.clients; i++) runner.#slots.push(await runner.#connect());
    await runner.#slots[0].nzk.create(options.base, null);
    return runner;
  }

  /** All sessions of the run, in order of creation. */
  get sessions(): readonly { index: number; closed: boolean }[] {
    return this.#all;
  }

  async #connect(): Promise<Session> {
    const nzk = await Nzk.connect(this.#o.address, 30_000);
    // Every other session is alice, so enforced ACLs both admit and refuse.
    if (this.#all.length % 2 === 0) nzk.addAuth("digest", "alice:secret");
    const s: Session = {
      index: this.#all.length,
      id: nzk.sessionId,
      nzk,
      events: [],
      cursor: 0,
      closed: false,
      armed: new Set(),
    };
    const wm = nzk.raw.connectionManager.watcherManager;
    const emit = wm.emit.bind(wm);
    wm.emit = (e: Raw) => {
      if (!s.closed) {
        const path = this.#logical(e.path);
        s.events.push(`${EVENT_NAMES[e.type] ?? `Event${e.type}`} ${path}`);
        if (e.type !== 4) s.armed.delete(`d:${path}`);
        if (e.type === 2 || e.type === 4) s.armed.delete(`c:${path}`);
        s.wake?.();
      }
      return emit(e);
    };
    this.#all.push(s);
    return s;
  }

  #real(path: string): string {
    return path === "/r" ? this.#o.base : this.#o.base + path.slice(2);
  }

  #logical(path: string): string {
    const b = this.#o.base;
    if (path === b) return "/r";
    if (path.startsWith(b + "/")) return "/r" + path.slice(b.length);
    return `(outside) ${path}`;
  }

  #stat(s: NzkStat): Canon {
    const owner = s.ephemeralOwner === 0n ? 0 : (() => {
      const who = this.#all.find((x) => x.id === s.ephemeralOwner);
      return who ? `s${who.index}` : `foreign:${s.ephemeralOwner.toString(16)}`;
    })();
    return {
      czxid: this.#zxids.label(s.czxid, this.#fresh),
      mzxid: this.#zxids.label(s.mzxid, this.#fresh),
      pzxid: this.#zxids.label(s.pzxid, this.#fresh),
      ctimeLeMtime: s.ctime <= s.mtime,
      version: s.version,
      cversion: s.cversion,
      aversion: s.aversion,
      ephemeralOwner: owner,
      dataLength: s.dataLength,
      numChildren: s.numChildren,
    };
  }

  #error(err: unknown): Canon {
    if (err instanceof NzkError) return { err: errName(err.code) };
    if (err && typeof (err as Raw).getCode === "function") {
      return { err: errName((err as Raw).getCode()) };
    }
    return { thrown: String(err) };
  }

  async #do(op: Op, s: Session): Promise<Canon> {
    const p = (x: string) => this.#real(x);
    const c = s.nzk;
    const watcher = () => {};
    switch (op.kind) {
      case "create": {
        const path = await c.create(
          p(op.path),
          bytesOf(op.data),
          MODE_VALUE[op.mode],
          ACLS[op.acl](),
        );
        return { path: this.#logical(path) };
      }
      case "getData": {
        const { data, stat } = await c.getData(p(op.path), op.watch ? watcher : undefined);
        if (op.watch) s.armed.add(`d:${op.path}`);
        return { data: data === null ? null : dec.decode(data), stat: this.#stat(stat) };
      }
      case "exists": {
        // An exists watch is left even when the node is missing.
        if (op.watch) s.armed.add(`d:${op.path}`);
        const stat = await c.exists(p(op.path), op.watch ? watcher : undefined);
        return { stat: stat === null ? null : this.#stat(stat) };
      }
      case "getChildren": {
        const { children, stat } = await c.getChildren(
          p(op.path),
          op.watch ? watcher : undefined,
        );
        if (op.watch) s.armed.add(`c:${op.path}`);
        return { children: [...children].sort(), stat: this.#stat(stat) };
      }
      case "setData":
        return { stat: this.#stat(await c.setData(p(op.path), bytesOf(op.data), op.version)) };
      case "remove":
        await c.remove(p(op.path), op.version);
        return {};
      case "setACL":
        return { stat: this.#stat(await c.setACL(p(op.path), ACLS[op.acl](), op.version)) };
      case "getACL": {
        const { acls, stat } = await c.getACL(p(op.path));
        return { acls, stat: this.#stat(stat) };
      }
      case "multi":
        return await this.#multi(s, op.subs);
      case "reconnect":
        throw new Error("unreachable");
    }
  }

  #multi(s: Session, subs: SubOp[]): Promise<Canon> {
    const t = s.nzk.raw.transaction();
    for (const sub of subs) {
      const path = this.#real(sub.path);
      const data = sub.t === "create" || sub.t === "setData"
        ? (sub.data === null ? undefined : Buffer.from(sub.data))
        : undefined;
      switch (sub.t) {
        case "create":
          t.create(path, data, MODE_VALUE[sub.mode]);
          break;
        case "setData":
          t.setData(path, data, sub.version);
          break;
        case "check":
          t.check(path, sub.version);
          break;
        case "remove":
          t.remove(path, sub.version);
          break;
      }
    }
    const { promise, resolve } = Promise.withResolvers<Canon>();
    t.commit((err: Raw, results: Raw[]) => {
      const out: Canon = { err: err ? this.#error(err).err ?? String(err) : errName(0) };
      if (Array.isArray(results)) {
        out.results = results.map((r: Raw) => {
          const x: Canon = { type: r.type };
          if (r.err !== undefined) x.err = errName(r.err);
          if (r.path !== undefined) x.path = this.#logical(r.path);
          if (r.stat !== undefined) x.stat = this.#stat(statOf(r.stat));
          return x;
        });
      }
      resolve(out);
    });
    return promise;
  }

  async #reconnect(slot: number): Promise<Canon> {
    const old = this.#slots[slot];
    // Events the closing session gets from its own close are not compared.
    old.closed = true;
    await old.nzk.close();
    const fresh = await this.#connect();
    this.#slots[slot] = fresh;
    return { closed: `s${old.index}`, opened: `s${fresh.index}` };
  }

  /** Runs one operation and returns its canonical result (events are collected separately). */
  async run(op: Op): Promise<Canon> {
    this.#fresh = [];
    let result: Canon;
    if (op.kind === "reconnect") {
      result = await this.#reconnect(op.c);
    } else {
      const s = this.#slots[op.c];
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<Canon>((resolve) => {
        timer = setTimeout(
          () => resolve({ thrown: `no reply within ${this.#o.opTimeoutMs} ms` }),
          this.#o.opTimeoutMs,
        );
      });
      try {
        result = await Promise.race([
          this.#do(op, s).catch((err) => this.#error(err)),
          timeout,
        ]);
      } finally {
        clearTimeout(timer);
      }
    }
    if (this.#fresh.length > 0) result.zxids = this.#fresh;
    return result;
  }

  /**
   * Barrier for the oracle: every live session that may hold a watch the
   * operation can fire does a read, so (ZooKeeper queues notifications
   * before later replies on a connection) every notification the operation
   * caused has arrived.
   */
  async barrier(op: Op, result: Canon): Promise<void> {
    const hit = touched(op, result);
    const waiting = this.#slots.filter((s) =>
      s.armed.size > 0 && (hit === "all" || [...hit].some((w) => s.armed.has(w)))
    );
    await Promise.all(waiting.map((s) => s.nzk.exists(this.#o.base).catch(() => null)));
  }

  /**
   * Waits until each live session has at least `expected[index].length`
   * new events (at most `ms`), then takes the new events of every session.
   */
  async takeEvents(expected: Window = {}, ms = 0): Promise<Window> {
    const deadline = Date.now() + ms;
    for (const s of this.#all) {
      const want = expected[`s${s.index}`]?.length ?? 0;
      while (!s.closed && s.events.length - s.cursor < want && Date.now() < deadline) {
        const { promise, resolve } = Promise.withResolvers<void>();
        s.wake = resolve;
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        await promise;
        clearTimeout(timer);
        s.wake = undefined;
      }
    }
    const out: Window = {};
    for (const s of this.#all) {
      if (s.events.length > s.cursor) {
        out[`s${s.index}`] = s.events.slice(s.cursor);
        s.cursor = s.events.length;
      }
    }
    return out;
  }

  /** Closes every session. */
  async close(): Promise<void> {
    await Promise.all(this.#slots.map(async (s) => {
      s.closed = true;
      await s.nzk.close();
    }));
  }
}

const parentOf = (path: string) => path.slice(0, path.lastIndexOf("/")) || "/";

/** The watches (`d:`/`c:` + path) a write can fire; "all" when unknown (a session close). */
function touched(op: Op, result: Canon): Set<string> | "all" {
  const out = new Set<string>();
  const write = (path: string, remove: boolean) => {
    out.add(`d:${path}`);
    out.add(`c:${parentOf(path)}`);
    if (remove) out.add(`c:${path}`);
  };
  switch (op.kind) {
    case "reconnect":
      return "all";
    case "create":
      write(typeof result.path === "string" ? result.path : op.path, false);
      break;
    case "setData":
    case "setACL":
      write(op.path, false);
      break;
    case "remove":
      write(op.path, true);
      break;
    case "multi":
      op.subs.forEach((sub, i) => {
        const r = Array.isArray(result.results) ? result.results[i] : undefined;
        write(typeof r?.path === "string" ? r.path : sub.path, sub.t === "remove");
      });
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Driving two servers

/** One operation of a recorded run. */
export interface Recorded {
  op: Op;
  result: Canon;
  events: Window;
}

/** A divergence between the oracle and our server. */
export interface Divergence {
  index: number;
  op: Op;
  what: "result" | "events" | "final events";
  oracle: unknown;
  ours: unknown;
  /** The operations before it, with the oracle's results. */
  before: Recorded[];
}

/** Ops either generated from a seed or given as a list (replays, minimisation). */
export type Source = { seed: number; ops: number; skip?: string[] } | { list: Op[] };

function* opsOf(source: Source, gen?: OpGenerator): Generator<Op, void, Canon | undefined> {
  if ("list" in source) {
    for (const op of source.list) yield op;
    return;
  }
  for (let i = 0; i < source.ops; i++) {
    const op = gen!.next();
    const result = yield op;
    if (result) gen!.observe(op, result);
  }
}

/** Runs `source` against the oracle, with a read barrier after each operation. */
export async function recordOracle(
  address: string,
  base: string,
  source: Source,
): Promise<{ records: Recorded[]; final: Window; ms: number }> {
  const runner = await Runner.open({ address, base });
  const records: Recorded[] = [];
  const gen = "seed" in source ? new OpGenerator(source.seed, 3, source.skip) : undefined;
  const it = opsOf(source, gen);
  const t0 = performance.now();
  try {
    let next = it.next(undefined);
    while (!next.done) {
      const op = next.value;
      const result = await runner.run(op);
      await runner.barrier(op, result);
      records.push({ op, result, events: await runner.takeEvents() });
      next = it.next(result);
    }
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
    return { records, final: await runner.takeEvents(), ms };
  } finally {
    await runner.close();
  }
}

/**
 * Runs the same operations against our server, comparing each result and
 * each operation's events with the oracle's record; stops at the first
 * divergence.
 */
export async function compareWithOracle(
  address: string,
  base: string,
  source: Source,
  oracle: { records: Recorded[]; final: Window },
  settleMs = 200,
): Promise<{ divergence?: Divergence; ops: number; ms: number }> {
  const runner = await Runner.open({ address, base });
  const gen = "seed" in source ? new OpGenerator(source.seed, 3, source.skip) : undefined;
  const it = opsOf(source, gen);
  const t0 = performance.now();
  const diverged = (
    index: number,
    op: Op,
    what: Divergence["what"],
    o: unknown,
    u: unknown,
  ) => ({
    divergence: {
      index,
      op,
      what,
      oracle: o,
      ours: u,
      before: oracle.records.slice(Math.max(0, index - 10), index),
    },
    ops: index + 1,
    ms: performance.now() - t0,
  });
  try {
    let next = it.next(undefined);
    let i = 0;
    while (!next.done) {
      const op = next.value;
      const expected = oracle.records[i];
      if (JSON.stringify(op) !== JSON.stringify(expected.op)) {
        throw new Error(`generator desynchronised at op ${i}`);
      }
      const result = await runner.run(op);
      if (JSON.stringify(result) !== JSON.stringify(expected.result)) {
        return diverged(i, op, "result", expected.result, result);
      }
      const events = await runner.takeEvents(expected.events, 2000);
      if (!sameEvents(events, expected.events, STRICT_EVENT_ORDER && op.kind !== "reconnect")) {
        return diverged(i, op, "events", expected.events, events);
      }
      next = it.next(result);
      i++;
    }
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, settleMs));
    const final = await runner.takeEvents();
    if (i > 0 && !sameEvents(final, oracle.final, false)) {
      return {
        ...diverged(i - 1, oracle.records[i - 1].op, "final events", oracle.final, final),
        ms,
      };
    }
    return { ops: i, ms };
  } finally {
    await runner.close();
  }
}

/** A readable, replayable report of a divergence. */
export function formatDivergence(
  d: Divergence,
  header: string,
): string {
  const lines = [
    `${header}: our server diverges from ZooKeeper at operation #${d.index} (${d.what})`,
    `  operation: ${describeOp(d.op)}`,
    `  ZooKeeper: ${show(d.oracle)}`,
    `  ours:      ${show(d.ours)}`,
    `  the ${d.before.length} operations before it (with ZooKeeper's results and events):`,
  ];
  for (let k = 0; k < d.before.length; k++) {
    const r = d.before[k];
    const ev = Object.keys(r.events).length ? `  events ${show(r.events)}` : "";
    lines.push(
      `    #${d.index - d.before.length + k} ${describeOp(r.op)} -> ${show(r.result)}${ev}`,
    );
  }
  if (d.what === "events") {
    lines.push(
      "  (events are those each session had received once the operation completed; the oracle's",
      "   after a read barrier on every session, ours after waiting up to 2 s for the oracle's count)",
    );
  }
  return lines.join("\n");
}
