//! Random access to bytes that need not be in memory.
//!
//! Most of the core reads `&[u8]`. Disk images can be larger than memory (a 4 GiB Talos
//! image, an 8 GiB disk in a browser tab), so readers that only need a few regions of
//! them (the partition table, filesystem metadata, the UKIs) read through [`ReadAt`]
//! instead. The caller supplies the source: a slice, a memory map, a file, a browser
//! `Blob` read with `FileReaderSync`, or a decoder of a compressed or VM image.

use crate::error::{Error, Result};

/// A source of bytes read by offset. Reads take `&self` so that one source can serve
/// several readers; sources that keep state (a decoder, a cache) use interior
/// mutability.
pub trait ReadAt {
    /// The number of bytes the source serves.
    fn size(&self) -> u64;

    /// Fills all of `buf` with the bytes from `offset`. A range that passes the end is a
    /// [`Error::Truncated`]; a source that fails is an [`Error::Source`].
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Reads `len` bytes from `offset` into a new vector, after checking the range
    /// against [`ReadAt::size`] so that a file-controlled length cannot allocate more
    /// than the source holds.
    fn read_vec(&self, offset: u64, len: u64, what: &'static str) -> Result<Vec<u8>> {
        let end = offset.checked_add(len);
        if end.is_none_or(|end| end > self.size()) {
            return Err(Error::Truncated {
                what,
                offset,
                needed: len,
                available: self.size().saturating_sub(offset),
            });
        }
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
