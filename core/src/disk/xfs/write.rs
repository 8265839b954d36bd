//! Formatting a fresh XFS v5 volume for a known file tree, as image extents.
//!
//! The steps: geometry; the tree (sorted, inode numbers in pre-order, all in AG 0
//! from the root's chunk on); directories, symlinks and files, each allocated first
//! fit in AG order (a file gets one contiguous run when any AG has room for it);
//! then the inode chunks, the AG headers and btrees, and the clean log. Metadata is
//! owned and small; file data is the caller's bytes, borrowed.

use std::borrow::Cow;

use super::btree::{self, ChunkRec};
use super::dir::{self, DirEntry, FREE_FIRST, LEAF_FIRST};
use super::geometry::{
    AgBlock, Geometry, Run, Space, BLOCK, BLOCK_BYTES, CHUNK_BLOCKS, CHUNK_BYTES, CHUNK_INODES,
};
use super::inode::{self, Fork, Inode, Stamp, INLINE_EXTENTS, LITERAL};
use super::raw::*;
use super::tree::{NodeKind, Tree};
use super::{bigtime, block_crc, Extent};
use crate::disk::fat::write::{push_zeros, ZEROS};
use crate::disk::DiskImage;
use crate::error::{Error, Result};
use crate::guid::Guid;

/// Options of a freshly formatted volume; everything that varies between runs of
/// mkfs.xfs (UUID, time) is an explicit input here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XfsOptions {
    /// Volume size in bytes (whole 4 KiB blocks are used).
    pub size: u64,
    /// Logical sector size: 512 or 4096.
    pub sector_size: u64,
    /// Up to 12 bytes; empty for none.
    pub label: String,
    pub uuid: Guid,
    /// Unix time of every timestamp on the volume (SOURCE_DATE_EPOCH in the CLI).
    pub timestamp: i64,
    /// Number of AGs (mkfs -d agcount); None picks 4, or more for AGs past 1 TiB.
    pub ag_count: Option<u32>,
}

impl Default for XfsOptions {
    fn default() -> Self {
        XfsOptions {
            size: 1000 << 20,
            sector_size: 512,
            label: String::new(),
            uuid: Guid::ZERO,
            timestamp: 315_532_800,
            ag_count: None,
        }
    }
}

/// What an item of the tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind<'a> {
    Directory,
    File(Cow<'a, [u8]>),
    Symlink(String),
}

/// One item of the tree to write: its `/`-separated path from the root, its
/// permission bits (default 0755 for directories, 0644 for files, 0777 for
/// symlinks) and what it is. Parent directories are made as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XfsItem<'a> {
    pub path: String,
    pub mode: Option<u16>,
    pub kind: ItemKind<'a>,
}

impl<'a> XfsItem<'a> {
    pub fn file(path: impl Into<String>, data: impl Into<Cow<'a, [u8]>>) -> Self {
        XfsItem {
            path: path.into(),
            mode: None,
            kind: ItemKind::File(data.into()),
        }
    }
}

/// Where a file landed: its inode and its data as (volume offset, length) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedFile {
    pub path: String,
    pub ino: u64,
    pub size: u64,
    pub runs: Vec<(u64, u64)>,
}

/// A formatted volume: its geometry and its extents (offsets relative to the volume).
#[derive(Debug, Clone)]
pub struct XfsPlan<'a> {
    pub size: u64,
    pub ag_count: u32,
    pub ag_blocks: u32,
    pub log_blocks: u32,
    pub root_ino: u64,
    pub inodes: u64,
    pub free_blocks: u64,
    pub extents: Vec<(u64, Cow<'a, [u8]>)>,
    pub files: Vec<PlacedFile>,
}

impl<'a> XfsPlan<'a> {
    /// Put the volume into `img` at byte offset `at` (a partition's start).
    pub fn place(self, img: &mut DiskImage<'a>, at: u64) -> Result<()> {
        for (off, data) in self.extents {
            let o = at
                .checked_add(off)
                .ok_or_else(|| Error::invalid("XFS volume offset overflows"))?;
            img.put(o, data)?;
        }
        Ok(())
    }
}

