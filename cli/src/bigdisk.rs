//! Disk images read a piece at a time: a raw image with pread, a compressed one
//! (zstd, xz, gzip, recognised by content) through a forward-only decoder with a
//! bounded cache (ukitool_core::stream). Nothing is mapped or read whole.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result};
use ukitool_core::disk::inspect::{inspect_disk_at, looks_like_disk, DiskReport};
use ukitool_core::inspect::InspectOptions;
use ukitool_core::readat::ReadAt;
use ukitool_core::stream::{Compression, Forward};

/// Decoded chunks kept for going back without decoding again (all-zero chunks cost
/// one bit each and are not counted).
pub const CACHE_BUDGET: usize = 32 << 20;

/// A file read with pread.
pub struct FileAt {
    file: File,
    size: u64,
}

impl FileAt {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| path.display().to_string())?;
        let size = file
            .metadata()
            .with_context(|| path.display().to_string())?
            .len();
        Ok(FileAt { file, size })
    }
}

impl ReadAt for FileAt {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> ukitool_core::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(ukitool_core::Error::Truncated {
                what: "read",
                offset,
                needed: buf.len() as u64,
                available: self.size.saturating_sub(offset),
            });
        }
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| ukitool_core::Error::Source {
                offset,
                what: e.to_string(),
            })
    }
}

/// What a path holds, from its first bytes: a raw disk, a compressed file, or
/// something else (a PE, a signature list: read as before).
pub enum Kind {
    RawDisk,
    Compressed(Compression),
    Other,
}

/// Looks at the first sector of a regular file (stdin and devices: Other).
pub fn kind_of(path: &Path) -> Kind {
    let Ok(f) = FileAt::open(path) else {
        return Kind::Other;
    };
    if !f.file.metadata().is_ok_and(|m| m.is_file()) {
        return Kind::Other;
    }
    let mut head = vec![0u8; f.size.min(512) as usize];
    if f.read_exact_at(0, &mut head).is_err() {
        return Kind::Other;
    }
    if let Some(c) = Compression::detect(&head) {
        Kind::Compressed(c)
    } else if looks_like_disk(&head) {
        Kind::RawDisk
    } else {
        Kind::Other
    }
}

/// Inspects a raw or compressed disk image at `path` without reading it whole.
/// Err when a compressed file does not hold a disk image.
pub fn inspect(path: &Path, kind: &Kind, opts: &InspectOptions) -> Result<DiskReport> {
    let file = std::rc::Rc::new(FileAt::open(path)?);
    let name = path.display().to_string();
    match kind {
        Kind::Compressed(c) => {
            let src = Forward::of(*c, file.clone(), CACHE_BUDGET).with_context(|| name.clone())?;
            let mut head = [0u8; 512];
            src.read_exact_at(0, &mut head)
                .with_context(|| name.clone())?;
            if !looks_like_disk(&head) {
                anyhow::bail!(
                    "{name}: {}-compressed, but not a disk image (no 0x55AA boot signature)",
                    c.name()
                );
            }
            let mut r = inspect_disk_at(&src, opts).with_context(|| name.clone())?;
            r.compression = Some(*c);
            if std::env::var_os("UKITOOL_DEBUG_STREAM").is_some() {
                eprintln!(
                    "stream: {} bytes decoded, {} restarts",
                    src.decoded(),
                    src.restarts()
                );
            }
            Ok(r)
        }
        _ => inspect_disk_at(&*file, opts).with_context(|| name),
    }
}
