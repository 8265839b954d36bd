//! XFS volumes for the mutation test: where their metadata is (found by magic,
//! each block confirmed by the volume UUID or its own inode number, so file data
//! never matches), the fields worth changing there, and the CRCs to recompute so
//! the reader gets past its checksum checks with the changed values.

use ukitool_core::disk::xfs::raw::*;
use ukitool_core::disk::xfs::{block_crc, read_volume, FileType};

use super::mutate::{f, Case, Field, Kind, Rng, Stats, Target};

/// A checksummed metadata block: where it is, how long, where its CRC lies.
#[derive(Clone, Debug)]
pub struct CrcBlock {
    pub at: usize,
    pub len: usize,
    pub crc_at: usize,
}

fn be(d: &[u8], at: usize, w: usize) -> u64 {
    d.get(at..at + w)
        .map_or(0, |b| b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
}

/// Every metadata block of `vol` (a volume ukitool or mkfs.xfs wrote, unmutated).
pub fn catalog(vol: &[u8]) -> Vec<CrcBlock> {
    let sect = be(vol, SB_SECTSIZE, 2) as usize;
    let block = be(vol, SB_BLOCKSIZE, 4) as usize;
    let inode = be(vol, SB_INODESIZE, 2) as usize;
    let dir_block = block << vol[SB_DIRBLKLOG];
    let (inopblog, agblklog) = (u32::from(vol[SB_INOPBLOG]), u32::from(vol[SB_AGBLKLOG]));
    let agblocks = be(vol, SB_AGBLOCKS, 4) as usize;
    let uuid = &vol[SB_UUID..SB_UUID + 16];
    let uuid_at = |p: usize, off: usize| vol.get(p + off..p + off + 16) == Some(uuid);
    let mut out = Vec::new();
    let mut p = 0;
    while p + 512 <= vol.len() {
        let magic = &vol[p..p + 4];
        let hdr = [
            (&SB_MAGIC[..], SB_CRC, SB_UUID),
            (&AGF_MAGIC[..], AGF_CRC, AGF_UUID),
            (&AGI_MAGIC[..], AGI_CRC, AGI_UUID),
            (&AGFL_MAGIC[..], AGFL_CRC, AGFL_UUID),
        ];
        if let Some((_, crc_at, u)) = hdr.iter().find(|h| h.0 == magic) {
            if uuid_at(p, *u) && p % sect == 0 {
                out.push(CrcBlock {
                    at: p,
                    len: sect,
                    crc_at: *crc_at,
                });
            }
        }
        if p % inode == 0 && &magic[..2] == DI_MAGIC && vol[p + DI_VERSION] == 3 {
            // The inode number this position has (xfs_format.h XFS_INO_TO_*).
            let (fsb, slot) = (p / block, (p % block) / inode);
            let (ag, agbno) = (fsb / agblocks, fsb % agblocks);
            let ino = (((ag << agblklog) | agbno) << inopblog) | slot;
            if be(vol, p + DI_INO, 8) == ino as u64 && uuid_at(p, DI_UUID) {
                out.push(CrcBlock {
                    at: p,
                    len: inode,
                    crc_at: DI_CRC,
                });
            }
        }
        if p % block == 0 {
            let da = be(vol, p + DA3_MAGIC, 2) as u16;
            let dir3 = [
                &DIR3_BLOCK_MAGIC[..],
                &DIR3_DATA_MAGIC[..],
                &DIR3_FREE_MAGIC[..],
            ];
            let found = if dir3.contains(&magic) {
                Some((dir_block, DIR3_CRC, DIR3_UUID))
            } else if [DIR3_LEAF1_MAGIC, DIR3_LEAFN_MAGIC, DA3_NODE_MAGIC].contains(&da) {
                Some((dir_block, DA3_CRC, DA3_UUID))
            } else if magic == &BMBT_MAGIC[..] {
                Some((block, LBT_CRC, LBT_UUID))
            } else if magic == &SYMLINK_MAGIC[..] {
                Some((block, SYMLINK_CRC, SYMLINK_UUID))
            } else {
                None
            };
            if let Some((len, crc_at, u)) = found {
                if uuid_at(p, u) && p + len <= vol.len() {
                    out.push(CrcBlock { at: p, len, crc_at });
                }
            }
        }
        p += 512;
    }
    out
}

/// The fields worth changing: the superblock's geometry and features, and in every
/// inode its mode, fork format, sizes, extent count and fork offset, plus the first
/// records of its data fork; in every directory block its header and first entry.
fn fields(vol: &[u8], blocks: &[CrcBlock]) -> Vec<Field> {
    let mut v = Vec::new();
    for (at, w, n) in [
        (SB_BLOCKSIZE, 4, "blocksize"),
        (SB_DBLOCKS, 8, "dblocks"),
        (SB_ROOTINO, 8, "rootino"),
        (SB_AGBLOCKS, 4, "agblocks"),
        (SB_AGCOUNT, 4, "agcount"),
        (SB_VERSIONNUM, 2, "versionnum"),
        (SB_SECTSIZE, 2, "sectsize"),
        (SB_INODESIZE, 2, "inodesize"),
        (SB_INOPBLOCK, 2, "inopblock"),
        (SB_BLOCKLOG, 1, "blocklog"),
        (SB_INODELOG, 1, "inodelog"),
        (SB_INOPBLOG, 1, "inopblog"),
        (SB_AGBLKLOG, 1, "agblklog"),
        (SB_DIRBLKLOG, 1, "dirblklog"),
        (SB_FEATURES2, 4, "features2"),
        (SB_FEATURES_RO_COMPAT, 4, "ro_compat"),
        (SB_FEATURES_INCOMPAT, 4, "incompat"),
    ] {
        f(&mut v, at, w, format!("sb.{n}"));
    }
    for b in blocks {
        let p = b.at;
        if b.crc_at == DI_CRC && &vol[p..p + 2] == DI_MAGIC {
            for (off, w, n) in [
                (DI_MODE, 2, "mode"),
                (DI_FORMAT, 1, "format"),
                (DI_SIZE, 8, "size"),
                (DI_NBLOCKS, 8, "nblocks"),
                (DI_NEXTENTS, 4, "nextents"),
                (DI_FORKOFF, 1, "forkoff"),
                (DI_FLAGS2, 8, "flags2"),
                (DI_CORE_V3, 2, "fork[0..2]"),
                (DI_CORE_V3 + 6, 4, "fork[6..10]"),
            ] {
                f(&mut v, p + off, w, format!("inode@{p:#x}.{n}"));
            }
            for k in 0..3 {
                let r = p + DI_CORE_V3 + EXTENT_LEN * k;
                f(&mut v, r, 8, format!("inode@{p:#x}.rec[{k}].hi"));
                f(&mut v, r + 8, 8, format!("inode@{p:#x}.rec[{k}].lo"));
            }
        } else if b.crc_at == DIR3_CRC || b.crc_at == DA3_CRC {
            for (off, w, n) in [
                (DA3_FORW, 4, "forw"),
                (DA3_COUNT, 2, "count"),
                (DA3_LEVEL, 2, "level"),
                (DIR3_BESTFREE, 4, "bestfree[0]"),
                (DIR3_DATA_HDR, 8, "first.ino"),
                (DIR3_DATA_HDR + 8, 1, "first.namelen"),
                (DA3_HDR, 8, "first.hash/before"),
                (b.len - 8, 4, "tail.count"),
                (b.len - 4, 4, "tail.stale"),
            ] {
                f(&mut v, p + off, w, format!("dir@{p:#x}.{n}"));
            }
        } else if b.crc_at == LBT_CRC {
            for (off, w, n) in [
                (LBT_LEVEL, 2, "level"),
                (LBT_NUMRECS, 2, "numrecs"),
                (LBT_HDR, 8, "first"),
            ] {
                f(&mut v, p + off, w, format!("bmbt@{p:#x}.{n}"));
            }
        }
    }
    v
}

/// A mutation target: a GPT disk whose partition `vol` (a byte range) holds an XFS
/// volume. The fields and blocks are those of the volume, placed on the disk.
pub fn xfs_target(name: &'static str, data: Vec<u8>, vol: (usize, usize)) -> Target {
    // The unmutated volume reads cleanly: every problem a case shows is the mutation's.
    let clean = read_volume(&data[vol.0..vol.1]).unwrap();
    assert_eq!(clean.problems, Vec::<String>::new(), "{name}");
    let mut blocks = catalog(&data[vol.0..vol.1]);
    assert!(
        blocks.iter().filter(|b| b.crc_at == DI_CRC).count() > 3,
        "{name}: no inodes found"
    );
    let mut fields = fields(&data[vol.0..vol.1], &blocks);
    eprintln!(
        "{name}: {} metadata blocks ({} inodes), {} fields, {} entries",
        blocks.len(),
        blocks.iter().filter(|b| b.crc_at == DI_CRC).count(),
        fields.len(),
        clean.entries.len()
    );
    for b in &mut blocks {
        b.at += vol.0;
    }
    for fl in &mut fields {
        fl.at += vol.0;
    }
    let hot = (
        vol.0,
        blocks
            .iter()
            .map(|b| b.at + b.len)
            .max()
            .unwrap_or(vol.0 + 4096),
    );
    Target {
        name,
        kind: Kind::Xfs,
        data,
        fields,
        der: Vec::new(),
        fat: Vec::new(),
        esp: Some(vol),
        hot,
        crc_blocks: blocks,
    }
}

/// One XFS mutation: a field (big-endian), a byte inside a metadata block, or a cut.
pub fn mutate_xfs(rng: &mut Rng, t: &mut Target, c: &mut Case, file_len: u64) {
    let r = rng.below(100);
    if r < 60 {
        let fl = rng.pick(&t.fields).clone();
        let orig = be(&t.data, fl.at, fl.width);
        let v = super::mutate::value(rng, orig, fl.width, file_len);
        c.desc += &format!("{}={v:#x} ", fl.name);
        write_be(c, &mut t.data, fl.at, fl.width, v);
    } else if r < 92 {
        let b = rng.pick(&t.crc_blocks).clone();
        let at = b.at + rng.below(b.len as u64) as usize;
        let v = rng.below(256);
        c.desc += &format!("byte@{at:#x}={v:#x} ");
        c.write(&mut t.data, at, 1, v);
    } else {
        let cut = rng.below(t.data.len() as u64) as usize;
        c.len = c.len.min(cut);
        c.desc += &format!("truncate={cut:#x} ");
    }
}

fn write_be(c: &mut Case, d: &mut [u8], at: usize, w: usize, v: u64) {
    for i in 0..w {
        c.write(d, at + i, 1, v >> (8 * (w - 1 - i)));
    }
}

/// Recompute the CRC of every catalogued block a mutation changed.
pub fn fix_crcs(t: &mut Target, c: &mut Case) {
    let touched: Vec<usize> = c.undo.iter().map(|u| u.0).collect();
    let blocks: Vec<CrcBlock> = t
        .crc_blocks
        .iter()
        .filter(|b| touched.iter().any(|&p| (b.at..b.at + b.len).contains(&p)))
        .cloned()
        .collect();
    for b in blocks {
        let crc = block_crc(&t.data[b.at..b.at + b.len], b.crc_at);
        // XFS stores its CRCs little-endian.
        c.write(&mut t.data, b.at + b.crc_at, 4, u64::from(crc));
    }
    c.desc += "(crc fixed)";
}

/// The reader on a (mutated) volume, then every file's bytes; the disk report, and
/// `extract`'s view of the disk's partitions.
pub fn run_xfs(st: &mut Stats, desc: &str, d: &[u8], vol: (usize, usize)) {
    let n = d.len();
    let d_all = d;
    let d = d.get(vol.0..vol.1.min(n)).unwrap_or_default();
    st.op(desc, d.len(), "xfs", true, || {
        let v = read_volume(d);
        if let Ok(v) = &v {
            for e in v.entries.iter().filter(|e| e.kind == FileType::File) {
                let _ = v.file_bytes(d, e);
            }
            // What the reader found broken below the root is listed, not an error.
            if !v.problems.is_empty() {
                return "ok-with-problems".into();
            }
        }
        super::mutate::kind_of(&v)
    });
    st.op(desc, n, "inspect_disk", true, || {
        super::mutate::kind_of(&ukitool_core::disk::inspect::inspect_disk(d_all))
    });
    st.op(desc, n, "disk-files", true, || {
        let parts = ukitool_core::disk::files::partitions(d_all);
        if let Ok(ps) = &parts {
            for p in ps {
                for path in p.files() {
                    let _ = p.read(path);
                }
            }
        }
        super::mutate::kind_of(&parts)
    });
}
