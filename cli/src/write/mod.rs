//! `ukitool write` and `ukitool disks`: put an image or a UKI on a disk, safely.
//!
//! Every refusal is decided before anything is opened for writing: the system disk, a
//! mounted or in-use device, a read-only or too-small device, the device holding the
//! source, a non-block target without `--to-file`, and no terminal without `--yes`.
//! Then the device is opened O_EXCL and [`engine::write_image`] does the work.

mod device;
mod engine;
mod source;
mod sysblock;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use self::engine::Failure;
use self::source::Source;
use self::sysblock::{DiskInfo, MountTable};
use crate::image::{size_arg, ImageInputs, ImageOptionArgs};
use crate::imagefile::Opened;
use crate::input::Input;
use ukitool_core::disk::layout::{self, ImageSummary};
use ukitool_core::units::human_size as human;

#[derive(clap::Args)]
pub struct WriteArgs {
    /// A disk image (raw; raw compressed with zstd, xz or gzip; qcow2, VHD or VMDK:
    /// recognised by content and read as a stream, no temporary file), a UKI
    /// (synthesised into a disk image on the fly), or `-` for a raw image on stdin
    pub source: PathBuf,
    /// The block device to overwrite (e.g. /dev/sdb)
    pub device: PathBuf,
    /// Do not ask for confirmation (the system-disk refusal still applies)
    #[arg(long)]
    pub yes: bool,
    /// Skip reading the data back to check it
    #[arg(long)]
    pub no_verify: bool,
    /// Allow DEVICE to be a regular file (created if missing)
    #[arg(long)]
    pub to_file: bool,
    /// Unmount the device's mounted partitions first, instead of refusing
    #[arg(long)]
    pub unmount: bool,
    /// DANGEROUS: allow overwriting the disk that holds the running system (/, /usr,
    /// /boot or the ESP). This destroys the installed system.
    #[arg(long)]
    pub force_system_disk: bool,
    /// Progress and the summary as JSON lines on stdout
    #[arg(long)]
    pub json: bool,
    /// Write only the ranges this bmap (bmaptool's block map, format 2.0 or 1.x) maps,
    /// checking each range's digest; default: SOURCE.bmap beside the image, if any
    #[arg(long, value_name = "FILE", conflicts_with = "no_bmap")]
    pub bmap: Option<PathBuf>,
    /// Do not use a .bmap found beside the image
    #[arg(long)]
    pub no_bmap: bool,
    /// Check that the SOURCE file (as given: compressed, or the VM image) has this
    /// sha256 before writing anything
    #[arg(long, value_name = "HEX", conflicts_with = "checksum")]
    pub sha256: Option<String>,
    /// Like --sha256, with the digest from a sha256sum file (the line naming SOURCE, or
    /// its only line)
    #[arg(long, value_name = "FILE.sha256")]
    pub checksum: Option<PathBuf>,
    /// Image size for a UKI SOURCE (bytes, or with a K/M/G/T suffix); default: the whole
    /// device, so the backup GPT lands at its end
    #[arg(long)]
    pub size: Option<String>,
    /// How a UKI SOURCE becomes a disk image: the options of `ukitool image`
    #[command(flatten, next_help_heading = "Image options (UKI SOURCE only)")]
    pub image: ImageOptionArgs,
}

#[derive(clap::Args)]
pub struct DisksArgs {
    /// Output as JSON
    #[arg(long)]
    pub json: bool,
    /// Include loop, RAM and optical devices, and empty ones
    #[arg(long)]
    pub all: bool,
}

pub fn run_disks(a: DisksArgs) -> Result<ExitCode> {
    let disks: Vec<DiskInfo> = sysblock::list_disks()
        .into_iter()
        .filter(|d| a.all || !d.hidden_by_default())
        .collect();
    let mut out = std::io::stdout().lock();
    if a.json {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            disks: &'a [DiskInfo],
        }
        serde_json::to_writer_pretty(&mut out, &Report { disks: &disks })?;
        writeln!(out)?;
    } else {
        print_disks(&mut out, &disks)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_disks(w: &mut dyn Write, disks: &[DiskInfo]) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<14} {:>10} {:<7} {:>3} {:>3} {:<7} {:<24} MOUNTED",
        "DEVICE", "SIZE", "TRAN", "RM", "RO", "SYSTEM", "MODEL"
    )?;
    for d in disks {
        let model = d.backing_file.as_deref().unwrap_or(&d.model);
        writeln!(
            w,
            "{:<14} {:>10} {:<7} {:>3} {:>3} {:<7} {:<24} {}",
            d.path,
            human(d.size),
            d.transport,
            if d.removable { "1" } else { "0" },
            if d.read_only { "1" } else { "0" },
            if d.system { "yes" } else { "no" },
            model,
            d.mountpoints.join(",")
        )?;
    }
    Ok(())
}

