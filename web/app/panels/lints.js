// Lints: the core's findings, errors first, each with a plain-language note.

import { el, clear, emptyState } from "../dom.js";
import { $ } from "./common.js";

// Plain-language notes for lint ids; the core's one-line message is always shown.
const LINT_HELP = {
  "virtual-size-exceeds-raw": "The stub reads VirtualSize bytes; the bytes past the raw data are zeros, not payload.",
  "no-sbat": "shim refuses images without SBAT data once SBAT revocations are in force.",
  "nx-compat-mismatch": "Firmware enforcing NX may map the kernel's memory non-executable and the boot fails.",
  "image-over-2gib": "Many firmwares fail to load PE images larger than 2 GiB.",
  "trailing-data": "Data after the last section is hashed by Authenticode; signing tools warn about it.",
  "coff-symbol-table": "A COFF symbol table is debugging data: hashed by Authenticode, loaded by nothing.",
};

export function setup() {}

export function render(st) {
  const r = st.report;
  if (st.view !== "pe" || !r) return;
  const box = clear($("lints"));
  if (!r.lints.length) {
    box.append(emptyState("No findings: nothing unusual about this file."));
    return;
  }
  const order = { error: 0, warning: 1, info: 2 };
  const list = el("ul", { class: "lints" });
  for (const l of [...r.lints].sort((a, b) => order[a.severity] - order[b.severity])) {
    const help = LINT_HELP[l.id];
    list.append(
      el(
        "li",
        { class: "lint sev-" + l.severity, "data-lint": l.id },
        el("span", { class: "badge sev" }, l.severity),
        el(
          "div",
          {},
          el("div", {}, l.message),
          el("div", { class: "muted" }, el("code", {}, l.id), help ? " · " + help : ""),
        ),
      ),
    );
  }
  box.append(list);
}
