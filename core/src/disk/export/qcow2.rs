//! qcow2 version 3 (QEMU's docs/interop/qcow2.txt): 64 KiB clusters, 16-bit refcounts,
//! no backing file, no compression, no snapshots. Only clusters that hold a non-zero
//! byte are allocated; the rest read as zero.
//!
//! Layout, in clusters: the header; the refcount table; its refcount blocks; the L1
//! table; the L2 tables that map something; the data clusters in guest order. Every
//! cluster used has refcount 1, so every L1 and L2 entry carries QCOW_OFLAG_COPIED, as
//! `qemu-img check` expects.

use std::collections::VecDeque;

use super::{nonzero_units, overflow, Piece};
use crate::disk::DiskImage;
use crate::error::Result;

/// The layout constants (all fields big-endian).
pub mod raw {
    pub const MAGIC: &[u8; 4] = b"QFI\xfb";
    pub const VERSION: u32 = 3;
    pub const CLUSTER_BITS: u32 = 16;
    pub const CLUSTER_SIZE: u64 = 1 << CLUSTER_BITS;
    /// Refcounts are 2^4 = 16 bits wide.
    pub const REFCOUNT_ORDER: u32 = 4;
    pub const REFCOUNT_BYTES: u64 = 2;
    /// The v3 header without the optional fields after `header_length`.
    pub const HEADER_LENGTH: u32 = 104;
    /// Set on L1/L2 entries of clusters whose refcount is exactly 1.
    pub const OFLAG_COPIED: u64 = 1 << 63;
    /// 8-byte table entries: L1, L2, refcount table.
    pub const ENTRY: u64 = 8;
    pub const CLUSTER_BYTES: usize = 1 << CLUSTER_BITS;
    pub const REFCOUNT_WIDTH: usize = 2;
}

use raw::{CLUSTER_SIZE as CS, ENTRY};

/// Clusters needed for `entries` table entries of `width` bytes.
fn clusters_for(entries: u64, width: u64) -> Result<u64> {
    Ok(entries
        .checked_mul(width)
        .ok_or_else(|| overflow("qcow2 table size"))?
        .div_ceil(CS))
}

/// A table of big-endian u64 entries, `clusters` long, with `set` entries filled in.
fn table(clusters: u64, set: impl IntoIterator<Item = (u64, u64)>) -> Result<Vec<u8>> {
    let len = clusters
        .checked_mul(CS)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| overflow("qcow2 table"))?;
    let mut t = vec![0u8; len];
    for (i, v) in set {
        let at = usize::try_from(i.saturating_mul(ENTRY)).unwrap_or(usize::MAX);
        if let Some(slot) = at.checked_add(8).and_then(|end| t.get_mut(at..end)) {
            slot.copy_from_slice(&v.to_be_bytes());
        }
    }
    Ok(t)
}

/// The header cluster.
fn header(size: u64, l1_size: u64, l1_at: u64, rt_at: u64, rt_clusters: u64) -> Result<Vec<u8>> {
    let l1_size = u32::try_from(l1_size).map_err(|_| overflow("qcow2 L1 size"))?;
    let rt_clusters = u32::try_from(rt_clusters).map_err(|_| overflow("qcow2 refcount table"))?;
    let mut h = Vec::with_capacity(raw::CLUSTER_BYTES);
    h.extend_from_slice(raw::MAGIC); // 0 magic
    h.extend_from_slice(&raw::VERSION.to_be_bytes()); // 4 version
    h.extend_from_slice(&0u64.to_be_bytes()); // 8 backing_file_offset
    h.extend_from_slice(&0u32.to_be_bytes()); // 16 backing_file_size
    h.extend_from_slice(&raw::CLUSTER_BITS.to_be_bytes()); // 20 cluster_bits
    h.extend_from_slice(&size.to_be_bytes()); // 24 size
    h.extend_from_slice(&0u32.to_be_bytes()); // 32 crypt_method
    h.extend_from_slice(&l1_size.to_be_bytes()); // 36 l1_size
    h.extend_from_slice(&l1_at.to_be_bytes()); // 40 l1_table_offset
    h.extend_from_slice(&rt_at.to_be_bytes()); // 48 refcount_table_offset
    h.extend_from_slice(&rt_clusters.to_be_bytes()); // 56 refcount_table_clusters
    h.extend_from_slice(&0u32.to_be_bytes()); // 60 nb_snapshots
    h.extend_from_slice(&0u64.to_be_bytes()); // 64 snapshots_offset
    h.extend_from_slice(&0u64.to_be_bytes()); // 72 incompatible_features
    h.extend_from_slice(&0u64.to_be_bytes()); // 80 compatible_features
    h.extend_from_slice(&0u64.to_be_bytes()); // 88 autoclear_features
    h.extend_from_slice(&raw::REFCOUNT_ORDER.to_be_bytes()); // 96 refcount_order
    h.extend_from_slice(&raw::HEADER_LENGTH.to_be_bytes()); // 100 header_length
                                                            // 104: the header extension area, ended by an end-of-extensions entry (type 0,
                                                            // length 0): the zeros that fill the rest of the cluster.
    h.resize(raw::CLUSTER_BYTES, 0);
    Ok(h)
}

