// hub.js - starts a real flushout-hub as a child process for a test, and stops only it.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** The hub binary: $FLUSHOUT_HUB, else the asan build next to the sources. */
// How long a browser test waits for a push to show in the other browser. Pushes are
// immediate (no polling anywhere); this only bounds a test that would otherwise hang, and
// is generous because CI runs these next to ASan builds on two cores. Latency itself is
// measured by bench/ (ack p99), not asserted here.
export const PUSH_DEADLINE_MS = Number(process.env.FO_PUSH_DEADLINE_MS || 5000);

export function hubPath() {
  const p = process.env.FLUSHOUT_HUB || resolve(here, "../../../build/asan/hub/flushout-hub");
  if (!existsSync(p)) {
    throw new Error(`flushout-hub not found at ${p}: build it (cmake --preset asan && cmake --build build/asan) or set FLUSHOUT_HUB`);
  }
  return p;
}

export function tempDir(prefix = "fo-js-") {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const SANITIZER = /Sanitizer|runtime error/;

/**
 * Starts a hub. options: store ("memory" | "sqlite"), data (dir), port (0 = free),
 * staticDir, args (extra). Resolves once it logs `listening on HOST:PORT`.
 */
export function startHub(options = {}) {
  const args = ["--listen", `127.0.0.1:${options.port || 0}`, "--store", options.store || "memory"];
  if (options.data) args.push("--data", options.data);
  if (options.staticDir) args.push("--static", options.staticDir);
  if (options.args) args.push(...options.args);
  const proc = spawn(hubPath(), args, {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || "detect_leaks=1" },
  });
  let stderr = "";
  let exited = null;
  const exit = new Promise((res) => proc.on("exit", (code, signal) => res((exited = { code, signal }))));
  let started = false;
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`hub did not start in 20 s:\n${stderr}`));
    }, 20000);
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk) => {
      stderr += chunk;
      if (process.env.FLUSHOUT_HUB_LOG) process.stderr.write(chunk);
      const m = /listening on ([0-9.]+):(\d+)/.exec(stderr);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        const port = Number(m[2]);
        resolvePromise({
          proc,
          pid: proc.pid,
          port,
          url: `ws://127.0.0.1:${port}/v1/ws`,
          http: `http://127.0.0.1:${port}`,
          stderr: () => stderr,
          exited: () => exited,
          /** SIGTERM (graceful), waits; rejects on a non-zero exit or a sanitizer report. */
          async stop() {
            if (!exited) proc.kill("SIGTERM");
            const r = await exit;
            if (SANITIZER.test(stderr)) throw new Error(`hub sanitizer report:\n${stderr}`);
            if (r.code !== 0) throw new Error(`hub exited with ${r.code ?? r.signal}:\n${stderr.slice(-4000)}`);
            return r;
          },
          /** SIGKILL (a crash), waits. */
          async kill() {
            if (!exited) proc.kill("SIGKILL");
            return exit;
          },
        });
      }
    });
    proc.on("exit", (code, signal) => {
      if (!started) {
        started = true;
        clearTimeout(timer);
        reject(new Error(`hub exited (${code ?? signal}) before listening:\n${stderr}`));
      }
    });
  });
}

/** Polls `cond` every 10 ms until it is true or `ms` pass (then throws `what`). */
export async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The hub's snapshot of a model over HTTP (GET /v1/models/NAME). */
export async function httpSnapshot(hub, model) {
  const res = await fetch(`${hub.http}/v1/models/${encodeURIComponent(model)}`);
  if (!res.ok) throw new Error(`GET /v1/models/${model}: ${res.status} ${await res.text()}`);
  return res.json();
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
