import assert from "node:assert/strict";
import {
  childPath,
  depthOf,
  invalidPathReason,
  parentOf,
  sequenceSuffix,
} from "../../src/zk/path.ts";

Deno.test({
  name: "invalidPathReason() accepts the paths ZooKeeper accepts",
  permissions: "none",
}, () => {
  for (const path of ["/", "/a", "/a/b", "/a.b", "/..a", "/a b", "/ü", "/\u00a0", "/\uf900"]) {
    assert.equal(invalidPathReason(path), null, JSON.stringify(path));
  }
});

Deno.test({
  name: "invalidPathReason() rejects what ZooKeeper's PathUtils rejects",
  permissions: "none",
}, () => {
  const bad = [
    null,
    "",
    "a",
    "/a/",
    "//",
    "/a//b",
    "/.",
    "/a/..",
    "/a\u0000b",
    "/\u0001",
    "/\u001f",
    "/\u007f",
    "/\u009f",
    "/\ud800",
    "/\uf8ff",
    "/\ufff0",
    "/\uffff",
    "/😀",
  ];
  for (const path of bad) assert.notEqual(invalidPathReason(path), null, JSON.stringify(path));
});

Deno.test({
  name: "sequenceSuffix() pads to ten characters like Java's %010d, sign included",
  permissions: "none",
}, () => {
  assert.equal(sequenceSuffix(0), "0000000000");
  assert.equal(sequenceSuffix(42), "0000000042");
  assert.equal(sequenceSuffix(2147483647), "2147483647");
  assert.equal(sequenceSuffix(-1), "-000000001");
  assert.equal(sequenceSuffix(-2147483648), "-2147483648");
  assert.equal(sequenceSuffix(2147483648), "-2147483648", "the counter is a signed 32-bit int");
});

Deno.test({ name: "parentOf(), childPath() and depthOf() agree", permissions: "none" }, () => {
  assert.equal(parentOf("/a"), "/");
  assert.equal(parentOf("/a/b"), "/a");
  assert.equal(parentOf("/q/"), "/q", "a sequential create's trailing slash");
  assert.equal(childPath("/", "a"), "/a");
  assert.equal(childPath("/a", "b"), "/a/b");
  assert.equal(depthOf("/"), 0);
  assert.equal(depthOf("/a"), 1);
  assert.equal(depthOf("/a/b"), 2);
});
