// End to end in headless Chromium (Debian's `chromium`, driven by playwright-core): the
// hub serves the built demo; two browser contexts (two users) edit the same list.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";
import { startHub, httpSnapshot, waitFor, PUSH_DEADLINE_MS } from "../../js/test/hub.js";

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, "../dist");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = process.env.FLUSHOUT_ARTIFACTS || resolve(here, "../../../build/web-e2e");

let hub, browser;

before(async () => {
  if (!existsSync(join(dist, "index.html"))) execFileSync(process.execPath, [resolve(here, "../build.mjs")], { stdio: "inherit" });
  mkdirSync(shots, { recursive: true });
  hub = await startHub({ store: "memory", staticDir: dist });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (hub) await hub.stop(); // fails on a sanitizer report or a bad exit
});

async function openUser(list, name) {
  const context = await browser.newContext({ viewport: { width: 760, height: 720 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  await page.goto(`${hub.http}/?list=${encodeURIComponent(list)}&name=${encodeURIComponent(name)}`);
  await page.waitForSelector('#status[data-status="open"]', { timeout: 10000 });
  await page.waitForSelector("#new-todo:not([disabled])");
  return { context, page, problems };
}

const item = (page, text) => page.locator("li.todo", { has: page.locator(".text", { hasText: new RegExp(`^${text}$`) }) });
const texts = (page) => page.locator("li.todo .text").allTextContents();
/** JSON with sorted keys: documents compare equal whatever their key order. */
const canon = (v) => JSON.stringify(v, (_k, x) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x));
const docOf = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.flushoutDemo.model.getDocument())));

async function add(page, text) {
  await page.fill("#new-todo", text);
  await page.press("#new-todo", "Enter");
}

async function edit(page, from, to) {
  await item(page, from).locator(".text").click();
  const input = page.locator("li.todo .edit");
  await input.fill(to);
  await input.press("Enter");
}

/** Runs `action` in one page and returns how long until `cond` holds in the other. */
async function within(action, otherPage, cond, arg) {
  const t0 = Date.now();
  await action();
  await otherPage.waitForFunction(cond, arg, { timeout: PUSH_DEADLINE_MS, polling: 10 });
  return Date.now() - t0;
}

test("two users see each other's creates, edits and deletes as pushes, and who is here", async (t) => {
  const list = `e2e:live${Date.now() % 100000}`;
  const a = await openUser(list, "Ann Lee");
  const b = await openUser(list, "Bob Stone");
  try {
    // Presence: each sees the other.
    await a.page.waitForSelector('#people .peer:has-text("Bob Stone")', { timeout: PUSH_DEADLINE_MS });
    await b.page.waitForSelector('#people .peer:has-text("Ann Lee")', { timeout: PUSH_DEADLINE_MS });

    const seen = []; // push latencies, reported (bench/ measures latency; this is not a timing test)
    const hasText = (t) => [...document.querySelectorAll("li.todo .text")].some((e) => e.textContent === t);
    let ms = await within(() => add(a.page, "Buy oat milk"), b.page, hasText, "Buy oat milk");
    seen.push(`create ${ms} ms`);
    ms = await within(() => add(b.page, "Water the plants"), a.page, hasText, "Water the plants");
    seen.push(`create ${ms} ms`);

    // While Bob edits, Ann sees it (presence), then sees the new text.
    await item(b.page, "Buy oat milk").locator(".text").click();
    await a.page.waitForSelector('li.todo .editor-badge:has-text("Bob Stone is editing")', { timeout: PUSH_DEADLINE_MS });
    const input = b.page.locator("li.todo .edit");
    await input.fill("Buy oat milk and bread");
    await a.page.mouse.move(5, 5);
    await a.page.screenshot({ path: join(shots, "editing-ann.png") });
    ms = await within(() => input.press("Enter"), a.page, hasText, "Buy oat milk and bread");
    seen.push(`edit ${ms} ms`);
    await a.page.waitForFunction(() => !document.querySelector("li.todo .editor-badge"), null, { timeout: PUSH_DEADLINE_MS });

    ms = await within(
      () => item(a.page, "Water the plants").locator(".toggle").check(),
      b.page,
      (t) => [...document.querySelectorAll("li.todo")].some((li) => li.querySelector(".text").textContent === t && li.querySelector(".toggle").checked),
      "Water the plants"
    );
    seen.push(`toggle ${ms} ms`);

    await add(a.page, "Call the plumber");
    await b.page.waitForFunction(hasText, "Call the plumber", { timeout: PUSH_DEADLINE_MS });
    ms = await within(() => item(b.page, "Call the plumber").locator(".delete").click(), a.page, (t) => ![...document.querySelectorAll("li.todo .text")].some((e) => e.textContent === t), "Call the plumber");
    seen.push(`delete ${ms} ms`);

    t.diagnostic(`seen by the other browser after: ${seen.join(", ")}`);
    await a.page.waitForSelector('#status[data-status="open"]');
    await b.page.waitForSelector('#status[data-status="open"]');
    assert.deepEqual(await texts(a.page), ["Buy oat milk and bread", "Water the plants"]);
    assert.deepEqual(await texts(b.page), ["Buy oat milk and bread", "Water the plants"]);
    assert.deepEqual(await docOf(a.page), (await httpSnapshot(hub, list)).document);
    assert.deepEqual(await docOf(b.page), await docOf(a.page));
    await a.page.mouse.move(5, 5);
    await a.page.waitForTimeout(250);
    await a.page.screenshot({ path: join(shots, "live-ann.png") });
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems, []);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});

