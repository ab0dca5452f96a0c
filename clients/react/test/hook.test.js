// useFlushout in headless Chromium (Debian's `chromium`, driven by playwright-core)
// against a real hub that serves the test page (test/page.jsx bundled with esbuild).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";
import { startHub, httpSnapshot, PUSH_DEADLINE_MS } from "../../js/test/hub.js";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, "..");
const dist = join(pkg, "test-dist");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const Create = "create";

let hub, browser;

before(async () => {
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  writeFileSync(join(dist, "index.html"), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><div id="root"></div><script type="module" src="page.js"></script>\n');
  await esbuild.build({
    entryPoints: [join(here, "page.jsx")],
    outfile: join(dist, "page.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    jsx: "automatic",
    // React's development build: its warnings reach the console, which the test reads.
    define: { "process.env.NODE_ENV": '"development"' },
    alias: {
      "flushout-hub-react": join(pkg, "src/index.js"),
      "flushout-hub-client": join(pkg, "../js/src/index.js"),
    },
    nodePaths: [join(pkg, "node_modules")],
    external: ["ws"],
    logLevel: "warning",
  });
  hub = await startHub({ store: "memory", staticDir: dist });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (hub) await hub.stop();
  rmSync(dist, { recursive: true, force: true });
});

async function openPage(query) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  await page.goto(`${hub.http}/?${new URLSearchParams(query)}`);
  return { context, page, problems };
}

const stateOf = async (page, id = "a") => JSON.parse(await page.locator(`#${id}`).textContent());
const ready = (page, id = "a") => page.waitForSelector(`#${id}[data-ready="true"][data-status="open"]`, { timeout: 10000 });

test("doc, apply, status, pending and presence across two browsers, pushed", async (t) => {
  const list = `hook:live${Date.now() % 100000}`;
  const a = await openPage({ list, name: "Ann" });
  const b = await openPage({ list, name: "Bob" });
  try {
    await ready(a.page);
    await ready(b.page);
    // presence: each sees the other's state, not its own
    await a.page.waitForFunction(() => window.hooks.a.presence.some((p) => p.state.name === "Bob"), null, { timeout: PUSH_DEADLINE_MS });
    await b.page.waitForFunction(() => window.hooks.a.presence.some((p) => p.state.name === "Ann"), null, { timeout: PUSH_DEADLINE_MS });
    assert.equal((await stateOf(a.page)).presence.length, 1);

    const t0 = Date.now();
    const r = await a.page.evaluate((Create) => {
      const res = window.hooks.a.apply({ action: Create, path: ["todos"], props: { text: "Milk", done: false }, parentDefault: {} });
      // pending counts the unacknowledged command at once, in the same task
      return { res, pending: window.client.models.values().next().value.pendingCount };
    }, Create);
    assert.equal(r.res.isSuccess, true);
    assert.equal(r.pending, 1);
    await a.page.waitForSelector('#a[data-pending="1"]', { timeout: PUSH_DEADLINE_MS }).catch(() => {}); // may already be acked
    await b.page.waitForFunction((id) => window.hooks.a.doc?.todos?.[id]?.text === "Milk", r.res.createdId, { timeout: PUSH_DEADLINE_MS, polling: 10 });
    t.diagnostic(`the other browser saw the create after ${Date.now() - t0} ms`);
    await a.page.waitForSelector('#a[data-pending="0"]', { timeout: PUSH_DEADLINE_MS });

    // doc is a new object per change (React compares by identity) and equals the hub's
    const before = await a.page.evaluate(() => (window.docBefore = window.hooks.a.doc, true));
    assert.ok(before);
    await b.page.evaluate((id) => window.hooks.a.apply({ action: "update", path: ["todos", id], props: { done: true } }), r.res.createdId);
    await a.page.waitForFunction((id) => window.hooks.a.doc.todos[id].done === true, r.res.createdId, { timeout: PUSH_DEADLINE_MS, polling: 10 });
    assert.equal(await a.page.evaluate(() => window.hooks.a.doc !== window.docBefore && window.docBefore.todos !== undefined), true);
    await b.page.waitForSelector('#a[data-pending="0"]', { timeout: PUSH_DEADLINE_MS });
    assert.deepEqual((await stateOf(a.page)).doc, (await httpSnapshot(hub, list)).document);

    // a create's result, before ready: nothing applied, an error result
    // (covered by the types; here: apply on a model that is ready returns createdId)
    assert.match(r.res.createdId, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems, []);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});

test("two components share one subscription; unmounting one keeps the other live, the last unsubscribes", async () => {
  const list = `hook:share${Date.now() % 100000}`;
  const a = await openPage({ list, two: "1" });
  const other = await openPage({ list, name: "Other" });
  try {
    await ready(a.page, "a");
    await ready(a.page, "b");
    await ready(other.page);
    assert.equal(await a.page.evaluate(() => window.client.models.size), 1);
    await a.page.evaluate(() => window.setShown({ a: false, b: true }));
    await a.page.waitForSelector("#a", { state: "detached" });
    await other.page.evaluate(() => window.hooks.a.apply({ action: "create", path: ["todos"], props: { text: "Eggs" }, parentDefault: {} }));
    await a.page.waitForFunction(() => Object.values(window.hooks.b.doc?.todos || {}).some((t) => t.text === "Eggs"), null, { timeout: PUSH_DEADLINE_MS });
    assert.equal(await a.page.evaluate(() => window.client.models.size), 1);
    // Other's presence was seen; the last component goes: the model is closed (unsub)
    await a.page.evaluate(() => window.setShown({ a: false, b: false }));
    await a.page.waitForFunction(() => window.client.models.size === 0, null, { timeout: PUSH_DEADLINE_MS });
    // and remounting subscribes again, with the current document
    await a.page.evaluate(() => window.setShown({ a: true, b: false }));
    await ready(a.page, "a");
    const s = await stateOf(a.page, "a");
    assert.deepEqual(Object.values(s.doc.todos).map((t) => t.text), ["Eggs"]);
    assert.deepEqual(a.problems, []);
  } finally {
    await a.context.close();
    await other.context.close();
  }
});

test("offline: status says so, pending counts local edits; back online they reach the others; a rejected command is the hook's error", async () => {
  const list = `hook:offline${Date.now() % 100000}`;
  const a = await openPage({ list, name: "Ann" });
  const b = await openPage({ list, name: "Bob" });
  try {
    await ready(a.page);
    await ready(b.page);
    const ids = await a.page.evaluate(() => ["Keep", "Doomed"].map((text) => window.hooks.a.apply({ action: "create", path: ["todos"], props: { text }, parentDefault: {} }).createdId));
    await b.page.waitForFunction((n) => Object.keys(window.hooks.a.doc?.todos || {}).length === n, 2, { timeout: PUSH_DEADLINE_MS });

    await b.context.setOffline(true);
    await b.page.waitForSelector('#a[data-status="offline"]', { timeout: 5000 });
    await b.page.evaluate(([keep, doomed]) => {
      window.hooks.a.apply({ action: "update", path: ["todos", keep], props: { text: "Keep (Bob)" } });
      window.hooks.a.apply({ action: "update", path: ["todos", doomed], props: { text: "Doomed (Bob)" } });
    }, ids);
    await b.page.waitForSelector('#a[data-pending="2"]', { timeout: PUSH_DEADLINE_MS });
    // Meanwhile Ann deletes the todo Bob edits: his update of it will be rejected.
    await a.page.evaluate((doomed) => window.hooks.a.apply({ action: "delete", path: ["todos", doomed] }), ids[1]);
    await a.page.waitForSelector('#a[data-pending="0"]', { timeout: PUSH_DEADLINE_MS });

    await b.context.setOffline(false);
    await b.page.waitForSelector('#a[data-status="open"][data-pending="0"]', { timeout: 10000 });
    await a.page.waitForFunction((keep) => window.hooks.a.doc.todos[keep]?.text === "Keep (Bob)", ids[0], { timeout: PUSH_DEADLINE_MS });
    await b.page.waitForFunction(() => window.hooks.a.error?.code === "rejected", null, { timeout: PUSH_DEADLINE_MS });
    const err = await b.page.evaluate(() => ({ message: window.hooks.a.error.message, errors: window.hooks.a.error.errors }));
    assert.equal(err.errors.length, 1);
    assert.match(err.message, /^update todos\/.+: /);
    const bs = await stateOf(b.page);
    assert.deepEqual(bs.doc, (await httpSnapshot(hub, list)).document);
    assert.deepEqual(Object.values(bs.doc.todos).map((t) => t.text), ["Keep (Bob)"]);
    await b.page.evaluate(() => window.hooks.a.dismissError());
    await b.page.waitForFunction(() => window.hooks.a.error === null, null, { timeout: PUSH_DEADLINE_MS });
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems.filter((p) => !/ERR_INTERNET_DISCONNECTED|WebSocket/.test(p)), []);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});

test("connection failures in the browser: the hook's error says why (refused; upgrade refused at a wrong path)", async () => {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  const refused = await openPage({ url: `ws://127.0.0.1:${port}/v1/ws` });
  const wrong = await openPage({ url: `ws://127.0.0.1:${hub.port}/ws` });
  try {
    await refused.page.waitForFunction(() => window.hooks.a?.error?.code === "connect", null, { timeout: 5000 });
    const e1 = await refused.page.evaluate(() => window.hooks.a.error.message);
    assert.equal(e1, `cannot reach 127.0.0.1:${port}: connection refused, host not found or TLS failure (the browser does not say which)`);
    await wrong.page.waitForFunction(() => window.hooks.a?.error?.code === "connect", null, { timeout: 5000 });
    const e2 = await wrong.page.evaluate(() => window.hooks.a.error.message);
    assert.equal(e2, `upgrade refused by 127.0.0.1:${hub.port}: it answers HTTP but the WebSocket API hides the HTTP status; the path is /ws, the hub's is /v1/ws; a token the hub requires may be missing or bad`);
    assert.notEqual(await wrong.page.locator("#a").getAttribute("data-status"), "open");
  } finally {
    await refused.context.close();
    await wrong.context.close();
  }
});
