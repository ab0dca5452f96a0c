// app.js - the collaborative todo list of the Flushout article, on flushout-hub.
//
// The document is the article's: {todos: {ID: {text, done, createdAt, by}}}. Every edit is
// a Flushout command applied to the local Proxy at once (so the page never waits for the
// network); the client flushes in the background, applies everyone else's changes as they
// are pushed, and keeps working offline. Presence says who else is here and what they edit.
import { HubClient, CommandAction } from "../../js/src/index.js";

// ---- which list, and who am I ---------------------------------------------------------

const params = new URLSearchParams(location.search);
const listName = /^[A-Za-z0-9._:-]{1,200}$/.test(params.get("list") || "") ? params.get("list") : "todos:demo";

const ADJECTIVES = ["Blue", "Brave", "Calm", "Clever", "Swift", "Happy", "Quiet", "Bright", "Lucky", "Gentle", "Bold", "Witty"];
const ANIMALS = ["Fox", "Otter", "Panda", "Heron", "Lynx", "Koala", "Falcon", "Badger", "Whale", "Robin", "Tiger", "Moose"];
const COLORS = ["#4f46e5", "#0891b2", "#16a34a", "#ca8a04", "#ea580c", "#db2777", "#7c3aed", "#0d9488", "#dc2626", "#2563eb"];

function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

function loadIdentity() {
  let me = null;
  try {
    me = JSON.parse(localStorage.getItem("flushout-demo-identity") || "null");
  } catch (_) {
    /* private mode or garbage: make a new one */
  }
  if (!me || typeof me.name !== "string") {
    me = { name: `${pick(ADJECTIVES)} ${pick(ANIMALS)}`, color: pick(COLORS) };
  }
  if (params.get("name")) me.name = params.get("name").slice(0, 40);
  saveIdentity(me);
  return me;
}

function saveIdentity(me) {
  try {
    localStorage.setItem("flushout-demo-identity", JSON.stringify(me));
  } catch (_) {
    /* not persisted, fine */
  }
}

const me = loadIdentity();

// ---- the model ----------------------------------------------------------------------------

const client = new HubClient({ token: params.get("token") || undefined });
const model = client.open(listName);
// For the end-to-end test and for poking around in the console.
window.flushoutDemo = { client, model, listName, me };

let editingId = null; // the todo whose text this page is editing

function todosOf(doc) {
  const todos = (doc && doc.todos) || {};
  return Object.entries(todos)
    .filter(([, t]) => t && typeof t === "object")
    .sort(([ida, a], [idb, b]) => (a.createdAt || 0) - (b.createdAt || 0) || (ida < idb ? -1 : ida > idb ? 1 : 0));
}

function addTodo(text) {
  model.apply({
    action: CommandAction.Create,
    path: ["todos"],
    props: { text, done: false, createdAt: Date.now(), by: me.name },
    parentDefault: {}, // the first todo creates the list (a new model is {})
  });
}

function updateTodo(id, props) {
  model.apply({ action: CommandAction.Update, path: ["todos", id], props });
}

function deleteTodo(id) {
  model.apply({ action: CommandAction.Delete, path: ["todos", id] });
}

function sharePresence() {
  model.setPresence({ name: me.name, color: me.color, editing: editingId });
}

// ---- rendering --------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
};

function initials(name) {
  return String(name || "?")
    .split(/\s+/)
    .map((w) => w[0] || "")
    .join("")
    .slice(0, 2)
    .toUpperCase();
}

function avatar(p) {
  const a = el("span", { className: "avatar", textContent: initials(p.name), title: p.name });
  a.style.background = p.color || "#888";
  return a;
}

