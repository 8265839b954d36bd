// Build a bootable disk image from the file shown (= `ukitool image --uki FILE`): the
// form's options, partitions added with their files, the talos layout's inputs, and the
// summary of what was built.

import { el, clear, hexNum, size, table } from "../dom.js";
import { download } from "../files.js";
import { TASK } from "../protocol.js";
import { state, baseName } from "../state.js";
import { outputChoice } from "../bigdisk-choice.js";
import { $, onAction, plural } from "./common.js";
import { imageExtras } from "./image-extras.js";
import { secureBootImage } from "./keys.js";

let ctx = null;

export function setup(c) {
  ctx = c;
  $("image-form").addEventListener("submit", (e) => {
    e.preventDefault();
    buildDisk(false);
  });
  if (window.showSaveFilePicker) {
    $("disk-save").hidden = false;
    $("disk-save").addEventListener("click", () => buildDisk(true));
  }
  $("i-part-add").addEventListener("click", () => addPartitionRow());
  onAction($("i-part-list"), { "remove-part": (b) => b.closest(".part-row").remove() });
  $("image-warning").addEventListener("change", () => render(state));
  $("i-layout").addEventListener("change", () => {
    const l = $("i-layout").value;
    $("i-loader-label").hidden = l === "uefi" || l === "talos";
    // Say which binary the layout boots through (issue 19: not just "Boot loader binary").
    $("i-loader-label").firstChild.textContent = LOADER_LABEL[l] || "Boot loader binary";
    $("i-talos").hidden = l !== "talos";
  });
}

const LOADER_LABEL = {
  "systemd-boot": "systemd-boot binary (systemd-bootx64.efi, as --systemd-boot)",
  grub: "GRUB EFI binary (grubx64.efi, as --grub)",
};

let shownJob = 0;
let warned = ""; // the reasons last shown, so a re-render keeps the checkbox

/** A new file clears the previous build's result; a file that is not a sound UKI gets
 *  the reasons, and the build waits for "Build anyway". */
export function render(st) {
  if (st.job !== shownJob) {
    shownJob = st.job;
    $("image-status").textContent = "";
    $("image-status").classList.remove("tone-err");
    clear($("image-summary"));
    warned = "";
  }
  if (st.view !== "pe" || !st.report) return;
  const reasons = buildWarnings(st);
  const box = $("image-warning");
  const key = reasons.join("\n");
  if (key !== warned) {
    warned = key;
    clear(box);
    if (reasons.length) {
      box.append(
        el("strong", {}, "This file may not boot from the image: "),
        el("ul", { class: "plain" }, ...reasons.map((r) => el("li", {}, r))),
        el("label", {}, el("input", { type: "checkbox", id: "image-anyway" }), " Build anyway"),
      );
    }
    box.hidden = !reasons.length;
  }
  const blocked = reasons.length > 0 && !($("image-anyway") && $("image-anyway").checked);
  $("disk-download").disabled = blocked;
  $("disk-save").disabled = blocked;
}

function buildWarnings(st) {
  const r = st.report;
  const out = [];
  const errors = r.lints.filter((l) => l.severity === "error");
  if (r.kind !== "uki") {
    const what = { addon: "a UKI addon", pe: "not a UKI (a plain EFI binary, e.g. a boot loader or shim)" }[r.kind];
    out.push(`It is ${what || r.kind}: the image boots the file as its only EFI program.`);
  }
  if (errors.length)
    out.push(`It is damaged: ${plural(errors.length, "error lint")} (${errors.map((l) => l.id).join(", ")}).`);
  const v = st.verify && st.verify.verdict;
  if (["hash-mismatch", "bad-signature", "malformed", "revoked"].includes(v)) {
    out.push(`Its signature check failed (${v}): Secure Boot refuses it.`);
  }
  return out;
}

// `ukitool image`'s options; null (or absent) takes the core's default, as a flag
// left out does.
function diskOptions() {
  const entry = state.file && state.file.name ? state.file.name.replace(/\.[^.]*$/, "") : "";
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
    ...secureBootImage().options,
    ...imageExtras().options,
  };
}

// ---- partitions added to a disk image ----------------------------------------

let partRows = 0;

