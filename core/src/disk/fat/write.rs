//! Formatting a fresh FAT volume for a known file set, as image extents.
//!
//! The whole layout is computed before a byte is produced: geometry (FAT type and
//! cluster size from the volume size), then directories (first, from cluster 2) and
//! files (each one contiguous run of clusters). Metadata comes out as small owned
//! buffers; file data as the caller's borrowed bytes.

use std::borrow::Cow;
use std::num::NonZeroU64;

use super::boot::{fits, BootSector, Counts, VolumeId};
use super::raw::*;
use super::{dos_date_time, put16, put32, short_name_checksum, FatType};
use crate::bytes;
use crate::error::{Error, Result};

/// A static run of zeros that zero extents borrow, so a large FAT costs no memory.
pub(crate) static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// Options of a freshly formatted volume. Everything that varies between runs in
/// other formatters (volume id, time) is an explicit, reproducible input here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatOptions {
    /// Volume label (up to 11 short-name characters, upper-cased); empty for none.
    pub label: String,
    pub volume_id: u32,
    /// Unix time for every timestamp on the volume (SOURCE_DATE_EPOCH in the CLI).
    pub timestamp: i64,
    /// Logical sector size: 512 or 4096.
    pub sector_size: u64,
    /// Sectors before the volume on its disk (the partition's start LBA).
    pub hidden_sectors: u64,
}

impl Default for FatOptions {
    fn default() -> Self {
        FatOptions {
            label: "EFI".into(),
            volume_id: 0x1234_5678,
            timestamp: 315_532_800,
            sector_size: 512,
            hidden_sectors: 0,
        }
    }
}

/// Where a file landed, relative to the start of the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedFile {
    pub path: String,
    pub offset: u64,
    pub len: u64,
}

/// A formatted volume: its geometry and its extents (offsets relative to the volume).
#[derive(Debug, Clone)]
pub struct FatPlan<'a> {
    pub fat_type: FatType,
    pub cluster_size: u64,
    pub clusters: u64,
    pub used_clusters: u64,
    pub reserved_sectors: u64,
    pub fat_sectors: u64,
    /// Byte offset of cluster 2.
    pub data_offset: u64,
    pub extents: Vec<(u64, Cow<'a, [u8]>)>,
    pub files: Vec<PlacedFile>,
}

/// Format a `size`-byte volume holding `files` (paths with `/` or `\`, created with
/// their parent directories). Fails if a path is invalid or duplicated, or if the
/// files do not fit.
pub fn format<'a>(
    size: u64,
    opts: &FatOptions,
    files: Vec<(String, Cow<'a, [u8]>)>,
) -> Result<FatPlan<'a>> {
    let (sector, label) = check_options(opts)?;
    let mut tree = Tree::build(files)?;
    tree.assign_short_names()?;
    let root_needed = entries_of(0, own(&tree.dirs, 0)?, &label);
    let sector_entries = sector.get() / DIR_ENTRY_BYTES;
    let root_entries = root_needed.max(512).next_multiple_of(sector_entries);
    if root_entries.saturating_add(sector_entries) > u64::from(u16::MAX) {
        return Err(Error::invalid(
            "too many entries in the ESP's root directory",
        ));
    }
    let mut boot = geometry(size, sector, root_entries)?;
    let next = tree.allocate(&boot, &label, size)?;
    if boot.fat_type == FatType::Fat32 {
        boot.root_cluster = fits(own(&tree.dirs, 0)?.first_cluster, "root cluster")?;
    }
    boot.hidden_sectors = u32::try_from(opts.hidden_sectors).unwrap_or(u32::MAX);
    boot.volume_id = Some(VolumeId {
        serial: opts.volume_id,
        label: if label.is_empty() {
            *NO_LABEL
        } else {
            padded::<11>(label.as_bytes())
        },
    });
    let (date, time) = dos_date_time(opts.timestamp);
    let names = Names {
        label: &label,
        stamp: Stamp { date, time },
    };
    tree.emit(&boot, next, &names)
}

/// The sector size, and the label upper-cased and checked.
fn check_options(opts: &FatOptions) -> Result<(NonZeroU64, String)> {
    let Some(sector) = NonZeroU64::new(opts.sector_size).filter(|s| matches!(s.get(), 512 | 4096))
    else {
        return Err(Error::invalid(format!(
            "sector size {}: use 512 or 4096",
            opts.sector_size
        )));
    };
    let label = opts.label.to_ascii_uppercase();
    if label.len() > 11 || !label.bytes().all(|b| b == b' ' || short_char_ok(b)) {
        return Err(Error::invalid(format!(
            "volume label {:?}: up to 11 characters from A-Z 0-9 and {}",
            opts.label,
            String::from_utf8_lossy(SHORT_NAME_EXTRA)
        )));
    }
    Ok((sector, label.trim_end().to_string()))
}

