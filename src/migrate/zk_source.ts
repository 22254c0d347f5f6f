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
import { Code, codeName } from "../zk/constants.ts";
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

/** Options of {@link ZkSource.open} and {@link ZkSource.of}. */
export interface ZkSourceOptions {
  /** `scheme:credentials` pairs to add to the session, e.g. `digest:user:pw`. */
  auth?: string[];
  /** Paths (in the target tree) to copy as containers. */
  containers?: string[];
  /** Where the walk starts (default `/`): a subtree, whose paths are kept as they are. */
  root?: string;
}

/** Splits an `--auth` value, `scheme:credentials` (e.g. `digest:user:password`). */
export function parseAuth(value: string): { scheme: string; credentials: string } {
  const i = value.indexOf(":");
  if (i <= 0) {
    throw new Error("bad --auth value (expected scheme:credentials, e.g. digest:user:password)");
  }
  return { scheme: value.slice(0, i), credentials: value.slice(i + 1) };
}

/**
 * Adds `scheme:credentials` pairs to a session; a refusal names the
 * scheme, never the credentials.
 */
export async function addAuths(zk: ZkClient, auth: string[]): Promise<void> {
  for (const value of auth) {
    const { scheme, credentials } = parseAuth(value);
    try {
      await zk.addAuth(scheme, credentials);
    } catch (err) {
      if (!(err instanceof ZkError)) throw err;
      throw new Error(`--auth ${scheme}:…: ${codeName(err.code)}`);
    }
  }
}

/**
 * An error of a request as an operator reads it: a ZooKeeper code by name,
 * with what to do about NOAUTH; anything else by its message.
 */
export function describeError(err: unknown): string {
  if (!(err instanceof ZkError)) return err instanceof Error ? err.message : String(err);
  const hint = err.code === Code.NOAUTH
    ? " (give credentials with --auth digest:user:password)"
    : "";
  return `${codeName(err.code)}${hint}`;
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
  readonly #root: string;
  readonly #containers: Set<string>;

  private constructor(name: string, zk: ZkClient, chroot: string, options: ZkSourceOptions) {
    this.name = name;
    this.#zk = zk;
    this.#chroot = chroot;
    this.#root = options.root ?? "/";
    this.#containers = new Set(options.containers ?? []);
  }

  /**
   * A source read through a session already open (with its credentials);
   * `name` says where it is, for messages. Closing the source closes the
   * session.
   */
  static of(zk: ZkClient, name: string, options: Omit<ZkSourceOptions, "auth"> = {}): ZkSource {
    return new ZkSource(name, zk, "/", options);
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
        await addAuths(zk, options.auth ?? []);
      } catch (err) {
        await zk.close();
        throw err;
      }
      return new ZkSource(url, zk, chroot, options);
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
    const stack = [this.#root];
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
      if (err instanceof ZkError && err.code === Code.NONODE) return null; // deleted meanwhile
      throw new Error(`cannot read ${full} from ${this.name}: ${describeError(err)}`);
    }
  }

  async close(): Promise<void> {
    await this.#zk.close();
  }
}
