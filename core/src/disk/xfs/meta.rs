//! Writing the superblock, the AG headers and the clean log.

use super::btree::ChunkRec;
use super::geometry::{AgBlock, Geometry, BLOCK_LOG, INODE, INODE_ALIGN, INODE_LOG, INOPBLOG};
use super::raw::*;
use super::write::{Buf, XfsOptions};
use crate::guid::Guid;

/// The volume-wide counters of the superblock.
pub struct Counts {
    pub icount: u64,
    pub ifree: u64,
    pub fdblocks: u64,
}

fn sector_buf(g: &Geometry) -> Buf {
    Buf::new(usize::try_from(g.sector).unwrap_or(512))
}

/// log2 of the sector size (512 or 4096, checked by the geometry).
fn sector_log(g: &Geometry) -> u8 {
    u8::try_from(g.sector.trailing_zeros()).unwrap_or(9)
}

/// The superblock, as every AG's first sector holds it.
pub fn superblock(g: &Geometry, o: &XfsOptions, c: &Counts) -> Vec<u8> {
    let mut b = sector_buf(g);
    let four_k = g.sector != 512;
    b.bytes(0, SB_MAGIC);
    b.u32(SB_BLOCKSIZE, 1 << BLOCK_LOG);
    b.u64(SB_DBLOCKS, g.dblocks);
    b.bytes(SB_UUID, &o.uuid.0);
    b.u64(
        SB_LOGSTART,
        g.fsb(AgBlock {
            ag: g.log_ag,
            agbno: g.log_agbno,
        }),
    );
    let root = g.root_ino();
    b.u64(SB_ROOTINO, root);
    b.u64(SB_RBMINO, root.saturating_add(1));
    b.u64(SB_RSUMINO, root.saturating_add(2));
    b.u32(SB_REXTSIZE, 1);
    b.u32(SB_AGBLOCKS, g.agblocks);
    b.u32(SB_AGCOUNT, g.agcount);
    b.u32(SB_LOGBLOCKS, g.log_blocks);
    let version = if four_k {
        VERSION_V5 | VERSION_SECTOR
    } else {
        VERSION_V5
    };
    b.u16(SB_VERSIONNUM, version);
    b.u16(SB_SECTSIZE, u16::try_from(g.sector).unwrap_or(512));
    b.u16(SB_INODESIZE, u16::try_from(INODE).unwrap_or(512));
    b.u16(SB_INOPBLOCK, 1 << INOPBLOG);
    b.bytes(SB_FNAME, o.label.as_bytes());
    b.u8(SB_BLOCKLOG, BLOCK_LOG);
    b.u8(SB_SECTLOG, sector_log(g));
    b.u8(SB_INODELOG, INODE_LOG);
    b.u8(SB_INOPBLOG, INOPBLOG);
    b.u8(SB_AGBLKLOG, g.agblklog);
    b.u8(SB_IMAX_PCT, g.imax_pct());
    b.u64(SB_ICOUNT, c.icount);
    b.u64(SB_IFREE, c.ifree);
    b.u64(SB_FDBLOCKS, c.fdblocks);
    b.u32(SB_INOALIGNMT, INODE_ALIGN);
    // A 512-byte log sector is recorded as 0; mkfs sets the log stripe unit to the
    // log sector size with 4 KiB sectors, else to 1 (none).
    if four_k {
        b.u8(SB_LOGSECTLOG, sector_log(g));
        b.u16(SB_LOGSECTSIZE, u16::try_from(g.sector).unwrap_or(0));
        b.u32(SB_LOGSUNIT, u32::try_from(g.sector).unwrap_or(1));
    } else {
        b.u32(SB_LOGSUNIT, 1);
    }
    b.u32(SB_FEATURES2, FEATURES2_V5);
    b.u32(SB_BAD_FEATURES2, FEATURES2_V5);
    b.u32(SB_FEATURES_INCOMPAT, INCOMPAT_FTYPE | INCOMPAT_BIGTIME);
    b.seal(SB_CRC)
}

/// The free list holds no block: first 0, last at the end of the list, count 0 (the
/// state xfsprogs starts from; Linux refills it on the first allocation).
fn agfl_slots(g: &Geometry) -> u32 {
    u32::try_from(g.sector.saturating_sub(AGFL_BNO as u64) / 4).unwrap_or(0)
}

