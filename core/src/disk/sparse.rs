//! The sparse image model shared by every image writer.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// Bytes of one extent: borrowed from an input (zero-copy) or owned metadata.
pub type ExtentData<'a> = Cow<'a, [u8]>;

/// A run of data at a byte offset of the image. Everything not covered by an extent
/// reads as zero. Extents that must read as zero on the target (GPT backup area, FAT
/// tables) are still extents, with zero bytes: a writer must write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent<'a> {
    pub offset: u64,
    pub data: ExtentData<'a>,
}

impl Extent<'_> {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.data.len() as u64)
    }
}

/// A disk image: its total size and its sorted, non-overlapping data extents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskImage<'a> {
    pub size: u64,
    extents: Vec<Extent<'a>>,
}

impl<'a> DiskImage<'a> {
    pub fn new(size: u64) -> Self {
        DiskImage {
            size,
            extents: Vec::new(),
        }
    }

    /// Add an extent; it must lie inside the image and not overlap another one.
    pub fn put(&mut self, offset: u64, data: impl Into<ExtentData<'a>>) -> Result<()> {
        let data = data.into();
        if data.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "data at {offset:#x} (+{:#x}) does not fit in a {:#x}-byte image",
                    data.len(),
                    self.size
                ))
            })?;
        let idx = self.extents.partition_point(|e| e.offset < offset);
        let overlaps_prev = idx
            .checked_sub(1)
            .and_then(|i| self.extents.get(i))
            .is_some_and(|p| p.end() > offset);
        let overlaps_next = self.extents.get(idx).is_some_and(|n| n.offset < end);
        if overlaps_prev || overlaps_next {
            return Err(Error::invalid(format!(
                "data at {offset:#x}..{end:#x} overlaps data already placed"
            )));
        }
        self.extents.insert(idx, Extent { offset, data });
        Ok(())
    }

    /// The extents in ascending offset order.
    pub fn extents(&self) -> &[Extent<'a>] {
        &self.extents
    }

    /// Total bytes of data (what a sparse writer writes).
    pub fn data_len(&self) -> u64 {
        self.extents.iter().map(|e| e.data.len() as u64).sum()
    }

    /// Read `buf.len()` bytes at `offset`, holes as zeros.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) {
        buf.fill(0);
        let end = offset.saturating_add(buf.len() as u64);
        let first = self.extents.partition_point(|e| e.end() <= offset);
        for e in self.extents.iter().skip(first) {
            if e.offset >= end {
                break;
            }
            // Where the overlap starts in the extent and in `buf`; one of them is 0 and
            // the other is below that side's length, so both fit in usize.
            let (Ok(skip), Ok(at)) = (
                usize::try_from(offset.saturating_sub(e.offset)),
                usize::try_from(e.offset.saturating_sub(offset)),
            ) else {
                continue;
            };
            let src = e.data.get(skip..).unwrap_or_default();
            let dst = buf.get_mut(at..).unwrap_or_default();
            let n = src.len().min(dst.len());
            if let (Some(src), Some(dst)) = (src.get(..n), dst.get_mut(..n)) {
                dst.copy_from_slice(src);
            }
        }
    }

    /// Walk the image in order as (offset, bytes) data runs and zero runs, calling
    /// `data` for extents and `zeros` for holes. A sink writes data and seeks (or
    /// streams zeros) over holes.
    pub fn walk<E>(
        &self,
        mut data: impl FnMut(u64, &[u8]) -> Result<(), E>,
        mut zeros: impl FnMut(u64, u64) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut pos = 0u64;
        for e in &self.extents {
            if let Some(gap) = e.offset.checked_sub(pos).filter(|&n| n > 0) {
                zeros(pos, gap)?;
            }
            data(e.offset, &e.data)?;
            pos = e.end();
        }
        if let Some(rest) = self.size.checked_sub(pos).filter(|&n| n > 0) {
            zeros(pos, rest)?;
        }
        Ok(())
    }

    /// The whole image as one buffer. Only for small images and tests.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0u8; usize::try_from(self.size).unwrap_or(0)];
        self.read_at(0, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_sort_refuse_overlap_and_read_back() {
        let mut img = DiskImage::new(100);
        img.put(50, &b"world"[..]).unwrap();
        img.put(10, vec![1, 2, 3]).unwrap();
        assert!(img.put(11, &b"x"[..]).is_err());
        assert!(img.put(98, &b"xyz"[..]).is_err());
        assert_eq!(img.extents()[0].offset, 10);
        let mut buf = [9u8; 8];
        img.read_at(8, &mut buf);
        assert_eq!(buf, [0, 0, 1, 2, 3, 0, 0, 0]);
        assert_eq!(img.data_len(), 8);
        let v = img.to_vec();
        assert_eq!(&v[50..55], b"world");
        let runs = std::cell::RefCell::new(Vec::new());
        img.walk::<()>(
            |o, d| {
                runs.borrow_mut().push((o, d.len() as u64, true));
                Ok(())
            },
            |o, n| {
                runs.borrow_mut().push((o, n, false));
                Ok(())
            },
        )
        .unwrap();
        let runs = runs.into_inner();
        assert_eq!(
            runs,
            vec![
                (0, 10, false),
                (10, 3, true),
                (13, 37, false),
                (50, 5, true),
                (55, 45, false)
            ]
        );
    }
}
