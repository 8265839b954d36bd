//! `inspect` of disk images read a piece at a time: a raw image with pread, a qcow2,
//! VHD or VMDK image through its tables (ukitool_core::vdisk), and a raw image
//! compressed with zstd, xz or gzip (recognised by content, crate::imagefile) through
//! a forward-only decoder with a bounded cache (ukitool_core::stream::Forward), using
//! libzstd and liblzma. Nothing is mapped or read whole.

use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result};
use ukitool_core::disk::inspect::{
    inspect_disk_at, looks_like_disk, looks_like_disk_at, DiskReport,
};
use ukitool_core::inspect::InspectOptions;
use ukitool_core::readat::ReadAt;
use ukitool_core::stream::{self, Compression, Forward};
use ukitool_core::vdisk::Container;

use crate::imagefile::{self, FileAt, Opened};

/// Decoded chunks kept for going back without decoding again (all-zero chunks cost
/// one bit each and are not counted).
pub const CACHE_BUDGET: usize = 32 << 20;

/// Whether `path` is a disk image this module reads: a raw disk (0x55AA, no `MZ`),
/// a compressed file, or a VM image. Anything else (a PE, stdin, a device) is read as
/// before.
pub fn is_disk_image(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    match imagefile::recognize(&file) {
        Ok(Container::Raw) => {
            let mut head = [0u8; 512];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0).is_ok()
                && looks_like_disk(&head)
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// A decoder of `path` from its start, as `Forward` restarts it.
fn reopen(path: &Path) -> ukitool_core::Result<Box<dyn Read>> {
    let fail = |e: anyhow::Error| ukitool_core::Error::Source {
        offset: 0,
        what: format!("{e:#}"),
    };
    match imagefile::open(path).map_err(fail)? {
        (_, Opened::Stream(s)) => Ok(s.reader),
        (kind, _) => Err(fail(anyhow::anyhow!(
            "{} is not a compressed stream",
            kind.name()
        ))),
    }
}

/// Inspects the disk image at `path` (see [`is_disk_image`]) without reading it whole.
pub fn inspect(path: &Path, opts: &InspectOptions) -> Result<DiskReport> {
    let name = path.display().to_string();
    let (kind, opened) = imagefile::open(path)?;
    match opened {
        Opened::Raw(file) => inspect_disk_at(&FileAt::new(file)?, opts).with_context(|| name),
        Opened::Virtual(disk) => {
            if !looks_like_disk_at(&*disk) {
                anyhow::bail!(
                    "{name}: the {} image's disk has no 0x55AA boot signature",
                    kind.name()
                );
            }
            inspect_disk_at(&*disk, opts).with_context(|| name)
        }
        Opened::Stream(s) => {
            let c = match kind {
                Container::Zstd => Compression::Zstd,
                Container::Xz => Compression::Xz,
                _ => Compression::Gzip,
            };
            let file: Rc<dyn ReadAt> = Rc::new(FileAt::new(std::fs::File::open(path)?)?);
            let owned = path.to_path_buf();
            let open: stream::Open<'static> = Box::new(move || reopen(&owned));
            // The size: from the zstd frame header or the xz index, else one pass.
            let size = match s.declared_size.or_else(|| stream::stated_size(c, &*file)) {
                Some(n) => n,
                None => std::io::copy(&mut (open)()?, &mut std::io::sink())
                    .with_context(|| format!("{name}: decompressing"))?,
            };
            drop(s);
            let src = Forward::new(open, size, CACHE_BUDGET);
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
            if let Some(e) = src.failure() {
                anyhow::bail!("{name}: the {} stream is damaged: {e}", c.name());
            }
            r.compression = Some(c);
            if std::env::var_os("UKITOOL_DEBUG_STREAM").is_some() {
                eprintln!(
                    "stream: {} bytes decoded, {} restarts",
                    src.decoded(),
                    src.restarts()
                );
            }
            Ok(r)
        }
    }
}
