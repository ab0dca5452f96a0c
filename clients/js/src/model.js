// model.js - one subscribed model: the unmodified reference Proxy plus the policy a real
// client needs around it (background flushes, pushes, resubscription, reconnects).
//
// The reference Proxy has no push API. Its public begin/end flush cycle is enough, given
// one rule: the Proxy is only ever moved to a new master state when its queue is empty.
//
//   state X arrives (a push, a resubscription's diff or snap) and
//     - a flush is in flight: drop X. The ack's sync covers it (the hub orders a model's
//       frames on a connection: pushes of batches before ours, our ack, later pushes);
//     - the queue is empty: `beginFlush()` (an empty batch), then
//       `endFlush({isPartial: true, diff: X})` (or a full sync for a snap): the Proxy
//       rebuilds from its last committed document, applies X and commits it;
//     - the queue holds local commands: flush them now and drop X. The ack's sync (from
//       our committed count) brings X, and the Proxy re-applies whatever was queued
//       since with their own IDs. Calling beginFlush() here would instead hand the queue
//       to a batch that endFlush(sync) then forgets.
//
// So the Proxy's own bookkeeping is never bypassed, and `committed` (the Proxy's last
// committed count, which it does not expose) is tracked here from the same inputs.
import flushout from "flushout";
import { Emitter } from "./emitter.js";
import { LIB_DELETE, WIRE_DELETE, batchToWire, batchFromWire, resultFromWire } from "./wire.js";

const { Proxy } = flushout;

/** Error codes after which a flush is retried later with the same seq. */
const TRANSIENT = new Set(["overloaded", "rate_limited", "shutting_down", "internal"]);

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/**
 * A live model. Events:
 *   ready    (document)                  the first snapshot arrived
 *   change   (document, {source, count}) the document changed: source "local" (apply),
 *                                        "remote" (push, sync, snapshot)
 *   flushed  ({seq, result})             an ack was applied (result.errors: rejected commands)
 *   presence (peers: Map<session, state>)
 *   pending  (n)                         local commands not yet acknowledged changed
 *   error    ({code, message, model})
 */
export class HubModel extends Emitter {
  constructor(client, name, options = {}) {
    super();
    this.client = client;
    this.name = name;
    this.options = {
      flushDelay: options.flushDelay ?? client.options.flushDelay,
      maxFlushDelay: options.maxFlushDelay ?? client.options.maxFlushDelay,
      maxBatch: options.maxBatch ?? client.options.maxBatch,
    };
    this._proxyConfig = {};
    if (options.sequentialIds !== undefined) this._proxyConfig.sequentialIds = options.sequentialIds;
    if (options.interceptor !== undefined) this._proxyConfig.interceptor = options.interceptor;
    this.proxy = null;
    this.committed = 0; // the Proxy's last committed count
    this.peers = new Map();
    this._presence = null; // our own presence state
    this._inflight = null; // {seq, batch, wire, rid}
    this._subRid = 0; // outstanding sub request
    this._recovering = false; // a failed endFlush waits for a full snapshot
    this._synced = false; // a sub reply arrived on this connection
    this._timer = null;
    this._firstQueuedAt = 0;
    this._retryTimer = null;
    this.retriedAfter = 0; // refusals resent after the hub's retryAfterMs
    this._presenceTimer = null; // presence refused with retryAfterMs: the latest goes then
    this._subTimer = null;
    this._waiters = [];
    this._closed = false;
    this._lastPending = 0;
    this.ready = new Promise((resolve, reject) => {
      this._resolveReady = resolve;
      this._rejectReady = reject;
    });
    // An unobserved rejection must not crash Node; apps that await ready still see it.
    this.ready.catch(() => {});
  }

  // ---- the application's API ---------------------------------------------------------

  /** The local document (read-only: change it with apply()). Undefined before ready. */
  getDocument() {
    return this.proxy ? this.proxy.getDocument() : undefined;
  }

  /** The local command count: committed plus local commands not yet acknowledged. */
  getCommandCount() {
    return this.proxy ? this.proxy.getCommandCount() : 0;
  }

  /** Local commands not yet acknowledged by the hub (in flight or queued). */
  get pendingCount() {
    return this.proxy ? this.proxy.getCommandCount() - this.committed : 0;
  }

