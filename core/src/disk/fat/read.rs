//! A bounded reader for FAT12/16/32 volumes found on disks: the boot sector, and a
//! walk of every directory that survives hostile input (cycles, cross-links, chains
//! past the end, absurd sizes) with a fixed budget of cluster visits.

use std::borrow::Cow;
use std::num::NonZeroU64;

use super::raw::*;
use super::{short_name_checksum, unix_of_dos, FatType};
use crate::bytes::{self, u16_le, u32_le};
use crate::error::{Error, Result};

/// More entries than any ESP has; a hostile volume stops here.
const MAX_ENTRIES: usize = 100_000;

/// One file or directory on a volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FatEntry {
    /// Path from the root, `/`-separated, as the long name gives it.
    pub path: String,
    pub short_name: String,
    pub is_dir: bool,
    pub size: u64,
    pub first_cluster: u32,
    /// Modification time (Unix seconds, the DOS fields read as UTC).
    pub modified: Option<i64>,
    /// The file's bytes as (volume offset, length) runs, when its chain is sound.
    #[serde(skip)]
    pub runs: Vec<(u64, u64)>,
}

/// A FAT volume as read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FatVolume {
    pub fat_type: FatType,
    pub oem: String,
    pub label: String,
    pub volume_id: String,
    pub sector_size: u64,
    pub cluster_size: u64,
    pub clusters: u64,
    pub hidden_sectors: u32,
    pub entries: Vec<FatEntry>,
    pub problems: Vec<String>,
}

/// Does this look like a FAT boot sector?
pub fn looks_like_fat(vol: &[u8]) -> bool {
    let ok_sig = vol.get(510..512) == Some(&[0x55, 0xaa][..]);
    let bps = u16_le(vol, BPB_BYTES_PER_SEC as u64, "BPB").unwrap_or(0);
    let spc = vol.get(BPB_SEC_PER_CLUS).copied().unwrap_or(0);
    let jmp = vol.first().is_some_and(|&b| b == 0xeb || b == 0xe9);
    ok_sig && jmp && matches!(bps, 512 | 1024 | 2048 | 4096) && spc.is_power_of_two()
}

struct Geo {
    fat_type: FatType,
    cs: u64,
    fat_off: u64,
    root_off: u64,
    /// Bytes of the fixed root directory (FAT12/16).
    root_len: u64,
    root_cluster: u32,
    data_off: u64,
    clusters: u64,
    /// The longest chain worth following: no more clusters than the input can hold,
    /// so a cyclic chain ends and a gathered file is never larger than the input.
    max_chain: u64,
}

impl Geo {
    fn cluster_offset(&self, c: u32) -> Option<u64> {
        let idx = u64::from(c).checked_sub(2).filter(|&i| i < self.clusters)?;
        idx.checked_mul(self.cs)?.checked_add(self.data_off)
    }

    fn next(&self, vol: &[u8], c: u32) -> Option<u32> {
        let c64 = u64::from(c);
        // Byte offset of entry `c` in the FAT: 4, 2 or 1.5 bytes an entry.
        let at = |rel: Option<u64>| rel?.checked_add(self.fat_off);
        let v = match self.fat_type {
            FatType::Fat32 => u32_le(vol, at(c64.checked_mul(4))?, "FAT").ok()? & FAT32_MASK,
            FatType::Fat16 => u32::from(u16_le(vol, at(c64.checked_mul(2))?, "FAT").ok()?),
            FatType::Fat12 => {
                let w = u16_le(vol, at(c64.checked_add(c64 / 2))?, "FAT").ok()?;
                u32::from(if c % 2 == 0 { w & 0xfff } else { w >> 4 })
            }
        };
        let end = match self.fat_type {
            FatType::Fat32 => 0x0fff_fff8,
            FatType::Fat16 => 0xfff8,
            FatType::Fat12 => 0xff8,
        };
        let in_data = u64::from(v)
            .checked_sub(2)
            .is_some_and(|i| i < self.clusters);
        (in_data && v < end).then_some(v)
    }
}

/// Bounds the total work of a walk: each cluster visited costs one unit.
struct Budget(u64);

