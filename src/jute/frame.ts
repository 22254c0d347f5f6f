/**
 * Splits a byte stream into jute frames: a 4-byte big-endian length, then
 * that many bytes. A negative or oversized length, or a stream that ends in
 * the middle of a frame, is a {@link FrameError}.
 *
 * @module
 */

/** Default largest frame payload: 1 MiB of data plus room for the request's own fields. */
export const DEFAULT_MAX_FRAME = 1024 * 1024 + 64 * 1024;

/** Why a byte stream could not be split into frames. */
export class FrameError extends Error {
  override name = "FrameError";
}

/** Options of {@link readFrames}. */
export interface ReadFramesOptions {
  /** Largest payload accepted, in bytes (default {@link DEFAULT_MAX_FRAME}). */
  maxFrame?: number;
  /**
   * Called with the first 4 bytes of the stream before they are read as a
   * length; returning true stops framing (used for four-letter words).
   */
  peekFirst?: (first4: Uint8Array) => boolean;
}

/**
 * Yields each frame's payload (without its length prefix) from `chunks`,
 * which may split frames at any byte.
 *
 * @throws {FrameError} on a negative or oversized length, or a truncated frame.
 */
export async function* readFrames(
  chunks: AsyncIterable<Uint8Array>,
  options: ReadFramesOptions = {},
): AsyncGenerator<Uint8Array> {
  const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  let buf: Uint8Array = new Uint8Array(0);
  let first = true;
  for await (const chunk of chunks) {
    buf = buf.byteLength === 0 ? chunk : concat(buf, chunk);
    while (buf.byteLength >= 4) {
      if (first) {
        first = false;
        if (options.peekFirst?.(buf.subarray(0, 4))) return;
      }
      const len = new DataView(buf.buffer, buf.byteOffset, 4).getInt32(0);
      if (len < 0) throw new FrameError(`negative frame length ${len}`);
      if (len > maxFrame) {
        throw new FrameError(`frame length ${len} exceeds the maximum of ${maxFrame}`);
      }
      if (buf.byteLength < 4 + len) break;
      yield buf.slice(4, 4 + len);
      buf = buf.subarray(4 + len);
    }
  }
  if (buf.byteLength > 0) {
    throw new FrameError(`stream ended inside a frame (${buf.byteLength} bytes pending)`);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
