/**
 * `zetcd migrate`: copies a live ZooKeeper tree (`--from zk://…`) or a Go
 * zetcd keyspace (`--from-zetcd-prefix /zk/`) into our layout under
 * `--prefix`, then reads both trees again and prints every difference.
 * Progress goes to stderr every two seconds; the exit code is 0 when the
 * copy is complete and equal to its source, 1 when it is not or failed, 2
 * for a bad command line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { EtcdClient } from "../etcd/client.ts";
import { Keys } from "../store/keys.ts";
import { EtcdTree } from "../store/tree.ts";
import { DumpSource } from "../migrate/dump_source.ts";
import type { Source } from "../migrate/source.ts";
import { MigrationTarget, NotEmptyError } from "../migrate/target.ts";
import { verify } from "../migrate/verify.ts";
import { ZetcdSource } from "../migrate/zetcd_source.ts";
import { parseZkUrl, ZkSource } from "../migrate/zk_source.ts";
import { ETCD_FLAGS, etcdSettings, prefixFlag, UsageError } from "./etcd_flags.ts";
import { Progress } from "./progress.ts";

const USAGE =
  `Usage: zetcd migrate (--from zk://HOST:PORT[,HOST:PORT][/CHROOT] | --from-zetcd-prefix PREFIX)
                     [--endpoints URLS] [--prefix PREFIX] [flags]

Copies every persistent node (data, ACL, versions, children counter, ctime, mtime)
into our etcd layout under --prefix, then compares both trees and prints the
differences. Ephemeral nodes belong to sessions and are skipped (and listed).
A copy into a prefix that already holds nodes is refused unless --merge, or
unless it is an interrupted copy from the same source, which resumes.

  --from zk://…               a live ZooKeeper (or any server speaking its protocol)
  --from-zetcd-prefix PREFIX  the Go zetcd's keys under PREFIX (e.g. /zk/) in the
                              target etcd, read at one revision
  --from-dump FILE            a \`zetcd dump\` file: restores it with its versions and times
  --endpoints URLS            target etcd (default 127.0.0.1:2379)
  --certfile, --keyfile, --cafile, --etcd-user, --etcd-password-file
                              as for the server
  --prefix PREFIX             our namespace to write (default /zk/)
  --auth SCHEME:CREDENTIALS   add credentials to the ZooKeeper session, e.g.
                              digest:user:password (repeatable)
  --container PATH            copy PATH as a container (the protocol does not tell; repeatable)
  --merge                     copy into a prefix that already holds nodes: nodes of the
                              source replace those of the same path; others are kept
  --dry-run                   read both sides and count what would change; write nothing
  --no-verify                 skip the comparison afterwards
  --help                      print this help
`;

/** Runs `zetcd migrate`; resolves to the exit code. */
export async function migrate(args: string[]): Promise<number> {
  let values;
  let etcdOptions;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        from: { type: "string" },
        "from-zetcd-prefix": { type: "string" },
        "from-dump": { type: "string" },
        ...ETCD_FLAGS,
        prefix: { type: "string", default: "/zk/" },
        auth: { type: "string", multiple: true, default: [] },
        container: { type: "string", multiple: true, default: [] },
        merge: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        "no-verify": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const sources = [values.from, values["from-zetcd-prefix"], values["from-dump"]];
    if (sources.filter((s) => s !== undefined).length !== 1) {
      throw new UsageError("give exactly one of --from, --from-zetcd-prefix and --from-dump");
    }
    if (values.from !== undefined) parseZkUrl(values.from);
    etcdOptions = etcdSettings(values, Deno.env.toObject());
    if (etcdOptions.endpoints.length === 0) etcdOptions.endpoints = ["127.0.0.1:2379"];
  } catch (err) {
    console.error(`zetcd migrate: ${(err as Error).message} (see zetcd migrate --help)`);
    return 2;
  }
  const prefix = prefixFlag(values.prefix!);
  const etcd = EtcdClient.connect(etcdOptions);
  const tree = new EtcdTree(etcd, new Keys(prefix));
  const dryRun = values["dry-run"]!;
  let source: Source | undefined;
  try {
    const zetcdPrefix = values["from-zetcd-prefix"];
    if (zetcdPrefix !== undefined && prefixFlag(zetcdPrefix) === prefix) {
      // Both layouts can share a prefix: ours uses letters after it, the Go zetcd control bytes.
      console.error(`zetcd migrate: reading the Go zetcd keys and writing ours under ${prefix}`);
    }
    const dumpFile = values["from-dump"];
    source = values.from !== undefined
      ? await ZkSource.open(values.from, { auth: values.auth, containers: values.container })
      : dumpFile !== undefined
      ? new DumpSource(`dump ${dumpFile}`, async () => (await Deno.open(dumpFile)).readable)
      : new ZetcdSource(etcd, prefixFlag(zetcdPrefix!));
    return await run(source, tree, {
      merge: values.merge!,
      dryRun,
      verify: !values["no-verify"],
    });
  } catch (err) {
    console.error(`zetcd migrate: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await source?.close();
    etcd.close();
  }
}

/** Copies, then verifies; prints progress and a summary to stderr. */
async function run(
  source: Source,
  tree: EtcdTree,
  opts: { merge: boolean; dryRun: boolean; verify: boolean },
): Promise<number> {
  const target = new MigrationTarget(tree, opts.dryRun);
  let mode;
  try {
    mode = await target.prepare(source.name, opts.merge);
  } catch (err) {
    if (err instanceof NotEmptyError) {
      console.error(`zetcd migrate: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const verb = opts.dryRun ? "would copy" : "copying";
  console.error(
    `zetcd migrate: ${verb} ${source.name} into ${tree.keys.prefix}` +
      (mode === "fresh"
        ? ""
        : mode === "resume"
        ? " (resuming an interrupted copy)"
        : " (merging)"),
  );
  const progress = new Progress();
  const c = target.counts;
  const line = () =>
    `${progress.rate()}: ` +
    `${c.created} created, ${c.updated} updated, ${c.unchanged} unchanged, ` +
    `${source.ephemerals.length} ephemeral skipped; ${progress.peakRss()}`;
  // The next batch is read from the source while this one is written.
  const batches = source.walk();
  let next = batches.next();
  for (;;) {
    const { done, value: batch } = await next;
    if (done) break;
    next = batches.next();
    next.catch(() => {}); // a failure surfaces when it is awaited, or not at all if writing failed
    await target.write(batch);
    if (progress.count(batch.length)) console.error(`zetcd migrate: ${line()}`);
  }
  console.error(
    `zetcd migrate: ${opts.dryRun ? "dry run, nothing written: " : "copied "}${line()}`,
  );
  for (const path of source.ephemerals) console.error(`  skipped ephemeral ${path}`);
  for (const path of c.conflicts) {
    console.error(`  left alone ${path}: an ephemeral node of a session holds that path`);
  }
  await target.finish(source.name, progress.nodes);
  if (!opts.verify || opts.dryRun) return c.conflicts.length === 0 ? 0 : 1;
  const checkStarted = performance.now();
  const result = await verify(source, tree);
  const seconds = (performance.now() - checkStarted) / 1000;
  console.error(
    `zetcd migrate: verified ${result.checked} nodes in ${seconds.toFixed(1)} s: ` +
      `${result.count} difference${result.count === 1 ? "" : "s"}`,
  );
  for (const d of result.differences) console.error(`  ${d.path}: ${d.what}`);
  if (result.count > result.differences.length) {
    console.error(`  … and ${result.count - result.differences.length} more`);
  }
  return result.count === 0 && c.conflicts.length === 0 ? 0 : 1;
}
