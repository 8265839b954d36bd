// Signatures: the Authenticode verdict (= `ukitool verify --json`), each signature,
// and the trust anchors the page checks chains against. Anchors are kept when another
// file is opened (state.anchorFiles, sent with each new job).

import { el, clear, hexNum, copyButton, factList, table, emptyState } from "../dom.js";
import { download } from "../files.js";
import { state, baseName } from "../state.js";
import { $, onAction, verdictBadge, yesNo } from "./common.js";

let ctx = null;

export function setup(c) {
  ctx = c;
  const box = $("signatures");
  onAction(box, {
    "anchor-add": () => $("anchor-file").click(),
    "anchor-clear": () => ctx.clearAnchors(),
    "verify-export": () => exportVerify(),
  });
  box.addEventListener("change", (e) => {
    if (e.target.id !== "anchor-file") return;
    ctx.addAnchors(Array.from(e.target.files));
    e.target.value = "";
  });
}

export function render(st) {
  if (st.view !== "pe" || !st.report) return;
  const r = st.report;
  const box = clear($("signatures"));
  const v = st.verify;
  if (!v) {
    box.append(emptyState(r.pe.certificate_table ? "Checking the signatures…" : "Computing the Authenticode hash…"));
    return;
  }
  box.append(
    el(
      "div",
      { class: "verdict-line" },
      verdictBadge(v.verdict, "verdict"),
      el("span", { id: "verdict-reason" }, v.reason),
    ),
  );
  const digests = Object.entries(v.image_digests).map(([alg, d]) =>
    el(
      "div",
      { class: "codeline" },
      el("span", { class: "alg" }, alg),
      el("code", { "data-image-digest": alg }, d),
      copyButton(d, `Copy the ${alg} image digest`),
    ),
  );
  if (digests.length) {
    box.append(el("h3", {}, "Authenticode image digest"));
    box.append(...digests);
  }
  if (!v.signatures.length && v.verdict === "unsigned") {
    box.append(
      el(
        "p",
        { class: "muted" },
        "No certificate table. Secure Boot refuses this file unless the SHA-256 digest above is enrolled in db.",
      ),
    );
  }
  for (const s of v.signatures) box.append(signatureCard(s));
  box.append(anchorBox(st));
  if (st.verifyMs !== null)
    box.append(
      el(
        "p",
        { class: "muted small-print" },
        `Checked in ${Math.round(st.verifyMs)} ms (the file streamed through ${engineName(st)}).`,
      ),
    );
}

// Trust anchors: certificates or a db, checked client-side.
function anchorBox(st) {
  const box = el("div", { class: "anchors" });
  box.append(el("h3", { id: "h-anchors" }, "Trust anchors"));
  if (st.anchors.length) {
    box.append(el("ul", { class: "plain", id: "anchor-list" }, ...st.anchors.map((a) => el("li", {}, a))));
  } else {
    box.append(
      el(
        "p",
        { class: "muted" },
        "None: a valid signature is “valid, not trusted”. Add the certificate or db your firmware trusts to check the chain.",
      ),
    );
  }
  const input = el("input", {
    type: "file",
    id: "anchor-file",
    hidden: true,
    multiple: true,
    accept: ".pem,.crt,.cer,.der,.esl,.auth,.db,.bin,*/*",
  });
  const actions = el(
    "div",
    { class: "form-actions" },
    el("button", { type: "button", id: "anchor-add", "data-action": "anchor-add" }, "Add trust anchor…"),
    st.anchors.length
      ? el("button", { type: "button", id: "anchor-clear", "data-action": "anchor-clear" }, "Clear anchors")
      : "",
    el("button", { type: "button", id: "verify-export", "data-action": "verify-export" }, "Export verify JSON"),
    el("span", { class: "muted" }, "PEM or DER certificates, or an EFI signature list / db / .auth file."),
    input,
  );
  const note = st.anchorNote;
  box.append(
    actions,
    el(
      "p",
      { id: "anchor-msg", class: note && note.error ? "tone-err" : "muted", role: "status" },
      note ? note.text : "",
    ),
  );
  return box;
}

function engineName(st) {
  return st.speeds && st.speeds.webcrypto >= st.speeds.wasm ? "WebCrypto" : "wasm sha2";
}

function signatureCard(s) {
  const c = s.signer;
  const title = `Signature ${s.index + 1}` + (s.nested_in !== null ? ` (nested in ${s.nested_in + 1})` : "");
  const card = el("article", { class: "sig", "data-index": String(s.index) });
  card.append(
    el(
      "header",
      {},
      el("h4", {}, title),
      verdictBadge(s.verdict),
      el("code", { class: "muted" }, `at ${hexNum(s.offset)}`),
    ),
  );
  const rows = [];
  if (c) {
    rows.push(["Signer", el("span", { class: "signer-cn" }, c.subject_cn || c.subject)]);
    rows.push(["Issuer", el("span", { class: "issuer-cn" }, c.issuer_cn || c.issuer)]);
    rows.push(["Serial", el("code", {}, c.serial)]);
    rows.push([
      "Validity",
      `${c.not_before || "?"} → ${c.not_after || "?"} (not enforced: firmware has no trusted clock)`,
    ]);
  } else {
    rows.push(["Signer", el("span", { class: "muted" }, "not found among the embedded certificates")]);
  }
  rows.push(["Digest algorithm", s.digest_algorithm]);
  if (s.signed_digest) {
    rows.push([
      "Signed digest",
      el(
        "span",
        {},
        el("code", { class: "hash" }, s.signed_digest),
        " ",
        yesNo(s.digest_matches, "matches the image", "differs from the image"),
      ),
    ]);
  }
  rows.push(["messageDigest", yesNo(s.message_digest_matches, "matches the content", "does not match")]);
  rows.push(["Signature", yesNo(s.signature_valid, "valid", "invalid")]);
  if (s.chain.length) {
    const chain = el("ol", { class: "chain" }, ...s.chain.map((cn) => el("li", {}, cn)));
    if (!s.trusted_by && s.chain_ends_at)
      chain.append(el("li", { class: "muted" }, `${s.chain_ends_at} (not an anchor)`));
    rows.push(["Chain", chain]);
  }
  if (s.trusted_by) rows.push(["Trusted by", el("span", { class: "tone-ok" }, s.trusted_by)]);
  if (s.signing_time) rows.push(["Signed at", s.signing_time]);
  if (s.program_name) rows.push(["Program", s.program_name]);
  for (const t of s.timestamps) rows.push(["Timestamp", `${t.kind} ${t.time || "?"} by ${t.signer_issuer_cn || "?"}`]);
  rows.push(["Reason", el("span", { class: "sig-reason" }, s.reason)]);
  card.append(factList(el("dl", { class: "facts" }), rows));
  if (s.certificates.length) {
    const list = s.certificates.map((x) =>
      el(
        "tr",
        {},
        el("td", {}, x.subject_cn || x.subject),
        el("td", {}, x.issuer_cn || x.issuer),
        el("td", {}, el("code", {}, x.serial)),
        el("td", { class: "num" }, (x.not_after || "").slice(0, 10)),
      ),
    );
    card.append(
      el(
        "details",
        {},
        el("summary", {}, `Embedded certificates (${s.certificates.length})`),
        el(
          "div",
          { class: "table-wrap" },
          table(el("table", { class: "grid" }), ["Subject", "Issuer", "Serial", "Expires"], list),
        ),
      ),
    );
  }
  return card;
}

function exportVerify() {
  if (!state.verifyJson) return;
  download(new Blob([state.verifyJson + "\n"], { type: "application/json" }), `${baseName()}.verify.json`);
}
