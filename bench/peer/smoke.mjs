#!/usr/bin/env node
// smoke.mjs - starts server.mjs on port 0 and checks the wire contract with two (then
// three) clients: hello/welcome, sub/snap, flush/ack + push to the other subscriber,
// "delete" on the wire, exactly-once retries, stale-from syncs, create-ID collisions
// (mappedPaths), get/history/unsub, presence, error frames, /healthz, SIGTERM -> exit 0.
// Exit status 0 when every check passes, 1 otherwise.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { encode, decode } from '@msgpack/msgpack';

const here = dirname(fileURLToPath(import.meta.url));
let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
  } catch (e) {
    failed++;
    console.error(`FAIL ${name}: ${e.message}`);
  }
}

function startServer() {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(here, 'server.mjs'), '--listen', '127.0.0.1:0', '--max-queue', '65536'], {
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 10000);
    p.stderr.on('data', (d) => {
      err += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ proc: p, port: Number(m[1]) });
      }
    });
    p.on('exit', (code) => reject(new Error(`server exited (${code}): ${err}`)));
  });
}

class Client {
  constructor(port) {
    this.frames = [];
    this.waiters = [];
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, 'flushout.v1');
    this.ws.on('message', (data, isBinary) => {
      const msg = isBinary ? decode(data) : { t: '<text>', data: String(data) };
      this.frames.push(msg);
      this.wake();
    });
    this.opened = new Promise((res, rej) => {
      this.ws.once('open', res);
      this.ws.once('error', rej);
    });
  }
  wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  send(obj) {
    this.ws.send(encode(obj));
  }
  // The next frame (in order); fails after 3 s.
  async next(what = 'frame') {
    const deadline = Date.now() + 3000;
    while (!this.frames.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}`);
      await new Promise((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
    return this.frames.shift();
  }
  async request(obj) {
    this.send(obj);
    return this.next(obj.t);
  }
  // Resolves with no frame pending after `ms` (checks that nothing else arrived).
  async quiet(ms = 150) {
    await new Promise((r) => setTimeout(r, ms));
    return this.frames.splice(0);
  }
  close() {
    this.ws.close();
  }
}

const create = (path, id, props, parentDefault) => {
  const command = { action: 'create', props };
  if (path) command.path = path;
  if (parentDefault) command.parentDefault = parentDefault;
  return { command, createdId: id };
};

async function main() {
  const { proc, port } = await startServer();
  const exited = new Promise((res) => proc.on('exit', (code, sig) => res({ code, sig })));
  try {
    await run(port);
  } catch (e) {
    failed++;
    console.error(`FAIL (aborted): ${e.stack}`);
  }
  proc.kill('SIGTERM');
  const { code, sig } = await exited;
  await check('SIGTERM exits 0', () => assert.equal(code, 0, `code ${code} signal ${sig}`));
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

async function run(port) {
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  const body = await health.text();
  await check('GET /healthz', () => assert.equal(`${health.status} ${body.trim()}`, '200 ok'));

  const a = new Client(port);
  const b = new Client(port);
  await Promise.all([a.opened, b.opened]);
  await check('subprotocol', () => assert.equal(a.ws.protocol, 'flushout.v1'));

  // Requests before hello are refused, with the rid echoed.
  let r = await a.request({ t: 'sub', rid: 1, model: 'todo' });
  await check('sub before hello', () => assert.deepEqual([r.t, r.code, r.rid], ['error', 'bad_request', 1]));

  r = await a.request({ t: 'hello', rid: 2, client: 'smoke-a' });
  await check('welcome', () => {
    assert.equal(r.t, 'welcome');
    assert.equal(r.rid, 2);
    assert.equal(typeof r.session, 'string');
    assert.equal(typeof r.server, 'string');
    assert.equal(r.maxFrame, 1 << 20);
  });
  const sessionA = r.session;
  r = await b.request({ t: 'hello', client: 'smoke-b' });
  await check('welcome without rid', () => assert.ok(r.t === 'welcome' && !('rid' in r)));

  r = await a.request({ t: 'sub', rid: 3, model: 'todo' });
  await check('snap of a new model', () =>
    assert.deepEqual(r, { t: 'snap', rid: 3, model: 'todo', snapshot: { commandCount: 0, document: {} } }));
  r = await b.request({ t: 'sub', rid: 1, model: 'todo' });
  await check('second subscriber snap', () => assert.equal(r.snapshot.commandCount, 0));

  // A flushes a create with parentDefault: ack to A, push to B.
  const batch1 = { from: 0, completions: [create(['todos'], 'a1', { title: 'milk', n: 1 }, {})] };
  r = await a.request({ t: 'flush', rid: 10, model: 'todo', seq: 1, batch: batch1 });
  await check('ack of a clean flush', () =>
    assert.deepEqual(r, { t: 'ack', rid: 10, model: 'todo', seq: 1, result: { applied: batch1 } }));
  r = await b.next('push');
  await check('push to the other subscriber', () => assert.deepEqual(r, { t: 'push', model: 'todo', diff: batch1 }));

  // B updates and deletes: "delete" on the wire in both directions.
  const batch2 = {
    from: 1,
    completions: [
      { command: { action: 'update', path: ['todos', 'a1'], props: { n: 2 } } },
      create(['todos'], 'b1', { title: 'eggs' }),
      { command: { action: 'delete', path: ['todos', 'b1'] } },
    ],
  };
  r = await b.request({ t: 'flush', rid: 11, model: 'todo', seq: 1, batch: batch2 });
  await check('ack with delete', () => {
    assert.equal(r.t, 'ack');
    assert.equal(r.seq, 1);
    assert.deepEqual(r.result, { applied: batch2 });
  });
  r = await a.next('push');
  await check('push with delete', () => {
    assert.deepEqual(r.diff, batch2);
    assert.equal(r.diff.completions[2].command.action, 'delete');
  });
  await check('no push of own batch', async () => assert.deepEqual(await b.quiet(50), []));

  // A retry of A's seq 1 is not applied again: empty applied, the sync brings A up to date.
  r = await a.request({ t: 'flush', rid: 12, model: 'todo', seq: 1, batch: batch1 });
  await check('retried flush', () => {
    assert.equal(r.t, 'ack');
    assert.deepEqual(r.result.applied, { from: 4, completions: [] });
    assert.equal(r.result.sync.isPartial, true);
    assert.deepEqual(r.result.sync.diff, { from: 0, completions: [...batch1.completions, ...batch2.completions] });
  });
  await check('no push for a retry', async () => assert.deepEqual(await b.quiet(50), []));
  r = await a.request({ t: 'flush', rid: 13, model: 'todo', seq: 0, batch: batch1 });
  await check('seq below the last', () => assert.deepEqual([r.t, r.code, r.rid, r.model], ['error', 'bad_request', 13, 'todo']));

  // A stale `from` with a colliding created ID: remapped, partial sync from history.
  const batch3 = { from: 1, completions: [create(['todos'], 'a1', { title: 'bread' })] };
  r = await a.request({ t: 'flush', rid: 14, model: 'todo', seq: 2, batch: batch3 });
  let newId;
  await check('collision remap and stale-from sync', () => {
    const res = r.result;
    assert.equal(res.applied.from, 4);
    assert.equal(res.applied.completions.length, 1);
    newId = res.applied.completions[0].createdId;
    assert.notEqual(newId, 'a1');
    assert.deepEqual(res.sync.mappedPaths, { 'todos,a1': ['todos', newId] });
    assert.equal(res.sync.isPartial, true);
    assert.equal(res.sync.diff.from, 1);
    assert.equal(res.sync.diff.completions.length, 4);
    assert.deepEqual(res.sync.diff.completions[0], batch2.completions[0]);
  });
  r = await b.next('push');
  await check('push of a remapped batch', () => assert.deepEqual(r.diff.from, 4) || assert.equal(r.diff.completions[0].createdId, newId));

  // A failing command: errors in the ack, spelled "delete".
  const batch4 = { from: 5, completions: [{ command: { action: 'delete', path: ['nope', 'x'] } }] };
  r = await b.request({ t: 'flush', rid: 15, model: 'todo', seq: 2, batch: batch4 });
  await check('command errors', () => {
    assert.deepEqual(r.result.applied, { from: 5, completions: [] });
    assert.equal(r.result.errors.length, 1);
    assert.equal(r.result.errors[0].action, 'delete');
    assert.deepEqual(r.result.errors[0].path, ['nope', 'x']);
    assert.match(r.result.errors[0].errorMessage, /No object at document path nope/);
  });
  await check('no push of an empty batch', async () => assert.deepEqual(await a.quiet(50), []));
  // A batch the master rewrote (a failure, then an update): no nil createdId on the wire.
  const batch5 = {
    from: 5,
    completions: [
      { command: { action: 'update', path: ['nope'], props: { x: 1 } } },
      { command: { action: 'update', path: ['todos', 'a1'], props: { done: true } } },
    ],
  };
  r = await b.request({ t: 'flush', rid: 26, model: 'todo', seq: 3, batch: batch5 });
  await check('rewritten batch', () => {
    assert.equal(r.result.errors.length, 1);
    assert.deepEqual(r.result.applied, { from: 5, completions: [batch5.completions[1]] });
    assert.equal(r.result.sync.isPartial, true);
  });
  r = await a.next('push');
  await check('push of a rewritten batch', () => assert.deepEqual(r.diff, { from: 5, completions: [batch5.completions[1]] }));

  r = await b.request({ t: 'get', rid: 16, model: 'todo' });
  await check('get', () => {
    assert.equal(r.t, 'snap');
    assert.equal(r.snapshot.commandCount, 6);
    assert.deepEqual(r.snapshot.document.todos.a1, { title: 'milk', n: 2, done: true });
    assert.deepEqual(r.snapshot.document.todos[newId], { title: 'bread' });
    assert.equal(Object.keys(r.snapshot.document.todos).length, 2);
  });
  r = await b.request({ t: 'get', rid: 17, model: 'todo', at: 2 });
  await check('get at a past count', () => assert.deepEqual([r.t, r.code, r.rid], ['error', 'gone', 17]));
  r = await b.request({ t: 'history', rid: 18, model: 'todo', from: 1, to: 3 });
  await check('history', () => assert.deepEqual(r, { t: 'diff', rid: 18, model: 'todo', diff: { from: 1, completions: batch2.completions.slice(0, 2) } }));

  // Presence: ok to the sender, the event to the others, replayed to a new subscriber.
  r = await a.request({ t: 'presence', rid: 19, model: 'todo', state: { cursor: 3 } });
  await check('presence ok', () => assert.deepEqual(r, { t: 'ok', rid: 19 }));
  r = await b.next('presence');
  await check('presence event', () => assert.deepEqual(r, { t: 'presence', model: 'todo', session: sessionA, state: { cursor: 3 } }));
  const c = new Client(port);
  await c.opened;
  await c.request({ t: 'hello', client: 'smoke-c' });
  r = await c.request({ t: 'sub', rid: 1, model: 'todo', from: 3 });
  await check('sub from: diff', () => assert.deepEqual([r.t, r.diff.from, r.diff.completions.length], ['diff', 3, 3]));
  r = await c.next('presence');
  await check('presence after sub', () => assert.deepEqual([r.t, r.session, r.state], ['presence', sessionA, { cursor: 3 }]));
  r = await c.request({ t: 'sub', rid: 2, model: 'todo', from: 6 });
  await check('sub from the current count: empty diff', () => assert.deepEqual(r.diff, { from: 6, completions: [] }));
  await c.next('presence');
  a.close();
  r = await b.next('presence clear');
  await check('disconnect clears presence', () => assert.deepEqual([r.t, r.session, r.state], ['presence', sessionA, null]));
  r = await c.next('presence clear');
  await check('disconnect clears presence (third client)', () => assert.deepEqual([r.t, r.state], ['presence', null]));

  // Errors that leave the connection open.
  b.ws.send('hello');
  r = await b.next('error');
  await check('text frame', () => assert.deepEqual([r.t, r.code], ['error', 'bad_frame']));
  b.ws.send(encode([1, 2]));
  r = await b.next('error');
  await check('not a map', () => assert.deepEqual([r.t, r.code], ['error', 'bad_frame']));
  b.ws.send(Buffer.from([0x81, 0xa1]));
  r = await b.next('error');
  await check('truncated frame', () => assert.deepEqual([r.t, r.code], ['error', 'bad_frame']));
  r = await b.request({ t: 'flush', rid: 20, model: 'todo', batch: batch4 });
  await check('missing seq', () => assert.deepEqual([r.code, r.rid, r.message], ['bad_request', 20, 'seq: missing']));
  r = await b.request({ t: 'flush', rid: 21, model: 'bad model', seq: 9, batch: batch4 });
  await check('bad model name', () => assert.deepEqual([r.code, r.rid], ['bad_request', 21]));
  r = await b.request({ t: 'flush', rid: 22, model: 'todo', seq: 9, batch: { from: 0, completions: [{ command: { action: 'move' } }] } });
  await check('unknown action', () => assert.deepEqual([r.code, r.message], ['bad_request', 'batch.completions[0].command.action: unknown action']));
  r = await b.request({ t: 'frobnicate', rid: 23 });
  await check('unknown type', () => assert.deepEqual([r.code, r.rid], ['bad_request', 23]));
  r = await b.request({ t: 'unsub', rid: 24, model: 'todo' });
  await check('unsub', () => assert.deepEqual(r, { t: 'ok', rid: 24 }));
  r = await c.request({ t: 'flush', rid: 25, model: 'todo', seq: 1, batch: { from: 6, completions: [create(null, 'c1', {})] } });
  await check('flush after the other unsubscribed', () => assert.equal(r.result?.applied.completions.length, 1, JSON.stringify(r)));
  await check('no push after unsub', async () => assert.deepEqual(await b.quiet(100), []));
  // The reference throws on an update under a null (typeof null === 'object'): the flush
  // gets `internal`, and the model refuses requests from then on.
  r = await c.request({ t: 'flush', rid: 30, model: 'boom', seq: 1,
    batch: { from: 0, completions: [create(null, 'n', { a: null })] } });
  await check('a null in a document', () => assert.equal(r.t, 'ack'));
  r = await c.request({ t: 'flush', rid: 31, model: 'boom', seq: 2,
    batch: { from: 1, completions: [{ command: { action: 'update', path: ['n', 'a'], props: { x: 1 } } }] } });
  await check('an exception in the reference', () => assert.deepEqual([r.t, r.code, r.rid, r.model], ['error', 'internal', 31, 'boom']));
  r = await c.request({ t: 'get', rid: 32, model: 'boom' });
  await check('a broken model', () => assert.deepEqual([r.t, r.code, r.rid], ['error', 'internal', 32]));
  b.close();
  c.close();
  await slowSubscriber(port);
}

// A subscriber that stops reading loses nothing: its pushes are dropped past --max-queue
// and it gets one catch-up push when its socket drains; its stream stays gap-free.
async function slowSubscriber(port) {
  const w = new Client(port);
  const s = new Client(port);
  await Promise.all([w.opened, s.opened]);
  await w.request({ t: 'hello', client: 'smoke-w' });
  await s.request({ t: 'hello', client: 'smoke-s' });
  await w.request({ t: 'sub', model: 'slow' });
  let r = await s.request({ t: 'sub', model: 'slow' });
  let pos = r.snapshot.commandCount;
  s.ws._socket.pause();
  const N = 300;
  const big = 'x'.repeat(60000);
  for (let i = 0; i < N; i++) {
    r = await w.request({ t: 'flush', rid: i, model: 'slow', seq: i + 1,
      batch: { from: i, completions: [create(null, `id${i}`, { v: big })] } });
    if (r.t !== 'ack') throw new Error(`flush ${i}: ${JSON.stringify(r)}`);
  }
  s.ws._socket.resume();
  let frames = 0, gap = null;
  while (pos < N) {
    r = await s.next(`push (at ${pos} of ${N})`);
    frames++;
    if (r.t === 'push') {
      if (r.diff.from !== pos) gap = gap || `push from ${r.diff.from} at ${pos}`;
      pos = r.diff.from + r.diff.completions.length;
    } else if (r.t === 'snap') {
      pos = r.snapshot.commandCount;
    } else {
      gap = gap || `unexpected ${r.t}`;
    }
  }
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const dropped = Number(/flushout_dropped_pushes_total (\d+)/.exec(metrics)[1]);
  console.log(`slow subscriber: ${frames} frames for ${N} batches, ${dropped} pushes dropped`);
  await check('slow subscriber: gap-free catch-up', () => assert.equal(gap, null));
  await check('slow subscriber: pushes were dropped and caught up', () => {
    assert.ok(dropped > 0, `dropped ${dropped}`);
    assert.ok(frames < N, `${frames} frames for ${N} batches`);
  });
  w.close();
  s.close();
}

main();
