/**
 * A seeded concurrent workload for the concurrent differential test: many
 * sessions of a stock client (node-zookeeper-client) at once, each running
 * its own random mix of every write shape under a few shared parents, while
 * their connections are cut now and then (the client reconnects, its session
 * moving between servers). It records what each session was told, and
 * {@link invariantViolations} checks what must hold for any interleaving,
 * since the interleavings on two systems never match.
 *
 * @module
 */

import { Code } from "../../src/zk/constants.ts";
import { checkHistory, type Input, type Operation, type Output } from "./linearizability.ts";
import { CreateMode, MultiError, Nzk, NzkError } from "./nzk.ts";
import { mulberry32 } from "./random_ops.ts";
import { sessionOrderViolations } from "../chaos/workload.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Keys of the plain create/delete/setData churn, under `${root}/churn`. */
const CHURN_KEYS = 6;
/** Nodes that always exist, set by multis (conditionally and not) and by setData, `${root}/mkN`. */
const MULTI_KEYS = 3;

/** The kinds of operation, each with the errors a serial order can give it. */
export const KINDS = {
  /** A sequential create (persistent or ephemeral) on its own. */
  "create sequential": [],
  /** A multi of a sequential (or ephemeral-sequential) create and a create of a new name. */
  "multi sequential + create": [],
  /** A multi of a check (-1), an ephemeral-sequential create and a setData (-1). */
  "multi check + sequential + setData": [],
  /** A multi of a check at the version this session last saw and a setData (-1). */
  "multi conditional": [Code.BADVERSION],
  /** setData -1 on one of the nodes the multis set: queued with this server's setData calls. */
  "setData a multi's node": [],
  /** An ephemeral create of a new name. */
  "create ephemeral": [],
  /** A plain create of a churn key. */
  "create": [Code.NODEEXISTS],
  /** delete -1 of a churn key. */
  "delete any version": [Code.NONODE],
  /** delete at the version last seen. */
  "delete conditional": [Code.NONODE, Code.BADVERSION],
  /** setData -1 of a churn key. */
  "setData any version": [Code.NONODE],
  /** setData at the version last seen. */
  "setData conditional": [Code.NONODE, Code.BADVERSION],
  /** getData of a churn key. */
  "getData": [Code.NONODE],
  /** closeSession, then a new session: the old one's ephemerals are gone. */
  "close session": [],
} as const satisfies Record<string, readonly number[]>;

/** An operation kind. */
export type Kind = keyof typeof KINDS;

/** A sequential create and what its client was told. */
export interface Sequential {
  /** The name it got (when acknowledged). */
  name?: string;
  outcome: "ok" | "unknown";
  ephemeral: boolean;
}

/** What a run recorded. */
export interface ConcurrentRecord {
  root: string;
  /** Writes to the churn keys, for the linearizability check. */
  history: Operation[];
  /** The mzxid each successful churn read or write saw. */
  mzxids: Map<Operation, bigint>;
  sequential: Sequential[];
  /** Children of `blocks` created by acknowledged multis, and by unknown ones. */
  blocks: { acked: string[]; unknown: string[] };
  /** Per `mk` key: setData acknowledged, and with unknown outcome. */
  multiSets: Map<string, { acked: number; unknown: number }>;
  /** Per kind: result code → count (0: success, ConnectionLoss: unknown outcome). */
  outcomes: Map<Kind, Map<number, number>>;
  /** Answers no serial order of the operations could give. */
  impossible: string[];
  /** Sessions closed, with their ephemerals; and sessions opened. */
  sessions: number;
}

/** Options of {@link runConcurrent}. */
export interface ConcurrentOptions {
  /** A connect string per session slot (`slot` from 0). */
  hosts: (slot: number) => string;
  sessions: number;
  opsPerSession: number;
  seed: number;
  /** Cuts some client connections (the clients reconnect); called between operations. */
  cut?: (random: () => number) => void;
}

