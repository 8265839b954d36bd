//! `ukitool inspect` and `ukitool extract`: argument parsing, the human printer,
//! and safe output files. The work is done by ukitool_core::{inspect, extract}.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ukitool_core::disk;
use ukitool_core::inspect::{self, InspectOptions, Report};
use ukitool_core::lint::Severity;

use crate::input::Input;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// PE, UKI, addon or raw disk image; `-` reads stdin
    pub file: PathBuf,
    /// Print the report as JSON (fields documented in docs/json.md)
    #[arg(long)]
    pub json: bool,
    /// Skip per-section sha256: read only headers and metadata sections
    #[arg(long)]
    pub no_hash: bool,
}

#[derive(clap::Args)]
pub struct ExtractArgs {
    /// The UKI or PE to read; `-` reads stdin
    pub file: PathBuf,
    /// Section name (.linux or linux); omit with --all
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub section: Option<String>,
    /// Output file, `-` for stdout (the default); with --all, the output directory
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Extract every section under its conventional name into the -o directory
    #[arg(long, requires = "output")]
    pub all: bool,
    /// Take sections from profile N (falling back to the base)
    #[arg(long, value_name = "N")]
    pub profile: Option<u32>,
    /// Overwrite existing output files
    #[arg(long)]
    pub force: bool,
}

