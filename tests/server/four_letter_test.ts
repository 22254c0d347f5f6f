/**
 * Four-letter words answered in ZooKeeper 3.8's shapes: each reply is
 * matched against patterns that also hold for the real ZooKeeper's reply.
 */

import assert from "node:assert/strict";
import { startStack } from "../_util/zetcd.ts";
import { startZooKeeper } from "../_util/zookeeper.ts";
import { Nzk } from "../_util/nzk.ts";
import { sendFourLetterWord } from "../_util/zookeeper.ts";

/** Patterns every line (or the whole text) of each word's reply must match. */
const SHAPES: Record<string, RegExp> = {
  ruok: /^imok$/,
  isro: /^rw$/,
  srvr:
    /^Zookeeper version: .+\nLatency min\/avg\/max: \d+\/[\d.]+\/\d+\nReceived: \d+\nSent: \d+\nConnections: \d+\nOutstanding: \d+\nZxid: 0x[0-9a-f]+\nMode: standalone\nNode count: \d+\n$/,
  stat:
    /^Zookeeper version: .+\nClients:\n( \/[\d.]+:\d+\[[01]\]\(queued=\d+,recved=\d+,sent=\d+\)\n)+\nLatency min\/avg\/max: \d+\/[\d.]+\/\d+\nReceived: \d+\nSent: \d+\nConnections: \d+\nOutstanding: \d+\nZxid: 0x[0-9a-f]+\nMode: standalone\nNode count: \d+\n$/,
  cons:
    /^( \/[\d.]+:\d+\[[01]\]\(queued=\d+,recved=\d+,sent=\d+(,sid=0x[0-9a-f]+,lop=[A-Z0-9]{4},est=\d+,to=\d+,lcxid=0x[0-9a-f]+,lzxid=0x[0-9a-f]+,lresp=\d+,llat=\d+,minlat=\d+,avglat=\d+,maxlat=\d+)?\)\n)+\n$/,
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
