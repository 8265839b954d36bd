//! Compressed disk images (`.raw.zst`, `.raw.xz`, `.raw.gz`) read as a [`ReadAt`]
//! without decompressing them to memory or to a file.
//!
//! None of the three formats, as their command-line tools write them, allows
//! decoding from an arbitrary offset: [`Forward`] decodes forwards only, keeps the
//! chunks it passed in a bounded cache (all-zero chunks as one bit each, the others
//! up to a byte budget, least recently used dropped first), and when a reader asks
//! for a chunk behind the decoder that is no longer cached it starts decoding again
//! from the beginning ([`Forward::restarts`] counts how often). The disk readers
//! read mostly in ascending order and a disk image is mostly zeros, so inspecting a
//! 4 GiB Talos image decodes it about once.
//!
//! The decoders here are pure Rust (ruzstd, lzma-rust2, flate2's miniz_oxide) so
//! that the page can use them too; a caller may supply its own ([`Forward::new`]).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::Read;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::readat::{check_range, ReadAt};

/// A compression recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Xz,
    Gzip,
}

impl Compression {
    /// The compression whose magic `head` starts with.
    pub fn detect(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Gzip => "gzip",
        }
    }
}

/// A [`ReadAt`] read from its start as a `Read`.
pub struct SeqReader<'a> {
    src: Rc<dyn ReadAt + 'a>,
    pos: u64,
}

impl<'a> SeqReader<'a> {
    pub fn new(src: Rc<dyn ReadAt + 'a>) -> Self {
        SeqReader { src, pos: 0 }
    }

    fn left(&self) -> u64 {
        self.src.size().saturating_sub(self.pos)
    }
}

impl std::io::Read for SeqReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = usize::try_from(self.left())
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let b = buf.get_mut(..n).unwrap_or_default();
        self.src
            .read_exact_at(self.pos, b)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.pos = self.pos.saturating_add(n as u64);
        Ok(n)
    }
}

/// zstd frames one after another (pzstd and `cat a.zst b.zst` write several).
struct ZstdFrames<'a> {
    dec: Option<ruzstd::decoding::StreamingDecoder<Buffered<'a>, ruzstd::decoding::FrameDecoder>>,
}

/// The compressed input, read from its source 1 MiB at a time: a source behind a
/// call (the page's `FileReaderSync`) is then called rarely.
type Buffered<'a> = std::io::BufReader<SeqReader<'a>>;

impl std::io::Read for ZstdFrames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(dec) = self.dec.as_mut() else {
                return Ok(0);
            };
            let n = dec.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(old) = self.dec.take() else {
                return Ok(0);
            };
            let (src, frame) = old.into_parts();
            if src.get_ref().left() == 0 && src.buffer().is_empty() {
                return Ok(0);
            }
            let next = ruzstd::decoding::StreamingDecoder::new_with_decoder(src, frame)
                .map_err(|e| std::io::Error::other(format!("zstd frame: {e}")))?;
            self.dec = Some(next);
        }
    }
}

/// A pure-Rust decoder of `src` from its start.
pub fn decoder<'a>(kind: Compression, src: Rc<dyn ReadAt + 'a>) -> Result<Box<dyn Read + 'a>> {
    let r = std::io::BufReader::with_capacity(1 << 20, SeqReader::new(src));
    Ok(match kind {
        Compression::Zstd => {
            let dec = ruzstd::decoding::StreamingDecoder::new(r).map_err(|e| Error::Source {
                offset: 0,
                what: format!("zstd frame header: {e}"),
            })?;
            Box::new(ZstdFrames { dec: Some(dec) })
        }
        Compression::Xz => Box::new(lzma_rust2::XzReader::new(r, true)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
    })
}

/// The decompressed size when the format's headers give it without decoding: a
/// zstd stream of one frame with its content size, or an xz stream's index.
pub fn stated_size(kind: Compression, src: &dyn ReadAt) -> Option<u64> {
    match kind {
        Compression::Zstd => zstd_content_size(src),
        Compression::Xz => xz_index_size(src),
        Compression::Gzip => None,
    }
}

