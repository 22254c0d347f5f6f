/**
 * The arithmetic and syntax of SASL DIGEST-MD5 (RFC 2831) with qop `auth`,
 * as ZooKeeper's server (Java's `DigestMD5Server`) speaks it: the challenge,
 * the parsing of a digest-response, and the response-value and `rspauth`
 * computations. No state and no I/O: the exchange itself is
 * `src/server/sasl.ts`.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** ZooKeeper's SASL service name (`zookeeper.sasl.client.username`'s default). */
export const ZK_SASL_SERVICE = "zookeeper";
/** ZooKeeper's DIGEST-MD5 server name and realm. */
export const ZK_SASL_REALM = "zk-sasl-md5";
/** The digest-uri a ZooKeeper client sends: `zookeeper/zk-sasl-md5`. */
export const ZK_DIGEST_URI = `${ZK_SASL_SERVICE}/${ZK_SASL_REALM}`;

/** A DIGEST-MD5 token that breaks the syntax of RFC 2831 §2.1. */
export class DigestMd5SyntaxError extends Error {
  override name = "DigestMd5SyntaxError";
}

/**
 * The server's first challenge (RFC 2831 §2.1.1), as a real ZooKeeper 3.8
 * (Java's `DigestMD5Server`) writes it.
 */
export function buildChallenge(realm: string, nonce: string): string {
  // No qop directive: its default is auth, the only one offered.
  return `realm=${quote(realm)},nonce=${quote(nonce)},charset=utf-8,algorithm=md5-sess`;
}

/** A fresh random nonce: 30 random bytes, base64 (40 characters, no quote or comma). */
export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(30));
  return btoa(String.fromCharCode(...bytes));
}

function quote(value: string): string {
  return `"${value.replace(/(["\\])/g, "\\$1")}"`;
}

/**
 * Parses a directive list (`name=token` or `name="quoted \" string"`,
 * comma-separated, with optional white space and empty elements).
 * Directive names are lowercased.
 *
 * @throws {DigestMd5SyntaxError} on malformed text or a repeated directive.
 */
export function parseDirectives(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && " \t\r\n".includes(text[i])) i++;
  };
  while (i < n) {
    skipSpace();
    if (i >= n) break;
    if (text[i] === ",") {
      i++;
      continue;
    }
    const nameStart = i;
    while (i < n && /[!#-'*+\-.0-9A-Z^-z|~]/.test(text[i])) i++;
    const name = text.slice(nameStart, i).toLowerCase();
    if (name === "") throw new DigestMd5SyntaxError(`unexpected character at ${i}`);
    skipSpace();
    if (text[i] !== "=") throw new DigestMd5SyntaxError(`directive ${name} has no value`);
    i++;
    skipSpace();
    let value = "";
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new DigestMd5SyntaxError(`unterminated quoted value of ${name}`);
        const c = text[i++];
        if (c === '"') break;
        if (c === "\\") {
          if (i >= n) throw new DigestMd5SyntaxError(`unterminated quoted value of ${name}`);
          value += text[i++];
        } else {
          value += c;
        }
      }
    } else {
      const start = i;
      while (i < n && !", \t\r\n".includes(text[i])) i++;
      value = text.slice(start, i);
    }
    if (out.has(name)) throw new DigestMd5SyntaxError(`directive ${name} is repeated`);
    out.set(name, value);
    skipSpace();
    if (i < n && text[i] !== ",") throw new DigestMd5SyntaxError(`expected a comma at ${i}`);
  }
  return out;
}

/** The values a response-value (and rspauth) is computed from. */
export interface DigestInputs {
  username: string;
  realm: string;
  password: string;
  nonce: string;
  cnonce: string;
  /** The nonce count, 8 hex digits (`00000001`). */
  nc: string;
  /** `auth` (the only qop ZooKeeper offers). */
  qop: string;
  digestUri: string;
  /** The authorization id, when the client sent one. */
  authzid?: string;
}

/**
 * A string as RFC 2831 hashes it under `charset=utf-8`: ISO 8859-1 when
 * every character fits, UTF-8 otherwise (§2.1.2.1, and Java's
 * `stringToByte_8859_1`).
 */
export function hashBytes(text: string): Uint8Array {
  if ([...text].every((c) => c.codePointAt(0)! <= 0xff)) {
    return Uint8Array.from(text, (c) => c.charCodeAt(0));
  }
  return new TextEncoder().encode(text);
}

function md5(...parts: (string | Uint8Array)[]): Uint8Array {
  const h = createHash("md5");
  for (const p of parts) h.update(typeof p === "string" ? new TextEncoder().encode(p) : p);
  return new Uint8Array(h.digest());
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The response-value of RFC 2831 §2.1.2.1 (algorithm md5-sess):
 * HEX(KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(A2)))), with
 * A1 = H(username:realm:passwd):nonce:cnonce[:authzid] and
 * A2 = `method`:digest-uri. The client's `response` directive uses method
 * `AUTHENTICATE`; the server's `rspauth` the empty method (§2.1.3).
 */
export function responseValue(p: DigestInputs, method: "AUTHENTICATE" | "" = "AUTHENTICATE") {
  const colon = new Uint8Array([0x3a]);
  const secret = md5(
    hashBytes(p.username),
    colon,
    hashBytes(p.realm),
    colon,
    hashBytes(p.password),
  );
  const a1 = p.authzid === undefined || p.authzid === ""
    ? md5(secret, `:${p.nonce}:${p.cnonce}`)
    : md5(secret, `:${p.nonce}:${p.cnonce}:`, new TextEncoder().encode(p.authzid));
  const a2 = md5(`${method}:${p.digestUri}`);
  return hex(md5(`${hex(a1)}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${hex(a2)}`));
}

/** The server's `rspauth` value (RFC 2831 §2.1.3). */
export function rspauth(p: DigestInputs): string {
  return responseValue(p, "");
}

/** Compares two strings in time independent of where they differ. */
export function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * A client's digest-response (RFC 2831 §2.1.2) for `challenge`: what the
 * Java client would send. For tests and tools; the server never needs it.
 */
export function clientResponse(
  challenge: string,
  user: { username: string; password: string; cnonce: string; authzid?: string },
  digestUri = ZK_DIGEST_URI,
): string {
  const c = parseDirectives(challenge);
  const inputs: DigestInputs = {
    username: user.username,
    realm: c.get("realm") ?? "",
    password: user.password,
    nonce: c.get("nonce") ?? "",
    cnonce: user.cnonce,
    nc: "00000001",
    qop: "auth",
    digestUri,
    authzid: user.authzid,
  };
  const fields = [
    `charset=utf-8`,
    `username=${quote(inputs.username)}`,
    `realm=${quote(inputs.realm)}`,
    `nonce=${quote(inputs.nonce)}`,
    `nc=${inputs.nc}`,
    `cnonce=${quote(inputs.cnonce)}`,
    `digest-uri=${quote(digestUri)}`,
    `maxbuf=65536`,
    `response=${responseValue(inputs)}`,
    `qop=auth`,
  ];
  if (user.authzid !== undefined) fields.push(`authzid=${quote(user.authzid)}`);
  return fields.join(",");
}
