// snippets.mjs README OUTDIR - writes each ```ts / ```tsx block of README as its own
// module OUTDIR/readme-N.ts(x), for tsc. Fails when there is none (a README whose
// snippets were renamed must not pass by checking nothing).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [readme, out] = process.argv.slice(2);
const text = readFileSync(readme, "utf8");
const re = /^```(ts|tsx)\n([\s\S]*?)^```$/gm;
let n = 0;
for (let m; (m = re.exec(text)); ) {
  n++;
  // `export {}` makes a block without imports a module too (top-level await, own scope).
  writeFileSync(join(out, `readme-${n}.${m[1]}`), `${m[2]}\nexport {};\n`);
}
if (n === 0) {
  console.error(`snippets.mjs: no \`\`\`ts block in ${readme}`);
  process.exit(1);
}
