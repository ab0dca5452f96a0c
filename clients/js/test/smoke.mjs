// smoke.mjs HUB_JS - run from an app folder where flushout-hub-client is installed: imports
// it by name (as the app would), starts a real hub (test/hub.js of the source tree) and
// checks that two clients share a document, that presence and the /wire entry work, and
// that a wrong path is an error event with the upgrade's HTTP status.
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { HubClient, CommandAction } from "flushout-hub-client";
import { encodeFrame, decodeFrame } from "flushout-hub-client/wire";

const { startHub, waitFor } = await import(pathToFileURL(process.argv[2]).href);
const hub = await startHub();
try {
  const a = new HubClient({ url: hub.url });
  const b = new HubClient({ url: hub.url });
  const ma = a.open("todos:smoke");
  const mb = b.open("todos:smoke");
  await Promise.all([ma.ready, mb.ready]);
  const r = ma.apply({ action: CommandAction.Create, path: ["todos"], props: { text: "Milk" }, parentDefault: {} });
  assert.ok(r.isSuccess && typeof r.createdId === "string");
  await waitFor(() => mb.getDocument().todos?.[r.createdId]?.text === "Milk", 5000, "the other client sees the create");
  ma.setPresence({ name: "Ann" });
  await waitFor(() => [...mb.peers.values()].some((p) => p.name === "Ann"), 5000, "presence");
  assert.deepEqual(decodeFrame(encodeFrame({ t: "ok", rid: 1 })), { t: "ok", rid: 1 });

  const wrong = new HubClient({ url: `ws://127.0.0.1:${hub.port}/ws` });
  const e = await new Promise((res) => wrong.once("error", res));
  wrong.close();
  assert.equal(e.status, 404);
  assert.match(e.message, /^upgrade refused: HTTP 404/);
  await ma.settled();
  a.close();
  b.close();
} finally {
  await hub.stop();
}
console.log("smoke.mjs: the installed package talks to the hub");
