/**
 * `--jaas-config FILE`: ZooKeeper's server JAAS file, its `Server`
 * section's `user_<name>` options as SASL DIGEST-MD5 users.
 */

import assert from "node:assert/strict";
import { JaasError, jaasUsers, parseJaas } from "../src/cli/jaas.ts";
import { runZetcd } from "./_util/cli.ts";
import { startEtcd } from "./_util/etcd.ts";
import { startServerProcess } from "./_util/server_process.ts";
import { uniquePrefix } from "./_util/zetcd.ts";
import { RawClient } from "./_util/raw_client.ts";
import { clientResponse } from "../src/zk/digest_md5.ts";
import { Code, OpCode } from "../src/zk/constants.ts";
import * as R from "../src/zk/records.ts";

// As ZooKeeper's documentation shows it, with a Client section and comments.
const ZOOKEEPER_JAAS = `
/* the server's users */
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="adminsecret"
       user_bob="bob's \\"secret\\""   // escaped quotes
       user_carol=bare;
};
Client {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="bob"
       password="bobsecret";
};
`;

Deno.test({ name: "JAAS: the Server section's user_<name> options", permissions: "none" }, () => {
  assert.deepEqual(
    [...jaasUsers(ZOOKEEPER_JAAS)],
    [["super", "adminsecret"], ["bob", 'bob\'s "secret"'], ["carol", "bare"]],
  );
  const sections = parseJaas(ZOOKEEPER_JAAS);
  assert.deepEqual([...sections.keys()], ["Server", "Client"]);
  assert.equal(sections.get("Client")![0].flag, "required");
  assert.equal(sections.get("Client")![0].options.get("username"), "bob");
  // Several entries: every entry's users; other options are not users.
  const two = `Server { a.B required user_x="1" debug=true; c.D optional user_y="2"; };`;
  assert.deepEqual([...jaasUsers(two)], [["x", "1"], ["y", "2"]]);
  assert.deepEqual([...jaasUsers("Server { a.B required; };")], []);
});

Deno.test({
  name: "JAAS: errors name the line, never a value",
  permissions: "none",
}, () => {
  const cases: [string, RegExp][] = [
    [
      'Server {\n a.B required\n user_bob="pw1"\n};',
      /line 4: expected an option name or ";" in a\.B/,
    ],
    ['Server {\n a.B required user_bob="pw2";\n}', /expected ";" after the "}"/],
    ['Server {\n a.B sometimes user_bob="pw3";\n};', /line 2: the control flag/],
    ['Server {\n a.B required user_bob="pw4\n', /line 2: unterminated quoted string/],
    ["Server {\n a.B required user_bob=;\n};", /line 2: option user_bob has no value/],
    ['Client { a.B required username="u" password="pw5"; };', /no "Server" section/],
    ["/* pw6", /unterminated comment/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => jaasUsers(text), (e: unknown) => {
      assert.ok(e instanceof JaasError);
      assert.match(e.message, message);
      assert.doesNotMatch(e.message, /pw\d/, "no value in the message");
      return true;
    });
  }
});

Deno.test({
  name: "--jaas-config: an unusable file prints one line naming flag and file, exits with 2",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-test-jaas-" });
  try {
    const missing = await runZetcd(["--jaas-config", `${dir}/none.jaas`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, new RegExp(`--jaas-config ${dir}/none.jaas: `));
    await Deno.writeTextFile(`${dir}/bad.jaas`, 'Server {\n a.B required user_bob="hunter2"\n};');
    const bad = await runZetcd(["--jaas-config", `${dir}/bad.jaas`]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split("\n").length, 1);
    assert.match(bad.stderr, /--jaas-config .*bad\.jaas: line 3: expected an option name or ";"/);
    assert.doesNotMatch(bad.stderr, /hunter2/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "--jaas-config: the server authenticates its users, and logs no password",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-test-jaas-" });
  await using etcd = await startEtcd();
  try {
    await Deno.writeTextFile(`${dir}/server.jaas`, ZOOKEEPER_JAAS);
    await using server = await startServerProcess(etcd.endpoints, uniquePrefix(), [
      "--jaas-config",
      `${dir}/server.jaas`,
      "--log-level",
      "debug",
    ]);
    const enc = (s: string) => new TextEncoder().encode(s);
    for (const [password, err] of [["adminsecret", 0], ["wrong", Code.AUTHFAILED]] as const) {
      const [c] = await RawClient.session(server.address);
      await c.send(1, OpCode.sasl, R.GetSASLRequest, { token: new Uint8Array() });
      const challenge = new TextDecoder().decode(
        R.SetSASLResponse.read((await c.reply())!.body).token!,
      );
      const response = clientResponse(challenge, { username: "super", password, cnonce: "c" });
      await c.send(2, OpCode.sasl, R.GetSASLRequest, { token: enc(response) });
      assert.equal((await c.reply())?.err, err, password);
      c.close();
    }
    const log = server.output();
    assert.match(
      log,
      /closing connection: "sasl" failed with "AUTHFAILED": .wrong password for user "super"/,
    );
    for (const secret of ["adminsecret", "bobsecret", 'secret\\"', "wrong"]) {
      assert.ok(!log.includes(`"${secret}`) && !log.includes(`=${secret}`), secret);
    }
    assert.doesNotMatch(log, /adminsecret|response=[0-9a-f]{32}|rspauth/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
