//! Writing directories (v3, with the ftype byte): shortform in the inode while the
//! entries fit, then one block (entries and hash leaf together), then leaf form (data
//! blocks plus one leaf block), then node form (data blocks, leaf blocks under a
//! da-btree node, free index blocks), as Linux grows them (xfs_dir2_*.c).
//!
//! The blocks are built here with everything but their disk address; the writer
//! allocates them, then fills `blkno` and the CRC ([`DirBlock::finish`]).

use super::geometry::{BLOCK, BLOCK_BYTES};
use super::inode::LITERAL;
use super::name_hash;
use super::raw::*;
use super::write::Buf;
use crate::guid::Guid;

/// Directory blocks are filesystem blocks (dirblklog 0).
const DBLK: usize = BLOCK_BYTES;
/// Leaf entries ({hash, address}) and node entries ({hash, before}) are 8 bytes.
const LEAF_ENT: usize = 8;
/// Entries in a leafn block and children of a da node (504).
const NODE_CAP: usize = (DBLK - DA3_HDR) / LEAF_ENT;
/// Data blocks one free index block describes (2016).
const FREE_CAP: usize = (DBLK - DIR3_FREE_HDR) / 2;
/// The first dablk of the leaf and free sections.
pub const LEAF_FIRST: u64 = DIR_LEAF_OFFSET / BLOCK;
pub const FREE_FIRST: u64 = DIR_FREE_OFFSET / BLOCK;

/// One entry of a directory being written.
#[derive(Debug, Clone, Copy)]
pub struct DirEntry<'n> {
    pub name: &'n [u8],
    pub ino: u64,
    pub ftype: u8,
}

/// Where a block header keeps its disk address and CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// Data and free index blocks (xfs_dir3_blk_hdr).
    Dir3,
    /// Leaf and node blocks (xfs_da3_blkinfo).
    Da3,
}

#[derive(Debug)]
pub struct DirBlock {
    /// Logical block in the directory's address space.
    pub dablk: u64,
    pub buf: Buf,
    pub header: Header,
}

impl DirBlock {
    /// The block with its disk address and CRC.
    pub fn finish(mut self, daddr: u64) -> Vec<u8> {
        let (blkno, crc) = match self.header {
            Header::Dir3 => (DIR3_BLKNO, DIR3_CRC),
            Header::Da3 => (DA3_BLKNO, DA3_CRC),
        };
        self.buf.u64(blkno, daddr);
        self.buf.seal(crc)
    }
}

/// A directory in block, leaf or node form.
#[derive(Debug)]
pub struct Blocks {
    /// di_size: the bytes of the data section.
    pub size: u64,
    /// Blocks in each section, each laid out contiguously from its first dablk.
    pub data: u64,
    pub leaf: u64,
    pub free: u64,
    pub blocks: Vec<DirBlock>,
}

#[derive(Debug)]
pub enum Dir {
    Short(Vec<u8>),
    Blocks(Blocks),
}

/// Bytes of an entry in a data block: ino, namelen, name, ftype, tag, padded to 8.
fn entsize(namelen: usize) -> usize {
    namelen.saturating_add(12).next_multiple_of(8)
}

/// An entry and where it landed: data block and offset in it.
struct Placed<'n> {
    e: DirEntry<'n>,
    db: usize,
    off: usize,
}

/// The context every block of one directory shares.
struct Ctx {
    uuid: Guid,
    owner: u64,
}

impl Ctx {
    fn dir3(&self, magic: &[u8; 4]) -> Buf {
        let mut b = Buf::new(DBLK);
        b.bytes(0, magic);
        b.bytes(DIR3_UUID, &self.uuid.0);
        b.u64(DIR3_OWNER, self.owner);
        b
    }

    fn da3(&self, magic: u16, count: usize, level: u16) -> Buf {
        let mut b = Buf::new(DBLK);
        b.u16(DA3_MAGIC, magic);
        b.bytes(DA3_UUID, &self.uuid.0);
        b.u64(DA3_OWNER, self.owner);
        b.u16(DA3_COUNT, u16::try_from(count).unwrap_or(u16::MAX));
        b.u16(DA3_LEVEL, level);
        b
    }
}

