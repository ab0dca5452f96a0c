#!/usr/bin/env node
// gen.mjs - drives the reference implementation (npm `flushout`, pinned in package.json)
// with a seeded random workload and prints a trace, one JSON object per line, that
// diff_replay.c replays against the C core and compares output by output.
//
//   node gen.mjs --seed S [--flushes N] [--proxies P] [--history on|off|retention|truncate]
//                [--intercept none|master|proxy|both] [--initial empty|doc]
//
// Options left out are drawn from the seed, so a range of seeds covers every mode.
//
// The workload stays inside the domain where the reference is defined (see
// shared/FLUSHOUT-SEMANTICS.md, last section), by construction rather than by filtering:
//  - keys are typed. MAP_KEYS and generated IDs only ever hold maps, SCALAR_KEYS hold
//    strings, numbers or booleans (or a map that a parentDefault put there), LEAF_KEYS hold
//    anything, null and arrays included. Paths only go through MAP_KEYS, SCALAR_KEYS and IDs,
//    so no proxy or master ever walks into a null or an array, whatever the interleaving;
//  - no key is a property of Object.prototype, none contains ',' (mappedPaths' separator);
//  - deletes always have a non-empty path;
//  - numbers are safe integers or non-integral doubles, never -0.
//
// Trace lines (all reference outputs with Delete spelled "delete"):
//   {"op":"config", seed, proxies, history, retention, intercept, initial}
//   {"op":"apply",  i, proxy, command, result, proxyState, masterCount}
//   {"op":"begin",  i, proxy, batch | error, proxyState, masterCount}
//   {"op":"master", i, proxy, batch, result, master: {commandCount, document}}
//   {"op":"end",    i, proxy, sync?, result: {idsChanged, error?}, proxyState, masterCount}
//   {"op":"cancel", i, proxy, proxyState, masterCount}
//   {"op":"join",   i, proxy, snapshot, proxyState, masterCount}
//   {"op":"done",   i, steps, flushes}
// proxyState = {commandCount, document, committedCount, committedDocument (end, join only),
//               queueLen, flushing}.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Master, Proxy, CommandAction } = require('flushout');

// ---- options ------------------------------------------------------------------------------

function parseArgs(argv) {
    const o = {};
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i];
        if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
        const name = a.slice(2);
        const val = argv[i + 1];
        if (val === undefined) throw new Error(`${a} needs a value`);
        o[name] = val;
        i++;
    }
    return o;
}