/// A fixed-size metadata buffer with big-endian field stores. Offsets come from
/// raw.rs and the layout code, inside the buffer; a store that would not fit is
/// dropped (the referees in the tests would catch the bad field), never a panic.
#[derive(Debug, Clone)]
pub struct Buf(Vec<u8>);

impl Buf {
    pub fn new(len: usize) -> Buf {
        Buf(vec![0; len])
    }
    pub fn bytes(&mut self, at: usize, v: &[u8]) {
        let end = at.saturating_add(v.len());
        if let Some(d) = self.0.get_mut(at..end) {
            d.copy_from_slice(v);
        }
    }
    pub fn u8(&mut self, at: usize, v: u8) {
        self.bytes(at, &[v]);
    }
    pub fn u16(&mut self, at: usize, v: u16) {
        self.bytes(at, &v.to_be_bytes());
    }
    pub fn u32(&mut self, at: usize, v: u32) {
        self.bytes(at, &v.to_be_bytes());
    }
    pub fn u64(&mut self, at: usize, v: u64) {
        self.bytes(at, &v.to_be_bytes());
    }
    /// The bytes with their CRC-32C stored (little-endian) at `crc_at`.
    pub fn seal(mut self, crc_at: usize) -> Vec<u8> {
        let crc = block_crc(&self.0, crc_at);
        self.bytes(crc_at, &crc.to_le_bytes());
        self.0
    }
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

type Extents<'a> = Vec<(u64, Cow<'a, [u8]>)>;

/// Format a volume holding `items`.
pub fn format<'a>(opts: &XfsOptions, items: Vec<XfsItem<'a>>) -> Result<XfsPlan<'a>> {
    if opts.label.len() > SB_LABEL_LEN {
        return Err(Error::invalid(format!(
            "XFS label {:?} is longer than 12 bytes",
            opts.label
        )));
    }
    let g = Geometry::new(opts.size, opts.sector_size, opts.ag_count)?;
    let time = bigtime(opts.timestamp).ok_or_else(|| {
        Error::invalid(format!(
            "timestamp {} is outside XFS's range (1901..2486)",
            opts.timestamp
        ))
    })?;
    let stamp = Stamp {
        uuid: opts.uuid,
        time,
    };
    let mut tree = Tree::build(items)?;
    let mut w = Writer {
        g,
        space: Space::new(&g),
        stamp,
        extents: Vec::new(),
        files: Vec::new(),
    };
    let order = tree.preorder();
    // Inodes in order: the root, the realtime bitmap and summary (mandatory even
    // without a realtime device), then the rest of the tree.
    let count = (order.len() as u64).saturating_add(2);
    let chunks = count.div_ceil(CHUNK_INODES);
    let inobt_at = w.reserve_inodes(chunks)?;
    let ino_of = |k: u64| -> Result<u64> {
        let agbno = g
            .chunk_agbno(k / CHUNK_INODES)
            .ok_or_else(|| Error::invalid("XFS writer: inode number overflows"))?;
        Ok(g.ino(agbno, k % CHUNK_INODES))
    };
    for (k, &id) in order.iter().enumerate() {
        let slot = if k == 0 {
            0
        } else {
            (k as u64).saturating_add(2)
        };
        let ino = ino_of(slot)?;
        if let Some(n) = tree.nodes.get_mut(id) {
            n.ino = ino;
        }
    }
    let mut inodes = Vec::with_capacity(order.len().saturating_add(2));
    for (k, &id) in order.iter().enumerate() {
        inodes.push(w.node_inode(&mut tree, id)?);
        if k == 0 {
            inodes.push(special(ino_of(1)?, DIFLAG_NEWRTBM));
            inodes.push(special(ino_of(2)?, 0));
        }
    }
    w.inode_chunks(&inodes, chunks)?;
    let recs = chunk_records(&g, count, chunks)?;
    w.ag_metadata(opts, &recs, &inobt_at, count)?;
    w.log()?;
    let mut extents = w.extents;
    extents.sort_by_key(|e| e.0);
    Ok(XfsPlan {
        size: g.dblocks.saturating_mul(BLOCK),
        ag_count: g.agcount,
        ag_blocks: g.agblocks,
        log_blocks: g.log_blocks,
        root_ino: g.root_ino(),
        inodes: count,
        free_blocks: w.space.free_blocks(),
        extents,
        files: w.files,
    })
}

