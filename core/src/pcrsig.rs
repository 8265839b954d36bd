//! Parsing and checking .pcrsig: pkfp against .pcrpkey, signatures over each `pol`.
//!
//! systemd-measure writes `{"<bank>":[{"pcrs":[11],"pkfp":"<hex>","pol":"<hex>",
//! "sig":"<base64>"}, ...], ...}`: per bank and boot phase, the TPM2 PolicyPCR
//! digest (`pol`) signed with the key whose public half is in .pcrpkey. `pkfp` is
//! the SHA-256 of that key's DER SubjectPublicKeyInfo; the signature is PKCS#1 v1.5
//! (or ECDSA) over SHA-256(pol). Recomputing `pol` from predicted PCR values is the
//! measure module's work; it plugs in through [`ExpectedPolicies`].

use base64::Engine;

use crate::authenticode::cert::verify_digest;
use crate::authenticode::DigestAlgorithm;
use crate::bytes::hex;
use crate::error::{Error, Result};

/// .pcrsig sections are a few KiB; refuse absurd ones before parsing.
pub const MAX_PCRSIG_LEN: usize = 1 << 20;
/// Entries per file (banks × phases); systemd writes a handful.
pub const MAX_ENTRIES: usize = 1024;

/// Given a bank name and PCR list, the policy digests the predictor computes (one
/// per boot phase), or `None` when it cannot predict that bank.
pub type ExpectedPolicies<'f> = &'f dyn Fn(&str, &[u32]) -> Option<Vec<Vec<u8>>>;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PcrsigEntry {
    pub bank: String,
    pub pcrs: Vec<u32>,
    pub pkfp: String,
    pub pkfp_matches: bool,
    pub pol: String,
    pub signature_valid: bool,
    /// Whether `pol` is among the predicted policies (None: no prediction given).
    pub pol_predicted: Option<bool>,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PcrsigReport {
    /// SHA-256 of the .pcrpkey SubjectPublicKeyInfo, hex.
    pub key_fingerprint: String,
    pub entries: Vec<PcrsigEntry>,
    /// Every entry's pkfp matches, every signature verifies, and every prediction
    /// that was made matches.
    pub valid: bool,
}

/// DER SubjectPublicKeyInfo from a PEM ("PUBLIC KEY") or DER .pcrpkey.
pub fn public_key_der(pcrpkey: &[u8]) -> Result<Vec<u8>> {
    let text = pcrpkey.trim_ascii();
    if text.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(text)
            .map_err(|e| Error::invalid(format!(".pcrpkey is not valid PEM: {e}")))?;
        if label != "PUBLIC KEY" {
            return Err(Error::invalid(format!(
                ".pcrpkey PEM label is {label:?}, expected \"PUBLIC KEY\""
            )));
        }
        Ok(der)
    } else {
        Ok(pcrpkey.to_vec())
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

/// Check every entry of a .pcrsig against the .pcrpkey (and the predictions, when
/// `expected` is given). Structural problems are errors; a failed check is
/// reported in the entry.
pub fn check(
    pcrsig_json: &[u8],
    pcrpkey: &[u8],
    expected: Option<ExpectedPolicies<'_>>,
) -> Result<PcrsigReport> {
    if pcrsig_json.len() > MAX_PCRSIG_LEN {
        return Err(Error::malformed(
            0,
            format!(
                ".pcrsig is {} bytes; more than {MAX_PCRSIG_LEN} is not a .pcrsig",
                pcrsig_json.len()
            ),
        ));
    }
    let text = crate::bytes::text(pcrsig_json);
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::malformed(0, format!(".pcrsig is not JSON: {e}")))?;
    let banks = v
        .as_object()
        .ok_or_else(|| Error::malformed(0, ".pcrsig must be a JSON object of banks"))?;
    let spki = public_key_der(pcrpkey)?;
    let fp = DigestAlgorithm::Sha256.digest(&spki);
    let mut entries = Vec::new();
    for (bank, list) in banks {
        let list = list.as_array().ok_or_else(|| {
            Error::malformed(0, format!(".pcrsig bank {bank:?} must be an array"))
        })?;
        for item in list {
            if entries.len() >= MAX_ENTRIES {
                return Err(Error::malformed(
                    0,
                    format!(".pcrsig has more than {MAX_ENTRIES} entries"),
                ));
            }
            entries.push(check_entry(bank, item, &spki, &fp, expected));
        }
    }
    let valid = !entries.is_empty()
        && entries
            .iter()
            .all(|e| e.pkfp_matches && e.signature_valid && e.pol_predicted != Some(false));
    Ok(PcrsigReport {
        key_fingerprint: hex(&fp),
        entries,
        valid,
    })
}

fn check_entry(
    bank: &str,
    item: &serde_json::Value,
    spki: &[u8],
    fp: &[u8],
    expected: Option<ExpectedPolicies<'_>>,
) -> PcrsigEntry {
    let field = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let pcrs: Vec<u32> = item
        .get("pcrs")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_u64())
                .filter_map(|n| u32::try_from(n).ok())
                .take(32)
                .collect()
        })
        .unwrap_or_default();
    let mut e = PcrsigEntry {
        bank: bank.to_string(),
        pcrs,
        pkfp: field("pkfp").to_ascii_lowercase(),
        pkfp_matches: false,
        pol: field("pol").to_ascii_lowercase(),
        signature_valid: false,
        pol_predicted: None,
        problem: None,
    };
    e.pkfp_matches = hex_decode(&e.pkfp).is_some_and(|p| p == fp);
    let mut problems = Vec::new();
    if !e.pkfp_matches {
        problems.push("pkfp does not match the .pcrpkey".to_string());
    }
    let pol = hex_decode(&e.pol);
    let sig = base64::engine::general_purpose::STANDARD
        .decode(field("sig"))
        .ok();
    match (&pol, sig) {
        (Some(pol), Some(sig)) => {
            let d = DigestAlgorithm::Sha256.digest(pol);
            match verify_digest(spki, DigestAlgorithm::Sha256, &d, &sig) {
                Ok(()) => e.signature_valid = true,
                Err(err) => problems.push(format!("signature over pol: {err}")),
            }
        }
        (None, _) => problems.push("pol is not hex".into()),
        (_, None) => problems.push("sig is not base64".into()),
    }
    if let (Some(f), Some(pol)) = (expected, &pol) {
        if let Some(predicted) = f(bank, &e.pcrs) {
            let hit = predicted.iter().any(|p| p == pol);
            e.pol_predicted = Some(hit);
            if !hit {
                problems.push("pol matches no predicted boot phase".into());
            }
        }
    }
    if !problems.is_empty() {
        e.problem = Some(problems.join("; "));
    }
    e
}

