/**
 * The live server list in `/zookeeper/config`. Every server of a prefix
 * registers itself under `P member/<N>` (N = the lowest free number, from
 * 1), on a lease it keeps alive, with the client address it advertises as
 * the value. Whenever a member key comes or goes (the watch stream shows
 * it to every server), each server rewrites `/zookeeper/config` if its
 * server lines no longer match the members, in ZooKeeper's dynamic-config
 * format:
 *
 * ```
 * server.1=zk1:2888:3888:participant;zk1:2181
 * server.2=zk2:2888:3888:participant;zk2:2181
 * version=1c4
 * ```
 *
 * The quorum and election ports (2888:3888, ZooKeeper's conventional ones)
 * are placeholders: ZooKeeper's parser needs two different ports there, and
 * zetcd servers have no such ports. Clients use what follows `;`. The
 * `version` is the etcd revision (hex) the list was read at, plus one: it
 * grows with every change. Being an ordinary put of the node's key, a
 * change moves the node's mzxid and version and fires NodeDataChanged at
 * its data watches (Curator's EnsembleTracker, `zkCli.sh config -w`).
 *
 * Writers race harmlessly: each write holds only while the node's mod
 * revision is the one read, and a writer that lost reads again and finds
 * the lines right, or writes them again.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { EtcdClient, WatchEvent } from "../etcd/client.ts";
import type { Keys } from "../store/keys.ts";
import { decodeNode, encodeNode } from "../store/values.ts";

/** The node that shows the members. */
export const CONFIG_PATH = "/zookeeper/config";

/** TTL of a member's lease, s: a server that dies leaves the list this long after. */
export const MEMBER_LEASE_TTL = 10;

/** Placeholder quorum and election ports of a server line (ZooKeeper needs two, different). */
const QUORUM_PORTS = "2888:3888";

/** How long leaving the list may hold up a shutdown, ms. */
const STOP_LIMIT_MS = 2000;

/** Rounds of a rewrite that lost races before it waits for the next change. */
const MAX_ROUNDS = 20;

/** One live server: its number and the address it advertises to clients. */
export interface Member {
  id: number;
  address: string;
}

/** `HOST:PORT` (or `[V6]:PORT`) split; null when it is not of that form. */
export function splitHostPort(value: string): { host: string; port: number } | null {
  const m = /^(.*):(\d+)$/.exec(value);
  if (!m || m[1] === "" || Number(m[2]) > 65535) return null;
  return { host: m[1].replace(/^\[(.*)\]$/, "$1"), port: Number(m[2]) };
}

/**
 * The address a server advertises by default: where it listens, or the
 * machine's hostname when it listens on every interface.
 */
export function defaultAdvertise(hostname: string, port: number): string {
  const any = hostname === "0.0.0.0" || hostname === "::" || hostname === "";
  return joinHostPort(any ? Deno.hostname() : hostname, port);
}

function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The server lines of `members`, ordered by number, each ending with a newline. */
export function serverLines(members: Member[]): string {
  return [...members].sort((a, b) => a.id - b.id).map(({ id, address }) => {
    const hp = splitHostPort(address);
    const host = !hp ? address : hp.host.includes(":") ? `[${hp.host}]` : hp.host;
    return `server.${id}=${host}:${QUORUM_PORTS}:participant;${address}\n`;
  }).join("");
}

/** The whole content of `/zookeeper/config` for `members` at config version `version`. */
export function configText(members: Member[], version: bigint): string {
  return `${serverLines(members)}version=${version.toString(16)}`;
}

/** The server lines of a config text (its `version=` line dropped). */
function linesOf(text: string): string {
  return text.split("\n").filter((l) => l.startsWith("server.")).map((l) => `${l}\n`).join("");
}

/** Options of {@link Members}. */
export interface MembersOptions {
  /** `HOST:PORT` clients should use to reach this server. */
  advertise: string;
  /** Lease TTL in seconds (default {@link MEMBER_LEASE_TTL}). */
  leaseTtl?: number;
}

/** This server's membership, and the upkeep of `/zookeeper/config`. */
export class Members {
  readonly #etcd: EtcdClient;
  readonly #keys: Keys;
  readonly #log: Logger;
  readonly #advertise: string;
  readonly #ttl: number;
  #lease = 0n;
  #id = 0;
  #timer?: ReturnType<typeof setInterval>;
  #renewing = false;
  /** Whether a failed renewal was logged (once per run of failures). */
  #warned = false;
  #stopped = false;
  /** The rewrite running now, and whether another change came in meanwhile. */
  #rewriting?: Promise<void>;
  #again = false;

  constructor(etcd: EtcdClient, keys: Keys, log: Logger, options: MembersOptions) {
    this.#etcd = etcd;
    this.#keys = keys;
    this.#log = log;
    this.#advertise = options.advertise;
    this.#ttl = options.leaseTtl ?? MEMBER_LEASE_TTL;
  }

  /** This server's number in the list (0 until registered). */
  get id(): number {
    return this.#id;
  }

  /** The address this server advertises. */
  get advertise(): string {
    return this.#advertise;
  }

