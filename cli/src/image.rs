//! `ukitool image`: a bootable raw GPT disk image from a UKI. The core computes the
//! image as extents; this module reads the inputs and writes the extents out, as a
//! sparse file (holes where the image is zero) or as a stream on stdout.
//!
//! The options that shape the image ([`ImageOptionArgs`]) are shared with `ukitool
//! write`, which synthesises the same image and streams it to a device.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ukitool_core::command::{
    self,
    image::{
        ImageFiles, ImageSettings, DEFAULT_LABEL, DEFAULT_LAYOUT, DEFAULT_SECTOR_SIZE,
        DEFAULT_TIMEOUT,
    },
};
use ukitool_core::disk::export::{self, Export, ExportOptions, Format};
use ukitool_core::disk::layout::{self, ImageOptions, ImageSummary};
use ukitool_core::disk::DiskImage;
use ukitool_core::keys::KeySet;
use ukitool_core::secureboot::SecureBootFiles;

use crate::build::source_date_epoch;
use crate::input::Input;
use crate::output::{self, Codec};

#[derive(clap::Args)]
pub struct ImageArgs {
    /// The UKI to boot
    #[arg(long, value_name = "FILE")]
    uki: PathBuf,
    /// Output image file, or `-` for stdout. Its extensions choose the format and codec
    /// unless --format or --compress do: disk.qcow2, disk.vhd, disk.vmdk, disk.raw.zst,
    /// disk.img.xz, disk.vhd.gz
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Container: raw, qcow2 (v3), vhd (dynamic: Hyper-V, VirtualBox), vhd-fixed (Azure;
    /// a whole number of MiB) or vmdk (streamOptimized: VMware, OVA). Default: from the
    /// output's extension, else raw
    #[arg(long, value_name = "FORMAT", value_parser = Format::NAMES.to_vec(), hide_possible_values = true)]
    format: Option<String>,
    /// Compress the output as it is written: zstd (level 1-22, default 3), xz (0-9,
    /// default 6) or gzip (1-9, default 6), e.g. zstd:19; none for no codec. Default:
    /// from the output's last extension (.zst, .xz, .gz); `-o -` is not compressed
    /// unless this says so
    #[arg(long, value_name = "CODEC[:LEVEL]")]
    compress: Option<String>,
    /// Also write the image's bmap (bmap-tools format 2.0, a sha256 for each range of
    /// mapped 4 KiB blocks) to FILE, for `bmaptool copy` or `ukitool write --bmap`
    #[arg(long, value_name = "FILE")]
    bmap: Option<PathBuf>,
    /// Disk size (bytes, or with a K/M/G/T suffix); default: just large enough
    #[arg(long)]
    size: Option<String>,
    #[command(flatten)]
    image: ImageOptionArgs,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    /// No progress bar
    #[arg(short, long)]
    quiet: bool,
}

/// Everything that shapes the image except its size and where it goes; `ukitool image`
/// and `ukitool write` (with a UKI source) take the same options.
#[derive(clap::Args)]
pub struct ImageOptionArgs {
    /// uefi (the UKI, or any EFI application, as \EFI\BOOT\BOOT<arch>.EFI; drivers,
    /// addons and a systemd-stub without .linux are refused), systemd-boot, grub or
    /// talos
    #[arg(long, default_value = DEFAULT_LAYOUT)]
    pub layout: String,
    /// ESP size; default: the layout's, or what the files need (at least 100M)
    #[arg(long, value_name = "SIZE")]
    pub esp_size: Option<String>,
    /// Logical sector size: 512 or 4096
    #[arg(long, default_value_t = DEFAULT_SECTOR_SIZE)]
    pub sector_size: u64,
    /// ESP volume label; also seeds the disk and partition GUIDs
    #[arg(long, default_value = DEFAULT_LABEL)]
    pub label: String,
    /// Add a file to the ESP (repeatable)
    #[arg(long, value_name = "SRC:ESP_PATH")]
    pub add_file: Vec<String>,
    /// Add a partition; TYPE is esp, bios, linux (default), xbootldr or a GUID; FS is
    /// xfs or fat (default: unformatted)
    #[arg(long, value_name = "NAME:SIZE[:TYPE[:FS]]")]
    pub add_partition: Vec<String>,
    /// Add a file, or a directory recursively, to the filesystem of an added partition
    /// (repeatable)
    #[arg(long, value_name = "NAME:SRC:PATH")]
    pub add_file_to: Vec<String>,
    /// Disk GUID (default: derived from --label)
    #[arg(long, value_name = "GUID")]
    pub disk_guid: Option<String>,
    /// Unix time for FAT timestamps (default: $SOURCE_DATE_EPOCH, else 1980-01-01)
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<i64>,
    /// systemd-boot EFI binary (systemd-boot layout; talos layout with systemd-boot)
    #[arg(long, value_name = "FILE")]
    pub systemd_boot: Option<PathBuf>,
    /// GRUB EFI binary (grub layout; talos layout with GRUB)
    #[arg(long, value_name = "FILE")]
    pub grub: Option<PathBuf>,
    /// shim: installed as BOOT<arch>.EFI with GRUB next to it as grub<arch>.efi
    #[arg(long, value_name = "FILE")]
    pub shim: Option<PathBuf>,
    /// Directory on the ESP where GRUB reads grub.cfg (default: GRUB's built-in prefix)
    #[arg(long, value_name = "PATH")]
    pub grub_prefix: Option<String>,
    /// Directory with PK.auth, KEK.auth, db.auth (and dbx.auth) for \loader\keys\auto\
    #[arg(long, value_name = "DIR")]
    pub enroll_keys: Option<PathBuf>,
    /// A key directory (`ukitool keys create`): sign systemd-boot and the UKI with db
    /// (unless db signed them already) and put PK, KEK and db .auth files in
    /// \loader\keys\auto\ for systemd-boot to enrol
    #[arg(long, value_name = "DIR", conflicts_with = "enroll_keys")]
    pub secure_boot_keys: Option<PathBuf>,
    /// loader.conf's secure-boot-enroll: off, manual, if-safe or force (default with
    /// --secure-boot-keys: if-safe, or manual for systemd-boot 252, which lacks it)
    #[arg(long, value_name = "MODE")]
    pub secure_boot_enroll: Option<String>,
    /// Name of the UKI under \EFI\Linux\ and of the boot entry (default: the UKI's file
    /// stem; talos: the version in Talos-<VERSION>.efi, default the UKI's .osrel VERSION_ID)
    #[arg(long)]
    pub entry_name: Option<String>,
    /// talos: dual-boot (systemd-boot for UEFI, GRUB for BIOS), sd-boot or grub; default
    /// what Talos picks: dual-boot on amd64, sd-boot on arm64 and with --enroll-keys
    #[arg(long, value_name = "LOADER", value_parser = ["dual-boot", "sd-boot", "grub"], hide_possible_values = true)]
    pub talos_bootloader: Option<String>,
    /// talos: the Talos release whose partition sizes to follow (BOOT 1000 MiB on 1.10,
    /// 2000 MiB from 1.11); default the newest
    #[arg(long, value_name = "X.Y")]
    pub talos_version: Option<String>,
    /// talos: GRUB's i386-pc directory (Debian: /usr/lib/grub/i386-pc, grub-pc-bin), from
    /// which ukitool assembles core.img for BIOS boot (dual-boot and grub)
    #[arg(long, value_name = "DIR")]
    pub grub_bios: Option<PathBuf>,
    /// talos: a META record, TAG=VALUE or TAG=@FILE; TAG is a number (0x0a) or a name
    /// (metal-network-platform-config) (repeatable)
    #[arg(long, value_name = "TAG=VALUE")]
    pub meta: Vec<String>,
    /// Boot menu timeout in seconds (systemd-boot, GRUB)
    #[arg(long, default_value_t = DEFAULT_TIMEOUT)]
    pub timeout: u32,
}

/// The files named by [`ImageOptionArgs`], read once; the image borrows from them.
pub struct ImageInputs {
    sdboot: Option<Input>,
    grub: Option<Input>,
    shim: Option<Input>,
    extra: Vec<(String, Input)>,
    /// (partition name, path, bytes) from --add-file-to.
    part_files: Vec<(String, String, Input)>,
    keys: Vec<(String, Vec<u8>)>,
    /// GRUB's i386-pc files that core.img needs, by name (--grub-bios).
    grub_bios: Vec<(String, Vec<u8>)>,
    /// (FILE, bytes) of each --meta TAG=@FILE.
    meta_files: Vec<(String, Vec<u8>)>,
    /// The key set of --secure-boot-keys, and what it changes (made on first use).
    key_set: Option<KeySet>,
    secure_boot: OnceCell<SecureBootFiles>,
}

pub fn size_arg(s: &Option<String>) -> Result<Option<u64>> {
    s.as_deref()
        .map(layout::parse_size)
        .transpose()
        .map_err(Into::into)
}

fn pairs(v: &[(String, Vec<u8>)]) -> Vec<(String, &[u8])> {
    v.iter().map(|(n, d)| (n.clone(), d.as_slice())).collect()
}

/// The files of GRUB's i386-pc directory `dir` that core.img needs: moddep.lst, then
/// the images and the modules it resolves to.
fn read_grub_bios(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let moddep_path = dir.join("moddep.lst");
    let moddep = std::fs::read(&moddep_path).with_context(|| {
        format!(
            "--grub-bios {}: reading {} (GRUB's i386-pc directory; Debian: grub-pc-bin)",
            dir.display(),
            moddep_path.display()
        )
    })?;
    let names = ukitool_core::disk::talos::bios::needed_files(
        &moddep,
        ukitool_core::disk::talos::bios::MODULES,
    )?;
    names
        .into_iter()
        .map(|n| {
            let p = dir.join(&n);
            let d = std::fs::read(&p)
                .with_context(|| format!("--grub-bios: reading {}", p.display()))?;
            Ok((n, d))
        })
        .collect()
}

impl ImageInputs {
    /// The core's view of the files, with the UKI `uki`; with --secure-boot-keys, the
    /// signed binaries and `.auth` files (made once, then reused).
    fn files<'a>(&'a self, uki: &'a [u8], settings: &ImageSettings) -> Result<ImageFiles<'a>> {
        let mut files = self.plain_files(uki);
        if let Some(keys) = &self.key_set {
            if self.secure_boot.get().is_none() {
                let sb = command::image::secure_boot(
                    settings,
                    &files,
                    keys,
                    source_date_epoch().as_deref(),
                )?;
                let _ = self.secure_boot.set(sb);
            }
            files.secure_boot = self.secure_boot.get();
        }
        Ok(files)
    }

