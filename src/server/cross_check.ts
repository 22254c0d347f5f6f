/**
 * Cross-check mode (`--oracle HOST:PORT`): every request of a session is
 * also sent, in order, to a real ZooKeeper through a mirror session there,
 * and any difference in error, data, children or Stat (zxids, times and
 * owners aside) is logged and counted — as the Go zetcd's `--debug-oracle`,
 * but never crashing and never delaying the client.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { ZkClient } from "../client/client.ts";
import type { JuteReader } from "../jute/reader.ts";
import { decode } from "../jute/schema.ts";
import { codeName, OpCode, opName } from "../zk/constants.ts";
import { PROTOCOL } from "../zk/protocol.ts";
import type { Counter } from "../admin/metrics.ts";

/** Requests that are not compared: they concern the connection, not the tree. */
const NOT_COMPARED = new Set<number>([
  OpCode.ping,
  OpCode.closeSession,
  OpCode.auth,
  OpCode.setWatches,
  OpCode.setWatches2,
  OpCode.sasl,
  OpCode.whoAmI,
  OpCode.getEphemerals,
]);

/** Stat fields that differ between any two servers. */
const VOLATILE = new Set(["czxid", "mzxid", "pzxid", "ctime", "mtime", "ephemeralOwner"]);

function canonical(type: number, err: number, body: Uint8Array | JuteReader | undefined): string {
  if (err !== 0) return codeName(err);
  const record = PROTOCOL.get(type)?.response;
  if (!record || body === undefined) return "OK";
  try {
    const value = body instanceof Uint8Array ? decode(record, body) : record.read(body);
    return JSON.stringify(value, (key, v) => {
      if (VOLATILE.has(key)) return undefined;
      // Children come in no particular order.
      if ((key === "children" || key === "ephemerals") && Array.isArray(v)) return [...v].sort();
      if (typeof v === "bigint") return String(v);
      if (v instanceof Uint8Array) {
        return Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("");
      }
      return v;
    });
  } catch {
    return "undecodable";
  }
}

/** The mirror session of one client session. */
export class CrossCheck {
  readonly #oracle: ZkClient;
  readonly #log: Logger;
  readonly #divergences: Counter;

  private constructor(oracle: ZkClient, log: Logger, divergences: Counter) {
    this.#oracle = oracle;
    this.#log = log;
    this.#divergences = divergences;
  }

  /** Opens a mirror session on the oracle; null (logged) when it cannot be reached. */
  static async open(
    address: string,
    timeout: number,
    log: Logger,
    divergences: Counter,
  ): Promise<CrossCheck | null> {
    try {
      return new CrossCheck(await ZkClient.connect(address, { timeout }), log, divergences);
    } catch (err) {
      log.warn("cross-check: cannot reach the oracle {address}: {err}", {
        address,
        err: String(err),
      });
      return null;
    }
  }

  /**
   * Sends the same request to the oracle and compares its answer with ours
   * when it comes; `body` is the request without its header.
   */
  check(type: number, body: Uint8Array, ours: { err: number; body?: Uint8Array }): void {
    const mine = canonical(type, ours.err, ours.body);
    const sent = this.#oracle.requestRaw(type, body.slice());
    if (NOT_COMPARED.has(type)) return;
    sent.then(({ err, body: theirs }) => {
      const oracle = canonical(type, err, err === 0 ? theirs : undefined);
      if (mine === oracle) return;
      this.#divergences.inc({ op: opName(type) });
      this.#log.warn("cross-check: {op} differs: zetcd {ours}, ZooKeeper {oracle}", {
        op: opName(type),
        ours: mine,
        oracle,
      });
    }).catch(() => {});
  }

  /** Ends the mirror session. */
  close(): Promise<void> {
    return this.#oracle.close();
  }
}