/// The target as the checks see it.
struct TargetInfo {
    path: PathBuf,
    is_block: bool,
    /// Kernel name (`sdb`, `loop0p1`) for a block device.
    name: String,
    size: u64,
}

pub fn run_write(a: WriteArgs) -> Result<ExitCode> {
    let from_stdin = a.source == Path::new("-");
    let is_uki = !from_stdin && starts_with_mz(&a.source)?;
    if !is_uki && (a.size.is_some() || !a.image.is_default()) {
        bail!(
            "--size, --layout and the other image options shape the disk image made from a \
             UKI; {} is a raw image, written as it is",
            if from_stdin {
                "stdin".into()
            } else {
                a.source.display().to_string()
            }
        );
    }
    // Only a UKI is mapped whole; a raw image (possibly a block device) is read in chunks.
    // The synthesised image borrows the UKI and the image options' files.
    let uki = if is_uki {
        Some(
            Input::open(&a.source)
                .with_context(|| format!("reading the UKI {}", a.source.display()))?,
        )
    } else {
        None
    };
    let inputs = if is_uki { Some(a.image.load()?) } else { None };
    let (mut src, summary) = open_source(&a, uki.as_deref(), inputs.as_ref(), from_stdin)?;
    if let Some(want) = wanted_digest(&a, from_stdin)? {
        src = Box::new(source::DigestChecked::new(src, &a.source, want));
    }

    let target = check_target(&a, src.as_ref())?;
    let mounted = mounts_in_the_way(&a, &target)?;
    if !a.yes && !confirmed(&target, src.as_ref(), &mounted, from_stdin)? {
        eprintln!("ukitool: cancelled, nothing written");
        return Ok(ExitCode::from(1));
    }
    unmount_all(&mounted)?;

    let dev = device::Target::open(&target.path, a.to_file)?;
    let mut size = Some(dev.size()?);
    if !dev.is_block {
        match src.size() {
            Some(need) if size < Some(need) => {
                dev.buffered.set_len(need)?;
                size = Some(need);
            }
            Some(_) => {}
            // stdin into a file: the file grows as needed.
            None => size = None,
        }
    }
    let opts = engine::Options {
        verify: !a.no_verify,
        json: a.json,
        corrupt_at: env_u64("UKITOOL_TEST_CORRUPT_AT"),
        throttle: env_u64("UKITOOL_TEST_THROTTLE_MS").map(Duration::from_millis),
    };
    engine::catch_interrupts();
    let what = src.describe();
    let result = engine::write_image(src.as_mut(), &dev, size, &opts);
    drop(dev);
    report(&a, &target, &what, summary.as_ref(), result)
}

/// What gets written: the image synthesised from a UKI (with its summary), stdin, or a
/// raw image file.
fn open_source<'a>(
    a: &'a WriteArgs,
    uki: Option<&'a [u8]>,
    inputs: Option<&'a ImageInputs>,
    from_stdin: bool,
) -> Result<(Box<dyn Source + 'a>, Option<ImageSummary>)> {
    Ok(match (uki, inputs) {
        (Some(bytes), Some(inputs)) => {
            let (image, summary) = synthesize(a, inputs, bytes)?;
            let what = format!("UKI {} in {} layout", a.source.display(), a.image.layout);
            (
                Box::new(source::Synthesized::new(image, what)),
                Some(summary),
            )
        }
        _ if from_stdin => {
            if a.bmap.is_some() {
                bail!("--bmap needs a SOURCE file, not stdin");
            }
            (Box::new(source::Streamed::stdin()), None)
        }
        _ => (open_image(a)?, None),
    })
}

