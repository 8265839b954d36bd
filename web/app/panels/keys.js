// The "Secure Boot keys and signing" panel (issue 18, the page): create a key set
// (WebCrypto key generation, certified by the core as `ukitool keys create`), or load
// a key directory's files; export PK, KEK, db as .esl and .auth (`ukitool keys
// export`); sign a PE with a key file, or in two steps (`sign
// --export-signed-attributes`, then `--attach`). The image builder's Secure Boot
// fieldset (`image --secure-boot-keys DIR --secure-boot-enroll MODE`) uses the same
// key set. Private keys stay in this page: they are offered for download, never sent.
//
// A panel (app.js's PANELS): setup(ctx) builds it and its image fieldset once;
// panels/image.js asks secureBootImage() for the image's options and inputs.

import { el, clear, size } from "../dom.js";
import { download } from "../files.js";
import { TASK } from "../protocol.js";
import { $ } from "./common.js";

let runTask = null;
// The key set in use: [[name, Blob|File]] (PK.key PK.crt KEK.key KEK.crt db.key db.crt
// GUID), from "Create keys" or from the files loaded.
let keySet = null;

const KEY_FILES = ["PK.key", "PK.crt", "KEK.key", "KEK.crt", "db.key", "db.crt"];
const ENROLL_MODES = ["off", "manual", "if-safe", "force"];

function field(label, hint, input) {
  return el("label", {}, label, hint ? el("span", { class: "muted" }, ` (${hint})`) : null, input);
}

function textInput(id, attrs = {}) {
  return el("input", { type: "text", id, spellcheck: "false", ...attrs });
}

function fileInput(id, attrs = {}) {
  return el("input", { type: "file", id, ...attrs });
}

/** A form's status line and its error line: one clear error, in place. */
function statusPair(prefix) {
  return [
    el("span", { id: `${prefix}-status`, class: "muted", role: "status" }),
    el("p", { id: `${prefix}-error`, class: "form-error tone-err wide", role: "alert", hidden: true }),
  ];
}

function setStatus(prefix, text) {
  $(`${prefix}-status`).textContent = text;
  const e = $(`${prefix}-error`);
  e.hidden = true;
  e.textContent = "";
}

function setError(prefix, what, err) {
  $(`${prefix}-status`).textContent = "";
  const e = $(`${prefix}-error`);
  e.textContent = `${what}: ${err && err.message ? err.message : err}`;
  e.hidden = false;
}

/** Whole seconds from a field; empty gives `fallback`. */
function seconds(id, fallback) {
  const v = $(id).value.trim();
  if (v === "") return fallback;
  if (!/^\d+$/.test(v))
    throw new Error(`${$(id).dataset.name || id}: whole seconds since 1970 expected, not ${JSON.stringify(v)}`);
  return Number(v);
}

const now = () => Math.floor(Date.now() / 1000);

/** A list of files, each with its Download button. */
function fileList(id, files, caption) {
  const box = clear($(id));
  box.append(el("p", { class: "muted" }, caption));
  const rows = files.map(([name, blob]) =>
    el(
      "li",
      {},
      el("code", {}, name),
      ` (${size(blob.size)}) `,
      el(
        "button",
        { type: "button", class: "small", "aria-label": `Download ${name}`, onclick: () => download(blob, name) },
        "Download",
      ),
    ),
  );
  box.append(el("ul", { class: "plain files" }, ...rows));
}