/** Runs the workload under a fresh root and records it. */
export async function runConcurrent(options: ConcurrentOptions): Promise<ConcurrentRecord> {
  const root = `/conc-${options.seed}-${crypto.randomUUID().slice(0, 8)}`;
  const admin = await Nzk.connect(options.hosts(0));
  for (const p of [root, `${root}/seq`, `${root}/blocks`, `${root}/churn`, `${root}/eph`]) {
    await admin.create(p);
  }
  const multiKeys = Array.from({ length: MULTI_KEYS }, (_, i) => `${root}/mk${i}`);
  for (const k of multiKeys) await admin.create(k, encoder.encode("0"));
  await admin.close();

  const record: ConcurrentRecord = {
    root,
    history: [],
    mzxids: new Map(),
    sequential: [],
    blocks: { acked: [], unknown: [] },
    multiSets: new Map(multiKeys.map((k) => [k, { acked: 0, unknown: 0 }])),
    outcomes: new Map(),
    impossible: [],
    sessions: 0,
  };
  const churn = Array.from({ length: CHURN_KEYS }, (_, i) => `${root}/churn/k${i}`);
  const cutter = mulberry32(options.seed ^ 0x5eed);

  const count = (kind: Kind, code: number) => {
    const byCode = record.outcomes.get(kind) ?? new Map<number, number>();
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
    record.outcomes.set(kind, byCode);
  };
  /** The code of an error (ConnectionLoss for one without a ZooKeeper code). */
  const codeOf = (err: unknown) => err instanceof NzkError ? err.code : Code.CONNECTIONLOSS;
  /** Counts a result, and records it as impossible unless the kind may give it. */
  const judge = (kind: Kind, err: unknown, what: string, allowed?: readonly number[]) => {
    const code = err === null ? 0 : codeOf(err);
    count(kind, code);
    const may: readonly number[] = allowed ?? KINDS[kind];
    if (code !== 0 && code !== Code.CONNECTIONLOSS && !may.includes(code)) {
      const at = err instanceof MultiError ? ` at op #${err.index}` : "";
      record.impossible.push(`${kind}: ${what} got ${code}${at} (${String(err)})`);
    }
    return code;
  };

  /** Sessions closing now: no connection is cut meanwhile, so each close is delivered. */
  let closing = 0;
  /** Closes a session for sure: once it answers again after any cut, with cuts held off. */
  const closeSession = async (zk: Nzk) => {
    closing++;
    try {
      for (let i = 0; i < 50; i++) {
        try {
          await zk.exists(root);
          break;
        } catch { /* reconnecting after a cut */ }
      }
      await zk.close();
    } finally {
      closing--;
    }
  };

  const worker = async (slot: number) => {
    const random = mulberry32(options.seed * 1009 + slot);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
    let zk = await Nzk.connect(options.hosts(slot));
    record.sessions++;
    let ephemerals: string[] = [];
    const versions = new Map<string, number>();
    for (let j = 0; j < options.opsPerSession; j++) {
      if (random() < 0.03 && closing === 0) options.cut?.(cutter);
      const roll = random();
      const seqMode = random() < 0.5 ? "PS" : "ES";
      const mode = seqMode === "PS"
        ? CreateMode.PERSISTENT_SEQUENTIAL
        : CreateMode.EPHEMERAL_SEQUENTIAL;
      const sequential = (s: Sequential, name: string | undefined) => {
        if (name === undefined) return;
        s.name = name.slice(`${root}/seq/`.length);
        s.outcome = "ok";
        if (s.ephemeral) ephemerals.push(name);
      };
      if (roll < 0.12) {
        const s: Sequential = { outcome: "unknown", ephemeral: seqMode === "ES" };
        record.sequential.push(s);
        try {
          sequential(s, await zk.create(`${root}/seq/s-`, encoder.encode(`${slot}`), mode));
          judge("create sequential", null, "");
        } catch (err) {
          judge("create sequential", err, "create /seq/s-");
        }
      } else if (roll < 0.27) {
        const s: Sequential = { outcome: "unknown", ephemeral: seqMode === "ES" };
        record.sequential.push(s);
        const block = `${root}/blocks/b${slot}-${j}`;
        try {
          const res = await zk.multi([
            { op: "create", path: `${root}/seq/s-`, data: null, mode },
            { op: "create", path: block, data: null },
          ]);
          sequential(s, res[0].path);
          record.blocks.acked.push(block);
          judge("multi sequential + create", null, "");
        } catch (err) {
          const code = judge("multi sequential + create", err, `multi create /seq/s-, ${block}`);
          if (code === Code.CONNECTIONLOSS) record.blocks.unknown.push(block);
        }
      } else if (roll < 0.32) {
        const s: Sequential = { outcome: "unknown", ephemeral: true };
        record.sequential.push(s);
        const key = pick(multiKeys);
        try {
          const res = await zk.multi([
            { op: "check", path: `${root}/seq`, version: -1 },
            {
              op: "create",
              path: `${root}/seq/s-`,
              data: null,
              mode: CreateMode.EPHEMERAL_SEQUENTIAL,
            },
            { op: "setData", path: key, data: encoder.encode(`${slot}-${j}`), version: -1 },
          ]);
          sequential(s, res[1].path);
          record.multiSets.get(key)!.acked++;
          judge("multi check + sequential + setData", null, "");
        } catch (err) {
          const code = judge("multi check + sequential + setData", err, `multi on ${key}`);
          if (code === Code.CONNECTIONLOSS) record.multiSets.get(key)!.unknown++;
        }
      } else if (roll < 0.345) {
        const key = pick(multiKeys);
        try {
          versions.set(key, (await zk.setData(key, encoder.encode(`${slot}-${j}`), -1)).version);
          record.multiSets.get(key)!.acked++;
          judge("setData a multi's node", null, "");
        } catch (err) {
          const code = judge("setData a multi's node", err, `setData ${key}`);
          if (code === Code.CONNECTIONLOSS) record.multiSets.get(key)!.unknown++;
        }
      } else if (roll < 0.37) {
        // At the version this session last saw (as the conditional setData
        // does): a fresh read would measure how stale a read is, which
        // across two servers may differ from one ZooKeeper server.
        const key = pick(multiKeys);
        const version = versions.get(key) ?? 0;
        try {
          await zk.multi([
            { op: "check", path: key, version },
            { op: "setData", path: key, data: encoder.encode(`${slot}-${j}`), version: -1 },
          ]);
          versions.set(key, version + 1);
          record.multiSets.get(key)!.acked++;
          judge("multi conditional", null, "");
        } catch (err) {
          // Only the check may fail: the setData (-1) of a node that exists never does.
          const index = err instanceof MultiError ? err.index : 0;
          const code = judge(
            "multi conditional",
            err,
            `multi check ${key}`,
            index === 0 ? undefined : [],
          );
          if (code === Code.CONNECTIONLOSS) record.multiSets.get(key)!.unknown++;
        }
      } else if (roll < 0.41) {
        const path = `${root}/eph/e${slot}-${j}`;
        try {
          await zk.create(path, null, CreateMode.EPHEMERAL);
          ephemerals.push(path);
          judge("create ephemeral", null, "");
        } catch (err) {
          judge("create ephemeral", err, `create ${path}`);
        }
      } else if (roll < 0.97) {
        const key = pick(churn);
        const data = `${slot}-${j}`;
        const r = random();
        const [kind, input]: [Kind, Input] = r < 0.2
          ? ["create", { op: "create", data }]
          : r < 0.3
          ? ["delete any version", { op: "delete", version: -1 }]
          : r < 0.38
          ? ["delete conditional", { op: "delete", version: versions.get(key) ?? 0 }]
          : r < 0.58
          ? ["setData any version", { op: "set", data, version: -1 }]
          : r < 0.75
          ? ["setData conditional", { op: "set", data, version: versions.get(key) ?? 0 }]
          : ["getData", { op: "get" }];
        const op: Operation = {
          client: slot,
          key,
          input,
          output: { unknown: true },
          call: performance.now(),
          ret: Infinity,
        };
        try {
          const [output, mzxid] = await perform(zk, key, input);
          op.output = output;
          if (mzxid !== undefined) record.mzxids.set(op, mzxid);
          if (output.version !== undefined) versions.set(key, output.version);
          judge(kind, null, "");
        } catch (err) {
          const code = judge(kind, err, `${input.op} ${key}`);
          op.output = code === Code.NONODE
            ? { err: "NONODE" }
            : code === Code.NODEEXISTS
            ? { err: "NODEEXISTS" }
            : code === Code.BADVERSION
            ? { err: "BADVERSION" }
            : { unknown: true };
        }
        op.ret = performance.now();
        // Reads go to the history of session order only: across two servers a
        // read may be stale, as on ZooKeeper (writes are linearizable).
        record.history.push(op);
      } else {
        await closeSession(zk);
        zk = await Nzk.connect(options.hosts(slot));
        record.sessions++;
        let left = 0;
        for (const path of ephemerals) {
          try {
            if (await zk.exists(path)) left++;
          } catch (err) {
            judge("close session", err, `exists ${path}`);
          }
        }
        if (left > 0) {
          record.impossible.push(`close session: ${left} ephemerals of a closed session remain`);
        }
        judge("close session", null, "");
        ephemerals = [];
      }
    }
    await closeSession(zk);
  };
  await Promise.all(Array.from({ length: options.sessions }, (_, slot) => worker(slot)));
  return record;
}

