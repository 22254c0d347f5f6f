/**
 * Decoders for the two encodings the Go zetcd stored values in: Go's
 * signed varints, and the `encoding/gob` stream of an ACL list
 * (`[]ACL{Perms int; Scheme string; ID string}`). Only reading is needed:
 * a migration never writes the Go zetcd's layout.
 *
 * @module
 */

import type { ACL } from "../zk/records.ts";

/** A Go `binary.PutVarint` value: zigzag, then LEB128. */
export function decodeVarint(bytes: Uint8Array): bigint {
  let u = 0n;
  let shift = 0n;
  for (const b of bytes) {
    u |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return (u & 1n) ? ~(u >> 1n) : u >> 1n;
    shift += 7n;
    if (shift > 63n) break;
  }
  throw new Error("truncated or overlong varint");
}

/** Reads gob's unsigned and signed integers, strings and messages. */
class GobReader {
  #pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.#pos >= this.bytes.byteLength;
  }

  get pos(): number {
    return this.#pos;
  }

  set pos(p: number) {
    this.#pos = p;
  }

  uint(): bigint {
    const first = this.#byte();
    if (first < 0x80) return BigInt(first);
    const n = 256 - first; // a negated byte count
    if (n > 8) throw new Error(`gob: bad uint length ${n}`);
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.#byte());
    return v;
  }

  int(): bigint {
    const u = this.uint();
    return (u & 1n) ? ~(u >> 1n) : u >> 1n;
  }

  string(): string {
    const n = Number(this.uint());
    if (this.#pos + n > this.bytes.byteLength) throw new Error("gob: string past the end");
    const s = new TextDecoder("utf-8", { fatal: true }).decode(
      this.bytes.subarray(this.#pos, this.#pos + n),
    );
    this.#pos += n;
    return s;
  }

  #byte(): number {
    if (this.#pos >= this.bytes.byteLength) throw new Error("gob: unexpected end of data");
    return this.bytes[this.#pos++];
  }
}

/**
 * Decodes the Go zetcd's ACL value: type definitions (skipped), then one
 * value message holding a slice of structs whose fields 0, 1 and 2 are
 * Perms, Scheme and ID (zero-valued fields are omitted by gob).
 */
export function decodeGobAcls(bytes: Uint8Array): ACL[] {
  const r = new GobReader(bytes);
  while (!r.done) {
    const length = Number(r.uint());
    const end = r.pos + length;
    if (end > bytes.byteLength) throw new Error("gob: message past the end");
    const typeId = r.int();
    if (typeId < 0n) {
      r.pos = end; // a type definition
      continue;
    }
    if (r.uint() !== 0n) throw new Error("gob: a top-level slice must start with delta 0");
    const count = Number(r.uint());
    if (count > length) throw new Error(`gob: ${count} elements in ${length} bytes`);
    const acls: ACL[] = [];
    for (let i = 0; i < count; i++) {
      const acl: ACL = { perms: 0, id: { scheme: "", id: "" } };
      let field = -1;
      for (let delta = r.uint(); delta !== 0n; delta = r.uint()) {
        field += Number(delta);
        if (field === 0) acl.perms = Number(r.int());
        else if (field === 1) acl.id.scheme = r.string();
        else if (field === 2) acl.id.id = r.string();
        else throw new Error(`gob: unexpected ACL field ${field}`);
      }
      acls.push(acl);
    }
    return acls;
  }
  throw new Error("gob: no value in ACL data");
}
