//! Disk images as other tools ship them: recognised by content, and the VM formats
//! (qcow2, VHD, VMDK) read as the virtual disk they describe.
//!
//! ```text
//!  first and last 512+ bytes ──► recognize ──► Container (raw, zstd, xz, gzip, qcow2,
//!                                                          vhd, vmdk, vmdk descriptor)
//!  inner ReadAt (file, Blob) ──► Qcow2 / Vhd / Vmdk ──► ReadAt of the virtual disk
//!                                                   └─► extents(): data and zero runs
//! ```
//!
//! Compressed raw images (zstd, xz, gzip) are only recognised here: the codecs run in
//! the caller (native libraries in the CLI, the browser's own in the page). Every value
//! read from a header or table is checked before it is used as an offset or a size; an
//! allocation is never larger than the table the file itself holds.

pub mod qcow2;
pub mod vhd;
pub mod vmdk;

use crate::error::{Error, Result};
use crate::readat::ReadAt;

/// What a file is, from its first bytes (and, for VHD, its last 512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    /// Not one of the formats below: a raw disk image (or something else entirely).
    Raw,
    Zstd,
    Xz,
    Gzip,
    Qcow2,
    Vhd,
    /// A sparse VMDK extent (monolithicSparse or streamOptimized), magic `KDMV`.
    Vmdk,
    /// A VMDK text descriptor: the disk's data is in other files it names.
    VmdkDescriptor,
}

impl Container {
    /// A short name for messages ("zstd", "qcow2").
    pub fn name(self) -> &'static str {
        match self {
            Container::Raw => "raw",
            Container::Zstd => "zstd",
            Container::Xz => "xz",
            Container::Gzip => "gzip",
            Container::Qcow2 => "qcow2",
            Container::Vhd => "VHD",
            Container::Vmdk => "VMDK",
            Container::VmdkDescriptor => "VMDK descriptor",
        }
    }

    /// A compressed stream, read front to back.
    pub fn is_compressed(self) -> bool {
        matches!(self, Container::Zstd | Container::Xz | Container::Gzip)
    }

    /// A VM image whose virtual disk [`open`] reads.
    pub fn is_virtual_disk(self) -> bool {
        matches!(self, Container::Qcow2 | Container::Vhd | Container::Vmdk)
    }
}

/// How many bytes of the start [`recognize`] looks at.
pub const HEAD_LEN: usize = 512;
/// How many bytes of the end [`recognize`] looks at (the VHD footer).
pub const FOOT_LEN: usize = 512;

/// Recognise a file by its first bytes (`head`, up to [`HEAD_LEN`]) and its last
/// [`FOOT_LEN`] bytes (`foot`; empty when the end cannot be read, as for a stream).
pub fn recognize(head: &[u8], foot: &[u8]) -> Container {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        // A zstd frame. (Skippable frames, 0x184D2A5?, could precede it; no imager
        // writes them first.)
        Container::Zstd
    } else if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Container::Xz
    } else if starts(&[0x1f, 0x8b, 0x08]) {
        Container::Gzip
    } else if starts(qcow2::MAGIC) {
        Container::Qcow2
    } else if starts(vmdk::MAGIC) {
        Container::Vmdk
    } else if starts(vmdk::DESCRIPTOR_MAGIC) {
        Container::VmdkDescriptor
    } else if starts(vhd::COOKIE) || foot.starts_with(vhd::COOKIE) {
        Container::Vhd
    } else {
        Container::Raw
    }
}

/// A run of the virtual disk: bytes that must be read (`Data`) or that read as zero
/// (`Zero`: unallocated, or marked zero by the format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    pub zero: bool,
}

/// A virtual disk read through its container's tables.
pub trait VirtualDisk: ReadAt + Send {
    /// The format ("qcow2 v3", "VHD dynamic", "VMDK streamOptimized").
    fn describe(&self) -> String;
    /// The whole virtual disk as ascending, adjacent runs, same-kind runs merged.
    fn extents(&self) -> Result<Vec<Extent>>;
}

/// Open the virtual disk in `inner`, whose format `recognize` named.
pub fn open<R: ReadAt + Send + 'static>(kind: Container, inner: R) -> Result<Box<dyn VirtualDisk>> {
    Ok(match kind {
        Container::Qcow2 => Box::new(qcow2::Qcow2::open(inner)?),
        Container::Vhd => Box::new(vhd::Vhd::open(inner)?),
        Container::Vmdk => Box::new(vmdk::Vmdk::open(inner)?),
        other => {
            return Err(Error::Unsupported {
                offset: 0,
                what: format!("{} is not a virtual disk container", other.name()),
            })
        }
    })
}