/// The pieces of a qcow2 file holding `img`, and the file's length.
pub(crate) fn plan(img: &DiskImage<'_>) -> Result<(VecDeque<Piece>, u64)> {
    let data = nonzero_units(img, CS)?;
    let l2_entries = CS / ENTRY;
    let guest_clusters = img.size.div_ceil(CS);
    let l1_size = guest_clusters.div_ceil(l2_entries).max(1);
    let l1_clusters = clusters_for(l1_size, ENTRY)?.max(1);
    let mut l2_tables: Vec<u64> = data.iter().map(|u| u / l2_entries).collect();
    l2_tables.dedup();
    let count = |n: usize| n as u64;
    // Clusters other than refcount structures; then size the refcount table and blocks,
    // which count themselves, until they stop growing.
    let fixed = 1u64
        .checked_add(l1_clusters)
        .and_then(|n| n.checked_add(count(l2_tables.len())))
        .and_then(|n| n.checked_add(count(data.len())))
        .ok_or_else(|| overflow("qcow2 cluster count"))?;
    let per_block = CS / raw::REFCOUNT_BYTES;
    let (mut rt, mut rb) = (1u64, 1u64);
    loop {
        let total = fixed
            .checked_add(rt)
            .and_then(|n| n.checked_add(rb))
            .ok_or_else(|| overflow("qcow2 cluster count"))?;
        let rb2 = total.div_ceil(per_block);
        let rt2 = clusters_for(rb2, ENTRY)?;
        if (rb2, rt2) == (rb, rt) {
            break;
        }
        (rb, rt) = (rb2.max(rb), rt2.max(rt));
    }
    let at = |cluster: u64| {
        cluster
            .checked_mul(CS)
            .ok_or_else(|| overflow("qcow2 offset"))
    };
    let rt_at = 1u64;
    let rb_at = rt_at.saturating_add(rt);
    let l1_at = rb_at.saturating_add(rb);
    let l2_at = l1_at.saturating_add(l1_clusters);
    let data_at = l2_at.saturating_add(count(l2_tables.len()));
    let total = data_at.saturating_add(count(data.len()));

    let mut q = VecDeque::new();
    q.push_back(Piece::Bytes(header(
        img.size,
        l1_size,
        at(l1_at)?,
        at(rt_at)?,
        rt,
    )?));
    let rt_entries = (0..rb).map(|i| Ok((i, at(rb_at.saturating_add(i))?)));
    q.push_back(Piece::Bytes(table(
        rt,
        rt_entries.collect::<Result<Vec<_>>>()?,
    )?));
    q.push_back(Piece::Bytes(refcount_blocks(rb, total)?));
    let l1 = l2_tables
        .iter()
        .zip(l2_at..)
        .map(|(&t, c)| Ok((t, at(c)? | raw::OFLAG_COPIED)));
    q.push_back(Piece::Bytes(table(
        l1_clusters,
        l1.collect::<Result<Vec<_>>>()?,
    )?));
    let mut next_data = data_at;
    for &t in &l2_tables {
        let mut entries = Vec::new();
        for &u in data.iter().filter(|&&u| u / l2_entries == t) {
            entries.push((u % l2_entries, at(next_data)? | raw::OFLAG_COPIED));
            next_data = next_data.saturating_add(1);
        }
        q.push_back(Piece::Bytes(table(1, entries)?));
    }
    // Data clusters, a run of consecutive guest clusters at a time.
    let mut i = 0usize;
    while let Some(&first) = data.get(i) {
        let mut n = 1usize;
        while data.get(i.saturating_add(n)) == Some(&first.saturating_add(n as u64)) {
            n = n.saturating_add(1);
        }
        q.push_back(Piece::Image {
            offset: at(first)?,
            len: (n as u64).saturating_mul(CS),
        });
        i = i.saturating_add(n);
    }
    Ok((q, at(total)?))
}

/// `rb` refcount blocks giving clusters 0..`used` refcount 1.
fn refcount_blocks(rb: u64, used: u64) -> Result<Vec<u8>> {
    let len = rb
        .checked_mul(CS)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| overflow("qcow2 refcount blocks"))?;
    let mut v = vec![0u8; len];
    let n = usize::try_from(used).unwrap_or(usize::MAX);
    v.chunks_exact_mut(raw::REFCOUNT_WIDTH)
        .take(n)
        .for_each(|c| c.copy_from_slice(&1u16.to_be_bytes()));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{collect, sample};
    use super::super::Format;

    #[test]
    fn qcow2_maps_each_nonzero_cluster() {
        let img = sample();
        let q = collect(&img, Format::Qcow2);
        assert_eq!(&q[..4], b"QFI\xfb");
        // header, refcount table, one refcount block, L1, one L2, 4 data clusters.
        assert_eq!(q.len(), 9 << 16);
        let be = |o: usize| u64::from_be_bytes(q[o..o + 8].try_into().unwrap());
        let l1 = be(40) as usize;
        let l2 = (be(l1) & !super::raw::OFLAG_COPIED) as usize;
        let c48 = (be(l2 + 48 * 8) & !super::raw::OFLAG_COPIED) as usize;
        assert_eq!(&q[c48 + 0x10000 - 8..c48 + 0x10000], &[7; 8]);
        assert_eq!(be(l2 + 8), 0, "cluster 1 is all zero: not allocated");
    }
}
