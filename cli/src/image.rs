//! `ukitool image`: a bootable raw GPT disk image from a UKI. The core computes the
//! image as extents; this module reads the inputs and writes the extents out, as a
//! sparse file (holes where the image is zero) or as a stream on stdout.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ukitool_core::disk::guid::Guid;
use ukitool_core::disk::layout::{self, ImageOptions, ImageSummary, Layout, PartitionSpec};
use ukitool_core::disk::DiskImage;

use crate::input::Input;

#[derive(clap::Args)]
pub struct ImageArgs {
    /// The UKI to boot
    #[arg(long, value_name = "FILE")]
    uki: PathBuf,
    /// Output image file, or `-` for stdout
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// uefi (the UKI as \EFI\BOOT\BOOT<arch>.EFI), systemd-boot, grub or talos
    #[arg(long, default_value = "uefi")]
    layout: String,
    /// Disk size (bytes, or with a K/M/G/T suffix); default: just large enough
    #[arg(long)]
    size: Option<String>,
    /// ESP size; default: the layout's, or what the files need (at least 100M)
    #[arg(long, value_name = "SIZE")]
    esp_size: Option<String>,
    /// Logical sector size: 512 or 4096
    #[arg(long, default_value_t = 512)]
    sector_size: u64,
    /// ESP volume label; also seeds the disk and partition GUIDs
    #[arg(long, default_value = "EFI")]
    label: String,
    /// Add a file to the ESP (repeatable)
    #[arg(long, value_name = "SRC:ESP_PATH")]
    add_file: Vec<String>,
    /// Add an unformatted partition; TYPE is esp, bios, linux (default), xbootldr or a GUID
    #[arg(long, value_name = "NAME:SIZE[:TYPE]")]
    add_partition: Vec<String>,
    /// Disk GUID (default: derived from --label)
    #[arg(long, value_name = "GUID")]
    disk_guid: Option<String>,
    /// Unix time for FAT timestamps (default: $SOURCE_DATE_EPOCH, else 1980-01-01)
    #[arg(long, value_name = "SECONDS")]
    timestamp: Option<i64>,
    /// systemd-boot EFI binary (systemd-boot layout; talos layout with systemd-boot)
    #[arg(long, value_name = "FILE")]
    systemd_boot: Option<PathBuf>,
    /// GRUB EFI binary (grub layout; talos layout with GRUB)
    #[arg(long, value_name = "FILE")]
    grub: Option<PathBuf>,
    /// shim: installed as BOOT<arch>.EFI with GRUB next to it as grub<arch>.efi
    #[arg(long, value_name = "FILE")]
    shim: Option<PathBuf>,
    /// Directory on the ESP where GRUB reads grub.cfg (default: GRUB's built-in prefix)
    #[arg(long, value_name = "PATH")]
    grub_prefix: Option<String>,
    /// Directory with PK.auth, KEK.auth, db.auth (and dbx.auth) for \loader\keys\auto\
    #[arg(long, value_name = "DIR")]
    enroll_keys: Option<PathBuf>,
    /// Name of the UKI under \EFI\Linux\ and of the boot entry (default: the UKI's file stem)
    #[arg(long)]
    entry_name: Option<String>,
    /// Boot menu timeout in seconds (systemd-boot, GRUB)
    #[arg(long, default_value_t = 0)]
    timeout: u32,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    /// No progress bar
    #[arg(short, long)]
    quiet: bool,
}

fn size_arg(s: &Option<String>) -> Result<Option<u64>> {
    s.as_deref()
        .map(layout::parse_size)
        .transpose()
        .map_err(Into::into)
}