/// The boot sector of a FAT `fat_type` volume of `total` sectors with `spc`-sector
/// clusters, if that layout fits.
fn layout(
    fat_type: FatType,
    total: u64,
    sector: NonZeroU64,
    spc: NonZeroU64,
    root_entries: u64,
) -> Option<BootSector> {
    let fat32 = fat_type == FatType::Fat32;
    let entry_bytes = if fat32 { 4 } else { 2 };
    // FAT32 keeps the FSInfo sector at 1 and backup boot sectors at 6 and 7.
    let min_reserved: u64 = match (fat_type, sector.get()) {
        (FatType::Fat32, 512) => 32,
        (FatType::Fat32, _) => 8,
        _ => 1,
    };
    let root_entries = if fat32 { 0 } else { root_entries };
    let root_sectors = root_entries
        .checked_mul(DIR_ENTRY_BYTES)?
        .div_ceil(sector.get());
    // Size the FAT for the clusters there would be without it: an upper bound, so
    // the FAT always covers every cluster (fsck.fat checks exactly this).
    let upper = total.checked_sub(min_reserved.checked_add(root_sectors)?)? / spc;
    let fat = upper
        .checked_add(2)?
        .checked_mul(entry_bytes)?
        .div_ceil(sector.get());
    let fats = fat.checked_mul(u64::from(NUM_FATS))?;
    // Align the data area to the cluster size so clusters do not straddle blocks:
    // the padding goes into the reserved sectors.
    let unaligned = min_reserved.checked_add(fats)?.checked_add(root_sectors)?;
    let data_start = bytes::align_up(unaligned, spc.get())?;
    let reserved = min_reserved.checked_add(data_start.checked_sub(unaligned)?)?;
    BootSector::new(Counts {
        fat32,
        sector_size: sector,
        sectors_per_cluster: spc,
        reserved_sectors: reserved,
        fats: u64::from(NUM_FATS),
        root_entries,
        total_sectors: total,
        fat_sectors: fat,
    })
    .ok()
}

/// Cluster sizes FAT allows with 512..4096-byte sectors, largest first.
const CLUSTER_SIZES: [u64; 7] = [32768, 16384, 8192, 4096, 2048, 1024, 512];

fn geometry(size: u64, sector: NonZeroU64, root_entries: u64) -> Result<BootSector> {
    let total = size / sector;
    if total > u64::from(u32::MAX) {
        return Err(Error::invalid(format!(
            "a FAT volume of {size} bytes is too large: FAT counts at most 2^32 sectors"
        )));
    }
    const MIB: u64 = 1 << 20;
    // Microsoft's default FAT32 cluster sizes by volume size, at least one sector.
    let preferred = match size {
        s if s <= 260 * MIB => 512,
        s if s <= 8 * 1024 * MIB => 4096,
        s if s <= 16 * 1024 * MIB => 8192,
        s if s <= 32 * 1024 * MIB => 16384,
        _ => 32768,
    }
    .max(sector.get());
    let sectors_per = |cluster: u64| NonZeroU64::new(cluster / sector);
    // From the preferred cluster size down to one sector.
    for cluster in CLUSTER_SIZES
        .into_iter()
        .filter(|&c| c <= preferred && c >= sector.get())
    {
        let Some(spc) = sectors_per(cluster) else {
            continue;
        };
        if let Some(g) = layout(FatType::Fat32, total, sector, spc, 0) {
            if g.clusters >= FAT32_MIN_CLUSTERS && g.clusters <= FAT32_MAX_CLUSTERS {
                return Ok(g);
            }
        }
    }
    // Whole 32 KiB clusters in the volume (32 KiB is a multiple of the sector size).
    if size / 32768 > FAT32_MAX_CLUSTERS {
        return Err(Error::invalid(format!(
            "a FAT volume of {size} bytes is too large: FAT32 holds at most {FAT32_MAX_CLUSTERS} clusters of 32 KiB"
        )));
    }
    // Too small for FAT32's 65,525 clusters: FAT16 with the smallest cluster that
    // keeps the count under FAT16's limit.
    for cluster in CLUSTER_SIZES
        .into_iter()
        .rev()
        .filter(|&c| c >= sector.get())
    {
        let Some(spc) = sectors_per(cluster) else {
            continue;
        };
        if let Some(g) = layout(FatType::Fat16, total, sector, spc, root_entries) {
            if g.clusters < FAT32_MIN_CLUSTERS {
                if g.clusters >= FAT16_MIN_CLUSTERS {
                    return Ok(g);
                }
                break;
            }
        }
    }
    Err(Error::invalid(format!(
        "a FAT volume of {size} bytes with {sector}-byte sectors is too small: FAT16 needs at least {FAT16_MIN_CLUSTERS} clusters (FAT12 is not written); use a larger ESP"
    )))
}

#[derive(Debug)]
enum Kind {
    Dir(usize),
    File(usize),
}

#[derive(Debug)]
struct Child {
    long: String,
    short: [u8; 11],
    lfn: bool,
    kind: Kind,
}

impl Child {
    fn new(long: &str, kind: Kind) -> Child {
        Child {
            long: long.to_string(),
            short: [b' '; 11],
            lfn: false,
            kind,
        }
    }
}

#[derive(Debug, Default)]
struct DirNode {
    parent: usize,
    children: Vec<Child>,
    first_cluster: u64,
    clusters: u64,
}

