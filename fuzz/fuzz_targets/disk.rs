//! Raw disk image inspect (partition table, FAT walk of the ESP).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ukitool_core::disk::inspect::inspect_disk(data);
});
