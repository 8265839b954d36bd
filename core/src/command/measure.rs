//! `measure`: PCR 11 as systemd-stub measures a UKI (or given parts), per bank and
//! boot phase, in systemd-measure's shapes.

use crate::authenticode::DigestAlgorithm;
use crate::error::Result;
use crate::measure::{self as pcr, Part, PartDigests, Prediction};
use crate::pe::PeFile;

/// What is measured.
#[derive(Debug, Clone)]
pub enum MeasureInput<'a> {
    /// A UKI: its base sections plus those of `profile` (`None`: profile @0, when it
    /// has profiles).
    Uki {
        pe: &'a PeFile<'a>,
        profile: Option<u32>,
    },
    /// Section payloads given one by one (`measure --linux ... --osrel ...`).
    Parts(Vec<Part<'a>>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeasureOptions {
    /// PCR banks; empty: all four. Listed in systemd's order whatever the order here.
    pub banks: Vec<DigestAlgorithm>,
    /// Boot phase paths (`enter-initrd:leave-initrd`, ...); empty: systemd's four.
    pub phases: Vec<String>,
}

/// The predictions; serialises as `measure --json` prints them (systemd-measure's
/// `{"sha256":[{"phase":...,"pcr":11,"hash":...}],...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// Grouped by bank in systemd's order, then by phase.
    pub predictions: Vec<Prediction>,
}

impl serde::Serialize for Measurement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&pcr::predictions_json(&self.predictions), s)
    }
}

impl Measurement {
    /// The .pcrsig JSON text: every policy signed with `key`, as `systemd-measure
    /// sign` writes it.
    pub fn sign(&self, key: &dyn crate::sign::AttributeSigner) -> Result<String> {
        crate::pcrsig::sign(&self.predictions, key)
    }

    /// The unsigned policies, for signing offline, as `systemd-measure
    /// policy-digest` prints them (compact JSON); `public_key` (PEM) adds `pkfp`.
    pub fn policy_digest(&self, public_key: Option<&[u8]>) -> Result<String> {
        let digests = crate::pcrsig::policy_digests(&self.predictions, public_key)?;
        serde_json::to_string(&digests).map_err(|e| crate::Error::invalid(e.to_string()))
    }
}

/// Why a prediction without `.linux` is refused. systemd-stub boots only a UKI, and
/// systemd-measure refuses the same ("Either --linux= or --current must be
/// specified"): a shim, a bare stub, an addon or a plain kernel has no PCR 11 to predict.
fn no_linux(input: &MeasureInput<'_>) -> crate::Error {
    no_linux_in(matches!(input, MeasureInput::Uki { .. }))
}

fn no_linux_in(uki: bool) -> crate::Error {
    crate::Error::invalid(match uki {
        true => {
            "the file has no .linux section, so it is not a UKI and systemd-stub measures nothing into PCR 11 for it (systemd-measure refuses it too)"
        }
        false => {
            "--linux is required: systemd-stub measures PCR 11 only for a UKI (systemd-measure: \"Either --linux= or --current must be specified\")"
        }
    })
}

/// `ukitool measure`: predict PCR 11 for `input`; a file or a set of parts without
/// `.linux` is refused.
pub fn measure(input: &MeasureInput<'_>, opts: &MeasureOptions) -> Result<Measurement> {
    let banks = banks(opts);
    let uki_parts;
    let parts = match input {
        MeasureInput::Uki { pe, profile } => {
            uki_parts = pcr::uki_parts(pe, *profile)?;
            &uki_parts
        }
        MeasureInput::Parts(parts) => parts,
    };
    if !parts.iter().any(|p| p.name == ".linux") {
        return Err(no_linux(input));
    }
    Ok(Measurement {
        predictions: pcr::predict(parts, &banks, &opts.phases)?,
    })
}

/// `ukitool measure` of a UKI whose measured payloads were hashed elsewhere (the page
/// streams them through WebCrypto): `parts` as [`pcr::select_parts`] chose them, each
/// with its digest in every bank of `banks(opts)`, in that order.
pub fn measure_digests(parts: &[PartDigests<'_>], opts: &MeasureOptions) -> Result<Measurement> {
    if !parts.iter().any(|p| p.name == ".linux") {
        return Err(no_linux_in(true));
    }
    Ok(Measurement {
        predictions: pcr::predict_digests(parts, &banks(opts), &opts.phases)?,
    })
}

/// The banks measured, in systemd's order whatever the option order (all four when
/// none is asked for).
pub fn banks(opts: &MeasureOptions) -> Vec<DigestAlgorithm> {
    let mut banks = if opts.banks.is_empty() {
        DigestAlgorithm::ALL.to_vec()
    } else {
        opts.banks.clone()
    };
    banks.sort();
    banks.dedup();
    banks
}
