// The demo's History panel (src/timeline.jsx) in headless Chromium against real hubs: a
// writer page applies a known script of commands, a viewer walks the timeline back and
// forward and checks the list at each step, keeps its place while the writer goes on,
// returns to live; on a hub with a small --history (and the demo's rules) it says where
// history no longer reaches.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";
import { startHub, PUSH_DEADLINE_MS } from "../../js/test/hub.js";

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, "../dist");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = process.env.FLUSHOUT_ARTIFACTS || resolve(here, "../../../build/web-e2e");
const hubBin = process.env.FLUSHOUT_HUB || resolve(here, "../../../build/asan/hub/flushout-hub");

let hub, browser;

before(async () => {
  if (!existsSync(join(dist, "index.html"))) execFileSync(process.execPath, [resolve(here, "../build.mjs")], { stdio: "inherit" });
  mkdirSync(shots, { recursive: true });
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
});

async function openPage(h, list, name, token) {
  const context = await browser.newContext({ viewport: { width: 760, height: 860 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  const q = `list=${encodeURIComponent(list)}&name=${encodeURIComponent(name)}${token ? `&token=${token}` : ""}`;
  await page.goto(`${h.http}/?${q}`);
  await page.waitForSelector('#status[data-status="open"]', { timeout: 10000 });
  await page.waitForSelector("#new-todo:not([disabled])");
  return { context, page, problems };
}

/**
 * Applies `cmds` in the writer page, one flush each, in order. A path segment "$x" is the
 * id created by the command with `as: "x"`. Resolves with the hub's count.
 */
function write(page, cmds) {
  return page.evaluate(async (list) => {
    const m = window.flushoutDemo.model;
    const ids = (window.__ids = window.__ids || {});
    for (const { as, ...c } of list) {
      const cmd = { ...c, path: c.path.map((p) => (p.startsWith("$") ? ids[p.slice(1)] : p)) };
      const r = m.apply(cmd);
      if (!r.isSuccess) throw new Error(`${JSON.stringify(cmd)}: ${r.error}`);
      if (as) ids[as] = r.createdId;
      await m.flush();
    }
    return m.committed;
  }, cmds);
}

const create = (text, as, extra = {}) => ({ action: "create", path: ["todos"], props: { text, done: false, ...extra }, parentDefault: {}, as });

/** The list as the page shows it: ["text", "text ✓", ...]. */
const shown = (page) =>
  page.locator("#todos li.todo").evaluateAll((lis) => lis.map((li) => li.querySelector(".text").textContent + (li.querySelector(".toggle").checked ? " ✓" : "")));

/** Waits for the list after `n` of `live` commands and checks it (sorted: where ties in createdAt leave the order open). */
async function expectAt(page, n, live, expected, what, sorted = false) {
  await page.waitForSelector(`#todos[data-at="${n}"]`, { state: "attached", timeout: 5000 });
  assert.equal(await page.locator("#timeline-label").textContent(), `After ${n} of ${live}`);
  assert.equal(await page.locator("#timeline-slider").inputValue(), String(n));
  const got = await shown(page);
  assert.deepEqual(sorted ? got.sort() : got, sorted ? [...expected].sort() : expected, `the list after ${n} commands`);
  if (what) {
    const cur = page.locator("#timeline-steps li.current");
    await cur.locator(".tl-what").filter({ hasText: what.what }).waitFor({ timeout: 3000 });
    assert.equal(await cur.getAttribute("data-step"), String(n));
    assert.equal(await cur.locator(".tl-what").textContent(), what.what);
    const by = await cur.locator(".tl-by").allTextContents();
    assert.deepEqual(by, what.by ? [what.by] : [], `who made step ${n}`);
  }
}

test("the timeline walks back and forward over a scripted history, marks who made each change, keeps its place while others write, and returns to live", async () => {
  const list = `tl:walk${Date.now() % 100000}`;
  const w = await openPage(hub, list, "Writer");
  const v = await openPage(hub, list, "Viewer");
  try {
    const t0 = Date.now() - 3_600_000; // createdAt as the page sends it without rules: the order of the list
    const count = await write(w.page, [
      create("Buy milk", "milk", { by: "ann", createdAt: t0 + 1 * 420_000 }),
      create("Walk the dog", "dog", { by: "bob", createdAt: t0 + 2 * 420_000 }),
      create("Call mum", "mum", { createdAt: t0 + 3 * 420_000 }), // no `by`: nothing to mark
      { action: "update", path: ["todos", "$milk"], props: { done: true } },
      { action: "update", path: ["todos", "$dog"], props: { text: "Walk the dog twice" } },
      { action: "delete", path: ["todos", "$mum"] },
      create("Pay rent", "rent", { by: "ann", createdAt: t0 + 4 * 420_000 }),
    ]);
    assert.equal(count, 7);
    // What the list was after each number of commands.
    const after = [
      [],
      ["Buy milk"],
      ["Buy milk", "Walk the dog"],
      ["Buy milk", "Walk the dog", "Call mum"],
      ["Buy milk ✓", "Walk the dog", "Call mum"],
      ["Buy milk ✓", "Walk the dog twice", "Call mum"],
      ["Buy milk ✓", "Walk the dog twice"],
      ["Buy milk ✓", "Walk the dog twice", "Pay rent"],
    ];
    const steps = [
      null,
      { what: "added “Buy milk”", by: "ann" },
      { what: "added “Walk the dog”", by: "bob" },
      { what: "added “Call mum”", by: null },
      { what: "ticked “Buy milk”", by: null },
      { what: "renamed “Walk the dog” to “Walk the dog twice”", by: null },
      { what: "deleted “Call mum”", by: null },
      { what: "added “Pay rent”", by: "ann" },
    ];

    const p = v.page;
    await p.waitForFunction(() => document.querySelectorAll("#todos li.todo").length === 3, null, { timeout: 3000 });
    assert.equal(await p.locator("#timeline").count(), 0, "closed by default");
    await p.click("#history-toggle");
    await p.waitForSelector("#timeline-label:text-is('Live · 7 commands')", { timeout: 3000 });
    assert.equal(await p.locator("#timeline-slider").getAttribute("max"), "7");
    // Live: the latest six steps, who made them where it is known.
    await p.locator("#timeline-steps li[data-step='7'] .tl-what").filter({ hasText: "added “Pay rent”" }).waitFor({ timeout: 3000 });
    assert.deepEqual(await p.locator("#timeline-steps li").evaluateAll((lis) => lis.map((l) => l.dataset.step)), ["2", "3", "4", "5", "6", "7"]);
    assert.deepEqual(await p.locator("#timeline-steps li[data-step='2'] .tl-by").allTextContents(), ["bob"]);
    assert.deepEqual(await p.locator("#timeline-steps li[data-step='3'] .tl-by").allTextContents(), []);

    // Back, one command at a time, with the keyboard on the slider.
    await p.focus("#timeline-slider");
    for (let n = 6; n >= 0; n--) {
      await p.keyboard.press("ArrowLeft");
      await expectAt(p, n, 7, after[n], steps[n]);
      if (n === 4) {
        // The past is read-only: nothing to type into, tick or delete.
        assert.equal(await p.locator("#new-todo").isDisabled(), true);
        assert.equal(await p.locator("#todos .delete").count(), 0);
        assert.equal(await p.locator("#todos .toggle:not([disabled])").count(), 0);
        assert.equal(await p.locator("#todos li.changed .text").textContent(), "Buy milk", "the todo this step changed is marked");
      }
    }
    assert.equal(await p.locator("#empty").textContent(), "The list was empty after 0 commands.");
    assert.equal(await p.locator("#timeline-back").isDisabled(), true);

    // Forward with the button, then a jump by clicking a listed step.
    for (let n = 1; n <= 3; n++) {
      await p.click("#timeline-fwd");
      await expectAt(p, n, 7, after[n], steps[n]);
    }
    await p.click("#timeline-steps li[data-step='5'] .tl-jump");
    await expectAt(p, 5, 7, after[5], steps[5]);
    await p.focus("#timeline-slider");
    await p.keyboard.press("Home");
    await expectAt(p, 0, 7, after[0]);
    await p.keyboard.press("ArrowRight");
    await p.keyboard.press("ArrowRight");
    await p.keyboard.press("ArrowRight");
    await expectAt(p, 3, 7, after[3], steps[3]);

    // Others keep writing: the live count and the slider's range move, the view stays at 3.
    await write(w.page, [create("Water the plants", "plants", { by: "bob", createdAt: t0 + 5 * 420_000 }), { action: "update", path: ["todos", "$rent"], props: { done: true } }]);
    await p.waitForSelector("#timeline-label:text-is('After 3 of 9')", { timeout: 3000 });
    assert.equal(await p.locator("#timeline-slider").getAttribute("max"), "9");
    assert.deepEqual(await shown(p), after[3], "still the list after 3 commands");
    await p.mouse.move(5, 5);
    await p.screenshot({ path: join(shots, "timeline-past.png") });

    // Back to live: the live list, and live follows the next commands.
    await p.click("#timeline-live");
    await p.waitForSelector('#todos[data-at="live"]', { timeout: 3000 });
    assert.equal(await p.locator("#timeline-label").textContent(), "Live · 9 commands");
    assert.deepEqual(await shown(p), ["Buy milk ✓", "Walk the dog twice", "Pay rent ✓", "Water the plants"]);
    assert.equal(await p.locator("#new-todo").isDisabled(), false);
    await write(w.page, [create("Fix the bike", "bike", { by: "ann", createdAt: t0 + 6 * 420_000 })]);
    await p.waitForSelector("#timeline-label:text-is('Live · 10 commands')", { timeout: 3000 });
    assert.equal(await p.locator("#timeline-slider").inputValue(), "10", "live follows new commands");
    await p.locator("#timeline-steps li[data-step='10'] .tl-by").filter({ hasText: "ann" }).waitFor({ timeout: 3000 });
    assert.deepEqual((await shown(p)).at(-1), "Fix the bike");
    // The viewer still edits normally once live again.
    await p.fill("#new-todo", "Viewer's todo");
    await p.press("#new-todo", "Enter");
    await p.waitForSelector("#timeline-label:text-is('Live · 11 commands')", { timeout: 3000 });
    await p.mouse.move(5, 5);
    await p.screenshot({ path: join(shots, "timeline-live.png") });
    assert.deepEqual(v.problems, []);
    assert.deepEqual(w.problems, []);
  } finally {
    await w.context.close();
    await v.context.close();
  }
});

function hubHas(flag) {
  try {
    return execFileSync(hubBin, ["--help"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).includes(flag);
  } catch (e) {
    return (String(e.stdout || "") + String(e.stderr || "")).includes(flag);
  }
}

function cliHasToken(cli) {
  try {
    execFileSync(cli, ["token", "--help"], { stdio: "ignore" });
    return true;
  } catch (_) {
    return false;
  }
}

test("on a hub with a small --history (and the demo's rules), the timeline says where history no longer reaches", async (t) => {
  // The demo's rules stamp createdAt, and by where tokens carry an identity (JWT); the
  // timeline works with either, and without rules (the test above).
  const rules = hubHas("--interceptors");
  const cli = resolve(dirname(hubBin), "../clients/flushout");
  const jwt = rules && hubHas("--jwt-secret-file") && cliHasToken(cli);
  const dir = mkdtempSync(join(tmpdir(), "fo-web-tl-"));
  const args = ["--history", "5"];
  if (rules) args.push("--interceptors", resolve(here, "../rules.lua"));
  let mint = () => undefined;
  if (jwt) {
    const secret = join(dir, "secret");
    writeFileSync(secret, "timeline-secret-0123456789abcdef0123456789abcdef\n", { mode: 0o600 });
    args.push("--jwt-secret-file", secret);
    mint = (sub) => execFileSync(cli, ["token", "--secret-file", secret, "--sub", sub, "--models", "todos:*=rw", "--ttl", "1h"], { encoding: "utf8" }).trim();
  }
  t.diagnostic(`rules: ${rules}, identities: ${jwt}`);
  const small = await startHub({ store: "memory", staticDir: dist, args });
  const list = `todos:tl-gone${Date.now() % 100000}`;
  const w = await openPage(small, list, "Writer", mint("ann"));
  const v = await openPage(small, list, "Viewer", mint("bob"));
  try {
    // The first create makes `todos` with parentDefault, also when rules.lua stamps it.
    const cmds = [];
    for (let i = 1; i <= 8; i++) cmds.push(create(`todo ${i}`, `t${i}`, { createdAt: i }));
    for (let i = 1; i <= 4; i++) cmds.push({ action: "update", path: ["todos", `$t${i}`], props: { done: true } });
    const before = Date.now();
    assert.equal(await write(w.page, cmds), 12);
    const p = v.page;
    await p.click("#history-toggle");
    await p.waitForSelector("#timeline-label:text-is('Live · 12 commands')", { timeout: 3000 });

    // State 0: 12 commands back, the hub keeps 5: gone, and said so instead of a list.
    await p.focus("#timeline-slider");
    await p.keyboard.press("Home");
    await p.waitForSelector("#timeline-gone", { timeout: 5000 });
    assert.equal(await p.locator("#todos").isHidden(), true);
    assert.equal(await p.locator("#empty").isHidden(), true);
    assert.match(await p.locator("#timeline-gone").textContent(), /History no longer reaches back to step 0\..*--history.*Hub: at: older than the history kept/);
    await p.locator("#timeline-steps li.gone").first().waitFor({ timeout: 3000 });
    assert.match(await p.locator("#timeline-steps li[data-step='1']").textContent(), /no longer kept/);
    assert.notEqual(await p.locator("#timeline-slider").evaluate((e) => e.style.getPropertyValue("--gone")), "0%", "the slider shows the part that is gone");
    await p.mouse.move(5, 5);
    await p.screenshot({ path: join(shots, "timeline-gone.png") });

    // Right to the oldest state kept (7 = 12 - 5); one before it is gone.
    for (let i = 0; i < 6; i++) await p.keyboard.press("ArrowRight");
    await p.waitForSelector("#todos[data-at='gone']", { state: "attached", timeout: 5000 });
    await p.waitForSelector("#timeline-gone:has-text('step 6.')", { timeout: 5000 });
    await p.keyboard.press("ArrowRight");
    await p.waitForSelector("#todos[data-at='7']", { timeout: 5000 });
    assert.equal(await p.locator("#timeline-gone").count(), 0);
    assert.deepEqual((await shown(p)).sort(), ["todo 1", "todo 2", "todo 3", "todo 4", "todo 5", "todo 6", "todo 7"]);
    await p.keyboard.press("ArrowRight");
    await expectAt(p, 8, 12, ["todo 1", "todo 2", "todo 3", "todo 4", "todo 5", "todo 6", "todo 7", "todo 8"], { what: "added “todo 8”", by: jwt ? "ann" : null }, true);
    await p.keyboard.press("ArrowRight");
    await expectAt(p, 9, 12, ["todo 1 ✓", "todo 2", "todo 3", "todo 4", "todo 5", "todo 6", "todo 7", "todo 8"], { what: "ticked “todo 1”", by: null }, true);
    if (rules) {
      // createdAt is the hub's (the page sent 8): the step shows the hub's time.
      const when = await p.locator("#timeline-steps li[data-step='8'] time.tl-when").getAttribute("datetime");
      const ms = Date.parse(when);
      assert.ok(ms >= before - 2000 && ms <= Date.now() + 2000, `step 8 stamped by the hub at ${when}`);
    }
    await p.click("#timeline-live");
    await p.waitForSelector('#todos[data-at="live"]', { timeout: 3000 });
    assert.deepEqual(v.problems, []);
    assert.deepEqual(w.problems, []);
  } finally {
    await w.context.close();
    await v.context.close();
    await small.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