impl Budget {
    fn take(&mut self) -> bool {
        match self.0.checked_sub(1) {
            Some(left) => {
                self.0 = left;
                true
            }
            None => false,
        }
    }
}

/// Read the boot sector and walk every directory of the volume in `vol`.
pub fn read_volume(vol: &[u8]) -> Result<FatVolume> {
    let w = "FAT boot sector";
    let sector = u16_le(vol, BPB_BYTES_PER_SEC as u64, w)?;
    let Some(sector_nz) =
        NonZeroU64::new(u64::from(sector)).filter(|s| matches!(s.get(), 512 | 1024 | 2048 | 4096))
    else {
        return Err(Error::malformed(
            BPB_BYTES_PER_SEC as u64,
            format!("bytes per sector {sector} is not 512..4096"),
        ));
    };
    let sector = sector_nz.get();
    let spc = bytes::u8_at(vol, BPB_SEC_PER_CLUS as u64, w)?;
    let Some(spc) = NonZeroU64::new(u64::from(spc)).filter(|s| s.is_power_of_two()) else {
        return Err(Error::malformed(
            BPB_SEC_PER_CLUS as u64,
            format!("sectors per cluster {spc} is not a power of two"),
        ));
    };
    let reserved = u64::from(u16_le(vol, BPB_RSVD_SEC_CNT as u64, w)?);
    let nfats = u64::from(bytes::u8_at(vol, BPB_NUM_FATS as u64, w)?);
    let root_entries = u64::from(u16_le(vol, BPB_ROOT_ENT_CNT as u64, w)?);
    let tot16 = u64::from(u16_le(vol, BPB_TOT_SEC16 as u64, w)?);
    let tot32 = u64::from(u32_le(vol, BPB_TOT_SEC32 as u64, w)?);
    let fat16 = u64::from(u16_le(vol, BPB_FAT_SZ16 as u64, w)?);
    let total = if tot16 != 0 { tot16 } else { tot32 };
    let fat_sectors = if fat16 != 0 {
        fat16
    } else {
        u64::from(u32_le(vol, BPB_FAT_SZ32 as u64, w)?)
    };
    if reserved == 0 || nfats == 0 || fat_sectors == 0 {
        return Err(Error::malformed(
            BPB_RSVD_SEC_CNT as u64,
            "reserved sectors, FAT count and FAT size must be non-zero",
        ));
    }
    // Sizes in sectors from 8-, 16- and 32-bit fields cannot overflow 64 bits; the
    // checks keep that true whatever the fields hold.
    let root_len = bytes::mul(
        root_entries,
        DIR_ENTRY_BYTES,
        BPB_ROOT_ENT_CNT as u64,
        "root directory size",
    )?;
    let root_sectors = root_len.div_ceil(sector);
    let fats = bytes::mul(nfats, fat_sectors, BPB_NUM_FATS as u64, "FAT area size")?;
    let root_start = bytes::add(reserved, fats, BPB_RSVD_SEC_CNT as u64, "FAT area end")?;
    let data_start = bytes::add(
        root_start,
        root_sectors,
        BPB_ROOT_ENT_CNT as u64,
        "data area start",
    )?;
    let clusters = total.checked_sub(data_start).ok_or_else(|| {
        Error::malformed(
            BPB_TOT_SEC16 as u64,
            "total sectors end before the data area",
        )
    })? / spc;
    // A BPB with a 16-bit FAT size is FAT12 or FAT16 by its cluster count, never 32.
    let fat_type = if fat16 == 0 {
        FatType::Fat32
    } else if clusters < FAT16_MIN_CLUSTERS {
        FatType::Fat12
    } else {
        FatType::Fat16
    };
    // The extended block: at 36 on FAT12/16, at 64 on FAT32.
    let (sig_at, id_at, label_at) = if fat_type == FatType::Fat32 {
        (EXT32 + X_BOOT_SIG, EXT32 + X_VOL_ID, EXT32 + X_VOL_LAB)
    } else {
        (EXT16 + X_BOOT_SIG, EXT16 + X_VOL_ID, EXT16 + X_VOL_LAB)
    };
    let mut problems = Vec::new();
    let declared = bytes::mul(total, sector, BPB_TOT_SEC16 as u64, "volume size")?;
    if declared > vol.len() as u64 {
        problems.push(format!(
            "the volume declares {declared} bytes but the partition holds {}",
            vol.len()
        ));
    }
    let fat32_min = fat_type == FatType::Fat32 && clusters < FAT32_MIN_CLUSTERS;
    if fat32_min {
        problems.push(format!(
            "FAT32 with only {clusters} clusters (the minimum is {FAT32_MIN_CLUSTERS})"
        ));
    }
    let has_ext = bytes::u8_at(vol, sig_at as u64, w)? == EXT_BOOT_SIG;
    let label = if has_ext {
        bytes::text(bytes::slice(vol, label_at as u64, 11, w)?)
            .trim_end()
            .to_string()
    } else {
        String::new()
    };
    let volume_id = if has_ext {
        let v = u32_le(vol, id_at as u64, w)?;
        format!("{:04X}-{:04X}", v >> 16, v & 0xffff)
    } else {
        String::new()
    };
    let Some(cs) = sector_nz.checked_mul(spc) else {
        return Err(Error::malformed(
            BPB_SEC_PER_CLUS as u64,
            "cluster size overflows",
        ));
    };
    let g = Geo {
        fat_type,
        cs: cs.get(),
        fat_off: bytes::mul(reserved, sector, BPB_RSVD_SEC_CNT as u64, "FAT offset")?,
        root_off: bytes::mul(
            root_start,
            sector,
            BPB_FAT_SZ16 as u64,
            "root directory offset",
        )?,
        root_len,
        root_cluster: if fat_type == FatType::Fat32 {
            u32_le(vol, BPB_ROOT_CLUS as u64, w)?
        } else {
            0
        },
        data_off: bytes::mul(
            data_start,
            sector,
            BPB_ROOT_ENT_CNT as u64,
            "data area offset",
        )?,
        clusters,
        max_chain: clusters.min((vol.len() as u64 / cs).saturating_add(1)),
    };
    let mut out = FatVolume {
        fat_type,
        oem: bytes::text(bytes::slice(vol, BS_OEM as u64, 8, w)?)
            .trim_end()
            .to_string(),
        label,
        volume_id,
        sector_size: sector,
        cluster_size: g.cs,
        clusters,
        hidden_sectors: u32_le(vol, BPB_HIDD_SEC as u64, w)?,
        entries: Vec::new(),
        problems,
    };
    // Every cluster may be visited a few times (directories plus file chains) before
    // the walk gives up; hostile cross-linked files cannot make it quadratic.
    let mut budget = Budget(g.max_chain.saturating_mul(4).saturating_add(1024));
    // The FAT32 root has a cluster too: a subdirectory pointing back at it is a loop.
    let mut visited_dirs: Vec<u32> = if fat_type == FatType::Fat32 {
        vec![g.root_cluster]
    } else {
        Vec::new()
    };
    walk_dir(
        vol,
        &g,
        None,
        "",
        0,
        &mut budget,
        &mut visited_dirs,
        &mut out,
    )?;
    Ok(out)
}