/// Frame_Content_Size of a zstd stream that is one frame (RFC 8878 §3.1.1.1).
fn zstd_content_size(src: &dyn ReadAt) -> Option<u64> {
    let head = src.read_vec(0, src.size().min(18), "zstd").ok()?;
    let fhd = *head.get(4)?;
    let fcs_flag = fhd >> 6;
    let single = fhd & 0x20 != 0;
    let did: usize = match fhd & 3 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    };
    let fcs_len = match (fcs_flag, single) {
        (0, true) => 1,
        (0, false) => return None,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let at = 5usize.checked_add(usize::from(!single))?.checked_add(did)?;
    let raw = head.get(at..at.checked_add(fcs_len)?)?;
    let mut v = [0u8; 8];
    v.get_mut(..fcs_len)?.copy_from_slice(raw);
    let n = u64::from_le_bytes(v);
    let size = if fcs_len == 2 { n.checked_add(256)? } else { n };
    // One frame only: walk its blocks to its end and check nothing follows.
    let end = zstd_frame_end(src, at.checked_add(fcs_len)? as u64, fhd & 4 != 0)?;
    (end == src.size()).then_some(size)
}

/// The offset just past a zstd frame whose first block header is at `at`.
fn zstd_frame_end(src: &dyn ReadAt, mut at: u64, checksum: bool) -> Option<u64> {
    loop {
        let mut h = [0u8; 3];
        src.read_exact_at(at, &mut h).ok()?;
        let v = u32::from_le_bytes([h[0], h[1], h[2], 0]);
        let last = v & 1 != 0;
        let kind = (v >> 1) & 3;
        let size = u64::from(v >> 3);
        // An RLE block holds one byte, whatever its size says.
        let body = match kind {
            1 => 1,
            3 => return None,
            _ => size,
        };
        at = at.checked_add(3)?.checked_add(body)?;
        if last {
            return at.checked_add(if checksum { 4 } else { 0 });
        }
    }
}

/// Reads an xz multibyte integer at `*at` in `buf`.
fn xz_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..9u32 {
        let b = *buf.get(*at)?;
        *at = at.checked_add(1)?;
        v |= u64::from(b & 0x7f).checked_shl(i.checked_mul(7)?)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The uncompressed size of a single xz stream, from its index (xz file format
/// 1.1.0 §2.1.2.2 and §4): no decoding needed.
fn xz_index_size(src: &dyn ReadAt) -> Option<u64> {
    let len = src.size();
    let footer = src.read_vec(len.checked_sub(12)?, 12, "xz footer").ok()?;
    if footer.get(10..12)? != b"YZ" {
        return None;
    }
    let backward = u64::from(u32::from_le_bytes(footer.get(4..8)?.try_into().ok()?));
    let index_len = backward.checked_add(1)?.checked_mul(4)?;
    if index_len > 16 << 20 {
        return None;
    }
    let index_at = len.checked_sub(12)?.checked_sub(index_len)?;
    let index = src.read_vec(index_at, index_len, "xz index").ok()?;
    if index.first() != Some(&0) {
        return None;
    }
    let mut at = 1usize;
    let records = xz_varint(&index, &mut at)?;
    let mut total = 0u64;
    let mut unpadded_total = 0u64;
    for _ in 0..records {
        let unpadded = xz_varint(&index, &mut at)?;
        total = total.checked_add(xz_varint(&index, &mut at)?)?;
        unpadded_total = unpadded_total.checked_add(unpadded.checked_add(3)? & !3)?;
    }
    // One stream: its header (12), blocks, index and footer make up the whole file.
    let whole = 12u64
        .checked_add(unpadded_total)?
        .checked_add(index_len)?
        .checked_add(12)?;
    (whole == len).then_some(total)
}

/// Opens a decoder from the start of the stream.
pub type Open<'a> = Box<dyn Fn() -> Result<Box<dyn Read + 'a>> + 'a>;

/// The decoder's state: where it is, and what it passed.
struct State<'a> {
    reader: Option<Box<dyn Read + 'a>>,
    /// Decompressed offset of the next byte the reader gives.
    pos: u64,
    /// Chunks (by index) that are all zero.
    zero: BTreeSet<u64>,
    cache: HashMap<u64, Vec<u8>>,
    /// Cached chunk indices, least recently used first.
    lru: VecDeque<u64>,
    restarts: u32,
    decoded: u64,
    /// The first decoding error: readers may treat a failed read as a finding (a
    /// missing backup GPT header), so the caller asks [`Forward::failure`] at the end.
    failed: Option<String>,
}

/// A forward-only decoder as a [`ReadAt`], with a bounded cache (see the module).
pub struct Forward<'a> {
    open: Open<'a>,
    size: u64,
    budget: usize,
    state: RefCell<State<'a>>,
}

