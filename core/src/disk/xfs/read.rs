//! A bounded reader for XFS v5 volumes: the superblock, then a walk of the directory
//! tree from the root inode. Inodes are found by number, so the AG btrees (and with
//! them sparse inodes, finobt, rmapbt, reflink) never need reading. Every walk
//! spends from one budget of block visits sized by the volume, a directory is
//! entered once, and everything past the superblock and the root inode that is
//! broken becomes a listed problem rather than an error.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::raw::*;
use super::{block_crc, unix_time, Extent};
use crate::bytes::{self, u8_at};
use crate::error::{Error, Result};
use crate::guid::Guid;
use crate::readat::Window;

/// More entries than any boot volume has; a hostile volume stops here.
const MAX_ENTRIES: usize = 500_000;
/// Deeper than any real tree (Linux allows any depth, but paths stop at 4096 bytes).
const MAX_DEPTH: usize = 2048;
/// Block map btrees are at most 9 levels high (XFS_BM_MAXLEVELS with 64-bit counts).
const MAX_BMBT_LEVELS: u16 = 9;
/// Problems kept per walk: a hostile volume can make every block it names a problem
/// (a 46 KiB input once listed 1.26 million, 120 MB of text), so the rest are counted.
const MAX_PROBLEMS: usize = 1000;

/// What an entry is, by its inode's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    Directory,
    File,
    Symlink,
    /// A device node, FIFO or socket.
    Other,
}

/// One file, directory or symlink on a volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct XfsEntry {
    /// Path from the root, `/`-separated.
    pub path: String,
    pub kind: FileType,
    pub ino: u64,
    /// Permission bits.
    pub mode: u16,
    pub size: u64,
    /// Modification time (Unix seconds).
    pub modified: i64,
    /// A symlink's target.
    pub target: Option<String>,
    /// A file's extents (file blocks to filesystem blocks).
    #[serde(skip)]
    pub extents: Vec<Extent>,
}

/// The geometry the reader needs, checked once from the superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geo {
    block: u64,
    sector: u64,
    inode: u64,
    inopblog: u32,
    agblklog: u32,
    agblocks: u64,
    agcount: u64,
    /// Bytes and filesystem blocks of a directory block.
    dir_block: u64,
    dir_fsbs: u64,
    ftype: bool,
}

/// An XFS volume as read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct XfsVolume {
    pub label: String,
    pub uuid: String,
    pub block_size: u64,
    pub sector_size: u64,
    pub inode_size: u64,
    pub dir_block_size: u64,
    pub ag_count: u64,
    pub ag_blocks: u64,
    pub blocks: u64,
    pub log_blocks: u64,
    pub root_ino: u64,
    /// Feature names (xfs_info's spelling) besides the v5 baseline.
    pub features: Vec<String>,
    pub entries: Vec<XfsEntry>,
    pub problems: Vec<String>,
    #[serde(skip)]
    geo: Geo,
}

/// Does this look like an XFS superblock?
pub fn looks_like_xfs<'a>(vol: impl Into<Window<'a>>) -> bool {
    vol.into()
        .array::<4>(0, "XFS superblock")
        .is_ok_and(|m| m == SB_MAGIC[..])
}

/// `len` bytes at `offset` of `c`, borrowed when `c` is.
fn sub_cow<'v>(
    c: Cow<'v, [u8]>,
    offset: u64,
    len: u64,
    what: &'static str,
) -> Result<Cow<'v, [u8]>> {
    Ok(match c {
        Cow::Borrowed(b) => Cow::Borrowed(bytes::slice(b, offset, len, what)?),
        Cow::Owned(v) => Cow::Owned(bytes::slice(&v, offset, len, what)?.to_vec()),
    })
}

fn be16(d: &[u8], at: usize, what: &'static str) -> Result<u16> {
    Ok(u16::from_be_bytes(bytes::array(d, at as u64, what)?))
}
fn be32(d: &[u8], at: usize, what: &'static str) -> Result<u32> {
    Ok(u32::from_be_bytes(bytes::array(d, at as u64, what)?))
}
fn be64(d: &[u8], at: usize, what: &'static str) -> Result<u64> {
    Ok(u64::from_be_bytes(bytes::array(d, at as u64, what)?))
}

/// `v` as log2 if it is a power of two in `lo..=hi`.
fn log2_in(v: u64, lo: u64, hi: u64) -> Option<u32> {
    (v.is_power_of_two() && (lo..=hi).contains(&v)).then(|| v.trailing_zeros())
}

