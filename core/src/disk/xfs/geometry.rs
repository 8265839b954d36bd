//! The writer's geometry (AG size and count, log placement, the first inode chunk)
//! and its block allocator. Every value is checked once in [`Geometry::new`], so
//! the address arithmetic below stays inside the volume.

use crate::error::{Error, Result};

pub const BLOCK: u64 = 4096;
pub const BLOCK_BYTES: usize = 4096;
pub const BLOCK_LOG: u8 = 12;
pub const INODE: u64 = 512;
pub const INODE_LOG: u8 = 9;
pub const INOPBLOG: u8 = 3;
/// 64 inodes a chunk, eight 4 KiB blocks of 512-byte inodes.
pub const CHUNK_INODES: u64 = 64;
pub const CHUNK_BLOCKS: u32 = 8;
pub const CHUNK_BYTES: usize = 64 * 512;
/// sb_inoalignmt: chunks start on 4-block boundaries (v5: 16 KiB inode clusters).
pub const INODE_ALIGN: u32 = 4;
/// The smallest AG mkfs makes (XFS_AG_MIN_BYTES, 16 MiB) and the largest
/// (XFS_AG_MAX_BYTES, 1 TiB, less one block).
const MIN_AG_BLOCKS: u64 = 4096;
const MAX_AG_BLOCKS: u64 = (1 << 28) - 1;
/// mkfs's log sizes: 10 MiB below 300 MiB, else 1/2048 of the volume and at least
/// 64 MiB (XFS_MIN_REALISTIC_LOG_BLOCKS), at most 2 GiB (XFS_MAX_LOG_BYTES).
const SMALL_VOLUME_BLOCKS: u64 = 300 * 256;
const SMALL_LOG_BLOCKS: u64 = 2560;
const MIN_LOG_BLOCKS: u64 = 16384;
const MAX_LOG_BLOCKS: u64 = 1 << 19;
/// The free list keeps at least this many blocks in a fresh AG (xfs_alloc_min_freelist
/// with one-level free space btrees); the first inode chunk comes after them.
const MIN_AGFL: u64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub sector: u64,
    pub dblocks: u64,
    pub agcount: u32,
    pub agblocks: u32,
    pub agblklog: u8,
    /// Blocks of AG headers (sb, AGF, AGI, AGFL, a sector each): 1, or 4 with 4 KiB
    /// sectors. The free space, count and inode btree roots follow.
    pub hdr_blocks: u32,
    pub log_ag: u32,
    pub log_agbno: u32,
    pub log_blocks: u32,
    /// AG 0 block of the first inode chunk (whose first inode is the root).
    pub first_chunk: u32,
}

/// An AG-relative block address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgBlock {
    pub ag: u32,
    pub agbno: u32,
}

/// A run of blocks in one AG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub at: AgBlock,
    pub len: u32,
}

fn ceil_log2(v: u64) -> u8 {
    // 64 - leading_zeros is at most 64: it fits u8.
    let bits = 64u32.saturating_sub(v.saturating_sub(1).leading_zeros());
    u8::try_from(bits).unwrap_or(u8::MAX)
}

