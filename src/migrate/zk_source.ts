/**
 * A live ZooKeeper as a migration source: `zk://host:port[,host:port][/chroot]`,
 * walked through the client protocol with our own client, depth first, a
 * batch of nodes at a time (their getData, getACL and getChildren requests
 * pipelined on one session).
 *
 * The client protocol hides container and TTL nodes (ZooKeeper reports
 * them with ephemeralOwner 0), so they are read as persistent nodes unless
 * named with `containers`.
 *
 * @module
 */

import { ZkClient } from "../client/client.ts";
import { childPath } from "../zk/path.ts";
import { codeName } from "../zk/constants.ts";
import { ZkError } from "../zk/errors.ts";
import { dataBytes, isSystemPath, listEphemeral, type Source, type SourceNode } from "./source.ts";

/** Where a `zk://` URL points. */
export interface ZkUrl {
  hosts: string[];
  /** `/` or a path every source path starts with. */
  chroot: string;
}

/** Parses `zk://host:port[,host:port…][/chroot]`. */
export function parseZkUrl(url: string): ZkUrl {
  const m = /^zk:\/\/([^/]+)(\/.*)?$/.exec(url);
  if (!m) throw new Error(`not a zk:// URL: ${url} (expected zk://host:port[,host:port][/chroot])`);
  const hosts = m[1].split(",").map((h) => h.trim()).filter((h) => h !== "");
  for (const h of hosts) {
    if (!/^[^:]+:\d+$/.test(h) && !/^\[.+\]:\d+$/.test(h)) {
      throw new Error(`bad host in ${url}: ${h} (expected host:port)`);
    }
  }
  let chroot = m[2] ?? "/";
  if (chroot.length > 1 && chroot.endsWith("/")) chroot = chroot.slice(0, -1);
  return { hosts, chroot };
}

/** Options of {@link ZkSource.open}. */
export interface ZkSourceOptions {
  /** `scheme:credentials` pairs to add to the session, e.g. `digest:user:pw`. */
  auth?: string[];
  /** Paths (in the target tree) to copy as containers. */
  containers?: string[];
}

const MIN_BATCH = 1;
const MAX_BATCH = 256;
/** A batch holding more data than this is followed by a smaller one. */
const BATCH_BYTES = 4 * 1024 * 1024;

/** A ZooKeeper server walked through the client protocol. */
export class ZkSource implements Source {
  readonly name: string;
  readonly ephemerals: string[] = [];
  readonly #zk: ZkClient;
  readonly #chroot: string;
  readonly #containers: Set<string>;

  private constructor(name: string, zk: ZkClient, chroot: string, containers: string[]) {
    this.name = name;
    this.#zk = zk;
    this.#chroot = chroot;
    this.#containers = new Set(containers);
  }

  /** Connects to the first host of `url` that answers and adds the credentials. */
  static async open(url: string, options: ZkSourceOptions = {}): Promise<ZkSource> {
    const { hosts, chroot } = parseZkUrl(url);
    const failures: string[] = [];
    for (const host of hosts) {
      let zk: ZkClient;
      try {
        zk = await ZkClient.connect(host, { timeout: 30_000 });
      } catch (err) {
        failures.push(`${host}: ${(err as Error).message}`);
        continue;
      }
      try {
        for (const a of options.auth ?? []) {
          const i = a.indexOf(":");
          if (i <= 0) throw new Error(`bad --auth ${a} (expected scheme:credentials)`);
          await zk.addAuth(a.slice(0, i), a.slice(i + 1));
        }
      } catch (err) {
        await zk.close();
        throw err;
      }
      return new ZkSource(url, zk, chroot, options.containers ?? []);
    }
    throw new Error(`cannot connect to ${url}: ${failures.join("; ")}`);
  }

  #sourcePath(path: string): string {
    if (this.#chroot === "/") return path;
    return path === "/" ? this.#chroot : this.#chroot + path;
  }

  async *walk(): AsyncGenerator<SourceNode[]> {
    this.ephemerals.length = 0;
    // Paths still to visit; children are pushed in reverse so that they
    // come off in name order. Only names of the current path's ancestors'
    // unvisited siblings are held.
    const stack = ["/"];
    let size = 16;
    while (stack.length > 0) {
      const paths: string[] = [];
      while (paths.length < size && stack.length > 0) {
        const p = stack.pop()!;
        if (!isSystemPath(p)) paths.push(p);
      }
      const read = await Promise.all(paths.map((p) => this.#read(p)));
      const batch: SourceNode[] = [];
      const next: string[] = [];
      for (const r of read) {
        if (!r || r === "ephemeral") continue;
        batch.push(r.node);
        for (const name of r.children.sort()) next.push(childPath(r.node.path, name));
      }
      for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]);
      const bytes = dataBytes(batch);
      if (bytes > BATCH_BYTES) size = Math.max(MIN_BATCH, size >> 1);
      else if (bytes < BATCH_BYTES / 4) size = Math.min(MAX_BATCH, size * 2);
      if (batch.length > 0) yield batch;
    }
  }

  /** One node with its children's names; null when it vanished meanwhile. */
  async #read(
    path: string,
  ): Promise<{ node: SourceNode; children: string[] } | "ephemeral" | null> {
    const full = this.#sourcePath(path);
    try {
      const [{ data, stat }, { acl }, { children }] = await Promise.all([
        this.#zk.getData(full),
        this.#zk.getACL(full),
        this.#zk.getChildren(full),
      ]);
      // The target's root also holds /zookeeper, which a chroot does not.
      if (path === "/" && this.#chroot !== "/") {
        stat.numChildren++;
        stat.cversion++;
      }
      if (stat.ephemeralOwner !== 0n) {
        listEphemeral(this.ephemerals, path);
        return "ephemeral";
      }
      return {
        node: {
          path,
          data,
          acl,
          version: stat.version,
          cversion: stat.cversion,
          aversion: stat.aversion,
          ctime: stat.ctime,
          mtime: stat.mtime,
          numChildren: stat.numChildren,
          mode: this.#containers.has(path) ? 4 : 0,
          children,
        },
        children,
      };
    } catch (err) {
      if (err instanceof ZkError && err.code === -101) return null; // deleted meanwhile
      if (err instanceof ZkError) {
        const hint = err.code === -102
          ? " (give credentials with --auth digest:user:password)"
          : "";
        throw new Error(`cannot read ${full} from ${this.name}: ${codeName(err.code)}${hint}`);
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.#zk.close();
  }
}
