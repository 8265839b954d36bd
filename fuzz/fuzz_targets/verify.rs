//! Authenticode parse + verify without trust anchors (every signature is checked
//! against its own certificates: "valid-untrusted" at best).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ukitool_core::authenticode::verify::{verify, TrustStore};
use ukitool_core::pe::PeFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(pe) = PeFile::parse(data) {
        let _ = verify(&pe, &TrustStore::default());
    }
});
