// Disk: a raw disk image's partitions, its FAT and XFS volumes with their EFI binaries
// and files (Open in these views, Download = `ukitool extract`), Talos facts and META.

import { el, clear, hexNum, size, table, emptyState } from "../dom.js";
import { download } from "../files.js";
import { TASK } from "../protocol.js";
import { state } from "../state.js";
import { $, kindLabel, onAction } from "./common.js";

const MAX_FILE_ROWS = 2000; // files listed per volume

let ctx = null;

export function setup(c) {
  ctx = c;
  onAction($("disk"), {
    "open-efi": (b) => {
      const path = b.closest("tr").dataset.efi;
      const bin = allBinaries(state.report).find((x) => x.path === path);
      if (bin) openEmbedded(bin);
    },
    open: (b) => partitionFile(b, true),
    download: (b) => partitionFile(b, false),
  });
}

function allBinaries(d) {
  return [...d.filesystems, ...(d.xfs_volumes || [])].flatMap((f) => f.efi_binaries);
}

export function render(st) {
  if (st.view !== "disk" || !st.report) return;
  const d = st.report;
  const box = clear($("disk"));
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
    for (const [k, label] of [
      ["header_crc_ok", "header CRC"],
      ["array_crc_ok", "entry array CRC"],
      ["backup_ok", "backup header"],
    ]) {
      if (pt[k] !== null && pt[k] !== undefined) checks.push(`${label} ${pt[k] ? "ok" : "BAD"}`);
    }
    if (checks.length) box.append(el("p", { class: "muted" }, checks.join(" · ")));
    const rows = pt.partitions.map((p) =>
      el(
        "tr",
        { "data-partition": String(p.index) },
        el("td", { class: "num" }, String(p.index)),
        el("td", {}, p.name || ""),
        el(
          "td",
          {},
          p.type_name || (p.type_guid ? el("code", {}, p.type_guid) : p.mbr_type !== null ? hexNum(p.mbr_type) : ""),
        ),
        el("td", { class: "num" }, `${p.first_lba}–${p.last_lba}`),
        el("td", { class: "num", title: `${p.size} bytes` }, size(p.size)),
      ),
    );
    box.append(
      el(
        "div",
        { class: "table-wrap" },
        table(el("table", { class: "grid", id: "partitions" }), ["#", "Name", "Type", "LBAs", "Size"], rows),
      ),
    );
  }
  box.append(el("p", { id: "disk-file-status", class: "muted", role: "status" }));
  for (const fs of d.filesystems) {
    const where = fs.partition === null ? "whole image" : `partition ${fs.partition}`;
    box.append(el("h3", {}, `${fs.fat.fat_type} volume “${fs.fat.label.trim() || "no label"}” (${where})`));
    const files = fs.fat.entries.filter((e) => !e.is_dir);
    box.append(
      el(
        "p",
        { class: "muted" },
        `${files.length} files · cluster ${size(fs.fat.cluster_size)} · ${fs.fat.clusters.toLocaleString("en")} clusters`,
      ),
    );
    renderEfiBinaries(box, fs.efi_binaries);
    renderFileList(box, fs.partition, files);
  }
  for (const xv of d.xfs_volumes || []) {
    const x = xv.xfs;
    box.append(el("h3", {}, `XFS volume “${x.label || "no label"}” (partition ${xv.partition})`));
    const files = x.entries.filter((e) => e.kind === "file");
    const features = x.features.length ? x.features.join(", ") : "none beyond v5";
    box.append(
      el(
        "p",
        { class: "muted" },
        `UUID `,
        el("code", {}, x.uuid),
        ` · ${files.length} files · ${size(x.block_size)} blocks, ${x.sector_size}-byte sectors · ${x.ag_count} AGs · features: ${features}`,
      ),
    );
    if (x.problems.length) box.append(el("ul", { class: "plain problems" }, ...x.problems.map((p) => el("li", {}, p))));
    renderEfiBinaries(box, xv.efi_binaries);
    renderFileList(box, xv.partition, files);
  }
  renderTalos(box, d);
}

function renderEfiBinaries(box, bins) {
  if (!bins.length) return;
  const rows = bins.map((b) => {
    const r = b.report;
    const what = r
      ? r.kind === "uki" && r.os_release && r.os_release.PRETTY_NAME
        ? `UKI: ${r.os_release.PRETTY_NAME}`
        : kindLabel(r)
      : b.error || "";
    const open =
      b.disk_offset !== null && b.disk_offset !== undefined
        ? el(
            "button",
            { type: "button", class: "small", "data-action": "open-efi", "aria-label": `Open ${b.path}` },
            "Open",
          )
        : el("span", { class: "muted" }, "fragmented");
    return el(
      "tr",
      { "data-efi": b.path },
      el("td", {}, el("code", {}, b.path)),
      el("td", { class: "num" }, size(b.size)),
      el("td", {}, what),
      el("td", {}, r && r.signatures.length ? `${r.signatures.length} signature(s)` : r ? "unsigned" : ""),
      el("td", {}, open),
    );
  });
  box.append(
    el(
      "div",
      { class: "table-wrap" },
      table(el("table", { class: "grid" }), ["EFI binary", "Size", "What", "Signed", ""], rows),
    ),
  );
}