function timeOf(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function renderStatus() {
  const box = $("status");
  const n = model.pendingCount;
  let status = client.status;
  let label;
  if (status === "open") {
    if (n > 0) {
      status = "syncing";
      label = `Saving ${n}…`;
    } else label = "Live";
  } else if (status === "connecting") {
    label = n > 0 ? `Connecting… · ${n} waiting` : "Connecting…";
  } else {
    status = "offline";
    label = n > 0 ? `Offline · ${n} change${n === 1 ? "" : "s"} waiting` : "Offline";
  }
  box.dataset.status = status;
  box.dataset.pending = String(n);
  $("status-label").textContent = label;
}

function peers() {
  return [...model.peers.entries()].map(([session, s]) => ({ session, ...s }));
}

function renderPeople() {
  const ul = $("people");
  ul.replaceChildren();
  const doc = model.getDocument();
  const todos = (doc && doc.todos) || {};
  const meItem = el("li", { className: "person me" }, avatar(me), el("span", { textContent: me.name }), el("span", { className: "you", textContent: "(you)" }));
  ul.append(meItem);
  for (const p of peers()) {
    const li = el("li", { className: "person peer" }, avatar(p), el("span", { className: "name", textContent: p.name || "Someone" }));
    li.dataset.session = p.session;
    if (p.editing && todos[p.editing]) {
      const text = String(todos[p.editing].text || "").slice(0, 24);
      li.append(el("span", { className: "doing", textContent: `editing “${text}”` }));
    }
    ul.append(li);
  }
}

function makeItem(id) {
  const li = el("li", { className: "todo" });
  li.dataset.id = id;
  const box = el("input", { type: "checkbox", className: "toggle", title: "Done" });
  box.addEventListener("change", () => updateTodo(id, { done: box.checked }));
  const text = el("span", { className: "text", title: "Click to edit" });
  text.addEventListener("click", () => startEdit(id));
  const meta = el("span", { className: "meta" });
  const body = el("div", { className: "body" }, text, meta);
  const del = el("button", { type: "button", className: "delete", title: "Delete", textContent: "×" });
  del.setAttribute("aria-label", "Delete");
  del.addEventListener("click", () => deleteTodo(id));
  li.append(box, body, del);
  return li;
}

function updateItem(li, id, t, editors) {
  li.classList.toggle("done", !!t.done);
  const box = li.querySelector(".toggle");
  box.checked = !!t.done;
  const body = li.querySelector(".body");
  const input = body.querySelector(".edit");
  const text = body.querySelector(".text");
  if (editingId === id) {
    if (!input) {
      const edit = el("input", { className: "edit", value: String(t.text ?? ""), maxLength: 500 });
      edit.setAttribute("aria-label", "Edit todo");
      edit.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter") finishEdit(id, edit.value);
        else if (ev.key === "Escape") finishEdit(id, null);
      });
      edit.addEventListener("blur", () => finishEdit(id, edit.value));
      text.hidden = true;
      body.insertBefore(edit, text);
      edit.focus();
      edit.setSelectionRange(edit.value.length, edit.value.length);
    }
  } else {
    if (input) input.remove();
    text.hidden = false;
  }
  if (text.textContent !== String(t.text ?? "")) text.textContent = String(t.text ?? "");
  const meta = body.querySelector(".meta");
  meta.replaceChildren(`${t.by || "someone"}${t.createdAt ? " · " + timeOf(t.createdAt) : ""}`);
  const editor = editors.get(id);
  li.classList.toggle("remote-edit", !!editor);
  if (editor) {
    li.style.setProperty("--edit-color", editor.color || "#888");
    const badge = el("span", { className: "editor-badge", textContent: `${editor.name || "Someone"} is editing` });
    badge.style.background = editor.color || "#888";
    meta.append(badge);
  }
}

function render() {
  const doc = model.getDocument();
  const todos = todosOf(doc);
  const ul = $("todos");
  if (editingId && !(doc && doc.todos && doc.todos[editingId])) {
    editingId = null; // deleted while we were editing it
    sharePresence();
  }
  const editors = new Map();
  for (const p of peers()) if (p.editing) editors.set(p.editing, p);
  // Keyed update: remove the gone first, then insert the new where they belong. A node
  // that is moved restarts its CSS animation (and loses focus), so nothing else moves.
  const ids = new Set(todos.map(([id]) => id));
  for (const li of [...ul.children]) if (!ids.has(li.dataset.id)) li.remove();
  const existing = new Map([...ul.children].map((li) => [li.dataset.id, li]));
  let prev = null;
  for (const [id, t] of todos) {
    const li = existing.get(id) || makeItem(id);
    updateItem(li, id, t, editors);
    const next = prev ? prev.nextSibling : ul.firstChild;
    if (li !== next) ul.insertBefore(li, next);
    prev = li;
  }
  const done = todos.filter(([, t]) => t.done).length;
  const left = todos.length - done;
  $("empty").hidden = todos.length > 0 || !model.proxy;
  $("counts").textContent = todos.length ? `${left} item${left === 1 ? "" : "s"} left${done ? ` · ${done} done` : ""}` : "";
  $("clear-done").hidden = done === 0;
  renderPeople();
}

function startEdit(id) {
  if (editingId === id) return;
  editingId = id;
  sharePresence();
  render();
}

function finishEdit(id, value) {
  if (editingId !== id) return;
  editingId = null;
  const doc = model.getDocument();
  const t = doc && doc.todos && doc.todos[id];
  if (t && value !== null) {
    const text = value.trim();
    if (text === "") deleteTodo(id);
    else if (text !== t.text) updateTodo(id, { text });
  }
  sharePresence();
  render();
}

// ---- wiring -----------------------------------------------------------------------------

function init() {
  $("list-name").textContent = listName;
  document.title = `Todos · ${listName}`;
  $("rename").textContent = me.name;
  $("rename").addEventListener("click", () => {
    const name = prompt("Your name, as the others see it", me.name);
    if (name && name.trim()) {
      me.name = name.trim().slice(0, 40);
      saveIdentity(me);
      $("rename").textContent = me.name;
      sharePresence();
      render();
    }
  });
  $("new-todo-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("new-todo");
    const text = input.value.trim();
    if (!text || !model.proxy) return;
    addTodo(text);
    input.value = "";
    input.focus();
  });
  $("clear-done").addEventListener("click", () => {
    for (const [id, t] of todosOf(model.getDocument())) if (t.done) deleteTodo(id);
  });

  client.on("status", renderStatus);
  model.on("pending", renderStatus);
  model.on("change", render);
  model.on("presence", render);
  model.on("error", (e) => console.warn("flushout:", e.code, e.message));
  model.ready.then(() => {
    $("new-todo").disabled = false;
    $("add").disabled = false;
    $("new-todo").focus();
    sharePresence();
    render();
  });
  renderStatus();
  render();
}

init();
