#!/usr/bin/env node
// server.mjs - the Node peer: the flushout.v1 wire contract (shared/PROTOCOL.md) served the
// way the Flushout article suggests a Node backend would do it: one reference `Master` per
// model with an in-memory history provider, a per-model sequential runner, `ws` and
// `@msgpack/msgpack`. It exists so that flushout-bench can drive it and flushout-hub
// unchanged, side by side. In-memory only; no auth.
//
//   node bench/peer/server.mjs --listen 127.0.0.1:0   # prints "listening on 127.0.0.1:PORT"
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { Encoder, Decoder } from '@msgpack/msgpack';
import { Model } from './model.mjs';
import { BadRequest, isMap, isUint, checkModel, checkUint, checkClient, batchToLib } from './wire.mjs';

const SERVER = `flushout-peer/0.1 (node ${process.version})`;
const MODEL_RE = /^[A-Za-z0-9._:-]{1,200}$/;

const USAGE = `usage: node server.mjs [options]
  --listen HOST:PORT   address to listen on (default 127.0.0.1:7421; port 0 picks a free
                       port, printed as "listening on HOST:PORT" on stderr)
  --history N          commands kept per model for incremental syncs (default 1000)
  --max-frame BYTES    largest inbound frame (default 1048576)
  --max-queue BYTES    outbound backlog of a connection before its pushes are dropped
                       and replaced by one catch-up push when it drains (default 4194304)
  --cork MODE          tick: cork a socket at its first frame of an event-loop turn and
                       uncork all in setImmediate (default); micro: uncork in a microtask;
                       none: one socket write per frame (ws's own behaviour)
  --help               this text
`;

