// app.jsx - the collaborative todo list of the Flushout article, on flushout-hub, in React
// with useFlushout (clients/react) on the JavaScript client (clients/js).
//
// The document is the article's: {todos: {ID: {text, done, createdAt, by}}}. Every edit is
// a Flushout command applied to the local Proxy at once (the page never waits for the
// network); the client flushes in the background, applies everyone else's changes as they
// are pushed, and keeps working offline. Presence says who else is here and what they
// edit. With the hub's rules (rules.lua) the hub stamps createdAt and by and enforces the
// list's limits; a command it rejects is shown with the rule's message. The History
// panel (timeline.jsx) shows the list as it was after any number of commands.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import { HubClient, CommandAction } from "flushout-hub-client";
import { FlushoutProvider, useFlushout } from "flushout-hub-react";
import { TimelineBar, useTimeline } from "./timeline.jsx";

// ---- which list, and who am I ---------------------------------------------------------

const params = new URLSearchParams(location.search);
const listName = /^[A-Za-z0-9._:-]{1,200}$/.test(params.get("list") || "") ? params.get("list") : "todos:demo";
const MAX_TEXT = 200; // as rules.lua

const ADJECTIVES = ["Blue", "Brave", "Calm", "Clever", "Swift", "Happy", "Quiet", "Bright", "Lucky", "Gentle", "Bold", "Witty"];
const ANIMALS = ["Fox", "Otter", "Panda", "Heron", "Lynx", "Koala", "Falcon", "Badger", "Whale", "Robin", "Tiger", "Moose"];
const COLORS = ["#4f46e5", "#0891b2", "#16a34a", "#ca8a04", "#ea580c", "#db2777", "#7c3aed", "#0d9488", "#dc2626", "#2563eb"];

const pick = (list) => list[Math.floor(Math.random() * list.length)];

function loadIdentity(devSub) {
  let me = null;
  try {
    me = JSON.parse(localStorage.getItem("flushout-demo-identity") || "null");
  } catch (_) {
    /* private mode or garbage: make a new one */
  }
  if (!me || typeof me.name !== "string") {
    me = { name: `${pick(ADJECTIVES)} ${pick(ANIMALS)}`, color: pick(COLORS) };
  }
  if (devSub) me = { ...me, name: devSub }; // this tab's development identity (make run)
  if (params.get("name")) me.name = params.get("name").slice(0, 40);
  if (!devSub) saveIdentity(me);
  return me;
}

function saveIdentity(me) {
  try {
    localStorage.setItem("flushout-demo-identity", JSON.stringify(me));
  } catch (_) {
    /* not persisted, fine */
  }
}

/**
 * This tab's token: ?token=, else one of the development tokens that `make run` mints
 * into dev-tokens.json ([{sub, token}], empty when the hub runs open), a different one per
 * tab (kept in sessionStorage, so a reload keeps it).
 */
async function devIdentity() {
  if (params.get("token")) return { token: params.get("token"), sub: null };
  let tokens = [];
  try {
    const res = await fetch("dev-tokens.json", { cache: "no-store" });
    if (res.ok) tokens = await res.json();
  } catch (_) {
    /* served elsewhere: no development identities */
  }
  if (!Array.isArray(tokens) || tokens.length === 0) return { token: undefined, sub: null };
  let i = Number(sessionStorage.getItem("flushout-demo-tab"));
  if (!Number.isInteger(i) || i < 0) {
    i = Number(localStorage.getItem("flushout-demo-tabs") || 0);
    localStorage.setItem("flushout-demo-tabs", String(i + 1));
    sessionStorage.setItem("flushout-demo-tab", String(i));
  }
  const t = tokens[i % tokens.length];
  return { token: t.token, sub: t.sub };
}

// ---- rendering helpers ------------------------------------------------------------------

function initials(name) {
  return String(name || "?")
    .split(/\s+/)
    .map((w) => w[0] || "")
    .join("")
    .slice(0, 2)
    .toUpperCase();
}

