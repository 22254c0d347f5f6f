/**
 * ZooKeeper 3.8's TLS client port (`secureClientPort`) for the oracle:
 * Netty's connection factory, PKCS#12 key and trust stores made from PEM
 * files (`openssl pkcs12`, Java's `keytool`), client certificates as the
 * `x509` scheme (`X509AuthenticationProvider`).
 *
 * @module
 */

/** PEM files of a TLS client port, and ZooKeeper's `ssl.clientAuth`. */
export interface ZooKeeperTls {
  /** Certificate (chain) and key of the server. */
  cert: string;
  key: string;
  /** CA certificate(s) trusted for client certificates. */
  ca: string;
  clientAuth?: "need" | "want" | "none";
}

const PASSWORD = "zetcd-test";

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * Writes the key and trust stores into `dir` and returns the zoo.cfg lines
 * and JVM system properties that make ZooKeeper serve TLS clients on
 * 127.0.0.1:`port`, and the jars Netty needs besides ZooKeeper's.
 */
export async function zooKeeperTlsSettings(
  dir: string,
  port: number,
  tls: ZooKeeperTls,
): Promise<{ cfg: string[]; jvm: string[]; classpath: string[] }> {
  const keyStore = `${dir}/keystore.p12`;
  const trustStore = `${dir}/truststore.p12`;
  await run("openssl", [
    "pkcs12",
    "-export",
    "-in",
    tls.cert,
    "-inkey",
    tls.key,
    "-name",
    "server",
    "-out",
    keyStore,
    "-passout",
    `pass:${PASSWORD}`,
  ]);
  const cas = (await Deno.readTextFile(tls.ca)).match(
    /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g,
  ) ?? [];
  for (const [i, pem] of cas.entries()) {
    const file = `${dir}/trusted-${i}.pem`;
    await Deno.writeTextFile(file, `${pem}\n`);
    await run("keytool", [
      "-importcert",
      "-noprompt",
      "-alias",
      `ca${i}`,
      "-file",
      file,
      "-keystore",
      trustStore,
      "-storetype",
      "PKCS12",
      "-storepass",
      PASSWORD,
    ]);
  }
  const cfg = [`secureClientPort=${port}`, "secureClientPortAddress=127.0.0.1"];
  const jvm = [
    "-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
    `-Dzookeeper.ssl.keyStore.location=${keyStore}`,
    `-Dzookeeper.ssl.keyStore.password=${PASSWORD}`,
    "-Dzookeeper.ssl.keyStore.type=PKCS12",
    `-Dzookeeper.ssl.trustStore.location=${trustStore}`,
    `-Dzookeeper.ssl.trustStore.password=${PASSWORD}`,
    "-Dzookeeper.ssl.trustStore.type=PKCS12",
    `-Dzookeeper.ssl.clientAuth=${tls.clientAuth ?? "need"}`,
    "-Dzookeeper.authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
  ];
  // Netty's codec and resolver, which the Debian zookeeper.jar's manifest does not list.
  const classpath = ["/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar"];
  return { cfg, jvm, classpath };
}
