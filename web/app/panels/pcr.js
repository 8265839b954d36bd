// PCR 11: what systemd-stub will measure, per bank and boot phase (= `ukitool measure
// --json`), and the .pcrsig check.

import { el, clear, copyButton, table, emptyState } from "../dom.js";
import { download } from "../files.js";
import { state, baseName } from "../state.js";
import { $, onAction, yesNo } from "./common.js";

export function setup() {
  onAction($("pcr"), {
    "pcr-export": () =>
      download(new Blob([state.pcrJson + "\n"], { type: "application/json" }), `${baseName()}.measure.json`),
  });
}

export function render(st) {
  const r = st.report;
  if (st.view !== "pe" || !r) return;
  const box = clear($("pcr"));
  const { pcr, pcrCheck } = st;
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
  box.append(
    el(
      "p",
      { class: "muted" },
      "What systemd-stub will measure into PCR 11 for this UKI, at each boot phase, the same numbers as ",
      el("code", {}, "ukitool measure --json"),
      " and ",
      el("code", {}, "systemd-measure calculate"),
      ".",
    ),
  );
  const rows = [];
  for (const [bank, preds] of Object.entries(pcr)) {
    rows.push(el("tr", { class: "group" }, el("th", { colspan: "3", scope: "rowgroup" }, bank)));
    for (const p of preds) {
      rows.push(
        el(
          "tr",
          { "data-bank": bank, "data-phase": p.phase },
          el("td", {}, el("code", { class: "phase" }, p.phase)),
          el("td", { class: "num" }, String(p.pcr)),
          el(
            "td",
            {},
            el(
              "span",
              { class: "hash-cell wrap" },
              el("code", { class: "pcr-hash" }, p.hash),
              copyButton(p.hash, `Copy ${bank} ${p.phase}`),
            ),
          ),
        ),
      );
    }
  }
  box.append(
    el(
      "div",
      { class: "table-wrap" },
      table(el("table", { class: "grid", id: "pcr-table" }), ["Phase", "PCR", "Value"], rows),
    ),
  );
  box.append(
    el(
      "div",
      { class: "form-actions" },
      el("button", { type: "button", id: "pcr-export", "data-action": "pcr-export" }, "Export measure JSON"),
    ),
  );
  if (pcrCheck && (pcrCheck.pcrsig || pcrCheck.pcrsig_error)) {
    box.append(el("h3", {}, ".pcrsig check"));
    if (pcrCheck.pcrsig_error) {
      box.append(el("p", { class: "tone-err", id: "pcrsig-result" }, pcrCheck.pcrsig_error));
    } else {
      const p = pcrCheck.pcrsig;
      const ok = p.entries.filter((e) => !e.problem).length;
      box.append(
        el(
          "p",
          { id: "pcrsig-result", class: p.valid ? "tone-ok" : "tone-err" },
          `${p.valid ? "valid" : "INVALID"}: ${ok}/${p.entries.length} signed policies check out against .pcrpkey (key ${p.key_fingerprint.slice(0, 16)}…)`,
        ),
      );
      const er = p.entries.map((e) =>
        el(
          "tr",
          {},
          el("td", {}, e.bank),
          el("td", {}, e.pcrs.join(",")),
          el("td", {}, el("code", { class: "hash" }, e.pol.slice(0, 24) + "…")),
          el("td", {}, yesNo(e.signature_valid, "valid", "invalid")),
          el("td", {}, e.pol_predicted === null ? "—" : yesNo(e.pol_predicted, "matches", "stale")),
          el("td", {}, e.problem || ""),
        ),
      );
      box.append(
        el(
          "div",
          { class: "table-wrap" },
          table(el("table", { class: "grid" }), ["Bank", "PCRs", "Policy", "Signature", "Prediction", "Problem"], er),
        ),
      );
    }
  }
}
