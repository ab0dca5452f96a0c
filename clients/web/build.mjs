// build.mjs - builds the demo into dist/: the app bundled with esbuild (the JavaScript
// client from ../js/src, the reference `flushout` and @msgpack/msgpack from this
// package's node_modules) plus index.html and style.css. `npm run build`; dist/ is not
// committed. Usage: node build.mjs [--watch]
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const f of ["index.html", "style.css", "favicon.svg"]) copyFileSync(join(here, "src", f), join(out, f));

const options = {
  entryPoints: [join(here, "src", "app.js")],
  outfile: join(out, "app.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  // ../js/src imports its dependencies by name: resolve them from here.
  nodePaths: [join(here, "node_modules")],
  // The client's Node fallback (`ws`) is never loaded in a browser.
  external: ["ws"],
  logLevel: "warning",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log("watching src/ and ../js/src/ (html and css are copied at start only)");
} else {
  const r = await esbuild.build({ ...options, metafile: true });
  const bytes = Object.values(r.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  console.log(`built ${out} (${(bytes / 1024).toFixed(1)} KiB)`);
}
