// console.js - the operator console of flushout-hub (served at /console/).
//
// Overview: the hub pushes one sample a second over a WebSocket (/v1/console/feed); the charts keep the last five minutes (the hub replays its own ring
// of samples when the feed opens). Models: the hottest hot models (/v1/console/models),
// and per model its counts, subscribers with their backlog, presence, the document as a
// tree and its recent batches (/v1/console/models/NAME, /v1/models/NAME[/history]).
//
// Access: an open hub on loopback needs nothing; otherwise a token with the `admin` right
// (?token=… in the URL, or the form), kept in sessionStorage for this tab.
import uPlot from "uplot";

const WINDOW = 300; // samples in the charts (seconds)
const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid instanceof Node ? kid : String(kid));
  return e;
};

// ---- access --------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
let token = params.get("token") || sessionStorage.getItem("flushout-console-token") || "";
if (params.get("token")) sessionStorage.setItem("flushout-console-token", token);

function api(path) {
  return fetch(path, { cache: "no-store", headers: token ? { Authorization: `Bearer ${token}` } : {} });
}

async function apiJson(path) {
  const r = await api(path);
  let body = null;
  try {
    body = await r.json();
  } catch {
    body = null;
  }
  return { ok: r.ok, status: r.status, body };
}

function showRefused(status, why) {
  $("#refused").hidden = false;
  $("#overview").hidden = $("#models").hidden = true;
  $("#refused-why").textContent = `${status}: ${why || "refused"}`;
  setStatus("refused", "No access");
}

$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem("flushout-console-token", token);
  location.reload();
});

function setStatus(status, text) {
  const s = $("#feed-status");
  s.dataset.status = status;
  s.textContent = text;
}

// ---- formatting ----------------------------------------------------------------------------

const fmtInt = (n) => (n ?? 0).toLocaleString("en-US", { maximumFractionDigits: 0 });
const fmtRate = (n) => (n >= 100 ? fmtInt(n) : (n ?? 0).toFixed(n >= 10 ? 1 : 2).replace(/\.?0+$/, "") || "0");
function fmtBytes(n) {
  n = n ?? 0;
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) (n /= 1024), i++;
  return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${u[i]}`;
}
const fmtMs = (n) => (n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2)) + " ms";

// ---- overview: samples, tiles, charts ---------------------------------------------------

const samples = [];
const ERROR_CODES = ["bad_frame", "bad_request", "unauthorized", "forbidden", "too_large", "rate_limited", "gone", "overloaded", "shutting_down", "internal"];

const TILES = [
  ["connections", "connections", (s) => fmtInt(s.connections)],
  ["hot_models", "hot models", (s) => fmtInt(s.hot_models)],
  ["hot_bytes", "hot bytes", (s) => fmtBytes(s.bytes.document + s.bytes.history + s.bytes.dedup)],
  ["flushes", "flushes/s", (s) => fmtRate(s.rate.flushes)],
  ["commands", "commands/s", (s) => fmtRate(s.rate.commands)],
  ["pushes", "pushes/s", (s) => fmtRate(s.rate.pushes)],
  ["loop_lag", "loop lag", (s) => fmtMs(s.loop.lag_ms)],
  ["loop_busy", "loop busy", (s) => `${(s.loop.busy * 100).toFixed(1)} %`],
  ["commit_p99", "commit p99", (s) => (s.commit_ms.n ? fmtMs(s.commit_ms.p99) : "–")],
  ["ack_p99", "ack p99", (s) => (s.ack_ms.n ? fmtMs(s.ack_ms.p99) : "–")],
  ["dropped", "dropped pushes", (s) => fmtInt(s.totals.dropped_pushes)],
  ["catchups", "catch-ups", (s) => fmtInt(s.totals.catchups)],
  ["evictions", "evictions", (s) => fmtInt(s.totals.evictions)],
  ["errors", "errors", (s) => fmtInt(s.totals.errors)],
];

function buildTiles() {
  const box = $("#tiles");
  for (const [id, label] of TILES) box.append(el("div", { class: "tile", id: `tile-${id}` }, el("b", { text: "–" }), el("span", { text: label })));
}

function renderTiles(s) {
  for (const [id, , f] of TILES) {
    const t = $(`#tile-${id}`);
    const v = f(s);
    t.firstChild.textContent = v;
    t.dataset.value = v;
  }
  const ex = { dropped: s.totals.dropped_pushes, errors: s.totals.errors, evictions: s.totals.evictions };
  for (const [id, n] of Object.entries(ex)) $(`#tile-${id}`).classList.toggle("warn", n > 0);
}

