//! Recognising and describing raw disk images ("what is on this stick"): the
//! partition table, the files on each FAT volume, and a full inspect report of every
//! EFI binary found there.

use std::borrow::Cow;
use std::fmt;

use crate::disk::fat::read::{looks_like_fat, read_volume, FatVolume};
use crate::disk::gpt::{self, PartitionTable};
use crate::disk::talos::{self, detect, detect::TalosDisk, meta, meta::MetaReport};
use crate::disk::xfs::{self, FileType, XfsVolume};
use crate::error::{Error, Result};
use crate::inspect::{self, InspectOptions, Report};
use crate::lint::Severity;
use crate::pe;
use crate::readat::{BlockCache, ReadAt, Runs, Window};
use crate::units::human_size;

/// At most this many EFI binaries are inspected per disk (each one is a full report).
const MAX_EFI_BINARIES: usize = 64;

/// Does this look like a raw disk (an MBR boot signature with a GPT header or MBR
/// partitions) rather than a PE file?
pub fn looks_like_disk(data: &[u8]) -> bool {
    !data.starts_with(b"MZ") && data.get(510..512) == Some(&[0x55, 0xaa][..])
}

/// The disk report: partitions, the files on each FAT volume, and the EFI binaries
/// found there.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiskReport {
    pub size: u64,
    /// None when the image is a bare FAT volume with no partition table.
    pub partition_table: Option<PartitionTable>,
    pub filesystems: Vec<Filesystem>,
    /// Absent from the JSON when there are none, as before XFS was read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xfs_volumes: Vec<XfsFilesystem>,
    /// A Talos META partition (named META, 1 MiB), decoded; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Box<MetaPartition>>,
    /// A Talos disk's bootloader, version, UKI and grub.cfg; absent on other disks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talos: Option<Box<TalosDisk>>,
    pub problems: Vec<String>,
    /// The compression the image was read through (`zstd`, `xz`, `gzip`); absent
    /// for a raw image. `size` is the decompressed size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<crate::stream::Compression>,
}

/// META, found by Talos's rule (GPT name META, exactly 1 MiB).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MetaPartition {
    /// Partition index (from 1).
    pub partition: u32,
    #[serde(flatten)]
    pub report: MetaReport,
}

/// An XFS volume found in a partition.
#[derive(Debug, Clone, serde::Serialize)]
pub struct XfsFilesystem {
    /// Partition index (from 1).
    pub partition: u32,
    /// Byte offset of the volume in the image.
    pub offset: u64,
    pub xfs: XfsVolume,
    pub efi_binaries: Vec<EfiBinary>,
}

/// A FAT volume found in a partition (or spanning the whole image).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Filesystem {
    /// Partition index (from 1), or None for a bare volume.
    pub partition: Option<u32>,
    /// Byte offset of the volume in the image.
    pub offset: u64,
    pub fat: FatVolume,
    pub efi_binaries: Vec<EfiBinary>,
}

/// An EFI binary on a FAT volume, inspected as `ukitool inspect` inspects files.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EfiBinary {
    pub path: String,
    pub size: u64,
    /// Byte offset of its data in the image, when its clusters are contiguous.
    pub disk_offset: Option<u64>,
    pub report: Option<Report>,
    /// Why there is no report (not a PE, unreadable chain, ...).
    pub error: Option<String>,
}

/// Inspect a raw disk image (hashes and signatures of the EFI binaries included).
pub fn inspect_disk(data: &[u8]) -> Result<DiskReport> {
    inspect_disk_with(data, &InspectOptions::default())
}

/// Inspect a raw disk image; `opts` applies to each EFI binary found.
pub fn inspect_disk_with(data: &[u8], opts: &InspectOptions) -> Result<DiskReport> {
    inspect_window(Window::from(data), opts)
}

/// Does the source look like a raw disk ([`looks_like_disk`] on its first sector)?
pub fn looks_like_disk_at(src: &dyn ReadAt) -> bool {
    Window::new(src)
        .head(512)
        .is_ok_and(|h| looks_like_disk(&h))
}

