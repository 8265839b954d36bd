//! XFS v5 on-disk layout: magic numbers, feature bits and field offsets (all fields
//! big-endian). Sources: Linux fs/xfs/libxfs/xfs_format.h, xfs_da_format.h and
//! xfs_log_format.h; *XFS Algorithms & Data Structures*. Offsets are in bytes from the
//! start of the structure they belong to.

// Superblock (sector 0 of every AG; AG 0 holds the primary).
pub const SB_MAGIC: &[u8; 4] = b"XFSB";
pub const SB_BLOCKSIZE: usize = 4;
pub const SB_DBLOCKS: usize = 8;
pub const SB_UUID: usize = 32;
pub const SB_LOGSTART: usize = 48;
pub const SB_ROOTINO: usize = 56;
pub const SB_RBMINO: usize = 64;
pub const SB_RSUMINO: usize = 72;
pub const SB_REXTSIZE: usize = 80;
pub const SB_AGBLOCKS: usize = 84;
pub const SB_AGCOUNT: usize = 88;
pub const SB_LOGBLOCKS: usize = 96;
pub const SB_VERSIONNUM: usize = 100;
pub const SB_SECTSIZE: usize = 102;
pub const SB_INODESIZE: usize = 104;
pub const SB_INOPBLOCK: usize = 106;
pub const SB_FNAME: usize = 108;
pub const SB_LABEL_LEN: usize = 12;
pub const SB_BLOCKLOG: usize = 120;
pub const SB_SECTLOG: usize = 121;
pub const SB_INODELOG: usize = 122;
pub const SB_INOPBLOG: usize = 123;
pub const SB_AGBLKLOG: usize = 124;
pub const SB_IMAX_PCT: usize = 127;
pub const SB_ICOUNT: usize = 128;
pub const SB_IFREE: usize = 136;
pub const SB_FDBLOCKS: usize = 144;
pub const SB_INOALIGNMT: usize = 180;
pub const SB_DIRBLKLOG: usize = 192;
pub const SB_LOGSECTLOG: usize = 193;
pub const SB_LOGSECTSIZE: usize = 194;
pub const SB_LOGSUNIT: usize = 196;
pub const SB_FEATURES2: usize = 200;
pub const SB_BAD_FEATURES2: usize = 204;
pub const SB_FEATURES_RO_COMPAT: usize = 212;
pub const SB_FEATURES_INCOMPAT: usize = 216;
pub const SB_CRC: usize = 224;

/// versionnum: v5 with the NLINK, ALIGN, LOGV2, EXTFLG, DIRV2 and MOREBITS bits.
pub const VERSION_V5: u16 = 0xB4A5;
/// versionnum SECTOR bit: sectors other than 512 bytes.
pub const VERSION_SECTOR: u16 = 0x0800;
pub const VERSION_NUM_MASK: u16 = 0x000F;
/// features2: LAZYSBCOUNT, ATTR2, PROJID32, CRC.
pub const FEATURES2_V5: u32 = 0x18A;
pub const INCOMPAT_FTYPE: u32 = 0x1;
pub const INCOMPAT_SPINODES: u32 = 0x2;
pub const INCOMPAT_META_UUID: u32 = 0x4;
pub const INCOMPAT_BIGTIME: u32 = 0x8;
pub const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
pub const INCOMPAT_NREXT64: u32 = 0x20;
pub const INCOMPAT_EXCHRANGE: u32 = 0x40;
pub const INCOMPAT_PARENT: u32 = 0x80;
pub const INCOMPAT_METADIR: u32 = 0x100;
pub const RO_COMPAT_FINOBT: u32 = 0x1;
pub const RO_COMPAT_RMAPBT: u32 = 0x2;
pub const RO_COMPAT_REFLINK: u32 = 0x4;
pub const RO_COMPAT_INOBTCNT: u32 = 0x8;

