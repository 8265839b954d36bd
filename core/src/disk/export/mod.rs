//! A [`DiskImage`] as the files people ship: raw, qcow2 v3, VHD (dynamic and fixed),
//! VMDK streamOptimized, and its bmap. Pure: each format is planned from the extent
//! model and emitted as an ordered sequence of [`Chunk`]s that the caller pulls and
//! writes wherever it likes (a sparse file, a compressor, stdout, a browser stream).
//!
//! ```text
//!  DiskImage ──► Export::new(&img, Format, &ExportOptions) ──► next_chunk(&img) ─┬─► Data(bytes)
//!  (extents)       plans headers and tables up front                             └─► Zeros(n)
//! ```
//!
//! An `Export` holds no borrow of the image: the caller passes the image to each
//! `next_chunk`, so a front end can keep both side by side (the page keeps them in one
//! wasm-bindgen object and pulls a chunk per `ReadableStream` pull).
//!
//! A `Zeros` chunk is a run the output holds as zeros: a file sink seeks over it (and
//! leaves a hole), a stream sink writes zeros or lets its codec see them cheaply. Image
//! data is borrowed from the extents where it lies inside one; only VMDK's deflated
//! grains and the formats' own tables are built in memory, a cluster or a table at a
//! time, so a multi-GiB image costs about its metadata.
//!
//! Reproducible: the same image and options give the same bytes. Fields other tools
//! fill from the clock or a random source (VHD's timestamp and unique id, VMDK's CID)
//! come from [`ExportOptions`].

pub mod bmap;
pub mod qcow2;
pub mod vhd;
pub mod vmdk;

use std::borrow::Cow;
use std::collections::VecDeque;

use sha2::{Digest, Sha256};

use super::DiskImage;
use crate::error::{Error, Result};

/// The container an image is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Every byte of the disk in order.
    Raw,
    /// qcow2 version 3, 64 KiB clusters, 16-bit refcounts (QEMU, libvirt, OpenStack).
    Qcow2,
    /// VHD dynamic: 2 MiB blocks, only the blocks holding data (Hyper-V, VirtualBox).
    Vhd,
    /// VHD fixed: the raw disk and a 512-byte footer (Azure: size a whole MiB).
    VhdFixed,
    /// VMDK streamOptimized: deflated 64 KiB grains (VMware, OVA/OVF).
    Vmdk,
}

impl Format {
    pub const NAMES: &'static [&'static str] = &["raw", "qcow2", "vhd", "vhd-fixed", "vmdk"];

    pub fn parse(s: &str) -> Result<Format> {
        Ok(match s {
            "raw" | "img" => Format::Raw,
            "qcow2" => Format::Qcow2,
            "vhd" | "vpc" => Format::Vhd,
            "vhd-fixed" => Format::VhdFixed,
            "vmdk" => Format::Vmdk,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown image format {s:?}: expected one of {}",
                    Format::NAMES.join(", ")
                )))
            }
        })
    }

    /// The format a file name's extension names (`disk.qcow2`), if any.
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext.to_ascii_lowercase().as_str() {
            "qcow2" => Some(Format::Qcow2),
            "vhd" => Some(Format::Vhd),
            "vmdk" => Some(Format::Vmdk),
            "raw" | "img" => Some(Format::Raw),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Vhd => "vhd",
            Format::VhdFixed => "vhd-fixed",
            Format::Vmdk => "vmdk",
        }
    }
}

/// What an output needs beyond the image: the values other tools take from the clock
/// or a random source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Unix time written in VHD's footer (default: 0, read as 2000-01-01 by VHD).
    pub timestamp: Option<i64>,
    /// Seeds VHD's unique id and VMDK's CID (the CLI passes the disk GUID).
    pub id_seed: String,
    /// The file name VMDK's descriptor gives its one extent (default `disk.vmdk`).
    pub file_name: Option<String>,
    /// zlib level of VMDK's grains, 0 to 9 (default 6).
    pub deflate_level: Option<u32>,
}

impl ExportOptions {
    /// 16 bytes derived from the seed and `what`, for ids that must be unique per disk
    /// and the same on every run.
    pub(crate) fn derive_id(&self, what: &str) -> [u8; 16] {
        let d = Sha256::new()
            .chain_update(b"ukitool export id\0")
            .chain_update(what.as_bytes())
            .chain_update([0u8])
            .chain_update(self.id_seed.as_bytes())
            .finalize();
        let mut id = [0u8; 16];
        id.iter_mut().zip(d.iter()).for_each(|(o, i)| *o = *i);
        id
    }
}

/// One piece of the output, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk<'i> {
    /// Bytes to write.
    Data(Cow<'i, [u8]>),
    /// `n` bytes that read as zero.
    Zeros(u64),
}

impl Chunk<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Chunk::Data(d) => d.len() as u64,
            Chunk::Zeros(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A planned part of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Bytes the format builds (headers, tables, deflated grains).
    Bytes(Vec<u8>),
    /// `len` bytes of the disk from `offset`; past the disk's end they read as zero.
    Image { offset: u64, len: u64 },
}