  /** Registers this server, brings `/zookeeper/config` up to date, and keeps the lease alive. */
  async start(): Promise<void> {
    await this.#register();
    await this.refresh();
    this.#timer = setInterval(() => this.#renew(), (this.#ttl * 1000) / 3);
  }

  /**
   * Takes the lowest free member number on a fresh lease. A number taken
   * meanwhile by another server (its create won) makes it try again.
   */
  async #register(): Promise<void> {
    const lease = await this.#etcd.grantLease(this.#ttl);
    const value = new TextEncoder().encode(this.#advertise);
    for (;;) {
      const res = await this.#etcd.read([
        { get: this.#keys.memberPrefix(), prefix: true, keysOnly: true },
      ]);
      const used = new Set(res.results[0]!.kvs.map((kv) => this.#keys.memberOf(kv.key)));
      let id = 1;
      while (used.has(id)) id++;
      const key = this.#keys.member(id);
      const put = await this.#etcd.txn(
        [{ key, target: "create", op: "==", value: 0n }],
        [{ put: key, value, lease }],
      );
      if (put.succeeded) {
        this.#lease = lease;
        this.#id = id;
        this.#log.info("listed in /zookeeper/config as server.{id}={addr}", {
          id,
          addr: this.#advertise,
        });
        return;
      }
    }
  }

  /** Renews the lease; registers again when it was lost (etcd let it expire). */
  #renew(): void {
    if (this.#renewing || this.#stopped) return;
    this.#renewing = true;
    (async () => {
      const ttl = this.#lease === 0n ? 0n : await this.#etcd.keepAliveOnce(this.#lease);
      if (ttl <= 0n && !this.#stopped) {
        this.#log.warn("the member lease of server.{id} expired: registering again", {
          id: this.#id,
        });
        this.#lease = 0n;
        await this.#register();
        await this.refresh();
      }
      this.#warned = false;
    })().catch((err) => {
      if (this.#warned) return;
      this.#warned = true;
      this.#log.warn("member lease renewal failed: {err}; trying again", { err: String(err) });
    }).finally(() => this.#renewing = false);
  }

  /**
   * Takes every change the watch stream shows outside the node keys;
   * a member key's change starts a rewrite. Whether it was a member key.
   */
  onChange(event: WatchEvent): boolean {
    if (this.#keys.memberOf(event.kv.key) === null) return false;
    if (this.#stopped) return true; // leaving: stop() rewrites the list itself
    this.refresh().catch((err) => {
      this.#log.warn("updating /zookeeper/config failed: {err}", { err: String(err) });
    });
    return true;
  }

  /**
   * Rewrites `/zookeeper/config` if its server lines differ from the live
   * members. Calls during a rewrite make one more round after it.
   */
  refresh(): Promise<void> {
    if (this.#rewriting) {
      this.#again = true;
      return this.#rewriting;
    }
    const run = async () => {
      try {
        do {
          this.#again = false;
          await this.#rewrite();
        } while (this.#again);
      } finally {
        this.#rewriting = undefined;
      }
    };
    return this.#rewriting = run();
  }

  async #rewrite(): Promise<void> {
    const k = this.#keys;
    const nodeKey = k.node(CONFIG_PATH);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const res = await this.#etcd.read([
        { get: k.memberPrefix(), prefix: true },
        { get: nodeKey },
      ]);
      const members: Member[] = [];
      for (const kv of res.results[0]!.kvs) {
        const id = k.memberOf(kv.key);
        if (id !== null) members.push({ id, address: new TextDecoder().decode(kv.value) });
      }
      const node = res.results[1]!.kvs[0];
      if (!node) return; // not initialised (cannot happen after init)
      const record = decodeNode(node.value);
      const current = new TextDecoder().decode(record.data ?? new Uint8Array());
      if (linesOf(current) === serverLines(members)) return;
      const text = configText(members, res.revision + 1n);
      const put = await this.#etcd.txn(
        [{ key: nodeKey, target: "mod", op: "==", value: node.modRevision }],
        [{
          put: nodeKey,
          value: encodeNode({
            ...record,
            data: new TextEncoder().encode(text),
            mtime: BigInt(Date.now()),
          }),
        }],
      );
      if (put.succeeded) return;
    }
  }

  /**
   * Leaves the list: revokes the lease (etcd deletes the member key) and
   * rewrites `/zookeeper/config` without this server, so the list is right
   * also when it was the last server.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    if (this.#lease === 0n) return;
    const lease = this.#lease;
    this.#lease = 0n;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const leave = (async () => {
      await this.#etcd.revokeLease(lease);
      await this.refresh();
    })();
    try {
      // An etcd that does not answer must not hold up a shutdown: the lease
      // then expires by itself.
      await Promise.race([
        leave,
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer in ${STOP_LIMIT_MS} ms`)),
            STOP_LIMIT_MS,
          );
        }),
      ]);
    } catch (err) {
      leave.catch(() => {});
      this.#log.warn("leaving /zookeeper/config failed: {err}", { err: String(err) });
    } finally {
      clearTimeout(timer);
    }
  }
}
