/**
 * HPACK's Huffman code (RFC 7541, Appendix B), for decoding header strings.
 *
 * The code is canonical: within one length, codes rise with the symbol, and
 * each length starts where the previous one ended, shifted left. So the
 * 257 code lengths below are the whole table; the codes follow from them.
 *
 * @module
 */

/** The code length in bits of each symbol, 0–255 and 256 (EOS), from RFC 7541 Appendix B. */
const LENGTHS = [
  13,
  23,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  24,
  30,
  28,
  28,
  30,
  28,
  28, // 0–15
  28,
  28,
  28,
  28,
  28,
  28,
  30,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28, // 16–31
  6,
  10,
  10,
  12,
  13,
  6,
  8,
  11,
  10,
  10,
  8,
  11,
  8,
  6,
  6,
  6, // ' ' to '/'
  5,
  5,
  5,
  6,
  6,
  6,
  6,
  6,
  6,
  6,
  7,
  8,
  15,
  6,
  12,
  10, // '0' to '?'
  13,
  6,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7, // '@' to 'O'
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  8,
  7,
  8,
  13,
  19,
  13,
  14,
  6, // 'P' to '_'
  15,
  5,
  6,
  5,
  6,
  5,
  6,
  6,
  6,
  5,
  7,
  7,
  6,
  6,
  6,
  5, // '`' to 'o'
  6,
  7,
  6,
  5,
  5,
  6,
  7,
  7,
  7,
  7,
  7,
  15,
  11,
  14,
  13,
  28, // 'p' to 127
  20,
  22,
  20,
  20,
  22,
  22,
  22,
  23,
  22,
  23,
  23,
  23,
  23,
  23,
  24,
  23, // 128–143
  24,
  24,
  22,
  23,
  24,
  23,
  23,
  23,
  23,
  21,
  22,
  23,
  22,
  23,
  23,
  24, // 144–159
  22,
  21,
  20,
  22,
  22,
  23,
  23,
  21,
  23,
  22,
  22,
  24,
  21,
  22,
  23,
  23, // 160–175
  21,
  21,
  22,
  21,
  23,
  22,
  23,
  23,
  20,
  22,
  22,
  22,
  23,
  22,
  22,
  23, // 176–191
  26,
  26,
  20,
  19,
  22,
  23,
  22,
  25,
  26,
  26,
  26,
  27,
  27,
  26,
  24,
  25, // 192–207
  19,
  21,
  26,
  27,
  27,
  26,
  27,
  24,
  21,
  21,
  26,
  26,
  28,
  27,
  27,
  27, // 208–223
  20,
  24,
  20,
  21,
  22,
  21,
  21,
  23,
  22,
  22,
  25,
  25,
  24,
  24,
  26,
  23, // 224–239
  26,
  27,
  26,
  26,
  27,
  27,
  27,
  27,
  27,
  28,
  27,
  27,
  27,
  27,
  27,
  26, // 240–255
  30, // EOS
];

const EOS = 256;
const MAX_LENGTH = 30;

/** Symbols ordered by (length, symbol): the order in which canonical codes are assigned. */
const ORDERED = LENGTHS.map((_, sym) => sym).sort((a, b) => LENGTHS[a] - LENGTHS[b] || a - b);
/** Per length: the first code of that length, and the index in ORDERED of its symbol. */
const FIRST_CODE = new Array<number>(MAX_LENGTH + 2).fill(0);
const FIRST_INDEX = new Array<number>(MAX_LENGTH + 2).fill(0);
const COUNT = new Array<number>(MAX_LENGTH + 2).fill(0);
for (const len of LENGTHS) COUNT[len]++;
{
  let code = 0;
  let index = 0;
  for (let len = 1; len <= MAX_LENGTH; len++) {
    FIRST_CODE[len] = code;
    FIRST_INDEX[len] = index;
    code = (code + COUNT[len]) * 2;
    index += COUNT[len];
  }
}

/** The code of `symbol` (0–256) and its length, as the table lists them. */
export function huffmanCode(symbol: number): { code: number; length: number } {
  const length = LENGTHS[symbol];
  const rank = ORDERED.indexOf(symbol) - FIRST_INDEX[length];
  return { code: FIRST_CODE[length] + rank, length };
}

/**
 * Decodes a Huffman-coded string. Throws on an EOS symbol, on padding longer
 * than 7 bits or not all ones — the decoding errors RFC 7541 §5.2 names.
 */
export function huffmanDecode(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  let code = 0;
  let length = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      length++;
      const rank = code - FIRST_CODE[length];
      if (rank >= 0 && rank < COUNT[length]) {
        const symbol = ORDERED[FIRST_INDEX[length] + rank];
        if (symbol === EOS) throw new Error("HPACK: EOS in a Huffman-coded string");
        out.push(symbol);
        code = 0;
        length = 0;
      } else if (length >= MAX_LENGTH) {
        throw new Error("HPACK: invalid Huffman code");
      }
    }
  }
  // What is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
  if (length > 7 || code !== (1 << length) - 1) throw new Error("HPACK: invalid Huffman padding");
  return new Uint8Array(out);
}
