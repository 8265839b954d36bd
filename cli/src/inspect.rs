//! `ukitool inspect` and `ukitool extract`: argument parsing, the human printer,
//! and safe output files. The work is done by ukitool_core::{command::inspect, extract}.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ukitool_core::command::{
    self,
    inspect::{FileReport, Join},
};
use ukitool_core::disk;
use ukitool_core::inspect::{InspectOptions, Report};
use ukitool_core::lint::Severity;

use crate::input::Input;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// PE, UKI, addon or raw disk image (of any size; `.raw.zst`, `.raw.xz` and `.raw.gz`
    /// are recognised by content and decoded as they are read); `-` reads stdin
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
    /// Section name (.linux or linux); from a disk image, PART:/path (PART: a
    /// partition's name or number); omit with --all
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub section: Option<String>,
    /// Output file, `-` for stdout (the default); with --all, the output directory
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Extract every section under its conventional name into the -o directory; from a
    /// disk image, every file of its FAT and XFS partitions as DIR/<part>/<path>
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
    let mut out = io::stdout().lock();
    let opts = if a.no_hash {
        InspectOptions::NO_HASH
    } else {
        InspectOptions::default()
    };
    let name = a.file.display().to_string();
    // Disk images, raw or compressed, are read a piece at a time (pread, or one
    // streaming pass), never mapped or loaded whole.
    let report = if crate::bigdisk::is_disk_image(&a.file) {
        FileReport::Disk(Box::new(crate::bigdisk::inspect(&a.file, &opts)?))
    } else {
        let data = Input::open(&a.file)?;
        command::inspect(&data, &opts, &Threads).with_context(|| name.clone())?
    };
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        match &report {
            FileReport::Pe(r) => print_report(&mut out, &name, r)?,
            FileReport::Disk(r) => print_disk_report(&mut out, &name, r)?,
            FileReport::SignatureList(r) => print_siglist_report(&mut out, &name, r)?,
        }
    }
    out.flush()?;
    let FileReport::Pe(report) = report else {
        return Ok(ExitCode::SUCCESS);
    };
    // The report is printed in full; a broken file still ends as exit 2 with one line.
    let mut errors: Vec<&str> = report
        .lints
        .iter()
        .filter(|l| l.severity == Severity::Error)
        .map(|l| l.id)
        .collect();
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

/// An `.esl`/`.auth`/efivarfs file: its entries, and an `.auth` file's signature.
pub fn print_siglist_report(
    w: &mut dyn Write,
    name: &str,
    r: &ukitool_core::siglist::SignatureListReport,
) -> io::Result<()> {
    let container = serde_json::to_value(r.container)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let n = r.entries.len();
    let plural = if n == 1 { "entry" } else { "entries" };
    writeln!(
        w,
        "{name}: EFI signature database ({container}), {n} {plural}"
    )?;
    if let Some(a) = &r.auth {
        writeln!(w, "  timestamp: {}", a.timestamp)?;
        match (&a.signed_for, &a.signer) {
            (Some(v), Some(s)) => writeln!(
                w,
                "  signed:    as an update of {v} by {} (issuer {}, serial {})",
                s.subject_cn.as_deref().unwrap_or(&s.subject),
                s.issuer_cn.as_deref().unwrap_or(&s.issuer),
                s.serial
            )?,
            _ => writeln!(
                w,
                "  signed:    NOT VERIFIED: {}",
                a.problem.as_deref().unwrap_or("?")
            )?,
        }
        for c in &a.certificates {
            writeln!(
                w,
                "  carries:   {}",
                c.subject_cn.as_deref().unwrap_or(&c.subject)
            )?;
        }
    }
    for (i, e) in r.entries.iter().enumerate() {
        let what = match (&e.certificate, &e.hash, &e.problem) {
            (Some(c), _, _) => format!(
                "{} (issuer {}, serial {}, sha256 {})",
                c.subject_cn.as_deref().unwrap_or(&c.subject),
                c.issuer_cn.as_deref().unwrap_or(&c.issuer),
                c.serial,
                c.sha256
            ),
            (None, Some(h), _) => h.clone(),
            (None, None, Some(p)) => format!("undecodable: {p}"),
            (None, None, None) => String::new(),
        };
        writeln!(w, "  {i:>3} {:<11} owner {:x}  {what}", e.kind, e.owner)?;
    }
    Ok(())
}

