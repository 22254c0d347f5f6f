/**
 * A three-member etcd cluster on loopback for fault-injection tests: each
 * member can be killed, restarted on its data, paused (SIGSTOP) and
 * resumed, and the current leader can be asked for.
 *
 * @module
 */

import { freePorts } from "./ports.ts";
import { freezeChild, sleep } from "./process.ts";

/** One member of the cluster. */
export interface Member {
  name: string;
  /** Client endpoint, `127.0.0.1:PORT`. */
  endpoint: string;
  /** Whether its process runs (paused or not). */
  readonly running: boolean;
  /** Kills it (SIGKILL) and waits for it to end. */
  kill(): Promise<void>;
  /** Starts it again on its data dir. */
  restart(): void;
  /** Freezes it (SIGSTOP), resolving once all its threads have stopped. */
  pause(): Promise<void>;
  /** Lets a frozen member go on (SIGCONT). */
  resume(): void;
}

/** A running cluster. */
export interface EtcdCluster {
  members: Member[];
  /** Client endpoints of every member. */
  endpoints: string[];
  /** The member that is leader now, or null when there is none (or it cannot be asked). */
  leader(): Promise<Member | null>;
  /** Once every member is healthy: one that is not the leader. */
  follower(): Promise<Member>;
  /** Resolves once every running member reports healthy (quorum and a leader). */
  waitHealthy(ms?: number): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A member's id and the id of the leader it knows ("0": none), from its status. */
async function status(m: Member): Promise<{ id: string; leader: string }> {
  const res = await fetch(`http://${m.endpoint}/v3/maintenance/status`, {
    method: "POST",
    body: "{}",
    signal: AbortSignal.timeout(1000),
  });
  const body = await res.json();
  return { id: String(body.header?.member_id), leader: String(body.leader ?? "0") };
}

/**
 * A member without a leader, as on the minority side of a partition: the
 * survivor of a cluster whose two other members were killed. Its process
 * answers; resolves once it has found its leader gone.
 */
export async function startMemberWithoutLeader(): Promise<{ member: Member } & AsyncDisposable> {
  const cluster = await startEtcdCluster();
  const [member, ...peers] = cluster.members;
  try {
    for (const peer of peers) await peer.kill();
    for (const deadline = Date.now() + 10_000;;) {
      const known = await status(member).then((s) => s.leader, () => "?");
      if (known === "0") break;
      if (Date.now() > deadline) throw new Error(`etcd member ${member.name} still knows a leader`);
      await sleep(100);
    }
  } catch (err) {
    await cluster[Symbol.asyncDispose]();
    throw err;
  }
  return { member, [Symbol.asyncDispose]: () => cluster[Symbol.asyncDispose]() };
}

/** Starts three members with fast elections (heartbeat 50 ms, election timeout 500 ms). */
export async function startEtcdCluster(): Promise<EtcdCluster> {
  const dir = await Deno.makeTempDir({ prefix: "zetcd-cluster-" });
  const ports = await freePorts(6);
  const specs = [0, 1, 2].map((i) => ({
    name: `m${i}`,
    client: ports[2 * i],
    peer: ports[2 * i + 1],
  }));
  const initial = specs.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
  const members = specs.map((spec) => {
    const args = [
      `--name=${spec.name}`,
      `--data-dir=${dir}/${spec.name}`,
      `--listen-client-urls=http://127.0.0.1:${spec.client}`,
      `--advertise-client-urls=http://127.0.0.1:${spec.client}`,
      `--listen-peer-urls=http://127.0.0.1:${spec.peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${spec.peer}`,
      `--initial-cluster=${initial}`,
      "--initial-cluster-state=new",
      "--heartbeat-interval=50",
      "--election-timeout=500",
      "--max-txn-ops=10000",
      "--logger=zap",
      "--log-level=error",
    ];
    let child: Deno.ChildProcess | null = null;
    const spawn = () => {
      child = new Deno.Command(Deno.env.get("ETCD_BIN") ?? "etcd", {
        args,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
    };
    spawn();
    const member: Member = {
      name: spec.name,
      endpoint: `127.0.0.1:${spec.client}`,
      get running() {
        return child !== null;
      },
      async kill() {
        const c = child;
        if (!c) return;
        child = null;
        try {
          c.kill("SIGCONT");
          c.kill("SIGKILL");
        } catch { /* gone */ }
        await c.status;
      },
      restart() {
        if (!child) spawn();
      },
      async pause() {
        if (child) await freezeChild(child);
      },
      resume() {
        child?.kill("SIGCONT");
      },
    };
    return member;
  });
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.endpoint),
    async leader() {
      const all = await Promise.all(
        members.filter((m) => m.running).map((m) => status(m).then((s) => ({ m, s }), () => null)),
      );
      for (const x of all) if (x && x.s.id === x.s.leader) return x.m;
      return null;
    },
    async follower() {
      await this.waitHealthy();
      const leader = await this.leader();
      return members.find((m) => m !== leader && m.running)!;
    },
    async waitHealthy(ms = 20_000) {
      const deadline = Date.now() + ms;
      for (const m of members.filter((m) => m.running)) {
        for (;;) {
          try {
            const res = await fetch(`http://${m.endpoint}/health`, {
              signal: AbortSignal.timeout(1000),
            });
            if ((await res.text()).includes('"true"')) break;
          } catch { /* not yet */ }
          if (Date.now() > deadline) {
            throw new Error(`etcd member ${m.name} not healthy in ${ms} ms`);
          }
          await sleep(100);
        }
      }
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(members.map((m) => m.kill()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await cluster.waitHealthy();
  } catch (err) {
    await cluster[Symbol.asyncDispose]();
    throw err;
  }
  return cluster;
}
