//! The bmap XML parser (core::bmap) over arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ukitool_core::bmap::parse(data);
});