const PALETTE = ["#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2"];
const charts = {};
const bytesAxis = { values: (_u, v) => v.map(fmtBytes), size: 70 };
const CHARTS = {
  "c-conn": { series: ["connections", "hot models"], pick: (s) => [s.connections, s.hot_models] },
  "c-rate": { series: ["flushes/s", "commands/s", "pushes/s"], pick: (s) => [s.rate.flushes, s.rate.commands, s.rate.pushes] },
  "c-lat": {
    series: ["commit p50", "commit p99", "ack p50", "ack p99", "loop lag"],
    pick: (s) => [s.commit_ms.n ? s.commit_ms.p50 : null, s.commit_ms.n ? s.commit_ms.p99 : null, s.ack_ms.n ? s.ack_ms.p50 : null, s.ack_ms.n ? s.ack_ms.p99 : null, s.loop.lag_ms],
  },
  "c-mem": { series: ["document", "history", "dedup", "outbound"], pick: (s) => [s.bytes.document, s.bytes.history, s.bytes.dedup, s.outbound_bytes], axis: bytesAxis },
  "c-bad": {
    series: ["dropped pushes", "catch-ups", "evictions", "errors"],
    pick: (s) => {
      const dt = s.dt || 1;
      const errs = ERROR_CODES.reduce((n, c) => n + (s.errors[c] || 0), 0);
      return [s.dropped_pushes / dt, s.catchups / dt, s.evictions / dt, errs / dt];
    },
  },
};

function chartWidth(id) {
  return Math.max(280, $(`#${id}`).clientWidth || 480);
}

function buildCharts() {
  for (const [id, def] of Object.entries(CHARTS)) {
    const opts = {
      width: chartWidth(id),
      height: 170,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      series: [{}, ...def.series.map((label, i) => ({ label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false }))],
      axes: [{}, def.axis || { size: 50 }],
    };
    charts[id] = new uPlot(opts, [[], ...def.series.map(() => [])], $(`#${id}`));
  }
  let pending = 0;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      for (const [id, u] of Object.entries(charts)) u.setSize({ width: chartWidth(id), height: 170 });
    }, 100);
  });
}

function renderCharts() {
  const xs = samples.map((s) => s.t / 1000);
  for (const [id, def] of Object.entries(CHARTS)) {
    const cols = def.series.map(() => []);
    for (const s of samples) def.pick(s).forEach((v, i) => cols[i].push(v));
    charts[id].setData([xs, ...cols]);
  }
  const tb = $("#errors tbody");
  tb.replaceChildren();
  const last = samples[samples.length - 1];
  for (const c of ERROR_CODES) {
    const n = samples.reduce((a, s) => a + (s.errors[c] || 0), 0);
    tb.append(el("tr", { "data-code": c, class: n ? "warn" : "" }, el("td", { text: c }), el("td", { class: "num", text: fmtInt(n) })));
  }
  tb.append(el("tr", {}, el("td", { text: "all, since the hub started" }), el("td", { class: "num", text: fmtInt(last?.totals.errors) })));
}

let drawQueued = false;
function scheduleDraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => {
    drawQueued = false;
    if (!samples.length) return;
    renderTiles(samples[samples.length - 1]);
    if (!$("#overview").hidden) renderCharts();
  });
}

/** The feed: a WebSocket the hub pushes one JSON sample a second on (it starts with the
 * hub's last five minutes). Reconnects with backoff. */
function openFeed() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${proto}//${location.host}/v1/console/feed${token ? `?token=${encodeURIComponent(token)}` : ""}`;
  let delay = 500;
  const start = () => {
    const ws = new WebSocket(url);
    ws.onopen = () => {
      delay = 500;
      setStatus("live", "Live");
    };
    ws.onclose = () => {
      setStatus("reconnecting", "Reconnecting…");
      setTimeout(start, delay);
      delay = Math.min(delay * 2, 8000);
    };
    ws.onmessage = (e) => {
      let s;
      try {
        s = JSON.parse(e.data);
      } catch {
        return;
      }
      // A replayed ring after a reconnect overlaps what we have: keep time increasing.
      if (samples.length && s.t <= samples[samples.length - 1].t) return;
      samples.push(s);
      if (samples.length > WINDOW) samples.splice(0, samples.length - WINDOW);
      window.flushoutConsole.samples = samples.length;
      scheduleDraw();
    };
  };
  start();
}

// ---- models ----------------------------------------------------------------------------

const MODEL_NAME = /^[A-Za-z0-9._:-]{1,200}$/;
let listTimer = 0;
let detailTimer = 0;
let current = null; // { name, count, docAt }

