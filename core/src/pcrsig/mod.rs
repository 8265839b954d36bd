//! .pcrsig and .pcrpkey, in one place: the .pcrsig is read once ([`json`], streaming),
//! summarised for inspect, checked against the .pcrpkey and the predicted policies for
//! verify, and written for build and `measure --sign`; the .pcrpkey is read and
//! summarised.
//!
//! systemd-measure writes `{"<bank>":[{"pcrs":[11],"pkfp":"<hex>","pol":"<hex>",
//! "sig":"<base64>"}, ...], ...}`: per bank and boot phase, the TPM2 PolicyPCR
//! digest (`pol`) signed with the key whose public half is in .pcrpkey. `pkfp` is
//! the SHA-256 of that key as OpenSSL's `i2d_PublicKey` writes it ([`key_fingerprint`]);
//! the signature is PKCS#1 v1.5
//! (or ECDSA) over SHA-256(pol). Recomputing `pol` from predicted PCR values is the
//! measure module's work; it plugs in through [`ExpectedPolicies`].

mod json;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;

use crate::authenticode::cert::{self, verify_digest};
use crate::authenticode::{oid, DigestAlgorithm};
use crate::bytes::{hex, unhex};
use crate::error::{Error, Result};
use crate::measure::{self, Prediction};
use crate::sign::AttributeSigner;

/// .pcrsig sections are a few KiB; refuse absurd ones before checking them.
pub const MAX_PCRSIG_LEN: usize = 1 << 20;
/// Entries per file (banks × phases) a check verifies; systemd writes a handful.
pub const MAX_ENTRIES: usize = 1024;

/// Caps on what a .pcrsig summary collects (issue 9: memory bounded by the input,
/// never a parse tree of it). Real files have one to four banks, PCRs below 24 and
/// one or two key fingerprints; values past a cap are counted, not kept.
pub const MAX_BANKS: usize = 16;
/// PCRs per entry (for the check too) and per summary.
pub const MAX_PCRS: usize = 64;
pub const MAX_PKFP: usize = 16;

/// One signed policy, in systemd-measure's field order: what the reader finds in a
/// file and what [`sign`] writes. A field the file gives as another type is None.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    /// Distinct, in file order.
    pub pcrs: Vec<u32>,
    /// Lowercase hex.
    pub pkfp: Option<String>,
    /// Lowercase hex.
    pub pol: Option<String>,
    /// Base64.
    pub sig: Option<String>,
}

/// What inspect shows of a .pcrpkey.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublicKey {
    /// "rsa", "ec-p256", "ec-p384", "ec-p521", or the algorithm OID.
    pub key_type: String,
    pub bits: Option<u32>,
    /// What .pcrsig's `pkfp` names ([`key_fingerprint`]).
    pub fingerprint: String,
}

/// A public key's fingerprint as systemd writes it in `pkfp` (`pubkey_fingerprint`
/// in src/shared/openssl-util.c): SHA-256 of OpenSSL's `i2d_PublicKey`, which is the
/// SubjectPublicKeyInfo's subjectPublicKey bits (RSA: the PKCS#1 RSAPublicKey DER;
/// EC: the point), not of the whole SubjectPublicKeyInfo.
pub fn key_fingerprint(spki_der: &[u8]) -> Result<Vec<u8>> {
    use spki::der::Decode;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| Error::malformed(0, format!("not a SubjectPublicKeyInfo ({e})")))?;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| Error::malformed(0, "the public key's BIT STRING is not whole bytes"))?;
    Ok(DigestAlgorithm::Sha256.digest(bits))
}

/// Summarise a .pcrpkey: a PEM (or DER) SubjectPublicKeyInfo.
pub fn public_key(pcrpkey: &[u8]) -> Result<PublicKey> {
    let der = crate::pem::public_key(pcrpkey, ".pcrpkey")?;
    let (alg, curve) = cert::key_algorithm(&der)
        .map_err(|e| Error::malformed(0, format!(".pcrpkey: not a SubjectPublicKeyInfo ({e})")))?;
    let (key_type, bits) = match alg {
        oid::RSA_ENCRYPTION => ("rsa".to_string(), cert::rsa_bits(&der)),
        oid::EC_PUBLIC_KEY => match (curve, curve.as_ref().and_then(oid::curve)) {
            (_, Some((name, bits))) => (format!("ec-{name}"), Some(bits)),
            (Some(c), None) => (format!("ec-{c}"), None),
            (None, None) => ("ec".to_string(), None),
        },
        other => (other.to_string(), None),
    };
    Ok(PublicKey {
        key_type,
        bits,
        fingerprint: hex(&key_fingerprint(&der)?),
    })
}