/// The (offset, length) runs of the directory's clusters, or of the fixed root.
fn dir_runs(vol: &[u8], g: &Geo, cluster: Option<u32>, budget: &mut Budget) -> Vec<(u64, u64)> {
    match cluster {
        None if g.fat_type != FatType::Fat32 => {
            vec![(g.root_off, g.root_len)]
        }
        c => chain_runs(vol, g, c.unwrap_or(g.root_cluster), u64::MAX, budget).0,
    }
}

/// Follow a chain from `first` for at most `max_bytes`; returns the runs and whether
/// the chain ended cleanly (end-of-chain or enough clusters for `max_bytes`).
fn chain_runs(
    vol: &[u8],
    g: &Geo,
    first: u32,
    max_bytes: u64,
    budget: &mut Budget,
) -> (Vec<(u64, u64)>, bool) {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut c = first;
    let mut left = max_bytes;
    let mut steps = 0u64;
    loop {
        let Some(off) = g.cluster_offset(c) else {
            return (runs, false);
        };
        if !budget.take() || steps >= g.max_chain {
            return (runs, false);
        }
        // Below max_chain, and `len <= left`: neither saturates.
        steps = steps.saturating_add(1);
        let len = g.cs.min(left);
        left = left.saturating_sub(len);
        match runs.last_mut() {
            // A cluster right after the run extends it (cluster ends are below 2^53).
            Some((o, l)) if o.checked_add(*l) == Some(off) => *l = l.saturating_add(len),
            _ => runs.push((off, len)),
        }
        if left == 0 {
            return (runs, true);
        }
        match g.next(vol, c) {
            Some(n) => c = n,
            None => {
                // A free or bad entry mid-chain is a break; end-of-chain is fine for
                // directories (max_bytes is unbounded) and short for files.
                return (runs, max_bytes == u64::MAX);
            }
        }
    }
}

