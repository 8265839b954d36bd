// A hex view that pages through any range of a Blob (a section's payload, or the whole
// file), PAGE bytes at a time, read on demand: a 100 MiB kernel is never read whole.
// Keyboard: the buttons and the offset field are ordinary controls.

import { el, clear } from "../dom.js";
import { state } from "../state.js";
import { $ } from "./common.js";

export const PAGE = 1024; // 64 lines a page

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

/** A paged hex view of `blob.slice(start, start + length)`; offsets shown are file
 *  offsets (`start` onwards). `label` names it for assistive technology. Resolves
 *  once the first page is shown. */
export async function hexViewer(blob, start, length, label) {
  const pages = Math.max(1, Math.ceil(length / PAGE));
  let page = 0;
  let seq = 0;
  const pre = el("pre", { class: "hex", tabindex: "0", "aria-label": `${label}, hex` });
  const where = el("span", { class: "muted hex-where", "aria-live": "polite" });
  const button = (text, aria, to) =>
    el(
      "button",
      { type: "button", class: "small", "aria-label": `${aria} (${label})`, onclick: () => show(to()) },
      text,
    );
  const goto = el("input", {
    type: "text",
    class: "hex-goto",
    spellcheck: "false",
    inputmode: "numeric",
    placeholder: "0x…",
    "aria-label": `Go to offset in ${label}`,
  });
  const go = el("form", { class: "hex-go" }, goto, el("button", { type: "submit", class: "small" }, "Go"));
  go.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = goto.value.trim();
    const off = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^\d+$/.test(v) ? Number(v) : NaN;
    if (Number.isNaN(off)) {
      where.textContent = `“${v}” is not an offset (decimal, or hex with 0x)`;
      return;
    }
    // A file offset inside the range, else an offset from its start.
    const rel = off >= start && off < start + length ? off - start : off;
    show(Math.floor(Math.min(Math.max(rel, 0), Math.max(length - 1, 0)) / PAGE));
  });
  const nav = el(
    "div",
    { class: "hex-nav" },
    button("First", "First page", () => 0),
    button("Previous", "Previous page", () => page - 1),
    button("Next", "Next page", () => page + 1),
    button("Last", "Last page", () => pages - 1),
    go,
    where,
  );
  const box = el("div", { class: "hex-view" }, nav, pre);
  async function show(p) {
    page = Math.min(Math.max(p, 0), pages - 1);
    const mine = ++seq;
    const from = start + page * PAGE;
    const n = Math.min(PAGE, start + length - from);
    const bytes = new Uint8Array(await blob.slice(from, from + n).arrayBuffer());
    if (mine !== seq) return;
    clear(pre).append(hexDump(bytes, from));
    box.dataset.page = String(page);
    where.textContent = `page ${page + 1} of ${pages}, bytes 0x${from.toString(16)}–0x${(from + n).toString(16)} of 0x${start.toString(16)}–0x${(start + length).toString(16)}`;
  }
  await show(0);
  return box;
}

// As a panel (app.js's PANELS): "Hex view of the whole file" under the Summary, read
// when it is opened; a new file closes it.

let shownJob = 0;

export function setup() {
  const body = el("div", { id: "file-hex-body" });
  const details = el("details", { id: "file-hex" }, el("summary", {}, "Hex view of the whole file"), body);
  details.addEventListener("toggle", async () => {
    clear(body);
    const f = state.file;
    if (details.open && f) body.append(await hexViewer(f, 0, f.size, f.name || "file"));
  });
  $("p-summary").append(details);
}

export function render(st) {
  if (st.job === shownJob) return;
  shownJob = st.job;
  const d = $("file-hex");
  if (d && d.open) d.open = false;
}
