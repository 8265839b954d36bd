//! Where `ukitool image` puts a disk in a container format (`--format`) or compressed
//! (`--compress`): the core's [`Export`] chunks go to a sparse file (zero runs become
//! holes), to stdout, or through a codec. The codecs are native libraries: libzstd and
//! liblzma with their own worker threads, and flate2 for gzip.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ukitool_core::disk::export::{Export, Format, Sink};
use ukitool_core::disk::DiskImage;

/// A compression codec and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Zstd(i32),
    Xz(u32),
    Gzip(u32),
}

impl Codec {
    /// `zstd`, `xz` or `gzip`, with an optional `:LEVEL`; `none` for no codec.
    pub fn parse(s: &str) -> Result<Option<Codec>> {
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (s, None),
        };
        let num = |lo: i64, hi: i64, default: i64| -> Result<i64> {
            let Some(l) = level else { return Ok(default) };
            match l.parse::<i64>() {
                Ok(v) if (lo..=hi).contains(&v) => Ok(v),
                _ => bail!("--compress {s}: {name}'s level is {lo} to {hi}"),
            }
        };
        Ok(Some(match name {
            "none" if level.is_none() => return Ok(None),
            "zstd" | "zst" => Codec::Zstd(num(1, 22, 3)? as i32),
            "xz" => Codec::Xz(num(0, 9, 6)? as u32),
            "gzip" | "gz" => Codec::Gzip(num(1, 9, 6)? as u32),
            _ => bail!("--compress {s}: expected zstd, xz or gzip (with :LEVEL), or none"),
        }))
    }

    /// The codec a file name's last extension names.
    pub fn from_extension(ext: &str) -> Option<Codec> {
        match ext.to_ascii_lowercase().as_str() {
            "zst" | "zstd" => Some(Codec::Zstd(3)),
            "xz" => Some(Codec::Xz(6)),
            "gz" => Some(Codec::Gzip(6)),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Zstd(_) => "zstd",
            Codec::Xz(_) => "xz",
            Codec::Gzip(_) => "gzip",
        }
    }
}

/// The codec and format `path` names by its extensions: `disk.raw.zst` is raw with zstd,
/// `disk.qcow2` is qcow2, `disk.vhd.xz` is VHD with xz.
pub fn from_name(path: &Path) -> (Option<Codec>, Option<Format>) {
    let ext = |p: &Path| p.extension().and_then(|e| e.to_str()).map(str::to_owned);
    let codec = ext(path).as_deref().and_then(Codec::from_extension);
    let inner = if codec.is_some() {
        path.file_stem().map(Path::new).and_then(ext)
    } else {
        ext(path)
    };
    (codec, inner.as_deref().and_then(Format::from_extension))
}

/// An encoder that must be finished to write its last bytes; finishing gives its output
/// back, for the next stream.
trait Encoder: Write {
    fn finish(self: Box<Self>) -> io::Result<Box<dyn Write>>;
}

impl Encoder for zstd::stream::write::Encoder<'static, Box<dyn Write>> {
    fn finish(self: Box<Self>) -> io::Result<Box<dyn Write>> {
        (*self).finish()
    }
}

impl Encoder for liblzma::write::XzEncoder<Box<dyn Write>> {
    fn finish(self: Box<Self>) -> io::Result<Box<dyn Write>> {
        (*self).finish()
    }
}

impl Encoder for flate2::write::GzEncoder<Box<dyn Write>> {
    fn finish(self: Box<Self>) -> io::Result<Box<dyn Write>> {
        (*self).finish()
    }
}

fn threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