/// Decoded bytes are cached in chunks of this size.
pub const CHUNK: u64 = 1 << 20;

impl<'a> Forward<'a> {
    /// A source of `size` decompressed bytes; `open` starts a decoder afresh;
    /// at most `budget` bytes of chunks that are not all zero are kept.
    pub fn new(open: Open<'a>, size: u64, budget: usize) -> Self {
        Forward {
            open,
            size,
            budget,
            state: RefCell::new(State {
                reader: None,
                pos: 0,
                zero: BTreeSet::new(),
                cache: HashMap::new(),
                lru: VecDeque::new(),
                restarts: 0,
                decoded: 0,
                failed: None,
            }),
        }
    }

    /// A compressed image in `src` with the pure-Rust decoders. Its size comes from
    /// the headers ([`stated_size`]) or, failing that, from one decoding pass.
    pub fn of(kind: Compression, src: Rc<dyn ReadAt + 'a>, budget: usize) -> Result<Self> {
        let size = stated_size(kind, &*src);
        let open: Open<'a> = Box::new(move || decoder(kind, src.clone()));
        let size = match size {
            Some(s) => s,
            None => count(open()?)?,
        };
        Ok(Forward::new(open, size, budget))
    }

    /// How often decoding started again from the beginning (the first start is not
    /// counted).
    pub fn restarts(&self) -> u32 {
        self.state.borrow().restarts
    }

    /// The first error the decoder met (corrupt or truncated input), if any: a
    /// report made over such a source describes a damaged image and must not be
    /// taken as the image's.
    pub fn failure(&self) -> Option<String> {
        self.state.borrow().failed.clone()
    }

    /// Decompressed bytes decoded so far, over every pass.
    pub fn decoded(&self) -> u64 {
        self.state.borrow().decoded
    }

    /// Decodes the next chunk into `buf` (cleared); its length is CHUNK or less at
    /// the end.
    fn next_chunk(&self, st: &mut State<'a>, buf: &mut Vec<u8>) -> Result<()> {
        let want = CHUNK.min(self.size.saturating_sub(st.pos));
        buf.clear();
        buf.resize(usize::try_from(want).unwrap_or(0), 0);
        let reader = match st.reader.as_mut() {
            Some(r) => r,
            None => st.reader.insert((self.open)()?),
        };
        let mut done = 0usize;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            let n = reader.read(rest).map_err(|e| Error::Source {
                offset: st.pos.saturating_add(done as u64),
                what: format!("decompressing: {e}"),
            })?;
            if n == 0 {
                return Err(Error::Truncated {
                    what: "compressed image",
                    offset: st.pos.saturating_add(done as u64),
                    needed: want.saturating_sub(done as u64),
                    available: 0,
                });
            }
            done = done.saturating_add(n);
        }
        st.decoded = st.decoded.saturating_add(want);
        Ok(())
    }

    /// Keeps chunk `index` (decoded into `data`), dropping the least recently used.
    fn keep(&self, st: &mut State<'a>, index: u64, data: &[u8]) {
        if is_zero(data) {
            st.zero.insert(index);
            return;
        }
        let per = usize::try_from(CHUNK).unwrap_or(usize::MAX);
        while st.cache.len().saturating_add(1).saturating_mul(per) > self.budget {
            match st.lru.pop_front() {
                Some(old) => {
                    st.cache.remove(&old);
                }
                None => return,
            }
        }
        st.cache.insert(index, data.to_vec());
        st.lru.push_back(index);
    }

    /// Copies from chunk `index`, at `skip`, into `out`.
    fn copy_chunk(&self, index: u64, skip: usize, out: &mut [u8]) -> Result<()> {
        let mut st = self.state.borrow_mut();
        if st.zero.contains(&index) {
            out.fill(0);
            return Ok(());
        }
        if !st.cache.contains_key(&index) {
            let start = index.saturating_mul(CHUNK);
            if start < st.pos {
                st.reader = None;
                st.pos = 0;
                st.restarts = st.restarts.saturating_add(1);
            }
            let mut buf = Vec::new();
            loop {
                let here = st.pos / CHUNK;
                if let Err(e) = self.next_chunk(&mut st, &mut buf) {
                    if st.failed.is_none() {
                        st.failed = Some(e.to_string());
                    }
                    // Decoding starts afresh on the next read rather than from a
                    // decoder in an unknown state.
                    st.reader = None;
                    st.pos = 0;
                    return Err(e);
                }
                st.pos = st.pos.saturating_add(buf.len() as u64);
                self.keep(&mut st, here, &buf);
                if here == index {
                    if !st.cache.contains_key(&index) && !st.zero.contains(&index) {
                        // A budget below one chunk: serve it from the buffer.
                        return copy_out(&buf, skip, out);
                    }
                    break;
                }
            }
        }
        if st.zero.contains(&index) {
            out.fill(0);
            return Ok(());
        }
        if let Some(p) = st.lru.iter().position(|&i| i == index) {
            st.lru.remove(p);
            st.lru.push_back(index);
        }
        let data = st.cache.get(&index).map(Vec::as_slice).unwrap_or_default();
        copy_out(data, skip, out)
    }
}

