/**
 * Free loopback TCP ports for test servers.
 *
 * @module
 */

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago.
 *
 * The port is found by binding port 0 and closing the listener again, so
 * another process could in theory take it before the caller does; for test
 * servers started right away this is good enough.
 */
export function freePort(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    return Promise.resolve((listener.addr as Deno.NetAddr).port);
  } finally {
    listener.close();
  }
}

/**
 * Returns `n` distinct TCP ports on 127.0.0.1 that were free a moment ago.
 * All are bound at once before any is released, so two calls in a row can
 * never hand out the same port (the OS may give a just-closed port again).
 */
export function freePorts(n: number): Promise<number[]> {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  try {
    return Promise.resolve(listeners.map((l) => (l.addr as Deno.NetAddr).port));
  } finally {
    for (const l of listeners) l.close();
  }
}

/**
 * Resolves true when something accepts a TCP connection on
 * 127.0.0.1:`port`, false when the connection is refused.
 */
export async function isListening(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}
