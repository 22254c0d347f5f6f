/**
 * Four-letter words answered in ZooKeeper 3.8's shapes: each reply is
 * matched against patterns that also hold for the real ZooKeeper's reply;
 * while etcd is unavailable they answer as a ZooKeeper that is not serving.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { Nzk } from "../_util/nzk.ts";
import { sendFourLetterWord } from "../_util/zookeeper.ts";
import { RawClient } from "../_util/raw_client.ts";
import { exporterMetrics } from "../_util/monitoring.ts";
import { OpCode, Xid } from "../../src/zk/constants.ts";

/**
 * One connection of `cons`; the part from `sid` on once it has a session.
 * ZooKeeper leaves `lcxid` out when the last xid was negative (a ping).
 */
const CONNECTION_LINE =
  /\/[\d.]+:\d+\[[01]\]\(queued=\d+,recved=\d+,sent=\d+(,sid=0x[0-9a-f]+,lop=[A-Z0-9]{4},est=\d+,to=\d+(,lcxid=0x[0-9a-f]+)?,lzxid=0x[0-9a-f]+,lresp=\d+,llat=\d+,minlat=\d+,avglat=\d+,maxlat=\d+)?\)/;

/** The machine's elapsed-time clock (ms since boot), which ZooKeeper's `lresp` reads. */
async function uptimeMs(): Promise<number> {
  return Number((await Deno.readTextFile("/proc/uptime")).split(" ")[0]) * 1000;
}

/** Patterns every line (or the whole text) of each word's reply must match. */
const SHAPES: Record<string, RegExp> = {
  ruok: /^imok$/,
  isro: /^rw$/,
  srvr:
    /^Zookeeper version: .+\nLatency min\/avg\/max: \d+\/[\d.]+\/\d+\nReceived: \d+\nSent: \d+\nConnections: \d+\nOutstanding: \d+\nZxid: 0x[0-9a-f]+\nMode: standalone\nNode count: \d+\n$/,
  stat:
    /^Zookeeper version: .+\nClients:\n( \/[\d.]+:\d+\[[01]\]\(queued=\d+,recved=\d+,sent=\d+\)\n)+\nLatency min\/avg\/max: \d+\/[\d.]+\/\d+\nReceived: \d+\nSent: \d+\nConnections: \d+\nOutstanding: \d+\nZxid: 0x[0-9a-f]+\nMode: standalone\nNode count: \d+\n$/,
  cons: new RegExp(`^( ${CONNECTION_LINE.source}\\n)+\\n$`),
  conf:
    /^clientPort=\d+\nsecureClientPort=-1\ndataDir=.+\ndataDirSize=\d+\ndataLogDir=.+\ndataLogSize=\d+\ntickTime=2000\nmaxClientCnxns=\d+\nminSessionTimeout=4000\nmaxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=0\n$/,
  envi: /^Environment:\nzookeeper\.version=.+\nhost\.name=.+\n([a-z0-9.]+=.*\n)+$/,
  wchs: /^1 connections watching 2 paths\nTotal watches:2\n$/,
  wchc: /^0x[0-9a-f]+\n\t\/4lw(\/eph)?\n\t\/4lw(\/eph)?\n\n$/,
  wchp: /^\/4lw(\/eph)?\n\t0x[0-9a-f]+\n\/4lw(\/eph)?\n\t0x[0-9a-f]+\n\n$/,
  dirs: /^datadir_size: \d+\nlogdir_size: \d+\n$/,
  crst: /^Connection stats reset\.\n$/,
  srst: /^Server stats reset\.\n$/,
};

/** mntr keys that monitoring tools read; each must be present. */
const MNTR_KEYS = [
  "zk_version",
  "zk_server_state",
  "zk_avg_latency",
  "zk_max_latency",
  "zk_min_latency",
  "zk_packets_received",
  "zk_packets_sent",
  "zk_num_alive_connections",
  "zk_outstanding_requests",
  "zk_znode_count",
  "zk_watch_count",
  "zk_ephemerals_count",
  "zk_approximate_data_size",
  "zk_open_file_descriptor_count",
  "zk_uptime",
];

