//! The measure path: the UKI's measured parts (base and profile @1), PCR 11 predicted
//! in two banks over the default phases.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ukitool_core::authenticode::hash::DigestAlgorithm;
use ukitool_core::measure::{predict, uki_parts};
use ukitool_core::pe::PeFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(pe) = PeFile::parse(data) {
        for profile in [None, Some(1)] {
            if let Ok(parts) = uki_parts(&pe, profile) {
                let banks = [DigestAlgorithm::Sha1, DigestAlgorithm::Sha256];
                let _ = predict(&parts, &banks, &[]);
            }
        }
    }
});
