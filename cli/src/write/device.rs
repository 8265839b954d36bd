//! The write target: a block device opened exclusively (or a regular file with
//! `--to-file`), written with large aligned O_DIRECT writes and read back the same way.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};

// <linux/fs.h> ioctl numbers, generic encoding (x86, arm, riscv, loongarch).
const BLKROGET: libc::c_ulong = 0x125e;
const BLKRRPART: libc::c_ulong = 0x125f;
const BLKFLSBUF: libc::c_ulong = 0x1261;
const BLKSSZGET: libc::c_ulong = 0x1268;
/// _IO(0x12, 127): zero a byte range (start, len), 512-aligned.
const BLKZEROOUT: libc::c_ulong = 0x127f;
/// _IOR(0x12, 114, size_t)
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

/// O_DIRECT needs buffers, offsets and lengths aligned to the logical block size; 4 KiB
/// covers 512e and 4Kn disks alike.
pub const ALIGN: usize = 4096;

/// A heap buffer whose start is aligned to [`ALIGN`], without unsafe code: a Vec with
/// `ALIGN` spare bytes and an offset to the first aligned address.
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn new(capacity: usize) -> Self {
        let raw = vec![0u8; capacity + ALIGN];
        let addr = raw.as_ptr() as usize;
        let start = (ALIGN - addr % ALIGN) % ALIGN;
        AlignedBuf {
            raw,
            start,
            len: capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.raw.len() - ALIGN
    }

    /// Set the used length (at most the capacity).
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.capacity());
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

fn ioctl_u64(f: &File, req: libc::c_ulong) -> io::Result<u64> {
    let mut v: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 to the pointer; the fd is open.
    #[allow(unsafe_code)]
    let r = unsafe { libc::ioctl(f.as_raw_fd(), req as _, &mut v as *mut u64) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(v)
    }
}

fn ioctl_int(f: &File, req: libc::c_ulong) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    // SAFETY: BLKROGET and BLKSSZGET write one int to the pointer; the fd is open.
    #[allow(unsafe_code)]
    let r = unsafe { libc::ioctl(f.as_raw_fd(), req as _, &mut v as *mut libc::c_int) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(v)
    }
}

