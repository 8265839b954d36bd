// Summary: what the file is, in one list of facts (PE or disk image).

import { el, hexNum, size, factList } from "../dom.js";
import { $, kindLabel, plural, verdictBadge } from "./common.js";

export function setup() {}

export function render(st) {
  const r = st.report;
  if (!r) return;
  if (st.view === "disk") renderDisk(st, r);
  else renderPe(st, r);
}

function fileFact(st, bytes) {
  return `${st.file ? st.file.name : ""} · ${size(bytes)} (${bytes.toLocaleString("en")} bytes)`;
}

function renderPe(st, r) {
  const os = r.os_release || {};
  const kernelVersion = (r.kernel && r.kernel.version) || r.uname || null;
  const errors = r.lints.filter((l) => l.severity === "error").length;
  const warnings = r.lints.filter((l) => l.severity === "warning").length;
  const rows = [
    ["Kind", kindBadge(r, errors)],
    ["Operating system", os.PRETTY_NAME ? el("span", { id: "pretty-name" }, os.PRETTY_NAME) : null],
    ["OS version", os.VERSION || os.VERSION_ID || null],
    ["Kernel", kernelVersion ? el("span", { id: "kernel-version" }, kernelVersion) : null],
    ["Stub", r.stub],
    ["Signatures", signatureVerdict(st, r)],
    [
      "Lints",
      el(
        "span",
        { id: "lint-count" },
        `${r.lints.length} (${plural(errors, "error")}, ${plural(warnings, "warning")})`,
      ),
    ],
    ["File", fileFact(st, r.file_size)],
    ["Format", `${r.pe.format} ${r.pe.machine_name || hexNum(r.pe.machine)}, ${r.pe.subsystem_name || r.pe.subsystem}`],
  ];
  factList($("summary"), rows);
}

// The kind, green for a sound UKI; a file with error lints is marked damaged.
function kindBadge(r, errors) {
  const label = kindLabel(r);
  if (errors) {
    const attrs = { id: "kind", class: "badge tone-err", "data-kind": r.kind, "data-damaged": "" };
    return el("span", attrs, `${label}, damaged (${plural(errors, "error")})`);
  }
  return el("span", { id: "kind", class: "badge kind-" + r.kind, "data-kind": r.kind }, label);
}

function signatureVerdict(st, r) {
  const v = st.verify;
  if (v) {
    const n = v.signatures.filter((s) => s.nested_in === null).length;
    const nested = v.signatures.length - n;
    const what = n ? `${plural(n, "signature")}${nested ? ` + ${nested} nested` : ""}: ` : "";
    return el("span", {}, what, verdictBadge(v.verdict, "summary-verdict"));
  }
  if (r.pe.certificate_table) {
    const n = r.signatures.length;
    return n ? `${plural(n, "signature")} (see Signatures)` : "certificate table present";
  }
  return "unsigned";
}

function renderDisk(st, d) {
  const esp = [...d.filesystems, ...(d.xfs_volumes || [])].reduce((n, f) => n + f.efi_binaries.length, 0);
  const pt = d.partition_table;
  factList($("summary"), [
    [
      "Kind",
      el(
        "span",
        { id: "kind", class: "badge", "data-kind": "disk" },
        d.compression ? `Raw disk image, ${d.compression}-compressed` : "Raw disk image",
      ),
    ],
    [
      "Partition table",
      pt
        ? `${pt.scheme.toUpperCase()}, ${plural(pt.partitions.length, "partition")}, ${pt.sector_size}-byte sectors`
        : "none (bare volume)",
    ],
    ["FAT volumes", String(d.filesystems.length)],
    ["XFS volumes", String((d.xfs_volumes || []).length)],
    ["EFI binaries", String(esp)],
    ["Problems", String(d.problems.length + (pt ? pt.problems.length : 0))],
    ["File", fileFact(st, d.size)],
  ]);
}