async function refreshList() {
  const q = $("#search").value.trim();
  const r = await apiJson(`/v1/console/models?limit=50${q ? `&q=${encodeURIComponent(q)}` : ""}`);
  if (!r.ok) {
    $("#models-summary").textContent = `${r.status}: ${r.body?.error || "error"}`;
    return;
  }
  const { models, matched, hot_models } = r.body;
  $("#models-summary").textContent = `${matched} of ${hot_models} hot models${q ? ` match “${q}”` : ""}, hottest first${matched > models.length ? ` (first ${models.length})` : ""}`;
  const tb = $("#model-table tbody");
  tb.replaceChildren(
    ...models.map((m) =>
      el(
        "tr",
        { "data-model": m.name, class: current?.name === m.name ? "selected" : "", onclick: () => (location.hash = `#/models/${encodeURIComponent(m.name)}`) },
        el("td", { class: "name", text: m.name }),
        el("td", { class: "num count", text: fmtInt(m.count) }),
        el("td", { class: "num", text: fmtInt(m.rate) }),
        el("td", { class: "num", text: fmtInt(m.subscribers) }),
        el("td", { class: "num", text: fmtBytes(m.bytes.document + m.bytes.history + m.bytes.dedup) })
      )
    )
  );
}

/** The document as nested <details>: maps open to depth 1, leaves as JSON. */
function tree(value, key, depth = 0) {
  if (value && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    const d = el("details", { class: "node", open: depth < 1 }, el("summary", {}, key !== undefined ? el("span", { class: "key", text: key }) : null, el("span", { class: "muted", text: Array.isArray(value) ? ` [${entries.length}]` : ` {${entries.length}}` })));
    for (const [k, v] of entries) d.append(tree(v, k, depth + 1));
    return d;
  }
  const text = JSON.stringify(value);
  const shown = text.length > 160 ? `${text.slice(0, 150)}… (${fmtInt(text.length)} chars)` : text;
  return el("div", { class: "leaf" }, el("span", { class: "key", text: key }), ": ", el("span", { class: `val ${typeof value}`, title: text.length > 160 ? text.slice(0, 2000) : null, text: shown }));
}

