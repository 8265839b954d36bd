//! Random access to bytes that need not be in memory.
//!
//! Most of the core reads `&[u8]`. Disk images can be larger than memory (a 4 GiB Talos
//! image, an 8 GiB disk in a browser tab), so readers that only need a few regions of
//! them (the partition table, filesystem metadata, the UKIs) read through [`ReadAt`]
//! instead. The caller supplies the source: a slice, a memory map, a file, a browser
//! `Blob` read with `FileReaderSync`, or a decoder of a compressed or VM image.

use std::borrow::Cow;
use std::cell::RefCell;

use crate::error::{Error, Result};

/// Reads from a source that is not in memory larger than this are refused: a
/// file-controlled length (a GPT entry array, a file size) cannot make a reader
/// allocate more. Files larger than this (a UKI) are streamed, not read whole.
pub const MAX_OWNED_READ: u64 = 64 << 20;

/// Checks that `len` bytes from `offset` lie inside a source of `size` bytes: the one
/// range rule of every [`ReadAt`], a [`Error::Truncated`] naming `what` otherwise.
pub fn check_range(size: u64, offset: u64, len: u64, what: &'static str) -> Result<()> {
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(Error::Truncated {
            what,
            offset,
            needed: len,
            available: size.saturating_sub(offset),
        });
    }
    Ok(())
}

/// A source of bytes read by offset. Reads take `&self` so that one source can serve
/// several readers; sources that keep state (a decoder, a cache) use interior
/// mutability.
pub trait ReadAt {
    /// The number of bytes the source serves.
    fn size(&self) -> u64;

    /// Fills all of `buf` with the bytes from `offset`. A range that passes the end is a
    /// [`Error::Truncated`]; a source that fails is an [`Error::Source`].
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// The whole source as a slice, when it is in memory (a slice or a memory map):
    /// readers then borrow instead of copying.
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }

    /// Reads `len` bytes from `offset` into a new vector, after checking the range
    /// against [`ReadAt::size`] so that a file-controlled length cannot allocate more
    /// than the source holds.
    fn read_vec(&self, offset: u64, len: u64, what: &'static str) -> Result<Vec<u8>> {
        check_range(self.size(), offset, len, what)?;
        let n = usize::try_from(len).map_err(|_| Error::Unsupported {
            offset,
            what: format!("{what}: {len} bytes do not fit in memory"),
        })?;
        let mut v = vec![0u8; n];
        self.read_exact_at(offset, &mut v)?;
        Ok(v)
    }
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| Some((start, start.checked_add(buf.len())?)))
            .and_then(|(start, end)| self.get(start..end));
        match src {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(Error::Truncated {
                what: "read",
                offset,
                needed: buf.len() as u64,
                available: self.size().saturating_sub(offset),
            }),
        }
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.as_slice().read_exact_at(offset, buf)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// A range of a [`ReadAt`] source (a partition, a volume), read by offsets relative
/// to its start: what the disk readers take, so that the same code reads an image in
/// memory (borrowing) and one that is not (copying only what it reads).
#[derive(Clone, Copy)]
pub struct Window<'a> {
    src: Src<'a>,
    start: u64,
    len: u64,
}

/// A window's source: bytes in memory, or a [`ReadAt`].
#[derive(Clone, Copy)]
enum Src<'a> {
    Mem(&'a [u8]),
    At(&'a dyn ReadAt),
}

impl std::fmt::Debug for Window<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Window({:#x}+{:#x})", self.start, self.len)
    }
}

impl<'a> From<&'a [u8]> for Window<'a> {
    fn from(s: &'a [u8]) -> Self {
        Window {
            src: Src::Mem(s),
            start: 0,
            len: s.len() as u64,
        }
    }
}

impl<'a> From<&'a Vec<u8>> for Window<'a> {
    fn from(s: &'a Vec<u8>) -> Self {
        Window::from(s.as_slice())
    }
}

impl<'a> From<&'a dyn ReadAt> for Window<'a> {
    fn from(s: &'a dyn ReadAt) -> Self {
        Window::new(s)
    }
}