function Avatar({ p }) {
  return (
    <span className="avatar" title={p.name} style={{ background: p.color || "#888" }}>
      {initials(p.name)}
    </span>
  );
}

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function todosOf(doc) {
  const todos = (doc && doc.todos) || {};
  return Object.entries(todos)
    .filter(([, t]) => t && typeof t === "object")
    .sort(([ida, a], [idb, b]) => (a.createdAt || 0) - (b.createdAt || 0) || (ida < idb ? -1 : ida > idb ? 1 : 0));
}

function statusOf(status, n) {
  if (status === "open") return n > 0 ? ["syncing", `Saving ${n}…`] : ["open", "Live"];
  if (status === "connecting") return ["connecting", n > 0 ? `Connecting… · ${n} waiting` : "Connecting…"];
  return ["offline", n > 0 ? `Offline · ${n} change${n === 1 ? "" : "s"} waiting` : "Offline"];
}

/** What the user should read about an error: the hub's messages for rejected commands. */
function noticeOf(error) {
  if (!error || error.connection) return null;
  if (error.code === "rejected" && error.errors) {
    const msgs = [...new Set(error.errors.map((e) => e.errorMessage))];
    return `Not saved: ${msgs.join("; ")}`;
  }
  return `${error.code}: ${error.message}`;
}

// ---- components -------------------------------------------------------------------------

function TodoItem({ id, todo, editing, editor, readOnly, changed, onToggle, onStartEdit, onFinishEdit, onDelete }) {
  const [draft, setDraft] = useState(String(todo.text ?? ""));
  const input = useRef(null);
  useEffect(() => {
    if (!editing) return;
    setDraft(String(todo.text ?? ""));
    const el = input.current;
    if (el) {
      el.focus();
      el.setSelectionRange(el.value.length, el.value.length);
    }
  }, [editing]); // eslint-disable-line react-hooks/exhaustive-deps
  const cls = ["todo", todo.done ? "done" : "", editor ? "remote-edit" : "", readOnly ? "past" : "", changed ? "changed" : ""].filter(Boolean).join(" ");
  return (
    <li className={cls} data-id={id} style={editor ? { "--edit-color": editor.color || "#888" } : undefined}>
      <input type="checkbox" className="toggle" title="Done" checked={!!todo.done} disabled={readOnly} onChange={(e) => onToggle(id, e.target.checked)} />
      <div className="body">
        {editing && (
          <input
            ref={input}
            className="edit"
            aria-label="Edit todo"
            maxLength={MAX_TEXT}
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter") onFinishEdit(id, e.currentTarget.value);
              else if (e.key === "Escape") onFinishEdit(id, null);
            }}
            onBlur={(e) => onFinishEdit(id, e.currentTarget.value)}
          />
        )}
        <span className="text" title={readOnly ? undefined : "Click to edit"} hidden={editing} onClick={readOnly ? undefined : () => onStartEdit(id)}>
          {String(todo.text ?? "")}
        </span>
        <span className="meta">
          {todo.by ? <span className="by">{String(todo.by)}</span> : null}
          {todo.by && todo.createdAt ? " · " : null}
          {todo.createdAt ? (
            <time className="created" dateTime={new Date(todo.createdAt).toISOString()} title={new Date(todo.createdAt).toLocaleString()}>
              {timeOf(todo.createdAt)}
            </time>
          ) : null}
          {editor ? (
            <span className="editor-badge" style={{ background: editor.color || "#888" }}>
              {`${editor.name || "Someone"} is editing`}
            </span>
          ) : null}
        </span>
      </div>
      {readOnly ? null : (
        <button type="button" className="delete" title="Delete" aria-label="Delete" onClick={() => onDelete(id)}>
          ×
        </button>
      )}
    </li>
  );
}

