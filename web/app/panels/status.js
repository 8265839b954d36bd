// The status line (file name, what the Worker is doing, a progress bar) and the error
// box, rendered from state.status, state.progress and state.error.

import { el, clear, hexNum, size } from "../dom.js";
import { $ } from "./common.js";

export function setup() {}

export function render(st) {
  $("status").hidden = !st.file;
  $("status-name").textContent = st.file ? st.file.name || "pasted file" : "";
  $("status").classList.toggle("busy", st.status.busy);
  const p = $("progress");
  const pr = st.progress;
  let text = st.status.text;
  if (st.status.busy && pr && pr.total) {
    p.hidden = false;
    p.max = pr.total;
    p.value = pr.done;
    const pct = Math.floor((100 * pr.done) / pr.total);
    text = `${cap(pr.what || "working")}: ${pct}% of ${size(pr.total)}`;
  } else if (st.status.busy && pr && pr.what) {
    p.hidden = true;
    text = cap(pr.what) + "…";
  } else {
    p.hidden = true;
  }
  if ($("status-text").textContent !== text) $("status-text").textContent = text;
  renderError(st.error);
}

function cap(s) {
  return s[0].toUpperCase() + s.slice(1);
}

function renderError(m) {
  const box = $("error");
  if (!m) {
    box.hidden = true;
    return;
  }
  clear(box);
  box.append(el("strong", {}, "This file could not be read. "), el("span", { class: "msg" }, m.message));
  const extra = [];
  if (m.kind) extra.push(`kind: ${m.kind}`);
  if (typeof m.offset === "number") extra.push(`at offset ${hexNum(m.offset)}`);
  if (extra.length) box.append(el("div", { class: "muted" }, extra.join(" · ")));
  box.append(el("div", { class: "muted" }, "Drop another file to try again."));
  box.hidden = false;
}
