/**
 * The `zetcd dump` file format (JSON Lines, parents first), its reader,
 * and a dump file as a migration source, read a batch at a time:
 * `zetcd migrate --from-dump` writes it straight into our layout, keeping
 * every node's versions and times, so that a dump of the restored tree is
 * byte-identical to the dump it came from.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { isSystemPath, maskedDigestUser, type Source, type SourceNode } from "./source.ts";

/** One node of a dump: one line of the file. */
export interface DumpedNode {
  path: string;
  /** Base64, or null. */
  data: string | null;
  acl: { perms: number; scheme: string; id: string }[];
  stat: {
    version: number;
    cversion: number;
    aversion: number;
    ctime: string;
    mtime: string;
    /** Absent in dumps of releases before the direct restore. */
    numChildren?: number;
  };
}

/** The line of a dump that holds a node. */
export function toDumpedNode(n: SourceNode): DumpedNode {
  return {
    path: n.path,
    data: n.data === null ? null : Buffer.from(n.data).toString("base64"),
    acl: n.acl.map((a) => ({ perms: a.perms, scheme: a.id.scheme ?? "", id: a.id.id ?? "" })),
    stat: {
      version: n.version,
      cversion: n.cversion,
      aversion: n.aversion,
      ctime: String(n.ctime),
      mtime: String(n.mtime),
      numChildren: n.numChildren,
    },
  };
}

/** The node a line of a dump holds. */
export function fromDumpedNode(n: DumpedNode): SourceNode {
  return {
    path: n.path,
    data: n.data === null ? null : new Uint8Array(Buffer.from(n.data, "base64")),
    acl: n.acl.map((a) => ({ perms: a.perms, id: { scheme: a.scheme, id: a.id } })),
    version: n.stat.version,
    cversion: n.stat.cversion,
    aversion: n.stat.aversion,
    ctime: BigInt(n.stat.ctime),
    mtime: BigInt(n.stat.mtime),
    numChildren: n.stat.numChildren ?? 0,
    mode: 0,
  };
}

/** A line of a dump that cannot be restored; the message names the file and the line. */
export class DumpLineError extends Error {
  override name = "DumpLineError";

  /** The line `line` of the dump `file` is wrong because of `why`. */
  constructor(file: string, line: number, why: string) {
    super(`${file} line ${line}: ${why}`);
  }
}

/** Why a dumped node cannot be written back as it is, or null. */
function refusal(n: DumpedNode): string | null {
  if (typeof n?.path !== "string" || !Array.isArray(n.acl) || typeof n.stat !== "object") {
    return "not a node of a dump (expected path, data, acl and stat)";
  }
  for (const a of n.acl) {
    const user = maskedDigestUser(a.scheme, a.id);
    if (user === null) continue;
    return `${n.path}: masked ACL entry digest ${a.id} (the dump was made without ` +
      `${user}'s credentials; restored, it would lock ${user} out): dump again with ` +
      `--auth digest:${user}:PASSWORD`;
  }
  return null;
}

/**
 * The nodes of a dump, one line at a time. A line that is not JSON, or
 * that holds an ACL masked by the server it was dumped from, stops the
 * reading with a {@link DumpLineError} naming `name` (the file) and the line.
 */
export async function* readDump(
  name: string,
  bytes: ReadableStream<Uint8Array>,
): AsyncGenerator<DumpedNode> {
  let rest = "";
  let lineNo = 0;
  const parse = (line: string): DumpedNode | null => {
    lineNo++;
    if (line.trim() === "") return null;
    let n: DumpedNode;
    try {
      n = JSON.parse(line);
    } catch (err) {
      throw new DumpLineError(name, lineNo, (err as Error).message);
    }
    const why = refusal(n);
    if (why) throw new DumpLineError(name, lineNo, why);
    return n;
  };
  for await (const chunk of bytes.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    for (const line of lines) {
      const n = parse(line);
      if (n) yield n;
    }
  }
  const n = parse(rest);
  if (n) yield n;
}

const BATCH = 200;

/** Reads the lines of a dump from a stream of bytes. */
export class DumpSource implements Source {
  readonly name: string;
  readonly ephemerals: string[] = [];
  readonly #open: () => Promise<ReadableStream<Uint8Array>>;

  /** `open` is called once per walk, for a fresh stream of the dump. */
  constructor(name: string, open: () => Promise<ReadableStream<Uint8Array>>) {
    this.name = name;
    this.#open = open;
  }

  async *walk(): AsyncGenerator<SourceNode[]> {
    let batch: SourceNode[] = [];
    for await (const n of readDump(this.name, await this.#open())) {
      if (isSystemPath(n.path)) continue;
      batch.push(fromDumpedNode(n));
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
