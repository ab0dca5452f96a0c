// Every connection failure is an `error` event on the client that says why: refused, the
// upgrade's HTTP status, a connection closed with its code, a timeout. Against a real hub
// (and a bare TCP listener) over loopback.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { HubClient } from "../src/index.js";
import { startHub, tempDir } from "./hub.js";

/** The first client-level error of a client made with `options`, then closes it. */
function firstError(options) {
  return new Promise((resolve, reject) => {
    const statuses = [];
    const c = new HubClient({ backoffInitial: 50, backoffMax: 100, watchNetwork: false, autoConnect: false, ...options });
    c.on("status", (s) => statuses.push(s));
    c.connect();
    const timer = setTimeout(() => {
      c.close();
      reject(new Error(`no error event within 5 s (statuses: ${statuses.join(" ")})`));
    }, 5000);
    c.on("error", (e) => {
      clearTimeout(timer);
      const seen = [...statuses];
      c.close();
      resolve({ ...e, statuses: seen });
    });
  });
}

/** A port on which nothing listens (bound, then released). */
async function closedPort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * A WebSocket that, as a browser's, says nothing in its error event: the client must
 * find out by itself (probeFailure).
 */
class MuteWebSocket extends WebSocket {
  set onerror(fn) {
    super.onerror = fn ? () => fn({ type: "error" }) : null;
  }
  get onerror() {
    return super.onerror;
  }
}

test("connection refused is reported as such", async () => {
  const port = await closedPort();
  const e = await firstError({ url: `ws://127.0.0.1:${port}/v1/ws` });
  assert.equal(e.code, "connect");
  assert.equal(e.message, `connection refused (127.0.0.1:${port})`);
  assert.equal(e.url, `ws://127.0.0.1:${port}/v1/ws`);
  assert.deepEqual(e.statuses, ["connecting"]); // the error comes before the status goes offline
});

test("a wrong path says upgrade refused: HTTP 404, with the hub's path", async () => {
  const hub = await startHub();
  try {
    const e = await firstError({ url: `ws://127.0.0.1:${hub.port}/ws` });
    assert.equal(e.code, "connect");
    assert.equal(e.status, 404);
    assert.equal(e.message, "upgrade refused: HTTP 404 (no WebSocket endpoint at /ws; the hub's is /v1/ws)");
  } finally {
    await hub.stop();
  }
});

test("a hub that requires a token: HTTP 401 without one or with a bad one; the right one connects", async () => {
  const tmp = tempDir();
  const auth = join(tmp.dir, "auth.txt");
  writeFileSync(auth, "sesame todos:* rw\n");
  const hub = await startHub({ args: ["--auth", auth] });
  try {
    for (const token of [undefined, "wrong"]) {
      const e = await firstError({ url: hub.url, token });
      assert.equal(e.code, "connect");
      assert.equal(e.status, 401);
      assert.equal(e.message, "upgrade refused: HTTP 401 (missing or bad token)");
    }
    const c = new HubClient({ url: hub.url, token: "sesame", watchNetwork: false });
    const errors = [];
    c.on("error", (e) => errors.push(e));
    await new Promise((r) => c.on("welcome", r));
    c.close();
    assert.deepEqual(errors, []);
  } finally {
    await hub.stop();
    tmp.remove();
  }
});

test("an open connection the hub closes: code closed with the close code", async () => {
  const hub = await startHub();
  const c = new HubClient({ url: hub.url, watchNetwork: false, backoffInitial: 50, backoffMax: 100 });
  try {
    await new Promise((r) => c.on("welcome", r));
    const got = new Promise((r) => c.once("error", r));
    await hub.stop(); // SIGTERM: the hub closes its connections with 1001
    const e = await got;
    assert.equal(e.code, "closed");
    assert.equal(e.closeCode, 1001);
    assert.match(e.message, /^connection closed: 1001 \(/);
  } finally {
    c.close();
  }
});

test("a WebSocket that hides why (as browsers do): the client probes and still says refused or reachable", async () => {
  const port = await closedPort();
  let e = await firstError({ url: `ws://127.0.0.1:${port}/v1/ws`, WebSocket: MuteWebSocket });
  assert.equal(e.code, "connect");
  assert.match(e.message, new RegExp(`^cannot reach 127\\.0\\.0\\.1:${port}: connection refused`));
  const hub = await startHub();
  try {
    e = await firstError({ url: `ws://127.0.0.1:${hub.port}/nope`, WebSocket: MuteWebSocket });
    assert.equal(e.code, "connect");
    assert.match(e.message, new RegExp(`^upgrade refused by 127\\.0\\.0\\.1:${hub.port}: it answers HTTP but the WebSocket API hides the HTTP status; the path is /nope, the hub's is /v1/ws`));
  } finally {
    await hub.stop();
  }
});

test("a server that accepts and never answers: connect_timeout", async () => {
  const sockets = [];
  const srv = createServer((s) => sockets.push(s));
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  try {
    const t0 = Date.now();
    const e = await firstError({ url: `ws://127.0.0.1:${port}/v1/ws`, connectTimeout: 300 });
    assert.equal(e.code, "connect_timeout");
    assert.equal(e.message, `no welcome from 127.0.0.1:${port} within 300 ms`);
    assert.ok(Date.now() - t0 >= 290);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => srv.close(r));
  }
});
