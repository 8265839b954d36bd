// The page's main thread: takes a file (drop, picker, paste), hands it to the
// Worker, renders what comes back. No parsing or hashing happens here, so the page
// stays responsive whatever the file's size. Every string from the file reaches the
// DOM through textContent, never as HTML.

import { el, clear, hexNum, size, copyButton, factList, table, emptyState } from "./dom.js";

const $ = (id) => document.getElementById(id);
const MAX_ROWS = 256; // table rows rendered per list
const MAX_FILE_ROWS = 2000; // files listed per volume

// Plain-language notes for lint ids; the core's one-line message is always shown.
const LINT_HELP = {
  "virtual-size-exceeds-raw":
    "The stub reads VirtualSize bytes; the bytes past the raw data are zeros, not payload.",
  "no-sbat": "shim refuses images without SBAT data once SBAT revocations are in force.",
  "nx-compat-mismatch":
    "Firmware enforcing NX may map the kernel's memory non-executable and the boot fails.",
  "image-over-2gib": "Many firmwares fail to load PE images larger than 2 GiB.",
  "trailing-data":
    "Data after the last section is hashed by Authenticode; signing tools warn about it.",
  "coff-symbol-table":
    "A COFF symbol table is debugging data: hashed by Authenticode, loaded by nothing.",
};

let worker = null;
let job = 0;
let file = null; // the File being shown
let report = null; // the parsed report
let reportJson = null; // its exact JSON text (for the export)
let final = false; // the report has every hash
let fileNames = []; // download name per section index, from the core
let verify = null; // `ukitool verify --json` for the file, as parsed
let verifyJson = null;
let verifyMs = null;
let verifyTiming = null; // {engine, read_ms, hash_ms, bytes} of the Authenticode pass // how long the streamed Authenticode check took, ms
let anchors = []; // one line per trust anchor file added
let pcr = null; // `ukitool measure --json`, parsed; {error} when it failed
let pcrJson = null;
let pcrCheck = null; // {pcrsig, pcrsig_error}
let speeds = null; // sha256 MB/s measured by the Worker: {webcrypto, wasm}
let tasks = 0; // disk image and UKI builds in flight, by number
const pending = new Map();
const objectUrls = [];

function startWorker() {
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = onWorkerMessage;
  worker.onerror = (e) => {
    e.preventDefault();
    restartWorker("the worker failed: " + (e.message || "unknown error"));
  };
}

// A wasm trap leaves the instance unusable: report it, start a fresh one. A worker
// that cannot even start is not restarted in a loop.
let crashes = 0;
function restartWorker(message) {
  worker.terminate();
  showError({ message: "internal error (please report): " + message });
  setStatus("", false);
  crashes += 1;
  // The job ends here: its answer is the error above.
  document.body.dataset.work = "idle";
  if (document.body.dataset.ready === "1" && crashes < 20) startWorker();
  else $("engine").textContent = "The wasm engine could not start: " + message;
}

function onWorkerMessage(ev) {
  const m = ev.data;
  if (m.type === "ready") {
    const s = m.speeds;
    speeds = s;
    $("engine").textContent =
      `ukitool ${m.version} · wasm engine ready · sha256 throughput here: ` +
      `WebCrypto ${s.webcrypto} MB/s, wasm ${s.wasm} MB/s`;
    document.body.dataset.ready = "1";
    return;
  }
  if (m.type === "crash") {
    for (const [, p] of pending) p.reject(new Error("internal error: " + m.message));
    pending.clear();
    restartWorker(m.message);
    return;
  }
  if (m.type === "task-done" || m.type === "task-error") {
    const p = pending.get(m.task);
    pending.delete(m.task);
    if (p && m.type === "task-done") p.resolve(m);
    else if (p) p.reject(Object.assign(new Error(m.message), { kind: m.kind, offset: m.offset }));
    return;
  }
  if (m.job !== job) return; // a superseded file
  switch (m.type) {
    case "headers":
      fileNames = m.names;
      showReport(m.json, false);
      setStatus("Working…", true);
      break;
    case "progress":
      setProgress(m.done, m.total, m.what);
      break;
    case "report":
      showReport(m.json, true);
      setStatus(report.kind === "uki" ? "Predicting PCR 11…" : "Done", report.kind === "uki");
      break;
    case "verify":
      verifyJson = m.json;
      verify = JSON.parse(m.json);
      anchors = m.anchors;
      if (m.ms !== null) {
        verifyMs = m.ms;
        verifyTiming = m.timing;
      }
      if (report) {
        renderSignatures(report);
        renderSummary(report);
      }
      break;
    case "anchor-error":
      anchorMessage(m.message, true);
      break;
    case "pcr":
      pcr = m.error ? { error: m.error } : JSON.parse(m.json);
      pcrJson = m.error ? null : m.json;
      pcrCheck = m.check ? JSON.parse(m.check) : null;
      if (report) renderPcr(report);
      break;
    case "finished":
      document.body.dataset.work = "idle";
      if (report && report.kind === "uki" && $("error").hidden) setStatus("Done", false);
      break;
    case "disk":
      showDisk(m.json);
      setStatus("Done", false);
      break;
    case "error":
      showError(m);
      setStatus("Could not read this file", false);
      break;
  }
}

function openFile(f) {
  if (!f) return;
  job += 1;
  file = f;
  report = null;
  reportJson = null;
  final = false;
  verify = verifyJson = verifyMs = pcr = pcrJson = pcrCheck = null;
  anchors = [];
  document.body.dataset.work = "busy";
  $("image-status").textContent = "";
  clear($("image-summary"));
  for (const u of objectUrls.splice(0)) URL.revokeObjectURL(u);
  $("welcome").hidden = true;
  $("error").hidden = true;
  $("report").hidden = true;
  $("status").hidden = false;
  $("status-name").textContent = f.name || "pasted file";
  setStatus(`Reading ${size(f.size)}…`, true);
  setProgress(0, 0);
  worker.postMessage({ type: "open", job, file: f });
}

function setStatus(text, busy) {
  $("status-text").textContent = text;
  $("status").classList.toggle("busy", busy);
  document.body.dataset.state = busy ? "busy" : final ? "done" : "idle";
  if (!busy) $("progress").hidden = true;
}

function setProgress(done, total, what) {
  const p = $("progress");
  if (!total) {
    p.hidden = true;
    if (what) $("status-text").textContent = what[0].toUpperCase() + what.slice(1) + "…";
    return;
  }
  p.hidden = false;
  p.max = total;
  p.value = done;
  const pct = Math.floor((100 * done) / total);
  $("status-text").textContent = `${what || "Working"}: ${pct}% of ${size(total)}`;
}

