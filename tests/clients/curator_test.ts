/**
 * Curator's EnsembleTracker follows `/zookeeper/config`: a client given one
 * server of two learns the other on connecting, and a third server started
 * later, without any change to its connection string. Needs a JDK (`javac`)
 * and Debian's libcurator-framework-java, libcurator-client-java and
 * libzookeeper-java (`.ci/run` installs them).
 */

import assert from "node:assert/strict";
import { startEtcd } from "../_util/etcd.ts";
import { startZetcd, uniquePrefix } from "../_util/zetcd.ts";

const JARS = [
  "curator-framework",
  "curator-client",
  "zookeeper",
  "zookeeper-jute",
  "slf4j-api",
  "slf4j-nop",
  "guava",
].map((name) => `/usr/share/java/${name}.jar`);

const SOURCE = new URL("./curator/EnsembleWatch.java", import.meta.url).pathname;

/** Compiles EnsembleWatch.java into a temporary directory; its path. */
async function compile(): Promise<string> {
  const missing = JARS.filter((jar) => {
    try {
      Deno.statSync(jar);
      return false;
    } catch {
      return true;
    }
  });
  assert.deepEqual(
    missing,
    [],
    "Install libcurator-framework-java, libcurator-client-java and libzookeeper-java (apt-get install, or run .ci/run)",
  );
  const dir = await Deno.makeTempDir({ prefix: "zetcd-curator-" });
  const out = await new Deno.Command("javac", {
    args: ["-d", dir, "-cp", JARS.join(":"), SOURCE],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((err) => {
    throw new Error(`javac: ${err} (install default-jdk-headless)`);
  });
  assert.equal(out.code, 0, `javac failed: ${new TextDecoder().decode(out.stderr)}`);
  return dir;
}

/** Splits text into lines. */
function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, out) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) out.enqueue(line);
    },
    flush(out) {
      if (rest) out.enqueue(rest);
    },
  });
}

/** The sorted addresses of a connection string. */
function addresses(connection: string): string {
  return connection.split(",").sort().join(",");
}

Deno.test({
  name:
    "Curator's EnsembleTracker learns the servers of /zookeeper/config, and a third one started later",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const classes = await compile();
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  const a = await startZetcd(etcd, { prefix });
  const b = await startZetcd(etcd, { prefix });
  const servers = [a, b];
  const java = new Deno.Command("java", {
    args: ["-cp", [classes, ...JARS].join(":"), "EnsembleWatch", a.address],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = java.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let errors = "";
  (async () => {
    for (let r = await stderr.read(); !r.done; r = await stderr.read()) errors += r.value;
  })().catch(() => {});
  const lines = java.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines())
    .getReader();
  /** Reads "connection …" lines until one lists `want`; every line read. */
  const waitFor = async (want: string[], ms: number) => {
    const seen: string[] = [];
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const next = await Promise.race([
        lines.read(),
        new Promise<null>((r) => timer = setTimeout(() => r(null), Math.max(0, left))),
      ]);
      clearTimeout(timer);
      assert.ok(
        next && !next.done,
        `Curator never listed ${want.join(",")}; it printed ${JSON.stringify(seen)}; stderr: ${
          errors.slice(-2000)
        }`,
      );
      seen.push(next.value);
      const m = /^connection (.*)$/.exec(next.value);
      if (m && addresses(m[1]) === [...want].sort().join(",")) return seen;
    }
  };
  try {
    // Given a alone, it learns b from /zookeeper/config on connecting.
    await waitFor([a.address, b.address], 30_000);
    // A third server starts: Curator learns it without a new connection string.
    const c = await startZetcd(etcd, { prefix });
    servers.push(c);
    await waitFor([a.address, b.address, c.address], 15_000);
    // b stops: it is dropped.
    await b.close();
    servers.splice(servers.indexOf(b), 1);
    await waitFor([a.address, c.address], 15_000);
  } finally {
    await java.stdin.close().catch(() => {});
    try {
      java.kill("SIGKILL");
    } catch { /* gone */ }
    await java.status;
    await lines.cancel().catch(() => {});
    for (const s of servers) await s.close();
    await Deno.remove(classes, { recursive: true });
  }
});
