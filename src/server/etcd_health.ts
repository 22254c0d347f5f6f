/**
 * Whether this server can reach an etcd quorum right now, from a small
 * linearizable read every half second (one key: the layout marker).
 *
 * etcd counts as **unavailable** once no probe has succeeded for
 * {@link UNAVAILABLE_AFTER_MS}: a failing member or a leader election
 * shorter than that goes unnoticed (requests wait for it). While etcd is
 * unavailable the server behaves as a ZooKeeper server that lost its quorum:
 * it closes its client connections and refuses handshakes, so clients see
 * ConnectionLoss instead of waiting on requests that cannot finish, and it
 * expires no session. When etcd is back, every session it holds starts a
 * fresh timeout (as ZooKeeper does after electing a leader, and etcd does
 * for leases after electing one), so clients that keep trying resume their
 * sessions with their ephemeral nodes.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { EtcdClient } from "../etcd/client.ts";

/** How long without a successful probe before etcd counts as unavailable. */
export const UNAVAILABLE_AFTER_MS = 2000;
/** Time between probes. */
const PROBE_EVERY_MS = 500;
/**
 * Most probes waiting for etcd at once. One held by a member that lost its
 * leader after taking it (a linearizable read waits there for etcd's
 * request timeout) must not hold back the next, which go to the member the
 * client moved on to.
 */
const MAX_PROBES = 4;

/** Tracks etcd's availability and reports changes. */
export class EtcdHealth {
  readonly #etcd: EtcdClient;
  readonly #key: string;
  readonly #log: Logger;
  #lastSuccess = Date.now();
  #probing = 0;
  #available = true;
  #downSince = 0;
  #lastError = "";
  #timer?: ReturnType<typeof setInterval>;
  /** Called when etcd becomes unavailable. */
  onDown: (() => void)[] = [];
  /** Called when etcd is available again. */
  onUp: (() => void)[] = [];

  constructor(etcd: EtcdClient, key: string, log: Logger) {
    this.#etcd = etcd;
    this.#key = key;
    this.#log = log;
  }

  /** Whether the last probe within {@link UNAVAILABLE_AFTER_MS} succeeded. */
  get available(): boolean {
    return this.#available;
  }

  /** Starts probing. */
  start(): void {
    this.#timer = setInterval(() => this.#tick(), PROBE_EVERY_MS);
  }

  /** Stops probing. */
  stop(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    if (this.#probing < MAX_PROBES) {
      this.#probing++;
      this.#etcd.read([{ get: this.#key, keysOnly: true }]).then(
        () => this.#succeeded(),
        (err) => this.#lastError = err instanceof Error ? err.message : String(err),
      ).finally(() => this.#probing--);
    }
    if (this.#available && Date.now() - this.#lastSuccess > UNAVAILABLE_AFTER_MS) {
      this.#available = false;
      this.#downSince = this.#lastSuccess;
      this.#log.warn(
        "etcd unavailable for {ms} ms ({reason}): closing client connections and refusing new " +
          "ones; no session expires until etcd is back",
        { ms: Date.now() - this.#lastSuccess, reason: this.#lastError || "no answer" },
      );
      for (const f of this.onDown) f();
    }
  }

  #succeeded(): void {
    this.#lastSuccess = Date.now();
    this.#lastError = "";
    if (this.#available) return;
    this.#available = true;
    this.#log.warn("etcd available again after {seconds} s: sessions start a fresh timeout", {
      seconds: ((Date.now() - this.#downSince) / 1000).toFixed(1),
    });
    for (const f of this.onUp) f();
  }
}
