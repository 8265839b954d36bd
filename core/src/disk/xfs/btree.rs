//! Writing the AG btrees (free space by block and by size, inodes) and the block map
//! of a fork with more extents than its inode holds. Blocks are built bottom-up with
//! near-equal fill (xfs_repair wants every non-root block at least half full).

use super::dir::split_even;
use super::geometry::{AgBlock, Geometry, BLOCK_BYTES};
use super::inode::LITERAL;
use super::raw::*;
use super::write::Buf;
use super::Extent;
use crate::error::{Error, Result};
use crate::guid::Guid;

const BLK: usize = BLOCK_BYTES;
/// Free space records {start, length} per leaf.
const ALLOC_CAP: usize = (BLK - SBT_HDR) / 8;
/// Inode btree: records {startino, freecount, free mask} per leaf; keys and
/// pointers (4 bytes each) per node.
const INOBT_REC: usize = 16;
const INOBT_LEAF_CAP: usize = (BLK - SBT_HDR) / INOBT_REC;
const SBT_NODE_CAP: usize = (BLK - SBT_HDR) / 8;
/// Block map: 16-byte extent records per leaf, {offset key, fsblock} per node,
/// and in the inode root (4-byte header, keys, then pointers).
const BMBT_CAP: usize = (BLK - LBT_HDR) / 16;
const BMDR_CAP: usize = (LITERAL - BMDR_HDR) / 16;

/// Blocks per level, bottom-up, of a tree of `n` records whose top level holds at
/// most `root_cap` entries.
fn level_sizes(n: usize, leaf_cap: usize, node_cap: usize, root_cap: usize) -> Vec<usize> {
    let mut v = vec![n.div_ceil(leaf_cap).max(1)];
    while let Some(&top) = v.last().filter(|&&t| t > root_cap) {
        v.push(top.div_ceil(node_cap));
    }
    v
}

/// A short-pointer btree block header (the free space and inode btrees).
fn short_header(
    g: &Geometry,
    magic: &[u8; 4],
    at: AgBlock,
    level: usize,
    n: usize,
    uuid: Guid,
) -> Buf {
    let mut b = Buf::new(BLK);
    b.bytes(0, magic);
    b.u16(SBT_LEVEL, u16::try_from(level).unwrap_or(0));
    b.u16(SBT_NUMRECS, u16::try_from(n).unwrap_or(0));
    b.u32(SBT_LEFTSIB, NULL32);
    b.u32(SBT_RIGHTSIB, NULL32);
    b.u64(SBT_BLKNO, g.daddr(at));
    b.bytes(SBT_UUID, &uuid.0);
    b.u32(SBT_OWNER, at.ag);
    b
}

/// The roots of the two free space btrees of AG `ag`: the same free runs, sorted by
/// block and by (length, block). The writer leaves few runs per AG, one leaf each.
pub fn free_space(g: &Geometry, ag: u32, free: &[(u32, u32)], uuid: Guid) -> Result<[Vec<u8>; 2]> {
    if free.len() > ALLOC_CAP {
        return Err(Error::invalid(format!(
            "XFS writer: AG {ag} has {} free runs, more than one btree block holds",
            free.len()
        )));
    }
    let mut by_size = free.to_vec();
    by_size.sort_by_key(|&(s, l)| (l, s));
    let block = |magic, root, runs: &[(u32, u32)]| {
        let at = AgBlock { ag, agbno: root };
        let mut b = short_header(g, magic, at, 0, runs.len(), uuid);
        for (k, &(s, l)) in runs.iter().enumerate() {
            let o = SBT_HDR.saturating_add(k.saturating_mul(8));
            b.u32(o, s);
            b.u32(o.saturating_add(4), l);
        }
        b.seal(SBT_CRC)
    };
    Ok([
        block(BNOBT_MAGIC, g.bno_root(), free),
        block(CNTBT_MAGIC, g.cnt_root(), &by_size),
    ])
}