/// What inspect shows of a .pcrsig.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PcrsigSummary {
    /// Banks in the file, e.g. ["sha256"].
    pub banks: Vec<String>,
    /// Every PCR any entry covers, ascending.
    pub pcrs: Vec<u32>,
    /// The distinct key fingerprints named by the entries.
    pub pkfp: Vec<String>,
    /// Number of signed policies over all banks.
    pub entries: u64,
}

/// A summary's counts, of one bank or of the file: PCRs and fingerprints up to
/// their caps, and how many more there were.
#[derive(Default)]
struct Counted {
    entries: u64,
    pcrs: BTreeSet<u32>,
    pkfp: Vec<String>,
    dropped: u64,
}

impl Counted {
    fn add_pcr(&mut self, p: u32) {
        if self.pcrs.len() < MAX_PCRS || self.pcrs.contains(&p) {
            self.pcrs.insert(p);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    fn add_pkfp(&mut self, fp: &str) {
        if self.pkfp.iter().any(|k| k == fp) {
            return;
        }
        if self.pkfp.len() < MAX_PKFP {
            self.pkfp.push(fp.to_string());
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }
}

impl json::Bank for Counted {
    const MAX_BANKS: usize = MAX_BANKS;
    fn push(&mut self, entry: Policy, dropped: u64) {
        self.entries = self.entries.saturating_add(1);
        self.dropped = self.dropped.saturating_add(dropped);
        for p in entry.pcrs {
            self.add_pcr(p);
        }
        if let Some(fp) = entry.pkfp {
            self.add_pkfp(&fp);
        }
    }
}

/// Summarise a .pcrsig. Returns the summary and how many banks, PCRs and
/// fingerprints were past the caps.
pub fn summarise(data: &[u8]) -> Result<(PcrsigSummary, u64)> {
    let banks = json::read::<Counted>(data)?;
    let mut all = Counted {
        dropped: banks.dropped,
        ..Counted::default()
    };
    // Bank order is the key order of a JSON object read into a sorted map (what
    // this summary has always reported); a repeated bank keeps its last value.
    for bank in banks.list.values() {
        all.entries = all.entries.saturating_add(bank.entries);
        all.dropped = all.dropped.saturating_add(bank.dropped);
        for &p in &bank.pcrs {
            all.add_pcr(p);
        }
        for fp in &bank.pkfp {
            all.add_pkfp(fp);
        }
    }
    Ok((
        PcrsigSummary {
            banks: banks.list.into_keys().collect(),
            pcrs: all.pcrs.into_iter().collect(),
            pkfp: all.pkfp,
            entries: all.entries,
        },
        all.dropped,
    ))
}

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

/// A bank's entries as a check takes them: up to [`MAX_ENTRIES`], then counted.
#[derive(Default)]
struct Listed {
    entries: Vec<Policy>,
    more: u64,
    not_a_list: bool,
}

impl json::Bank for Listed {
    // The file is at most MAX_PCRSIG_LEN bytes, and every bank is checked.
    const MAX_BANKS: usize = usize::MAX;
    fn push(&mut self, entry: Policy, _: u64) {
        if self.entries.len() < MAX_ENTRIES {
            self.entries.push(entry);
        } else {
            self.more = self.more.saturating_add(1);
        }
    }
    fn not_a_list(&mut self) {
        self.not_a_list = true;
    }
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
    let banks = json::read::<Listed>(pcrsig_json)?;
    let spki = crate::pem::public_key(pcrpkey, ".pcrpkey")?;
    let fp = key_fingerprint(&spki)?;
    let too_many = || Error::malformed(0, format!(".pcrsig has more than {MAX_ENTRIES} entries"));
    let mut entries = Vec::new();
    for (bank, list) in banks.list {
        if list.not_a_list {
            return Err(Error::malformed(
                0,
                format!(".pcrsig bank {bank:?} must be an array"),
            ));
        }
        for item in list.entries {
            if entries.len() >= MAX_ENTRIES {
                return Err(too_many());
            }
            entries.push(check_entry(&bank, item, &spki, &fp, expected));
        }
        if list.more > 0 {
            return Err(too_many());
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
    item: Policy,
    spki: &[u8],
    fp: &[u8],
    expected: Option<ExpectedPolicies<'_>>,
) -> PcrsigEntry {
    let mut e = PcrsigEntry {
        bank: bank.to_string(),
        pcrs: item.pcrs,
        pkfp: item.pkfp.unwrap_or_default(),
        pkfp_matches: false,
        pol: item.pol.unwrap_or_default(),
        signature_valid: false,
        pol_predicted: None,
        problem: None,
    };
    e.pkfp_matches = unhex(&e.pkfp).is_some_and(|p| p == fp);
    let mut problems = Vec::new();
    if !e.pkfp_matches {
        problems.push("pkfp does not match the .pcrpkey".to_string());
    }
    let pol = unhex(&e.pol);
    let sig = base64::engine::general_purpose::STANDARD
        .decode(item.sig.unwrap_or_default())
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
        if pcrs != [measure::PCR_KERNEL_BOOT] {
            return None;
        }
        let alg = measure::parse_bank(bank).ok()?;
        let mut pols = Vec::new();
        for p in 0..profiles {
            let profile = u32::try_from(p).ok()?;
            let parts = measure::uki_parts(pe, (profiles > 1).then_some(profile)).ok()?;
            for pred in measure::predict(&parts, &[alg], &[]).ok()? {
                let pol = measure::policy_pcr_digest(alg, &[(pred.pcr, &pred.hash)]).ok()?;
                pols.push(pol.to_vec());
            }
        }
        Some(pols)
    };
    check(sig, key, Some(&expected))
}

/// Signed policies by bank name, banks in systemd's order (sha1 < sha256 < ...):
/// what a .pcrsig holds.
pub type SignedPolicies = BTreeMap<&'static str, Vec<Policy>>;

/// Sign PCR 11 policies with an RSA key, as `systemd-measure sign` does: for each
/// prediction, `pol` = PolicyPCR digest, `sig` = RSASSA-PKCS1-v1_5 over SHA-256(pol),
/// `pkfp` = SHA-256 of the DER SubjectPublicKeyInfo. Returns the JSON text (one
/// array per bank, banks in systemd's order).
pub fn sign(predictions: &[Prediction], key: &dyn AttributeSigner) -> Result<String> {
    let mut signed = SignedPolicies::new();
    sign_into(&mut signed, predictions, key)?;
    to_json(&signed)
}

/// [`sign`]'s policies appended to `signed`, as `systemd-measure sign --append`
/// merges a second key's: each bank's list grows, and a policy already there (the
/// same key signing the same phase) is not added again.
pub fn sign_into(
    signed: &mut SignedPolicies,
    predictions: &[Prediction],
    key: &dyn AttributeSigner,
) -> Result<()> {
    let pkfp = hex(&key_fingerprint(&key.public_key_der()?)?);
    for p in predictions {
        let pol = measure::policy_pcr_digest(p.bank, &[(p.pcr, &p.hash)])?;
        let (sig, alg) = key.sign_sha256(&pol)?;
        if alg.oid != oid::RSA_ENCRYPTION {
            return Err(Error::Crypto(
                "this needs an RSA key (systemd's .pcrsig uses RSA)".into(),
            ));
        }
        let policy = Policy {
            pcrs: vec![p.pcr],
            pkfp: Some(pkfp.clone()),
            pol: Some(hex(&pol)),
            sig: Some(base64::engine::general_purpose::STANDARD.encode(sig)),
        };
        let list = signed.entry(p.bank.name()).or_default();
        if !list.contains(&policy) {
            list.push(policy);
        }
    }
    Ok(())
}

/// The .pcrsig JSON text of `signed`, compact, as systemd-measure writes it.
pub fn to_json(signed: &SignedPolicies) -> Result<String> {
    serde_json::to_string(signed).map_err(|e| Error::invalid(e.to_string()))
}

/// One unsigned policy of `systemd-measure policy-digest`: `tbs` is what an
/// offline signer signs (without a policy reference, `pol` itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyDigest {
    pub pcrs: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkfp: Option<String>,
    pub pol: String,
    pub tbs: String,
}

/// The policy digests of `predictions`, by bank, as `systemd-measure policy-digest`
/// prints them; `public_key` (PEM or DER SubjectPublicKeyInfo) adds its `pkfp`.
pub fn policy_digests(
    predictions: &[Prediction],
    public_key: Option<&[u8]>,
) -> Result<BTreeMap<&'static str, Vec<PolicyDigest>>> {
    let pkfp = public_key
        .map(|k| crate::pem::public_key(k, "public key"))
        .transpose()?
        .map(|der| key_fingerprint(&der).map(|fp| hex(&fp)))
        .transpose()?;
    let mut out: BTreeMap<&'static str, Vec<PolicyDigest>> = BTreeMap::new();
    for p in predictions {
        let pol = hex(&measure::policy_pcr_digest(p.bank, &[(p.pcr, &p.hash)])?);
        out.entry(p.bank.name()).or_default().push(PolicyDigest {
            pcrs: vec![p.pcr],
            pkfp: pkfp.clone(),
            tbs: pol.clone(),
            pol,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn hostile_json_is_an_error_or_a_failed_entry_never_a_panic() {
        for j in [
            &b"[]"[..],
            b"{",
            b"{\"sha256\":5}",
            b"{\"sha256\":[{\"pcrs\":[11],\"pkfp\":\"zz\",\"pol\":\"0\",\"sig\":\"!!\"}]}",
            b"{\"sha256\":[1,2,3]}",
        ] {
            if let Ok(r) = check(j, KEY, None) {
                assert!(!r.valid);
            }
        }
        let e = check(b"{\"sha256\":5}", KEY, None).unwrap_err();
        assert!(e.to_string().contains("must be an array"), "{e}");
        let r = check(b"{\"sha256\":[1,{\"pcrs\":[11,11,4]}]}", KEY, None).unwrap();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries[1].pcrs, [11, 4]);
    }

    #[test]
    fn pcrpkey_summary_names_the_key() {
        let k = public_key(KEY).unwrap();
        // Ed25519: neither RSA nor EC, so the algorithm OID.
        assert_eq!((k.key_type.as_str(), k.bits), ("1.3.101.112", None));
        assert_eq!(k.fingerprint.len(), 64);
        assert!(public_key(b"-----BEGIN PUBLIC KEY-----\n!\n").is_err());
    }

    #[test]
    fn pcrsig_summary_reads_like_a_sorted_tree() {
        let (s, more) = summarise(
            br#"{"sha256":[{"pcrs":[11,4],"pkfp":"BB","pol":"x"},{"pcrs":[11],"pkfp":"aa"},7],
                "sha1":[{"pcrs":[1,"2",-3,4294967296],"pkfp":"aa"}],
                "sha384":{"not":"a list"},"sha1":[{"pcrs":[9],"pcrs":[12],"pkfp":"cc"}]}"#,
        )
        .unwrap();
        assert_eq!(more, 0);
        // Sorted bank names; a repeated bank and a repeated key keep their last value.
        assert_eq!(s.banks, ["sha1", "sha256", "sha384"]);
        assert_eq!(s.pcrs, [4, 11, 12]);
        assert_eq!(s.pkfp, ["cc", "bb", "aa"]);
        assert_eq!(s.entries, 4);
        assert!(summarise(b"[1]")
            .unwrap_err()
            .to_string()
            .contains("not a JSON object"));
        assert!(summarise(b"{\"a\":")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        let many: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let (s, more) =
            summarise(format!("{{\"b\":[{{\"pcrs\":[{}]}}]}}", many.join(",")).as_bytes()).unwrap();
        assert_eq!((s.pcrs.len(), more), (MAX_PCRS, 100 - MAX_PCRS as u64));
    }
}
