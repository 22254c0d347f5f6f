/**
 * `zetcd systemd-unit`: prints a systemd unit for running the server as a
 * service.
 *
 * @module
 */

/** The unit text; `exec` is the binary's path, `args` its flags. */
export function systemdUnit(exec: string, args: string[]): string {
  const command = [exec, ...args].map((a) => (/[\s"'\\]/.test(a) ? JSON.stringify(a) : a))
    .join(" ");
  return `[Unit]
Description=zetcd: a ZooKeeper server on etcd
Documentation=https://github.com/etcd-io/zetcd
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart=${command}
# Settings may also come from ZETCD_* variables (flags win), e.g.:
# Environment=ZETCD_ENDPOINTS=10.0.0.1:2379,10.0.0.2:2379
Restart=on-failure
RestartSec=2
LimitNOFILE=65536
# SIGTERM closes client connections without ending sessions: clients resume on
# another server. Give the stop a moment before SIGKILL.
KillSignal=SIGTERM
TimeoutStopSec=30
DynamicUser=yes
StateDirectory=zetcd
WorkingDirectory=/var/lib/zetcd

[Install]
WantedBy=multi-user.target
`;
}
