//! An EFI zboot payload, decompressed as a stream and scanned for what the report
//! needs: the inner Image's 64-byte header and its `Linux version` banner. Nothing
//! else is kept: memory is the decompressor's window plus one chunk.
//!
//! Bounds: at most [`MAX_OUTPUT`] bytes, and at most [`MAX_RATIO`] times the
//! payload's size, are decompressed (the banner sits in `.rodata`, 19 MiB into the
//! 26 MiB Image of Debian's loong64 kernel, whose 8.3 MiB payload is 3.1 times
//! smaller); a zstd frame may ask for a window of at most [`MAX_ZSTD_WINDOW`] (zstd's
//! own default limit, which `zstd -22 --ultra`, the kernel's zstd22 method, stays
//! within). The decoder keeps up to a window of output for back-references (gzip 32
//! KiB, zstd up to the output so far), so memory is bounded by the output bound: this
//! is the one place where inspect may hold more than twice its input. gzip and zstd are
//! decompressed (pure Rust: flate2's miniz_oxide backend and ruzstd, both build for
//! wasm32); the other methods the kernel offers (lz4, lzma, lzo, xz) are named only.

use std::io::Read;

use super::banner;

/// Decompress at most this much of a payload.
pub const MAX_OUTPUT: u64 = 256 << 20;
/// Decompress at most this many times the payload's size: kernels compress 3 to 5
/// times; a decompression bomb stops here.
pub const MAX_RATIO: u64 = 16;
/// Refuse zstd frames whose window is larger (windowLog 27).
pub const MAX_ZSTD_WINDOW: u64 = 128 << 20;
/// Bytes read from the decompressor at a time.
const CHUNK: usize = 256 * 1024;
/// Bytes kept from one chunk to the next, so a banner across the boundary is
/// found: its prefix and the longest version text taken.
const OVERLAP: usize = 512;
/// The Image header's length.
const HEADER_LEN: usize = 64;

/// What the scan of a payload found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inner {
    /// The first bytes of the decompressed Image (its header).
    pub header: Vec<u8>,
    /// The banner's text, if found within the bounds.
    pub version: Option<String>,
    /// Bytes decompressed.
    pub decompressed: u64,
}

/// Decompress `payload` by the zboot method `method` and scan it; None for a method
/// ukitool does not decompress or a stream that fails before the header.
pub fn scan(method: &str, payload: &[u8]) -> Option<Inner> {
    let limit = MAX_OUTPUT.min((payload.len() as u64).saturating_mul(MAX_RATIO));
    match method {
        "gzip" => scan_stream(flate2::read::GzDecoder::new(payload), limit),
        // The kernel's Makefile.zboot calls its method zstd22; the header says zstd.
        m if m.starts_with("zstd") => {
            if zstd_window(payload)? > MAX_ZSTD_WINDOW {
                return None;
            }
            scan_stream(
                ruzstd::decoding::StreamingDecoder::new(payload).ok()?,
                limit,
            )
        }
        _ => None,
    }
}

/// The window a zstd frame asks for (RFC 8878, 3.1.1.1): from its Window_Descriptor,
/// or 0 for a single-segment frame, whose decoder holds only the output so far
/// (bounded by [`MAX_OUTPUT`]). None: not a zstd frame.
fn zstd_window(frame: &[u8]) -> Option<u64> {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let (magic, rest) = frame.split_first_chunk::<4>()?;
    let (&descriptor, rest) = rest.split_first()?;
    if *magic != MAGIC {
        return None;
    }
    if descriptor & 0x20 != 0 {
        return Some(0);
    }
    let w = u64::from(*rest.first()?);
    let log = 10u64.checked_add(w >> 3)?;
    let base = 1u64.checked_shl(u32::try_from(log).ok()?)?;
    base.checked_add((base / 8).checked_mul(w & 7)?)
}

/// Read `stream` chunk by chunk, up to `limit` bytes, until the banner is found. A
/// stream that breaks after the header still reports what was read.
fn scan_stream(mut stream: impl Read, limit: u64) -> Option<Inner> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    let mut window: Vec<u8> = Vec::with_capacity(CHUNK.saturating_add(OVERLAP));
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    loop {
        let room = limit.saturating_sub(total).min(CHUNK as u64);
        let want = usize::try_from(room).unwrap_or(CHUNK);
        let n = match buf.get_mut(..want).map(|b| stream.read(b)) {
            Some(Ok(n)) => n,
            _ => 0,
        };
        let got = buf.get(..n).unwrap_or_default();
        total = total.saturating_add(n as u64);
        let need = HEADER_LEN.saturating_sub(header.len()).min(got.len());
        header.extend_from_slice(got.get(..need).unwrap_or_default());
        window.extend_from_slice(got);
        if let Some((version, _)) = banner(&window) {
            return Some(Inner {
                header,
                version: Some(version),
                decompressed: total,
            });
        }
        if n == 0 || total >= limit {
            return (!header.is_empty()).then_some(Inner {
                header,
                version: None,
                decompressed: total,
            });
        }
        let keep = window.len().saturating_sub(OVERLAP);
        window.drain(..keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Incompressible filler, as a kernel's code is to gzip.
    fn filler(len: usize) -> impl Iterator<Item = u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..len).map(move |_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
    }

    fn image() -> Vec<u8> {
        let mut img = vec![0u8; 64];
        img[0x38..0x3c].copy_from_slice(b"ARMd");
        // The banner across a chunk boundary.
        img.extend(filler(CHUNK - 5 - 64));
        img.extend_from_slice(b"Linux version 6.12.1-arm64 (x@y) #1 SMP\n");
        img.extend(filler(CHUNK * 3 - img.len()));
        img
    }

    #[test]
    fn gzip_payload_is_scanned_across_chunks() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&image()).unwrap();
        let inner = scan("gzip", &gz.finish().unwrap()).unwrap();
        assert_eq!(inner.header[0x38..0x3c], *b"ARMd");
        assert_eq!(inner.version.as_deref(), Some("6.12.1-arm64 (x@y) #1 SMP"));
        // Stopped after the banner, before the end.
        let banner_end = (CHUNK - 5 + 40) as u64;
        assert!((banner_end..3 * CHUNK as u64).contains(&inner.decompressed));
        // A bomb: 64 MiB of zeros stop at 16 times the compressed size.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 64 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        let inner = scan("gzip", &bomb).unwrap();
        assert_eq!(inner.version, None);
        assert!(
            inner.decompressed <= 16 * bomb.len() as u64,
            "{}",
            inner.decompressed
        );
        assert_eq!(scan("lz4", b"anything"), None);
        assert_eq!(scan("gzip", b"not gzip"), None);
        assert_eq!(scan("zstd", b"not zstd"), None);
    }
}
