/**
 * `zetcd ctl`: a small ZooKeeper client for people and scripts, as the Go
 * zetcd's `zkctl`, on the project's own client.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ZkClient } from "../client/client.ts";
import { CreateFlag, EventType } from "../zk/constants.ts";
import { ZkError } from "../zk/errors.ts";
import { sessionHex } from "../zk/acl.ts";
import type { Stat } from "../zk/records.ts";

/** Usage of `zetcd ctl`. */
export const CTL_USAGE = `Usage: zetcd ctl [--server HOST:PORT] COMMAND ...

  get PATH                       print the node's data
  set PATH DATA [--version N]    replace the data (optionally only at version N)
  create PATH [DATA] [--ephemeral] [--sequential] [--container]
  ls PATH                        list the children, one per line
  stat PATH                      print the node's Stat
  rm PATH [-r]                   delete the node (-r: with everything under it)
  watch PATH [--count N]         print the node's changes as they happen (N of them, then exit)

--server defaults to 127.0.0.1:2181. Exit codes: 0 done, 1 ZooKeeper error (printed), 2 usage.
`;

const text = new TextEncoder();

function printStat(s: Stat): string {
  return [
    `cZxid = 0x${s.czxid.toString(16)}`,
    `ctime = ${new Date(Number(s.ctime)).toUTCString()}`,
    `mZxid = 0x${s.mzxid.toString(16)}`,
    `mtime = ${new Date(Number(s.mtime)).toUTCString()}`,
    `pZxid = 0x${s.pzxid.toString(16)}`,
    `cversion = ${s.cversion}`,
    `dataVersion = ${s.version}`,
    `aclVersion = ${s.aversion}`,
    `ephemeralOwner = ${sessionHex(s.ephemeralOwner)}`,
    `dataLength = ${s.dataLength}`,
    `numChildren = ${s.numChildren}`,
  ].join("\n");
}

const EVENT_NAMES: Record<number, string> = {
  [EventType.NodeCreated]: "NodeCreated",
  [EventType.NodeDeleted]: "NodeDeleted",
  [EventType.NodeDataChanged]: "NodeDataChanged",
  [EventType.NodeChildrenChanged]: "NodeChildrenChanged",
};

/** Runs `zetcd ctl` with `args`; resolves to the exit code. */
export async function ctl(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        server: { type: "string", default: "127.0.0.1:2181" },
        version: { type: "string" },
        ephemeral: { type: "boolean", default: false },
        sequential: { type: "boolean", default: false },
        container: { type: "boolean", default: false },
        r: { type: "boolean", short: "r", default: false },
        count: { type: "string" },
        help: { type: "boolean", default: false },
      },
    });
  } catch (err) {
    console.error(`zetcd ctl: ${(err as Error).message}\n${CTL_USAGE}`);
    return 2;
  }
  const { values: v, positionals: [command, path, data] } = parsed;
  if (v.help || !command) {
    console.log(CTL_USAGE);
    return v.help ? 0 : 2;
  }
  if (!path) {
    console.error(`zetcd ctl ${command}: a PATH is needed\n${CTL_USAGE}`);
    return 2;
  }
  let zk: ZkClient;
  try {
    zk = await ZkClient.connect(v.server!, {
      onEvent: (e) => console.log(`${EVENT_NAMES[e.type] ?? e.type} ${e.path}`),
    });
  } catch (err) {
    console.error(`zetcd ctl: cannot connect to ${v.server}: ${(err as Error).message}`);
    return 1;
  }
  try {
    switch (command) {
      case "get": {
        const { data: bytes } = await zk.getData(path);
        if (bytes) await Deno.stdout.write(bytes);
        console.log();
        return 0;
      }
      case "set":
        await zk.setData(path, text.encode(data ?? ""), v.version ? Number(v.version) : -1);
        return 0;
      case "create": {
        const flags = v.container
          ? CreateFlag.CONTAINER
          : (v.ephemeral ? 1 : 0) + (v.sequential ? 2 : 0);
        console.log(await zk.create(path, data === undefined ? null : text.encode(data), flags));
        return 0;
      }
      case "ls":
        for (const child of (await zk.getChildren(path)).children.sort()) console.log(child);
        return 0;
      case "stat": {
        const stat = await zk.exists(path);
        if (!stat) throw new ZkError(-101, path);
        console.log(printStat(stat));
        return 0;
      }
      case "rm":
        if (v.r) await zk.deleteAll(path);
        else await zk.delete(path);
        return 0;
      case "watch": {
        // Re-arm after each event; print each as it comes.
        const limit = v.count ? Number(v.count) : Infinity;
        let seen = 0;
        while (seen < limit) {
          const { promise, resolve } = Promise.withResolvers<void>();
          const client = await ZkClient.connect(v.server!, {
            onEvent: (e) => {
              console.log(`${EVENT_NAMES[e.type] ?? e.type} ${e.path}`);
              resolve();
            },
          });
          await client.exists(path, true);
          await client.getChildren(path, true).catch(() => {});
          await promise;
          await client.close();
          seen++;
        }
        return 0;
      }
      default:
        console.error(`zetcd ctl: unknown command ${command}\n${CTL_USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ZkError) {
      console.error(`${err.message} ${path}`);
      return 1;
    }
    throw err;
  } finally {
    await zk.close();
  }
}