// mulberry32: small, fast, good enough for test workloads; no dependencies.
function mulberry32(seed) {
    let a = seed >>> 0;
    return function next() {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

const args = parseArgs(process.argv);
const seed = Number(args.seed ?? 1) >>> 0;
const rnd = mulberry32(seed);
const int = (n) => Math.floor(rnd() * n);
const pick = (arr) => arr[int(arr.length)];
const chance = (p) => rnd() < p;

const cfg = {
    op: 'config',
    seed,
    flushes: Number(args.flushes ?? 300),
    proxies: Number(args.proxies ?? 2 + int(4)),
    history: args.history ?? pick(['on', 'on', 'off', 'retention', 'retention', 'truncate']),
    retention: 0,
    intercept: args.intercept ?? pick(['none', 'master', 'proxy', 'both', 'master']),
    initial: args.initial ?? (chance(0.3) ? 'doc' : 'empty'),
};
cfg.retention = cfg.history === 'retention' || cfg.history === 'truncate' ? 2 + int(20) : 0;

// ---- values -------------------------------------------------------------------------------

const MAP_KEYS = ['m', 'child', 'keep', '\u043a\u043b\u044e\u0447', '01', '7', '12', '', 'a b',
    'q"k', 'x\\y', '\u{1f600}'];
const SCALAR_KEYS = ['s', 'n', 'b', 't\u00e9', 'reject', 'rewrite', 'f'];
const LEAF_KEYS = ['nul', 'arr', 'any'];
const NAV_KEYS = new Set([...MAP_KEYS, ...SCALAR_KEYS]);
const STRINGS = ['', 'x', 'plain text', 'with "quotes"', 'back\\slash', 'new\nline\ttab',
    '\u0001\u001f controls', '\u00e9t\u00e9', '\u65e5\u672c\u8a9e', '\u{1f680} rocket',
    'a string that is longer than fourteen bytes', '/slash/', '<tag>&amp;', '12', '-0'];

function scalar() {
    switch (int(6)) {
    case 0: return pick(STRINGS);
    case 1: return int(2001) - 1000;
    case 2: return pick([Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 40, 0, 1]);
    case 3: return (int(20001) - 10000) / 8 + 0.0625; // non-integral, exact in binary
    case 4: return pick([0.1, -2.5e-7, 1.5e300, 123456.789, 1e21, 3.14159]);
    default: return chance(0.5);
    }
}

function leaf(depth) {
    switch (int(5)) {
    case 0: return null;
    case 1: {
        const n = int(4);
        const a = [];
        for (let i = 0; i < n; i++)
            a.push(depth < 3 && chance(0.3) ? (chance(0.5) ? mapValue(depth + 1) : leaf(depth + 1))
                : (chance(0.2) ? null : scalar()));
        return a;
    }
    default: return scalar();
    }
}

function mapValue(depth, maxKeys = 3) {
    const o = {};
    const n = int(maxKeys + 1);
    for (let i = 0; i < n; i++) {
        const kind = int(10);
        if (kind < 3 && depth < 3) o[pick(MAP_KEYS)] = mapValue(depth + 1, 2);
        else if (kind < 7) o[pick(SCALAR_KEYS)] = scalar();
        else if (kind < 9) o[pick(LEAF_KEYS)] = leaf(depth + 1);
        else if (depth < 3) o[String(1 + int(40))] = mapValue(depth + 1, 1); // an ID-like key
    }
    return o;
}

// Props: mostly without the interceptor's trigger keys, so that they mean something.
// Sometimes with a key that a sequential ID is about to take (`count` is the proxy's), so
// that creates collide with it on the proxy, on the master, or both.
function props(count) {
    const p = mapValue(1);
    if (chance(0.12)) p[String(count + 1 + int(4))] = mapValue(2, 1);
    if (!chance(0.15)) delete p.reject;
    if (!chance(0.15)) delete p.rewrite;
    return p;
}

const isMap = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
const navigable = (k) => NAV_KEYS.has(k) || /^[0-9]+$/.test(k);

// Paths (arrays) of every map and every navigable scalar under `doc`.
function collect(doc) {
    const maps = [[]];
    const scalars = [];
    const walk = (node, path, depth) => {
        for (const k of Object.keys(node)) {
            if (!navigable(k)) continue;
            const v = node[k];
            const p = path.concat(k);
            if (isMap(v)) {
                maps.push(p);
                if (depth < 8) walk(v, p, depth + 1);
            } else if (isScalar(v)) {
                scalars.push(p);
            }
        }
    };
    walk(doc, [], 0);
    return { maps, scalars };
}

function get(doc, path) {
    let n = doc;
    for (const k of path) {
        if (!isMap(n)) return undefined;
        n = n[k];
    }
    return n;
}

function size(v) {
    if (Array.isArray(v)) return v.reduce((s, x) => s + size(x), 1);
    if (isMap(v)) return Object.values(v).reduce((s, x) => s + size(x), 1);
    return 1;
}

// ---- the interceptor both sides implement -----------------------------------------------

const FULL = 6; // a create into a nested map with this many keys is rejected

function interceptor(document, command) {
    const p = command.props;
    const has = (k) => p != null && Object.prototype.hasOwnProperty.call(p, k);
    const path = command.path || [];
    if (command.action === CommandAction.Update && has('reject'))
        return { rejection: 'rejected: update carries reject' };
    if (command.action === CommandAction.Delete && path.length > 0 && path[path.length - 1] === 'keep')
        return { rejection: 'rejected: keep is protected' };
    if (command.action === CommandAction.Create && path.length > 0) {
        const target = get(document, path);
        if (isMap(target) && Object.keys(target).length >= FULL)
            return { rejection: 'rejected: container full' };
    }
    if ((command.action === CommandAction.Create || command.action === CommandAction.Update) && has('rewrite'))
        return { newProps: { rewritten: true } };
    return undefined;
}

// ---- the model under test ----------------------------------------------------------------

let initial = { commandCount: 0, document: {} };
if (cfg.initial === 'doc') {
    initial = { commandCount: int(3) === 0 ? 0 : 1 + int(50), document: mapValue(0, 5) };
}
const clone = (v) => JSON.parse(JSON.stringify(v));
cfg.initialSnapshot = clone(initial);

const hist = []; // hist[i] took the master from initial.commandCount + i to + i + 1
const base = initial.commandCount;
let historyProvider;
if (cfg.history !== 'off') {
    historyProvider = async (from, to) => {
        if (from < base) return undefined;
        if (cfg.history === 'retention' && from < to - cfg.retention) return undefined;
        if (cfg.history === 'truncate' && from < to - cfg.retention)
            return clone(hist.slice(to - base - cfg.retention, to - base)); // too short: full sync
        return clone(hist.slice(from - base, to - base));
    };
}
const master = new Master(clone(initial), {
    sequentialIds: true,
    historyProvider,
    interceptor: cfg.intercept === 'master' || cfg.intercept === 'both' ? interceptor : undefined,
});
const proxyConfig = {
    sequentialIds: true,
    interceptor: cfg.intercept === 'proxy' || cfg.intercept === 'both' ? interceptor : undefined,
};
// Each proxy: {proxy, flight: null | {batch, result: undefined | ApplyResult copy},
//              recent: paths it created last}.
const proxies = [];
for (let i = 0; i < cfg.proxies; i++) proxies.push({ proxy: new Proxy(clone(initial), proxyConfig), flight: null, recent: [] });
const MAX_PROXIES = cfg.proxies + 3;

// Paths seen anywhere recently, used for commands on proxies that may not know them.
let pool = [];
function remember(doc) {
    const { maps } = collect(doc);
    for (let i = 0; i < 4 && maps.length > 1; i++) pool.push(pick(maps.slice(1)));
    if (pool.length > 200) pool = pool.slice(-100);
}

// ---- output -------------------------------------------------------------------------------

const out = [];
let outBytes = 0;
process.stdout.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(0); // the replay stopped at a mismatch
    throw e;
});
const replacer = (k, v) => (k === 'action' && v === 'detete' ? 'delete' : v);
function emit(obj) {
    const line = JSON.stringify(obj, replacer);
    out.push(line);
    outBytes += line.length;
    if (outBytes > 1 << 20) flush();
}
function flush() {
    if (out.length) process.stdout.write(out.join('\n') + '\n');
    out.length = 0;
    outBytes = 0;
}

