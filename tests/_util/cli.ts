/**
 * Runs the `zetcd` command line (`deno run -A mod.ts …`) as operators do.
 *
 * @module
 */

const MOD = new URL("../../mod.ts", import.meta.url).pathname;

/** What one run printed, and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `zetcd ARGS…` to completion with `env` added to the environment. */
export async function runZetcd(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}
