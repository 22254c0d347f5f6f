/**
 * Runs ZooKeeper's command-line shells against a server and splits what
 * they print per command, so the output of the same commands can be
 * compared between the ZooKeeper oracle and zetcd:
 *
 * - {@linkcode runZkCli}: the Java shell, Debian's zkCli.sh;
 * - {@linkcode runCliMt}: the C client shell, Debian's cli_mt.
 *
 * @module
 */

import {
  drainStream,
  explainSpawnError,
  runToCompletion,
  signalChild,
  sleep,
  tailLines,
  writeAndClose,
} from "./process.ts";

/** Where Debian's zookeeper package puts zkCli.sh; env `ZKCLI` overrides. */
export const DEFAULT_ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh";

/** Where Debian's zookeeper-bin package puts cli_mt; env `CLI_MT` overrides. */
export const DEFAULT_CLI_MT = "/usr/lib/zookeeper/bin/cli_mt";

/** Options for {@linkcode runZkCli} and {@linkcode runCliMt}. */
export interface ShellOptions {
  /** Kill the shell after this many milliseconds (default 30 000). */
  timeoutMs?: number;
  /** More JVM flags for zkCli.sh (CLIENT_JVMFLAGS), e.g. a client JAAS file for SASL. */
  jvmFlags?: string[];
}

/** What a shell printed. */
export interface ShellResult {
  /**
   * Everything the shell printed, stdout and stderr interleaved in order
   * (both shells print results on one and errors on the other).
   */
  stdout: string;
  /** Output of the wrapper itself; normally empty. */
  stderr: string;
  /** The shell's exit code. */
  code: number;
  /**
   * What each command printed, one entry per command (lines joined with
   * "\n", no trailing newline), without banner, session and marker noise.
   */
  outputs: string[];
}

/**
 * The command used as a separator between commands for zkCli.sh. It only
 * reads a client-side flag, so it needs no server round trip, and with
 * watch printing switched off it always prints {@linkcode ZKCLI_MARKER}.
 */
const ZKCLI_SEPARATOR = "printwatches";

/** The line {@linkcode ZKCLI_SEPARATOR} prints. */
export const ZKCLI_MARKER = "printwatches is off";

/**
 * Runs zkCli.sh (`-server hostPort -waitforconnection`) and feeds it
 * `commands` on stdin, one per line, then `quit`.
 *
 * Without a terminal (and without jline, which Debian does not ship), zkCli
 * reads stdin line by line, prints no prompt and goes on after a failing
 * command. To split its output per command, watch printing is switched off
 * first and `printwatches` is sent after every command; it prints
 * {@linkcode ZKCLI_MARKER}. A command must therefore not itself be
 * `printwatches`, and must not contain a newline.
 *
 * Throws when the shell times out or when the output does not have one
 * section per command (e.g. it never connected); the error includes what it
 * printed.
 */
export async function runZkCli(
  hostPort: string,
  commands: string[],
  options: ShellOptions = {},
): Promise<ShellResult> {
  const zkCli = Deno.env.get("ZKCLI") ?? DEFAULT_ZKCLI;
  const timeoutMs = options.timeoutMs ?? 30_000;
  await checkExecutable(
    zkCli,
    "Install it (apt-get install zookeeper, or run .ci/run) or set ZKCLI.",
  );
  const lines = [`${ZKCLI_SEPARATOR} off`, ZKCLI_SEPARATOR];
  for (const command of commands) lines.push(command, ZKCLI_SEPARATOR);
  lines.push("quit", "");

  // sh merges stderr into stdout so the two keep their order; setsid lets a
  // timeout kill zkCli.sh's JVM too (the script does not exec it).
  const run = await runToCompletion(
    "sh",
    [
      "-c",
      'exec "$0" "$@" 2>&1',
      zkCli,
      "-server",
      hostPort,
      "-waitforconnection",
    ],
    {
      stdin: lines.join("\n"),
      timeoutMs,
      ownProcessGroup: true,
      env: {
        CLIENT_JVMFLAGS: ["-XX:+UseSerialGC -XX:TieredStopAtLevel=1", ...options.jvmFlags ?? []]
          .join(" "),
      },
    },
  );
  const context = `zkCli.sh -server ${hostPort} with commands ` +
    `${JSON.stringify(commands)}`;
  if (run.timedOut) {
    throw new Error(
      `${context} timed out after ${timeoutMs} ms and was killed. ` +
        `Output:\n${tailLines(run.stdout, 40)}\n${run.stderr}`,
    );
  }
  const outputs = zkCliOutputs(run.stdout);
  if (outputs.length !== commands.length) {
    throw new Error(
      `${context} printed ${outputs.length} command outputs instead of ` +
        `${commands.length} (exit code ${run.code}). Output:\n` +
        `${tailLines(run.stdout, 40)}\n${run.stderr}`,
    );
  }
  return { ...run, outputs };
}

/**
 * Splits the merged output of {@linkcode runZkCli} into what each command
 * printed: the banner before the first marker (SLF4J warnings, "Connecting
 * to", "Welcome to ZooKeeper!", the SyncConnected event) and what `quit`
 * prints after the last marker are dropped.
 */
export function zkCliOutputs(stdout: string): string[] {
  return splitOnMarker(stdout, (line) => line === ZKCLI_MARKER);
}

/** The path cli_mt lists after every command as a separator. */
const CLI_MT_BARRIER_PATH = "/zetcd-test-harness-barrier";

