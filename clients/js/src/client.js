// client.js - one WebSocket connection to a flushout-hub, shared by every model the
// application opens. It says hello, reconnects with jittered exponential backoff, routes
// replies and pushes to the models, and hands out the per-client flush sequence numbers
// on which the hub's exactly-once rests.
import { Emitter } from "./emitter.js";
import { SUBPROTOCOL, encodeFrame, decodeFrame } from "./wire.js";
import { HubModel } from "./model.js";
import { HubBackend } from "./backend.js";

const MODEL_NAME = /^[A-Za-z0-9._:-]{1,200}$/;

function randomId() {
  const bytes = new Uint8Array(12);
  if (globalThis.crypto && globalThis.crypto.getRandomValues) {
    globalThis.crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  return "js-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function defaultUrl() {
  const loc = globalThis.location;
  if (loc && (loc.protocol === "http:" || loc.protocol === "https:")) {
    return (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + "/v1/ws";
  }
  return "ws://127.0.0.1:7420/v1/ws";
}

/** "HOST:PORT" of a ws:// or wss:// URL (for messages). */
function hostOf(url) {
  try {
    const u = new URL(url);
    return u.host || url;
  } catch (_) {
    return url;
  }
}

function pathOf(url) {
  try {
    return new URL(url).pathname;
  } catch (_) {
    return "";
  }
}

const UPGRADE_HINTS = {
  400: "the hub did not accept the handshake",
  401: "missing or bad token",
  403: "this page's origin is not in the hub's --allowed-origins, or the token has no rights here",
  503: "the hub is shutting down",
};

/** What an HTTP status that refused the upgrade means, for the message. */
function upgradeRefused(status, url) {
  let hint = UPGRADE_HINTS[status];
  if (status === 404) {
    const path = pathOf(url);
    hint = path === "/v1/ws" ? "no WebSocket endpoint here" : `no WebSocket endpoint at ${path || "/"}; the hub's is /v1/ws`;
  }
  return { status, message: `upgrade refused: HTTP ${status}${hint ? ` (${hint})` : ""}` };
}

/**
 * The reason a connection attempt failed, from the error its WebSocket reported (Node's
 * `ws` says "connect ECONNREFUSED ..." or "Unexpected server response: 404"); null when
 * the WebSocket said nothing useful (browsers never do).
 */
function describeConnectError(text, url) {
  if (!text) return null;
  let m = /Unexpected server response: (\d{3})/.exec(text);
  if (m) return upgradeRefused(Number(m[1]), url);
  if (/ECONNREFUSED/.test(text)) return { message: `connection refused (${hostOf(url)})` };
  if (/ENOTFOUND|EAI_AGAIN/.test(text)) return { message: `host not found (${hostOf(url)})` };
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(text)) return { message: `${hostOf(url)} unreachable (${text})` };
  if (/self[- ]signed|unable to verify|unable to get (local )?issuer|certificate has expired|does not match certificate|altnames|CERT_/i.test(text))
    return { message: `TLS: the hub's certificate is not trusted (${text}); for a private CA pass \`ca\` (Node) or set NODE_EXTRA_CA_CERTS` };
  if (/ECONNRESET|socket hang up/.test(text)) return { message: `connection reset by ${hostOf(url)} during the upgrade` };
  if (/^Invalid URL|The URL's protocol/.test(text)) return { message: `bad URL ${url}: ${text}` };
  if (/network error|non-101/i.test(text)) return null; // undici: no status, probe instead
  return { message: text };
}

/**
 * Browsers (and undici) hide why a WebSocket upgrade failed. Ask with fetch what can be
 * known: whether anything answers HTTP at that address at all. A cross-origin hub's
 * answer is opaque, but that it answered still tells "refused" apart from "refused the
 * upgrade".
 */
async function probeFailure(url) {
  const where = hostOf(url);
  const path = pathOf(url);
  const fetchFn = globalThis.fetch;
  const hidden = "the WebSocket API hides the HTTP status";
  const hints = [];
  if (path !== "/v1/ws") hints.push(`the path is ${path || "/"}, the hub's is /v1/ws`);
  hints.push("a token the hub requires may be missing or bad");
  if (typeof fetchFn !== "function") return { message: `connection failed to ${where} (${hidden})` };
  const httpUrl = url.replace(/^ws(s?):/i, "http$1:");
  try {
    const res = await fetchFn(httpUrl, { cache: "no-store", redirect: "manual" });
    if (res.status === 503) return { message: `upgrade refused by ${where}: it answers HTTP 503 (shutting down or overloaded)`, status: 503 };
    return { message: `upgrade refused by ${where}: it answers HTTP but ${hidden}; ${hints.join("; ")}` };
  } catch (_) {
    /* unreachable, or cross-origin without CORS: tell them apart with an opaque request */
  }
  try {
    await fetchFn(httpUrl, { mode: "no-cors", cache: "no-store" });
    hints.push("the hub allows only pages it serves itself unless started with --allowed-origins listing this page's origin");
    return { message: `upgrade refused by ${where} (cross-origin: ${hidden}); ${hints.join("; ")}` };
  } catch (_) {
    return { message: `cannot reach ${where}: connection refused, host not found or TLS failure (the browser does not say which)` };
  }
}

const CLOSE_MEANINGS = {
  1000: "normal closure",
  1001: "going away: the hub is shutting down",
  1002: "protocol error",
  1003: "unsupported data",
  1006: "abnormal closure, no close frame: the network or the hub went away",
  1007: "invalid payload",
  1008: "policy violation",
  1009: "message too big",
  1011: "internal error in the hub",
  1012: "the hub is restarting",
  1013: "try again later",
};

function describeClose(code, reason) {
  const what = reason || CLOSE_MEANINGS[code] || "closed by the hub";
  return `connection closed: ${code ?? "no code"} (${what})`;
}

async function resolveWebSocket(injected, needOptions) {
  if (injected) return injected;
  if (needOptions) {
    // A CA to pass: the `ws` package takes TLS options; a global (browser or undici)
    // WebSocket would ignore them, so it is not used then.
    try {
      const mod = await import("ws");
      return mod.WebSocket || mod.default;
    } catch (_) {
      throw new Error("flushout-hub-client: the `ca` option needs the `ws` package in Node; install it or pass options.WebSocket");
    }
  }
  if (typeof globalThis.WebSocket === "function") return globalThis.WebSocket;
  try {
    // Node without a global WebSocket: the `ws` package (an optional peer dependency).
    const mod = await import("ws");
    return mod.WebSocket || mod.default;
  } catch (err) {
    throw new Error(
      "flushout-hub-client: no WebSocket implementation; install `ws` or pass options.WebSocket"
    );
  }
}

/**
 * A connection to a hub. Status goes connecting → open → offline → connecting …, and
 * closed after close(). Events: status (status), error ({code, message, model?, url?,
 * status?, closeCode?, reason?}: every failed connection attempt and every connection the
 * hub or the network closed says why), welcome ({session, server, maxFrame}).
 */
export class HubClient extends Emitter {
  constructor(options = {}) {
    super();
    this.url = options.url || defaultUrl();
    this.token = options.token;
    // The hub keys exactly-once on (client, model, seq): a client id that outlives this
    // object (options.clientId) needs sequence numbers that outlive it too, so those
    // start from the clock; a fresh random id can start at 1.
    this.clientId = options.clientId || randomId();
    this._seq = options.clientId ? Date.now() * 1000 : 0;
    this.options = {
      flushDelay: options.flushDelay ?? 20,
      maxFlushDelay: options.maxFlushDelay ?? 200,
      maxBatch: options.maxBatch ?? 200,
      backoffInitial: options.backoffInitial ?? 250,
      backoffMax: options.backoffMax ?? 8000,
      connectTimeout: options.connectTimeout ?? 10000,
      retryDelay: options.retryDelay ?? 500,
      subTimeout: options.subTimeout ?? 15000,
      watchNetwork: options.watchNetwork ?? true,
    };
    this._WebSocket = options.WebSocket;
    // wss with a private CA in Node (PEM text or Buffer, passed to `ws`; Node's own
    // NODE_EXTRA_CA_CERTS works too). The hub's certificate is always verified.
    this._ca = options.ca;
    this.status = "offline";
    this.session = null;
    this.server = null;
    this.maxFrame = null;
    this.models = new Map();
    this._backends = new Set();
    this._ws = null;
    this._rid = 0;
    this._pending = new Map(); // rid → {msg, owner}
    this._attempt = 0;
    this._reconnectTimer = null;
    this._connectTimer = null;
    this._closed = false;
    this._onlineHandler = null;
    this._offlineHandler = null;
    if (this.options.watchNetwork) this._watchNetwork();
    if (options.autoConnect !== false) this.connect();
  }

  /** True when the hub has welcomed this connection. */
  get isOpen() {
    return this.status === "open";
  }

  /**
   * Opens (subscribes to) a model and returns its live handle; the same handle for the
   * same name. Await `handle.ready` before applying commands.
   */
  open(name, options = {}) {
    if (!MODEL_NAME.test(name)) {
      throw new Error(`bad model name ${JSON.stringify(name)}: 1-200 bytes of [A-Za-z0-9._:-]`);
    }
    if (this._closed) throw new Error("client is closed");
    let model = this.models.get(name);
    if (!model) {
      model = new HubModel(this, name, options);
      this.models.set(name, model);
      if (this.isOpen) model._onConnected();
    }
    return model;
  }

  /**
   * The request/response API of a Flushout backend ({latestSnapshot, sendFlush}) on this
   * connection, for apps that drive their own Proxy (see README).
   */
  backend(name) {
    if (!MODEL_NAME.test(name)) throw new Error(`bad model name ${JSON.stringify(name)}`);
    if (this._closed) throw new Error("client is closed");
    // One per name: its flushes must be serialised (see backend.js).
    let b = [...this._backends].find((x) => x.name === name);
    if (!b) {
      b = new HubBackend(this, name);
      this._backends.add(b);
    }
    return b;
  }

  /** Connects now (also called by the constructor unless autoConnect is false). */
  connect() {
    if (this._closed || this._ws) return;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._setStatus("connecting");
    resolveWebSocket(this._WebSocket, this._ca !== undefined && /^wss:/i.test(this.url)).then(
      (WS) => {
        if (this._closed || this._ws || this.status !== "connecting") return;
        this._WebSocket = WS;
        this._open(WS);
      },
      (err) => {
        this._emitError({ code: "no_websocket", message: err.message });
        this._setStatus("offline");
      }
    );
  }

  /** Drops the connection (if any) and reconnects at once. */
  reconnect() {
    this._attempt = 0;
    if (this._ws) this._drop();
    else this.connect();
  }

  /** Closes the connection for good. Unflushed commands are lost: await model.settled() first. */
  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._connectTimer);
    for (const m of this.models.values()) m._dispose();
    this.models.clear();
    for (const b of this._backends) b._dispose(new Error("client closed"));
    this._backends.clear();
    this._unwatchNetwork();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      try {
        ws.close(1000);
      } catch (_) {
        /* already closing */
      }
    }
    this._pending.clear();
    this._setStatus("closed");
  }

  /**
   * Replaces the token. Every later connect uses it; on an open connection it is sent at
   * once in a new hello (renewal): the hub then keeps the connection past the old token's
   * exp, with the new token's identity and rights. Resolves true when the hub took it,
   * false when not connected (the token is used at the next connect); rejects with the
   * hub's reason (`unauthorized`) when it refused it, the connection staying as it was.
   */
  setToken(token) {
    this.token = token;
    if (!this.isOpen) return Promise.resolve(false);
    return new Promise((resolve, reject) => {
      const owner = {
        _onReply: (msg) => {
          if (msg.t === "welcome") resolve(true);
          else reject(Object.assign(new Error(msg.message || msg.t), { code: msg.code }));
        },
        _onFailed: () => resolve(false),
      };
      const rid = this._request({ t: "hello", client: this.clientId, token }, owner);
      if (rid <= 0) resolve(false);
    });
  }

  /** The next flush sequence number (per client, increasing). */
  nextSeq() {
    this._seq += 1;
    return this._seq;
  }

  // ---- internals ------------------------------------------------------------------------

  _open(WS) {
    let url = this.url;
    if (this.token) {
      url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(this.token);
    }
    let ws;
    try {
      ws = this._ca !== undefined && /^wss:/i.test(url) ? new WS(url, SUBPROTOCOL, { ca: this._ca }) : new WS(url, SUBPROTOCOL);
    } catch (err) {
      this._emitError({ code: "connect", message: `bad URL ${this.url}: ${String(err && err.message)}`, url: this.url });
      this._scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    // What this attempt learnt: whether the upgrade succeeded, and what its error said.
    const attempt = { opened: false, error: null };
    this._connectTimer = setTimeout(() => {
      if (this._ws !== ws || this.status === "open") return;
      this._emitError({
        code: "connect_timeout",
        message: `no welcome from ${hostOf(url)} within ${this.options.connectTimeout} ms`,
        url: this.url,
      });
      this._drop();
    }, this.options.connectTimeout);
    ws.onopen = () => {
      if (this._ws !== ws) return;
      attempt.opened = true;
      const hello = { t: "hello", client: this.clientId };
      if (this.token) hello.token = this.token;
      this._request(hello, this);
    };
    ws.onmessage = (ev) => {
      if (this._ws !== ws) return;
      let msg;
      try {
        msg = decodeFrame(ev.data);
      } catch (err) {
        this._emitError({ code: "bad_frame", message: String(err.message) });
        return;
      }
      this._dispatch(msg);
    };
    ws.onerror = (ev) => {
      // onclose follows; keep what the error says for it (Node's `ws` says why).
      const text = ev && (ev.message || (ev.error && ev.error.message));
      if (text) attempt.error = String(text);
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._reportClose(attempt, ev);
      this._onClosed();
    };
  }

  /**
   * Every connection failure becomes an `error` event with its reason: a failed attempt
   * (code "connect": refused, host not found, the upgrade's HTTP status) or an open
   * connection that the hub or the network closed (code "closed", with closeCode).
   * Connections this client drops itself (close, reconnect, timeouts) are not reported here.
   */
  _reportClose(attempt, ev) {
    const url = this.url;
    if (attempt.opened) {
      const closeCode = ev && typeof ev.code === "number" ? ev.code : undefined;
      const reason = ev && ev.reason ? String(ev.reason) : "";
      const err = { code: "closed", message: describeClose(closeCode, reason), url };
      if (closeCode !== undefined) err.closeCode = closeCode;
      if (reason) err.reason = reason;
      this._emitError(err);
      return;
    }
    const known = describeConnectError(attempt.error, url);
    if (known) {
      this._emitError({ code: "connect", url, ...known });
      return;
    }
    probeFailure(url).then((info) => {
      if (!this._closed) this._emitError({ code: "connect", url, ...info });
    });
  }

  _drop() {
    const ws = this._ws;
    if (!ws) return;
    try {
      ws.close(4000, "client reconnect");
    } catch (_) {
      /* closing anyway */
    }
    this._onClosed();
  }

  _onClosed() {
    this._ws = null;
    clearTimeout(this._connectTimer);
    this.session = null;
    const renewals = [...this._pending.values()].filter((r) => r.msg.t === "hello" && r.owner !== this);
    this._pending.clear();
    for (const r of renewals) r.owner._onFailed(); // setToken resolves false: used on reconnect
    for (const m of this.models.values()) m._onDisconnected();
    for (const b of this._backends) b._onDisconnected();
    if (this._closed) return;
    this._setStatus("offline");
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (this._closed || this._reconnectTimer) return;
    const base = Math.min(
      this.options.backoffMax,
      this.options.backoffInitial * Math.pow(2, this._attempt)
    );
    this._attempt = Math.min(this._attempt + 1, 30);
    // Equal jitter: half fixed, half random, so a crowd of clients spreads out after a
    // hub restart instead of reconnecting in lockstep.
    const delay = base / 2 + Math.random() * (base / 2);
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      const nav = globalThis.navigator;
      if (nav && nav.onLine === false && this.options.watchNetwork && this._offlineHandler) {
        this._setStatus("offline"); // wait for the browser's `online` event
        return;
      }
      this.connect();
    }, delay);
  }

  _watchNetwork() {
    const w = globalThis.window;
    if (!w || typeof w.addEventListener !== "function") return;
    this._onlineHandler = () => {
      if (this._closed) return;
      this._attempt = 0;
      if (!this._ws) this.connect();
    };
    // A browser that goes offline may keep a dead socket open for a long time: drop it,
    // so that the status says offline and pending work waits for the reconnect.
    this._offlineHandler = () => {
      if (!this._closed && this._ws) this._drop();
    };
    w.addEventListener("online", this._onlineHandler);
    w.addEventListener("offline", this._offlineHandler);
  }

  _unwatchNetwork() {
    const w = globalThis.window;
    if (!w || !this._onlineHandler) return;
    w.removeEventListener("online", this._onlineHandler);
    w.removeEventListener("offline", this._offlineHandler);
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.emit("status", status);
  }

  _emitError(err) {
    if (!this.emit("error", err) && typeof console !== "undefined") {
      console.warn("flushout-hub-client:", err.code, err.message, err.model || "");
    }
  }

  /**
   * Sends a request with a fresh rid; returns the rid, 0 when not connected, or -1 when
   * the frame is larger than the hub's maxFrame (not sent: the hub could not even read
   * its rid to refuse it).
   */
  _request(msg, owner) {
    const ws = this._ws;
    if (!ws || (msg.t !== "hello" && !this.isOpen)) return 0;
    const rid = ++this._rid;
    msg.rid = rid;
    const bytes = encodeFrame(msg);
    if (this.maxFrame && bytes.length > this.maxFrame) return -1;
    this._pending.set(rid, { msg, owner });
    try {
      ws.send(bytes);
    } catch (err) {
      this._pending.delete(rid);
      this._emitError({ code: "send", message: String(err && err.message), model: msg.model });
      return 0;
    }
    return rid;
  }

  _dispatch(msg) {
    let req;
    if (typeof msg.rid === "number" && this._pending.has(msg.rid)) {
      req = this._pending.get(msg.rid);
      this._pending.delete(msg.rid);
    }
    if (req && req.owner !== this && typeof req.owner._onReply === "function" && req.msg.t === "hello") {
      req.owner._onReply(msg, req.msg); // a renewal's welcome or refusal: the connection is as it was
      return;
    }
    if (msg.t === "welcome") {
      this.session = msg.session;
      this.server = msg.server;
      this.maxFrame = msg.maxFrame;
      this._attempt = 0;
      clearTimeout(this._connectTimer);
      this._setStatus("open");
      this.emit("welcome", { session: msg.session, server: msg.server, maxFrame: msg.maxFrame });
      for (const m of this.models.values()) m._onConnected();
      for (const b of this._backends) b._onConnected();
      return;
    }
    if (req && req.owner !== this) {
      req.owner._onReply(msg, req.msg);
      return;
    }
    if (msg.t === "error") {
      const err = { code: msg.code, message: msg.message };
      if (msg.model) err.model = msg.model;
      const model = msg.model ? this.models.get(msg.model) : undefined;
      if (model) model._onUnsolicitedError(err);
      else this._emitError(err);
      if (req && req.msg.t === "hello") this._drop();
      return;
    }
    const model = typeof msg.model === "string" ? this.models.get(msg.model) : undefined;
    if (model) model._onMessage(msg);
  }
}