/// The realtime bitmap or summary inode: an empty regular file.
fn special(ino: u64, flags: u16) -> Inode {
    Inode {
        ino,
        mode: S_IFREG,
        nlink: 1,
        size: 0,
        nblocks: 0,
        flags,
        fork: Fork::Extents(Vec::new()),
    }
}

/// The inode btree records of the chunks: every slot past `count` is free.
fn chunk_records(g: &Geometry, count: u64, chunks: u64) -> Result<Vec<ChunkRec>> {
    (0..chunks)
        .map(|c| {
            let agbno = g
                .chunk_agbno(c)
                .ok_or_else(|| Error::invalid("XFS writer: chunk overflows"))?;
            let used = count
                .saturating_sub(c.saturating_mul(CHUNK_INODES))
                .min(CHUNK_INODES);
            let free = u64::MAX
                .checked_shl(u32::try_from(used).unwrap_or(64))
                .unwrap_or(0);
            Ok(ChunkRec {
                agino: u32::try_from(g.ino(agbno, 0))
                    .map_err(|_| Error::invalid("XFS writer: inode number overflows"))?,
                free,
            })
        })
        .collect()
}

struct Writer<'a> {
    g: Geometry,
    space: Space,
    stamp: Stamp,
    extents: Extents<'a>,
    files: Vec<PlacedFile>,
}

/// A run of a fork: `len` blocks from file block `offset` at `at`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    offset: u64,
    at: AgBlock,
    len: u64,
}

impl<'a> Writer<'a> {
    /// Take the inode chunks (contiguous in AG 0 from the root's block) and the
    /// blocks of the inode btree (its root at the fixed block, the rest in AG 0).
    fn reserve_inodes(&mut self, chunks: u64) -> Result<Vec<u32>> {
        let g = self.g;
        let full = || {
            Error::invalid(format!(
                "{} inodes do not fit in the first AG of this XFS volume",
                chunks.saturating_mul(CHUNK_INODES)
            ))
        };
        let blocks = chunks
            .checked_mul(u64::from(CHUNK_BLOCKS))
            .and_then(|b| u32::try_from(b).ok())
            .ok_or_else(full)?;
        let at = AgBlock {
            ag: 0,
            agbno: g.first_chunk,
        };
        if !self.space.reserve(at, blocks) {
            return Err(full());
        }
        let n = btree::inobt_blocks(usize::try_from(chunks).map_err(|_| full())?);
        let mut list = vec![g.ino_root()];
        for _ in 1..n {
            let b = self.space.take_in_ag(0, 1).ok_or_else(full)?;
            list.push(b);
        }
        Ok(list)
    }

    /// Allocate `blocks` for a fork from file block `offset`; pieces never pass an
    /// extent's 21-bit length.
    fn allocate(&mut self, offset: u64, blocks: u64, what: &str) -> Result<Vec<Piece>> {
        let runs = self.space.take(blocks).ok_or_else(|| {
            Error::invalid(format!(
                "the XFS volume is full: {what} needs {blocks} more blocks"
            ))
        })?;
        let mut out = Vec::new();
        let mut off = offset;
        for Run { at, len } in runs {
            let mut done = 0u32;
            while done < len {
                let n = len.saturating_sub(done).min(MAX_EXTENT_BLOCKS);
                out.push(Piece {
                    offset: off,
                    at: AgBlock {
                        ag: at.ag,
                        agbno: at.agbno.saturating_add(done),
                    },
                    len: u64::from(n),
                });
                // A run lies inside its AG and a fork inside 2^54 blocks.
                done = done.saturating_add(n);
                off = off.saturating_add(u64::from(n));
            }
        }
        Ok(out)
    }

