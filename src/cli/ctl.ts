/**
 * `zetcd ctl`: a small ZooKeeper client for people and scripts, as the Go
 * zetcd's `zkctl`, on the project's own client.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ZkClient } from "../client/client.ts";
import { CreateFlag, EventType, Perms } from "../zk/constants.ts";
import { ZkError } from "../zk/errors.ts";
import { sessionHex } from "../zk/acl.ts";
import type { ACL, Stat, WatcherEvent } from "../zk/records.ts";
import { UsageError } from "./etcd_flags.ts";

/** Usage of `zetcd ctl`. */
export const CTL_USAGE = `Usage: zetcd ctl [--server HOST:PORT] [--auth SCHEME:AUTH]... COMMAND ...

  get PATH                       print the node's data
  set PATH DATA [--version N]    replace the data (optionally only at version N)
  create PATH [DATA] [--ephemeral] [--sequential] [--container]
  ls PATH                        list the children, one per line
  stat PATH                      print the node's Stat
  rm PATH [-r]                   delete the node (-r: with everything under it)
  watch PATH [--count N]         print the node's changes as they happen (N of them, then exit)
  getAcl PATH                    print the node's ACL, one SCHEME:ID:PERMS per line
  setAcl PATH ACL[,ACL...] [--version N]
                                 replace the ACL (optionally only at ACL version N); an ACL
                                 is SCHEME:ID:PERMS, PERMS letters of cdrwa, e.g.
                                 world:anyone:r or digest:alice:BASE64HASH:cdrwa

--auth adds credentials to the session before the command (ZooKeeper's addauth),
e.g. --auth digest:alice:secret; it may be given more than once.
--server defaults to 127.0.0.1:2181. Exit codes: 0 done, 1 ZooKeeper error (printed), 2 usage.
`;

/** The commands, each on one PATH. */
const COMMANDS = new Set([
  "get",
  "set",
  "create",
  "ls",
  "stat",
  "rm",
  "watch",
  "getAcl",
  "setAcl",
]);

/** Permission letters, in ZooKeeper's order (`ZKUtil.getPermString`). */
const PERM_LETTERS: [string, number][] = [
  ["c", Perms.CREATE],
  ["d", Perms.DELETE],
  ["r", Perms.READ],
  ["w", Perms.WRITE],
  ["a", Perms.ADMIN],
];

/** One ACL entry as `SCHEME:ID:PERMS`, e.g. `world:anyone:cdrwa`. */
export function formatAcl(acl: ACL): string {
  const perms = PERM_LETTERS.filter(([, bit]) => (acl.perms & bit) !== 0).map(([l]) => l);
  return `${acl.id.scheme}:${acl.id.id}:${perms.join("")}`;
}

/**
 * ACL entries from `SCHEME:ID:PERMS[,SCHEME:ID:PERMS...]` (the ID may hold
 * colons, as a digest's `user:hash`); throws UsageError when malformed.
 */
export function parseAcl(text: string): ACL[] {
  return text.split(",").map((entry) => {
    const first = entry.indexOf(":");
    const last = entry.lastIndexOf(":");
    if (first <= 0 || last === first) {
      throw new UsageError(`ACL "${entry}" must be SCHEME:ID:PERMS, e.g. world:anyone:cdrwa`);
    }
    let perms = 0;
    for (const letter of entry.slice(last + 1)) {
      const bit = PERM_LETTERS.find(([l]) => l === letter)?.[1];
      if (bit === undefined) {
        throw new UsageError(`ACL "${entry}": permissions are letters of cdrwa, got "${letter}"`);
      }
      perms |= bit;
    }
    return { perms, id: { scheme: entry.slice(0, first), id: entry.slice(first + 1, last) } };
  });
}

/** `--auth SCHEME:AUTH` split at its first colon; throws UsageError when malformed. */
function parseAuth(spec: string): { scheme: string; auth: string } {
  const i = spec.indexOf(":");
  if (i <= 0) throw new UsageError("--auth must be SCHEME:AUTH, e.g. digest:alice:secret");
  return { scheme: spec.slice(0, i), auth: spec.slice(i + 1) };
}

/** The command line's own mistakes, found before connecting; throws UsageError. */
function checkUsage(command: string, path: string | undefined, data: string | undefined): void {
  if (command === "addauth") {
    throw new UsageError(
      "each ctl run is one session: give credentials with --auth SCHEME:AUTH before the command",
    );
  }
  if (!COMMANDS.has(command)) {
    throw new UsageError(`unknown command "${command}" (see zetcd ctl --help)`);
  }
  if (!path) throw new UsageError(`${command} needs a PATH (see zetcd ctl --help)`);
  if (command === "setAcl") {
    if (data === undefined) throw new UsageError("setAcl needs an ACL (see zetcd ctl --help)");
    parseAcl(data);
  }
}

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

