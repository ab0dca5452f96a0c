// build.mjs - builds the demo into dist/: the React app bundled with esbuild (the hook
// from ../react/src, the JavaScript client from ../js/src, React, the reference `flushout`
// and @msgpack/msgpack from this package's node_modules) plus index.html, style.css and
// an empty dev-tokens.json (scripts/dev-run.sh fills it when the hub takes tokens).
// `npm run build`; dist/ is not committed. Usage: node build.mjs [--watch]
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const f of ["index.html", "style.css", "favicon.svg"]) copyFileSync(join(here, "src", f), join(out, f));
writeFileSync(join(out, "dev-tokens.json"), "[]\n");
const modules = join(here, "node_modules");

const options = {
  entryPoints: [join(here, "src", "app.jsx")],
  outfile: join(out, "app.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  // The client and the hook from their sources; one React (this package's) for all.
  alias: {
    "flushout-hub-client": join(here, "..", "js", "src", "index.js"),
    "flushout-hub-react": join(here, "..", "react", "src", "index.js"),
    react: join(modules, "react"),
    "react-dom": join(modules, "react-dom"),
  },
  // ../js/src and ../react/src import their dependencies by name: resolve them from here.
  nodePaths: [modules],
  // The client's Node fallback (`ws`) is never loaded in a browser.
  external: ["ws"],
  logLevel: "warning",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log("watching src/, ../react/src/ and ../js/src/ (html and css are copied at start only)");
} else {
  const r = await esbuild.build({ ...options, metafile: true });
  const bytes = Object.entries(r.metafile.outputs).reduce((n, [f, o]) => n + (f.endsWith(".map") ? 0 : o.bytes), 0);
  console.log(`built ${out} (${(bytes / 1024).toFixed(1)} KiB without source maps)`);
}
