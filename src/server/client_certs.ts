/**
 * Client certificates on the TLS client port (ZooKeeper's
 * `ssl.clientAuth` with `X509AuthenticationProvider`): the chain check
 * (issuer, signature, validity dates, key usage), the subject's
 * distinguished name as Java's `X500Principal.getName()` prints it
 * (RFC 2253), and a TLS listener that hands each connection over with the
 * `x509` identity of its certificate.
 *
 * Deno's `Deno.listenTls` does not show client certificates; `node:tls`
 * does, and is told to accept any (`rejectUnauthorized: false`) so that the
 * chain is checked here, by rules that do not depend on the TLS library.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import type { Logger } from "@logtape/logtape";
import type { AuthId } from "../zk/acl.ts";

/** ZooKeeper's `ssl.clientAuth`: whether a client certificate is required, optional or not asked for. */
export type ClientAuth = "need" | "want" | "none";

/** A client certificate (chain) that is not accepted; the message says why. */
export class CertificateRefused extends Error {
  override name = "CertificateRefused";
}

// ---------------------------------------------------------------------------
// DER

interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the contents. */
  body: number;
  /** Offset just past the contents. */
  end: number;
}

function tlv(der: Uint8Array, at: number, limit = der.length): Tlv {
  if (at + 2 > limit) throw new CertificateRefused("malformed certificate (truncated)");
  const tag = der[at];
  let len = der[at + 1];
  let body = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || body + n > limit) {
      throw new CertificateRefused("malformed certificate (length)");
    }
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[body + i];
    body += n;
  }
  const end = body + len;
  if (end > limit) throw new CertificateRefused("malformed certificate (truncated)");
  return { tag, start: at, body, end };
}