/// An inode btree record: a chunk's first AG inode, its free count and free mask.
#[derive(Debug, Clone, Copy)]
pub struct ChunkRec {
    pub agino: u32,
    pub free: u64,
}

/// Blocks the inode btree of `chunks` chunks takes (the root included).
pub fn inobt_blocks(chunks: usize) -> usize {
    level_sizes(chunks, INOBT_LEAF_CAP, SBT_NODE_CAP, 1)
        .iter()
        .sum()
}

/// The inode btree of one AG, in the blocks `at` (the root first, then each level
/// top-down): (block, bytes) pairs, and the tree's height.
pub fn inobt(
    g: &Geometry,
    ag: u32,
    recs: &[ChunkRec],
    at: &[u32],
    uuid: Guid,
) -> (Vec<(AgBlock, Vec<u8>)>, u32) {
    let sizes = level_sizes(recs.len(), INOBT_LEAF_CAP, SBT_NODE_CAP, 1);
    // Block numbers per level: the list is top-down, levels are bottom-up.
    let mut lists: Vec<&[u32]> = Vec::new();
    let mut rest = at;
    for &n in sizes.iter().rev() {
        let (here, tail) = rest.split_at(n.min(rest.len()));
        lists.push(here);
        rest = tail;
    }
    lists.reverse();
    let mut out = Vec::new();
    // First key of each block of the level below.
    let mut keys: Vec<u32> = recs.iter().map(|r| r.agino).collect();
    let mut count = recs.len();
    for (level, blocks) in lists.iter().enumerate() {
        let ranges = split_even(count, blocks.len());
        let mut next_keys = Vec::with_capacity(blocks.len());
        for (k, (r, &agbno)) in ranges.iter().zip(blocks.iter()).enumerate() {
            let here = AgBlock { ag, agbno };
            let mut b = short_header(g, INOBT_MAGIC, here, level, r.len(), uuid);
            if k > 0 {
                b.u32(
                    SBT_LEFTSIB,
                    blocks.get(k.saturating_sub(1)).copied().unwrap_or(NULL32),
                );
            }
            if let Some(&right) = blocks.get(k.saturating_add(1)) {
                b.u32(SBT_RIGHTSIB, right);
            }
            for (j, i) in r.clone().enumerate() {
                if level == 0 {
                    let rec = recs
                        .get(i)
                        .copied()
                        .unwrap_or(ChunkRec { agino: 0, free: 0 });
                    let o = SBT_HDR.saturating_add(j.saturating_mul(INOBT_REC));
                    b.u32(o, rec.agino);
                    b.u32(o.saturating_add(4), rec.free.count_ones());
                    b.u64(o.saturating_add(8), rec.free);
                } else {
                    let key_at = SBT_HDR.saturating_add(j.saturating_mul(4));
                    let ptr_at = SBT_HDR
                        .saturating_add(SBT_NODE_CAP.saturating_mul(4))
                        .saturating_add(j.saturating_mul(4));
                    b.u32(key_at, keys.get(i).copied().unwrap_or(0));
                    let below = lists.get(level.saturating_sub(1)).and_then(|l| l.get(i));
                    b.u32(ptr_at, below.copied().unwrap_or(NULL32));
                }
            }
            next_keys.push(keys.get(r.start).copied().unwrap_or(0));
            out.push((here, b.seal(SBT_CRC)));
        }
        keys = next_keys;
        count = blocks.len();
    }
    (out, u32::try_from(sizes.len()).unwrap_or(1))
}

/// Blocks a block map of `extents` records takes (0 while they fit in the inode).
pub fn bmbt_blocks(extents: usize) -> usize {
    if extents <= super::inode::INLINE_EXTENTS {
        return 0;
    }
    level_sizes(extents, BMBT_CAP, BMBT_CAP, BMDR_CAP)
        .iter()
        .sum()
}

