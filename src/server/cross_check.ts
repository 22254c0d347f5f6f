/**
 * Cross-check mode (`--oracle HOST:PORT`): every request of a session is
 * also sent, in order, to a real ZooKeeper through a mirror session there
 * (one per session, kept across the client's reconnects), and any
 * difference in error, data, children or Stat (zxids, times and owners
 * aside) is logged and counted — as the Go zetcd's `--debug-oracle`, but
 * never crashing and never delaying the client.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { ZkClient } from "../client/client.ts";
import { JuteReader } from "../jute/reader.ts";
import { decode } from "../jute/schema.ts";
import { codeName, OpCode, opName } from "../zk/constants.ts";
import { PROTOCOL } from "../zk/protocol.ts";
import * as R from "../zk/records.ts";
import type { Counter } from "../admin/metrics.ts";

/**
 * Requests that are not sent to the oracle: they concern the client's
 * connection, not the tree (the mirror session pings on its own), and
 * ZooKeeper answers some (ping, auth) under a fixed xid. Auth is mirrored
 * apart, closeSession ends the mirror session.
 */
const NOT_MIRRORED = new Set<number>([
  OpCode.ping,
  OpCode.setWatches,
  OpCode.setWatches2,
  OpCode.sasl,
  OpCode.whoAmI,
  OpCode.getEphemerals,
]);

/**
 * How long past its timeout a mirror session outlives its session's last
 * connection: our expiry comes within a tick of the timeout, and a client
 * resuming before then must find its mirror.
 */
const EXPIRY_GRACE_MS = 1000;

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

/**
 * The mirror session of one client session on the oracle. It follows the
 * session, not a connection: a client that reconnects to its session finds
 * the same mirror (with its ephemerals and identities); the mirror ends with
 * closeSession, or once no connection has had the session for its timeout
 * (when the session has expired here). Nothing it does can fail the server.
 */
export class CrossCheck {
  /** Mirrors by oracle address and session id. */
  static readonly #mirrors = new Map<string, CrossCheck>();

  readonly #key: string;
  #timeout: number;
  /** The mirror's client; null when the oracle could not be reached. */
  readonly #oracle: Promise<ZkClient | null>;
  readonly #divergences: Counter;
  #log: Logger;
  /** Connections serving the session now. */
  #attached = 0;
  #idle?: ReturnType<typeof setTimeout>;
  #closed = false;

  private constructor(
    key: string,
    address: string,
    timeout: number,
    log: Logger,
    divergences: Counter,
  ) {
    this.#key = key;
    this.#timeout = timeout;
    this.#log = log;
    this.#divergences = divergences;
    this.#oracle = ZkClient.connect(address, { timeout }).catch((err) => {
      this.#forget(); // the session's next connection tries again
      log.warn("cross-check: cannot reach the oracle {address}: {err}", {
        address,
        err: String(err),
      });
      return null;
    });
  }

  /**
   * The mirror session of `session` on the oracle at `address`, opened on
   * the session's first connection; the caller's connection holds it until
   * {@link detach}. Never waits for the oracle.
   */
  static attach(
    address: string,
    session: { id: bigint; timeout: number },
    log: Logger,
    divergences: Counter,
  ): CrossCheck {
    const key = `${address} ${session.id}`;
    let mirror = CrossCheck.#mirrors.get(key);
    if (!mirror) {
      mirror = new CrossCheck(key, address, session.timeout, log, divergences);
      CrossCheck.#mirrors.set(key, mirror);
    }
    mirror.#attached++;
    mirror.#log = log;
    mirror.#timeout = session.timeout;
    clearTimeout(mirror.#idle);
    return mirror;
  }

  /**
   * Sends the same request to the oracle, in order, and compares its answer
   * with ours when it comes; `body` is the request without its header.
   */
  check(type: number, body: Uint8Array, ours: { err: number; body?: Uint8Array }): void {
    if (NOT_MIRRORED.has(type)) return;
    if (type === OpCode.closeSession) {
      this.#close();
      return;
    }
    const request = body.slice();
    if (type === OpCode.auth) {
      this.#mirror((oracle) => {
        const { scheme, auth } = R.AuthPacket.read(new JuteReader(request));
        return oracle.addAuth(scheme ?? "", auth ?? new Uint8Array());
      });
      return;
    }
    const mine = canonical(type, ours.err, ours.body);
    this.#mirror(async (oracle) => {
      const { err, body: theirs } = await oracle.requestRaw(type, request);
      this.#compare(type, mine, canonical(type, err, err === 0 ? theirs : undefined));
    });
  }

  /** Runs `send` on the oracle's client after every earlier one; its failures are dropped. */
  #mirror(send: (oracle: ZkClient) => Promise<void>): void {
    this.#oracle.then((oracle) => oracle && send(oracle)).catch(() => {
      // The oracle is gone or refused: only this comparison is lost.
    });
  }

  #compare(type: number, mine: string, oracle: string): void {
    if (mine === oracle) return;
    this.#divergences.inc({ op: opName(type) });
    this.#log.warn("cross-check: {op} differs: zetcd {ours}, ZooKeeper {oracle}", {
      op: opName(type),
      ours: mine,
      oracle,
    });
  }

  /**
   * The caller's connection is done with the session. The mirror stays for
   * the session's timeout (and a grace) in case the client comes back.
   */
  detach(): void {
    if (--this.#attached > 0 || this.#closed) return;
    const idle = setTimeout(() => this.#close(), this.#timeout + EXPIRY_GRACE_MS);
    Deno.unrefTimer(idle);
    this.#idle = idle;
  }

  /** Ends the mirror session (its ephemerals go on the oracle). */
  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idle);
    this.#forget();
    this.#mirror((oracle) => oracle.close());
  }

  /** Takes this mirror out of the map: the session's next connection opens a new one. */
  #forget(): void {
    if (CrossCheck.#mirrors.get(this.#key) === this) CrossCheck.#mirrors.delete(this.#key);
  }
}
