// Sections: one row per section table entry, with its payload's sha256, a download
// (the exact payload, = `ukitool extract`) and a hex view.

import { el, hexNum, size, copyButton, table } from "../dom.js";
import { download } from "../files.js";
import { state } from "../state.js";
import { $, MAX_ROWS, onAction } from "./common.js";

export function setup() {
  onAction($("sections"), {
    download: (b) => downloadSection(sectionOf(b)),
    hex: (b) => toggleHex(b, b.closest("tr"), sectionOf(b)),
  });
}

function sectionOf(button) {
  const i = Number(button.closest("tr").dataset.index);
  return state.report.sections.find((s) => s.index === i);
}

function label(s) {
  return s.profile === null || s.profile === undefined ? s.name : `${s.name} of profile @${s.profile}`;
}

export function render(st) {
  const r = st.report;
  if (st.view !== "pe" || !r) return;
  const head = ["#", "Name", "Virtual address", "Virtual size", "File offset", "Raw size", "Flags", "sha256", ""];
  // A hostile header may claim 65535 sections: render a bounded number, so the
  // main thread never stalls; the JSON export has them all.
  const rows = r.sections.slice(0, MAX_ROWS).map((s) => {
    const tr = el("tr", { "data-section": s.name, "data-index": String(s.index) });
    const sha = s.sha256
      ? el(
          "span",
          { class: "hash-cell" },
          el("code", { class: "hash", title: s.sha256 }, s.sha256.slice(0, 16) + "…"),
          copyButton(s.sha256, `Copy sha256 of ${label(s)}`),
        )
      : el("span", { class: "muted" }, st.final ? "n/a" : "hashing…");
    const profile =
      s.profile === null || s.profile === undefined ? null : el("span", { class: "badge small" }, `@${s.profile}`);
    const actions = el("span", { class: "actions" });
    if (s.payload_size > 0 && s.file_offset + s.payload_size <= r.file_size) {
      actions.append(
        el(
          "button",
          { type: "button", class: "small", "data-action": "download", "aria-label": `Download ${label(s)}` },
          "Download",
        ),
        el(
          "button",
          {
            type: "button",
            class: "small",
            "data-action": "hex",
            "aria-expanded": "false",
            "aria-label": `Hex of ${label(s)}`,
          },
          "Hex",
        ),
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
    rows.push(
      el(
        "tr",
        {},
        el(
          "td",
          { colspan: "9", class: "muted" },
          `… and ${r.sections.length - MAX_ROWS} more sections, not shown (they are in the JSON export).`,
        ),
      ),
    );
  }
  table($("sections"), head, rows);
}

// The exact payload: VirtualSize bytes clamped to the raw data, straight from the
// File, so a 100 MiB kernel is never copied through wasm.
function downloadSection(s) {
  const name = state.fileNames[s.index] || `section${s.index}`;
  const suffix = s.profile === null || s.profile === undefined ? "" : `@${s.profile}`;
  download(state.file.slice(s.file_offset, s.file_offset + s.payload_size), name + suffix);
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
  const bytes = new Uint8Array(await state.file.slice(s.file_offset, s.file_offset + n).arrayBuffer());
  const row = el(
    "tr",
    { class: "hex-row" },
    el("td", { colspan: "9" }, el("pre", { class: "hex" }, hexDump(bytes, s.file_offset))),
  );
  tr.after(row);
  button.setAttribute("aria-expanded", "true");
}

export function hexDump(bytes, base) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const part = bytes.subarray(i, i + 16);
    const hx = Array.from(part, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const asc = Array.from(part, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${(base + i).toString(16).padStart(8, "0")}  ${hx.padEnd(47)}  ${asc}`);
  }
  return lines.join("\n");
}
