/**
 * The local default: with no `--endpoints`, the server runs its own etcd on
 * loopback with its data under `--data-dir`, and stops it on exit.
 *
 * @module
 */

/** A supervised local etcd. */
export interface LocalEtcd {
  endpoint: string;
  stop(): Promise<void>;
}

/** Thrown when no etcd binary can be found; its message tells the operator what to do. */
export class EtcdNotFoundError extends Error {
  override name = "EtcdNotFoundError";
}

/** Finds `name` on PATH, or returns null. */
function which(name: string): string | null {
  const candidates = name.includes("/")
    ? [name]
    : (Deno.env.get("PATH") ?? "").split(":").map((dir) => `${dir || "."}/${name}`);
  for (const candidate of candidates) {
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch { /* not here */ }
  }
  return null;
}

/** Two distinct free loopback ports: both bound at once, then released. */
function freePorts(): [number, number] {
  const a = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const b = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  a.close();
  b.close();
  return [(a.addr as Deno.NetAddr).port, (b.addr as Deno.NetAddr).port];
}

/** Starts etcd (`etcdBin` or `etcd` on PATH) with its data in `dataDir`; waits until healthy. */
export async function startLocalEtcd(
  etcdBin: string | undefined,
  dataDir: string,
): Promise<LocalEtcd> {
  const bin = which(etcdBin ?? "etcd");
  if (!bin) {
    throw new EtcdNotFoundError(
      `no etcd binary found (${
        etcdBin ?? "etcd on PATH"
      }): install one (Debian: apt-get install etcd-server), pass --etcd-bin PATH, or point at a running etcd with --endpoints HOST:PORT`,
    );
  }
  await Deno.mkdir(dataDir, { recursive: true });
  const [clientPort, peerPort] = freePorts();
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = new Deno.Command(bin, {
    args: [
      "--name=zetcd-local",
      `--data-dir=${dataDir}/etcd`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=zetcd-local=${peer}`,
      "--logger=zap",
      "--log-level=error",
      // Large multis (e.g. zkCli deleteall) need more than the default 128.
      "--max-txn-ops=10000",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${client}/health`);
      const body = await res.text();
      if (body.includes('"true"')) return { endpoint: `127.0.0.1:${clientPort}`, stop };
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`local etcd (${bin}) did not become healthy within 20 s`);
}