/// The geometry of the superblock at the start of `vol`, each field checked.
fn geometry(vol: &[u8]) -> Result<Geo> {
    let w = "XFS superblock";
    if !looks_like_xfs(vol) {
        return Err(Error::malformed(0, "no XFS superblock magic (\"XFSB\")"));
    }
    let version = be16(vol, SB_VERSIONNUM, w)? & VERSION_NUM_MASK;
    if version != 5 {
        return Err(Error::Unsupported {
            offset: SB_VERSIONNUM as u64,
            what: format!("XFS v{version} (only v5, with CRCs, is read)"),
        });
    }
    let field = |at: usize, v: u64, lo: u64, hi: u64, name: &str| {
        log2_in(v, lo, hi).ok_or_else(|| {
            Error::malformed(
                at as u64,
                format!("{name} {v} is not a power of two in {lo}..={hi}"),
            )
        })
    };
    let block = u64::from(be32(vol, SB_BLOCKSIZE, w)?);
    let block_log = field(SB_BLOCKSIZE, block, 512, 65536, "block size")?;
    let sector = u64::from(be16(vol, SB_SECTSIZE, w)?);
    field(SB_SECTSIZE, sector, 512, 32768, "sector size")?;
    let inode = u64::from(be16(vol, SB_INODESIZE, w)?);
    let inode_log = field(SB_INODESIZE, inode, 256, block.min(2048), "inode size")?;
    let dirblklog = u32::from(u8_at(vol, SB_DIRBLKLOG as u64, w)?);
    let dir_block = 1u64
        .checked_shl(block_log.saturating_add(dirblklog))
        .filter(|&d| d <= 65536)
        .ok_or_else(|| Error::malformed(SB_DIRBLKLOG as u64, "directory blocks over 64 KiB"))?;
    let agblocks = u64::from(be32(vol, SB_AGBLOCKS, w)?);
    let agcount = u64::from(be32(vol, SB_AGCOUNT, w)?);
    let agblklog = u32::from(u8_at(vol, SB_AGBLKLOG as u64, w)?);
    // agblklog is ceil(log2(agblocks)): fsblock numbers split at that bit.
    let fits = agblklog <= 31 && 1u64.checked_shl(agblklog).is_some_and(|m| agblocks <= m);
    if agblocks == 0 || agcount == 0 || !fits {
        return Err(Error::malformed(
            SB_AGBLOCKS as u64,
            format!("AG geometry {agcount} x {agblocks} blocks with agblklog {agblklog}"),
        ));
    }
    Ok(Geo {
        block,
        sector,
        inode,
        inopblog: block_log.saturating_sub(inode_log),
        agblklog,
        agblocks,
        agcount,
        dir_block,
        dir_fsbs: 1 << dirblklog,
        ftype: be32(vol, SB_FEATURES_INCOMPAT, w)? & INCOMPAT_FTYPE != 0,
    })
}

/// What is wrong with a superblock that still gives a usable geometry: its CRC,
/// features this reader does not know, a size past the end of the input.
fn superblock_problems(
    vol: Window<'_>,
    g: &Geo,
    incompat: u32,
    blocks: u64,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let sb = vol.bytes(0, g.sector, "XFS superblock")?;
    check_crc(&sb, SB_CRC, 0, "superblock", &mut problems);
    let known = FEATURE_NAMES
        .iter()
        .filter(|f| f.0 == FeatureWord::Incompat)
        .fold(0, |m, f| m | f.1);
    if incompat & !known != 0 {
        problems.push(format!(
            "unknown incompatible features {:#x}",
            incompat & !known
        ));
    }
    if blocks.checked_mul(g.block).is_none_or(|n| n > vol.len()) {
        problems.push(format!(
            "the volume declares {blocks} blocks of {} bytes but the partition holds {} bytes",
            g.block,
            vol.len()
        ));
    }
    Ok(problems)
}

/// Read the superblock and walk the tree of the volume in `vol`.
pub fn read_volume<'a>(vol: impl Into<Window<'a>>) -> Result<XfsVolume> {
    let w = "XFS superblock";
    let whole: Window<'a> = vol.into();
    let head = whole.head(512)?;
    let vol: &[u8] = &head;
    let geo = geometry(vol)?;
    let incompat = be32(vol, SB_FEATURES_INCOMPAT, w)?;
    let ro_compat = be32(vol, SB_FEATURES_RO_COMPAT, w)?;
    let blocks = be64(vol, SB_DBLOCKS, w)?;
    let mut out = XfsVolume {
        label: bytes::text(bytes::slice(vol, SB_FNAME as u64, SB_LABEL_LEN as u64, w)?),
        // Lower case, as blkid and xfs_db print it.
        uuid: Guid(bytes::array(vol, SB_UUID as u64, w)?)
            .to_string()
            .to_ascii_lowercase(),
        block_size: geo.block,
        sector_size: geo.sector,
        inode_size: geo.inode,
        dir_block_size: geo.dir_block,
        ag_count: geo.agcount,
        ag_blocks: geo.agblocks,
        blocks,
        log_blocks: u64::from(be32(vol, SB_LOGBLOCKS, w)?),
        root_ino: be64(vol, SB_ROOTINO, w)?,
        features: FEATURE_NAMES
            .iter()
            .filter(|(word, bit, _)| match word {
                FeatureWord::Incompat => incompat & bit != 0,
                FeatureWord::RoCompat => ro_compat & bit != 0,
            })
            .map(|f| f.2.to_string())
            .collect(),
        entries: Vec::new(),
        problems: superblock_problems(whole, &geo, incompat, blocks)?,
        geo,
    };
    check_ag_headers(whole, &geo, &mut out.problems);
    Walk::new(whole, geo).run(&mut out)?;
    Ok(out)
}

/// The magic and CRC of each AG's AGF, AGI and AGFL (the walk itself needs none of
/// them, but a damaged one is worth reporting); AGs past the input are skipped.
fn check_ag_headers(vol: Window<'_>, g: &Geo, problems: &mut Vec<String>) {
    let sector = g.sector;
    let headers: [(&[u8; 4], usize, &str); 3] = [
        (AGF_MAGIC, AGF_CRC, "AGF"),
        (AGI_MAGIC, AGI_CRC, "AGI"),
        (AGFL_MAGIC, AGFL_CRC, "AGFL"),
    ];
    for ag in 0..g.agcount {
        let Some(base) = ag
            .checked_mul(g.agblocks)
            .and_then(|b| b.checked_mul(g.block))
        else {
            break;
        };
        for (k, (magic, crc_at, name)) in (1u64..).zip(headers) {
            let at = k.checked_mul(sector).and_then(|o| base.checked_add(o));
            let Some((at, s)) = at.and_then(|at| Some((at, vol.bytes(at, sector, "").ok()?)))
            else {
                return;
            };
            if s.get(..4) != Some(&magic[..]) {
                problems.push(format!("AG {ag}: no {name} magic at {at:#x}"));
            } else {
                check_crc(&s, crc_at, at, &format!("AG {ag} {name}"), problems);
            }
        }
    }
}

