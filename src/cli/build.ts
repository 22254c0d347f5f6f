/**
 * `deno task compile`: builds `dist/zetcd` with `deno compile`, with the
 * current git commit stamped into src/build_info.ts for the duration of the
 * build (so `--version` names it), then restores that file.
 *
 * `deno compile` joins the program to denort, Deno's runtime of the same
 * version, which it downloads unless `DENORT_BIN` names one. When it fails,
 * one line says so and names the denort needed, with deno's own error under it.
 *
 * @module
 */

const PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-run",
  "--allow-env",
  "--allow-sys",
];

const root = new URL("../../", import.meta.url);

/** The denort this deno's `deno compile` needs, and where Deno publishes it. */
export function neededDenort(): { name: string; url: string } {
  const { deno: version } = Deno.version;
  const { target } = Deno.build;
  return {
    name: `denort ${version} for ${target}`,
    url: `https://dl.deno.land/release/v${version}/denort-${target}.zip`,
  };
}

/** Why `DENORT_BIN` (`path`) cannot be used, or null when it is unset or a file. */
export function denortBinProblem(path: string | undefined): string | null {
  if (path === undefined) return null;
  let isFile: boolean;
  try {
    isFile = Deno.statSync(path).isFile;
  } catch {
    return `DENORT_BIN=${path} does not exist`;
  }
  return isFile ? null : `DENORT_BIN=${path} is not a file`;
}

/** Terminal colour codes (deno colours some lines even with NO_COLOR). */
// deno-lint-ignore no-control-regex
const COLOURS = /\x1b\[[\d;]*m/g;

/**
 * deno's own error in its output: without its progress lines (Check,
 * Compile, Download), colours or backtrace.
 */
export function denoError(stderr: string): string {
  return stderr
    .replace(COLOURS, "")
    .split(/^Stack backtrace:/m)[0]
    .split("\n")
    .filter((line) => !/^(Check|Compile|Download) /.test(line))
    .join("\n")
    .trim();
}

/** The commit to stamp: git's short hash of HEAD, or "unknown". */
async function gitCommit(): Promise<string> {
  const git = await new Deno.Command("git", {
    args: ["rev-parse", "--short=12", "HEAD"],
    cwd: root,
    stderr: "null",
  }).output().catch(() => null);
  return git?.success ? new TextDecoder().decode(git.stdout).trim() : "unknown";
}

/** Runs `deno compile` with `commit` stamped into src/build_info.ts meanwhile. */
async function compile(commit: string): Promise<Deno.CommandOutput> {
  const infoFile = new URL("src/build_info.ts", root);
  const original = await Deno.readTextFile(infoFile);
  // Typed as a string: as a literal, `COMMIT !== "unknown"` would not type-check.
  const stamped = original.replace(/COMMIT(: string)? = ".*"/, `COMMIT: string = "${commit}"`);
  await Deno.writeTextFile(infoFile, stamped);
  try {
    return await new Deno.Command(Deno.execPath(), {
      args: ["compile", ...PERMISSIONS, "--output", "dist/zetcd", "mod.ts"],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } finally {
    await Deno.writeTextFile(infoFile, original);
  }
}

/** The one line over deno's error when `deno compile` failed. */
function failureLine(denortBin: string | undefined): string {
  const denort = neededDenort();
  if (denortBin !== undefined) {
    return `zetcd: deno compile could not build dist/zetcd with DENORT_BIN=${denortBin} (its error below); DENORT_BIN must be ${denort.name} (unzipped from ${denort.url})`;
  }
  return `zetcd: deno compile could not build dist/zetcd (its error below); it downloads its runtime, ${denort.name}, from ${denort.url}: where that cannot be reached, set DENORT_BIN to that binary, unzipped`;
}

/** Builds dist/zetcd; resolves to the exit code. */
async function build(): Promise<number> {
  const denortBin = Deno.env.get("DENORT_BIN");
  const problem = denortBinProblem(denortBin);
  if (problem) {
    const denort = neededDenort();
    console.error(`zetcd: ${problem}: it must be ${denort.name} (unzipped from ${denort.url})`);
    return 1;
  }
  const commit = await gitCommit();
  const out = await compile(commit);
  if (!out.success) {
    console.error(failureLine(denortBin));
    console.error(denoError(new TextDecoder().decode(out.stderr)));
    return out.code || 1;
  }
  console.log(`built dist/zetcd (commit ${commit})`);
  return 0;
}

if (import.meta.main) Deno.exit(await build());
