//! The kernel inside .linux: the x86 boot-protocol setup header
//! (Documentation/arch/x86/boot.rst) and the kernel's own PE headers.
//! Only a prefix of .linux is needed (the setup code), never the whole kernel.

use crate::bytes::{self, slice, u16_le};
use crate::pe::PeFile;

/// How much of .linux the kernel facts need: the setup header, the PE headers
/// and the version string all live in the real-mode setup code (<= 32 KiB by the
/// boot protocol); 64 KiB leaves room.
pub const PREFIX_LEN: u64 = 64 * 1024;

pub const HDRS_OFFSET: u64 = 0x202;
pub const HDRS_MAGIC: &[u8; 4] = b"HdrS";
const VERSION_OFFSET: u64 = 0x206;
const KERNEL_VERSION_OFFSET: u64 = 0x20e;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kernel {
    /// Boot protocol version as "major.minor" (e.g. "2.15"), if the setup header is present.
    pub boot_protocol: Option<String>,
    /// The kernel version string the setup header points at.
    pub version: Option<String>,
    /// Whether .linux is itself a PE (an EFI-stub kernel).
    pub is_pe: bool,
    /// Whether .linux has its own certificate table (a signed kernel).
    pub signed: bool,
    /// Whether the kernel PE claims NX_COMPAT.
    pub nx_compat: bool,
}

/// Does `data` carry the Linux setup-header magic?
pub fn has_setup_header(data: &[u8]) -> bool {
    slice(data, HDRS_OFFSET, 4, "setup header").is_ok_and(|m| m == HDRS_MAGIC)
}

/// Facts from a prefix of the kernel image whose full length is `len`.
pub fn inspect(prefix: &[u8], len: u64) -> Kernel {
    let hdrs = has_setup_header(prefix);
    let boot_protocol = hdrs
        .then(|| u16_le(prefix, VERSION_OFFSET, "setup header").ok())
        .flatten()
        .map(|v| format!("{}.{}", v >> 8, v & 0xff));
    let version = hdrs
        .then(|| u16_le(prefix, KERNEL_VERSION_OFFSET, "setup header").ok())
        .flatten()
        .filter(|&v| v != 0)
        .and_then(|v| {
            // boot.rst: kernel_version is an offset from the setup header at 0x200.
            let at = u64::from(v).saturating_add(0x200);
            let rest = slice(
                prefix,
                at,
                u64::try_from(prefix.len())
                    .unwrap_or(u64::MAX)
                    .saturating_sub(at),
                "kernel version",
            )
            .ok()?;
            let s = rest.get(..rest.iter().take(256).position(|&b| b == 0)?)?;
            Some(bytes::text(s))
        });
    let pe = PeFile::parse_prefix(prefix, len).ok();
    Kernel {
        boot_protocol,
        version,
        is_pe: pe.is_some(),
        signed: pe.as_ref().is_some_and(|p| p.certificate_table().is_some()),
        nx_compat: pe.as_ref().is_some_and(PeFile::nx_compat),
    }
}
