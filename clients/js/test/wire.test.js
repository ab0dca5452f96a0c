// The wire mapping: "detete" (the reference's Delete) never reaches the wire, and comes
// back from "delete"; frames are MessagePack maps without undefined fields.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CommandAction, encodeFrame, decodeFrame, batchToWire, batchFromWire, resultFromWire } from "../src/index.js";

test("Delete is spelled delete on the wire and detete in the library", () => {
  assert.equal(CommandAction.Delete, "detete");
  const batch = {
    from: 3,
    completions: [
      { command: { action: CommandAction.Delete, path: ["todos", "1"] } },
      { command: { action: CommandAction.Create, path: ["todos"], props: { a: 1, skip: undefined }, parentDefault: {} }, createdId: "7" },
      { command: { action: CommandAction.Update, path: [], props: { b: [1, "x", null] } } },
    ],
  };
  const wire = decodeFrame(encodeFrame({ t: "flush", model: "m", seq: 1, batch: batchToWire(batch) }));
  assert.deepEqual(wire.batch, {
    from: 3,
    completions: [
      { command: { action: "delete", path: ["todos", "1"] } },
      { command: { action: "create", path: ["todos"], props: { a: 1 }, parentDefault: {} }, createdId: "7" },
      { command: { action: "update", props: { b: [1, "x", null] } } },
    ],
  });
  const back = batchFromWire(wire.batch);
  assert.equal(back.completions[0].command.action, "detete");
  assert.equal(back.completions[1].command.action, "create");
});

test("an ApplyResult's applied batch, sync diff and errors map delete back", () => {
  const r = resultFromWire({
    applied: { from: 1, completions: [{ command: { action: "delete", path: ["a"] } }] },
    sync: { isPartial: true, diff: { from: 0, completions: [{ command: { action: "delete", path: ["b"] } }] }, mappedPaths: { "x,1": ["x", "2"] } },
    errors: [{ action: "delete", path: ["c"], errorMessage: "No object at document path c" }],
  });
  assert.equal(r.applied.completions[0].command.action, "detete");
  assert.equal(r.sync.diff.completions[0].command.action, "detete");
  assert.deepEqual(r.sync.mappedPaths, { "x,1": ["x", "2"] });
  assert.equal(r.errors[0].action, "detete");
  const full = resultFromWire({ applied: { from: 0, completions: [] }, sync: { isPartial: false, latest: { commandCount: 2, document: { k: {} } } } });
  assert.deepEqual(full.sync, { isPartial: false, latest: { commandCount: 2, document: { k: {} } } });
});

test("a frame that is not a map is refused", () => {
  assert.throws(() => decodeFrame(new Uint8Array([0x93, 1, 2, 3])), /not a MessagePack map/);
});