fn short_name_text(raw: &[u8], ntres: u8) -> String {
    let mut name = raw.to_vec();
    // 0x05 stands for a first byte of 0xE5, which marks free entries.
    if let Some(b) = name.first_mut().filter(|b| **b == 0x05) {
        *b = 0xe5;
    }
    let (base, ext) = name.split_at(8.min(name.len()));
    let conv = |s: &[u8], lower: bool| -> String {
        let t: String = s
            .iter()
            .map(|&b| char::from(b))
            .collect::<String>()
            .trim_end()
            .to_string();
        if lower {
            t.to_ascii_lowercase()
        } else {
            t
        }
    };
    let b = conv(base, ntres & 0x08 != 0);
    let e = conv(ext, ntres & 0x10 != 0);
    if e.is_empty() {
        b
    } else {
        format!("{b}.{e}")
    }
}

#[allow(clippy::too_many_arguments)]
fn walk_dir(
    vol: &[u8],
    g: &Geo,
    cluster: Option<u32>,
    prefix: &str,
    depth: u32,
    budget: &mut Budget,
    visited: &mut Vec<u32>,
    out: &mut FatVolume,
) -> Result<()> {
    if depth > 64 {
        out.problems.push(format!(
            "directories nested deeper than 64 at {prefix:?}; not walked"
        ));
        return Ok(());
    }
    if let Some(c) = cluster {
        if visited.contains(&c) {
            out.problems
                .push(format!("directory {prefix:?} loops back to cluster {c}"));
            return Ok(());
        }
        visited.push(c);
    }
    let runs = dir_runs(vol, g, cluster, budget);
    let mut lfn: Vec<u16> = Vec::new();
    let mut lfn_next: u8 = 0;
    let mut lfn_sum: u8 = 0;
    let mut subdirs: Vec<(String, u32)> = Vec::new();
    'runs: for (off, len) in runs {
        // Every whole entry of the run: `at + 32 <= len`.
        for at in (0..len.saturating_sub(DIR_ENTRY_BYTES - 1)).step_by(DIR_ENTRY_SIZE) {
            let read = off.checked_add(at).and_then(|entry_off| {
                let e: [u8; DIR_ENTRY_SIZE] =
                    bytes::array(vol, entry_off, "directory entry").ok()?;
                Some((entry_off, e))
            });
            let Some((entry_off, e)) = read else {
                out.problems.push(format!(
                    "directory {prefix:?} runs past the end of the partition"
                ));
                break 'runs;
            };
            let [first, ..] = e;
            if first == ENTRY_END {
                break 'runs;
            }
            if first == ENTRY_FREE {
                lfn.clear();
                lfn_next = 0;
                continue;
            }
            let attr = e[D_ATTR];
            if attr & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME {
                let ord = first & 0x3f;
                if first & LFN_LAST != 0 {
                    lfn.clear();
                    lfn_next = ord;
                    lfn_sum = e[LFN_CHECKSUM];
                } else if ord != lfn_next || e[LFN_CHECKSUM] != lfn_sum {
                    lfn.clear();
                    lfn_next = 0;
                    continue;
                }
                if lfn_next == 0 {
                    continue;
                }
                let Some(below) = ord.checked_sub(1) else {
                    continue;
                };
                let mut part: Vec<u16> = LFN_UNIT_OFFSETS
                    .iter()
                    .filter_map(|&o| e.get(o..)?.first_chunk().copied())
                    .map(u16::from_le_bytes)
                    .collect();
                if let Some(end) = part.iter().position(|&u| u == 0) {
                    part.truncate(end);
                }
                part.extend_from_slice(&lfn);
                lfn = part;
                lfn_next = below;
                continue;
            }
            let name11: [u8; 11] = bytes::array(&e, 0, "directory entry")?;
            let long =
                if !lfn.is_empty() && lfn_next == 0 && short_name_checksum(&name11) == lfn_sum {
                    Some(String::from_utf16_lossy(&lfn))
                } else {
                    None
                };
            lfn.clear();
            lfn_next = 0;
            if attr & ATTR_VOLUME_ID != 0 {
                continue;
            }
            let short = short_name_text(&name11, e[D_NTRES]);
            if short == "." || short == ".." {
                continue;
            }
            let name = long.unwrap_or_else(|| short.clone());
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let hi = u32::from(u16_le(&e, D_FST_CLUS_HI as u64, "directory entry")?);
            let lo = u32::from(u16_le(&e, D_FST_CLUS_LO as u64, "directory entry")?);
            let first_cluster = if g.fat_type == FatType::Fat32 {
                hi << 16 | lo
            } else {
                lo
            };
            let size = u64::from(u32_le(&e, D_FILE_SIZE as u64, "directory entry")?);
            let modified = unix_of_dos(
                u16_le(&e, D_WRT_DATE as u64, "directory entry")?,
                u16_le(&e, D_WRT_TIME as u64, "directory entry")?,
            );
            let is_dir = attr & ATTR_DIRECTORY != 0;
            let mut runs = Vec::new();
            if is_dir {
                subdirs.push((path.clone(), first_cluster));
            } else if size > 0 {
                let (r, ok) = chain_runs(vol, g, first_cluster, size, budget);
                if ok
                    && r.iter()
                        .all(|&(o, l)| o.checked_add(l).is_some_and(|end| end <= vol.len() as u64))
                {
                    runs = r;
                } else {
                    out.problems.push(format!(
                        "file {path:?} (entry at {entry_off:#x}): its cluster chain does not hold its {size} bytes"
                    ));
                }
            }
            // Bounded: each entry is 32 bytes of a directory cluster the budget paid for.
            if out.entries.len() >= MAX_ENTRIES {
                out.problems.push(format!(
                    "more than {MAX_ENTRIES} entries; the rest are not listed"
                ));
                return Ok(());
            }
            out.entries.push(FatEntry {
                path,
                short_name: short,
                is_dir,
                size,
                first_cluster,
                modified,
                runs,
            });
        }
    }
    for (path, c) in subdirs {
        if g.cluster_offset(c).is_none() {
            out.problems
                .push(format!("directory {path:?} starts at invalid cluster {c}"));
            continue;
        }
        // depth <= 64 here.
        let below = depth.saturating_add(1);
        walk_dir(vol, g, Some(c), &path, below, budget, visited, out)?;
    }
    Ok(())
}