/// The file set as a tree: directories by index (0 is the root), files by index into
/// `data`, `paths` and, once allocated, `file_clusters`.
struct Tree<'a> {
    dirs: Vec<DirNode>,
    data: Vec<Cow<'a, [u8]>>,
    paths: Vec<String>,
    /// First cluster of each file (0 for an empty one).
    file_clusters: Vec<u64>,
}

/// What every directory entry of the volume shares: the label and the timestamp.
struct Names<'l> {
    label: &'l str,
    stamp: Stamp,
}

/// The names of `.` and `..`, which no child may take.
const DOT_NAMES: [[u8; 11]; 2] = [*b".          ", *b"..         "];

impl<'a> Tree<'a> {
    /// The tree of `files`, with every parent directory created.
    fn build(files: Vec<(String, Cow<'a, [u8]>)>) -> Result<Tree<'a>> {
        let mut tree = Tree {
            dirs: vec![DirNode::default()],
            data: Vec::new(),
            paths: Vec::new(),
            file_clusters: Vec::new(),
        };
        for (path, bytes) in files {
            let comps: Vec<&str> = path.split(['/', '\\']).filter(|c| !c.is_empty()).collect();
            let Some((leaf, parents)) = comps.split_last() else {
                return Err(Error::invalid(format!("ESP path {path:?} names no file")));
            };
            let mut at = 0usize;
            for c in parents {
                validate_component(c, &path)?;
                at = tree.subdir(at, c, &path)?;
            }
            validate_component(leaf, &path)?;
            let parent = own_mut(&mut tree.dirs, at)?;
            if parent
                .children
                .iter()
                .any(|ch| ch.long.to_lowercase() == leaf.to_lowercase())
            {
                return Err(Error::invalid(format!(
                    "ESP path {path:?} is given twice (FAT names ignore case)"
                )));
            }
            if bytes.len() as u64 > u64::from(u32::MAX) {
                return Err(Error::invalid(format!(
                    "ESP file {path:?} is 4 GiB or larger; FAT cannot hold it"
                )));
            }
            parent
                .children
                .push(Child::new(leaf, Kind::File(tree.data.len())));
            tree.data.push(bytes);
            tree.paths.push(comps.join("/"));
        }
        Ok(tree)
    }

    /// The directory `name` in directory `at`, created if it is new.
    fn subdir(&mut self, at: usize, name: &str, path: &str) -> Result<usize> {
        let found = own(&self.dirs, at)?
            .children
            .iter()
            .find(|ch| ch.long.to_lowercase() == name.to_lowercase());
        match found.map(|ch| &ch.kind) {
            Some(Kind::Dir(i)) => Ok(*i),
            Some(Kind::File(_)) => Err(Error::invalid(format!(
                "ESP path {path:?}: {name:?} is a file, not a directory"
            ))),
            None => {
                let idx = self.dirs.len();
                own_mut(&mut self.dirs, at)?
                    .children
                    .push(Child::new(name, Kind::Dir(idx)));
                self.dirs.push(DirNode {
                    parent: at,
                    ..Default::default()
                });
                Ok(idx)
            }
        }
    }

    fn assign_short_names(&mut self) -> Result<()> {
        for d in self.dirs.iter_mut() {
            assign_short_names(&mut d.children, &DOT_NAMES)?;
        }
        Ok(())
    }

    /// Give clusters to directories first (the FAT32 root is cluster 2), then to each
    /// file in one contiguous run; returns the first cluster left free. The sums
    /// saturate: a count past u64 is far more than the volume's clusters, refused here.
    fn allocate(&mut self, g: &BootSector, label: &str, size: u64) -> Result<u64> {
        let cs = g.cluster_size;
        let mut next = 2u64;
        for (i, d) in self.dirs.iter_mut().enumerate() {
            if i == 0 && g.fat_type != FatType::Fat32 {
                continue;
            }
            let n = entries_of(i, d, label);
            d.clusters = n.saturating_mul(DIR_ENTRY_BYTES).div_ceil(cs).max(1);
            d.first_cluster = next;
            next = next.saturating_add(d.clusters);
        }
        for b in &self.data {
            let n = (b.len() as u64).div_ceil(cs);
            self.file_clusters.push(if n == 0 { 0 } else { next });
            next = next.saturating_add(n);
        }
        let used = next.saturating_sub(2);
        if used > g.clusters {
            let need = used.saturating_mul(cs);
            return Err(Error::invalid(format!(
                "the ESP is too small: its files and directories need {need} bytes ({} MiB) in {cs}-byte clusters, a {size}-byte {} volume holds {} bytes; use a larger ESP",
                need.div_ceil(1 << 20),
                g.fat_type.name(),
                g.clusters.saturating_mul(cs)
            )));
        }
        Ok(next)
    }

    /// The volume as extents: reserved area, FATs, root directory, directory clusters,
    /// then the files' own bytes.
    fn emit(self, g: &BootSector, next: u64, names: &Names<'_>) -> Result<FatPlan<'a>> {
        let used = next.saturating_sub(2);
        let mut extents: Vec<(u64, Cow<'a, [u8]>)> = vec![(0, Cow::Owned(reserved_area(g, next)?))];
        let fat = self.fat_bytes(g, next)?;
        let fat_used = fat.len() as u64;
        let fat_zeros = g.fat_len.checked_sub(fat_used).ok_or_else(|| {
            Error::invalid(format!(
                "FAT writer: {fat_used} bytes of FAT in {}",
                g.fat_len
            ))
        })?;
        for at in g.fat_offsets() {
            extents.push((at, Cow::Owned(fat.clone())));
            push_zeros(&mut extents, at.saturating_add(fat_used), fat_zeros);
        }
        if g.fat_type != FatType::Fat32 {
            let root = self.dir_bytes(0, names, g.root_len)?;
            extents.push((g.root_offset, Cow::Owned(root)));
        }
        let mut cluster_area = Vec::new();
        for (i, d) in self.dirs.iter().enumerate() {
            if d.clusters == 0 {
                continue;
            }
            let len = d.clusters.checked_mul(g.cluster_size).ok_or_else(|| {
                Error::invalid(format!("FAT writer: directory of {} clusters", d.clusters))
            })?;
            cluster_area.extend_from_slice(&self.dir_bytes(i, names, len)?);
        }
        if !cluster_area.is_empty() {
            extents.push((g.data_offset, Cow::Owned(cluster_area)));
        }
        let mut placed = Vec::with_capacity(self.data.len());
        let files = self.data.into_iter().zip(&self.file_clusters);
        for ((b, &first), path) in files.zip(self.paths) {
            // Empty files have no cluster, and offset 0.
            let offset = g.cluster_offset(first).unwrap_or(0);
            placed.push(PlacedFile {
                path,
                offset,
                len: b.len() as u64,
            });
            if !b.is_empty() {
                extents.push((offset, b));
            }
        }
        Ok(FatPlan {
            fat_type: g.fat_type,
            cluster_size: g.cluster_size,
            clusters: g.clusters,
            used_clusters: used,
            reserved_sectors: g.reserved_sectors,
            fat_sectors: g.fat_sectors,
            data_offset: g.data_offset,
            extents,
            files: placed,
        })
    }

    /// The used part of one FAT, padded to a whole sector: a chain per directory and
    /// file, before the first free cluster `next`.
    fn fat_bytes(&self, g: &BootSector, next: u64) -> Result<Vec<u8>> {
        let fat32 = g.fat_type == FatType::Fat32;
        let eoc = if fat32 { FAT32_EOC } else { FAT16_EOC };
        let mut fat: Vec<u32> = vec![0; fits(next, "FAT entry count")?];
        let media = if fat32 {
            0x0fff_ff00 | u32::from(MEDIA_FIXED)
        } else {
            0xff00 | u32::from(MEDIA_FIXED)
        };
        // Entry 1: end-of-chain with the "clean" and "no I/O error" bits set.
        if let [e0, e1, ..] = fat.as_mut_slice() {
            *e0 = media;
            *e1 = eoc;
        }
        let cs = g.cluster_size;
        let dir_runs = self.dirs.iter().map(|d| (d.first_cluster, d.clusters));
        let file_runs = self
            .data
            .iter()
            .zip(&self.file_clusters)
            .map(|(b, &first)| (first, (b.len() as u64).div_ceil(cs)));
        for (first, n) in dir_runs.chain(file_runs) {
            link(&mut fat, first, n, eoc).ok_or_else(|| {
                Error::invalid(format!("FAT writer: chain at cluster {first} out of range"))
            })?;
        }
        let entry_bytes = if fat32 { 4 } else { 2 };
        let mut out: Vec<u8> = Vec::with_capacity(fat.len().saturating_mul(entry_bytes));
        for v in &fat {
            let le = v.to_le_bytes();
            // FAT16 entries are the low 16 bits (every FAT16 value is below 0x10000).
            out.extend_from_slice(if fat32 { &le } else { &le[..2] });
        }
        out.resize(
            out.len()
                .next_multiple_of(fits(g.sector_size, "sector size")?),
            0,
        );
        Ok(out)
    }

    /// The entries of directory `i`, padded to `len` bytes.
    fn dir_bytes(&self, i: usize, names: &Names<'_>, len: u64) -> Result<Vec<u8>> {
        let d = own(&self.dirs, i)?;
        let t = &names.stamp;
        let mut out = Vec::with_capacity(fits(len, "directory size")?);
        if i == 0 {
            if !names.label.is_empty() {
                let name = padded::<11>(names.label.as_bytes());
                out.extend_from_slice(&short_entry(&name, ATTR_VOLUME_ID, 0, 0, t));
            }
        } else {
            let [dot, dotdot] = &DOT_NAMES;
            out.extend_from_slice(&short_entry(dot, ATTR_DIRECTORY, d.first_cluster, 0, t));
            // ".." of a directory in the root points at cluster 0, even on FAT32
            // where the root has a cluster (the rule fatfs#117 broke).
            let parent = if d.parent == 0 {
                0
            } else {
                own(&self.dirs, d.parent)?.first_cluster
            };
            out.extend_from_slice(&short_entry(dotdot, ATTR_DIRECTORY, parent, 0, t));
        }
        for c in &d.children {
            if c.lfn {
                for e in long_entries(c) {
                    out.extend_from_slice(&e);
                }
            }
            let e = match c.kind {
                Kind::Dir(j) => {
                    let first = own(&self.dirs, j)?.first_cluster;
                    short_entry(&c.short, ATTR_DIRECTORY, first, 0, t)
                }
                Kind::File(j) => {
                    let first = *own(&self.file_clusters, j)?;
                    let size = fits(own(&self.data, j)?.len() as u64, "file size")?;
                    short_entry(&c.short, ATTR_ARCHIVE, first, size, t)
                }
            };
            out.extend_from_slice(&e);
        }
        out.resize(fits(len, "directory size")?, 0);
        Ok(out)
    }
}

/// The reserved sectors: the boot sector, and on FAT32 the FSInfo sector and the
/// backups of both; every field lies in the first 512 bytes of its sector.
fn reserved_area(g: &BootSector, next: u64) -> Result<Vec<u8>> {
    let ss: usize = fits(g.sector_size, "sector size")?;
    let mut reserved = vec![
        0u8;
        fits(
            g.reserved_sectors.saturating_mul(g.sector_size),
            "reserved area"
        )?
    ];
    let mut put_sector = |n: u16, src: &[u8; 512]| -> Result<()> {
        let dst = reserved
            .chunks_exact_mut(ss)
            .nth(usize::from(n))
            .ok_or_else(|| Error::invalid(format!("FAT writer: no reserved sector {n}")))?;
        dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s);
        Ok(())
    };
    let boot = g.emit()?;
    put_sector(0, &boot)?;
    if g.fat_type == FatType::Fat32 {
        let info = fs_info(g, next)?;
        put_sector(FSINFO_SECTOR, &info)?;
        put_sector(BACKUP_BOOT_SECTOR, &boot)?;
        put_sector(BACKUP_BOOT_SECTOR + 1, &info)?;
    }
    Ok(reserved)
}

/// The FAT32 FSInfo sector: the free cluster count and the first free cluster.
fn fs_info(g: &BootSector, next: u64) -> Result<[u8; 512]> {
    let used = next.saturating_sub(2);
    let mut info = [0u8; 512];
    put32(&mut info, 0, FSI_LEAD_SIG);
    put32(&mut info, FSI_STRUC_AT, FSI_STRUC_SIG);
    put32(
        &mut info,
        FSI_FREE_COUNT,
        fits(g.clusters.saturating_sub(used), "free clusters")?,
    );
    put32(
        &mut info,
        FSI_NXT_FREE,
        if used < g.clusters {
            fits(next, "next free cluster")?
        } else {
            u32::MAX
        },
    );
    put32(&mut info, FSI_TRAIL_AT, FSI_TRAIL_SIG);
    Ok(info)
}

/// An index into one of the writer's own tables that is out of range: a bug in this
/// module, reported as an error rather than a panic.
fn own<T>(table: &[T], i: usize) -> Result<&T> {
    table
        .get(i)
        .ok_or_else(|| Error::invalid(format!("FAT writer: table index {i} out of range")))
}

fn own_mut<T>(table: &mut [T], i: usize) -> Result<&mut T> {
    table
        .get_mut(i)
        .ok_or_else(|| Error::invalid(format!("FAT writer: table index {i} out of range")))
}

fn validate_component(c: &str, path: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("ESP path {path:?}: {why}")));
    if c.is_empty() || c == "." || c == ".." {
        return bad("empty, '.' or '..' component");
    }
    if c.chars()
        .any(|ch| (ch as u32) < 0x20 || LONG_NAME_FORBIDDEN.contains(ch))
    {
        return bad("a name contains a character FAT forbids (\"*/:<>?\\| or a control character)");
    }
    if c.ends_with('.') || c.ends_with(' ') {
        return bad("a name ends in '.' or ' '");
    }
    if c.encode_utf16().count() > LFN_MAX_UNITS {
        return bad("a name is longer than 255 UTF-16 units");
    }
    Ok(())
}

fn short_char_ok(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || SHORT_NAME_EXTRA.contains(&b)
}

/// `s` padded with spaces to N bytes; callers check the length (longer input is cut).
fn padded<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [b' '; N];
    out.iter_mut().zip(s).for_each(|(o, &c)| *o = c);
    out
}

