// The client's state machine against FakeHub (the reference Master in process), where the
// rare orderings can be produced on purpose: pushes during a flush, gaps, unsolicited
// snapshots, lost acks, refused flushes.
import { test } from "node:test";
import assert from "node:assert/strict";
import flushout from "flushout";
import { HubClient, CommandAction } from "../src/index.js";
import { FakeHub } from "./fake-hub.js";
import { waitFor, sleep } from "./hub.js";

const { Proxy } = flushout;
const M = "todos:fake";

function mk(hub, extra = {}) {
  return new HubClient({
    url: "ws://fake/v1/ws",
    WebSocket: hub.WebSocket,
    flushDelay: 5,
    backoffInitial: 10,
    backoffMax: 40,
    retryDelay: 20,
    watchNetwork: false,
    ...extra,
  });
}

const create = (text) => ({ action: CommandAction.Create, path: ["todos"], props: { text }, parentDefault: {} });
const texts = (doc) => Object.values((doc && doc.todos) || {}).map((t) => t.text).sort();

async function converged(hub, ...models) {
  await Promise.all(models.map((m) => m.settled()));
  await waitFor(
    () => models.every((m) => JSON.stringify(m.getDocument()) === JSON.stringify(hub.snapshot(M).document) &&
      m.committed === hub.snapshot(M).commandCount),
    2000,
    "convergence with the fake master"
  );
}

test("apply is local at once, flushes in the background, and the wire says delete", async () => {
  const hub = new FakeHub();
  const c = mk(hub);
  const m = c.open(M);
  await m.ready;
  const r = m.apply(create("a"));
  assert.equal(r.isSuccess, true);
  assert.deepEqual(texts(m.getDocument()), ["a"], "applied locally before any round trip");
  assert.equal(m.pendingCount, 1);
  m.apply({ action: CommandAction.Delete, path: ["todos", r.createdId] });
  m.apply({ action: "delete", path: ["todos", "nope"] }); // the wire spelling is taken too
  await converged(hub, m);
  assert.equal(m.pendingCount, 0);
  const actions = hub.sent("flush").flatMap((e) => e.msg.batch.completions.map((x) => x.command.action));
  assert.deepEqual(actions, ["create", "delete", "delete"]);
  assert.equal(hub.snapshot(M).commandCount, 3);
  // A delete pushed by the hub ("delete") is applied by the library ("detete").
  const other = mk(hub);
  const o = other.open(M);
  await o.ready;
  const r2 = m.apply(create("b"));
  await converged(hub, m, o);
  o.apply({ action: CommandAction.Delete, path: ["todos", r2.createdId] });
  await converged(hub, m, o);
  assert.deepEqual(texts(m.getDocument()), []);
  c.close();
  other.close();
});

test("one flush in flight; pushes during it are dropped and the ack's sync covers them", async () => {
  const hub = new FakeHub();
  const ca = mk(hub), cb = mk(hub);
  const a = ca.open(M), b = cb.open(M);
  await Promise.all([a.ready, b.ready]);
  hub.holdAcks = true;
  a.apply(create("a1"));
  await waitFor(() => a.flushing, 1000, "a's flush");
  a.apply(create("a2")); // queued behind the flush in flight
  await sleep(30);
  assert.equal(hub.sent("flush").length, 1, "only one flush in flight per model");
  hub.holdAcks = false;
  b.apply(create("b1")); // applied after a1: its push reaches a while a1 is in flight
  await waitFor(() => hub.snapshot(M).commandCount === 2, 1000, "b1 at the master");
  await sleep(20);
  assert.deepEqual(texts(a.getDocument()), ["a1", "a2"], "the push was dropped");
  hub.releaseAcks();
  await converged(hub, a, b);
  assert.deepEqual(texts(a.getDocument()), ["a1", "a2", "b1"]);
  assert.equal(hub.sent("sub").length, 2, "no resubscription was needed");
  ca.close();
  cb.close();
});

test("a push that arrives with local commands queued makes the client flush at once", async () => {
  const hub = new FakeHub();
  const ca = mk(hub, { flushDelay: 10000, maxFlushDelay: 10000 }); // no timer flush
  const cb = mk(hub);
  const a = ca.open(M), b = cb.open(M);
  await Promise.all([a.ready, b.ready]);
  a.apply(create("queued"));
  b.apply(create("remote"));
  await converged(hub, b);
  await converged(hub, a, b);
  assert.deepEqual(texts(a.getDocument()), ["queued", "remote"]);
  assert.deepEqual(texts(b.getDocument()), ["queued", "remote"]);
  ca.close();
  cb.close();
});