function createSection() {
  const algorithm = el(
    "select",
    { id: "k-algorithm" },
    ...["rsa2048", "rsa3072", "rsa4096"].map((a) => el("option", { value: a }, a)),
  );
  const form = el(
    "form",
    { id: "keys-create-form", class: "form-grid", "aria-labelledby": "h-keys-create" },
    field("Name", "in every subject: CN=NAME Platform Key, O=NAME", textInput("k-name", { value: "ukitool" })),
    field("Algorithm", "firmware verifies RSA only", algorithm),
    field("Owner GUID", "empty: a random one", textInput("k-owner", { placeholder: "random" })),
    field(
      "Valid days",
      null,
      el("input", { type: "number", id: "k-valid-days", value: "3650", min: "1", inputmode: "numeric" }),
    ),
    field(
      "Not before",
      "Unix seconds; empty: now",
      textInput("k-not-before", { inputmode: "numeric", placeholder: "now", "data-name": "Not before" }),
    ),
    el(
      "div",
      { class: "wide form-actions" },
      el("button", { type: "submit", id: "keys-create", class: "primary" }, "Create keys"),
      ...statusPair("keys-create"),
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    createKeys();
  });
  const load = fileInput("k-load", { multiple: true });
  load.addEventListener("change", () => loadKeys(Array.from(load.files)));
  return [
    el("h3", { id: "h-keys-create" }, "Create keys"),
    form,
    el(
      "div",
      { class: "form-grid" },
      field("…or load a key directory", "PK.key PK.crt KEK.key KEK.crt db.key db.crt, and GUID", load),
    ),
    el("div", { id: "keys-files" }),
  ];
}

async function createKeys() {
  $("keys-create").disabled = true;
  setStatus("keys-create", "Generating RSA keys with WebCrypto…");
  try {
    const owner = $("k-owner").value.trim();
    const options = {
      name: $("k-name").value,
      algorithm: $("k-algorithm").value,
      owner_guid: owner === "" ? null : owner,
      not_before: seconds("k-not-before", now()),
      valid_days: Number($("k-valid-days").value),
    };
    const r = await runTask({ type: TASK.KEYS_CREATE, options });
    keySet = r.files;
    const created = JSON.parse(r.created);
    setStatus(
      "keys-create",
      `Created PK, KEK and db (${created.algorithm}), owner ${created.owner}. Download the private keys to keep them: they exist only in this page.`,
    );
    fileList("keys-files", keySet, "The key directory (as ukitool keys create writes it):");
    keysChanged();
  } catch (e) {
    setError("keys-create", "Could not create the keys", e);
  } finally {
    $("keys-create").disabled = false;
  }
}

function loadKeys(files) {
  const names = files.map((f) => f.name);
  const missing = KEY_FILES.filter((n) => !names.includes(n));
  if (missing.length) {
    setError(
      "keys-create",
      "Could not load the key directory",
      `${missing.join(", ")} missing (pick every file of the directory)`,
    );
    return;
  }
  keySet = files.filter((f) => KEY_FILES.includes(f.name) || f.name === "GUID").map((f) => [f.name, f]);
  setStatus("keys-create", `Loaded ${keySet.length} files: ${keySet.map(([n]) => n).join(" ")}.`);
  clear($("keys-files"));
  keysChanged();
}

function keysChanged() {
  $("keys-export").disabled = !keySet;
  $("i-sb-use").disabled = !keySet;
  $("i-sb-note").textContent = keySet
    ? "The key set from “Secure Boot keys” is ready."
    : "Create or load keys under “Secure Boot keys…” first.";
}

function exportSection() {
  const form = el(
    "form",
    { id: "keys-export-form", class: "form-grid", "aria-labelledby": "h-keys-export" },
    field(
      ".auth timestamp",
      "Unix seconds; empty: now",
      textInput("k-export-timestamp", { inputmode: "numeric", placeholder: "now", "data-name": "The .auth timestamp" }),
    ),
    field(
      "Also trust in db",
      "certificates or .esl files, e.g. Microsoft's CAs",
      fileInput("k-append-db", { multiple: true }),
    ),
    field("dbx contents", ".esl or certificates; none: no dbx", fileInput("k-dbx", { multiple: true })),
    el(
      "div",
      { class: "wide form-actions" },
      el("button", { type: "submit", id: "keys-export", class: "primary", disabled: true }, "Export .esl and .auth"),
      ...statusPair("keys-export"),
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    exportKeys();
  });
  return [el("h3", { id: "h-keys-export" }, "Export PK, KEK and db"), form, el("div", { id: "keys-export-files" })];
}

