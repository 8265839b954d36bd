//! The kernel inside .linux, or a bare kernel: which Linux boot image it is, and
//! its facts.
//! - x86 bzImage: the boot-protocol setup header (Documentation/arch/x86/boot.rst);
//!   only a prefix (the setup code) is needed.
//! - arm64, riscv64 and loongarch64 `Image`: the 64-byte image header; the version
//!   is the `Linux version ...` banner, found by a scan of the whole image, as ukify
//!   finds it.
//! - EFI zboot: a small EFI decompressor whose payload is a compressed `Image`; the
//!   payload is decompressed, within bounds, to read its header and banner
//!   ([`payload`]).

pub mod payload;
pub mod raw;

use crate::bytes::{self, slice, u16_le, u32_le};
use crate::pe::PeFile;

pub use raw::{HDRS_MAGIC, HDRS_OFFSET};

/// How much of .linux the x86 facts and the format need: the setup header, the
/// PE headers and the version string all live in the real-mode setup code
/// (<= 32 KiB by the boot protocol); 64 KiB leaves room. `Image` and zboot kernels
/// need the whole payload for their version.
pub const PREFIX_LEN: u64 = 64 * 1024;

/// At most this many bytes of a version string are kept.
const VERSION_MAX: usize = 256;

/// Which Linux boot image a kernel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// x86: "HdrS" at 0x202.
    Bzimage,
    /// arm64 (`ARM\x64` at 0x38), riscv64 (`RSC\x05`) or loongarch64
    /// (LINUX_PE_MAGIC) `Image`.
    Image,
    /// An EFI zboot image: `zimg` at 4, a compressed `Image` inside.
    Zboot,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kernel {
    /// The boot image format; None when .linux is none of them.
    pub format: Option<Format>,
    /// "x86_64", "arm64", "riscv64", "loongarch64", ... (the Image magic, else the
    /// PE machine); "x86" for a bzImage without a PE header.
    pub architecture: Option<&'static str>,
    /// Boot protocol version as "major.minor" (e.g. "2.15"), if the setup header is present.
    pub boot_protocol: Option<String>,
    /// The kernel version string: the one the x86 setup header points at, or the
    /// `Linux version` banner's text; both start with `uname -r`.
    pub version: Option<String>,
    /// The memory the kernel needs: x86 `init_size`, the Image header's
    /// `image_size` (for zboot, the inner Image's); None when the header says 0.
    pub image_size: Option<u64>,
    /// For an EFI zboot image: its compressed payload.
    pub zboot: Option<Zboot>,
    /// Whether .linux is itself a PE (an EFI-stub kernel).
    pub is_pe: bool,
    /// Whether .linux has its own certificate table (a signed kernel).
    pub signed: bool,
    /// Whether the kernel PE claims NX_COMPAT.
    pub nx_compat: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Zboot {
    /// The compression method named in the header ("gzip", "zstd", "xz", "lz4", ...).
    pub compression: String,
    pub payload_offset: u64,
    pub payload_size: u64,
    /// Bytes of the payload decompressed to read the inner Image: all of it, or up
    /// to the banner; None when it was not decompressed (a method ukitool does not
    /// decompress, or the payload was not available).
    pub decompressed: Option<u64>,
}

/// Does `data` carry the Linux setup-header magic?
pub fn has_setup_header(data: &[u8]) -> bool {
    at(data, HDRS_OFFSET, HDRS_MAGIC)
}

fn at(data: &[u8], offset: u64, magic: &[u8; 4]) -> bool {
    slice(data, offset, 4, "kernel magic").is_ok_and(|m| m == magic)
}

/// Which Linux boot image `prefix` (at least the first 64 bytes, 0x206 for x86) starts.
pub fn format(prefix: &[u8]) -> Option<Format> {
    if has_setup_header(prefix) {
        Some(Format::Bzimage)
    } else if prefix.starts_with(b"MZ") && at(prefix, raw::ZIMG_OFFSET, raw::ZIMG_MAGIC) {
        Some(Format::Zboot)
    } else {
        image_architecture(prefix, None).map(|_| Format::Image)
    }
}

/// The architecture an Image header names by its magic (loongarch64's magic is the
/// generic LINUX_PE_MAGIC: its PE machine says which).
fn image_architecture(header: &[u8], machine: Option<&'static str>) -> Option<&'static str> {
    let magic = |m| at(header, raw::IMAGE_MAGIC_OFFSET, m);
    if magic(raw::ARM64_MAGIC) {
        Some("arm64")
    } else if magic(raw::RISCV_MAGIC) {
        Some("riscv64")
    } else if magic(raw::LINUX_PE_MAGIC) {
        Some(machine.unwrap_or("loongarch64"))
    } else {
        None
    }
}

/// Facts from the kernel image whose full length is `len`: `data` is the whole image
/// or only its first bytes (then an Image's or a zboot's version stays unknown).
pub fn inspect(data: &[u8], len: u64) -> Kernel {
    let pe = PeFile::parse_prefix(data, len).ok();
    let machine = pe.as_ref().and_then(PeFile::machine_name);
    let mut k = Kernel {
        format: format(data),
        architecture: machine,
        boot_protocol: None,
        version: None,
        image_size: None,
        zboot: None,
        is_pe: pe.is_some(),
        signed: pe.as_ref().is_some_and(|p| p.certificate_table().is_some()),
        nx_compat: pe.as_ref().is_some_and(PeFile::nx_compat),
    };
    match k.format {
        Some(Format::Bzimage) => x86(data, &mut k),
        Some(Format::Image) => {
            k.architecture = image_architecture(data, machine);
            k.image_size = image_size(data);
            k.version = banner(data).map(|(v, _)| v);
        }
        Some(Format::Zboot) => zboot(data, len, &mut k),
        None => {}
    }
    k
}

/// The x86 setup header's facts.
fn x86(prefix: &[u8], k: &mut Kernel) {
    if k.architecture.is_none() {
        k.architecture = Some("x86");
    }
    let protocol = u16_le(prefix, raw::X86_VERSION_OFFSET, "setup header").ok();
    k.boot_protocol = protocol.map(|v| format!("{}.{}", v >> 8, v & 0xff));
    if protocol.is_some_and(|v| v >= 0x020a) {
        k.image_size = u32_le(prefix, raw::X86_INIT_SIZE_OFFSET, "setup header")
            .ok()
            .filter(|&n| n != 0)
            .map(u64::from);
    }
    k.version = u16_le(prefix, raw::X86_KERNEL_VERSION_OFFSET, "setup header")
        .ok()
        .filter(|&v| v != 0)
        .and_then(|v| {
            let at = u64::from(v).saturating_add(raw::X86_SETUP_BASE);
            let rest = slice(
                prefix,
                at,
                u64::try_from(prefix.len())
                    .unwrap_or(u64::MAX)
                    .saturating_sub(at),
                "kernel version",
            )
            .ok()?;
            let s = rest.get(..rest.iter().take(VERSION_MAX).position(|&b| b == 0)?)?;
            Some(bytes::text(s))
        });
}

/// The Image header's `image_size`.
fn image_size(header: &[u8]) -> Option<u64> {
    let b = slice(header, raw::IMAGE_SIZE_OFFSET, 8, "image header").ok()?;
    // booting.rst: 0 means an old kernel that does not say.
    Some(u64::from_le_bytes(b.try_into().ok()?)).filter(|&n| n != 0)
}

/// The zboot header, and the inner Image's facts when its payload is in `data`.
fn zboot(data: &[u8], len: u64, k: &mut Kernel) {
    let (Ok(offset), Ok(size)) = (
        u32_le(data, raw::ZBOOT_PAYLOAD_OFFSET, "zboot header"),
        u32_le(data, raw::ZBOOT_PAYLOAD_SIZE, "zboot header"),
    ) else {
        return;
    };
    let name = slice(
        data,
        raw::ZBOOT_COMPRESSION_OFFSET,
        raw::ZBOOT_COMPRESSION_LEN,
        "zboot header",
    )
    .map(|n| bytes::text(n.split(|&b| b == 0).next().unwrap_or_default()))
    .unwrap_or_default();
    let (offset, size) = (u64::from(offset), u64::from(size));
    let mut z = Zboot {
        compression: name,
        payload_offset: offset,
        payload_size: size,
        decompressed: None,
    };
    let compressed = offset
        .checked_add(size)
        .filter(|&end| end <= len)
        .and_then(|_| slice(data, offset, size, "zboot payload").ok());
    if let Some(inner) = compressed.and_then(|p| payload::scan(&z.compression, p)) {
        z.decompressed = Some(inner.decompressed);
        if let Some(arch) = image_architecture(&inner.header, k.architecture) {
            k.architecture = Some(arch);
        }
        k.image_size = image_size(&inner.header);
        k.version = inner.version;
    }
    k.zboot = Some(z);
}

/// The first `Linux version <digit>...` banner in `data` (ukify's rule: the release
/// starts with a digit), as text up to its end of line, and where its text ends.
/// A banner cut off by the end of `data` is not taken.
pub fn banner(data: &[u8]) -> Option<(String, usize)> {
    let finder = memchr::memmem::Finder::new(raw::BANNER);
    let mut from = 0usize;
    while let Some(found) = data.get(from..).and_then(|rest| finder.find(rest)) {
        let start = from.checked_add(found)?.checked_add(raw::BANNER.len())?;
        let text = data.get(start..)?;
        if text.first().is_some_and(u8::is_ascii_digit) {
            let window = text.get(..VERSION_MAX.min(text.len()))?;
            if let Some(end) = window.iter().position(|&b| b == b'\n' || b == 0) {
                let line = window.get(..end)?;
                return Some((bytes::text(line), start.checked_add(end)?));
            }
        }
        from = start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_needs_a_digit_and_an_end_of_line() {
        let d = b"xx Linux version %s (x)\0 Linux version 6.1.0-1-arm64 (me@host) #1\nrest";
        let (v, end) = banner(d).unwrap();
        assert_eq!(v, "6.1.0-1-arm64 (me@host) #1");
        assert_eq!(&d[end..end + 1], b"\n");
        assert_eq!(banner(b"Linux version 6.1 cut off"), None);
        assert_eq!(banner(b""), None);
    }

    #[test]
    fn zboot_with_a_gzip_payload() {
        use std::io::Write;
        let mut image = vec![0u8; 64];
        image[..2].copy_from_slice(b"MZ");
        image[0x10..0x18].copy_from_slice(&0x20000u64.to_le_bytes());
        image[0x38..0x3c].copy_from_slice(b"RSC\x05");
        image.extend_from_slice(b"Linux version 6.12.0-z (a@b) #1\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&image).unwrap();
        let payload = gz.finish().unwrap();
        let mut z = vec![0u8; 0x40];
        z[..2].copy_from_slice(b"MZ");
        z[4..8].copy_from_slice(b"zimg");
        z[8..12].copy_from_slice(&0x40u32.to_le_bytes());
        z[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        z[0x18..0x1c].copy_from_slice(b"gzip");
        z[0x38..0x3c].copy_from_slice(raw::LINUX_PE_MAGIC);
        z.extend_from_slice(&payload);
        let k = inspect(&z, z.len() as u64);
        assert_eq!(k.format, Some(Format::Zboot));
        assert_eq!(k.architecture, Some("riscv64"));
        assert_eq!(k.image_size, Some(0x20000));
        assert_eq!(k.version.as_deref(), Some("6.12.0-z (a@b) #1"));
        let zb = k.zboot.unwrap();
        assert_eq!((zb.compression.as_str(), zb.payload_offset), ("gzip", 0x40));
        assert_eq!(zb.decompressed, Some(image.len() as u64));
        // Only the header: the facts of the header, nothing decompressed.
        let k = inspect(&z[..0x40], z.len() as u64);
        assert_eq!((k.version, k.zboot.unwrap().decompressed), (None, None));
    }

    #[test]
    fn formats_by_magic() {
        let mut h = vec![0u8; 0x240];
        h[..2].copy_from_slice(b"MZ");
        assert_eq!(format(&h), None);
        h[0x38..0x3c].copy_from_slice(b"ARMd");
        assert_eq!(format(&h), Some(Format::Image));
        h[0x38..0x3c].copy_from_slice(b"RSC\x05");
        assert_eq!(image_architecture(&h, None), Some("riscv64"));
        h[4..8].copy_from_slice(b"zimg");
        assert_eq!(format(&h), Some(Format::Zboot));
        h[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(format(&h), Some(Format::Bzimage));
    }
}
