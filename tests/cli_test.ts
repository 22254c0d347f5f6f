/**
 * The command line as operators meet it: flags, one-line errors with exit
 * codes, and the local default (a supervised etcd under --data-dir).
 */

import assert from "node:assert/strict";
import { freePort } from "./_util/ports.ts";
import { spawnServer } from "./_util/server_process.ts";
import { Nzk } from "./_util/nzk.ts";
import { startEtcd } from "./_util/etcd.ts";
import { runZetcd } from "./_util/cli.ts";

function lines(s: string): string[] {
  return s.split("\n").filter((l) => l.trim() !== "");
}

Deno.test("an unknown flag prints one line and exits with code 2", async () => {
  const r = await runZetcd(["--no-such-flag"]);
  assert.equal(r.code, 2);
  assert.deepEqual(lines(r.stderr), ["zetcd: Unknown option '--no-such-flag' (see --help)"]);
});

Deno.test("a malformed --zkaddr prints one line and exits with code 2", async () => {
  const r = await runZetcd(["--zkaddr", "localhost"]);
  assert.equal(r.code, 2);
  assert.equal(lines(r.stderr).length, 1);
  assert.match(r.stderr, /--zkaddr must be HOST:PORT/);
});

Deno.test("--version prints the version and --help the Go zetcd's flags", async () => {
  const v = await runZetcd(["--version"]);
  assert.equal(v.code, 0);
  assert.match(
    v.stdout,
    /^zetcd \d+\.\d+\.\d+ \(commit [0-9a-f]{12}\)$/m,
    "from a checkout, git's commit",
  );
  const h = await runZetcd(["--help"]);
  assert.equal(h.code, 0);
  for (const flag of ["--zkaddr", "--endpoints", "--certfile", "--keyfile", "--cafile"]) {
    assert.ok(h.stdout.includes(flag), `--help mentions ${flag}`);
  }
});

Deno.test("without an etcd binary the server says how to get one and exits with code 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await runZetcd([
      "--zkaddr",
      "127.0.0.1:0",
      "--data-dir",
      dir,
      "--etcd-bin",
      `${dir}/none`,
    ]);
    assert.equal(r.code, 1);
    assert.equal(lines(r.stderr).length + lines(r.stdout).length, 1, r.stderr + r.stdout);
    assert.match(r.stderr + r.stdout, /no etcd binary found .*apt-get install etcd-server/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an unreachable etcd is reported in one line with exit code 1", async () => {
  const port = await freePort();
  const r = await runZetcd(["--endpoints", `127.0.0.1:${port}`, "--zkaddr", "127.0.0.1:0"]);
  assert.equal(r.code, 1);
  const out = lines(r.stderr + r.stdout);
  assert.equal(out.length, 1, out.join("\n"));
  assert.match(out[0], /etcd at 127\.0\.0\.1:\d+: unreachable/);
});

Deno.test({
  name: "with --endpoints the server logs JSON lines when asked",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const server = await spawnServer(["--endpoints", etcd.endpoints[0], "--log-format", "json"]);
  assert.equal(await server.kill("SIGTERM"), 0);
  const logged = lines(server.output());
  assert.ok(logged.length >= 2);
  for (const line of logged) {
    const entry = JSON.parse(line);
    assert.ok(entry.level && entry.message, line);
  }
});

Deno.test({
  name: "the local default runs its own etcd, keeps data across restarts and stops it on SIGTERM",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-cli-" });
  try {
    for (const round of [1, 2]) {
      const server = await spawnServer(["--data-dir", dir]);
      try {
        const zk = await Nzk.connect(server.address);
        if (round === 1) await zk.create("/kept", new TextEncoder().encode("across restarts"));
        const { data } = await zk.getData("/kept");
        assert.equal(new TextDecoder().decode(data!), "across restarts");
        await zk.close();
      } finally {
        assert.equal(await server.kill("SIGTERM"), 0, "SIGTERM is a clean stop");
      }
    }
    const etcdLeft = await new Deno.Command("pgrep", { args: ["-f", `data-dir=${dir}/etcd`] })
      .output();
    assert.equal(etcdLeft.code, 1, "no local etcd is left running");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ZETCD_* variables set flags, and flags on the command line win", async () => {
  const bad = await runZetcd(["--zkaddr", "127.0.0.1:0"], { ZETCD_LOG_LEVEL: "loud" });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--log-level must be .* got "loud"/);
  const overridden = await runZetcd(["--log-level", "nonsense"], { ZETCD_LOG_LEVEL: "debug" });
  assert.match(overridden.stderr, /got "nonsense"/, "the flag won over the variable");
});

Deno.test("systemd-unit prints a unit that runs the server with the given flags", async () => {
  const r = await runZetcd(["systemd-unit", "--endpoints", "10.0.0.1:2379"]);
  assert.equal(r.code, 0);
  for (
    const line of [
      "Type=exec",
      "Restart=on-failure",
      "KillSignal=SIGTERM",
      "TimeoutStopSec=30",
      "WantedBy=multi-user.target",
    ]
  ) {
    assert.ok(r.stdout.split("\n").includes(line), `the unit has ${line}`);
  }
  assert.match(r.stdout, /^LimitNOFILE=\d+$/m);
  assert.match(r.stdout, /^ExecStart=\S*zetcd --endpoints 10\.0\.0\.1:2379$/m);
});