/// An 8.3 name in its 11-byte form: the base padded to 8, the extension to 3.
fn short_name(base: &[u8], ext: &[u8]) -> [u8; 11] {
    let mut out = padded::<11>(&padded::<8>(base));
    out.iter_mut().skip(8).zip(ext).for_each(|(o, &c)| *o = c);
    out
}

/// The 11-byte form of `name` if it is already a valid upper-case 8.3 name.
fn exact_short(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 {
        return None;
    }
    if !base.bytes().chain(ext.bytes()).all(short_char_ok) {
        return None;
    }
    Some(short_name(base.as_bytes(), ext.as_bytes()))
}
/// Basis name and extension for a generated short name (the Windows scheme: upper
/// case, invalid characters become '_', spaces and extra dots are dropped).
fn short_basis(name: &str) -> (Vec<u8>, Vec<u8>) {
    let trimmed = name.trim_start_matches('.');
    let (base, ext) = match trimmed.rsplit_once('.') {
        Some((b, e)) => (b, e),
        None => (trimmed, ""),
    };
    let conv = |s: &str, n: usize| -> Vec<u8> {
        s.chars()
            .filter(|&c| c != ' ' && c != '.')
            .map(|c| {
                let u = c.to_ascii_uppercase();
                if u.is_ascii() && short_char_ok(u as u8) {
                    u as u8
                } else {
                    b'_'
                }
            })
            .take(n)
            .collect()
    };
    let mut b = conv(base, 8);
    if b.is_empty() {
        b.push(b'_');
    }
    (b, conv(ext, 3))
}

