/**
 * A TCP relay in front of a real server, whose connections a test can cut:
 * how a test breaks the network between a client and etcd without touching
 * either.
 *
 * @module
 */

/** A running relay. */
export interface TcpRelay {
  /** `127.0.0.1:PORT` to connect to instead of the target. */
  address: string;
  /** Closes every relayed connection (new ones are still accepted). */
  cut(): void;
  /** Cuts every connection and closes new ones at once, until {@link resume}: etcd is unreachable. */
  pause(): void;
  /** Relays new connections again after {@link pause}. */
  resume(): void;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): void;
}

/** Relays connections on a free loopback port to `target` (`host:port`). */
export function startRelay(target: string): TcpRelay {
  const [hostname, port] = target.split(":");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let accepted = 0;
  let paused = false;
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable, { preventClose: true });
    } catch { /* cut */ }
    for (const c of [from, to]) {
      if (open.delete(c)) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    }
  };
  (async () => {
    for await (const client of listener) {
      accepted++;
      if (paused) {
        client.close();
        continue;
      }
      try {
        const server = await Deno.connect({ hostname, port: Number(port) });
        open.add(client);
        open.add(server);
        pipe(client, server);
        pipe(server, client);
      } catch {
        client.close();
      }
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    cut() {
      for (const c of [...open]) {
        open.delete(c);
        try {
          c.close();
        } catch { /* already closed */ }
      }
    },
    pause() {
      paused = true;
      this.cut();
    },
    resume() {
      paused = false;
    },
    get accepted() {
      return accepted;
    },
    close() {
      this.cut();
      listener.close();
    },
  };
}
