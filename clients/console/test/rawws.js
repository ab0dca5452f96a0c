// rawws.js - a bare WebSocket client over node:net for the console's tests: it speaks
// flushout.v1 (MessagePack maps in binary frames) and can stop reading, so that the hub
// sees a subscriber whose backlog grows.
import net from "node:net";
import { randomBytes } from "node:crypto";
import { encode, decode } from "@msgpack/msgpack";

export function connect(port, { token, path = "/v1/ws", protocol = "flushout.v1" } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const key = randomBytes(16).toString("base64");
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const waiters = [];
    const inbox = [];
    const client = {
      sock,
      inbox,
      send(msg) {
        const payload = Buffer.from(encode(msg));
        const mask = randomBytes(4);
        const n = payload.length;
        const head = n < 126 ? Buffer.from([0x82, 0x80 | n]) : n < 65536 ? Buffer.from([0x82, 0x80 | 126, n >> 8, n & 255]) : Buffer.concat([Buffer.from([0x82, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
        for (let i = 0; i < n; i++) payload[i] ^= mask[i & 3];
        sock.write(Buffer.concat([head, mask, payload]));
      },
      /** Resolves with the next message for which pred holds (earlier ones are kept). */
      next(pred = () => true, ms = 10000) {
        const i = inbox.findIndex(pred);
        if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
        return new Promise((res, rej) => {
          const w = { pred, res, timer: setTimeout(() => rej(new Error("timed out waiting for a message")), ms) };
          waiters.push(w);
        });
      },
      /** Stops reading: the kernel's buffers fill, then the hub's queue for us grows. */
      stopReading() {
        sock.pause();
      },
      close() {
        sock.destroy();
      },
    };
    const deliver = (m) => {
      const i = waiters.findIndex((w) => w.pred(m));
      if (i >= 0) {
        const [w] = waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.res(m);
      } else {
        inbox.push(m);
        if (inbox.length > 1000) inbox.shift();
      }
    };
    sock.on("error", reject);
    sock.on("connect", () => {
      sock.write(
        `GET ${path}${token ? `?token=${token}` : ""} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ""}\r\n`
      );
    });
    sock.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!head.startsWith("HTTP/1.1 101")) {
          const err = new Error(`upgrade refused: ${head}`);
          err.status = Number(head.split(" ")[1]);
          sock.destroy();
          return reject(err);
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve(client);
      }
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 127;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const op = buf[0] & 15;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (op === 2) deliver(decode(payload));
        else if (op === 1) deliver(JSON.parse(payload.toString("utf8")));
      }
    });
  });
}

/** hello + sub; resolves with the model's count from the snap. */
export async function subscribe(c, model, client) {
  c.send({ t: "hello", client, rid: 1 });
  await c.next((m) => m.t === "welcome");
  c.send({ t: "sub", model, rid: 2 });
  const snap = await c.next((m) => m.rid === 2);
  if (snap.t !== "snap") throw new Error(`sub: ${JSON.stringify(snap)}`);
  return snap.snapshot.commandCount;
}

/**
 * One flush of one update at the root; resolves with the count after it. A refusal with
 * retryAfterMs (overloaded, rate_limited: nothing applied) is sent again, same seq, then.
 */
export async function flushUpdate(c, model, seq, from, props) {
  let ack;
  for (;;) {
    c.send({ t: "flush", model, seq, rid: 100 + seq, batch: { from, completions: [{ command: { action: "update", path: [], props } }] } });
    ack = await c.next((m) => m.rid === 100 + seq);
    if (ack.t !== "error" || !Number.isInteger(ack.retryAfterMs)) break;
    await new Promise((r) => setTimeout(r, ack.retryAfterMs));
  }
  if (ack.t !== "ack") throw new Error(`flush: ${JSON.stringify(ack)}`);
  const a = ack.result.applied;
  return a.from + a.completions.length;
}