function App({ client, initialMe }) {
  const { doc, apply, status, pending, presence, setPresence, ready, error, dismissError, model } = useFlushout(listName);
  const [me, setMe] = useState(initialMe);
  const [editingId, setEditingId] = useState(null);
  const [text, setText] = useState("");
  const [showHistory, setShowHistory] = useState(params.get("history") === "1");
  const newTodo = useRef(null);
  const editingRef = useRef(null);
  editingRef.current = editingId;
  const tl = useTimeline(model, showHistory && ready);
  const past = tl.view.mode === "past" ? tl.view : null;

  // For the end-to-end test and for poking around in the console.
  window.flushoutDemo = { client, model, listName, me };

  const liveTodos = useMemo(() => todosOf(doc), [doc]);
  const pastTodos = useMemo(() => (past && past.doc ? todosOf(past.doc) : []), [past && past.doc]); // eslint-disable-line react-hooks/exhaustive-deps
  const todos = past ? (past.gone ? [] : pastTodos) : liveTodos;
  const peers = presence.map(({ session, state }) => ({ session, ...state }));
  const editors = new Map();
  for (const p of peers) if (p.editing) editors.set(p.editing, p);

  // Deleted (by anyone) while we were editing it: stop editing.
  const editingGone = editingId !== null && !(doc && doc.todos && doc.todos[editingId]);
  useEffect(() => {
    if (editingGone) setEditingId(null);
  }, [editingGone]);

  useEffect(() => {
    if (ready) setPresence({ name: me.name, color: me.color, editing: editingGone ? null : editingId });
  }, [ready, me.name, me.color, editingId, editingGone, setPresence]);

  useEffect(() => {
    if (ready && newTodo.current) newTodo.current.focus();
  }, [ready]);

  useEffect(() => {
    document.title = `Todos · ${listName}`;
  }, []);

  const addTodo = (value) =>
    apply({
      action: CommandAction.Create,
      path: ["todos"],
      // createdAt and by are provisional: the hub's rules (rules.lua) stamp its own.
      props: { text: value, done: false, createdAt: Date.now(), by: me.name },
      parentDefault: {}, // the first todo creates the list (a new model is {})
    });
  const updateTodo = useCallback((id, props) => apply({ action: CommandAction.Update, path: ["todos", id], props }), [apply]);
  const deleteTodo = useCallback((id) => apply({ action: CommandAction.Delete, path: ["todos", id] }), [apply]);

  const startEdit = useCallback((id) => setEditingId(id), []);
  const finishEdit = useCallback(
    (id, value) => {
      if (editingRef.current !== id) return;
      editingRef.current = null;
      setEditingId(null);
      const t = model.getDocument()?.todos?.[id];
      if (t && value !== null) {
        const v = value.trim();
        if (v === "") deleteTodo(id);
        else if (v !== t.text) updateTodo(id, { text: v });
      }
    },
    [model, deleteTodo, updateTodo]
  );

  // Looking at the past: nothing is edited (an edit in progress was saved by its blur).
  useEffect(() => {
    if (past) setEditingId(null);
  }, [past !== null]); // eslint-disable-line react-hooks/exhaustive-deps

  const [statusKey, label] = statusOf(status, pending);
  const done = todos.filter(([, t]) => t.done).length;
  const left = todos.length - done;
  const notice = noticeOf(error);
  const connectionProblem = error && error.connection && status !== "open" ? error.message : undefined;

  return (
    <>
      <main className="card">
        <header className="top">
          <div className="title">
            <h1>Todos</h1>
            <span className="list-name" id="list-name" title="Everyone who opens this list's link edits the same list">
              {listName}
            </span>
          </div>
          <button
            type="button"
            id="history-toggle"
            className="history-toggle"
            aria-pressed={showHistory}
            aria-controls="timeline"
            title="Show the list as it was after any number of changes"
            onClick={() => setShowHistory((v) => !v)}
          >
            {showHistory ? "Hide history" : "History"}
          </button>
          <div className="status" id="status" data-status={statusKey} data-pending={String(pending)} role="status" aria-live="polite" title={connectionProblem}>
            <span className="dot"></span>
            <span className="label" id="status-label">
              {label}
            </span>
          </div>
        </header>

        <section className="people" aria-label="Who is here">
          <ul id="people">
            <li className="person me">
              <Avatar p={me} />
              <span>{me.name}</span>
              <span className="you">(you)</span>
            </li>
            {peers.map((p) => {
              const t = p.editing && doc && doc.todos && doc.todos[p.editing];
              return (
                <li key={p.session} className="person peer" data-session={p.session}>
                  <Avatar p={p} />
                  <span className="name">{p.name || "Someone"}</span>
                  {t ? <span className="doing">{`editing “${String(t.text || "").slice(0, 24)}”`}</span> : null}
                </li>
              );
            })}
          </ul>
        </section>

        {showHistory ? <TimelineBar tl={tl} /> : null}

        {notice ? (
          <div className="notice" id="notice" role="alert">
            <span className="notice-text">{notice}</span>
            <button type="button" className="link" onClick={dismissError} aria-label="Dismiss">
              ×
            </button>
          </div>
        ) : null}

        <form
          id="new-todo-form"
          className="new-todo"
          autoComplete="off"
          onSubmit={(ev) => {
            ev.preventDefault();
            const v = text.trim();
            if (!v || !ready || past) return;
            addTodo(v);
            setText("");
            newTodo.current && newTodo.current.focus();
          }}
        >
          <input
            id="new-todo"
            ref={newTodo}
            name="text"
            placeholder={past ? "Viewing the past: back to live to edit" : "What needs doing?"}
            maxLength={MAX_TEXT}
            aria-label="New todo"
            disabled={!ready || !!past}
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
          <button type="submit" id="add" disabled={!ready || !!past}>
            Add
          </button>
        </form>

        {past && past.gone ? (
          <div className="timeline-gone" id="timeline-gone" role="alert">
            <strong>{`History no longer reaches back to step ${past.at}.`}</strong> The hub keeps only the most recent commands of a list (its{" "}
            <code>--history</code>); older states are gone. Move the slider to the right, or go back to live.
            <span className="gone-why">{`Hub: ${past.gone}`}</span>
          </div>
        ) : null}
        {past && past.error ? (
          <div className="notice" id="timeline-error" role="alert">
            <span className="notice-text">{`Could not read step ${past.at}: ${past.error}`}</span>
          </div>
        ) : null}
        <ul
          id="todos"
          className={["todos", past ? "past" : "", past && past.loading ? "loading" : ""].filter(Boolean).join(" ")}
          aria-label={past ? `Todos after ${past.at} commands` : "Todos"}
          aria-busy={past && past.loading ? "true" : undefined}
          data-mode={past ? "past" : "live"}
          data-at={past ? (past.gone ? "gone" : past.loading ? "loading" : String(past.at)) : "live"}
          hidden={!!(past && past.gone)}
        >
          {todos.map(([id, t]) => (
            <TodoItem
              key={id}
              id={id}
              todo={t}
              readOnly={!!past}
              changed={!!past && tl.changedId === id}
              editing={!past && editingId === id}
              editor={past ? undefined : editors.get(id)}
              onToggle={(tid, checked) => updateTodo(tid, { done: checked })}
              onStartEdit={startEdit}
              onFinishEdit={finishEdit}
              onDelete={deleteTodo}
            />
          ))}
        </ul>
        <p id="empty" className="empty" hidden={todos.length > 0 || !ready || !!(past && (past.gone || past.loading))}>
          {past ? `The list was empty after ${past.at} commands.` : "Nothing to do. Add the first todo above."}
        </p>

        <footer className="bottom">
          <span id="counts">{todos.length ? `${left} item${left === 1 ? "" : "s"} left${done ? ` · ${done} done` : ""}` : ""}</span>
          <button
            type="button"
            id="clear-done"
            className="link"
            hidden={done === 0 || !!past}
            onClick={() => {
              for (const [id, t] of todos) if (t.done) deleteTodo(id);
            }}
          >
            Clear completed
          </button>
        </footer>
      </main>
      <p className="about">
        A <a href="https://github.com/saarw/flushout">Flushout</a> document on flushout-hub. Edits apply at once and sync in the background; offline edits wait and
        catch up. Open this page in a second window to see it live. You are{" "}
        <button
          type="button"
          id="rename"
          className="link"
          title="Change your name"
          onClick={() => {
            const name = prompt("Your name, as the others see it", me.name);
            if (name && name.trim()) {
              const next = { ...me, name: name.trim().slice(0, 40) };
              saveIdentity(next);
              setMe(next);
            }
          }}
        >
          {me.name}
        </button>
        .
      </p>
    </>
  );
}

async function main() {
  const { token, sub } = await devIdentity();
  const me = loadIdentity(sub);
  const client = new HubClient({ token });
  createRoot(document.getElementById("app")).render(
    <FlushoutProvider client={client}>
      <App client={client} initialMe={me} />
    </FlushoutProvider>
  );
}

main();