/// Inspect a disk image that need not be in memory (a file read with pread, a
/// decoder, a browser `Blob`): only the partition table, the filesystems' metadata,
/// META and the EFI binaries are read, small reads through a 1 MiB block cache and
/// EFI binaries larger than [`SMALL_FILE`] hashed a piece at a time.
pub fn inspect_disk_at(src: &dyn ReadAt, opts: &InspectOptions) -> Result<DiskReport> {
    if src.as_slice().is_some() {
        return inspect_window(Window::new(src), opts);
    }
    let cache = BlockCache::new(src);
    inspect_window(Window::new(&cache), opts)
}

/// EFI binaries up to this size, from an image not in memory, are read whole; larger
/// ones are streamed ([`command::inspect::inspect_at`]).
pub const SMALL_FILE: u64 = 16 << 20;

fn inspect_window(data: Window<'_>, opts: &InspectOptions) -> Result<DiskReport> {
    let mut report = DiskReport {
        size: data.len(),
        partition_table: None,
        filesystems: Vec::new(),
        xfs_volumes: Vec::new(),
        meta: None,
        talos: None,
        problems: Vec::new(),
        compression: None,
    };
    let mut budget = MAX_EFI_BINARIES;
    let has_gpt = [512u64, 4096].iter().any(|&s| {
        data.bytes(s, 8, "GPT")
            .is_ok_and(|h| h[..] == gpt::raw::SIGNATURE[..])
    });
    if !has_gpt && looks_like_fat(data) {
        // A "superfloppy": a FAT volume with no partition table (an ESP image).
        report
            .filesystems
            .push(filesystem(data, None, 0, opts, &mut budget)?);
        return Ok(report);
    }
    // The backup GPT header, at the end of the disk, is read last: a stream is then
    // decoded about once (see crate::stream).
    let (mut table, backup) = gpt::read_deferred(data)?;
    // Volumes walked so far (start -> end, disjoint): overlapping partitions would walk
    // the same FAT again, and 1024 GPT entries on one ESP took 36 s and 25x the
    // image's size (issue 9). Each byte is walked at most once.
    let mut walked = std::collections::BTreeMap::<u64, u64>::new();
    for p in &table.partitions {
        if p.mbr_type == Some(gpt::raw::MBR_TYPE_PROTECTIVE) {
            continue;
        }
        let end = p.offset.saturating_add(p.size);
        if end > data.len() {
            report.problems.push(format!(
                "partition {} ({:?}) ends at {end:#x}, past the end of the image ({:#x})",
                p.index,
                p.name,
                data.len()
            ));
        }
        let avail = end.min(data.len()).saturating_sub(p.offset);
        if p.offset > data.len() {
            continue;
        }
        let vol = data.clamp(p.offset, avail);
        let kind = if looks_like_fat(vol) {
            "FAT"
        } else if xfs::looks_like_xfs(vol) {
            "XFS"
        } else {
            continue;
        };
        let vol_end = p.offset.saturating_add(avail);
        if walked
            .range(..vol_end)
            .next_back()
            .is_some_and(|(_, &e)| e > p.offset)
        {
            report.problems.push(format!(
                "partition {} overlaps a {kind} volume already listed: not walked again",
                p.index
            ));
            continue;
        }
        walked.insert(p.offset, vol_end);
        let found = if kind == "FAT" {
            filesystem(vol, Some(p.index), p.offset, opts, &mut budget)
                .map(|fs| report.filesystems.push(fs))
        } else {
            xfs_filesystem(vol, p.index, p.offset, opts, &mut budget)
                .map(|fs| report.xfs_volumes.push(fs))
        };
        if let Err(e) = found {
            report
                .problems
                .push(format!("partition {}: {kind} volume: {e}", p.index));
        }
    }
    report.meta = table
        .partitions
        .iter()
        .find(|p| p.name == "META" && p.size == meta::PARTITION_SIZE)
        .and_then(|p| {
            let v = data.bytes(p.offset, p.size, "META").ok()?;
            Some(Box::new(MetaPartition {
                partition: p.index,
                report: meta::decode(&v),
            }))
        });
    report.talos = talos_disk(data, &table, &report).map(Box::new);
    if let Some(b) = backup {
        b.apply(data, &mut table);
    }
    report.partition_table = Some(table);
    Ok(report)
}

