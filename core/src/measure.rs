//! PCR 11 prediction as systemd-stub measures it, and TPM2 PolicyPCR digests (which
//! [`crate::pcrsig`] signs and checks).
//!
//! systemd-stub extends PCR 11 once per present, non-empty UKI section, in its own
//! fixed order (not file order): first H(name + NUL), then H(payload). systemd then
//! extends one word per boot phase (H(word), no NUL). `systemd-measure calculate`
//! predicts the result; this module does the same, for every bank, in one pass over
//! each payload.

use serde::Serialize;

use crate::authenticode::hash::{DigestAlgorithm, Hasher};
use crate::bytes::hex;
use crate::error::{Error, Result};
use crate::pe::PeFile;

/// The PCR the stub measures UKI sections into.
pub const PCR_KERNEL_BOOT: u32 = 11;

/// systemd's measurement order (src/fundamental/uki.h, `unified_sections`).
/// `.pcrsig` is listed there but never measured (it signs the result).
pub const MEASURE_ORDER: [&str; 15] = [
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
    ".pcrsig", ".pcrpkey", ".profile", ".dtbauto", ".hwids", ".efifw",
];

/// systemd-measure's default boot phase paths.
pub const DEFAULT_PHASES: [&str; 4] = [
    "enter-initrd",
    "enter-initrd:leave-initrd",
    "enter-initrd:leave-initrd:sysinit",
    "enter-initrd:leave-initrd:sysinit:ready",
];

/// A section to measure: its name and its payload as chunks (read back to back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: &'a str,
    pub chunks: Vec<&'a [u8]>,
}

/// One predicted PCR value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prediction {
    #[serde(skip)]
    pub bank: DigestAlgorithm,
    pub phase: String,
    pub pcr: u32,
    #[serde(serialize_with = "ser_hex")]
    pub hash: Vec<u8>,
}

fn ser_hex<S: serde::Serializer>(v: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex(v))
}

/// Parse a bank name as systemd-measure accepts it (case-insensitive).
pub fn parse_bank(name: &str) -> Result<DigestAlgorithm> {
    DigestAlgorithm::ALL
        .into_iter()
        .find(|b| b.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            Error::invalid(format!(
                "unknown PCR bank {name:?} (sha1, sha256, sha384, sha512)"
            ))
        })
}

/// The measured parts of a UKI for `profile` (systemd-stub 257 semantics): sections
/// before the first `.profile` are the base; profile @N's block overrides the base
/// section of the same name. Without profiles, only @0 (the base) exists. Of repeated
/// `.dtbauto`/`.efifw`, the stub measures only the one matching the hardware, which a
/// prediction cannot know: the first is taken.
pub fn uki_parts<'a>(pe: &PeFile<'a>, profile: Option<u32>) -> Result<Vec<Part<'a>>> {
    let mut items = Vec::with_capacity(pe.sections.len());
    for s in &pe.sections {
        items.push((s.name.as_str(), s.payload(pe.data)?));
    }
    Ok(select_parts(items, profile)?
        .into_iter()
        .map(|(name, payload)| Part {
            name,
            chunks: vec![payload],
        })
        .collect())
}

