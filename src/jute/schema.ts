/**
 * Jute types as values. A record is declared once as an ordered list of
 * typed fields (`record("Stat", { czxid: long, ... })`); its encoder, decoder
 * and TypeScript type are all derived from that declaration.
 *
 * @example
 * ```ts
 * const Id = record("Id", { scheme: ustring, id: ustring });
 * const bytes = encode(Id, { scheme: "world", id: "anyone" });
 * const back = decode(Id, bytes); // { scheme: "world", id: "anyone" }
 * ```
 *
 * @module
 */

import { JuteDecodeError, JuteReader } from "./reader.ts";
import { JuteWriter } from "./writer.ts";

/** A jute type: how to write and read one value of `T`. */
export interface JuteType<T> {
  /** Name as in zookeeper.jute (`int`, `vector<ustring>`, `Stat`, …). */
  readonly name: string;
  /** Fewest bytes one value can take; bounds vector counts before allocating. */
  readonly minSize: number;
  /** Appends `value` to `w`. */
  write(w: JuteWriter, value: T): void;
  /** Reads one value from `r`. */
  read(r: JuteReader): T;
}

/** The TypeScript type a jute type decodes to. */
export type Infer<J> = J extends JuteType<infer T> ? T : never;

/** jute `int` (32-bit signed). */
export const int: JuteType<number> = {
  name: "int",
  minSize: 4,
  write: (w, v) => w.writeInt(v),
  read: (r) => r.readInt(),
};

/** jute `long` (64-bit signed), as a bigint. */
export const long: JuteType<bigint> = {
  name: "long",
  minSize: 8,
  write: (w, v) => w.writeLong(v),
  read: (r) => r.readLong(),
};

/** jute `boolean`. */
export const bool: JuteType<boolean> = {
  name: "boolean",
  minSize: 1,
  write: (w, v) => w.writeBool(v),
  read: (r) => r.readBool(),
};

/** jute `buffer`; null is length −1. */
export const buffer: JuteType<Uint8Array | null> = {
  name: "buffer",
  minSize: 4,
  write: (w, v) => w.writeBuffer(v),
  read: (r) => r.readBuffer(),
};

/** jute `ustring`; null is length −1. */
export const ustring: JuteType<string | null> = {
  name: "ustring",
  minSize: 4,
  write: (w, v) => w.writeString(v),
  read: (r) => r.readString(),
};

/** A vector type, with its element type kept for inspection. */
export interface JuteVector<T> extends JuteType<T[]> {
  /** Type of each element. */
  readonly element: JuteType<T>;
}

/** jute `vector<T>`; null is count −1 and is decoded as an empty array. */
export function vector<T>(of: JuteType<T>): JuteVector<T> {
  return {
    name: `vector<${of.name}>`,
    element: of,
    minSize: 4,
    write(w, v) {
      w.writeInt(v.length);
      for (const item of v) of.write(w, item);
    },
    read(r) {
      const n = r.readCount(Math.max(1, of.minSize)) ?? 0;
      const out: T[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = of.read(r);
      return out;
    },
  };
}

/** Field declarations of a record, in wire order. */
export type Fields = Record<string, JuteType<unknown>>;

/** The object type a record with fields `F` decodes to. */
export type RecordOf<F extends Fields> = { [K in keyof F]: Infer<F[K]> };

/** A record type, with its field list kept for inspection. */
export interface JuteRecord<F extends Fields> extends JuteType<RecordOf<F>> {
  /** Field declarations in wire order. */
  readonly fields: F;
}

/**
 * Declares a jute record: its fields are written and read in the order they
 * are listed in `fields`.
 */
export function record<F extends Fields>(name: string, fields: F): JuteRecord<F> {
  const entries = Object.entries(fields);
  return {
    name,
    fields,
    minSize: entries.reduce((n, [, t]) => n + t.minSize, 0),
    write(w, v) {
      for (const [key, type] of entries) type.write(w, v[key]);
    },
    read(r) {
      const out: Record<string, unknown> = {};
      for (const [key, type] of entries) out[key] = type.read(r);
      return out as RecordOf<F>;
    },
  };
}

/** Encodes one value (no length prefix). */
export function encode<T>(type: JuteType<T>, value: T): Uint8Array {
  const w = new JuteWriter();
  type.write(w, value);
  return w.bytes();
}

/**
 * Decodes exactly one value from `bytes`; trailing bytes are an error, as
 * they mean the bytes were not of this type.
 */
export function decode<T>(type: JuteType<T>, bytes: Uint8Array): T {
  const r = new JuteReader(bytes);
  const v = type.read(r);
  if (r.remaining !== 0) {
    throw new JuteDecodeError(`${r.remaining} bytes left over after ${type.name}`);
  }
  return v;
}
