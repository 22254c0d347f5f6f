/**
 * Our server as a separate process (`deno run mod.ts`), for tests that must
 * kill it the way an operator or a crash would (SIGTERM, SIGKILL).
 *
 * @module
 */

import { freePort, isListening } from "./ports.ts";

/** A server process. */
export interface ServerProcess {
  /** `127.0.0.1:PORT`. */
  address: string;
  port: number;
  /** Sends a signal and waits for the process to end; resolves to its exit code. */
  kill(signal: Deno.Signal): Promise<number>;
  [Symbol.asyncDispose](): Promise<void>;
}

const MOD = new URL("../../mod.ts", import.meta.url).pathname;

/** Starts `mod.ts` against `endpoints` under `prefix`; resolves once it listens. */
export async function startServerProcess(
  endpoints: string[],
  prefix: string,
): Promise<ServerProcess> {
  const port = await freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MOD,
      "--endpoints",
      endpoints.join(","),
      "--zkaddr",
      `127.0.0.1:${port}`,
      "--prefix",
      prefix,
      "--log-level",
      "warning",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 20_000;
  while (!(await isListening(port))) {
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error(`the server process did not listen on ${port} within 20 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let ended: Promise<number> | undefined;
  const kill = (signal: Deno.Signal) => {
    if (!ended) {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      ended = child.status.then((s) => s.code);
    }
    return ended;
  };
  return {
    address: `127.0.0.1:${port}`,
    port,
    kill,
    [Symbol.asyncDispose]: async () => {
      await kill("SIGKILL");
    },
  };
}
