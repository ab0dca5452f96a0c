// The console in headless Chromium (Debian's `chromium`, driven by playwright-core)
// against a real hub: a writer flushes to a model, a subscriber stops reading; the
// console shows the model, its count moving, the lagging subscriber, and live charts.
// Then who may see what: an open hub on loopback, and a hub with --auth and admin tokens.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";
import { startHub, tempDir, sleep, PUSH_DEADLINE_MS } from "../../js/test/hub.js";
import { connect, subscribe, flushUpdate } from "./rawws.js";

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, "../dist");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = process.env.FLUSHOUT_ARTIFACTS || resolve(here, "../../../build/console-e2e");

let browser;
const hubs = [];

before(async () => {
  if (!existsSync(join(dist, "index.html"))) execFileSync(process.execPath, [resolve(here, "../build.mjs")], { stdio: "inherit" });
  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (browser) await browser.close();
  for (const h of hubs) await h.stop(); // fails on a sanitizer report or a bad exit
});

async function hub(args = []) {
  const h = await startHub({ store: "memory", args: ["--console-dir", dist, ...args] });
  hubs.push(h);
  return h;
}

async function openConsole(h, path) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  await page.goto(`${h.http}${path}`);
  return { context, page, problems };
}

const countOf = (page) => page.$eval("#model-stats", (e) => Number(e.dataset.count));

test("the console shows a model being written, its count moving, and a lagging subscriber", async () => {
  // A small --max-queue: the reader that stops reading lags after a few big pushes.
  const h = await hub(["--max-queue", "64K"]);
  const model = "console:e2e";
  const writer = await connect(h.port);
  let count = await subscribe(writer, model, "writer-1");
  const slow = await connect(h.port);
  await subscribe(slow, model, "slow-reader");
  slow.send({ t: "presence", model, state: { name: "Slow Reader" }, rid: 9 });
  await slow.next((m) => m.rid === 9);
  slow.stopReading();

  let seq = 0;
  let writing = true;
  const big = "x".repeat(60 * 1024); // under the wire's 64 KiB string limit: three per flush
  const loop = (async () => {
    while (writing) {
      seq++;
      // Big values for a while (the slow reader's socket and queue fill), then small ones.
      count = await flushUpdate(writer, model, seq, count, seq <= 60 ? { n: seq, a: big, b: big, c: big } : { n: seq, a: "", b: "", c: "" });
      await sleep(seq <= 60 ? 20 : 150);
    }
  })();

  const c = await openConsole(h, "/console/#/models");
  try {
    await c.page.waitForSelector(`#feed-status[data-status="live"]`, { timeout: 10000 });
    const row = c.page.locator(`#model-table tr[data-model="${model}"]`);
    await row.waitFor({ timeout: 10000 });
    await row.click();
    await c.page.waitForSelector(`#model-stats[data-model="${model}"]`, { timeout: 5000 });

    // Live counts move: the count shown grows while the writer writes.
    const first = await countOf(c.page);
    await c.page.waitForFunction((n) => Number(document.querySelector("#model-stats").dataset.count) > n, first, { timeout: 5000, polling: 100 });

    // Both subscribers are listed; the one that stopped reading shows up as lagging, with
    // a backlog of queued bytes, and its presence (open hub: read right).
    await c.page.waitForSelector("#subs tr.lagging", { timeout: 20000 });
    const lagging = await c.page.$$eval("#subs tbody tr", (rows) => rows.map((r) => ({ lagging: r.classList.contains("lagging"), client: r.children[1]?.textContent, presence: r.querySelector(".presence")?.textContent })));
    assert.equal(lagging.length, 2, JSON.stringify(lagging));
    const slowRow = lagging.find((r) => r.client === "slow-reader");
    assert.ok(slowRow && slowRow.lagging, JSON.stringify(lagging));
    assert.match(slowRow.presence, /Slow Reader/);
    assert.ok(!lagging.find((r) => r.client === "writer-1").lagging);

    // The document tree and the recent commands are there.
    await c.page.waitForSelector("#model-contents .doc details", { timeout: 5000 });
    await c.page.waitForSelector("#model-contents ol.batches li b", { timeout: 5000 });
    await c.page.mouse.move(5, 5);
    await c.page.screenshot({ path: join(shots, "console-models.png") });

    // Overview: live tiles and charts from the feed.
    await c.page.click('nav a[data-tab="overview"]');
    await c.page.waitForFunction(() => window.flushoutConsole.samples >= 4, null, { timeout: 10000 });
    const samples0 = await c.page.evaluate(() => window.flushoutConsole.samples);
    await c.page.waitForFunction((n) => window.flushoutConsole.samples > n, samples0, { timeout: PUSH_DEADLINE_MS });
    const tiles = await c.page.$$eval(".tile", (ts) => Object.fromEntries(ts.map((t) => [t.id, t.dataset.value])));
    assert.equal(tiles["tile-connections"], "2", JSON.stringify(tiles));
    assert.notEqual(tiles["tile-dropped"], "0", "dropped pushes counted");
    assert.equal(tiles["tile-hot_models"], "1");
    await c.page.waitForFunction(() => document.querySelector("#tile-commands").dataset.value !== "0", null, { timeout: 5000 });
    assert.equal(await c.page.locator("#c-rate canvas").count(), 1);
    await c.page.screenshot({ path: join(shots, "console-overview.png") });
    assert.deepEqual(c.problems, []);
  } finally {
    writing = false;
    await loop.catch(() => {});
    await c.context.close();
    writer.close();
    slow.close();
  }
});

