/**
 * Runs snippets of Python against a ZooKeeper server with kazoo (Debian's
 * python3-kazoo), the client that zetcd must stay compatible with.
 *
 * @module
 */

import { explainSpawnError, runToCompletion, tailLines } from "./process.ts";

/**
 * The Python that has kazoo. Debian's python3-kazoo only installs for
 * /usr/bin/python3; a `python3` earlier on PATH (e.g. pyenv) lacks it.
 * Override with env `KAZOO_PYTHON`.
 */
export const DEFAULT_KAZOO_PYTHON = "/usr/bin/python3";

/** Options for {@linkcode runKazoo}. */
export interface KazooOptions {
  /** Kill Python after this many milliseconds (default 30 000). */
  timeoutMs?: number;
}

/**
 * Connects kazoo to `hostPort`, runs `body` and resolves with the value the
 * body assigned to `result` (or returned).
 *
 * `body` is Python code run inside a function; any common indentation is
 * removed first, so a template literal can be indented like the test. It
 * may use:
 * - `zk`: the started `KazooClient`;
 * - `b(s)`: `s.encode()`, for znode data;
 * - `stat_to_dict(stat)`: a `ZnodeStat` as a dict;
 * - every name of `kazoo.exceptions` and `kazoo.security`.
 *
 * `result` must be JSON-serialisable; bytes are decoded as UTF-8. An
 * exception raised by the body becomes the result
 * `{"error": "<ExceptionClassName>"}` (its traceback goes to stderr), so a
 * test can assert e.g. `{ error: "NoNodeError" }`.
 *
 * Throws when Python fails otherwise (e.g. kazoo cannot connect), exits
 * non-zero, prints no JSON, or runs past `timeoutMs`; the error includes
 * Python's stderr.
 */
export function runKazoo(
  hostPort: string,
  body: string,
  options: KazooOptions = {},
): Promise<unknown> {
  return runKazooProgram(
    kazooProgram(hostPort, body),
    `kazoo program against ${hostPort}`,
    options,
  );
}

/**
 * Runs a whole kazoo Python program (`where` names it in errors) and
 * resolves with the JSON its last stdout line holds. Throws, with Python's
 * output, when it cannot start, times out, exits non-zero or prints no JSON.
 */
export async function runKazooProgram(
  program: string,
  where: string,
  options: KazooOptions = {},
): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const python = Deno.env.get("KAZOO_PYTHON") ?? DEFAULT_KAZOO_PYTHON;
  let run;
  try {
    run = await runToCompletion(
      python,
      ["-c", program],
      { timeoutMs, env: { PYTHONDONTWRITEBYTECODE: "1" } },
    );
  } catch (error) {
    explainSpawnError(
      error,
      python,
      "Install python3-kazoo (apt-get install python3-kazoo, or run .ci/run) or set KAZOO_PYTHON.",
    );
  }
  const details = `stdout:\n${tailLines(run.stdout)}\nstderr:\n${tailLines(run.stderr, 60)}`;
  if (run.timedOut) {
    throw new Error(`${where} timed out after ${timeoutMs} ms and was killed.\n${details}`);
  }
  if (run.code !== 0) {
    throw new Error(`${where} exited with code ${run.code}.\n${details}`);
  }
  const lastLine = run.stdout.trimEnd().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(lastLine);
  } catch {
    throw new Error(`${where} did not print a JSON result as its last line.\n${details}`);
  }
}

/** The whole Python program for {@linkcode runKazoo}. */
export function kazooProgram(hostPort: string, body: string): string {
  return `
import json
import sys
import traceback

from kazoo.client import KazooClient
from kazoo.exceptions import *
from kazoo.security import *


def b(s):
    return s.encode()


def stat_to_dict(stat):
    return dict(stat._asdict())


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    raise TypeError("not JSON serialisable: %r" % (value,))


def _body(zk):
    result = None
${indent(dedent(body), "    ")}
    return result


zk = KazooClient(hosts=${JSON.stringify(hostPort)}, timeout=10)
zk.start(timeout=10)
try:
    result = _body(zk)
except Exception as error:
    traceback.print_exc()
    result = {"error": type(error).__name__}
finally:
    zk.stop()
    zk.close()
sys.stdout.write("\\n" + json.dumps(result, default=_json_default) + "\\n")
`;
}

/** Removes the indentation common to all non-blank lines of `text`. */
export function dedent(text: string): string {
  const lines = text.replace(/\t/g, "    ").split("\n");
  const indents = lines
    .filter((line) => line.trim() !== "")
    .map((line) => line.length - line.trimStart().length);
  const common = indents.length === 0 ? 0 : Math.min(...indents);
  return lines.map((line) => line.slice(common)).join("\n");
}

function indent(text: string, prefix: string): string {
  return text
    .split("\n")
    .map((line) => line.trim() === "" ? "" : prefix + line)
    .join("\n");
}
