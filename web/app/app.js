// The page's main thread: takes a file (drop, picker, paste), hands it to the Worker,
// keeps what comes back in the one state object (state.js) and has the panels
// (panels/*.js) render from it. No parsing or hashing happens here, so the page stays
// responsive whatever the file's size. Every string from the file reaches the DOM
// through textContent, never as HTML. The messages are described in protocol.js.

import { JOB, JOB_REPLY, LIFE, TASK_REPLY, family } from "./protocol.js";
import { state, reset, baseName } from "./state.js";
import { download, revokeAll } from "./files.js";
import { size } from "./dom.js";
import { $ } from "./panels/common.js";
import * as status from "./panels/status.js";
import * as summary from "./panels/summary.js";
import * as sections from "./panels/sections.js";
import * as uki from "./panels/uki.js";
import * as lints from "./panels/lints.js";
import * as signatures from "./panels/signatures.js";
import * as pcr from "./panels/pcr.js";
import * as pe from "./panels/pe.js";
import * as image from "./panels/image.js";
import * as disk from "./panels/disk.js";
import * as build from "./panels/build.js";

// Every panel, in page order. Each has setup(ctx) (wires its events, once) and
// render(state).
const PANELS = { status, summary, sections, uki, lints, signatures, pcr, pe, image, disk, build };

// Panels shown for a PE and for a disk image (the others are hidden).
const PE_PANELS = ["p-summary", "p-sections", "p-uki", "p-lints", "p-signatures", "p-pcr", "p-pe", "p-image"];
const DISK_PANELS = ["p-summary", "p-disk"];

let worker = null;
let crashes = 0;
let tasks = 0; // tool runs started, by number
const pending = new Map(); // task number -> {resolve, reject}

// ---- rendering ------------------------------------------------------------

/** Render the named panels (default: all) from state, and the page-wide flags tests
 *  and styles read: body[data-state] (busy/done/idle), body[data-work]. */
function render(...names) {
  const list = names.length ? names : Object.keys(PANELS);
  for (const n of list) PANELS[n].render(state);
  const shown = state.view === "disk" ? DISK_PANELS : state.view === "pe" ? PE_PANELS : [];
  $("report").hidden = !state.view || !!state.error;
  for (const id of [...new Set([...PE_PANELS, ...DISK_PANELS])]) {
    const on = shown.includes(id);
    $(id).hidden = !on;
    const link = document.querySelector(`.toc a[href="#${id}"]`);
    if (link) link.hidden = !on;
  }
  $("export").disabled = !state.final;
  document.body.dataset.state = state.status.busy ? "busy" : state.final ? "done" : "idle";
  document.body.dataset.work = state.busy ? "busy" : "idle";
}

function setStatus(text, busy) {
  state.status = { text, busy };
  if (!busy) state.progress = null;
}

// ---- the Worker -------------------------------------------------------------

function startWorker() {
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = (ev) => {
    const m = ev.data;
    const f = family(m);
    if (f === "life") onLife(m);
    else if (f === "task") onTaskReply(m);
    else if (f === "job" && m.job === state.job) onJobReply(m); // else: a superseded file
  };
  worker.onerror = (e) => {
    e.preventDefault();
    restartWorker("the worker failed: " + (e.message || "unknown error"));
  };
}

// A wasm trap leaves the instance unusable: report it, start a fresh one. A worker
// that cannot even start is not restarted in a loop.
function restartWorker(message) {
  worker.terminate();
  for (const [, p] of pending) p.reject(new Error("internal error: " + message));
  pending.clear();
  state.error = { message: "internal error (please report): " + message };
  setStatus("", false);
  state.busy = false; // the job ends here: its answer is the error above
  crashes += 1;
  render("status");
  if (document.body.dataset.ready === "1" && crashes < 20) startWorker();
  else $("engine").textContent = "The wasm engine could not start: " + message;
}

function onLife(m) {
  if (m.type === LIFE.READY) {
    const s = m.speeds;
    state.version = m.version;
    state.speeds = s;
    $("engine").textContent =
      `ukitool ${m.version} · wasm engine ready · sha256 throughput here: ` +
      `WebCrypto ${s.webcrypto} MB/s, wasm ${s.wasm} MB/s`;
    document.body.dataset.ready = "1";
  } else if (m.type === LIFE.CRASH) {
    restartWorker(m.message);
  }
}

function onTaskReply(m) {
  const p = pending.get(m.task);
  pending.delete(m.task);
  if (!p) return;
  if (m.type === TASK_REPLY.DONE) p.resolve(m);
  else p.reject(Object.assign(new Error(m.message), { kind: m.kind, offset: m.offset }));
}

