// UKI metadata: os-release, command line, kernel, keys, SBAT, splash, profiles,
// hardware ids and firmware, as the core decoded them.

import { el, clear, size, copyButton, factList, table, emptyState } from "../dom.js";
import { blobUrl } from "../files.js";
import { $ } from "./common.js";

export function setup() {}

export function render(st) {
  const r = st.report;
  if (st.view !== "pe" || !r) return;
  const box = clear($("uki"));
  const any =
    r.os_release ||
    r.cmdline ||
    r.uname ||
    r.sbat ||
    r.splash ||
    r.kernel ||
    r.profiles.length ||
    r.hwids ||
    r.efifw.length ||
    r.pcrpkey ||
    r.pcrsig;
  if (!any) {
    box.append(
      emptyState("No UKI metadata: this file has none of .osrel, .cmdline, .uname, .sbat, .splash or .linux."),
    );
    return;
  }
  if (r.os_release) {
    box.append(el("h3", {}, "os-release"));
    const rows = Object.entries(r.os_release).map(([k, v]) =>
      el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, v)),
    );
    box.append(
      el("div", { class: "table-wrap" }, table(el("table", { class: "grid kv", id: "os-release" }), null, rows)),
    );
  }
  if (r.cmdline !== null && r.cmdline !== undefined) {
    box.append(el("h3", {}, "Kernel command line"));
    box.append(
      el(
        "div",
        { class: "codeline" },
        el("code", { id: "cmdline" }, r.cmdline || "(empty)"),
        copyButton(r.cmdline, "Copy command line"),
      ),
    );
  }
  const facts = [];
  if (r.uname) facts.push(["uname", el("code", { id: "uname" }, r.uname)]);
  if (r.kernel) {
    const k = r.kernel;
    const FORMAT = { bzimage: "bzImage", image: "Image", zboot: "EFI zboot" };
    facts.push(["Kernel version", k.version]);
    facts.push(["Kernel format", k.format ? `${FORMAT[k.format] || k.format} ${k.architecture || ""}`.trim() : null]);
    facts.push(["Boot protocol", k.boot_protocol]);
    if (k.image_size) facts.push(["Kernel image size", size(k.image_size)]);
    if (k.zboot) facts.push(["Compressed payload", `${k.zboot.compression}, ${size(k.zboot.payload_size)}`]);
    facts.push(["Kernel is a PE", k.is_pe ? "yes (EFI stub)" : "no"]);
    facts.push(["Kernel signed", k.signed ? "yes" : "no"]);
    facts.push(["Kernel NX_COMPAT", k.nx_compat ? "yes" : "no"]);
  }
  if (r.pcrpkey)
    facts.push([
      "PCR public key",
      `${r.pcrpkey.key_type}${r.pcrpkey.bits ? " " + r.pcrpkey.bits + " bits" : ""}, sha256 ${r.pcrpkey.fingerprint}`,
    ]);
  if (r.pcrsig)
    facts.push([
      ".pcrsig",
      `${r.pcrsig.entries} signed policies; banks ${r.pcrsig.banks.join(", ")}; PCRs ${r.pcrsig.pcrs.join(", ")}`,
    ]);
  if (facts.length) {
    box.append(el("h3", {}, "Kernel and keys"));
    box.append(factList(el("dl", { class: "facts" }), facts));
  }
  if (r.sbat) {
    box.append(el("h3", {}, "SBAT"));
    const head = ["Component", "Generation", "Vendor", "Package", "Version", "URL"];
    const rows = r.sbat.map((e) =>
      el("tr", {}, ...[e.component, e.generation, e.vendor, e.package, e.version, e.url].map((v) => el("td", {}, v))),
    );
    box.append(el("div", { class: "table-wrap" }, table(el("table", { class: "grid", id: "sbat" }), head, rows)));
  }
  if (r.splash) {
    box.append(el("h3", {}, "Splash"));
    const s = r.sections.find((x) => x.name === ".splash" && (x.profile === null || x.profile === undefined));
    const fig = el("figure", { class: "splash" });
    if (s && s.file_offset + s.payload_size <= r.file_size) {
      const img = el("img", {
        id: "splash",
        alt: `Boot splash, ${r.splash.width}×${Math.abs(r.splash.height)}`,
        src: blobUrl(st.file.slice(s.file_offset, s.file_offset + s.payload_size, "image/bmp")),
      });
      fig.append(img);
    }
    fig.append(
      el(
        "figcaption",
        {},
        `${r.splash.width} × ${Math.abs(r.splash.height)}, ${r.splash.bits_per_pixel} bits per pixel`,
      ),
    );
    box.append(fig);
  }
  if (r.profiles.length) {
    box.append(el("h3", {}, `Profiles (${r.profiles.length})`));
    box.append(el("p", { class: "muted" }, "Base sections: " + r.base_sections.join(" ")));
    const rows = r.profiles.map((p) =>
      el(
        "tr",
        {},
        el("td", { class: "num" }, `@${p.index}`),
        el("td", {}, p.id || ""),
        el("td", {}, p.title || ""),
        el("td", {}, el("code", {}, p.sections.join(" "))),
        el("td", {}, p.cmdline === null || p.cmdline === undefined ? "" : el("code", {}, p.cmdline)),
      ),
    );
    box.append(
      el(
        "div",
        { class: "table-wrap" },
        table(el("table", { class: "grid", id: "profiles" }), ["#", "ID", "Title", "Sections", "Own cmdline"], rows),
      ),
    );
  }
  if (r.hwids && r.hwids.length) {
    box.append(el("h3", {}, "Hardware IDs (.hwids)"));
    const rows = r.hwids.map((h) =>
      el(
        "tr",
        {},
        el("td", {}, String(h.device_type)),
        el("td", {}, el("code", {}, h.chid)),
        el("td", {}, h.name),
        el("td", {}, h.compatible),
      ),
    );
    box.append(
      el(
        "div",
        { class: "table-wrap" },
        table(el("table", { class: "grid" }), ["Type", "CHID", "Name", "Compatible"], rows),
      ),
    );
  }
  if (r.efifw.length) {
    box.append(el("h3", {}, "Firmware (.efifw)"));
    const rows = r.efifw.map((f) =>
      el("tr", {}, el("td", {}, f.fwid), el("td", { class: "num" }, size(f.payload_size))),
    );
    box.append(
      el("div", { class: "table-wrap" }, table(el("table", { class: "grid" }), ["Firmware id", "Payload"], rows)),
    );
  }
}