    /// What --secure-boot-keys did, one line each.
    pub fn secure_boot_notes(&self) -> &[String] {
        self.secure_boot.get().map_or(&[], |s| &s.notes)
    }

    fn plain_files<'a>(&'a self, uki: &'a [u8]) -> ImageFiles<'a> {
        ImageFiles {
            secure_boot: None,
            uki,
            systemd_boot: self.sdboot.as_deref(),
            grub: self.grub.as_deref(),
            shim: self.shim.as_deref(),
            enroll_keys: self
                .keys
                .iter()
                .map(|(n, d)| (n.clone(), d.as_slice()))
                .collect(),
            extra_files: self
                .extra
                .iter()
                .map(|(p, d)| (p.clone(), &d[..]))
                .collect(),
            partition_files: self
                .part_files
                .iter()
                .map(|(n, p, d)| (n.clone(), p.clone(), &d[..]))
                .collect(),
            grub_bios: pairs(&self.grub_bios),
            meta_files: pairs(&self.meta_files),
        }
    }
}

impl ImageOptionArgs {
    /// The options as given; the files they name are read by [`Self::load`].
    fn settings(&self) -> ImageSettings {
        ImageSettings {
            layout: self.layout.clone(),
            size: None,
            esp_size: self.esp_size.clone(),
            sector_size: self.sector_size,
            label: self.label.clone(),
            disk_guid: self.disk_guid.clone(),
            timestamp: self.timestamp,
            grub_prefix: self.grub_prefix.clone(),
            entry_name: self.entry_name.clone(),
            timeout: self.timeout,
            add_partition: self.add_partition.clone(),
            talos_bootloader: self.talos_bootloader.clone(),
            talos_version: self.talos_version.clone(),
            meta: self.meta.clone(),
            secure_boot_enroll: self.secure_boot_enroll.clone(),
        }
    }