/// A disk image file, opened by its content, with its bmap when there is one.
fn open_image<'a>(a: &WriteArgs) -> Result<Box<dyn Source + 'a>> {
    let path = &a.source;
    let (_, opened) = crate::imagefile::open(path)?;
    let bmap = load_bmap(a)?;
    let ranges = bmap.as_ref().map(|b| {
        b.ranges
            .iter()
            .map(|r| (r.offset, r.len))
            .collect::<Vec<_>>()
    });
    let size_of = |size: u64| -> Result<()> {
        match &bmap {
            Some(b) if b.image_size != size => bail!(
                "the bmap is for an image of {} bytes, {} has {size}",
                b.image_size,
                path.display()
            ),
            _ => Ok(()),
        }
    };
    Ok(match opened {
        Opened::Raw(file) => {
            let raw = source::RawFile::from_file(file, path, ranges)?;
            size_of(raw.size().unwrap_or(0))?;
            with_bmap(raw, bmap)?
        }
        Opened::Virtual(disk) => {
            size_of(ukitool_core::readat::ReadAt::size(disk.as_ref()))?;
            with_bmap(source::Virtual::new(disk, path, ranges), bmap)?
        }
        Opened::Stream(stream) => {
            let mut s = source::Streamed::decoded(stream, path);
            if let Some(b) = &bmap {
                s = s.with_runs(
                    b.image_size,
                    source::plan_runs(b.image_size, ranges.unwrap_or_default()),
                );
            }
            with_bmap(s, bmap)?
        }
    })
}

/// `src`, checked against `bmap`'s range digests when there is one.
fn with_bmap<'a, S: Source + 'a>(
    src: S,
    bmap: Option<ukitool_core::bmap::Bmap>,
) -> Result<Box<dyn Source + 'a>> {
    Ok(match bmap {
        Some(b) => Box::new(source::RangeChecked::new(src, b)),
        None => Box::new(src),
    })
}

/// `--bmap FILE`, or SOURCE.bmap beside the image unless `--no-bmap`.
fn load_bmap(a: &WriteArgs) -> Result<Option<ukitool_core::bmap::Bmap>> {
    let path = match &a.bmap {
        Some(p) => p.clone(),
        None if a.no_bmap || a.source == Path::new("-") => return Ok(None),
        None => match crate::imagefile::bmap_beside(&a.source) {
            Some(p) => {
                if !a.json {
                    eprintln!(
                        "ukitool: using the bmap {} (--no-bmap to ignore it)",
                        p.display()
                    );
                }
                p
            }
            None => return Ok(None),
        },
    };
    let text = fs::read(&path).with_context(|| format!("reading the bmap {}", path.display()))?;
    ukitool_core::bmap::parse(&text)
        .map(Some)
        .with_context(|| format!("the bmap {}", path.display()))
}

/// `--sha256 HEX` / `--checksum FILE`: the digest the source file must have, checked
/// while it is written ([`source::DigestChecked`]).
fn wanted_digest(a: &WriteArgs, from_stdin: bool) -> Result<Option<String>> {
    let want = match (&a.sha256, &a.checksum) {
        (Some(hex), _) => hex.trim().to_ascii_lowercase(),
        (None, Some(file)) => digest_from_sums(file, &a.source)?,
        (None, None) => return Ok(None),
    };
    if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--sha256 {want:?} is not 64 hexadecimal digits");
    }
    if from_stdin {
        bail!(
            "--sha256 and --checksum need a SOURCE file, not stdin (check it with sha256sum first)"
        );
    }
    Ok(Some(want))
}

/// The digest for `source` in a `sha256sum` file: the line whose name is the source's
/// file name (or its path), or the only line.
fn digest_from_sums(file: &Path, source: &Path) -> Result<String> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let lines: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let (hex, rest) = l.trim().split_once(char::is_whitespace)?;
            Some((hex, rest.trim_start().trim_start_matches('*')))
        })
        .collect();
    let found = lines
        .iter()
        .find(|(_, n)| {
            Path::new(n)
                .file_name()
                .is_some_and(|f| f.to_string_lossy() == name)
        })
        .or(if lines.len() == 1 {
            lines.first()
        } else {
            None
        });
    match found {
        Some((hex, _)) => Ok(hex.to_ascii_lowercase()),
        None => bail!("{} has no line for {name}", file.display()),
    }
}

