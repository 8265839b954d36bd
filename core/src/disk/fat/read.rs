//! A bounded reader for FAT12/16/32 volumes found on disks: the boot sector, and a
//! walk of every directory that survives hostile input (cycles, cross-links, chains
//! past the end, absurd sizes) with a fixed budget of cluster visits.

use std::borrow::Cow;

use super::raw::*;
use super::{short_name_checksum, unix_of_dos, BootSector, FatType};
use crate::bytes::{self, u16_le, u32_le};
use crate::error::{Error, Result};
use crate::readat::Window;

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
pub fn looks_like_fat<'a>(vol: impl Into<Window<'a>>) -> bool {
    let Ok(head) = vol.into().head(512) else {
        return false;
    };
    let vol: &[u8] = &head;
    let ok_sig = vol.get(SIGNATURE_AT..SIGNATURE_AT + 2) == Some(&BOOT_SIGNATURE[..]);
    let bps = u16_le(vol, BPB_BYTES_PER_SEC as u64, "BPB").unwrap_or(0);
    let spc = vol.get(BPB_SEC_PER_CLUS).copied().unwrap_or(0);
    let jmp = vol.first().is_some_and(|&b| b == 0xeb || b == 0xe9);
    ok_sig && jmp && matches!(bps, 512 | 1024 | 2048 | 4096) && spc.is_power_of_two()
}

/// One walk over a volume: its boot sector, the work left, and what was found.
struct Walk<'v> {
    vol: Window<'v>,
    boot: BootSector,
    /// The longest chain worth following: no more clusters than the input can hold,
    /// so a cyclic chain ends and a gathered file is never larger than the input.
    max_chain: u64,
    /// Cluster visits left: each cluster visited costs one.
    budget: u64,
    /// Directory clusters walked so far; one seen again is a loop.
    visited: Vec<u32>,
    out: FatVolume,
}

/// Read the boot sector and walk every directory of the volume in `vol`.
pub fn read_volume<'a>(vol: impl Into<Window<'a>>) -> Result<FatVolume> {
    let vol: Window<'a> = vol.into();
    let boot = BootSector::parse(&vol.head(512)?)?;
    let fat32 = boot.fat_type == FatType::Fat32;
    let mut problems = Vec::new();
    // Sizes in sectors from 8-, 16- and 32-bit fields cannot overflow 64 bits; the
    // checks keep that true whatever the fields hold.
    let declared = bytes::mul(
        boot.total_sectors,
        boot.sector_size,
        BPB_TOT_SEC16 as u64,
        "volume size",
    )?;
    if declared > vol.len() {
        problems.push(format!(
            "the volume declares {declared} bytes but the partition holds {}",
            vol.len()
        ));
    }
    if fat32 && boot.clusters < FAT32_MIN_CLUSTERS {
        problems.push(format!(
            "FAT32 with only {} clusters (the minimum is {FAT32_MIN_CLUSTERS})",
            boot.clusters
        ));
    }
    let text = |b: &[u8]| bytes::text(b).trim_end().to_string();
    let (label, volume_id) = match boot.volume_id {
        Some(id) => (
            text(&id.label),
            format!("{:04X}-{:04X}", id.serial >> 16, id.serial & 0xffff),
        ),
        None => (String::new(), String::new()),
    };
    let max_chain = boot.clusters.min(
        vol.len()
            .checked_div(boot.cluster_size)
            .unwrap_or(0)
            .saturating_add(1),
    );
    let out = FatVolume {
        fat_type: boot.fat_type,
        oem: text(&boot.oem),
        label,
        volume_id,
        sector_size: boot.sector_size,
        cluster_size: boot.cluster_size,
        clusters: boot.clusters,
        hidden_sectors: boot.hidden_sectors,
        entries: Vec::new(),
        problems,
    };
    let mut walk = Walk {
        vol,
        // Every cluster may be visited a few times (directories plus file chains)
        // before the walk gives up; hostile cross-linked files cannot make it quadratic.
        budget: max_chain.saturating_mul(4).saturating_add(1024),
        max_chain,
        // The FAT32 root has a cluster too: a subdirectory pointing back at it is a loop.
        visited: if fat32 {
            vec![boot.root_cluster]
        } else {
            Vec::new()
        },
        boot,
        out,
    };
    walk.dir(None, "", 0)?;
    Ok(walk.out)
}

