// PE headers: the optional header's fields and the data directories in use.

import { el, clear, hexNum, size, factList, table, emptyState } from "../dom.js";
import { $ } from "./common.js";

export function setup() {}

export function render(st) {
  const r = st.report;
  if (st.view !== "pe" || !r) return;
  const box = clear($("pe"));
  const p = r.pe;
  factList(box.appendChild(el("dl", { class: "facts" })), [
    ["Format", p.format],
    ["Machine", `${p.machine_name || "unknown"} (${hexNum(p.machine)})`],
    ["Subsystem", `${p.subsystem_name || "unknown"} (${p.subsystem})`],
    ["Entry point", hexNum(p.entry_point)],
    ["Image base", hexNum(p.image_base)],
    ["Section alignment", hexNum(p.section_alignment)],
    ["File alignment", hexNum(p.file_alignment)],
    ["SizeOfImage", `${hexNum(p.size_of_image)} (${size(p.size_of_image)})`],
    ["SizeOfHeaders", hexNum(p.size_of_headers)],
    ["CheckSum", hexNum(p.checksum)],
    ["Characteristics", `${hexNum(p.characteristics)} ${p.characteristics_names.join(" ")}`],
    ["DllCharacteristics", `${hexNum(p.dll_characteristics)} ${p.dll_characteristics_names.join(" ")}`],
    ["NX_COMPAT", p.nx_compat ? "yes" : "no"],
    ["Timestamp", p.timestamp ? `${p.timestamp} (${new Date(p.timestamp * 1000).toISOString()})` : "0"],
    [
      "Certificate table",
      p.certificate_table ? `${hexNum(p.certificate_table.offset)}, ${size(p.certificate_table.size)}` : "none",
    ],
    ["Symbol table", p.symbol_table ? `${hexNum(p.symbol_table.offset)}, ${p.symbol_table.symbols} symbols` : "none"],
  ]);
  const rows = p.data_directories
    .filter((d) => d.virtual_address || d.size)
    .map((d) =>
      el(
        "tr",
        {},
        el("td", { class: "num" }, String(d.index)),
        el("td", {}, d.name),
        el("td", { class: "num" }, hexNum(d.virtual_address)),
        el("td", { class: "num" }, hexNum(d.size)),
      ),
    );
  box.append(el("h3", {}, "Data directories in use"));
  if (rows.length)
    box.append(
      el(
        "div",
        { class: "table-wrap" },
        table(el("table", { class: "grid" }), ["#", "Directory", "Address", "Size"], rows),
      ),
    );
  else box.append(emptyState("None."));
}
