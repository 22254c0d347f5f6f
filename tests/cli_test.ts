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
import { runToCompletion } from "./_util/process.ts";
import { EtcdClient } from "../src/etcd/client.ts";

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

/** Runs `zetcd ARGS…` (`deno run -A mod.ts`), killed after `ms`. */
function runZetcdWithin(ms: number, args: string[], env: Record<string, string> = {}) {
  const mod = new URL("../mod.ts", import.meta.url).pathname;
  return runToCompletion(Deno.execPath(), ["run", "-A", mod, ...args], { env, timeoutMs: ms });
}

Deno.test("an empty or root --prefix is refused with exit code 2", async () => {
  const unreachable = `127.0.0.1:${await freePort()}`;
  for (const prefix of ["", "/", "//"]) {
    const r = await runZetcdWithin(30_000, ["--endpoints", unreachable, "--prefix", prefix]);
    assert.equal(r.code, 2, `--prefix "${prefix}": ${r.stderr}${r.stdout}`);
    assert.deepEqual(lines(r.stdout), []);
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, /--prefix .*root/);
  }
});

Deno.test({
  name: "TLS files that cannot be used are exit code 2, in one line naming the file",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-pem-" });
  try {
    const sh = async (cmd: string) => {
      const out = await new Deno.Command("sh", { args: ["-c", cmd], cwd: dir, stderr: "piped" })
        .output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
    };
    await sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout a.key -out a.pem -subj /CN=a");
    await sh("openssl genrsa -out b.key 2048");
    await Deno.writeTextFile(`${dir}/garbage`, "this is not PEM\n");
    await Deno.writeTextFile(
      `${dir}/bad.pem`,
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    const unreachable = `127.0.0.1:${await freePort()}`;
    const cases: [string[], string][] = [
      [["--cafile", `${dir}/garbage`], `--cafile ${dir}/garbage`],
      [["--cafile", dir], `--cafile ${dir}`],
      [["--cafile", `${dir}/bad.pem`], `--cafile ${dir}/bad.pem`],
      [["--certfile", `${dir}/bad.pem`, "--keyfile", `${dir}/a.key`], `--certfile ${dir}/bad.pem`],
      [["--certfile", `${dir}/a.pem`, "--keyfile", `${dir}/garbage`], `--keyfile ${dir}/garbage`],
      [["--certfile", `${dir}/a.pem`, "--keyfile", `${dir}/b.key`], `--keyfile ${dir}/b.key`],
      [
        [
          "--zkaddr-tls",
          "127.0.0.1:0",
          "--zk-certfile",
          `${dir}/garbage`,
          "--zk-keyfile",
          `${dir}/a.key`,
        ],
        `--zk-certfile ${dir}/garbage`,
      ],
    ];
    for (const [flags, named] of cases) {
      const r = await runZetcdWithin(30_000, [
        "--endpoints",
        unreachable,
        "--zkaddr",
        "127.0.0.1:0",
        ...flags,
      ]);
      const out = lines(r.stderr + r.stdout);
      assert.equal(r.code, 2, `${flags.join(" ")}: ${out.join("\n")}`);
      assert.equal(out.length, 1, out.join("\n"));
      assert.ok(out[0].includes(named), `${out[0]} names ${named}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stray ZETCD_ variable is warned about, and the server goes on", async () => {
  const unreachable = `127.0.0.1:${await freePort()}`;
  const r = await runZetcdWithin(30_000, ["--endpoints", unreachable, "--zkaddr", "127.0.0.1:0"], {
    ZETCD_SOMETHING: "x",
  });
  const out = lines(r.stderr + r.stdout);
  assert.equal(r.code, 1, out.join("\n"));
  assert.equal(out.length, 2, out.join("\n"));
  assert.match(out[0], /WRN.*ZETCD_SOMETHING/);
  assert.match(out[1], /etcd at 127\.0\.0\.1:\d+: unreachable/);
});

Deno.test({
  name: "a busy client or admin port is named, and a start that fails writes nothing into etcd",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const busyAddr = `127.0.0.1:${busy.addr.port}`;
  const base = ["--endpoints", etcd.endpoints[0], "--prefix", "/busy/"];
  const client = await runZetcdWithin(30_000, [...base, "--zkaddr", busyAddr]);
  const admin = await runZetcdWithin(30_000, [
    ...base,
    "--zkaddr",
    "127.0.0.1:0",
    "--admin-addr",
    busyAddr,
  ]);
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    const res = await raw.read([{ get: "/busy/", prefix: true, countOnly: true }]);
    assert.equal(res.results[0]!.count, 0, "no key under the prefix");
  } finally {
    raw.close();
  }
  for (const [r, what] of [[client, "ZooKeeper clients"], [admin, "admin"]] as const) {
    const out = lines(r.stderr + r.stdout);
    assert.equal(r.code, 1, out.join("\n"));
    assert.equal(out.length, 1, out.join("\n"));
    assert.ok(out[0].includes(`cannot listen on ${busyAddr} (${what}): address in use`), out[0]);
  }
});

/** Writes `n` revisions into etcd under `key`. */
async function writeHistory(raw: EtcdClient, key: string, n: number): Promise<bigint> {
  let revision = 0n;
  for (let i = 0; i < n; i++) {
    revision = (await raw.txn([], [{ put: key, value: new TextEncoder().encode(String(i)) }]))
      .revision;
  }
  return revision;
}

Deno.test({
  name: "against --endpoints, etcd's history is not compacted unless --compact-interval is given",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    await writeHistory(raw, "/someone-else/key", 20);
    const server = await spawnServer([
      "--endpoints",
      etcd.endpoints[0],
      "--prefix",
      "/shared/",
      "--compact-retain",
      "1",
    ]);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await server.kill("SIGTERM"), 0);
    assert.doesNotMatch(server.output(), /compact/i, server.output());
    const old = await raw.read([{ get: "/someone-else/key", revision: 2n }]);
    assert.equal(old.results[0]!.kvs.length, 1, "the history is all there");
  } finally {
    raw.close();
  }
});

Deno.test({
  name: "log lines show revisions as plain numbers (no BigInt n)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using etcd = await startEtcd();
  const raw = EtcdClient.connect({ endpoints: etcd.endpoints });
  try {
    await writeHistory(raw, "/history/key", 20);
  } finally {
    raw.close();
  }
  const server = await spawnServer([
    "--endpoints",
    etcd.endpoints[0],
    "--compact-interval",
    "100",
    "--compact-retain",
    "1",
  ]);
  try {
    const deadline = Date.now() + 10_000;
    while (!/compacted etcd history up to revision/.test(server.output())) {
      assert.ok(Date.now() < deadline, server.output());
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    assert.equal(await server.kill("SIGTERM"), 0);
  }
  assert.match(server.output(), /compacted etcd history up to revision \d+$/m);
  assert.doesNotMatch(server.output(), /\b\d+n\b/);
});
