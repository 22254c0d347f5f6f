/**
 * ZooKeeper path rules (as `PathUtils.validatePath` in ZooKeeper 3.5+) and
 * small path helpers.
 *
 * @module
 */

/**
 * Why `path` is not a valid ZooKeeper path, or null when it is valid.
 * Checks UTF-16 code units, as ZooKeeper's Java code does.
 */
export function invalidPathReason(path: string | null): string | null {
  if (path === null || path.length === 0) return "path must not be empty";
  if (path[0] !== "/") return "path must start with /";
  if (path.length === 1) return null;
  if (path.endsWith("/")) return "path must not end with /";
  const segments = path.slice(1).split("/");
  for (const segment of segments) {
    if (segment.length === 0) return "empty node name";
    if (segment === "." || segment === "..") return `relative name "${segment}"`;
  }
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0) return `null character at ${i}`;
    if (
      (c >= 0x01 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) ||
      (c >= 0xd800 && c <= 0xf8ff) || (c >= 0xfff0 && c <= 0xffff)
    ) {
      return `invalid character \\u${c.toString(16).padStart(4, "0")} at ${i}`;
    }
  }
  return null;
}

/** The parent of a valid path other than `/` (`/a/b` → `/a`, `/a` → `/`). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** The last segment of a valid path (`/a/b` → `b`; `/` → ``). */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Number of segments (`/` → 0, `/a` → 1, `/a/b` → 2). */
export function depthOf(path: string): number {
  if (path === "/") return 0;
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}

/** Joins a parent path and a child name. */
export function childPath(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/** The sequential suffix ZooKeeper appends: `%010d` of a signed 32-bit counter. */
export function sequenceSuffix(counter: number): string {
  const n = counter | 0;
  return n < 0 ? "-" + String(-n).padStart(9, "0") : String(n).padStart(10, "0");
}

/** Paths ZooKeeper reserves: they always exist and cannot be deleted. */
export const SYSTEM_PATHS: readonly string[] = [
  "/",
  "/zookeeper",
  "/zookeeper/quota",
  "/zookeeper/config",
];