const named = (files) => files.map(([name, file]) => ({ name, file }));
const picked = (id) => Array.from($(id).files).map((file) => ({ name: file.name, file }));

async function exportKeys() {
  $("keys-export").disabled = true;
  setStatus("keys-export", "Signing…");
  try {
    const r = await runTask({
      type: TASK.KEYS_EXPORT,
      keys: named(keySet),
      appendDb: picked("k-append-db"),
      dbx: picked("k-dbx"),
      timestamp: seconds("k-export-timestamp", now()),
    });
    const ex = JSON.parse(r.exported);
    setStatus(
      "keys-export",
      `Exported ${ex.variables.map((v) => `${v.name} (${v.entries} entr${v.entries === 1 ? "y" : "ies"}, signed by ${v.signed_by})`).join(", ")} at ${ex.timestamp}.`,
    );
    fileList(
      "keys-export-files",
      r.files,
      "Signature lists and authenticated variables (as ukitool keys export writes them):",
    );
  } catch (e) {
    clear($("keys-export-files"));
    setError("keys-export", "Could not export", e);
  } finally {
    $("keys-export").disabled = !keySet;
  }
}

function signSection() {
  const form = el(
    "form",
    { id: "sign-form", class: "form-grid", "aria-labelledby": "h-sign" },
    field("PE file", "a UKI, systemd-boot, a kernel…", fileInput("s-file")),
    field("Certificate", "PEM or DER; the first of a PEM file", fileInput("s-cert")),
    field(
      "Signing time",
      "Unix seconds; empty: none",
      textInput("s-time", { inputmode: "numeric", placeholder: "none", "data-name": "Signing time" }),
    ),
    el(
      "label",
      { class: "check" },
      el("input", { type: "checkbox", id: "s-append" }),
      " Add to the signatures already there (--append)",
    ),
    el(
      "fieldset",
      { class: "wide parts" },
      el("legend", {}, "With a key file"),
      el(
        "div",
        { class: "form-grid" },
        field("Private key", "PEM", fileInput("s-key")),
        el(
          "div",
          { class: "form-actions" },
          el("button", { type: "submit", id: "sign-key", class: "primary" }, "Sign and download"),
        ),
      ),
    ),
    el(
      "fieldset",
      { class: "wide parts" },
      el("legend", {}, "In two steps, with an outside signer (a token, an HSM, openssl pkeyutl)"),
      el(
        "div",
        { class: "form-grid" },
        el(
          "div",
          { class: "form-actions" },
          el("button", { type: "button", id: "sign-attributes" }, "1. Download the signed attributes"),
        ),
        field("2. Their signature", "SHA-256 with the certificate's key, raw bytes", fileInput("s-signature")),
        el(
          "div",
          { class: "form-actions" },
          el("button", { type: "button", id: "sign-attach" }, "3. Attach and download"),
        ),
      ),
    ),
    el("div", { class: "wide form-actions" }, ...statusPair("sign")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sign("key");
  });
  form.querySelector("#sign-attributes").addEventListener("click", () => sign("attributes"));
  form.querySelector("#sign-attach").addEventListener("click", () => sign("attach"));
  return [el("h3", { id: "h-sign" }, "Sign a PE"), form];
}

const SIGN_STEPS = {
  key: { type: TASK.SIGN_PE, needs: ["s-file", "s-key", "s-cert"], name: (b) => `${b}.signed.efi`, done: "Signed" },
  attributes: {
    type: TASK.SIGN_ATTRIBUTES,
    needs: ["s-file"],
    name: (b) => `${b}.signed-attributes.der`,
    done: "Wrote the signed attributes to sign:",
  },
  attach: {
    type: TASK.SIGN_ATTACH,
    needs: ["s-file", "s-cert", "s-signature"],
    name: (b) => `${b}.signed.efi`,
    done: "Attached the signature:",
  },
};