/// Talos's probe over what was read: the EFI partition's `EFI/Linux/Talos-*.efi`,
/// BOOT's XFS `grub/grub.cfg` (at most 1 MiB read), and a BIOS partition.
fn talos_disk(data: Window<'_>, table: &PartitionTable, report: &DiskReport) -> Option<TalosDisk> {
    let named = |n: &str| table.partitions.iter().find(|p| p.name == n);
    let uki = named(talos::ESP_LABEL).and_then(|p| {
        let fs = report
            .filesystems
            .iter()
            .find(|f| f.partition == Some(p.index))?;
        fs.fat
            .entries
            .iter()
            .find(|e| !e.is_dir && detect::is_talos_uki(&e.path))
            .map(|e| e.path.clone())
    });
    let cfg = named(talos::BOOT_LABEL).and_then(|p| {
        let x = report.xfs_volumes.iter().find(|x| x.partition == p.index)?;
        let e = x.xfs.find(talos::config::GRUB_CFG_PATH)?;
        let avail = p.size.min(data.len().saturating_sub(x.offset));
        // A grub.cfg larger than 1 MiB, or than the volume's bytes here, is not read:
        // the report stays bounded by the input.
        if e.size > (1 << 20) || e.size > avail {
            return None;
        }
        let vol = data.clamp(x.offset, avail);
        x.xfs.file_bytes(vol, e).ok().map(Cow::into_owned)
    });
    detect::recognise(uki, cfg.as_deref(), named("BIOS").is_some())
}

fn filesystem(
    vol: Window<'_>,
    partition: Option<u32>,
    offset: u64,
    opts: &InspectOptions,
    budget: &mut usize,
) -> Result<Filesystem> {
    let fat = read_volume(vol)?;
    let mut efi_binaries = Vec::new();
    for e in fat.entries.iter().filter(|e| !e.is_dir) {
        if !e.path.to_ascii_lowercase().ends_with(".efi") {
            continue;
        }
        let Some(left) = budget.checked_sub(1) else {
            break;
        };
        *budget = left;
        let disk_offset = match e.runs.as_slice() {
            [(o, _)] => offset.checked_add(*o),
            _ => None,
        };
        let file = if vol.as_slice().is_none() && e.size > SMALL_FILE {
            Runs::new(vol, &e.runs)
        } else {
            None
        };
        efi_binaries.push(match file {
            Some(f) => streamed_binary(&e.path, e.size, disk_offset, &f, opts),
            None => efi_binary(&e.path, e.size, disk_offset, fat.file_bytes(vol, e), opts),
        });
    }
    Ok(Filesystem {
        partition,
        offset,
        fat,
        efi_binaries,
    })
}

fn xfs_filesystem(
    vol: Window<'_>,
    partition: u32,
    offset: u64,
    opts: &InspectOptions,
    budget: &mut usize,
) -> Result<XfsFilesystem> {
    let xfs = xfs::read_volume(vol)?;
    let mut efi_binaries = Vec::new();
    for e in xfs.entries.iter().filter(|e| e.kind == FileType::File) {
        if !e.path.to_ascii_lowercase().ends_with(".efi") {
            continue;
        }
        let Some(left) = budget.checked_sub(1) else {
            break;
        };
        *budget = left;
        let runs = xfs.file_runs(e);
        // One run: the file's place in the image.
        let disk_offset = match runs.as_deref() {
            Some([(o, _)]) => offset.checked_add(*o),
            _ => None,
        };
        let file = match &runs {
            Some(r) if vol.as_slice().is_none() && e.size > SMALL_FILE => Runs::new(vol, r),
            _ => None,
        };
        efi_binaries.push(match file {
            Some(f) => streamed_binary(&e.path, e.size, disk_offset, &f, opts),
            None => efi_binary(&e.path, e.size, disk_offset, xfs.file_bytes(vol, e), opts),
        });
    }
    Ok(XfsFilesystem {
        partition,
        offset,
        xfs,
        efi_binaries,
    })
}