/// Assign short names to the children of one directory: exact 8.3 names first, then
/// upper-cased names that are free, then `BASIS~N`.
fn assign_short_names(children: &mut [Child], reserved: &[[u8; 11]]) -> Result<()> {
    let mut taken: Vec<[u8; 11]> = reserved.to_vec();
    for c in children.iter_mut() {
        if let Some(s) = exact_short(&c.long) {
            c.short = s;
            c.lfn = false;
            taken.push(s);
        }
    }
    for c in children
        .iter_mut()
        .filter(|c| exact_short(&c.long).is_none())
    {
        c.lfn = true;
        if let Some(s) = exact_short(&c.long.to_ascii_uppercase()).filter(|s| !taken.contains(s)) {
            if c.long.is_ascii() {
                c.short = s;
                taken.push(s);
                continue;
            }
        }
        let (base, ext) = short_basis(&c.long);
        let mut found = None;
        for n in 1..1_000_000u32 {
            // The tail is at most 7 bytes ("~999999"), so one basis byte stays.
            let tail = format!("~{n}");
            let keep = 8usize.saturating_sub(tail.len());
            let stem: Vec<u8> = base
                .iter()
                .copied()
                .take(keep)
                .chain(tail.bytes())
                .collect();
            let s = short_name(&stem, &ext);
            if !taken.contains(&s) {
                found = Some(s);
                break;
            }
        }
        let s =
            found.ok_or_else(|| Error::invalid(format!("no free short name for {:?}", c.long)))?;
        c.short = s;
        taken.push(s);
    }
    Ok(())
}