test("one user goes offline, keeps editing, reconnects: both converge with nothing lost", async (t) => {
  const list = `e2e:offline${Date.now() % 100000}`;
  const a = await openUser(list, "Ann Lee");
  const b = await openUser(list, "Bob Stone");
  try {
    for (const t of ["Book flights", "Renew passport", "Pack the bags"]) await add(a.page, t);
    await b.page.waitForFunction(() => document.querySelectorAll("li.todo").length === 3, null, { timeout: PUSH_DEADLINE_MS });

    await b.context.setOffline(true);
    await b.page.waitForSelector('#status[data-status="offline"]', { timeout: 5000 });
    await a.page.waitForFunction(() => !document.querySelector("#people .peer"), null, { timeout: 5000 });

    // Offline, Bob's edits apply locally at once.
    await add(b.page, "Buy sunscreen");
    await add(b.page, "Print the tickets");
    await edit(b.page, "Book flights", "Book flights to Lisbon");
    await item(b.page, "Renew passport").locator(".toggle").check();
    await item(b.page, "Pack the bags").locator(".delete").click();
    assert.deepEqual(await texts(b.page), ["Book flights to Lisbon", "Renew passport", "Buy sunscreen", "Print the tickets"]);
    const label = await b.page.locator("#status-label").textContent();
    assert.match(label, /^Offline · 5 changes waiting$/);
    await b.page.mouse.move(5, 5);
    await b.page.waitForTimeout(250); // let the new rows finish fading in
    await b.page.screenshot({ path: join(shots, "offline-bob.png") });

    // Meanwhile Ann, online, edits the same list (one todo Bob touched too).
    await add(a.page, "Order a taxi");
    await edit(a.page, "Renew passport", "Renew passport (Ann)");
    await a.page.waitForTimeout(300);
    assert.deepEqual(await texts(a.page), ["Book flights", "Renew passport (Ann)", "Pack the bags", "Order a taxi"], "Bob's offline edits have not leaked");

    await b.context.setOffline(false);
    const t0 = Date.now();
    await b.page.waitForSelector('#status[data-status="open"][data-pending="0"]', { timeout: 10000 });
    await waitFor(async () => {
      const [da, db, snap] = await Promise.all([docOf(a.page), docOf(b.page), httpSnapshot(hub, list)]);
      return canon(da) === canon(db) && canon(db) === canon(snap.document);
    }, 5000, "both pages and the hub converge").catch(async (e) => {
      throw new Error(`${e.message}\nA: ${JSON.stringify(await docOf(a.page))}\nB: ${JSON.stringify(await docOf(b.page))}`);
    });
    const caughtUp = Date.now() - t0;

    const expected = ["Book flights to Lisbon", "Renew passport (Ann)", "Order a taxi", "Buy sunscreen", "Print the tickets"];
    const sortedA = (await texts(a.page)).slice().sort();
    assert.deepEqual(sortedA, expected.slice().sort(), "nothing lost, nothing duplicated");
    assert.deepEqual(await texts(b.page), await texts(a.page), "same order on both");
    const doc = await docOf(a.page);
    const passport = Object.values(doc.todos).find((t) => t.text === "Renew passport (Ann)");
    assert.equal(passport.done, true, "Bob's offline check and Ann's edit both kept");
    await a.page.waitForSelector('#people .peer:has-text("Bob Stone")', { timeout: PUSH_DEADLINE_MS });
    await b.page.waitForSelector('#people .peer:has-text("Ann Lee")', { timeout: PUSH_DEADLINE_MS });
    for (const [who, u] of [["bob", b], ["ann", a]]) {
      await u.page.mouse.move(5, 5);
      await u.page.waitForTimeout(250);
      await u.page.screenshot({ path: join(shots, `converged-${who}.png`) });
    }
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems.filter((p) => !/ERR_INTERNET_DISCONNECTED|WebSocket/.test(p)), []);
    t.diagnostic(`caught up ${caughtUp} ms after going online; screenshots in ${shots}`);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});

