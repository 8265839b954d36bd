//! The FAT volume reader alone: boot sector, directory walk, then every file's bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ukitool_core::disk::fat::read::read_volume;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = read_volume(data) {
        for e in v.entries.iter().filter(|e| !e.is_dir) {
            let _ = v.file_bytes(data, e);
        }
    }
});
