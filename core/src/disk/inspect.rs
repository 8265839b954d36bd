//! Recognising and describing raw disk images ("what is on this stick").

use crate::error::{Error, Result};

/// Does this look like a raw disk (an MBR boot signature with a GPT header or MBR
/// partitions) rather than a PE file?
pub fn looks_like_disk(data: &[u8]) -> bool {
    !data.starts_with(b"MZ") && data.get(510..512) == Some(&[0x55, 0xaa][..])
}

/// The disk report: partitions, the files on each FAT ESP, and the EFI binaries
/// found there (owned by the disk-image work).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DiskReport {}

pub fn inspect_disk(_data: &[u8]) -> Result<DiskReport> {
    Err(Error::Unsupported {
        offset: 0,
        what: "disk images are not inspected yet".into(),
    })
}
