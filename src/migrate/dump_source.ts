/**
 * A `zetcd dump` file (JSON Lines, parents first) as a migration source,
 * read a batch at a time: `zetcd restore --endpoints …` writes it straight
 * into our layout, keeping every node's versions and times, so that a dump
 * of the restored tree is byte-identical to the dump it came from.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { DumpedNode } from "../cli/backup.ts";
import { isSystemPath, type Source, type SourceNode } from "./source.ts";

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
    let rest = "";
    let lineNo = 0;
    const stream = (await this.#open()).pipeThrough(new TextDecoderStream());
    const take = (line: string) => {
      lineNo++;
      if (line.trim() === "") return;
      let n: DumpedNode;
      try {
        n = JSON.parse(line);
      } catch (err) {
        throw new Error(`${this.name} line ${lineNo}: ${(err as Error).message}`);
      }
      if (isSystemPath(n.path)) return;
      batch.push({
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
      });
    };
    for await (const chunk of stream) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) take(line);
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
    }
    take(rest);
    if (batch.length > 0) yield batch;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
