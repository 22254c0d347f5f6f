/**
 * A cursor over a jute-encoded byte array. Every read checks that enough
 * bytes remain and throws {@link JuteDecodeError} otherwise, so a malformed
 * request can never make the decoder read past its frame or allocate more
 * than the frame holds.
 *
 * @module
 */

/** Thrown when bytes do not decode as the expected jute record. */
export class JuteDecodeError extends Error {
  override name = "JuteDecodeError";
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Reads jute primitives (big-endian) from a byte array, front to back. */
export class JuteReader {
  #view: DataView;
  #bytes: Uint8Array;
  #offset = 0;

  /** Reads from `bytes`, starting at offset 0. */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.#bytes.byteLength - this.#offset;
  }

  /** Current offset from the start of the array. */
  get offset(): number {
    return this.#offset;
  }

  #need(n: number, what: string): void {
    if (n > this.remaining) {
      throw new JuteDecodeError(
        `${what} needs ${n} bytes at offset ${this.#offset}, only ${this.remaining} left`,
      );
    }
  }

  /** jute `int`: 4 bytes, two's complement. */
  readInt(): number {
    this.#need(4, "int");
    const v = this.#view.getInt32(this.#offset);
    this.#offset += 4;
    return v;
  }

  /** jute `long`: 8 bytes, two's complement, as a bigint. */
  readLong(): bigint {
    this.#need(8, "long");
    const v = this.#view.getBigInt64(this.#offset);
    this.#offset += 8;
    return v;
  }

  /** jute `boolean`: 1 byte, any non-zero value is true. */
  readBool(): boolean {
    this.#need(1, "boolean");
    return this.#bytes[this.#offset++] !== 0;
  }

  /** A length prefix: −1 means null; other negative values are invalid. */
  #readLength(what: string): number | null {
    const n = this.readInt();
    if (n === -1) return null;
    if (n < 0) throw new JuteDecodeError(`${what} has negative length ${n}`);
    return n;
  }

  /** jute `buffer`: length-prefixed bytes; length −1 is null. */
  readBuffer(): Uint8Array | null {
    const n = this.#readLength("buffer");
    if (n === null) return null;
    this.#need(n, "buffer");
    const v = this.#bytes.slice(this.#offset, this.#offset + n);
    this.#offset += n;
    return v;
  }

  /** jute `ustring`: length-prefixed UTF-8; length −1 is null. */
  readString(): string | null {
    const n = this.#readLength("ustring");
    if (n === null) return null;
    this.#need(n, "ustring");
    let v: string;
    try {
      v = utf8.decode(this.#bytes.subarray(this.#offset, this.#offset + n));
    } catch {
      throw new JuteDecodeError(`ustring at offset ${this.#offset} is not UTF-8`);
    }
    this.#offset += n;
    return v;
  }

  /**
   * A vector count: −1 means null. The count is checked against the bytes
   * left (each element takes at least `minElementSize` bytes) before anything
   * is allocated.
   */
  readCount(minElementSize: number): number | null {
    const n = this.#readLength("vector");
    if (n === null) return null;
    if (n * minElementSize > this.remaining) {
      throw new JuteDecodeError(
        `vector of ${n} elements cannot fit in the ${this.remaining} bytes left`,
      );
    }
    return n;
  }
}