/// The target's mounted partitions (mount point, device), refused unless `--unmount`;
/// a swap on it is always refused.
fn mounts_in_the_way(a: &WriteArgs, target: &TargetInfo) -> Result<Vec<(PathBuf, String)>> {
    if !target.is_block {
        return Ok(Vec::new());
    }
    let table = MountTable::read();
    let names = sysblock::stacked_on(&target.name);
    if table.swaps.iter().any(|s| names.contains(s)) {
        bail!(
            "refusing to write {}: it is in use as swap (swapoff it first)",
            target.path.display()
        );
    }
    let mounts: Vec<(PathBuf, String)> = table
        .mounts_on(&names)
        .into_iter()
        .map(|m| (m.mount_point.clone(), m.source.clone()))
        .collect();
    if let Some((mp, dev)) = mounts.first() {
        if !a.unmount {
            bail!(
                "refusing to write {}: {dev} is mounted at {}{} (pass --unmount to unmount it)",
                target.path.display(),
                mp.display(),
                if mounts.len() > 1 {
                    format!(" and {} more", mounts.len() - 1)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(mounts)
}

/// Without `--yes`: refuse when there is no terminal to ask on, else ask; true when the
/// device name was typed back.
fn confirmed(
    target: &TargetInfo,
    src: &dyn Source,
    mounted: &[(PathBuf, String)],
    from_stdin: bool,
) -> Result<bool> {
    let terminal = if from_stdin {
        std::io::stderr().is_terminal() && fs::File::open("/dev/tty").is_ok()
    } else {
        std::io::stdin().is_terminal()
    };
    if !terminal {
        bail!(
            "refusing to write {}: no terminal to confirm on (pass --yes to write without asking)",
            target.path.display()
        );
    }
    confirm(target, src, &mounts_note(mounted), from_stdin)
}

/// Unmount what `--unmount` allowed, deepest first, so /mnt/a/b goes before /mnt/a.
fn unmount_all(mounted: &[(PathBuf, String)]) -> Result<()> {
    let mut to_unmount = mounted.to_vec();
    to_unmount.sort_by_key(|(mp, _)| std::cmp::Reverse(mp.as_os_str().len()));
    for (mp, dev) in &to_unmount {
        unmount(mp).with_context(|| format!("unmounting {} ({dev})", mp.display()))?;
        eprintln!("ukitool: unmounted {} ({dev})", mp.display());
    }
    Ok(())
}

/// A PE file (a UKI) starts with "MZ"; a raw disk starts with boot code or zeros.
fn starts_with_mz(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 2];
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(f.read_exact(&mut magic).is_ok() && &magic == b"MZ")
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Turn the engine's outcome into the summary, or into one line saying what state the
/// device is in.
fn report(
    a: &WriteArgs,
    target: &TargetInfo,
    what: &str,
    image: Option<&ImageSummary>,
    result: Result<engine::Summary, Failure>,
) -> Result<ExitCode> {
    const NO_TABLE: &str = "the first MiB (protective MBR and primary GPT) was not written, so \
         the device has no valid partition table and will not boot; write it again";
    let dev = target.path.display();
    match result {
        Ok(s) => {
            if a.json {
                let v = serde_json::json!({
                    "event": "done",
                    "device": dev.to_string(),
                    "source": what,
                    "image_size": s.image_size,
                    "bytes_written": s.bytes_written,
                    "bytes_wiped": s.bytes_wiped,
                    "seconds": s.seconds,
                    "bytes_per_second": s.bytes_per_second.round(),
                    "verified": s.verified,
                    "direct_io": s.direct_io,
                    "image": image,
                });
                println!("{v}");
            } else {
                if let Some(img) = image {
                    // Where the ESP and its files landed, as `ukitool image` prints it.
                    crate::image::print_summary(&mut std::io::stderr().lock(), img, &target.path)?;
                }
                eprintln!(
                    "ukitool: wrote {} of data ({} image) to {dev} in {:.2} s ({}/s), {}",
                    human(s.bytes_written),
                    human(s.image_size),
                    s.seconds,
                    human(s.bytes_per_second as u64),
                    if s.verified {
                        "verified"
                    } else {
                        "not verified (--no-verify)"
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Failure::Interrupted { written, total }) => {
            let of = total
                .map(|t| format!(" of {}", human(t)))
                .unwrap_or_default();
            eprintln!(
                "ukitool: interrupted after writing {}{of} to {dev}; {NO_TABLE}",
                human(written)
            );
            Ok(ExitCode::from(130))
        }
        Err(Failure::Mismatch {
            offset,
            exact,
            table_written,
        }) => {
            let at = if exact {
                format!("at byte offset {offset} ({offset:#x})")
            } else {
                format!("in the block starting at byte offset {offset} ({offset:#x})")
            };
            let state = if table_written {
                "the partition table was written; do not trust this device"
            } else {
                NO_TABLE
            };
            eprintln!("ukitool: verification failed: {dev} differs from the image {at}; {state}");
            Ok(ExitCode::from(1))
        }
        Err(Failure::TooLarge {
            device_size,
            offset,
        }) => {
            bail!(
                "the image is larger than {dev} ({}): it has data at byte offset {offset} \
                 ({offset:#x}); {NO_TABLE}",
                human(device_size)
            )
        }
        Err(Failure::Io(e)) => bail!("writing {dev}: {e:#}; {NO_TABLE}"),
    }
}

/// All refusals about the target that need no mount table.
fn check_target(a: &WriteArgs, src: &dyn Source) -> Result<TargetInfo> {
    let path = a.device.clone();
    let shown = path.display();
    let meta = match fs::metadata(&path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && a.to_file => None,
        Err(e) => bail!("refusing to write {shown}: {e}"),
    };
    let is_block = meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device());
    if !is_block {
        if !a.to_file {
            bail!("refusing to write {shown}: not a block device (pass --to-file to write a regular file)");
        }
        if let Some(m) = &meta {
            if !m.is_file() {
                bail!("refusing to write {shown}: not a block device or a regular file");
            }
            if let Ok(s) = fs::metadata(&a.source) {
                if s.dev() == m.dev() && s.ino() == m.ino() {
                    bail!("refusing to write {shown}: it is the source image itself");
                }
            }
        }
        return Ok(TargetInfo {
            path,
            is_block,
            name: String::new(),
            size: meta.map_or(0, |m| m.len()),
        });
    }

    let name = sysblock::name_of_path(&path)
        .with_context(|| format!("{shown}: not found in /sys/dev/block"))?;
    let disk = sysblock::whole_disk(&name);
    let table = MountTable::read();

    // The system disk: --yes never bypasses this.
    if !a.force_system_disk {
        for mp in ["/", "/usr", "/boot", "/boot/efi", "/efi"] {
            let under = sysblock::disks_of_path(Path::new(mp), &table);
            let mounted = mp == "/" || table.mounts.iter().any(|m| m.mount_point == Path::new(mp));
            if mounted && (under.contains(&disk) || under.contains(&name)) {
                bail!(
                    "refusing to write {shown}: it is a system disk ({disk} holds {mp}); \
                     --force-system-disk overrides this and destroys the running system"
                );
            }
        }
    }

    let facts = device::block_facts(&path)?;
    let sys_ro = fs::read_to_string(format!("/sys/class/block/{name}/ro"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    if facts.read_only || sys_ro {
        bail!("refusing to write {shown}: the device is read-only");
    }
    // A stream's declared size (a zstd frame header, a bmap) counts too.
    if let Some(need) = src.declared_size() {
        if facts.size < need {
            bail!(
                "refusing to write {shown}: the device has {} bytes ({}), the image needs {} ({})",
                facts.size,
                human(facts.size),
                need,
                human(need)
            );
        }
    }

    // The device holding the source: its file system, or the source device itself.
    if a.source != Path::new("-") {
        let mut holding: BTreeSet<String> = sysblock::disks_of_path(&a.source, &table);
        if let Some(n) = sysblock::name_of_path(&a.source) {
            holding.extend(sysblock::underlying_disks(&n));
            holding.insert(n);
        }
        if holding.contains(&disk) || holding.contains(&name) {
            bail!(
                "refusing to write {shown}: it holds the source {}",
                a.source.display()
            );
        }
    }
    Ok(TargetInfo {
        path,
        is_block,
        name,
        size: facts.size,
    })
}

fn mounts_note(mounted: &[(PathBuf, String)]) -> Vec<String> {
    mounted
        .iter()
        .map(|(mp, dev)| format!("{dev} mounted at {} (will be unmounted)", mp.display()))
        .collect()
}

/// Show what is about to be destroyed and require the device name to be typed back, as
/// rpi-imager does: a mistyped /dev/sdX is the classic way to lose a disk.
fn confirm(
    target: &TargetInfo,
    src: &dyn Source,
    notes: &[String],
    from_stdin: bool,
) -> Result<bool> {
    let mut err = std::io::stderr().lock();
    let size = src
        .size()
        .map(|s| format!(" ({} image", human(s)))
        .unwrap_or_default();
    let data = src
        .data_len()
        .map(|d| format!(", {} of data)", human(d)))
        .unwrap_or_else(|| {
            if size.is_empty() {
                String::new()
            } else {
                ")".into()
            }
        });
    writeln!(
        err,
        "About to ERASE {} and write {}{size}{data}.",
        target.path.display(),
        src.describe()
    )?;
    let short = if target.is_block {
        let info = sysblock::disk_info(&target.name, &MountTable::read(), &BTreeSet::new());
        let model = info.backing_file.clone().unwrap_or(info.model.clone());
        writeln!(
            err,
            "  device: {}  {}  {}  {}{}",
            info.path,
            if model.is_empty() {
                "(no model)"
            } else {
                &model
            },
            human(info.size),
            info.transport,
            if info.removable { "  removable" } else { "" }
        )?;
        if info.partitions.is_empty() {
            writeln!(err, "  partitions: none")?;
        }
        for p in &info.partitions {
            writeln!(
                err,
                "  partition {}  {}{}",
                p.path,
                human(p.size),
                if p.mountpoints.is_empty() {
                    String::new()
                } else {
                    format!("  mounted at {}", p.mountpoints.join(", "))
                }
            )?;
        }
        target.name.clone()
    } else {
        writeln!(
            err,
            "  file: {}  {}",
            target.path.display(),
            human(target.size)
        )?;
        target.path.display().to_string()
    };
    for n in notes {
        writeln!(err, "  {n}")?;
    }
    write!(
        err,
        "Everything on it will be lost. Type the device name ({short}) to continue: "
    )?;
    err.flush()?;
    let mut line = String::new();
    if from_stdin {
        // stdin carries the image; ask on the terminal itself.
        let tty = fs::File::open("/dev/tty").context("opening /dev/tty")?;
        std::io::BufReader::new(tty).read_line(&mut line)?;
    } else {
        std::io::stdin().lock().take(4096).read_line(&mut line)?;
    }
    let typed = line.trim();
    let full = target.path.display().to_string();
    Ok(!typed.is_empty() && (typed == short || typed == full))
}

fn unmount(mp: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(mp.as_os_str().as_bytes())?;
    // SAFETY: a NUL-terminated path; umount2 does not keep the pointer.
    #[allow(unsafe_code)]
    let r = unsafe { libc::umount2(c.as_ptr(), 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// Build the disk image for a UKI SOURCE. Its size is `--size`, or by default the
/// target's (rounded down to a whole sector), so the backup GPT sits in the device's last
/// sector where firmware looks for it. When the target is too small, the smallest image
/// is returned and the size check refuses it, naming both sizes.
fn synthesize<'a>(
    a: &WriteArgs,
    inputs: &'a ImageInputs,
    uki: &'a [u8],
) -> Result<(ukitool_core::disk::DiskImage<'a>, ImageSummary)> {
    let build = |size: Option<u64>| -> Result<_> {
        let o = a.image.options(inputs, uki, &a.source, size)?;
        layout::build_image(&o)
            .with_context(|| format!("making a disk image from {}", a.source.display()))
    };
    if let Some(size) = size_arg(&a.size)? {
        return build(Some(size));
    }
    let sector = a.image.sector_size.max(1);
    let Some(target) = target_size(&a.device, a.to_file).map(|t| t - t % sector) else {
        return build(None);
    };
    // One build in the common case; only a failure needs the smallest image, to tell
    // "the target is too small" (refused later, naming both sizes) from a bad option.
    match build(Some(target)) {
        Ok(built) => Ok(built),
        Err(e) => match build(None) {
            Ok(smallest) if smallest.0.size > target => Ok(smallest),
            _ => Err(e),
        },
    }
}

/// The size an image for `device` defaults to: a block device's size, or an existing
/// non-empty file's length with `--to-file`. None: use the smallest image.
fn target_size(device: &Path, to_file: bool) -> Option<u64> {
    let meta = fs::metadata(device).ok()?;
    if meta.file_type().is_block_device() {
        device::block_facts(device).ok().map(|f| f.size)
    } else if to_file && meta.is_file() && meta.len() > 0 {
        Some(meta.len())
    } else {
        None
    }
}
