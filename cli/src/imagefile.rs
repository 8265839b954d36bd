//! Disk images as people ship them, opened by content: a raw image, a raw image
//! compressed with zstd, xz or gzip (read front to back through the codec: no
//! temporary file, memory bounded by the codec's window), or a qcow2, VHD or VMDK image
//! (read at random through core's [`ukitool_core::vdisk`] readers).
//!
//! `write` and `inspect` both open their input here.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ukitool_core::readat::ReadAt;
use ukitool_core::vdisk::{self, Container, VirtualDisk};

/// A file read by offset, as core's [`ReadAt`]: a short read is `Truncated`, an I/O
/// error a `Source` error at its offset.
pub struct FileAt {
    file: File,
    len: u64,
}

impl FileAt {
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileAt { file, len })
    }
}

impl ReadAt for FileAt {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> ukitool_core::Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => ukitool_core::Error::Truncated {
                    what: "read",
                    offset,
                    needed: buf.len() as u64,
                    available: self.len.saturating_sub(offset),
                },
                _ => ukitool_core::Error::Source {
                    offset,
                    what: e.to_string(),
                },
            })
    }
}

/// Counts the bytes a decoder has taken from the file, to name where a corrupt or
/// truncated stream went wrong.
pub struct Counted<R> {
    inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened image.
pub enum Opened {
    /// A raw image (or a block device): read at random, holes from the file system.
    Raw(File),
    /// A compressed raw image, decoded front to back.
    Stream(Stream),
    /// The virtual disk of a qcow2, VHD or VMDK image.
    Virtual(Box<dyn VirtualDisk>),
}

/// A decoder over a compressed file.
pub struct Stream {
    pub kind: Container,
    pub reader: Box<dyn Read + Send>,
    /// Compressed bytes consumed so far.
    pub consumed: Arc<AtomicU64>,
    /// The decompressed size, when the file declares it (a zstd frame header).
    pub declared_size: Option<u64>,
}

/// What `path` holds, from its first and last bytes.
pub fn recognize(file: &File) -> Result<Container> {
    let len = file.metadata()?.len();
    let mut head = vec![0u8; vdisk::HEAD_LEN.min(usize::try_from(len).unwrap_or(usize::MAX))];
    file.read_exact_at(&mut head, 0)?;
    let mut foot = Vec::new();
    if len >= vdisk::FOOT_LEN as u64 && !head.starts_with(b"conectix") {
        foot = vec![0u8; vdisk::FOOT_LEN];
        file.read_exact_at(&mut foot, len - vdisk::FOOT_LEN as u64)?;
    }
    Ok(vdisk::recognize(&head, &foot))
}

/// Open `path` by its content. A block device is always raw.
pub fn open(path: &Path) -> Result<(Container, Opened)> {
    use std::os::unix::fs::FileTypeExt;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    if file.metadata()?.file_type().is_block_device() {
        return Ok((Container::Raw, Opened::Raw(file)));
    }
    let kind = recognize(&file).with_context(|| format!("reading {}", path.display()))?;
    let opened = match kind {
        Container::Raw => Opened::Raw(file),
        Container::Zstd | Container::Xz | Container::Gzip => Opened::Stream(
            decoder(kind, file).with_context(|| format!("opening {}", path.display()))?,
        ),
        Container::Qcow2 | Container::Vhd | Container::Vmdk => {
            let disk = vdisk::open(kind, FileAt::new(file)?)
                .with_context(|| format!("reading the {} image {}", kind.name(), path.display()))?;
            Opened::Virtual(disk)
        }
        Container::VmdkDescriptor => bail!(
            "{} is a VMDK descriptor: the disk's data is in the extent files it names; \
             give the sparse extent (-s001.vmdk, monolithicSparse) or `qemu-img convert` it",
            path.display()
        ),
    };
    Ok((kind, opened))
}

/// The decoder of a compressed raw image. zstd and xz read concatenated frames or
/// streams (as `zstd -dc`, `xz -dc` do); gzip reads concatenated members.
fn decoder(kind: Container, file: File) -> Result<Stream> {
    let declared_size = if kind == Container::Zstd {
        let mut head = [0u8; 18];
        let n = file.read_at(&mut head, 0)?;
        zstd::zstd_safe::get_frame_content_size(head.get(..n).unwrap_or_default())
            .ok()
            .flatten()
    } else {
        None
    };
    let consumed = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: file,
        count: consumed.clone(),
    };
    let reader: Box<dyn Read + Send> = match kind {
        Container::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(counted)?;
            // Talos and others use --long=27 (128 MiB windows); allow up to 2 GiB, as
            // `zstd -d --memory=2048MB` would. Memory is still only what the file asks.
            d.window_log_max(31)?;
            Box::new(d)
        }
        Container::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(
            io::BufReader::with_capacity(1 << 20, counted),
        )),
        _ => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(1 << 20, counted),
        )),
    };
    Ok(Stream {
        kind,
        reader,
        consumed,
        declared_size,
    })
}

/// The bmap beside `image`: IMAGE.bmap, or for a compressed IMAGE.raw.zst also
/// IMAGE.raw.bmap and IMAGE.bmap (bmaptool's search).
pub fn bmap_beside(image: &Path) -> Option<PathBuf> {
    let name = image.file_name()?.to_str()?;
    let mut names = vec![format!("{name}.bmap")];
    for ext in [".zst", ".xz", ".gz", ".bz2", ".lz4"] {
        if let Some(stem) = name.strip_suffix(ext) {
            names.push(format!("{stem}.bmap"));
            if let Some(base) = stem.rsplit_once('.') {
                names.push(format!("{}.bmap", base.0));
            }
        }
    }
    names
        .into_iter()
        .map(|n| image.with_file_name(n))
        .find(|p| p.is_file())
}

/// The sha256 of a whole file (hex) and its length, read in 4 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut len = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        h.update(buf.get(..n).unwrap_or_default());
        len += n as u64;
    }
    Ok((ukitool_core::bytes::hex(&h.finalize()), len))
}