function parseArgs(argv) {
  const o = { host: '127.0.0.1', port: 7421, history: 1000, maxFrame: 1 << 20, maxQueue: 4 << 20, cork: 'tick' };
  const num = (flag, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) die(`bad value for ${flag}: '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [k, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => (inline !== undefined ? inline : argv[++i] ?? die(`${k} needs a value`));
    switch (k) {
      case '--listen': {
        const v = val();
        const c = v.lastIndexOf(':');
        if (c < 0) die(`bad value for --listen: '${v}' (HOST:PORT)`);
        o.host = v.slice(0, c).replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
        o.port = num('--listen', v.slice(c + 1));
        break;
      }
      case '--history': o.history = num(k, val()); break;
      case '--max-frame': o.maxFrame = num(k, val()); break;
      case '--max-queue': o.maxQueue = num(k, val()); break;
      case '--cork': o.cork = val(); if (!['tick', 'micro', 'none'].includes(o.cork)) die(`bad value for --cork: '${o.cork}'`); break;
      case '--help': case '-h': process.stdout.write(USAGE); process.exit(0); break;
      default: die(`unknown option ${a} (see --help)`);
    }
  }
  return o;
}

function die(msg) {
  process.stderr.write(`flushout-peer: ${msg}\n`);
  process.exit(2);
}

// ---- sessions -----------------------------------------------------------------------------

class Session {
  constructor(hub, ws) {
    this.hub = hub;
    this.ws = ws;
    this.sock = ws._socket;
    this.id = randomBytes(8).toString('hex');
    this.client = null; // set by hello; keys exactly-once
    this.subs = new Map(); // model name -> Sub
    this.lagging = 0; // subs whose pushes are being dropped
    this.corked = false;
    this.open = true;
  }

  sendBuf(buf) {
    this.hub.write(this, buf);
  }

  send(obj) {
    this.hub.write(this, this.hub.encode(obj));
  }

  reply(req, obj) {
    if (req.rid != null) obj.rid = req.rid;
    this.hub.write(this, this.hub.encode(obj));
  }

  error(req, code, message) {
    const e = { t: 'error', code, message };
    if (req) {
      if (isUint(req.rid)) e.rid = req.rid;
      if (typeof req.model === 'string' && MODEL_RE.test(req.model)) e.model = req.model;
    }
    if (code === 'bad_frame' || code === 'bad_request') this.hub.stats.badFrames++;
    this.send(e);
  }
}

// ---- the hub ------------------------------------------------------------------------------

class PeerHub {
  constructor(opts) {
    this.historyLimit = opts.history;
    this.maxFrame = opts.maxFrame;
    this.maxQueue = opts.maxQueue;
    this.corkMode = opts.cork;
    this.models = new Map();
    this.encoder = new Encoder(); // every message is built without undefined fields
    this.decoder = new Decoder({ maxStrLength: 64 << 10, maxBinLength: 64 << 10, maxArrayLength: 100000, maxMapLength: 100000 });
    this.corkedList = [];
    this.uncorkScheduled = false;
    this.uncorkAll = () => {
      this.uncorkScheduled = false;
      const l = this.corkedList;
      this.corkedList = [];
      for (let i = 0; i < l.length; i++) {
        l[i].corked = false;
        l[i].sock.uncork();
      }
      this.stats.writes += l.length;
    };
    this.connections = 0;
    this.stats = {
      connectionsTotal: 0, flushes: 0, commands: 0, duplicates: 0, framesIn: 0, bytesIn: 0,
      framesOut: 0, bytesOut: 0, writes: 0, pushes: 0, droppedPushes: 0, catchups: 0, badFrames: 0,
    };
  }

  log(msg) {
    process.stderr.write(`flushout-peer: ${msg}\n`);
  }

  // A copy of the encoder's buffer: ws keeps a reference until the socket has written it.
  encode(obj) {
    return this.encoder.encode(obj);
  }

  write(s, buf) {
    if (!s.open) return;
    if (this.corkMode !== 'none') {
      if (!s.corked) {
        // All frames a socket gets in this turn of the loop leave in one writev.
        s.corked = true;
        s.sock.cork();
        this.corkedList.push(s);
        if (!this.uncorkScheduled) {
          this.uncorkScheduled = true;
          if (this.corkMode === 'tick') setImmediate(this.uncorkAll);
          else queueMicrotask(this.uncorkAll);
        }
      }
    } else {
      this.stats.writes++;
    }
    s.ws.send(buf);
    this.stats.framesOut++;
    this.stats.bytesOut += buf.length;
  }

  model(name) {
    let m = this.models.get(name);
    if (!m) {
      m = new Model(name, this);
      this.models.set(name, m);
    }
    return m;
  }

  // Runs `fn(model)` on the model's runner; a broken model answers internal.
  onModel(s, msg, name, fn) {
    const m = this.model(name);
    m.runner.run(() => {
      if (m.broken) return s.error(msg, 'internal', 'the model is broken (see the peer log)');
      return fn(m);
    }, () => s.error(msg, 'internal', 'internal error (see the peer log)'));
  }

  onConnection(ws) {
    const s = new Session(this, ws);
    this.connections++;
    this.stats.connectionsTotal++;
    ws.on('message', (data, isBinary) => this.onMessage(s, data, isBinary));
    ws.on('error', () => {});
    ws.on('close', () => this.onClose(s));
    s.sock.on('drain', () => {
      if (s.lagging) this.catchUp(s);
    });
  }

  onClose(s) {
    s.open = false;
    this.connections--;
    // Unsubscribe on each model's runner, after whatever that session had queued there.
    for (const sub of s.subs.values()) {
      const m = sub.model;
      m.runner.run(() => m.unsubscribe(sub));
    }
  }

  catchUp(s) {
    for (const sub of s.subs.values()) {
      if (sub.lagging) {
        const m = sub.model;
        m.runner.run(() => m.catchUp(sub));
      }
    }
  }

  onMessage(s, data, isBinary) {
    this.stats.framesIn++;
    this.stats.bytesIn += data.length;
    if (!isBinary)
      return s.error(null, 'bad_frame', 'text frames are not accepted: send one MessagePack map per binary frame');
    if (data.length > this.maxFrame)
      return s.error(null, 'too_large', `frame exceeds maxFrame (${this.maxFrame} bytes)`);
    let msg;
    try {
      msg = this.decoder.decode(data);
    } catch (e) {
      return s.error(null, 'bad_frame', `malformed frame: ${e.message}`);
    }
    if (!isMap(msg)) return s.error(null, 'bad_frame', 'a frame must be one MessagePack map');
    try {
      this.dispatch(s, msg);
    } catch (e) {
      if (!(e instanceof BadRequest)) throw e;
      s.error(msg, 'bad_request', e.message);
    }
  }

  dispatch(s, msg) {
    if (msg.rid != null && !isUint(msg.rid)) throw new BadRequest('rid: expected uint');
    const t = msg.t;
    if (t === 'flush') {
      // The hot path first.
      if (!s.client) throw new BadRequest('t: send hello first');
      const name = checkModel(msg);
      checkUint(msg, 'seq', true);
      batchToLib(msg);
      return this.onModel(s, msg, name, (m) => m.flush(s, msg));
    }
    if (t === 'hello') {
      s.client = checkClient(msg);
      return s.reply(msg, { t: 'welcome', session: s.id, server: SERVER, maxFrame: this.maxFrame });
    }
    if (typeof t !== 'string') throw new BadRequest(t == null ? 't: missing' : 't: expected str');
    switch (t) {
      case 'sub': case 'unsub': case 'get': case 'history': case 'presence': break;
      case 'welcome': case 'snap': case 'diff': case 'ok': case 'ack': case 'push': case 'error':
        throw new BadRequest(`t: ${t} is not a request`);
      default: throw new BadRequest('t: unknown message type');
    }
    if (!s.client) throw new BadRequest('t: send hello first');
    const name = checkModel(msg);
    switch (t) {
      case 'sub':
        checkUint(msg, 'from', false);
        return this.onModel(s, msg, name, (m) => {
          if (s.open) m.sub(s, msg);
        });
      case 'unsub':
        return this.onModel(s, msg, name, (m) => m.unsub(s, msg));
      case 'get':
        checkUint(msg, 'at', false);
        return this.onModel(s, msg, name, (m) => m.get(s, msg));
      case 'history':
        checkUint(msg, 'from', true);
        checkUint(msg, 'to', false);
        return this.onModel(s, msg, name, (m) => m.history_(s, msg));
      case 'presence':
        if (!('state' in msg)) throw new BadRequest('state: missing');
        if (msg.state !== null && !isMap(msg.state)) throw new BadRequest('state: expected map or nil');
        return this.onModel(s, msg, name, (m) => {
          if (s.open) m.presence(s, msg);
        });
    }
  }

  // ---- HTTP on the same port -----------------------------------------------------------

  onHttp(req, res) {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
    const text = (code, body, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed\n');
    if (path === '/healthz') return text(200, 'ok\n');
    if (path === '/metrics') return text(200, this.metrics(), 'text/plain; version=0.0.4');
    const mm = /^\/v1\/models\/([^/]+)(\/history)?$/.exec(path);
    if (mm) {
      const name = decodeURIComponent(mm[1]);
      if (!MODEL_RE.test(name)) return text(400, 'model: must be 1-200 bytes of [A-Za-z0-9._:-]\n');
      const m = this.model(name);
      return m.runner.run(() => {
        if (!mm[2]) return text(200, JSON.stringify(m.master.getSnapshot()), 'application/json');
        const from = Number(params.get('from') ?? '0');
        const count = m.count();
        if (!isUint(from) || from > count) return text(400, 'from: expected uint <= the model\'s count\n');
        const cs = m.historyRange(from, count);
        if (!cs) return text(410, 'from: older than the history kept (--history)\n');
        text(200, JSON.stringify({ from, completions: cs }), 'application/json');
      });
    }
    text(404, 'not found\n');
  }

  metrics() {
    const st = this.stats;
    const lines = [];
    const c = (name, help, v, type = 'counter') => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${v}`);
    c('flushout_connections', 'Open WebSocket connections.', this.connections, 'gauge');
    c('flushout_connections_total', 'WebSocket connections accepted.', st.connectionsTotal);
    c('flushout_hot_models', 'Models held in memory.', this.models.size, 'gauge');
    c('flushout_flushes_total', 'Flushes acknowledged.', st.flushes);
    c('flushout_flush_duplicates_total', 'Retried flushes answered without applying.', st.duplicates);
    c('flushout_commands_total', 'Commands applied.', st.commands);
    c('flushout_frames_in_total', 'Frames received.', st.framesIn);
    c('flushout_bytes_in_total', 'Frame bytes received.', st.bytesIn);
    c('flushout_frames_out_total', 'Frames sent.', st.framesOut);
    c('flushout_bytes_out_total', 'Frame bytes sent (payload).', st.bytesOut);
    c('flushout_socket_writes_total', 'Socket writes (corked batches, or frames without --cork).', st.writes);
    c('flushout_pushes_total', 'Push frames sent to subscribers.', st.pushes);
    c('flushout_dropped_pushes_total', 'Pushes dropped for slow subscribers.', st.droppedPushes);
    c('flushout_catchups_total', 'Catch-up frames sent to drained subscribers.', st.catchups);
    c('flushout_bad_frames_total', 'Frames answered with bad_frame or bad_request.', st.badFrames);
    return lines.join('\n') + '\n';
  }
}

// ---- main ---------------------------------------------------------------------------------

const opts = parseArgs(process.argv.slice(2));
const hub = new PeerHub(opts);
const server = http.createServer((req, res) => hub.onHttp(req, res));
const wss = new WebSocketServer({
  server,
  path: '/v1/ws',
  perMessageDeflate: false,
  clientTracking: false,
  // Frames above --max-frame get `error too_large` and the connection stays open; ws
  // itself closes the connection only far beyond that.
  maxPayload: Math.max(opts.maxFrame * 4, 1 << 20),
  handleProtocols: (protocols) => (protocols.has('flushout.v1') ? 'flushout.v1' : false),
});
wss.on('connection', (ws) => hub.onConnection(ws));
server.on('error', (e) => die(`listen: ${e.message}`));
server.listen(opts.port, opts.host, () => {
  const a = server.address();
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  process.stderr.write(`flushout-peer: listening on ${host}:${a.port} (ws://${host}:${a.port}/v1/ws, memory, history ${opts.history}, cork ${opts.cork})\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
