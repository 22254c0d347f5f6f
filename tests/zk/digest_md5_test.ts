import assert from "node:assert/strict";
import {
  buildChallenge,
  clientResponse,
  type DigestInputs,
  DigestMd5SyntaxError,
  hashBytes,
  newNonce,
  parseDirectives,
  responseValue,
  rspauth,
} from "../../src/zk/digest_md5.ts";
import { DigestMd5Exchange, SaslError } from "../../src/server/sasl.ts";

// RFC 2831 §4, the IMAP example.
const RFC_IMAP: DigestInputs = {
  username: "chris",
  realm: "elwood.innosoft.com",
  password: "secret",
  nonce: "OA6MG9tEQGm2hh",
  cnonce: "OA6MHXh6VqTrRk",
  nc: "00000001",
  qop: "auth",
  digestUri: "imap/elwood.innosoft.com",
};

Deno.test({
  name: "DIGEST-MD5 response-value and rspauth match RFC 2831 §4's example",
  permissions: "none",
}, () => {
  assert.equal(responseValue(RFC_IMAP), "d388dad90d4bbd760a152321f2143af7");
  assert.equal(rspauth(RFC_IMAP), "ea40f60335c427b5527b84dbabcdfffd");
});

Deno.test({
  name: "DIGEST-MD5 parses RFC 2831 §4's digest-response",
  permissions: "none",
}, () => {
  const text = 'charset=utf-8,username="chris",realm="elwood.innosoft.com",' +
    'nonce="OA6MG9tEQGm2hh",nc=00000001,cnonce="OA6MHXh6VqTrRk",' +
    'digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth';
  const d = parseDirectives(text);
  assert.equal(d.get("username"), "chris");
  assert.equal(d.get("nc"), "00000001");
  assert.equal(d.get("digest-uri"), "imap/elwood.innosoft.com");
  assert.equal(d.get("response"), "d388dad90d4bbd760a152321f2143af7");
  assert.equal(d.size, 9);
});

Deno.test({
  name: "DIGEST-MD5 directive lists: quoting, escapes, white space, empty elements, errors",
  permissions: "none",
}, () => {
  const d = parseDirectives(' , Realm = "a\\"b\\\\c" ,, qop="auth,auth-int" ,x=y,');
  assert.deepEqual([...d], [["realm", 'a"b\\c'], ["qop", "auth,auth-int"], ["x", "y"]]);
  for (const bad of ['a="open', "a", "a=1 b=2", "a=1,a=2", "=x", 'a="x\\']) {
    assert.throws(() => parseDirectives(bad), DigestMd5SyntaxError, bad);
  }
});

Deno.test({
  name: "DIGEST-MD5 challenge is ZooKeeper's, and parses back",
  permissions: "none",
}, () => {
  const c = buildChallenge("zk-sasl-md5", "abc");
  assert.equal(c, 'realm="zk-sasl-md5",nonce="abc",charset=utf-8,algorithm=md5-sess');
  assert.deepEqual(
    Object.fromEntries(parseDirectives(c)),
    { realm: "zk-sasl-md5", nonce: "abc", charset: "utf-8", algorithm: "md5-sess" },
  );
  const a = newNonce();
  const b = newNonce();
  assert.notEqual(a, b);
  assert.match(a, /^[A-Za-z0-9+/]{40}$/);
});

Deno.test({
  name: "DIGEST-MD5 hashes ISO 8859-1 text as Latin-1, anything else as UTF-8",
  permissions: "none",
}, () => {
  assert.deepEqual([...hashBytes("é")], [0xe9]);
  assert.deepEqual([...hashBytes("€")], [0xe2, 0x82, 0xac]);
  // An authzid changes A1.
  assert.notEqual(responseValue({ ...RFC_IMAP, authzid: "chris" }), responseValue(RFC_IMAP));
});

