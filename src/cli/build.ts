/**
 * `deno task compile`: builds `dist/zetcd` with `deno compile`, with the
 * current git commit stamped into src/build_info.ts for the duration of the
 * build (so `--version` names it), then restores that file.
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
const infoFile = new URL("src/build_info.ts", root);
const git = await new Deno.Command("git", {
  args: ["rev-parse", "--short=12", "HEAD"],
  cwd: root,
  stderr: "null",
}).output().catch(() => null);
const commit = git?.success ? new TextDecoder().decode(git.stdout).trim() : "unknown";
const original = await Deno.readTextFile(infoFile);
await Deno.writeTextFile(infoFile, original.replace(/COMMIT = ".*"/, `COMMIT = "${commit}"`));
let code: number;
try {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["compile", ...PERMISSIONS, "--output", "dist/zetcd", "mod.ts"],
    cwd: root,
  }).output();
  code = out.code;
} finally {
  await Deno.writeTextFile(infoFile, original);
}
if (code !== 0) {
  console.error(
    "zetcd: deno compile could not build dist/zetcd; it downloads its runtime (denort) from Deno's download site: where that cannot be reached, set DENORT_BIN to a denort binary",
  );
} else {
  console.log(`built dist/zetcd (commit ${commit})`);
}
Deno.exit(code);
