// model.mjs - one model: the reference Master, its bounded in-memory history, its
// subscribers and the sequential runner that applies its requests one at a time.
import { Master } from 'flushout';
import { completionsToWire, errorsToWire } from './wire.mjs';

// The per-model runner of the seed article (async-sequential-runner is not on the npm
// registry, so: a queue drained by one async loop). Tasks of one model run strictly one
// after another, in arrival order, even across the await inside Master.apply; different
// models interleave freely.
export class SequentialRunner {
  constructor(onError) {
    this.queue = []; // task, its error handler (or undefined), task, ...
    this.running = false;
    this.onError = onError;
  }

  run(task, onError) {
    this.queue.push(task, onError);
    if (!this.running) this.drain();
  }

  async drain() {
    this.running = true;
    while (this.queue.length) {
      const task = this.queue.shift();
      const onError = this.queue.shift();
      try {
        await task();
      } catch (e) {
        this.onError(e);
        if (onError) onError(e);
      }
    }
    this.running = false;
  }
}

export class Sub {
  constructor(session, model) {
    this.session = session;
    this.model = model;
    this.presence = null; // the encoded presence event, while the state is not nil
    this.lagging = false; // pushes are being dropped; lagFrom is the first one missed
    this.lagFrom = 0;
  }
}

export class Model {
  constructor(name, hub) {
    this.name = name;
    this.hub = hub;
    this.history = []; // the last `hub.historyLimit` CommandCompletions, wire spelling
    this.histStart = 0; // the command count before history[0]
    this.subs = new Set();
    this.lastSeq = new Map(); // client id -> last seq applied (exactly-once)
    this.broken = null;
    this.master = new Master(
      { commandCount: 0, document: {} },
      { historyProvider: (from, to) => Promise.resolve(this.historyRange(from, to)) }
    );
    this.runner = new SequentialRunner((e) => this.hub.log(`model ${this.name}: ${e && e.stack || e}`));
  }

  count() {
    return this.master.getSnapshot().commandCount;
  }

  // Completions [from, to) if the history covers them, else undefined (the provider's
  // contract). Master.apply calls this after it applied the batch, so the history's own
  // bounds are used, not the master's count.
  historyRange(from, to) {
    const start = this.histStart, end = start + this.history.length;
    if (from < start || to > end || from > to) return undefined;
    return this.history.slice(from - start, to - start);
  }

  // `cs` were applied at the end of the history (the count before they were applied).
  addHistory(cs) {
    const h = this.history, limit = this.hub.historyLimit;
    for (let i = 0; i < cs.length; i++) h.push(cs[i]);
    // V8 left-trims the backing store on shift(): no copying of the remaining elements.
    while (h.length > limit) {
      h.shift();
      this.histStart++;
    }
  }

  fail(e) {
    // An exception inside the reference leaves the master half-applied: refuse the model
    // from then on rather than serve diffs that do not match the document.
    this.broken = String(e && e.stack || e);
    this.hub.log(`model ${this.name} is broken: ${this.broken}`);
  }

  // ---- requests (each runs on this.runner) ---------------------------------------------

  sub(s, msg) {
    let sub = s.subs.get(this.name);
    if (!sub) {
      sub = new Sub(s, this);
      s.subs.set(this.name, sub);
      this.subs.add(sub);
    }
    if (sub.lagging) {
      sub.lagging = false; // a resubscription starts over from this reply
      s.lagging--;
    }
    const count = this.count();
    let diff;
    if (msg.from != null && msg.from <= count) diff = this.historyRange(msg.from, count);
    if (diff) s.reply(msg, { t: 'diff', model: this.name, diff: { from: msg.from, completions: diff } });
    else s.reply(msg, { t: 'snap', model: this.name, snapshot: this.master.getSnapshot() });
    for (const o of this.subs) if (o !== sub && o.presence) s.sendBuf(o.presence);
  }

  unsub(s, msg) {
    const sub = s.subs.get(this.name);
    if (sub) this.unsubscribe(sub);
    s.reply(msg, { t: 'ok' });
  }

  unsubscribe(sub) {
    if (!this.subs.delete(sub)) return;
    sub.session.subs.delete(this.name);
    if (sub.lagging) {
      sub.lagging = false;
      sub.session.lagging--;
    }
    if (sub.presence) {
      sub.presence = null;
      this.broadcastPresence(sub, null);
    }
  }

  presence(s, msg) {
    const sub = s.subs.get(this.name);
    if (!sub) return s.error(msg, 'bad_request', 'model: subscribe before sending presence');
    const buf = this.broadcastPresence(sub, msg.state);
    sub.presence = msg.state == null ? null : buf;
    s.reply(msg, { t: 'ok' });
  }

