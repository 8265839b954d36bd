//! Authenticode verify with a trust anchor (the snakeoil certificate the fixtures
//! sign with) and a dbx entry, so the chain and revocation paths run too.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ukitool_core::authenticode::verify::{verify, TrustStore};
use ukitool_core::pe::PeFile;

fn trust() -> &'static TrustStore {
    static T: OnceLock<TrustStore> = OnceLock::new();
    T.get_or_init(|| {
        let here = env!("CARGO_MANIFEST_DIR");
        let pem = [
            format!("{here}/../tests/fixtures/out/snakeoil.pem"),
            "/usr/share/ovmf/PkKek-1-snakeoil.pem".to_string(),
        ]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .expect("snakeoil.pem: run tests/fixtures/generate.sh (or apt-get install ovmf)");
        let mut t = TrustStore::default();
        t.add_cert_file(&pem).expect("snakeoil.pem parses");
        // A revoked image hash that matches nothing, so the dbx comparison runs.
        t.revoked_hashes.push(vec![0x5a; 32]);
        t
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(pe) = PeFile::parse(data) {
        let _ = verify(&pe, trust());
    }
});
