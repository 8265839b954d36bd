// The Worker: owns the wasm instance and does every read and hash, so the page's
// main thread only renders. The messages it takes and sends are described in
// protocol.js: jobs (the file shown), tasks (tool runs) and its own life (ready,
// crash). A newer JOB.OPEN supersedes the running job: it notices at its next read
// (check) and stops.

import init, * as wasm from "../pkg/ukitool_web.js";
import { diskKind, openDisk, diskFileBlob, compressBlob } from "./bigdisk.js";
import { wasmBase64 } from "../pkg/ukitool_web_wasm.js";
import { JOB, JOB_REPLY, LIFE, SUPERSEDED, TASK, TASK_REPLY } from "./protocol.js";
import { SECURE_BOOT_TASKS } from "./secureboot-worker.js";
import { TOOL_TASKS } from "./tools-worker.js";

const PREFIX = 64 * 1024; // headers and section table of any real PE fit in 64 KiB
const MAX_PREFIX = 64 * 1024 * 1024; // long names past this are not worth a header read
const CHUNK = 8 * 1024 * 1024; // streaming read size
const WEBCRYPTO_MAX = 512 * 1024 * 1024; // WebCrypto digests one buffer: cap its size
const SMALL = 1024 * 1024; // payloads up to this size are hashed from a shared read
const ZERO_CHUNK = 1024 * 1024; // the shared zero part of disk image downloads

let current = 0; // the job the page wants; older jobs stop at their next await
let speeds = null; // measured sha256 throughput, MB/s, {webcrypto, wasm}
let job = 0; // the job being run, for crash reports
// What the current job keeps for later requests (anchors, disk images).
let lastTiming = null; // read and hash times of the last digestOf, for the benchmark
let lastRead = null; // {data, ranges}: what digestOf's WebCrypto path read, back to back
let state = { job: 0, file: null, verifier: null, whole: null, name: "", anchors: [] };
const ALGS = { sha1: "SHA-1", sha256: "SHA-256", sha384: "SHA-384", sha512: "SHA-512" };

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