/// [`uki_parts`] over any per-section value (a payload, or an index for a caller that
/// hashes the payloads itself, as the page does): `sections` are (name, value) in file
/// order; the result is (measured name, value) for `profile`.
pub fn select_parts<T: Clone>(
    sections: impl IntoIterator<Item = (impl AsRef<str>, T)>,
    profile: Option<u32>,
) -> Result<Vec<(&'static str, T)>> {
    let mut base: Vec<(&'static str, T)> = Vec::new();
    let mut blocks: Vec<Vec<(&'static str, T)>> = Vec::new();
    for (name, value) in sections {
        let name = name.as_ref();
        let measured = MEASURE_ORDER.iter().find(|n| **n == name).copied();
        if name == ".profile" {
            blocks.push(vec![(".profile", value)]);
        } else if let Some(m) = measured {
            match blocks.last_mut() {
                Some(b) => b.push((m, value)),
                None => base.push((m, value)),
            }
        }
    }
    let n = profile.unwrap_or(0);
    if blocks.is_empty() {
        if n != 0 {
            return Err(Error::NotFound(format!(
                "profile @{n}: the UKI has no profiles"
            )));
        }
        return Ok(base);
    }
    let block = blocks.get(n as usize).ok_or_else(|| {
        Error::NotFound(format!(
            "profile @{n}: the UKI has {} profiles",
            blocks.len()
        ))
    })?;
    // A set, not a scan of the block per base part: 32767 parts on each side were
    // quadratic (26 s, issue 9).
    let own: std::collections::HashSet<&str> = block.iter().map(|p| p.0).collect();
    let mut out: Vec<(&'static str, T)> = base.into_iter().filter(|b| !own.contains(b.0)).collect();
    out.extend(block.iter().cloned());
    Ok(out)
}

/// A measured part whose payload was hashed elsewhere: its name, its payload's length
/// and its digest in each bank (in the order of the banks passed to
/// [`predict_digests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartDigests<'a> {
    pub name: &'a str,
    pub len: u64,
    pub digests: Vec<Vec<u8>>,
}

/// Extend `pcr` with `digest` in `bank`: PCR = H(PCR || digest).
fn extend(bank: DigestAlgorithm, pcr: &mut Vec<u8>, digest: &[u8]) {
    let mut h = Hasher::new(bank);
    h.update(pcr);
    h.update(digest);
    *pcr = h.finish();
}

/// Predict PCR 11 for each bank and phase path (`phases` empty: the default paths).
/// Results are grouped by bank in the order given, then by phase.
pub fn predict(
    parts: &[Part<'_>],
    banks: &[DigestAlgorithm],
    phases: &[String],
) -> Result<Vec<Prediction>> {
    let mut hashed = Vec::new();
    for name in MEASURE_ORDER {
        if name == ".pcrsig" {
            continue;
        }
        // At most one of each name is measured (the stub's table lookup finds one).
        let Some(part) = parts.iter().find(|p| p.name == name) else {
            continue;
        };
        let mut hashers: Vec<Hasher> = banks.iter().map(|b| Hasher::new(*b)).collect();
        let mut len = 0u64;
        for c in &part.chunks {
            len = len.saturating_add(c.len() as u64);
            for h in &mut hashers {
                h.update(c);
            }
        }
        hashed.push(PartDigests {
            name,
            len,
            digests: hashers.into_iter().map(Hasher::finish).collect(),
        });
    }
    predict_digests(&hashed, banks, phases)
}

/// [`predict`] from payload digests computed elsewhere (the page hashes with
/// WebCrypto while it streams the file). A part without a digest for every bank is
/// an error; an empty payload is not measured, as by the stub.
pub fn predict_digests(
    parts: &[PartDigests<'_>],
    banks: &[DigestAlgorithm],
    phases: &[String],
) -> Result<Vec<Prediction>> {
    let phases: Vec<String> = if phases.is_empty() {
        DEFAULT_PHASES.iter().map(|s| s.to_string()).collect()
    } else {
        phases.to_vec()
    };
    let mut pcrs: Vec<Vec<u8>> = banks.iter().map(|b| vec![0u8; b.output_len()]).collect();
    for name in MEASURE_ORDER {
        if name == ".pcrsig" {
            continue;
        }
        let Some(part) = parts.iter().find(|p| p.name == name) else {
            continue;
        };
        if part.len == 0 {
            continue;
        }
        if part.digests.len() != banks.len() {
            return Err(Error::invalid(format!(
                "{name}: {} payload digests for {} banks",
                part.digests.len(),
                banks.len()
            )));
        }
        let mut name_nul = name.as_bytes().to_vec();
        name_nul.push(0);
        for ((bank, pcr), d) in banks.iter().zip(&mut pcrs).zip(&part.digests) {
            if d.len() != bank.output_len() {
                return Err(Error::invalid(format!(
                    "{name}: a {} digest has {} bytes, not {}",
                    bank.name(),
                    d.len(),
                    bank.output_len()
                )));
            }
            extend(*bank, pcr, &bank.digest(&name_nul));
            extend(*bank, pcr, d);
        }
    }
    let mut out = Vec::with_capacity(banks.len().saturating_mul(phases.len()));
    for (bank, base) in banks.iter().zip(&pcrs) {
        for phase in &phases {
            let mut pcr = base.clone();
            for word in phase.split(':').filter(|w| !w.is_empty()) {
                extend(*bank, &mut pcr, &bank.digest(word.as_bytes()));
            }
            out.push(Prediction {
                bank: *bank,
                phase: phase.clone(),
                pcr: PCR_KERNEL_BOOT,
                hash: pcr,
            });
        }
    }
    Ok(out)
}

/// TPM2 bank algorithm ids (TPM 2.0 Part 2, TPM_ALG_ID).
fn tpm_alg_id(bank: DigestAlgorithm) -> u16 {
    match bank {
        DigestAlgorithm::Sha1 => 0x0004,
        DigestAlgorithm::Sha256 => 0x000B,
        DigestAlgorithm::Sha384 => 0x000C,
        DigestAlgorithm::Sha512 => 0x000D,
    }
}

/// TPM_CC_PolicyPCR.
const TPM_CC_POLICY_PCR: u32 = 0x0000_017F;

/// The TPM2 PolicyPCR digest (sha256 policy, as systemd uses) for PCRs of one `bank`:
/// H(zeros || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || H(PCR values in index order)).
/// `pcrs` are (index < 24, value) pairs.
pub fn policy_pcr_digest(bank: DigestAlgorithm, pcrs: &[(u32, &[u8])]) -> Result<[u8; 32]> {
    let mut select = [0u8; 3];
    let mut sorted: Vec<&(u32, &[u8])> = pcrs.iter().collect();
    sorted.sort_by_key(|(i, _)| *i);
    let mut values = Hasher::new(DigestAlgorithm::Sha256);
    for (i, v) in sorted {
        let byte = select
            .get_mut((*i / 8) as usize)
            .ok_or_else(|| Error::invalid(format!("PCR {i} is out of range (0-23)")))?;
        *byte |= 1 << (i % 8);
        if v.len() != bank.output_len() {
            return Err(Error::invalid(format!(
                "PCR {i} value has {} bytes, a {} value has {}",
                v.len(),
                bank.name(),
                bank.output_len()
            )));
        }
        values.update(v);
    }
    let mut h = Hasher::new(DigestAlgorithm::Sha256);
    h.update(&[0u8; 32]);
    h.update(&TPM_CC_POLICY_PCR.to_be_bytes());
    h.update(&1u32.to_be_bytes());
    h.update(&tpm_alg_id(bank).to_be_bytes());
    h.update(&[3]);
    h.update(&select);
    h.update(&values.finish());
    let d = h.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.get(..32).unwrap_or(&[0u8; 32]));
    Ok(out)
}

/// Predictions in systemd-measure's JSON shape, ready for serde:
/// `{"sha256":[{"phase":"enter-initrd","pcr":11,"hash":"..."}],...}` (banks in
/// systemd's order, fields in its order).
pub fn predictions_json(
    predictions: &[Prediction],
) -> std::collections::BTreeMap<&'static str, Vec<&Prediction>> {
    let mut map: std::collections::BTreeMap<&'static str, Vec<&Prediction>> = Default::default();
    for p in predictions {
        map.entry(p.bank.name()).or_default().push(p);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_uki_with_no_phases_is_zero_and_order_is_fixed() {
        let p = predict(&[], &[DigestAlgorithm::Sha256], &[String::new()]).unwrap();
        assert_eq!(p[0].hash, vec![0u8; 32]);
        // File order does not matter, systemd's order does; nor does the chunking.
        let part = |name, chunks: &[&'static [u8]]| Part {
            name,
            chunks: chunks.to_vec(),
        };
        let a = [part(".cmdline", &[b"x"]), part(".linux", &[b"k", b"k2"])];
        let b = [part(".linux", &[b"kk2"]), part(".cmdline", &[b"x"])];
        let banks = DigestAlgorithm::ALL;
        assert_eq!(
            predict(&a, &banks, &[]).unwrap(),
            predict(&b, &banks, &[]).unwrap()
        );
        assert_eq!(predict(&a, &banks, &[]).unwrap().len(), 16);
    }

    #[test]
    fn policy_rejects_bad_pcrs() {
        assert!(policy_pcr_digest(DigestAlgorithm::Sha256, &[(24, &[0u8; 32])]).is_err());
        assert!(policy_pcr_digest(DigestAlgorithm::Sha1, &[(11, &[0u8; 32])]).is_err());
        assert!(policy_pcr_digest(DigestAlgorithm::Sha1, &[(11, &[0u8; 20])]).is_ok());
    }
}