/// Feature names, as xfs_info prints them, for reports: (word, bit, name).
pub const FEATURE_NAMES: &[(FeatureWord, u32, &str)] = &[
    (FeatureWord::Incompat, INCOMPAT_FTYPE, "ftype"),
    (FeatureWord::Incompat, INCOMPAT_SPINODES, "sparse"),
    (FeatureWord::Incompat, INCOMPAT_META_UUID, "meta_uuid"),
    (FeatureWord::Incompat, INCOMPAT_BIGTIME, "bigtime"),
    (FeatureWord::Incompat, INCOMPAT_NEEDSREPAIR, "needsrepair"),
    (FeatureWord::Incompat, INCOMPAT_NREXT64, "nrext64"),
    (FeatureWord::Incompat, INCOMPAT_EXCHRANGE, "exchange"),
    (FeatureWord::Incompat, INCOMPAT_PARENT, "parent"),
    (FeatureWord::Incompat, INCOMPAT_METADIR, "metadir"),
    (FeatureWord::RoCompat, RO_COMPAT_FINOBT, "finobt"),
    (FeatureWord::RoCompat, RO_COMPAT_RMAPBT, "rmapbt"),
    (FeatureWord::RoCompat, RO_COMPAT_REFLINK, "reflink"),
    (FeatureWord::RoCompat, RO_COMPAT_INOBTCNT, "inobtcount"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureWord {
    Incompat,
    RoCompat,
}

// AG free space header (sector 1 of the AG).
pub const AGF_MAGIC: &[u8; 4] = b"XAGF";
pub const AGF_VERSIONNUM: usize = 4;
pub const AGF_SEQNO: usize = 8;
pub const AGF_LENGTH: usize = 12;
pub const AGF_BNO_ROOT: usize = 16;
pub const AGF_CNT_ROOT: usize = 20;
pub const AGF_BNO_LEVEL: usize = 28;
pub const AGF_CNT_LEVEL: usize = 32;
pub const AGF_FLFIRST: usize = 40;
pub const AGF_FLLAST: usize = 44;
pub const AGF_FLCOUNT: usize = 48;
pub const AGF_FREEBLKS: usize = 52;
pub const AGF_LONGEST: usize = 56;
pub const AGF_UUID: usize = 64;
pub const AGF_CRC: usize = 216;

// AG inode header (sector 2 of the AG).
pub const AGI_MAGIC: &[u8; 4] = b"XAGI";
pub const AGI_VERSIONNUM: usize = 4;
pub const AGI_SEQNO: usize = 8;
pub const AGI_LENGTH: usize = 12;
pub const AGI_COUNT: usize = 16;
pub const AGI_ROOT: usize = 20;
pub const AGI_LEVEL: usize = 24;
pub const AGI_FREECOUNT: usize = 28;
pub const AGI_NEWINO: usize = 32;
pub const AGI_DIRINO: usize = 36;
pub const AGI_UNLINKED: usize = 40;
pub const AGI_UNLINKED_LEN: usize = 64 * 4;
pub const AGI_UUID: usize = 296;
pub const AGI_CRC: usize = 312;

// AG free list (sector 3 of the AG).
pub const AGFL_MAGIC: &[u8; 4] = b"XAFL";
pub const AGFL_SEQNO: usize = 4;
pub const AGFL_UUID: usize = 8;
pub const AGFL_CRC: usize = 32;
pub const AGFL_BNO: usize = 36;

pub const NULL32: u32 = 0xFFFF_FFFF;
pub const NULL64: u64 = u64::MAX;

// Short-pointer btree blocks (free space and inode btrees).
pub const BNOBT_MAGIC: &[u8; 4] = b"AB3B";
pub const CNTBT_MAGIC: &[u8; 4] = b"AB3C";
pub const INOBT_MAGIC: &[u8; 4] = b"IAB3";
pub const SBT_LEVEL: usize = 4;
pub const SBT_NUMRECS: usize = 6;
pub const SBT_LEFTSIB: usize = 8;
pub const SBT_RIGHTSIB: usize = 12;
pub const SBT_BLKNO: usize = 16;
pub const SBT_UUID: usize = 32;
pub const SBT_OWNER: usize = 48;
pub const SBT_CRC: usize = 52;
pub const SBT_HDR: usize = 56;

// Long-pointer btree blocks (the block map of an inode fork).
pub const BMBT_MAGIC: &[u8; 4] = b"BMA3";
pub const LBT_LEVEL: usize = 4;
pub const LBT_NUMRECS: usize = 6;
pub const LBT_LEFTSIB: usize = 8;
pub const LBT_RIGHTSIB: usize = 16;
pub const LBT_BLKNO: usize = 24;
pub const LBT_UUID: usize = 40;
pub const LBT_OWNER: usize = 56;
pub const LBT_CRC: usize = 64;
pub const LBT_HDR: usize = 72;
/// The root of a block map inside the inode: level u16, numrecs u16.
pub const BMDR_HDR: usize = 4;

// Inode (v3 core, 176 bytes, then the data fork).
pub const DI_MAGIC: &[u8; 2] = b"IN";
pub const DI_MODE: usize = 2;
pub const DI_VERSION: usize = 4;
pub const DI_FORMAT: usize = 5;
pub const DI_NLINK: usize = 16;
pub const DI_BIG_NEXTENTS: usize = 24;
pub const DI_ATIME: usize = 32;
pub const DI_MTIME: usize = 40;
pub const DI_CTIME: usize = 48;
pub const DI_SIZE: usize = 56;
pub const DI_NBLOCKS: usize = 64;
pub const DI_NEXTENTS: usize = 76;
pub const DI_FORKOFF: usize = 82;
pub const DI_AFORMAT: usize = 83;
pub const DI_FLAGS: usize = 90;
pub const DI_NEXT_UNLINKED: usize = 96;
pub const DI_CRC: usize = 100;
pub const DI_CHANGECOUNT: usize = 104;
pub const DI_FLAGS2: usize = 120;
pub const DI_CRTIME: usize = 144;
pub const DI_INO: usize = 152;
pub const DI_UUID: usize = 160;
pub const DI_CORE_V3: usize = 176;

pub const FMT_LOCAL: u8 = 1;
pub const FMT_EXTENTS: u8 = 2;
pub const FMT_BTREE: u8 = 3;
pub const DIFLAG_NEWRTBM: u16 = 0x4;
pub const DIFLAG2_BIGTIME: u64 = 0x8;
pub const DIFLAG2_NREXT64: u64 = 0x10;

pub const S_IFMT: u16 = 0o170000;
pub const S_IFDIR: u16 = 0o040000;
pub const S_IFREG: u16 = 0o100000;
pub const S_IFLNK: u16 = 0o120000;

/// An extent record: 128 bits, big-endian (see [`super::Extent`]).
pub const EXTENT_LEN: usize = 16;
/// The longest extent without nrext64: a 21-bit block count.
pub const MAX_EXTENT_BLOCKS: u32 = (1 << 21) - 1;

// Directories (v3: CRC headers, ftype byte in each entry).
pub const DIR3_BLOCK_MAGIC: &[u8; 4] = b"XDB3";
pub const DIR3_DATA_MAGIC: &[u8; 4] = b"XDD3";
pub const DIR3_FREE_MAGIC: &[u8; 4] = b"XDF3";
pub const DIR3_LEAF1_MAGIC: u16 = 0x3DF1;
pub const DIR3_LEAFN_MAGIC: u16 = 0x3DFF;
pub const DA3_NODE_MAGIC: u16 = 0x3EBE;
/// xfs_dir3_blk_hdr: magic, crc, blkno, lsn, uuid, owner.
pub const DIR3_CRC: usize = 4;
pub const DIR3_BLKNO: usize = 8;
pub const DIR3_UUID: usize = 24;
pub const DIR3_OWNER: usize = 40;
/// Data block header: the block header, bestfree[3] {offset, length}, pad.
pub const DIR3_BESTFREE: usize = 48;
pub const DIR3_DATA_HDR: usize = 64;
/// Free index header: the block header, firstdb, nvalid, nused, pad.
pub const DIR3_FREE_FIRSTDB: usize = 48;
pub const DIR3_FREE_NVALID: usize = 52;
pub const DIR3_FREE_NUSED: usize = 56;
pub const DIR3_FREE_HDR: usize = 64;
/// xfs_da3_blkinfo: forw, back, magic u16, pad, crc, blkno, lsn, uuid, owner; then
/// count u16 and level/stale u16, pad.
pub const DA3_FORW: usize = 0;
pub const DA3_BACK: usize = 4;
pub const DA3_MAGIC: usize = 8;
pub const DA3_CRC: usize = 12;
pub const DA3_BLKNO: usize = 16;
pub const DA3_UUID: usize = 32;
pub const DA3_OWNER: usize = 48;
pub const DA3_COUNT: usize = 56;
pub const DA3_LEVEL: usize = 58;
pub const DA3_HDR: usize = 64;
/// Unused space in a data block starts with this tag.
pub const DIR_FREE_TAG: u16 = 0xFFFF;
/// Directory logical blocks: data from 0, leaves and nodes from 32 GiB, free index
/// blocks from 64 GiB (byte offsets in the directory's address space).
pub const DIR_LEAF_OFFSET: u64 = 1 << 35;
pub const DIR_FREE_OFFSET: u64 = 1 << 36;
/// Shortform directory: count u8, i8count u8, parent (4 or 8 bytes).
pub const SF_HDR4: usize = 6;

pub const FT_REG_FILE: u8 = 1;
pub const FT_DIR: u8 = 2;
pub const FT_SYMLINK: u8 = 7;

// Remote symlink block header.
pub const SYMLINK_MAGIC: &[u8; 4] = b"XSLM";
pub const SYMLINK_OFFSET: usize = 4;
pub const SYMLINK_BYTES: usize = 8;
pub const SYMLINK_CRC: usize = 12;
pub const SYMLINK_UUID: usize = 16;
pub const SYMLINK_OWNER: usize = 32;
pub const SYMLINK_BLKNO: usize = 40;
pub const SYMLINK_HDR: usize = 56;
/// The longest symlink target (MAXPATHLEN).
pub const SYMLINK_MAXLEN: usize = 1024;

// Log record header (xlog_rec_header) and the unmount record of a clean log.
pub const LOG_MAGIC: u32 = 0xFEED_BABE;
pub const LOG_VERSION_2: u32 = 2;
pub const LOG_CYCLE_DATA: usize = 44;
pub const LOG_FMT: usize = 0x12C;
pub const LOG_UUID: usize = 0x130;
pub const LOG_SIZE: usize = 0x140;
/// The first word of the unmount record's op header (its transaction id), which the
/// cycle stamp replaces on disk and the header keeps in cycle_data[0].
pub const LOG_UNMOUNT_TID: u32 = 0xB0C0_D0D0;
pub const LOG_CLIENT_ID: u8 = 0xAA;
pub const LOG_UNMOUNT_TRANS: u8 = 0x20;
pub const LOG_UNMOUNT_TYPE: u16 = 0x556E;
pub const LOG_ICLOG_SIZE: u32 = 32 * 1024;
