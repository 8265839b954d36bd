// The UKI builder's parity with `ukitool build` (issue 19): ucode, splash, uname, sbat,
// devicetree, an extra section (--section), profiles and .pcrsig signing (--pcr-key, --pcr-bank, --phase), and an
// initrd order that is shown and can be changed (the initrds are concatenated in
// that order, as repeated --initrd are). panels/build.js calls setupUkiExtras() once
// and sends ukiBuildMessage() to the Worker (TASK.BUILD_UKI, see tools-worker.js).

import { el, clear, size } from "../dom.js";
import { TASK } from "../protocol.js";
import { $ } from "./common.js";
const BANKS = ["sha1", "sha256", "sha384", "sha512"];
let initrds = []; // File, in the order they are concatenated
let profiles = 0;

function field(label, hint, input, cls) {
  return el("label", { class: cls }, label, hint ? el("span", { class: "muted" }, ` (${hint})`) : null, input);
}

function renderInitrds() {
  const list = clear($("b-initrd-order"));
  $("b-initrd-none").hidden = initrds.length > 0;
  initrds.forEach((f, i) => {
    const move = (to) => {
      const [x] = initrds.splice(i, 1);
      initrds.splice(to, 0, x);
      renderInitrds();
      const target = list.children[to] && list.children[to].querySelector(to < i ? ".up" : ".down");
      (target && !target.disabled ? target : list.children[to].querySelector("button")).focus();
    };
    list.append(
      el(
        "li",
        { "data-name": f.name },
        el("code", {}, f.name),
        ` (${size(f.size)}) `,
        el(
          "button",
          {
            type: "button",
            class: "small up",
            disabled: i === 0,
            "aria-label": `Move ${f.name} up`,
            onclick: () => move(i - 1),
          },
          "Up",
        ),
        el(
          "button",
          {
            type: "button",
            class: "small down",
            disabled: i === initrds.length - 1,
            "aria-label": `Move ${f.name} down`,
            onclick: () => move(i + 1),
          },
          "Down",
        ),
        el(
          "button",
          {
            type: "button",
            class: "small",
            "aria-label": `Remove ${f.name}`,
            onclick: () => {
              initrds.splice(i, 1);
              renderInitrds();
            },
          },
          "Remove",
        ),
      ),
    );
  });
}

function addProfile() {
  profiles += 1;
  const n = profiles;
  const row = el(
    "div",
    { class: "part-row profile-row", "data-profile": String(n) },
    field(
      `Profile ${n}`,
      "ID= and TITLE= lines (.profile)",
      el("textarea", { class: "pr-text", rows: "2", spellcheck: "false" }, `ID=profile${n}\nTITLE=Profile ${n}`),
    ),
    field(
      "Its command line",
      ".cmdline of this profile; empty: the base's",
      el("textarea", { class: "pr-cmdline", rows: "2", spellcheck: "false" }),
    ),
  );
  row.append(
    el(
      "button",
      { type: "button", class: "small", "aria-label": `Remove profile ${n}`, onclick: () => row.remove() },
      "Remove",
    ),
  );
  $("b-profile-list").append(row);
}

