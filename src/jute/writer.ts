/**
 * A growable big-endian byte builder for jute records. Frames are built by
 * {@link JuteWriter.frame}, which back-patches the 4-byte length prefix.
 *
 * @module
 */

const utf8 = new TextEncoder();

/** Writes jute primitives into a buffer that grows as needed. */
export class JuteWriter {
  #bytes: Uint8Array;
  #view: DataView;
  #offset = 0;

  /** Starts with room for `capacity` bytes. */
  constructor(capacity = 256) {
    this.#bytes = new Uint8Array(capacity);
    this.#view = new DataView(this.#bytes.buffer);
  }

  #ensure(n: number): void {
    if (this.#offset + n <= this.#bytes.byteLength) return;
    let size = this.#bytes.byteLength * 2;
    while (size < this.#offset + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#bytes.subarray(0, this.#offset));
    this.#bytes = grown;
    this.#view = new DataView(grown.buffer);
  }

  /** jute `int`. */
  writeInt(v: number): this {
    this.#ensure(4);
    this.#view.setInt32(this.#offset, v);
    this.#offset += 4;
    return this;
  }

  /** jute `long`. */
  writeLong(v: bigint): this {
    this.#ensure(8);
    this.#view.setBigInt64(this.#offset, BigInt.asIntN(64, v));
    this.#offset += 8;
    return this;
  }

  /** jute `boolean`. */
  writeBool(v: boolean): this {
    this.#ensure(1);
    this.#bytes[this.#offset++] = v ? 1 : 0;
    return this;
  }

  /** Raw bytes with no length prefix. */
  writeRaw(v: Uint8Array): this {
    this.#ensure(v.byteLength);
    this.#bytes.set(v, this.#offset);
    this.#offset += v.byteLength;
    return this;
  }

  /** jute `buffer`; null is written as length −1. */
  writeBuffer(v: Uint8Array | null): this {
    if (v === null) return this.writeInt(-1);
    return this.writeInt(v.byteLength).writeRaw(v);
  }

  /** jute `ustring`; null is written as length −1. */
  writeString(v: string | null): this {
    if (v === null) return this.writeInt(-1);
    return this.writeBuffer(utf8.encode(v));
  }

  /** The bytes written so far. */
  bytes(): Uint8Array {
    return this.#bytes.slice(0, this.#offset);
  }

  /**
   * Builds one length-prefixed frame: `fill` writes the payload, then the
   * 4-byte length is patched in front of it.
   */
  static frame(fill: (w: JuteWriter) => void): Uint8Array {
    const w = new JuteWriter();
    w.writeInt(0);
    fill(w);
    w.#view.setInt32(0, w.#offset - 4);
    return w.bytes();
  }
}