/**
 * Runs the C client shell cli_mt (`-h hostPort`, through `stdbuf -oL` so
 * stdout is line-buffered), feeding it `commands` one by one, then `quit`.
 *
 * cli_mt runs several commands (get, ls, create, ...) asynchronously and
 * prints their results from another thread, so commands are paced: after
 * each one it is sent `ls` of a missing path, and the next command is only
 * sent once that listing's answer (`<path>: rc = ...`) was printed. As the
 * server answers a session's requests in order, the command's own output
 * comes before it. When the first such listing does not answer ZNONODE
 * (-101), e.g. -4 (connection loss) because nothing listens, it throws.
 *
 * Note cli_mt's own syntax: `create [+e|+s|+es] <path>` always stores the
 * data "new" (the rest of the line is the path), `set <path> <data>`,
 * `get <path>`, `ls <path>`, `ls2 <path>`, `exists <path>`, `delete <path>`.
 *
 * Throws when the shell times out, exits early or prints no answer to a
 * separator; the error includes what it printed.
 */
export async function runCliMt(
  hostPort: string,
  commands: string[],
  options: ShellOptions = {},
): Promise<ShellResult> {
  const cliMt = Deno.env.get("CLI_MT") ?? DEFAULT_CLI_MT;
  const timeoutMs = options.timeoutMs ?? 30_000;
  await checkExecutable(
    cliMt,
    "Install it (apt-get install zookeeper-bin, or run .ci/run) or set CLI_MT.",
  );
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("sh", {
      args: ["-c", 'exec stdbuf -oL "$0" -h "$1" 2>&1', cliMt, hostPort],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    explainSpawnError(error, "sh", "");
  }
  const stdout = drainStream(child.stdout);
  const stderr = drainStream(child.stderr);
  let exited = false;
  child.status.then(() => exited = true);
  const writer = child.stdin.getWriter();
  const deadline = Date.now() + timeoutMs;
  const context = `cli_mt -h ${hostPort} with commands ` +
    `${JSON.stringify(commands)}`;

  async function send(line: string): Promise<void> {
    await writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Waits until `count` separators were answered. */
  async function waitForBarriers(count: number): Promise<void> {
    while (countBarriers(stdout.text()) < count) {
      if (exited) throw new Error(`exited early (separator ${count})`);
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms (separator ${count})`);
      }
      await sleep(10);
    }
  }

  let failure: Error | undefined;
  try {
    await send(`ls ${CLI_MT_BARRIER_PATH}`);
    await waitForBarriers(1);
    const firstAnswer = stdout.text().split("\n").find(isBarrierLine);
    if (firstAnswer !== `${CLI_MT_BARRIER_PATH}: rc = -101`) {
      throw new Error(
        `could not talk to the server: listing the missing path ` +
          `${CLI_MT_BARRIER_PATH} answered "${firstAnswer}" instead of ` +
          `rc = -101 (ZNONODE)`,
      );
    }
    for (const [index, command] of commands.entries()) {
      await send(command);
      await send(`ls ${CLI_MT_BARRIER_PATH}`);
      await waitForBarriers(index + 2);
    }
    await send("quit");
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
    signalChild(child, "SIGKILL");
  } finally {
    writer.releaseLock();
    await writeAndClose(child.stdin, "");
  }
  const status = await child.status;
  await Promise.all([stdout.done, stderr.done]);
  if (failure) {
    throw new Error(
      `${context} failed: ${failure.message}. Output:\n` +
        `${tailLines(stdout.text(), 40)}\n${stderr.text()}`,
      { cause: failure },
    );
  }
  return {
    stdout: stdout.text(),
    stderr: stderr.text(),
    code: status.code,
    outputs: cliMtOutputs(stdout.text()),
  };
}

/**
 * Splits the merged output of {@linkcode runCliMt} into what each command
 * printed. Drops the connection noise before the first separator, what
 * `quit` prints, the separators' own lines and the volatile
 * `time = N msec` lines.
 */
export function cliMtOutputs(stdout: string): string[] {
  const kept = stdout
    .split("\n")
    .filter((line) => !/^time = -?\d+ msec$/.test(line))
    .join("\n");
  return splitOnMarker(kept, isBarrierLine);
}

function isBarrierLine(line: string): boolean {
  return line.startsWith(`${CLI_MT_BARRIER_PATH}: rc = `);
}

function countBarriers(text: string): number {
  return text.split("\n").filter(isBarrierLine).length;
}

/**
 * Splits `text` into lines, cuts it at every line `isMarker` accepts and
 * returns the sections between the first and the last marker.
 */
function splitOnMarker(
  text: string,
  isMarker: (line: string) => boolean,
): string[] {
  const sections: string[][] = [[]];
  for (const line of text.split("\n")) {
    if (isMarker(line)) sections.push([]);
    else sections[sections.length - 1].push(line);
  }
  return sections.slice(1, -1).map((lines) => lines.join("\n").trimEnd());
}

/**
 * Replaces the values that differ between two servers, or two runs, with
 * placeholders: times, zxids, session ids (non-zero ephemeral owners) in
 * the stat blocks of zkCli.sh (`get -s`, `stat`, ...) and cli_mt.
 */
export function maskVolatile(output: string): string {
  return output
    .replace(/^(\s*[cm]time ?= ?).*$/gm, "$1<time>")
    .replace(/^(\s*(?:[cmp]Zxid|[cm]zxid) ?= ?)\S+$/gm, "$1<zxid>")
    .replace(/^(\s*ephemeralOwner ?= ?)(?!0x0$|0$)\S+$/gm, "$1<session>");
}

/** Throws a clear error when `path` is not an executable file. */
async function checkExecutable(path: string, hint: string): Promise<void> {
  try {
    const info = await Deno.stat(path);
    if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return;
  } catch {
    // Reported below.
  }
  throw new Error(`${path} is missing or not executable. ${hint}`);
}
