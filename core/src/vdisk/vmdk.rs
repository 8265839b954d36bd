//! VMDK sparse extents (VMware Virtual Disk Format 5.0): monolithicSparse and
//! streamOptimized, read as the virtual disk they hold.
//!
//! Layout (little-endian, sizes in 512-byte sectors): a 512-byte header (`KDMV`) at 0
//! naming the capacity, the grain size and the grain directory (GD). Each GD entry
//! names a grain table (GT) of `num_gtes_per_gt` u32 entries, each the sector of one
//! grain (0: never written, reads as zero; 1: a zero grain). In a streamOptimized
//! file the header at 0 says `gd_offset = GD_AT_END` and the real one is the footer
//! 1024 bytes before the end; each grain is a marker (LBA u64, size u32) followed by
//! a zlib stream of that many bytes. A VMDK text descriptor (its data in other files)
//! is refused by the caller.

use std::cell::RefCell;

use super::{push_extent, read_blocks, read_inner, Extent, VirtualDisk};
use crate::bytes::{u16_le, u32_le, u64_le};
use crate::error::{Error, Result};
use crate::readat::ReadAt;

pub const MAGIC: &[u8] = b"KDMV";
pub const DESCRIPTOR_MAGIC: &[u8] = b"# Disk DescriptorFile";
const GD_AT_END: u64 = u64::MAX;
const FLAG_COMPRESSED: u32 = 1 << 16;
const COMPRESSION_DEFLATE: u16 = 1;
/// Grains above 128 MiB are not written by any tool; refuse them before allocating.
const MAX_GRAIN_SECTORS: u64 = 1 << 18;
const MAX_GTES: u32 = 1 << 16;

/// The header fields this reader uses.
#[derive(Debug, Clone, Copy)]
struct Header {
    flags: u32,
    capacity: u64,
    grain: u64,
    gtes: u32,
    gd_offset: u64,
    compression: u16,
}

fn header(b: &[u8]) -> Result<Header> {
    Ok(Header {
        flags: u32_le(b, 8, "VMDK flags")?,
        capacity: u64_le(b, 12, "VMDK capacity")?,
        grain: u64_le(b, 20, "VMDK grain size")?,
        gtes: u32_le(b, 44, "VMDK GTEs per GT")?,
        gd_offset: u64_le(b, 56, "VMDK GD offset")?,
        compression: u16_le(b, 77, "VMDK compression")?,
    })
}

/// An open sparse VMDK over `R`.
pub struct Vmdk<R> {
    inner: R,
    h: Header,
    size: u64,
    grain_bytes: u64,
    /// Sector of each grain table, from the grain directory.
    gd: Vec<u32>,
    stream: bool,
    /// The last inflated grain (index, bytes).
    cache: RefCell<Option<(u64, Vec<u8>)>>,
}

impl<R: ReadAt> Vmdk<R> {
    pub fn open(inner: R) -> Result<Self> {
        let mut b = [0u8; 512];
        read_inner(&inner, 0, &mut b, "VMDK header")?;
        if !b.starts_with(MAGIC) {
            return Err(Error::malformed(0, "VMDK magic KDMV missing"));
        }
        let version = u32_le(&b, 4, "VMDK version")?;
        if !(1..=3).contains(&version) {
            return Err(Error::Unsupported {
                offset: 4,
                what: format!("VMDK sparse extent version {version}"),
            });
        }
        let mut h = header(&b)?;
        let mut stream = false;
        if h.gd_offset == GD_AT_END {
            // streamOptimized: the footer (a copy of the header with the real GD
            // offset) sits before the end-of-stream marker.
            let at = inner.size().checked_sub(1024).ok_or(Error::Truncated {
                what: "VMDK footer",
                offset: 0,
                needed: 1024,
                available: inner.size(),
            })?;
            read_inner(&inner, at, &mut b, "VMDK footer")?;
            if !b.starts_with(MAGIC) {
                return Err(Error::malformed(at, "VMDK footer magic KDMV missing"));
            }
            h = header(&b)?;
            stream = true;
        }
        check_header(&h)?;
        let grain_bytes = h.grain.saturating_mul(512);
        let size = h
            .capacity
            .checked_mul(512)
            .ok_or_else(|| Error::malformed(12, "VMDK capacity overflows"))?;
        let per_gt = u64::from(h.gtes)
            .saturating_mul(h.grain)
            .saturating_mul(512);
        let gd_entries = size.div_ceil(per_gt.max(1));
        let gd_at = h
            .gd_offset
            .checked_mul(512)
            .ok_or_else(|| Error::malformed(56, "VMDK GD offset overflows"))?;
        let raw = inner.read_vec(gd_at, gd_entries.saturating_mul(4), "VMDK grain directory")?;
        let gd = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        Ok(Vmdk {
            inner,
            h,
            size,
            grain_bytes,
            gd,
            stream,
            cache: RefCell::new(None),
        })
    }

    /// The grain table entry of grain `index`: the grain's sector, 0 or 1.
    fn gte(&self, index: u64) -> Result<u32> {
        let gtes = u64::from(self.h.gtes).max(1);
        let gt = usize::try_from(index.checked_div(gtes).unwrap_or(0))
            .ok()
            .and_then(|i| self.gd.get(i).copied())
            .unwrap_or(0);
        if gt == 0 {
            return Ok(0);
        }
        let at = u64::from(gt)
            .saturating_mul(512)
            .saturating_add(index.checked_rem(gtes).unwrap_or(0).saturating_mul(4));
        let mut e = [0u8; 4];
        read_inner(&self.inner, at, &mut e, "VMDK grain table entry")?;
        Ok(u32::from_le_bytes(e))
    }