/// Makes the pieces of a format, in order; formats that know their whole layout up
/// front use a queue, VMDK builds its tables as the grains go by.
pub(crate) trait Pieces {
    fn next_piece(&mut self, img: &DiskImage<'_>) -> Result<Option<Piece>>;
}

impl Pieces for VecDeque<Piece> {
    fn next_piece(&mut self, _img: &DiskImage<'_>) -> Result<Option<Piece>> {
        Ok(self.pop_front())
    }
}

/// The output of one image in one format, pulled chunk by chunk. Pass the same image
/// to every call that it was planned from.
pub struct Export {
    pieces: Box<dyn Pieces>,
    /// The image range still to emit from the current `Piece::Image`: (offset, end).
    image_range: Option<(u64, u64)>,
    len: Option<u64>,
    emitted: u64,
}

/// The most a `Chunk::Data` copied out of the image (across extent edges) holds.
const MAX_COPY: u64 = 1 << 20;

impl Export {
    pub fn new(img: &DiskImage<'_>, format: Format, opts: &ExportOptions) -> Result<Self> {
        let (pieces, len): (Box<dyn Pieces>, Option<u64>) = match format {
            Format::Raw => {
                let q = VecDeque::from([Piece::Image {
                    offset: 0,
                    len: img.size,
                }]);
                (Box::new(q), Some(img.size))
            }
            Format::Qcow2 => {
                let (q, len) = qcow2::plan(img)?;
                (Box::new(q), Some(len))
            }
            Format::Vhd => {
                let (q, len) = vhd::plan_dynamic(img, opts)?;
                (Box::new(q), Some(len))
            }
            Format::VhdFixed => {
                let (q, len) = vhd::plan_fixed(img, opts)?;
                (Box::new(q), Some(len))
            }
            Format::Vmdk => (Box::new(vmdk::Stream::new(img, opts)?), None),
        };
        Ok(Export {
            pieces,
            image_range: None,
            len,
            emitted: 0,
        })
    }

    /// The output's length when it is known before it is made (all but VMDK).
    pub fn len_hint(&self) -> Option<u64> {
        self.len
    }

    /// Bytes emitted so far.
    pub fn position(&self) -> u64 {
        self.emitted
    }

    /// The next chunk of the output of `img`, or None at the end.
    pub fn next_chunk<'i>(&mut self, img: &'i DiskImage<'_>) -> Result<Option<Chunk<'i>>> {
        loop {
            if let Some((pos, end)) = self.image_range {
                if pos < end {
                    let c = image_chunk(img, pos, end);
                    self.image_range = Some((pos.saturating_add(c.len()), end));
                    self.emitted = self.emitted.saturating_add(c.len());
                    return Ok(Some(c));
                }
                self.image_range = None;
            }
            let c = match self.pieces.next_piece(img)? {
                None => return Ok(None),
                Some(Piece::Image { offset, len }) => {
                    let end = offset.checked_add(len).ok_or_else(|| {
                        Error::invalid(format!("image range {offset:#x}+{len:#x} overflows"))
                    })?;
                    self.image_range = Some((offset, end));
                    continue;
                }
                Some(Piece::Bytes(b)) => Chunk::Data(Cow::Owned(b)),
            };
            if c.is_empty() {
                continue;
            }
            self.emitted = self.emitted.saturating_add(c.len());
            return Ok(Some(c));
        }
    }

    /// Pull every chunk of the output of `img` into `sink`; returns the bytes written.
    pub fn write_to<S: Sink>(mut self, img: &DiskImage<'_>, sink: &mut S) -> Result<u64, S::Error> {
        while let Some(c) = self.next_chunk(img)? {
            match c {
                Chunk::Data(d) => sink.data(&d)?,
                Chunk::Zeros(n) => sink.zeros(n)?,
            }
        }
        Ok(self.emitted)
    }
}

/// Where an [`Export`] goes: a file (seek over zeros), a codec, a browser stream.
pub trait Sink {
    type Error: From<Error>;
    fn data(&mut self, d: &[u8]) -> Result<(), Self::Error>;
    fn zeros(&mut self, n: u64) -> Result<(), Self::Error>;
}

/// The whole output in memory: for small images and tests.
impl Sink for Vec<u8> {
    type Error = Error;
    fn data(&mut self, d: &[u8]) -> Result<()> {
        self.extend_from_slice(d);
        Ok(())
    }
    fn zeros(&mut self, n: u64) -> Result<()> {
        let len = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_add(self.len()))
            .ok_or_else(|| overflow("output in memory"))?;
        self.resize(len, 0);
        Ok(())
    }
}

