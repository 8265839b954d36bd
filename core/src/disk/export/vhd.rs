//! VHD (Microsoft's "Virtual Hard Disk Image Format Specification" 1.0), fixed and
//! dynamic. Big-endian fields; checksums are the one's complement of the byte sum.
//!
//! - Fixed: the disk's bytes, then the 512-byte footer. Azure takes only this kind,
//!   with a virtual size that is a whole number of MiB.
//! - Dynamic: a copy of the footer, the dynamic disk header, the block allocation table
//!   (BAT), then each 2 MiB block that holds data as a sector bitmap and the block's
//!   bytes, and the footer. Blocks of zeros are left out (BAT entry 0xFFFFFFFF).
//!
//! The footer's creator application is "win " (Hyper-V): readers then take the disk's
//! size from the footer's current size, not from its CHS geometry, which cannot name
//! every size (QEMU's vpc_ignore_current_size: only "vpc " and "qemu" images are sized
//! by geometry). The timestamp and unique id come from [`ExportOptions`].

use std::collections::VecDeque;

use super::{nonzero_units, overflow, round_up, ExportOptions, Piece};
use crate::disk::DiskImage;
use crate::error::{Error, Result};

/// The layout constants (all fields big-endian).
pub mod raw {
    pub const FOOTER_COOKIE: &[u8; 8] = b"conectix";
    pub const DYNAMIC_COOKIE: &[u8; 8] = b"cxsparse";
    pub const FOOTER_SIZE: u64 = 512;
    pub const FOOTER_BYTES: usize = 512;
    pub const DYNAMIC_HEADER_BYTES: usize = 1024;
    pub const BLOCK_SIZE_FIELD: u32 = 2 << 20;
    pub const DYNAMIC_HEADER_SIZE: u64 = 1024;
    /// Features: "reserved", which the specification says is always set.
    pub const FEATURES: u32 = 2;
    pub const VERSION: u32 = 0x0001_0000;
    pub const CREATOR_APP: &[u8; 4] = b"win ";
    pub const CREATOR_VERSION: u32 = 0x000a_0000;
    /// "Wi2k".
    pub const CREATOR_HOST_OS: u32 = 0x5769_326b;
    pub const DISK_TYPE_FIXED: u32 = 2;
    pub const DISK_TYPE_DYNAMIC: u32 = 3;
    /// The data offset of a fixed disk's footer: none.
    pub const NO_OFFSET: u64 = u64::MAX;
    pub const BLOCK_SIZE: u64 = 2 << 20;
    pub const SECTOR: u64 = 512;
    /// BAT entry of a block not in the file.
    pub const UNALLOCATED: u32 = u32::MAX;
    /// The VHD epoch, 2000-01-01T00:00:00Z, in Unix time.
    pub const EPOCH: i64 = 946_684_800;
}

/// The one's complement of the byte sum.
fn checksum(b: &[u8]) -> u32 {
    !b.iter().fold(0u32, |a, &x| a.wrapping_add(u32::from(x)))
}

/// CHS geometry by the specification's algorithm (appendix: CHS calculation).
fn geometry(size: u64) -> (u16, u8, u8) {
    let total = (size / raw::SECTOR).min(65535 * 16 * 255);
    let (spt, heads, cth) = if total >= 65535 * 16 * 63 {
        (255u64, 16u64, total / 255)
    } else {
        let spt = 17u64;
        let cth = total / spt;
        let heads = cth
            .saturating_add(1023)
            .checked_div(1024)
            .unwrap_or(0)
            .max(4);
        if cth >= heads.saturating_mul(1024) || heads > 16 {
            let (spt, heads) = (31u64, 16u64);
            let cth = total.checked_div(spt).unwrap_or(0);
            if cth >= heads.saturating_mul(1024) {
                (63, 16, total / 63)
            } else {
                (spt, heads, cth)
            }
        } else {
            (spt, heads, cth)
        }
    };
    let cyl = cth.checked_div(heads).unwrap_or(0);
    (
        u16::try_from(cyl).unwrap_or(u16::MAX),
        u8::try_from(heads).unwrap_or(u8::MAX),
        u8::try_from(spt).unwrap_or(u8::MAX),
    )
}