const USERS = new Map([["bob", "bobsecret"], ["alice", "alicesecret"]]);
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function challenged(): [DigestMd5Exchange, string] {
  const x = new DigestMd5Exchange(USERS, () => "fixednonce");
  const challenge = dec(x.evaluate(new Uint8Array()));
  return [x, challenge];
}

Deno.test({
  name: "DIGEST-MD5 exchange: challenge, then rspauth for the right password",
  permissions: "none",
}, () => {
  const [x, challenge] = challenged();
  assert.equal(
    challenge,
    'realm="zk-sasl-md5",nonce="fixednonce",charset=utf-8,algorithm=md5-sess',
  );
  assert.equal(x.complete, false);
  const user = { username: "bob", password: "bobsecret", cnonce: "cn" };
  const out = dec(x.evaluate(enc(clientResponse(challenge, user))));
  const expected = rspauth({
    username: "bob",
    realm: "zk-sasl-md5",
    password: "bobsecret",
    nonce: "fixednonce",
    cnonce: "cn",
    nc: "00000001",
    qop: "auth",
    digestUri: "zookeeper/zk-sasl-md5",
  });
  assert.equal(out, `rspauth=${expected}`);
  assert.equal(x.complete, true);
  assert.equal(x.username, "bob");
  // Nothing more is accepted.
  assert.throws(() => x.evaluate(new Uint8Array()), SaslError);
});

Deno.test({
  name: "DIGEST-MD5 exchange fails without naming the password",
  permissions: "none",
}, () => {
  const cases: [string, (challenge: string) => string][] = [
    [
      "wrong password",
      (c) => clientResponse(c, { username: "bob", password: "nope", cnonce: "c" }),
    ],
    // ZOOKEEPER-4839: an unknown user with a known user's password must fail.
    [
      "unknown user",
      (c) => clientResponse(c, { username: "mallory", password: "alicesecret", cnonce: "c" }),
    ],
    [
      "wrong digest-uri",
      (c) => clientResponse(c, { username: "bob", password: "bobsecret", cnonce: "c" }, "imap/x"),
    ],
    ["wrong nonce", (c) =>
      clientResponse(c.replace("fixednonce", "other"), {
        username: "bob",
        password: "bobsecret",
        cnonce: "c",
      })],
    ["garbage", () => "not a directive list"],
    ["no response", () => 'username="bob",nonce="fixednonce",realm="zk-sasl-md5"'],
  ];
  for (const [what, token] of cases) {
    const [x, challenge] = challenged();
    assert.throws(() => x.evaluate(enc(token(challenge))), (e: unknown) => {
      assert.ok(e instanceof SaslError, what);
      assert.ok(!e.message.includes("secret"), e.message);
      return true;
    });
    assert.equal(x.complete, false, what);
    assert.equal(x.username, null, what);
  }
  // A non-empty first token is ignored, as by ZooKeeper 3.8: it gets the challenge.
  const x = new DigestMd5Exchange(USERS, () => "n");
  assert.match(dec(x.evaluate(enc("x"))), /^realm="zk-sasl-md5",nonce="n",/);
});

Deno.test({
  name: "DIGEST-MD5 rspauth matches the one a real ZooKeeper 3.8 computed",
  permissions: "none",
}, () => {
  // Captured from ZooKeeper 3.8.0 (Debian) with user_bob="bobsecret": its challenge's nonce,
  // our digest-response (cnonce "abcdef"), which it accepted, and the rspauth it answered.
  const inputs: DigestInputs = {
    username: "bob",
    realm: "zk-sasl-md5",
    password: "bobsecret",
    nonce: "zfObezcd1yI3F0Nwf+KOgoKJ/6XaljEIWiuXhcoQ",
    cnonce: "abcdef",
    nc: "00000001",
    qop: "auth",
    digestUri: "zookeeper/zk-sasl-md5",
  };
  assert.equal(rspauth(inputs), "f473f71555762ce93bbad6f7d880427f");
});