async function fourLetterSpec(t: Deno.TestContext, address: string): Promise<void> {
  const zk = await Nzk.connect(address);
  try {
    await zk.create("/4lw");
    await zk.create("/4lw/eph", null, 1);
    await zk.getData("/4lw", () => {});
    await zk.getData("/4lw/eph", () => {});
    for (const [word, shape] of Object.entries(SHAPES)) {
      await t.step(`${word} answers in ZooKeeper 3.8's shape`, async () => {
        const text = await sendFourLetterWord(address, word);
        assert.match(text, shape, `${word}:\n${text}`);
      });
    }
    await t.step("cons: lresp on the elapsed-time clock, no lcxid after a ping", async () => {
      const [raw, welcome] = await RawClient.session(address);
      try {
        await raw.send(Xid.ping, OpCode.ping);
        assert.equal((await raw.reply())?.xid, Xid.ping);
        const text = await sendFourLetterWord(address, "cons");
        const now = await uptimeMs();
        const line = text.split("\n").find((l) =>
          l.includes(`sid=0x${welcome.sessionId.toString(16)},`)
        );
        assert.ok(line, text);
        assert.match(line, new RegExp(`^ ${CONNECTION_LINE.source}$`));
        assert.match(line, /,lop=PING,/);
        // ZooKeeper shows the last cxid before the ping, never the ping's negative xid.
        assert.doesNotMatch(line, /lcxid=0x-/);
        const lresp = Number(/,lresp=(\d+),/.exec(line)![1]);
        assert.ok(
          lresp > 0 && lresp <= now + 1000 && now - lresp < 600_000,
          `lresp=${lresp}, uptime ${now} ms`,
        );
      } finally {
        raw.close();
      }
    });
    await t.step("mntr has the tab-separated keys monitoring tools read", async () => {
      const text = await sendFourLetterWord(address, "mntr");
      const keys = new Set(text.trim().split("\n").map((l) => l.split("\t")[0]));
      for (const key of MNTR_KEYS) assert.ok(keys.has(key), `mntr has ${key}`);
      for (const line of text.trim().split("\n")) assert.match(line, /^zk_[a-z0-9_]+\t.+$/);
    });
  } finally {
    await zk.close();
  }
}

Deno.test({
  name: "four-letter words answer in ZooKeeper 3.8's shapes (zetcd)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await startStack({ fourLetterWords: Object.keys(SHAPES).concat("mntr") });
  await fourLetterSpec(t, stack.address);
});

Deno.test({
  name:
    "four-letter words answer in ZooKeeper 3.8's shapes (the ZooKeeper 3.8 oracle, checking the spec)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using zookeeper = await startZooKeeper();
  await fourLetterSpec(t, zookeeper.hostPort);
});

Deno.test({
  name: "a four-letter word outside --4lw-commands gets ZooKeeper's refusal",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({ fourLetterWords: ["ruok"] });
  assert.equal(await sendFourLetterWord(stack.address, "ruok"), "imok");
  assert.equal(
    await sendFourLetterWord(stack.address, "srvr"),
    "srvr is not executed because it is not in the whitelist.\n",
  );
});

/** ZooKeeper's reply to the words that need a serving server, while it does not serve. */
const NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n";

/** The words that answer {@link NOT_SERVING} while ZooKeeper does not serve. */
const NEED_SERVING = [
  "srvr",
  "stat",
  "mntr",
  "cons",
  "conf",
  "crst",
  "srst",
  "wchs",
  "wchc",
  "wchp",
  "dump",
  "dirs",
];

/** Polls `word` until its reply passes `ok` (at most 15 s). */
async function waitForReply(address: string, word: string, ok: (text: string) => boolean) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await sendFourLetterWord(address, word).catch(() => "");
    if (ok(text)) return text;
    assert.ok(Date.now() < deadline, `${word} still answers ${JSON.stringify(text)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test({
  name: "while etcd is unavailable, the words and admin commands answer as a ZooKeeper not serving",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await startStack({
    fourLetterWords: [...NEED_SERVING, "ruok", "isro", "envi"],
    admin: { hostname: "127.0.0.1", port: 0 },
  });
  const monitor = async () =>
    await (await fetch(`http://${stack.server.adminAddress}/commands/monitor`)).json();
  assert.equal((await monitor()).error, null);
  await stack.etcd.freeze();
  try {
    // isro tells at once, without asking etcd, when the server stops serving.
    await waitForReply(stack.address, "isro", (text) => text === "null");
    for (const word of NEED_SERVING) {
      assert.equal(await sendFourLetterWord(stack.address, word), NOT_SERVING, word);
    }
    assert.equal(await sendFourLetterWord(stack.address, "isro"), "null");
    assert.equal(await sendFourLetterWord(stack.address, "ruok"), "imok");
    assert.match(await sendFourLetterWord(stack.address, "envi"), /^Environment:\n/);
    // A Prometheus exporter tells this reply from a broken one.
    const mntr = await sendFourLetterWord(stack.address, "mntr");
    assert.equal(exporterMetrics(mntr).kind, "not serving");
    assert.deepEqual(await monitor(), { command: "monitor", error: NOT_SERVING.trim() });
  } finally {
    stack.etcd.signal("SIGCONT");
  }
  await waitForReply(stack.address, "srvr", (text) => text.includes("Mode: standalone"));
  assert.equal((await monitor()).error, null);
});