/// The image's bytes from `pos` (below `end`): borrowed when `pos` is in an extent (up
/// to its end), zeros up to the next extent when it is in a hole, copied when a short
/// read must cross extent edges never (each chunk stays on one side of an edge).
fn image_chunk<'i>(img: &'i DiskImage<'_>, pos: u64, end: u64) -> Chunk<'i> {
    let ext = img.extents();
    let idx = ext.partition_point(|e| e.end() <= pos);
    match ext.get(idx) {
        Some(e) if e.offset <= pos => {
            let skip = usize::try_from(pos.saturating_sub(e.offset)).unwrap_or(usize::MAX);
            let take = usize::try_from(end.min(e.end()).saturating_sub(pos)).unwrap_or(0);
            match skip
                .checked_add(take)
                .and_then(|stop| e.data.get(skip..stop))
            {
                Some(d) => Chunk::Data(Cow::Borrowed(d)),
                // Not reachable for a well-formed DiskImage; copy rather than fail.
                None => {
                    let n = end.saturating_sub(pos).min(MAX_COPY);
                    let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0)];
                    img.read_at(pos, &mut buf);
                    Chunk::Data(Cow::Owned(buf))
                }
            }
        }
        Some(e) => Chunk::Zeros(e.offset.min(end).saturating_sub(pos)),
        None => Chunk::Zeros(end.saturating_sub(pos)),
    }
}

/// The indices of the `unit`-byte units of the image that hold a non-zero byte, in
/// order. Zero-filled extents (which a raw writer must write) need no unit in a format
/// whose unallocated units read as zero.
pub(crate) fn nonzero_units(img: &DiskImage<'_>, unit: u64) -> Result<Vec<u64>> {
    if unit == 0 {
        return Err(Error::invalid("unit size 0"));
    }
    let mut units: Vec<u64> = Vec::new();
    for e in img.extents() {
        let mut pos = e.offset;
        while pos < e.end() {
            let u = pos.checked_div(unit).unwrap_or(0);
            let unit_end = u.saturating_add(1).saturating_mul(unit).min(e.end());
            let from = usize::try_from(pos.saturating_sub(e.offset)).unwrap_or(usize::MAX);
            let to = usize::try_from(unit_end.saturating_sub(e.offset)).unwrap_or(usize::MAX);
            let nonzero = e.data.get(from..to).is_some_and(|d| !is_zero(d));
            if nonzero && units.last() != Some(&u) {
                units.push(u);
            }
            pos = unit_end;
        }
    }
    Ok(units)
}

/// True when every byte is zero (word at a time: this scans every data byte).
pub(crate) fn is_zero(d: &[u8]) -> bool {
    let words = d.chunks_exact(8);
    let rest = words.remainder();
    words
        .map(|w| <[u8; 8]>::try_from(w).map_or(1, u64::from_ne_bytes))
        .all(|w| w == 0)
        && rest.iter().all(|&b| b == 0)
}

/// `n` rounded up to a multiple of `to` (a power of two or any non-zero value).
pub(crate) fn round_up(n: u64, to: u64) -> Result<u64> {
    n.div_ceil(to.max(1))
        .checked_mul(to)
        .ok_or_else(|| Error::invalid(format!("{n:#x} rounded up to {to:#x} overflows")))
}

/// `n` bytes of zeros appended to `v` up to a length that is a multiple of `to`.
pub(crate) fn pad_to(v: &mut Vec<u8>, to: usize) {
    let len = v.len().div_ceil(to.max(1)).saturating_mul(to.max(1));
    v.resize(len, 0);
}

pub(crate) fn overflow(what: &str) -> Error {
    Error::invalid(format!("{what} overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> DiskImage<'static> {
        let mut img = DiskImage::new(8 << 20);
        img.put(0, vec![1u8; 512]).unwrap();
        img.put(4096, vec![0u8; 8192]).unwrap();
        img.put(3 << 20, vec![7u8; 100_000]).unwrap();
        img.put((8 << 20) - 512, vec![9u8; 512]).unwrap();
        img
    }

    pub(crate) fn collect(img: &DiskImage<'_>, f: Format) -> Vec<u8> {
        let mut out = Vec::new();
        let e = Export::new(img, f, &ExportOptions::default()).unwrap();
        let n = e.write_to(img, &mut out).unwrap();
        assert_eq!(n, out.len() as u64);
        out
    }

    #[test]
    fn raw_export_is_the_image_with_holes_as_zero_chunks() {
        let img = sample();
        assert_eq!(collect(&img, Format::Raw), img.to_vec());
        let mut e = Export::new(&img, Format::Raw, &ExportOptions::default()).unwrap();
        let mut kinds = Vec::new();
        while let Some(c) = e.next_chunk(&img).unwrap() {
            kinds.push(matches!(c, Chunk::Data(Cow::Borrowed(_))));
        }
        assert_eq!(kinds, [true, false, true, false, true, false, true]);
    }

    #[test]
    fn nonzero_units_skip_zero_extents() {
        let img = sample();
        assert_eq!(nonzero_units(&img, 1 << 16).unwrap(), vec![0, 48, 49, 127]);
        assert!(is_zero(&[0; 17]) && !is_zero(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    }
}