/// A long name gathered from the entries before a short entry (last part first).
#[derive(Default)]
struct LongName {
    units: Vec<u16>,
    /// The ordinal the next part must carry; 0 when no name is being gathered.
    next: u8,
    checksum: u8,
}

impl LongName {
    fn clear(&mut self) {
        self.units.clear();
        self.next = 0;
    }

    /// Take in one long-name entry; an entry out of sequence drops the name.
    fn push(&mut self, e: &[u8; DIR_ENTRY_SIZE]) {
        let [first, ..] = *e;
        let ord = first & 0x3f;
        if first & LFN_LAST != 0 {
            self.units.clear();
            self.next = ord;
            self.checksum = e[LFN_CHECKSUM];
        } else if ord != self.next || e[LFN_CHECKSUM] != self.checksum {
            self.clear();
            return;
        }
        if self.next == 0 {
            return;
        }
        let Some(below) = ord.checked_sub(1) else {
            return;
        };
        let mut part: Vec<u16> = LFN_UNIT_OFFSETS
            .iter()
            .filter_map(|&o| e.get(o..)?.first_chunk().copied())
            .map(u16::from_le_bytes)
            .collect();
        if let Some(end) = part.iter().position(|&u| u == 0) {
            part.truncate(end);
        }
        part.extend_from_slice(&self.units);
        self.units = part;
        self.next = below;
    }

    /// The name, if complete and made for the short entry `name11`; starts afresh.
    fn take(&mut self, name11: &[u8; 11]) -> Option<String> {
        let whole = !self.units.is_empty() && self.next == 0;
        let long = (whole && short_name_checksum(name11) == self.checksum)
            .then(|| String::from_utf16_lossy(&self.units));
        self.clear();
        long
    }
}