function showError(m) {
  const box = $("error");
  clear(box);
  box.append(el("strong", {}, "This file could not be read. "), el("span", { class: "msg" }, m.message));
  const extra = [];
  if (m.kind) extra.push(`kind: ${m.kind}`);
  if (typeof m.offset === "number") extra.push(`at offset ${hexNum(m.offset)}`);
  if (extra.length) box.append(el("div", { class: "muted" }, extra.join(" · ")));
  box.append(el("div", { class: "muted" }, "Drop another file to try again."));
  box.hidden = false;
  $("report").hidden = true;
}

// Panels that only make sense for a PE; a disk image shows the summary and disk.
const PE_PANELS = ["p-sections", "p-uki", "p-lints", "p-signatures", "p-pcr", "p-pe", "p-image"];

function showPanels(pe) {
  for (const id of PE_PANELS) {
    $(id).hidden = !pe;
    const link = document.querySelector(`.toc a[href="#${id}"]`);
    if (link) link.hidden = !pe;
  }
}

function showDisk(json) {
  const d = JSON.parse(json);
  report = d;
  reportJson = json;
  final = true;
  $("report").hidden = false;
  $("export").disabled = false;
  showPanels(false);
  const esp = [...d.filesystems, ...(d.xfs_volumes || [])].reduce((n, f) => n + f.efi_binaries.length, 0);
  const pt = d.partition_table;
  factList($("summary"), [
    ["Kind", el("span", { id: "kind", class: "badge", "data-kind": "disk" }, d.compression ? `Raw disk image, ${d.compression}-compressed` : "Raw disk image")],
    ["Partition table", pt ? `${pt.scheme.toUpperCase()}, ${pt.partitions.length} partition${pt.partitions.length === 1 ? "" : "s"}, ${pt.sector_size}-byte sectors` : "none (bare volume)"],
    ["FAT volumes", String(d.filesystems.length)],
    ["XFS volumes", String((d.xfs_volumes || []).length)],
    ["EFI binaries", String(esp)],
    ["Problems", String(d.problems.length + (pt ? pt.problems.length : 0))],
    ["File", `${file ? file.name : ""} · ${size(d.size)} (${d.size.toLocaleString("en")} bytes)`],
  ]);
  renderDiskPanel(d);
  document.body.dataset.state = "done";
}

function showReport(json, isFinal) {
  report = JSON.parse(json);
  reportJson = json;
  final = isFinal;
  $("report").hidden = false;
  showPanels(true);
  $("export").disabled = !isFinal;
  renderSummary(report);
  renderSections(report);
  renderUki(report);
  renderLints(report);
  renderSignatures(report);
  renderPcr(report);
  renderPe(report);
  renderDisk(report);
  document.body.dataset.state = isFinal ? "done" : "busy";
}

// ---- panels ---------------------------------------------------------------

const KIND_LABEL = {
  uki: "Unified Kernel Image",
  addon: "UKI addon",
  "efi-stub-kernel": "Linux kernel (EFI stub)",
  "efibootguard-unified": "EFI Boot Guard unified image",
  pe: "EFI / PE binary",
};

function renderSummary(r) {
  const os = r.os_release || {};
  const kernelVersion = (r.kernel && r.kernel.version) || r.uname || null;
  const errors = r.lints.filter((l) => l.severity === "error").length;
  const warnings = r.lints.filter((l) => l.severity === "warning").length;
  const rows = [
    ["Kind", el("span", { id: "kind", class: "badge kind-" + r.kind, "data-kind": r.kind }, KIND_LABEL[r.kind] || r.kind)],
    ["Operating system", os.PRETTY_NAME ? el("span", { id: "pretty-name" }, os.PRETTY_NAME) : null],
    ["OS version", os.VERSION || os.VERSION_ID || null],
    ["Kernel", kernelVersion ? el("span", { id: "kernel-version" }, kernelVersion) : null],
    ["Stub", r.stub],
    ["Signatures", signatureVerdict(r)],
    ["Lints", el("span", { id: "lint-count" }, `${r.lints.length} (${errors} errors, ${warnings} warnings)`)],
    ["File", `${file ? file.name : ""} · ${size(r.file_size)} (${r.file_size.toLocaleString("en")} bytes)`],
    ["Format", `${r.pe.format} ${r.pe.machine_name || hexNum(r.pe.machine)}, ${r.pe.subsystem_name || r.pe.subsystem}`],
  ];
  factList($("summary"), rows);
}

function signatureVerdict(r) {
  if (verify) {
    const n = verify.signatures.filter((s) => s.nested_in === null).length;
    const nested = verify.signatures.length - n;
    const what = n ? `${n} signature${n > 1 ? "s" : ""}${nested ? ` + ${nested} nested` : ""}: ` : "";
    return el("span", {}, what, verdictBadge(verify.verdict, "summary-verdict"));
  }
  if (r.pe.certificate_table) {
    const n = r.signatures.length;
    return n ? `${n} signature${n > 1 ? "s" : ""} (see Signatures)` : "certificate table present";
  }
  return "unsigned";
}

function renderSections(r) {
  const t = $("sections");
  const head = ["#", "Name", "Virtual address", "Virtual size", "File offset", "Raw size", "Flags", "sha256", ""];
  // A hostile header may claim 65535 sections: render a bounded number, so the
  // main thread never stalls; the JSON export has them all.
  const rows = r.sections.slice(0, MAX_ROWS).map((s) => {
    const tr = el("tr", { "data-section": s.name, "data-index": String(s.index) });
    const sha = s.sha256
      ? el("span", { class: "hash-cell" }, el("code", { class: "hash", title: s.sha256 }, s.sha256.slice(0, 16) + "…"), copyButton(s.sha256, `Copy sha256 of ${s.name}`))
      : el("span", { class: "muted" }, final ? "n/a" : "hashing…");
    const profile = s.profile === null || s.profile === undefined ? null : el("span", { class: "badge small" }, `@${s.profile}`);
    const actions = el("span", { class: "actions" });
    if (s.payload_size > 0 && s.file_offset + s.payload_size <= r.file_size) {
      actions.append(
        el("button", { type: "button", class: "small", "data-action": "download", onclick: () => downloadSection(s) }, "Download"),
        el("button", { type: "button", class: "small", "aria-expanded": "false", onclick: (e) => toggleHex(e.currentTarget, tr, s) }, "Hex"),
      );
    }
    tr.append(
      el("td", { class: "num" }, String(s.index)),
      el("td", {}, el("code", { class: "section-name" }, s.name), profile ? " " : "", profile || ""),
      el("td", { class: "num" }, hexNum(s.virtual_address)),
      el("td", { class: "num", title: `${s.virtual_size} bytes` }, size(s.virtual_size)),
      el("td", { class: "num" }, hexNum(s.file_offset)),
      el("td", { class: "num", title: `${s.raw_size} bytes` }, size(s.raw_size)),
      el("td", { class: "flags" }, s.characteristics_names.join(" ")),
      el("td", {}, sha),
      el("td", {}, actions),
    );
    return tr;
  });
  if (r.sections.length > MAX_ROWS) {
    rows.push(el("tr", {}, el("td", { colspan: "9", class: "muted" }, `… and ${r.sections.length - MAX_ROWS} more sections, not shown (they are in the JSON export).`)));
  }
  table(t, head, rows);
}

