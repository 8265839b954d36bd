// PCR 11: what systemd-stub will measure, per bank and boot phase (= `ukitool measure
// --json`), and the .pcrsig check.

import { el, clear, copyButton, table, emptyState } from "../dom.js";
import { download } from "../files.js";
import { state, baseName } from "../state.js";
import { $, onAction, yesNo } from "./common.js";

let ctx = null;

export function setup(c) {
  ctx = c;
  onAction($("pcr"), {
    "pcr-export": () => {
      const at = state.pcrProfile === null ? "" : `@${state.pcrProfile}`;
      download(new Blob([state.pcrJson + "\n"], { type: "application/json" }), `${baseName()}${at}.measure.json`);
    },
  });
  $("pcr").addEventListener("change", (e) => {
    if (e.target.id === "pcr-profile") ctx.pcrProfile(Number(e.target.value));
  });
}

// A UKI with profiles: which one the table is for (= `ukitool measure --profile N`).
function profileSelect(st) {
  const profiles = st.report.profiles;
  if (!profiles.length) return null;
  const shown = st.pcrProfile === null ? 0 : st.pcrProfile;
  const options = profiles.map((p) =>
    el(
      "option",
      { value: String(p.index), selected: p.index === shown },
      `@${p.index}${p.id ? " " + p.id : ""}${p.title ? " (" + p.title + ")" : ""}`,
    ),
  );
  return el(
    "div",
    { class: "form-actions" },
    el("label", { for: "pcr-profile" }, "Profile"),
    el("select", { id: "pcr-profile" }, ...options),
    el("span", { class: "muted" }, "as ", el("code", {}, `ukitool measure --profile ${shown}`), "; @0 is the default"),
  );
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
  const select = profileSelect(st);
  if (select) box.append(select);
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