  /** True while a flush waits for its ack. */
  get flushing() {
    return this._inflight !== null;
  }

  /**
   * Applies a command to the local document at once and queues it for the hub. Accepts
   * the library's Command (CommandAction.Delete is "detete"); "delete" is taken too.
   * Returns the library's Result: {isSuccess: true, createdId?} or {isSuccess: false, error}.
   */
  apply(command) {
    if (!this.proxy) throw new Error(`model ${this.name} is not ready: await model.ready`);
    if (this._closed) throw new Error(`model ${this.name} is closed`);
    const cmd = clone(command);
    if (cmd.action === WIRE_DELETE) cmd.action = LIB_DELETE;
    // The hub fails these where the reference would misbehave (FLUSHOUT-SEMANTICS.md,
    // deviations); failing them here too keeps the local document equal to the master's.
    if (cmd.action === LIB_DELETE && (!cmd.path || cmd.path.length === 0)) {
      return { isSuccess: false, error: "No object at document path " };
    }
    let result;
    try {
      result = this.proxy.apply(cmd);
    } catch (err) {
      // The reference throws a TypeError on a path through null.
      result = { isSuccess: false, error: "No object at document path " + (cmd.path || []).toString() };
    }
    if (result.isSuccess) {
      this.emit("change", this.proxy.getDocument(), { source: "local", count: this.getCommandCount() });
      this._pendingChanged();
      this._scheduleFlush();
    }
    return result;
  }

  /** Sets (a map) or clears (null) this session's presence; others see it via "presence". */
  setPresence(state) {
    this._presence = state === undefined ? null : clone(state);
    if (this._synced) this.client._request({ t: "presence", model: this.name, state: this._presence }, this);
  }

  /** Flushes queued commands now (when connected); resolves as settled() does. */
  flush() {
    this._flushNow();
    return this.settled();
  }

  /**
   * Resolves when nothing local is pending: no flush in flight, nothing queued, and the
   * model is subscribed on a live connection.
   */
  settled() {
    if (this._isSettled()) return Promise.resolve();
    return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
  }

  /** Unsubscribes. Commands not yet acknowledged are dropped: await settled() first. */
  close() {
    if (this._closed) return;
    if (this.client.isOpen) this.client._request({ t: "unsub", model: this.name }, this);
    this.client.models.delete(this.name);
    this._dispose();
  }

  // ---- from the client -------------------------------------------------------------------

  _dispose() {
    this._closed = true;
    clearTimeout(this._subTimer);
    clearTimeout(this._timer);
    clearTimeout(this._retryTimer);
    clearTimeout(this._presenceTimer);
    const err = new Error(`model ${this.name} closed`);
    this._rejectReady(err);
    for (const w of this._waiters.splice(0)) w.reject(err);
  }

  _onConnected() {
    if (this._closed) return;
    this._synced = false;
    this._subscribe(this.proxy !== null);
    // Exactly once: the flush whose ack was lost goes again with the same seq. The hub
    // answers a retry as an empty batch with a sync from our committed count.
    if (this._inflight) this._sendFlush();
  }

  _onDisconnected() {
    this._synced = false;
    this._subRid = 0;
    clearTimeout(this._subTimer);
    clearTimeout(this._timer);
    this._timer = null;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    clearTimeout(this._presenceTimer); // sent again with the resubscription
    this._presenceTimer = null;
    if (this._inflight) this._inflight.rid = 0;
    if (this.peers.size > 0) {
      this.peers.clear();
      this.emit("presence", this.peers);
    }
  }

  _onReply(msg, req) {
    if (this._closed) return;
    if (msg.t === "error") {
      this._onRequestError(msg, req);
      return;
    }
    if (req.t === "sub") {
      if (req.rid !== this._subRid) return; // superseded by a later sub
      this._subRid = 0;
      clearTimeout(this._subTimer);
      this._synced = true;
      if (msg.t === "snap") this._onSubSnap(msg.snapshot);
      else if (msg.t === "diff") this._onSubDiff(msg.diff);
      if (this._presence !== null) {
        this.client._request({ t: "presence", model: this.name, state: this._presence }, this);
      }
      this._scheduleFlush();
      this._checkSettled();
      return;
    }
    if (req.t === "flush" && msg.t === "ack") {
      this._onAck(msg);
      return;
    }
    // ok (unsub, presence): nothing to do.
  }

