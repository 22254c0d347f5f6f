/**
 * HPACK (RFC 7541), as much as a gRPC client needs: a full decoder (static
 * and dynamic tables, Huffman strings) for the header blocks etcd sends, and
 * an encoder that writes literals only (no Huffman, no dynamic table), which
 * every decoder accepts.
 *
 * @module
 */

import { huffmanDecode } from "./huffman.ts";

/** One header field. */
export type Header = [name: string, value: string];

/** The static table (RFC 7541, Appendix A); index 1 is the first entry. */
const STATIC: Header[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** Static-table indexes the encoder uses. */
export const STATIC_INDEX = {
  authority: 1,
  methodPost: 3,
  path: 4,
  schemeHttp: 6,
  schemeHttps: 7,
  contentType: 31,
  userAgent: 58,
} as const;

const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();

/** Decodes header blocks of one connection, keeping its dynamic table. */
export class HpackDecoder {
  /** Newest first, as HPACK indexes it. */
  #dynamic: Header[] = [];
  #size = 0;
  #maxSize: number;
  readonly #limit: number;

  /** `limit`: the SETTINGS_HEADER_TABLE_SIZE this side announced (4096 by default). */
  constructor(limit = 4096) {
    this.#limit = limit;
    this.#maxSize = limit;
  }

  /**
   * Decodes one complete header block. Throws on malformed input (a
   * connection error). Returns null for a block that decodes to more than
   * `maxListSize` bytes (RFC 9113 §6.5.2's size: name, value and 32 per
   * field), decoding it to the end all the same so that the table stays in
   * step; a few bytes that name large table entries again and again cannot
   * make it build a large list.
   */
  decode(block: Uint8Array): Header[];
  decode(block: Uint8Array, maxListSize: number): Header[] | null;
  decode(block: Uint8Array, maxListSize = Infinity): Header[] | null {
    let out: Header[] | null = [];
    let listSize = 0;
    const emit = (header: Header) => {
      if (!out) return;
      listSize += header[0].length + header[1].length + 32;
      if (listSize > maxListSize) out = null;
      else out.push(header);
    };
    const r = { buf: block, pos: 0 };
    while (r.pos < block.length) {
      const b = block[r.pos];
      if (b & 0x80) {
        emit(this.#entry(readInt(r, 7)));
      } else if (b & 0x40) {
        const header = this.#literal(r, 6);
        this.#add(header);
        emit(header);
      } else if (b & 0x20) {
        const size = readInt(r, 5);
        if (size > this.#limit) throw new Error("HPACK: table size over the announced limit");
        this.#maxSize = size;
        this.#evict(0);
      } else {
        emit(this.#literal(r, 4)); // without indexing, or never indexed
      }
    }
    return out;
  }

  #entry(index: number): Header {
    if (index >= 1 && index <= STATIC.length) return STATIC[index - 1];
    const entry = this.#dynamic[index - STATIC.length - 1];
    if (!entry) throw new Error(`HPACK: no table entry ${index}`);
    return entry;
  }

  #literal(r: Reader, prefix: number): Header {
    const index = readInt(r, prefix);
    const name = index === 0 ? readString(r) : this.#entry(index)[0];
    return [name, readString(r)];
  }

  #add(header: Header): void {
    const size = header[0].length + header[1].length + 32;
    this.#evict(size);
    if (size <= this.#maxSize) {
      this.#dynamic.unshift(header);
      this.#size += size;
    }
  }

  /** Drops the oldest entries until `room` more bytes fit. */
  #evict(room: number): void {
    while (this.#dynamic.length > 0 && this.#size + room > this.#maxSize) {
      const [name, value] = this.#dynamic.pop()!;
      this.#size -= name.length + value.length + 32;
    }
  }
}

interface Reader {
  buf: Uint8Array;
  pos: number;
}

/** An HPACK integer with a `prefix`-bit prefix (RFC 7541 §5.1). */
function readInt(r: Reader, prefix: number): number {
  const max = (1 << prefix) - 1;
  let value = r.buf[r.pos++] & max;
  if (value < max) return value;
  let shift = 0;
  for (;;) {
    if (r.pos >= r.buf.length) throw new Error("HPACK: truncated integer");
    const b = r.buf[r.pos++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return value;
    if (shift > 28) throw new Error("HPACK: integer too large");
  }
}

/** An HPACK string (RFC 7541 §5.2): raw or Huffman-coded. */
function readString(r: Reader): string {
  if (r.pos >= r.buf.length) throw new Error("HPACK: truncated string");
  const huffman = (r.buf[r.pos] & 0x80) !== 0;
  const length = readInt(r, 7);
  if (r.pos + length > r.buf.length) throw new Error("HPACK: truncated string");
  const raw = r.buf.subarray(r.pos, r.pos + length);
  r.pos += length;
  return latin1.decode(huffman ? huffmanDecode(raw) : raw);
}

/** Appends an HPACK integer. */
function writeInt(out: number[], prefix: number, flags: number, value: number): void {
  const max = (1 << prefix) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  value -= max;
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

function writeString(out: number[], text: string): void {
  const bytes = encoder.encode(text);
  writeInt(out, 7, 0, bytes.length);
  for (const b of bytes) out.push(b);
}

/** A header field as the encoder may write it: a full static entry, or a literal. */
export type EncodedField =
  | { indexed: number }
  | { name: number | string; value: string };

/**
 * Encodes a header block: fully indexed static entries, and literals
 * without indexing (by static name index or by name), never Huffman-coded.
 */
export function encodeHeaders(fields: EncodedField[]): Uint8Array {
  const out: number[] = [];
  for (const f of fields) {
    if ("indexed" in f) {
      writeInt(out, 7, 0x80, f.indexed);
    } else if (typeof f.name === "number") {
      writeInt(out, 4, 0, f.name);
      writeString(out, f.value);
    } else {
      out.push(0);
      writeString(out, f.name);
      writeString(out, f.value);
    }
  }
  return new Uint8Array(out);
}