fn lfn_entries(c: &Child) -> u64 {
    if c.lfn {
        (c.long.encode_utf16().count() as u64).div_ceil(LFN_CHARS as u64)
    } else {
        0
    }
}

struct Stamp {
    date: u16,
    time: u16,
}

fn short_entry(name: &[u8; 11], attr: u8, cluster: u64, size: u32, t: &Stamp) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[D_NAME..D_NAME + 11].copy_from_slice(name);
    e[D_ATTR] = attr;
    // The cluster number split in 16-bit halves (clusters are below 2^28).
    let [c0, c1, c2, c3, ..] = cluster.to_le_bytes();
    put16(&mut e, D_CRT_TIME, t.time);
    put16(&mut e, D_CRT_DATE, t.date);
    put16(&mut e, D_LST_ACC_DATE, t.date);
    put16(&mut e, D_FST_CLUS_HI, u16::from_le_bytes([c2, c3]));
    put16(&mut e, D_WRT_TIME, t.time);
    put16(&mut e, D_WRT_DATE, t.date);
    put16(&mut e, D_FST_CLUS_LO, u16::from_le_bytes([c0, c1]));
    put32(&mut e, D_FILE_SIZE, size);
    e
}

/// The long-name entries of `c`, in on-disk order (last part first).
fn long_entries(c: &Child) -> Vec<[u8; 32]> {
    let units: Vec<u16> = c.long.encode_utf16().collect();
    let sum = short_name_checksum(&c.short);
    // Thirteen units an entry; a name that does not fill its last entry ends in a
    // NUL, then 0xFFFF.
    let parts: Vec<[u16; LFN_CHARS]> = units
        .chunks(LFN_CHARS)
        .map(|chunk| {
            let mut part = [0xffff; LFN_CHARS];
            let units = chunk.iter().copied().chain(std::iter::once(0));
            part.iter_mut().zip(units).for_each(|(p, u)| *p = u);
            part
        })
        .collect();
    let n = parts.len();
    let mut out = Vec::with_capacity(n);
    for (ord, part) in (1..=u8::MAX).zip(&parts).rev() {
        let mut e = [0u8; 32];
        e[0] = ord | if usize::from(ord) == n { LFN_LAST } else { 0 };
        e[D_ATTR] = ATTR_LONG_NAME;
        e[LFN_CHECKSUM] = sum;
        for (&at, &u) in LFN_UNIT_OFFSETS.iter().zip(part) {
            put16(&mut e, at, u);
        }
        out.push(e);
    }
    out
}

