// Signed tokens through the JavaScript client: a JWT in ?token= (what a browser can send),
// rights per model, and renewal with setToken() keeping the connection past the first exp.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { HubClient, CommandAction } from "../src/index.js";
import { startHub, tempDir, waitFor, sleep } from "./hub.js";

const SECRET = "js-test-secret-of-at-least-32-bytes-0123";

function b64url(text) {
  return Buffer.from(text).toString("base64url");
}

/** An HS256 JWT for `sub`, valid `ttl` seconds, with `models` ({pattern: "r"|"rw"}). */
function mint(sub, ttl, models) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + ttl, models }));
  const sig = createHmac("sha256", SECRET).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

test("a JWT in ?token=, rights per model, renewal past exp with setToken", async (t) => {
  const dir = tempDir("fo-js-token-");
  const secret = join(dir.dir, "secret");
  writeFileSync(secret, SECRET + "\n");
  const hub = await startHub({ args: ["--jwt-secret-file", secret] });
  t.after(async () => {
    await hub.stop();
    dir.remove();
  });

  const client = new HubClient({ url: hub.url, token: mint("ann", 3, { "todos:*": "rw", ro: "r" }), backoffInitial: 50 });
  const statuses = [];
  client.on("status", (s) => statuses.push(s));
  const errors = [];
  const list = client.open("todos:js");
  await list.ready;
  const ro = client.open("ro");
  ro.on("error", (e) => errors.push(e));
  await ro.ready;

  // A write on "r" is refused by the hub with forbidden.
  list.apply({ action: CommandAction.Update, path: [], props: { a: 1 } });
  await list.settled();
  ro.apply({ action: CommandAction.Update, path: [], props: { b: 1 } });
  await waitFor(() => errors.some((e) => e.code === "forbidden"), 5000, "forbidden on ro");

  // A bad token is refused; the connection goes on as it was.
  await assert.rejects(client.setToken("not.a.token"), (e) => e.code === "unauthorized");
  assert.equal(client.status, "open");
  // A fresh one keeps the connection past the first exp (3 s).
  assert.equal(await client.setToken(mint("ann", 60, { "todos:*": "rw" })), true);
  await sleep(4000);
  assert.equal(client.status, "open");
  assert.deepEqual(statuses.filter((s) => s === "offline"), [], "the connection dropped");
  list.apply({ action: CommandAction.Update, path: [], props: { a: 2 } });
  await list.settled();
  assert.equal(list.getDocument().a, 2);
  client.close();
});

test("without renewal the hub closes at exp, with 4401", async (t) => {
  const dir = tempDir("fo-js-token-");
  const secret = join(dir.dir, "secret");
  writeFileSync(secret, SECRET);
  const hub = await startHub({ args: ["--jwt-secret-file", secret] });
  t.after(async () => {
    await hub.stop();
    dir.remove();
  });
  const { WebSocket } = await import("ws");
  const ws = new WebSocket(`${hub.url}?token=${mint("bo", 2, { "*": "r" })}`, "flushout.v1");
  const closed = new Promise((res) => ws.on("close", (code, reason) => res({ code, reason: String(reason) })));
  const t0 = Date.now();
  const { code, reason } = await closed;
  assert.equal(code, 4401);
  assert.equal(reason, "token expired");
  assert.ok(Date.now() - t0 < 4000, `closed after ${Date.now() - t0} ms`);
});