// Every file of a partition's filesystem, each with Open (in these views) and
// Download (= `ukitool extract DISK PART:/PATH`). A bare volume (no partition
// table) lists its files only.
function renderFileList(box, partition, files) {
  const listing = files.slice(0, MAX_FILE_ROWS).map((e) => {
    const actions =
      partition === null
        ? ""
        : el(
            "span",
            { class: "file-actions" },
            el(
              "button",
              { type: "button", class: "small", "data-action": "open", "aria-label": `Open /${e.path}` },
              "Open",
            ),
            el(
              "button",
              { type: "button", class: "small", "data-action": "download", "aria-label": `Download /${e.path}` },
              "Download",
            ),
          );
    return el(
      "tr",
      { "data-file": `${partition}:/${e.path}` },
      el("td", {}, el("code", {}, "/" + e.path)),
      el("td", { class: "num" }, size(e.size)),
      el("td", {}, actions),
    );
  });
  if (!listing.length) return;
  const more = files.length > listing.length ? ` (the first ${listing.length} shown)` : "";
  const det = el(
    "details",
    {},
    el("summary", {}, `All files (${files.length})${more}`),
    el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["Path", "Size", ""], listing)),
  );
  box.append(det);
}

// A file from a partition of the disk shown: opened in these views, or downloaded.
async function partitionFile(button, open) {
  const spec = button.closest("tr").dataset.file;
  const at = spec.indexOf(":/");
  const partition = spec.slice(0, at);
  const path = spec.slice(at + 2);
  const status = $("disk-file-status");
  status.textContent = `Reading /${path}…`;
  status.classList.remove("tone-err");
  const job = state.job; // an answer for a disk no longer shown is dropped
  try {
    const r = await ctx.runTask({ type: TASK.DISK_FILE, job, partition, path });
    if (state.job !== job) return;
    status.textContent = "";
    if (open) ctx.openFile(new File([r.blob], r.name), { fromDisk: true });
    else download(r.blob, r.name);
  } catch (e) {
    if (state.job !== job) return;
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
      const rows = t.grub_entries.map((e) =>
        el(
          "tr",
          {},
          el("td", {}, e.name + (e.name === t.grub_default ? " (default)" : "")),
          el("td", {}, el("code", {}, e.linux || "")),
          el("td", {}, el("code", {}, e.initrd || "")),
        ),
      );
      box.append(
        el(
          "div",
          { class: "table-wrap" },
          table(el("table", { class: "grid" }), ["grub.cfg entry", "linux", "initrd"], rows),
        ),
      );
    }
  }
  const m = d.meta;
  if (m) {
    box.append(el("h3", {}, `META (partition ${m.partition})`));
    const copies = m.copies.map((c) => `copy at ${hexNum(c.offset)} ${c.valid ? "valid" : "invalid: " + c.problem}`);
    box.append(el("p", { class: "muted" }, copies.join(" · ")));
    const value = (v) => (v.form === "json" ? JSON.stringify(v.value) : v.form === "hex" ? "hex " + v.value : v.value);
    const rows = [...m.records, ...m.legacy].map((r) =>
      el(
        "tr",
        { "data-meta-tag": String(r.tag) },
        el("td", { class: "num" }, "0x" + r.tag.toString(16).padStart(2, "0")),
        el("td", {}, r.name || "(unknown tag)"),
        el("td", {}, el("code", {}, value(r.value))),
      ),
    );
    if (rows.length)
      box.append(
        el(
          "div",
          { class: "table-wrap" },
          table(el("table", { class: "grid", id: "meta-records" }), ["Tag", "Name", "Value"], rows),
        ),
      );
    else box.append(emptyState("No records: META is empty."));
  }
}

// An EFI binary stored contiguously on the image opens in the same views, sliced
// straight out of the image file.
async function openEmbedded(b) {
  const d = state.report;
  if (d && d.compression) {
    // In a compressed image the bytes are the Worker's to decode (bigdisk.js).
    const fs = [...d.filesystems, ...(d.xfs_volumes || [])].find((f) => f.efi_binaries.includes(b));
    const r = await ctx.runTask({
      type: TASK.DISK_FILE,
      job: state.job,
      partition: String(fs.partition),
      path: b.path,
    });
    ctx.openFile(new File([r.blob], r.name), { fromDisk: true });
    return;
  }
  const part = state.file.slice(b.disk_offset, b.disk_offset + b.size);
  ctx.openFile(new File([part], b.path.split("/").pop()), { fromDisk: true });
}
