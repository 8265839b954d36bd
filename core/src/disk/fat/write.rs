//! Formatting a fresh FAT volume for a known file set, as image extents.
//!
//! The whole layout is computed before a byte is produced: geometry (FAT type and
//! cluster size from the volume size), then directories (first, from cluster 2) and
//! files (each one contiguous run of clusters). Metadata comes out as small owned
//! buffers; file data as the caller's borrowed bytes.

use std::borrow::Cow;

use super::raw::*;
use super::{dos_date_time, short_name_checksum, FatType};
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

#[derive(Debug, Clone, Copy)]
struct Geometry {
    fat_type: FatType,
    sector: u64,
    total: u64,
    spc: u64,
    reserved: u64,
    fat: u64,
    root_entries: u64,
    clusters: u64,
}

impl Geometry {
    fn cluster_size(&self) -> u64 {
        self.spc * self.sector
    }
    fn root_dir_sectors(&self) -> u64 {
        (self.root_entries * DIR_ENTRY_SIZE as u64).div_ceil(self.sector)
    }
    fn data_start(&self) -> u64 {
        self.reserved + 2 * self.fat + self.root_dir_sectors()
    }
}

fn layout(
    fat_type: FatType,
    total: u64,
    sector: u64,
    spc: u64,
    root_entries: u64,
) -> Option<Geometry> {
    let entry_bytes = if fat_type == FatType::Fat32 { 4 } else { 2 };
    let mut g = Geometry {
        fat_type,
        sector,
        total,
        spc,
        // FAT32 keeps the FSInfo sector at 1 and backup boot sectors at 6 and 7.
        reserved: match (fat_type, sector) {
            (FatType::Fat32, 512) => 32,
            (FatType::Fat32, _) => 8,
            _ => 1,
        },
        fat: 0,
        root_entries: if fat_type == FatType::Fat32 {
            0
        } else {
            root_entries
        },
        clusters: 0,
    };
    // Size the FAT for the clusters there would be without it: an upper bound, so
    // the FAT always covers every cluster (fsck.fat checks exactly this).
    let upper = total.checked_sub(g.reserved + g.root_dir_sectors())? / spc;
    g.fat = ((upper + 2) * entry_bytes).div_ceil(sector);
    // Align the data area to the cluster size so clusters do not straddle blocks.
    let pad = (spc - g.data_start() % spc) % spc;
    g.reserved += pad;
    g.clusters = total.checked_sub(g.data_start())? / spc;
    Some(g)
}