/// Build directory `owner` (parent `parent`) holding `children`, in the smallest
/// form that holds them.
// Offsets inside one 4 KiB block and counts of in-memory entries (names of at most
// 255 bytes): no sum here comes near usize::MAX.
#[allow(clippy::arithmetic_side_effects)]
pub fn build(children: &[DirEntry<'_>], owner: u64, parent: u64, uuid: Guid) -> Dir {
    let sf_len = children.iter().fold(SF_HDR4, |n, e| {
        n.saturating_add(e.name.len()).saturating_add(8)
    });
    if sf_len <= LITERAL {
        return Dir::Short(shortform(children, parent, sf_len));
    }
    let ctx = Ctx { uuid, owner };
    let mut all = vec![
        DirEntry {
            name: b".",
            ino: owner,
            ftype: FT_DIR,
        },
        DirEntry {
            name: b"..",
            ino: parent,
            ftype: FT_DIR,
        },
    ];
    all.extend_from_slice(children);
    let n = all.len();
    let data_bytes: usize = all.iter().map(|e| entsize(e.name.len())).sum();
    // One block: header, entries, leaf entries and the {count, stale} tail.
    let leaf_bytes = n.saturating_mul(LEAF_ENT).saturating_add(8);
    if DIR3_DATA_HDR + data_bytes + leaf_bytes <= DBLK {
        return Dir::Blocks(block_form(&all, &ctx));
    }
    let placed = place(&all, DBLK);
    let data = placed.last().map_or(1, |p| p.db.saturating_add(1));
    let mut blocks = Vec::new();
    let mut bests = Vec::with_capacity(data);
    for db in 0..data {
        let mine: Vec<&Placed<'_>> = placed.iter().filter(|p| p.db == db).collect();
        let (buf, best) = data_block(&ctx, DIR3_DATA_MAGIC, &mine, DBLK);
        bests.push(best);
        blocks.push(DirBlock {
            dablk: db as u64,
            buf,
            header: Header::Dir3,
        });
    }
    let leaf = leaf_entries(&placed);
    // Leaf form: header, entries, the bests of each data block and their count.
    let leaf1 = DA3_HDR + leaf.len() * LEAF_ENT + data * 2 + 4;
    let (leaf_blocks, free_blocks) = if leaf1 <= DBLK {
        blocks.push(leaf1_block(&ctx, &leaf, &bests));
        (1, 0)
    } else {
        let tree = node_blocks(&ctx, &leaf);
        let free = free_index(&ctx, &bests);
        let counts = (tree.len() as u64, free.len() as u64);
        blocks.extend(tree);
        blocks.extend(free);
        counts
    };
    Dir::Blocks(Blocks {
        size: (data as u64).saturating_mul(BLOCK),
        data: data as u64,
        leaf: leaf_blocks,
        free: free_blocks,
        blocks,
    })
}

// Offsets inside one 4 KiB block and counts of in-memory entries (names of at most
// 255 bytes): no sum here comes near usize::MAX.
#[allow(clippy::arithmetic_side_effects)]
fn shortform(children: &[DirEntry<'_>], parent: u64, len: usize) -> Vec<u8> {
    let mut b = Buf::new(len);
    b.u8(0, u8::try_from(children.len()).unwrap_or(u8::MAX));
    // i8count 0: every inode number is below 2^32 (they all live in AG 0).
    b.u32(2, u32::try_from(parent).unwrap_or(u32::MAX));
    let mut at = SF_HDR4;
    // Each entry records its offset in the equivalent block directory, after the
    // header and the "." and ".." entries.
    let mut offset = DIR3_DATA_HDR + entsize(1) + entsize(2);
    for e in children {
        let nl = e.name.len();
        b.u8(at, u8::try_from(nl).unwrap_or(u8::MAX));
        b.u16(at + 1, u16::try_from(offset).unwrap_or(u16::MAX));
        b.bytes(at + 3, e.name);
        b.u8(at + 3 + nl, e.ftype);
        b.u32(at + 4 + nl, u32::try_from(e.ino).unwrap_or(u32::MAX));
        at += nl + 8;
        offset += entsize(nl);
    }
    b.into_inner()
}

/// Entries into data blocks in order, each block filled until the next entry does
/// not fit (its end at `end` bytes).
// Offsets inside one 4 KiB block and counts of in-memory entries (names of at most
// 255 bytes): no sum here comes near usize::MAX.
#[allow(clippy::arithmetic_side_effects)]
fn place<'n>(all: &[DirEntry<'n>], end: usize) -> Vec<Placed<'n>> {
    let mut db = 0usize;
    let mut off = DIR3_DATA_HDR;
    all.iter()
        .map(|&e| {
            let sz = entsize(e.name.len());
            if off + sz > end {
                db += 1;
                off = DIR3_DATA_HDR;
            }
            let p = Placed { e, db, off };
            off += sz;
            p
        })
        .collect()
}