// The committed document only changes at endFlush (and starts at join): recorded there,
// to keep traces small. Everything else after every operation on the proxy.
function proxyState(p, withCommitted) {
    const st = {
        commandCount: p.getCommandCount(),
        document: p.getDocument(),
        committedCount: p.lastCommittedUpdateCount,
        queueLen: p.uncommittedCompletions.length,
        flushing: p.isFlushInProgress(),
    };
    if (withCommitted) st.committedDocument = JSON.parse(p.lastCommittedDocument);
    return st;
}

// ---- commands -----------------------------------------------------------------------------

function freshKey(node) {
    for (let i = 0; i < 10; i++) {
        const k = chance(0.5) ? pick(MAP_KEYS) : String(100 + int(900));
        if (!isMap(node) || !(k in node)) return k;
    }
    return 'fresh' + int(1000);
}

function withPath(c, path) {
    if (path.length === 0 && chance(0.3)) return c; // no `path` at all means the root
    return { ...c, path };
}

function makeCommand(doc, count, recent) {
    const { maps, scalars } = collect(doc);
    // Prefer what this proxy created last (possibly still in flight, so possibly remapped by
    // the master when the flush lands), then the deepest maps, then any map.
    const fresh = recent.filter((p) => isMap(get(doc, p)));
    const anyMap = () => {
        const y = rnd();
        if (y < 0.35 && fresh.length) return pick(fresh);
        if (y < 0.7) return maps[maps.length - 1 - int(Math.min(maps.length, 6))];
        return pick(maps);
    };
    const big = size(doc) > 60;
    const r = rnd();
    const kind = r < (big ? 0.3 : 0.5) ? 'create' : r < (big ? 0.6 : 0.78) ? 'update' : 'delete';
    const x = rnd();
    if (kind === 'create') {
        const c = { action: CommandAction.Create };
        if (chance(0.8)) c.props = props(count);
        let path;
        if (x < 0.3) {
            path = []; // where proxies' sequential IDs collide most
            if (chance(0.1)) c.parentDefault = mapValue(1);
        } else if (x < 0.55) {
            path = anyMap();
            if (chance(0.15)) c.parentDefault = mapValue(1);
        } else if (x < 0.7) {
            const parent = anyMap();
            path = parent.concat(freshKey(get(doc, parent)));
            if (chance(0.7)) c.parentDefault = mapValue(1);
        } else if (x < 0.76) {
            // The parent is missing, or is a scalar: parentDefault cannot help.
            const parent = scalars.length && chance(0.4) ? pick(scalars) : anyMap().concat('zz' + int(5));
            path = parent.concat(pick(MAP_KEYS));
            if (chance(0.7)) c.parentDefault = mapValue(1);
        } else if (x < 0.86 && scalars.length) {
            path = pick(scalars);
            if (chance(0.6)) c.parentDefault = mapValue(1);
        } else {
            path = pool.length ? pick(pool) : anyMap();
            if (chance(0.3)) c.parentDefault = mapValue(1);
        }
        return withPath(c, path);
    }
    if (kind === 'update') {
        const c = { action: CommandAction.Update };
        const pr = rnd();
        if (pr < 0.8) c.props = props(count);
        else if (pr < 0.9) c.props = {};
        let path;
        if (x < 0.6) path = anyMap();
        else if (x < 0.75) { const parent = anyMap(); path = parent.concat(freshKey(get(doc, parent))); }
        else if (x < 0.85 && scalars.length) path = pick(scalars);
        else path = pool.length ? pick(pool) : anyMap();
        return withPath(c, path);
    }
    const c = { action: CommandAction.Delete };
    let path;
    if (x < 0.6) {
        const parent = big && chance(0.5) ? [] : anyMap();
        const keys = Object.keys(get(doc, parent));
        path = parent.concat(keys.length ? pick(keys) : freshKey(undefined));
    } else if (x < 0.72) {
        const parent = anyMap();
        path = parent.concat(freshKey(get(doc, parent)));
    } else if (x < 0.82) {
        const parent = scalars.length && chance(0.4) ? pick(scalars) : anyMap().concat('zz' + int(5));
        path = parent.concat('m');
    } else {
        path = pool.length ? pick(pool) : ['m'];
    }
    if (path.length === 0) path = ['m'];
    return { ...c, path };
}

