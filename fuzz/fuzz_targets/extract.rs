//! Extraction of every section, of the base and (first byte) of one profile.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ukitool_core::extract;

fuzz_target!(|data: &[u8]| {
    let profile = data.first().map(|b| u32::from(b % 4));
    let _ = extract::all(data, None);
    let _ = extract::all(data, profile);
    let _ = extract::section(data, "linux", profile);
});
