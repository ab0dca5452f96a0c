// ref_bench.mjs - the master workload of fo-microbench on the reference implementation
// (npm flushout 1.1.1, installed from package-lock.json by `npm ci` in this folder).
//
// The generator mirrors workload.c draw for draw (mulberry32, same order), so both sides
// build the same document and apply the same batches. Each repetition builds a fresh
// Master holding --items items through master.apply (untimed), then times --batches
// batches of 10 mixed completions, awaiting each apply; rounds of that until --min-ms of
// timed work make one repetition. Prints one JSON object.
//
// usage: node ref_bench.mjs [--items N] [--batches N] [--reps N] [--seed N] [--warmup N]
//                          [--min-ms N] [--cpu-time 0|1]
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Master } = require('flushout');
const flushoutVersion = require('flushout/package.json').version;

const BATCH_SIZE = 10;

function parseArgs(argv) {
  const o = { items: 10000, batches: 1000, reps: 11, seed: 20240601, warmup: 1, 'min-ms': 200, 'cpu-time': 0 };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const v = Number(argv[i + 1]);
    if (!(key in o) || !Number.isInteger(v) || v < 0) {
      throw new Error(`bad option ${argv[i]} ${argv[i + 1]}`);
    }
    o[key] = v;
  }
  return o;
}

// mulberry32: workload.c's fo_bench_rng_next.
function makeGen(seed) {
  let a = seed | 0;
  const g = { serial: 0, ids: [] };
  g.next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  g.below = (n) => Math.floor((g.next() * n) / 4294967296);
  return g;
}

function genCreate(g) {
  const hi = g.next() >>> 11;
  const lo = g.next();
  const id = String(hi * 4294967296 + lo);
  g.serial += 1;
  g.ids.push(id);
  return {
    command: {
      action: 'create',
      path: [],
      props: { title: `item ${g.serial}`, done: false, n: g.serial },
    },
    createdId: id,
  };
}

function genUpdate(g) {
  const id = g.ids[g.below(g.ids.length)];
  const done = (g.next() & 1) !== 0;
  const n = g.below(1000000);
  return { command: { action: 'update', path: [id], props: { done, n } } };
}

function genBatch(g, from, n, mixed) {
  const completions = [];
  for (let i = 0; i < n; i++) {
    const create = !mixed || g.ids.length === 0 || (g.next() & 1) === 0;
    completions.push(create ? genCreate(g) : genUpdate(g));
  }
  return { from, completions };
}

async function build(buildBatches) {
  const master = new Master({ commandCount: 0, document: {} });
  for (const b of buildBatches) {
    const r = await master.apply(b);
    if (r.errors || r.sync) throw new Error('build: unexpected errors or sync');
  }
  return master;
}

// Nanoseconds: monotonic, or this process's CPU time (all threads: GC helpers included).
function makeClock(cpu) {
  if (!cpu) return () => process.hrtime.bigint();
  return () => {
    const u = process.cpuUsage();
    return BigInt(u.user + u.system) * 1000n;
  };
}

async function main() {
  const o = parseArgs(process.argv);
  const now = makeClock(o['cpu-time']);
  const g = makeGen(o.seed);
  const buildBatches = [];
  for (let done = 0; done < o.items; done += BATCH_SIZE) {
    buildBatches.push(genBatch(g, done, Math.min(BATCH_SIZE, o.items - done), false));
  }
  const batches = [];
  for (let i = 0; i < o.batches; i++) {
    batches.push(genBatch(g, o.items + i * BATCH_SIZE, BATCH_SIZE, true));
  }

  const rates = [];
  let errors = 0;
  let syncs = 0;
  for (let rep = 0; rep < o.warmup + o.reps; rep++) {
    // Rounds of (fresh master of `items` items, untimed; the batches, timed) until the
    // timed part reaches --min-ms, as fo-microbench does.
    let timedNs = 0n;
    let cmds = 0;
    do {
      const master = await build(buildBatches);
      const t0 = now();
      for (const b of batches) {
        const r = await master.apply(b);
        if (r.errors) errors += r.errors.length;
        if (r.sync) syncs += 1;
      }
      timedNs += now() - t0;
      cmds += o.batches * BATCH_SIZE;
    } while (Number(timedNs) < o['min-ms'] * 1e6);
    if (rep >= o.warmup) {
      rates.push(cmds / (Number(timedNs) / 1e9));
    }
  }
  rates.sort((x, y) => x - y);
  const n = rates.length;
  const median = n % 2 ? rates[(n - 1) / 2] : (rates[n / 2 - 1] + rates[n / 2]) / 2;
  process.stdout.write(
    JSON.stringify({
      commands_per_sec: median,
      min: rates[0],
      max: rates[n - 1],
      reps: n,
      errors,
      syncs,
      node: process.version,
      flushout: flushoutVersion,
    }) + '\n',
  );
}

main().catch((e) => {
  process.stderr.write(`ref_bench: ${e.stack || e}\n`);
  process.exit(1);
});
