/**
 * Small helpers for child processes in tests: draining their output (so the
 * Deno test sanitizers see no open streams), stopping them, and running a
 * command to completion with a deadline.
 *
 * @module
 */

/** Text read from a child's stdout or stderr while it is being drained. */
export interface StreamText {
  /** The text read so far (only the last `limit` characters when limited). */
  text(): string;
  /** Resolves once the stream has ended (never rejects). */
  done: Promise<void>;
}

/**
 * Reads `stream` to its end in the background, keeping at most the last
 * `limit` characters of its text.
 */
export function drainStream(
  stream: ReadableStream<Uint8Array>,
  limit: number = Infinity,
): StreamText {
  let kept = "";
  const done = pump();
  async function pump(): Promise<void> {
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        kept += chunk;
        if (kept.length > limit) kept = kept.slice(kept.length - limit);
      }
    } catch {
      // The stream errors when the process is killed mid-write; what was
      // read so far is all there is.
    }
  }
  return { text: () => kept, done };
}

/** Returns the last `lines` lines of `text`. */
export function tailLines(text: string, lines: number = 20): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** Sends `signal` to `child`, ignoring the error when it has already exited. */
export function signalChild(
  child: Deno.ChildProcess,
  signal: Deno.Signal,
): void {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
}

/**
 * Sends `signal` to the whole process group led by `pid` (a child started
 * through `setsid`), ignoring the error when the group is gone.
 */
export function signalGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Stops `child`: SIGTERM, then SIGKILL when it is still running after
 * `graceMs`. Resolves with its exit status.
 */
export async function stopChild(
  child: Deno.ChildProcess,
  graceMs: number = 3000,
): Promise<Deno.CommandStatus> {
  signalChild(child, "SIGTERM");
  const timer = setTimeout(() => signalChild(child, "SIGKILL"), graceMs);
  try {
    return await child.status;
  } finally {
    clearTimeout(timer);
  }
}

/** Options for {@linkcode runToCompletion}. */
export interface RunOptions {
  /** Text written to the child's stdin, which is then closed. */
  stdin?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Kill the child (SIGKILL) after this many milliseconds. */
  timeoutMs: number;
  /**
   * Start the child in its own process group (through `setsid`) and kill the
   * whole group on timeout. Needed for wrapper scripts such as zkCli.sh,
   * whose shell does not `exec` the JVM.
   */
  ownProcessGroup?: boolean;
}

/** Outcome of {@linkcode runToCompletion}. */
export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
  /** True when the child was killed because `timeoutMs` passed. */
  timedOut: boolean;
}

/**
 * Runs `command` with `args` until it exits or `timeoutMs` passes, and
 * returns everything it printed. Throws only when the command cannot be
 * started at all (e.g. it is not installed).
 */
export async function runToCompletion(
  command: string,
  args: string[],
  options: RunOptions,
): Promise<RunResult> {
  const group = options.ownProcessGroup === true;
  const child = new Deno.Command(group ? "setsid" : command, {
    args: group ? [command, ...args] : args,
    env: options.env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = drainStream(child.stdout);
  const stderr = drainStream(child.stderr);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (group) signalGroup(child.pid, "SIGKILL");
    else signalChild(child, "SIGKILL");
  }, options.timeoutMs);
  try {
    await writeAndClose(child.stdin, options.stdin ?? "");
    const status = await child.status;
    await Promise.all([stdout.done, stderr.done]);
    return {
      stdout: stdout.text(),
      stderr: stderr.text(),
      code: status.code,
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Freezes `child` (SIGSTOP) and resolves once every one of its threads has
 * stopped: the kernel stops them a moment after `kill` returns, and a
 * request sent in that moment can still be answered.
 */
export async function freezeChild(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGSTOP");
  await untilStopped(child.pid);
}

/** Resolves once every thread of `pid` is stopped (state T in /proc); throws after 5 s. */
async function untilStopped(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const states = [];
    for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
      const stat = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/stat`).catch(() => "");
      // The state follows the parenthesised command name.
      states.push(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
    }
    if (states.every((s) => s === "T" || s === "")) return;
    if (Date.now() > deadline) {
      throw new Error(`process ${pid} did not stop: ${states.join("")}`);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes `text` to `stdin` and closes it, ignoring a child that exited. */
export async function writeAndClose(
  stdin: WritableStream<Uint8Array>,
  text: string,
): Promise<void> {
  const writer = stdin.getWriter();
  try {
    if (text !== "") await writer.write(new TextEncoder().encode(text));
    await writer.close();
  } catch {
    // The child exited before reading everything (broken pipe).
  }
}

/**
 * Throws a clear error when `command` fails to start because it is missing,
 * naming what to install; rethrows other errors unchanged.
 */
export function explainSpawnError(
  error: unknown,
  command: string,
  hint: string,
): never {
  if (error instanceof Deno.errors.NotFound) {
    throw new Error(`cannot run ${command}: not found. ${hint}`, {
      cause: error,
    });
  }
  throw error;
}

/** Runs `cmd` with sh in `cwd`; throws with its stderr when it fails. */
export async function sh(cmd: string, cwd: string): Promise<void> {
  const out = await new Deno.Command("sh", {
    args: ["-c", cmd],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`${cmd}: ${new TextDecoder().decode(out.stderr)}`);
}
