// The page's main thread: takes a file (drop, picker, paste), hands it to the
// Worker, renders what comes back. No parsing or hashing happens here, so the page
// stays responsive whatever the file's size. Every string from the file reaches the
// DOM through textContent, never as HTML.

import { el, clear, hexNum, size, copyButton, factList, table, emptyState } from "./dom.js";

const $ = (id) => document.getElementById(id);

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
};

let worker = null;
let job = 0;
let file = null; // the File being shown
let report = null; // the parsed report
let reportJson = null; // its exact JSON text (for the export)
let final = false; // the report has every hash
let fileNames = []; // download name per section index, from the core
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
  if (document.body.dataset.ready === "1" && crashes < 20) startWorker();
  else $("engine").textContent = "The wasm engine could not start: " + message;
}

function onWorkerMessage(ev) {
  const m = ev.data;
  if (m.type === "ready") {
    const s = m.speeds;
    $("engine").textContent =
      `ukitool ${m.version} · wasm engine ready · sha256 throughput here: ` +
      `WebCrypto ${s.webcrypto} MB/s, wasm ${s.wasm} MB/s`;
    document.body.dataset.ready = "1";
    return;
  }
  if (m.type === "crash") {
    restartWorker(m.message);
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
      setStatus("Done", false);
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
const PE_PANELS = ["p-sections", "p-uki", "p-lints", "p-signatures", "p-pcr", "p-pe"];

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
  const esp = d.filesystems.reduce((n, f) => n + f.efi_binaries.length, 0);
  const pt = d.partition_table;
  factList($("summary"), [
    ["Kind", el("span", { id: "kind", class: "badge", "data-kind": "disk" }, "Raw disk image")],
    ["Partition table", pt ? `${pt.scheme.toUpperCase()}, ${pt.partitions.length} partition${pt.partitions.length === 1 ? "" : "s"}, ${pt.sector_size}-byte sectors` : "none (bare volume)"],
    ["FAT volumes", String(d.filesystems.length)],
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
  if (r.pe.certificate_table) {
    const n = r.signatures.length;
    return n ? `${n} signature${n > 1 ? "s" : ""} (see Signatures)` : "certificate table present";
  }
  return "unsigned";
}

function renderSections(r) {
  const t = $("sections");
  const head = ["#", "Name", "Virtual address", "Virtual size", "File offset", "Raw size", "Flags", "sha256", ""];
  const rows = r.sections.map((s) => {
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
    facts.push(["Kernel version", k.version]);
    facts.push(["Boot protocol", k.boot_protocol]);
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

function renderSignatures(r) {
  const box = $("signatures");
  clear(box);
  if (r.signatures.length) {
    const list = el("ul", { class: "plain" });
    for (const s of r.signatures) list.append(el("li", {}, el("code", {}, hexNum(s.offset)), " ", s.line));
    box.append(list);
  } else if (r.pe.certificate_table) {
    box.append(emptyState(`A certificate table is present at ${hexNum(r.pe.certificate_table.offset)} (${size(r.pe.certificate_table.size)}). Checking signatures in the page is not in this build yet.`));
  } else {
    box.append(emptyState("Unsigned: this file has no certificate table. Secure Boot will refuse it unless its hash is enrolled."));
  }
}

function renderPcr(r) {
  const box = $("pcr");
  clear(box);
  box.append(emptyState(r.kind === "uki" ? "PCR 11 prediction is not in this build of the page yet; use `ukitool measure`." : "PCR 11 is predicted for UKIs only."));
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
  for (const fs of d.filesystems) {
    const where = fs.partition === null ? "whole image" : `partition ${fs.partition}`;
    box.append(el("h3", {}, `${fs.fat.fat_type} volume “${fs.fat.label.trim() || "no label"}” (${where})`));
    const files = fs.fat.entries.filter((e) => !e.is_dir);
    box.append(el("p", { class: "muted" }, `${files.length} files · cluster ${size(fs.fat.cluster_size)} · ${fs.fat.clusters.toLocaleString("en")} clusters`));
    if (fs.efi_binaries.length) {
      const rows = fs.efi_binaries.map((b) => {
        const r = b.report;
        const what = r ? (r.kind === "uki" && r.os_release && r.os_release.PRETTY_NAME ? `UKI: ${r.os_release.PRETTY_NAME}` : KIND_LABEL[r.kind] || r.kind) : b.error || "";
        const open = b.disk_offset !== null && b.disk_offset !== undefined
          ? el("button", { type: "button", class: "small", onclick: () => openEmbedded(b) }, "Open")
          : el("span", { class: "muted" }, "fragmented");
        return el("tr", { "data-efi": b.path }, el("td", {}, el("code", {}, b.path)), el("td", { class: "num" }, size(b.size)), el("td", {}, what), el("td", {}, r && r.signatures.length ? `${r.signatures.length} signature(s)` : r ? "unsigned" : ""), el("td", {}, open));
      });
      box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["EFI binary", "Size", "What", "Signed", ""], rows)));
    }
    const listing = files.slice(0, 200).map((e) => el("tr", {}, el("td", {}, el("code", {}, e.path)), el("td", { class: "num" }, size(e.size))));
    if (listing.length) {
      const det = el("details", {}, el("summary", {}, `All files (${files.length})`), el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["Path", "Size"], listing)));
      box.append(det);
    }
  }
}

// An EFI binary stored contiguously on the image opens in the same views, sliced
// straight out of the image file.
function openEmbedded(b) {
  const part = file.slice(b.disk_offset, b.disk_offset + b.size);
  openFile(new File([part], b.path.split("/").pop()));
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
// Tests and power users can open a File programmatically.
window.ukitool = { openFile };
