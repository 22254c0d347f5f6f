import assert from "node:assert/strict";
import { authenticate, digestId, fixupACL } from "../../src/zk/acl.ts";
import { ZkError } from "../../src/zk/errors.ts";

const acl = (perms: number, scheme: string, id: string) => ({ perms, id: { scheme, id } });

function invalid(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof ZkError && e.code === -114);
}

Deno.test({
  name: "digestId() is user:base64(sha1(user:password)) as ZooKeeper computes it",
  permissions: "none",
}, () => {
  // The value a real ZooKeeper 3.8 stored for alice:secret (see the wire fixtures).
  assert.equal(digestId("alice:secret"), "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");
});

Deno.test({
  name: "authenticate() accepts digest user:password and refuses anything else",
  permissions: "none",
}, () => {
  const enc = new TextEncoder();
  assert.deepEqual(authenticate("digest", enc.encode("bob:pw")), {
    scheme: "digest",
    id: digestId("bob:pw"),
  });
  assert.equal(authenticate("digest", enc.encode("no-colon")), null);
  assert.equal(authenticate("digest", enc.encode(":nouser")), null);
  assert.equal(authenticate("digest", new Uint8Array([0xff, 0xfe])), null);
  assert.equal(authenticate("kerberos", enc.encode("x")), null);
  assert.equal(authenticate("digest", null), null);
});

Deno.test({
  name: "fixupACL() keeps valid entries and expands auth into the session's ids",
  permissions: "none",
}, () => {
  const ids = [{ scheme: "digest", id: "alice:hash" }];
  assert.deepEqual(
    fixupACL(
      "/p",
      [acl(31, "world", "anyone"), acl(5, "auth", ""), acl(1, "ip", "10.0.0.0/8")],
      ids,
    ),
    [acl(31, "world", "anyone"), acl(5, "digest", "alice:hash"), acl(1, "ip", "10.0.0.0/8")],
  );
});

Deno.test({
  name: "fixupACL() rejects empty lists, unknown schemes and malformed ids with InvalidACL",
  permissions: "none",
}, () => {
  invalid(() => fixupACL("/p", [], []));
  invalid(() => fixupACL("/p", [acl(31, "nope", "x")], []));
  invalid(() => fixupACL("/p", [acl(31, "world", "someone")], []));
  invalid(() => fixupACL("/p", [acl(31, "digest", "nocolon")], []));
  invalid(() => fixupACL("/p", [acl(31, "ip", "300.1.1.1")], []));
  invalid(() => fixupACL("/p", [acl(31, "ip", "10.0.0.0/33")], []));
  invalid(() => fixupACL("/p", [acl(31, "auth", "")], []));
});

Deno.test({
  name: "fixupACL() takes sasl ids as ZooKeeper's SASL provider (KerberosName) does",
  permissions: "none",
}, () => {
  // As a real ZooKeeper 3.8 with the SASL provider answered.
  for (const id of ["bob", "a/b", "a/b@R", "bob@R", "x y", "a@"]) {
    assert.deepEqual(fixupACL("/n", [acl(31, "sasl", id)], []), [acl(31, "sasl", id)], id);
  }
  for (const id of ["a@b@c", "a/b/c@R", ""]) {
    invalid(() => fixupACL("/n", [acl(31, "sasl", id)], []));
  }
});