    /// The fork of `pieces`: inline extents, or a block map (whose blocks are
    /// allocated here) when they do not fit. Returns the fork and its map blocks.
    fn fork(&mut self, pieces: &[Piece], owner: u64, what: &str) -> Result<(Fork, u64)> {
        let g = self.g;
        let extents: Vec<Extent> = pieces
            .iter()
            .map(|p| Extent {
                offset: p.offset,
                start: g.fsb(p.at),
                blocks: p.len,
                unwritten: false,
            })
            .collect();
        if extents.len() <= INLINE_EXTENTS {
            return Ok((Fork::Extents(extents), 0));
        }
        let n = btree::bmbt_blocks(extents.len()) as u64;
        let blocks: Vec<AgBlock> = self
            .allocate(0, n, what)?
            .iter()
            .flat_map(|p| {
                (0..p.len).map(move |i| AgBlock {
                    ag: p.at.ag,
                    agbno: p.at.agbno.saturating_add(u32::try_from(i).unwrap_or(0)),
                })
            })
            .collect();
        let (root, list) = btree::bmbt(&g, &extents, &blocks, owner, self.stamp.uuid);
        for (at, bytes) in list {
            self.extents.push((g.byte(at), Cow::Owned(bytes)));
        }
        Ok((
            Fork::Btree {
                root,
                extents: extents.len() as u64,
            },
            n,
        ))
    }

    /// Allocate, fill and describe the inode of tree node `id`.
    fn node_inode(&mut self, tree: &mut Tree<'a>, id: usize) -> Result<Inode> {
        let node = tree.node(id)?;
        let (ino, mode) = (node.ino, node.mode);
        let mut inode = Inode {
            ino,
            mode,
            nlink: 1,
            size: 0,
            nblocks: 0,
            flags: 0,
            fork: Fork::Extents(Vec::new()),
        };
        match &node.kind {
            NodeKind::Dir => self.directory(tree, id, &mut inode)?,
            NodeKind::Symlink(target) => {
                let target = target.clone();
                self.symlink(&target, &mut inode, &node.path)?;
            }
            NodeKind::File(_) => {
                let path = node.path.clone();
                let data = match tree.nodes.get_mut(id).map(|n| &mut n.kind) {
                    Some(NodeKind::File(d)) => std::mem::take(d),
                    _ => Cow::Borrowed(&[][..]),
                };
                self.file(path, data, &mut inode)?;
            }
        }
        Ok(inode)
    }

    fn directory(&mut self, tree: &Tree<'a>, id: usize, inode: &mut Inode) -> Result<()> {
        let node = tree.node(id)?;
        let parent = tree.node(node.parent)?.ino;
        let mut entries = Vec::with_capacity(node.children.len());
        let mut subdirs = 0u32;
        for &c in &node.children {
            let child = tree.node(c)?;
            subdirs = subdirs.saturating_add(u32::from(child.is_dir()));
            entries.push(DirEntry {
                name: &child.name,
                ino: child.ino,
                ftype: child.ftype(),
            });
        }
        inode.nlink = subdirs.saturating_add(2);
        match dir::build(&entries, inode.ino, parent, self.stamp.uuid) {
            dir::Dir::Short(bytes) => {
                inode.size = bytes.len() as u64;
                inode.fork = Fork::Local(bytes);
            }
            dir::Dir::Blocks(d) => {
                let what = format!("directory {:?}", node.path);
                let mut pieces = self.allocate(0, d.data, &what)?;
                pieces.extend(self.allocate(LEAF_FIRST, d.leaf, &what)?);
                pieces.extend(self.allocate(FREE_FIRST, d.free, &what)?);
                let g = self.g;
                for b in d.blocks {
                    let at = locate(&pieces, b.dablk).ok_or_else(|| {
                        Error::invalid(format!("XFS writer: dir block {} unmapped", b.dablk))
                    })?;
                    self.extents
                        .push((g.byte(at), Cow::Owned(b.finish(g.daddr(at)))));
                }
                let blocks: u64 = pieces.iter().map(|p| p.len).sum();
                let (fork, map) = self.fork(&pieces, inode.ino, &what)?;
                inode.size = d.size;
                inode.nblocks = blocks.saturating_add(map);
                inode.fork = fork;
            }
        }
        Ok(())
    }