async function perform(
  zk: Nzk,
  key: string,
  input: Input,
): Promise<[Output & { version?: number }, bigint?]> {
  switch (input.op) {
    case "get": {
      const { data, stat } = await zk.getData(key);
      return [
        { ok: true, data: decoder.decode(data ?? new Uint8Array()), version: stat.version },
        stat.mzxid,
      ];
    }
    case "set": {
      const stat = await zk.setData(key, encoder.encode(input.data), input.version);
      return [{ ok: true, version: stat.version }, stat.mzxid];
    }
    case "create":
      await zk.create(key, encoder.encode(input.data));
      return [{ ok: true, version: 0 }];
    case "delete":
      await zk.remove(key, input.version);
      return [{ ok: true }];
  }
}

/** Sequence numbers of names like `s-0000000042`. */
function numberOf(name: string): number {
  return Number(name.slice(-10));
}

/**
 * What must hold for any interleaving, read back from the final tree by
 * `zk` (a session of its own, opened after every worker closed). Returns
 * the violations, each a readable line.
 */
export async function invariantViolations(zk: Nzk, record: ConcurrentRecord): Promise<string[]> {
  const { root } = record;
  const out = [...record.impossible];

  // Sequence numbers: unique, gap-free, in commit order.
  const acked = record.sequential.filter((s) => s.outcome === "ok").map((s) => s.name!);
  const unknown = record.sequential.filter((s) => s.outcome === "unknown").length;
  const numbers = acked.map(numberOf).sort((a, b) => a - b);
  for (let i = 1; i < numbers.length; i++) {
    if (numbers[i] === numbers[i - 1]) out.push(`sequence number ${numbers[i]} given twice`);
  }
  const seq = await zk.getChildren(`${root}/seq`);
  // Only creates ever happen under seq (ephemerals leave with their sessions):
  // cversion counts creates and deletes, numChildren their difference.
  const creates = (seq.stat.cversion + seq.stat.numChildren) / 2;
  if (numbers.length > 0 && numbers.at(-1)! >= creates) {
    out.push(`sequence number ${numbers.at(-1)} given, but ${root}/seq counts ${creates} creates`);
  }
  const missing = creates - new Set(numbers).size;
  if (missing < 0 || missing > unknown) {
    out.push(
      `${creates} sequential creates under ${root}/seq, ${numbers.length} acknowledged and ` +
        `${unknown} of unknown outcome: numbers are not gap-free`,
    );
  }
  const persistent = record.sequential.filter((s) => s.outcome === "ok" && !s.ephemeral);
  const present = new Set(seq.children);
  for (const s of persistent) {
    if (!present.has(s.name!)) out.push(`acknowledged sequential create ${s.name} is missing`);
  }
  const ephemeralLeft = record.sequential.filter((s) => s.ephemeral && present.has(s.name ?? ""));
  if (ephemeralLeft.length > 0) {
    out.push(`${ephemeralLeft.length} ephemeral sequential nodes outlived their sessions`);
  }
  let lastCzxid = -1n;
  for (const name of [...seq.children].sort((a, b) => numberOf(a) - numberOf(b))) {
    const stat = await zk.exists(`${root}/seq/${name}`);
    if (stat && stat.czxid < lastCzxid) out.push(`${name} was created before a lower number`);
    if (stat) lastCzxid = stat.czxid;
  }

  // Multi creates: every acknowledged one present; the parent's Stat counts them.
  const blocks = await zk.getChildren(`${root}/blocks`);
  const made = new Set(blocks.children.map((c) => `${root}/blocks/${c}`));
  for (const b of record.blocks.acked) if (!made.has(b)) out.push(`acknowledged ${b} is missing`);
  const extra = blocks.children.length - record.blocks.acked.length;
  if (extra < 0 || extra > record.blocks.unknown.length) {
    out.push(
      `${root}/blocks has ${blocks.children.length} children for ${record.blocks.acked.length} acknowledged creates`,
    );
  }
  if (blocks.stat.cversion !== blocks.stat.numChildren) {
    out.push(
      `${root}/blocks: cversion ${blocks.stat.cversion} after ${blocks.stat.numChildren} creates and no delete`,
    );
  }

  // setData in multis: each node's version counts every acknowledged one.
  for (const [key, { acked, unknown }] of record.multiSets) {
    const stat = await zk.exists(key);
    const v = stat?.version ?? -1;
    if (v < acked || v > acked + unknown) {
      out.push(`${key} at version ${v} after ${acked} acknowledged setData (${unknown} unknown)`);
    }
  }

  // Ephemerals: every session is closed, so none is left.
  const eph = await zk.getChildren(`${root}/eph`);
  if (eph.children.length > 0) {
    out.push(`${eph.children.length} ephemerals outlived their sessions`);
  }

  // The churn keys' writes are linearizable; each session's views go forward.
  const writes = record.history.filter((op) => op.input.op !== "get");
  const lin = checkHistory(writes, { timeoutMs: 20_000 });
  if (!lin.ok) out.push(`writes are not linearizable: ${lin.explanation}`);
  out.push(...sessionOrderViolations(record));
  return out;
}

/** Per kind, the share of answers that were errors (ConnectionLoss left out). */
export function errorRates(record: ConcurrentRecord): Map<Kind, { rate: number; n: number }> {
  const rates = new Map<Kind, { rate: number; n: number }>();
  for (const [kind, byCode] of record.outcomes) {
    let n = 0;
    let errors = 0;
    for (const [code, count] of byCode) {
      if (code === Code.CONNECTIONLOSS) continue;
      n += count;
      if (code !== 0) errors += count;
    }
    rates.set(kind, { rate: n === 0 ? 0 : errors / n, n });
  }
  return rates;
}
