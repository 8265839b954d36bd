//! PE/UKI parse + the full inspect report (section hashes and signature checks on).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ukitool_core::inspect::{inspect, InspectOptions};

fuzz_target!(|data: &[u8]| {
    let _ = inspect(data, &InspectOptions::default());
});