function short(v, n = 80) {
  const s = JSON.stringify(v);
  return s && s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

async function loadContents(name, count) {
  const box = $("#model-contents");
  if (!box) return;
  const [doc, hist] = await Promise.all([apiJson(`/v1/models/${encodeURIComponent(name)}`), apiJson(`/v1/models/${encodeURIComponent(name)}/history?from=${Math.max(0, count - 20)}`)]);
  if (current?.name !== name) return;
  current.docAt = doc.ok ? doc.body.commandCount : current.docAt;
  const docBox = el("div", { class: "doc" });
  if (doc.ok) docBox.append(el("p", { class: "muted", text: `document after ${fmtInt(doc.body.commandCount)} commands` }), tree(doc.body.document, "document"));
  else docBox.append(el("p", { class: "muted", text: `document: ${doc.status} ${doc.body?.error || ""}` }));
  const batches = el("ol", { class: "batches" });
  if (hist.ok) {
    const from = hist.body.from;
    hist.body.completions.forEach((c, i) => {
      const cmd = c.command;
      batches.prepend(
        el(
          "li",
          { value: from + i + 1 },
          el("b", { text: cmd.action }),
          " ",
          el("code", { text: (cmd.path || []).join("/") || "/" }),
          cmd.props ? el("span", { class: "muted", text: ` ${short(cmd.props)}` }) : null,
          c.createdId ? el("span", { class: "muted", text: ` → ${c.createdId}` }) : null
        )
      );
    });
    if (!hist.body.completions.length) batches.append(el("li", { class: "muted", text: "no commands yet" }));
  } else {
    batches.append(el("li", { class: "muted", text: hist.status === 410 ? "history no longer reaches these commands" : `${hist.status} ${hist.body?.error || ""}` }));
  }
  box.replaceChildren(el("h3", { text: "Document" }), docBox, el("h3", { text: "Recent commands (newest first)" }), batches);
}

async function refreshDetail() {
  if (!current) return;
  const name = current.name;
  const r = await apiJson(`/v1/console/models/${encodeURIComponent(name)}`);
  if (current?.name !== name) return;
  const box = $("#model-detail");
  if (!r.ok) {
    box.replaceChildren(el("h2", { text: name }), el("p", { class: "muted", text: `${r.status}: ${r.body?.error || "error"}` }));
    return;
  }
  const m = r.body;
  let stats = $("#model-stats");
  if (!stats || stats.dataset.model !== name) {
    box.replaceChildren(
      el("h2", { text: name }),
      el("dl", { id: "model-stats", class: "stats", "data-model": name }),
      el("h3", { text: "Subscribers" }),
      el("table", { class: "grid", id: "subs" }, el("thead", {}, el("tr", {}, ...["session", "client", "peer", "at", "backlog", "queued bytes", "state", "presence"].map((h) => el("th", { text: h })))), el("tbody")),
      el("div", { id: "model-contents" }, el("p", { class: "muted", text: m.read ? "loading…" : "" }))
    );
    stats = $("#model-stats");
  }
  const rows = m.hot
    ? [
        ["state", m.state],
        ["commands", fmtInt(m.count)],
        ["commands/s", fmtInt(m.rate)],
        ["subscribers", fmtInt(m.subscribers)],
        ["queued requests", fmtInt(m.queued)],
        ["waiting for commit", fmtInt(m.pending)],
        ["document", fmtBytes(m.bytes.document)],
        ["history", `${fmtBytes(m.bytes.history)} (from ${m.history.from ?? "–"}, keeps ${fmtInt(m.history.keep)})`],
        ["exactly-once table", fmtBytes(m.bytes.dedup)],
        ["last snapshot at", fmtInt(m.snapshot_count)],
      ]
    : [["state", "not in memory (reading it loads it)"]];
  stats.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { "data-key": k, text: v })]));
  stats.dataset.count = m.hot ? m.count : 0;
  $("#subs tbody").replaceChildren(
    ...(m.subs || []).map((s) =>
      el(
        "tr",
        { "data-session": s.session, class: s.lagging ? "lagging" : "" },
        el("td", { text: s.session }),
        el("td", { text: s.client }),
        el("td", { text: s.peer }),
        el("td", { class: "num", text: fmtInt(s.at) }),
        el("td", { class: "num backlog", "data-backlog": s.backlog, text: fmtInt(s.backlog) }),
        el("td", { class: "num", text: fmtBytes(s.backlog_bytes) }),
        el("td", {}, s.lagging ? el("span", { class: "badge bad", text: "lagging" }) : s.active ? el("span", { class: "badge", text: "live" }) : el("span", { class: "badge", text: "joining" })),
        el("td", { class: "presence", text: !s.has_presence ? "" : "presence" in s ? short(s.presence, 60) : "(no read right)" })
      )
    )
  );
  if (!m.subs?.length) $("#subs tbody").append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "no subscribers" })));
  if (!m.read) {
    $("#model-contents").replaceChildren(el("p", { class: "muted", text: "Contents hidden: this token has no read right on the model." }));
  } else if (current.docAt === undefined || (m.hot && m.count !== current.docAt && Date.now() - (current.loadedAt || 0) > 2000)) {
    current.loadedAt = Date.now();
    current.docAt = m.hot ? m.count : 0;
    loadContents(name, m.hot ? m.count : 0);
  }
}

function openModel(name) {
  if (current?.name !== name) current = { name };
  for (const tr of document.querySelectorAll("#model-table tbody tr")) tr.classList.toggle("selected", tr.dataset.model === name);
  refreshDetail();
}

$("#search").addEventListener("input", () => refreshList());
$("#search").addEventListener("keydown", (e) => {
  const q = $("#search").value.trim();
  if (e.key === "Enter" && MODEL_NAME.test(q)) location.hash = `#/models/${encodeURIComponent(q)}`;
});

// ---- routing ---------------------------------------------------------------------------

function route() {
  const [, tab = "overview", name] = location.hash.match(/^#\/([a-z]+)(?:\/(.+))?/) || [];
  clearInterval(listTimer);
  clearInterval(detailTimer);
  $("#overview").hidden = tab !== "overview";
  $("#models").hidden = tab !== "models";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.tab === tab);
  if (tab === "overview") {
    scheduleDraw();
    requestAnimationFrame(() => {
      for (const [id, u] of Object.entries(charts)) u.setSize({ width: chartWidth(id), height: 170 });
    });
  } else {
    refreshList();
    listTimer = setInterval(refreshList, 2000);
    if (name) {
      openModel(decodeURIComponent(name));
      detailTimer = setInterval(refreshDetail, 1000);
    } else {
      current = null;
    }
  }
}

async function main() {
  window.flushoutConsole = { samples: 0 };
  const r = await apiJson("/v1/console/models?limit=1");
  if (!r.ok) return showRefused(r.status, r.body?.error);
  buildTiles();
  buildCharts();
  openFeed();
  window.addEventListener("hashchange", route);
  route();
}

main();