/// [`efi_binary`] for a large file read a piece at a time.
fn streamed_binary(
    path: &str,
    size: u64,
    disk_offset: Option<u64>,
    file: &dyn ReadAt,
    opts: &InspectOptions,
) -> EfiBinary {
    let head = file.read_vec(0, file.size().min(4096), "PE header");
    let looks = head.map(|h| pe::looks_like_pe(&h));
    efi_entry(path, size, disk_offset, looks, || {
        crate::command::inspect::inspect_at(file, opts)
    })
}

/// The report of an EFI binary at `path`, or why there is none.
fn efi_binary(
    path: &str,
    size: u64,
    disk_offset: Option<u64>,
    bytes: Result<Cow<'_, [u8]>>,
    opts: &InspectOptions,
) -> EfiBinary {
    let looks = match &bytes {
        Ok(b) => Ok(pe::looks_like_pe(b)),
        Err(err) => Err(err.clone()),
    };
    efi_entry(path, size, disk_offset, looks, || {
        inspect::inspect(bytes.as_deref().unwrap_or(&[]), opts)
    })
}

/// One listed EFI binary: its report when its head looks like a PE and `inspect` runs,
/// else the reason there is none.
fn efi_entry(
    path: &str,
    size: u64,
    disk_offset: Option<u64>,
    looks_like_pe: Result<bool>,
    inspect: impl FnOnce() -> Result<Report>,
) -> EfiBinary {
    let (report, error) = match looks_like_pe {
        Err(err) => (None, Some(err.to_string())),
        Ok(false) => (None, Some("not a PE image".to_string())),
        Ok(true) => match inspect() {
            Ok(r) => (Some(r), None),
            Err(err) => (None, Some(err.to_string())),
        },
    };
    EfiBinary {
        path: path.to_string(),
        size,
        disk_offset,
        report,
        error,
    }
}

impl DiskReport {
    /// The human listing `ukitool inspect` prints: the partition table, then for each
    /// FAT volume its files and a short summary of every EFI binary on it (`--json`
    /// has the full report of each). `file` names the image in the first line.
    pub fn listing<'a>(&'a self, file: &'a str) -> Listing<'a> {
        Listing { report: self, file }
    }
}

/// See [`DiskReport::listing`].
pub struct Listing<'a> {
    report: &'a DiskReport,
    file: &'a str,
}

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.report;
        let file = self.file;
        kv(
            f,
            "File:",
            &format!("{file} ({} bytes, {})", r.size, human_size(r.size)),
        )?;
        match r.compression {
            Some(c) => kv(
                f,
                "Kind:",
                &format!("raw disk image, {}-compressed", c.name()),
            )?,
            None => kv(f, "Kind:", "raw disk image")?,
        }
        match &r.partition_table {
            None => kv(f, "Partition table:", "none (a bare FAT volume)")?,
            Some(t) => write_table(f, t)?,
        }
        for fs in &r.filesystems {
            write_volume(f, fs)?;
        }
        for fs in &r.xfs_volumes {
            write_xfs_volume(f, fs)?;
        }
        if let Some(t) = &r.talos {
            write_talos(f, t)?;
        }
        if let Some(m) = &r.meta {
            write_meta(f, m)?;
        }
        if !r.problems.is_empty() {
            writeln!(f)?;
            writeln!(f, "Problems:")?;
            for pr in &r.problems {
                writeln!(f, "  {}", printable(pr))?;
            }
        }
        Ok(())
    }
}

