/**
 * `zetcd dump` and `zetcd restore`: a tree (or a subtree) to and from JSON
 * Lines, through the ZooKeeper protocol, so they work against any
 * ZooKeeper server as well as ours — for backups and for moving between
 * etcd clusters. One line per node, parents first:
 * `{"path","data" (base64 or null),"acl":[{"perms","scheme","id"}],"stat":{…}}`.
 * Ephemeral nodes belong to sessions and are skipped (listed on stderr);
 * ZooKeeper's own `/zookeeper` subtree is left out.
 *
 * ZooKeeper shows a digest ACL entry's hash only to a session with ADMIN
 * on the node (others get `user:x`); written back, such an entry locks its
 * user out, so a dump that meets one is refused, and so is a dump file
 * that holds one. Exit codes: 0 done, 1 the server refused or failed (the
 * path named), 2 a bad command line or a local file that cannot be read
 * or written (the file named).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { basename, dirname } from "node:path";
import { ZkClient } from "../client/client.ts";
import {
  type DumpedNode,
  DumpLineError,
  fromDumpedNode,
  readDump,
  toDumpedNode,
} from "../migrate/dump_source.ts";
import { maskedDigestUser, type SourceNode } from "../migrate/source.ts";
import { addAuths, describeError, parseAuth, ZkSource } from "../migrate/zk_source.ts";
import { Code } from "../zk/constants.ts";
import { ZkError } from "../zk/errors.ts";
import { depthOf, invalidPathReason } from "../zk/path.ts";
import type { ACL } from "../zk/records.ts";
import { Progress } from "./progress.ts";

export type { DumpedNode } from "../migrate/dump_source.ts";

const DUMP_USAGE =
  `Usage: zetcd dump [--server HOST:PORT] [--path PATH] [--file FILE] [--auth SCHEME:CREDENTIALS]

Writes every persistent node under PATH (itself included) as JSON Lines, parents
first: path, data (base64), ACL and Stat, read through the ZooKeeper protocol, so
any ZooKeeper server will do. Ephemeral nodes (listed) and /zookeeper are skipped.

ZooKeeper shows the hash of a digest ACL entry only to a session with ADMIN on the
node; others get user:x. Restored, such an entry would lock its user out, so a dump
that meets one is refused (each node named, exit 1, nothing written): give that
user's credentials with --auth, or the super user's.

  --server HOST:PORT          the server (default 127.0.0.1:2181)
  --path PATH                 the subtree to dump (default /)
  --file FILE                 where to write (default -: stdout); the dump goes to a
                              temporary file beside FILE (mode 0600: it holds password
                              hashes), renamed to FILE once complete, so a failed dump
                              leaves FILE as it was
  --auth SCHEME:CREDENTIALS   add credentials to the session, e.g.
                              digest:user:password (repeatable)
  --help                      print this help

A progress line comes every two seconds. Exit codes: 0 done; 1 the server refused or
failed (the path named); 2 a bad flag, or a FILE that cannot be written.
`;

const RESTORE_USAGE =
  `Usage: zetcd restore [--server HOST:PORT] [--file FILE] [--auth SCHEME:CREDENTIALS]

Creates the nodes of a \`zetcd dump\` file through the ZooKeeper protocol, parents
first, each with its data, then gives each its ACL; nodes that exist get their data
and ACL set. Versions and times are the new tree's own (\`zetcd migrate --from-dump
FILE\` keeps them). A dump holding a masked digest ACL entry (user:x, from a dump
made without that user's credentials) is refused before anything is written.

  --server HOST:PORT          the server (default 127.0.0.1:2181)
  --file FILE                 the dump (default -: stdin)
  --auth SCHEME:CREDENTIALS   add credentials to the session, e.g.
                              digest:user:password (repeatable): to write into nodes
                              that exist and whose ACL asks for them
  --help                      print this help

A progress line comes every two seconds. Exit codes: 0 done; 1 the server refused or
failed (the path named); 2 a bad flag, or a FILE that cannot be read or holds a line
that cannot be restored (the line named).
`;

/** Options of {@link dump} and {@link restore}. */
export interface BackupOptions {
  /** Receives progress lines, `N nodes in S s (R/s)`, and a closing summary (default: none). */
  log?: (line: string) => void;
  /** ms between progress lines (default 2000). */
  progressMs?: number;
}

