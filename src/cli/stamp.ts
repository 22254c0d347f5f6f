/**
 * `deno task stamp`: writes the current git commit into src/build_info.ts
 * before `deno compile`, so the binary's `--version` names it.
 *
 * @module
 */

const out = await new Deno.Command("git", { args: ["rev-parse", "--short=12", "HEAD"] }).output();
const commit = out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
const file = new URL("../build_info.ts", import.meta.url);
const text = await Deno.readTextFile(file);
await Deno.writeTextFile(file, text.replace(/COMMIT = ".*"/, `COMMIT = "${commit}"`));
console.log(`build_info: commit ${commit}`);
