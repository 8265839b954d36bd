// The Worker: owns the wasm instance and does every read and hash, so the page's
// main thread only renders. Protocol (all messages carry the page's `job` number):
//   page -> worker  {type: "open", job, file}
//   worker -> page  {type: "ready", version, speeds}          once, after start-up
//                   {type: "headers", job, json, names}       first answer (no hashes)
//                   {type: "progress", job, done, total, what}
//                   {type: "report", job, json}               final report, = CLI --json
//                   {type: "disk", job, json}                 disk report, = CLI --json
//                   {type: "error", job, message, kind, offset}
//                   {type: "crash", job, message}             wasm trapped: restart me
// A newer "open" supersedes the running job: it notices between reads and stops.

import init, * as wasm from "../pkg/ukitool_web.js";
import { wasmBase64 } from "../pkg/ukitool_web_wasm.js";

const PREFIX = 64 * 1024; // headers and section table of any real PE fit in 64 KiB
const MAX_PREFIX = 64 * 1024 * 1024; // long names past this are not worth a header read
const CHUNK = 8 * 1024 * 1024; // streaming read size
const WEBCRYPTO_MAX = 512 * 1024 * 1024; // WebCrypto digests one buffer: cap its size

let current = 0; // the job the page wants; older jobs stop at their next await
let speeds = null; // measured sha256 throughput, MB/s, {webcrypto, wasm}
let job = 0; // the job being run, for crash reports

function decodeBase64(s) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(s);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

class Superseded extends Error {}

function check(j) {
  if (j !== current) throw new Superseded();
}

async function read(file, offset, length) {
  return new Uint8Array(await file.slice(offset, offset + length).arrayBuffer());
}