function blobUrl(blob) {
  const u = URL.createObjectURL(blob);
  objectUrls.push(u);
  return u;
}

function download(blob, name) {
  const a = el("a", { href: blobUrl(blob), download: name, hidden: "" });
  document.body.append(a);
  a.click();
  a.remove();
}

// The exact payload: VirtualSize bytes clamped to the raw data, straight from the
// File, so a 100 MiB kernel is never copied through wasm.
function downloadSection(s) {
  const name = fileNames[s.index] || `section${s.index}`;
  const suffix = s.profile === null || s.profile === undefined ? "" : `@${s.profile}`;
  download(file.slice(s.file_offset, s.file_offset + s.payload_size), name + suffix);
}

async function toggleHex(button, tr, s) {
  const open = button.getAttribute("aria-expanded") === "true";
  const next = tr.nextElementSibling;
  if (open) {
    if (next && next.classList.contains("hex-row")) next.remove();
    button.setAttribute("aria-expanded", "false");
    return;
  }
  const n = Math.min(256, s.payload_size);
  const bytes = new Uint8Array(await file.slice(s.file_offset, s.file_offset + n).arrayBuffer());
  const row = el("tr", { class: "hex-row" }, el("td", { colspan: "9" }, el("pre", { class: "hex" }, hexDump(bytes, s.file_offset))));
  tr.after(row);
  button.setAttribute("aria-expanded", "true");
}