  _onMessage(msg) {
    if (this._closed) return;
    switch (msg.t) {
      case "push":
        this._onPush(msg.diff);
        break;
      case "snap":
        // Unsolicited: a slow subscriber's catch-up where history no longer covers it.
        if (this.proxy && this._synced && !this._subRid) this._adoptSnapshot(msg.snapshot);
        break;
      case "presence":
        if (msg.session === this.client.session) break;
        if (msg.state === null || msg.state === undefined) this.peers.delete(msg.session);
        else this.peers.set(msg.session, msg.state);
        this.emit("presence", this.peers);
        break;
      case "ack":
        // An ack whose request is unknown (e.g. its rid was reset): match by seq.
        if (this._inflight && msg.seq === this._inflight.seq) this._onAck(msg);
        break;
      default:
        break;
    }
  }

  _onUnsolicitedError(err) {
    this._emitError(err);
  }

  // ---- subscription and incoming state ---------------------------------------------------

  _subscribe(withFrom) {
    const msg = { t: "sub", model: this.name };
    if (withFrom && !this._recovering) msg.from = this.committed;
    this._synced = false;
    const rid = (this._subRid = this.client._request(msg, this));
    // Every request gets exactly one reply, says the contract; should a sub's ever go
    // missing, ask again rather than wait forever for the model.
    clearTimeout(this._subTimer);
    this._subTimer = rid > 0 ? setTimeout(() => {
      if (this._subRid === rid && this.client.isOpen && !this._closed) {
        this._emitError({ code: "timeout", message: "no reply to sub: subscribing again" });
        this._subscribe(withFrom);
      }
    }, this.client.options.subTimeout) : null;
  }

  _onSubSnap(snapshot) {
    if (!this.proxy) {
      // The Proxy keeps (and mutates) the snapshot object it is given: hand it a copy.
      this.proxy = new Proxy(clone(snapshot), this._proxyConfig);
      this.committed = snapshot.commandCount;
      this._resolveReady(this.proxy.getDocument());
      this.emit("ready", this.proxy.getDocument());
      this.emit("change", this.proxy.getDocument(), { source: "remote", count: this.getCommandCount() });
      return;
    }
    if (this._inflight) return; // the resent flush's ack covers it
    if (this._recovering) {
      // The Proxy still holds the flush whose endFlush failed (see _recover).
      this._recovering = false;
      this._endFlushFull(snapshot);
      return;
    }
    this._adoptSnapshot(snapshot);
  }

  _onSubDiff(diff) {
    if (this._inflight || this._recovering) return; // the resent flush's ack covers it
    this._applyRemote(diff);
  }

  _onPush(diff) {
    // Before the first snapshot, during a resubscription, or with a flush in flight (the
    // ack covers it), a push is dropped.
    if (!this.proxy || !this._synced || this._subRid || this._inflight || this._recovering) return;
    this._applyRemote(diff);
  }

  /** Applies a wire CompletionBatch from the master; the caller checked nothing is in flight. */
  _applyRemote(wireDiff) {
    const diff = batchFromWire(wireDiff);
    const end = diff.from + diff.completions.length;
    if (diff.from > this.committed) {
      // A gap: we missed batches. Resubscribe from what we have.
      this._subscribe(true);
      return;
    }
    if (end <= this.committed) return; // nothing new (e.g. a catch-up that overlaps an ack)
    if (this.proxy.hasUnflushedCommands()) {
      this._flushNow();
      if (this._inflight) return;
      // Not connected: nothing can be flushed; the reconnect resubscribes from committed.
      return;
    }
    const completions = diff.completions.slice(this.committed - diff.from);
    this.proxy.beginFlush(); // an empty batch: nothing was queued
    let r;
    try {
      r = this.proxy.endFlush({
        isPartial: true,
        diff: { from: this.committed, completions },
        mappedPaths: {},
      });
    } catch (err) {
      r = { error: String(err && err.message) };
    }
    if (r.error) {
      this._recover(r.error);
      return;
    }
    this.committed = end;
    this._changedRemote();
  }

