//! `verify`: the Authenticode signatures against trust anchors, then the `.pcrsig`;
//! one verdict and its exit code.

use std::collections::BTreeMap;

use crate::authenticode::verify::verify_with_digests;
use crate::authenticode::{self, DigestAlgorithm, TrustStore, Verdict, VerifyReport};
use crate::error::Result;
use crate::pcrsig::{self, PcrsigReport};
use crate::pe::PeFile;

/// The `.pcrsig` check of a UKI: both fields `null` when it has no .pcrsig.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PcrsigCheck {
    pub pcrsig: Option<PcrsigReport>,
    /// Set when a .pcrsig exists but could not be checked.
    pub pcrsig_error: Option<String>,
}

impl PcrsigCheck {
    /// Check the .pcrsig of `pe`, which holds the whole file (the policies are
    /// checked against PCR 11 predicted from its sections).
    pub fn of(pe: &PeFile<'_>) -> Self {
        match pcrsig::check_pe(pe) {
            Some(Ok(r)) => PcrsigCheck {
                pcrsig: Some(r),
                pcrsig_error: None,
            },
            Some(Err(e)) => PcrsigCheck {
                pcrsig: None,
                pcrsig_error: Some(e.to_string()),
            },
            None => PcrsigCheck::default(),
        }
    }

    /// Is there a .pcrsig that fails, or that could not be checked?
    pub fn failed(&self) -> bool {
        self.pcrsig.as_ref().is_some_and(|p| !p.valid) || self.pcrsig_error.is_some()
    }
}

/// What `verify --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// The file as the caller names it.
    pub file: String,
    #[serde(flatten)]
    pub report: VerifyReport,
    #[serde(flatten)]
    pub pcrsig: PcrsigCheck,
}

impl Verification {
    /// 0: valid, and trusted when anchors were given; 1: a negative verdict
    /// (unsigned, untrusted, revoked, hash-mismatch, bad-signature, a failed
    /// .pcrsig); 2: malformed.
    pub fn exit_code(&self) -> u8 {
        let pcrsig_bad = self.pcrsig.failed();
        match self.report.verdict {
            Verdict::Malformed => 2,
            Verdict::ValidTrusted if !pcrsig_bad => 0,
            Verdict::ValidUntrusted if !self.report.anchors_given && !pcrsig_bad => 0,
            _ => 1,
        }
    }
}

/// `ukitool verify`: the signatures of the PE in `data` against `trust`, and its
/// .pcrsig. Fails only when `data` is not a PE; every finding is in the result.
pub fn verify(file: &str, data: &[u8], trust: &TrustStore) -> Result<Verification> {
    let pe = PeFile::parse(data)?;
    Ok(Verification {
        file: file.to_string(),
        report: authenticode::verify(&pe, trust),
        pcrsig: PcrsigCheck::of(&pe),
    })
}

/// [`verify`]'s signatures, with the image digests computed elsewhere (the page
/// streams the file through WebCrypto): `data` holds the headers and the certificate
/// table at their offsets (see [`verify_with_digests`]). The .pcrsig needs the whole
/// file and is left out: check it with [`PcrsigCheck::of`].
pub fn verify_with_image_digests(
    file: &str,
    data: &[u8],
    trust: &TrustStore,
    digests: BTreeMap<DigestAlgorithm, Vec<u8>>,
) -> Result<Verification> {
    let pe = PeFile::parse(data)?;
    Ok(Verification {
        file: file.to_string(),
        report: verify_with_digests(&pe, trust, digests),
        pcrsig: PcrsigCheck::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::layout::test_pe;

    #[test]
    fn an_unsigned_file_is_a_negative_verdict_with_no_pcrsig() {
        let data = test_pe(0x8664, &[(".linux", b"k")]);
        let v = verify("a.efi", &data, &TrustStore::default()).unwrap();
        assert_eq!(v.report.verdict, Verdict::Unsigned);
        assert_eq!(v.exit_code(), 1);
        let text = serde_json::to_string(&v).unwrap();
        assert!(
            text.starts_with(r#"{"file":"a.efi","verdict":"unsigned""#),
            "{text}"
        );
        assert!(
            text.ends_with(r#""pcrsig":null,"pcrsig_error":null}"#),
            "{text}"
        );
        assert!(verify("x", b"MZ", &TrustStore::default()).is_err());
    }
}