fn check_crc(block: &[u8], at: usize, offset: u64, what: &str, problems: &mut impl Extend<String>) {
    let stored = bytes::u32_le(block, at as u64, "CRC").unwrap_or(0);
    if block_crc(block, at) != stored {
        problems.extend([format!("{what} at {offset:#x}: bad CRC")]);
    }
}

/// The walk's problems: the first [`MAX_PROBLEMS`], and how many more there were.
#[derive(Default)]
struct Problems {
    kept: Vec<String>,
    more: u64,
}

impl Problems {
    fn push(&mut self, p: String) {
        if self.kept.len() < MAX_PROBLEMS {
            self.kept.push(p);
        } else {
            self.more = self.more.saturating_add(1);
        }
    }

    fn finish(self) -> Vec<String> {
        let mut out = self.kept;
        if self.more > 0 {
            out.push(format!("... and {} more problems", self.more));
        }
        out
    }
}

impl Extend<String> for Problems {
    fn extend<I: IntoIterator<Item = String>>(&mut self, items: I) {
        for p in items {
            self.push(p);
        }
    }
}

/// An inode as read: the core fields the walk needs and its data fork.
struct Inode<'v> {
    ino: u64,
    offset: u64,
    mode: u16,
    format: u8,
    size: u64,
    nextents: u64,
    mtime: i64,
    fork: Cow<'v, [u8]>,
}

impl Inode<'_> {
    fn kind(&self) -> FileType {
        match self.mode & S_IFMT {
            S_IFDIR => FileType::Directory,
            S_IFREG => FileType::File,
            S_IFLNK => FileType::Symlink,
            _ => FileType::Other,
        }
    }
}

/// The state of one walk: the volume, its geometry, and the budget of block visits
/// (each inode, directory block and block map block costs one).
struct Walk<'v> {
    vol: Window<'v>,
    g: Geo,
    budget: u64,
    problems: Problems,
}

impl<'v> Walk<'v> {
    fn new(vol: Window<'v>, g: Geo) -> Walk<'v> {
        // Every block of the input may be visited a few times before the walk gives up.
        let blocks = vol.len().checked_div(g.block).unwrap_or(0);
        Walk {
            vol,
            g,
            budget: blocks.saturating_mul(4).saturating_add(4096),
            problems: Problems::default(),
        }
    }

    fn spend(&mut self, offset: u64) -> Result<()> {
        self.budget = self.budget.checked_sub(1).ok_or_else(|| {
            Error::malformed(offset, "the walk visits more blocks than the volume holds")
        })?;
        Ok(())
    }

    /// Byte offset of filesystem block `fsb` (`agno << agblklog | agbno`).
    fn fsb_offset(&self, fsb: u64, at: u64) -> Result<u64> {
        let agno = fsb.checked_shr(self.g.agblklog).unwrap_or(0);
        let agbno = fsb & ((1u64 << self.g.agblklog).saturating_sub(1));
        if agno >= self.g.agcount || agbno >= self.g.agblocks {
            return Err(Error::malformed(
                at,
                format!("block {fsb:#x} (AG {agno}, block {agbno}) is outside the volume"),
            ));
        }
        // agno < agcount < 2^32 and agbno < agblocks < 2^31: the product fits.
        agno.checked_mul(self.g.agblocks)
            .and_then(|b| b.checked_add(agbno))
            .and_then(|b| b.checked_mul(self.g.block))
            .ok_or_else(|| Error::malformed(at, "block address overflows"))
    }

    /// Byte offset of inode `ino`.
    fn ino_offset(&self, ino: u64, at: u64) -> Result<u64> {
        let bits = self.g.agblklog.saturating_add(self.g.inopblog);
        let agno = ino.checked_shr(bits).unwrap_or(0);
        let agino = ino & (1u64.checked_shl(bits).unwrap_or(0).wrapping_sub(1));
        let agbno = agino >> self.g.inopblog;
        let slot = agino & ((1u64 << self.g.inopblog).saturating_sub(1));
        let fsb = (agno << self.g.agblklog) | agbno;
        if agno >= self.g.agcount {
            return Err(Error::malformed(
                at,
                format!("inode {ino} is outside the volume"),
            ));
        }
        let base = self.fsb_offset(fsb, at)?;
        slot.checked_mul(self.g.inode)
            .and_then(|s| base.checked_add(s))
            .ok_or_else(|| Error::malformed(at, "inode address overflows"))
    }

    fn inode(&mut self, ino: u64, at: u64) -> Result<Inode<'v>> {
        let off = self.ino_offset(ino, at)?;
        self.spend(off)?;
        let raw_cow = self.vol.bytes(off, self.g.inode, "XFS inode")?;
        let raw: &[u8] = &raw_cow;
        let w = "XFS inode";
        if raw.get(..2) != Some(&DI_MAGIC[..]) {
            return Err(Error::malformed(
                off,
                format!("inode {ino} has no \"IN\" magic"),
            ));
        }
        let version = u8_at(raw, DI_VERSION as u64, w)?;
        if version != 3 {
            return Err(Error::malformed(
                off,
                format!("inode {ino} is version {version}, not 3"),
            ));
        }
        check_crc(
            raw,
            DI_CRC,
            off,
            &format!("inode {ino}"),
            &mut self.problems,
        );
        if be64(raw, DI_INO, w)? != ino {
            self.problems
                .push(format!("inode {ino} at {off:#x} records another number"));
        }
        let flags2 = be64(raw, DI_FLAGS2, w)?;
        let nextents = if flags2 & DIFLAG2_NREXT64 != 0 {
            be64(raw, DI_BIG_NEXTENTS, w)?
        } else {
            u64::from(be32(raw, DI_NEXTENTS, w)?)
        };
        let forkoff = usize::from(u8_at(raw, DI_FORKOFF as u64, w)?);
        let literal = raw.len().saturating_sub(DI_CORE_V3);
        let fork_len = if forkoff == 0 {
            literal
        } else {
            forkoff.saturating_mul(8)
        };
        if fork_len > literal {
            return Err(Error::malformed(
                off,
                format!("inode {ino}: attribute fork offset past the inode"),
            ));
        }
        let (mode, format, size) = (
            be16(raw, DI_MODE, w)?,
            u8_at(raw, DI_FORMAT as u64, w)?,
            be64(raw, DI_SIZE, w)?,
        );
        let mtime = unix_time(be64(raw, DI_MTIME, w)?, flags2 & DIFLAG2_BIGTIME != 0);
        Ok(Inode {
            ino,
            offset: off,
            mode,
            format,
            size,
            nextents,
            mtime,
            fork: sub_cow(raw_cow, DI_CORE_V3 as u64, fork_len as u64, w)?,
        })
    }
}