// The one loop that reads a file piece by piece: each CHUNK of the ranges ([[start,
// end), ...], in order) goes to onChunk(offset, bytes). A superseded job stops here.
async function stream(file, ranges, j, onChunk) {
  for (const [a, b] of ranges) {
    for (let at = a; at < b; at += CHUNK) {
      const chunk = await read(file, at, Math.min(CHUNK, b - at));
      check(j);
      onChunk(at, chunk);
    }
  }
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

// Headers first from a prefix; a PE whose header structures lie further out (long
// section names in a COFF string table at the end) gets a longer prefix.
async function openInspection(file, j) {
  let len = Math.min(file.size, PREFIX);
  for (;;) {
    const prefix = await read(file, 0, len);
    check(j);
    try {
      return { insp: new wasm.Inspection(prefix, file.size), prefix };
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

// A new job: the previous one's wasm objects are freed. `anchors` ([{name, file}]) are
// the trust anchors the page keeps across files; they are added once the verifier exists.
function resetState(j, file, anchors) {
  if (state.verifier) state.verifier.free();
  if (state.whole) state.whole.free();
  if (state.disk) state.disk.free();
  state = {
    job: j,
    file,
    verifier: null,
    whole: null,
    disk: null,
    name: file.name || "file",
    anchors: [...anchors],
    pcr: null,
    read: null,
  };
}

async function open(file, j, anchors) {
  resetState(j, file, anchors);
  const head = await read(file, 0, Math.min(file.size, 4096));
  check(j);
  const kind = diskKind(head);
  if (kind) {
    // A disk image, raw or compressed, of any size: read a piece at a time
    // (bigdisk.js). A compressed file that holds no disk falls through to the PE path.
    postMessage({
      type: JOB_REPLY.PROGRESS,
      job: j,
      done: 0,
      total: 0,
      what: kind === "disk" ? "inspecting" : `inspecting (${kind}-compressed)`,
    });
    let disk = null;
    try {
      disk = openDisk(file);
    } catch (e) {
      if (kind === "disk") throw e;
    }
    if (disk) {
      state.disk = disk;
      postMessage({ type: JOB_REPLY.DISK, job: j, json: disk.inspect() });
      return;
    }
  }
  const { insp, prefix } = await openInspection(file, j);
  try {
    // The small ranges the report decodes: metadata sections, a .linux prefix (then
    // the whole kernel when the prefix shows an arm64/riscv64 Image or EFI zboot: its
    // version is a banner deep inside), the
    // COFF string table (its size first, then its bytes, then the sections its long
    // names reveal: a few rounds at most).
    const chunks = [];
    for (let round = 0; round < 4; round++) {
      const need = insp.neededRanges();
      if (!need.length) break;
      for (let i = 0; i < need.length; i += 2) {
        const bytes = await read(file, need[i], need[i + 1]);
        check(j);
        insp.addChunk(need[i], bytes);
        chunks.push([need[i], bytes]);
      }
    }
    const first = insp.report();
    const parsed = JSON.parse(first);
    // File names for downloads, by the core's rule (as `ukitool extract --all`).
    const names = parsed.sections.map((s) => wasm.extractFileName(s.name));
    postMessage({ type: JOB_REPLY.HEADERS, job: j, json: first, names });

    // Signatures: the Authenticode digest streamed over the file, the headers and
    // the certificate table in wasm, the core's verdict (also for unsigned files:
    // their SHA-256 image hash is what a db entry would have to hold).
    const verifier = await verifySetup(file, prefix, chunks, j, earlyRead(file, insp, j));
    state.verifier = verifier;
    if (parsed.pe.certificate_table) insp.setSignatures(verifier);
    await addAnchors(verifier, j);
    postVerify(j, verifier.ms);

    const ranges = insp.payloadRanges();
    const measured = parsed.kind === "uki" ? measuredSections(parsed) : new Set();
    const t0 = performance.now();
    const digests = await hashSections(file, insp, ranges, measured, j);
    const hashMs = performance.now() - t0;
    postMessage({ type: JOB_REPLY.REPORT, job: j, json: insp.report() });
    if (parsed.kind === "uki") {
      state.pcr = { names: parsed.sections.map((s) => s.name), ranges, digests, hashMs, pcrsig: !!parsed.pcrsig };
      await predictPcr(j, null);
    }
  } finally {
    insp.free();
  }
}

// Every section systemd-stub may measure, in any profile (core measure::select_parts).
function measuredSections(parsed) {
  const names = parsed.sections.map((s) => s.name);
  const out = new Set();
  try {
    for (let p = 0; p < Math.max(1, parsed.profiles.length); p++) {
      for (const i of wasm.measurePlan(names, p)) out.add(i);
    }
  } catch {
    // The core says why at prediction time (the whole-file path gives its error).
  }
  return out;
}

const PCR_BANKS = ["SHA-1", "SHA-256", "SHA-384", "SHA-512"]; // systemd's bank order

// Each section's payload sha256 into the report; for the sections PCR 11 measures, also
// their digests in every bank (returned, by section index), computed from the same read
// with WebCrypto's four digests in parallel. Small payloads come out of one shared read
// window: a hostile table of 65535 tiny sections costs no 65535 reads.
async function hashSections(file, insp, ranges, measured, j) {
  let total = 0;
  for (let i = 1; i < ranges.length; i += 2) total += Math.max(ranges[i], 0);
  const onBytes = progress(j, total, "hashing sections");
  const webcrypto = !!(speeds && speeds.webcrypto >= speeds.wasm && crypto.subtle);
  const banks = new Map();
  let win = null;
  for (let i = 0; i < ranges.length; i += 2) {
    const [off, len] = [ranges[i], ranges[i + 1]];
    if (len < 0) continue; // payload outside the file: no hash, as in the CLI
    const all = webcrypto && measured.has(i / 2) && len <= WEBCRYPTO_MAX;
    const held = webcrypto ? inMemory(off, len) : null;
    let digest;
    if (held && all) {
      banks.set(i / 2, await digestAll(held, onBytes));
      digest = banks.get(i / 2)[1];
    } else if (held) {
      digest = hex(await crypto.subtle.digest("SHA-256", held));
      onBytes(len);
    } else if (len <= SMALL) {
      if (!win || off < win.start || off + len > win.start + win.bytes.length) {
        win = { start: off, bytes: await read(file, off, Math.max(len, CHUNK)) };
        check(j);
      }
      const view = win.bytes.subarray(off - win.start, off - win.start + len);
      if (all) banks.set(i / 2, await digestAll(view));
      digest = all ? banks.get(i / 2)[1] : await sha256Bytes(view);
      onBytes(len);
    } else if (all) {
      const data = await readProgress(file, off, len, j, onBytes);
      banks.set(i / 2, await digestAll(data));
      digest = banks.get(i / 2)[1];
    } else {
      digest = (await digestOf(file, [[off, off + len]], ["sha256"], j, onBytes)).sha256;
    }
    check(j);
    insp.setSha256(i / 2, digest);
  }
  state.read = null; // the section pass was its last use
  return banks;
}

// [off, off + len) of the file as a view of the bytes the Authenticode pass read, when
// they hold it whole (every section payload of a well-formed PE); else null.
function inMemory(off, len) {
  const held = state.read;
  if (!held) return null;
  let pos = 0;
  for (const [a, b] of held.ranges) {
    if (off >= a && off + len <= b) return held.data.subarray(pos + off - a, pos + off - a + len);
    pos += b - a;
  }
  return null;
}

// The four PCR bank digests of one buffer, hex, in systemd's bank order. WebCrypto
// runs them in parallel; each one done moves the bar a quarter of the buffer's length.
async function digestAll(data, onBytes = () => {}) {
  let left = data.length;
  let pending = PCR_BANKS.length;
  const ds = await Promise.all(
    PCR_BANKS.map(async (a) => {
      const d = await crypto.subtle.digest(a, data);
      const n = --pending === 0 ? left : Math.floor(data.length / PCR_BANKS.length);
      left -= n;
      onBytes(n);
      return d;
    }),
  );
  return ds.map(hex);
}

// `len` bytes at `off` as one buffer, read chunk by chunk so that the progress bar
// moves while a large payload is read (the hash of it is then one call).
function readProgress(file, off, len, j, onBytes) {
  return readRanges(file, [[off, off + len]], len, j, onBytes);
}

// The ranges, back to back, in one Blob read: the fastest read of a large part of a File
// here (110 MiB UKI: 133-187 ms, against 260-470 ms for 8 MiB reads four in flight
// copied into one buffer). The bar moves once, when the read is done.
async function readOnce(file, ranges, j, onBytes) {
  const blob =
    ranges.length === 1 ? file.slice(ranges[0][0], ranges[0][1]) : new Blob(ranges.map(([a, b]) => file.slice(a, b)));
  const data = new Uint8Array(await blob.arrayBuffer());
  check(j);
  onBytes(data.length);
  return data;
}

const READS_IN_FLIGHT = 4; // Blob reads overlap each other: 4 at once read about 2x faster

// The ranges, back to back, in one buffer of `length` bytes. Order does not matter
// here (each piece has its place), so several reads are in flight at once.
async function readRanges(file, ranges, length, j, onBytes) {
  const out = new Uint8Array(length);
  const pieces = [];
  let pos = 0;
  for (const [a, b] of ranges) {
    for (let at = a; at < b; at += CHUNK) {
      const n = Math.min(CHUNK, b - at);
      pieces.push([at, n, pos]);
      pos += n;
    }
  }
  let next = 0;
  const worker = async () => {
    while (next < pieces.length) {
      const [at, n, to] = pieces[next++];
      const chunk = await read(file, at, n);
      check(j);
      out.set(chunk, to);
      onBytes(n);
    }
  };
  await Promise.all(Array.from({ length: READS_IN_FLIGHT }, worker));
  return out;
}

// sha256 of bytes already in memory, by the faster engine.
async function sha256Bytes(view) {
  if (speeds && speeds.webcrypto >= speeds.wasm && crypto.subtle) {
    return hex(await crypto.subtle.digest("SHA-256", view));
  }
  const h = new wasm.Hasher("sha256");
  try {
    h.update(view);
    return h.finish();
  } finally {
    h.free();
  }
}

// Hash file ranges (concatenated) with each algorithm, by the faster engine.
// WebCrypto digests one buffer at once, so it gets the ranges as one Blob read.
async function digestOf(file, ranges, algs, j, onBytes, pre = null) {
  let length = 0;
  for (const [a, b] of ranges) length += b - a;
  const useWebCrypto = speeds && speeds.webcrypto >= speeds.wasm && length <= WEBCRYPTO_MAX && crypto.subtle;
  const out = {};
  if (useWebCrypto) {
    // WebCrypto digests one buffer: the ranges are read into it piece by piece (so the
    // bar moves), then every algorithm hashes it at once.
    const t0 = performance.now();
    const data = pre ? await pre : await readOnce(file, ranges, j, onBytes);
    if (pre) {
      check(j);
      onBytes(data.length);
    }
    const t1 = performance.now();
    const ds = await Promise.all(algs.map((alg) => crypto.subtle.digest(ALGS[alg], data)));
    algs.forEach((alg, i) => (out[alg] = hex(ds[i])));
    lastTiming = { engine: "webcrypto", read_ms: t1 - t0, hash_ms: performance.now() - t1, bytes: length };
    lastRead = { data, ranges };
    return out;
  }
  const hs = algs.map((a) => new wasm.Hasher(a));
  try {
    await stream(file, ranges, j, (_at, chunk) => {
      for (const h of hs) h.update(chunk);
      onBytes(chunk.length);
    });
    algs.forEach((a, i) => (out[a] = hs[i].finish()));
    lastTiming = { engine: "wasm", bytes: length };
    return out;
  } finally {
    for (const h of hs) h.free();
  }
}

// A Verifier with the headers, the certificate table and the image digests in.
// The Authenticode ranges (the same as the Verifier's: one core function) read at
// once, so the read overlaps the Verifier's set-up (a file-length wasm buffer, the
// certificate table). Null when WebCrypto is not the engine or the ranges are unknown.
function earlyRead(file, insp, j) {
  const t0 = performance.now();
  try {
    if (!(speeds && speeds.webcrypto >= speeds.wasm && crypto.subtle)) return null;
    const flat = insp.authenticodeRanges();
    const ranges = [];
    let total = 0;
    for (let i = 0; i < flat.length; i += 2) {
      ranges.push([flat[i], flat[i + 1]]);
      total += flat[i + 1] - flat[i];
    }
    if (total > WEBCRYPTO_MAX) return null;
    const data = readOnce(file, ranges, j, () => {});
    data.catch(() => {}); // awaited by digestOf; a superseded read is dropped there
    return { t0, key: JSON.stringify(ranges), data };
  } catch {
    return null; // the Verifier finds the same problem and the core's verdict names it
  }
}

async function verifySetup(file, prefix, chunks, j, early) {
  const t0 = early ? early.t0 : performance.now(); // the read is part of the verify's time
  const v = new wasm.Verifier(file.size);
  try {
    v.write(0, prefix);
    for (const [off, bytes] of chunks) v.write(off, bytes);
    const table = v.certificateTable();
    if (table.length) {
      // Clamped to the file: a table that runs past the end is the core's to
      // report (malformed), exactly as the CLI does.
      const start = Math.min(table[0], file.size);
      const end = Math.min(table[0] + table[1], file.size);
      if (end > start) v.write(start, await read(file, start, end - start));
      check(j);
    }
    let flat = null;
    try {
      flat = v.hashRanges();
    } catch {
      // The core's verdict says why (malformed, with the offset); nothing to hash.
    }
    if (flat) {
      const ranges = [];
      let total = 0;
      for (let i = 0; i < flat.length; i += 2) {
        ranges.push([flat[i], flat[i + 1]]);
        total += flat[i + 1] - flat[i];
      }
      const algs = v.digestAlgorithms();
      const pre = early && early.key === JSON.stringify(ranges) ? early.data : null;
      const digests = await digestOf(
        file,
        ranges,
        algs,
        j,
        progress(j, total, "checking signatures (Authenticode hash)"),
        pre,
      );
      for (const alg of algs) v.setDigest(alg, digests[alg]);
      // The bytes just hashed hold every section payload: the section pass reads them
      // from memory instead of from the file again.
      state.read = lastRead;
      lastRead = null;
      v.timing = lastTiming;
    }
    v.ms = performance.now() - t0;
    return v;
  } catch (e) {
    v.free();
    throw e;
  }
}

function postVerify(j, ms) {
  const v = state.verifier;
  postMessage({
    type: JOB_REPLY.VERIFY,
    job: j,
    json: v.verify(state.name),
    anchors: v.anchors(),
    ms,
    timing: ms === null ? null : v.timing,
  });
}

// The whole file in wasm memory, kept for PCR prediction and disk images.
async function ensureWhole(j) {
  if (state.whole) return state.whole;
  const file = state.file;
  const buf = new wasm.FileBuf(file.size);
  try {
    const onBytes = progress(j, file.size, "reading the whole file");
    await stream(file, [[0, file.size]], j, (at, chunk) => {
      buf.write(at, chunk);
      onBytes(chunk.length);
    });
  } catch (e) {
    buf.free();
    throw e;
  }
  state.whole = buf;
  return buf;
}

// PCR 11 for every bank and phase (= `ukitool measure --json [--profile N]`) from the
// digests hashSections kept; the whole file is read into wasm only for the .pcrsig
// check, or when a digest is missing (then the core hashes, and names any error).
async function predictPcr(j, profile) {
  const p = state.pcr;
  try {
    const t0 = performance.now();
    let json = null;
    const plan = safePlan(p.names, profile);
    if (plan && plan.every((i) => p.digests.has(i))) {
      const lens = plan.map((i) => p.ranges[2 * i + 1]);
      json = wasm.measureDigests(
        plan.map((i) => p.names[i]),
        lens,
        plan.flatMap((i) => p.digests.get(i)),
      );
    }
    const streamed = json !== null;
    let pcrsig = null;
    if (json === null || p.pcrsig) {
      const buf = await ensureWhole(j);
      check(j);
      if (json === null) json = wasm.measure(buf, profile === null ? undefined : profile);
      if (p.pcrsig) pcrsig = wasm.pcrCheck(buf);
    }
    const ms = p.hashMs + performance.now() - t0;
    postMessage({ type: JOB_REPLY.PCR, job: j, json, check: pcrsig, profile, ms, streamed });
  } catch (e) {
    if (e instanceof Superseded || e instanceof WebAssembly.RuntimeError) throw e;
    postMessage({ type: JOB_REPLY.PCR, job: j, error: errorMessage(e).message, profile });
  }
}

function safePlan(names, profile) {
  try {
    return Array.from(wasm.measurePlan(names, profile === null ? undefined : profile));
  } catch {
    return null;
  }
}

// A progress reporter posting at most ten times a second.
function progress(j, total, what) {
  let done = 0;
  let lastPost = performance.now();
  postMessage({ type: JOB_REPLY.PROGRESS, job: j, done, total, what }); // the bar shows at once
  return (n) => {
    done += n;
    const now = performance.now();
    if (now - lastPost > 100 || done === total) {
      lastPost = now;
      postMessage({ type: JOB_REPLY.PROGRESS, job: j, done, total, what });
    }
  };
}

function errorMessage(e) {
  return {
    message: e && e.message ? e.message : String(e),
    kind: e && e.kind ? e.kind : null,
    offset: e && typeof e.offset === "number" ? e.offset : null,
  };
}

function crashed(e, j) {
  if (!(e instanceof WebAssembly.RuntimeError)) return false;
  // A trap (a Rust panic aborts): this instance is no longer trustworthy.
  postMessage({ type: LIFE.CRASH, job: j, message: globalThis.__ukitoolPanic || e.message });
  return true;
}

async function bytesOf(blob) {
  return blob ? new Uint8Array(await blob.arrayBuffer()) : undefined;
}

// A disk image for the current file, as `ukitool image --uki FILE` builds it. The
// download is a Blob of parts: slices of the dropped files for the data the image
// borrows from them, small owned buffers for GPT and FAT metadata, and one shared
// zero Blob for the gaps, so a 2 GiB image costs no 2 GiB of memory.
async function diskImage(msg) {
  const j = msg.job;
  if (state.job !== j || !state.file) throw new Error("open a UKI first");
  const uki = await ensureWhole(j);
  const loader = msg.loader ? await bytesOf(msg.loader) : undefined;
  const extra = msg.inputs || [];
  const named = [];
  for (const x of extra) named.push([x.role, x.name, await bytesOf(x.file), x.path || ""]);
  const built = wasm.buildDiskImage(uki, loader, JSON.stringify(msg.options), named, msg.format || undefined);
  const inputs = [state.file, msg.loader, ...extra.map((x) => x.file)];
  const zero = new Blob([new ArrayBuffer(ZERO_CHUNK)]);
  const parts = [];
  const zeros = (n) => {
    for (; n >= ZERO_CHUNK; n -= ZERO_CHUNK) parts.push(zero);
    if (n > 0) parts.push(zero.slice(0, n));
  };
  const x = built.extents;
  let pos = 0;
  for (let i = 0; i < x.length; i += 4) {
    const [off, len, input, at] = [x[i], x[i + 1], x[i + 2], x[i + 3]];
    zeros(off - pos);
    parts.push(input < 0 ? built.owned[at] : inputs[input].slice(at, at + len));
    pos = off + len;
  }
  zeros(built.size - pos);
  const blob = new Blob(parts, { type: "application/octet-stream" });
  if (msg.compress) return { blob: await compressBlob(blob, msg.compress), summary: built.summary };
  return { blob, summary: built.summary };
}

// One file from a partition of the disk shown: a slice of the dropped file when it
// is stored contiguously, else the bytes the core gathered.
async function diskFile(msg) {
  const j = msg.job;
  if (state.job !== j || !state.file) throw new Error("open a disk image first");
  if (state.disk)
    return {
      blob: diskFileBlob(state.disk, state.file, msg.partition, msg.path),
      name: msg.path.split("/").pop() || "file",
    };
  const disk = await ensureWhole(j);
  const r = wasm.diskFile(disk, msg.partition, msg.path);
  const blob =
    r.bytes === undefined
      ? state.file.slice(r.offset, r.offset + r.length, "application/octet-stream")
      : new Blob([r.bytes], { type: "application/octet-stream" });
  return { blob, name: msg.path.split("/").pop() || "file" };
}

async function task(msg, fn) {
  try {
    await ready;
    const r = await fn(msg);
    postMessage({ type: TASK_REPLY.DONE, task: msg.task, ...r });
  } catch (e) {
    if (e instanceof Superseded) {
      postMessage({ type: TASK_REPLY.ERROR, task: msg.task, message: SUPERSEDED });
      return;
    }
    if (!crashed(e, msg.job)) postMessage({ type: TASK_REPLY.ERROR, task: msg.task, ...errorMessage(e) });
  }
}

// Trust anchors given with the job (and those that came while it was being verified)
// go into the verifier; one that cannot be used is reported and skipped.
async function addAnchors(v, j) {
  while (state.anchors.length) {
    const a = state.anchors.shift();
    try {
      v.addAnchor(a.name, await bytesOf(a.file));
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) throw e;
      postMessage({ type: JOB_REPLY.ANCHOR_ERROR, job: j, ...errorMessage(e) });
    }
    check(j);
  }
}

async function anchor(msg) {
  const j = msg.job;
  try {
    await ready;
    if (state.job !== j) return; // for a file no longer shown: the page sends it again
    const v = state.verifier;
    if (msg.type === JOB.CLEAR_ANCHORS) {
      state.anchors = [];
      if (v) v.clearAnchors();
    } else if (v) {
      v.addAnchor(msg.name, await bytesOf(msg.file));
    } else {
      state.anchors.push({ name: msg.name, file: msg.file }); // added once verified
      return;
    }
    if (v) postVerify(j, null);
  } catch (e) {
    if (!crashed(e, j)) postMessage({ type: JOB_REPLY.ANCHOR_ERROR, job: j, ...errorMessage(e) });
  }
}

// PCR 11 for another profile of the UKI shown (the page's profile selector).
async function profilePcr(msg) {
  try {
    await ready;
    if (state.job !== msg.job || !state.pcr) return;
    await predictPcr(msg.job, msg.profile);
  } catch (e) {
    if (!(e instanceof Superseded)) crashed(e, msg.job);
  }
}

// The tools of secureboot-worker.js and tools-worker.js take the wasm module.
const withWasm = (fn) => (msg) => fn(wasm, msg);
const TASKS = {
  [TASK.DISK_IMAGE]: diskImage,
  [TASK.DISK_FILE]: diskFile,
  ...Object.fromEntries(Object.entries({ ...SECURE_BOOT_TASKS, ...TOOL_TASKS }).map(([k, f]) => [k, withWasm(f)])),
};

onmessage = async (ev) => {
  const msg = ev.data;
  if (TASKS[msg.type]) return task(msg, TASKS[msg.type]);
  if (msg.type === JOB.ANCHOR || msg.type === JOB.CLEAR_ANCHORS) return anchor(msg);
  if (msg.type === JOB.PROFILE) return profilePcr(msg);
  if (msg.type !== JOB.OPEN) return;
  current = msg.job;
  job = msg.job;
  try {
    await ready;
    await open(msg.file, msg.job, msg.anchors || []);
    postMessage({ type: JOB_REPLY.FINISHED, job: msg.job });
  } catch (e) {
    if (e instanceof Superseded) return;
    if (crashed(e, msg.job)) return;
    if (msg.job === current) {
      postMessage({ type: JOB_REPLY.ERROR, job: msg.job, ...errorMessage(e) });
      postMessage({ type: JOB_REPLY.FINISHED, job: msg.job });
    }
  }
};

const ready = (async () => {
  const module = await WebAssembly.compile(decodeBase64(wasmBase64));
  await init({ module_or_path: module });
  speeds = await measureSpeeds();
  postMessage({ type: LIFE.READY, version: wasm.version(), speeds });
})().catch((e) => {
  postMessage({ type: LIFE.CRASH, job, message: "could not start the wasm module: " + e.message });
});
