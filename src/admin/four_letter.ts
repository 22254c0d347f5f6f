/**
 * Four-letter words: plain-text admin commands sent instead of a
 * ConnectRequest (`ruok`, `srvr`, …). The full set comes with the
 * production issue; these are the ones health checks rely on.
 *
 * @module
 */

/** Facts a four-letter word reports. */
export interface ServerFacts {
  version: string;
  connections: number;
  zxid: bigint;
  nodeCount?: number;
}

const WORDS = new Set([
  "ruok",
  "srvr",
  "stat",
  "mntr",
  "conf",
  "envi",
  "cons",
  "crst",
  "srst",
  "wchs",
  "wchc",
  "wchp",
  "dump",
  "isro",
  "dirs",
  "gtmk",
  "stmk",
  "hash",
]);

/** The word spelled by a connection's first 4 bytes, or null if they are a frame length. */
export function fourLetterWord(first4: Uint8Array): string | null {
  const word = String.fromCharCode(...first4);
  return WORDS.has(word) ? word : null;
}

/** The reply text to a four-letter word. */
export function answerFourLetterWord(word: string, facts: ServerFacts): string {
  switch (word) {
    case "ruok":
      return "imok";
    case "isro":
      return "rw";
    case "srvr":
      return [
        `Zookeeper version: ${facts.version}`,
        "Latency min/avg/max: 0/0.0/0",
        "Received: 0",
        "Sent: 0",
        `Connections: ${facts.connections}`,
        "Outstanding: 0",
        `Zxid: 0x${facts.zxid.toString(16)}`,
        "Mode: standalone",
        `Node count: ${facts.nodeCount ?? 0}`,
        "",
      ].join("\n");
    default:
      return `${word} is not executed because it is not in the whitelist.\n`;
  }
}
