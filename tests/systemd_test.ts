/**
 * `zetcd systemd-unit`: the unit an operator installs. A bad flag must not
 * make systemd restart the server every 2 s, the unit points at this
 * project's documentation, a binary path that does not exist is warned
 * about, and the unit says how a DynamicUser reads certificates and the
 * etcd password.
 */

import assert from "node:assert/strict";
import { runZetcd } from "./_util/cli.ts";
import { binaryWarning, PROJECT_URL, systemdUnit } from "../src/cli/systemd.ts";

Deno.test("the unit does not restart a server that exits on a bad flag (code 2)", () => {
  const unit = systemdUnit("/usr/bin/true", ["--endpoints", "10.0.0.1:2379"]);
  const lines = unit.split("\n");
  assert.ok(lines.includes("Restart=on-failure"));
  assert.ok(lines.includes("RestartPreventExitStatus=2"));
});

Deno.test("the unit's Documentation= is this project", () => {
  const unit = systemdUnit("/usr/bin/true", []);
  assert.deepEqual(unit.match(/^Documentation=.*$/gm), [`Documentation=${PROJECT_URL}`]);
  assert.doesNotMatch(unit, /etcd-io\/zetcd/, "not the Go zetcd's");
});

Deno.test("the unit says how a DynamicUser reads certificates and the etcd password", () => {
  const unit = systemdUnit("/usr/bin/true", []);
  assert.ok(unit.split("\n").includes("DynamicUser=yes"));
  assert.match(unit, /^# LoadCredential=etcd-password:\/\S+$/m);
  assert.match(unit, /--etcd-password-file %d\/etcd-password/);
  assert.match(unit, /--certfile %d\//);
});

Deno.test("a binary path that does not exist is warned about; one that exists is not", () => {
  assert.equal(binaryWarning(Deno.execPath()), null);
  assert.match(
    binaryWarning("/nonexistent/zetcd") ?? "",
    /^zetcd: warning: .*\/nonexistent\/zetcd/,
  );
});

Deno.test("systemd-unit warns on stderr, in one line, when ExecStart's binary is missing", async () => {
  // Run through deno, the unit names /usr/local/bin/zetcd, absent here.
  let installed = true;
  try {
    await Deno.stat("/usr/local/bin/zetcd");
  } catch {
    installed = false;
  }
  const r = await runZetcd(["systemd-unit", "--endpoints", "10.0.0.1:2379"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^ExecStart=\/usr\/local\/bin\/zetcd --endpoints 10\.0\.0\.1:2379$/m);
  if (installed) {
    assert.equal(r.stderr, "");
    return;
  }
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^zetcd: warning: .*\/usr\/local\/bin\/zetcd.* does not exist/);
  assert.doesNotMatch(r.stdout, /warning/, "the unit itself stays clean");
});