pub fn run_inspect(a: InspectArgs) -> Result<ExitCode> {
    let data = Input::open(&a.file)?;
    let mut out = io::stdout().lock();
    let opts = if a.no_hash {
        InspectOptions::NO_HASH
    } else {
        InspectOptions::default()
    };
    if disk::inspect::looks_like_disk(&data) {
        let r = disk::inspect::inspect_disk_with(&data, &opts)
            .with_context(|| a.file.display().to_string())?;
        if a.json {
            serde_json::to_writer_pretty(&mut out, &r)?;
            writeln!(out)?;
        } else {
            print_disk_report(&mut out, &a.file.display().to_string(), &r)?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = inspect_threaded(&data, &opts).with_context(|| a.file.display().to_string())?;
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let name = a.file.display().to_string();
        print_report(&mut out, &name, &report)?;
    }
    out.flush()?;
    // The report is printed in full; a broken file still ends as exit 2 with one line.
    let errors: Vec<&str> = report
        .lints
        .iter()
        .filter(|l| l.severity == Severity::Error)
        .map(|l| l.id)
        .collect();
    let mut errors = errors;
    errors.dedup();
    if !errors.is_empty() {
        bail!(
            "{}: {} error lint(s): {}",
            a.file.display(),
            errors.len(),
            errors.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `inspect::inspect`, with the Authenticode digest behind the signatures summary (a
/// second full pass over the file) computed on a second thread while this one hashes
/// the sections: about one pass of wall time instead of two (bench/, issue 8). The core
/// has no threads (it builds for wasm); the report is the same, signature lints last.
fn inspect_threaded(data: &[u8], opts: &InspectOptions) -> ukitool_core::Result<Report> {
    if !(opts.hash && opts.signatures) {
        return inspect::inspect(data, opts);
    }
    std::thread::scope(|s| {
        let sigs = s.spawn(|| {
            ukitool_core::pe::PeFile::parse(data)
                .ok()
                .map(|pe| ukitool_core::authenticode::inspect_signatures(&pe))
        });
        let sections_only = InspectOptions {
            signatures: false,
            ..*opts
        };
        let mut report = inspect::inspect(data, &sections_only)?;
        match sigs.join() {
            Ok(Some((signatures, lints))) => {
                report.signatures = signatures;
                report.lints.extend(lints);
            }
            Ok(None) => {}
            Err(panic) => std::panic::resume_unwind(panic),
        }
        Ok(report)
    })
}

fn hex_or(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

/// One labelled fact of the human report, its value in the column after the labels.
fn report_line(w: &mut dyn Write, label: &str, value: &str) -> io::Result<()> {
    writeln!(w, "{label:<18}{value}")
}

/// A blank line, then the title of a block.
fn heading(w: &mut dyn Write, title: &str) -> io::Result<()> {
    writeln!(w)?;
    writeln!(w, "{title}")
}

/// The human report: one fact per line, labels aligned, tables with fixed columns.
pub fn print_report(w: &mut dyn Write, file: &str, r: &Report) -> io::Result<()> {
    print_pe_header(w, file, r)?;
    print_pe_tables(w, r)?;
    print_sections(w, r)?;
    print_os_release(w, r)?;
    print_metadata(w, r)?;
    print_sbat_and_hwids(w, r)?;
    print_profiles(w, r)?;
    print_signatures(w, r)?;
    print_lints(w, r)
}

/// The file, its kind and the PE headers' facts.
fn print_pe_header(w: &mut dyn Write, file: &str, r: &Report) -> io::Result<()> {
    let p = &r.pe;
    report_line(w, "File:", &format!("{file} ({} bytes)", r.file_size))?;
    report_line(w, "Kind:", r.kind.as_str())?;
    if let Some(s) = &r.stub {
        report_line(w, "Stub:", s)?;
    }
    let format = match p.format {
        ukitool_core::pe::Format::Pe32 => "PE32",
        ukitool_core::pe::Format::Pe32Plus => "PE32+",
    };
    report_line(
        w,
        "Format:",
        &format!(
            "{format} {} ({:#06x}), subsystem {} ({})",
            p.machine_name.unwrap_or("unknown"),
            p.machine,
            p.subsystem_name.unwrap_or("unknown"),
            p.subsystem
        ),
    )?;
    report_line(w, "Entry point:", &format!("{:#x}", p.entry_point))?;
    report_line(w, "Image base:", &format!("{:#x}", p.image_base))?;
    report_line(
        w,
        "Alignment:",
        &format!(
            "section {:#x}, file {:#x}",
            p.section_alignment, p.file_alignment
        ),
    )?;
    report_line(w, "SizeOfImage:", &format!("{:#x}", p.size_of_image))?;
    report_line(w, "SizeOfHeaders:", &format!("{:#x}", p.size_of_headers))?;
    report_line(w, "Checksum:", &format!("{:#x}", p.checksum))?;
    report_line(w, "Timestamp:", &p.timestamp.to_string())?;
    report_line(
        w,
        "Characteristics:",
        &format!(
            "{:#06x} {}",
            p.characteristics,
            p.characteristics_names.join(" ")
        ),
    )?;
    report_line(
        w,
        "DllChars:",
        format!(
            "{:#06x} {}",
            p.dll_characteristics,
            p.dll_characteristics_names.join(" ")
        )
        .trim_end(),
    )
}

/// The certificate table, symbol table and data directories: where they are.
fn print_pe_tables(w: &mut dyn Write, r: &Report) -> io::Result<()> {
    let p = &r.pe;
    let certificates = p.certificate_table.map_or_else(
        || "none".into(),
        |c| {
            format!(
                "{:#x}..{:#x} ({} bytes)",
                c.offset,
                c.offset + c.size,
                c.size
            )
        },
    );
    report_line(w, "Certificates:", &certificates)?;
    if let Some(s) = p.symbol_table {
        report_line(
            w,
            "Symbol table:",
            &format!("{:#x} ({} symbols)", s.offset, s.symbols),
        )?;
    }
    let dirs: Vec<String> = p
        .data_directories
        .iter()
        .filter(|d| d.virtual_address != 0 || d.size != 0)
        .map(|d| format!("{} {:#x}+{:#x}", d.name, d.virtual_address, d.size))
        .collect();
    let dirs = if dirs.is_empty() {
        "none".into()
    } else {
        dirs.join(", ")
    };
    report_line(w, "Data dirs:", &dirs)
}

/// The section table, one row each, with protection, profile and sha256.
fn print_sections(w: &mut dyn Write, r: &Report) -> io::Result<()> {
    heading(w, "Sections:")?;
    let nw = r
        .sections
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        w,
        "  {:>3}  {:<nw$}  {:>10}  {:>10}  {:>10}  {:>10}  {:<4}  {:<4}  sha256",
        "#", "name", "vaddr", "vsize", "offset", "rawsize", "prot", "prof"
    )?;
    for s in &r.sections {
        let c = s.characteristics;
        let prot = format!(
            "{}{}{}",
            if c & 0x4000_0000 != 0 { 'r' } else { '-' },
            if c & 0x8000_0000 != 0 { 'w' } else { '-' },
            if c & 0x2000_0000 != 0 { 'x' } else { '-' },
        );
        writeln!(
            w,
            "  {:>3}  {:<nw$}  {:>#10x}  {:>#10x}  {:>#10x}  {:>#10x}  {:<4}  {:<4}  {}",
            s.index,
            s.name,
            s.virtual_address,
            s.virtual_size,
            s.file_offset,
            s.raw_size,
            prot,
            s.profile.map_or_else(|| "-".into(), |p| format!("@{p}")),
            hex_or(s.sha256.clone())
        )?;
    }
    Ok(())
}

fn print_os_release(w: &mut dyn Write, r: &Report) -> io::Result<()> {
    let Some(o) = &r.os_release else {
        return Ok(());
    };
    heading(w, "os-release:")?;
    let kw = o.0.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &o.0 {
        writeln!(w, "  {k:<kw$}  {v}")?;
    }
    Ok(())
}

/// The decoded metadata sections, one labelled line each, as a block after a blank line.
fn print_metadata(w: &mut dyn Write, r: &Report) -> io::Result<()> {
    let lines = metadata_lines(r);
    if !lines.is_empty() {
        writeln!(w)?;
    }
    for (label, value) in &lines {
        report_line(w, label, value)?;
    }
    Ok(())
}

fn metadata_lines(r: &Report) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    if let Some(c) = &r.cmdline {
        lines.push(("Cmdline:", c.clone()));
    }
    if let Some(u) = &r.uname {
        lines.push(("Uname:", u.clone()));
    }
    if let Some(k) = &r.kernel {
        lines.push((
            "Kernel:",
            format!(
                "{}; boot protocol {}; {}; {}",
                k.version.as_deref().unwrap_or("version unknown"),
                k.boot_protocol.as_deref().unwrap_or("-"),
                if k.signed { "signed" } else { "unsigned" },
                if k.nx_compat {
                    "NX_COMPAT"
                } else {
                    "no NX_COMPAT"
                }
            ),
        ));
    }
    if let Some(s) = &r.splash {
        lines.push((
            "Splash:",
            format!("{}x{}, {} bpp", s.width, s.height, s.bits_per_pixel),
        ));
    }
    if let Some(k) = &r.pcrpkey {
        lines.push((
            "PCR key:",
            format!(
                "{}{}, sha256 {}",
                k.key_type,
                k.bits.map_or_else(String::new, |b| format!(" {b} bits")),
                k.fingerprint
            ),
        ));
    }
    if let Some(s) = &r.pcrsig {
        let pcrs: Vec<String> = s.pcrs.iter().map(u32::to_string).collect();
        lines.push((
            "PCR signature:",
            format!(
                "{} policies; banks {}; PCRs {}; keys {}",
                s.entries,
                s.banks.join(","),
                pcrs.join(","),
                s.pkfp.join(",")
            ),
        ));
    }
    for f in &r.efifw {
        lines.push((
            "Firmware:",
            format!("{} ({} bytes)", f.fwid, f.payload_size),
        ));
    }
    lines
}

fn print_sbat_and_hwids(w: &mut dyn Write, r: &Report) -> io::Result<()> {
    if let Some(sbat) = &r.sbat {
        heading(w, "SBAT:")?;
        let rows: Vec<[&str; 6]> = sbat
            .iter()
            .map(|e| {
                [
                    e.component.as_str(),
                    e.generation.as_str(),
                    e.vendor.as_str(),
                    e.package.as_str(),
                    e.version.as_str(),
                    e.url.as_str(),
                ]
            })
            .collect();
        table(w, &rows)?;
    }
    if let Some(h) = &r.hwids {
        heading(w, "HWIDs:")?;
        let rows: Vec<[&str; 3]> = h
            .iter()
            .map(|e| [e.chid.as_str(), e.name.as_str(), e.compatible.as_str()])
            .collect();
        table(w, &rows)?;
    }
    Ok(())
}

fn print_profiles(w: &mut dyn Write, r: &Report) -> io::Result<()> {
    if r.profiles.is_empty() {
        return Ok(());
    }
    heading(w, "Profiles:")?;
    writeln!(w, "  base  {}", r.base_sections.join(" "))?;
    for p in &r.profiles {
        writeln!(
            w,
            "  @{:<3}  {}  id={} title={}",
            p.index,
            p.sections.join(" "),
            p.id.as_deref().unwrap_or("-"),
            p.title.as_deref().unwrap_or("-")
        )?;
        if let Some(c) = &p.cmdline {
            writeln!(w, "        cmdline: {c}")?;
        }
    }
    Ok(())
}

fn print_signatures(w: &mut dyn Write, r: &Report) -> io::Result<()> {
    if r.signatures.is_empty() {
        return Ok(());
    }
    heading(w, "Signatures:")?;
    for s in &r.signatures {
        writeln!(w, "  {}", s.line)?;
    }
    Ok(())
}

fn print_lints(w: &mut dyn Write, r: &Report) -> io::Result<()> {
    writeln!(w)?;
    if r.lints.is_empty() {
        return writeln!(w, "Lints:            none");
    }
    writeln!(w, "Lints:")?;
    for l in &r.lints {
        let sev = match l.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        writeln!(w, "  {sev:<7}  {}: {}", l.id, l.message)?;
    }
    Ok(())
}

/// Sizes as a person reads them, next to the exact byte count where it matters.
fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// Names from the disk (partition names, file names) are attacker-controlled: control
/// characters are shown as `?` so they cannot move the cursor or clear the screen.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Columns two spaces apart under a header; `right` marks the numeric columns, which
/// are right-aligned. No trailing blanks.
fn columns(
    w: &mut dyn Write,
    indent: &str,
    rows: &[Vec<String>],
    right: &[bool],
) -> io::Result<()> {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; n];
    for r in rows {
        for (wd, c) in widths.iter_mut().zip(r) {
            *wd = (*wd).max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::from(indent);
        for (i, (c, wd)) in r.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&format!("{c:>wd$}"));
            } else {
                line.push_str(&format!("{c:<wd$}"));
            }
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

/// The human listing of a raw disk image: the partition table, then for each FAT
/// volume its files and a short summary of every EFI binary on it (`--json` has the
/// full report of each).
pub fn print_disk_report(
    w: &mut dyn Write,
    file: &str,
    r: &disk::inspect::DiskReport,
) -> io::Result<()> {
    let kv = |w: &mut dyn Write, k: &str, v: &str| writeln!(w, "{k:<18}{v}");
    kv(
        w,
        "File:",
        &format!("{file} ({} bytes, {})", r.size, human_size(r.size)),
    )?;
    kv(w, "Kind:", "raw disk image")?;
    match &r.partition_table {
        None => kv(w, "Partition table:", "none (a bare FAT volume)")?,
        Some(t) => {
            let mut desc = format!(
                "{}, {}-byte sectors",
                t.scheme.to_uppercase(),
                t.sector_size
            );
            if let Some(g) = t.disk_guid {
                desc.push_str(&format!(", disk GUID {g}"));
            }
            kv(w, "Partition table:", &desc)?;
            let ok = |v: Option<bool>| match v {
                Some(true) => "ok",
                Some(false) => "BAD",
                None => "-",
            };
            if t.scheme == "gpt" {
                kv(
                    w,
                    "GPT checks:",
                    &format!(
                        "header CRC {}, array CRC {}, backup {}",
                        ok(t.header_crc_ok),
                        ok(t.array_crc_ok),
                        ok(t.backup_ok)
                    ),
                )?;
            }
            if let (Some(first), Some(last)) = (t.first_usable_lba, t.last_usable_lba) {
                kv(w, "Usable LBAs:", &format!("{first}..{last}"))?;
            }
            writeln!(w)?;
            writeln!(w, "Partitions:")?;
            let mut rows = vec![[
                "#",
                "name",
                "type",
                "first LBA",
                "last LBA",
                "offset",
                "size",
                "GUID",
                "flags",
            ]
            .map(String::from)
            .to_vec()];
            for p in &t.partitions {
                let kind = p.type_label().unwrap_or_else(|| "-".into());
                rows.push(vec![
                    p.index.to_string(),
                    if p.name.is_empty() {
                        "-".into()
                    } else {
                        printable(&p.name)
                    },
                    kind,
                    p.first_lba.to_string(),
                    p.last_lba.to_string(),
                    format!("{:#x}", p.offset),
                    human_size(p.size),
                    p.unique_guid.map_or_else(|| "-".into(), |g| g.to_string()),
                    if p.legacy_bios_bootable {
                        "legacy-bios-bootable".into()
                    } else if p.attributes != 0 {
                        format!("{:#x}", p.attributes)
                    } else {
                        String::new()
                    },
                ]);
            }
            if t.partitions.is_empty() {
                writeln!(w, "  none")?;
            } else {
                // The GUID and flags columns only when some partition has one (an MBR
                // disk has neither).
                let used = |c: usize| {
                    rows.iter()
                        .skip(1)
                        .any(|r| r.get(c).is_some_and(|v| !v.is_empty() && v != "-"))
                };
                let keep: Vec<bool> = (0..9).map(|c| c < 7 || used(c)).collect();
                let rows: Vec<Vec<String>> = rows
                    .into_iter()
                    .map(|r| {
                        r.into_iter()
                            .zip(&keep)
                            .filter(|(_, k)| **k)
                            .map(|(v, _)| v)
                            .collect()
                    })
                    .collect();
                let right = [true, false, false, true, true, true, true];
                columns(w, "  ", &rows, &right)?;
            }
            for pr in &t.problems {
                writeln!(w, "  problem: {}", printable(pr))?;
            }
        }
    }

    for fs in &r.filesystems {
        let v = &fs.fat;
        writeln!(w)?;
        let place = match fs.partition {
            Some(i) => format!("Partition {i}"),
            None => "Volume".into(),
        };
        writeln!(
            w,
            "{place}: {} label {:?} id {}, {}-byte clusters, {} clusters, at {:#x}",
            v.fat_type.name(),
            printable(&v.label),
            v.volume_id,
            v.cluster_size,
            v.clusters,
            fs.offset
        )?;
        let mut rows = Vec::new();
        for e in &v.entries {
            rows.push(if e.is_dir {
                vec![format!("/{}/", printable(&e.path)), String::new()]
            } else {
                vec![format!("/{}", printable(&e.path)), e.size.to_string()]
            });
        }
        if rows.is_empty() {
            writeln!(w, "  (empty)")?;
        } else {
            columns(w, "  ", &rows, &[false, true])?;
        }
        for pr in &v.problems {
            writeln!(w, "  problem: {}", printable(pr))?;
        }
        for b in &fs.efi_binaries {
            writeln!(w)?;
            let at = b
                .disk_offset
                .map_or_else(String::new, |o| format!(" at {o:#x}"));
            writeln!(w, "  /{} ({} bytes{at})", printable(&b.path), b.size)?;
            let kv = |w: &mut dyn Write, k: &str, v: &str| writeln!(w, "    {k:<12}{v}");
            let rep = match (&b.report, &b.error) {
                (Some(rep), _) => rep,
                (None, e) => {
                    kv(w, "error", e.as_deref().unwrap_or("not inspected"))?;
                    continue;
                }
            };
            let mut kind = rep.kind.as_str().to_string();
            if let Some(s) = &rep.stub {
                kind.push_str(&format!(" ({s})"));
            }
            if let Some(m) = rep.pe.machine_name {
                kind.push_str(&format!(", {m}"));
            }
            kv(w, "kind", &kind)?;
            let names: Vec<&str> = rep.sections.iter().map(|s| s.name.as_str()).collect();
            kv(w, "sections", &names.join(" "))?;
            if let Some(o) = &rep.os_release {
                let name = o
                    .get("PRETTY_NAME")
                    .or_else(|| o.get("NAME"))
                    .or_else(|| o.get("ID"))
                    .unwrap_or("-");
                kv(w, "os-release", &printable(name))?;
            }
            if let Some(u) = &rep.uname {
                kv(w, "uname", &printable(u))?;
            }
            if let Some(c) = &rep.cmdline {
                kv(w, "cmdline", &printable(c.trim()))?;
            }
            if rep.pe.certificate_table.is_none() {
                kv(w, "signed", "no")?;
            } else if rep.signatures.is_empty() {
                kv(w, "signed", "yes (not checked: --no-hash)")?;
            }
            for (i, s) in rep.signatures.iter().enumerate() {
                kv(w, if i == 0 { "signatures" } else { "" }, &s.line)?;
            }
            let count = |sev: Severity| rep.lints.iter().filter(|l| l.severity == sev).count();
            let (e, wn) = (count(Severity::Error), count(Severity::Warning));
            if e + wn > 0 {
                kv(
                    w,
                    "lints",
                    &format!(
                        "{e} error(s), {wn} warning(s) (ukitool inspect on the file shows them)"
                    ),
                )?;
            }
        }
    }
    if !r.problems.is_empty() {
        writeln!(w)?;
        writeln!(w, "Problems:")?;
        for pr in &r.problems {
            writeln!(w, "  {}", printable(pr))?;
        }
    }
    Ok(())
}

/// Left-aligned columns, two spaces apart, no trailing blanks.
fn table<const N: usize>(w: &mut dyn Write, rows: &[[&str; N]]) -> io::Result<()> {
    let mut widths = [0usize; N];
    for r in rows {
        for (wd, c) in widths.iter_mut().zip(r) {
            *wd = (*wd).max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::from(" ");
        for (c, wd) in r.iter().zip(widths) {
            line.push(' ');
            line.push_str(&format!("{c:<wd$} "));
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

pub fn run_extract(a: ExtractArgs) -> Result<ExitCode> {
    use ukitool_core::extract;
    let data = Input::open(&a.file)?;
    // The mapped file's descriptor, so payloads can be copied in the kernel
    // (copy_file_range) instead of through the map: see image::copy_mapped.
    let source = match &data {
        Input::Mapped(m) => fs::File::open(&a.file).ok().filter(|f| {
            f.metadata()
                .is_ok_and(|md| md.is_file() && md.len() == m.len() as u64)
        }),
        Input::Owned(_) => None,
    };
    let source = source.as_ref().map(|f| (f, &data[..]));
    if a.all {
        let dir = a.output.context("--all needs -o DIR")?;
        let parts = extract::all(&data, a.profile).with_context(|| a.file.display().to_string())?;
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Refuse before writing anything, so a refused run leaves no partial set.
        if !a.force {
            if let Some((n, _)) = parts.iter().find(|(n, _)| dir.join(n).exists()) {
                bail!("{} exists; use --force to overwrite", dir.join(n).display());
            }
        }
        for (name, bytes) in &parts {
            write_file(&dir.join(name), bytes, a.force, source)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let name = a.section.context("name a section, or use --all")?;
    let bytes =
        extract::section(&data, &name, a.profile).with_context(|| a.file.display().to_string())?;
    match a.output.as_deref() {
        None => write_stdout(bytes)?,
        Some(p) if p == Path::new("-") => write_stdout(bytes)?,
        Some(p) => write_file(p, bytes, a.force, source)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).context("writing stdout")?;
    out.flush().context("writing stdout")?;
    Ok(())
}

/// Write through a temporary file in the same directory, then move it into place:
/// a crash never leaves a half-written output. Without `force` the move is a hard
/// link, which fails if the target appeared meanwhile, so nothing is overwritten.
/// `source` is the input file and its mapping when `bytes` borrows from it.
fn write_file(
    path: &Path,
    bytes: &[u8],
    force: bool,
    source: Option<(&fs::File, &[u8])>,
) -> Result<()> {
    if !force && path.exists() {
        bail!("{} exists; use --force to overwrite", path.display());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{base}.ukitool-tmp.{}", std::process::id()));
    let result = (|| -> Result<()> {
        // create_new: never write through a link someone planted at the temp name.
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        // No fsync, as for `build` (and objcopy): the rename makes the file appear whole
        // or not at all to other processes; durability across a crash is the caller's.
        let copied = source.map_or(0, |(file, map)| {
            crate::image::copy_mapped(file, map, bytes, &f, 0)
        });
        // copy_file_range with an explicit offset leaves the file position at 0.
        io::Seek::seek(&mut f, io::SeekFrom::Start(copied as u64))
            .and_then(|_| f.write_all(bytes.get(copied..).unwrap_or_default()))
            .with_context(|| format!("writing {}", tmp.display()))?;
        if force {
            fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
        } else {
            match fs::hard_link(&tmp, path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    bail!("{} exists; use --force to overwrite", path.display())
                }
                // File systems without hard links (vfat, some FUSE): check, then rename.
                Err(_) if !path.exists() => fs::rename(&tmp, path)
                    .with_context(|| format!("renaming to {}", path.display()))?,
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("creating {}", path.display()))
                    )
                }
            }
        }
        Ok(())
    })();
    let _ = fs::remove_file(&tmp);
    result
}
