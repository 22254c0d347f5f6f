/**
 * The Go zetcd's etcd layout as a migration source (see the protocol
 * document, "What the original Go zetcd chose"). Each znode is a set of
 * keys `<prefix><tag byte><depth byte><path>`, where the depth byte counts
 * the path's `/` (the root is `\x01/`):
 *
 * | tag | value | read as |
 * |---|---|---|
 * | 01 | raw data; lease = owner of an ephemeral | data |
 * | 02 | data version, Go varint | version |
 * | 03 | empty | etcd version − 1 = cversion |
 * | 04 | ctime µs, Go varint | existence marker |
 * | 05 | mtime µs, Go varint | also the children index |
 * | 06 | gob ACL list | etcd version − 1 = aversion |
 * | 07 | children created, Go varint | the sequence counter |
 *
 * The walk pages through the 04 keys (depth first in the byte order, so
 * parents come before children) and reads every page's other keys with one
 * range per tag, all at the revision of the first read: the copy is a
 * consistent snapshot even while the Go zetcd keeps running. The root has
 * no keys of its own.
 *
 * @module
 */

import type { EtcdClient, GetOp, KeyValue } from "../etcd/client.ts";
import { OPEN_ACL } from "../zk/acl.ts";
import { depthOf } from "../zk/path.ts";
import { decodeGobAcls, decodeVarint } from "./gob.ts";
import { listEphemeral, type Source, type SourceNode } from "./source.ts";

const DATA = 1, VERSION = 2, CVERSION = 3, CTIME = 4, MTIME = 5, ACL = 6, COUNTER = 7;
const PAGE = 100;
const DATA_PAGE = 16;

/** The Go zetcd's depth byte: the number of `/` in the path, so the root's is 1, as `/a`'s. */
function slashes(path: string): number {
  return path === "/" ? 1 : depthOf(path);
}

/** A tree in the Go zetcd's layout under an etcd prefix (normally `/zk/`). */
export class ZetcdSource implements Source {
  readonly name: string;
  readonly ephemerals: string[] = [];
  readonly #etcd: EtcdClient;
  readonly #prefix: string;

  constructor(etcd: EtcdClient, prefix: string) {
    this.#etcd = etcd;
    this.#prefix = prefix;
    this.name = `the Go zetcd layout under ${prefix}`;
  }

  /** The key of `path`'s `tag` value. */
  key(tag: number, path: string): string {
    const depth = slashes(path);
    if (depth > 127) throw new Error(`path too deep for the Go zetcd layout: ${path}`);
    return this.#prefix + String.fromCharCode(tag, depth) + path;
  }

  #pathOf(key: string): string {
    return key.slice(this.#prefix.length + 2);
  }

  async *walk(): AsyncGenerator<SourceNode[]> {
    this.ephemerals.length = 0;
    const tag = this.#prefix + String.fromCharCode(CTIME);
    const end = this.#prefix + String.fromCharCode(CTIME + 1);
    // Pin every read to the revision of the first one.
    const first = await this.#etcd.read([{ get: tag, end, limit: 1, keysOnly: true }]);
    const revision = first.revision;
    yield [await this.#root(revision)];
    let cursor = tag;
    for (;;) {
      const page = await this.#etcd.read([{
        get: cursor,
        end,
        limit: PAGE,
        keysOnly: true,
        revision,
      }]);
      const kvs = page.results[0]!.kvs;
      if (kvs.length === 0) return;
      cursor = kvs.at(-1)!.key + "\0";
      const nodes = await this.#page(kvs.map((kv) => this.#pathOf(kv.key)), revision);
      if (nodes.length > 0) yield nodes;
    }
  }

  /** The root: synthesised by the Go zetcd; it also gets our `/zookeeper` child. */
  async #root(revision: bigint): Promise<SourceNode> {
    const res = await this.#etcd.read([
      { get: this.key(CVERSION, "/"), revision },
      { get: this.key(COUNTER, "/"), revision },
      this.#childCount("/", revision),
    ]);
    const [cv, counter, count] = res.results.map((r) => r!);
    const numChildren = count.count;
    return {
      path: "/",
      data: new Uint8Array(),
      acl: OPEN_ACL,
      version: 0,
      aversion: 0,
      cversion: (cv.kvs[0] ? Number(cv.kvs[0].version) - 1 : numChildren) + 1,
      ctime: 0n,
      mtime: 0n,
      numChildren: numChildren + 1,
      mode: 0,
      creates: counter.kvs[0] ? Number(decodeVarint(counter.kvs[0].value)) + 1 : undefined,
    };
  }

  #childCount(path: string, revision: bigint): GetOp {
    const depth = path === "/" ? 1 : depthOf(path) + 1;
    const under = path === "/" ? "/" : `${path}/`;
    return {
      get: this.#prefix + String.fromCharCode(MTIME, depth) + under,
      prefix: true,
      countOnly: true,
      revision,
    };
  }

  /** Reads the values of the nodes `paths` (consecutive in key order). */
  async #page(paths: string[], revision: bigint): Promise<SourceNode[]> {
    const firstPath = paths[0], lastPath = paths.at(-1)!;
    const span = (tag: number): GetOp => ({
      get: this.key(tag, firstPath),
      end: this.key(tag, lastPath) + "\0",
      revision,
    });
    const tags = [VERSION, CVERSION, MTIME, ACL, COUNTER, CTIME];
    const res = await this.#etcd.read([
      ...tags.map(span),
      ...paths.map((p) => this.#childCount(p, revision)),
    ]);
    const byTag = new Map<number, Map<string, KeyValue>>();
    tags.forEach((t, i) => {
      byTag.set(t, new Map(res.results[i]!.kvs.map((kv) => [this.#pathOf(kv.key), kv])));
    });
    const data = new Map<string, KeyValue>();
    let cursor = this.key(DATA, firstPath);
    const dataEnd = this.key(DATA, lastPath) + "\0";
    for (;;) {
      const r = await this.#etcd.read([{ get: cursor, end: dataEnd, limit: DATA_PAGE, revision }]);
      const kvs = r.results[0]!.kvs;
      for (const kv of kvs) data.set(this.#pathOf(kv.key), kv);
      if (kvs.length < DATA_PAGE) break;
      cursor = kvs.at(-1)!.key + "\0";
    }
    const nodes: SourceNode[] = [];
    paths.forEach((path, i) => {
      const get = (t: number) => byTag.get(t)!.get(path);
      const dataKv = data.get(path);
      if (dataKv && dataKv.lease !== 0n) {
        listEphemeral(this.ephemerals, path);
        return;
      }
      const varint = (t: number) => {
        const kv = get(t);
        return kv ? decodeVarint(kv.value) : 0n;
      };
      const aclKv = get(ACL);
      const counter = get(COUNTER);
      nodes.push({
        path,
        data: dataKv?.value ?? new Uint8Array(),
        acl: aclKv && aclKv.value.byteLength > 0 ? decodeGobAcls(aclKv.value) : OPEN_ACL,
        version: Number(varint(VERSION)),
        cversion: get(CVERSION) ? Number(get(CVERSION)!.version) - 1 : 0,
        aversion: aclKv ? Number(aclKv.version) - 1 : 0,
        ctime: varint(CTIME) / 1000n,
        mtime: varint(MTIME) / 1000n,
        numChildren: res.results[tags.length + i]!.count,
        mode: 0,
        creates: counter ? Number(decodeVarint(counter.value)) : undefined,
      });
    });
    return nodes;
  }

  /** Nothing to close: the etcd client is the caller's. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
