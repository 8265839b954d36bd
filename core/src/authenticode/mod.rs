//! Authenticode: the PE image hash, the certificate table and PKCS#7 signatures,
//! and their verification against trust anchors (certificates, db/dbx).
//!
//! ```text
//!  PeFile ─► pkcs7::certificate_entries (WIN_CERTIFICATE walk)
//!              └─► pkcs7::parse_signed_data (+ nested, depth-bounded)
//!  PeFile ─► hash::hash_ranges ─► one pass per digest algorithm used
//!  both + TrustStore ─► verify::verify ─► VerifyReport (per-signature verdicts)
//! ```

pub mod asn1;
pub mod cert;
pub mod hash;
pub mod oid;
pub mod pkcs7;
pub mod verify;

pub use cert::{Certificate, CertificateInfo};
pub use hash::{hash_ranges, image_digest, DigestAlgorithm, Hasher};
pub use verify::{verify, SignatureSummary, TrustStore, Verdict, VerifyReport};

use crate::lint::Lint;
use crate::pe::PeFile;

/// Signatures found in the certificate table, for the inspect report, verified
/// without trust anchors. Never fails: problems are reported inside the summaries
/// and as lints. With only a header prefix in memory nothing can be checked, and
/// an empty list is returned.
pub fn inspect_signatures(pe: &PeFile<'_>) -> (Vec<SignatureSummary>, Vec<Lint>) {
    // No certificate table: no signature, hence no lint, whatever the digest; skip the
    // full pass that verify would spend on the image digest (issue 8's inspect row).
    if (pe.data.len() as u64) < pe.file_len || pe.certificate_table().is_none() {
        return (Vec::new(), Vec::new());
    }
    let r = verify(pe, &TrustStore::default());
    (r.signatures, r.lints)
}