fn write_talos(w: &mut dyn fmt::Write, t: &TalosDisk) -> fmt::Result {
    writeln!(w)?;
    let version = t.version.as_deref().map(printable).unwrap_or("?".into());
    kv(
        w,
        "Talos:",
        &format!("{} image, version {version}", t.bootloader.name()),
    )?;
    if let Some(u) = &t.uki {
        kv(w, "  UKI:", &printable(u))?;
    }
    if let Some(d) = &t.grub_default {
        kv(w, "  grub.cfg:", &format!("default \"{}\"", printable(d)))?;
    }
    for e in &t.grub_entries {
        writeln!(w, "    {}", printable(&e.name))?;
        for (k, v) in [("linux", &e.linux), ("initrd", &e.initrd)] {
            if let Some(v) = v {
                writeln!(w, "      {k} {}", printable(v))?;
            }
        }
    }
    Ok(())
}

fn write_meta(w: &mut dyn fmt::Write, m: &MetaPartition) -> fmt::Result {
    writeln!(w)?;
    let copies: Vec<String> = m
        .report
        .copies
        .iter()
        .map(|c| match &c.problem {
            None => format!("copy at {:#x} valid", c.offset),
            Some(p) => format!("copy at {:#x} invalid ({})", c.offset, printable(p)),
        })
        .collect();
    kv(
        w,
        "META:",
        &format!("partition {}, {}", m.partition, copies.join(", ")),
    )?;
    if m.report.records.is_empty() {
        writeln!(w, "  no records (empty)")?;
    }
    for (what, records) in [("", &m.report.records), ("syslinux ", &m.report.legacy)] {
        for r in records {
            let value = match &r.value {
                meta::MetaValue::Text(t) => t.clone(),
                meta::MetaValue::Json(j) => j.to_string(),
                meta::MetaValue::Hex(h) => format!("hex {h}"),
            };
            let name = r.name.unwrap_or("(unknown tag)");
            let value = value.trim_end();
            // A multi-line value (the network config YAML of 0x0a) keeps its lines.
            if value.contains('\n') {
                writeln!(w, "  {what}{:#04x} {name}: ({} bytes)", r.tag, r.size)?;
                for line in value.lines() {
                    writeln!(w, "    | {}", printable(line))?;
                }
            } else {
                writeln!(w, "  {what}{:#04x} {name}: {}", r.tag, printable(value))?;
            }
        }
    }
    Ok(())
}

/// One fact per line, labels aligned.
fn kv(w: &mut dyn fmt::Write, k: &str, v: &str) -> fmt::Result {
    writeln!(w, "{k:<18}{v}")
}

fn write_table(w: &mut dyn fmt::Write, t: &PartitionTable) -> fmt::Result {
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
    if t.partitions.is_empty() {
        writeln!(w, "  none")?;
    } else {
        let right = [true, false, false, true, true, true, true];
        columns(w, "  ", &partition_rows(t), &right)?;
    }
    for pr in &t.problems {
        writeln!(w, "  problem: {}", printable(pr))?;
    }
    Ok(())
}

/// The partition table's rows under their header; the GUID and flags columns only
/// when some partition has one (an MBR disk has neither).
fn partition_rows(t: &PartitionTable) -> Vec<Vec<String>> {
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
    let used = |c: usize| {
        rows.iter()
            .skip(1)
            .any(|r| r.get(c).is_some_and(|v| !v.is_empty() && v != "-"))
    };
    let keep: Vec<bool> = (0..9).map(|c| c < 7 || used(c)).collect();
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| v)
                .collect()
        })
        .collect()
}

fn write_volume(w: &mut dyn fmt::Write, fs: &Filesystem) -> fmt::Result {
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
    let rows: Vec<Vec<String>> = v
        .entries
        .iter()
        .map(|e| {
            if e.is_dir {
                vec![format!("/{}/", printable(&e.path)), String::new()]
            } else {
                vec![format!("/{}", printable(&e.path)), e.size.to_string()]
            }
        })
        .collect();
    write_files(w, &rows, &v.problems, &fs.efi_binaries)
}

