/**
 * kazoo (Python, Debian's python3-kazoo) runs the same script against our
 * server and the ZooKeeper 3.8 oracle; the results must match apart from
 * zxids, times and session ids.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { runKazoo } from "../_util/kazoo.ts";

const SCRIPT = `
out = {}
def attempt(name, fn):
    try:
        out[name] = fn()
    except Exception as e:
        out[name] = type(e).__name__

def stat(s):
    d = stat_to_dict(s)
    for k in ("czxid", "mzxid", "pzxid", "ctime", "mtime"):
        d.pop(k, None)
    if d.get("ephemeralOwner"):
        d["ephemeralOwner"] = "session"
    return d

zk.create("/k", b("root"))
out["plain"] = zk.create("/k/p", b"")
out["ephemeral"] = zk.create("/k/e", b("e"), ephemeral=True)
out["sequential"] = zk.create("/k/s-", b(""), sequence=True)
out["ephemeral_sequential"] = zk.create("/k/es-", b(""), ephemeral=True, sequence=True)
path, s = zk.create("/k/c2", b("x"), include_data=True)
out["create2"] = [path, stat(s)]
data, s = zk.get("/k")
out["get"] = [data.decode(), stat(s)]
out["set"] = stat(zk.set("/k", b("v1"), version=0))
attempt("set_bad_version", lambda: zk.set("/k", b("v2"), version=0))
out["children"] = sorted(zk.get_children("/k"))
attempt("no_node", lambda: zk.get("/nope"))
attempt("node_exists", lambda: zk.create("/k"))
attempt("not_empty", lambda: zk.delete("/k"))
attempt("missing_parent", lambda: zk.create("/nope/child"))
attempt("ephemeral_parent", lambda: zk.create("/k/e/child"))
attempt("delete_bad_version", lambda: zk.delete("/k/p", version=3))
out["exists_missing"] = zk.exists("/nope")

t = zk.transaction()
t.create("/k/t1", b("a"))
t.set_data("/k/t1", b("b"))
t.check("/k", 1)
t.delete("/k/p")
out["transaction"] = [r if isinstance(r, str) else stat(r) if hasattr(r, "czxid") else repr(r) for r in t.commit()]
t = zk.transaction()
t.create("/k/t2", b("a"))
t.check("/k", 99)
out["transaction_failed"] = [type(r).__name__ for r in t.commit()]
out["t2_absent"] = zk.exists("/k/t2") is None

zk.sync("/k")
acl, s = zk.get_acls("/k")
out["acl"] = [[a.perms, a.id.scheme, a.id.id] for a in acl]
out["set_acl"] = stat(zk.set_acls("/k", [make_acl("world", "anyone", all=True), make_acl("ip", "127.0.0.1", read=True)], version=0))
attempt("set_acl_bad_version", lambda: zk.set_acls("/k", [make_acl("world", "anyone", all=True)], version=0))
zk.add_auth("digest", "alice:secret")
zk.create("/k/mine", b(""), acl=[make_digest_acl("alice", "secret", all=True)])
out["digest_acl"] = [[a.perms, a.id.scheme, a.id.id] for a in zk.get_acls("/k/mine")[0]]
out["k_stat"] = stat(zk.exists("/k"))
zk.delete("/k", recursive=True)
out["gone"] = zk.exists("/k") is None
result = out
`;

Deno.test({
  name: "kazoo gets the same results as from ZooKeeper 3.8",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  let expected: Record<string, unknown>;
  {
    await using zookeeper = await startZooKeeper();
    expected = await runKazoo(zookeeper.hostPort, SCRIPT) as Record<string, unknown>;
  }
  await using stack = await startStack();
  const actual = await runKazoo(stack.address, SCRIPT) as Record<string, unknown>;
  assert.equal(expected.node_exists, "NodeExistsError", "the oracle ran the script");
  for (const key of Object.keys(expected)) {
    assert.deepEqual(actual[key], expected[key], `kazoo result "${key}"`);
  }
});
