// The "Compare two files" panel (issue 19, parity with the CLI): `ukitool diff --json
// A B` on two picked files, rendered, and its JSON exported byte for byte.
// A panel (app.js's PANELS): setup(ctx) builds it once.

import { el, clear, size, table } from "../dom.js";
import { download } from "../files.js";
import { TASK } from "../protocol.js";
import { $ } from "./common.js";

let runTask = null;
let lastJson = null;

const code = (t) => el("code", {}, t === null || t === undefined ? "—" : String(t));

function filesTable(d, names) {
  const row = (tag, name, f) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, `${tag}: ${name}`),
      el("td", {}, f.kind),
      el("td", { class: "num" }, size(f.size)),
      el("td", { class: "num" }, String(f.sections)),
      el("td", { class: "num" }, String(f.profiles)),
      el("td", {}, code(f.sha256)),
    );
  return table(
    el("table", { class: "grid", id: "diff-files" }),
    ["File", "Kind", "Size", "Sections", "Profiles", "sha256"],
    [row("A", names[0], d.a), row("B", names[1], d.b)],
  );
}

function sectionRows(d) {
  return d.sections.map((s) =>
    el(
      "tr",
      { "data-change": s.change },
      el("td", {}, s.profile === null ? "" : `@${s.profile}`),
      el("td", {}, code(s.name)),
      el("td", {}, s.change),
      el("td", { class: "num" }, s.a ? size(s.a.size) : "—"),
      el("td", { class: "num" }, s.b ? size(s.b.size) : "—"),
      el("td", {}, s.text_diff ? el("pre", { class: "hex" }, s.text_diff.join("\n")) : ""),
    ),
  );
}

function renderDiff(d, names) {
  const box = clear($("diff-result"));
  const verdict = d.identical
    ? "The files are identical."
    : `The files differ, first at byte ${d.first_difference} (0x${d.first_difference.toString(16)}).`;
  box.append(el("p", { id: "diff-verdict", class: d.identical ? "tone-ok" : "" }, verdict));
  box.append(el("div", { class: "table-wrap" }, filesTable(d, names)));
  if (d.headers.length) {
    box.append(el("h3", {}, "Headers"));
    box.append(
      el(
        "div",
        { class: "table-wrap" },
        table(
          el("table", { class: "grid", id: "diff-headers" }),
          ["Field", "A", "B"],
          d.headers.map((h) => el("tr", {}, el("td", {}, h.field), el("td", {}, code(h.a)), el("td", {}, code(h.b)))),
        ),
      ),
    );
  }
  box.append(el("h3", {}, "Sections"));
  box.append(
    d.sections.length
      ? el(
          "div",
          { class: "table-wrap" },
          table(
            el("table", { class: "grid", id: "diff-sections" }),
            ["Profile", "Section", "Change", "A", "B", "Text"],
            sectionRows(d),
          ),
        )
      : el("p", { class: "muted" }, "No section changed."),
  );
  if (d.kernel && d.kernel.changed) box.append(el("p", {}, "Kernel: ", code(d.kernel.a), " → ", code(d.kernel.b)));
  if (d.signers) {
    const who = (l) => (l.length ? l.map((s) => s.subject || "?").join("; ") : "unsigned");
    box.append(
      el(
        "p",
        {},
        `Signers${d.signers.changed ? " changed" : ""}: A `,
        code(who(d.signers.a)),
        ", B ",
        code(who(d.signers.b)),
      ),
    );
  }
  const pcr = (d.pcr11 || []).filter((p) => p.changed);
  if (d.pcr11)
    box.append(
      el(
        "p",
        {},
        pcr.length
          ? `PCR 11 changes in ${pcr.length} of ${d.pcr11.length} phases.`
          : "PCR 11 is the same in every phase.",
      ),
    );
}

async function compare() {
  const a = $("d-a").files[0];
  const b = $("d-b").files[0];
  const status = $("diff-status");
  const err = $("diff-error");
  err.hidden = true;
  $("diff-export").disabled = true;
  lastJson = null;
  if (!a || !b) {
    err.textContent = "Pick two files to compare.";
    err.hidden = false;
    return;
  }
  status.textContent = "Comparing…";
  try {
    const r = await runTask({ type: TASK.DIFF, a, b });
    lastJson = r.json;
    renderDiff(JSON.parse(r.json), [a.name, b.name]);
    status.textContent = "";
    $("diff-export").disabled = false;
  } catch (e) {
    clear($("diff-result"));
    status.textContent = "";
    err.textContent = `Could not compare: ${e.message}`;
    err.hidden = false;
  }
}

/** A file field in a dashed box; a file dropped on it lands in it (drop.js). */
function dropSlot(tag, id) {
  return el(
    "div",
    { class: "drop-slot", id: `${id}-drop`, "data-drop-for": id },
    el(
      "label",
      {},
      `File ${tag}`,
      el("span", { class: "muted" }, " (pick, or drop a file here)"),
      el("input", { type: "file", id }),
    ),
  );
}

export function render() {}

export function setup(ctx) {
  runTask = ctx.runTask;
  const toggle = el(
    "button",
    { type: "button", id: "diff-toggle", "aria-expanded": "false", "aria-controls": "p-diff" },
    "Compare two files…",
  );
  $("build-toggle").after(toggle);
  const form = el(
    "form",
    { id: "diff-form", class: "form-grid", "aria-labelledby": "h-diff" },
    dropSlot("A", "d-a"),
    dropSlot("B", "d-b"),
    el(
      "div",
      { class: "wide form-actions" },
      el("button", { type: "submit", id: "diff-run", class: "primary" }, "Compare"),
      el("button", { type: "button", id: "diff-export", disabled: true }, "Export JSON"),
      el("span", { id: "diff-status", class: "muted", role: "status" }),
      el("p", { id: "diff-error", class: "form-error tone-err wide", role: "alert", hidden: true }),
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    compare();
  });
  const panel = el(
    "section",
    { id: "p-diff", class: "panel", "aria-labelledby": "h-diff", hidden: true },
    el("h2", { id: "h-diff" }, "Compare two files"),
    el(
      "p",
      { class: "muted" },
      "What changed between two PEs or UKIs: headers, sections, kernel, signers and PCR 11, as ukitool diff reports it.",
    ),
    form,
    el("div", { id: "diff-result" }),
  );
  $("p-build").after(panel);
  $("diff-export").addEventListener("click", () => {
    if (lastJson) download(new Blob([lastJson + "\n"], { type: "application/json" }), "diff.json");
  });
  toggle.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) panel.scrollIntoView({ block: "start" });
  });
}