/** A node whose ACL came back masked. */
export interface MaskedNode {
  path: string;
  /** The masked digest ids, `user:x`. */
  ids: string[];
}

/** What {@link dump} met. */
export interface DumpResult {
  /** Nodes written. */
  count: number;
  /** Ephemeral nodes skipped (the first 10,000). */
  ephemerals: string[];
  /**
   * Nodes whose digest ACL entries came back masked: what was written must
   * not be restored. The walk stops at the 100th.
   */
  masked: MaskedNode[];
}

/** Enough masked nodes to tell which credentials are missing. */
const MAX_MASKED = 100;

/**
 * Writes every node under `root` (itself included) as JSON lines to `out`,
 * and lists the nodes whose ACL the server masked. Errors name the path.
 */
export async function dump(
  zk: ZkClient,
  root: string,
  out: (line: string) => Promise<void>,
  options: BackupOptions = {},
): Promise<DumpResult> {
  await about(`cannot read ${root}`, async () => {
    if (await zk.exists(root) === null) throw new ZkError(Code.NONODE, root);
  });
  const source = ZkSource.of(zk, "the server", { root });
  const progress = new Progress(options.progressMs);
  const masked: MaskedNode[] = [];
  for await (const batch of source.walk()) {
    for (const node of batch) {
      const ids = maskedIds(node.acl);
      if (ids.length > 0) masked.push({ path: node.path, ids });
      await out(JSON.stringify(toDumpedNode(node)));
    }
    if (progress.count(batch.length)) options.log?.(progress.rate());
    if (masked.length >= MAX_MASKED) break;
  }
  if (masked.length === 0) options.log?.(`dumped ${progress.rate()}`);
  return { count: progress.nodes, ephemerals: source.ephemerals, masked };
}

/**
 * Creates the nodes of a dump (parents first, each with its data), then
 * gives each its ACL — last, so that restrictive ACLs do not stop the
 * creation of their children. Existing nodes get their data and ACL set.
 * Errors name the path.
 */
export async function restore(
  zk: ZkClient,
  nodes: DumpedNode[],
  options: BackupOptions = {},
): Promise<number> {
  const total = new Progress(options.progressMs);
  const sorted = nodes.map(fromDumpedNode).sort((a, b) => depthOf(a.path) - depthOf(b.path));
  await eachNode(sorted, "created", options, (n) => writeNode(zk, n));
  await eachNode(sorted, "ACLs set on", options, (n) => setAcl(zk, n));
  total.count(sorted.length);
  options.log?.(`restored ${total.rate()}`);
  return sorted.length;
}

/** Runs `step` on each node in turn, logging `LABEL N nodes in S s (R/s)` when due. */
async function eachNode(
  nodes: SourceNode[],
  label: string,
  options: BackupOptions,
  step: (n: SourceNode) => Promise<unknown>,
): Promise<void> {
  const progress = new Progress(options.progressMs);
  for (const n of nodes) {
    await step(n);
    if (progress.count(1)) options.log?.(`${label} ${progress.rate()}`);
  }
}

/** Creates a node with its data, or sets the data of one that exists. */
function writeNode(zk: ZkClient, n: SourceNode): Promise<void> {
  return about(`cannot write ${n.path}`, async () => {
    if (n.path === "/" || !(await createIfMissing(zk, n))) await zk.setData(n.path, n.data);
  });
}

/** Gives a node its ACL. */
function setAcl(zk: ZkClient, n: SourceNode): Promise<unknown> {
  return about(`cannot set the ACL of ${n.path}`, () => zk.setACL(n.path, n.acl));
}

