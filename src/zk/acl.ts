/**
 * ACL validation and the digest scheme (`DigestAuthenticationProvider`).
 * ACLs are stored and returned; enforcement comes with the ACL issue.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { Errors } from "./errors.ts";
import type { ACL } from "./records.ts";

/** World-readable-and-writable ACL (`ZooDefs.Ids.OPEN_ACL_UNSAFE`). */
export const OPEN_ACL: ACL[] = [{ perms: 31, id: { scheme: "world", id: "anyone" } }];

/** An identity a session has authenticated as. */
export interface AuthId {
  scheme: string;
  id: string;
}

/** `user:base64(sha1("user:password"))`, the digest id of a credential. */
export function digestId(credential: string): string {
  const user = credential.slice(0, credential.indexOf(":"));
  const hash = createHash("sha1").update(credential).digest("base64");
  return `${user}:${hash}`;
}

/**
 * The identity a setAuth packet adds, or null when the scheme is unknown or
 * the credential malformed (AuthFailed).
 */
export function authenticate(scheme: string | null, auth: Uint8Array | null): AuthId | null {
  if (scheme !== "digest" || auth === null) return null;
  let credential: string;
  try {
    credential = new TextDecoder("utf-8", { fatal: true }).decode(auth);
  } catch {
    return null;
  }
  if (credential.indexOf(":") <= 0) return null;
  return { scheme: "digest", id: digestId(credential) };
}

function validId(scheme: string, id: string): boolean {
  switch (scheme) {
    case "world":
      return id === "anyone";
    case "digest":
      return id.split(":").length === 2;
    case "ip": {
      const [addr, bits, extra] = id.split("/");
      if (extra !== undefined || !isIP(addr)) return false;
      if (bits === undefined) return true;
      const max = isIP(addr) === 4 ? 32 : 128;
      return /^\d+$/.test(bits) && Number(bits) <= max;
    }
    case "sasl":
      // ZooKeeper's SASLAuthenticationProvider takes what KerberosName parses:
      // a name without "@", or service[/host]@REALM.
      return id.length > 0 && (!id.includes("@") || /^[^/@]*(\/[^/@]*)?@[^/@]*$/.test(id));
    case "x509":
    case "super":
      return id.length > 0;
    default:
      return false;
  }
}

/**
 * Checks an ACL list from create or setACL and expands `auth` entries into
 * the session's identities, as ZooKeeper's `fixupACL` does.
 *
 * @throws {ZkError} InvalidACL for an empty list, an unknown scheme, a
 * malformed id, or `auth` when the session has no identity.
 */
export function fixupACL(path: string, acl: ACL[], authIds: AuthId[]): ACL[] {
  if (acl.length === 0) throw Errors.invalidACL(path);
  // ZooKeeper drops repeated entries (same perms, scheme and id) first.
  if (acl.length > 1) {
    const seen = new Set<string>();
    acl = acl.filter((a) => {
      const key = JSON.stringify([a.perms, a.id.scheme, a.id.id]);
      return seen.has(key) ? false : (seen.add(key), true);
    });
  }
  const out: ACL[] = [];
  for (const entry of acl) {
    const scheme = entry.id.scheme ?? "";
    const id = entry.id.id ?? "";
    if (scheme === "auth") {
      if (authIds.length === 0) throw Errors.invalidACL(path);
      for (const a of authIds) out.push({ perms: entry.perms, id: { scheme: a.scheme, id: a.id } });
    } else if (validId(scheme, id)) {
      out.push({ perms: entry.perms, id: { scheme, id } });
    } else {
      throw Errors.invalidACL(path);
    }
  }
  return out;
}

/** Who is asking: the session's identities and the client's address. */
export interface Principal {
  /** Identities from setAuth (digest) and implied ones (ip). */
  ids: AuthId[];
  /** The client's IP address. */
  address: string;
  /** Authenticated as the super user (`--superdigest`). */
  superuser: boolean;
}

/**
 * Whether `who` holds permission `perm` on a node with ACL `acl`, as
 * ZooKeeper's `checkACL`: the super user and an empty ACL pass; otherwise
 * some entry with the permission bit must match one of the identities
 * (world:anyone matches everyone, ip entries the client's address,
 * digest and other schemes an identity of the same scheme and id).
 */
export function permitted(acl: ACL[], perm: number, who: Principal): boolean {
  if (who.superuser || acl.length === 0) return true;
  for (const entry of acl) {
    if ((entry.perms & perm) === 0) continue;
    const scheme = entry.id.scheme ?? "";
    const id = entry.id.id ?? "";
    if (scheme === "world" && id === "anyone") return true;
    if (scheme === "ip") {
      if (ipMatches(id, who.address)) return true;
      continue;
    }
    if (who.ids.some((a) => a.scheme === scheme && a.id === id)) return true;
  }
  return false;
}

/** Whether `address` falls in `spec` (`a.b.c.d`, `a.b.c.d/bits`, or IPv6 likewise). */
export function ipMatches(spec: string, address: string): boolean {
  const [net, bitsText] = spec.split("/");
  const a = ipBytes(net);
  const b = ipBytes(address.replace(/^::ffff:/, ""));
  if (!a || !b || a.length !== b.length) return false;
  const bits = bitsText === undefined ? a.length * 8 : Number(bitsText);
  for (let i = 0; i < a.length; i++) {
    const take = Math.max(0, Math.min(8, bits - i * 8));
    const mask = take === 0 ? 0 : (0xff << (8 - take)) & 0xff;
    if ((a[i] & mask) !== (b[i] & mask)) return false;
  }
  return true;
}

function ipBytes(text: string): number[] | null {
  if (isIP(text) === 4) return text.split(".").map(Number);
  if (isIP(text) !== 6) return null;
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(":") : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return all.flatMap((g) => {
    const n = parseInt(g || "0", 16);
    return [n >> 8, n & 0xff];
  });
}

/** A session id as ZooKeeper prints it: `0x` and lowercase hex of the unsigned value. */
export function sessionHex(id: bigint): string {
  return `0x${BigInt.asUintN(64, id).toString(16)}`;
}
