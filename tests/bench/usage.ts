/**
 * What a system's measured turns cost: the CPU of some processes (from
 * `/proc/<pid>/stat`) and etcd's write counters (from its Prometheus
 * `/metrics`), read when a measured run starts and when it ends (load.ts's
 * `onMeasure`), so warm-up and the sessions' set-up and clean-up are left out.
 *
 * @module
 */

/** Counters at one moment, or their growth over measured runs. */
export interface Usage {
  /** CPU seconds (user + system) of each process, in the order given. */
  cpu: number[];
  /** Keys etcd wrote: `etcd_mvcc_put_total` + `etcd_mvcc_delete_total` (one a DeleteRange). */
  keys: number;
  /** Txn requests etcd answered (`grpc_server_handled_total{grpc_method="Txn"}`, any code). */
  txns: number;
}

/** CPU seconds (user + system) a process has used. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

/** The sum of the samples of `name` in a Prometheus text exposition whose labels include `labels`. */
function metric(text: string, name: string, labels = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || !/[ {]/.test(line[name.length] ?? "")) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** etcd's write counters, from `clientUrl/metrics`. */
async function etcdCounters(clientUrl: string): Promise<{ keys: number; txns: number }> {
  const text = await (await fetch(`${clientUrl}/metrics`)).text();
  return {
    keys: metric(text, "etcd_mvcc_put_total") + metric(text, "etcd_mvcc_delete_total"),
    txns: metric(text, "grpc_server_handled_total", 'grpc_method="Txn"'),
  };
}

/**
 * Adds up the usage of the measured runs it is the `onMeasure` of: the CPU of
 * `pids` and the writes of the etcd at `etcdUrl`.
 */
export class Meter {
  total: Usage;
  #start?: Usage;

  constructor(readonly pids: number[], readonly etcdUrl: string) {
    this.total = { cpu: pids.map(() => 0), keys: 0, txns: 0 };
  }

  /** For load.ts's `onMeasure`. The metrics are read outside the CPU window: scraping them costs etcd CPU. */
  onMeasure = async (phase: "start" | "end"): Promise<void> => {
    if (phase === "start") {
      const counters = await etcdCounters(this.etcdUrl);
      this.#start = { cpu: await Promise.all(this.pids.map(cpuSeconds)), ...counters };
      return;
    }
    const cpu = await Promise.all(this.pids.map(cpuSeconds));
    const { keys, txns } = await etcdCounters(this.etcdUrl);
    const start = this.#start!;
    this.total = {
      cpu: this.total.cpu.map((c, i) => c + cpu[i] - start.cpu[i]),
      keys: this.total.keys + keys - start.keys,
      txns: this.total.txns + txns - start.txns,
    };
  };
}
