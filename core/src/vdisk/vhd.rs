//! VHD (Microsoft Virtual Hard Disk, spec 1.0), fixed and dynamic, read as the virtual
//! disk it holds.
//!
//! Layout (big-endian): a 512-byte footer with cookie `conectix` at the end of the file
//! (a dynamic disk also keeps a copy at 0). A fixed disk is the raw data followed by the
//! footer. A dynamic disk's footer points to a 1024-byte header (`cxsparse`), which
//! points to the block allocation table (BAT): one u32 per block, the sector of the
//! block's bitmap (followed by its data), or 0xFFFFFFFF for a block never written (it
//! reads as zero). The sector bitmaps are not consulted: a block's unwritten sectors
//! hold zeros, as QEMU reads them too. Differencing disks are refused (their data is
//! partly in the parent).

use super::{be32, be64, push_extent, read_blocks, read_inner, Extent, VirtualDisk};
use crate::error::{Error, Result};
use crate::readat::ReadAt;

pub const COOKIE: &[u8] = b"conectix";
const SPARSE_COOKIE: &[u8] = b"cxsparse";
const FOOTER_LEN: u64 = 512;
const UNUSED: u32 = 0xffff_ffff;
const FIXED: u32 = 2;
const DYNAMIC: u32 = 3;
const DIFFERENCING: u32 = 4;
/// The largest block this reader takes (Hyper-V uses 2 MiB, the spec's default).
const MAX_BLOCK: u32 = 256 << 20;

/// An open VHD over `R`.
pub struct Vhd<R> {
    inner: R,
    size: u64,
    layout: Layout,
}

enum Layout {
    Fixed,
    Dynamic { block_size: u64, bat: Vec<u32> },
}

impl<R: ReadAt> Vhd<R> {
    pub fn open(inner: R) -> Result<Self> {
        let file_len = inner.size();
        let foot_at = file_len.checked_sub(FOOTER_LEN).ok_or(Error::Truncated {
            what: "VHD footer",
            offset: 0,
            needed: FOOTER_LEN,
            available: file_len,
        })?;
        let mut foot = [0u8; 512];
        read_inner(&inner, foot_at, &mut foot, "VHD footer")?;
        if !foot.starts_with(COOKIE) {
            // A dynamic disk whose last sector is lost still has its copy at 0; the
            // file is then truncated, which the reads below would trip over anyway.
            return Err(Error::malformed(
                foot_at,
                "VHD footer cookie `conectix` missing at the last 512 bytes",
            ));
        }
        check_checksum(&foot, 64, foot_at, "VHD footer")?;
        let size = be64(&foot, 48, "current size")?;
        let layout = match be32(&foot, 60, "disk type")? {
            FIXED => {
                if size > foot_at {
                    return Err(Error::Truncated {
                        what: "VHD fixed disk data",
                        offset: 0,
                        needed: size,
                        available: foot_at,
                    });
                }
                Layout::Fixed
            }
            DYNAMIC => {
                let header_at = be64(&foot, 16, "data offset")?;
                dynamic_layout(&inner, header_at, size)?
            }
            DIFFERENCING => {
                return Err(Error::Unsupported {
                    offset: foot_at.saturating_add(60),
                    what: "a differencing VHD (its data is partly in the parent disk)".into(),
                })
            }
            other => {
                return Err(Error::malformed(
                    foot_at.saturating_add(60),
                    format!("VHD disk type {other} is not 2 (fixed), 3 (dynamic) or 4"),
                ))
            }
        };
        Ok(Vhd {
            inner,
            size,
            layout,
        })
    }

    fn read_block(&self, index: u64, inside: u64, dst: &mut [u8]) -> Result<()> {
        let Layout::Dynamic { block_size, bat } = &self.layout else {
            return read_inner(&self.inner, index, dst, "VHD data");
        };
        let entry = usize::try_from(index)
            .ok()
            .and_then(|i| bat.get(i).copied())
            .unwrap_or(UNUSED);
        if entry == UNUSED {
            dst.fill(0);
            return Ok(());
        }
        let at = data_start(entry, *block_size)
            .and_then(|d| d.checked_add(inside))
            .ok_or_else(|| Error::malformed(u64::from(entry), "VHD block offset overflows"))?;
        read_inner(&self.inner, at, dst, "VHD data block")
    }
}

