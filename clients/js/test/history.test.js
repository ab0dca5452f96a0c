// The model's past through client.backend(name): snapshotAt(N) (the hub's `get` with
// `at`) and history(from, to), against a real hub; what --history no longer keeps is
// refused with code "gone".
import { test } from "node:test";
import assert from "node:assert/strict";
import { HubClient, CommandAction } from "../src/index.js";
import { startHub, tempDir } from "./hub.js";

const M = "todos:past";
const clone = (v) => JSON.parse(JSON.stringify(v));

function mk(hub) {
  return new HubClient({ url: hub.url, flushDelay: 1, backoffInitial: 20, backoffMax: 80, watchNetwork: false });
}

/**
 * Writes a known script, one command per flush, and returns the document after each
 * count (docs[k]: after k commands, as the writer's model had it once acknowledged) and
 * the created ids.
 */
async function script(c) {
  const m = c.open(M);
  await m.ready;
  const docs = [clone(m.getDocument())];
  const ids = [];
  const step = async (cmd) => {
    const r = m.apply(cmd);
    assert.equal(r.isSuccess, true, JSON.stringify(r));
    await m.flush();
    assert.equal(m.committed, docs.length);
    docs.push(clone(m.getDocument()));
    return r;
  };
  for (const text of ["milk", "bread", "eggs"]) {
    ids.push((await step({ action: CommandAction.Create, path: ["todos"], props: { text, by: "ann" }, parentDefault: {} })).createdId);
  }
  await step({ action: CommandAction.Update, path: ["todos", ids[0]], props: { done: true } });
  await step({ action: CommandAction.Delete, path: ["todos", ids[1]] });
  await step({ action: CommandAction.Update, path: ["todos", ids[2]], props: { text: "eggs (6)" } });
  ids.push((await step({ action: CommandAction.Create, path: ["todos"], props: { text: "jam" } })).createdId);
  return { m, docs, ids };
}

async function expectCode(promise, code, pattern) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.code, code, `code of ${e.message}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

for (const store of ["memory", "sqlite"]) {
  test(`snapshotAt(N) is the document after N commands, history(from, to) the commands (${store} store)`, async () => {
    const dir = tempDir();
    // Snapshots every 3 commands: reading state 5 back starts from stored snapshot 3.
    const hub = await startHub({ store, data: store === "sqlite" ? dir.dir : undefined, args: ["--snapshot-every", "3"] });
    const c = mk(hub);
    try {
      const { docs, ids } = await script(c);
      const b = c.backend(M);
      for (let k = 0; k < docs.length; k++) {
        const snap = await b.snapshotAt(k);
        assert.equal(snap.commandCount, k);
        assert.deepEqual(snap.document, docs[k], `state after ${k} commands`);
      }
      assert.deepEqual((await b.snapshotAt(docs.length - 1)).document, (await b.latestSnapshot()).document);

      const all = await b.history(0);
      assert.equal(all.from, 0);
      assert.deepEqual(
        all.completions.map((x) => x.command.action),
        [CommandAction.Create, CommandAction.Create, CommandAction.Create, CommandAction.Update, CommandAction.Delete, CommandAction.Update, CommandAction.Create]
      );
      assert.equal(all.completions[4].command.action, "detete", "the library's spelling of delete");
      assert.deepEqual(all.completions[4].command.path, ["todos", ids[1]]);
      assert.deepEqual(all.completions.filter((x) => x.createdId).map((x) => x.createdId), ids);
      assert.deepEqual(all.completions[0].command.props, { text: "milk", by: "ann" });
      assert.deepEqual(all.completions[0].command.parentDefault, {});

      const mid = await b.history(3, 5);
      assert.equal(mid.from, 3);
      assert.deepEqual(mid.completions, all.completions.slice(3, 5));
      assert.deepEqual((await b.history(7)).completions, [], "up to date: nothing");

      await expectCode(b.snapshotAt(8), "bad_request", /beyond the model's count 7/);
      await expectCode(b.history(5, 9), "bad_request", /outside/);
      await expectCode(b.snapshotAt(-1), "bad_request", /expected a command count/);
      await expectCode(b.history(1.5), "bad_request", /expected a command count/);
      await expectCode(b.history(0, "3"), "bad_request", /expected a command count/);
    } finally {
      c.close();
      await hub.stop();
      dir.remove();
    }
  });
}

test("what --history no longer keeps is refused with code gone; what it keeps is served", async () => {
  const hub = await startHub({ args: ["--history", "3"] });
  const c = mk(hub);
  try {
    const { docs } = await script(c); // 7 commands: states 4..7 are kept
    const b = c.backend(M);
    for (const k of [0, 2, 3]) await expectCode(b.snapshotAt(k), "gone", /history/);
    for (const k of [4, 5, 6, 7]) assert.deepEqual((await b.snapshotAt(k)).document, docs[k], `state ${k} kept`);
    await expectCode(b.history(0), "gone", /history/);
    await expectCode(b.history(2, 6), "gone", /history/);
    assert.equal((await b.history(4)).completions.length, 3);
  } finally {
    c.close();
    await hub.stop();
  }
});

test("a request made while offline waits for the connection", async () => {
  const hub = await startHub();
  const c = mk(hub);
  try {
    await script(c);
    const port = hub.port;
    await hub.stop();
    const pending = c.backend(M).snapshotAt(1); // memory store: the model is empty again
    await new Promise((r) => setTimeout(r, 100));
    const hub2 = await startHub({ port });
    try {
      await expectCode(pending, "bad_request", /beyond the model's count 0/);
    } finally {
      c.close();
      await hub2.stop();
    }
  } finally {
    c.close();
  }
});