/// The core's two passes over a PE (section hashes, and the Authenticode digest behind
/// the signatures summary) on two threads: about one pass of wall time instead of two
/// (bench/, issue 8).
pub(crate) struct Threads;

impl Join for Threads {
    fn join<A: Send, B: Send>(
        &self,
        a: impl FnOnce() -> A + Send,
        b: impl FnOnce() -> B + Send,
    ) -> (A, B) {
        std::thread::scope(|s| {
            let b = s.spawn(b);
            let a = a();
            match b.join() {
                Ok(b) => (a, b),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
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

/// The kernel's facts on one line: version, format and architecture, size, EFI stub.
fn kernel_line(k: &ukitool_core::uki::kernel::Kernel) -> String {
    use ukitool_core::uki::kernel::Format;
    let format = match k.format {
        Some(Format::Bzimage) => "bzImage",
        Some(Format::Image) => "Image",
        Some(Format::Zboot) => "EFI zboot",
        None => "unknown format",
    };
    let mut parts = vec![
        k.version
            .clone()
            .unwrap_or_else(|| "version unknown".to_string()),
        format!("{format} {}", k.architecture.unwrap_or("-")),
    ];
    if let Some(p) = &k.boot_protocol {
        parts.push(format!("boot protocol {p}"));
    }
    if let Some(size) = k.image_size {
        parts.push(format!(
            "image size {}",
            ukitool_core::units::human_size(size)
        ));
    }
    if let Some(z) = &k.zboot {
        parts.push(format!(
            "{} payload of {}",
            z.compression,
            ukitool_core::units::human_size(z.payload_size)
        ));
    }
    parts.push(if k.signed { "signed" } else { "unsigned" }.to_string());
    parts.push(
        if k.nx_compat {
            "NX_COMPAT"
        } else {
            "no NX_COMPAT"
        }
        .to_string(),
    );
    parts.join("; ")
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
        lines.push(("Kernel:", kernel_line(k)));
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

/// The human listing of a raw disk image (see `DiskReport::listing`).
pub fn print_disk_report(
    w: &mut dyn Write,
    file: &str,
    r: &disk::inspect::DiskReport,
) -> io::Result<()> {
    write!(w, "{}", r.listing(file))
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
    if ukitool_core::disk::inspect::looks_like_disk(&data) {
        return extract_from_disk(&a, &data, source);
    }
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

/// `extract DISK PART:/path` and `extract DISK --all -o DIR` (`DIR/<part>/<path>`):
/// files from the disk's FAT and XFS partitions.
fn extract_from_disk(
    a: &ExtractArgs,
    data: &[u8],
    source: Option<(&fs::File, &[u8])>,
) -> Result<ExitCode> {
    use ukitool_core::disk::files;
    let what = || a.file.display().to_string();
    let parts = files::partitions(data).with_context(what)?;
    if a.all {
        let dir = a.output.as_deref().context("--all needs -o DIR")?;
        let mut outs = Vec::new();
        for p in &parts {
            for path in p.files() {
                let safe = files::safe_path(path)
                    .with_context(|| format!("partition {}: unsafe file name {path:?}", p.index))?;
                let mut out = dir.join(p.dir_name());
                out.extend(safe);
                outs.push((p, path, out));
            }
        }
        // Refuse before writing anything, so a refused run leaves no partial set.
        if !a.force {
            if let Some((_, _, out)) = outs.iter().find(|(_, _, out)| out.exists()) {
                bail!("{} exists; use --force to overwrite", out.display());
            }
        }
        for (p, path, out) in &outs {
            let bytes = p.read(path).with_context(what)?;
            if let Some(d) = out.parent() {
                fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            }
            write_file(out, &bytes, a.force, source)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let spec = a
        .section
        .as_deref()
        .context("name PART:/path, or use --all")?;
    let (part, path) = spec.split_once(':').with_context(|| {
        format!("{spec:?}: from a disk, name PART:/path (PART: a partition's name or number)")
    })?;
    let bytes = files::find(&parts, part)
        .and_then(|p| p.read(path))
        .with_context(what)?;
    match a.output.as_deref() {
        None => write_stdout(&bytes)?,
        Some(p) if p == Path::new("-") => write_stdout(&bytes)?,
        Some(p) => write_file(p, &bytes, a.force, source)?,
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