    fn symlink(&mut self, target: &[u8], inode: &mut Inode, path: &str) -> Result<()> {
        inode.size = target.len() as u64;
        if target.len() <= LITERAL {
            inode.fork = Fork::Local(target.to_vec());
            return Ok(());
        }
        let pieces = self.allocate(0, 1, &format!("symlink {path:?}"))?;
        let at = pieces
            .first()
            .map(|p| p.at)
            .ok_or_else(|| Error::invalid("XFS writer: symlink block missing"))?;
        let g = self.g;
        let mut b = Buf::new(BLOCK_BYTES);
        b.bytes(0, SYMLINK_MAGIC);
        b.u32(SYMLINK_OFFSET, 0);
        b.u32(SYMLINK_BYTES, u32::try_from(target.len()).unwrap_or(0));
        b.bytes(SYMLINK_UUID, &self.stamp.uuid.0);
        b.u64(SYMLINK_OWNER, inode.ino);
        b.u64(SYMLINK_BLKNO, g.daddr(at));
        b.bytes(SYMLINK_HDR, target);
        self.extents
            .push((g.byte(at), Cow::Owned(b.seal(SYMLINK_CRC))));
        let (fork, _) = self.fork(&pieces, inode.ino, path)?;
        inode.fork = fork;
        inode.nblocks = 1;
        Ok(())
    }

    fn file(&mut self, path: String, data: Cow<'a, [u8]>, inode: &mut Inode) -> Result<()> {
        let g = self.g;
        let size = data.len() as u64;
        inode.size = size;
        let blocks = size.div_ceil(BLOCK);
        let pieces = self.allocate(0, blocks, &format!("file {path:?}"))?;
        let (fork, map) = self.fork(&pieces, inode.ino, &path)?;
        inode.fork = fork;
        inode.nblocks = blocks.saturating_add(map);
        let mut runs = Vec::with_capacity(pieces.len());
        let single = pieces.len() == 1;
        let mut data = Some(data);
        for p in &pieces {
            let start = p.offset.saturating_mul(BLOCK);
            let len = p.len.saturating_mul(BLOCK).min(size.saturating_sub(start));
            let at = g.byte(p.at);
            let bytes = match data.take_if(|_| single) {
                Some(whole) => whole,
                None => piece(data.as_ref(), start, len)?,
            };
            self.extents.push((at, bytes));
            runs.push((at, len));
            // The rest of the last block reads as zero, whatever the target held.
            let pad = p.len.saturating_mul(BLOCK).saturating_sub(len);
            if pad > 0 {
                let zeros = usize::try_from(pad)
                    .ok()
                    .and_then(|n| ZEROS.get(..n))
                    .unwrap_or_default();
                self.extents
                    .push((at.saturating_add(len), Cow::Borrowed(zeros)));
            }
        }
        self.files.push(PlacedFile {
            path,
            ino: inode.ino,
            size,
            runs,
        });
        Ok(())
    }
}

/// `len` bytes of a file's data from `start`: borrowed when the data is.
fn piece<'a>(data: Option<&Cow<'a, [u8]>>, start: u64, len: u64) -> Result<Cow<'a, [u8]>> {
    let range = usize::try_from(start)
        .ok()
        .zip(usize::try_from(start.saturating_add(len)).ok());
    let bad = || Error::invalid("XFS writer: file piece out of range");
    let (s, e) = range.ok_or_else(bad)?;
    match data {
        Some(Cow::Borrowed(d)) => Ok(Cow::Borrowed(d.get(s..e).ok_or_else(bad)?)),
        Some(Cow::Owned(v)) => Ok(Cow::Owned(v.get(s..e).ok_or_else(bad)?.to_vec())),
        None => Err(bad()),
    }
}

