// console_cost.mjs - what the console's metrics feed costs the hub: CPU time of the hub
// process (utime + stime from /proc/PID/stat) over a window with N feeds open against the
// same window with none. The hub holds MODELS hot models (the feed's per-model rates walk
// them every second) and is otherwise idle, so the difference is the feed's cost.
//   node bench/console_cost.mjs [--hub build/release/hub/flushout-hub] [--seconds 60]
//        [--feeds 10] [--models 1000]
// Needs clients/console's node_modules (npm ci there). Prints one JSON line.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startHub, sleep } from "../clients/js/test/hub.js";
import { connect, subscribe, flushUpdate } from "../clients/console/test/rawws.js";

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const seconds = Number(arg("seconds", 60));
const nfeeds = Number(arg("feeds", 10));
const nmodels = Number(arg("models", 1000));
process.env.FLUSHOUT_HUB = resolve(arg("hub", resolve(here, "../build/release/hub/flushout-hub")));

const tck = 100; // sysconf(_SC_CLK_TCK) on Linux
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" "); // fields from 3 (state) on
  return (Number(rest[11]) + Number(rest[12])) / tck; // utime (14), stime (15)
}

async function windowCpu(pid) {
  const t0 = cpuSeconds(pid);
  const w0 = process.hrtime.bigint();
  await sleep(seconds * 1000);
  const wall = Number(process.hrtime.bigint() - w0) / 1e9;
  return { cpu: cpuSeconds(pid) - t0, wall };
}

const hub = await startHub({ store: "memory" });
try {
  const w = await connect(hub.port);
  for (let i = 0; i < nmodels; i++) {
    const model = `cost:${i}`;
    const count = await subscribe(w, model, "w");
    await flushUpdate(w, model, i + 1, count, { i });
    w.send({ t: "unsub", model, rid: 3 });
    await w.next((m) => m.rid === 3);
  }
  await sleep(2000);
  const idle = await windowCpu(hub.pid);
  const feeds = [];
  let samples = 0;
  for (let i = 0; i < nfeeds; i++) {
    const f = await connect(hub.port, { path: "/v1/console/feed", protocol: null });
    f.sock.on("data", () => samples++);
    feeds.push(f);
  }
  await sleep(2000);
  const withFeeds = await windowCpu(hub.pid);
  for (const f of feeds) f.close();
  w.close();
  const pct = (x) => +((x.cpu / x.wall) * 100).toFixed(3);
  console.log(
    JSON.stringify({
      seconds,
      models: nmodels,
      feeds: nfeeds,
      cpu_idle_s: +idle.cpu.toFixed(2),
      cpu_feeds_s: +withFeeds.cpu.toFixed(2),
      core_pct_idle: pct(idle),
      core_pct_feeds: pct(withFeeds),
      feed_cost_pct_of_core: +(pct(withFeeds) - pct(idle)).toFixed(3),
      chunks_received: samples,
    })
  );
} finally {
  await hub.stop();
}
