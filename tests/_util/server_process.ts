/**
 * Our server as a separate process (`deno run mod.ts`), for tests that must
 * kill it the way an operator or a crash would (SIGTERM, SIGKILL). The
 * server listens on port 0 and the address is read from its log line, so
 * no port can be taken by someone else in between.
 *
 * @module
 */

/** A server process. */
export interface ServerProcess {
  /** `127.0.0.1:PORT`. */
  address: string;
  port: number;
  /** Process id. */
  pid: number;
  /** Everything the process printed so far. */
  output(): string;
  /** Sends a signal and waits for the process to end; resolves to its exit code. */
  kill(signal: Deno.Signal): Promise<number>;
  /** Resolves to the exit code once the process ends by itself (or is killed). */
  exited: Promise<number>;
  [Symbol.asyncDispose](): Promise<void>;
}

const MOD = new URL("../../mod.ts", import.meta.url).pathname;

/**
 * Runs `mod.ts` with `args` (plus `--zkaddr 127.0.0.1:0` unless given) and
 * resolves once it logs the address it serves on. `denoFlags` go to
 * `deno run` itself (e.g. `--inspect`).
 */
export async function spawnServer(
  args: string[],
  listenWithinMs = 30_000,
  denoFlags: string[] = [],
): Promise<ServerProcess> {
  const withAddr = args.includes("--zkaddr") ? args : [...args, "--zkaddr", "127.0.0.1:0"];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...denoFlags, MOD, ...withAddr],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const { promise: listening, resolve, reject } = Promise.withResolvers<string>();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const m = /serving ZooKeeper clients on \\?"?([\d.]+:\d+)/.exec(text);
      if (m) resolve(m[1]);
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let ended: Promise<number> | undefined;
  const kill = (signal: Deno.Signal) => {
    if (!ended) {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      ended = child.status.then(async (s) => {
        await drained;
        return s.code;
      });
    }
    return ended;
  };
  child.status.then((s) => reject(new Error(`the server exited with ${s.code}:\n${text}`)));
  const timer = setTimeout(
    () => reject(new Error(`the server did not listen within ${listenWithinMs} ms:\n${text}`)),
    listenWithinMs,
  );
  let address: string;
  try {
    address = await listening;
  } catch (err) {
    await kill("SIGKILL");
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return {
    address,
    port: Number(address.split(":")[1]),
    pid: child.pid,
    output: () => text,
    kill,
    exited: child.status.then(async (s) => {
      await drained;
      return s.code;
    }),
    [Symbol.asyncDispose]: async () => {
      await kill("SIGKILL");
    },
  };
}

/** Starts a server against `endpoints` under `prefix`, with `flags` added. */
export function startServerProcess(
  endpoints: string[],
  prefix: string,
  flags: string[] = [],
  listenWithinMs?: number,
  denoFlags: string[] = [],
): Promise<ServerProcess> {
  return spawnServer(
    [
      "--endpoints",
      endpoints.join(","),
      "--prefix",
      prefix,
      "--log-level",
      "info",
      ...flags,
    ],
    listenWithinMs,
    denoFlags,
  );
}

/** Resident set size of process `pid`, in MiB (Linux). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}