pub fn run(a: ImageArgs) -> Result<ExitCode> {
    let kind = Layout::parse(&a.layout)?;
    let uki =
        Input::open(&a.uki).with_context(|| format!("reading the UKI {}", a.uki.display()))?;
    let open_opt = |p: &Option<PathBuf>, what: &str| -> Result<Option<Input>> {
        p.as_ref()
            .map(|p| Input::open(p).with_context(|| format!("reading the {what} {}", p.display())))
            .transpose()
    };
    let sdboot = open_opt(&a.systemd_boot, "systemd-boot binary")?;
    let grub = open_opt(&a.grub, "GRUB binary")?;
    let shim = open_opt(&a.shim, "shim binary")?;
    let mut extra: Vec<(String, Input)> = Vec::new();
    for spec in &a.add_file {
        let (src, dst) = spec
            .split_once(':')
            .with_context(|| format!("--add-file {spec:?}: expected SRC:ESP_PATH"))?;
        let data = Input::open(Path::new(src)).with_context(|| format!("--add-file {spec:?}"))?;
        extra.push((dst.to_string(), data));
    }
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(dir) = &a.enroll_keys {
        for name in ["PK.auth", "KEK.auth", "db.auth", "dbx.auth"] {
            let p = dir.join(name);
            if p.exists() {
                let data = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                keys.push((name.to_string(), data));
            }
        }
        if keys.is_empty() {
            bail!(
                "--enroll-keys {}: no PK.auth, KEK.auth, db.auth or dbx.auth there",
                dir.display()
            );
        }
    }

    let mut o = ImageOptions::new(kind, &uki);
    o.size = size_arg(&a.size)?;
    o.esp_size = size_arg(&a.esp_size)?;
    o.sector_size = a.sector_size;
    o.label = a.label.clone();
    o.disk_guid = a.disk_guid.as_deref().map(Guid::parse).transpose()?;
    o.timestamp = match a.timestamp {
        Some(t) => t,
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => v
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number"))?,
            Err(_) => o.timestamp,
        },
    };
    o.systemd_boot = sdboot.as_deref();
    o.grub = grub.as_deref();
    o.shim = shim.as_deref();
    o.grub_prefix = a.grub_prefix.clone();
    o.entry_name = match &a.entry_name {
        Some(n) => n.clone(),
        None => a
            .uki
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty() && s != "-")
            .unwrap_or_else(|| "linux".into()),
    };
    o.timeout = a.timeout;
    o.enroll_keys = keys
        .iter()
        .map(|(n, d)| (n.clone(), d.as_slice()))
        .collect();
    o.extra_files = extra
        .iter()
        .map(|(p, d)| (p.clone(), Cow::Borrowed(&d[..])))
        .collect();
    o.extra_partitions = a
        .add_partition
        .iter()
        .map(|s| PartitionSpec::parse(s))
        .collect::<Result<_, _>>()?;

    let to_stdout = a.output == Path::new("-");
    if !to_stdout {
        refuse_unsafe_output(&a.output, &a.uki)?;
    }
    let (img, summary) = layout::build_image(&o)?;
    let progress = !a.quiet && std::io::stderr().is_terminal();
    if to_stdout {
        if std::io::stdout().is_terminal() {
            bail!("refusing to write a disk image to a terminal; redirect stdout or use -o FILE");
        }
        let out = std::io::stdout();
        stream(&img, &mut out.lock(), progress).context("writing the image to stdout")?;
    } else {
        write_sparse(&img, &a.output, progress)
            .with_context(|| format!("writing {}", a.output.display()))?;
    }
    let mut w: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    if a.json {
        serde_json::to_writer_pretty(&mut w, &summary)?;
        writeln!(w)?;
    } else {
        print_summary(&mut w, &summary, &a.output)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The output is truncated before it is written: it must not be an input (the UKI is
/// memory-mapped, so truncating it would crash the read) nor a block device (that is
/// `ukitool write`'s job, with its safety checks).
fn refuse_unsafe_output(out: &Path, uki: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(out) else {
        return Ok(());
    };
    if meta.file_type().is_block_device() {
        bail!(
            "{} is a block device: write the image to a file, then use `ukitool write`",
            out.display()
        );
    }
    if let (Ok(a), Ok(b)) = (out.canonicalize(), uki.canonicalize()) {
        if a == b {
            bail!("the output {} is the input UKI", out.display());
        }
    }
    Ok(())
}

fn bar(total: u64, on: bool) -> indicatif::ProgressBar {
    if !on {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        pb.set_style(style);
    }
    pb
}

/// A regular file: data extents written in place, holes left as holes (the file is
/// truncated first, so they read as zero). Extents that are all zeros (the FAT's
/// tail, zeroed partition heads) are holes too in a fresh file.
fn write_sparse(img: &DiskImage<'_>, path: &Path, progress: bool) -> Result<()> {
    let f: File = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let pb = bar(img.data_len(), progress);
    for e in img.extents() {
        if !e.data.iter().all(|&b| b == 0) {
            f.write_all_at(&e.data, e.offset)?;
        }
        pb.inc(e.data.len() as u64);
    }
    f.set_len(img.size)?;
    pb.finish_and_clear();
    Ok(())
}

/// A stream: every byte in order, zeros included.
fn stream(img: &DiskImage<'_>, out: &mut dyn Write, progress: bool) -> Result<()> {
    static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    let pb = bar(img.size, progress);
    let zeros = |out: &mut dyn Write, mut n: u64| -> std::io::Result<()> {
        pb.inc(n);
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            out.write_all(&ZEROS[..k])?;
            n -= k as u64;
        }
        Ok(())
    };
    let mut pos = 0u64;
    for e in img.extents() {
        zeros(out, e.offset - pos)?;
        out.write_all(&e.data)?;
        pb.inc(e.data.len() as u64);
        pos = e.end();
    }
    zeros(out, img.size - pos)?;
    out.flush()?;
    pb.finish_and_clear();
    Ok(())
}

fn mib(n: u64) -> String {
    if n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

fn print_summary(w: &mut dyn Write, s: &ImageSummary, out: &Path) -> Result<()> {
    writeln!(
        w,
        "{}: {} GPT disk, {}-byte sectors, disk GUID {}, layout {}",
        out.display(),
        mib(s.size),
        s.sector_size,
        s.disk_guid,
        serde_json::to_value(s.layout)?.as_str().unwrap_or("?")
    )?;
    for p in &s.partitions {
        writeln!(
            w,
            "  {} {:<8} {:<12} {:>9} at {:#x}  {}",
            p.index,
            p.name,
            p.type_name.unwrap_or("?"),
            mib(p.size),
            p.offset,
            p.unique_guid
        )?;
    }
    writeln!(
        w,
        "  ESP: {} label {} id {}, {}-byte clusters",
        s.esp.fat_type.name(),
        s.esp.label,
        s.esp.volume_id,
        s.esp.cluster_size
    )?;
    for f in &s.esp.files {
        writeln!(w, "    /{} ({} bytes)", f.path, f.size)?;
    }
    Ok(())
}
