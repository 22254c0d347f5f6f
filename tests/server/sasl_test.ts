/**
 * SASL DIGEST-MD5 (issue 21 §1): users from ZooKeeper's server JAAS file,
 * opcode 102, `sasl:<user>` identities. Each specification runs against our
 * server (`saslUsers` from the JAAS file) and against a real ZooKeeper 3.8
 * started with the same JAAS file and the SASL authentication provider.
 */

import assert from "node:assert/strict";
import { RawClient } from "../_util/raw_client.ts";
import { startStack } from "../_util/zetcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { serverJaas } from "../_util/zookeeper_sasl.ts";
import { kazooProgram, runKazooProgram } from "../_util/kazoo.ts";
import { runZkCli } from "../_util/zkcli.ts";
import { jaasUsers } from "../../src/cli/jaas.ts";
import { clientResponse, parseDirectives, rspauth } from "../../src/zk/digest_md5.ts";
import { Code, OpCode } from "../../src/zk/constants.ts";
import * as R from "../../src/zk/records.ts";

const JAAS = serverJaas({ bob: "bobsecret", alice: "alicesecret" });

type Spec = (t: Deno.TestContext, address: string) => Promise<void>;

/** Registers `spec` against our server and against the ZooKeeper 3.8 oracle, both with `JAAS`. */
function saslDifferential(name: string, spec: Spec): void {
  Deno.test({
    name: `${name} (zetcd)`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async (t) => {
    await using stack = await startStack({ saslUsers: jaasUsers(JAAS) });
    await spec(t, stack.address);
  });
  Deno.test({
    name: `${name} (the ZooKeeper 3.8 oracle, checking the spec)`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async (t) => {
    await using zookeeper = await startZooKeeper({ jaas: JAAS });
    await spec(t, zookeeper.hostPort);
  });
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => b === null ? null : new TextDecoder().decode(b);

/** Sends one SASL token; the reply's header and token (null once closed). */
async function sasl(c: RawClient, xid: number, token: Uint8Array) {
  await c.send(xid, OpCode.sasl, R.GetSASLRequest, { token });
  const r = await c.reply();
  if (r === null) return null;
  // Failures carry an empty SetSASLResponse too.
  const body = r.body.remaining > 0 ? dec(R.SetSASLResponse.read(r.body).token) : undefined;
  return { xid: r.xid, zxid: r.zxid, err: r.err, token: body };
}

/** Round 1 on a new session: the challenge. */
async function challenged(address: string): Promise<[RawClient, string]> {
  const [c] = await RawClient.session(address);
  const first = await sasl(c, 1, new Uint8Array());
  assert.ok(first && first.err === 0 && typeof first.token === "string", "a challenge");
  return [c, first.token];
}

async function failsAndCloses(c: RawClient, xid: number, token: Uint8Array, what: string) {
  const r = await sasl(c, xid, token);
  assert.deepEqual(r, { xid, zxid: 0n, err: Code.AUTHFAILED, token: null }, what);
  assert.ok(await c.closedWithin(5000), `${what}: the connection closes`);
  c.close();
}

saslDifferential(
  "SASL DIGEST-MD5 on the wire: challenge, rspauth, sasl:<user>",
  async (t, address) => {
    await t.step("round 1: an empty token gets ZooKeeper's challenge, zxid 0", async () => {
      const [c, challenge] = await challenged(address);
      const d = parseDirectives(challenge);
      assert.deepEqual([...d.keys()], ["realm", "nonce", "charset", "algorithm"]);
      assert.equal(d.get("realm"), "zk-sasl-md5");
      assert.equal(d.get("charset"), "utf-8");
      assert.equal(d.get("algorithm"), "md5-sess");
      assert.match(d.get("nonce")!, /^[A-Za-z0-9+/]{40}$/);
      const [c2, other] = await challenged(address);
      assert.notEqual(parseDirectives(other).get("nonce"), d.get("nonce"), "nonces are random");
      c.close();
      c2.close();
    });
    await t.step("round 2: the digest-response gets rspauth; whoAmI says sasl:bob", async () => {
      const [c, challenge] = await challenged(address);
      const r = await sasl(c, 2, enc(clientResponse(challenge, user("bob", "bobsecret"))));
      const nonce = parseDirectives(challenge).get("nonce")!;
      const expected = rspauth({
        username: "bob",
        realm: "zk-sasl-md5",
        password: "bobsecret",
        nonce,
        cnonce: "cnonce-0123456789",
        nc: "00000001",
        qop: "auth",
        digestUri: "zookeeper/zk-sasl-md5",
      });
      assert.deepEqual(r, { xid: 2, zxid: 0n, err: 0, token: `rspauth=${expected}` });
      await c.send(3, OpCode.whoAmI);
      const who = await c.reply();
      assert.equal(who?.err, 0);
      assert.deepEqual(R.WhoAmIResponse.read(who!.body).clientInfo, [
        { authScheme: "sasl", user: "bob" },
        { authScheme: "ip", user: "127.0.0.1" },
      ]);
      // A token after the exchange completed fails.
      await failsAndCloses(c, 4, new Uint8Array(), "a third token");
    });
    await t.step("a non-empty first token is ignored: it gets the challenge", async () => {
      const [c] = await RawClient.session(address);
      const r = await sasl(c, 1, enc("hello"));
      assert.equal(r?.err, 0);
      assert.match(r!.token!, /^realm="zk-sasl-md5",nonce="/);
      c.close();
    });
    await t.step("a wrong password: AUTHFAILED, then the connection closes", async () => {
      const [c, challenge] = await challenged(address);
      const token = enc(clientResponse(challenge, user("bob", "alicesecret")));
      await failsAndCloses(c, 2, token, "wrong password");
    });
    await t.step("an unknown user: AUTHFAILED, then the connection closes", async () => {
      const [c, challenge] = await challenged(address);
      const token = enc(clientResponse(challenge, user("mallory", "nobody's password")));
      await failsAndCloses(c, 2, token, "unknown user");
    });
    await t.step(
      "a malformed digest-response: AUTHFAILED, then the connection closes",
      async () => {
        const [c] = await challenged(address);
        await failsAndCloses(c, 2, enc("this is not a digest-response"), "malformed");
      },
    );
  },
);

function user(username: string, password: string) {
  return { username, password, cnonce: "cnonce-0123456789" };
}

/** A kazoo program authenticated with SASL DIGEST-MD5 as `name`/`password`. */
function kazooSasl(address: string, name: string, password: string, body: string) {
  const program = kazooProgram(address, body);
  const plain = `KazooClient(hosts=${JSON.stringify(address)}, timeout=10)`;
  assert.ok(program.includes(plain));
  const options = JSON.stringify({ mechanism: "DIGEST-MD5", username: name, password });
  return runKazooProgram(
    program.replace(plain, plain.replace(/\)$/, `, sasl_options=${options})`)),
    `kazoo as ${name} against ${address}`,
  );
}

saslDifferential("SASL identities in ACLs, with kazoo (python3-pure-sasl)", async (t, address) => {
  await t.step("bob creates nodes for sasl:bob and for auth (his identities)", async () => {
    const out = await kazooSasl(
      address,
      "bob",
      "bobsecret",
      `
      zk.create("/s", b("x"), acl=[make_acl("sasl", "bob", all=True)])
      zk.create("/a", b("y"), acl=[make_acl("auth", "", all=True)])
      result = [[(a.id.scheme, a.id.id, a.perms) for a in zk.get_acls(p)[0]] for p in ("/s", "/a")]
      result.append(zk.get("/s")[0])
      `,
    );
    assert.deepEqual(out, [[["sasl", "bob", 31]], [["sasl", "bob", 31]], "x"]);
  });
  await t.step("alice, and an anonymous client, get NoAuth", async () => {
    const body = `
      result = []
      for p in ("/s", "/a"):
          try:
              zk.get(p)
              result.append("read")
          except NoAuthError:
              result.append("NoAuth")
      `;
    assert.deepEqual(await kazooSasl(address, "alice", "alicesecret", body), [
      "NoAuth",
      "NoAuth",
    ]);
    assert.deepEqual(
      await runKazooProgram(kazooProgram(address, body), "anonymous kazoo"),
      ["NoAuth", "NoAuth"],
    );
  });
  await t.step("sasl ACL ids are what KerberosName parses", async () => {
    const out = await runKazooProgram(
      kazooProgram(
        address,
        `
        result = []
        for i, id in enumerate(["a/b@R", "bob@R", "a/b", "a@", "a@b@c", "a/b/c@R"]):
            try:
                zk.create("/k%d" % i, b(""), acl=[make_acl("sasl", id, all=True)])
                result.append("ok")
            except InvalidACLError:
                result.append("InvalidACL")
        `,
      ),
      "kazoo creating sasl ACLs",
    );
    assert.deepEqual(out, ["ok", "ok", "ok", "ok", "InvalidACL", "InvalidACL"]);
  });
  await t.step("a wrong password: kazoo goes AUTH_FAILED → LOST", async () => {
    const out = await kazooSasl(
      address,
      "bob",
      "wrong",
      `
      import time
      deadline = time.time() + 10
      while zk.state != "LOST" and time.time() < deadline:
          time.sleep(0.05)
      result = [zk.client_state, zk.state]
      `,
    );
    // kazoo's AUTH_FAILED callback leaves the client CLOSED and the session LOST.
    assert.deepEqual(out, ["CLOSED", "LOST"]);
  });
});

/** A client JAAS file for the Java client. */
async function clientJaas(name: string, password: string): Promise<string> {
  const file = await Deno.makeTempFile({ prefix: "zetcd-test-client-", suffix: ".jaas" });
  await Deno.writeTextFile(
    file,
    `Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n` +
      `  username=${JSON.stringify(name)}\n  password=${JSON.stringify(password)};\n};\n`,
  );
  return file;
}

saslDifferential("SASL with the Java client (zkCli.sh)", async (t, address) => {
  const commands = ["whoami", "create /s x sasl:bob:cdrwa", "get /s", "getAcl /s"];
  await t.step("the right password: sasl:bob creates and reads its node", async () => {
    const file = await clientJaas("bob", "bobsecret");
    try {
      const r = await runZkCli(address, commands, {
        jvmFlags: [`-Djava.security.auth.login.config=${file}`, "-Dzookeeper.sasl.client=true"],
      });
      assert.deepEqual(r.outputs, [
        "Auth scheme: User\nsasl: bob\nip: 127.0.0.1",
        "Created /s",
        "x",
        "'sasl,'bob\n: cdrwa",
      ]);
    } finally {
      await Deno.remove(file);
    }
  });
  await t.step("a wrong password: the client is no longer connected", async () => {
    const file = await clientJaas("bob", "wrong");
    try {
      const r = await runZkCli(address, commands, {
        jvmFlags: [`-Djava.security.auth.login.config=${file}`, "-Dzookeeper.sasl.client=true"],
      });
      // whoami, sent while SASL fails, lists nothing (or finds no connection); the
      // rest finds no connection: the client is AUTH_FAILED.
      assert.ok(
        ["Auth scheme: User", "Not connected\nNot connected"].includes(r.outputs[0]),
        r.outputs[0],
      );
      assert.deepEqual(r.outputs.slice(1), Array(3).fill("Not connected\nNot connected"));
    } finally {
      await Deno.remove(file);
    }
  });
});

Deno.test({
  name: "SASL: an unknown user with a known user's password is refused (not ZOOKEEPER-4839)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // ZooKeeper 3.8.0 accepts this one (the last user's password); we do not copy it.
  await using stack = await startStack({ saslUsers: jaasUsers(JAAS) });
  for (const password of ["bobsecret", "alicesecret"]) {
    const [c, challenge] = await challenged(stack.address);
    const token = enc(clientResponse(challenge, user("mallory", password)));
    await failsAndCloses(
      c,
      2,
      token,
      `mallory with ${password === "bobsecret" ? "bob" : "alice"}'s password`,
    );
  }
});

Deno.test({
  name: "SASL off (no --jaas-config): opcode 102 is answered as a server without SASL",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack();
  const [c] = await RawClient.session(stack.address);
  const r = await sasl(c, 1, new Uint8Array());
  assert.equal(r?.err, 0);
  assert.equal(r?.token, null);
  c.close();
});
