import assert from "node:assert/strict";
import { Keys } from "../../src/store/keys.ts";

const k = new Keys("/zk/");

Deno.test(
  { name: "node keys carry the depth and round-trip to paths", permissions: "none" },
  () => {
    assert.equal(k.node("/"), "/zk/node/0/");
    assert.equal(k.node("/a"), "/zk/node/1/a");
    assert.equal(k.node("/a/b"), "/zk/node/2/a/b");
    for (const path of ["/", "/a", "/a/b", "/x y/ü"]) {
      assert.equal(
        k.pathOfNode(k.node(path)),
        path,
      );
    }
    assert.equal(k.pathOfNode("/zk/attr/1/a/meta"), null);
  },
);

Deno.test({
  name: "a children range holds only direct children, never grandchildren or siblings",
  permissions: "none",
}, () => {
  const range = k.children("/a");
  assert.ok(k.node("/a/b").startsWith(range));
  assert.ok(!k.node("/a/b/c").startsWith(range), "grandchild");
  assert.ok(!k.node("/ab").startsWith(range), "sibling with a longer name");
  assert.ok(!k.node("/a").startsWith(range), "the node itself");
  assert.ok(k.node("/x").startsWith(k.children("/")));
  assert.ok(!k.node("/x/y").startsWith(k.children("/")));
});

Deno.test({
  name: "an attribute range holds only that node's attributes",
  permissions: "none",
}, () => {
  const range = k.attrs("/a");
  assert.ok(k.attr("/a", "acl").startsWith(range));
  assert.ok(!k.attr("/a/b", "acl").startsWith(range), "a child's attributes");
  assert.ok(!k.attr("/ab", "acl").startsWith(range), "a sibling's attributes");
  assert.ok(!k.attr("/a/meta", "acl").startsWith(range), "a child named like an attribute");
  assert.equal(k.attrName(k.attr("/a", "kids")), "kids");
});

Deno.test({ name: "session keys are 16 hex digits", permissions: "none" }, () => {
  assert.equal(k.session(1n), "/zk/session/0000000000000001");
  assert.equal(k.session(-1n), "/zk/session/ffffffffffffffff");
});

Deno.test({ name: "member keys carry the server number in decimal", permissions: "none" }, () => {
  assert.equal(k.member(3), "/zk/member/3");
  assert.equal(k.memberOf(k.member(12)), 12);
  assert.ok(k.member(1).startsWith(k.memberPrefix()));
  for (const bad of ["/zk/member/0", "/zk/member/01", "/zk/member/x", "/zk/member/", "/zk/sync"]) {
    assert.equal(k.memberOf(bad), null, bad);
  }
});