impl Walk<'_> {
    fn take_budget(&mut self) -> bool {
        match self.budget.checked_sub(1) {
            Some(left) => {
                self.budget = left;
                true
            }
            None => false,
        }
    }

    /// The FAT entry of cluster `c`, if it names a next cluster in the data area.
    fn next(&self, c: u32) -> Option<u32> {
        let (vol, g) = (self.vol, &self.boot);
        let c64 = u64::from(c);
        // Byte offset of entry `c` in the FAT: 4, 2 or 1.5 bytes an entry.
        let at = |rel: Option<u64>| rel?.checked_add(g.fat_offset);
        let v = match g.fat_type {
            FatType::Fat32 => vol.u32_le(at(c64.checked_mul(4))?, "FAT").ok()? & FAT32_MASK,
            FatType::Fat16 => u32::from(vol.u16_le(at(c64.checked_mul(2))?, "FAT").ok()?),
            FatType::Fat12 => {
                let w = vol.u16_le(at(c64.checked_add(c64 / 2))?, "FAT").ok()?;
                u32::from(if c % 2 == 0 { w & 0xfff } else { w >> 4 })
            }
        };
        let end = match g.fat_type {
            FatType::Fat32 => 0x0fff_fff8,
            FatType::Fat16 => 0xfff8,
            FatType::Fat12 => 0xff8,
        };
        let in_data = u64::from(v).checked_sub(2).is_some_and(|i| i < g.clusters);
        (in_data && v < end).then_some(v)
    }

    /// The (offset, length) runs of the directory's clusters, or of the fixed root.
    fn dir_runs(&mut self, cluster: Option<u32>) -> Vec<(u64, u64)> {
        match cluster {
            None if self.boot.fat_type != FatType::Fat32 => {
                vec![(self.boot.root_offset, self.boot.root_len)]
            }
            c => {
                let first = c.unwrap_or(self.boot.root_cluster);
                self.chain_runs(first, u64::MAX).0
            }
        }
    }

    /// Follow a chain from `first` for at most `max_bytes`; returns the runs and whether
    /// the chain ended cleanly (end-of-chain or enough clusters for `max_bytes`).
    fn chain_runs(&mut self, first: u32, max_bytes: u64) -> (Vec<(u64, u64)>, bool) {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut c = first;
        let mut left = max_bytes;
        let mut steps = 0u64;
        loop {
            let Some(off) = self.boot.cluster_offset(u64::from(c)) else {
                return (runs, false);
            };
            if !self.take_budget() || steps >= self.max_chain {
                return (runs, false);
            }
            // Below max_chain, and `len <= left`: neither saturates.
            steps = steps.saturating_add(1);
            let len = self.boot.cluster_size.min(left);
            left = left.saturating_sub(len);
            match runs.last_mut() {
                // A cluster right after the run extends it (cluster ends are below 2^53).
                Some((o, l)) if o.checked_add(*l) == Some(off) => *l = l.saturating_add(len),
                _ => runs.push((off, len)),
            }
            if left == 0 {
                return (runs, true);
            }
            match self.next(c) {
                Some(n) => c = n,
                None => {
                    // A free or bad entry mid-chain is a break; end-of-chain is fine for
                    // directories (max_bytes is unbounded) and short for files.
                    return (runs, max_bytes == u64::MAX);
                }
            }
        }
    }

    /// Walk the directory at `cluster` (None: the root), then its subdirectories.
    fn dir(&mut self, cluster: Option<u32>, prefix: &str, depth: u32) -> Result<()> {
        if depth > 64 {
            self.out.problems.push(format!(
                "directories nested deeper than 64 at {prefix:?}; not walked"
            ));
            return Ok(());
        }
        if let Some(c) = cluster {
            if self.visited.contains(&c) {
                self.out
                    .problems
                    .push(format!("directory {prefix:?} loops back to cluster {c}"));
                return Ok(());
            }
            self.visited.push(c);
        }
        let mut long = LongName::default();
        let mut subdirs: Vec<(String, u32)> = Vec::new();
        'runs: for (off, len) in self.dir_runs(cluster) {
            // Every whole entry of the run: `at + 32 <= len`.
            for at in (0..len.saturating_sub(DIR_ENTRY_BYTES - 1)).step_by(DIR_ENTRY_SIZE) {
                let read = off.checked_add(at).and_then(|entry_off| {
                    let e: [u8; DIR_ENTRY_SIZE] =
                        self.vol.array(entry_off, "directory entry").ok()?;
                    Some((entry_off, e))
                });
                let Some((entry_off, e)) = read else {
                    self.out.problems.push(format!(
                        "directory {prefix:?} runs past the end of the partition"
                    ));
                    break 'runs;
                };
                match e {
                    [ENTRY_END, ..] => break 'runs,
                    [ENTRY_FREE, ..] => long.clear(),
                    _ if e[D_ATTR] & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME => long.push(&e),
                    _ => {
                        let name11: [u8; 11] = bytes::array(&e, 0, "directory entry")?;
                        let long_name = long.take(&name11);
                        if e[D_ATTR] & ATTR_VOLUME_ID != 0 {
                            continue;
                        }
                        let Some(entry) = self.entry(&e, entry_off, prefix, long_name)? else {
                            continue;
                        };
                        if entry.is_dir {
                            subdirs.push((entry.path.clone(), entry.first_cluster));
                        }
                        // Bounded: each entry is 32 bytes of a directory cluster the
                        // budget paid for.
                        if self.out.entries.len() >= MAX_ENTRIES {
                            self.out.problems.push(format!(
                                "more than {MAX_ENTRIES} entries; the rest are not listed"
                            ));
                            return Ok(());
                        }
                        self.out.entries.push(entry);
                    }
                }
            }
        }
        for (path, c) in subdirs {
            if self.boot.cluster_offset(u64::from(c)).is_none() {
                self.out
                    .problems
                    .push(format!("directory {path:?} starts at invalid cluster {c}"));
                continue;
            }
            // depth <= 64 here.
            self.dir(Some(c), &path, depth.saturating_add(1))?;
        }
        Ok(())
    }

    /// The file or directory a short entry names (None for `.` and `..`), with its
    /// data runs when its chain holds its size.
    fn entry(
        &mut self,
        e: &[u8; DIR_ENTRY_SIZE],
        entry_off: u64,
        prefix: &str,
        long: Option<String>,
    ) -> Result<Option<FatEntry>> {
        let name11: [u8; 11] = bytes::array(e, 0, "directory entry")?;
        let short = short_name_text(&name11, e[D_NTRES]);
        if short == "." || short == ".." {
            return Ok(None);
        }
        let name = long.unwrap_or_else(|| short.clone());
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let field = |at: usize| u16_le(e, at as u64, "directory entry");
        let hi = u32::from(field(D_FST_CLUS_HI)?);
        let lo = u32::from(field(D_FST_CLUS_LO)?);
        let first_cluster = if self.boot.fat_type == FatType::Fat32 {
            hi << 16 | lo
        } else {
            lo
        };
        let size = u64::from(u32_le(e, D_FILE_SIZE as u64, "directory entry")?);
        let modified = unix_of_dos(field(D_WRT_DATE)?, field(D_WRT_TIME)?);
        let is_dir = e[D_ATTR] & ATTR_DIRECTORY != 0;
        let mut runs = Vec::new();
        if !is_dir && size > 0 {
            let (r, ok) = self.chain_runs(first_cluster, size);
            let vol_len = self.vol.len();
            if ok
                && r.iter()
                    .all(|&(o, l)| o.checked_add(l).is_some_and(|end| end <= vol_len))
            {
                runs = r;
            } else {
                self.out.problems.push(format!(
                    "file {path:?} (entry at {entry_off:#x}): its cluster chain does not hold its {size} bytes"
                ));
            }
        }
        Ok(Some(FatEntry {
            path,
            short_name: short,
            is_dir,
            size,
            first_cluster,
            modified,
            runs,
        }))
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

impl FatVolume {
    /// The bytes of a file: borrowed when its clusters are contiguous, else gathered
    /// (at most the file's size, which its chain bounded by the volume's size).
    pub fn file_bytes<'a>(
        &self,
        vol: impl Into<Window<'a>>,
        e: &FatEntry,
    ) -> Result<Cow<'a, [u8]>> {
        let vol: Window<'a> = vol.into();
        match e.runs.as_slice() {
            [] if e.size == 0 => Ok(Cow::Borrowed(&[])),
            [] => Err(Error::malformed(
                0,
                format!("file {:?} has no readable cluster chain", e.path),
            )),
            [(o, l)] => vol.bytes(*o, *l, "file data"),
            runs => {
                let total = runs
                    .iter()
                    .try_fold(0u64, |sum, r| sum.checked_add(r.1))
                    .and_then(|t| usize::try_from(t).ok())
                    .filter(|&t| {
                        t as u64 <= vol.len().min(crate::readat::MAX_OWNED_READ)
                            || vol.as_slice().is_some_and(|s| t <= s.len())
                    });
                let Some(total) = total else {
                    return Err(Error::malformed(
                        0,
                        format!("file {:?} claims more data than the volume holds", e.path),
                    ));
                };
                let mut v = Vec::with_capacity(total);
                for &(o, l) in runs {
                    v.extend_from_slice(&vol.bytes(o, l, "file data")?);
                }
                Ok(Cow::Owned(v))
            }
        }
    }
}