impl Codec {
    /// A stream of this codec over `out`. zstd (with a content checksum) and xz (CRC64)
    /// run with one worker per core, at least one: their output then depends on the level
    /// only, not on the number of threads. gzip: no name, time 0.
    fn encoder(self, out: Box<dyn Write>) -> io::Result<Box<dyn Encoder>> {
        Ok(match self {
            Codec::Zstd(level) => {
                let mut e = zstd::stream::write::Encoder::new(out, level)?;
                e.multithread(threads())?;
                e.include_checksum(true)?;
                Box::new(e)
            }
            Codec::Xz(level) => {
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .threads(threads())
                    .preset(level)
                    .check(liblzma::stream::Check::Crc64)
                    .encoder()
                    .map_err(io::Error::other)?;
                Box::new(liblzma::write::XzEncoder::new_stream(out, stream))
            }
            Codec::Gzip(level) => Box::new(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(level),
            )),
        })
    }

    /// One whole stream of [`ZERO_FRAME`] zeros, for codecs whose readers take
    /// concatenated streams as one: zstd (frames, RFC 8878 section 3) and xz (streams,
    /// the .xz format 1.2.1 section 2; `xz -d` and liblzma with LZMA_CONCATENATED). Not
    /// gzip: readers that stop after the first member are common.
    fn zero_frame(self) -> io::Result<Option<Vec<u8>>> {
        let zeros = vec![0u8; ZERO_FRAME];
        Ok(match self {
            Codec::Zstd(level) => {
                let mut c = zstd::bulk::Compressor::new(level)?;
                c.include_checksum(true)?;
                Some(c.compress(&zeros)?)
            }
            Codec::Xz(level) => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), level);
                e.write_all(&zeros)?;
                Some(e.finish()?)
            }
            Codec::Gzip(_) => None,
        })
    }
}

static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// A stream: zero runs are written as zeros (a codec sees them and compresses them to
/// almost nothing; they are never one large buffer).
struct StreamSink<'w> {
    out: &'w mut dyn Write,
    progress: &'w indicatif::ProgressBar,
}

impl Sink for StreamSink<'_> {
    type Error = anyhow::Error;
    fn data(&mut self, d: &[u8]) -> Result<()> {
        self.out.write_all(d)?;
        self.progress.inc(d.len() as u64);
        Ok(())
    }
    fn zeros(&mut self, mut n: u64) -> Result<()> {
        self.progress.inc(n);
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            self.out.write_all(&ZEROS[..k])?;
            n -= k as u64;
        }
        Ok(())
    }
}

/// The zero runs at least this long go to zstd and xz as streams of zeros made once.
const ZERO_FRAME: usize = 16 << 20;

/// A codec: the chunks go through one stream encoder; for zstd and xz, a zero run of at
/// least [`ZERO_FRAME`] bytes ends the stream and is written as copies of one stream of
/// that many zeros, compressed once (zstd: about 500 bytes of RLE blocks), and the data
/// after it starts a new stream. Decoders of both read concatenated streams as one, so
/// the codec never sees the gigabytes of zeros of a mostly empty disk: `image -o
/// x.raw.zst` of Talos's 4247 MiB image costs about the CPU of its data
/// (docs/benchmarks.md). gzip gets every zero, from one static buffer.
struct CodecSink<'p> {
    codec: Codec,
    /// The output while no stream is open.
    out: Option<Box<dyn Write>>,
    enc: Option<Box<dyn Encoder>>,
    zero_frame: Option<Option<Vec<u8>>>,
    streams: u64,
    progress: &'p indicatif::ProgressBar,
}

impl<'p> CodecSink<'p> {
    fn new(codec: Codec, out: Box<dyn Write>, progress: &'p indicatif::ProgressBar) -> Self {
        CodecSink {
            codec,
            out: Some(out),
            enc: None,
            zero_frame: None,
            streams: 0,
            progress,
        }
    }

    fn encoder(&mut self) -> io::Result<&mut Box<dyn Encoder>> {
        if self.enc.is_none() {
            let out = self
                .out
                .take()
                .ok_or_else(|| io::Error::other("output lost"))?;
            self.enc = Some(self.codec.encoder(out)?);
        }
        self.enc
            .as_mut()
            .ok_or_else(|| io::Error::other("encoder lost"))
    }

    /// End the open stream, if any.
    fn end_stream(&mut self) -> io::Result<&mut Box<dyn Write>> {
        if let Some(e) = self.enc.take() {
            self.out = Some(e.finish()?);
            self.streams += 1;
        }
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("output lost"))
    }

    fn finish(mut self) -> io::Result<()> {
        if self.streams == 0 {
            self.encoder()?;
        }
        self.end_stream()?.flush()
    }

    fn stream_zeros(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            self.encoder()?.write_all(&ZEROS[..k])?;
            self.progress.inc(k as u64);
            n -= k as u64;
        }
        Ok(())
    }
}