test("a gap (a lost push) resubscribes with from = committed", async () => {
  const hub = new FakeHub();
  const ca = mk(hub), cb = mk(hub);
  const a = ca.open(M), b = cb.open(M);
  await Promise.all([a.ready, b.ready]);
  b.apply(create("one"));
  await converged(hub, a, b);
  const aConn = [...hub.conns].find((c) => c.client === ca.clientId);
  hub.dropPushesTo.add(aConn);
  b.apply(create("lost"));
  await b.settled();
  hub.dropPushesTo.clear();
  b.apply(create("after"));
  await converged(hub, a, b);
  assert.deepEqual(texts(a.getDocument()), ["after", "lost", "one"]);
  const subs = hub.sent("sub").filter((e) => e.conn === aConn);
  assert.equal(subs.length, 2, "one resubscription");
  assert.equal(subs[1].msg.from, 1, "from the committed count");
  ca.close();
  cb.close();
});

test("an unsolicited snapshot is adopted; with local commands queued the client flushes instead", async () => {
  const hub = new FakeHub();
  const ca = mk(hub, { flushDelay: 10000, maxFlushDelay: 10000 });
  const cb = mk(hub);
  const a = ca.open(M), b = cb.open(M);
  await Promise.all([a.ready, b.ready]);
  const aConn = [...hub.conns].find((c) => c.client === ca.clientId);
  hub.dropPushesTo.add(aConn);
  b.apply(create("x"));
  b.apply(create("y"));
  await b.settled();
  assert.deepEqual(texts(a.getDocument()), []);
  hub.sendSnap(aConn, M);
  await waitFor(() => a.committed === 2, 1000, "snapshot adopted");
  assert.deepEqual(texts(a.getDocument()), ["x", "y"]);
  // Again, now with a local command queued: it must survive.
  b.apply(create("z"));
  await b.settled();
  a.apply(create("mine"));
  hub.sendSnap(aConn, M);
  hub.dropPushesTo.clear();
  await converged(hub, a, b);
  assert.deepEqual(texts(a.getDocument()), ["mine", "x", "y", "z"]);
  ca.close();
  cb.close();
});

test("a lost ack: after reconnecting the flush goes again with the same seq and is applied once", async () => {
  const hub = new FakeHub();
  const c = mk(hub);
  const statuses = [];
  c.on("status", (s) => statuses.push(s));
  const m = c.open(M);
  await m.ready;
  hub.holdAcks = true;
  m.apply(create("once"));
  await waitFor(() => hub.held.length === 1, 1000, "the master applied the batch");
  hub.releaseAcks({ drop: true });
  hub.holdAcks = false;
  m.apply(create("later")); // queued while the first flush is unacknowledged
  hub.disconnectAll();
  await converged(hub, m);
  const flushes = hub.sent("flush");
  assert.equal(flushes[0].msg.seq, flushes[1].msg.seq, "resent with the same seq");
  assert.deepEqual(flushes[0].msg.batch, flushes[1].msg.batch);
  assert.deepEqual(texts(m.getDocument()), ["later", "once"]);
  assert.equal(hub.snapshot(M).commandCount, 2, "applied exactly once");
  assert.ok(statuses.includes("offline") && statuses.at(-1) === "open", statuses.join());
  c.close();
});

test("a flush that never reached the master is applied once after reconnecting", async () => {
  const hub = new FakeHub();
  const c = mk(hub);
  const m = c.open(M);
  await m.ready;
  hub.swallowFlushes = true;
  m.apply(create("in the wire"));
  await waitFor(() => hub.sent("flush").length === 1, 1000, "flush sent");
  hub.swallowFlushes = false;
  hub.disconnectAll();
  await converged(hub, m);
  assert.deepEqual(texts(hub.snapshot(M).document), ["in the wire"]);
  assert.equal(hub.snapshot(M).commandCount, 1);
  c.close();
});

test("a transient error retries with the same seq; a refusal drops the batch and keeps later commands", async () => {
  const hub = new FakeHub();
  const c = mk(hub);
  const errors = [];
  const m = c.open(M);
  m.on("error", (e) => errors.push(e));
  await m.ready;
  hub.refuseNext = "overloaded";
  m.apply(create("retried"));
  await converged(hub, m);
  const seqs = hub.sent("flush").map((e) => e.msg.seq);
  assert.equal(seqs.length, 2);
  assert.equal(seqs[0], seqs[1]);
  assert.deepEqual(texts(m.getDocument()), ["retried"]);

  hub.holdAcks = false;
  hub.refuseNext = "forbidden";
  m.apply(create("refused"));
  await waitFor(() => errors.some((e) => e.code === "forbidden"), 1000, "the refusal");
  m.apply(create("kept"));
  await converged(hub, m);
  assert.deepEqual(texts(m.getDocument()), ["kept", "retried"]);
  c.close();
});

test("ID collisions between proxies are remapped, with later local commands following the new path", async () => {
  const hub = new FakeHub();
  const ca = mk(hub), cb = mk(hub);
  const a = ca.open(M, { sequentialIds: true }), b = cb.open(M, { sequentialIds: true });
  await Promise.all([a.ready, b.ready]);
  hub.holdAcks = true;
  const ra = a.apply(create("from a"));
  const rb = b.apply(create("from b"));
  assert.equal(ra.createdId, rb.createdId, "same sequential ID on both sides");
  await waitFor(() => hub.held.length === 2, 1000, "both applied at the master");
  // b keeps working with its ID while its flush is in flight.
  b.apply({ action: CommandAction.Update, path: ["todos", rb.createdId], props: { done: true } });
  hub.holdAcks = false;
  hub.releaseAcks();
  await converged(hub, a, b);
  const todos = b.getDocument().todos;
  assert.equal(Object.keys(todos).length, 2);
  const mine = Object.values(todos).find((t) => t.text === "from b");
  assert.equal(mine.done, true, "the update followed the remapped ID");
  ca.close();
  cb.close();
});

