//! EFI_SIGNATURE_LIST / db / dbx parse (raw lists, or an authenticated variable), and
//! inspect's report, which also takes an `.auth` file's PKCS#7 apart and checks it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ukitool_core::siglist::parse(data);
    let _ = ukitool_core::siglist::inspect(data);
});