  /** Moves to a full snapshot of the master (nothing in flight). */
  _adoptSnapshot(snapshot) {
    if (this._inflight || this._recovering) return;
    if (snapshot.commandCount === this.committed && !this.proxy.hasUnflushedCommands()) {
      // Same version as ours: nothing to do (documents of the same count are equal).
      return;
    }
    if (this.proxy.hasUnflushedCommands()) {
      // Flush instead: the ack's sync brings the snapshot's state and keeps our queue.
      this._flushNow();
      return;
    }
    this.proxy.beginFlush();
    this._endFlushFull(snapshot);
  }

  /** endFlush with a full sync; the Proxy has a flush in progress. */
  _endFlushFull(snapshot) {
    let r;
    try {
      r = this.proxy.endFlush({ isPartial: false, latest: snapshot, mappedPaths: {} });
    } catch (err) {
      r = { error: String(err && err.message) };
    }
    if (r.error) {
      // Re-applying the queue threw (the reference trips over paths through null): start
      // over from the snapshot. The queued commands cannot be kept.
      this._emitError({ code: "local_reset", message: `local commands dropped: ${r.error}` });
      this.proxy = new Proxy(clone(snapshot), this._proxyConfig);
    }
    this.committed = snapshot.commandCount;
    this._changedRemote();
  }

  /** The Proxy could not take a sync: fetch a full snapshot and end with it. */
  _recover(reason) {
    this._emitError({ code: "resync", message: `resynchronising: ${reason}` });
    // Every failed endFlush leaves the Proxy's flush in progress; the next snapshot ends it.
    if (!this.proxy.isFlushInProgress()) this.proxy.beginFlush();
    this._recovering = true;
    this._subscribe(false);
  }

  // ---- flushing -----------------------------------------------------------------------

  _scheduleFlush() {
    if (this._closed || this._inflight || !this._synced || !this.proxy) return;
    if (!this.proxy.hasUnflushedCommands()) return;
    const queued = this.pendingCount;
    const now = Date.now();
    if (queued >= this.options.maxBatch) {
      this._flushNow();
      return;
    }
    if (this._timer === null) this._firstQueuedAt = now;
    else clearTimeout(this._timer);
    // Idle delay, but never later than maxFlushDelay after the first queued command.
    const deadline = this._firstQueuedAt + this.options.maxFlushDelay;
    const delay = Math.max(0, Math.min(this.options.flushDelay, deadline - now));
    this._timer = setTimeout(() => {
      this._timer = null;
      this._flushNow();
    }, delay);
  }

