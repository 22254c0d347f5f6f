/**
 * Client certificates on the TLS client port (`--zk-cafile`,
 * `--zk-client-auth`), as ZooKeeper 3.8's secureClientPort with
 * `ssl.clientAuth` and `X509AuthenticationProvider`: who gets a session,
 * and the `x509:<subject DN>` identity in whoAmI and ACLs. Every spec runs
 * against our server and against a real ZooKeeper configured so.
 */

import assert from "node:assert/strict";
import { type ClientCertificates, makeClientCertificates } from "../_util/client_certs.ts";
import { startStack } from "../_util/zetcd.ts";
import { DEFAULT_ZOOKEEPER_CLASSPATH, startZooKeeper } from "../_util/zookeeper.ts";
import { runToCompletion } from "../_util/process.ts";
import { RawClient, type Welcome } from "../_util/raw_client.ts";
import * as R from "../../src/zk/records.ts";
import { Code, OpCode } from "../../src/zk/constants.ts";
import { freePort } from "../_util/ports.ts";
import {
  CertificateRefused,
  trustAnchors,
  verifyClientChain,
} from "../../src/server/client_certs.ts";
import { runZetcd } from "../_util/cli.ts";
import { spawnServer } from "../_util/server_process.ts";
import { startEtcd } from "../_util/etcd.ts";

type Pair = { cert: string; key: string };

/** The servers a spec runs against: the TLS port and the plaintext port. */
interface Ports {
  tls: string;
  plain: string;
}

type Spec = (t: Deno.TestContext, ports: Ports, certs: ClientCertificates) => Promise<void>;

let certificates: Promise<ClientCertificates> | undefined;
const certs = () => certificates ??= makeClientCertificates();

