/**
 * The etcd connection flags, shared by the server and by the commands
 * that talk to etcd directly (`zetcd migrate`): `--endpoints`, the Go
 * zetcd's `--certfile/--keyfile/--cafile`, and `--etcd-user` with its
 * password from a file or `ZETCD_ETCD_PASSWORD` (never from argv).
 *
 * @module
 */

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
  const readPem = (flag: string, file?: string) => {
    if (file === undefined) return undefined;
    try {
      return Deno.readFileSync(file);
    } catch (err) {
      throw new UsageError(`--${flag} ${file}: ${(err as Error).message}`);
    }
  };
  const cert = readPem("certfile", v.certfile);
  const key = readPem("keyfile", v.keyfile);
  const ca = readPem("cafile", v.cafile);
  let auth: EtcdOptions["auth"];
  if (v["etcd-user"] !== undefined) {
    let password = env.ZETCD_ETCD_PASSWORD;
    const file = v["etcd-password-file"];
    if (file !== undefined) {
      try {
        password = Deno.readTextFileSync(file).replace(/\r?\n$/, "");
      } catch (err) {
        throw new UsageError(`--etcd-password-file ${file}: ${(err as Error).message}`);
      }
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
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError("--certfile and --keyfile go together");
  }
  return {
    endpoints: v.endpoints ? v.endpoints.split(",").map((e) => e.trim()).filter(Boolean) : [],
    tls: cert || ca ? { cert, key, ca } : undefined,
    auth,
  };
}

/** `--prefix` with its trailing `/`. */
export function prefixFlag(value: string): string {
  return value.endsWith("/") ? value : `${value}/`;
}
