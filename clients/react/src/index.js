// flushout-hub-react: useFlushout(name), a React hook on flushout-hub-client. The client
// does the work (the reference Proxy, background flushes, pushes, reconnects, presence);
// the hook subscribes a component to one model and re-renders it when the document, the
// connection status, the pending count, the presence or the last error changes.
import { createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { HubClient } from "flushout-hub-client";

const ClientContext = createContext(null);

/** Provides the HubClient that useFlushout() uses below it. */
export function FlushoutProvider({ client, children }) {
  return createElement(ClientContext.Provider, { value: client }, children);
}

let defaultClient = null;

/**
 * The HubClient of the nearest FlushoutProvider, else one shared client on the page's
 * hub (new HubClient(): ws(s)://this host/v1/ws), made on first use.
 */
export function useFlushoutClient() {
  const provided = useContext(ClientContext);
  if (provided) return provided;
  if (!defaultClient || defaultClient.status === "closed") defaultClient = new HubClient();
  return defaultClient;
}

// One subscription per (client, name), shared by every component that uses it; the model
// is closed once the last user unmounts and nothing it queued is still unacknowledged.
const stores = new WeakMap(); // client -> Map<name, Store>

class Store {
  constructor(client, name, options) {
    this.client = client;
    this.name = name;
    this.model = client.open(name, options);
    this.users = 0;
    this.listeners = new Set();
    this.version = 0;
    this.snapshot = null;
    this.snapshotVersion = -1;
    this.error = null;
    this.offs = [];
    const bump = () => this.changed();
    const m = this.model;
    this.offs.push(
      m.on("ready", bump),
      m.on("change", bump),
      m.on("pending", bump),
      m.on("presence", bump),
      m.on("error", (e) => this.setError(e)),
      client.on("status", bump),
      client.on("error", (e) => this.setError(e)),
      client.on("welcome", () => {
        // A connection error is over once the hub welcomes us again.
        if (this.error && this.error.connection) this.setError(null);
      })
    );
  }

  setError(e) {
    this.error = e ? { ...e, connection: !e.model, at: Date.now() } : null;
    this.changed();
  }

  changed() {
    this.version++;
    for (const fn of [...this.listeners]) fn();
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** An immutable view, rebuilt (once) after each change: what React compares. */
  getSnapshot() {
    if (this.snapshotVersion === this.version) return this.snapshot;
    const m = this.model;
    const doc = m.getDocument();
    const presence = [...m.peers.entries()].map(([session, state]) => ({ session, state }));
    this.snapshot = {
      // A copy: the Proxy changes its document in place, React needs a new object per change.
      doc: doc === undefined ? undefined : JSON.parse(JSON.stringify(doc)),
      ready: m.proxy !== null,
      status: this.client.status,
      pending: m.pendingCount,
      presence,
      error: this.error,
    };
    this.snapshotVersion = this.version;
    return this.snapshot;
  }

  retain() {
    this.users++;
  }

  release() {
    this.users--;
    if (this.users > 0) return;
    // Let what is queued reach the hub before unsubscribing (a remount keeps the model).
    const close = () => {
      if (this.users > 0) return;
      const byName = stores.get(this.client);
      if (byName && byName.get(this.name) === this) byName.delete(this.name);
      for (const off of this.offs) off();
      this.model.close();
    };
    if (this.model.pendingCount === 0) queueMicrotask(close);
    else this.model.settled().then(close, () => {});
  }
}

function storeFor(client, name, options) {
  let byName = stores.get(client);
  if (!byName) stores.set(client, (byName = new Map()));
  let s = byName.get(name);
  if (!s || s.model._closed) {
    s = new Store(client, name, options);
    byName.set(name, s);
  }
  return s;
}

const NOT_READY = (name) => ({ isSuccess: false, error: `model ${name} is not ready yet` });

/**
 * Subscribes the component to the model `name` and returns
 *   {doc, apply, status, pending, presence, setPresence, ready, error, dismissError, model}.
 * options: {client} (else the provider's, else the page's hub), and the model's options
 * ({sequentialIds, interceptor, flushDelay, maxFlushDelay, maxBatch}) for its first user.
 */
export function useFlushout(name, options = {}) {
  const fromContext = useFlushoutClient();
  const client = options.client || fromContext;
  const store = useMemo(() => storeFor(client, name, modelOptions(options)), [client, name]); // eslint-disable-line react-hooks/exhaustive-deps
  const [presenceState, setPresenceState] = useState(null);

  useEffect(() => {
    store.retain();
    return () => store.release();
  }, [store]);

  const subscribe = useCallback((fn) => store.subscribe(fn), [store]);
  const snap = useSyncExternalStore(subscribe, () => store.getSnapshot(), () => store.getSnapshot());

  const apply = useCallback(
    (command) => {
      if (!store.model.proxy) return NOT_READY(name);
      return store.model.apply(command);
    },
    [store, name]
  );

  // The component's presence: set on the model (the client resends it after a reconnect)
  // and cleared when the component unmounts.
  // Sent only when it differs from what this component sent last.
  const setPresence = useCallback((state) => setPresenceState(state === undefined ? null : state), []);
  const sentPresence = useRef("null");
  useEffect(() => {
    const json = JSON.stringify(presenceState);
    if (json === sentPresence.current) return;
    sentPresence.current = json;
    store.model.setPresence(presenceState);
  }, [store, presenceState]);
  useEffect(
    () => () => {
      if (sentPresence.current !== "null" && !store.model._closed) store.model.setPresence(null);
      sentPresence.current = "null";
    },
    [store]
  );

  const dismissError = useCallback(() => store.setError(null), [store]);

  return {
    doc: snap.doc,
    apply,
    status: snap.status,
    pending: snap.pending,
    presence: snap.presence,
    setPresence,
    ready: snap.ready,
    error: snap.error,
    dismissError,
    model: store.model,
  };
}

function modelOptions(o) {
  const out = {};
  for (const k of ["sequentialIds", "interceptor", "flushDelay", "maxFlushDelay", "maxBatch"]) {
    if (o[k] !== undefined) out[k] = o[k];
  }
  return out;
}
