/**
 * `zetcd systemd-unit`: prints a systemd unit for running the server as a
 * service.
 *
 * @module
 */

/** Where this project's documentation lives (the unit's `Documentation=`). */
export const PROJECT_URL = "https://jsr.io/@zetcd/zetcd";

/** The exit code of a bad flag: restarting cannot help it. */
const USAGE_EXIT_CODE = 2;

/**
 * The one-line warning for a unit whose binary `exec` does not exist (or
 * cannot be seen), or null when it is a file.
 */
export function binaryWarning(exec: string): string | null {
  try {
    if (Deno.statSync(exec).isFile) return null;
  } catch { /* absent, or not ours to see: warn */ }
  return `zetcd: warning: the unit runs ${exec}, which does not exist: install zetcd there (deno task compile builds dist/zetcd) or edit ExecStart`;
}

/**
 * The unit text; `exec` is the binary's path, `args` its flags. When `exec`
 * does not exist, a warning goes to stderr (the unit is for stdout).
 */
export function systemdUnit(exec: string, args: string[]): string {
  const warning = binaryWarning(exec);
  if (warning) console.error(warning);
  const command = [exec, ...args].map((a) => (/[\s"'\\]/.test(a) ? JSON.stringify(a) : a))
    .join(" ");
  return `[Unit]
Description=zetcd: a ZooKeeper server on etcd
Documentation=${PROJECT_URL}
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart=${command}
# Settings may also come from ZETCD_* variables (flags win), e.g.:
# Environment=ZETCD_ENDPOINTS=10.0.0.1:2379,10.0.0.2:2379
Restart=on-failure
RestartSec=2
# A bad flag exits with ${USAGE_EXIT_CODE}: restarting would only fail again.
RestartPreventExitStatus=${USAGE_EXIT_CODE}
LimitNOFILE=65536
# SIGTERM closes client connections without ending sessions: clients resume on
# another server. Give the stop a moment before SIGKILL.
KillSignal=SIGTERM
TimeoutStopSec=30
# DynamicUser= runs zetcd as a throwaway user, who cannot read files only root
# may read: TLS keys and certificates, the etcd password. Hand them over with
# LoadCredential= and point the flags at %d, the directory they appear in, e.g.
# LoadCredential=etcd-password:/etc/zetcd/etcd-password
# LoadCredential=etcd-ca.pem:/etc/zetcd/etcd-ca.pem
# LoadCredential=etcd-client.pem:/etc/zetcd/etcd-client.pem
# LoadCredential=etcd-client-key.pem:/etc/zetcd/etcd-client-key.pem
# with --etcd-password-file %d/etcd-password --cafile %d/etcd-ca.pem
#   --certfile %d/etcd-client.pem --keyfile %d/etcd-client-key.pem
# (the same for --zk-certfile, --zk-keyfile and --zk-cafile).
DynamicUser=yes
StateDirectory=zetcd
WorkingDirectory=/var/lib/zetcd

[Install]
WantedBy=multi-user.target
`;
}
