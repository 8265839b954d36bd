//! qcow2 (QEMU copy-on-write, versions 2 and 3) read as the virtual disk it holds.
//!
//! Layout (docs/interop/qcow2.txt in QEMU; all fields big-endian): a header at 0, an L1
//! table of 8-byte entries each naming an L2 table of one cluster, whose 8-byte entries
//! name the host cluster holding each guest cluster. Handled: standard clusters,
//! unallocated ones and v3 "all zeros" ones (both read as zero: there is no backing
//! file), and zlib-compressed clusters. Refused with a reason: a backing file, an
//! encrypted image, an external data file, extended L2 entries, zstd compression and
//! an image marked corrupt.

use std::cell::RefCell;

use super::{be32, be64, push_extent, read_blocks, read_inner, Extent, VirtualDisk};
use crate::error::{Error, Result};
use crate::readat::ReadAt;

pub const MAGIC: &[u8] = b"QFI\xfb";
/// The v2 header's length; v3 declares its own (at least 104).
const V2_HEADER_LEN: usize = 72;
/// Offset bits of an L1 or L2 entry (bits 9-55).
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2_COMPRESSED: u64 = 1 << 62;
const L2_ZERO: u64 = 1;
/// Incompatible feature bits (header offset 72, v3).
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_EXTL2: u64 = 1 << 4;
/// Bits a reader may ignore: dirty (refcounts only) and the compression type (checked
/// from its own field).
const INCOMPAT_KNOWN: u64 = 1 | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | (1 << 3) | INCOMPAT_EXTL2;

/// What one guest cluster is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cluster {
    Zero,
    At(u64),
    /// zlib (raw deflate) data at host offset, at most this many bytes long.
    Compressed(u64, u64),
}

/// An open qcow2 image over `R`.
pub struct Qcow2<R> {
    inner: R,
    version: u32,
    cluster_bits: u32,
    size: u64,
    l1: Vec<u64>,
    /// The last decompressed cluster (guest cluster index, bytes): a stream of reads
    /// inside one compressed cluster inflates it once.
    cache: RefCell<Option<(u64, Vec<u8>)>>,
}

impl<R: ReadAt> Qcow2<R> {
    pub fn open(inner: R) -> Result<Self> {
        let mut h = [0u8; 112];
        let n = usize::try_from(inner.size().min(112)).unwrap_or(0);
        read_inner(
            &inner,
            0,
            h.get_mut(..n).unwrap_or_default(),
            "qcow2 header",
        )?;
        let h = h.get(..n).unwrap_or_default();
        if !h.starts_with(MAGIC) {
            return Err(Error::malformed(0, "qcow2 magic QFI\\xfb missing"));
        }
        let version = be32(h, 4, "qcow2 version")?;
        if version != 2 && version != 3 {
            return Err(unsupported(4, format!("qcow2 version {version}")));
        }
        if h.len() < V2_HEADER_LEN {
            return Err(Error::Truncated {
                what: "qcow2 header",
                offset: 0,
                needed: V2_HEADER_LEN as u64,
                available: h.len() as u64,
            });
        }
        if be64(h, 8, "backing file offset")? != 0 {
            return Err(unsupported(
                8,
                "a qcow2 image with a backing file (its data is partly in another file; \
                 `qemu-img convert` it to a standalone image first)"
                    .into(),
            ));
        }
        let cluster_bits = be32(h, 20, "cluster bits")?;
        if !(9..=21).contains(&cluster_bits) {
            return Err(Error::malformed(
                20,
                format!("qcow2 cluster_bits {cluster_bits} outside 9..=21"),
            ));
        }
        let size = be64(h, 24, "virtual size")?;
        if be32(h, 32, "crypt method")? != 0 {
            return Err(unsupported(32, "an encrypted qcow2 image".into()));
        }
        if version == 3 {
            check_v3_features(h)?;
        }
        let l1 = read_l1(&inner, h, cluster_bits, size)?;
        Ok(Qcow2 {
            inner,
            version,
            cluster_bits,
            size,
            l1,
            cache: RefCell::new(None),
        })
    }

    fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits
    }

    /// Entries per L2 table: a cluster of 8-byte entries.
    fn l2_bits(&self) -> u32 {
        self.cluster_bits.saturating_sub(3)
    }

    /// Where guest cluster `index` lives.
    fn cluster(&self, index: u64) -> Result<Cluster> {
        let l1_index = index >> self.l2_bits();
        let l2_index = index & ((1u64 << self.l2_bits()).saturating_sub(1));
        let l1e = usize::try_from(l1_index)
            .ok()
            .and_then(|i| self.l1.get(i).copied())
            .unwrap_or(0);
        let l2_table = l1e & OFFSET_MASK;
        if l2_table == 0 {
            return Ok(Cluster::Zero);
        }
        let at = l2_table
            .checked_add(l2_index.saturating_mul(8))
            .ok_or_else(|| Error::malformed(l2_table, "qcow2 L2 entry offset overflows"))?;
        let mut e = [0u8; 8];
        read_inner(&self.inner, at, &mut e, "qcow2 L2 entry")?;
        self.classify(u64::from_be_bytes(e), at)
    }

    fn classify(&self, entry: u64, at: u64) -> Result<Cluster> {
        if entry & L2_COMPRESSED != 0 {
            // Bits 0..x-1: host offset; x..61: additional 512-byte sectors, x = 62 -
            // (cluster_bits - 8).
            let x = 62u32.saturating_sub(self.cluster_bits.saturating_sub(8));
            let mask = (1u64 << x).saturating_sub(1);
            let host = entry & mask;
            let sectors = (entry & ((1u64 << 62) - 1)) >> x;
            let len = sectors.saturating_add(1).saturating_mul(512);
            return Ok(Cluster::Compressed(host, len));
        }
        if self.version >= 3 && entry & L2_ZERO != 0 {
            return Ok(Cluster::Zero);
        }
        if entry & 0x1ff != 0 && self.version >= 3 {
            return Err(Error::malformed(
                at,
                "qcow2 L2 entry has reserved bits 1-8 set",
            ));
        }
        match entry & OFFSET_MASK {
            0 => Ok(Cluster::Zero),
            host if host.checked_rem(self.cluster_size()) != Some(0) => Err(Error::malformed(
                at,
                format!("qcow2 cluster offset {host:#x} is not cluster-aligned"),
            )),
            host => Ok(Cluster::At(host)),
        }
    }

    fn read_cluster(&self, index: u64, inside: u64, dst: &mut [u8]) -> Result<()> {
        match self.cluster(index)? {
            Cluster::Zero => {
                dst.fill(0);
                Ok(())
            }
            Cluster::At(host) => {
                let at = host
                    .checked_add(inside)
                    .ok_or_else(|| Error::malformed(host, "qcow2 cluster offset overflows"))?;
                read_inner(&self.inner, at, dst, "qcow2 data cluster")
            }
            Cluster::Compressed(host, len) => self.read_compressed(index, host, len, inside, dst),
        }
    }

    fn read_compressed(
        &self,
        index: u64,
        host: u64,
        len: u64,
        inside: u64,
        dst: &mut [u8],
    ) -> Result<()> {
        let mut cache = self.cache.borrow_mut();
        if cache.as_ref().is_none_or(|(i, _)| *i != index) {
            // The declared length may run past the end of the file (it is rounded up to
            // sectors); read what is there.
            let len = len.min(self.inner.size().saturating_sub(host));
            let packed = self.inner.read_vec(host, len, "qcow2 compressed cluster")?;
            let mut out = vec![0u8; usize::try_from(self.cluster_size()).unwrap_or(0)];
            inflate_raw(&packed, &mut out, host)?;
            *cache = Some((index, out));
        }
        let src = cache
            .as_ref()
            .and_then(|(_, c)| {
                let s = usize::try_from(inside).ok()?;
                c.get(s..s.checked_add(dst.len())?)
            })
            .ok_or_else(|| Error::malformed(host, "qcow2 compressed cluster read past its end"))?;
        dst.copy_from_slice(src);
        Ok(())
    }
}

fn unsupported(offset: u64, what: String) -> Error {
    Error::Unsupported { offset, what }
}

