// The hub's limits as the client meets them: a flush refused with rate_limited (or
// overloaded) carries retryAfterMs, and the client sends the same batch (same seq) again
// after exactly that delay, without the application doing anything. Against a real hub.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HubClient, CommandAction } from "../src/index.js";
import { startHub, httpSnapshot } from "./hub.js";

test("rate_limited flushes are resent after retryAfterMs: nothing lost, nothing twice", async () => {
  const hub = await startHub({ args: ["--flush-rate", "2"] }); // bursts of 4, then one per 500 ms
  // retryDelay (used when an error says no retryAfterMs) is long on purpose: had the client
  // used it, 8 flushes would take over 20 s.
  const c = new HubClient({ url: hub.url, flushDelay: 1, retryDelay: 5000, watchNetwork: false });
  try {
    const m = c.open("limits:js");
    const errors = [];
    m.on("error", (e) => errors.push(e));
    await m.ready;
    const t0 = Date.now();
    for (let i = 0; i < 8; i++) {
      m.apply({ action: CommandAction.Create, path: ["todos"], props: { n: i }, parentDefault: {} });
      await m.settled();
    }
    const ms = Date.now() - t0;
    assert.ok(m.retriedAfter >= 4, `refusals resent after retryAfterMs: ${m.retriedAfter}`);
    assert.ok(ms < 5000, `8 flushes took ${ms} ms: retryAfterMs (about 500) was not used`);
    assert.deepEqual(errors, [], "a refusal that is retried is not an error for the app");
    const snap = await httpSnapshot(hub, "limits:js");
    assert.equal(snap.commandCount, 8, "every create applied exactly once");
    const ns = Object.values(snap.document.todos).map((t) => t.n).sort((a, b) => a - b);
    assert.deepEqual(ns, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(m.committed, 8);
  } finally {
    c.close();
    await hub.stop();
  }
});

test("presence past --presence-rate: the latest state goes after retryAfterMs, no error", async () => {
  const hub = await startHub({ args: ["--presence-rate", "2"] }); // bursts of 4
  const a = new HubClient({ url: hub.url, watchNetwork: false });
  const b = new HubClient({ url: hub.url, watchNetwork: false });
  try {
    const ma = a.open("limits:presence");
    const mb = b.open("limits:presence");
    const errors = [];
    ma.on("error", (e) => errors.push(e));
    await Promise.all([ma.ready, mb.ready]);
    // A cursor moving faster than the rate: the last position must arrive.
    for (let i = 0; i <= 20; i++) ma.setPresence({ x: i });
    const end = Date.now() + 5000;
    let seen = null;
    while (Date.now() < end) {
      seen = [...mb.peers.values()][0];
      if (seen && seen.x === 20) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(seen, { x: 20 }, "the other subscriber never saw the latest presence");
    assert.ok(ma.retriedAfter >= 1);
    assert.deepEqual(errors, []);
  } finally {
    a.close();
    b.close();
    await hub.stop();
  }
});