function hexDump(bytes, base) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const part = bytes.subarray(i, i + 16);
    const hx = Array.from(part, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const asc = Array.from(part, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${(base + i).toString(16).padStart(8, "0")}  ${hx.padEnd(47)}  ${asc}`);
  }
  return lines.join("\n");
}

function renderUki(r) {
  const box = $("uki");
  clear(box);
  const any = r.os_release || r.cmdline || r.uname || r.sbat || r.splash || r.kernel || r.profiles.length || r.hwids || r.efifw.length || r.pcrpkey || r.pcrsig;
  if (!any) {
    box.append(emptyState("No UKI metadata: this file has none of .osrel, .cmdline, .uname, .sbat, .splash or .linux."));
    return;
  }
  if (r.os_release) {
    box.append(el("h3", {}, "os-release"));
    const rows = Object.entries(r.os_release).map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, v)));
    box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid kv", id: "os-release" }), null, rows)));
  }
  if (r.cmdline !== null && r.cmdline !== undefined) {
    box.append(el("h3", {}, "Kernel command line"));
    box.append(el("div", { class: "codeline" }, el("code", { id: "cmdline" }, r.cmdline || "(empty)"), copyButton(r.cmdline, "Copy command line")));
  }
  const facts = [];
  if (r.uname) facts.push(["uname", el("code", { id: "uname" }, r.uname)]);
  if (r.kernel) {
    const k = r.kernel;
    const FORMAT = { bzimage: "bzImage", image: "Image", zboot: "EFI zboot" };
    facts.push(["Kernel version", k.version]);
    facts.push(["Kernel format", k.format ? `${FORMAT[k.format] || k.format} ${k.architecture || ""}`.trim() : null]);
    facts.push(["Boot protocol", k.boot_protocol]);
    if (k.image_size) facts.push(["Kernel image size", size(k.image_size)]);
    if (k.zboot) facts.push(["Compressed payload", `${k.zboot.compression}, ${size(k.zboot.payload_size)}`]);
    facts.push(["Kernel is a PE", k.is_pe ? "yes (EFI stub)" : "no"]);
    facts.push(["Kernel signed", k.signed ? "yes" : "no"]);
    facts.push(["Kernel NX_COMPAT", k.nx_compat ? "yes" : "no"]);
  }
  if (r.pcrpkey) facts.push(["PCR public key", `${r.pcrpkey.key_type}${r.pcrpkey.bits ? " " + r.pcrpkey.bits + " bits" : ""}, sha256 ${r.pcrpkey.fingerprint}`]);
  if (r.pcrsig) facts.push([".pcrsig", `${r.pcrsig.entries} signed policies; banks ${r.pcrsig.banks.join(", ")}; PCRs ${r.pcrsig.pcrs.join(", ")}`]);
  if (facts.length) {
    box.append(el("h3", {}, "Kernel and keys"));
    box.append(factList(el("dl", { class: "facts" }), facts));
  }
  if (r.sbat) {
    box.append(el("h3", {}, "SBAT"));
    const head = ["Component", "Generation", "Vendor", "Package", "Version", "URL"];
    const rows = r.sbat.map((e) => el("tr", {}, ...[e.component, e.generation, e.vendor, e.package, e.version, e.url].map((v) => el("td", {}, v))));
    box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid", id: "sbat" }), head, rows)));
  }
  if (r.splash) {
    box.append(el("h3", {}, "Splash"));
    const s = r.sections.find((x) => x.name === ".splash" && (x.profile === null || x.profile === undefined));
    const fig = el("figure", { class: "splash" });
    if (s && s.file_offset + s.payload_size <= r.file_size) {
      const img = el("img", { id: "splash", alt: `Boot splash, ${r.splash.width}×${Math.abs(r.splash.height)}`, src: blobUrl(file.slice(s.file_offset, s.file_offset + s.payload_size, "image/bmp")) });
      fig.append(img);
    }
    fig.append(el("figcaption", {}, `${r.splash.width} × ${Math.abs(r.splash.height)}, ${r.splash.bits_per_pixel} bits per pixel`));
    box.append(fig);
  }
  if (r.profiles.length) {
    box.append(el("h3", {}, `Profiles (${r.profiles.length})`));
    box.append(el("p", { class: "muted" }, "Base sections: " + r.base_sections.join(" ")));
    const rows = r.profiles.map((p) => el("tr", {}, el("td", { class: "num" }, `@${p.index}`), el("td", {}, p.id || ""), el("td", {}, p.title || ""), el("td", {}, el("code", {}, p.sections.join(" "))), el("td", {}, p.cmdline === null || p.cmdline === undefined ? "" : el("code", {}, p.cmdline))));
    box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid", id: "profiles" }), ["#", "ID", "Title", "Sections", "Own cmdline"], rows)));
  }
  if (r.hwids && r.hwids.length) {
    box.append(el("h3", {}, "Hardware IDs (.hwids)"));
    const rows = r.hwids.map((h) => el("tr", {}, el("td", {}, String(h.device_type)), el("td", {}, el("code", {}, h.chid)), el("td", {}, h.name), el("td", {}, h.compatible)));
    box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["Type", "CHID", "Name", "Compatible"], rows)));
  }
  if (r.efifw.length) {
    box.append(el("h3", {}, "Firmware (.efifw)"));
    const rows = r.efifw.map((f) => el("tr", {}, el("td", {}, f.fwid), el("td", { class: "num" }, size(f.payload_size))));
    box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["Firmware id", "Payload"], rows)));
  }
}

function renderLints(r) {
  const box = $("lints");
  clear(box);
  if (!r.lints.length) {
    box.append(emptyState("No findings: nothing unusual about this file."));
    return;
  }
  const order = { error: 0, warning: 1, info: 2 };
  const list = el("ul", { class: "lints" });
  for (const l of [...r.lints].sort((a, b) => order[a.severity] - order[b.severity])) {
    const help = LINT_HELP[l.id];
    list.append(
      el("li", { class: "lint sev-" + l.severity, "data-lint": l.id },
        el("span", { class: "badge sev" }, l.severity),
        el("div", {}, el("div", {}, l.message), el("div", { class: "muted" }, el("code", {}, l.id), help ? " · " + help : "")),
      ),
    );
  }
  box.append(list);
}

const VERDICT_TEXT = {
  unsigned: "unsigned",
  "valid-trusted": "valid, trusted",
  "valid-untrusted": "valid, not trusted",
  revoked: "revoked",
  "hash-mismatch": "hash mismatch",
  "bad-signature": "bad signature",
  malformed: "malformed",
};

function verdictBadge(v, id) {
  const tone = v === "valid-trusted" ? "ok" : v === "valid-untrusted" || v === "unsigned" ? "warn" : "err";
  return el("span", { class: `badge verdict tone-${tone}`, "data-verdict": v, id }, VERDICT_TEXT[v] || v);
}

function yesNo(v, yes, no) {
  if (v === null || v === undefined) return el("span", { class: "muted" }, "not checked");
  return el("span", { class: v ? "tone-ok" : "tone-err" }, v ? yes : no);
}

function renderSignatures(r) {
  const box = $("signatures");
  clear(box);
  if (!verify) {
    box.append(emptyState(r.pe.certificate_table ? "Checking the signatures…" : "Computing the Authenticode hash…"));
    return;
  }
  const v = verify;
  box.append(
    el("div", { class: "verdict-line" }, verdictBadge(v.verdict, "verdict"), el("span", { id: "verdict-reason" }, v.reason)),
  );
  const digests = Object.entries(v.image_digests).map(([alg, d]) =>
    el("div", { class: "codeline" }, el("span", { class: "alg" }, alg), el("code", { "data-image-digest": alg }, d), copyButton(d, `Copy the ${alg} image digest`)),
  );
  if (digests.length) {
    box.append(el("h3", {}, "Authenticode image digest"));
    box.append(...digests);
  }
  if (!v.signatures.length && v.verdict === "unsigned") {
    box.append(el("p", { class: "muted" }, "No certificate table. Secure Boot refuses this file unless the SHA-256 digest above is enrolled in db."));
  }
  for (const s of v.signatures) box.append(signatureCard(s));

  // Trust anchors: certificates or a db, checked client-side.
  const anchorBox = el("div", { class: "anchors" });
  anchorBox.append(el("h3", {}, "Trust anchors"));
  if (anchors.length) {
    anchorBox.append(el("ul", { class: "plain", id: "anchor-list" }, ...anchors.map((a) => el("li", {}, a))));
  } else {
    anchorBox.append(el("p", { class: "muted" }, "None: a valid signature is “valid, not trusted”. Add the certificate or db your firmware trusts to check the chain."));
  }
  const input = el("input", { type: "file", id: "anchor-file", hidden: true, multiple: true, accept: ".pem,.crt,.cer,.der,.esl,.auth,.db,.bin,*/*" });
  input.addEventListener("change", async (e) => {
    for (const f of e.target.files) worker.postMessage({ type: "anchor", job, name: f.name, file: f });
    e.target.value = "";
  });
  const actions = el("div", { class: "form-actions" },
    el("button", { type: "button", id: "anchor-add", onclick: () => input.click() }, "Add trust anchor…"),
    anchors.length ? el("button", { type: "button", id: "anchor-clear", onclick: () => worker.postMessage({ type: "clear-anchors", job }) }, "Clear anchors") : "",
    el("button", { type: "button", id: "verify-export", onclick: exportVerify }, "Export verify JSON"),
    el("span", { class: "muted" }, "PEM or DER certificates, or an EFI signature list / db / .auth file."),
    input,
  );
  anchorBox.append(actions, el("p", { id: "anchor-msg", class: "muted", role: "status" }));
  box.append(anchorBox);
  if (verifyMs !== null) box.append(el("p", { class: "muted small-print" }, `Checked in ${Math.round(verifyMs)} ms (the file streamed through ${engineName()}).`));
}

function engineName() {
  return speeds && speeds.webcrypto >= speeds.wasm ? "WebCrypto" : "wasm sha2";
}

function anchorMessage(text, isError) {
  const p = $("anchor-msg");
  if (!p) return;
  p.textContent = text;
  p.classList.toggle("tone-err", !!isError);
}

function signatureCard(s) {
  const c = s.signer;
  const title = `Signature ${s.index + 1}` + (s.nested_in !== null ? ` (nested in ${s.nested_in + 1})` : "");
  const card = el("article", { class: "sig", "data-index": String(s.index) });
  card.append(el("header", {}, el("h4", {}, title), verdictBadge(s.verdict), el("code", { class: "muted" }, `at ${hexNum(s.offset)}`)));
  const rows = [];
  if (c) {
    rows.push(["Signer", el("span", { class: "signer-cn" }, c.subject_cn || c.subject)]);
    rows.push(["Issuer", el("span", { class: "issuer-cn" }, c.issuer_cn || c.issuer)]);
    rows.push(["Serial", el("code", {}, c.serial)]);
    rows.push(["Validity", `${c.not_before || "?"} → ${c.not_after || "?"} (not enforced: firmware has no trusted clock)`]);
  } else {
    rows.push(["Signer", el("span", { class: "muted" }, "not found among the embedded certificates")]);
  }
  rows.push(["Digest algorithm", s.digest_algorithm]);
  if (s.signed_digest) {
    rows.push(["Signed digest", el("span", {}, el("code", { class: "hash" }, s.signed_digest), " ", yesNo(s.digest_matches, "matches the image", "differs from the image"))]);
  }
  rows.push(["messageDigest", yesNo(s.message_digest_matches, "matches the content", "does not match")]);
  rows.push(["Signature", yesNo(s.signature_valid, "valid", "invalid")]);
  if (s.chain.length) {
    const chain = el("ol", { class: "chain" }, ...s.chain.map((cn) => el("li", {}, cn)));
    if (!s.trusted_by && s.chain_ends_at) chain.append(el("li", { class: "muted" }, `${s.chain_ends_at} (not an anchor)`));
    rows.push(["Chain", chain]);
  }
  if (s.trusted_by) rows.push(["Trusted by", el("span", { class: "tone-ok" }, s.trusted_by)]);
  if (s.signing_time) rows.push(["Signed at", s.signing_time]);
  if (s.program_name) rows.push(["Program", s.program_name]);
  for (const t of s.timestamps) rows.push(["Timestamp", `${t.kind} ${t.time || "?"} by ${t.signer_issuer_cn || "?"}`]);
  rows.push(["Reason", el("span", { class: "sig-reason" }, s.reason)]);
  card.append(factList(el("dl", { class: "facts" }), rows));
  if (s.certificates.length) {
    const list = s.certificates.map((x) => el("tr", {}, el("td", {}, x.subject_cn || x.subject), el("td", {}, x.issuer_cn || x.issuer), el("td", {}, el("code", {}, x.serial)), el("td", { class: "num" }, (x.not_after || "").slice(0, 10))));
    card.append(el("details", {}, el("summary", {}, `Embedded certificates (${s.certificates.length})`), el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["Subject", "Issuer", "Serial", "Expires"], list))));
  }
  return card;
}

function exportVerify() {
  if (!verifyJson) return;
  download(new Blob([verifyJson + "\n"], { type: "application/json" }), `${baseName()}.verify.json`);
}

function baseName() {
  return (file && file.name ? file.name : "file").replace(/\.[^.]*$/, "");
}

function renderPcr(r) {
  const box = $("pcr");
  clear(box);
  if (r.kind !== "uki") {
    box.append(emptyState("PCR 11 is predicted for UKIs only: systemd-stub measures a UKI's sections into it."));
    return;
  }
  if (!pcr) {
    box.append(emptyState("Predicting PCR 11 (every section hashed in four banks)…"));
    return;
  }
  if (pcr.error) {
    box.append(el("div", { class: "error", id: "pcr-error" }, pcr.error));
    return;
  }
  box.append(el("p", { class: "muted" }, "What systemd-stub will measure into PCR 11 for this UKI, at each boot phase, the same numbers as ", el("code", {}, "ukitool measure --json"), " and ", el("code", {}, "systemd-measure calculate"), "."));
  const rows = [];
  for (const [bank, preds] of Object.entries(pcr)) {
    rows.push(el("tr", { class: "group" }, el("th", { colspan: "3", scope: "rowgroup" }, bank)));
    for (const p of preds) {
      rows.push(
        el("tr", { "data-bank": bank, "data-phase": p.phase },
          el("td", {}, el("code", { class: "phase" }, p.phase)),
          el("td", { class: "num" }, String(p.pcr)),
          el("td", {}, el("span", { class: "hash-cell wrap" }, el("code", { class: "pcr-hash" }, p.hash), copyButton(p.hash, `Copy ${bank} ${p.phase}`))),
        ),
      );
    }
  }
  box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid", id: "pcr-table" }), ["Phase", "PCR", "Value"], rows)));
  box.append(el("div", { class: "form-actions" }, el("button", { type: "button", id: "pcr-export", onclick: () => download(new Blob([pcrJson + "\n"], { type: "application/json" }), `${baseName()}.measure.json`) }, "Export measure JSON")));
  if (pcrCheck && (pcrCheck.pcrsig || pcrCheck.pcrsig_error)) {
    box.append(el("h3", {}, ".pcrsig check"));
    if (pcrCheck.pcrsig_error) {
      box.append(el("p", { class: "tone-err", id: "pcrsig-result" }, pcrCheck.pcrsig_error));
    } else {
      const p = pcrCheck.pcrsig;
      const ok = p.entries.filter((e) => !e.problem).length;
      box.append(el("p", { id: "pcrsig-result", class: p.valid ? "tone-ok" : "tone-err" }, `${p.valid ? "valid" : "INVALID"}: ${ok}/${p.entries.length} signed policies check out against .pcrpkey (key ${p.key_fingerprint.slice(0, 16)}…)`));
      const er = p.entries.map((e) => el("tr", {}, el("td", {}, e.bank), el("td", {}, e.pcrs.join(",")), el("td", {}, el("code", { class: "hash" }, e.pol.slice(0, 24) + "…")), el("td", {}, yesNo(e.signature_valid, "valid", "invalid")), el("td", {}, e.pol_predicted === null ? "—" : yesNo(e.pol_predicted, "matches", "stale")), el("td", {}, e.problem || "")));
      box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["Bank", "PCRs", "Policy", "Signature", "Prediction", "Problem"], er)));
    }
  }
}

function renderPe(r) {
  const box = $("pe");
  clear(box);
  const p = r.pe;
  factList(box.appendChild(el("dl", { class: "facts" })), [
    ["Format", p.format],
    ["Machine", `${p.machine_name || "unknown"} (${hexNum(p.machine)})`],
    ["Subsystem", `${p.subsystem_name || "unknown"} (${p.subsystem})`],
    ["Entry point", hexNum(p.entry_point)],
    ["Image base", hexNum(p.image_base)],
    ["Section alignment", hexNum(p.section_alignment)],
    ["File alignment", hexNum(p.file_alignment)],
    ["SizeOfImage", `${hexNum(p.size_of_image)} (${size(p.size_of_image)})`],
    ["SizeOfHeaders", hexNum(p.size_of_headers)],
    ["CheckSum", hexNum(p.checksum)],
    ["Characteristics", `${hexNum(p.characteristics)} ${p.characteristics_names.join(" ")}`],
    ["DllCharacteristics", `${hexNum(p.dll_characteristics)} ${p.dll_characteristics_names.join(" ")}`],
    ["NX_COMPAT", p.nx_compat ? "yes" : "no"],
    ["Timestamp", p.timestamp ? `${p.timestamp} (${new Date(p.timestamp * 1000).toISOString()})` : "0"],
    ["Certificate table", p.certificate_table ? `${hexNum(p.certificate_table.offset)}, ${size(p.certificate_table.size)}` : "none"],
    ["Symbol table", p.symbol_table ? `${hexNum(p.symbol_table.offset)}, ${p.symbol_table.symbols} symbols` : "none"],
  ]);
  const rows = p.data_directories.filter((d) => d.virtual_address || d.size).map((d) => el("tr", {}, el("td", { class: "num" }, String(d.index)), el("td", {}, d.name), el("td", { class: "num" }, hexNum(d.virtual_address)), el("td", { class: "num" }, hexNum(d.size))));
  box.append(el("h3", {}, "Data directories in use"));
  if (rows.length) box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["#", "Directory", "Address", "Size"], rows)));
  else box.append(emptyState("None."));
}

function renderDisk(_r) {
  const box = $("disk");
  clear(box);
  box.append(emptyState("This file is a PE image, not a disk. Drop a raw disk image to see its partitions and the UKIs on its ESP."));
}

function renderDiskPanel(d) {
  const box = $("disk");
  clear(box);
  const pt = d.partition_table;
  const problems = [...d.problems, ...(pt ? pt.problems : [])];
  if (problems.length) {
    box.append(el("h3", {}, "Problems"));
    box.append(el("ul", { class: "plain problems" }, ...problems.map((p) => el("li", {}, p))));
  }
  if (pt) {
    box.append(el("h3", {}, `Partitions (${pt.scheme.toUpperCase()})`));
    const checks = [];
    if (pt.disk_guid) checks.push(`disk GUID ${pt.disk_guid}`);
    for (const [k, label] of [["header_crc_ok", "header CRC"], ["array_crc_ok", "entry array CRC"], ["backup_ok", "backup header"]]) {
      if (pt[k] !== null && pt[k] !== undefined) checks.push(`${label} ${pt[k] ? "ok" : "BAD"}`);
    }
    if (checks.length) box.append(el("p", { class: "muted" }, checks.join(" · ")));
    const rows = pt.partitions.map((p) =>
      el("tr", { "data-partition": String(p.index) },
        el("td", { class: "num" }, String(p.index)),
        el("td", {}, p.name || ""),
        el("td", {}, p.type_name || (p.type_guid ? el("code", {}, p.type_guid) : p.mbr_type !== null ? hexNum(p.mbr_type) : "")),
        el("td", { class: "num" }, `${p.first_lba}–${p.last_lba}`),
        el("td", { class: "num", title: `${p.size} bytes` }, size(p.size)),
      ),
    );
    box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid", id: "partitions" }), ["#", "Name", "Type", "LBAs", "Size"], rows)));
  }
  box.append(el("p", { id: "disk-file-status", class: "muted", role: "status" }));
  for (const fs of d.filesystems) {
    const where = fs.partition === null ? "whole image" : `partition ${fs.partition}`;
    box.append(el("h3", {}, `${fs.fat.fat_type} volume “${fs.fat.label.trim() || "no label"}” (${where})`));
    const files = fs.fat.entries.filter((e) => !e.is_dir);
    box.append(el("p", { class: "muted" }, `${files.length} files · cluster ${size(fs.fat.cluster_size)} · ${fs.fat.clusters.toLocaleString("en")} clusters`));
    renderEfiBinaries(box, fs.efi_binaries, fs.partition, d.compression);
    renderFileList(box, fs.partition, files);
  }
  for (const xv of d.xfs_volumes || []) {
    const x = xv.xfs;
    box.append(el("h3", {}, `XFS volume “${x.label || "no label"}” (partition ${xv.partition})`));
    const files = x.entries.filter((e) => e.kind === "file");
    const features = x.features.length ? x.features.join(", ") : "none beyond v5";
    box.append(el("p", { class: "muted" }, `UUID `, el("code", {}, x.uuid), ` · ${files.length} files · ${size(x.block_size)} blocks, ${x.sector_size}-byte sectors · ${x.ag_count} AGs · features: ${features}`));
    if (x.problems.length) box.append(el("ul", { class: "plain problems" }, ...x.problems.map((p) => el("li", {}, p))));
    renderEfiBinaries(box, xv.efi_binaries, xv.partition, d.compression);
    renderFileList(box, xv.partition, files);
  }
  renderTalos(box, d);
}

function renderEfiBinaries(box, bins, partition, compressed) {
  if (!bins.length) return;
  const rows = bins.map((b) => {
    const r = b.report;
    const what = r ? (r.kind === "uki" && r.os_release && r.os_release.PRETTY_NAME ? `UKI: ${r.os_release.PRETTY_NAME}` : KIND_LABEL[r.kind] || r.kind) : b.error || "";
    // In a compressed image the bytes are the Worker's to decode (bigdisk.js).
    const open = compressed && partition !== null
      ? el("button", { type: "button", class: "small", onclick: () => partitionFile(partition, b.path, true) }, "Open")
      : b.disk_offset !== null && b.disk_offset !== undefined
      ? el("button", { type: "button", class: "small", onclick: () => openEmbedded(b) }, "Open")
      : el("span", { class: "muted" }, "fragmented");
    return el("tr", { "data-efi": b.path }, el("td", {}, el("code", {}, b.path)), el("td", { class: "num" }, size(b.size)), el("td", {}, what), el("td", {}, r && r.signatures.length ? `${r.signatures.length} signature(s)` : r ? "unsigned" : ""), el("td", {}, open));
  });
  box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["EFI binary", "Size", "What", "Signed", ""], rows)));
}

// Every file of a partition's filesystem, each with Open (in these views) and
// Download (= `ukitool extract DISK PART:/PATH`). A bare volume (no partition
// table) lists its files only.
function renderFileList(box, partition, files) {
  const listing = files.slice(0, MAX_FILE_ROWS).map((e) => {
    const actions = partition === null ? "" : el("span", { class: "file-actions" },
      el("button", { type: "button", class: "small", "data-action": "open", onclick: () => partitionFile(partition, e.path, true) }, "Open"),
      el("button", { type: "button", class: "small", "data-action": "download", onclick: () => partitionFile(partition, e.path, false) }, "Download"),
    );
    return el("tr", { "data-file": `${partition}:/${e.path}` }, el("td", {}, el("code", {}, "/" + e.path)), el("td", { class: "num" }, size(e.size)), el("td", {}, actions));
  });
  if (!listing.length) return;
  const more = files.length > listing.length ? ` (the first ${listing.length} shown)` : "";
  const det = el("details", {}, el("summary", {}, `All files (${files.length})${more}`), el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["Path", "Size", ""], listing)));
  box.append(det);
}

// A file from a partition of the disk shown: opened in these views, or downloaded.
async function partitionFile(partition, path, open) {
  const status = $("disk-file-status");
  status.textContent = `Reading /${path}…`;
  status.classList.remove("tone-err");
  try {
    const r = await runTask({ type: "disk-file", job, partition: String(partition), path });
    status.textContent = "";
    if (open) openFile(new File([r.blob], r.name));
    else download(r.blob, r.name);
  } catch (e) {
    status.textContent = `Could not read /${path}: ${e.message}`;
    status.classList.add("tone-err");
  }
}

// A Talos disk (bootloader, version, UKI, grub.cfg) and META, as `ukitool inspect`
// reports them.
function renderTalos(box, d) {
  const t = d.talos;
  if (t) {
    box.append(el("h3", {}, "Talos"));
    const facts = [`${t.bootloader} image`, `version ${t.version || "?"}`];
    if (t.uki) facts.push(`UKI ${t.uki}`);
    box.append(el("p", { id: "disk-talos" }, facts.join(" · ")));
    if (t.grub_entries.length) {
      const rows = t.grub_entries.map((e) => el("tr", {}, el("td", {}, e.name + (e.name === t.grub_default ? " (default)" : "")), el("td", {}, el("code", {}, e.linux || "")), el("td", {}, el("code", {}, e.initrd || ""))));
      box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["grub.cfg entry", "linux", "initrd"], rows)));
    }
  }
  const m = d.meta;
  if (m) {
    box.append(el("h3", {}, `META (partition ${m.partition})`));
    const copies = m.copies.map((c) => `copy at ${hexNum(c.offset)} ${c.valid ? "valid" : "invalid: " + c.problem}`);
    box.append(el("p", { class: "muted" }, copies.join(" · ")));
    const value = (v) => (v.form === "json" ? JSON.stringify(v.value) : v.form === "hex" ? "hex " + v.value : v.value);
    const rows = [...m.records, ...m.legacy].map((r) => el("tr", { "data-meta-tag": String(r.tag) }, el("td", { class: "num" }, "0x" + r.tag.toString(16).padStart(2, "0")), el("td", {}, r.name || "(unknown tag)"), el("td", {}, el("code", {}, value(r.value)))));
    if (rows.length) box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid", id: "meta-records" }), ["Tag", "Name", "Value"], rows)));
    else box.append(emptyState("No records: META is empty."));
  }
}

// An EFI binary stored contiguously on the image opens in the same views, sliced
// straight out of the image file.
function openEmbedded(b) {
  const part = file.slice(b.disk_offset, b.disk_offset + b.size);
  openFile(new File([part], b.path.split("/").pop()));
}

// ---- tools: disk images and UKIs -------------------------------------------

// Ask the Worker for a tool result; resolves to {blob, name, summary}.
function runTask(msg) {
  const task = ++tasks;
  return new Promise((resolve, reject) => {
    pending.set(task, { resolve, reject });
    worker.postMessage({ ...msg, task });
  });
}

// `ukitool image`'s options; null (or absent) takes the core's default, as a flag
// left out does.
function diskOptions() {
  const entry = file && file.name ? file.name.replace(/\.[^.]*$/, "") : "";
  const timestamp = $("i-timestamp").value.trim();
  const layout = $("i-layout").value;
  return {
    layout,
    size: $("i-size").value.trim() || null,
    esp_size: $("i-esp-size").value.trim() || null,
    sector_size: Number($("i-sector").value),
    label: $("i-label").value,
    timestamp: timestamp === "" ? null : Number(timestamp),
    entry_name: (layout !== "talos" && entry) || null,
    ...(layout === "talos" ? talosOptions() : {}),
    add_partition: partitionRows().map((r) => r.spec),
  };
}

// ---- partitions added to a disk image ----------------------------------------

let partRows = 0;

// A row of `--add-partition NAME:SIZE:TYPE:FS` fields, with files for its filesystem.
function addPartitionRow() {
  partRows += 1;
  const n = partRows;
  const text = (cls, value, label) => el("label", {}, label, el("input", { type: "text", class: cls, value, spellcheck: "false" }));
  const fs = el("select", { class: "p-fs" }, el("option", { value: "xfs" }, "XFS"), el("option", { value: "fat" }, "FAT"), el("option", { value: "" }, "none (unformatted)"));
  const row = el("div", { class: "part-row", "data-part-row": String(n) },
    text("p-name", n === 1 ? "BOOT" : `PART${n}`, "Name"),
    text("p-size", "1000M", "Size"),
    text("p-type", "linux", "Type"),
    el("label", {}, "Filesystem", fs),
    el("label", {}, "Files", el("input", { type: "file", class: "p-files", multiple: true })),
    el("label", {}, "or a folder's contents", el("input", { type: "file", class: "p-dir", webkitdirectory: true, multiple: true })),
    text("p-path", "/", "Put them under"),
  );
  row.append(el("button", { type: "button", class: "small", onclick: () => row.remove() }, "Remove"));
  $("i-part-list").append(row);
  return row;
}

// Compare paths component by component, as the CLI sorts a directory's names.
function byComponents(a, b) {
  const x = a.split("/");
  const y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

// Each row as its --add-partition spec and its --add-file-to files, in the order
// the CLI reads `--add-file-to NAME:FILE:PATH/FILE ...` then `NAME:DIR:PATH`.
function partitionRows() {
  return Array.from(document.querySelectorAll("#i-part-list .part-row")).map((row) => {
    const v = (cls) => row.querySelector(cls).value.trim();
    const name = v(".p-name");
    const spec = [name, v(".p-size"), v(".p-type") || "linux"];
    if (v(".p-fs")) spec.push(v(".p-fs"));
    const under = (v(".p-path") || "/").replace(/\/+$/, "");
    const files = Array.from(row.querySelector(".p-files").files)
      .sort((a, b) => byComponents(a.name, b.name))
      .map((file) => ({ part: name, path: `${under}/${file.name}`, file }));
    const inDir = Array.from(row.querySelector(".p-dir").files)
      .map((file) => ({ rel: (file.webkitRelativePath || file.name).split("/").slice(1).join("/") || file.name, file }))
      .sort((a, b) => byComponents(a.rel, b.rel))
      .map(({ rel, file }) => ({ part: name, path: `${under}/${rel}`, file }));
    return { spec: spec.join(":"), files: [...files, ...inDir] };
  });
}


// The talos layout's options: --talos-bootloader, --talos-version, --meta.
function talosOptions() {
  const meta = $("i-meta")
    .value.split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  return {
    talos_bootloader: $("i-talos-bootloader").value || null,
    talos_version: $("i-talos-version").value.trim() || null,
    meta,
  };
}

// The talos layout's files, as [{role, name, file}] for the Worker: its loaders and
// GRUB's i386-pc files (from the folder picker, else the files picked).
function talosInputs() {
  if ($("i-layout").value !== "talos") return [];
  const out = [];
  for (const [id, role] of [["i-systemd-boot", "systemd-boot"], ["i-grub", "grub"], ["i-shim", "shim"]]) {
    const f = $(id).files[0];
    if (f) out.push({ role, name: f.name, file: f });
  }
  const dir = Array.from($("i-grub-bios-dir").files);
  for (const f of dir.length ? dir : Array.from($("i-grub-bios").files)) out.push({ role: "grub-bios", name: f.name, file: f });
  return out;
}

// Build the image in the Worker; `save` writes it through the File System Access
// API (streamed to disk), else it is downloaded as a Blob of shared parts.
async function buildDisk(save) {
  const status = $("image-status");
  const talos = $("i-layout").value === "talos";
  const loader = talos ? undefined : $("i-loader").files[0];
  status.textContent = "Building…";
  status.classList.remove("tone-err");
  $("disk-download").disabled = true;
  try {
    let handle = null;
    const name = `${baseName()}.img`;
    if (save) handle = await window.showSaveFilePicker({ suggestedName: name });
    const partFiles = partitionRows().flatMap((r) => r.files).map((p) => ({ role: "partition-file", name: p.part, path: p.path, file: p.file }));
    const r = await runTask({ type: "disk-image", job, options: diskOptions(), loader, inputs: [...talosInputs(), ...partFiles] });
    const summary = JSON.parse(r.summary);
    if (handle) {
      const w = await handle.createWritable();
      await r.blob.stream().pipeTo(w);
    } else {
      download(r.blob, name);
    }
    status.textContent = `${handle ? "Saved" : "Downloaded"} ${name}: ${size(summary.size)}, ${summary.partitions.length} partition${summary.partitions.length === 1 ? "" : "s"}, ${size(summary.data_bytes)} of data.`;
    renderImageSummary(summary);
  } catch (e) {
    if (e && e.name === "AbortError") status.textContent = "";
    else {
      status.textContent = "Could not build the image: " + e.message;
      status.classList.add("tone-err");
    }
  } finally {
    $("disk-download").disabled = false;
  }
}

function renderImageSummary(s) {
  const box = clear($("image-summary"));
  box.append(el("p", { class: "muted" }, `GPT, ${s.sector_size}-byte sectors, disk GUID `, el("code", {}, s.disk_guid)));
  const rows = s.partitions.map((p) => el("tr", {}, el("td", { class: "num" }, String(p.index)), el("td", {}, p.name), el("td", {}, p.type_name || ""), el("td", { class: "num" }, hexNum(p.offset)), el("td", { class: "num" }, size(p.size))));
  box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid", id: "image-partitions" }), ["#", "Name", "Type", "Offset", "Size"], rows)));
  const files = s.esp.files.map((f) => el("li", {}, el("code", {}, "/" + f.path), ` (${size(f.size)})`));
  box.append(el("p", { class: "muted" }, `ESP: ${s.esp.fat_type} “${s.esp.label}”, id ${s.esp.volume_id}, ${size(s.esp.cluster_size)} clusters`));
  box.append(el("ul", { class: "plain files" }, ...files));
  const t = s.talos;
  if (t) {
    const meta = t.meta_tags.length ? t.meta_tags.map((x) => "0x" + x.toString(16).padStart(2, "0")).join(", ") : "empty";
    const boot = t.boot_files.length ? `; BOOT (XFS): ${t.boot_files.map((f) => "/" + f).join(", ")}` : "";
    box.append(el("p", { class: "muted", id: "image-talos" }, `Talos ${t.bootloader} image, size table ${t.table}, version ${t.version}${boot}; META: ${meta}`));
  }
}

let builtUki = null;

async function buildUki() {
  const status = $("build-status");
  status.classList.remove("tone-err");
  const stub = $("b-stub").files[0];
  if (!stub) {
    status.textContent = "A stub is needed (e.g. /usr/lib/systemd/boot/efi/linuxx64.efi.stub).";
    status.classList.add("tone-err");
    return;
  }
  const key = $("b-key").files[0];
  const cert = $("b-cert").files[0];
  const ts = $("b-timestamp").value.trim();
  const cmdline = $("b-cmdline").value;
  status.textContent = "Building…";
  $("build-download").disabled = true;
  try {
    const r = await runTask({
      type: "build-uki",
      stub,
      linux: $("b-linux").files[0],
      initrds: Array.from($("b-initrd").files),
      cmdline: cmdline === "" ? undefined : cmdline,
      osRelease: $("b-osrel").files[0],
      timestamp: ts === "" ? null : Number(ts),
      key,
      cert,
    });
    const name = $("b-linux").files[0] ? "uki.efi" : "addon.efi";
    builtUki = new File([r.blob], name);
    download(r.blob, name);
    $("build-open").disabled = false;
    status.textContent = `Built ${name}: ${size(r.blob.size)}${key ? ", signed" : ""}.`;
  } catch (e) {
    status.textContent = "Could not build: " + e.message;
    status.classList.add("tone-err");
  } finally {
    $("build-download").disabled = false;
  }
}

function setupTools() {
  $("image-form").addEventListener("submit", (e) => {
    e.preventDefault();
    buildDisk(false);
  });
  if (window.showSaveFilePicker) {
    $("disk-save").hidden = false;
    $("disk-save").addEventListener("click", () => buildDisk(true));
  }
  $("i-part-add").addEventListener("click", () => addPartitionRow());
  $("i-layout").addEventListener("change", () => {
    const l = $("i-layout").value;
    $("i-loader-label").hidden = l === "uefi" || l === "talos";
    $("i-talos").hidden = l !== "talos";
  });
  $("build-toggle").addEventListener("click", () => {
    const p = $("p-build");
    p.hidden = !p.hidden;
    $("build-toggle").setAttribute("aria-expanded", String(!p.hidden));
    if (!p.hidden) p.scrollIntoView({ block: "start" });
  });
  $("build-form").addEventListener("submit", (e) => {
    e.preventDefault();
    buildUki();
  });
  $("build-open").addEventListener("click", () => builtUki && openFile(builtUki));
}

// ---- input ----------------------------------------------------------------

function exportJson() {
  if (!reportJson || !final) return;
  const base = (file && file.name ? file.name : "file").replace(/\.[^.]*$/, "");
  download(new Blob([reportJson + "\n"], { type: "application/json" }), `${base}.inspect.json`);
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

startWorker();
setupInput();
setupTools();
// Tests and power users can open a File programmatically, and read what the page
// shows as data.
window.ukitool = {
  openFile,
  state: () => ({ job, report: reportJson, verify: verifyJson, verifyMs, verifyTiming, pcr: pcrJson, speeds, error: $("error").hidden ? null : $("error").textContent }),
};