/// The 512-byte footer.
fn footer(size: u64, dynamic: bool, opts: &ExportOptions) -> Vec<u8> {
    let stamp = opts
        .timestamp
        .unwrap_or(raw::EPOCH)
        .saturating_sub(raw::EPOCH)
        .clamp(0, i64::from(u32::MAX));
    let stamp = u32::try_from(stamp).unwrap_or(0);
    let (cyl, heads, spt) = geometry(size);
    let build = |sum: u32| {
        let mut f = Vec::with_capacity(raw::FOOTER_BYTES);
        f.extend_from_slice(raw::FOOTER_COOKIE); // 0 cookie
        f.extend_from_slice(&raw::FEATURES.to_be_bytes()); // 8 features
        f.extend_from_slice(&raw::VERSION.to_be_bytes()); // 12 file format version
        let data_offset = if dynamic {
            raw::FOOTER_SIZE
        } else {
            raw::NO_OFFSET
        };
        f.extend_from_slice(&data_offset.to_be_bytes()); // 16 data offset
        f.extend_from_slice(&stamp.to_be_bytes()); // 24 time stamp
        f.extend_from_slice(raw::CREATOR_APP); // 28 creator application
        f.extend_from_slice(&raw::CREATOR_VERSION.to_be_bytes()); // 32 creator version
        f.extend_from_slice(&raw::CREATOR_HOST_OS.to_be_bytes()); // 36 creator host OS
        f.extend_from_slice(&size.to_be_bytes()); // 40 original size
        f.extend_from_slice(&size.to_be_bytes()); // 48 current size
        f.extend_from_slice(&cyl.to_be_bytes()); // 56 cylinders
        f.extend_from_slice(&[heads, spt]); // 58 heads, 59 sectors per track
        let kind = if dynamic {
            raw::DISK_TYPE_DYNAMIC
        } else {
            raw::DISK_TYPE_FIXED
        };
        f.extend_from_slice(&kind.to_be_bytes()); // 60 disk type
        f.extend_from_slice(&sum.to_be_bytes()); // 64 checksum
        f.extend_from_slice(&opts.derive_id("vhd unique id")); // 68 unique id
        f.push(0); // 84 saved state
        f.resize(raw::FOOTER_BYTES, 0); // 85 reserved
        f
    };
    build(checksum(&build(0)))
}

fn check_size(size: u64) -> Result<()> {
    if size % raw::SECTOR != 0 || size == 0 {
        return Err(Error::invalid(format!(
            "a VHD holds whole 512-byte sectors; the image is {size} bytes"
        )));
    }
    Ok(())
}

/// A fixed VHD: the disk, then the footer.
pub(crate) fn plan_fixed(
    img: &DiskImage<'_>,
    opts: &ExportOptions,
) -> Result<(VecDeque<Piece>, u64)> {
    check_size(img.size)?;
    if img.size % (1 << 20) != 0 {
        return Err(Error::invalid(format!(
            "a fixed VHD for Azure must be a whole number of MiB; the image is {} bytes \
             (give --size in MiB)",
            img.size
        )));
    }
    let q = VecDeque::from([
        Piece::Image {
            offset: 0,
            len: img.size,
        },
        Piece::Bytes(footer(img.size, false, opts)),
    ]);
    let len = img
        .size
        .checked_add(raw::FOOTER_SIZE)
        .ok_or_else(|| overflow("VHD size"))?;
    Ok((q, len))
}

/// The dynamic disk header at offset 512.
fn dynamic_header(entries: u32) -> Vec<u8> {
    let build = |sum: u32| {
        let mut h = Vec::with_capacity(raw::DYNAMIC_HEADER_BYTES);
        h.extend_from_slice(raw::DYNAMIC_COOKIE); // 0 cookie
        h.extend_from_slice(&raw::NO_OFFSET.to_be_bytes()); // 8 data offset (unused)
        let bat = raw::FOOTER_SIZE + raw::DYNAMIC_HEADER_SIZE;
        h.extend_from_slice(&bat.to_be_bytes()); // 16 table offset
        h.extend_from_slice(&raw::VERSION.to_be_bytes()); // 24 header version
        h.extend_from_slice(&entries.to_be_bytes()); // 28 max table entries
        h.extend_from_slice(&raw::BLOCK_SIZE_FIELD.to_be_bytes()); // 32 block size
        h.extend_from_slice(&sum.to_be_bytes()); // 36 checksum
                                                 // 40 parent unique id, 56 parent time stamp, 60 reserved, 64 parent unicode
                                                 // name, 576 parent locators, 768 reserved: all zero (no parent).
        h.resize(raw::DYNAMIC_HEADER_BYTES, 0);
        h
    };
    build(checksum(&build(0)))
}