/// Appends a run to `out`, merging it with the last one when adjacent and alike.
pub(crate) fn push_extent(out: &mut Vec<Extent>, offset: u64, len: u64, zero: bool) {
    if len == 0 {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last.zero == zero && last.offset.checked_add(last.len) == Some(offset) {
            last.len = last.len.saturating_add(len);
            return;
        }
    }
    out.push(Extent { offset, len, zero });
}

/// Big-endian and little-endian fields of a header already read into memory.
pub(crate) fn be32(b: &[u8], at: u64, what: &'static str) -> Result<u32> {
    Ok(u32::from_be_bytes(crate::bytes::array(b, at, what)?))
}

pub(crate) fn be64(b: &[u8], at: u64, what: &'static str) -> Result<u64> {
    Ok(u64::from_be_bytes(crate::bytes::array(b, at, what)?))
}

/// The part of `[offset, offset+len)` that lies in the block of `block_size` holding
/// `offset`: (index of the block, offset inside it, bytes to take).
pub(crate) fn split_block(offset: u64, len: usize, block_size: u64) -> (u64, u64, usize) {
    let block_size = block_size.max(1);
    let index = offset.checked_div(block_size).unwrap_or(0);
    let inside = offset.checked_rem(block_size).unwrap_or(0);
    let room = block_size.saturating_sub(inside);
    let take = usize::try_from(room).map_or(len, |r| r.min(len));
    (index, inside, take)
}

/// `read_exact_at` for a source that is a series of blocks: `read_block(index, inside,
/// dst)` fills `dst` from block `index` at `inside`.
pub(crate) fn read_blocks(
    size: u64,
    block_size: u64,
    offset: u64,
    buf: &mut [u8],
    mut read_block: impl FnMut(u64, u64, &mut [u8]) -> Result<()>,
) -> Result<()> {
    let end = offset.checked_add(buf.len() as u64);
    if end.is_none_or(|e| e > size) {
        return Err(Error::Truncated {
            what: "virtual disk read",
            offset,
            needed: buf.len() as u64,
            available: size.saturating_sub(offset),
        });
    }
    let mut pos = offset;
    let mut rest = buf;
    while !rest.is_empty() {
        let (index, inside, take) = split_block(pos, rest.len(), block_size);
        let (now, later) = rest.split_at_mut(take);
        read_block(index, inside, now)?;
        pos = pos.saturating_add(take as u64);
        rest = later;
    }
    Ok(())
}

/// Reads from `inner` at `offset`, naming the structure on failure.
pub(crate) fn read_inner<R: ReadAt + ?Sized>(
    inner: &R,
    offset: u64,
    buf: &mut [u8],
    what: &'static str,
) -> Result<()> {
    inner.read_exact_at(offset, buf).map_err(|e| match e {
        Error::Truncated {
            offset,
            needed,
            available,
            ..
        } => Error::Truncated {
            what,
            offset,
            needed,
            available,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_each_container_by_its_magic() {
        let cases: [(&[u8], Container); 8] = [
            (&[0x28, 0xb5, 0x2f, 0xfd, 0x04], Container::Zstd),
            (b"\xfd7zXZ\0\0\x04", Container::Xz),
            (b"\x1f\x8b\x08\0", Container::Gzip),
            (b"QFI\xfb\0\0\0\x03", Container::Qcow2),
            (b"KDMV\x03\0\0\0", Container::Vmdk),
            (b"# Disk DescriptorFile\n", Container::VmdkDescriptor),
            (b"conectix\0\0", Container::Vhd),
            (b"\xebX\x90mkfs.fat", Container::Raw),
        ];
        for (head, want) in cases {
            assert_eq!(recognize(head, &[]), want, "{head:?}");
        }
        // A fixed VHD: raw data with the footer only at the end.
        assert_eq!(recognize(&[0u8; 512], b"conectix\0"), Container::Vhd);
    }

    #[test]
    fn extents_merge_when_adjacent_and_alike() {
        let mut v = Vec::new();
        push_extent(&mut v, 0, 10, false);
        push_extent(&mut v, 10, 5, false);
        push_extent(&mut v, 15, 5, true);
        push_extent(&mut v, 30, 5, true);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].len, 15);
    }
}