function hex(buf) {
  const b = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

// Measure both sha256 engines on the same buffer; the faster one hashes sections.
// wasm sha2 has no SHA-NI in the browser, WebCrypto usually does.
async function measureSpeeds() {
  const buf = new Uint8Array(16 * 1024 * 1024);
  for (let i = 0; i < buf.length; i += 4096) buf[i] = i & 0xff;
  const mbps = (ms) => Math.round(buf.length / 1e6 / (Math.max(ms, 0.1) / 1000));
  const wasmHash = (data) => {
    const h = new wasm.Hasher("sha256");
    h.update(data);
    h.finish();
    h.free();
  };
  // Warm up first: the first calls run in V8's baseline tier.
  const warm = buf.subarray(0, 1024 * 1024);
  for (let i = 0; i < 3; i++) {
    wasmHash(warm);
    await crypto.subtle.digest("SHA-256", warm);
  }
  let t = performance.now();
  await crypto.subtle.digest("SHA-256", buf);
  const webcrypto = mbps(performance.now() - t);
  t = performance.now();
  wasmHash(buf);
  const wasmSpeed = mbps(performance.now() - t);
  return { webcrypto, wasm: wasmSpeed };
}

// sha256 of file[offset, offset+length), by the faster engine.
async function sha256Of(file, offset, length, j, onBytes) {
  const useWebCrypto =
    speeds && speeds.webcrypto >= speeds.wasm && length <= WEBCRYPTO_MAX && crypto.subtle;
  if (useWebCrypto) {
    const data = await file.slice(offset, offset + length).arrayBuffer();
    check(j);
    const digest = await crypto.subtle.digest("SHA-256", data);
    onBytes(length);
    return hex(digest);
  }
  const h = new wasm.Hasher("sha256");
  try {
    for (let at = 0; at < length; at += CHUNK) {
      const n = Math.min(CHUNK, length - at);
      const chunk = await read(file, offset + at, n);
      check(j);
      h.update(chunk);
      onBytes(n);
    }
    return h.finish();
  } finally {
    h.free();
  }
}

// Headers first from a prefix; a PE whose header structures lie further out (long
// section names in a COFF string table at the end) gets a longer prefix.
async function openInspection(file, j) {
  let len = Math.min(file.size, PREFIX);
  for (;;) {
    const prefix = await read(file, 0, len);
    check(j);
    try {
      return new wasm.Inspection(prefix, file.size);
    } catch (e) {
      const end = typeof e.end === "number" ? e.end : 0;
      if (e.kind === "truncated" && end > len && end <= file.size && end <= MAX_PREFIX) {
        len = Math.min(file.size, Math.max(end, len * 2));
        continue;
      }
      throw e;
    }
  }
}

async function open(file, j) {
  const head = await read(file, 0, Math.min(file.size, 4096));
  check(j);
  if (wasm.looksLikeDisk(head)) {
    // A raw disk: the core walks GPT and FAT over the whole image in memory.
    postMessage({ type: "disk", job: j, json: await inspectWhole(file, j, wasm.inspectDisk) });
    return;
  }
  const insp = await openInspection(file, j);
  try {
    // The small ranges the report decodes: metadata sections, a .linux prefix.
    const need = insp.neededRanges();
    for (let i = 0; i < need.length; i += 2) {
      const bytes = await read(file, need[i], need[i + 1]);
      check(j);
      insp.addChunk(need[i], bytes);
    }
    const first = insp.report();
    // File names for downloads, by the core's rule (as `ukitool extract --all`).
    const names = JSON.parse(first).sections.map((s) => wasm.extractFileName(s.name));
    postMessage({ type: "headers", job: j, json: first, names });

    if (JSON.parse(first).pe.certificate_table) {
      // Signed: the report's signature check needs the Authenticode digest of the
      // whole image and the certificate table, which the core takes from memory.
      postMessage({ type: "report", job: j, json: await inspectWhole(file, j) });
      return;
    }
    // Unsigned: the only full pass is each section's payload hash, streamed.
    const ranges = insp.payloadRanges();
    let total = 0;
    for (let i = 1; i < ranges.length; i += 2) total += Math.max(ranges[i], 0);
    const onBytes = progress(j, total, "hashing sections");
    for (let i = 0; i < ranges.length; i += 2) {
      if (ranges[i + 1] < 0) continue; // payload outside the file: no hash, as in the CLI
      const digest = await sha256Of(file, ranges[i], ranges[i + 1], j, onBytes);
      check(j);
      insp.setSha256(i / 2, digest);
    }
    postMessage({ type: "report", job: j, json: insp.report() });
  } finally {
    insp.free();
  }
}

// A progress reporter posting at most ten times a second.
function progress(j, total, what) {
  let done = 0;
  let lastPost = 0;
  return (n) => {
    done += n;
    const now = performance.now();
    if (now - lastPost > 100 || done === total) {
      lastPost = now;
      postMessage({ type: "progress", job: j, done, total, what });
    }
  };
}

// The whole file into wasm memory, chunk by chunk, then the core's full inspect.
async function inspectWhole(file, j, inspect = wasm.inspect) {
  const buf = new wasm.FileBuf(file.size);
  try {
    const onBytes = progress(j, file.size, "reading the whole file");
    for (let at = 0; at < file.size; at += CHUNK) {
      const n = Math.min(CHUNK, file.size - at);
      const chunk = await read(file, at, n);
      check(j);
      buf.write(at, chunk);
      onBytes(n);
    }
    postMessage({ type: "progress", job: j, done: 0, total: 0, what: "inspecting" });
    return inspect(buf);
  } finally {
    buf.free();
  }
}

function errorMessage(e) {
  return {
    message: e && e.message ? e.message : String(e),
    kind: e && e.kind ? e.kind : null,
    offset: e && typeof e.offset === "number" ? e.offset : null,
  };
}

onmessage = async (ev) => {
  const msg = ev.data;
  if (msg.type !== "open") return;
  current = msg.job;
  job = msg.job;
  try {
    await ready;
    await open(msg.file, msg.job);
  } catch (e) {
    if (e instanceof Superseded) return;
    if (e instanceof WebAssembly.RuntimeError) {
      // A trap (a Rust panic aborts): this instance is no longer trustworthy.
      postMessage({
        type: "crash",
        job: msg.job,
        message: globalThis.__ukitoolPanic || e.message,
      });
      return;
    }
    if (msg.job === current) postMessage({ type: "error", job: msg.job, ...errorMessage(e) });
  }
};

const ready = (async () => {
  const module = await WebAssembly.compile(decodeBase64(wasmBase64));
  await init({ module_or_path: module });
  speeds = await measureSpeeds();
  postMessage({ type: "ready", version: wasm.version(), speeds });
})().catch((e) => {
  postMessage({ type: "crash", job, message: "could not start the wasm module: " + e.message });
});