test("a command the hub rejects is shown to the user with the hub's message", async () => {
  const list = `e2e:reject${Date.now() % 100000}`;
  const a = await openUser(list, "Ann Lee");
  const b = await openUser(list, "Bob Stone");
  try {
    await add(a.page, "Return the books");
    await b.page.waitForFunction(() => document.querySelectorAll("li.todo").length === 1, null, { timeout: PUSH_DEADLINE_MS });
    await b.context.setOffline(true);
    await b.page.waitForSelector('#status[data-status="offline"]', { timeout: 5000 });
    await edit(b.page, "Return the books", "Return the books today");
    await item(a.page, "Return the books").locator(".delete").click(); // meanwhile, Ann deletes it
    await a.page.waitForSelector('#status[data-status="open"][data-pending="0"]', { timeout: PUSH_DEADLINE_MS });
    assert.equal(await b.page.locator("#notice").count(), 0);
    await b.context.setOffline(false);
    await b.page.waitForSelector("#notice", { timeout: 10000 });
    assert.match(await b.page.locator("#notice .notice-text").textContent(), /^Not saved: .+/);
    await b.page.waitForFunction(() => document.querySelectorAll("li.todo").length === 0, null, { timeout: PUSH_DEADLINE_MS });
    await b.page.locator('#notice button[aria-label="Dismiss"]').click();
    await b.page.waitForSelector("#notice", { state: "detached", timeout: PUSH_DEADLINE_MS });
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems.filter((p) => !/ERR_INTERNET_DISCONNECTED|WebSocket/.test(p)), []);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});

