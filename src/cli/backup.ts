/**
 * `zetcd dump` and `zetcd restore`: a tree (or a subtree) to and from JSON
 * Lines, through the ZooKeeper protocol, so they work against any
 * ZooKeeper server as well as ours — for backups and for moving between
 * etcd clusters. One line per node, parents first:
 * `{"path","data" (base64 or null),"acl":[{"perms","scheme","id"}],"stat":{…}}`.
 * Ephemeral nodes belong to sessions and are skipped (listed on stderr);
 * ZooKeeper's own `/zookeeper` subtree is left out.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import { ZkClient } from "../client/client.ts";
import { ZkError } from "../zk/errors.ts";
import { childPath } from "../zk/path.ts";
import type { ACL } from "../zk/records.ts";

/** One node of a dump. */
export interface DumpedNode {
  path: string;
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

/** Writes every node under `root` (itself included) as JSON lines to `out`. */
export async function dump(zk: ZkClient, root: string, out: (line: string) => Promise<void>) {
  let count = 0;
  const queue = [root];
  while (queue.length > 0) {
    const path = queue.shift()!;
    if (path === "/zookeeper" || path.startsWith("/zookeeper/")) continue;
    const [{ data, stat }, { acl }, { children }] = await Promise.all([
      zk.getData(path),
      zk.getACL(path),
      zk.getChildren(path),
    ]);
    if (stat.ephemeralOwner !== 0n) {
      console.error(`skipped ephemeral ${path}`);
      continue;
    }
    const node: DumpedNode = {
      path,
      data: data === null ? null : Buffer.from(data).toString("base64"),
      acl: acl.map((a) => ({ perms: a.perms, scheme: a.id.scheme ?? "", id: a.id.id ?? "" })),
      stat: {
        version: stat.version,
        cversion: stat.cversion,
        aversion: stat.aversion,
        ctime: String(stat.ctime),
        mtime: String(stat.mtime),
        numChildren: stat.numChildren,
      },
    };
    await out(JSON.stringify(node));
    count++;
    for (const name of children.sort()) queue.push(childPath(path, name));
  }
  return count;
}

/**
 * Creates the nodes of a dump (parents first, each with its data), then
 * gives each its ACL — last, so that restrictive ACLs do not stop the
 * creation of their children. Existing nodes get their data and ACL set.
 */
export async function restore(zk: ZkClient, nodes: DumpedNode[]): Promise<number> {
  const sorted = [...nodes].sort((a, b) => a.path.split("/").length - b.path.split("/").length);
  for (const n of sorted) {
    const data = n.data === null ? null : new Uint8Array(Buffer.from(n.data, "base64"));
    try {
      if (n.path === "/") throw new ZkError(-110, "/");
      await zk.create(n.path, data);
    } catch (err) {
      if (!(err instanceof ZkError) || err.code !== -110) throw err;
      await zk.setData(n.path, data);
    }
  }
  for (const n of sorted) {
    const acl: ACL[] = n.acl.map((a) => ({ perms: a.perms, id: { scheme: a.scheme, id: a.id } }));
    await zk.setACL(n.path, acl);
  }
  return sorted.length;
}

/** `zetcd dump|restore [--server HOST:PORT] [--path P] [--file F]`; resolves to the exit code. */
export async function backup(command: "dump" | "restore", args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        server: { type: "string", default: "127.0.0.1:2181" },
        path: { type: "string", default: "/" },
        file: { type: "string", default: "-" },
      },
    }));
  } catch (err) {
    console.error(`zetcd ${command}: ${(err as Error).message}`);
    return 2;
  }
  const zk = await ZkClient.connect(values.server!).catch((err) => {
    console.error(`zetcd ${command}: cannot connect to ${values.server}: ${err.message}`);
    return null;
  });
  if (!zk) return 1;
  try {
    if (command === "dump") {
      const file = values.file === "-" ? Deno.stdout : await Deno.open(values.file!, {
        write: true,
        create: true,
        truncate: true,
      });
      const enc = new TextEncoder();
      const n = await dump(zk, values.path!, async (line) => {
        const bytes = enc.encode(line + "\n");
        for (let o = 0; o < bytes.length;) o += await file.write(bytes.subarray(o));
      });
      if (file !== Deno.stdout) file.close();
      console.error(`dumped ${n} nodes`);
    } else {
      const text = values.file === "-"
        ? await new Response(Deno.stdin.readable).text()
        : await Deno.readTextFile(values.file!);
      const nodes = text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
      console.error(`restored ${await restore(zk, nodes)} nodes`);
    }
    return 0;
  } catch (err) {
    console.error(`zetcd ${command}: ${err instanceof ZkError ? err.message : String(err)}`);
    return 1;
  } finally {
    await zk.close();
  }
}
