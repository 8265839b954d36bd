//! EFI_SIGNATURE_LIST / db / dbx parse (raw lists, or an authenticated variable).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ukitool_core::siglist::parse(data);
});