/** The elements inside a constructed TLV. */
function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.body; at < parent.end;) {
    const t = tlv(der, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

function oid(der: Uint8Array, t: Tlv): string {
  const parts: number[] = [];
  let n = 0;
  for (let i = t.body; i < t.end; i++) {
    n = n * 128 + (der[i] & 0x7f);
    if ((der[i] & 0x80) === 0) {
      if (parts.length === 0) parts.push(n < 80 ? Math.floor(n / 40) : 2, n < 80 ? n % 40 : n - 80);
      else parts.push(n);
      n = 0;
    }
  }
  return parts.join(".");
}

/** The parts of a certificate the checks need. */
interface Parsed {
  subject: { der: Uint8Array; tlv: Tlv };
  /** Extensions by OID: critical flag and the extension value's contents. */
  extensions: Map<string, { critical: boolean; value: Tlv }>;
}

function parse(der: Uint8Array): Parsed {
  const cert = tlv(der, 0);
  const tbs = children(der, cert)[0];
  if (!tbs) throw new CertificateRefused("malformed certificate");
  let fields = children(der, tbs);
  if (fields[0]?.tag === 0xa0) fields = fields.slice(1); // version
  // serial, signature, issuer, validity, subject, subjectPublicKeyInfo, …
  const subject = fields[4];
  if (!subject) throw new CertificateRefused("malformed certificate");
  const extensions = new Map<string, { critical: boolean; value: Tlv }>();
  const wrapped = fields.slice(6).find((f) => f.tag === 0xa3);
  if (wrapped) {
    const list = children(der, wrapped)[0];
    for (const ext of list ? children(der, list) : []) {
      const parts = children(der, ext);
      const critical = parts.length === 3 && parts[1].tag === 0x01 && der[parts[1].body] !== 0;
      const octets = parts[parts.length - 1];
      extensions.set(oid(der, parts[0]), {
        critical,
        value: octets.body < octets.end ? tlv(der, octets.body, octets.end) : octets,
      });
    }
  }
  return { subject: { der, tlv: subject }, extensions };
}

// ---------------------------------------------------------------------------
// Distinguished names

/** The attribute types Java names by keyword in RFC 2253 form; the rest are dotted OIDs. */
const KEYWORDS: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.9": "STREET",
  "0.9.2342.19200300.100.1.25": "DC",
  "0.9.2342.19200300.100.1.1": "UID",
};

/** Characters Java's RFC 2253 form escapes with a backslash. */
const ESCAPED = ',=+<>#;"\\';

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The text of a DER string value, or null for a type that is not a string. */
function stringValue(der: Uint8Array, t: Tlv): string | null {
  const bytes = der.subarray(t.body, t.end);
  switch (t.tag) {
    case 0x0c: // UTF8String
      return new TextDecoder().decode(bytes);
    case 0x13: // PrintableString
    case 0x14: // TeletexString
    case 0x16: // IA5String
    case 0x1a: // VisibleString
      return String.fromCharCode(...bytes);
    case 0x1e: { // BMPString
      let s = "";
      for (let i = 0; i + 1 < bytes.length; i += 2) {
        s += String.fromCharCode(bytes[i] << 8 | bytes[i + 1]);
      }
      return s;
    }
    case 0x1c: { // UniversalString
      let s = "";
      for (let i = 0; i + 3 < bytes.length; i += 4) {
        s += String.fromCodePoint(
          (bytes[i] << 24 | bytes[i + 1] << 16 | bytes[i + 2] << 8 | bytes[i + 3]) >>> 0,
        );
      }
      return s;
    }
    default:
      return null;
  }
}

/** One attribute as Java's `AVA.toRFC2253String` writes it. */
function attribute(der: Uint8Array, ava: Tlv): string {
  const [type, value] = children(der, ava);
  const dotted = oid(der, type);
  const keyword = KEYWORDS[dotted];
  const text = keyword ? stringValue(der, value) : null;
  if (text === null) return `${keyword ?? dotted}=#${hex(der.subarray(value.start, value.end))}`;
  let escaped = "";
  for (const c of text) {
    if (ESCAPED.includes(c)) escaped += `\\${c}`;
    else if (c === "\0") escaped += "\\00";
    else escaped += c;
  }
  // Leading and trailing spaces (and carriage returns) are escaped too.
  const chars = [...escaped];
  let lead = 0;
  while (lead < chars.length && (chars[lead] === " " || chars[lead] === "\r")) lead++;
  let trail = chars.length - 1;
  while (trail >= 0 && (chars[trail] === " " || chars[trail] === "\r")) trail--;
  const out = chars.map((c, i) => (i < lead || i > trail ? `\\${c}` : c)).join("");
  return `${keyword}=${out}`;
}

/**
 * The subject of a DER certificate as Java's
 * `X500Principal.getName()` (RFC 2253): most specific first, `,` between
 * RDNs, `+` between the attributes of one, special characters escaped,
 * attributes without an RFC 2253 keyword as `OID=#hex`.
 *
 * @example
 * ```ts
 * // subject /O=Acme/OU=ops/CN=app-1
 * subjectDN(der); // "CN=app-1,OU=ops,O=Acme"
 * ```
 */
export function subjectDN(der: Uint8Array): string {
  const { subject } = parse(der);
  const rdns = children(der, subject.tlv);
  return rdns.reverse().map((rdn) => children(der, rdn).map((ava) => attribute(der, ava)).join("+"))
    .join(",");
}

// ---------------------------------------------------------------------------
// Chain verification

const EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const EKU_ANY = "2.5.29.37.0";

/** The key usage bits (bit 0: digitalSignature … bit 5: keyCertSign), or null without the extension. */
function keyUsage(der: Uint8Array, p: Parsed): ((bit: number) => boolean) | null {
  const ext = p.extensions.get("2.5.29.15");
  if (!ext || ext.value.tag !== 0x03) return null;
  const bits = der.subarray(ext.value.body + 1, ext.value.end);
  return (bit) => ((bits[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) !== 0;
}

function extendedKeyUsage(der: Uint8Array, p: Parsed): string[] | null {
  const ext = p.extensions.get("2.5.29.37");
  if (!ext) return null;
  return children(der, ext.value).map((t) => oid(der, t));
}

function isCA(der: Uint8Array, p: Parsed): boolean {
  const ext = p.extensions.get("2.5.29.19");
  if (!ext) return false;
  const first = children(der, ext.value)[0];
  return first?.tag === 0x01 && der[first.body] !== 0;
}

function checkDates(cert: X509Certificate, what: string, now: Date): void {
  if (now < new Date(cert.validFrom)) {
    throw new CertificateRefused(`${what} is not valid before ${cert.validFrom}`);
  }
  if (now > new Date(cert.validTo)) {
    throw new CertificateRefused(`${what} expired on ${cert.validTo}`);
  }
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** The CA certificates of a PEM bundle. */
export function trustAnchors(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/**
 * Checks a client's certificate chain (DER, its own certificate first,
 * then any intermediates it sent) against the trusted CAs, as Java's PKIX
 * trust manager does for a TLS client: each certificate signed by the
 * next, up to one issued by a trusted CA; every certificate of the path
 * within its validity dates (the trusted CA's own dates are not checked,
 * as PKIX's trust anchors); intermediates are CAs; the client's
 * certificate allows client authentication (extended key usage clientAuth
 * or any, when the extension is there; key usage digitalSignature, when
 * that one is). Returns the subject's RFC 2253 name.
 *
 * @throws {CertificateRefused} naming what is wrong.
 */
export function verifyClientChain(
  chain: Uint8Array[],
  anchors: X509Certificate[],
  now: Date = new Date(),
): string {
  if (chain.length === 0) throw new CertificateRefused("no client certificate");
  const leafDer = chain[0];
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafDer);
  } catch {
    throw new CertificateRefused("the client certificate cannot be read");
  }
  const parsed = parse(leafDer);
  checkDates(leaf, "the client certificate", now);
  const eku = extendedKeyUsage(leafDer, parsed);
  if (eku && !eku.includes(EKU_CLIENT_AUTH) && !eku.includes(EKU_ANY)) {
    throw new CertificateRefused(
      "the client certificate is not for client authentication (extended key usage without clientAuth)",
    );
  }
  const ku = keyUsage(leafDer, parsed);
  if (ku && !ku(0)) {
    throw new CertificateRefused("the client certificate's key usage lacks digitalSignature");
  }
  const pool: { cert: X509Certificate; der: Uint8Array }[] = [];
  for (const der of chain.slice(1)) {
    try {
      pool.push({ cert: new X509Certificate(der), der });
    } catch { /* unreadable extra certificates are ignored */ }
  }
  let current = leaf;
  for (let depth = 0; depth < 10; depth++) {
    if (anchors.some((a) => issuedBy(current, a))) return subjectDN(leafDer);
    const next = pool.find(({ cert, der }) => {
      if (cert === current || !issuedBy(current, cert)) return false;
      const p = parse(der);
      const usage = keyUsage(der, p);
      return isCA(der, p) && (!usage || usage(5));
    });
    if (!next) break;
    checkDates(next.cert, `intermediate CA ${next.cert.subject.replaceAll("\n", ",")}`, now);
    current = next.cert;
  }
  throw new CertificateRefused(
    "the client certificate is not issued by a trusted CA (--zk-cafile)",
  );
}

// ---------------------------------------------------------------------------
// The listener

/** Identities of connections accepted by a {@link ClientTlsListener}. */
const identities = new WeakMap<Deno.Conn, AuthId>();

/** The `x509` identity of a connection's client certificate, if it showed a good one. */
export function certificateIdentity(conn: Deno.Conn): AuthId | undefined {
  return identities.get(conn);
}

/** Settings of {@link ClientTlsListener.bind}. */
export interface ClientTlsOptions {
  hostname: string;
  port: number;
  /** PEM certificate chain and key of the server. */
  cert: string;
  key: string;
  /** PEM CA bundle trusted for client certificates. */
  ca: string;
  clientAuth: ClientAuth;
  log: Logger;
}

/**
 * A TLS listener (node:tls) that asks clients for certificates and checks
 * them with {@link verifyClientChain}: with `need`, a client without a good
 * certificate is disconnected right after the TLS handshake, before it is
 * read from; with `want`, a client without one is served without an
 * `x509` identity, one with a bad one is disconnected. Accepted
 * connections are `Deno.TlsConn`s; {@link certificateIdentity} gives each one's
 * identity.
 */
export class ClientTlsListener implements Deno.TlsListener {
  readonly addr: Deno.NetAddr;
  /** Settles once the port is listening; rejects if it cannot be. */
  readonly listening: Promise<void>;
  readonly #server: tls.Server;
  readonly #queue: Deno.TlsConn[] = [];
  #waiting: ((conn: Deno.TlsConn | null) => void) | null = null;
  #closed = false;

  private constructor(server: tls.Server, addr: Deno.NetAddr, listening: Promise<void>) {
    this.#server = server;
    this.addr = addr;
    this.listening = listening;
  }

  /**
   * Binds the port: synchronously checked first (a busy port throws as
   * `Deno.listen` does), then listened on by node:tls ({@link listening}).
   */
  static bind(options: ClientTlsOptions): ClientTlsListener {
    // node:tls binds asynchronously: Deno.listen tells at once whether the
    // port is free (the error typed as Deno's) and picks a port for 0.
    const probe = Deno.listen({ hostname: options.hostname, port: options.port });
    const port = probe.addr.port;
    probe.close();
    const anchors = trustAnchors(options.ca);
    const server = tls.createServer({
      cert: options.cert,
      key: options.key,
      ca: options.ca,
      requestCert: options.clientAuth !== "none",
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
    });
    const listening = new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, options.hostname, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const listener = new ClientTlsListener(
      server,
      { transport: "tcp", hostname: options.hostname, port },
      listening,
    );
    listening.catch(() => listener.close());
    server.on("error", (err) => options.log.error("TLS client port: {err}", { err: String(err) }));
    server.on("tlsClientError", (err, socket) => {
      options.log.info("TLS handshake with {peer} failed: {err}", {
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
        err: err.message,
      });
    });
    server.on("secureConnection", (socket: tls.TLSSocket) => {
      const peer = `${socket.remoteAddress}:${socket.remotePort}`;
      let id: AuthId | undefined;
      if (options.clientAuth !== "none") {
        const chain = peerChain(socket);
        if (chain.length === 0 && options.clientAuth === "want") {
          // No certificate, and none needed.
        } else {
          try {
            id = { scheme: "x509", id: verifyClientChain(chain, anchors) };
          } catch (err) {
            options.log.info("refusing TLS client {peer}: {why}", {
              peer,
              why: err instanceof CertificateRefused ? err.message : String(err),
            });
            socket.destroy();
            return;
          }
        }
      }
      const conn = new NodeTlsConn(socket);
      if (id) identities.set(conn, id);
      listener.#push(conn);
    });
    return listener;
  }

  #push(conn: Deno.TlsConn): void {
    if (this.#closed) {
      conn.close();
    } else if (this.#waiting) {
      const wake = this.#waiting;
      this.#waiting = null;
      wake(conn);
    } else {
      this.#queue.push(conn);
    }
  }

  accept(): Promise<Deno.TlsConn> {
    return this.#next().then((conn) => {
      if (!conn) throw new Deno.errors.BadResource("listener closed");
      return conn;
    });
  }

  #next(): Promise<Deno.TlsConn | null> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiting = resolve);
  }

  async *[Symbol.asyncIterator](): AsyncIterableIterator<Deno.TlsConn> {
    for (;;) {
      const conn = await this.#next();
      if (!conn) return;
      yield conn;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const conn of this.#queue.splice(0)) conn.close();
    this.#waiting?.(null);
    this.#waiting = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  ref(): void {
    this.#server.ref();
  }

  unref(): void {
    this.#server.unref();
  }
}

