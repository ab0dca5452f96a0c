// Several clients on one model of a real hub, random commands (with sequential IDs, so
// that proxies collide and the hub remaps), random pacing and dropped connections: every
// client ends with the hub's document and count.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { HubClient, CommandAction } from "../src/index.js";
import { startHub, waitFor, httpSnapshot, sleep } from "./hub.js";

let hub;
before(async () => {
  hub = await startHub({ store: "memory" });
});
after(async () => {
  await hub.stop(); // fails on a non-zero exit or a sanitizer report
});

/** mulberry32: a small seeded PRNG, so a failure can be replayed with its seed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCommand(rand, doc, who) {
  const items = Object.keys((doc && doc.items) || {});
  const pick = () => items[Math.floor(rand() * items.length)];
  const r = rand();
  if (items.length === 0 || r < 0.35) {
    return { action: CommandAction.Create, path: ["items"], props: { by: who, v: Math.floor(rand() * 1000) }, parentDefault: {} };
  }
  if (r < 0.5) {
    // Nested: a create under an item, making its `sub` map on first use.
    return { action: CommandAction.Create, path: ["items", pick(), "sub"], props: { n: Math.floor(rand() * 100) }, parentDefault: {} };
  }
  if (r < 0.75) {
    return { action: CommandAction.Update, path: ["items", pick()], props: { v: Math.floor(rand() * 1000), by: who, tags: ["x", rand() < 0.5] } };
  }
  if (r < 0.9) return { action: CommandAction.Delete, path: ["items", pick()] };
  return { action: CommandAction.Update, props: { title: `t${Math.floor(rand() * 50)}`, ratio: rand() } };
}

test("several clients converge under random commands, collisions and dropped connections", async (t) => {
  const seed = Number(process.env.FO_SEED || Date.now() % 100000);
  const rand = rng(seed);
  const model = `conv:${seed}`;
  const N = 5;
  const OPS = 300;
  const clients = [];
  const models = [];
  const errors = [];
  const stats = { flushes: 0, syncs: 0, remaps: 0, rejected: 0, reconnects: 0 };
  for (let i = 0; i < N; i++) {
    // Half inject `ws`, half let the client find it.
    const c = new HubClient({
      url: hub.url,
      WebSocket: i % 2 === 0 ? WebSocket : undefined,
      flushDelay: 1 + Math.floor(rand() * 20),
      maxBatch: 5 + Math.floor(rand() * 40),
      backoffInitial: 20,
      backoffMax: 200,
    });
    c.on("error", (e) => errors.push(e));
    clients.push(c);
    const m = c.open(model, { sequentialIds: true });
    m.on("error", (e) => {
      if (e.code !== "rejected") errors.push(e); // commands on items deleted meanwhile
    });
    m.on("flushed", ({ result }) => {
      stats.flushes++;
      if (result.sync) stats.syncs++;
      if (result.sync && result.sync.mappedPaths) stats.remaps += Object.keys(result.sync.mappedPaths).length;
      if (result.errors) stats.rejected += result.errors.length;
    });
    models.push(m);
  }
  await Promise.all(models.map((m) => m.ready));

  let local = 0;
  await Promise.all(
    models.map(async (m, i) => {
      const r = rng(seed * 31 + i);
      for (let k = 0; k < OPS; k++) {
        const res = m.apply(randomCommand(r, m.getDocument(), `c${i}`));
        if (res.isSuccess) local++;
        const p = r();
        if (p < 0.3) await sleep(Math.floor(r() * 8));
        else if (p < 0.31) {
          stats.reconnects++;
          clients[i].reconnect(); // drop the connection mid-flush
        }
        else if (p < 0.6) await new Promise((res2) => setImmediate(res2));
      }
    })
  );
  assert.ok(local > N * OPS * 0.5, `most commands applied locally (${local})`);

  await Promise.all(models.map((m) => m.settled()));
  let snap;
  await waitFor(
    async () => {
      snap = await httpSnapshot(hub, model);
      return models.every((m) => m.committed === snap.commandCount && m.getCommandCount() === snap.commandCount);
    },
    10000,
    `every client at the hub's count (seed ${seed})`
  );
  for (const [i, m] of models.entries()) {
    assert.deepEqual(m.getDocument(), snap.document, `client ${i} equals the hub (seed ${seed})`);
  }
  assert.ok(snap.commandCount > N * OPS * 0.3, `the hub applied most commands (${snap.commandCount})`);
  assert.deepEqual(errors, [], `no errors (seed ${seed})`);
  t.diagnostic(`seed ${seed}: ${local} local commands, hub count ${snap.commandCount}, ${JSON.stringify(stats)}`);
  assert.ok(stats.remaps > 0 && stats.syncs > 0, "the run exercised remapping and syncs");

  // A newcomer gets the same state from a snapshot.
  const late = new HubClient({ url: hub.url });
  const lm = late.open(model);
  await lm.ready;
  assert.deepEqual(lm.getDocument(), snap.document);
  late.close();
  for (const c of clients) c.close();
});

test("presence and live pushes between two clients of the real hub", async () => {
  const a = new HubClient({ url: hub.url });
  const b = new HubClient({ url: hub.url });
  const ma = a.open("presence:demo");
  const mb = b.open("presence:demo");
  await Promise.all([ma.ready, mb.ready]);
  ma.setPresence({ name: "ann", color: "#f80" });
  await waitFor(() => mb.peers.size === 1, 2000, "b sees a's presence");
  assert.deepEqual([...mb.peers.values()], [{ name: "ann", color: "#f80" }]);
  const seen = [];
  mb.on("change", (_doc, info) => seen.push(info.source));
  const t0 = Date.now();
  const r = ma.apply({ action: CommandAction.Create, path: ["todos"], props: { text: "hi" }, parentDefault: {} });
  await waitFor(() => mb.getDocument().todos && mb.getDocument().todos[r.createdId], 2000, "b gets a's create");
  assert.ok(Date.now() - t0 < 1000, "within a second");
  assert.ok(seen.includes("remote"));
  a.close();
  await waitFor(() => mb.peers.size === 0, 2000, "a's presence goes with its connection");
  b.close();
});
