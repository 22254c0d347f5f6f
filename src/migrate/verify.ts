/**
 * Compares a source tree with what our layout holds, node by node: data,
 * ACL, version, cversion, aversion, ctime, mtime and the number of
 * children. zxids differ by nature (ours are etcd revisions) and are not
 * compared.
 *
 * @module
 */

import type { EtcdTree } from "../store/tree.ts";
import { childPath, parentOf } from "../zk/path.ts";
import type { ACL } from "../zk/records.ts";
import { sameBytes, type Source } from "./source.ts";

/** One way in which the copy differs from its source. */
export interface Difference {
  path: string;
  what: string;
}

/** The outcome of {@link verify}. */
export interface Verification {
  checked: number;
  /** How many differences there are in all. */
  count: number;
  /** The first of them (at most `limit`). */
  differences: Difference[];
}

const aclText = (acl: ACL[]) => acl.map((a) => `${a.id.scheme}:${a.id.id}=${a.perms}`).join(",");

/** Walks `source` again and reads every node of it from `tree`. */
export async function verify(
  source: Source,
  tree: EtcdTree,
  limit = 100,
): Promise<Verification> {
  const out: Verification = { checked: 0, count: 0, differences: [] };
  const report = (path: string, what: string) => {
    out.count++;
    if (out.differences.length < limit) out.differences.push({ path, what });
  };
  // Counts of children differ where the source has ephemeral children,
  // which are met only after their parent: settled once the walk is over.
  const counts = new Map<string, { want: number; got: number; wantCv: number; gotCv: number }>();
  for await (const batch of source.walk()) {
    const { nodes } = await tree.getMany(batch.map((n) => n.path));
    for (const [i, want] of batch.entries()) {
      out.checked++;
      const got = nodes[i];
      if (!got) {
        report(want.path, "missing in etcd");
        continue;
      }
      const s = got.stat;
      const fields: [string, unknown, unknown][] = [
        ["version", want.version, s.version],
        ["aversion", want.aversion, s.aversion],
        ["ctime", want.ctime, s.ctime],
        ["mtime", want.mtime, s.mtime],
        ["ephemeralOwner", 0n, s.ephemeralOwner],
        ["acl", aclText(want.acl), aclText(got.acl)],
      ];
      if (!sameBytes(want.data, got.data)) {
        report(
          want.path,
          `data differs (${want.data?.byteLength ?? "null"} vs ${
            got.data?.byteLength ?? "null"
          } bytes)`,
        );
      }
      for (const [name, a, b] of fields) {
        if (a !== b) report(want.path, `${name}: source ${a}, etcd ${b}`);
      }
      if (want.numChildren !== s.numChildren || want.cversion !== s.cversion) {
        counts.set(want.path, {
          want: want.numChildren,
          got: s.numChildren,
          wantCv: want.cversion,
          gotCv: s.cversion,
        });
      }
      if (want.children && want.numChildren !== s.numChildren) {
        const { children } = await tree.get(want.path, true);
        const have = new Set(want.children);
        for (const name of children) {
          const path = childPath(want.path, name);
          if (!have.has(name) && !(want.path === "/" && name === "zookeeper")) {
            report(path, "only in etcd");
          }
        }
      }
    }
  }
  // A skipped ephemeral child counts in the source's numChildren, and its
  // eventual delete will count in cversion: the copy has one child fewer now.
  for (const path of source.ephemerals) {
    const c = counts.get(parentOf(path));
    if (!c) continue;
    c.want--;
    c.wantCv++;
  }
  for (const [path, c] of counts) {
    if (c.want !== c.got) report(path, `numChildren: source ${c.want}, etcd ${c.got}`);
    if (c.wantCv !== c.gotCv) report(path, `cversion: source ${c.wantCv}, etcd ${c.gotCv}`);
  }
  return out;
}
