// backend.js - the request/response shape of a Flushout backend ({latestSnapshot,
// sendFlush}, as in the article's example app) on a hub connection. For apps that keep
// driving their own Proxy; HubModel does all of it (and live pushes) by itself.
//
// Requests wait while the connection is down and go (again) once it is back; a flush goes
// again with the same seq, so the hub applies it exactly once. Flushes go one at a time,
// in order: the hub remembers only the last seq per (client, model), so a retried flush
// must never be older than one it has already applied (two Proxies sharing this backend,
// as in the article's app with its two clients, would otherwise break exactly-once).
//
// It also reads the model's past (the hub's `get` with `at`, and `history`): the state
// after N commands, and the commands themselves, as far back as the hub's --history keeps.
import { batchFromWire, batchToWire, resultFromWire } from "./wire.js";

const TRANSIENT = new Set(["overloaded", "rate_limited", "shutting_down", "internal"]);

/** A TypeError for a command count that is not an unsigned integer, else null. */
function checkCount(name, n) {
  if (Number.isSafeInteger(n) && n >= 0) return null;
  return Object.assign(new TypeError(`${name}: expected a command count (an integer >= 0), got ${String(n)}`), { code: "bad_request" });
}

export class HubBackend {
  constructor(client, name) {
    this.client = client;
    this.name = name;
    this._ops = new Set(); // {msg, resolve, reject, rid, decode, flush}
    this._flushes = []; // flush ops in seq order; only the first is on the wire
  }

  /** Resolves with the model's latest Snapshot ({commandCount, document}). */
  latestSnapshot() {
    return this._call({ t: "get", model: this.name }, (msg) => msg.snapshot);
  }

  /**
   * Resolves with the model as it was after `at` commands (a Snapshot whose commandCount
   * is `at`). Rejects with an Error whose `code` is "gone" where the hub no longer keeps
   * that state (older than its --history), "bad_request" past the model's count.
   */
  snapshotAt(at) {
    const bad = checkCount("at", at);
    if (bad) return Promise.reject(bad);
    return this._call({ t: "get", model: this.name, at }, (msg) => msg.snapshot);
  }

  /**
   * Resolves with the commands that took the model from `from` to `to` commands (default:
   * its count now) as a CompletionBatch ({from, completions: [{command, createdId?}]}, the
   * library's spelling: a delete's action is CommandAction.Delete), as the hub applied
   * them (rules' rewrites included). Rejects with code "gone" where history no longer
   * reaches `from`, "bad_request" for a range outside [0, count].
   */
  history(from, to) {
    const bad = checkCount("from", from) || (to === undefined ? null : checkCount("to", to));
    if (bad) return Promise.reject(bad);
    const msg = { t: "history", model: this.name, from };
    if (to !== undefined) msg.to = to;
    return this._call(msg, (reply) => batchFromWire(reply.diff));
  }

  /** Sends a CompletionBatch (from proxy.beginFlush()); resolves with the ApplyResult. */
  sendFlush(batch) {
    // The seq is taken now, in the order of the calls, and the batch is copied: the Proxy
    // may go on changing its queue.
    const msg = { t: "flush", model: this.name, seq: this.client.nextSeq(), batch: batchToWire(batch) };
    return this._call(msg, (reply) => resultFromWire(reply.result), true);
  }

  _call(msg, decode, flush = false) {
    return new Promise((resolve, reject) => {
      const op = { msg, resolve, reject, rid: 0, decode, timer: null, flush };
      this._ops.add(op);
      if (flush) this._flushes.push(op);
      this._send(op);
    });
  }

  _done(op) {
    this._ops.delete(op);
    if (op.flush) {
      this._flushes.shift();
      if (this._flushes.length) this._send(this._flushes[0]);
    }
  }

  _send(op) {
    if (op.flush && this._flushes[0] !== op) return; // waits for the one before it
    const msg = { ...op.msg };
    op.rid = this.client._request(msg, this);
    if (op.rid) op.sent = msg;
  }

  _onConnected() {
    for (const op of this._ops) if (!op.rid && !op.timer) this._send(op);
  }

  _onMessage() {
    /* a backend has no subscription: nothing unsolicited comes its way */
  }

  _onDisconnected() {
    for (const op of this._ops) op.rid = 0;
  }

  _onReply(msg, req) {
    const op = [...this._ops].find((o) => o.rid === req.rid);
    if (!op) return;
    op.rid = 0;
    if (msg.t === "error") {
      if (TRANSIENT.has(msg.code)) {
        op.timer = setTimeout(() => {
          op.timer = null;
          if (this.client.isOpen) this._send(op);
        }, this.client.options.retryDelay);
        return;
      }
      this._done(op);
      op.reject(Object.assign(new Error(`${msg.code}: ${msg.message}`), { code: msg.code }));
      return;
    }
    this._done(op);
    op.resolve(op.decode(msg));
  }

  _dispose(err) {
    for (const op of this._ops) {
      clearTimeout(op.timer);
      op.reject(err);
    }
    this._ops.clear();
    this._flushes = [];
  }
}