    /// The options for an image of the UKI at `uki_path`, whose file stem names the
    /// boot entry unless `--entry-name` does.
    fn settings_for(&self, uki_path: &Path, size: Option<String>) -> ImageSettings {
        let stem = uki_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty() && s != "-");
        let mut s = self.settings();
        s.size = size;
        // Talos names the UKI after its version, not its file.
        if s.layout != "talos" {
            s.entry_name = s.entry_name.or(stem);
        }
        s
    }

    /// True when no option was changed from its default (`write` refuses image options
    /// with a raw image source, where they would be silently ignored).
    pub fn is_default(&self) -> bool {
        self.settings() == ImageSettings::default()
            && self.add_file.is_empty()
            && self.add_file_to.is_empty()
            && self.systemd_boot.is_none()
            && self.grub.is_none()
            && self.shim.is_none()
            && self.enroll_keys.is_none()
            && self.grub_bios.is_none()
            && self.secure_boot_keys.is_none()
    }

    /// Read every file the options name.
    pub fn load(&self) -> Result<ImageInputs> {
        let open_opt = |p: &Option<PathBuf>, what: &str| -> Result<Option<Input>> {
            p.as_ref()
                .map(|p| {
                    Input::open(p).with_context(|| format!("reading the {what} {}", p.display()))
                })
                .transpose()
        };
        let sdboot = open_opt(&self.systemd_boot, "systemd-boot binary")?;
        let grub = open_opt(&self.grub, "GRUB binary")?;
        let shim = open_opt(&self.shim, "shim binary")?;
        let mut extra: Vec<(String, Input)> = Vec::new();
        for spec in &self.add_file {
            let (src, dst) = spec
                .split_once(':')
                .with_context(|| format!("--add-file {spec:?}: expected SRC:ESP_PATH"))?;
            let data =
                Input::open(Path::new(src)).with_context(|| format!("--add-file {spec:?}"))?;
            extra.push((dst.to_string(), data));
        }
        let mut part_files = Vec::new();
        for spec in &self.add_file_to {
            let mut it = spec.splitn(3, ':');
            let (Some(part), Some(src), Some(dst)) = (it.next(), it.next(), it.next()) else {
                bail!("--add-file-to {spec:?}: expected NAME:SRC:PATH");
            };
            for (path, data) in
                read_tree(Path::new(src), dst).with_context(|| format!("--add-file-to {spec:?}"))?
            {
                part_files.push((part.to_string(), path, data));
            }
        }
        let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(dir) = &self.enroll_keys {
            for name in ["PK.auth", "KEK.auth", "db.auth", "dbx.auth"] {
                let p = dir.join(name);
                if p.exists() {
                    let data =
                        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
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
        let grub_bios = match &self.grub_bios {
            Some(dir) => read_grub_bios(dir)?,
            None => Vec::new(),
        };
        let mut meta_files = Vec::new();
        for arg in &self.meta {
            use ukitool_core::disk::talos::meta::{parse_arg, MetaSource};
            if let MetaSource::File(file) = parse_arg(arg)?.source {
                let d = std::fs::read(&file).with_context(|| format!("--meta {arg:?}"))?;
                meta_files.push((file, d));
            }
        }
        let key_set = self
            .secure_boot_keys
            .as_deref()
            .map(crate::keys::load_key_set)
            .transpose()
            .context("--secure-boot-keys")?;
        Ok(ImageInputs {
            grub_bios,
            meta_files,
            key_set,
            secure_boot: OnceCell::new(),
            sdboot,
            grub,
            shim,
            extra,
            part_files,
            keys,
        })
    }

    /// The core's options for an image of `size` bytes (None: just large enough) from
    /// the UKI `uki` (read from `uki_path`, whose stem names the boot entry).
    pub fn options<'a>(
        &self,
        inputs: &'a ImageInputs,
        uki: &'a [u8],
        uki_path: &Path,
        size: Option<u64>,
    ) -> Result<ImageOptions<'a>> {
        let settings = self.settings_for(uki_path, None);
        let mut o = settings.options(
            inputs.files(uki, &settings)?,
            source_date_epoch().as_deref(),
        )?;
        o.size = size;
        Ok(o)
    }
}

/// The file `src` as `dst`, or the files under the directory `src` (recursively, in
/// name order so that images are reproducible) under `dst`.
fn read_tree(src: &Path, dst: &str) -> Result<Vec<(String, Input)>> {
    if !src.is_dir() {
        return Ok(vec![(dst.to_string(), Input::open(src)?)]);
    }
    let mut names: Vec<_> = std::fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", src.display()))?;
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let sub = format!("{}/{}", dst.trim_end_matches('/'), name.to_string_lossy());
        out.extend(read_tree(&src.join(&name), &sub)?);
    }
    Ok(out)
}