/** The DER certificates a client showed: its own first, then those it sent with it. */
function peerChain(socket: tls.TLSSocket): Uint8Array[] {
  const out: Uint8Array[] = [];
  let cert = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (cert?.raw && out.length < 10) {
    const key = cert.raw.toString("base64");
    if (seen.has(key)) break;
    seen.add(key);
    out.push(new Uint8Array(cert.raw));
    cert = cert.issuerCertificate;
  }
  return out;
}

/** A node:tls socket as a `Deno.TlsConn`, for the connection code written for Deno's. */
class NodeTlsConn implements Deno.TlsConn {
  readonly localAddr: Deno.NetAddr;
  readonly remoteAddr: Deno.NetAddr;
  readonly #socket: tls.TLSSocket;
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  #readable?: ReadableStream<Uint8Array<ArrayBuffer>>;
  #writable?: WritableStream<Uint8Array<ArrayBufferLike>>;

  constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    this.localAddr = {
      transport: "tcp",
      hostname: socket.localAddress ?? "",
      port: socket.localPort ?? 0,
    };
    this.remoteAddr = {
      transport: "tcp",
      hostname: (socket.remoteAddress ?? "").replace(/^::ffff:/, ""),
      port: socket.remotePort ?? 0,
    };
    const wake = () => {
      const w = this.#wake;
      this.#wake = null;
      w?.();
    };
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.byteLength;
      // Backpressure: a client whose requests are not read is not read from.
      if (this.#buffered > 256 * 1024) socket.pause();
      wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      wake();
    });
    socket.on("error", (err: Error) => {
      this.#error = err;
      wake();
    });
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const head = this.#chunks[0];
    const n = Math.min(p.byteLength, head.byteLength);
    p.set(head.subarray(0, n));
    if (n === head.byteLength) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(n);
    this.#buffered -= n;
    if (this.#buffered <= 64 * 1024 && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#socket.write(p, (err) => err ? reject(err) : resolve(p.byteLength));
    });
  }

  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream({
      pull: async (controller) => {
        const buf = new Uint8Array(16 * 1024);
        const n = await this.read(buf);
        if (n === null) controller.close();
        else controller.enqueue(buf.slice(0, n));
      },
    });
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    this.#writable ??= new WritableStream({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => {
        this.#socket.end();
      },
      abort: () => {
        this.#socket.destroy();
      },
    });
    return this.#writable;
  }

  handshake(): Promise<Deno.TlsHandshakeInfo> {
    return Promise.resolve({ alpnProtocol: null });
  }

  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  close(): void {
    this.#socket.destroy();
  }

  closeWrite(): Promise<void> {
    this.#socket.end();
    return Promise.resolve();
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
