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