/// A block's data starts after its sector bitmap (one bit per sector, rounded up to a
/// whole sector).
fn data_start(entry: u32, block_size: u64) -> Option<u64> {
    let bitmap = (block_size / 512)
        .div_ceil(8)
        .checked_next_multiple_of(512)?;
    u64::from(entry).checked_mul(512)?.checked_add(bitmap)
}

/// The dynamic header at `header_at` and its BAT.
fn dynamic_layout<R: ReadAt>(inner: &R, header_at: u64, size: u64) -> Result<Layout> {
    let mut h = [0u8; 1024];
    read_inner(inner, header_at, &mut h, "VHD dynamic header")?;
    if !h.starts_with(SPARSE_COOKIE) {
        return Err(Error::malformed(
            header_at,
            "VHD dynamic header cookie `cxsparse` missing",
        ));
    }
    check_checksum(&h, 36, header_at, "VHD dynamic header")?;
    let bat_at = be64(&h, 16, "BAT offset")?;
    let entries = be32(&h, 28, "max table entries")?;
    let block_size = be32(&h, 32, "block size")?;
    if !block_size.is_power_of_two() || !(512..=MAX_BLOCK).contains(&block_size) {
        return Err(Error::malformed(
            header_at.saturating_add(32),
            format!("VHD block size {block_size} is not a power of two in 512..=256 MiB"),
        ));
    }
    let block_size = u64::from(block_size);
    let needed = size.div_ceil(block_size);
    if u64::from(entries) < needed {
        return Err(Error::malformed(
            header_at.saturating_add(28),
            format!("VHD BAT has {entries} entries, the disk size needs {needed}"),
        ));
    }
    let raw = inner.read_vec(bat_at, u64::from(entries).saturating_mul(4), "VHD BAT")?;
    let bat = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap_or([0xff; 4])))
        .collect();
    Ok(Layout::Dynamic { block_size, bat })
}

/// The one's complement of the byte sum, with the checksum field counted as zero.
fn check_checksum(b: &[u8], field: usize, at: u64, what: &str) -> Result<()> {
    let stored = be32(b, field as u64, "checksum")?;
    let sum = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field.saturating_add(4)).contains(i))
        .fold(0u32, |s, (_, &x)| s.wrapping_add(u32::from(x)));
    if !sum != stored {
        return Err(Error::malformed(
            at.saturating_add(field as u64),
            format!(
                "{what} checksum {stored:#010x} is wrong (computed {:#010x})",
                !sum
            ),
        ));
    }
    Ok(())
}

impl<R: ReadAt> ReadAt for Vhd<R> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        match &self.layout {
            Layout::Fixed => read_blocks(self.size, self.size.max(1), offset, buf, |_, at, dst| {
                read_inner(&self.inner, at, dst, "VHD data")
            }),
            Layout::Dynamic { block_size, .. } => {
                read_blocks(self.size, *block_size, offset, buf, |i, inside, dst| {
                    self.read_block(i, inside, dst)
                })
            }
        }
    }
}

impl<R: ReadAt + Send> VirtualDisk for Vhd<R> {
    fn describe(&self) -> String {
        match self.layout {
            Layout::Fixed => "VHD fixed".into(),
            Layout::Dynamic { .. } => "VHD dynamic".into(),
        }
    }

    fn extents(&self) -> Result<Vec<Extent>> {
        let mut out = Vec::new();
        match &self.layout {
            Layout::Fixed => push_extent(&mut out, 0, self.size, false),
            Layout::Dynamic { block_size, bat } => {
                for (i, &e) in bat.iter().enumerate() {
                    let off = (i as u64).saturating_mul(*block_size);
                    if off >= self.size {
                        break;
                    }
                    let len = (*block_size).min(self.size.saturating_sub(off));
                    push_extent(&mut out, off, len, e == UNUSED);
                }
            }
        }
        Ok(out)
    }
}
