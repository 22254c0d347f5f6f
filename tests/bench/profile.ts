/**
 * `deno task bench-profile`: where the time goes. Starts a fresh etcd and our
 * server (its own process, with the V8 inspector on), runs each workload at
 * 32 connections for PROFILE_SECONDS (default 5) while V8's sampling
 * profiler records the server, and prints:
 *
 * - the CPU each process used over the run (server, etcd, load generator),
 *   as a share of the machine's cores — on this 2-core machine all three
 *   share them, so the server's CPU is taken from etcd's;
 * - the server's self time per code area (our modules by folder, each npm
 *   package, Deno's runtime, V8's garbage collector and idle time);
 * - the server's top functions by self time, and by total time (what they
 *   called included, within one synchronous stack: an await starts anew);
 * - with PROFILE_HEAP=1, also the bytes the server allocated per operation
 *   (V8's sampling heap profiler, objects already collected included) and
 *   the functions that allocated most. Unlike CPU time on this noisy
 *   machine, this changes only when the code does; the sampler slows the
 *   server, so read CPU and throughput from a run without it.
 *
 * PROFILE_WORKLOADS picks workloads (default get,create,set); PROFILE_TOP the
 * functions listed (default 15); PROFILE_CONNS
 * the connections (default 32).
 *
 * @module
 */

import { startEtcd } from "../_util/etcd.ts";
import { startServerProcess } from "../_util/server_process.ts";
import { type BenchOptions, formatResult, runBench, type Workload } from "../../src/bench/load.ts";
import { cpuSeconds } from "./usage.ts";

const SECONDS = Number(Deno.env.get("PROFILE_SECONDS") ?? 5);
const CONNS = Number(Deno.env.get("PROFILE_CONNS") ?? 32);
const WORKLOADS = (Deno.env.get("PROFILE_WORKLOADS") ?? "get,create,set").split(",");
const TOP = Number(Deno.env.get("PROFILE_TOP") ?? 15);
const HEAP = Deno.env.get("PROFILE_HEAP") === "1";

/** A V8 CPU profile, as `Profiler.stop` returns it. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
}

/** A minimal Chrome DevTools Protocol session over the inspector's WebSocket. */
async function inspect(port: number) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const socket = new WebSocket(list[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let next = 1;
  const pending = new Map<number, (result: unknown) => void>();
  socket.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
  };
  return {
    call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
      const id = next++;
      socket.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve) => pending.set(id, resolve as (r: unknown) => void));
    },
    close: () => socket.close(),
  };
}

/** A V8 sampling heap profile, as `HeapProfiler.stopSampling` returns it. */
interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** Bytes allocated in all, and per function (largest first). */
function allocations(head: HeapNode): { total: number; functions: [string, number][] } {
  const functions = new Map<string, number>();
  let total = 0;
  const visit = (node: HeapNode) => {
    const { functionName, url } = node.callFrame;
    if (node.selfSize > 0) {
      const f = `${functionName || "(anonymous)"} ${area(url, functionName)}`;
      functions.set(f, (functions.get(f) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    node.children.forEach(visit);
  };
  visit(head);
  return { total, functions: [...functions].sort((a, b) => b[1] - a[1]).slice(0, TOP) };
}

/** The code area a frame belongs to. */
function area(url: string, name: string): string {
  if (name === "(garbage collector)" || name === "(idle)" || name === "(program)") return name;
  const npm = /\/npm\/registry\.npmjs\.org\/(@[^/]+\/[^/]+|[^/]+)\//.exec(url);
  if (npm) return `npm:${npm[1]}`;
  const ours = /\/(src\/[^/]+)\//.exec(url) ?? /\/(mod\.ts)$/.exec(url);
  if (ours) return ours[1];
  if (url.startsWith("ext:") || url.startsWith("node:")) {
    return `deno runtime (${url.split("/")[0]})`;
  }
  return url === "" ? "(native)" : url;
}

/** Self time per area and per function, in ms. */
function summarize(profile: CpuProfile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + profile.timeDeltas[i] / 1000);
  });
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let total = 0;
  for (const [id, ms] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const a = area(url, functionName);
    areas.set(a, (areas.get(a) ?? 0) + ms);
    const f = `${functionName || "(anonymous)"} ${a}${url ? `:${lineNumber + 1}` : ""}`;
    functions.set(f, (functions.get(f) ?? 0) + ms);
    total += ms;
  }
  // Total time: each sample counts once for every function on its stack.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const totals = new Map<string, number>();
  for (const [id, ms] of self) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { functionName, url, lineNumber } = byId.get(at)!.callFrame;
      if (!url.includes("/src/")) continue; // our code only: the rest is its callers' plumbing
      const f = `${functionName || "(anonymous)"} ${area(url, functionName)}:${lineNumber + 1}`;
      if (seen.has(f)) continue;
      seen.add(f);
      totals.set(f, (totals.get(f) ?? 0) + ms);
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    total,
    areas: sorted(areas),
    functions: sorted(functions).slice(0, TOP),
    totals: sorted(totals).slice(0, TOP),
  };
}

