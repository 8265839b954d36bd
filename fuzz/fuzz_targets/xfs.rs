//! The XFS volume reader alone: superblock, tree walk, then every file's bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ukitool_core::disk::xfs::{read_volume, FileType};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = read_volume(data) {
        for e in v.entries.iter().filter(|e| e.kind == FileType::File) {
            let _ = v.file_bytes(data, e);
        }
    }
});