  _flushNow() {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._closed || this._inflight || !this.proxy || !this._synced || this._subRid) return;
    if (!this.client.isOpen || !this.proxy.hasUnflushedCommands()) return;
    if (this._recovering) return;
    const batch = this.proxy.beginFlush();
    this._inflight = { seq: this.client.nextSeq(), batch, wire: batchToWire(batch), rid: 0 };
    this._sendFlush();
  }

  _sendFlush() {
    const f = this._inflight;
    f.rid = this.client._request({ t: "flush", model: this.name, seq: f.seq, batch: f.wire }, this);
    if (f.rid === -1) {
      f.rid = 0;
      this._refuseFlush(f, {
        code: "too_large",
        message: `a batch of ${f.batch.completions.length} commands exceeds the hub's frame limit of ${this.client.maxFrame} bytes`,
      });
    }
  }

  _onAck(msg) {
    const f = this._inflight;
    if (!f || msg.seq !== f.seq) return;
    this._inflight = null;
    clearTimeout(this._retryTimer);
    const result = resultFromWire(msg.result);
    const sync = result.sync;
    let r;
    try {
      r = this.proxy.endFlush(sync);
    } catch (err) {
      r = { error: String(err && err.message) };
    }
    if (r.error) {
      this._recover(r.error);
      this.emit("flushed", { seq: f.seq, result });
      return;
    }
    if (!sync) this.committed = f.batch.from + f.batch.completions.length;
    else if (sync.isPartial) this.committed = sync.diff.from + sync.diff.completions.length;
    else this.committed = sync.latest.commandCount;
    if (sync) this.emit("change", this.proxy.getDocument(), { source: "remote", count: this.getCommandCount() });
    this.emit("flushed", { seq: f.seq, result });
    if (result.errors) {
      this._emitError({
        code: "rejected",
        message: result.errors.map((e) => `${e.action} ${e.path.join("/")}: ${e.errorMessage}`).join("; "),
        errors: result.errors,
      });
    }
    this._pendingChanged();
    this._scheduleFlush();
    this._checkSettled();
  }

  _onRequestError(msg, req) {
    const err = { code: msg.code, message: msg.message };
    // rate_limited and overloaded say when to come back: the hub applied nothing.
    const hinted = Number.isInteger(msg.retryAfterMs) && msg.retryAfterMs >= 0;
    if (hinted) err.retryAfterMs = msg.retryAfterMs;
    const delay = hinted ? msg.retryAfterMs : this.client.options.retryDelay;
    if (req.t === "flush") {
      const f = this._inflight;
      if (!f || req.seq !== f.seq) return;
      if (TRANSIENT.has(msg.code)) {
        // Same seq later: exactly once holds whether or not the hub applied it.
        clearTimeout(this._retryTimer);
        this._retryTimer = setTimeout(() => {
          this._retryTimer = null;
          if (this._inflight === f && this.client.isOpen && f.rid === 0) this._sendFlush();
        }, delay);
        if (hinted) this.retriedAfter++;
        f.rid = 0;
        return;
      }
      this._refuseFlush(f, err);
      return;
    }
    if (req.t === "presence" && hinted) {
      // Presence is the latest state only: send whatever it is then, once.
      if (!this._presenceTimer) {
        this._presenceTimer = setTimeout(() => {
          this._presenceTimer = null;
          if (this._synced && !this._closed) {
            this.client._request({ t: "presence", model: this.name, state: this._presence }, this);
          }
        }, delay);
        this.retriedAfter++;
      }
      return;
    }
    if (req.t === "sub") {
      if (req.rid !== this._subRid) return;
      this._subRid = 0;
      if (TRANSIENT.has(msg.code)) {
        clearTimeout(this._retryTimer);
        this._retryTimer = setTimeout(() => {
          this._retryTimer = null;
          if (this.client.isOpen && !this._synced && !this._subRid) this._subscribe(this.proxy !== null);
        }, delay);
      } else if (!this.proxy) {
        this._rejectReady(Object.assign(new Error(`${msg.code}: ${msg.message}`), err));
      }
      this._emitError(err);
      return;
    }
    this._emitError(err);
  }

  /**
   * The hub refused the batch in flight for good (bad_request, forbidden, too_large): drop
   * it. An empty diff from our committed count rebuilds the committed document and
   * re-applies what was queued since; pushes were dropped meanwhile, so resubscribe.
   */
  _refuseFlush(f, err) {
    if (this._inflight !== f) return;
    this._inflight = null;
    let r;
    try {
      r = this.proxy.endFlush({ isPartial: true, diff: { from: this.committed, completions: [] }, mappedPaths: {} });
    } catch (e) {
      r = { error: String(e && e.message) };
    }
    this._emitError({ ...err, message: `flush refused, ${f.batch.completions.length} local commands dropped: ${err.message}` });
    if (r.error) this._recover(r.error);
    else {
      this._changedRemote();
      if (this.client.isOpen) this._subscribe(true);
    }
  }

  // ---- notifications --------------------------------------------------------------------

  _changedRemote() {
    this.emit("change", this.proxy.getDocument(), { source: "remote", count: this.getCommandCount() });
    this._pendingChanged();
    this._checkSettled();
  }

  _pendingChanged() {
    const n = this.pendingCount;
    if (n !== this._lastPending) {
      this._lastPending = n;
      this.emit("pending", n);
    }
  }

  _isSettled() {
    return (
      this.proxy !== null &&
      this._synced &&
      !this._subRid &&
      this._inflight === null &&
      !this._recovering &&
      !this.proxy.hasUnflushedCommands()
    );
  }

  _checkSettled() {
    if (this._waiters.length && this._isSettled()) {
      for (const w of this._waiters.splice(0)) w.resolve();
    }
  }

  _emitError(err) {
    const e = { model: this.name, ...err };
    if (!this.emit("error", e)) this.client._emitError(e);
  }
}