fn geometry(size: u64, sector: u64, root_entries: u64) -> Result<Geometry> {
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
    .max(sector);
    let mut cluster = preferred;
    while cluster >= sector {
        if let Some(g) = layout(FatType::Fat32, total, sector, cluster / sector, 0) {
            if g.clusters >= FAT32_MIN_CLUSTERS && g.clusters <= FAT32_MAX_CLUSTERS {
                return Ok(g);
            }
        }
        cluster /= 2;
    }
    if total / (32768 / sector) > FAT32_MAX_CLUSTERS {
        return Err(Error::invalid(format!(
            "a FAT volume of {size} bytes is too large: FAT32 holds at most {FAT32_MAX_CLUSTERS} clusters of 32 KiB"
        )));
    }
    // Too small for FAT32's 65,525 clusters: FAT16 with the smallest cluster that
    // keeps the count under FAT16's limit.
    let mut cluster = sector;
    while cluster <= 32768 {
        if let Some(g) = layout(
            FatType::Fat16,
            total,
            sector,
            cluster / sector,
            root_entries,
        ) {
            if g.clusters < FAT32_MIN_CLUSTERS {
                if g.clusters >= FAT16_MIN_CLUSTERS {
                    return Ok(g);
                }
                break;
            }
        }
        cluster *= 2;
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

#[derive(Debug, Default)]
struct DirNode {
    parent: usize,
    children: Vec<Child>,
    first_cluster: u64,
    clusters: u64,
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
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base.as_bytes());
    out[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    Some(out)
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
            let tail = format!("~{n}");
            let keep = base.len().min(8 - tail.len());
            let mut s = [b' '; 11];
            s[..keep].copy_from_slice(&base[..keep]);
            s[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
            s[8..8 + ext.len()].copy_from_slice(&ext);
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

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn short_entry(name: &[u8; 11], attr: u8, cluster: u64, size: u32, t: &Stamp) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[D_NAME..D_NAME + 11].copy_from_slice(name);
    e[D_ATTR] = attr;
    put16(&mut e, D_CRT_TIME, t.time);
    put16(&mut e, D_CRT_DATE, t.date);
    put16(&mut e, D_LST_ACC_DATE, t.date);
    put16(&mut e, D_FST_CLUS_HI, (cluster >> 16) as u16);
    put16(&mut e, D_WRT_TIME, t.time);
    put16(&mut e, D_WRT_DATE, t.date);
    put16(&mut e, D_FST_CLUS_LO, cluster as u16);
    put32(&mut e, D_FILE_SIZE, size);
    e
}

/// The long-name entries of `c`, in on-disk order (last part first).
fn long_entries(c: &Child) -> Vec<[u8; 32]> {
    let units: Vec<u16> = c.long.encode_utf16().collect();
    let n = units.len().div_ceil(LFN_CHARS);
    let sum = short_name_checksum(&c.short);
    let mut out = Vec::with_capacity(n);
    for ord in (1..=n).rev() {
        let mut e = [0u8; 32];
        e[0] = ord as u8 | if ord == n { LFN_LAST } else { 0 };
        e[D_ATTR] = ATTR_LONG_NAME;
        e[LFN_CHECKSUM] = sum;
        for (k, &at) in LFN_UNIT_OFFSETS.iter().enumerate() {
            let i = (ord - 1) * LFN_CHARS + k;
            // The name is NUL-terminated if it does not fill the entry, then 0xFFFF.
            let u = match i.cmp(&units.len()) {
                std::cmp::Ordering::Less => units[i],
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 0xffff,
            };
            put16(&mut e, at, u);
        }
        out.push(e);
    }
    out
}

/// Format a `size`-byte volume holding `files` (paths with `/` or `\`, created with
/// their parent directories). Fails if a path is invalid or duplicated, or if the
/// files do not fit.
pub fn format<'a>(
    size: u64,
    opts: &FatOptions,
    files: Vec<(String, Cow<'a, [u8]>)>,
) -> Result<FatPlan<'a>> {
    let sector = opts.sector_size;
    if sector != 512 && sector != 4096 {
        return Err(Error::invalid(format!(
            "sector size {sector}: use 512 or 4096"
        )));
    }
    let label = opts.label.to_ascii_uppercase();
    if label.len() > 11 || !label.bytes().all(|b| b == b' ' || short_char_ok(b)) {
        return Err(Error::invalid(format!(
            "volume label {:?}: up to 11 characters from A-Z 0-9 and {}",
            opts.label,
            String::from_utf8_lossy(SHORT_NAME_EXTRA)
        )));
    }
    let label = label.trim_end().to_string();
    let stamp = {
        let (date, time) = dos_date_time(opts.timestamp);
        Stamp { date, time }
    };

    // Build the tree.
    let mut dirs = vec![DirNode::default()];
    let mut data: Vec<Cow<'a, [u8]>> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    for (path, bytes) in files {
        let comps: Vec<&str> = path.split(['/', '\\']).filter(|c| !c.is_empty()).collect();
        let Some((leaf, parents)) = comps.split_last() else {
            return Err(Error::invalid(format!("ESP path {path:?} names no file")));
        };
        let mut at = 0usize;
        for c in parents {
            validate_component(c, &path)?;
            let found = dirs[at]
                .children
                .iter()
                .find(|ch| ch.long.to_lowercase() == c.to_lowercase());
            at = match found.map(|ch| &ch.kind) {
                Some(Kind::Dir(i)) => *i,
                Some(Kind::File(_)) => {
                    return Err(Error::invalid(format!(
                        "ESP path {path:?}: {c:?} is a file, not a directory"
                    )))
                }
                None => {
                    let idx = dirs.len();
                    dirs.push(DirNode {
                        parent: at,
                        ..Default::default()
                    });
                    dirs[at].children.push(Child {
                        long: (*c).to_string(),
                        short: [b' '; 11],
                        lfn: false,
                        kind: Kind::Dir(idx),
                    });
                    idx
                }
            };
        }
        validate_component(leaf, &path)?;
        if dirs[at]
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
        dirs[at].children.push(Child {
            long: (*leaf).to_string(),
            short: [b' '; 11],
            lfn: false,
            kind: Kind::File(data.len()),
        });
        data.push(bytes);
        paths.push(comps.join("/"));
    }
    let reserved_names: [[u8; 11]; 2] = [*b".          ", *b"..         "];
    for d in dirs.iter_mut() {
        assign_short_names(&mut d.children, &reserved_names)?;
    }
    let root_needed = entries_of(0, &dirs[0], &label);
    let sector_entries = sector / DIR_ENTRY_SIZE as u64;
    let root_entries = root_needed.max(512).next_multiple_of(sector_entries);
    if root_entries > u64::from(u16::MAX) - sector_entries {
        return Err(Error::invalid(
            "too many entries in the ESP's root directory",
        ));
    }
    let g = geometry(size, sector, root_entries)?;
    let cs = g.cluster_size();

    // Allocate: directories first (the FAT32 root is cluster 2), then files.
    let mut next = 2u64;
    for (i, d) in dirs.iter_mut().enumerate() {
        if i == 0 && g.fat_type != FatType::Fat32 {
            continue;
        }
        let n = entries_of(i, d, &label);
        d.clusters = (n * DIR_ENTRY_SIZE as u64).div_ceil(cs).max(1);
        d.first_cluster = next;
        next += d.clusters;
    }
    let dir_end = next;
    let mut file_clusters = Vec::with_capacity(data.len());
    for b in &data {
        let n = (b.len() as u64).div_ceil(cs);
        file_clusters.push(if n == 0 { 0 } else { next });
        next += n;
    }
    let used = next - 2;
    if used > g.clusters {
        let need = used * cs;
        return Err(Error::invalid(format!(
            "the ESP is too small: its files and directories need {need} bytes ({} MiB) in {cs}-byte clusters, a {size}-byte {} volume holds {} bytes; use a larger ESP",
            need.div_ceil(1 << 20),
            g.fat_type.name(),
            g.clusters * cs
        )));
    }

    // The FAT: a chain per directory and file.
    let fat32 = g.fat_type == FatType::Fat32;
    let eoc = if fat32 { FAT32_EOC } else { FAT16_EOC };
    let mut fat: Vec<u32> = vec![0; next as usize];
    fat[0] = if fat32 {
        0x0fff_ff00 | u32::from(MEDIA_FIXED)
    } else {
        0xff00 | u32::from(MEDIA_FIXED)
    };
    // Entry 1: end-of-chain with the "clean" and "no I/O error" bits set.
    fat[1] = eoc;
    let mut chain = |first: u64, n: u64| {
        for k in 0..n {
            let c = first + k;
            fat[c as usize] = if k + 1 == n { eoc } else { (c + 1) as u32 };
        }
    };
    for d in &dirs {
        if d.clusters > 0 {
            chain(d.first_cluster, d.clusters);
        }
    }
    for (b, &first) in data.iter().zip(&file_clusters) {
        chain(first, (b.len() as u64).div_ceil(cs));
    }
    let entry_bytes = if fat32 { 4 } else { 2 };
    let mut fat_bytes: Vec<u8> = Vec::with_capacity(fat.len() * entry_bytes);
    for v in &fat {
        if fat32 {
            fat_bytes.extend_from_slice(&v.to_le_bytes());
        } else {
            fat_bytes.extend_from_slice(&(*v as u16).to_le_bytes());
        }
    }
    fat_bytes.resize(fat_bytes.len().next_multiple_of(sector as usize), 0);

    // Directory contents.
    let dir_bytes = |i: usize, d: &DirNode, out: &mut Vec<u8>| {
        if i == 0 {
            if !label.is_empty() {
                let mut name = [b' '; 11];
                name[..label.len()].copy_from_slice(label.as_bytes());
                out.extend_from_slice(&short_entry(&name, ATTR_VOLUME_ID, 0, 0, &stamp));
            }
        } else {
            out.extend_from_slice(&short_entry(
                &reserved_names[0],
                ATTR_DIRECTORY,
                d.first_cluster,
                0,
                &stamp,
            ));
            // ".." of a directory in the root points at cluster 0, even on FAT32
            // where the root has a cluster (the rule fatfs#117 broke).
            let parent = if d.parent == 0 {
                0
            } else {
                dirs[d.parent].first_cluster
            };
            out.extend_from_slice(&short_entry(
                &reserved_names[1],
                ATTR_DIRECTORY,
                parent,
                0,
                &stamp,
            ));
        }
        for c in &d.children {
            if c.lfn {
                for e in long_entries(c) {
                    out.extend_from_slice(&e);
                }
            }
            let e = match c.kind {
                Kind::Dir(j) => {
                    short_entry(&c.short, ATTR_DIRECTORY, dirs[j].first_cluster, 0, &stamp)
                }
                Kind::File(j) => short_entry(
                    &c.short,
                    ATTR_ARCHIVE,
                    file_clusters[j],
                    data[j].len() as u32,
                    &stamp,
                ),
            };
            out.extend_from_slice(&e);
        }
    };
    let data_offset = g.data_start() * sector;
    let mut cluster_area = Vec::with_capacity(((dir_end - 2) * cs) as usize);
    for (i, d) in dirs.iter().enumerate() {
        if d.clusters == 0 {
            continue;
        }
        let start = cluster_area.len();
        dir_bytes(i, d, &mut cluster_area);
        cluster_area.resize(start + (d.clusters * cs) as usize, 0);
    }

    // Boot sector, FSInfo and their backups.
    let ss = sector as usize;
    let mut boot = vec![0u8; ss];
    boot[BS_JMP..BS_JMP + 3].copy_from_slice(if fat32 {
        &[0xeb, 0x58, 0x90]
    } else {
        &[0xeb, 0x3c, 0x90]
    });
    boot[BS_OEM..BS_OEM + 8].copy_from_slice(b"MSWIN4.1");
    put16(&mut boot, BPB_BYTES_PER_SEC, sector as u16);
    boot[BPB_SEC_PER_CLUS] = g.spc as u8;
    put16(&mut boot, BPB_RSVD_SEC_CNT, g.reserved as u16);
    boot[BPB_NUM_FATS] = NUM_FATS;
    put16(&mut boot, BPB_ROOT_ENT_CNT, g.root_entries as u16);
    if !fat32 && g.total < 0x1_0000 {
        put16(&mut boot, BPB_TOT_SEC16, g.total as u16);
    } else {
        put32(&mut boot, BPB_TOT_SEC32, g.total as u32);
    }
    boot[BPB_MEDIA] = MEDIA_FIXED;
    if !fat32 {
        put16(&mut boot, BPB_FAT_SZ16, g.fat as u16);
    }
    put16(&mut boot, BPB_SEC_PER_TRK, 63);
    put16(&mut boot, BPB_NUM_HEADS, 255);
    put32(
        &mut boot,
        BPB_HIDD_SEC,
        u32::try_from(opts.hidden_sectors).unwrap_or(u32::MAX),
    );
    let ext = if fat32 {
        put32(&mut boot, BPB_FAT_SZ32, g.fat as u32);
        put16(&mut boot, BPB_EXT_FLAGS, 0);
        put32(&mut boot, BPB_ROOT_CLUS, dirs[0].first_cluster as u32);
        put16(&mut boot, BPB_FS_INFO, FSINFO_SECTOR);
        put16(&mut boot, BPB_BK_BOOT_SEC, BACKUP_BOOT_SECTOR);
        EXT32
    } else {
        EXT16
    };
    boot[ext + X_DRV_NUM] = 0x80;
    boot[ext + X_BOOT_SIG] = EXT_BOOT_SIG;
    put32(&mut boot, ext + X_VOL_ID, opts.volume_id);
    let mut lab = *b"NO NAME    ";
    if !label.is_empty() {
        lab = [b' '; 11];
        lab[..label.len()].copy_from_slice(label.as_bytes());
    }
    boot[ext + X_VOL_LAB..ext + X_VOL_LAB + 11].copy_from_slice(&lab);
    boot[ext + X_FIL_SYS_TYPE..ext + X_FIL_SYS_TYPE + 8].copy_from_slice(if fat32 {
        b"FAT32   "
    } else {
        b"FAT16   "
    });
    // Boot code: halt forever if a BIOS ever jumps here (cli; hlt; jmp $-1).
    let code = usize::from(boot[1]) + 2;
    boot[code..code + 4].copy_from_slice(&[0xfa, 0xf4, 0xeb, 0xfd]);
    boot[SIGNATURE_AT] = 0x55;
    boot[SIGNATURE_AT + 1] = 0xaa;

    let mut reserved = vec![0u8; (g.reserved * sector) as usize];
    reserved[..ss].copy_from_slice(&boot);
    if fat32 {
        let mut info = vec![0u8; ss];
        put32(&mut info, 0, FSI_LEAD_SIG);
        put32(&mut info, FSI_STRUC_AT, FSI_STRUC_SIG);
        put32(&mut info, FSI_FREE_COUNT, (g.clusters - used) as u32);
        put32(
            &mut info,
            FSI_NXT_FREE,
            if used < g.clusters {
                next as u32
            } else {
                u32::MAX
            },
        );
        put32(&mut info, FSI_TRAIL_AT, FSI_TRAIL_SIG);
        let at = |s: u16| usize::from(s) * ss;
        reserved[at(FSINFO_SECTOR)..][..ss].copy_from_slice(&info);
        reserved[at(BACKUP_BOOT_SECTOR)..][..ss].copy_from_slice(&boot);
        reserved[at(BACKUP_BOOT_SECTOR + 1)..][..ss].copy_from_slice(&info);
    }

    let mut extents: Vec<(u64, Cow<'a, [u8]>)> = vec![(0, Cow::Owned(reserved))];
    let fat_len = g.fat * sector;
    for copy in 0..u64::from(NUM_FATS) {
        let at = (g.reserved + copy * g.fat) * sector;
        extents.push((at, Cow::Owned(fat_bytes.clone())));
        push_zeros(
            &mut extents,
            at + fat_bytes.len() as u64,
            fat_len - fat_bytes.len() as u64,
        );
    }
    if !fat32 {
        let at = (g.reserved + 2 * g.fat) * sector;
        let mut root = Vec::with_capacity((g.root_dir_sectors() * sector) as usize);
        dir_bytes(0, &dirs[0], &mut root);
        root.resize((g.root_dir_sectors() * sector) as usize, 0);
        extents.push((at, Cow::Owned(root)));
    }
    if !cluster_area.is_empty() {
        extents.push((data_offset, Cow::Owned(cluster_area)));
    }
    let mut placed = Vec::with_capacity(data.len());
    for ((b, &first), path) in data.into_iter().zip(&file_clusters).zip(paths) {
        let offset = if first == 0 {
            0
        } else {
            data_offset + (first - 2) * cs
        };
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
        cluster_size: cs,
        clusters: g.clusters,
        used_clusters: used,
        reserved_sectors: g.reserved,
        fat_sectors: g.fat,
        data_offset,
        extents,
        files: placed,
    })
}

/// Directory entries a directory needs (own entries, long names, short entries).
fn entries_of(i: usize, d: &DirNode, label: &str) -> u64 {
    let own = if i == 0 {
        u64::from(!label.is_empty())
    } else {
        2
    };
    own + d.children.iter().map(|c| 1 + lfn_entries(c)).sum::<u64>()
}

/// Zero extents borrowing [`ZEROS`], for areas that must read as zero on the target.
pub(crate) fn push_zeros<'a>(extents: &mut Vec<(u64, Cow<'a, [u8]>)>, mut at: u64, mut len: u64) {
    while len > 0 {
        let n = len.min(ZEROS.len() as u64);
        extents.push((at, Cow::Borrowed(&ZEROS[..n as usize])));
        at += n;
        len -= n;
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
