//! Linux boot images: the format, the x86/Image/zboot facts, and a zboot payload
//! decompressed and scanned within its bounds (uki::kernel).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ukitool_core::uki::kernel::{self, payload};

fuzz_target!(|data: &[u8]| {
    let _ = kernel::inspect(data, data.len() as u64);
    for method in ["gzip", "zstd"] {
        let _ = payload::scan(method, data);
    }
});
