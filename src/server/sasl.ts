/**
 * SASL DIGEST-MD5 on one connection (opcode 102), as ZooKeeper's
 * `ZooKeeperSaslServer` over Java's `DigestMD5Server`: round 1, an empty
 * token, gets the challenge; round 2, the client's digest-response, gets
 * `rspauth=…` and authenticates the connection as `sasl:<username>` (a
 * non-empty first token is ignored, as by ZooKeeper 3.8). Any other token
 * fails (the caller answers AUTHFAILED and closes).
 *
 * Passwords and digests are never logged, nor put in an error message.
 *
 * @module
 */

import {
  buildChallenge,
  type DigestInputs,
  DigestMd5SyntaxError,
  newNonce,
  parseDirectives,
  responseValue,
  rspauth,
  sameText,
  ZK_DIGEST_URI,
  ZK_SASL_REALM,
} from "../zk/digest_md5.ts";

/** The users a server authenticates: name → password (ZooKeeper's `user_<name>` options). */
export type SaslUsers = ReadonlyMap<string, string>;

/** A failed SASL exchange; the message names no secret. */
export class SaslError extends Error {
  override name = "SaslError";
}

/** The DIGEST-MD5 exchange of one connection. */
export class DigestMd5Exchange {
  readonly #users: SaslUsers;
  #nonce: string | null = null;
  #state: "start" | "challenged" | "done" | "failed" = "start";
  /** The authenticated user, once the exchange completed. */
  username: string | null = null;

  constructor(users: SaslUsers, nonce: () => string = newNonce) {
    this.#users = users;
    this.#makeNonce = nonce;
  }

  readonly #makeNonce: () => string;

  /** Whether the exchange has completed successfully. */
  get complete(): boolean {
    return this.#state === "done";
  }

  /**
   * Answers one client token with the server's next token.
   *
   * @throws {SaslError} when the exchange fails (bad syntax, unknown user,
   * wrong password, a token out of order); the exchange is then over.
   */
  evaluate(token: Uint8Array): Uint8Array {
    try {
      return this.#evaluate(token);
    } catch (err) {
      this.#state = "failed";
      if (err instanceof DigestMd5SyntaxError) {
        throw new SaslError(`malformed token: ${err.message}`);
      }
      throw err;
    }
  }

  #evaluate(token: Uint8Array): Uint8Array {
    switch (this.#state) {
      case "start": {
        // A first token is ignored, as by ZooKeeper 3.8 (DIGEST-MD5 has no initial response).
        this.#nonce = this.#makeNonce();
        this.#state = "challenged";
        return new TextEncoder().encode(buildChallenge(ZK_SASL_REALM, this.#nonce));
      }
      case "challenged": {
        const out = this.#verify(token);
        this.#state = "done";
        return new TextEncoder().encode(out);
      }
      default:
        throw new SaslError("DIGEST-MD5 authentication already completed or failed");
    }
  }

  #verify(token: Uint8Array): string {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(token);
    } catch {
      throw new SaslError("the digest-response is not UTF-8");
    }
    const d = parseDirectives(text);
    const need = (name: string) => {
      const v = d.get(name);
      if (v === undefined) throw new SaslError(`the digest-response has no ${name}`);
      return v;
    };
    const charset = d.get("charset");
    if (charset !== undefined && charset.toLowerCase() !== "utf-8") {
      throw new SaslError("unsupported charset");
    }
    const username = need("username");
    const realm = d.get("realm") ?? "";
    if (realm !== ZK_SASL_REALM) throw new SaslError("mismatched realm");
    if (need("nonce") !== this.#nonce) throw new SaslError("mismatched nonce");
    const cnonce = need("cnonce");
    const nc = need("nc");
    if (!/^[0-9a-fA-F]{8}$/.test(nc) || parseInt(nc, 16) !== 1) {
      throw new SaslError("nonce count is not 1");
    }
    const qop = d.get("qop") ?? "auth";
    if (qop !== "auth") throw new SaslError(`qop ${qop} was not offered`);
    const digestUri = need("digest-uri");
    if (digestUri.toLowerCase() !== ZK_DIGEST_URI) throw new SaslError("mismatched digest-uri");
    const response = need("response").toLowerCase();
    if (!/^[0-9a-f]{32}$/.test(response)) throw new SaslError("malformed response value");
    // An unknown user fails here, whatever it sent (ZOOKEEPER-4839 is not copied).
    const password = this.#users.get(username);
    if (password === undefined) throw new SaslError(`unknown user ${JSON.stringify(username)}`);
    const inputs: DigestInputs = {
      username,
      realm,
      password,
      nonce: this.#nonce!,
      cnonce,
      nc,
      qop,
      digestUri,
      authzid: d.get("authzid"),
    };
    if (!sameText(responseValue(inputs), response)) {
      throw new SaslError(`wrong password for user ${JSON.stringify(username)}`);
    }
    this.username = username;
    return `rspauth=${rspauth(inputs)}`;
  }
}
