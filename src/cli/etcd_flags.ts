/**
 * The etcd connection flags, shared by the server and by the commands
 * that talk to etcd directly (`zetcd migrate`): `--endpoints`, the Go
 * zetcd's `--certfile/--keyfile/--cafile`, and `--etcd-user` with its
 * password from a file or `ZETCD_ETCD_PASSWORD` (never from argv).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { EtcdOptions } from "../etcd/client.ts";

/** Thrown for a command line that cannot be used; exit code 2. */
export class UsageError extends Error {}

/** The `parseArgs` options of the etcd flags. */
export const ETCD_FLAGS = {
  endpoints: { type: "string" },
  certfile: { type: "string" },
  keyfile: { type: "string" },
  cafile: { type: "string" },
  "etcd-user": { type: "string" },
  "etcd-password-file": { type: "string" },
} as const;

/** The parsed values of {@link ETCD_FLAGS}. */
export interface EtcdFlagValues {
  endpoints?: string;
  certfile?: string;
  keyfile?: string;
  cafile?: string;
  "etcd-user"?: string;
  "etcd-password-file"?: string;
}

/** Endpoints (empty when none was given), TLS files and credentials, read and checked. */
export function etcdSettings(
  v: EtcdFlagValues,
  env: Record<string, string>,
): EtcdOptions {
  if ((v.certfile === undefined) !== (v.keyfile === undefined)) {
    throw new UsageError("--certfile and --keyfile go together");
  }
  const pair = v.certfile !== undefined && v.keyfile !== undefined
    ? readKeyPair({ flag: "certfile", file: v.certfile }, { flag: "keyfile", file: v.keyfile })
    : undefined;
  const ca = v.cafile === undefined ? undefined : readPemFile("cafile", v.cafile, "certificates");
  let auth: EtcdOptions["auth"];
  if (v["etcd-user"] !== undefined) {
    let password = env.ZETCD_ETCD_PASSWORD;
    const file = v["etcd-password-file"];
    if (file !== undefined) {
      password = new TextDecoder().decode(readFlagFile("etcd-password-file", file))
        .replace(/\r?\n$/, "");
    }
    if (password === undefined) {
      throw new UsageError(
        "--etcd-user needs a password: --etcd-password-file FILE or ZETCD_ETCD_PASSWORD",
      );
    }
    auth = { username: v["etcd-user"], password };
  } else if (v["etcd-password-file"] !== undefined) {
    throw new UsageError("--etcd-password-file goes with --etcd-user");
  }
  return {
    endpoints: v.endpoints ? v.endpoints.split(",").map((e) => e.trim()).filter(Boolean) : [],
    tls: pair || ca ? { cert: pair?.cert, key: pair?.key, ca } : undefined,
    auth,
  };
}

/** The contents of the file named by `--flag`; a file that cannot be read is a UsageError naming it. */
function readFlagFile(flag: string, file: string): Uint8Array {
  try {
    return Deno.readFileSync(file);
  } catch (err) {
    // Deno's message ends with the operation and the path, named already.
    const why = (err as Error).message.replace(/: \w+ '.*'$/, "");
    throw new UsageError(`--${flag} ${file}: ${why}`);
  }
}

/** PEM blocks of certificates. */
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * A PEM file named by `--flag`, checked to hold what it is for: one or more
 * certificates (a CA bundle, a certificate chain) or a private key. A file
 * that cannot be read or used is a UsageError naming flag and file, so TLS
 * problems of our own files never look like an unreachable etcd.
 */
export function readPemFile(flag: string, file: string, holds: "certificates" | "key"): Uint8Array {
  const bytes = readFlagFile(flag, file);
  const problem = holds === "key" ? keyProblem(bytes) : certificatesProblem(bytes);
  if (problem) throw new UsageError(`--${flag} ${file}: ${problem}`);
  return bytes;
}

/** What is wrong with a PEM file of certificates, or null. */
function certificatesProblem(bytes: Uint8Array): string | null {
  const blocks = new TextDecoder().decode(bytes).match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) return "no PEM certificate in it (-----BEGIN CERTIFICATE-----)";
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      return `certificate ${i + 1} of ${blocks.length} is not a valid X.509 certificate`;
    }
  }
  return null;
}

/** What is wrong with a PEM private key file, or null. */
function keyProblem(bytes: Uint8Array): string | null {
  try {
    createPrivateKey(Buffer.from(bytes));
    return null;
  } catch {
    return "not a PEM private key (or one encrypted with a passphrase)";
  }
}

/** A flag naming a file. */
export interface FileFlag {
  flag: string;
  file: string;
}

/**
 * A certificate chain and its private key (PEM), read and checked: the key
 * must be the one of the chain's first certificate.
 */
export function readKeyPair(cert: FileFlag, key: FileFlag): { cert: Uint8Array; key: Uint8Array } {
  const certBytes = readPemFile(cert.flag, cert.file, "certificates");
  const keyBytes = readPemFile(key.flag, key.file, "key");
  if (!keyMatches(certBytes, keyBytes)) {
    throw new UsageError(
      `--${key.flag} ${key.file}: not the private key of --${cert.flag} ${cert.file}`,
    );
  }
  return { cert: certBytes, key: keyBytes };
}

/** Whether `key` is the private key of the first certificate of `cert` (true when it cannot be told). */
function keyMatches(cert: Uint8Array, key: Uint8Array): boolean {
  try {
    return new X509Certificate(Buffer.from(cert)).checkPrivateKey(
      createPrivateKey(Buffer.from(key)),
    );
  } catch {
    return true;
  }
}

/**
 * `--prefix` with its trailing `/`. An empty or root prefix is refused: the
 * namespace's keys (`layout`, `node/…`, `attr/…`) would land at the root of
 * an etcd that other applications may share.
 */
export function prefixFlag(value: string, flag = "prefix"): string {
  if (/^\/*$/.test(value)) {
    throw new UsageError(
      `--${flag} must name a namespace such as /zk/, not the root of etcd (got "${value}")`,
    );
  }
  return value.endsWith("/") ? value : `${value}/`;
}