export function setupUkiExtras() {
  const input = $("b-initrd");
  input.addEventListener("change", () => {
    initrds = initrds.concat(Array.from(input.files));
    input.value = "";
    renderInitrds();
  });
  const bank = (b) =>
    el(
      "label",
      { class: "check" },
      el("input", { type: "checkbox", class: "b-bank", value: b, checked: b === "sha256" }),
      ` ${b}`,
    );
  const extras = el(
    "div",
    { id: "b-more", class: "wide form-grid" },
    el(
      "div",
      { class: "wide" },
      el(
        "p",
        { id: "b-initrd-label", class: "label-like" },
        "Initrd order ",
        el("span", { class: "muted" }, "(concatenated top to bottom; files picked again are added at the end)"),
      ),
      el("p", { id: "b-initrd-none", class: "muted" }, "No initrd."),
      el("ol", { id: "b-initrd-order", class: "plain files", "aria-labelledby": "b-initrd-label" }),
    ),
    field("Microcode", ".ucode, a cpio", el("input", { type: "file", id: "b-ucode" })),
    field("Splash", ".splash, a BMP", el("input", { type: "file", id: "b-splash" })),
    field("Device tree", ".dtb", el("input", { type: "file", id: "b-dtb" })),
    field(
      "Kernel release",
      ".uname; empty: from the kernel",
      el("input", { type: "text", id: "b-uname", spellcheck: "false" }),
    ),
    field(
      "SBAT",
      "merged with the stub's and kernel's; sbat,1,... header first",
      el("textarea", { id: "b-sbat", rows: "2", spellcheck: "false" }),
      "wide",
    ),
    field(
      "Extra section name",
      "--section NAME:FILE, e.g. .extra",
      el("input", { type: "text", id: "b-section-name", spellcheck: "false" }),
    ),
    field("Extra section file", "its contents", el("input", { type: "file", id: "b-section-file" })),
    el(
      "fieldset",
      { class: "wide parts" },
      el("legend", {}, "PCR 11 signatures ", el("span", { class: "muted" }, "(.pcrsig and .pcrpkey, as --pcr-key)")),
      el(
        "div",
        { class: "form-grid" },
        field("PCR signing key", "RSA, PEM", el("input", { type: "file", id: "b-pcr-key" })),
        el(
          "div",
          { role: "group", "aria-label": "PCR banks" },
          el("span", { class: "label-like" }, "Banks "),
          ...BANKS.map(bank),
        ),
        field(
          "Phases",
          "--phase, one per line; empty: systemd's four",
          el("textarea", { id: "b-phases", rows: "2", spellcheck: "false" }),
        ),
      ),
    ),
    el(
      "fieldset",
      { class: "wide parts" },
      el("legend", {}, "Profiles ", el("span", { class: "muted" }, "(--profile, each with its own .cmdline)")),
      el("div", { id: "b-profile-list" }),
      el("button", { type: "button", id: "b-profile-add", class: "small" }, "Add a profile"),
    ),
  );
  $("build-form").querySelector(".form-actions").before(extras);
  $("b-profile-add").addEventListener("click", addProfile);
  renderInitrds();
}

const lines = (id) =>
  $(id)
    .value.split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");

/** The Worker message for the form: the same build as `ukitool build` with these
 *  inputs (files in `parts` by role, texts in `options`). */
export function ukiBuildMessage() {
  const file = (id) => $(id).files[0];
  const parts = [];
  const add = (role, id) => file(id) && parts.push({ role, name: file(id).name, file: file(id) });
  add("stub", "b-stub");
  add("linux", "b-linux");
  for (const f of initrds) parts.push({ role: "initrd", name: f.name, file: f });
  add("ucode", "b-ucode");
  add("splash", "b-splash");
  add("devicetree", "b-dtb");
  add("os-release", "b-osrel");
  add("key", "b-key");
  add("cert", "b-cert");
  add("pcr-key", "b-pcr-key");
  // A base section: it comes before the profiles, as a --section before any --profile.
  const section = file("b-section-file");
  const sectionName = $("b-section-name").value.trim();
  if (section || sectionName) {
    if (!section || !sectionName) throw new Error("an extra section needs both a name and a file");
    parts.push({ role: "section", name: sectionName, file: section });
  }
  for (const row of document.querySelectorAll("#b-profile-list .profile-row")) {
    parts.push({ role: "profile", name: "", text: row.querySelector(".pr-text").value });
    const cmdline = row.querySelector(".pr-cmdline").value;
    if (cmdline !== "") parts.push({ role: "profile-section", name: ".cmdline", text: cmdline });
  }
  const ts = $("b-timestamp").value.trim();
  const cmdline = $("b-cmdline").value;
  const sbat = $("b-sbat").value;
  const options = {
    cmdline: cmdline === "" ? null : cmdline,
    uname: $("b-uname").value.trim() || null,
    sbat: sbat.trim() === "" ? [] : [sbat],
    timestamp: ts === "" ? null : Number(ts),
    pcr_banks: Array.from(document.querySelectorAll(".b-bank:checked")).map((b) => b.value),
    phases: lines("b-phases"),
  };
  return { type: TASK.BUILD_UKI, parts, options };
}