/** Registers `spec` against our server and the ZooKeeper 3.8 oracle, both with `clientAuth`. */
function differential(name: string, clientAuth: "need" | "want", spec: Spec): void {
  Deno.test({
    name: `${name} (zetcd)`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async (t) => {
    const c = await certs();
    await using stack = await startStack({
      tls: {
        hostname: "127.0.0.1",
        port: 0,
        cert: await Deno.readTextFile(c.server.cert),
        key: await Deno.readTextFile(c.server.key),
        ca: await Deno.readTextFile(c.ca),
        clientAuth,
      },
    });
    await spec(t, { tls: stack.server.tlsAddress!, plain: stack.address }, c);
  });
  Deno.test({
    name: `${name} (the ZooKeeper 3.8 oracle, checking the spec)`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async (t) => {
    const c = await certs();
    await using zookeeper = await startZooKeeper({
      tls: { cert: c.server.cert, key: c.server.key, ca: c.ca, clientAuth },
    });
    await spec(t, { tls: zookeeper.tlsHostPort!, plain: zookeeper.hostPort }, c);
  });
}

/** A connection over TLS with `pair` as client certificate, and its handshake (null: no session). */
async function connect(
  address: string,
  ca: string,
  pair?: Pair,
): Promise<{ client: RawClient; welcome: Welcome } | null> {
  const [, port] = address.split(":");
  let client: RawClient | undefined;
  try {
    const conn = await Deno.connectTls({
      hostname: "localhost",
      port: Number(port),
      caCerts: [await Deno.readTextFile(ca)],
      ...(pair
        ? { cert: await Deno.readTextFile(pair.cert), key: await Deno.readTextFile(pair.key) }
        : {}),
    });
    client = RawClient.over(conn);
    const welcome = await within(5000, client.handshake({ timeOut: 10000 }));
    if (welcome) return { client, welcome };
  } catch {
    // A failed TLS handshake: no session either.
  }
  client?.close();
  return null;
}

/** `promise`'s value, or null after `ms`. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), ms));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function session(address: string, ca: string, pair?: Pair): Promise<RawClient> {
  const s = await connect(address, ca, pair);
  assert.ok(s, "no session");
  assert.notEqual(s.welcome.sessionId, 0n);
  return s.client;
}

let xids = 1;

async function whoAmI(c: RawClient): Promise<{ authScheme: string; user: string }[]> {
  await c.send(xids++, OpCode.whoAmI);
  const r = await c.reply();
  assert.ok(r);
  assert.equal(r.err, 0);
  return R.WhoAmIResponse.read(r.body).clientInfo!.map((i) => ({
    authScheme: i.authScheme ?? "",
    user: i.user ?? "",
  }));
}

async function create(c: RawClient, path: string, scheme: string, id: string): Promise<number> {
  await c.send(xids++, OpCode.create, R.CreateRequest, {
    path,
    data: new TextEncoder().encode("x"),
    acl: [{ perms: 31, id: { scheme, id } }],
    flags: 0,
  });
  return (await c.reply())!.err;
}

async function getData(c: RawClient, path: string): Promise<number> {
  await c.send(xids++, OpCode.getData, R.GetDataRequest, { path, watch: false });
  return (await c.reply())!.err;
}

async function getAcl(c: RawClient, path: string): Promise<string[]> {
  await c.send(xids++, OpCode.getACL, R.GetACLRequest, { path });
  const r = await c.reply();
  assert.equal(r?.err, 0);
  return R.GetACLResponse.read(r.body).acl!.map((a) => `${a.id.scheme}:${a.id.id}`);
}

const APP_1 = "CN=app-1,OU=ops,O=Acme";

/**
 * What Debian's Java client (`ZooKeeperMain … whoami`, Netty) prints over
 * TLS with `c.client`'s certificate and `key` (its own by default) in a PEM
 * key store, within `ms`; `timedOut` when it never got a session. Netty's
 * codec and resolver jars are added: zookeeper.jar's manifest lacks them.
 */
async function javaWhoAmI(
  address: string,
  c: ClientCertificates,
  key = c.client.key,
  ms = 30_000,
): Promise<{ stdout: string; timedOut: boolean }> {
  const keyStore = `${c.dir}/java-${key.split("/").pop()}.pem`;
  await Deno.writeTextFile(
    keyStore,
    await Deno.readTextFile(key) + await Deno.readTextFile(c.client.cert),
  );
  const r = await runToCompletion(Deno.env.get("JAVA_BIN") ?? "java", [
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-cp",
    [
      DEFAULT_ZOOKEEPER_CLASSPATH,
      "/usr/share/java/netty-codec.jar",
      "/usr/share/java/netty-resolver.jar",
    ].join(":"),
    "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
    "-Dzookeeper.client.secure=true",
    `-Dzookeeper.ssl.keyStore.location=${keyStore}`,
    "-Dzookeeper.ssl.keyStore.type=PEM",
    `-Dzookeeper.ssl.trustStore.location=${c.ca}`,
    "-Dzookeeper.ssl.trustStore.type=PEM",
    "org.apache.zookeeper.ZooKeeperMain",
    "-server",
    address,
    "-waitforconnection",
    "whoami",
  ], { timeoutMs: ms });
  if (!r.timedOut) assert.equal(r.code, 0, r.stdout + r.stderr);
  return { stdout: r.stdout, timedOut: r.timedOut };
}

differential(
  "a client certificate gives the session the identity x509:<subject DN, RFC 2253>",
  "need",
  async (t, ports, c) => {
    await t.step("whoAmI lists the certificate's subject, most specific first", async () => {
      const s = await session(ports.tls, c.ca, c.client);
      assert.deepEqual(await whoAmI(s), [
        { authScheme: "x509", user: APP_1 },
        { authScheme: "ip", user: "127.0.0.1" },
      ]);
      s.close();
    });
    await t.step("special characters are escaped; a type without keyword is OID=#hex", async () => {
      const s = await session(ports.tls, c.ca, c.escaped);
      assert.deepEqual(await whoAmI(s), [
        {
          authScheme: "x509",
          user: '1.2.840.113549.1.9.1=#16056140622e63,CN=a\\+b \\"q\\" \\=\\#\\;\\<x\\>,' +
            "O=Acme\\, Inc.,C=DE",
        },
        { authScheme: "ip", user: "127.0.0.1" },
      ]);
      s.close();
    });
    await t.step("a certificate from an intermediate CA the client sends along", async () => {
      const s = await session(ports.tls, c.ca, c.chained);
      assert.deepEqual((await whoAmI(s))[0], { authScheme: "x509", user: "CN=deep" });
      s.close();
    });
    await t.step("the Java client (Netty, a PEM key store) sees the same", async () => {
      const out = (await javaWhoAmI(ports.tls, c)).stdout;
      assert.match(out, /^x509: CN=app-1,OU=ops,O=Acme$/m);
      assert.match(out, /^ip: 127\.0\.0\.1$/m);
    });
    await t.step("ACL ids match the DN exactly", async () => {
      const owner = await session(ports.tls, c.ca, c.client);
      assert.equal(await create(owner, "/x509", "x509", APP_1), 0);
      assert.equal(await create(owner, "/x509-spaced", "x509", "CN=app-1, OU=ops, O=Acme"), 0);
      assert.equal(await create(owner, "/x509-auth", "auth", ""), 0);
      assert.deepEqual(await getAcl(owner, "/x509-auth"), [`x509:${APP_1}`]);
      assert.equal(await getData(owner, "/x509"), 0);
      assert.equal(await getData(owner, "/x509-auth"), 0);
      assert.equal(await getData(owner, "/x509-spaced"), Code.NOAUTH);
      owner.close();
      const other = await session(ports.tls, c.ca, c.chained);
      assert.equal(await getData(other, "/x509"), Code.NOAUTH);
      other.close();
      // The same session over plaintext has no certificate, hence not the identity.
      const [plain] = await RawClient.session(ports.plain);
      assert.equal(await getData(plain, "/x509"), Code.NOAUTH);
      assert.deepEqual((await whoAmI(plain)).map((i) => i.authScheme), ["ip"]);
      plain.close();
    });
  },
);

differential(
  "with client auth need, a client without a good certificate gets no session",
  "need",
  async (t, ports, c) => {
    const refusals: [string, Pair | undefined][] = [
      ["no certificate", undefined],
      ["a certificate from an unknown CA", c.stranger],
      ["an expired certificate", c.expired],
      ["a certificate without the clientAuth extended key usage", c.serverOnly],
    ];
    for (const [what, pair] of refusals) {
      await t.step(what, async () => {
        assert.equal(await connect(ports.tls, c.ca, pair), null);
      });
    }
    await t.step("a certificate shown without its private key (the Java client)", async () => {
      // Java signs the handshake with whatever key it is given; the TLS stack checks it.
      const r = await javaWhoAmI(ports.tls, c, c.stranger.key, 6000);
      assert.ok(r.timedOut, r.stdout);
      assert.doesNotMatch(r.stdout, /x509:/);
    });
    await t.step("plaintext on the TLS port is never answered", async () => {
      const raw = await RawClient.open(ports.tls);
      const welcome = await within(3000, raw.handshake().catch(() => null));
      assert.equal(welcome, null);
      raw.close();
    });
    await t.step("a good certificate still gets one", async () => {
      (await session(ports.tls, c.ca, c.client)).close();
    });
  },
);

differential(
  "with client auth want, a certificate is optional, but a bad one is refused",
  "want",
  async (t, ports, c) => {
    await t.step("no certificate: a session without x509 identity", async () => {
      const s = await session(ports.tls, c.ca);
      assert.deepEqual((await whoAmI(s)).map((i) => i.authScheme), ["ip"]);
      s.close();
    });
    await t.step("a good certificate: its identity", async () => {
      const s = await session(ports.tls, c.ca, c.client);
      assert.deepEqual((await whoAmI(s))[0], { authScheme: "x509", user: APP_1 });
      s.close();
    });
    for (
      const [what, pair] of [
        ["from an unknown CA", c.stranger],
        ["expired", c.expired],
        ["without clientAuth usage", c.serverOnly],
      ] as const
    ) {
      await t.step(`a certificate ${what}: no session`, async () => {
        assert.equal(await connect(ports.tls, c.ca, pair), null);
      });
    }
  },
);

function lines(s: string): string[] {
  return s.split("\n").filter((l) => l.trim() !== "");
}

Deno.test({
  name: "--zk-cafile and --zk-client-auth: misuse is exit code 2 in one line, a busy port exit 1",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const c = await certs();
  const unreachable = `127.0.0.1:${await freePort()}`;
  const tlsFlags = ["--zk-certfile", c.server.cert, "--zk-keyfile", c.server.key];
  const cases: [string[], RegExp][] = [
    [["--zk-cafile", c.ca], /--zk-cafile and --zk-client-auth go with --zkaddr-tls/],
    [
      ["--zkaddr-tls", "127.0.0.1:0", ...tlsFlags, "--zk-client-auth", "maybe"],
      /--zk-client-auth must be need, want or none, got "maybe"/,
    ],
    [
      ["--zkaddr-tls", "127.0.0.1:0", ...tlsFlags, "--zk-client-auth", "need"],
      /--zk-client-auth need needs --zk-cafile/,
    ],
    [
      ["--zkaddr-tls", "127.0.0.1:0", ...tlsFlags, "--zk-cafile", c.server.key],
      new RegExp(`--zk-cafile ${c.server.key}: no PEM certificate`),
    ],
  ];
  for (const [flags, expected] of cases) {
    const r = await runZetcd(["--endpoints", unreachable, "--zkaddr", "127.0.0.1:0", ...flags]);
    const out = lines(r.stderr + r.stdout);
    assert.equal(r.code, 2, `${flags.join(" ")}: ${out.join("\n")}`);
    assert.equal(out.length, 1, out.join("\n"));
    assert.match(out[0], expected);
  }
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const busyAddr = `127.0.0.1:${busy.addr.port}`;
  const r = await runZetcd([
    "--endpoints",
    unreachable,
    "--zkaddr",
    "127.0.0.1:0",
    "--zkaddr-tls",
    busyAddr,
    ...tlsFlags,
    "--zk-cafile",
    c.ca,
  ]);
  const out = lines(r.stderr + r.stdout);
  assert.equal(r.code, 1, out.join("\n"));
  assert.ok(out[0].includes(`cannot listen on ${busyAddr} (TLS clients): address in use`), out[0]);
});

Deno.test({
  name: "zetcd --zkaddr-tls with --zk-cafile: client certificates needed by default",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const c = await certs();
  await using etcd = await startEtcd();
  const server = await spawnServer([
    "--endpoints",
    etcd.endpoints[0],
    "--zkaddr-tls",
    "127.0.0.1:0",
    "--zk-certfile",
    c.server.cert,
    "--zk-keyfile",
    c.server.key,
    "--zk-cafile",
    c.ca,
  ]);
  try {
    const m = /over TLS on "?([\d.]+:\d+)/.exec(server.output());
    assert.ok(m, server.output());
    const s = await session(m[1], c.ca, c.client);
    assert.deepEqual((await whoAmI(s))[0], { authScheme: "x509", user: APP_1 });
    s.close();
    assert.equal(await connect(m[1], c.ca), null);
    assert.equal(await connect(m[1], c.ca, c.stranger), null);
  } finally {
    assert.equal(await server.kill("SIGTERM"), 0);
  }
  assert.match(
    server.output(),
    /refusing TLS client "?127\.0\.0\.1:\d+"?: "?no client certificate/,
  );
  assert.match(server.output(), /refusing TLS client .*not issued by a trusted CA/);
});

Deno.test("verifyClientChain names what is wrong with a chain", async () => {
  const c = await certs();
  const der = async (file: string) =>
    trustAnchors(await Deno.readTextFile(file)).map((x) => new Uint8Array(x.raw));
  const anchors = trustAnchors(await Deno.readTextFile(c.ca));
  assert.equal(verifyClientChain(await der(c.client.cert), anchors), APP_1);
  assert.equal(verifyClientChain(await der(c.chained.cert), anchors), "CN=deep");
  const refused = (chain: Uint8Array[], why: RegExp, now?: Date) => {
    assert.throws(() => verifyClientChain(chain, anchors, now), (err: Error) => {
      assert.ok(err instanceof CertificateRefused);
      assert.match(err.message, why);
      return true;
    });
  };
  refused([], /no client certificate/);
  refused(await der(c.stranger.cert), /not issued by a trusted CA/);
  refused(await der(c.expired.cert), /expired/);
  refused(await der(c.serverOnly.cert), /not for client authentication/);
  refused(await der(c.client.cert), /not valid before/, new Date("2001-01-01"));
  // The leaf without the intermediate that signed it.
  refused((await der(c.chained.cert)).slice(0, 1), /not issued by a trusted CA/);
});

Deno.test({
  name: "client certificates: the temporary directory is removed",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  if (certificates) await (await certificates).remove();
});
