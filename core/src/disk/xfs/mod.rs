//! XFS v5: a writer that formats a fresh volume for a known file tree (Talos's BOOT
//! partition: GRUB reads the kernel and initramfs from it), and a bounded reader for
//! volumes found on disks, including those `mkfs.xfs` makes with its defaults.
//!
//! # The writer ([`format`])
//! Like the FAT writer, it computes the whole layout before a byte is produced:
//! geometry, inode numbers, directory blocks, then one contiguous run of blocks per
//! file where an AG can hold it. The result is a list of extents: small owned
//! metadata buffers (AG headers, inode chunks, directory blocks, the log's first
//! sector) plus the caller's file bytes, borrowed. Memory depends on the file tree,
//! not on the volume size, and the data is written in one pass.
//!
//! Features: v5 (CRCs), `ftype` and `bigtime`, nothing else (versionnum 0xB4A5,
//! features2 0x18A, incompat 0x9, ro_compat 0). Each left-out feature is left out on
//! purpose:
//! - `nrext64` and the post-6.10 `exchange`/`parent`/`metadir` bits are refused by
//!   upstream GRUB 2.06 (nrext64) or every GRUB up to 2.12;
//! - `finobt`, `rmapbt`, `reflink` and `inobtcount` are ro_compat btrees GRUB never
//!   reads; a volume that is written once and read by a boot loader gains nothing
//!   from them, and each would be another btree per AG to build and get right;
//! - `sparse` inode chunks only help a fragmented, full volume.
//!
//! Linux mounts such a volume read-write (every feature it lacks is optional), and
//! `xfs_repair -n` finds nothing to report. Everything GRUB reads stays in extents
//! form (a bmbt only when a file needs more than 21 extents): Debian 12's GRUB
//! misreads block-mapped forks (docs/xfs.md).
//!
//! # The reader ([`read_volume`])
//! It walks the tree from the root inode, so it needs no AG btree and reads any
//! feature set whose inode and directory formats it knows (sparse inodes, finobt,
//! rmapbt, reflink, nrext64, ...). Every offset is checked, every walk has a budget,
//! and a hostile volume gets a typed error or a listed problem, never a panic.

pub mod raw;
pub mod read;
pub mod write;

mod btree;
mod dir;
mod geometry;
mod inode;
mod meta;
mod tree;
pub use read::{looks_like_xfs, read_volume, FileType, XfsEntry, XfsVolume};
pub use write::{format, ItemKind, XfsItem, XfsOptions, XfsPlan};

/// CRC-32C (Castagnoli, reflected, init and xorout 0xFFFFFFFF), as XFS checksums its
/// metadata (xfs_cksum.h). A table-driven byte loop: XFS checksums only metadata
/// blocks, so this is not on a hot path, and no crate is needed for 20 lines.
pub fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, crc32c_step)
}

fn crc32c_step(crc: u32, &b: &u8) -> u32 {
    let [low, ..] = crc.to_le_bytes();
    let i = usize::from(low ^ b);
    CRC32C_TABLE.get(i).copied().unwrap_or(0) ^ (crc >> 8)
}

static CRC32C_TABLE: [u32; 256] = crc32c_table();

// Indices stay below 256 and counters below 9: nothing overflows or goes out of range.
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]
const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// The CRC-32C of `block` with its 4-byte CRC field at `at` taken as zero, stored
/// little-endian as XFS does (xfs_cksum.h `xfs_start_cksum_safe`).
pub fn block_crc(block: &[u8], at: usize) -> u32 {
    let (head, rest) = block.split_at(at.min(block.len()));
    let tail = rest.get(4..).unwrap_or_default();
    let zero_len = rest.len().min(4);
    let crc = head
        .iter()
        .chain(std::iter::repeat_n(&0u8, zero_len))
        .chain(tail)
        .fold(!0u32, crc32c_step);
    !crc
}