test("presence: seen by the others, cleared when a session goes, restored after a reconnect", async () => {
  const hub = new FakeHub();
  const ca = mk(hub), cb = mk(hub);
  const a = ca.open(M), b = cb.open(M);
  await Promise.all([a.ready, b.ready]);
  a.setPresence({ name: "ann" });
  await waitFor(() => b.peers.size === 1, 1000, "b sees a");
  assert.deepEqual([...b.peers.values()], [{ name: "ann" }]);
  assert.equal(a.peers.size, 0, "own presence is not echoed");
  const aConn = [...hub.conns].find((c) => c.client === ca.clientId);
  hub._close(aConn);
  await waitFor(() => b.peers.size === 0, 1000, "cleared on disconnect");
  await waitFor(() => b.peers.size === 1, 2000, "restored after a reconnect");
  a.setPresence(null);
  await waitFor(() => b.peers.size === 0, 1000, "cleared by null");
  ca.close();
  cb.close();
});

test("HubBackend: the article's own-Proxy app, flush by flush, survives a reconnect", async () => {
  const hub = new FakeHub();
  const c = mk(hub);
  const backend = c.backend(M);
  const proxy = new Proxy(await backend.latestSnapshot());
  proxy.apply(create("manual"));
  hub.swallowFlushes = true;
  const batch = proxy.beginFlush();
  const pending = backend.sendFlush(batch);
  await waitFor(() => hub.sent("flush").length === 1, 1000, "flush sent");
  hub.swallowFlushes = false;
  hub.disconnectAll();
  const result = await pending;
  const fr = proxy.endFlush(result.sync);
  assert.equal(fr.error, undefined);
  assert.deepEqual(proxy.getDocument(), hub.snapshot(M).document);
  const seqs = hub.sent("flush").map((e) => e.msg.seq);
  assert.equal(seqs[0], seqs[1]);
  c.close();
});

test("HubBackend shared by two Proxies (the article's two clients): flushes go in order, exactly once", async () => {
  const hub = new FakeHub();
  const c = mk(hub);
  const backend = c.backend(M);
  assert.equal(c.backend(M), backend, "one backend per model name");
  const p1 = new Proxy(await backend.latestSnapshot());
  const p2 = new Proxy(await backend.latestSnapshot());
  p1.apply(create("one"));
  p2.apply(create("two"));
  hub.holdAcks = true;
  const f1 = backend.sendFlush(p1.beginFlush());
  const f2 = backend.sendFlush(p2.beginFlush());
  await waitFor(() => hub.held.length === 1, 1000, "first flush applied");
  await sleep(20);
  assert.equal(hub.sent("flush").length, 1, "the second waits for the first");
  hub.releaseAcks({ drop: true }); // the ack is lost
  hub.holdAcks = false;
  hub.disconnectAll();
  const [r1, r2] = await Promise.all([f1, f2]);
  assert.equal(p1.endFlush(r1.sync).error, undefined);
  assert.equal(p2.endFlush(r2.sync).error, undefined);
  assert.equal(hub.snapshot(M).commandCount, 2, "each flush applied once");
  assert.deepEqual(p2.getDocument(), hub.snapshot(M).document);
  const seqs = hub.sent("flush").map((e) => e.msg.seq);
  assert.deepEqual(seqs, [seqs[0], seqs[0], seqs[0] + 1], "resent with its seq, then the next");
  c.close();
});

test("a batch larger than the hub's maxFrame is refused locally (never stuck in flight)", async () => {
  const hub = new FakeHub();
  hub.maxFrame = 4096;
  const c = mk(hub);
  const errors = [];
  const m = c.open(M);
  m.on("error", (e) => errors.push(e));
  await m.ready;
  m.apply(create("small"));
  await converged(hub, m);
  m.apply(create("x".repeat(5000)));
  await waitFor(() => errors.some((e) => e.code === "too_large"), 1000, "too_large");
  m.apply(create("after"));
  await converged(hub, m);
  assert.deepEqual(texts(m.getDocument()), ["after", "small"]);
  assert.equal(hub.sent("flush").length, 2, "the big batch never went on the wire");
  c.close();
});

test("a sub that gets no reply is sent again", async () => {
  const hub = new FakeHub();
  hub.ignoreSubs = 1;
  const c = mk(hub, { subTimeout: 50 });
  const errors = [];
  const m = c.open(M);
  m.on("error", (e) => errors.push(e.code));
  await m.ready;
  assert.equal(hub.sent("sub").length, 2);
  assert.deepEqual(errors, ["timeout"]);
  c.close();
});
