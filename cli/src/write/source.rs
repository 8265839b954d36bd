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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use sha2::digest::DynDigest;
use ukitool_core::bmap::{Bmap, ChecksumType};
use ukitool_core::disk::DiskImage;
use ukitool_core::units::human_size;
use ukitool_core::vdisk::VirtualDisk;

use crate::imagefile;

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
    /// The image size a stream declares before it is read (a zstd frame header, a bmap),
    /// so an image larger than the device is refused before anything is written.
    fn declared_size(&self) -> Option<u64> {
        self.size()
    }
    /// After the last chunk, before the partition table is written: a check of the
    /// whole source (its file's digest) that fails the write.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
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
    /// A raw image whose data runs are the file's allocated ranges, or `ranges` (a
    /// bmap's) when given.
    pub fn from_file(file: File, path: &Path, ranges: Option<Vec<(u64, u64)>>) -> Result<Self> {
        let meta = file.metadata()?;
        let (size, data) = if meta.file_type().is_block_device() {
            let size = super::device::block_facts(path)?.size;
            (size, vec![(0, size)])
        } else {
            let size = meta.len();
            (size, data_ranges(&file, size)?)
        };
        let data = ranges.unwrap_or(data);
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

/// A raw image read front to back: stdin, or a decoder of a compressed file. Every byte
/// is data (zero runs are found and zeroed by the engine), unless a bmap's `runs` says
/// which ranges to write: the bytes between them are read and dropped. The image size is
/// known at the end.
pub struct Streamed {
    reader: Box<dyn Read + Send>,
    what: String,
    /// For messages: "zstd" etc., and the compressed bytes read so far.
    codec: Option<(&'static str, Arc<AtomicU64>)>,
    runs: Option<RunCursor>,
    declared_size: Option<u64>,
    pos: u64,
    done: bool,
}

impl Streamed {
    pub fn stdin() -> Self {
        Streamed {
            reader: Box::new(io::stdin()),
            what: "raw image from stdin".into(),
            codec: None,
            runs: None,
            declared_size: None,
            pos: 0,
            done: false,
        }
    }

    pub fn decoded(s: imagefile::Stream, path: &Path) -> Self {
        Streamed {
            reader: s.reader,
            what: format!("{}-compressed raw image {}", s.kind.name(), path.display()),
            codec: Some((s.kind.name(), s.consumed)),
            runs: None,
            declared_size: s.declared_size,
            pos: 0,
            done: false,
        }
    }

    /// Write only `runs` (from a bmap) of an image of `size` bytes.
    pub fn with_runs(mut self, size: u64, runs: Vec<(u64, u64)>) -> Self {
        self.runs = Some(RunCursor::new(runs));
        self.declared_size = Some(size);
        self
    }

    /// Fill `dst` from the stream; the bytes read (short only at the end).
    fn fill(&mut self, dst: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < dst.len() {
            match self.reader.read(&mut dst[got..]) {
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
                Err(e) => {
                    let at = self.pos + got as u64;
                    return Err(match &self.codec {
                        Some((name, consumed)) => anyhow::anyhow!(
                            "corrupt or truncated {name} input at image byte offset {at} \
                             ({at:#x}), after {} compressed bytes: {e}",
                            consumed.load(Ordering::Relaxed)
                        ),
                        None => anyhow::anyhow!("reading stdin at byte offset {at}: {e}"),
                    });
                }
            }
        }
        Ok(got)
    }

    /// Read and drop the bytes up to `to` (unmapped ranges of a bmap).
    fn skip_to(&mut self, to: u64, buf: &mut AlignedBuf) -> Result<()> {
        while self.pos < to && !self.done {
            let n = (to - self.pos).min(buf.capacity() as u64) as usize;
            buf.set_len(n);
            let got = self.fill(buf.as_mut_slice())?;
            self.pos += got as u64;
        }
        Ok(())
    }
}

impl Source for Streamed {
    fn describe(&self) -> String {
        self.what.clone()
    }
    fn size(&self) -> Option<u64> {
        None
    }
    fn data_len(&self) -> Option<u64> {
        match &self.runs {
            Some(r) => Some(r.total()),
            None => self.declared_size,
        }
    }
    fn declared_size(&self) -> Option<u64> {
        self.declared_size
    }
    fn next_chunk(&mut self, buf: &mut AlignedBuf) -> Result<Option<u64>> {
        if self.done {
            return Ok(None);
        }
        let want = if let Some(runs) = &mut self.runs {
            let Some((off, len)) = runs.next(buf.capacity()) else {
                return Ok(None);
            };
            self.skip_to(off, buf)?;
            len
        } else {
            let mut want = buf.capacity();
            if self.pos < EDGE {
                want = want.min((EDGE - self.pos) as usize);
            }
            want
        };
        buf.set_len(want);
        let got = self.fill(buf.as_mut_slice())?;
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

/// A VM image's virtual disk, read through its tables.
pub type Virtual = Planned<VirtualBytes>;

pub struct VirtualBytes(Box<dyn VirtualDisk>);

impl ImageBytes for VirtualBytes {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        Ok(self.0.read_exact_at(offset, buf)?)
    }
}

impl Virtual {
    /// Every byte of the virtual disk is written: data as read, unallocated and zero
    /// clusters as zeros (which the engine zeroes without writing), so the device reads
    /// back exactly the image. With a bmap, only its ranges.
    pub fn new(disk: Box<dyn VirtualDisk>, path: &Path, ranges: Option<Vec<(u64, u64)>>) -> Self {
        let size = disk.size();
        let what = format!("{} image {}", disk.describe(), path.display());
        let runs = plan_runs(size, ranges.unwrap_or_else(|| vec![(0, size)]));
        Planned {
            bytes: VirtualBytes(disk),
            what,
            size,
            cursor: RunCursor::new(runs),
        }
    }
}

/// Checks each bmap range's digest as its bytes go by (chunks come in ascending order
/// and cover every range), and that the image is as long as the bmap says.
pub struct RangeChecked<S> {
    inner: S,
    bmap: Bmap,
    next: usize,
    hasher: Option<(u64, Box<dyn DynDigest + Send>)>,
    end: u64,
}

impl<S: Source> RangeChecked<S> {
    pub fn new(inner: S, bmap: Bmap) -> Self {
        RangeChecked {
            inner,
            bmap,
            next: 0,
            hasher: None,
            end: 0,
        }
    }

    fn feed(&mut self, off: u64, data: &[u8]) -> Result<()> {
        let chunk_end = off + data.len() as u64;
        self.end = self.end.max(chunk_end);
        while let Some(r) = self.bmap.ranges.get(self.next) {
            let r_end = r.offset + r.len;
            if r.offset >= chunk_end {
                break;
            }
            let from = off.max(r.offset);
            let to = chunk_end.min(r_end);
            if to > from {
                let (fed, h) = self
                    .hasher
                    .get_or_insert_with(|| (r.offset, new_hasher(self.bmap.checksum)));
                if *fed != from {
                    bail!(
                        "bmap range at byte offset {} was not read in order",
                        r.offset
                    );
                }
                h.update(&data[(from - off) as usize..(to - off) as usize]);
                *fed = to;
            }
            if r_end > chunk_end {
                break;
            }
            if let (Some(want), Some((_, h))) = (&r.digest, self.hasher.take()) {
                if h.finalize().as_ref() != want.as_slice() {
                    bail!(
                        "bmap range at byte offset {} ({:#x}), {} bytes: the image's {} differs from the bmap's \
                         (the image or the bmap is corrupt, or they do not belong together)",
                        r.offset, r.offset, r.len, self.bmap.checksum.name()
                    );
                }
            }
            self.hasher = None;
            self.next += 1;
        }
        Ok(())
    }
}

fn new_hasher(kind: ChecksumType) -> Box<dyn DynDigest + Send> {
    match kind {
        ChecksumType::Sha256 => Box::new(sha2::Sha256::default()),
        ChecksumType::Sha1 => Box::new(sha1::Sha1::default()),
    }
}

impl<S: Source> Source for RangeChecked<S> {
    fn describe(&self) -> String {
        format!(
            "{} (bmap: {} mapped)",
            self.inner.describe(),
            human_size(self.bmap.mapped_bytes())
        )
    }
    fn size(&self) -> Option<u64> {
        self.inner.size()
    }
    fn data_len(&self) -> Option<u64> {
        self.inner.data_len()
    }
    fn declared_size(&self) -> Option<u64> {
        Some(self.bmap.image_size)
    }
    fn next_chunk(&mut self, buf: &mut AlignedBuf) -> Result<Option<u64>> {
        match self.inner.next_chunk(buf)? {
            Some(off) => {
                self.feed(off, buf.as_slice())?;
                Ok(Some(off))
            }
            None => {
                if let Some(r) = self.bmap.ranges.get(self.next) {
                    bail!(
                        "the image ends at byte offset {} ({:#x}), inside or before the bmap range at {} \
                         (the image is truncated, or the bmap is for another image)",
                        self.end, self.end, r.offset
                    );
                }
                Ok(None)
            }
        }
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<bool> {
        self.inner.read_at(offset, buf)
    }
    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
}

/// Checks the sha256 of the SOURCE file as given (compressed, or the VM image) while
/// the image is written: a helper thread reads the file front to back (from the page
/// cache, mostly, as the writer reads it too), and the digest is compared after the
/// last chunk and before the partition table is written. A mismatch thus leaves a
/// device with no valid partition table, and costs no extra pass before the write.
pub struct DigestChecked<'a> {
    inner: Box<dyn Source + 'a>,
    path: std::path::PathBuf,
    want: String,
    hashing: Option<std::thread::JoinHandle<Result<(String, u64)>>>,
}

impl<'a> DigestChecked<'a> {
    pub fn new(inner: Box<dyn Source + 'a>, path: &Path, want: String) -> Self {
        let p = path.to_path_buf();
        let hashing = std::thread::spawn(move || imagefile::sha256_file(&p));
        DigestChecked {
            inner,
            path: path.to_path_buf(),
            want,
            hashing: Some(hashing),
        }
    }
}

impl Source for DigestChecked<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn size(&self) -> Option<u64> {
        self.inner.size()
    }
    fn data_len(&self) -> Option<u64> {
        self.inner.data_len()
    }
    fn declared_size(&self) -> Option<u64> {
        self.inner.declared_size()
    }
    fn next_chunk(&mut self, buf: &mut AlignedBuf) -> Result<Option<u64>> {
        self.inner.next_chunk(buf)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<bool> {
        self.inner.read_at(offset, buf)
    }
    fn finish(&mut self) -> Result<()> {
        self.inner.finish()?;
        let Some(h) = self.hashing.take() else {
            return Ok(());
        };
        let (got, len) = h
            .join()
            .map_err(|_| anyhow::anyhow!("the sha256 thread failed"))??;
        if got != self.want {
            bail!(
                "{} has sha256 {got}, not {} (read to its end, byte offset {len}): the file is \
                 corrupt or not the one meant",
                self.path.display(),
                self.want
            );
        }
        Ok(())
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
