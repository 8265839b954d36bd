//! The partition table reader alone (GPT at 512/4096-byte sectors, else MBR).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ukitool_core::disk::gpt::read(data);
});
