//! Recognising and describing raw disk images ("what is on this stick"): the
//! partition table, the files on each FAT volume, and a full inspect report of every
//! EFI binary found there.

use std::fmt;

use crate::disk::fat::read::{looks_like_fat, read_volume, FatVolume};
use crate::disk::gpt::{self, PartitionTable};
use crate::error::{Error, Result};
use crate::inspect::{self, InspectOptions, Report};
use crate::pe;

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
    pub problems: Vec<String>,
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
    let mut report = DiskReport {
        size: data.len() as u64,
        partition_table: None,
        filesystems: Vec::new(),
        problems: Vec::new(),
    };
    let mut budget = MAX_EFI_BINARIES;
    let has_gpt = [512u64, 4096]
        .iter()
        .any(|&s| crate::bytes::slice(data, s, 8, "GPT").is_ok_and(|h| h == gpt::raw::SIGNATURE));
    if !has_gpt && looks_like_fat(data) {
        // A "superfloppy": a FAT volume with no partition table (an ESP image).
        report
            .filesystems
            .push(filesystem(data, None, 0, opts, &mut budget)?);
        return Ok(report);
    }
    let table = gpt::read(data)?;
    // Volumes walked so far (start -> end, disjoint): overlapping partitions would walk
    // the same FAT again, and 1024 GPT entries on one ESP took 36 s and 25x the
    // image's size (issue 9). Each byte is walked at most once.
    let mut walked = std::collections::BTreeMap::<u64, u64>::new();
    for p in &table.partitions {
        if p.mbr_type == Some(gpt::raw::MBR_TYPE_PROTECTIVE) {
            continue;
        }
        let end = p.offset.saturating_add(p.size);
        if end > data.len() as u64 {
            report.problems.push(format!(
                "partition {} ({:?}) ends at {end:#x}, past the end of the image ({:#x})",
                p.index,
                p.name,
                data.len()
            ));
        }
        let avail = end.min(data.len() as u64).saturating_sub(p.offset);
        let Ok(vol) = crate::bytes::slice(data, p.offset, avail, "partition") else {
            continue;
        };
        if !looks_like_fat(vol) {
            continue;
        }
        let vol_end = p.offset.saturating_add(avail);
        if walked
            .range(..vol_end)
            .next_back()
            .is_some_and(|(_, &e)| e > p.offset)
        {
            report.problems.push(format!(
                "partition {} overlaps a FAT volume already listed: not walked again",
                p.index
            ));
            continue;
        }
        walked.insert(p.offset, vol_end);
        match filesystem(vol, Some(p.index), p.offset, opts, &mut budget) {
            Ok(fs) => report.filesystems.push(fs),
            Err(e) => report
                .problems
                .push(format!("partition {}: FAT volume: {e}", p.index)),
        }
    }
    report.partition_table = Some(table);
    Ok(report)
}

fn filesystem(
    vol: &[u8],
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
        let (report, error) = match fat.file_bytes(vol, e) {
            Err(err) => (None, Some(err.to_string())),
            Ok(bytes) if !pe::looks_like_pe(&bytes) => (None, Some("not a PE image".to_string())),
            Ok(bytes) => match inspect::inspect(&bytes, opts) {
                Ok(r) => (Some(r), None),
                Err(err) => (None, Some(err.to_string())),
            },
        };
        efi_binaries.push(EfiBinary {
            path: e.path.clone(),
            size: e.size,
            disk_offset,
            report,
            error,
        });
    }
    Ok(Filesystem {
        partition,
        offset,
        fat,
        efi_binaries,
    })
}

impl fmt::Display for DiskReport {
    /// The human listing: partitions, then each volume's files and EFI binaries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "raw disk image, {} bytes", self.size)?;
        if let Some(t) = &self.partition_table {
            write!(
                f,
                "partition table: {} ({}-byte sectors)",
                t.scheme, t.sector_size
            )?;
            if let Some(g) = t.disk_guid {
                write!(f, ", disk GUID {g}")?;
            }
            writeln!(f)?;
            for p in &t.partitions {
                let kind = p.type_label().unwrap_or_default();
                write!(
                    f,
                    "  {:>2} {:<10} {:<20} offset {:#x} size {}",
                    p.index, p.name, kind, p.offset, p.size
                )?;
                if let Some(g) = p.unique_guid {
                    write!(f, " {g}")?;
                }
                if p.legacy_bios_bootable {
                    write!(f, " legacy-bios-bootable")?;
                }
                writeln!(f)?;
            }
            for pr in &t.problems {
                writeln!(f, "  problem: {pr}")?;
            }
        }
        for fs in &self.filesystems {
            let v = &fs.fat;
            match fs.partition {
                Some(i) => write!(f, "partition {i}: ")?,
                None => write!(f, "volume: ")?,
            }
            writeln!(
                f,
                "{} label {:?} id {} {}-byte clusters",
                v.fat_type.name(),
                v.label,
                v.volume_id,
                v.cluster_size
            )?;
            for e in &v.entries {
                if e.is_dir {
                    writeln!(f, "    /{}/", e.path)?;
                } else {
                    writeln!(f, "    /{} ({} bytes)", e.path, e.size)?;
                }
            }
            for b in &fs.efi_binaries {
                match (&b.report, &b.error) {
                    (Some(r), _) => {
                        let names: Vec<&str> = r.sections.iter().map(|s| s.name.as_str()).collect();
                        writeln!(
                            f,
                            "  /{}: {} [{}]",
                            b.path,
                            r.kind.as_str(),
                            names.join(" ")
                        )?;
                    }
                    (None, Some(e)) => writeln!(f, "  /{}: {e}", b.path)?,
                    (None, None) => {}
                }
            }
            for pr in &v.problems {
                writeln!(f, "  problem: {pr}")?;
            }
        }
        for pr in &self.problems {
            writeln!(f, "problem: {pr}")?;
        }
        Ok(())
    }
}

/// The error for an image that is not a disk at all.
pub fn not_a_disk() -> Error {
    Error::malformed(510, "no 0x55AA boot signature: not a raw disk image")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::layout::{build_image, ImageOptions, Layout};

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
        assert!(r.to_string().contains("/EFI/BOOT/BOOTX64.EFI"));
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
