//! Writing v3 inodes (512 bytes: the 176-byte core, then the data fork).

use super::raw::*;
use super::write::Buf;
use super::Extent;
use crate::guid::Guid;

/// Bytes of the data fork in a 512-byte v3 inode with no attribute fork.
pub const LITERAL: usize = 512 - DI_CORE_V3;
/// Extents that fit in the fork (21).
pub const INLINE_EXTENTS: usize = LITERAL / EXTENT_LEN;

/// The data fork of an inode.
#[derive(Debug, Clone)]
pub enum Fork {
    /// Shortform directory or short symlink: the bytes in the inode.
    Local(Vec<u8>),
    Extents(Vec<Extent>),
    /// A block map rooted in the inode: the root bytes, and the extents it maps.
    Btree {
        root: Vec<u8>,
        extents: u64,
    },
}

/// An allocated inode.
#[derive(Debug, Clone)]
pub struct Inode {
    pub ino: u64,
    pub mode: u16,
    pub nlink: u32,
    pub size: u64,
    /// Blocks of data and block map.
    pub nblocks: u64,
    pub flags: u16,
    pub fork: Fork,
}

/// What every inode of the volume shares.
pub struct Stamp {
    pub uuid: Guid,
    /// bigtime nanoseconds for atime, mtime, ctime and crtime.
    pub time: u64,
}

/// Encode `i` into a 512-byte inode with its CRC.
pub fn encode(i: &Inode, s: &Stamp) -> Vec<u8> {
    let mut b = core(i.ino, s);
    b.u16(DI_MODE, i.mode);
    let (format, nextents) = match &i.fork {
        Fork::Local(bytes) => {
            b.bytes(DI_CORE_V3, bytes);
            (FMT_LOCAL, 0)
        }
        Fork::Extents(list) => {
            for (k, e) in list.iter().enumerate() {
                b.bytes(
                    DI_CORE_V3.saturating_add(k.saturating_mul(EXTENT_LEN)),
                    &e.encode(),
                );
            }
            (FMT_EXTENTS, list.len() as u64)
        }
        Fork::Btree { root, extents } => {
            b.bytes(DI_CORE_V3, root);
            (FMT_BTREE, *extents)
        }
    };
    b.u8(DI_FORMAT, format);
    b.u32(DI_NLINK, i.nlink);
    for at in [DI_ATIME, DI_MTIME, DI_CTIME, DI_CRTIME] {
        b.u64(at, s.time);
    }
    b.u64(DI_SIZE, i.size);
    b.u64(DI_NBLOCKS, i.nblocks);
    // Without nrext64 the data fork counts extents in 32 bits; no volume this
    // writer makes has more.
    b.u32(DI_NEXTENTS, u32::try_from(nextents).unwrap_or(u32::MAX));
    b.u8(DI_AFORMAT, FMT_EXTENTS);
    b.u16(DI_FLAGS, i.flags);
    b.u64(DI_CHANGECOUNT, 1);
    b.u64(DI_FLAGS2, DIFLAG2_BIGTIME);
    b.seal(DI_CRC)
}

/// A free inode of an allocated chunk: the core header only (what mkfs writes).
pub fn free(ino: u64, s: &Stamp) -> Vec<u8> {
    core(ino, s).seal(DI_CRC)
}

fn core(ino: u64, s: &Stamp) -> Buf {
    let mut b = Buf::new(512);
    b.bytes(0, DI_MAGIC);
    b.u8(DI_VERSION, 3);
    b.u32(DI_NEXT_UNLINKED, NULL32);
    b.u64(DI_INO, ino);
    b.bytes(DI_UUID, &s.uuid.0);
    b
}