/** A `zetcd ctl` command line. */
interface CtlLine {
  server: string;
  auths: { scheme: string; auth: string }[];
  help: boolean;
  command?: string;
  path: string;
  data?: string;
  /** `--version`, -1 when absent. */
  version: number;
  ephemeral: boolean;
  sequential: boolean;
  container: boolean;
  recursive: boolean;
  count: number;
}

/** Parses and checks the command line; throws UsageError. */
function parseCtlLine(args: string[]): CtlLine {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        server: { type: "string", default: "127.0.0.1:2181" },
        auth: { type: "string", multiple: true, default: [] },
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
    throw new UsageError((err as Error).message);
  }
  const { values: v, positionals: [command, path, data] } = parsed;
  if (!v.help && command) checkUsage(command, path, data);
  return {
    server: v.server!,
    auths: v.auth!.map(parseAuth),
    help: v.help!,
    command,
    path: path ?? "",
    data,
    version: integer("version", v.version, -1),
    ephemeral: v.ephemeral!,
    sequential: v.sequential!,
    container: v.container!,
    recursive: v.r!,
    count: integer("count", v.count, Infinity),
  };
}

/** The whole number `value` of `--flag`, `absent` without it; throws UsageError. */
function integer(flag: string, value: string | undefined, absent: number): number {
  if (value === undefined) return absent;
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n)) {
    throw new UsageError(`--${flag} must be a whole number, got "${value}"`);
  }
  return n;
}

/** A failure whose message is the one line to print (exit code 1). */
class CtlFailure extends Error {}

/**
 * A session on `line.server` with `line.auths` added; throws CtlFailure
 * when the server cannot be reached or refuses the credentials.
 */
async function open(
  line: CtlLine,
  onEvent: (e: WatcherEvent) => void = printEvent,
): Promise<ZkClient> {
  let zk: ZkClient;
  try {
    zk = await ZkClient.connect(line.server, { onEvent });
  } catch (err) {
    throw new CtlFailure(`zetcd ctl: cannot connect to ${line.server}: ${(err as Error).message}`);
  }
  for (const { scheme, auth } of line.auths) {
    try {
      await zk.addAuth(scheme, auth);
    } catch (err) {
      await zk.close();
      // The credentials themselves are not printed.
      throw new CtlFailure(`${(err as Error).message} --auth ${scheme}`);
    }
  }
  return zk;
}

function printEvent(e: WatcherEvent): void {
  console.log(`${EVENT_NAMES[e.type] ?? e.type} ${e.path}`);
}

/** Runs `zetcd ctl` with `args`; resolves to the exit code. */
export async function ctl(args: string[]): Promise<number> {
  let line: CtlLine;
  try {
    line = parseCtlLine(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`zetcd ctl: ${err.message}`);
    return 2;
  }
  if (line.help || !line.command) {
    console.log(CTL_USAGE);
    return line.help ? 0 : 2;
  }
  let zk: ZkClient | undefined;
  try {
    zk = await open(line);
    await run(zk, line.command, line);
    return 0;
  } catch (err) {
    if (err instanceof CtlFailure) console.error(err.message);
    else if (err instanceof ZkError) console.error(`${err.message} ${line.path}`);
    else throw err;
    return 1;
  } finally {
    await zk?.close();
  }
}

/** Runs one command on `zk`; throws ZkError or CtlFailure. */
async function run(zk: ZkClient, command: string, line: CtlLine): Promise<void> {
  const { path, data } = line;
  switch (command) {
    case "get": {
      const { data: bytes } = await zk.getData(path);
      if (bytes) await Deno.stdout.write(bytes);
      console.log();
      return;
    }
    case "set":
      await zk.setData(path, text.encode(data ?? ""), line.version);
      return;
    case "create": {
      const flags = line.container
        ? CreateFlag.CONTAINER
        : (line.ephemeral ? 1 : 0) + (line.sequential ? 2 : 0);
      console.log(await zk.create(path, data === undefined ? null : text.encode(data), flags));
      return;
    }
    case "ls":
      for (const child of (await zk.getChildren(path)).children.sort()) console.log(child);
      return;
    case "stat": {
      const stat = await zk.exists(path);
      if (!stat) throw new ZkError(-101, path);
      console.log(printStat(stat));
      return;
    }
    case "rm":
      if (line.recursive) await zk.deleteAll(path);
      else await zk.delete(path);
      return;
    case "watch":
      // Re-arm after each event; print each as it comes.
      for (let seen = 0; seen < line.count; seen++) {
        const { promise, resolve } = Promise.withResolvers<void>();
        const client = await open(line, (e) => {
          printEvent(e);
          resolve();
        });
        try {
          await client.exists(path, true);
          await client.getChildren(path, true).catch(() => {});
          await promise;
        } finally {
          await client.close();
        }
      }
      return;
    case "getAcl":
      for (const entry of (await zk.getACL(path)).acl) console.log(formatAcl(entry));
      return;
    case "setAcl":
      await zk.setACL(path, parseAcl(data!), line.version);
      return;
  }
}