/// Link clusters `first..first + n` of `fat` into one chain: each entry points at the
/// next cluster, the last one ends the chain. None if the run is outside the FAT.
fn link(fat: &mut [u32], first: u64, n: u64, eoc: u32) -> Option<()> {
    let slots = fat
        .get_mut(usize::try_from(first).ok()?..)?
        .get_mut(..usize::try_from(n).ok()?)?;
    if let Some((last, rest)) = slots.split_last_mut() {
        let following = u32::try_from(first).ok()?.checked_add(1)?;
        for (slot, c) in rest.iter_mut().zip(following..) {
            *slot = c;
        }
        *last = eoc;
    }
    Some(())
}

/// Directory entries a directory needs (own entries, long names, short entries).
fn entries_of(i: usize, d: &DirNode, label: &str) -> u64 {
    let own_entries = if i == 0 {
        u64::from(!label.is_empty())
    } else {
        2
    };
    // At most 20 long-name entries a child (255 units, 13 an entry).
    let long: u64 = d.children.iter().map(lfn_entries).sum();
    own_entries
        .saturating_add(d.children.len() as u64)
        .saturating_add(long)
}

/// Zero extents borrowing [`ZEROS`], for areas that must read as zero on the target.
pub(crate) fn push_zeros<'a>(extents: &mut Vec<(u64, Cow<'a, [u8]>)>, at: u64, len: u64) {
    let (mut at, mut left) = (at, len);
    while left > 0 {
        let chunk = usize::try_from(left)
            .ok()
            .and_then(|n| ZEROS.get(..n))
            .unwrap_or(&ZEROS[..]);
        let n = chunk.len() as u64;
        extents.push((at, Cow::Borrowed(chunk)));
        // `n <= left`, and the area ends inside its disk.
        at = at.saturating_add(n);
        left = left.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::fat::read::read_volume;
    use crate::disk::DiskImage;
    use std::io::Read;

    const MIB: u64 = 1 << 20;

    fn volume(
        size: u64,
        opts: &FatOptions,
        files: &[(&str, Vec<u8>)],
    ) -> (FatPlan<'static>, Vec<u8>) {
        let owned: Vec<(String, Cow<'static, [u8]>)> = files
            .iter()
            .map(|(p, d)| (p.to_string(), Cow::Owned(d.clone())))
            .collect();
        let plan = format(size, opts, owned).unwrap();
        let mut img = DiskImage::new(size);
        for (o, d) in plan.extents.clone() {
            img.put(o, d).unwrap();
        }
        (plan, img.to_vec())
    }

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn sample() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("EFI/BOOT/BOOTX64.EFI", pattern(300_000, 1)),
            ("EFI/Linux/systemd-bootx64.efi", pattern(4096, 2)),
            ("EFI/Linux/systemd-bootia32.efi", pattern(4097, 3)),
            ("loader/loader.conf", b"timeout 0\n".to_vec()),
            ("loader/keys/auto/db.auth", pattern(1500, 4)),
            ("empty", Vec::new()),
            (
                "a very long file name that needs several long entries.txt",
                pattern(10, 5),
            ),
            ("Ünïcödé.efi", pattern(33, 6)),
        ]
    }

    #[test]
    fn fatfs_reads_back_every_file_at_both_sector_sizes() {
        for (size, sector, want) in [
            (100 * MIB, 512, FatType::Fat32),
            (100 * MIB, 4096, FatType::Fat16),
            (300 * MIB, 4096, FatType::Fat32),
            (20 * MIB, 512, FatType::Fat16),
        ] {
            let opts = FatOptions {
                sector_size: sector,
                hidden_sectors: 2048,
                ..Default::default()
            };
            let files = sample();
            let (plan, bytes) = volume(size, &opts, &files);
            assert_eq!(plan.fat_type, want, "{size} {sector}");
            match want {
                FatType::Fat32 => assert!(plan.clusters >= FAT32_MIN_CLUSTERS),
                _ => assert!((FAT16_MIN_CLUSTERS..FAT32_MIN_CLUSTERS).contains(&plan.clusters)),
            }
            // The data area starts on a cluster boundary.
            assert_eq!(plan.data_offset % plan.cluster_size, 0);
            let fs = fatfs::FileSystem::new(
                std::io::Cursor::new(bytes.clone()),
                fatfs::FsOptions::new(),
            )
            .unwrap();
            assert_eq!(fs.volume_id(), opts.volume_id);
            assert_eq!(fs.volume_label().trim_end(), "EFI");
            for (path, data) in &files {
                let mut f = fs.root_dir().open_file(path).unwrap();
                let mut got = Vec::new();
                f.read_to_end(&mut got).unwrap();
                assert_eq!(&got, data, "{path}");
            }
            // Our own reader agrees, and finds the files contiguous.
            let v = read_volume(&bytes).unwrap();
            assert_eq!(v.problems, Vec::<String>::new());
            assert_eq!(v.fat_type, want);
            for (path, data) in &files {
                let e = v.entries.iter().find(|e| e.path == *path).unwrap();
                assert!(e.runs.len() <= 1);
                assert_eq!(v.file_bytes(&bytes, e).unwrap().as_ref(), data.as_slice());
            }
        }
    }

    #[test]
    fn dot_entries_come_first_and_dotdot_of_a_root_child_is_zero() {
        // The rule fatfs 0.3.6 breaks (rust-fatfs#117) and fsck.fat enforces.
        let (plan, bytes) = volume(100 * MIB, &FatOptions::default(), &sample());
        let v = read_volume(&bytes).unwrap();
        let efi = v.entries.iter().find(|e| e.path == "EFI").unwrap();
        let boot = v.entries.iter().find(|e| e.path == "EFI/BOOT").unwrap();
        let at = |c: u32| (plan.data_offset + (u64::from(c) - 2) * plan.cluster_size) as usize;
        let d = &bytes[at(efi.first_cluster)..];
        assert_eq!(&d[0..11], b".          ");
        assert_eq!(&d[32..43], b"..         ");
        assert_eq!(u16::from_le_bytes([d[32 + 26], d[32 + 27]]), 0);
        let d = &bytes[at(boot.first_cluster)..];
        assert_eq!(&d[32..43], b"..         ");
        assert_eq!(
            u32::from(u16::from_le_bytes([d[32 + 26], d[32 + 27]])),
            efi.first_cluster
        );
    }

    #[test]
    fn short_names_follow_the_windows_scheme() {
        let (_, bytes) = volume(100 * MIB, &FatOptions::default(), &sample());
        let v = read_volume(&bytes).unwrap();
        let short = |p: &str| {
            v.entries
                .iter()
                .find(|e| e.path == p)
                .unwrap()
                .short_name
                .clone()
        };
        assert_eq!(short("EFI/BOOT/BOOTX64.EFI"), "BOOTX64.EFI");
        assert_eq!(short("loader/loader.conf"), "LOADER~1.CON");
        assert_eq!(short("EFI/Linux/systemd-bootx64.efi"), "SYSTEM~1.EFI");
        assert_eq!(short("EFI/Linux/systemd-bootia32.efi"), "SYSTEM~2.EFI");
        assert_eq!(short("EFI/Linux"), "LINUX");
    }

    #[test]
    fn refusals_are_clear() {
        let o = FatOptions::default();
        let err = |size: u64, files: Vec<(String, Cow<'static, [u8]>)>| {
            format(size, &o, files).unwrap_err().to_string()
        };
        assert!(err(MIB, vec![]).contains("too small"));
        assert!(err(9 << 40, vec![]).contains("too large"));
        assert!(
            err(4 * MIB, vec![("big".into(), Cow::Owned(vec![1; 5 << 20]))]).contains("too small")
        );
        let two = vec![
            ("A/b".into(), Cow::Borrowed(&b"x"[..])),
            ("a/B".into(), Cow::Borrowed(&b"y"[..])),
        ];
        assert!(err(100 * MIB, two).contains("twice"));
        assert!(err(100 * MIB, vec![("a:b".into(), Cow::Borrowed(&b""[..]))]).contains("forbids"));
        assert!(err(100 * MIB, vec![("x/../y".into(), Cow::Borrowed(&b""[..]))]).contains("'..'"));
        let bad_label = FatOptions {
            label: "much too long label".into(),
            ..Default::default()
        };
        assert!(format(100 * MIB, &bad_label, vec![]).is_err());
    }

    #[test]
    fn reproducible_and_timestamped() {
        let o = FatOptions {
            timestamp: 1_735_787_046,
            ..Default::default()
        };
        let (_, a) = volume(64 * MIB, &o, &sample());
        let (_, b) = volume(64 * MIB, &o, &sample());
        assert_eq!(a, b);
        let v = read_volume(&a).unwrap();
        assert!(v.entries.iter().all(|e| e.modified == Some(1_735_787_046)));
    }

    #[test]
    fn hostile_volumes_do_not_panic() {
        let (_, good) = volume(8 * MIB, &FatOptions::default(), &sample());
        let mut seed = 0x1234_5678u32;
        for _ in 0..300 {
            let mut d = good[..(1 << 20).min(good.len())].to_vec();
            for _ in 0..16 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (seed as usize >> 8) % 0x8000;
                d[at] = (seed >> 24) as u8;
            }
            let _ = read_volume(&d);
        }
        // A truncated volume is reported, not trusted.
        assert!(read_volume(&good[..600]).map_or(true, |v| !v.problems.is_empty()));
        // A root directory whose chain loops back on itself ends the walk.
        let (plan, mut d) = volume(100 * MIB, &FatOptions::default(), &sample());
        let fat2 = (plan.reserved_sectors * 512 + 8) as usize;
        d[fat2..fat2 + 4].copy_from_slice(&2u32.to_le_bytes());
        let v = read_volume(&d).unwrap();
        assert!(v.entries.len() < 1000);
        // A subdirectory that points back at the root's cluster is not walked twice.
        let efi = v
            .entries
            .iter()
            .find(|e| e.path == "EFI")
            .unwrap()
            .first_cluster;
        let at = (plan.data_offset + (u64::from(efi) - 2) * plan.cluster_size) as usize + 64 + 26;
        let mut d2 = d.clone();
        d2[at..at + 2].copy_from_slice(&2u16.to_le_bytes());
        assert!(read_volume(&d2).is_ok());
    }
}