impl Sink for CodecSink<'_> {
    type Error = anyhow::Error;
    fn data(&mut self, d: &[u8]) -> Result<()> {
        self.encoder()?.write_all(d)?;
        self.progress.inc(d.len() as u64);
        Ok(())
    }
    fn zeros(&mut self, n: u64) -> Result<()> {
        let whole = n / ZERO_FRAME as u64;
        if whole == 0 {
            return Ok(self.stream_zeros(n)?);
        }
        if self.zero_frame.is_none() {
            self.zero_frame = Some(self.codec.zero_frame()?);
        }
        let Some(Some(frame)) = self.zero_frame.take() else {
            self.zero_frame = Some(None);
            return Ok(self.stream_zeros(n)?);
        };
        let out = self.end_stream()?;
        for _ in 0..whole {
            out.write_all(&frame)?;
        }
        self.streams += whole;
        self.zero_frame = Some(Some(frame));
        self.progress.inc(whole * ZERO_FRAME as u64);
        Ok(self.stream_zeros(n % ZERO_FRAME as u64)?)
    }
}

/// A regular file: data at its place, zero runs left as holes (the file is truncated
/// first and extended to its length at the end).
struct FileSink<'f> {
    file: &'f File,
    pos: u64,
    progress: &'f indicatif::ProgressBar,
}

impl Sink for FileSink<'_> {
    type Error = anyhow::Error;
    fn data(&mut self, d: &[u8]) -> Result<()> {
        self.file.write_all_at(d, self.pos)?;
        self.pos += d.len() as u64;
        self.progress.inc(d.len() as u64);
        Ok(())
    }
    fn zeros(&mut self, n: u64) -> Result<()> {
        self.pos += n;
        self.progress.inc(n);
        Ok(())
    }
}

/// Write `export` of `img` to `path` (`-`: stdout), through `codec` if any; returns the
/// bytes written (compressed: before compression).
pub fn write(
    export: Export,
    img: &DiskImage<'_>,
    path: &Path,
    codec: Option<Codec>,
    progress: &indicatif::ProgressBar,
) -> Result<u64> {
    let to_stdout = path == Path::new("-");
    let open = || -> Result<File> {
        File::create(path).with_context(|| format!("creating {}", path.display()))
    };
    match codec {
        None if !to_stdout => {
            let file = open()?;
            let mut sink = FileSink {
                file: &file,
                pos: 0,
                progress,
            };
            let n = export.write_to(img, &mut sink)?;
            file.set_len(n)?;
            Ok(n)
        }
        None => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
            let n = export.write_to(
                img,
                &mut StreamSink {
                    out: &mut out,
                    progress,
                },
            )?;
            out.flush()?;
            Ok(n)
        }
        Some(codec) => {
            let out: Box<dyn Write> = if to_stdout {
                Box::new(io::BufWriter::with_capacity(1 << 20, io::stdout()))
            } else {
                Box::new(io::BufWriter::with_capacity(1 << 20, open()?))
            };
            let mut sink = CodecSink::new(codec, out, progress);
            let n = export.write_to(img, &mut sink)?;
            sink.finish()
                .with_context(|| format!("finishing the {} stream", codec.name()))?;
            Ok(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_levels() {
        assert_eq!(
            from_name(Path::new("a/disk.raw.zst")),
            (Some(Codec::Zstd(3)), Some(Format::Raw))
        );
        assert_eq!(
            from_name(Path::new("disk.vhd.xz")),
            (Some(Codec::Xz(6)), Some(Format::Vhd))
        );
        assert_eq!(
            from_name(Path::new("disk.qcow2")),
            (None, Some(Format::Qcow2))
        );
        assert_eq!(from_name(Path::new("disk.img.gz")).0, Some(Codec::Gzip(6)));
        assert_eq!(Codec::parse("zstd:19").unwrap(), Some(Codec::Zstd(19)));
        assert_eq!(Codec::parse("none").unwrap(), None);
        assert!(Codec::parse("xz:10").is_err() && Codec::parse("lz4").is_err());
    }
}