/// Whether `data` (at most a chunk) is all zero: a comparison with a zero chunk,
/// which the standard library does with memcmp, fast even in a debug build.
fn is_zero(data: &[u8]) -> bool {
    static ZERO: [u8; 1 << 20] = [0; 1 << 20];
    ZERO.get(..data.len()).is_some_and(|z| z == data)
}

fn copy_out(data: &[u8], skip: usize, out: &mut [u8]) -> Result<()> {
    let src = skip
        .checked_add(out.len())
        .and_then(|end| data.get(skip..end))
        .ok_or_else(|| Error::Source {
            offset: skip as u64,
            what: "chunk shorter than expected".into(),
        })?;
    out.copy_from_slice(src);
    Ok(())
}

/// The number of bytes a reader gives until its end.
fn count(mut r: Box<dyn Read + '_>) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::Source {
            offset: total,
            what: format!("decompressing: {e}"),
        })?;
        if n == 0 {
            return Ok(total);
        }
        total = total.saturating_add(n as u64);
    }
}

impl ReadAt for Forward<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.size, offset, buf.len() as u64, "read")?;
        let mut done = 0usize;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            let at = offset.saturating_add(done as u64);
            let skip = at % CHUNK;
            let n = usize::try_from(CHUNK.saturating_sub(skip))
                .unwrap_or(usize::MAX)
                .min(rest.len());
            let part = rest.get_mut(..n).unwrap_or_default();
            self.copy_chunk(at / CHUNK, usize::try_from(skip).unwrap_or(0), part)?;
            done = done.saturating_add(n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut d = vec![0u8; 5 * CHUNK as usize + 123];
        for (i, b) in d.iter_mut().enumerate().skip(CHUNK as usize / 2).step_by(7) {
            *b = (i % 251) as u8;
        }
        d[4 * CHUNK as usize + 5] = 9;
        d
    }

    #[test]
    fn each_format_reads_back_at_any_offset_and_goes_back_by_restarting() {
        let data = sample();
        let gz = {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let zst = ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let xz = {
            use std::io::Write;
            let mut w =
                lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
            w.write_all(&data).unwrap();
            w.finish().unwrap()
        };
        for (file, kind) in [
            (gz, Compression::Gzip),
            (zst, Compression::Zstd),
            (xz, Compression::Xz),
        ] {
            assert_eq!(Compression::detect(&file), Some(kind));
            assert!(kind != Compression::Xz || stated_size(kind, &file).is_some());
            let f = Forward::of(kind, Rc::new(file), 2 * CHUNK as usize).unwrap();
            assert_eq!(f.size(), data.len() as u64, "{kind:?}");
            for &(off, n) in &[
                (0u64, 600u64),
                (4 * CHUNK + 1, 10),
                (CHUNK - 3, 9),
                (0, 600),
            ] {
                let got = f.read_vec(off, n, "t").unwrap();
                assert_eq!(
                    got,
                    data[off as usize..(off + n) as usize],
                    "{kind:?} at {off}"
                );
            }
            // Chunk 0 was evicted by the budget of two chunks: one restart.
            assert_eq!(f.restarts(), 1, "{kind:?}");
            assert!(f.read_vec(data.len() as u64 - 1, 2, "t").is_err());
        }
        // Truncated input is an error, not a short read.
        let zst = ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let cut: Rc<dyn ReadAt> = Rc::new(zst[..zst.len() / 2].to_vec());
        let f = Forward::new(
            Box::new(move || decoder(Compression::Zstd, cut.clone())),
            data.len() as u64,
            0,
        );
        assert!(f.read_vec(data.len() as u64 - 10, 10, "t").is_err());
        assert!(f.failure().is_some());
    }
}