pub fn run(a: ImageArgs) -> Result<ExitCode> {
    let settings = a.image.settings_for(&a.uki, a.size.clone());
    // A mistyped layout is reported before any (possibly large) file is read.
    settings.layout()?;
    let uki =
        Input::open(&a.uki).with_context(|| format!("reading the UKI {}", a.uki.display()))?;
    let inputs = a.image.load()?;

    let to_stdout = a.output == Path::new("-");
    if !to_stdout {
        refuse_unsafe_output(&a.output, &a.uki)?;
    }
    let (img, summary) = command::image(
        &settings,
        inputs.files(&uki, &settings)?,
        source_date_epoch().as_deref(),
    )?;
    let progress = !a.quiet && std::io::stderr().is_terminal();
    if to_stdout && std::io::stdout().is_terminal() {
        bail!("refusing to write a disk image to a terminal; redirect stdout or use -o FILE");
    }
    let (format, codec) = output_kind(&a, to_stdout)?;
    if let Some(path) = &a.bmap {
        if format != Format::Raw {
            bail!(
                "--bmap describes a raw image; it does not apply to --format {}",
                format.name()
            );
        }
        std::fs::write(path, export::bmap::bmap(&img))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let container = (format != Format::Raw || codec.is_some()).then(|| {
        let codec = codec.map(|c| format!(", {}", c.name())).unwrap_or_default();
        format!("{}{codec}", format.name())
    });
    if container.is_none() {
        write_raw(&img, &a, &uki, progress)?;
    } else {
        let opts = ExportOptions {
            timestamp: a
                .image
                .timestamp
                .or_else(|| source_date_epoch().and_then(|s| s.trim().parse().ok())),
            id_seed: summary.disk_guid.to_string(),
            file_name: a
                .output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|_| !to_stdout),
            deflate_level: None,
        };
        let exp = Export::new(&img, format, &opts)?;
        let pb = bar(exp.len_hint().unwrap_or(img.size), progress);
        output::write(exp, &img, &a.output, codec, &pb)
            .with_context(|| format!("writing {}", a.output.display()))?;
        pb.finish_and_clear();
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
        if let (Some(c), Ok(m)) = (&container, std::fs::metadata(&a.output)) {
            writeln!(w, "  written as {c}: {} bytes", m.len())?;
        }
        for n in inputs.secure_boot_notes() {
            writeln!(w, "  Secure Boot: {n}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The container and codec: from --format and --compress, else from the output's
/// extensions (never a codec for stdout unless --compress names one).
fn output_kind(a: &ImageArgs, to_stdout: bool) -> Result<(Format, Option<Codec>)> {
    let (ext_codec, ext_format) = if to_stdout {
        (None, None)
    } else {
        output::from_name(&a.output)
    };
    let codec = match &a.compress {
        Some(c) => Codec::parse(c)?,
        None => ext_codec,
    };
    let format = match &a.format {
        Some(f) => Format::parse(f)?,
        None => ext_format.unwrap_or(Format::Raw),
    };
    Ok((format, codec))
}

/// A raw image, uncompressed: a sparse file (the UKI copied by the kernel) or stdout.
fn write_raw(img: &DiskImage<'_>, a: &ImageArgs, uki: &Input, progress: bool) -> Result<()> {
    if a.output == Path::new("-") {
        let out = std::io::stdout();
        return stream(img, &mut out.lock(), progress).context("writing the image to stdout");
    }
    // The UKI's bytes go by copy_file_range from this descriptor (see copy_mapped);
    // only when it is the regular file of the mapped length, else by write(2).
    let source = File::open(&a.uki).ok().filter(|f| {
        f.metadata()
            .is_ok_and(|m| m.is_file() && m.len() == uki.len() as u64)
    });
    write_sparse(
        img,
        &a.output,
        progress,
        source.as_ref().map(|f| (f, &uki[..])),
    )
    .with_context(|| format!("writing {}", a.output.display()))
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
/// truncated first, so they read as zero). Extents of zeros (the FAT's tail, zeroed
/// partition heads) are written too: they must read as zero on the disk as well, and
/// sparse-aware writers (`ukitool write`, bmaptool) skip the file's holes, so a hole
/// there left a stale device's old bytes in the FAT (fsck.fat: "Cluster ... out of
/// range"; found by bench/, issue 8). `source` is an input file and its mapping:
/// extents borrowed from that mapping are copied from the file by the kernel.
fn write_sparse(
    img: &DiskImage<'_>,
    path: &Path,
    progress: bool,
    source: Option<(&File, &[u8])>,
) -> Result<()> {
    let f: File = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let pb = bar(img.data_len(), progress);
    for e in img.extents() {
        let copied = match (source, &e.data) {
            (Some((file, map)), Cow::Borrowed(d)) => copy_mapped(file, map, d, &f, e.offset),
            _ => 0,
        };
        if let Some(rest) = e.data.get(copied..).filter(|r| !r.is_empty()) {
            f.write_all_at(rest, e.offset + copied as u64)?;
        }
        pb.inc(e.data.len() as u64);
    }
    f.set_len(img.size)?;
    pb.finish_and_clear();
    Ok(())
}

/// Copy `data`, a slice of `map` (the mapping of `file`), to `out` at `at` with
/// copy_file_range(2): the kernel moves page cache to page cache (or shares blocks), with
/// no page faults on the map and no copy through user space; about half the system time
/// of write(2) from the map for a 110 MiB UKI (bench/, issue 8). Returns the bytes copied;
/// the caller writes the rest (any error, e.g. EXDEV or ENOSYS, just stops the copy).
pub(crate) fn copy_mapped(file: &File, map: &[u8], data: &[u8], out: &File, at: u64) -> usize {
    use std::os::fd::AsRawFd;
    let Some(start) = (data.as_ptr() as usize).checked_sub(map.as_ptr() as usize) else {
        return 0;
    };
    if start
        .checked_add(data.len())
        .is_none_or(|end| end > map.len())
    {
        return 0;
    }
    let mut done = 0usize;
    while done < data.len() {
        let off_in = start.checked_add(done).and_then(|o| i64::try_from(o).ok());
        let off_out = at
            .checked_add(done as u64)
            .and_then(|o| i64::try_from(o).ok());
        let (Some(mut off_in), Some(mut off_out)) = (off_in, off_out) else {
            break;
        };
        // SAFETY: a plain syscall on two open descriptors; the offsets are locals.
        #[allow(unsafe_code)]
        let n = unsafe {
            libc::copy_file_range(
                file.as_raw_fd(),
                &mut off_in,
                out.as_raw_fd(),
                &mut off_out,
                data.len() - done,
                0,
            )
        };
        match usize::try_from(n) {
            Ok(n) if n > 0 => done = done.saturating_add(n).min(data.len()),
            _ => break,
        }
    }
    done
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

pub fn print_summary(w: &mut dyn Write, s: &ImageSummary, out: &Path) -> Result<()> {
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
    if let Some(t) = &s.talos {
        writeln!(
            w,
            "  Talos {} image, size table {}, version {}",
            t.bootloader.name(),
            t.table,
            t.version
        )?;
        if !t.boot_files.is_empty() {
            writeln!(w, "  BOOT (XFS): /{}", t.boot_files.join(", /"))?;
        }
        if let Some(n) = t.core_img_size {
            writeln!(
                w,
                "  BIOS: GRUB i386-pc core.img ({n} bytes), boot.img in the MBR"
            )?;
        }
        let tags: Vec<String> = t.meta_tags.iter().map(|t| format!("{t:#04x}")).collect();
        writeln!(
            w,
            "  META: {}",
            if tags.is_empty() {
                "empty".into()
            } else {
                tags.join(", ")
            }
        )?;
    }
    Ok(())
}
