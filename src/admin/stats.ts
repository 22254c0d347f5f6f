/**
 * Request statistics, per server and per connection, as ZooKeeper keeps
 * them for its four-letter words (`srvr`, `stat`, `cons`, `mntr`).
 *
 * @module
 */

/** Latency and packet counters; `reset()` is `srst` / `crst`. */
export class Counters {
  received = 0;
  sent = 0;
  minLatency = 0;
  maxLatency = 0;
  #latencySum = 0;
  #latencyCount = 0;

  /** Records one answered request that took `ms`. */
  request(ms: number): void {
    const rounded = Math.round(ms);
    if (this.#latencyCount === 0 || rounded < this.minLatency) this.minLatency = rounded;
    if (rounded > this.maxLatency) this.maxLatency = rounded;
    this.#latencySum += ms;
    this.#latencyCount++;
  }

  /** Mean latency, ms. */
  get avgLatency(): number {
    return this.#latencyCount === 0 ? 0 : this.#latencySum / this.#latencyCount;
  }

  /** Starts counting afresh. */
  reset(): void {
    this.received =
      this.sent =
      this.minLatency =
      this.maxLatency =
        0;
    this.#latencySum = this.#latencyCount = 0;
  }
}

/** What `cons` shows of one connection. */
export interface ConnectionInfo {
  /** `host:port` of the client. */
  peer: string;
  counters: Counters;
  /** Session id once the handshake is done. */
  sessionId?: bigint;
  /** Negotiated session timeout, ms. */
  timeout?: number;
  /** When the connection was established, ms since the epoch. */
  established: number;
  /** Last operation's short name (ZooKeeper's `lop`), last xid and zxid, last response time and latency. */
  lastOp?: string;
  lastXid?: number;
  lastZxid?: bigint;
  lastResponse?: number;
  lastLatency?: number;
  /** Closes the connection. */
  close(): void;
}

/** ZooKeeper's four-letter short names of opcodes (`lop=` in `cons`). */
export const SHORT_OP_NAMES: Record<number, string> = {
  0: "NOTI",
  1: "CREA",
  2: "DELE",
  3: "EXIS",
  4: "GETD",
  5: "SETD",
  6: "GETA",
  7: "SETA",
  8: "GETC",
  9: "SYNC",
  11: "PING",
  12: "GET2",
  13: "CKVR",
  14: "MULT",
  15: "CRE2",
  16: "RECO",
  17: "CHKW",
  18: "REMW",
  19: "CCON",
  21: "CTTL",
  22: "MLTR",
  100: "SETA",
  101: "SETW",
  102: "SASL",
  103: "GETE",
  104: "GACN",
  105: "STW2",
  106: "ADDW",
  107: "WHAM",
  [-10]: "SESS",
  [-11]: "CLOS",
};
