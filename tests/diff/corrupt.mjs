#!/usr/bin/env node
// corrupt.mjs KIND < trace > corrupted-trace
// Changes exactly one expected output of a gen.mjs trace (run.sh --self-check uses it to show
// that diff_replay notices). Exits 3 when the trace has no line the corruption applies to.
import { readFileSync } from 'node:fs';

const kind = process.argv[2];
const lines = readFileSync(0, 'utf8').split('\n').filter((l) => l.length > 0);
const recs = lines.map((l) => JSON.parse(l));

const first = (pred) => recs.findIndex(pred);
const corruptions = {
    'master-from': [(r) => r.op === 'master', (r) => { r.result.applied.from += 1; }],
    'master-doc': [(r) => r.op === 'master', (r) => { r.master.document.corrupt = 1; }],
    'created-id': [(r) => r.op === 'apply' && r.result.createdId !== undefined,
        (r) => { r.result.createdId = String(Number(r.result.createdId) + 1000); }],
    'proxy-doc': [(r) => r.op === 'apply' && r.result.isSuccess,
        (r) => { r.proxyState.document.corrupt = true; }],
    'ids-changed': [(r) => r.op === 'end' && r.sync !== undefined,
        (r) => { r.result.idsChanged = !r.result.idsChanged; }],
    'begin-batch': [(r) => r.op === 'begin' && r.batch && r.batch.completions.length > 1,
        (r) => { r.batch.completions.pop(); }],
    'error-message': [(r) => r.op === 'apply' && !r.result.isSuccess,
        (r) => { r.result.error += '!'; }],
    'queue-len': [(r) => r.op === 'apply', (r) => { r.proxyState.queueLen += 1; }],
    'mapped-paths': [(r) => r.op === 'master' && r.result.sync && Object.keys(r.result.sync.mappedPaths).length > 0,
        (r) => { const m = r.result.sync.mappedPaths; delete m[Object.keys(m)[0]]; }],
    'truncated': [(r) => r.op === 'done', null],
};
const c = corruptions[kind];
if (!c) {
    process.stderr.write(`corrupt.mjs: unknown kind ${kind}\n`);
    process.exit(2);
}
const at = first(c[0]);
if (at < 0) {
    process.stderr.write(`corrupt.mjs: no line to apply ${kind} to\n`);
    process.exit(3);
}
let out = recs;
if (c[1]) c[1](recs[at]);
else out = recs.slice(0, at);
process.stdout.write(out.map((r) => JSON.stringify(r)).join('\n') + '\n');