  broadcastPresence(sub, state) {
    const buf = this.hub.encode({ t: 'presence', model: this.name, session: sub.session.id, state });
    for (const o of this.subs) if (o !== sub) o.session.sendBuf(buf);
    return buf;
  }

  get(s, msg) {
    const count = this.count();
    if (msg.at != null && msg.at !== count) {
      if (msg.at > count)
        return s.error(msg, 'bad_request', `at: ${msg.at} is beyond the model's count ${count}`);
      return s.error(msg, 'gone', 'at: the peer keeps no past snapshots (in-memory, latest only)');
    }
    s.reply(msg, { t: 'snap', model: this.name, snapshot: this.master.getSnapshot() });
  }

  history_(s, msg) {
    const count = this.count();
    const to = msg.to != null ? msg.to : count;
    if (msg.from > to || to > count)
      return s.error(msg, 'bad_request',
        `${msg.from > to ? 'from' : 'to'}: range [${msg.from}, ${to}) is outside [0, ${count}]`);
    const cs = this.historyRange(msg.from, to);
    if (!cs) return s.error(msg, 'gone', 'from: older than the history kept (--history)');
    s.reply(msg, { t: 'diff', model: this.name, diff: { from: msg.from, completions: cs } });
  }

  async flush(s, msg) {
    const hub = this.hub;
    let batch = msg.batch;
    let dup = false;
    const last = this.lastSeq.get(s.client);
    if (last !== undefined && msg.seq <= last) {
      if (msg.seq < last)
        return s.error(msg, 'bad_request',
          `seq: ${msg.seq} is below ${last}, the last seq applied for client ${s.client} on this model`);
      // A retry of the last flush: answered as an empty batch from the same `from`, whose
      // sync brings the proxy up to date with its own commands as the master applied them.
      dup = true;
      batch = { from: batch.from, completions: [] };
      hub.stats.duplicates++;
    }
    let res;
    try {
      res = await this.master.apply(batch);
    } catch (e) {
      this.fail(e);
      return s.error(msg, 'internal', 'apply failed');
    }
    const applied = res.applied;
    // Back to the wire's spelling; a batch the master rewrote (collisions, failures) holds
    // completions of its own, whose createdId may be undefined.
    completionsToWire(applied.completions, applied.completions !== batch.completions);
    // The encoder runs without ignoreUndefined (a second pass over every map): the result
    // is rebuilt with only the fields that are set.
    let sync = res.sync;
    if (dup && sync === undefined)
      sync = { isPartial: true, diff: { from: batch.from, completions: [] }, mappedPaths: {} };
    const result = sync === undefined ? { applied } : { applied, sync };
    if (res.errors !== undefined) result.errors = errorsToWire(res.errors);
    const n = applied.completions.length;
    if (!dup) {
      this.lastSeq.set(s.client, msg.seq);
      if (n) {
        this.addHistory(applied.completions);
        hub.stats.commands += n;
        if (this.subs.size > (s.subs.has(this.name) ? 1 : 0)) {
          // Encoded once; the same bytes go to every other subscriber, in model order.
          const buf = hub.encode({ t: 'push', model: this.name, diff: applied });
          const limit = hub.maxQueue;
          for (const o of this.subs) {
            const os = o.session;
            if (os === s) continue;
            if (o.lagging) {
              hub.stats.droppedPushes++;
              continue;
            }
            if (os.ws.bufferedAmount > limit) {
              // Slow subscriber: drop its pushes, catch it up in one push when it drains.
              o.lagging = true;
              o.lagFrom = applied.from;
              os.lagging++;
              hub.stats.droppedPushes++;
              continue;
            }
            os.sendBuf(buf);
            hub.stats.pushes++;
          }
        }
      }
    }
    hub.stats.flushes++;
    s.reply(msg, { t: 'ack', model: this.name, seq: msg.seq, result });
  }

  // On the runner, once the lagging subscriber's socket has drained.
  catchUp(sub) {
    if (!sub.lagging || !this.subs.has(sub)) return;
    const s = sub.session;
    sub.lagging = false;
    s.lagging--;
    const count = this.count();
    const cs = this.historyRange(sub.lagFrom, count);
    this.hub.stats.catchups++;
    if (cs) {
      if (cs.length) s.send({ t: 'push', model: this.name, diff: { from: sub.lagFrom, completions: cs } });
    } else {
      s.send({ t: 'snap', model: this.name, snapshot: this.master.getSnapshot() });
    }
  }
}
