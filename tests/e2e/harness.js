// Shared set-up for the browser tests: a static server for the repository root,
// Debian's Chromium driven by playwright-core (never a downloaded browser), the
// ukitool CLI as the referee, and the fixtures from tests/fixtures/generate.sh.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = join(ROOT, "tests/artifacts");
const FIXTURES = join(ROOT, "tests/fixtures/out");

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** Serve ROOT as plain static files on 127.0.0.1 (no CSP header: the page's own
 *  meta policy must be enough). Resolves to {url, close, paths}. */
export function serve() {
  const paths = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    paths.push(path);
    const file = normalize(join(ROOT, path === "/" ? "/index.html" : path));
    if (!file.startsWith(ROOT + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream" });
    res.end(readFileSync(file));
  });
  return new Promise((ok) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      ok({ url: `http://127.0.0.1:${port}/`, close: () => server.close(), paths });
    });
  });
}

export const CHROMIUM = process.env.UKITOOL_CHROMIUM || "/usr/bin/chromium";

/** Launch Debian's Chromium headless with a fresh profile. */
export async function launch() {
  const userDataDir = mkdtempSync(join(tmpdir(), "ukitool-e2e-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** The ukitool binary: $UKITOOL, else target/debug/ukitool (built when missing). */
export function ukitoolBin() {
  if (process.env.UKITOOL) return process.env.UKITOOL;
  const targetDir = process.env.CARGO_TARGET_DIR
    ? resolve(ROOT, process.env.CARGO_TARGET_DIR)
    : join(ROOT, "target");
  const bin = join(targetDir, "debug/ukitool");
  if (!existsSync(bin)) {
    execFileSync("cargo", ["build", "-p", "ukitool"], { cwd: ROOT, stdio: "inherit" });
  }
  return bin;
}

/** Run the CLI; returns stdout as a Buffer (throws on a non-zero exit). */
export function ukitool(...args) {
  return execFileSync(ukitoolBin(), args, { maxBuffer: 1 << 30 });
}

/** Like ukitool() but never throws: {status, stdout, stderr}. */
export function ukitoolStatus(...args) {
  try {
    return { status: 0, stdout: ukitool(...args), stderr: Buffer.alloc(0) };
  } catch (e) {
    return { status: e.status, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Path of a generated fixture, running the generator once when it is missing
 *  (`set` "big" asks for the 110 MiB UKIs). */
export function fixture(name, set) {
  const path = join(FIXTURES, name);
  if (!existsSync(path)) {
    const args = set ? [set] : [];
    execFileSync(join(ROOT, "tests/fixtures/generate.sh"), args, { cwd: ROOT, stdio: "inherit" });
  }
  if (!existsSync(path)) throw new Error(`fixture ${name} was not generated`);
  return path;
}

/** The built page assets must exist: `make web` (web/build.sh) makes them. */
export function requireWebBuild() {
  const pkg = join(ROOT, "web/pkg/ukitool_web_wasm.js");
  if (!existsSync(pkg)) {
    throw new Error("web/pkg is missing: run `make web` (web/build.sh) first");
  }
}

export function artifact(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

/** Open the page and wait until the wasm Worker reports ready. Records every
 *  request and the main thread's long tasks. */
export async function openPage(context, url, { width = 1280, height = 900 } = {}) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  const requests = [];
  // Context-wide, so the Worker's requests are seen too.
  const onRequest = (r) => requests.push(r.url());
  context.on("request", onRequest);
  page.on("close", () => context.off("request", onRequest));
  const consoleErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push(e.duration);
    }).observe({ entryTypes: ["longtask"] });
  });
  await page.goto(url);
  await page.waitForSelector("body[data-ready='1']", { timeout: 30000 });
  return { page, requests, consoleErrors };
}

/** Give the page a file through its file input (as the picker does). */
export async function pickFile(page, path) {
  await page.setInputFiles("#file", path);
}

/** Drop a file on the page through a real DataTransfer and drop event. */
export async function dropFile(page, name, bytes) {
  const b64 = Buffer.from(bytes).toString("base64");
  await page.evaluate(
    ({ name, b64 }) => {
      const bin = Uint8Array.fromBase64(b64);
      const dt = new DataTransfer();
      dt.items.add(new File([bin], name));
      const target = document.querySelector("main");
      for (const type of ["dragenter", "dragover", "drop"]) {
        target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    },
    { name, b64 },
  );
}

/** Wait for the final report (every hash in) or an error. */
export async function waitDone(page) {
  await page.waitForFunction(
    () => document.body.dataset.state === "done" || !document.getElementById("error").hidden,
    null,
    { timeout: 120000 },
  );
}

/** Click a button that triggers a download; returns the downloaded bytes. */
export async function downloadVia(page, locator) {
  const [dl] = await Promise.all([page.waitForEvent("download"), locator.click()]);
  const path = await dl.path();
  return { name: dl.suggestedFilename(), bytes: readFileSync(path) };
}

/** Register the file's before/after hooks: check the web build, start the static server
 *  and Chromium once, close both at the end (then run `cleanup`, if given). Returns
 *  {server, browser}, filled in by the before hook, so tests read `env.server.url`. */
export function useBrowser(cleanup) {
  const env = { server: undefined, browser: undefined };
  before(async () => {
    requireWebBuild();
    env.server = await serve();
    env.browser = await launch();
  });
  after(async () => {
    if (env.browser) await env.browser.close();
    if (env.server) env.server.close();
    if (cleanup) cleanup();
  });
  return env;
}