/// The v3 fields: incompatible features, refcount order, header length, compression.
fn check_v3_features(h: &[u8]) -> Result<()> {
    let incompat = be64(h, 72, "incompatible features")?;
    if incompat & INCOMPAT_CORRUPT != 0 {
        return Err(Error::malformed(72, "the qcow2 image is marked corrupt"));
    }
    if incompat & INCOMPAT_DATA_FILE != 0 {
        return Err(unsupported(
            72,
            "a qcow2 image with an external data file".into(),
        ));
    }
    if incompat & INCOMPAT_EXTL2 != 0 {
        return Err(unsupported(
            72,
            "qcow2 extended L2 entries (subclusters)".into(),
        ));
    }
    if incompat & !INCOMPAT_KNOWN != 0 {
        return Err(unsupported(
            72,
            format!("qcow2 incompatible feature bits {incompat:#x}"),
        ));
    }
    let header_len = be32(h, 100, "header length")?;
    if header_len < 104 {
        return Err(Error::malformed(
            100,
            format!("qcow2 v3 header length {header_len} is under 104"),
        ));
    }
    if header_len > 104 {
        let compression = crate::bytes::u8_at(h, 104, "compression type")?;
        if compression != 0 {
            // Only matters for compressed clusters, but an image that declares zstd has them.
            return Err(unsupported(
                104,
                format!("qcow2 compression type {compression} (only zlib is read)"),
            ));
        }
    }
    Ok(())
}

/// The L1 table, checked to cover the virtual size and to lie inside the file.
fn read_l1<R: ReadAt>(inner: &R, h: &[u8], cluster_bits: u32, size: u64) -> Result<Vec<u64>> {
    let l1_size = be32(h, 36, "L1 size")?;
    let l1_offset = be64(h, 40, "L1 table offset")?;
    // Bytes one L1 entry covers: a cluster of L2 entries, each a cluster.
    let per_l1 = 1u64 << (cluster_bits.saturating_mul(2).saturating_sub(3)).min(63);
    let needed = size.div_ceil(per_l1);
    if u64::from(l1_size) < needed {
        return Err(Error::malformed(
            36,
            format!("qcow2 L1 table has {l1_size} entries, the virtual size needs {needed}"),
        ));
    }
    let raw = inner.read_vec(
        l1_offset,
        u64::from(l1_size).saturating_mul(8),
        "qcow2 L1 table",
    )?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default()))
        .collect())
}

/// Inflate a raw deflate stream (qcow2's compressed clusters: no zlib header) into all
/// of `out`.
fn inflate_raw(packed: &[u8], out: &mut [u8], at: u64) -> Result<()> {
    let mut d = flate2::Decompress::new(false);
    match d.decompress(packed, out, flate2::FlushDecompress::Finish) {
        Ok(_) if d.total_out() == out.len() as u64 => Ok(()),
        Ok(_) => Err(Error::malformed(
            at,
            format!(
                "qcow2 compressed cluster inflates to {} bytes, not {}",
                d.total_out(),
                out.len()
            ),
        )),
        Err(e) => Err(Error::malformed(
            at,
            format!("qcow2 compressed cluster: {e}"),
        )),
    }
}

impl<R: ReadAt> ReadAt for Qcow2<R> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        read_blocks(
            self.size,
            self.cluster_size(),
            offset,
            buf,
            |i, inside, dst| self.read_cluster(i, inside, dst),
        )
    }
}

impl<R: ReadAt + Send> VirtualDisk for Qcow2<R> {
    fn describe(&self) -> String {
        format!("qcow2 v{}", self.version)
    }

    /// Walks each L2 table once (a cluster per read), not each entry.
    fn extents(&self) -> Result<Vec<Extent>> {
        let cs = self.cluster_size();
        let per_l2 = 1u64 << self.l2_bits();
        let span = per_l2.saturating_mul(cs);
        let mut out = Vec::new();
        let mut table = vec![0u8; usize::try_from(cs).unwrap_or(0)];
        for (i, &l1e) in self.l1.iter().enumerate() {
            let start = (i as u64).saturating_mul(span);
            if start >= self.size {
                break;
            }
            let l2 = l1e & OFFSET_MASK;
            if l2 == 0 {
                push_extent(
                    &mut out,
                    start,
                    span.min(self.size.saturating_sub(start)),
                    true,
                );
                continue;
            }
            read_inner(&self.inner, l2, &mut table, "qcow2 L2 table")?;
            for (j, e) in table.chunks_exact(8).enumerate() {
                let off = start.saturating_add((j as u64).saturating_mul(cs));
                if off >= self.size {
                    break;
                }
                let entry = u64::from_be_bytes(e.try_into().unwrap_or_default());
                let at = l2.saturating_add((j as u64).saturating_mul(8));
                let zero = self.classify(entry, at)? == Cluster::Zero;
                push_extent(&mut out, off, cs.min(self.size.saturating_sub(off)), zero);
            }
        }
        Ok(out)
    }
}
