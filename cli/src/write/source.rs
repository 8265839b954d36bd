//! What gets written: a plan of data runs and the bytes for each, from a raw image file,
//! from stdin, or from an image synthesised in memory from a UKI.
//!
//! Holes are never written (bmaptool's sparse write). Which ranges are holes depends on
//! the source:
//! - a synthesised [`DiskImage`]: its extents are exactly the data, including the ranges
//!   that must read as zero (GPT arrays, FAT tables);
//! - a raw file: the file system's holes (SEEK_DATA/SEEK_HOLE). An allocated block of
//!   zeros may be a FAT table that must read as zero, so it is data; only a hole is free.
//! - stdin: no holes can be known, every byte is data.
//!
//! Whatever the source, the image's first and last MiB are always written in full: they
//! hold the protective MBR and both GPTs, and a stale byte there corrupts the table.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};
use ukitool_core::disk::DiskImage;

use super::device::{AlignedBuf, ALIGN};

/// The first MiB (protective MBR + primary GPT) and the last MiB (backup GPT) of an image.
pub const EDGE: u64 = 1 << 20;
/// Largest single write: big enough to keep a USB stick or NVMe busy, small enough that a
/// Ctrl-C is noticed within one write.
pub const CHUNK: usize = 4 << 20;
/// Extents closer than this are written as one run (zeros in between): one 4 MiB write is
/// cheaper than several small ones with a seek between, on flash and on rotating disks.
const MERGE_GAP: u64 = 64 << 10;

/// Where the bytes of an image come from. `Send`: chunks are read on a helper thread.
pub trait Source: Send {
    /// One line for messages ("raw image x.img", "UKI x.efi in uefi layout").
    fn describe(&self) -> String;
    /// The image size, when known before writing (not for stdin).
    fn size(&self) -> Option<u64>;
    /// The bytes that will be written, when known.
    fn data_len(&self) -> Option<u64>;
    /// Fill `buf` with the next chunk of data, at most `max` bytes, and return its image
    /// offset; `None` at the end. Chunks come in ascending order and never cross `EDGE`.
    fn next_chunk(&mut self, buf: &mut AlignedBuf) -> Result<Option<u64>>;
    /// Read image bytes again (to locate a verify mismatch); `false` when the source
    /// cannot be re-read (stdin).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<bool>;
}

/// Data runs of an image: `extents` (sorted or not) aligned outwards to [`ALIGN`], plus the
/// first and last MiB, merged when close, clamped to the image.
pub fn plan_runs(size: u64, extents: impl IntoIterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let a = ALIGN as u64;
    let mut v: Vec<(u64, u64)> = extents
        .into_iter()
        .filter(|&(_, len)| len > 0)
        .map(|(off, len)| {
            let start = off - off % a;
            let end = off.saturating_add(len);
            let end = end.saturating_add(a - 1) / a * a;
            (start.min(size), end.min(size))
        })
        .collect();
    v.push((0, EDGE.min(size)));
    v.push((size.saturating_sub(EDGE), size));
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (s, e) in v.into_iter().filter(|(s, e)| e > s) {
        match out.last_mut() {
            Some(last) if s <= last.1.saturating_add(MERGE_GAP) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Walks planned runs in chunks of at most [`CHUNK`], split at `EDGE` and at multiples of
/// `CHUNK`, so writes stay aligned and large.
struct RunCursor {
    runs: Vec<(u64, u64)>,
    idx: usize,
    pos: u64,
}

impl RunCursor {
    fn new(runs: Vec<(u64, u64)>) -> Self {
        let pos = runs.first().map_or(0, |r| r.0);
        RunCursor { runs, idx: 0, pos }
    }

    fn total(&self) -> u64 {
        self.runs.iter().map(|(s, e)| e - s).sum()
    }

    /// The next (offset, len), or None.
    fn next(&mut self, max: usize) -> Option<(u64, usize)> {
        loop {
            let &(start, end) = self.runs.get(self.idx)?;
            let pos = self.pos.max(start);
            if pos >= end {
                self.idx += 1;
                continue;
            }
            let chunk = CHUNK.min(max) as u64;
            let mut stop = end.min((pos / chunk + 1) * chunk);
            if pos < EDGE {
                stop = stop.min(EDGE);
            }
            self.pos = stop;
            return Some((pos, (stop - pos) as usize));
        }
    }
}

/// Image bytes that can be read again at any offset.
pub trait ImageBytes: Send {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
}

/// An image whose data runs are planned before writing: a raw file, or one synthesised
/// in memory.
pub struct Planned<B> {
    bytes: B,
    what: String,
    size: u64,
    cursor: RunCursor,
}

impl<B: ImageBytes> Source for Planned<B> {
    fn describe(&self) -> String {
        self.what.clone()
    }
    fn size(&self) -> Option<u64> {
        Some(self.size)
    }
    fn data_len(&self) -> Option<u64> {
        Some(self.cursor.total())
    }
    fn next_chunk(&mut self, buf: &mut AlignedBuf) -> Result<Option<u64>> {
        let Some((off, len)) = self.cursor.next(buf.capacity()) else {
            return Ok(None);
        };
        buf.set_len(len);
        self.bytes.read_exact_at(off, buf.as_mut_slice())?;
        Ok(Some(off))
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<bool> {
        self.bytes.read_exact_at(offset, buf)?;
        Ok(true)
    }
}

/// A raw image in a regular file or on a block device.
pub type RawFile = Planned<NamedFile>;

/// An open file and its name for messages.
pub struct NamedFile {
    file: File,
    name: String,
}

impl ImageBytes for NamedFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .with_context(|| format!("reading {} at {offset:#x}", self.name))
    }
}

impl RawFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let meta = file.metadata()?;
        let (size, data) = if meta.file_type().is_block_device() {
            let size = super::device::block_facts(path)?.size;
            (size, vec![(0, size)])
        } else {
            let size = meta.len();
            (size, data_ranges(&file, size)?)
        };
        let name = path.display().to_string();
        Ok(Planned {
            what: format!("raw image {name}"),
            size,
            cursor: RunCursor::new(plan_runs(size, data)),
            bytes: NamedFile { file, name },
        })
    }
}