test("access: tokens with and without the admin right, and contents need read rights", async () => {
  const auth = tempDir("fo-console-");
  const file = join(auth.dir, "tokens");
  writeFileSync(
    file,
    ["# token  pattern  rights", "writer-tok  *  rw", "ops-tok  *  admin", "narrow-tok  other:*  admin", "ops-reader  *  admin", "ops-reader  secret:*  r", ""].join("\n")
  );
  const h = await hub(["--auth", file]);
  const model = "secret:plans";
  const w = await connect(h.port, { token: "writer-tok" });
  let count = await subscribe(w, model, "writer");
  w.send({ t: "presence", model, state: { name: "Writer Wu" }, rid: 9 });
  await w.next((m) => m.rid === 9);
  count = await flushUpdate(w, model, 1, count, { plan: "world domination" });

  const get = (path, tok) => fetch(`${h.http}${path}`, { headers: tok ? { Authorization: `Bearer ${tok}` } : {} });
  try {
    // The model endpoints and the feed refuse without the admin right.
    assert.equal((await get("/v1/console/models")).status, 401);
    assert.equal((await get("/v1/console/models", "nope")).status, 401);
    assert.equal((await get("/v1/console/models", "writer-tok")).status, 403);
    assert.equal((await get(`/v1/console/models/${model}`, "writer-tok")).status, 403);
    for (const [tok, status] of [[undefined, 401], ["writer-tok", 403], ["nope", 401]]) {
      await assert.rejects(connect(h.port, { path: "/v1/console/feed", protocol: null, token: tok }), (e) => e.status === status, `feed with ${tok || "no token"}`);
    }
    // The feed is a WebSocket: a plain GET says so.
    assert.equal((await get("/v1/console/feed", "ops-tok")).status, 400);
    // An admin token gets the feed (a sample a second) and the list.
    const feed = await connect(h.port, { path: "/v1/console/feed", protocol: null, token: "ops-tok" });
    const sample = await feed.next((m) => typeof m.t === "number", 3000);
    assert.equal(sample.connections, 1);
    assert.ok(sample.totals.flushes >= 1);
    feed.close();
    const list = await (await get("/v1/console/models", "ops-tok")).json();
    assert.deepEqual(list.models.map((m) => m.name), [model]);
    assert.equal(list.models[0].count, count);

    // Admin without read: counts and subscribers, but no presence, document or batches.
    const d = await (await get(`/v1/console/models/${model}`, "ops-tok")).json();
    assert.equal(d.read, false);
    assert.equal(d.subs.length, 1);
    assert.equal(d.subs[0].has_presence, true);
    assert.equal("presence" in d.subs[0], false);
    assert.equal((await get(`/v1/models/${model}`, "ops-tok")).status, 403);
    assert.equal((await get(`/v1/models/${model}/history?from=0`, "ops-tok")).status, 403);
    // Admin with read: the presence too.
    const d2 = await (await get(`/v1/console/models/${model}`, "ops-reader")).json();
    assert.equal(d2.read, true);
    assert.deepEqual(d2.subs[0].presence, { name: "Writer Wu" });
    // An admin pattern limits which models the console shows at all.
    const narrow = await (await get("/v1/console/models", "narrow-tok")).json();
    assert.deepEqual(narrow.models, []);
    assert.equal((await get(`/v1/console/models/${model}`, "narrow-tok")).status, 403);

    // In the browser: no token, the page says why and asks for one; with ?token= it works.
    const c = await openConsole(h, "/console/");
    await c.page.waitForSelector("#refused:not([hidden])", { timeout: 5000 });
    assert.match(await c.page.textContent("#refused-why"), /^401/);
    await c.context.close();
    const ok = await openConsole(h, "/console/?token=ops-tok#/models");
    await ok.page.waitForSelector(`#model-table tr[data-model="${model}"]`, { timeout: 10000 });
    await ok.page.click(`#model-table tr[data-model="${model}"]`);
    await ok.page.waitForSelector("#model-contents :text('no read right')", { timeout: 5000 });
    assert.deepEqual(ok.problems, []);
    await ok.context.close();
  } finally {
    w.close();
    auth.remove();
  }
});

test("an open hub serves the console on loopback; /console redirects; unknown paths are 404", async () => {
  const h = await hub();
  const r = await fetch(`${h.http}/console`, { redirect: "manual" });
  assert.equal(r.status, 301);
  assert.equal(r.headers.get("location"), "/console/");
  assert.equal((await fetch(`${h.http}/console/index.html`)).status, 200);
  assert.equal((await fetch(`${h.http}/console/nope.js`)).status, 404);
  assert.equal((await fetch(`${h.http}/v1/console/nope`)).status, 404);
  assert.equal((await fetch(`${h.http}/v1/console/models?limit=0`)).status, 400);
  assert.equal((await fetch(`${h.http}/v1/console/models/bad%20name`)).status, 400);
  const m = await (await fetch(`${h.http}/v1/console/models/never:used`)).json();
  assert.deepEqual(m, { name: "never:used", hot: false, read: true });
});
