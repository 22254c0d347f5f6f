/**
 * The commit this build was made from. `deno task compile` stamps it
 * for the build; a run from a git checkout asks git instead.
 */
export const COMMIT = "unknown";