    fn read_grain(&self, index: u64, inside: u64, dst: &mut [u8]) -> Result<()> {
        let gte = self.gte(index)?;
        if gte <= 1 {
            dst.fill(0);
            return Ok(());
        }
        let at = u64::from(gte).saturating_mul(512);
        if !self.compressed() {
            return read_inner(&self.inner, at.saturating_add(inside), dst, "VMDK grain");
        }
        let mut cache = self.cache.borrow_mut();
        if cache.as_ref().is_none_or(|(i, _)| *i != index) {
            *cache = Some((index, self.inflate_grain(at)?));
        }
        let src = cache
            .as_ref()
            .and_then(|(_, g)| {
                let s = usize::try_from(inside).ok()?;
                g.get(s..s.checked_add(dst.len())?)
            })
            .ok_or_else(|| Error::malformed(at, "VMDK grain read past its end"))?;
        dst.copy_from_slice(src);
        Ok(())
    }

    fn compressed(&self) -> bool {
        self.h.flags & FLAG_COMPRESSED != 0
    }

    /// A compressed grain at `at`: marker (LBA u64, size u32), then a zlib stream.
    fn inflate_grain(&self, at: u64) -> Result<Vec<u8>> {
        let mut m = [0u8; 12];
        read_inner(&self.inner, at, &mut m, "VMDK grain marker")?;
        let len = u32_le(&m, 8, "VMDK grain marker size")?;
        if u64::from(len) > self.grain_bytes.saturating_mul(2).saturating_add(1024) {
            return Err(Error::malformed(
                at.saturating_add(8),
                format!("VMDK compressed grain of {len} bytes is larger than a grain can need"),
            ));
        }
        let packed = self.inner.read_vec(
            at.saturating_add(12),
            u64::from(len),
            "VMDK compressed grain",
        )?;
        let mut out = vec![0u8; usize::try_from(self.grain_bytes).unwrap_or(0)];
        let mut d = flate2::Decompress::new(true);
        match d.decompress(&packed, &mut out, flate2::FlushDecompress::Finish) {
            // The last grain of a disk may be short: the rest reads as zero.
            Ok(_) => Ok(out),
            Err(e) => Err(Error::malformed(at, format!("VMDK compressed grain: {e}"))),
        }
    }
}

fn check_header(h: &Header) -> Result<()> {
    if !h.grain.is_power_of_two() || !(1..=MAX_GRAIN_SECTORS).contains(&h.grain) {
        return Err(Error::malformed(
            20,
            format!(
                "VMDK grain size {} sectors is not a power of two up to 2^18",
                h.grain
            ),
        ));
    }
    if !(1..=MAX_GTES).contains(&h.gtes) {
        return Err(Error::malformed(
            44,
            format!("VMDK has {} entries per grain table, not 1..=65536", h.gtes),
        ));
    }
    if h.flags & FLAG_COMPRESSED != 0 && h.compression != COMPRESSION_DEFLATE {
        return Err(Error::Unsupported {
            offset: 77,
            what: format!("VMDK compression algorithm {}", h.compression),
        });
    }
    if h.gd_offset == GD_AT_END || h.gd_offset == 0 {
        return Err(Error::malformed(56, "VMDK has no grain directory offset"));
    }
    Ok(())
}

impl<R: ReadAt> ReadAt for Vmdk<R> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        read_blocks(
            self.size,
            self.grain_bytes,
            offset,
            buf,
            |i, inside, dst| self.read_grain(i, inside, dst),
        )
    }
}

impl<R: ReadAt + Send> VirtualDisk for Vmdk<R> {
    fn describe(&self) -> String {
        if self.stream {
            "VMDK streamOptimized".into()
        } else {
            "VMDK monolithicSparse".into()
        }
    }

    /// Reads each grain table once.
    fn extents(&self) -> Result<Vec<Extent>> {
        let gtes = u64::from(self.h.gtes);
        let span = gtes.saturating_mul(self.grain_bytes);
        let mut out = Vec::new();
        let mut table = vec![0u8; usize::try_from(gtes.saturating_mul(4)).unwrap_or(0)];
        for (i, &gt) in self.gd.iter().enumerate() {
            let start = (i as u64).saturating_mul(span);
            if start >= self.size {
                break;
            }
            if gt == 0 {
                push_extent(
                    &mut out,
                    start,
                    span.min(self.size.saturating_sub(start)),
                    true,
                );
                continue;
            }
            read_inner(
                &self.inner,
                u64::from(gt).saturating_mul(512),
                &mut table,
                "VMDK grain table",
            )?;
            for (j, e) in table.chunks_exact(4).enumerate() {
                let off = start.saturating_add((j as u64).saturating_mul(self.grain_bytes));
                if off >= self.size {
                    break;
                }
                let zero = u32::from_le_bytes(e.try_into().unwrap_or_default()) <= 1;
                push_extent(
                    &mut out,
                    off,
                    self.grain_bytes.min(self.size.saturating_sub(off)),
                    zero,
                );
            }
        }
        Ok(out)
    }
}