const LABELS = {
  "s-file": "a PE file",
  "s-key": "a private key",
  "s-cert": "a certificate",
  "s-signature": "the signature",
};

async function sign(step) {
  const s = SIGN_STEPS[step];
  const file = (id) => $(id).files[0];
  try {
    const missing = s.needs.filter((id) => !file(id)).map((id) => LABELS[id]);
    if (missing.length) throw new Error(`${missing.join(", ")} needed`);
    setStatus("sign", "Signing…");
    const base = file("s-file").name.replace(/\.(efi|EFI)$/, "");
    const r = await runTask({
      type: s.type,
      file: file("s-file"),
      key: file("s-key"),
      cert: file("s-cert"),
      signature: file("s-signature"),
      append: $("s-append").checked,
      signingTime: seconds("s-time", null),
    });
    const name = s.name(base);
    download(r.blob, name);
    setStatus("sign", `${s.done} ${name} (${size(r.blob.size)}).`);
  } catch (e) {
    setError("sign", "Could not sign", e);
  }
}

/** The image builder's Secure Boot fieldset, put before its buttons. */
function imageFieldset() {
  const mode = el(
    "select",
    { id: "i-sb-enroll" },
    el("option", { value: "" }, "default: if-safe (manual for systemd-boot 252)"),
    ...ENROLL_MODES.map((m) => el("option", { value: m }, m)),
  );
  return el(
    "fieldset",
    { id: "i-sb", class: "wide parts" },
    el(
      "legend",
      {},
      "Secure Boot ",
      el(
        "span",
        { class: "muted" },
        "(systemd-boot and talos layouts, as --secure-boot-keys DIR --secure-boot-enroll MODE)",
      ),
    ),
    el(
      "div",
      { class: "form-grid" },
      el(
        "label",
        { class: "check" },
        el("input", { type: "checkbox", id: "i-sb-use", disabled: true }),
        " Sign with db and enrol PK, KEK and db",
      ),
      field("Enrol mode", "loader.conf secure-boot-enroll", mode),
      el("p", { id: "i-sb-note", class: "muted wide" }, "Create or load keys under “Secure Boot keys…” first."),
    ),
  );
}

/** `{options, inputs}` for the disk image: `secure_boot_enroll` and the key set's
 *  files (role "secure-boot-key"), or nothing when the box is not ticked. */
export function secureBootImage() {
  if (!$("i-sb-use") || !$("i-sb-use").checked || !keySet) return { options: {}, inputs: [] };
  return {
    options: { secure_boot_enroll: $("i-sb-enroll").value || null },
    inputs: keySet.map(([name, file]) => ({ role: "secure-boot-key", name, file })),
  };
}

export function render() {}

export function setup(ctx) {
  runTask = ctx.runTask;
  const toggle = el(
    "button",
    { type: "button", id: "keys-toggle", "aria-expanded": "false", "aria-controls": "p-keys" },
    "Secure Boot keys…",
  );
  $("build-toggle").after(toggle);
  const panel = el(
    "section",
    { id: "p-keys", class: "panel", "aria-labelledby": "h-keys", hidden: true },
    el("h2", { id: "h-keys" }, "Secure Boot keys and signing"),
    el(
      "p",
      { class: "muted" },
      "The same as ukitool keys create, keys export and sign. Keys are generated by this browser (WebCrypto) and never leave the page: download the private keys to keep them.",
    ),
    ...createSection(),
    ...exportSection(),
    ...signSection(),
  );
  $("p-build").after(panel);
  toggle.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) panel.scrollIntoView({ block: "start" });
  });
  const actions = $("image-form").querySelector(".form-actions");
  actions.before(imageFieldset());
}