/// Check the .pcrsig of a UKI against its .pcrpkey and against the PCR 11 values
/// predicted from the UKI itself (so a `pol` that no longer matches the sections is
/// caught). In a multi-profile UKI each profile block carries its own .pcrsig; every
/// one is checked against the predictions for the profiles. `None` when the UKI has
/// no .pcrsig.
pub fn check_pe(pe: &crate::pe::PeFile<'_>) -> Option<Result<PcrsigReport>> {
    let sig = pe.section_payload(".pcrsig")?;
    Some(check_pe_inner(pe, sig))
}

fn check_pe_inner(pe: &crate::pe::PeFile<'_>, sig: Result<&[u8]>) -> Result<PcrsigReport> {
    let sig = sig?;
    let key = pe.section_payload(".pcrpkey").ok_or_else(|| {
        Error::NotFound(".pcrsig present but no .pcrpkey to check it with".into())
    })??;
    let profiles = pe.sections_named(".profile").count().max(1);
    let expected = |bank: &str, pcrs: &[u32]| -> Option<Vec<Vec<u8>>> {
        if pcrs != [crate::measure::PCR_KERNEL_BOOT] {
            return None;
        }
        let alg = crate::measure::parse_bank(bank).ok()?;
        let mut pols = Vec::new();
        for p in 0..profiles {
            let profile = u32::try_from(p).ok()?;
            let parts = crate::measure::uki_parts(pe, (profiles > 1).then_some(profile)).ok()?;
            for pred in crate::measure::predict(&parts, &[alg], &[]).ok()? {
                let pol = crate::measure::policy_pcr_digest(alg, &[(pred.pcr, &pred.hash)]).ok()?;
                pols.push(pol.to_vec());
            }
        }
        Some(pols)
    };
    check(sig, key, Some(&expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_json_is_an_error_or_a_failed_entry_never_a_panic() {
        let key = b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        for j in [
            &b"[]"[..],
            b"{",
            b"{\"sha256\":5}",
            b"{\"sha256\":[{\"pcrs\":[11],\"pkfp\":\"zz\",\"pol\":\"0\",\"sig\":\"!!\"}]}",
            b"{\"sha256\":[1,2,3]}",
        ] {
            if let Ok(r) = check(j, key, None) {
                assert!(!r.valid);
            }
        }
    }
}
