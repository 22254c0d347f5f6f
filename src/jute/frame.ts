/**
 * Splits a byte stream into jute frames: a 4-byte big-endian length, then
 * that many bytes. A negative or oversized length, or a stream that ends in
 * the middle of a frame, is a {@link FrameError}.
 *
 * @module
 */

/**
 * Default largest frame payload: ZooKeeper's default `jute.maxbuffer`,
 * 1,048,575 bytes (1 MiB − 1). ZooKeeper closes the connection of a client
 * whose frame is longer, so a znode's data is limited to a little under 1 MiB.
 */
export const DEFAULT_MAX_FRAME = 0xfffff;

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
  // Received bytes not yet yielded, kept as a list of copies so that a frame
  // arriving in many small chunks is joined once, not once per chunk.
  const pending = new Pending();
  let first = true;
  let need = 4; // bytes wanted before the next step: a length, or a whole frame
  let length = -1; // payload length of the frame being received, -1 before its prefix
  for await (const chunk of chunks) {
    pending.push(chunk);
    while (pending.size >= need) {
      if (length < 0) {
        const prefix = pending.take(4);
        if (first) {
          first = false;
          if (options.peekFirst?.(prefix)) return;
        }
        length = new DataView(prefix.buffer, prefix.byteOffset, 4).getInt32(0);
        if (length < 0) throw new FrameError(`negative frame length ${length}`);
        if (length > maxFrame) {
          throw new FrameError(`frame length ${length} exceeds the maximum of ${maxFrame}`);
        }
        need = length;
      } else {
        yield pending.take(length);
        length = -1;
        need = 4;
      }
    }
  }
  if (pending.size > 0 || length >= 0) {
    throw new FrameError(`stream ended inside a frame (${pending.size} bytes pending)`);
  }
}

/** A byte queue: push chunks, take exact counts. */
class Pending {
  #chunks: Uint8Array[] = [];
  size = 0;

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk.slice());
    this.size += chunk.byteLength;
  }

  /** Removes and returns the first `n` bytes (n ≤ size) as a fresh array. */
  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = this.#chunks[0];
      const want = n - filled;
      if (head.byteLength <= want) {
        out.set(head, filled);
        filled += head.byteLength;
        this.#chunks.shift();
      } else {
        out.set(head.subarray(0, want), filled);
        this.#chunks[0] = head.subarray(want);
        filled += want;
      }
    }
    this.size -= n;
    return out;
  }
}

/** First and largest read buffer of {@link readsOf}. */
const MIN_READ = 4096;
const MAX_READ = 64 * 1024;

/**
 * The chunks read from a connection, for {@link readFrames}. The read
 * buffer starts at 4 KiB, doubles while reads fill it (up to 64 KiB) and
 * shrinks when they do not, so an idle connection holds 4 KiB instead of
 * the 64 KiB a stream reader keeps for each pending read. A chunk is valid
 * only until the next one is read (`readFrames` copies what it keeps).
 */
export async function* readsOf(
  conn: { read(p: Uint8Array): Promise<number | null> },
): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(MIN_READ);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return;
    yield buf.subarray(0, n);
    if (n === buf.byteLength && buf.byteLength < MAX_READ) {
      buf = new Uint8Array(buf.byteLength * 2);
    } else if (n < buf.byteLength / 4 && buf.byteLength > MIN_READ) {
      buf = new Uint8Array(buf.byteLength / 2);
    }
  }
}