impl<'a> Window<'a> {
    /// All of `src`.
    pub fn new(src: &'a dyn ReadAt) -> Self {
        match src.as_slice() {
            Some(s) => Window::from(s),
            None => Window {
                src: Src::At(src),
                start: 0,
                len: src.size(),
            },
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the window starts in its source.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The part of the window from `offset`, at most `len` bytes (clamped to the
    /// window's end; empty past it).
    pub fn clamp(&self, offset: u64, len: u64) -> Window<'a> {
        let off = offset.min(self.len);
        Window {
            src: self.src,
            start: self.start.saturating_add(off),
            len: len.min(self.len.saturating_sub(off)),
        }
    }

    /// The window's bytes as a slice, when its source is in memory.
    pub fn as_slice(&self) -> Option<&'a [u8]> {
        let Src::Mem(s) = self.src else {
            return None;
        };
        let start = usize::try_from(self.start).ok()?;
        let end = start.checked_add(usize::try_from(self.len).ok()?)?;
        s.get(start..end)
    }

    fn check(&self, offset: u64, len: u64, what: &'static str) -> Result<u64> {
        let trunc = || Error::Truncated {
            what,
            offset,
            needed: len,
            available: self.len.saturating_sub(offset),
        };
        let end = offset.checked_add(len).ok_or_else(trunc)?;
        if end > self.len {
            return Err(trunc());
        }
        self.start.checked_add(offset).ok_or_else(trunc)
    }

    /// `len` bytes at `offset` in the window: borrowed from a source in memory, else
    /// read (at most [`MAX_OWNED_READ`] bytes). Errors name offsets in the window.
    pub fn bytes(&self, offset: u64, len: u64, what: &'static str) -> Result<Cow<'a, [u8]>> {
        let at = self.check(offset, len, what)?;
        let src = match self.src {
            Src::Mem(s) => return crate::bytes::slice(s, at, len, what).map(Cow::Borrowed),
            Src::At(src) => src,
        };
        if len > MAX_OWNED_READ {
            return Err(Error::Unsupported {
                offset,
                what: format!(
                    "{what}: {len} bytes in one read from an image not in memory (at most {MAX_OWNED_READ})"
                ),
            });
        }
        src.read_vec(at, len, what).map(Cow::Owned)
    }

    /// Fills `buf` from `offset` in the window.
    pub fn read_into(&self, offset: u64, buf: &mut [u8], what: &'static str) -> Result<()> {
        let at = self.check(offset, buf.len() as u64, what)?;
        match self.src {
            Src::Mem(s) => s.read_exact_at(at, buf),
            Src::At(src) => src.read_exact_at(at, buf),
        }
    }

    /// A fixed-size array read at `offset`.
    pub fn array<const N: usize>(&self, offset: u64, what: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        self.read_into(offset, &mut out, what)?;
        Ok(out)
    }

    pub fn u8_at(&self, offset: u64, what: &'static str) -> Result<u8> {
        let [b] = self.array::<1>(offset, what)?;
        Ok(b)
    }

    pub fn u16_le(&self, offset: u64, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(offset, what)?))
    }

    pub fn u32_le(&self, offset: u64, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(offset, what)?))
    }

    pub fn u64_le(&self, offset: u64, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(offset, what)?))
    }

    /// The first `n` bytes of the window, or fewer when it is shorter.
    pub fn head(&self, n: u64) -> Result<Cow<'a, [u8]>> {
        self.bytes(0, n.min(self.len), "header")
    }
}

/// A file whose bytes lie in runs of a window ((offset, length) in the window, in
/// file order): read a piece at a time without gathering it.
pub struct Runs<'a> {
    vol: Window<'a>,
    /// (file offset, window offset, length).
    runs: Vec<(u64, u64, u64)>,
    size: u64,
}

impl<'a> Runs<'a> {
    /// None when a run passes the window's end.
    pub fn new(vol: Window<'a>, runs: &[(u64, u64)]) -> Option<Runs<'a>> {
        let mut out = Vec::with_capacity(runs.len());
        let mut size = 0u64;
        for &(o, l) in runs {
            if o.checked_add(l)? > vol.len() {
                return None;
            }
            out.push((size, o, l));
            size = size.checked_add(l)?;
        }
        Some(Runs {
            vol,
            runs: out,
            size,
        })
    }
}

impl Runs<'_> {
    /// The runs as (offset in the window, length), in file order.
    pub fn pieces(&self) -> Vec<(u64, u64)> {
        self.runs.iter().map(|&(_, o, l)| (o, l)).collect()
    }
}

