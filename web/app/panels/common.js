// Labels and small pieces several panels share.

import { el } from "../dom.js";

export const $ = (id) => document.getElementById(id);

export const MAX_ROWS = 256; // table rows rendered per list

export const KIND_LABEL = {
  uki: "Unified Kernel Image",
  addon: "UKI addon",
  "efi-stub-kernel": "Linux kernel (EFI stub)",
  "efibootguard-unified": "EFI Boot Guard unified image",
  pe: "EFI / PE binary",
};

/** "1 warning", "2 warnings". */
export function plural(n, one, many = one + "s") {
  return `${n} ${n === 1 ? one : many}`;
}

const VERDICT_TEXT = {
  unsigned: "unsigned",
  "valid-trusted": "valid, trusted",
  "valid-untrusted": "valid, not trusted",
  revoked: "revoked",
  "hash-mismatch": "hash mismatch",
  "bad-signature": "bad signature",
  malformed: "malformed",
};

export function verdictBadge(v, id) {
  const tone = v === "valid-trusted" ? "ok" : v === "valid-untrusted" || v === "unsigned" ? "warn" : "err";
  return el("span", { class: `badge verdict tone-${tone}`, "data-verdict": v, id }, VERDICT_TEXT[v] || v);
}

export function yesNo(v, yes, no) {
  if (v === null || v === undefined) return el("span", { class: "muted" }, "not checked");
  return el("span", { class: v ? "tone-ok" : "tone-err" }, v ? yes : no);
}

/** Wire a delegated click handler: `actions[name](button, event)` for a click on an
 *  element with data-action=name inside `root`. */
export function onAction(root, actions) {
  root.addEventListener("click", (e) => {
    const b = e.target.closest("[data-action]");
    if (!b || !root.contains(b)) return;
    const fn = actions[b.dataset.action];
    if (fn) fn(b, e);
  });
}
