/**
 * Security as operators set it up: an etcd with TLS client certificates or
 * with users and passwords (`--certfile --keyfile --cafile` as the Go
 * zetcd, `--etcd-user` with a password file), and a TLS port for clients.
 */

import assert from "node:assert/strict";
import { freePorts } from "../_util/ports.ts";
import { sh } from "../_util/process.ts";
import { enableAuth, startEtcd } from "../_util/etcd.ts";
import { spawnServer } from "../_util/server_process.ts";
import { Nzk } from "../_util/nzk.ts";
import { RawClient } from "../_util/raw_client.ts";
import * as R from "../../src/zk/records.ts";
import { OpCode } from "../../src/zk/constants.ts";

/** A CA, an etcd server certificate for 127.0.0.1 and a client certificate, made with openssl. */
async function makeCertificates(dir: string): Promise<void> {
  const subj = (cn: string) => `-subj /CN=${cn}`;
  await sh(
    `openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.pem ${
      subj("test-ca")
    }`,
    dir,
  );
  for (
    const [name, ext] of [["server", "subjectAltName=DNS:localhost,IP:127.0.0.1"], [
      "client",
      "extendedKeyUsage=clientAuth",
    ]]
  ) {
    await sh(
      `openssl req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr ${subj(name)}`,
      dir,
    );
    await sh(
      `printf '%s\\n' '${ext}' > ${name}.ext && openssl x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out ${name}.pem -extfile ${name}.ext`,
      dir,
    );
  }
}

Deno.test({
  name: "the server reaches an etcd that demands TLS client certificates",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-tls-" });
  const [client, peer] = await freePorts(2);
  await makeCertificates(dir);
  const etcd = new Deno.Command("etcd", {
    args: [
      "--name=tls",
      `--data-dir=${dir}/data`,
      `--listen-client-urls=https://127.0.0.1:${client}`,
      `--advertise-client-urls=https://127.0.0.1:${client}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=tls=http://127.0.0.1:${peer}`,
      `--cert-file=${dir}/server.pem`,
      `--key-file=${dir}/server.key`,
      `--trusted-ca-file=${dir}/ca.pem`,
      "--client-cert-auth",
      "--logger=zap",
      "--log-level=error",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    // A DNS name: Deno's TLS refuses an IP address as the server name.
    const endpoint = `https://localhost:${client}`;
    const server = await spawnServer([
      "--endpoints",
      endpoint,
      "--certfile",
      `${dir}/client.pem`,
      "--keyfile",
      `${dir}/client.key`,
      "--cafile",
      `${dir}/ca.pem`,
    ]);
    try {
      const zk = await Nzk.connect(server.address);
      assert.equal(await zk.create("/over-tls"), "/over-tls");
      await zk.close();
    } finally {
      assert.equal(await server.kill("SIGTERM"), 0);
    }
    // Without a client certificate etcd refuses, and the server says so in one line.
    await assert.rejects(
      spawnServer(["--endpoints", endpoint, "--cafile", `${dir}/ca.pem`]),
      /exited with 1/,
    );
  } finally {
    etcd.kill("SIGKILL");
    await etcd.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "the server logs in to an etcd with auth enabled, with the password from a file",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  await enableAuth(etcd, { name: "zetcd", password: "s3cret", prefix: "/zk/" });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/pw`, "s3cret\n");
    const server = await spawnServer([
      "--endpoints",
      etcd.endpoints[0],
      "--etcd-user",
      "zetcd",
      "--etcd-password-file",
      `${dir}/pw`,
    ]);
    try {
      const zk = await Nzk.connect(server.address);
      assert.equal(await zk.create("/with-auth"), "/with-auth");
      await zk.close();
    } finally {
      assert.equal(await server.kill("SIGTERM"), 0);
    }
    await Deno.writeTextFile(`${dir}/pw`, "wrong\n");
    await assert.rejects(
      spawnServer([
        "--endpoints",
        etcd.endpoints[0],
        "--etcd-user",
        "zetcd",
        "--etcd-password-file",
        `${dir}/pw`,
      ]),
      /exited with 1/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "clients can connect over TLS (--zkaddr-tls), as to ZooKeeper's secureClientPort",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-client-tls-" });
  await makeCertificates(dir);
  await using etcd = await startEtcd();
  try {
    const server = await spawnServer([
      "--endpoints",
      etcd.endpoints[0],
      "--zkaddr-tls",
      "127.0.0.1:0",
      "--zk-certfile",
      `${dir}/server.pem`,
      "--zk-keyfile",
      `${dir}/server.key`,
    ]);
    try {
      const m = /over TLS on "?([\d.]+):(\d+)/.exec(server.output());
      assert.ok(m, server.output());
      const conn = await Deno.connectTls({
        hostname: "localhost",
        port: Number(m[2]),
        caCerts: [await Deno.readTextFile(`${dir}/ca.pem`)],
      });
      const c = RawClient.over(conn);
      const welcome = await c.handshake({ timeOut: 10000 });
      assert.notEqual(welcome?.sessionId, 0n);
      await c.send(1, OpCode.create, R.CreateRequest, {
        path: "/secure",
        data: null,
        acl: [{ perms: 31, id: { scheme: "world", id: "anyone" } }],
        flags: 0,
      });
      assert.equal((await c.reply())?.err, 0);
      c.close();
    } finally {
      assert.equal(await server.kill("SIGTERM"), 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