/** Creates a node with its data; false when it exists already. */
async function createIfMissing(zk: ZkClient, n: SourceNode): Promise<boolean> {
  try {
    await zk.create(n.path, n.data);
    return true;
  } catch (err) {
    if (err instanceof ZkError && err.code === Code.NODEEXISTS) return false;
    throw err;
  }
}

/** Runs `fn`; its error comes back as one line, `WHAT: why`. */
async function about<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new Error(`${what}: ${describeError(err)}`);
  }
}

/** The digest ids of an ACL that the server masked. */
function maskedIds(acl: ACL[]): string[] {
  return acl.filter((a) => maskedDigestUser(a.id.scheme, a.id.id) !== null).map((a) => a.id.id!);
}

/** The command line of `zetcd dump` and `zetcd restore`. */
interface BackupFlags {
  server: string;
  /** The subtree to dump. */
  path: string;
  /** `-`: stdout or stdin. */
  file: string;
  auth: string[];
  help: boolean;
}

/** Parses and checks the flags; throws with a one-line reason. */
function parseFlags(command: "dump" | "restore", args: string[]): BackupFlags {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      server: { type: "string", default: "127.0.0.1:2181" },
      path: { type: "string" },
      file: { type: "string", default: "-" },
      auth: { type: "string", multiple: true, default: [] },
      help: { type: "boolean", default: false },
    },
  });
  if (command === "restore" && values.path !== undefined) {
    throw new Error("--path is a flag of zetcd dump (a dump holds absolute paths)");
  }
  const path = values.path ?? "/";
  const why = invalidPathReason(path);
  if (why !== null) throw new Error(`--path ${path}: ${why}`);
  for (const a of values.auth) parseAuth(a);
  return { server: values.server, path, file: values.file, auth: values.auth, help: values.help };
}

/** `zetcd dump|restore [flags]` (see the usage texts); resolves to the exit code. */
export async function backup(command: "dump" | "restore", args: string[]): Promise<number> {
  let flags: BackupFlags;
  try {
    flags = parseFlags(command, args);
  } catch (err) {
    console.error(`zetcd ${command}: ${(err as Error).message} (see zetcd ${command} --help)`);
    return 2;
  }
  if (flags.help) {
    console.log(command === "dump" ? DUMP_USAGE : RESTORE_USAGE);
    return 0;
  }
  return command === "dump" ? await dumpCommand(flags) : await restoreCommand(flags);
}

/** A session to `server` with the `--auth` credentials added. */
async function connect(server: string, auth: string[]): Promise<ZkClient> {
  let zk: ZkClient;
  try {
    zk = await ZkClient.connect(server);
  } catch (err) {
    throw new Error(`cannot connect to ${server}: ${(err as Error).message}`);
  }
  try {
    await addAuths(zk, auth);
  } catch (err) {
    await zk.close();
    throw err;
  }
  return zk;
}

/** `zetcd dump`: the output first (a file that cannot be written is exit 2), then the dump. */
async function dumpCommand(flags: BackupFlags): Promise<number> {
  let output: Output;
  try {
    output = flags.file === "-" ? stdoutOutput() : await fileOutput(flags.file);
  } catch (err) {
    console.error(`zetcd dump: ${(err as Error).message}`);
    return 2;
  }
  let zk: ZkClient | undefined;
  try {
    zk = await connect(flags.server, flags.auth);
    const result = await dump(zk, flags.path, (line) => output.write(line), {
      log: (line) => console.error(`zetcd dump: ${line}`),
    });
    for (const path of result.ephemerals) console.error(`  skipped ephemeral ${path}`);
    if (result.masked.length > 0) {
      await output.discard();
      reportMasked(result.masked, flags.file);
      return 1;
    }
    await output.commit();
    return 0;
  } catch (err) {
    await output.discard();
    console.error(`zetcd dump: ${(err as Error).message}`);
    return err instanceof FileError ? 2 : 1;
  } finally {
    await zk?.close();
  }
}