/// The directory name hash (xfs_da_hashname): four bytes at a time, each pass
/// rotating the previous hash by 28 bits; a tail of k bytes rotates it by 7k.
pub fn name_hash(name: &[u8]) -> u32 {
    let mut chunks = name.chunks_exact(4);
    let mut h = 0u32;
    for c in chunks.by_ref() {
        if let [a, b, c, d] = *c {
            h = (u32::from(a) << 21)
                ^ (u32::from(b) << 14)
                ^ (u32::from(c) << 7)
                ^ u32::from(d)
                ^ h.rotate_left(28);
        }
    }
    match *chunks.remainder() {
        [a, b, c] => (u32::from(a) << 14) ^ (u32::from(b) << 7) ^ u32::from(c) ^ h.rotate_left(21),
        [a, b] => (u32::from(a) << 7) ^ u32::from(b) ^ h.rotate_left(14),
        [a] => u32::from(a) ^ h.rotate_left(7),
        _ => h,
    }
}

/// Seconds from the bigtime epoch (1901-12-13T20:45:52Z) to the Unix epoch.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;
const NS_PER_SEC: u64 = 1_000_000_000;

/// A Unix time as a bigtime timestamp: nanoseconds since 1901-12-13 (xfs_format.h
/// `xfs_bigtime`), or None outside 1901..2486.
pub fn bigtime(unix: i64) -> Option<u64> {
    let since = u64::try_from(unix.checked_add(BIGTIME_EPOCH_OFFSET)?).ok()?;
    since.checked_mul(NS_PER_SEC)
}

/// The Unix seconds of an inode timestamp, bigtime or the classic {s32 sec, u32 ns}.
pub fn unix_time(raw: u64, is_bigtime: bool) -> i64 {
    if is_bigtime {
        // u64::MAX / 10^9 is far below i64::MAX: neither step can overflow.
        i64::try_from(raw / NS_PER_SEC)
            .unwrap_or(i64::MAX)
            .saturating_sub(BIGTIME_EPOCH_OFFSET)
    } else {
        let [a, b, c, d, ..] = raw.to_be_bytes();
        i64::from(i32::from_be_bytes([a, b, c, d]))
    }
}

/// One extent of a fork: `blocks` file blocks from `offset` stored from filesystem
/// block `start` (the AG-relative form, `agno << agblklog | agbno`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub start: u64,
    pub blocks: u64,
    /// Preallocated, never written: reads as zeros.
    pub unwritten: bool,
}

const MASK_21: u128 = (1 << 21) - 1;
const MASK_52: u128 = (1 << 52) - 1;
const MASK_54: u128 = (1 << 54) - 1;

impl Extent {
    /// The 128-bit record: unwritten flag at bit 127, offset in bits 73..127, start
    /// block in 21..73, block count in 0..21 (xfs_format.h `xfs_bmbt_rec`).
    pub fn encode(&self) -> [u8; raw::EXTENT_LEN] {
        let v = (u128::from(self.unwritten) << 127)
            | ((u128::from(self.offset) & MASK_54) << 73)
            | ((u128::from(self.start) & MASK_52) << 21)
            | (u128::from(self.blocks) & MASK_21);
        v.to_be_bytes()
    }

    pub fn decode(rec: [u8; raw::EXTENT_LEN]) -> Extent {
        let v = u128::from_be_bytes(rec);
        // Each field is masked to at most 54 bits: the narrowing casts are exact.
        #[allow(clippy::cast_possible_truncation)]
        Extent {
            offset: ((v >> 73) & MASK_54) as u64,
            start: ((v >> 21) & MASK_52) as u64,
            blocks: (v & MASK_21) as u64,
            unwritten: v >> 127 != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        let mut b = b"ab\x01\x02\x03\x04cd".to_vec();
        let with_field = block_crc(&b, 2);
        b[2..6].fill(0);
        assert_eq!(with_field, crc32c(&b));
    }

    #[test]
    fn name_hashes_match_xfs() {
        assert_eq!(name_hash(b".."), 0x172E);
        assert_eq!(name_hash(b"."), 0x2E);
        assert_eq!(name_hash(b"grub"), 0x0CFC_BAE2);
    }

    #[test]
    fn timestamps_and_extents_round_trip() {
        assert_eq!(bigtime(0), Some(0x1DCD_6500_0000_0000));
        assert_eq!(
            unix_time(bigtime(1_735_787_046).unwrap(), true),
            1_735_787_046
        );
        assert_eq!(bigtime(i64::MIN), None);
        assert_eq!(unix_time(0xFFFF_FFFF_0000_0000, false), -1);
        let e = Extent {
            offset: 7,
            start: 65552,
            blocks: 15360,
            unwritten: false,
        };
        assert_eq!(Extent::decode(e.encode()), e);
    }
}
