// build.mjs - builds the console into dist/: src/console.js bundled with esbuild (uPlot
// from node_modules), index.html, style.css, favicon.svg and uPlot's stylesheet. The hub
// serves dist/ at /console/ (--console-dir). `npm run build`; dist/ is not committed.
// Usage: node build.mjs [--watch]
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const f of ["index.html", "style.css", "favicon.svg"]) copyFileSync(join(here, "src", f), join(out, f));
copyFileSync(join(here, "node_modules", "uplot", "dist", "uPlot.min.css"), join(out, "uplot.css"));

const options = {
  entryPoints: [join(here, "src", "console.js")],
  outfile: join(out, "console.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log("watching src/ (html and css are copied at start only)");
} else {
  const r = await esbuild.build({ ...options, metafile: true });
  const bytes = Object.values(r.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  console.log(`built ${out} (${(bytes / 1024).toFixed(1)} KiB)`);
}
