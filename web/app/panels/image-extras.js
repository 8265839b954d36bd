// The disk image builder's "More options" (issue 19, parity with `ukitool image`):
// --entry-name, --timeout, --disk-guid, --grub-prefix, --shim (grub layout),
// --add-file SRC:ESP_PATH and --enroll-keys DIR. A panel (app.js's PANELS): setup
// adds the fields once; panels/image.js merges imageExtras() into the image's options
// and inputs. An empty field takes the core's default, as a flag left out does.

import { el } from "../dom.js";
import { $ } from "./common.js";
// --enroll-keys DIR reads these, in this order (cli/src/image.rs).
const ENROL_FILES = ["PK.auth", "KEK.auth", "db.auth", "dbx.auth"];

function field(label, hint, input) {
  return el("label", {}, label, hint ? el("span", { class: "muted" }, ` (${hint})`) : null, input);
}

const text = (id, placeholder) => el("input", { type: "text", id, spellcheck: "false", placeholder });

export function render() {}

export function setup() {
  const box = el(
    "details",
    { id: "i-more", class: "wide" },
    el(
      "summary",
      {},
      "More options ",
      el(
        "span",
        { class: "muted" },
        "(entry name, timeout, disk GUID, GRUB prefix, shim, files on the ESP, key enrolment files)",
      ),
    ),
    el(
      "div",
      { class: "form-grid" },
      field("Entry name", "--entry-name; empty: the UKI's file name", text("i-entry-name", "from the file name")),
      field(
        "Boot menu timeout",
        "--timeout, seconds; empty: the default",
        el("input", { type: "number", id: "i-timeout", min: "0", inputmode: "numeric", placeholder: "default" }),
      ),
      field("Disk GUID", "--disk-guid; empty: from the label", text("i-disk-guid", "from the label")),
      field("GRUB prefix", "--grub-prefix; empty: GRUB's built-in", text("i-grub-prefix", "built-in")),
      field("shim", "--shim, before GRUB (grub layout)", el("input", { type: "file", id: "i-shim-grub" })),
      field(
        "Files on the ESP",
        "--add-file SRC:ESP_PATH",
        el("input", { type: "file", id: "i-esp-files", multiple: true }),
      ),
      field("…put under", "an ESP folder, e.g. EFI/tools", text("i-esp-dir", "/")),
      field(
        "Key enrolment files",
        "--enroll-keys DIR: PK.auth KEK.auth db.auth dbx.auth",
        el("input", { type: "file", id: "i-enroll-keys", multiple: true }),
      ),
    ),
  );
  $("image-form").querySelector(".form-actions").before(box);
}

/** `{options, inputs}` for the image: only what was filled in. Throws on a key
 *  enrolment file that --enroll-keys would not read. */
export function imageExtras() {
  if (!$("i-more")) return { options: {}, inputs: [] };
  const options = {};
  const v = (id) => $(id).value.trim();
  if (v("i-entry-name")) options.entry_name = v("i-entry-name");
  if (v("i-timeout")) options.timeout = Number(v("i-timeout"));
  if (v("i-disk-guid")) options.disk_guid = v("i-disk-guid");
  if (v("i-grub-prefix")) options.grub_prefix = v("i-grub-prefix");
  const inputs = [];
  const shim = $("i-shim-grub").files[0];
  if (shim && $("i-layout").value !== "talos") inputs.push({ role: "shim", name: shim.name, file: shim });
  const dir = v("i-esp-dir").replace(/^\/+|\/+$/g, "");
  for (const f of $("i-esp-files").files)
    inputs.push({ role: "esp-file", name: dir ? `${dir}/${f.name}` : f.name, file: f });
  const keys = Array.from($("i-enroll-keys").files);
  const odd = keys.filter((f) => !ENROL_FILES.includes(f.name));
  if (odd.length)
    throw new Error(
      `key enrolment files must be named ${ENROL_FILES.join(", ")}, not ${odd.map((f) => f.name).join(", ")}`,
    );
  for (const name of ENROL_FILES) {
    const f = keys.find((k) => k.name === name);
    if (f) inputs.push({ role: "enroll-key", name, file: f });
  }
  return { options, inputs };
}
