//! Authenticode: the PE image hash, the certificate table and PKCS#7 signatures.

pub mod hash;

pub use hash::{hash_ranges, image_digest, DigestAlgorithm};

use crate::lint::Lint;
use crate::pe::PeFile;

/// What `ukitool inspect` shows about one signature (owned by the authenticode
/// work; the inspect report embeds it as its `signatures` array).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureSummary {
    /// Offset of the WIN_CERTIFICATE entry in the file.
    pub offset: u64,
    /// One line for the human output.
    pub line: String,
}

/// Signatures found in the certificate table, for the inspect report. Never fails:
/// problems are reported inside the summaries and as lints.
pub fn inspect_signatures(_pe: &PeFile<'_>) -> (Vec<SignatureSummary>, Vec<Lint>) {
    (Vec::new(), Vec::new())
}
