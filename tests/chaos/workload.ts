/**
 * The load of the chaos runs: clients (node-zookeeper-client, with every
 * server in their connection string) doing random reads and writes on a
 * few znodes and sequential creates under one parent. Every operation's
 * invocation, response and result is recorded for the linearizability
 * check; a ConnectionLoss is recorded as an unknown outcome.
 *
 * @module
 */

import { Code, codeName } from "../../src/zk/constants.ts";
import type { Input, Operation, Output } from "../_util/linearizability.ts";
import { CreateMode, Nzk, NzkError } from "../_util/nzk.ts";

/** A sequential create: its data names it, so unacknowledged ones can be traced. */
export interface SequentialCreate {
  data: string;
  /** The name the server gave, when acknowledged. */
  name?: string;
  outcome: "ok" | "unknown" | "failed";
}

/** What the load did. */
export interface LoadRecord {
  history: Operation[];
  sequential: SequentialCreate[];
  /** Errors no fault should cause (e.g. a session expiring). */
  anomalies: string[];
  clients: { id: bigint; states: string[]; client: Nzk }[];
  /** The mzxid each successful get and set reported. */
  mzxids: Map<Operation, bigint>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Runs `clients` workers against `hosts` until `stop` resolves. */
export async function runLoad(options: {
  hosts: string;
  root: string;
  keys: number;
  clients: number;
  stop: Promise<void>;
  sessionTimeout?: number;
}): Promise<LoadRecord> {
  const { root } = options;
  const record: LoadRecord = {
    history: [],
    sequential: [],
    anomalies: [],
    clients: [],
    mzxids: new Map(),
  };
  const setup = await Nzk.connect(options.hosts, 10_000);
  await setup.create(root);
  await setup.create(`${root}/seq`);
  await setup.close();
  let stopped = false;
  options.stop.then(() => stopped = true);
  const keys = Array.from({ length: options.keys }, (_, i) => `${root}/k${i}`);
  const worker = async (n: number) => {
    const zk = await Nzk.connect(options.hosts, options.sessionTimeout ?? 10_000);
    const me = { id: zk.sessionId, states: [] as string[], client: zk };
    zk.raw.on("state", (s: unknown) => me.states.push(String(s)));
    record.clients.push(me);
    const versions = new Map<string, number>();
    let seq = 0;
    while (!stopped) {
      const roll = Math.random();
      if (roll < 0.1) {
        const created: SequentialCreate = { data: `c${n}-s${seq++}`, outcome: "unknown" };
        record.sequential.push(created);
        try {
          const path = await zk.create(
            `${root}/seq/n-`,
            encoder.encode(created.data),
            CreateMode.PERSISTENT_SEQUENTIAL,
          );
          created.name = path.slice(`${root}/seq/`.length);
          created.outcome = "ok";
        } catch (err) {
          if (!isConnectionLoss(err)) created.outcome = "failed";
          note(err, "sequential create");
        }
        continue;
      }
      const key = keys[Math.floor(Math.random() * keys.length)];
      const data = `c${n}-${seq++}`;
      const input: Input = roll < 0.5
        ? { op: "get" }
        : roll < 0.65
        ? { op: "set", data, version: -1 }
        : roll < 0.8
        ? { op: "set", data, version: versions.get(key) ?? 0 }
        : roll < 0.92
        ? { op: "create", data }
        : { op: "delete", version: Math.random() < 0.5 ? -1 : versions.get(key) ?? 0 };
      const op: Operation = {
        client: n,
        key,
        input,
        output: { unknown: true },
        call: performance.now(),
        ret: Infinity,
      };
      record.history.push(op);
      try {
        const [output, mzxid] = await perform(zk, key, input);
        op.output = output;
        if (mzxid !== undefined) record.mzxids.set(op, mzxid);
        if ("ok" in op.output && op.output.version !== undefined) {
          versions.set(key, op.output.version);
        }
      } catch (err) {
        op.output = outputOf(err);
        note(err, `${input.op} ${key}`);
      }
      op.ret = performance.now();
    }
  };
  const note = (err: unknown, what: string) => {
    if (isConnectionLoss(err) || isExpected(err)) return;
    record.anomalies.push(`${what}: ${err instanceof Error ? err.message : err}`);
  };
  await Promise.all(Array.from({ length: options.clients }, (_, n) => worker(n)));
  return record;
}

async function perform(zk: Nzk, key: string, input: Input): Promise<[Output, bigint?]> {
  switch (input.op) {
    case "get": {
      const { data, stat } = await zk.getData(key);
      const text = decoder.decode(data ?? new Uint8Array());
      return [{ ok: true, data: text, version: stat.version }, stat.mzxid];
    }
    case "set": {
      const stat = await zk.setData(key, encoder.encode(input.data), input.version);
      return [{ ok: true, version: stat.version }, stat.mzxid];
    }
    case "create":
      await zk.create(key, encoder.encode(input.data));
      return [{ ok: true }];
    case "delete":
      await zk.remove(key, input.version);
      return [{ ok: true }];
  }
}

/**
 * ZooKeeper's session guarantees, checked on a history whose reads may come
 * from a replica: each client's successive views of a key (the mzxid of
 * its successful reads and writes) never go back. Returns the violations.
 */
export function sessionOrderViolations(record: Pick<LoadRecord, "history" | "mzxids">): string[] {
  const last = new Map<string, { mzxid: bigint; op: Operation }>();
  const out: string[] = [];
  for (const op of record.history) {
    const mzxid = record.mzxids.get(op);
    if (mzxid === undefined) continue;
    const id = `${op.client} ${op.key}`;
    const before = last.get(id);
    if (before && mzxid < before.mzxid) {
      out.push(
        `client ${op.client} saw ${op.key} at mzxid ${mzxid} after mzxid ${before.mzxid} ` +
          `(${op.input.op} after ${before.op.input.op})`,
      );
    }
    if (!before || mzxid > before.mzxid) last.set(id, { mzxid, op });
  }
  return out;
}

function isConnectionLoss(err: unknown): boolean {
  return err instanceof NzkError && err.code === Code.CONNECTIONLOSS;
}

function isExpected(err: unknown): boolean {
  return err instanceof NzkError &&
    [Code.NONODE, Code.NODEEXISTS, Code.BADVERSION].includes(err.code as -101);
}

function outputOf(err: unknown): Output {
  if (!(err instanceof NzkError)) return { unknown: true };
  switch (err.code) {
    case Code.NONODE:
    case Code.NODEEXISTS:
    case Code.BADVERSION:
      return { err: codeName(err.code) as "NONODE" | "NODEEXISTS" | "BADVERSION" };
    default:
      return { unknown: true };
  }
}
