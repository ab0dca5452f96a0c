// The hub dies (SIGKILL) while flushes are in flight, comes back on the same sqlite data
// directory and port, and the clients carry on: every command is there exactly once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HubClient, CommandAction } from "../src/index.js";
import { startHub, tempDir, waitFor, httpSnapshot, sleep } from "./hub.js";

async function metric(hub, name) {
  try {
    const text = await (await fetch(`${hub.http}/metrics`)).text();
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, "m").exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

test("SIGKILL mid-flush, restart on the same data and port: no loss, no duplicates", async (t) => {
  const data = tempDir("fo-js-reconnect-");
  let hub = await startHub({ store: "sqlite", data: data.dir });
  const port = hub.port;
  const model = "todos:crash";
  const N = 4; // clients
  const MIN = 100; // creates per client, at least; writers go on until the last restart
  const clients = [];
  const models = [];
  const statuses = [];
  for (let i = 0; i < N; i++) {
    const c = new HubClient({ url: hub.url, flushDelay: 2, maxBatch: 8, backoffInitial: 30, backoffMax: 300 });
    c.on("status", (s) => statuses.push(`${i}:${s}`));
    clients.push(c);
    const m = c.open(model);
    m.on("error", (e) => assert.fail(`client ${i}: ${e.code} ${e.message}`));
    models.push(m);
  }
  await Promise.all(models.map((m) => m.ready));

  // Writers: each creates todos tagged (client, n) and sometimes updates its own.
  let applied = 0;
  let created = 0;
  let done = false;
  let killing = true;
  const writers = models.map(async (m, i) => {
    const mine = [];
    for (let n = 0; n < MIN || killing; n++) {
      created++;
      const r = m.apply({ action: CommandAction.Create, path: ["todos"], props: { by: i, n, text: `c${i}-${n}` }, parentDefault: {} });
      assert.equal(r.isSuccess, true);
      applied++;
      mine.push(r.createdId);
      if (n % 5 === 4) {
        const id = mine[Math.floor(Math.random() * mine.length)];
        assert.equal(m.apply({ action: CommandAction.Update, path: ["todos", id], props: { touched: n } }).isSuccess, true);
        applied++;
      }
      await sleep(Math.random() < 0.5 ? 1 : 5);
    }
  });

  // The killer: three times, waits until some flush is in flight, SIGKILLs the hub at
  // that moment, and restarts it on the same port and data directory.
  let inFlightAtKill = 0;
  let duplicates = 0; // retried flushes the hub had already applied (their ack was lost)
  const killer = (async () => {
    for (let k = 0; k < 3; k++) {
      await sleep(150 + Math.random() * 150);
      await waitFor(() => models.some((m) => m.flushing), 5000, "a flush in flight");
      inFlightAtKill += models.filter((m) => m.flushing).length;
      if (k > 0) duplicates += await metric(hub, "flushout_flush_duplicates_total");
      await hub.kill();
      t.diagnostic(`kill ${k + 1}: hub SIGKILLed with ${models.filter((m) => m.flushing).length} flushes in flight`);
      await sleep(100 + Math.random() * 200); // clients go offline, keep applying locally
      hub = await startHub({ store: "sqlite", data: data.dir, port });
    }
    await sleep(300);
    killing = false;
  })();

  try {
    await Promise.all([...writers, killer]);
    done = true;
    await Promise.all(models.map((m) => m.settled()));
    let snap;
    await waitFor(
      async () => {
        snap = await httpSnapshot(hub, model);
        return models.every((m) => m.committed === snap.commandCount && m.pendingCount === 0);
      },
      15000,
      "every client at the hub's count"
    );
    assert.ok(inFlightAtKill >= 3, "each kill hit flushes in flight");
    assert.equal(snap.commandCount, applied, "the hub counted every command exactly once");
    const todos = Object.values(snap.document.todos);
    assert.equal(todos.length, created, "no create lost or duplicated");
    const seen = new Set(todos.map((x) => `${x.by}/${x.n}`));
    assert.equal(seen.size, created, "each (client, n) exactly once");
    duplicates += await metric(hub, "flushout_flush_duplicates_total");
    t.diagnostic(`${created} creates, ${applied} commands in all, ${inFlightAtKill} flushes in flight at the kills, ${duplicates} retried flushes answered as duplicates`);
    for (const [i, m] of models.entries()) assert.deepEqual(m.getDocument(), snap.document, `client ${i}`);
    assert.ok(statuses.some((s) => s.endsWith("offline")), "clients noticed the crash");

    // What was acked is durable: a graceful restart serves the same state.
    for (const c of clients) c.close();
    await hub.stop();
    hub = await startHub({ store: "sqlite", data: data.dir, port });
    assert.deepEqual(await httpSnapshot(hub, model), snap);
  } finally {
    done = true;
    for (const c of clients) c.close();
    if (!hub.exited()) await hub.stop();
    data.remove();
  }
  assert.ok(done);
});