fn ioctl_none(f: &File, req: libc::c_ulong) -> io::Result<()> {
    // SAFETY: BLKFLSBUF and BLKRRPART take no argument; the fd is open.
    #[allow(unsafe_code)]
    let r = unsafe { libc::ioctl(f.as_raw_fd(), req as _, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// What the kernel says about a block device, read without opening it for writing.
pub struct BlockFacts {
    pub size: u64,
    pub read_only: bool,
}

pub fn block_facts(path: &Path) -> Result<BlockFacts> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = ioctl_u64(&f, BLKGETSIZE64)
        .with_context(|| format!("BLKGETSIZE64 on {}", path.display()))?;
    let read_only = ioctl_int(&f, BLKROGET).map(|v| v != 0).unwrap_or(false);
    Ok(BlockFacts { size, read_only })
}

/// How a run of zeros reached the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroMethod {
    ZeroOut,
    ZeroRange,
    Write,
}

/// An open target. `direct` is O_DIRECT when the kernel and file system allow it;
/// `buffered` takes writes that are not block-aligned (an image whose size is not a
/// multiple of 4 KiB) and the fault-injection hook.
pub struct Target {
    pub direct: File,
    pub buffered: File,
    pub is_block: bool,
    pub o_direct: bool,
    /// Reads for verification bypass the page cache through this O_DIRECT descriptor;
    /// without one, the cache is dropped first (POSIX_FADV_DONTNEED + BLKFLSBUF).
    reader: Option<File>,
}

impl Target {
    /// Open a block device O_RDWR|O_EXCL|O_DIRECT: O_EXCL makes the kernel refuse if the
    /// device or any partition is mounted or claimed (dm, md, another writer).
    pub fn open(path: &Path, to_file: bool) -> Result<Self> {
        let is_block = std::fs::metadata(path)
            .map(|m| m.file_type().is_block_device())
            .unwrap_or(false);
        let mut base = OpenOptions::new();
        base.read(true).write(true);
        if !is_block && to_file {
            base.create(true);
        }
        let open = |extra: libc::c_int| {
            let mut o = base.clone();
            o.custom_flags(if is_block { libc::O_EXCL } else { 0 } | extra);
            o.open(path)
        };
        let buffered = open(0).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::EBUSY) {
                " (the device is in use: mounted, swapped on, or held by device-mapper/md)"
            } else {
                ""
            };
            anyhow::anyhow!("opening {} exclusively: {e}{hint}", path.display())
        })?;
        // A second exclusive open by the same process would fail with EBUSY, so the
        // O_DIRECT descriptor is a reopen of the first through /proc/self/fd.
        // O_DIRECT needs ALIGN to be a multiple of the logical block size; a disk with
        // larger blocks (none seen in practice) is written through the cache instead.
        let block_ok = !is_block
            || ioctl_int(&buffered, BLKSSZGET)
                .ok()
                .and_then(|v| usize::try_from(v).ok())
                .is_some_and(|b| b > 0 && ALIGN % b == 0);
        let direct = block_ok
            .then(|| reopen(&buffered, libc::O_RDWR | libc::O_DIRECT).ok())
            .flatten();
        let (direct, o_direct) = match direct {
            Some(f) => (f, true),
            None => (buffered.try_clone()?, false),
        };
        let reader = block_ok
            .then(|| reopen(&buffered, libc::O_RDONLY | libc::O_DIRECT).ok())
            .flatten();
        Ok(Target {
            direct,
            buffered,
            is_block,
            o_direct,
            reader,
        })
    }

    /// Write `buf` at `offset`, through O_DIRECT when both are aligned.
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if self.o_direct && aligned(offset, buf) {
            self.direct.write_all_at(buf, offset)
        } else {
            self.buffered.write_all_at(buf, offset)?;
            Ok(())
        }
    }

    /// Make `buf.len()` bytes at `offset` read as zero, the fastest correct way: on a
    /// block device BLKZEROOUT (the kernel uses the device's write-zeroes or a
    /// zeroing discard, and writes zero pages itself when it has neither); on a file a
    /// zero-range fallocate; else (unaligned, or refused) a plain write of `buf`,
    /// which holds zeros. Returns how it was done.
    pub fn zero_at(&self, offset: u64, buf: &[u8]) -> io::Result<ZeroMethod> {
        let len = buf.len() as u64;
        if offset % 512 == 0 && len % 512 == 0 {
            if self.is_block {
                let range: [u64; 2] = [offset, len];
                // SAFETY: BLKZEROOUT reads two u64 from the pointer; the fd is open.
                #[allow(unsafe_code)]
                let r = unsafe {
                    libc::ioctl(self.buffered.as_raw_fd(), BLKZEROOUT as _, range.as_ptr())
                };
                if r == 0 {
                    return Ok(ZeroMethod::ZeroOut);
                }
                // A device that cannot zero (EOPNOTSUPP, EINVAL) gets plain writes; an
                // I/O error is the device failing, and is reported as one.
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EIO) {
                    return Err(e);
                }
            } else if let (Ok(o), Ok(l)) = (i64::try_from(offset), i64::try_from(len)) {
                // SAFETY: fallocate on an open descriptor; no pointers.
                #[allow(unsafe_code)]
                let r = unsafe {
                    libc::fallocate(self.buffered.as_raw_fd(), libc::FALLOC_FL_ZERO_RANGE, o, l)
                };
                if r == 0 {
                    return Ok(ZeroMethod::ZeroRange);
                }
            }
        }
        self.write_at(offset, buf)?;
        Ok(ZeroMethod::Write)
    }

    /// Flush everything written so far to stable storage.
    pub fn sync(&self) -> io::Result<()> {
        self.buffered.sync_data()?;
        if self.o_direct {
            self.direct.sync_data()?;
        }
        Ok(())
    }

    /// Before verifying without O_DIRECT: drop cached pages so reads come from the device.
    pub fn drop_cache(&self) {
        // SAFETY: plain advisory call on an open descriptor.
        #[allow(unsafe_code)]
        unsafe {
            libc::posix_fadvise(self.buffered.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
        if self.is_block {
            let _ = ioctl_none(&self.buffered, BLKFLSBUF);
        }
    }

    pub fn has_direct_reader(&self) -> bool {
        self.reader.is_some()
    }

    /// Read exactly `buf.len()` bytes at `offset` from the device, bypassing the cache
    /// when possible.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match &self.reader {
            Some(r) if aligned(offset, buf) => r.read_exact_at(buf, offset),
            _ => self.buffered.read_exact_at(buf, offset),
        }
    }

    /// Flush the device's buffers (BLKFLSBUF) and ask the kernel to re-read the new
    /// partition table, so partition nodes appear without replugging.
    pub fn finish(&self) {
        if self.is_block {
            let _ = ioctl_none(&self.buffered, BLKFLSBUF);
            let _ = ioctl_none(&self.buffered, BLKRRPART);
        }
    }

    /// Size of the target: the device size, or the file length.
    pub fn size(&self) -> io::Result<u64> {
        if self.is_block {
            ioctl_u64(&self.buffered, BLKGETSIZE64)
        } else {
            Ok(self.buffered.metadata()?.len())
        }
    }

    /// Test hook: flip one byte on the target between writing and verifying, to prove
    /// the verify phase catches corruption.
    pub fn corrupt_byte(&self, offset: u64) -> io::Result<()> {
        let mut b = [0u8; 1];
        self.buffered.read_exact_at(&mut b, offset)?;
        b[0] ^= 0xff;
        self.buffered.write_all_at(&b, offset)?;
        self.buffered.sync_data()?;
        self.drop_cache();
        Ok(())
    }
}

fn aligned(offset: u64, buf: &[u8]) -> bool {
    offset % ALIGN as u64 == 0 && buf.len() % ALIGN == 0 && (buf.as_ptr() as usize) % ALIGN == 0
}

/// Open the file behind `f` again with other flags. Reopening through /proc keeps the
/// O_EXCL claim of `f` and gives a descriptor with its own status flags.
fn reopen(f: &File, flags: libc::c_int) -> io::Result<File> {
    let path = format!("/proc/self/fd/{}", f.as_raw_fd());
    let mut o = OpenOptions::new();
    o.read(flags & libc::O_ACCMODE != libc::O_WRONLY);
    o.write(flags & libc::O_ACCMODE != libc::O_RDONLY);
    o.custom_flags(flags & !libc::O_ACCMODE);
    o.open(path)
}