/// A directory entry's name and inode number.
type Named = (Vec<u8>, u64);

/// The filesystem block that holds file block `b`, if an extent maps it.
fn map_block(exts: &[Extent], b: u64) -> Option<&Extent> {
    exts.iter()
        .find(|e| b >= e.offset && b.checked_sub(e.offset).is_some_and(|r| r < e.blocks))
}

impl<'v> Walk<'v> {
    /// The extents of a fork in extents or btree format, sorted by file offset.
    fn extents(&mut self, i: &Inode<'v>) -> Result<Vec<Extent>> {
        let at = i.offset.saturating_add(DI_CORE_V3 as u64);
        let mut out = match i.format {
            FMT_EXTENTS => {
                let cap = (i.fork.len() / EXTENT_LEN) as u64;
                if i.nextents > cap {
                    return Err(Error::malformed(
                        at,
                        format!(
                            "inode {}: {} extents in a fork that holds {cap}",
                            i.ino, i.nextents
                        ),
                    ));
                }
                (0..i.nextents)
                    .map(|k| {
                        let rec =
                            bytes::array(&i.fork, k.saturating_mul(EXTENT_LEN as u64), "extent")?;
                        Ok(Extent::decode(rec))
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            FMT_BTREE => self.bmbt(i, at)?,
            FMT_LOCAL => Vec::new(),
            other => {
                return Err(Error::malformed(
                    at,
                    format!("inode {}: data fork format {other}", i.ino),
                ))
            }
        };
        out.sort_by_key(|e| e.offset);
        Ok(out)
    }

    /// The leaf records of a block map rooted in the inode.
    fn bmbt(&mut self, i: &Inode<'v>, at: u64) -> Result<Vec<Extent>> {
        let w = "XFS block map root";
        let level = be16(&i.fork, 0, w)?;
        let numrecs = usize::from(be16(&i.fork, 2, w)?);
        let maxrecs = i.fork.len().saturating_sub(BMDR_HDR) / 16;
        if level == 0 || level > MAX_BMBT_LEVELS || numrecs > maxrecs {
            return Err(Error::malformed(
                at,
                format!(
                    "inode {}: block map root of level {level} with {numrecs} records",
                    i.ino
                ),
            ));
        }
        let ptrs = BMDR_HDR.saturating_add(maxrecs.saturating_mul(8));
        let mut stack = Vec::with_capacity(numrecs);
        for k in (0..numrecs).rev() {
            let p = be64(&i.fork, ptrs.saturating_add(k.saturating_mul(8)), w)?;
            stack.push((p, level.saturating_sub(1)));
        }
        let mut out = Vec::new();
        while let Some((fsb, want)) = stack.pop() {
            self.bmbt_block(fsb, want, i.ino, &mut out, &mut stack)?;
        }
        Ok(out)
    }

    /// One block map block: its records into `out`, or its children onto `stack`.
    fn bmbt_block(
        &mut self,
        fsb: u64,
        want: u16,
        ino: u64,
        out: &mut Vec<Extent>,
        stack: &mut Vec<(u64, u16)>,
    ) -> Result<()> {
        let w = "XFS block map block";
        let off = self.fsb_offset(fsb, 0)?;
        self.spend(off)?;
        let blk = self.vol.bytes(off, self.g.block, w)?;
        let blk: &[u8] = &blk;
        let level = be16(blk, LBT_LEVEL, w)?;
        let n = usize::from(be16(blk, LBT_NUMRECS, w)?);
        let cap = blk.len().saturating_sub(LBT_HDR) / 16;
        if blk.get(..4) != Some(&BMBT_MAGIC[..]) || level != want || n > cap {
            return Err(Error::malformed(
                off,
                format!("inode {ino}: not a level-{want} block map block of at most {cap} records"),
            ));
        }
        check_crc(blk, LBT_CRC, off, "block map block", &mut self.problems);
        for k in 0..n {
            if level == 0 {
                let rec =
                    bytes::array(blk, LBT_HDR.saturating_add(k.saturating_mul(16)) as u64, w)?;
                out.push(Extent::decode(rec));
            } else {
                let p = LBT_HDR
                    .saturating_add(cap.saturating_mul(8))
                    .saturating_add(k.saturating_mul(8));
                stack.push((be64(blk, p, w)?, level.saturating_sub(1)));
            }
        }
        // Children were pushed in order; pop them in order.
        if level > 0 {
            let len = stack.len();
            if let Some(tail) = stack.get_mut(len.saturating_sub(n)..) {
                tail.reverse();
            }
        }
        Ok(())
    }

    /// (name, inode) of every entry of a directory but "." and "..".
    fn dir_entries(&mut self, d: &Inode<'v>) -> Result<Vec<Named>> {
        if d.format == FMT_LOCAL {
            return self.shortform(d);
        }
        let exts = self.extents(d)?;
        let leaf_first = DIR_LEAF_OFFSET.checked_div(self.g.block).unwrap_or(0);
        let mut out = Vec::new();
        for e in exts
            .iter()
            .filter(|e| e.offset < leaf_first && !e.unwritten)
        {
            let end = e.offset.saturating_add(e.blocks).min(leaf_first);
            for b in e.offset..end {
                if b.checked_rem(self.g.dir_fsbs) != Some(0) {
                    continue;
                }
                match self.dir_block(&exts, b) {
                    Ok((blk, off)) => self.data_entries(&blk, off, d.ino, &mut out),
                    Err(err) => {
                        // The rest of this extent is as unreadable (outside the
                        // volume, or the budget is spent): one problem for it.
                        self.problems.push(format!("directory {}: {err}", d.ino));
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The directory block starting at file block `b`: borrowed when it is one
    /// filesystem block, else gathered from the extents that map it.
    fn dir_block(&mut self, exts: &[Extent], b: u64) -> Result<(Cow<'v, [u8]>, u64)> {
        let mut parts = Vec::new();
        for k in 0..self.g.dir_fsbs {
            let fb = b.saturating_add(k);
            let e = map_block(exts, fb).ok_or_else(|| {
                Error::malformed(0, format!("directory block {b} is not fully mapped"))
            })?;
            let fsb = e.start.saturating_add(fb.saturating_sub(e.offset));
            let off = self.fsb_offset(fsb, 0)?;
            self.spend(off)?;
            parts.push((off, self.vol.bytes(off, self.g.block, "directory block")?));
        }
        let first = parts.first().map_or(0, |p| p.0);
        if parts.len() == 1 {
            if let Some((_, one)) = parts.pop() {
                return Ok((one, first));
            }
        }
        Ok((
            Cow::Owned(parts.iter().flat_map(|p| p.1.iter().copied()).collect()),
            first,
        ))
    }

    fn shortform(&mut self, d: &Inode<'v>) -> Result<Vec<Named>> {
        let at = d.offset.saturating_add(DI_CORE_V3 as u64);
        let w = "XFS shortform directory";
        let len = usize::try_from(d.size)
            .ok()
            .filter(|&n| n <= d.fork.len())
            .ok_or_else(|| {
                Error::malformed(
                    at,
                    format!("directory {}: {} bytes in its inode", d.ino, d.size),
                )
            })?;
        let sf = d.fork.get(..len).unwrap_or_default();
        let count = u8_at(sf, 0, w)?;
        let ino_len: usize = if u8_at(sf, 1, w)? > 0 { 8 } else { 4 };
        let mut pos = 2usize.saturating_add(ino_len);
        let mut out = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let nl = usize::from(u8_at(sf, pos as u64, w)?);
            if nl == 0 {
                return Err(Error::malformed(
                    at.saturating_add(pos as u64),
                    "empty name",
                ));
            }
            let name_at = pos.saturating_add(3);
            let name = bytes::slice(sf, name_at as u64, nl as u64, w)?.to_vec();
            let ino_at = name_at
                .saturating_add(nl)
                .saturating_add(usize::from(self.g.ftype));
            let ino = match ino_len {
                8 => be64(sf, ino_at, w)?,
                _ => u64::from(be32(sf, ino_at, w)?),
            };
            out.push((name, ino));
            pos = ino_at.saturating_add(ino_len);
        }
        Ok(out)
    }

    /// The entries of one data block (block form: up to its leaf; data form: to its
    /// end); a broken entry ends the block with a problem.
    fn data_entries(&mut self, blk: &[u8], off: u64, dir: u64, out: &mut Vec<Named>) {
        let end = match blk.get(..4) {
            Some(m) if m == DIR3_DATA_MAGIC => Some(blk.len()),
            Some(m) if m == DIR3_BLOCK_MAGIC => be32(blk, blk.len().saturating_sub(8), "tail")
                .ok()
                .and_then(|n| usize::try_from(n).ok()?.checked_mul(8))
                .and_then(|leaf| blk.len().checked_sub(8)?.checked_sub(leaf))
                .filter(|&e| e >= DIR3_DATA_HDR),
            _ => None,
        };
        let Some(end) = end else {
            self.problems.push(format!(
                "directory {dir}: block at {off:#x} is not a v5 data block"
            ));
            return;
        };
        check_crc(blk, DIR3_CRC, off, "directory block", &mut self.problems);
        let mut pos = DIR3_DATA_HDR;
        while pos.saturating_add(8) <= end {
            match self.entry(blk, pos, end) {
                Ok((len, Some(e))) => {
                    out.push(e);
                    pos = pos.saturating_add(len);
                }
                Ok((len, None)) => pos = pos.saturating_add(len),
                Err(rule) => {
                    let at = off.saturating_add(pos as u64);
                    self.problems
                        .push(format!("directory {dir}: entry at {at:#x}: {rule}"));
                    return;
                }
            }
        }
    }

    /// The entry (or free region) at `pos`: its length, and its name and inode
    /// unless it is free, "." or "..".
    fn entry(
        &self,
        blk: &[u8],
        pos: usize,
        end: usize,
    ) -> std::result::Result<(usize, Option<Named>), String> {
        let field = |r: Result<u16>| r.map_err(|e| e.to_string());
        if field(be16(blk, pos, "entry"))? == DIR_FREE_TAG {
            let len = usize::from(field(be16(blk, pos.saturating_add(2), "entry"))?);
            if len < 8 || len % 8 != 0 || pos.saturating_add(len) > end {
                return Err(format!("free region of {len} bytes"));
            }
            return Ok((len, None));
        }
        let ino = be64(blk, pos, "entry").map_err(|e| e.to_string())?;
        let nl = usize::from(blk.get(pos.saturating_add(8)).copied().unwrap_or(0));
        // inode, name length, name, ftype, tag; padded to 8.
        let len = nl
            .saturating_add(11)
            .saturating_add(usize::from(self.g.ftype))
            .next_multiple_of(8);
        if nl == 0 || pos.saturating_add(len) > end {
            return Err(format!("name of {nl} bytes"));
        }
        let name = blk
            .get(pos.saturating_add(9)..pos.saturating_add(9).saturating_add(nl))
            .unwrap_or_default();
        let named = (name != b"." && name != b"..").then(|| (name.to_vec(), ino));
        Ok((len, named))
    }

    /// A symlink's target, from the inode or from its remote blocks.
    fn target(&mut self, i: &Inode<'v>) -> Result<Vec<u8>> {
        let at = i.offset.saturating_add(DI_CORE_V3 as u64);
        let size = usize::try_from(i.size)
            .ok()
            .filter(|&n| n <= SYMLINK_MAXLEN)
            .ok_or_else(|| Error::malformed(at, format!("symlink {}: {} bytes", i.ino, i.size)))?;
        if i.format == FMT_LOCAL {
            return Ok(bytes::slice(&i.fork, 0, size as u64, "symlink")?.to_vec());
        }
        let exts = self.extents(i)?;
        let mut out = Vec::with_capacity(size);
        let mut b = 0u64;
        while out.len() < size {
            let e = map_block(&exts, b).ok_or_else(|| {
                Error::malformed(at, format!("symlink {}: block {b} is not mapped", i.ino))
            })?;
            let off = self.fsb_offset(e.start.saturating_add(b.saturating_sub(e.offset)), at)?;
            self.spend(off)?;
            let blk = self.vol.bytes(off, self.g.block, "symlink block")?;
            let blk: &[u8] = &blk;
            if blk.get(..4) != Some(&SYMLINK_MAGIC[..]) {
                return Err(Error::malformed(
                    off,
                    "symlink block without \"XSLM\" magic",
                ));
            }
            check_crc(blk, SYMLINK_CRC, off, "symlink block", &mut self.problems);
            let n = size
                .saturating_sub(out.len())
                .min(blk.len().saturating_sub(SYMLINK_HDR));
            out.extend_from_slice(bytes::slice(blk, SYMLINK_HDR as u64, n as u64, "symlink")?);
            b = b.saturating_add(1);
        }
        Ok(out)
    }
}

fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() {
        name.into_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

impl Walk<'_> {
    /// Walk the tree from the root inode into `out`, sorted by path.
    fn run(mut self, out: &mut XfsVolume) -> Result<()> {
        let root = self.inode(out.root_ino, SB_ROOTINO as u64)?;
        if root.kind() != FileType::Directory {
            return Err(Error::malformed(
                root.offset,
                "the root inode is not a directory",
            ));
        }
        let mut visited = BTreeSet::from([out.root_ino]);
        let mut stack = vec![(out.root_ino, String::new(), 0usize)];
        'walk: while let Some((ino, path, depth)) = stack.pop() {
            let names = match self.inode(ino, 0).and_then(|d| self.dir_entries(&d)) {
                Ok(n) => n,
                Err(e) => {
                    self.problems.push(format!("directory {path:?}: {e}"));
                    continue;
                }
            };
            for (name, child) in names {
                if out.entries.len() >= MAX_ENTRIES {
                    self.problems.push(format!(
                        "more than {MAX_ENTRIES} entries; the rest are not listed"
                    ));
                    break 'walk;
                }
                let p = join(&path, &name);
                match self.entry_of(&p, child) {
                    Ok(e) => {
                        if e.kind == FileType::Directory {
                            if depth >= MAX_DEPTH {
                                self.problems.push(format!(
                                    "{p:?}: deeper than {MAX_DEPTH} levels; not walked"
                                ));
                            } else if visited.insert(child) {
                                stack.push((child, p.clone(), depth.saturating_add(1)));
                            } else {
                                self.problems
                                    .push(format!("{p:?}: directory {child} is reached twice"));
                            }
                        }
                        out.entries.push(e);
                    }
                    Err(e) => self.problems.push(format!("{p:?}: {e}")),
                }
            }
        }
        out.entries.sort_by(|a, b| a.path.cmp(&b.path));
        out.problems.extend(self.problems.finish());
        Ok(())
    }

    /// The entry for inode `ino` at `path`: a file's extents, a symlink's target.
    fn entry_of(&mut self, path: &str, ino: u64) -> Result<XfsEntry> {
        let i = self.inode(ino, 0)?;
        let kind = i.kind();
        let mut e = XfsEntry {
            path: path.to_string(),
            kind,
            ino,
            mode: i.mode & 0o7777,
            size: i.size,
            modified: i.mtime,
            target: None,
            extents: Vec::new(),
        };
        match kind {
            FileType::File => e.extents = self.extents(&i)?,
            FileType::Symlink => {
                e.target = Some(String::from_utf8_lossy(&self.target(&i)?).into_owned())
            }
            FileType::Directory | FileType::Other => {}
        }
        Ok(e)
    }
}

impl XfsVolume {
    /// The entry at `path` (no leading `/`).
    pub fn find(&self, path: &str) -> Option<&XfsEntry> {
        let p = path.trim_matches('/');
        self.entries.iter().find(|e| e.path == p)
    }

    /// The file's data as (volume offset, length) runs in file order, when its
    /// extents map every byte in order (no holes, no unwritten extents); for reading
    /// a large file a piece at a time.
    pub fn file_runs(&self, e: &XfsEntry) -> Option<Vec<(u64, u64)>> {
        if e.kind != FileType::File {
            return None;
        }
        let walk = Walk::new(Window::from(&[][..]), self.geo);
        let block = self.geo.block;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut next = 0u64;
        let mut left = e.size;
        for x in &e.extents {
            if left == 0 {
                break;
            }
            if x.unwritten || x.offset != next {
                return None;
            }
            let off = walk.fsb_offset(x.start, 0).ok()?;
            let len = x.blocks.checked_mul(block)?.min(left);
            left = left.saturating_sub(len);
            next = next.checked_add(x.blocks)?;
            match runs.last_mut() {
                Some((o, l)) if o.checked_add(*l) == Some(off) => *l = l.saturating_add(len),
                _ => runs.push((off, len)),
            }
        }
        (left == 0).then_some(runs)
    }

    /// The bytes of a file: borrowed when one extent holds them, else gathered, with
    /// holes and unwritten extents as zeros (at most the volume's size).
    pub fn file_bytes<'a>(
        &self,
        vol: impl Into<Window<'a>>,
        e: &XfsEntry,
    ) -> Result<Cow<'a, [u8]>> {
        let vol: Window<'a> = vol.into();
        if e.kind != FileType::File {
            return Err(Error::invalid(format!(
                "{:?} is not a regular file",
                e.path
            )));
        }
        if e.size == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let walk = Walk::new(vol, self.geo);
        let block = self.geo.block;
        if let [x] = e.extents.as_slice() {
            if x.offset == 0 && !x.unwritten && x.blocks.saturating_mul(block) >= e.size {
                let off = walk.fsb_offset(x.start, 0)?;
                return vol.bytes(off, e.size, "file data");
            }
        }
        let size = usize::try_from(e.size)
            .ok()
            .filter(|&n| {
                n as u64 <= vol.len()
                    && (vol.as_slice().is_some() || n as u64 <= crate::readat::MAX_OWNED_READ)
            })
            .ok_or_else(|| {
                Error::malformed(
                    0,
                    format!("file {:?} claims more bytes than the volume holds", e.path),
                )
            })?;
        let mut out = vec![0u8; size];
        // Overlapping hostile extents could copy the same bytes many times: stop at
        // twice the file.
        let mut copied = 0usize;
        for x in e.extents.iter().filter(|x| !x.unwritten) {
            let Some(start) = x
                .offset
                .checked_mul(block)
                .and_then(|s| usize::try_from(s).ok())
            else {
                continue;
            };
            let want = usize::try_from(x.blocks.saturating_mul(block)).unwrap_or(usize::MAX);
            let len = want.min(size.saturating_sub(start));
            if len == 0 {
                continue;
            }
            copied = copied.saturating_add(len);
            if copied > size.saturating_mul(2) {
                return Err(Error::malformed(
                    0,
                    format!("file {:?}: its extents overlap", e.path),
                ));
            }
            let at = walk.fsb_offset(x.start, 0)?;
            if let Some(dst) = out.get_mut(start..start.saturating_add(len)) {
                vol.read_into(at, dst, "file data")?;
            }
        }
        Ok(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::xfs::{format, ItemKind, XfsItem, XfsOptions};
    use crate::disk::DiskImage;

    const MIB: u64 = 1 << 20;

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
            .collect()
    }

    fn image(items: Vec<XfsItem<'_>>, sector: u64) -> Vec<u8> {
        image_and_metadata(items, sector).0
    }

    /// The image, and the (offset, length) of its metadata in AG 0 (the owned
    /// extents there: headers, btree roots, inodes, directory and symlink blocks).
    fn image_and_metadata(items: Vec<XfsItem<'_>>, sector: u64) -> (Vec<u8>, Vec<(usize, usize)>) {
        let o = XfsOptions {
            size: 64 * MIB,
            sector_size: sector,
            label: "BOOT".into(),
            uuid: Guid::parse("24c73076-4092-85dd-9d98-686a2dbf6d81").unwrap(),
            ..Default::default()
        };
        let plan = format(&o, items).unwrap();
        let ag0 = u64::from(plan.ag_blocks) * 4096;
        let meta = plan
            .extents
            .iter()
            .filter(|(o, d)| matches!(d, Cow::Owned(_)) && *o < ag0)
            .map(|(o, d)| (*o as usize, d.len()))
            .collect();
        let mut img = DiskImage::new(plan.size);
        plan.place(&mut img, 0).unwrap();
        (img.to_vec(), meta)
    }

    /// Files and symlinks of every size class, and directories of every form the
    /// writer makes (shortform, block, leaf, node).
    fn items(data: &[u8]) -> Vec<XfsItem<'_>> {
        let mut v = vec![
            XfsItem::file("A/vmlinuz", data),
            XfsItem::file("empty", &[][..]),
            XfsItem {
                path: "link".into(),
                mode: None,
                kind: ItemKind::Symlink("A/vmlinuz".into()),
            },
            XfsItem {
                path: "long/link".into(),
                mode: None,
                kind: ItemKind::Symlink("y".repeat(1000)),
            },
        ];
        for n in [5usize, 40, 300, 1200] {
            for i in 0..n {
                v.push(XfsItem::file(format!("d{n}/entry-{i}"), &data[..i % 100]));
            }
        }
        v
    }

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let data = pattern(300_000, 3);
        for sector in [512, 4096] {
            let img = image(items(&data), sector);
            let v = read_volume(&img).unwrap();
            assert_eq!(v.problems, Vec::<String>::new());
            assert_eq!((v.label.as_str(), v.sector_size), ("BOOT", sector));
            assert_eq!(v.uuid, "24c73076-4092-85dd-9d98-686a2dbf6d81");
            assert_eq!(v.features, ["ftype", "bigtime"]);
            assert_eq!(v.entries.len(), 4 + 1 + 5 + 40 + 300 + 1200 + 1 + 4);
            let k = v.find("A/vmlinuz").unwrap();
            assert_eq!(v.file_bytes(&img, k).unwrap().as_ref(), &data[..]);
            assert!(matches!(v.file_bytes(&img, k).unwrap(), Cow::Borrowed(_)));
            assert_eq!(v.find("link").unwrap().target.as_deref(), Some("A/vmlinuz"));
            assert_eq!(
                v.find("long/link").unwrap().target.as_deref(),
                Some(&*"y".repeat(1000))
            );
            for n in [5usize, 40, 300, 1200] {
                let e = v.find(&format!("d{n}/entry-{}", n - 1)).unwrap();
                assert_eq!(
                    v.file_bytes(&img, e).unwrap().as_ref(),
                    &data[..(n - 1) % 100]
                );
            }
            assert!(v.entries.iter().all(|e| e.modified == 315_532_800));
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let data = pattern(10_000, 1);
        let a = image(items(&data), 512);
        let mut rev = items(&data);
        rev.reverse();
        assert!(a == image(rev, 512));
    }

    #[test]
    fn hostile_volumes_get_errors_or_problems_never_panics() {
        let data = pattern(20_000, 7);
        let mut few = items(&data);
        few.retain(|i| !i.path.starts_with("d1200/"));
        let (mut img, meta) = image_and_metadata(few, 512);
        let mut seed = 0x2545_f491_u64;
        let (mut errors, mut problems) = (0, 0);
        for round in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let (start, len) = meta[(seed % meta.len() as u64) as usize];
            let at = start + (seed >> 24) as usize % len;
            let saved = img[at];
            img[at] = if round % 3 == 0 {
                0xff
            } else {
                (seed >> 32) as u8
            };
            match read_volume(&img) {
                Ok(v) => {
                    problems += usize::from(!v.problems.is_empty());
                    for e in v.entries.iter().filter(|e| e.kind == FileType::File) {
                        let _ = v.file_bytes(&img, e);
                    }
                }
                Err(e) => {
                    errors += 1;
                    assert!(e.offset().is_some(), "{e}");
                }
            }
            img[at] = saved;
        }
        // Checksummed structures report a changed byte. The free space and inode
        // btree roots (which the reader never needs) and the unused half of the AG
        // header block are not checked: three of every ~20 metadata extents.
        assert!(
            errors + problems > 1200,
            "{errors} errors, {problems} with problems"
        );
        for cut in [0, 100, 512, 4096, 40_000, 1 << 20, 40 << 20] {
            match read_volume(&img[..cut]) {
                Ok(v) => assert!(!v.problems.is_empty()),
                Err(e) => assert!(e.offset().is_some(), "{e}"),
            }
        }
    }

    #[test]
    fn problems_are_capped() {
        let mut p = Problems::default();
        p.extend((0..MAX_PROBLEMS + 500).map(|i| format!("problem {i}")));
        let out = p.finish();
        assert_eq!(out.len(), MAX_PROBLEMS + 1);
        assert_eq!(
            out[MAX_PROBLEMS - 1],
            format!("problem {}", MAX_PROBLEMS - 1)
        );
        assert_eq!(out[MAX_PROBLEMS], "... and 500 more problems");
    }

    #[test]
    fn loops_and_absurd_sizes_are_bounded() {
        let data = pattern(100, 1);
        let img = image(items(&data), 512);
        let v = read_volume(&img).unwrap();
        // A file claiming more than the volume holds is not gathered.
        let mut e = v.find("A/vmlinuz").unwrap().clone();
        e.size = u64::MAX;
        e.extents.push(e.extents[0]);
        assert!(v.file_bytes(&img, &e).is_err());
        // A subdirectory entry pointing back at the root is reached twice, once.
        let mut img2 = img.clone();
        let root = v.root_ino;
        let d5 = v.find("d5").unwrap().ino;
        let off = (d5 * 512) as usize + DI_CORE_V3;
        // Shortform: parent at 2; the first entry's inode after its name and ftype.
        let nl = img2[off + SF_HDR4] as usize;
        let ino_at = off + SF_HDR4 + 3 + nl + 1;
        img2[ino_at..ino_at + 4].copy_from_slice(&(root as u32).to_be_bytes());
        let v2 = read_volume(&img2).unwrap();
        assert!(
            v2.problems.iter().any(|p| p.contains("reached twice")),
            "{:?}",
            v2.problems
        );
    }
}