/// The allocated ranges of a file, from SEEK_DATA/SEEK_HOLE. File systems without hole
/// reporting answer "all data", which is correct, just not sparse.
fn data_ranges(file: &File, size: u64) -> Result<Vec<(u64, u64)>> {
    let fd = file.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: u64 = 0;
    while pos < size {
        let Ok(at) = i64::try_from(pos) else { break };
        // SAFETY: lseek on an open descriptor; the file offset is not used elsewhere
        // (all reads are positioned).
        #[allow(unsafe_code)]
        let data = unsafe { libc::lseek(fd, at, libc::SEEK_DATA) };
        if data < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENXIO) => break, // no data after pos
                Some(libc::EINVAL) => {
                    out.push((pos, size - pos));
                    break;
                }
                _ => return Err(e).context("SEEK_DATA"),
            }
        }
        #[allow(unsafe_code)]
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let (Ok(data), Ok(hole)) = (u64::try_from(data), u64::try_from(hole)) else {
            return Err(io::Error::last_os_error()).context("SEEK_HOLE");
        };
        let hole = hole.min(size);
        if hole <= data {
            break;
        }
        out.push((data, hole - data));
        pos = hole;
    }
    Ok(out)
}

/// A raw image streamed from stdin: every byte is data, and the size is known at the end.
pub struct Stdin {
    pos: u64,
    done: bool,
}

impl Stdin {
    pub fn new() -> Self {
        Stdin {
            pos: 0,
            done: false,
        }
    }
}

impl Source for Stdin {
    fn describe(&self) -> String {
        "raw image from stdin".into()
    }
    fn size(&self) -> Option<u64> {
        None
    }
    fn data_len(&self) -> Option<u64> {
        None
    }
    fn next_chunk(&mut self, buf: &mut AlignedBuf) -> Result<Option<u64>> {
        if self.done {
            return Ok(None);
        }
        let mut want = buf.capacity();
        if self.pos < EDGE {
            want = want.min((EDGE - self.pos) as usize);
        }
        buf.set_len(want);
        let dst = buf.as_mut_slice();
        let mut got = 0;
        let mut stdin = io::stdin().lock();
        while got < dst.len() {
            match stdin.read(&mut dst[got..]) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    // SIGINT during a read: let the engine see its flag.
                    if got == 0 {
                        continue;
                    }
                    break;
                }
                Err(e) => return Err(e).context("reading stdin"),
            }
        }
        if got == 0 {
            return Ok(None);
        }
        buf.set_len(got);
        let off = self.pos;
        self.pos += got as u64;
        Ok(Some(off))
    }
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> Result<bool> {
        Ok(false)
    }
}

/// An image synthesised in memory (from a UKI): its extents are exactly the data.
pub type Synthesized<'a> = Planned<DiskImage<'a>>;

impl ImageBytes for DiskImage<'_> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.read_at(offset, buf);
        Ok(())
    }
}

impl<'a> Synthesized<'a> {
    pub fn new(image: DiskImage<'a>, what: String) -> Self {
        let runs = plan_runs(
            image.size,
            image
                .extents()
                .iter()
                .map(|e| (e.offset, e.data.len() as u64)),
        );
        Planned {
            size: image.size,
            bytes: image,
            what,
            cursor: RunCursor::new(runs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_align_merge_and_always_cover_both_edges() {
        let size = 100 << 20;
        let runs = plan_runs(
            size,
            [(5 << 20, 10), (5 << 20 | 20 << 10, 1), (50 << 20, 1)],
        );
        assert_eq!(
            runs,
            vec![
                (0, EDGE),
                (5 << 20, (5 << 20) + (24 << 10)),
                (50 << 20, (50 << 20) + 4096),
                (size - EDGE, size)
            ]
        );
        // A tiny image: one run, clamped.
        assert_eq!(plan_runs(1000, []), vec![(0, 1000)]);
    }

    #[test]
    fn cursor_splits_at_edge_and_chunk_boundaries() {
        let mut c = RunCursor::new(vec![(0, 10 << 20)]);
        let mut got = Vec::new();
        while let Some(x) = c.next(CHUNK) {
            got.push(x);
        }
        assert_eq!(
            got,
            vec![
                (0, 1 << 20),
                (1 << 20, 3 << 20),
                (4 << 20, 4 << 20),
                (8 << 20, 2 << 20)
            ]
        );
    }
}