/// The block that holds logical block `blk` of a fork.
fn locate(pieces: &[Piece], blk: u64) -> Option<AgBlock> {
    pieces.iter().find_map(|p| {
        let rel = blk.checked_sub(p.offset).filter(|&r| r < p.len)?;
        Some(AgBlock {
            ag: p.at.ag,
            agbno: p.at.agbno.checked_add(u32::try_from(rel).ok()?)?,
        })
    })
}

impl Writer<'_> {
    /// Every inode of every chunk: those in `inodes`, then free ones.
    fn inode_chunks(&mut self, inodes: &[Inode], chunks: u64) -> Result<()> {
        let g = self.g;
        let mut list = inodes.iter();
        for c in 0..chunks {
            let agbno = g
                .chunk_agbno(c)
                .ok_or_else(|| Error::invalid("XFS writer: chunk overflows"))?;
            let mut buf = Vec::with_capacity(CHUNK_BYTES);
            for slot in 0..CHUNK_INODES {
                let bytes = match list.next() {
                    Some(i) => inode::encode(i, &self.stamp),
                    None => inode::free(g.ino(agbno, slot), &self.stamp),
                };
                buf.extend_from_slice(&bytes);
            }
            self.extents
                .push((g.byte(AgBlock { ag: 0, agbno }), Cow::Owned(buf)));
        }
        Ok(())
    }

    /// Each AG's header block (superblock, AGF, AGI, AGFL) and btree roots; the
    /// inode btree of AG 0 in `inobt_at`.
    fn ag_metadata(
        &mut self,
        opts: &XfsOptions,
        recs: &[ChunkRec],
        inobt_at: &[u32],
        count: u64,
    ) -> Result<()> {
        let g = self.g;
        let uuid = self.stamp.uuid;
        let icount = (recs.len() as u64).saturating_mul(CHUNK_INODES);
        let counts = super::meta::Counts {
            icount,
            ifree: icount.saturating_sub(count),
            fdblocks: self.space.free_blocks(),
        };
        let sb = super::meta::superblock(&g, opts, &counts);
        for ag in 0..g.agcount {
            let mine: &[ChunkRec] = if ag == 0 { recs } else { &[] };
            let roots: &[u32] = if ag == 0 { inobt_at } else { &[] };
            let (ino_blocks, levels) = if ag == 0 {
                btree::inobt(&g, ag, mine, roots, uuid)
            } else {
                btree::inobt(&g, ag, &[], &[g.ino_root()], uuid)
            };
            let free = self.space.ag_free(ag);
            let mut head = Vec::with_capacity(BLOCK_BYTES);
            head.extend_from_slice(&sb);
            head.extend_from_slice(&super::meta::agf(&g, ag, free, uuid));
            head.extend_from_slice(&super::meta::agi(&g, ag, mine, g.ino_root(), levels, uuid));
            head.extend_from_slice(&super::meta::agfl(&g, ag, uuid));
            let hdr_len = u64::from(g.hdr_blocks).saturating_mul(BLOCK);
            head.resize(usize::try_from(hdr_len).unwrap_or(0), 0);
            let base = g.byte(AgBlock { ag, agbno: 0 });
            self.extents.push((base, Cow::Owned(head)));
            let [bno, cnt] = btree::free_space(&g, ag, free, uuid)?;
            for (root, bytes) in [(g.bno_root(), bno), (g.cnt_root(), cnt)] {
                self.extents
                    .push((g.byte(AgBlock { ag, agbno: root }), Cow::Owned(bytes)));
            }
            for (at, bytes) in ino_blocks {
                self.extents.push((g.byte(at), Cow::Owned(bytes)));
            }
        }
        Ok(())
    }

    /// The log: its first record, then zeros to its end (a stale log on a reused
    /// disk must not be replayed).
    fn log(&mut self) -> Result<()> {
        let g = self.g;
        let at = g.byte(AgBlock {
            ag: g.log_ag,
            agbno: g.log_agbno,
        });
        let record = super::meta::log_record(&g, self.stamp.uuid);
        let rec_len = record.len() as u64;
        let total = u64::from(g.log_blocks).saturating_mul(BLOCK);
        self.extents.push((at, Cow::Owned(record)));
        push_zeros(
            &mut self.extents,
            at.saturating_add(rec_len),
            total.saturating_sub(rec_len),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::xfs::read_volume;

    const MIB: u64 = 1 << 20;

    fn opts() -> XfsOptions {
        XfsOptions {
            size: 64 * MIB,
            ..Default::default()
        }
    }

    fn err(o: &XfsOptions, items: Vec<XfsItem<'static>>) -> String {
        format(o, items).unwrap_err().to_string()
    }

    fn link(path: &str, target: &str) -> XfsItem<'static> {
        XfsItem {
            path: path.into(),
            mode: None,
            kind: ItemKind::Symlink(target.into()),
        }
    }

    #[test]
    fn refusals_are_clear() {
        let o = opts();
        let f = |p: &str| XfsItem::file(p.to_string(), &b"x"[..]);
        assert!(err(&o, vec![f("a/b"), f("a/b")]).contains("twice"));
        assert!(err(&o, vec![f("a"), f("a/b")]).contains("a file and a directory"));
        assert!(err(&o, vec![f("a/../b")]).contains("'..'"));
        assert!(err(&o, vec![f(&"n".repeat(256))]).contains("255"));
        assert!(err(&o, vec![link("l", "")]).contains("1..=1024"));
        assert!(err(&o, vec![link("l", &"t".repeat(1025))]).contains("1..=1024"));
        let big = vec![XfsItem::file("big", vec![0u8; 65 << 20])];
        assert!(format(&o, big).unwrap_err().to_string().contains("full"));
        let label = XfsOptions {
            label: "thirteen char".into(),
            ..opts()
        };
        assert!(err(&label, vec![]).contains("12 bytes"));
        let old = XfsOptions {
            timestamp: i64::MIN,
            ..opts()
        };
        assert!(err(&old, vec![]).contains("range"));
        let small = XfsOptions {
            size: 32 * MIB,
            ..opts()
        };
        assert!(err(&small, vec![]).contains("too small"));
    }

    #[test]
    fn modes_and_implied_directories() {
        let items = vec![
            XfsItem {
                path: "/".into(),
                mode: Some(0o700),
                kind: ItemKind::Directory,
            },
            XfsItem::file("grub/grub.cfg", &b"cfg"[..]),
            XfsItem {
                path: "grub".into(),
                mode: Some(0o700),
                kind: ItemKind::Directory,
            },
            XfsItem {
                path: "grub/grub.cfg2".into(),
                mode: Some(0o600),
                kind: ItemKind::File(Cow::Owned(b"owned".to_vec())),
            },
        ];
        let plan = format(&opts(), items).unwrap();
        let mut img = DiskImage::new(plan.size);
        plan.place(&mut img, 0).unwrap();
        let bytes = img.to_vec();
        let v = read_volume(&bytes).unwrap();
        let mode = |p: &str| v.find(p).unwrap().mode;
        assert_eq!(
            (mode("grub"), mode("grub/grub.cfg"), mode("grub/grub.cfg2")),
            (0o700, 0o644, 0o600)
        );
        let cfg2 = v.find("grub/grub.cfg2").unwrap();
        assert_eq!(v.file_bytes(&bytes, cfg2).unwrap().as_ref(), b"owned");
        // The root's own mode is in its inode (the reader lists no entry for it).
        let root = (v.root_ino * 512) as usize;
        assert_eq!(
            u16::from_be_bytes([bytes[root + 2], bytes[root + 3]]),
            S_IFDIR | 0o700
        );
    }
}