fn write_xfs_volume(w: &mut dyn fmt::Write, fs: &XfsFilesystem) -> fmt::Result {
    let v = &fs.xfs;
    writeln!(w)?;
    writeln!(
        w,
        "Partition {}: XFS label {:?} uuid {}, {}-byte blocks, {}-byte sectors, {} AGs of {} blocks, {} blocks, at {:#x}",
        fs.partition,
        printable(&v.label),
        printable(&v.uuid),
        v.block_size,
        v.sector_size,
        v.ag_count,
        v.ag_blocks,
        v.blocks,
        fs.offset
    )?;
    writeln!(w, "  features: {}", printable(&v.features.join(" ")))?;
    let rows: Vec<Vec<String>> = v
        .entries
        .iter()
        .filter(|e| !e.path.is_empty())
        .map(|e| {
            let p = printable(&e.path);
            match (e.kind, &e.target) {
                (FileType::Directory, _) => vec![format!("/{p}/"), String::new()],
                (FileType::Symlink, Some(t)) => {
                    vec![format!("/{p} -> {}", printable(t)), String::new()]
                }
                _ => vec![format!("/{p}"), e.size.to_string()],
            }
        })
        .collect();
    write_files(w, &rows, &v.problems, &fs.efi_binaries)
}

/// A volume's file rows (path, size), its problems and its EFI binaries.
fn write_files(
    w: &mut dyn fmt::Write,
    rows: &[Vec<String>],
    problems: &[String],
    binaries: &[EfiBinary],
) -> fmt::Result {
    if rows.is_empty() {
        writeln!(w, "  (empty)")?;
    } else {
        columns(w, "  ", rows, &[false, true])?;
    }
    for pr in problems {
        writeln!(w, "  problem: {}", printable(pr))?;
    }
    for b in binaries {
        write_binary(w, b)?;
    }
    Ok(())
}