// A row of `--add-partition NAME:SIZE:TYPE:FS` fields, with files for its filesystem.
function addPartitionRow() {
  partRows += 1;
  const n = partRows;
  const text = (cls, value, label) =>
    el("label", {}, label, el("input", { type: "text", class: cls, value, spellcheck: "false" }));
  const fs = el(
    "select",
    { class: "p-fs" },
    el("option", { value: "xfs" }, "XFS"),
    el("option", { value: "fat" }, "FAT"),
    el("option", { value: "" }, "none (unformatted)"),
  );
  const row = el(
    "div",
    { class: "part-row", "data-part-row": String(n) },
    text("p-name", n === 1 ? "BOOT" : `PART${n}`, "Name"),
    text("p-size", "1000M", "Size"),
    text("p-type", "linux", "Type"),
    el("label", {}, "Filesystem", fs),
    el("label", {}, "Files", el("input", { type: "file", class: "p-files", multiple: true })),
    el(
      "label",
      {},
      "or a folder's contents",
      el("input", { type: "file", class: "p-dir", webkitdirectory: true, multiple: true }),
    ),
    text("p-path", "/", "Put them under"),
  );
  row.append(
    el(
      "button",
      { type: "button", class: "small", "data-action": "remove-part", "aria-label": `Remove partition row ${n}` },
      "Remove",
    ),
  );
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
  for (const [id, role] of [
    ["i-systemd-boot", "systemd-boot"],
    ["i-grub", "grub"],
    ["i-shim", "shim"],
  ]) {
    const f = $(id).files[0];
    if (f) out.push({ role, name: f.name, file: f });
  }
  const dir = Array.from($("i-grub-bios-dir").files);
  for (const f of dir.length ? dir : Array.from($("i-grub-bios").files))
    out.push({ role: "grub-bios", name: f.name, file: f });
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
  clear($("image-summary")); // a failed build must not leave the previous one's table
  $("disk-download").disabled = true;
  const job = state.job; // a build for a file no longer shown reports nothing
  try {
    let handle = null;
    const out = outputChoice($("i-output") && $("i-output").value);
    const name = `${baseName()}.${out.ext}`;
    if (save) handle = await window.showSaveFilePicker({ suggestedName: name });
    const partFiles = partitionRows()
      .flatMap((r) => r.files)
      .map((p) => ({ role: "partition-file", name: p.part, path: p.path, file: p.file }));
    const r = await ctx.runTask({
      type: TASK.DISK_IMAGE,
      job: state.job,
      options: diskOptions(),
      loader,
      inputs: [...talosInputs(), ...partFiles, ...secureBootImage().inputs, ...imageExtras().inputs],
      format: out.format,
      compress: out.compress,
    });
    const summary = JSON.parse(r.summary);
    if (state.job !== job) return;
    if (handle) {
      const w = await handle.createWritable();
      await r.blob.stream().pipeTo(w);
    } else {
      download(r.blob, name);
    }
    status.textContent = `${handle ? "Saved" : "Downloaded"} ${name}: ${size(summary.size)}, ${plural(summary.partitions.length, "partition")}, ${size(summary.data_bytes)} of data.`;
    renderImageSummary(summary);
  } catch (e) {
    if (state.job !== job) return;
    if (e && e.name === "AbortError") status.textContent = "";
    else {
      status.textContent = "Could not build the image: " + e.message;
      status.classList.add("tone-err");
    }
  } finally {
    render(state); // re-enables the buttons unless a warning holds them
  }
}

export function renderImageSummary(s) {
  const box = clear($("image-summary"));
  box.append(
    el("p", { class: "muted" }, `GPT, ${s.sector_size}-byte sectors, disk GUID `, el("code", {}, s.disk_guid)),
  );
  const rows = s.partitions.map((p) =>
    el(
      "tr",
      {},
      el("td", { class: "num" }, String(p.index)),
      el("td", {}, p.name),
      el("td", {}, p.type_name || ""),
      el("td", { class: "num" }, hexNum(p.offset)),
      el("td", { class: "num" }, size(p.size)),
    ),
  );
  box.append(
    el(
      "div",
      { class: "table-wrap" },
      table(el("table", { class: "grid", id: "image-partitions" }), ["#", "Name", "Type", "Offset", "Size"], rows),
    ),
  );
  const files = s.esp.files.map((f) => el("li", {}, el("code", {}, "/" + f.path), ` (${size(f.size)})`));
  box.append(
    el(
      "p",
      { class: "muted" },
      `ESP: ${s.esp.fat_type} “${s.esp.label}”, id ${s.esp.volume_id}, ${size(s.esp.cluster_size)} clusters`,
    ),
  );
  box.append(el("ul", { class: "plain files" }, ...files));
  const t = s.talos;
  if (t) {
    const meta = t.meta_tags.length
      ? t.meta_tags.map((x) => "0x" + x.toString(16).padStart(2, "0")).join(", ")
      : "empty";
    const boot = t.boot_files.length ? `; BOOT (XFS): ${t.boot_files.map((f) => "/" + f).join(", ")}` : "";
    box.append(
      el(
        "p",
        { class: "muted", id: "image-talos" },
        `Talos ${t.bootloader} image, size table ${t.table}, version ${t.version}${boot}; META: ${meta}`,
      ),
    );
  }
}