impl Geometry {
    /// The geometry of a `size`-byte volume: `ag_count` AGs (default 4, mkfs's choice
    /// for one disk, or more when AGs would pass 1 TiB), the last one possibly
    /// shorter; the log in the middle AG right after its btree roots, as mkfs does.
    pub fn new(size: u64, sector: u64, ag_count: Option<u32>) -> Result<Geometry> {
        if sector != 512 && sector != 4096 {
            return Err(Error::invalid(format!(
                "XFS sector size {sector} is not 512 or 4096"
            )));
        }
        let mut dblocks = size / BLOCK;
        let wanted = match ag_count {
            Some(n) => u64::from(n),
            None => 4u64.max(dblocks.div_ceil(MAX_AG_BLOCKS)),
        };
        let too_small = || {
            Error::invalid(format!(
                "an XFS volume of {size} bytes is too small for {wanted} AGs of at least 16 MiB"
            ))
        };
        if wanted < 2 {
            return Err(Error::invalid("an XFS volume needs at least 2 AGs"));
        }
        let agblocks = dblocks.div_ceil(wanted);
        if agblocks < MIN_AG_BLOCKS {
            return Err(too_small());
        }
        if agblocks > MAX_AG_BLOCKS {
            return Err(Error::invalid(format!(
                "{wanted} AGs of a {size}-byte volume would pass XFS's 1 TiB AG limit"
            )));
        }
        let mut agcount = dblocks.div_ceil(agblocks);
        // A last AG below the minimum is dropped, as mkfs does.
        let last = dblocks.saturating_sub(agblocks.saturating_mul(agcount.saturating_sub(1)));
        if last < MIN_AG_BLOCKS {
            agcount = agcount.saturating_sub(1);
            dblocks = agblocks.saturating_mul(agcount);
        }
        if agcount < 2 {
            return Err(too_small());
        }
        let agcount = u32::try_from(agcount).map_err(|_| too_small())?;
        let agblocks = u32::try_from(agblocks).map_err(|_| too_small())?;
        let hdr_blocks = u32::try_from(sector.saturating_mul(4).div_ceil(BLOCK)).unwrap_or(4);
        let mut g = Geometry {
            sector,
            dblocks,
            agcount,
            agblocks,
            agblklog: ceil_log2(u64::from(agblocks)),
            hdr_blocks,
            log_ag: agcount / 2,
            log_agbno: hdr_blocks.saturating_add(3),
            log_blocks: 0,
            first_chunk: 0,
        };
        let log = if dblocks < SMALL_VOLUME_BLOCKS {
            SMALL_LOG_BLOCKS
        } else {
            (dblocks / 2048).clamp(MIN_LOG_BLOCKS, MAX_LOG_BLOCKS)
        };
        // Leave the log AG at least one free block after the log.
        let room =
            u64::from(g.ag_len(g.log_ag)).saturating_sub(u64::from(g.log_agbno).saturating_add(1));
        let log = log.min(room);
        if log < SMALL_LOG_BLOCKS {
            return Err(too_small());
        }
        g.log_blocks = u32::try_from(log).map_err(|_| too_small())?;
        let roots = u64::from(hdr_blocks).saturating_add(3);
        let first = roots
            .saturating_add(MIN_AGFL)
            .next_multiple_of(u64::from(INODE_ALIGN));
        g.first_chunk = u32::try_from(first).map_err(|_| too_small())?;
        Ok(g)
    }

    /// Blocks in AG `ag` (the last one may be shorter).
    pub fn ag_len(&self, ag: u32) -> u32 {
        let start = u64::from(ag).saturating_mul(u64::from(self.agblocks));
        let len = self
            .dblocks
            .saturating_sub(start)
            .min(u64::from(self.agblocks));
        u32::try_from(len).unwrap_or(self.agblocks)
    }

    /// Roots of the free space (by block, by count) and inode btrees.
    pub fn bno_root(&self) -> u32 {
        self.hdr_blocks
    }
    pub fn cnt_root(&self) -> u32 {
        self.hdr_blocks.saturating_add(1)
    }
    pub fn ino_root(&self) -> u32 {
        self.hdr_blocks.saturating_add(2)
    }

    /// The linear block number: AGs laid end to end.
    fn linear(&self, b: AgBlock) -> u64 {
        u64::from(b.ag)
            .saturating_mul(u64::from(self.agblocks))
            .saturating_add(u64::from(b.agbno))
    }

    /// Byte offset of a block in the volume.
    pub fn byte(&self, b: AgBlock) -> u64 {
        self.linear(b).saturating_mul(BLOCK)
    }

    /// The 512-byte disk address that headers record as their `blkno`.
    pub fn daddr(&self, b: AgBlock) -> u64 {
        self.linear(b).saturating_mul(BLOCK / 512)
    }

