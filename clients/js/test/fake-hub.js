// fake-hub.js - an in-process hub on the reference Master, with knobs to produce what the
// real hub only does under rare timing: a lost ack, a dropped push (a gap), an
// unsolicited snapshot, a refused flush. It speaks the same frames (MessagePack, "delete"
// on the wire) through a WebSocket-shaped object that the client takes as
// options.WebSocket. Used by model.test.js; the real hub is tested in the other files.
import flushout from "flushout";
import {
  encodeFrame,
  decodeFrame,
  batchFromWire,
  batchToWire,
  resultToWire,
} from "../src/wire.js";

const { Master } = flushout;

const clone = (v) => JSON.parse(JSON.stringify(v));

export class FakeHub {
  constructor() {
    this.models = new Map();
    this.conns = new Set();
    this.sessions = 0;
    this.log = []; // every client → hub message: {conn, msg}
    this.holdAcks = false; // keep acks (the batch is applied) until releaseAcks()
    this.held = [];
    this.dropPushesTo = new Set(); // connections whose pushes are dropped
    this.swallowFlushes = false; // flushes vanish before reaching the master
    this.refuseNext = null; // error code for the next flush
    this.maxFrame = 1 << 20;
    this.ignoreSubs = 0; // this many sub requests get no reply
    this._chain = Promise.resolve();
    const hub = this;
    // The WebSocket-shaped class handed to HubClient.
    this.WebSocket = class FakeSocket {
      constructor(url, protocol) {
        this.url = url;
        this.protocol = protocol;
        this.readyState = 0;
        this.binaryType = "blob";
        this.session = null;
        hub.conns.add(this);
        setTimeout(() => {
          if (this.readyState !== 0) return;
          this.readyState = 1;
          this.onopen && this.onopen({});
        }, 1);
      }
      send(bytes) {
        if (this.readyState !== 1) throw new Error("not open");
        const msg = decodeFrame(bytes);
        hub.log.push({ conn: this, msg });
        hub._chain = hub._chain.then(() => hub._handle(this, msg)).catch((e) => {
          console.error("fake hub:", e);
        });
      }
      close() {
        hub._close(this);
      }
      _deliver(msg) {
        if (this.readyState !== 1) return;
        const bytes = encodeFrame(msg);
        setTimeout(() => {
          if (this.readyState === 1 && this.onmessage) this.onmessage({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
        }, 0);
      }
    };
  }

  model(name) {
    let m = this.models.get(name);
    if (!m) {
      m = { name, master: null, history: [], dedup: new Map(), subs: new Map() };
      m.master = new Master({ commandCount: 0, document: {} }, {
        historyProvider: async (from, to) => m.history.slice(from, to).map(clone),
      });
      this.models.set(name, m);
    }
    return m;
  }

  snapshot(name) {
    return clone(this.model(name).master.getSnapshot());
  }

  /** Closes every connection, as a network failure would. */
  disconnectAll() {
    for (const c of [...this.conns]) this._close(c);
  }

  /** Sends the acks held by holdAcks (optionally dropping them: a lost ack). */
  releaseAcks({ drop = false } = {}) {
    const held = this.held.splice(0);
    if (!drop) for (const { conn, msg } of held) conn._deliver(msg);
    return held.length;
  }

  /** Sends `conn` an unsolicited snapshot of the model (a catch-up past history). */
  sendSnap(conn, name) {
    conn._deliver({ t: "snap", model: name, snapshot: this.snapshot(name) });
  }

  sent(type) {
    return this.log.filter((e) => e.msg.t === type);
  }

  _close(conn) {
    if (conn.readyState === 3) return;
    conn.readyState = 3;
    this.conns.delete(conn);
    for (const m of this.models.values()) {
      if (m.subs.has(conn)) {
        m.subs.delete(conn);
        this._broadcast(m, conn, { t: "presence", model: m.name, session: conn.session, state: null });
      }
    }
    setTimeout(() => conn.onclose && conn.onclose({ code: 1006 }), 0);
  }

  _broadcast(m, from, msg) {
    for (const [c] of m.subs) if (c !== from) c._deliver(msg);
  }

  async _handle(conn, msg) {
    if (conn.readyState !== 1) return;
    const reply = (r) => conn._deliver(msg.rid !== undefined ? { ...r, rid: msg.rid } : r);
    switch (msg.t) {
      case "hello":
        conn.client = msg.client;
        conn.session = `s${++this.sessions}`;
        reply({ t: "welcome", session: conn.session, server: "fake", maxFrame: this.maxFrame });
        return;
      case "sub": {
        const m = this.model(msg.model);
        if (this.ignoreSubs > 0) {
          this.ignoreSubs--; // a reply that never comes
          return;
        }
        m.subs.set(conn, m.subs.get(conn) || { presence: null });
        const count = m.master.getSnapshot().commandCount;
        if (msg.from !== undefined && msg.from <= count) {
          reply({ t: "diff", model: m.name, diff: batchToWire({ from: msg.from, completions: m.history.slice(msg.from) }) });
        } else {
          reply({ t: "snap", model: m.name, snapshot: this.snapshot(m.name) });
        }
        for (const [c, s] of m.subs) {
          if (c !== conn && s.presence) conn._deliver({ t: "presence", model: m.name, session: c.session, state: s.presence });
        }
        return;
      }
      case "get":
        reply({ t: "snap", model: msg.model, snapshot: this.snapshot(msg.model) });
        return;
      case "unsub":
        this.model(msg.model).subs.delete(conn);
        reply({ t: "ok" });
        return;
      case "presence": {
        const m = this.model(msg.model);
        const s = m.subs.get(conn);
        s.presence = msg.state;
        this._broadcast(m, conn, { t: "presence", model: m.name, session: conn.session, state: msg.state });
        reply({ t: "ok" });
        return;
      }
      case "flush": {
        if (this.swallowFlushes) return;
        const m = this.model(msg.model);
        if (this.refuseNext) {
          const code = this.refuseNext;
          this.refuseNext = null;
          reply({ t: "error", model: m.name, code, message: `refused (${code})` });
          return;
        }
        const last = m.dedup.get(conn.client);
        let batch = batchFromWire(msg.batch);
        let dup = false;
        if (last !== undefined && msg.seq <= last) {
          if (msg.seq < last) {
            reply({ t: "error", model: m.name, code: "bad_request", message: "seq: below last" });
            return;
          }
          dup = true;
          batch = { from: batch.from, completions: [] };
        }
        const result = await m.master.apply(batch);
        if (!dup) {
          m.dedup.set(conn.client, msg.seq);
          m.history.push(...clone(result.applied.completions));
          if (result.applied.completions.length) {
            const push = { t: "push", model: m.name, diff: batchToWire(result.applied) };
            for (const [c] of m.subs) if (c !== conn && !this.dropPushesTo.has(c)) c._deliver(push);
          }
        }
        const ack = { t: "ack", rid: msg.rid, model: m.name, seq: msg.seq, result: resultToWire(clone(result)) };
        if (this.holdAcks) this.held.push({ conn, msg: ack });
        else conn._deliver(ack);
        return;
      }
      default:
        reply({ t: "error", code: "bad_request", message: `t: unknown message type ${msg.t}` });
    }
  }
}