/// The block map of `extents` in the blocks `at` (bottom level first, in order):
/// the root for the inode, and the (block, bytes) pairs.
pub fn bmbt(
    g: &Geometry,
    extents: &[Extent],
    at: &[AgBlock],
    owner: u64,
    uuid: Guid,
) -> (Vec<u8>, Vec<(AgBlock, Vec<u8>)>) {
    let sizes = level_sizes(extents.len(), BMBT_CAP, BMBT_CAP, BMDR_CAP);
    let mut out = Vec::new();
    let mut rest = at;
    // (first file offset, fsblock) of each block of the level below.
    let mut children: Vec<(u64, u64)> = Vec::new();
    let mut count = extents.len();
    for (level, &n) in sizes.iter().enumerate() {
        let (blocks, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        let ranges = split_even(count, blocks.len());
        let mut next = Vec::with_capacity(blocks.len());
        for (k, (r, &here)) in ranges.iter().zip(blocks).enumerate() {
            let mut b = Buf::new(BLK);
            b.bytes(0, BMBT_MAGIC);
            b.u16(LBT_LEVEL, u16::try_from(level).unwrap_or(0));
            b.u16(LBT_NUMRECS, u16::try_from(r.len()).unwrap_or(0));
            let sib =
                |i: Option<usize>| i.and_then(|i| blocks.get(i)).map_or(NULL64, |&s| g.fsb(s));
            b.u64(LBT_LEFTSIB, sib(k.checked_sub(1)));
            b.u64(LBT_RIGHTSIB, sib(k.checked_add(1)));
            b.u64(LBT_BLKNO, g.daddr(here));
            b.bytes(LBT_UUID, &uuid.0);
            b.u64(LBT_OWNER, owner);
            let first = if level == 0 {
                for (j, e) in extents
                    .get(r.clone())
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    b.bytes(LBT_HDR.saturating_add(j.saturating_mul(16)), &e.encode());
                }
                extents.get(r.start).map_or(0, |e| e.offset)
            } else {
                let kids = children.get(r.clone()).unwrap_or_default();
                put_keys_ptrs(&mut b, LBT_HDR, BMBT_CAP, kids);
                kids.first().map_or(0, |c| c.0)
            };
            next.push((first, g.fsb(here)));
            out.push((here, b.seal(LBT_CRC)));
        }
        children = next;
        count = blocks.len();
    }
    let mut root = Buf::new(LITERAL);
    root.u16(0, u16::try_from(sizes.len()).unwrap_or(0));
    root.u16(2, u16::try_from(children.len()).unwrap_or(0));
    put_keys_ptrs(&mut root, BMDR_HDR, BMDR_CAP, &children);
    (root.into_inner(), out)
}

/// Long btree node entries: the keys from `at`, the pointers after room for `cap`
/// keys.
fn put_keys_ptrs(b: &mut Buf, at: usize, cap: usize, kids: &[(u64, u64)]) {
    let ptrs = at.saturating_add(cap.saturating_mul(8));
    for (j, &(key, ptr)) in kids.iter().enumerate() {
        let o = j.saturating_mul(8);
        b.u64(at.saturating_add(o), key);
        b.u64(ptrs.saturating_add(o), ptr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_sizes_grow_by_capacity() {
        assert_eq!(level_sizes(0, 252, 505, 1), vec![1]);
        assert_eq!(level_sizes(252, 252, 505, 1), vec![1]);
        assert_eq!(level_sizes(253, 252, 505, 1), vec![2, 1]);
        assert_eq!(bmbt_blocks(21), 0);
        assert_eq!(bmbt_blocks(22), 1);
        assert_eq!(bmbt_blocks(251 * 20), 20);
        assert_eq!(bmbt_blocks(251 * 20 + 1), 22);
        assert_eq!(
            (ALLOC_CAP, INOBT_LEAF_CAP, SBT_NODE_CAP, BMBT_CAP, BMDR_CAP),
            (505, 252, 505, 251, 20)
        );
    }
}