// ---- the run ------------------------------------------------------------------------------

let step = 0;
let flushes = 0;

function base_(op, k) {
    return { op, i: ++step, proxy: k };
}

function finishProxyOp(rec, k) {
    rec.proxyState = proxyState(proxies[k].proxy, rec.op === 'end' || rec.op === 'join');
    rec.masterCount = master.getSnapshot().commandCount;
    emit(rec);
}

function doApply(k) {
    const p = proxies[k].proxy;
    const e = proxies[k];
    const command = makeCommand(p.getDocument(), p.getCommandCount(), e.recent);
    const rec = base_('apply', k);
    rec.command = clone(command);
    rec.result = p.apply(command);
    if (rec.result.isSuccess && rec.result.createdId !== undefined) {
        e.recent.push((command.path || []).concat(rec.result.createdId));
        if (e.recent.length > 8) e.recent.shift();
    }
    finishProxyOp(rec, k);
    remember(p.getDocument());
}

function doBegin(k) {
    const e = proxies[k];
    const rec = base_('begin', k);
    try {
        const batch = e.proxy.beginFlush();
        e.flight = { batch, result: undefined };
        rec.batch = batch;
    } catch (err) {
        rec.error = String(err.message);
    }
    finishProxyOp(rec, k);
}

async function doMaster(k) {
    const e = proxies[k];
    const rec = base_('master', k);
    // What travels over the wire is a copy: the proxy's own objects stay its own.
    const batch = clone(e.flight.batch);
    rec.batch = batch;
    const result = await master.apply(batch);
    // Copy now: a full sync's `latest` is the master's live document.
    e.flight.result = clone(result);
    rec.result = result;
    const applied = result.applied.completions;
    for (const c of applied) hist.push(clone(c));
    const snap = master.getSnapshot();
    if (hist.length !== snap.commandCount - base) throw new Error('history out of step');
    rec.master = { commandCount: snap.commandCount, document: snap.document };
    emit(rec);
    flushes++;
    remember(snap.document);
}

