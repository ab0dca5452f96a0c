// wss:// against a real hub started with --tls-cert/--tls-key (a certificate made here with
// the openssl command): with the CA (the `ca` option) two clients see each other's
// commands; without it the connection fails and the error says the certificate is not
// trusted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CommandAction } from "flushout";
import { HubClient } from "../src/index.js";
import { startHub, tempDir, waitFor } from "./hub.js";

function makeCert(dir) {
  const cert = join(dir, "cert.pem"), key = join(dir, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout", key, "-out", cert], { stdio: "ignore" });
  return { cert, key };
}

test("wss: with the CA the clients converge; without it a clear error", async () => {
  const tmp = tempDir("fo-js-tls-");
  const { cert, key } = makeCert(tmp.dir);
  const hub = await startHub({ args: ["--tls-cert", cert, "--tls-key", key] });
  const url = `wss://127.0.0.1:${hub.port}/v1/ws`;
  try {
    const a = new HubClient({ url, ca: readFileSync(cert) });
    const b = new HubClient({ url, ca: readFileSync(cert, "utf8") });
    const ma = a.open("tls:demo"), mb = b.open("tls:demo");
    await Promise.all([ma.ready, mb.ready]);
    const r = ma.apply({ action: CommandAction.Create, path: ["todos"], props: { text: "over tls" }, parentDefault: {} });
    await waitFor(() => mb.getDocument().todos && mb.getDocument().todos[r.createdId], 5000, "b gets a's create over wss");
    a.close();
    b.close();

    const c = new HubClient({ url, backoffInitial: 50, backoffMax: 100, watchNetwork: false });
    const e = await new Promise((resolve) => c.on("error", resolve));
    c.close();
    assert.equal(e.code, "connect");
    assert.match(e.message, /certificate is not trusted/);
    assert.match(e.message, /pass `ca`/);
  } finally {
    await hub.stop();
    tmp.remove();
  }
});