// The article's rules (rules.lua) on a hub with identities from tokens: the hub's stamps
// on the page, the quota and the text limit as messages. Needs a hub with --interceptors
// and --jwt-secret-file and the CLI's `flushout token`; skipped on a hub without them.
test("with rules.lua and tokens: the page shows the hub's stamps; quota and text limit are shown as the rules' messages", async (t) => {
  const hubBin = process.env.FLUSHOUT_HUB || resolve(here, "../../../build/asan/hub/flushout-hub");
  const cli = resolve(dirname(hubBin), "../clients/flushout");
  const help = (() => {
    try {
      return execFileSync(hubBin, ["--help"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      return String(e.stdout || "") + String(e.stderr || "");
    }
  })();
  const hasToken = (() => {
    try {
      execFileSync(cli, ["token", "--help"], { stdio: "ignore" });
      return true;
    } catch (_) {
      return false;
    }
  })();
  if (!help.includes("--interceptors") || !help.includes("--jwt-secret-file") || !hasToken) {
    t.skip("this hub has no --interceptors/--jwt-secret-file, or the CLI no `token` (issue 9 items 1-2)");
    return;
  }
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const dir = mkdtempSync(join(tmpdir(), "fo-web-rules-"));
  const secret = join(dir, "secret");
  writeFileSync(secret, "e2e-secret-0123456789abcdef0123456789abcdef\n", { mode: 0o600 });
  const mint = (sub) => execFileSync(cli, ["token", "--secret-file", secret, "--sub", sub, "--models", "todos:*=rw", "--ttl", "1h"], { encoding: "utf8" }).trim();
  const rulesHub = await startHub({ store: "memory", staticDir: dist, args: ["--interceptors", resolve(here, "../rules.lua"), "--jwt-secret-file", secret] });
  const list = `todos:e2e-rules${Date.now() % 100000}`;
  const open = async (sub, name) => {
    const context = await browser.newContext({ viewport: { width: 760, height: 720 } });
    const page = await context.newPage();
    await page.goto(`${rulesHub.http}/?list=${list}&name=${encodeURIComponent(name)}&token=${mint(sub)}`);
    await page.waitForSelector('#status[data-status="open"]', { timeout: 10000 });
    await page.waitForSelector("#new-todo:not([disabled])");
    return { context, page };
  };
  const a = await open("ann", "Ann Lee");
  const b = await open("bob", "Bob Stone");
  try {
    const t0 = Date.now();
    await add(a.page, "Stamp me");
    await a.page.waitForSelector('#status[data-status="open"][data-pending="0"]', { timeout: PUSH_DEADLINE_MS });
    const t1 = Date.now();
    const snap = await httpSnapshot(rulesHub, list).catch(() => null);
    const doc = snap ? snap.document : await docOf(a.page);
    const [stamped] = Object.values(doc.todos);
    assert.equal(stamped.by, "ann", "by is the token's sub, not the name the page sent");
    assert.ok(stamped.createdAt >= t0 - 1000 && stamped.createdAt <= t1 + 1000, "createdAt is the hub's now");
    for (const p of [a.page, b.page]) {
      await p.waitForSelector('li.todo .meta .by:text-is("ann")', { timeout: PUSH_DEADLINE_MS });
      assert.equal(await p.locator("li.todo .meta time.created").getAttribute("datetime"), new Date(stamped.createdAt).toISOString());
    }
    // Quota: 49 more make 50; the 51st is rejected with the rule's message, and goes away.
    await a.page.evaluate(() => {
      for (let i = 2; i <= 50; i++) window.flushoutDemo.model.apply({ action: "create", path: ["todos"], props: { text: `todo ${i}`, done: false } });
    });
    await a.page.waitForSelector('#status[data-status="open"][data-pending="0"]', { timeout: 5000 });
    await b.page.waitForFunction(() => document.querySelectorAll("li.todo").length === 50, null, { timeout: 5000 });
    await add(b.page, "One too many");
    await b.page.waitForSelector('#notice:has-text("a list holds at most 50 todos")', { timeout: PUSH_DEADLINE_MS });
    await b.page.waitForFunction(() => document.querySelectorAll("li.todo").length === 50, null, { timeout: PUSH_DEADLINE_MS });
    // Text limit: 201 characters (the input stops at 200; the rule is what holds).
    await b.page.locator('#notice button[aria-label="Dismiss"]').click();
    const id = Object.keys(doc.todos)[0];
    await b.page.evaluate((tid) => window.flushoutDemo.model.apply({ action: "update", path: ["todos", tid], props: { text: "x".repeat(201) } }), id);
    await b.page.waitForSelector('#notice:has-text("at most 200 characters")', { timeout: PUSH_DEADLINE_MS });
    await b.page.waitForFunction(() => [...document.querySelectorAll("li.todo .text")].some((e) => e.textContent === "Stamp me"), null, { timeout: PUSH_DEADLINE_MS });
    await b.page.screenshot({ path: join(shots, "rules-bob.png") });
  } finally {
    await a.context.close();
    await b.context.close();
    await rulesHub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
