// The browser tool as one self-contained HTML file that works when opened from disk
// (file://), with no server: `node web/bundle.mjs OUT.html` after web/build.sh.
//
// Made from the same sources as the served page (index.html, web/app/, web/pkg/), which
// stays as it is. What changes, and why (docs/ship.md):
// - a file:// page cannot load its sibling files, so the styles, the page script (with
//   dom.js) and the Worker (with the wasm-bindgen glue and the base64 wasm) are inlined;
// - Chromium refuses a module Worker started from a blob: URL on a file:// page but runs
//   a classic one, so the Worker is bundled as a classic script (IIFE) and started from a
//   blob: URL;
// - the policy forbids every load but the inline script and style, by their hashes:
//   default-src 'none', connect-src 'none', worker-src blob:.
// The output depends only on those inputs: no dates, no absolute paths.

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const out = resolve(process.argv[2] || join(ROOT, "dist/ukitool.html"));

// Each replaced piece must be found exactly once: if index.html or app.js change shape,
// the bundle fails here instead of shipping a page that loads nothing.
function replaceOnce(text, from, to, where) {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) {
    throw new Error(`bundle.mjs: expected exactly one ${JSON.stringify(from)} in ${where}`);
  }
  return text.slice(0, at) + to + text.slice(at + from.length);
}

async function bundle(entry, format, plugins = []) {
  const result = await esbuild.build({
    entryPoints: [join(ROOT, entry)],
    bundle: true,
    format,
    target: "es2022",
    write: false,
    charset: "utf8",
    legalComments: "none",
    // The glue's default wasm URL (import.meta.url) is never used: the Worker hands it
    // the compiled module. A classic script has no import.meta.
    define: { "import.meta.url": "undefined" },
    logLevel: "warning",
    plugins,
  });
  return result.outputFiles[0].text;
}

const WORKER_START = 'new Worker(new URL("./worker.js", import.meta.url), { type: "module" })';

// app.js with the Worker started from a blob: URL of the classic worker bundle.
function workerFromBlob(workerSource) {
  return {
    name: "worker-from-blob",
    setup(build) {
      build.onLoad({ filter: /[/\\]web[/\\]app[/\\]app\.js$/ }, (args) => {
        const src = readFileSync(args.path, "utf8");
        // The added names are distinct from app.js's (esbuild fails on a clash).
        const started = replaceOnce(src, WORKER_START, "new Worker(bundledWorkerUrl())", "web/app/app.js");
        const contents = `${started}
// Added by web/bundle.mjs: one blob: URL for every (re)start of the classic Worker.
let bundledWorker = null;
function bundledWorkerUrl() {
  bundledWorker ??= URL.createObjectURL(new Blob([${JSON.stringify(workerSource)}], { type: "text/javascript" }));
  return bundledWorker;
}
`;
        return { contents, loader: "js" };
      });
    },
  };
}

function cspHash(text) {
  return `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
}

// Inline content ends at the first "</script" or "</style"; "<!--" changes how a script
// is parsed. None may occur inside.
function assertInlineSafe(text, what) {
  if (/<\/(script|style)|<!--/i.test(text)) {
    throw new Error(`bundle.mjs: ${what} contains a sequence that would end it early`);
  }
}

const worker = await bundle("web/app/worker.js", "iife");
const app = await bundle("web/app/app.js", "esm", [workerFromBlob(worker)]);
const css = readFileSync(join(ROOT, "web/app/app.css"), "utf8");
assertInlineSafe(app, "the page script");
assertInlineSafe(css, "the style sheet");

const policy = [
  "default-src 'none'",
  `script-src ${cspHash(app)} 'wasm-unsafe-eval'`,
  "worker-src blob:",
  `style-src ${cspHash(css)}`,
  "img-src blob: data:",
  "connect-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

let html = readFileSync(join(ROOT, "index.html"), "utf8");
html = html.replace(
  /<meta http-equiv="Content-Security-Policy" content="[^"]*">/,
  () => `<meta http-equiv="Content-Security-Policy" content="${policy}">`,
);
if (!html.includes(policy)) throw new Error("bundle.mjs: no Content-Security-Policy meta in index.html");
html = replaceOnce(html, '<link rel="stylesheet" href="web/app/app.css">', `<style>${css}</style>`, "index.html");
html = replaceOnce(
  html,
  '<script type="module" src="web/app/app.js"></script>',
  `<script type="module">${app}</script>`,
  "index.html",
);
html = replaceOnce(
  html,
  "<!doctype html>\n",
  "<!doctype html>\n<!-- ukitool, one file: made by web/bundle.mjs from index.html, web/app and web/pkg. -->\n",
  "index.html",
);

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, html);
console.log(`bundle.mjs: ${out}: ${html.length} bytes (worker ${worker.length}, page script ${app.length})`);
