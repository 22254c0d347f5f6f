/**
 * Test certificates for TLS client ports with client certificates, made
 * with `openssl` in a temporary directory: a CA, a server certificate for
 * localhost/127.0.0.1, and client certificates (good, from another CA,
 * expired, without the clientAuth extended key usage, through an
 * intermediate CA).
 *
 * @module
 */

import { sh } from "./process.ts";

/** Paths (PEM) of the files {@link makeClientCertificates} writes. */
export interface ClientCertificates {
  dir: string;
  /** The trusted CA. */
  ca: string;
  server: { cert: string; key: string };
  /** Subject /O=Acme/OU=ops/CN=app-1, clientAuth, from the CA. */
  client: { cert: string; key: string };
  /** Same subject, from a CA nobody trusts. */
  stranger: { cert: string; key: string };
  /** From the CA, valid in 2020 only. */
  expired: { cert: string; key: string };
  /** From the CA, extended key usage serverAuth only. */
  serverOnly: { cert: string; key: string };
  /** Leaf /CN=deep from an intermediate CA of the CA; `cert` holds leaf and intermediate. */
  chained: { cert: string; key: string };
  /** Subject with characters RFC 2253 escapes and an attribute without keyword: /C=DE/O=Acme, Inc./CN=a+b "q" =#;<x>/emailAddress=a@b.c. */
  escaped: { cert: string; key: string };
  /** Removes the directory. */
  remove(): Promise<void>;
}

const CA_EXT = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign";
const CLIENT_EXT =
  "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment";

/** Writes the certificates into a fresh temporary directory. */
export async function makeClientCertificates(): Promise<ClientCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-client-certs-" });
  const run = (cmd: string) => sh(cmd, dir);
  const selfSigned = (name: string, subj: string) =>
    run(
      `openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ${name}.key -out ${name}.pem -subj '${subj}' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign`,
    );
  const signed = async (name: string, subj: string, ca: string, ext: string) => {
    await run(
      `openssl req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr -subj '${subj}'`,
    );
    await Deno.writeTextFile(`${dir}/${name}.ext`, `${ext}\n`);
    await run(
      `openssl x509 -req -in ${name}.csr -CA ${ca}.pem -CAkey ${ca}.key -CAcreateserial -days 2 -out ${name}.pem -extfile ${name}.ext`,
    );
  };
  await selfSigned("ca", "/CN=test-ca");
  await selfSigned("other-ca", "/CN=test-ca");
  await signed(
    "server",
    "/CN=localhost",
    "ca",
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth",
  );
  await signed("client", "/O=Acme/OU=ops/CN=app-1", "ca", CLIENT_EXT);
  await signed("stranger", "/O=Acme/OU=ops/CN=app-1", "other-ca", CLIENT_EXT);
  await signed("server-only", "/CN=app-2", "ca", "extendedKeyUsage=serverAuth");
  await signed(
    "escaped",
    '/C=DE/O=Acme, Inc./CN=a\\+b "q" \\=\\#;<x>/emailAddress=a@b.c',
    "ca",
    CLIENT_EXT,
  );
  await signed("intermediate", "/CN=test-intermediate", "ca", CA_EXT);
  await signed("deep", "/CN=deep", "intermediate", CLIENT_EXT);
  await run("cat deep.pem intermediate.pem > deep-chain.pem");
  // `openssl ca` sets validity dates in the past.
  await Deno.writeTextFile(
    `${dir}/ca.cnf`,
    [
      "[ca]",
      "default_ca = here",
      "[here]",
      "database = index.txt",
      "new_certs_dir = .",
      "serial = serial",
      "default_md = sha256",
      "policy = any",
      "[any]",
      "commonName = supplied",
      "[ext]",
      "extendedKeyUsage = clientAuth",
      "",
    ].join("\n"),
  );
  await run("touch index.txt && echo 01 > serial");
  await run(
    "openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj /CN=expired",
  );
  await run(
    "openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem -startdate 20200101000000Z -enddate 20200102000000Z -extensions ext -notext",
  );
  const pair = (name: string, cert = `${name}.pem`) => ({
    cert: `${dir}/${cert}`,
    key: `${dir}/${name}.key`,
  });
  return {
    dir,
    ca: `${dir}/ca.pem`,
    server: pair("server"),
    client: pair("client"),
    stranger: pair("stranger"),
    expired: pair("expired"),
    serverOnly: pair("server-only"),
    chained: pair("deep", "deep-chain.pem"),
    escaped: pair("escaped"),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