impl FatVolume {
    /// The bytes of a file: borrowed when its clusters are contiguous, else gathered
    /// (at most the file's size, which its chain bounded by the volume's size).
    pub fn file_bytes<'a>(&self, vol: &'a [u8], e: &FatEntry) -> Result<Cow<'a, [u8]>> {
        match e.runs.as_slice() {
            [] if e.size == 0 => Ok(Cow::Borrowed(&[])),
            [] => Err(Error::malformed(
                0,
                format!("file {:?} has no readable cluster chain", e.path),
            )),
            [(o, l)] => Ok(Cow::Borrowed(bytes::slice(vol, *o, *l, "file data")?)),
            runs => {
                let total = runs
                    .iter()
                    .try_fold(0u64, |sum, r| sum.checked_add(r.1))
                    .and_then(|t| usize::try_from(t).ok())
                    .filter(|&t| t <= vol.len());
                let Some(total) = total else {
                    return Err(Error::malformed(
                        0,
                        format!("file {:?} claims more data than the volume holds", e.path),
                    ));
                };
                let mut v = Vec::with_capacity(total);
                for &(o, l) in runs {
                    v.extend_from_slice(bytes::slice(vol, o, l, "file data")?);
                }
                Ok(Cow::Owned(v))
            }
        }
    }
}