/// A dynamic VHD: footer copy, header, BAT, the blocks with data, footer.
pub(crate) fn plan_dynamic(
    img: &DiskImage<'_>,
    opts: &ExportOptions,
) -> Result<(VecDeque<Piece>, u64)> {
    check_size(img.size)?;
    let blocks = nonzero_units(img, raw::BLOCK_SIZE)?;
    let entries = img.size.div_ceil(raw::BLOCK_SIZE);
    let entries32 = u32::try_from(entries).map_err(|_| overflow("VHD block count"))?;
    let bat_len = round_up(entries.saturating_mul(4), raw::SECTOR)?;
    let first_block = (raw::FOOTER_SIZE + raw::DYNAMIC_HEADER_SIZE)
        .checked_add(bat_len)
        .ok_or_else(|| overflow("VHD BAT"))?;
    // Each block: a one-sector bitmap (4096 sectors, one bit each) and the data.
    let bitmap_len = round_up(raw::BLOCK_SIZE / raw::SECTOR / 8, raw::SECTOR)?;
    let block_len = bitmap_len.saturating_add(raw::BLOCK_SIZE);
    let mut bat = vec![0xffu8; usize::try_from(bat_len).map_err(|_| overflow("VHD BAT"))?];
    let mut q = VecDeque::new();
    let foot = footer(img.size, true, opts);
    q.push_back(Piece::Bytes(foot.clone()));
    q.push_back(Piece::Bytes(dynamic_header(entries32)));
    let mut body = VecDeque::new();
    let mut at = first_block;
    for &b in &blocks {
        let sector = u32::try_from(at / raw::SECTOR).map_err(|_| overflow("VHD block offset"))?;
        let slot = usize::try_from(b.saturating_mul(4)).unwrap_or(usize::MAX);
        if let Some(s) = slot.checked_add(4).and_then(|e| bat.get_mut(slot..e)) {
            s.copy_from_slice(&sector.to_be_bytes());
        }
        // Every sector of the block is present: the data below is the disk's.
        body.push_back(Piece::Bytes(vec![
            0xff;
            usize::try_from(bitmap_len).unwrap_or(0)
        ]));
        body.push_back(Piece::Image {
            offset: b.saturating_mul(raw::BLOCK_SIZE),
            len: raw::BLOCK_SIZE,
        });
        at = at
            .checked_add(block_len)
            .ok_or_else(|| overflow("VHD size"))?;
    }
    // Entries past the table's end stay 0xFF padding, as the BAT is sector-aligned.
    let _ = raw::UNALLOCATED;
    q.push_back(Piece::Bytes(bat));
    q.extend(body);
    q.push_back(Piece::Bytes(foot));
    let len = at
        .checked_add(raw::FOOTER_SIZE)
        .ok_or_else(|| overflow("VHD size"))?;
    Ok((q, len))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{collect, sample};
    use super::super::Format;
    use super::*;

    #[test]
    fn fixed_is_raw_then_a_checksummed_footer() {
        let img = sample();
        let v = collect(&img, Format::VhdFixed);
        assert_eq!(&v[..8 << 20], &img.to_vec()[..]);
        let f = &v[8 << 20..];
        assert_eq!(&f[..8], b"conectix");
        let mut z = f.to_vec();
        z[64..68].fill(0);
        assert_eq!(
            u32::from_be_bytes(f[64..68].try_into().unwrap()),
            checksum(&z)
        );
        assert_eq!(u64::from_be_bytes(f[48..56].try_into().unwrap()), 8 << 20);
    }

    #[test]
    fn dynamic_allocates_blocks_with_data() {
        let img = sample();
        let v = collect(&img, Format::Vhd);
        // blocks 0, 1 (3 MiB) and 3 hold data; block 2 is unallocated.
        assert_eq!(v.len(), 1536 + 512 + 3 * (512 + (2 << 20)) + 512);
        let bat: Vec<u32> = v[1536..1552]
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(bat[2], u32::MAX);
        assert_eq!(v[..512], v[v.len() - 512..]);
        let b1 = bat[1] as usize * 512 + 512;
        assert_eq!(v[b1 + (1 << 20)], 7);
    }

    #[test]
    fn geometry_follows_the_specification() {
        assert_eq!(geometry(8 << 20), (240, 4, 17));
        assert_eq!(geometry(1 << 40), (65535, 16, 255));
    }
}