function doEnd(k) {
    const e = proxies[k];
    const rec = base_('end', k);
    const sync = e.flight ? e.flight.result.sync : undefined;
    if (sync) rec.sync = sync;
    rec.result = e.proxy.endFlush(sync ? clone(sync) : undefined);
    if (e.flight && rec.result.error) throw new Error(`endFlush failed: ${rec.result.error}`);
    e.flight = null;
    finishProxyOp(rec, k);
}

function doCancel(k) {
    const e = proxies[k];
    const rec = base_('cancel', k);
    e.proxy.cancelFlush(e.flight.batch);
    e.flight = null;
    finishProxyOp(rec, k);
}

function doJoin() {
    const k = proxies.length;
    const rec = base_('join', k);
    const snap = clone(master.getSnapshot());
    rec.snapshot = snap;
    proxies.push({ proxy: new Proxy(clone(snap), proxyConfig), flight: null, recent: [] });
    finishProxyOp(rec, k);
}

async function main() {
    emit(cfg);
    while (flushes < cfg.flushes) {
        const r = rnd();
        const k = int(proxies.length);
        const e = proxies[k];
        if (r < 0.45) doApply(k);
        else if (r < 0.58) { if (!e.flight) doBegin(k); }
        else if (r < 0.74) { if (e.flight && !e.flight.result) await doMaster(k); }
        else if (r < 0.90) { if (e.flight && e.flight.result) doEnd(k); }
        else if (r < 0.94) { if (e.flight && !e.flight.result) doCancel(k); }
        else if (r < 0.95) { if (e.flight && e.flight.result) doCancel(k); } // the ack was lost
        else if (r < 0.955) { if (e.flight) doBegin(k); } // a second begin fails
        else if (r < 0.96) { if (!e.flight) doEnd(k); } // no flush in progress
        else if (r < 0.963) { if (proxies.length < MAX_PROXIES) doJoin(); }
    }
    // Land every flight so the run ends in a quiet state.
    for (let k = 0; k < proxies.length; k++) {
        const e = proxies[k];
        if (!e.flight) continue;
        if (!e.flight.result) await doMaster(k);
        doEnd(k);
    }
    emit({ op: 'done', i: ++step, steps: step, flushes });
    flush();
}

main().catch((err) => {
    flush();
    process.stderr.write(`gen.mjs (seed ${seed}): ${err.stack}\n`);
    process.exit(2);
});