/** Names each masked node, then the credentials to give. */
function reportMasked(masked: MaskedNode[], file: string): void {
  for (const m of masked) {
    const entries = m.ids.map((id) => `digest ${id}`).join(", ");
    console.error(
      `zetcd dump: ${m.path}: masked ACL entry ${entries} ` +
        "(the server shows the hash only to a session with ADMIN on the node)",
    );
  }
  const users = [
    ...new Set(masked.flatMap((m) => m.ids.map((id) => maskedDigestUser("digest", id)!))),
  ].sort();
  const stopped = masked.length >= MAX_MASKED ? ` (stopped at ${MAX_MASKED} such nodes)` : "";
  const left = file === "-"
    ? "what was written to stdout must not be restored"
    : `nothing written to ${file}`;
  console.error(
    `zetcd dump: refused${stopped}: restored, these entries would lock ${users.join(", ")} ` +
      `out; give ${users.map((u) => `--auth digest:${u}:PASSWORD`).join(" ")} (or the ` +
      `super user's credentials) and dump again; ${left}`,
  );
}

/** `zetcd restore`: the whole file is read and checked (exit 2) before anything is written. */
async function restoreCommand(flags: BackupFlags): Promise<number> {
  let nodes: DumpedNode[];
  try {
    nodes = await readNodes(flags.file);
  } catch (err) {
    console.error(`zetcd restore: ${(err as Error).message}`);
    return 2;
  }
  let zk: ZkClient | undefined;
  try {
    zk = await connect(flags.server, flags.auth);
    await restore(zk, nodes, { log: (line) => console.error(`zetcd restore: ${line}`) });
    return 0;
  } catch (err) {
    console.error(`zetcd restore: ${(err as Error).message}`);
    return 1;
  } finally {
    await zk?.close();
  }
}

/** Every node of a dump file (`-`: stdin); errors name the file. */
async function readNodes(file: string): Promise<DumpedNode[]> {
  const name = file === "-" ? "stdin" : file;
  const nodes: DumpedNode[] = [];
  try {
    const bytes = file === "-" ? Deno.stdin.readable : (await Deno.open(file)).readable;
    for await (const n of readDump(name, bytes)) nodes.push(n);
  } catch (err) {
    if (err instanceof DumpLineError) throw err;
    throw new Error(`${name}: ${(err as Error).message}`);
  }
  return nodes;
}

/** A local file that cannot be written; the message names it. */
class FileError extends Error {
  override name = "FileError";
}

/** Where the lines of a dump go. */
interface Output {
  write(line: string): Promise<void>;
  /** Makes the output final: a file is renamed into place. */
  commit(): Promise<void>;
  /** Drops what was written, where it can: a file's temporary copy is removed. */
  discard(): Promise<void>;
}

const encoder = new TextEncoder();

/** Writes all of `bytes`, however many calls it takes. */
async function writeAll(
  to: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let o = 0; o < bytes.length;) o += await to.write(bytes.subarray(o));
}

/** Standard output: what is written stays written. */
function stdoutOutput(): Output {
  return {
    write: (line) => writeAll(Deno.stdout, encoder.encode(line + "\n")),
    commit: () => Promise.resolve(),
    discard: () => Promise.resolve(),
  };
}

/**
 * A file written under a temporary name beside `path` (so that the rename
 * stays on one file system) and renamed to `path` by `commit()`.
 */
async function fileOutput(path: string): Promise<Output> {
  const failed = (err: unknown) => new FileError(`${path}: ${(err as Error).message}`);
  let temp: string;
  try {
    temp = await Deno.makeTempFile({
      dir: dirname(path),
      prefix: `.${basename(path)}.`,
      suffix: ".partial",
    });
  } catch (err) {
    throw failed(err);
  }
  const file = await Deno.open(temp, { write: true });
  const close = () => {
    try {
      file.close();
    } catch { /* already closed */ }
  };
  return {
    write: (line) =>
      writeAll(file, encoder.encode(line + "\n")).catch((err) => {
        throw failed(err);
      }),
    async commit() {
      close();
      await Deno.rename(temp, path).catch((err) => {
        throw failed(err);
      });
    },
    async discard() {
      close();
      await Deno.remove(temp).catch(() => {});
    },
  };
}