if (import.meta.main) {
  const etcd = await startEtcd();
  const inspectPort = 9300 + Math.floor(Math.random() * 500);
  const server = await startServerProcess(
    etcd.endpoints,
    "/profile/",
    [
      "--max-client-cnxns",
      "0",
    ],
    undefined,
    [`--inspect=127.0.0.1:${inspectPort}`],
  );
  const etcdPid = etcd.pid;
  const cdp = await inspect(inspectPort);
  const pct = (ms: number, total: number) => `${((100 * ms) / total).toFixed(1)}%`;
  try {
    await cdp.call("Profiler.enable");
    await cdp.call("Profiler.setSamplingInterval", { interval: 200 });
    if (HEAP) await cdp.call("HeapProfiler.enable");
    for (const workload of WORKLOADS) {
      // A short warm-up, so the profile shows optimized code rather than the JIT warming up.
      await runBench(
        { workload, endpoints: [server.address], conns: CONNS, duration: 1 } as BenchOptions,
      );
      const pids = [server.pid, etcdPid, Deno.pid];
      let before: number[] = [];
      let after: number[] = [];
      let t0 = 0;
      let wall = 0;
      let profile: CpuProfile | undefined;
      let heap: HeapNode | undefined;
      const result = await runBench({
        workload: workload as Workload,
        endpoints: [server.address],
        conns: CONNS,
        duration: SECONDS,
        // Only the measured run: not the sessions' set-up, nor the clean-up after.
        onMeasure: async (phase) => {
          if (phase === "start") {
            before = await Promise.all(pids.map(cpuSeconds));
            await cdp.call("Profiler.start");
            if (HEAP) {
              await cdp.call("HeapProfiler.startSampling", {
                samplingInterval: 1024,
                includeObjectsCollectedByMajorGC: true,
                includeObjectsCollectedByMinorGC: true,
              });
            }
            t0 = performance.now();
          } else {
            wall = (performance.now() - t0) / 1000;
            after = await Promise.all(pids.map(cpuSeconds));
            profile = (await cdp.call<{ profile: CpuProfile }>("Profiler.stop")).profile;
            if (HEAP) {
              heap = (await cdp.call<{ profile: { head: HeapNode } }>("HeapProfiler.stopSampling"))
                .profile.head;
            }
          }
        },
      });
      const [srv, etc, gen] = after.map((a, i) => (a - before[i]) / wall);
      const s = summarize(profile!);
      console.log(`\n## ${workload} × ${CONNS}: ${formatResult(result)}`);
      console.log(
        `CPU over the run (cores of ${navigator.hardwareConcurrency}): server ${srv.toFixed(2)}, ` +
          `etcd ${etc.toFixed(2)}, load generator ${gen.toFixed(2)}; ` +
          `server CPU per operation ${((srv * wall * 1e6) / result.ops).toFixed(0)} µs`,
      );
      console.log("\nserver self time by area (share of samples, idle included):");
      for (const [a, ms] of s.areas.slice(0, TOP)) {
        console.log(`  ${pct(ms, s.total).padStart(6)} ${a}`);
      }
      console.log("\nserver top functions by self time:");
      for (const [f, ms] of s.functions) console.log(`  ${pct(ms, s.total).padStart(6)} ${f}`);
      console.log(
        "\nserver top functions of ours by total time (callees within one synchronous stack):",
      );
      for (const [f, ms] of s.totals) console.log(`  ${pct(ms, s.total).padStart(6)} ${f}`);
      if (heap) {
        const a = allocations(heap);
        const perOp = (bytes: number) => `${Math.round(bytes / result.ops)}`.padStart(6);
        console.log(
          `\nserver allocations: ${perOp(a.total).trim()} bytes per operation; by function:`,
        );
        for (const [f, bytes] of a.functions) console.log(`  ${perOp(bytes)} B ${f}`);
      }
    }
  } finally {
    cdp.close();
    await server.kill("SIGTERM");
    await etcd.stop();
  }
}