/** Ask the Worker for a tool run; resolves to its TASK_REPLY.DONE message. */
function runTask(msg) {
  const task = ++tasks;
  return new Promise((resolve, reject) => {
    pending.set(task, { resolve, reject });
    worker.postMessage({ ...msg, task });
  });
}

function onJobReply(m) {
  switch (m.type) {
    case JOB_REPLY.HEADERS:
      state.view = "pe";
      state.fileNames = m.names;
      state.report = JSON.parse(m.json);
      state.reportJson = m.json;
      setStatus("Working…", true);
      render();
      break;
    case JOB_REPLY.PROGRESS:
      state.progress = { done: m.done, total: m.total, what: m.what };
      render("status");
      break;
    case JOB_REPLY.REPORT:
      state.report = JSON.parse(m.json);
      state.reportJson = m.json;
      state.final = true;
      if (state.report.kind === "uki") setStatus("Predicting PCR 11…", true);
      else setStatus("Done", false);
      render();
      break;
    case JOB_REPLY.VERIFY:
      state.verifyJson = m.json;
      state.verify = JSON.parse(m.json);
      state.anchors = m.anchors;
      if (m.ms !== null) {
        state.verifyMs = m.ms;
        state.verifyTiming = m.timing;
      }
      render("summary", "signatures");
      break;
    case JOB_REPLY.ANCHOR_ERROR:
      state.anchorNote = { text: m.message, error: true };
      render("signatures");
      break;
    case JOB_REPLY.PCR:
      state.pcr = m.error ? { error: m.error } : JSON.parse(m.json);
      state.pcrJson = m.error ? null : m.json;
      state.pcrCheck = m.check ? JSON.parse(m.check) : null;
      render("pcr");
      break;
    case JOB_REPLY.DISK:
      state.view = "disk";
      state.report = JSON.parse(m.json);
      state.reportJson = m.json;
      state.final = true;
      setStatus("Done", false);
      render();
      break;
    case JOB_REPLY.ERROR:
      state.error = { message: m.message, kind: m.kind, offset: m.offset };
      setStatus("Could not read this file", false);
      render();
      break;
    case JOB_REPLY.FINISHED:
      state.busy = false;
      if (state.report && !state.error) setStatus("Done", false);
      render("status");
      break;
  }
}

// ---- files and anchors --------------------------------------------------------

/** Show a file: everything about the previous one is forgotten (state.reset), but the
 *  trust anchors, which go with the new job. */
function openFile(f) {
  if (!f) return;
  reset(f);
  revokeAll();
  $("welcome").hidden = true;
  setStatus(`Reading ${size(f.size)}…`, true);
  render();
  const anchors = state.anchorFiles.map((a) => ({ name: a.name, file: a }));
  worker.postMessage({ type: JOB.OPEN, job: state.job, file: f, anchors });
}

function addAnchors(files) {
  for (const f of files) {
    state.anchorFiles.push(f);
    worker.postMessage({ type: JOB.ANCHOR, job: state.job, name: f.name, file: f });
  }
}

function clearAnchors() {
  state.anchorFiles = [];
  state.anchorNote = null;
  worker.postMessage({ type: JOB.CLEAR_ANCHORS, job: state.job });
}

// ---- input ----------------------------------------------------------------

function exportJson() {
  if (!state.reportJson || !state.final) return;
  download(new Blob([state.reportJson + "\n"], { type: "application/json" }), `${baseName()}.inspect.json`);
}

function setupInput() {
  $("pick").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", (e) => {
    openFile(e.target.files[0]);
    e.target.value = "";
  });
  $("export").addEventListener("click", exportJson);
  let depth = 0;
  const zone = $("dropzone");
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types).includes("Files");
  window.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    zone.hidden = false;
  });
  window.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.hidden = true;
  });
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    zone.hidden = true;
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) openFile(f);
  });
  window.addEventListener("paste", (e) => {
    const f = e.clipboardData && e.clipboardData.files[0];
    if (f) {
      e.preventDefault();
      openFile(f);
    }
  });
}

const ctx = { openFile, runTask, addAnchors, clearAnchors };
startWorker();
setupInput();
for (const p of Object.values(PANELS)) p.setup(ctx);

// Tests and power users can open a File programmatically, and read what the page
// shows as data.
window.ukitool = {
  openFile,
  state: () => ({
    job: state.job,
    report: state.reportJson,
    verify: state.verifyJson,
    verifyMs: state.verifyMs,
    verifyTiming: state.verifyTiming,
    pcr: state.pcrJson,
    speeds: state.speeds,
    error: $("error").hidden ? null : $("error").textContent,
  }),
};