/// A data block holding `entries`, free from their end to `end`: the block and the
/// length of its free region (its bestfree[0]).
// Offsets inside one 4 KiB block and counts of in-memory entries (names of at most
// 255 bytes): no sum here comes near usize::MAX.
#[allow(clippy::arithmetic_side_effects)]
fn data_block(ctx: &Ctx, magic: &[u8; 4], entries: &[&Placed<'_>], end: usize) -> (Buf, u16) {
    let mut b = ctx.dir3(magic);
    let mut used = DIR3_DATA_HDR;
    for p in entries {
        let nl = p.e.name.len();
        let at = p.off;
        b.u64(at, p.e.ino);
        b.u8(at + 8, u8::try_from(nl).unwrap_or(u8::MAX));
        b.bytes(at + 9, p.e.name);
        b.u8(at + 9 + nl, p.e.ftype);
        let sz = entsize(nl);
        b.u16(at + sz - 2, u16::try_from(at).unwrap_or(u16::MAX));
        used = at + sz;
    }
    let free = end.saturating_sub(used);
    let free16 = u16::try_from(free).unwrap_or(0);
    if free > 0 {
        let tag = u16::try_from(used).unwrap_or(0);
        b.u16(used, DIR_FREE_TAG);
        b.u16(used + 2, free16);
        b.u16(end - 2, tag);
        b.u16(DIR3_BESTFREE, tag);
        b.u16(DIR3_BESTFREE + 2, free16);
    }
    (b, free16)
}

/// {hash, address} of every entry, sorted by hash then address; the address is the
/// entry's byte offset in the directory over 8.
fn leaf_entries(placed: &[Placed<'_>]) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = placed
        .iter()
        .map(|p| {
            let byte = p.db.saturating_mul(DBLK).saturating_add(p.off);
            (
                name_hash(p.e.name),
                u32::try_from(byte / 8).unwrap_or(u32::MAX),
            )
        })
        .collect();
    v.sort_unstable();
    v
}

// Offsets inside one 4 KiB block and counts of in-memory entries (names of at most
// 255 bytes): no sum here comes near usize::MAX.
#[allow(clippy::arithmetic_side_effects)]
fn put_leaf_entries(b: &mut Buf, at: usize, entries: &[(u32, u32)]) {
    for (k, &(hash, addr)) in entries.iter().enumerate() {
        let o = at + k * LEAF_ENT;
        b.u32(o, hash);
        b.u32(o + 4, addr);
    }
}

// Offsets inside one 4 KiB block and counts of in-memory entries (names of at most
// 255 bytes): no sum here comes near usize::MAX.
#[allow(clippy::arithmetic_side_effects)]
fn block_form(all: &[DirEntry<'_>], ctx: &Ctx) -> Blocks {
    let n = all.len();
    let leaf_at = DBLK - 8 - n * LEAF_ENT;
    let placed = place(all, leaf_at);
    let refs: Vec<&Placed<'_>> = placed.iter().collect();
    let (mut buf, _) = data_block(ctx, DIR3_BLOCK_MAGIC, &refs, leaf_at);
    put_leaf_entries(&mut buf, leaf_at, &leaf_entries(&placed));
    buf.u32(DBLK - 8, u32::try_from(n).unwrap_or(u32::MAX));
    Blocks {
        size: BLOCK,
        data: 1,
        leaf: 0,
        free: 0,
        blocks: vec![DirBlock {
            dablk: 0,
            buf,
            header: Header::Dir3,
        }],
    }
}

// Offsets inside one 4 KiB block and counts of in-memory entries (names of at most
// 255 bytes): no sum here comes near usize::MAX.
#[allow(clippy::arithmetic_side_effects)]
fn leaf1_block(ctx: &Ctx, leaf: &[(u32, u32)], bests: &[u16]) -> DirBlock {
    let mut b = ctx.da3(DIR3_LEAF1_MAGIC, leaf.len(), 0);
    put_leaf_entries(&mut b, DA3_HDR, leaf);
    let tail = DBLK - 4;
    let at = tail - bests.len() * 2;
    for (k, &best) in bests.iter().enumerate() {
        b.u16(at + k * 2, best);
    }
    b.u32(tail, u32::try_from(bests.len()).unwrap_or(u32::MAX));
    DirBlock {
        dablk: LEAF_FIRST,
        buf: b,
        header: Header::Da3,
    }
}

/// `n` items in `parts` runs of near-equal length (each at least half full when
/// there are two or more, as btree checkers want).
// Offsets inside one 4 KiB block and counts of in-memory entries (names of at most
// 255 bytes): no sum here comes near usize::MAX.
#[allow(clippy::arithmetic_side_effects)]
pub fn split_even(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    let (q, r) = (n / parts, n % parts);
    let mut at = 0;
    (0..parts)
        .map(|i| {
            let len = q + usize::from(i < r);
            let range = at..at + len;
            at += len;
            range
        })
        .collect()
}

/// Node form: leafn blocks holding the hash-sorted entries, under da-btree nodes
/// up to one root at the first leaf dablk (a single leafn is the root itself).
/// Returns the blocks root first.
// Offsets inside one 4 KiB block and counts of in-memory entries (names of at most
// 255 bytes): no sum here comes near usize::MAX.
#[allow(clippy::arithmetic_side_effects)]
fn node_blocks(ctx: &Ctx, leaf: &[(u32, u32)]) -> Vec<DirBlock> {
    // Levels bottom-up, each a list of (max hash, item ranges below).
    let mut levels: Vec<Vec<std::ops::Range<usize>>> =
        vec![split_even(leaf.len(), leaf.len().div_ceil(NODE_CAP))];
    while let Some(top) = levels.last().filter(|l| l.len() > 1) {
        let n = top.len();
        levels.push(split_even(n, n.div_ceil(NODE_CAP)));
    }
    // dablks: the root at LEAF_FIRST, then each level top-down.
    let mut first = Vec::with_capacity(levels.len());
    let mut next = LEAF_FIRST;
    for l in levels.iter().rev() {
        first.push(next);
        next += l.len() as u64;
    }
    first.reverse();
    let mut blocks = Vec::new();
    // Max hash of each block of the level below, for the node entries.
    let mut below: Vec<u32> = Vec::new();
    for (lvl, ranges) in levels.iter().enumerate() {
        let base = first.get(lvl).copied().unwrap_or(LEAF_FIRST);
        let mut hashes = Vec::with_capacity(ranges.len());
        for (k, r) in ranges.iter().enumerate() {
            let mut b = if lvl == 0 {
                let ents = leaf.get(r.clone()).unwrap_or_default();
                let mut b = ctx.da3(DIR3_LEAFN_MAGIC, ents.len(), 0);
                put_leaf_entries(&mut b, DA3_HDR, ents);
                hashes.push(ents.last().map_or(0, |e| e.0));
                b
            } else {
                let child_base = first.get(lvl - 1).copied().unwrap_or(LEAF_FIRST);
                let mut b = ctx.da3(DA3_NODE_MAGIC, r.len(), u16::try_from(lvl).unwrap_or(0));
                for (j, c) in r.clone().enumerate() {
                    let h = below.get(c).copied().unwrap_or(0);
                    b.u32(DA3_HDR + j * LEAF_ENT, h);
                    b.u32(DA3_HDR + j * LEAF_ENT + 4, da32(child_base + c as u64));
                }
                hashes.push(
                    r.clone()
                        .last()
                        .and_then(|c| below.get(c))
                        .copied()
                        .unwrap_or(0),
                );
                b
            };
            let dablk = base + k as u64;
            if k > 0 {
                b.u32(DA3_BACK, da32(dablk - 1));
            }
            if k + 1 < ranges.len() {
                b.u32(DA3_FORW, da32(dablk + 1));
            }
            blocks.push(DirBlock {
                dablk,
                buf: b,
                header: Header::Da3,
            });
        }
        below = hashes;
    }
    blocks.sort_by_key(|b| b.dablk);
    blocks
}

/// A dablk as the 32-bit field of node entries and sibling links (dablks of the
/// leaf section are below 2^24).
fn da32(dablk: u64) -> u32 {
    u32::try_from(dablk).unwrap_or(0)
}

/// Free index blocks: the longest free region of each data block.
// Offsets inside one 4 KiB block and counts of in-memory entries (names of at most
// 255 bytes): no sum here comes near usize::MAX.
#[allow(clippy::arithmetic_side_effects)]
fn free_index(ctx: &Ctx, bests: &[u16]) -> Vec<DirBlock> {
    bests
        .chunks(FREE_CAP)
        .enumerate()
        .map(|(i, chunk)| {
            let mut b = ctx.dir3(DIR3_FREE_MAGIC);
            let n = u32::try_from(chunk.len()).unwrap_or(0);
            b.u32(DIR3_FREE_FIRSTDB, u32::try_from(i * FREE_CAP).unwrap_or(0));
            b.u32(DIR3_FREE_NVALID, n);
            b.u32(DIR3_FREE_NUSED, n);
            for (k, &best) in chunk.iter().enumerate() {
                b.u16(DIR3_FREE_HDR + k * 2, best);
            }
            DirBlock {
                dablk: FREE_FIRST + i as u64,
                buf: b,
                header: Header::Dir3,
            }
        })
        .collect()
}