impl ReadAt for Runs<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.size, offset, buf.len() as u64, "file data")?;
        // The first run that ends past `offset`.
        let first = self
            .runs
            .partition_point(|&(f, _, l)| f.saturating_add(l) <= offset);
        let mut done = 0usize;
        for &(f, o, l) in self.runs.iter().skip(first) {
            let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) else {
                break;
            };
            let at = offset.saturating_add(done as u64);
            let skip = at.saturating_sub(f);
            let n = usize::try_from(l.saturating_sub(skip))
                .unwrap_or(usize::MAX)
                .min(rest.len());
            let part = rest.get_mut(..n).unwrap_or_default();
            self.vol
                .read_into(o.saturating_add(skip), part, "file data")?;
            done = done.saturating_add(n);
        }
        Ok(())
    }
}

/// A [`ReadAt`] that keeps the last few blocks it read: the disk readers make many
/// small reads (FAT entries, directory entries, inodes) close together, and each
/// would otherwise be a system call, or a step of a decoder.
pub struct BlockCache<'a> {
    src: &'a dyn ReadAt,
    slots: RefCell<Vec<(u64, Vec<u8>)>>,
}

impl<'a> BlockCache<'a> {
    /// Blocks of this many bytes.
    pub const BLOCK: u64 = 64 << 10;
    /// At most this many blocks (1 MiB).
    pub const SLOTS: usize = 16;

    pub fn new(src: &'a dyn ReadAt) -> Self {
        BlockCache {
            src,
            slots: RefCell::new(Vec::new()),
        }
    }

    /// Copies what block `index` holds from byte `skip` into `out`; returns the count.
    fn copy_from_block(&self, index: u64, skip: u64, out: &mut [u8]) -> Result<usize> {
        let mut slots = self.slots.borrow_mut();
        let pos = match slots.iter().position(|(i, _)| *i == index) {
            Some(p) => p,
            None => {
                let start = index.saturating_mul(Self::BLOCK);
                let len = Self::BLOCK.min(self.src.size().saturating_sub(start));
                let data = self.src.read_vec(start, len, "block")?;
                if slots.len() >= Self::SLOTS {
                    slots.remove(0);
                }
                slots.push((index, data));
                slots.len().saturating_sub(1)
            }
        };
        // The most recently used block goes last.
        let slot = slots.remove(pos);
        let src = slot
            .1
            .get(usize::try_from(skip).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        let n = src.len().min(out.len());
        if let (Some(d), Some(s)) = (out.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
        slots.push(slot);
        Ok(n)
    }
}

impl ReadAt for BlockCache<'_> {
    fn size(&self) -> u64 {
        self.src.size()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if buf.len() as u64 >= Self::BLOCK {
            return self.src.read_exact_at(offset, buf);
        }
        check_range(self.size(), offset, buf.len() as u64, "read")?;
        let mut done = 0usize;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            let at = offset.saturating_add(done as u64);
            let n = self.copy_from_block(at / Self::BLOCK, at % Self::BLOCK, rest)?;
            if n == 0 {
                return Err(Error::Source {
                    offset: at,
                    what: "short block".into(),
                });
            }
            done = done.saturating_add(n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_reads_inside_and_refuses_past_the_end() {
        let data: Vec<u8> = (0u8..32).collect();
        let mut buf = [0u8; 4];
        data.read_exact_at(28, &mut buf).unwrap();
        assert_eq!(buf, [28, 29, 30, 31]);
        let err = data.read_exact_at(30, &mut buf).unwrap_err();
        assert_eq!(err.offset(), Some(30));
        assert!(data.read_vec(u64::MAX, 2, "x").is_err());
        assert_eq!(data.read_vec(1, 2, "x").unwrap(), vec![1, 2]);
    }
}