pub fn agf(g: &Geometry, ag: u32, free: &[(u32, u32)], uuid: Guid) -> Vec<u8> {
    let mut b = sector_buf(g);
    b.bytes(0, AGF_MAGIC);
    b.u32(AGF_VERSIONNUM, 1);
    b.u32(AGF_SEQNO, ag);
    b.u32(AGF_LENGTH, g.ag_len(ag));
    b.u32(AGF_BNO_ROOT, g.bno_root());
    b.u32(AGF_CNT_ROOT, g.cnt_root());
    b.u32(AGF_BNO_LEVEL, 1);
    b.u32(AGF_CNT_LEVEL, 1);
    b.u32(AGF_FLFIRST, 0);
    b.u32(AGF_FLLAST, agfl_slots(g).saturating_sub(1));
    b.u32(AGF_FLCOUNT, 0);
    let total: u64 = free.iter().map(|&(_, l)| u64::from(l)).sum();
    b.u32(AGF_FREEBLKS, u32::try_from(total).unwrap_or(0));
    b.u32(AGF_LONGEST, free.iter().map(|&(_, l)| l).max().unwrap_or(0));
    b.bytes(AGF_UUID, &uuid.0);
    b.seal(AGF_CRC)
}

/// The AGI of an AG whose inode btree (root block `root`, `levels` high) indexes
/// `recs`.
pub fn agi(
    g: &Geometry,
    ag: u32,
    recs: &[ChunkRec],
    root: u32,
    levels: u32,
    uuid: Guid,
) -> Vec<u8> {
    let mut b = sector_buf(g);
    b.bytes(0, AGI_MAGIC);
    b.u32(AGI_VERSIONNUM, 1);
    b.u32(AGI_SEQNO, ag);
    b.u32(AGI_LENGTH, g.ag_len(ag));
    let count = (recs.len() as u64).saturating_mul(64);
    let free: u64 = recs.iter().map(|r| u64::from(r.free.count_ones())).sum();
    b.u32(AGI_COUNT, u32::try_from(count).unwrap_or(u32::MAX));
    b.u32(AGI_ROOT, root);
    b.u32(AGI_LEVEL, levels);
    b.u32(AGI_FREECOUNT, u32::try_from(free).unwrap_or(u32::MAX));
    b.u32(AGI_NEWINO, recs.last().map_or(NULL32, |r| r.agino));
    b.u32(AGI_DIRINO, NULL32);
    b.bytes(AGI_UNLINKED, &[0xFF; AGI_UNLINKED_LEN]);
    b.bytes(AGI_UUID, &uuid.0);
    b.seal(AGI_CRC)
}

pub fn agfl(g: &Geometry, ag: u32, uuid: Guid) -> Vec<u8> {
    let mut b = sector_buf(g);
    b.bytes(0, AGFL_MAGIC);
    b.u32(AGFL_SEQNO, ag);
    b.bytes(AGFL_UUID, &uuid.0);
    let slots = usize::try_from(g.sector)
        .unwrap_or(512)
        .saturating_sub(AGFL_BNO);
    b.bytes(AGFL_BNO, &vec![0xFF; slots]);
    b.seal(AGFL_CRC)
}

/// The start of a clean log, as `xfs_log_clear` writes it for cycle 1: one record
/// header and an unmount record. The record spans the log stripe unit (one 512-byte
/// block of data, or the rest of a 4 KiB sector); the first word of each of its
/// data blocks is replaced by the cycle number, the header keeps the originals.
pub fn log_record(g: &Geometry, uuid: Guid) -> Vec<u8> {
    const BB: usize = 512;
    let len = usize::try_from(g.sector).unwrap_or(BB).max(2 * BB);
    let mut b = Buf::new(len);
    let lsn = 1u64 << 32;
    b.u32(0, LOG_MAGIC);
    b.u32(4, 1);
    b.u32(8, LOG_VERSION_2);
    b.u32(12, u32::try_from(len.saturating_sub(BB)).unwrap_or(0));
    b.u64(16, lsn);
    b.u64(24, lsn);
    b.u32(36, NULL32);
    b.u32(40, 1);
    b.u32(LOG_CYCLE_DATA, LOG_UNMOUNT_TID);
    b.u32(LOG_FMT, 1);
    b.bytes(LOG_UUID, &uuid.0);
    b.u32(LOG_SIZE, LOG_ICLOG_SIZE);
    for bb in (BB..len).step_by(BB) {
        b.u32(bb, 1);
    }
    // The unmount record: an op header (length 8, the log client, UNMOUNT) and
    // its magic, little-endian as Linux writes it.
    b.u32(BB + 4, 8);
    b.u8(BB + 8, LOG_CLIENT_ID);
    b.u8(BB + 9, LOG_UNMOUNT_TRANS);
    b.bytes(BB + 12, &LOG_UNMOUNT_TYPE.to_le_bytes());
    b.into_inner()
}