/// A short summary of an EFI binary: `ukitool inspect` on the file has the rest.
fn write_binary(w: &mut dyn fmt::Write, b: &EfiBinary) -> fmt::Result {
    writeln!(w)?;
    let at = b
        .disk_offset
        .map_or_else(String::new, |o| format!(" at {o:#x}"));
    writeln!(w, "  /{} ({} bytes{at})", printable(&b.path), b.size)?;
    let kv = |w: &mut dyn fmt::Write, k: &str, v: &str| writeln!(w, "    {k:<12}{v}");
    let rep = match (&b.report, &b.error) {
        (Some(rep), _) => rep,
        (None, e) => return kv(w, "error", e.as_deref().unwrap_or("not inspected")),
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
    if e.saturating_add(wn) > 0 {
        kv(
            w,
            "lints",
            &format!("{e} error(s), {wn} warning(s) (ukitool inspect on the file shows them)"),
        )?;
    }
    Ok(())
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
    w: &mut dyn fmt::Write,
    indent: &str,
    rows: &[Vec<String>],
    right: &[bool],
) -> fmt::Result {
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

/// The error for an image that is not a disk at all.
pub fn not_a_disk() -> Error {
    Error::malformed(510, "no 0x55AA boot signature: not a raw disk image")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::layout::{build_image, ImageOptions, Layout, PartitionSpec};

    #[test]
    fn talos_disks_and_meta_copies() {
        use crate::disk::talos::Bootloader;
        let u = crate::disk::layout::test_pe(
            0x8664,
            &[
                (".osrel", b"VERSION_ID=v1.11.0\n"),
                (".linux", &[0x4d; 5000]),
                (".initrd", &[0x07; 3000]),
            ],
        );
        let sd = crate::disk::layout::test_pe(0x8664, &[(".text", b"sd-boot")]);
        let mut o = ImageOptions::new(Layout::Talos, &u);
        o.systemd_boot = Some(&sd);
        o.talos.bootloader = Some(Bootloader::SdBoot);
        o.talos.meta = vec![
            (0x0c, Cow::Borrowed(&b"x"[..])),
            (0x0a, Cow::Borrowed(&b"a: 1\nb: [2]\n"[..])),
        ];
        let (img, s) = build_image(&o).unwrap();
        let mut disk = img.to_vec();
        let r = inspect_disk(&disk).unwrap();
        let t = r.talos.as_ref().unwrap();
        assert_eq!(t.bootloader, Bootloader::SdBoot);
        assert_eq!(t.version.as_deref(), Some("v1.11.0"));
        assert_eq!(t.uki.as_deref(), Some("EFI/Linux/Talos-v1.11.0.efi"));
        let m = r.meta.as_ref().unwrap();
        assert_eq!((m.partition, m.report.records.len()), (2, 2));
        // Copy 1 broken: Talos reads copy 2, and the report says why copy 1 is not used.
        let at = s.partitions[1].offset as usize;
        disk[at + 9] ^= 0xff;
        let r = inspect_disk(&disk).unwrap();
        let m = r.meta.as_ref().unwrap();
        assert!(!m.report.copies[0].valid && m.report.copies[1].valid);
        assert_eq!(m.report.records[1].tag, 0x0c);
        let text = r.listing("t.img").to_string();
        assert!(text.contains("user-reserved-1: x"), "{text}");
        assert!(
            text.contains("metal-network-platform-config: (12 bytes)\n    | a: 1\n    | b: [2]\n"),
            "{text}"
        );
        assert!(text.contains("sd-boot image, version v1.11.0"), "{text}");
    }

    #[test]
    fn finds_partitions_files_and_the_uki() {
        let uki = crate::disk::layout::test_pe(0x8664, &[(".text", b"code")]);
        let o = ImageOptions::new(Layout::Uefi, &uki);
        let (img, _) = build_image(&o).unwrap();
        let data = img.to_vec();
        assert!(looks_like_disk(&data));
        let r = inspect_disk_with(&data, &InspectOptions::NO_HASH).unwrap();
        let t = r.partition_table.as_ref().unwrap();
        assert_eq!(t.scheme, "gpt");
        assert_eq!(t.partitions[0].name, "EFI");
        let fs = &r.filesystems[0];
        assert!(fs
            .fat
            .entries
            .iter()
            .any(|e| e.path == "EFI/BOOT/BOOTX64.EFI"));
        assert_eq!(fs.efi_binaries.len(), 1);
        assert!(
            fs.efi_binaries[0].report.is_some(),
            "{:?}",
            fs.efi_binaries[0].error
        );
        let text = r.listing("d.img").to_string();
        assert!(text.starts_with("File:             d.img ("), "{text}");
        assert!(text.contains("\n  /EFI/BOOT/BOOTX64.EFI ("), "{text}");
    }

    #[test]
    fn lists_xfs_volumes_and_their_uki() {
        let uki = crate::disk::layout::test_pe(0x8664, &[(".text", b"code")]);
        let mut o = ImageOptions::new(Layout::Uefi, &uki);
        o.extra_partitions = vec![PartitionSpec::parse("BOOT:300M:linux:xfs").unwrap()];
        o.partition_files = vec![
            (
                "BOOT".into(),
                "/EFI/Linux/a.efi".into(),
                Cow::Borrowed(&uki[..]),
            ),
            ("BOOT".into(), "/notes".into(), Cow::Borrowed(&b"hi"[..])),
        ];
        let (img, s) = build_image(&o).unwrap();
        let data = img.to_vec();
        let r = inspect_disk_with(&data, &InspectOptions::NO_HASH).unwrap();
        assert_eq!(r.filesystems.len(), 1);
        let x = &r.xfs_volumes[0];
        assert_eq!((x.partition, x.offset), (2, s.partitions[1].offset));
        assert_eq!(x.xfs.label, "BOOT");
        let b = &x.efi_binaries[0];
        assert!(b.report.is_some(), "{:?}", b.error);
        let at = b.disk_offset.unwrap() as usize;
        assert_eq!(&data[at..at + uki.len()], &uki[..]);
        let text = r.listing("d.img").to_string();
        assert!(
            text.contains("\nPartition 2: XFS label \"BOOT\" uuid "),
            "{text}"
        );
        assert!(text.contains("\n  /notes               2\n"), "{text}");
        assert!(text.contains("\n  /EFI/Linux/a.efi ("), "{text}");
    }

    /// A source not in memory: no `as_slice`, and it counts the bytes it serves.
    struct Counting<'a>(&'a [u8], std::cell::Cell<u64>);

    impl ReadAt for Counting<'_> {
        fn size(&self) -> u64 {
            self.0.size()
        }
        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
            self.1.set(self.1.get() + buf.len() as u64);
            self.0.read_exact_at(offset, buf)
        }
    }

    #[test]
    fn a_source_not_in_memory_gives_the_same_report_reading_only_what_it_needs() {
        // A UKI larger than SMALL_FILE, signed-looking or not, on the ESP and on XFS:
        // streamed, and the report equals the one from memory.
        let big = vec![0x5au8; (SMALL_FILE + (1 << 20)) as usize];
        let uki = crate::disk::layout::test_pe(
            0x8664,
            &[
                (".osrel", b"ID=x\n"),
                (".linux", &big),
                (".cmdline", b"quiet"),
            ],
        );
        let mut o = ImageOptions::new(Layout::Uefi, &uki);
        o.esp_size = Some(64 << 20);
        o.extra_partitions = vec![PartitionSpec::parse("BOOT:300M:linux:xfs").unwrap()];
        o.partition_files = vec![(
            "BOOT".into(),
            "/EFI/Linux/a.efi".into(),
            Cow::Borrowed(&uki[..]),
        )];
        let data = build_image(&o).unwrap().0.to_vec();
        let mem = inspect_disk(&data).unwrap();
        let src = Counting(&data, std::cell::Cell::new(0));
        let at = inspect_disk_at(&src, &InspectOptions::default()).unwrap();
        assert_eq!(
            serde_json::to_string(&mem).unwrap(),
            serde_json::to_string(&at).unwrap()
        );
        assert!(at.filesystems[0].efi_binaries[0].report.is_some());
        assert!(at.xfs_volumes[0].efi_binaries[0].report.is_some());
        // Both UKIs are hashed twice (sections, Authenticode); the rest of the
        // 360 MiB image is not read.
        let read = src.1.get();
        assert!(read < 6 * uki.len() as u64, "{read} bytes read");
        let parts = crate::disk::files::partitions(Window::new(&src)).unwrap();
        let f = parts[1].open("EFI/Linux/a.efi").unwrap();
        assert_eq!(f.read_vec(0, uki.len() as u64, "x").unwrap(), uki);
    }

    #[test]
    fn hostile_disks_do_not_panic() {
        let uki = crate::disk::layout::test_pe(0x8664, &[(".text", b"code")]);
        let o = ImageOptions {
            esp_size: Some(8 << 20),
            ..ImageOptions::new(Layout::Uefi, &uki)
        };
        let (img, _) = build_image(&o).unwrap();
        let good = img.to_vec();
        let mut seed = 0x9e37_79b9u32;
        for _ in 0..200 {
            let mut d = good.clone();
            for _ in 0..24 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                // Hit the GPT, the FAT boot sector and the first FAT and directories.
                let at = match seed % 3 {
                    0 => (seed as usize >> 4) % 0x4400,
                    1 => 0x10_0000 + (seed as usize >> 4) % 0x8000,
                    _ => 0x10_0000 + (seed as usize >> 4) % 0x40_0000,
                };
                d[at] = (seed >> 24) as u8;
            }
            let _ = inspect_disk_with(&d, &InspectOptions::NO_HASH);
        }
    }
}
