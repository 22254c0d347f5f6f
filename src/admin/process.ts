/**
 * Figures of this process and machine that ZooKeeper reports (`mntr`'s
 * file descriptors, `cons`' elapsed-time clock) and Prometheus' standard
 * `process_*` metrics. Linux figures come from `/proc`; where it cannot
 * be read, each function returns null.
 *
 * @module
 */

import process from "node:process";

/** Reads a small text file, or null. */
function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** Number of open file descriptors (`/proc/self/fd`, less the one that reads it). */
export function openFileDescriptors(): number | null {
  try {
    return [...Deno.readDirSync("/proc/self/fd")].length - 1;
  } catch {
    return null;
  }
}

/** The soft limit on open file descriptors (`ulimit -n`). */
export function maxFileDescriptors(): number | null {
  const line = readText("/proc/self/limits")?.split("\n").find((l) =>
    l.startsWith("Max open files")
  );
  const soft = line ? Number(line.slice("Max open files".length).trim().split(/\s+/)[0]) : NaN;
  return Number.isFinite(soft) ? soft : null;
}

/** Resident memory, bytes. */
export function residentMemoryBytes(): number {
  return Deno.memoryUsage().rss;
}

/** Virtual memory size, bytes (field 23 of `/proc/self/stat`). */
export function virtualMemoryBytes(): number | null {
  const stat = readText("/proc/self/stat");
  if (stat === null) return null;
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const vsize = Number(fields[20]);
  return Number.isFinite(vsize) ? vsize : null;
}

/** User and system CPU time used so far, seconds. */
export function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** When the process started, seconds since the epoch. */
export function startTimeSeconds(): number {
  return performance.timeOrigin / 1000;
}

let bootEpochMs: number | undefined;

/**
 * The time `epochMs` on the machine's elapsed-time clock: milliseconds since
 * boot, as ZooKeeper's `Time.currentElapsedTime()` (Java's `nanoTime` on
 * Linux) gives in `cons`' `lresp` and in `dump`'s expiry times. Without
 * `/proc/uptime`, milliseconds since this process started.
 */
export function elapsedMs(epochMs: number): number {
  if (bootEpochMs === undefined) {
    const uptime = Number(readText("/proc/uptime")?.split(" ")[0]);
    bootEpochMs = Number.isFinite(uptime) ? Date.now() - uptime * 1000 : performance.timeOrigin;
  }
  return Math.round(epochMs - bootEpochMs);
}