    /// The filesystem block number of extents and sb_logstart: `ag << agblklog | agbno`.
    pub fn fsb(&self, b: AgBlock) -> u64 {
        (u64::from(b.ag) << self.agblklog) | u64::from(b.agbno)
    }

    /// The number of inode `slot` (0..64) of the chunk at AG 0 block `agbno`; a
    /// chunk spans eight blocks, so the slot is added, not or-ed.
    pub fn ino(&self, agbno: u32, slot: u64) -> u64 {
        (u64::from(agbno) << INOPBLOG).saturating_add(slot)
    }

    pub fn root_ino(&self) -> u64 {
        self.ino(self.first_chunk, 0)
    }

    /// Inodes of a chunk are numbered from its first block: AG 0 inode numbers are
    /// below 2^31 (agblklog <= 28), so shortform directories use 4-byte numbers.
    pub fn chunk_agbno(&self, chunk: u64) -> Option<u32> {
        let rel = chunk.checked_mul(u64::from(CHUNK_BLOCKS))?;
        u32::try_from(rel.checked_add(u64::from(self.first_chunk))?).ok()
    }

    /// sb_imax_pct as mkfs picks it by volume size.
    pub fn imax_pct(&self) -> u8 {
        const TIB_BLOCKS: u64 = 1 << 28;
        match self.dblocks {
            d if d < TIB_BLOCKS => 25,
            d if d < 50 * TIB_BLOCKS => 5,
            _ => 1,
        }
    }
}

/// Free space, per AG, as sorted (agbno, len) runs. Allocation is first fit in AG
/// order, from the start of a run, so the layout depends only on the request order.
#[derive(Debug, Clone)]
pub struct Space {
    free: Vec<Vec<(u32, u32)>>,
}

impl Space {
    /// Everything after each AG's btree roots, less the log.
    pub fn new(g: &Geometry) -> Space {
        let roots = g.hdr_blocks.saturating_add(3);
        let free = (0..g.agcount)
            .map(|ag| vec![(roots, g.ag_len(ag).saturating_sub(roots))])
            .collect();
        let mut s = Space { free };
        s.reserve(
            AgBlock {
                ag: g.log_ag,
                agbno: g.log_agbno,
            },
            g.log_blocks,
        );
        s
    }

