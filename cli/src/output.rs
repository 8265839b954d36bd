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

/// An encoder that must be finished to write its last bytes.
trait Encoder: Write {
    fn finish(self: Box<Self>) -> io::Result<()>;
}

impl<W: Write> Encoder for zstd::stream::write::Encoder<'static, W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        (*self).finish()?.flush()
    }
}

impl<W: Write> Encoder for liblzma::write::XzEncoder<W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        (*self).finish()?.flush()
    }
}

impl<W: Write> Encoder for flate2::write::GzEncoder<W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        (*self).finish()?.flush()
    }
}

fn threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// `codec` over `out`; `size` (the uncompressed length, when known) goes in zstd's frame
/// header. zstd and xz always run with at least one worker thread: their output then
/// depends on the level only, not on how many threads the machine has.
fn encoder(codec: Codec, out: Box<dyn Write>, size: Option<u64>) -> Result<Box<dyn Encoder>> {
    Ok(match codec {
        Codec::Zstd(level) => {
            let mut e = zstd::stream::write::Encoder::new(out, level)?;
            e.multithread(threads())?;
            e.include_checksum(true)?;
            e.set_pledged_src_size(size)?;
            Box::new(e)
        }
        Codec::Xz(level) => {
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(threads())
                .preset(level)
                .check(liblzma::stream::Check::Crc64)
                .encoder()
                .context("starting the xz encoder")?;
            Box::new(liblzma::write::XzEncoder::new_stream(out, stream))
        }
        Codec::Gzip(level) => Box::new(flate2::write::GzEncoder::new(
            out,
            flate2::Compression::new(level),
        )),
    })
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
            let mut enc = encoder(codec, out, export.len_hint())?;
            let n = export.write_to(
                img,
                &mut StreamSink {
                    out: &mut enc,
                    progress,
                },
            )?;
            enc.finish()
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