    /// Take `len` blocks at `at` out of the free space (they must be free).
    // Sums of two u32 values in u64 cannot overflow; the differences are of values
    // the containment test ordered.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn reserve(&mut self, at: AgBlock, len: u32) -> bool {
        let Some(runs) = self.free.get_mut(at.ag as usize) else {
            return false;
        };
        let end = u64::from(at.agbno) + u64::from(len);
        let hit = runs
            .iter()
            .position(|&(s, l)| s <= at.agbno && end <= u64::from(s) + u64::from(l));
        let Some(i) = hit else {
            return false;
        };
        let (s, l) = runs.remove(i);
        let run_end = u64::from(s) + u64::from(l);
        let mut pieces = Vec::new();
        if at.agbno > s {
            pieces.push((s, at.agbno - s));
        }
        if let (Ok(e), Ok(rest)) = (u32::try_from(end), u32::try_from(run_end - end)) {
            if rest > 0 {
                pieces.push((e, rest));
            }
        }
        for (k, p) in pieces.into_iter().enumerate() {
            runs.insert(i + k, p);
        }
        true
    }

    /// `len` contiguous blocks starting on a multiple of `align`, first fit.
    // Sums of two u32 values in u64 cannot overflow.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn take_contiguous(&mut self, len: u32, align: u32) -> Option<AgBlock> {
        let align = align.max(1);
        let found = self.free.iter().enumerate().find_map(|(ag, runs)| {
            runs.iter().find_map(|&(s, l)| {
                let start = s.checked_next_multiple_of(align)?;
                let end = u64::from(start) + u64::from(len);
                (end <= u64::from(s) + u64::from(l)).then_some(AgBlock {
                    ag: u32::try_from(ag).ok()?,
                    agbno: start,
                })
            })
        })?;
        self.reserve(found, len).then_some(found)
    }

    /// `len` blocks: one run if any free run holds them, else pieces of the longest
    /// free runs (fewest extents; an extent never crosses an AG).
    pub fn take(&mut self, len: u64) -> Option<Vec<Run>> {
        if let Some(at) = u32::try_from(len)
            .ok()
            .and_then(|l| self.take_contiguous(l, 1))
        {
            return Some(vec![Run {
                at,
                len: u32::try_from(len).ok()?,
            }]);
        }
        let available: u64 = self.free_blocks();
        if available < len {
            return None;
        }
        let mut left = len;
        let mut runs = Vec::new();
        while left > 0 {
            // The longest run; the first one among equals.
            let (ag, (s, l)) = self
                .free
                .iter()
                .enumerate()
                .flat_map(|(ag, r)| r.iter().map(move |&f| (ag, f)))
                .rev()
                .max_by_key(|&(_, (_, l))| l)?;
            let n = u32::try_from(left.min(u64::from(l))).ok()?;
            let at = AgBlock {
                ag: u32::try_from(ag).ok()?,
                agbno: s,
            };
            self.reserve(at, n);
            runs.push(Run { at, len: n });
            left = left.saturating_sub(u64::from(n));
        }
        Some(runs)
    }

    /// `len` contiguous blocks in AG `ag`, first fit: their first block.
    pub fn take_in_ag(&mut self, ag: u32, len: u32) -> Option<u32> {
        let start = self
            .free
            .get(ag as usize)?
            .iter()
            .find(|&&(_, l)| l >= len)?
            .0;
        self.reserve(AgBlock { ag, agbno: start }, len)
            .then_some(start)
    }

    pub fn free_blocks(&self) -> u64 {
        self.free.iter().flatten().map(|&(_, l)| u64::from(l)).sum()
    }

    /// The free runs of AG `ag`.
    pub fn ag_free(&self, ag: u32) -> &[(u32, u32)] {
        self.free.get(ag as usize).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn geometry_matches_mkfs() {
        // mkfs.xfs 6.1: 1000 MiB is 4 x 64000 blocks, the log 16384 blocks at AG 2
        // block 4 (fsb 131076), the root inode 64 (96 with 4 KiB sectors).
        let g = Geometry::new(1000 * MIB, 512, None).unwrap();
        assert_eq!((g.agcount, g.agblocks, g.agblklog), (4, 64000, 16));
        assert_eq!((g.log_blocks, g.log_ag, g.log_agbno), (16384, 2, 4));
        assert_eq!(g.fsb(AgBlock { ag: 2, agbno: 4 }), 131076);
        assert_eq!(g.root_ino(), 64);
        let g4 = Geometry::new(1000 * MIB, 4096, None).unwrap();
        assert_eq!((g4.root_ino(), g4.log_agbno), (96, 7));
        let big = Geometry::new(64 << 30, 512, None).unwrap();
        assert_eq!((big.agcount, big.agblocks, big.agblklog), (4, 1 << 22, 22));
        assert!(Geometry::new(32 * MIB, 512, None).is_err());
        assert!(Geometry::new(300 * MIB, 1024, None).is_err());
        assert!(Geometry::new(300 * MIB, 512, Some(1)).is_err());
    }

    #[test]
    fn allocation_is_first_fit_and_splits_only_when_it_must() {
        let g = Geometry::new(64 * MIB, 512, None).unwrap();
        let mut s = Space::new(&g);
        let total = s.free_blocks();
        let a = s.take(10).unwrap();
        assert_eq!(
            a,
            vec![Run {
                at: AgBlock { ag: 0, agbno: 4 },
                len: 10
            }]
        );
        let big = s.take(u64::from(g.agblocks) + 5).unwrap();
        assert!(big.len() >= 2);
        assert_eq!(s.free_blocks() + 10 + u64::from(g.agblocks) + 5, total);
        assert!(s.take(total).is_none());
    }
}
