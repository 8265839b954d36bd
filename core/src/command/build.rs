//! `build`: assemble a UKI or an addon, then measure each profile and embed its
//! signed PCR 11 policies as `.pcrsig`, then sign the result (Authenticode).

use crate::authenticode::DigestAlgorithm;
use crate::build::{self as assemble, BuildSpec, Plan};
use crate::error::{Error, Result};
use crate::measure::{self, Part};
use crate::pcrsig;
use crate::sign::{self, SignOptions};

/// The PCR bank `.pcrsig` policies are signed for when none is named.
pub const DEFAULT_PCR_BANK: &str = "sha256";

/// Sign PCR 11 policies into `.pcrsig` (one per profile) with one or more RSA keys.
#[derive(Debug, Clone, Default)]
pub struct PcrSigning<'a> {
    /// Each key signs its own boot phases; their policies are merged as
    /// `systemd-measure sign --append` merges them.
    pub keys: Vec<PcrKey<'a>>,
    /// Bank names (sha1, sha256, ...); empty: [`DEFAULT_PCR_BANK`].
    pub banks: &'a [String],
}

/// One PCR signing key pair (ukify's `--pcr-private-key`, `--pcr-public-key`,
/// `--phases`).
#[derive(Debug, Clone, Copy)]
pub struct PcrKey<'a> {
    pub key: &'a dyn sign::AttributeSigner,
    /// The public half as given (PEM); it must match `key`. None: derived.
    pub public_key: Option<&'a [u8]>,
    /// Boot phase paths; empty: systemd's four.
    pub phases: &'a [String],
}

impl PcrKey<'_> {
    /// The public key PEM for `.pcrpkey`: the given file's bytes, else derived.
    fn public_pem(&self) -> Result<Vec<u8>> {
        let Some(given) = self.public_key else {
            return Ok(crate::pem::encode_public_key(&self.key.public_key_der()?)?.into_bytes());
        };
        if crate::pem::public_key(given, "PCR public key")? != self.key.public_key_der()? {
            return Err(Error::invalid(
                "the PCR public key does not match its private key",
            ));
        }
        Ok(given.to_vec())
    }
}

/// Who signs the built image (Authenticode): a key and its certificate (DER), plus
/// certificates to include with the signature. A build never appends to a signature
/// and adds no signing time, so its output is reproducible.
#[derive(Debug, Clone)]
pub struct Signer<'a> {
    pub key: &'a dyn sign::AttributeSigner,
    pub cert: &'a [u8],
    pub chain: Vec<&'a [u8]>,
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions<'a> {
    pub spec: BuildSpec<'a>,
    /// Embed signed PCR 11 policies; with one key, the spec's `.pcrpkey` defaults
    /// to its public half (ukify writes none for several keys).
    pub pcr_signing: Option<PcrSigning<'a>>,
    pub signer: Option<Signer<'a>>,
}

/// `ukitool build`: the finished image.
pub fn build(o: &BuildOptions<'_>) -> Result<Vec<u8>> {
    let pcrpkey;
    let mut spec = o.spec.clone();
    let keys = o.pcr_signing.as_ref().map_or(&[][..], |p| &p.keys);
    for k in keys {
        k.public_pem()?;
    }
    if let (None, [k]) = (spec.pcrpkey, keys) {
        pcrpkey = k.public_pem()?;
        spec.pcrpkey = Some(&pcrpkey);
    }
    let plan = assemble::plan(&spec)?;
    let pcrsigs = match &o.pcr_signing {
        Some(p) if !p.keys.is_empty() => pcrsigs(&plan, p)?,
        _ => Vec::new(),
    };
    let image = plan.write(&pcrsigs)?;
    // The plan borrows the inputs; only the image is needed from here on.
    drop(plan);
    let Some(s) = &o.signer else {
        return Ok(image);
    };
    let opts = SignOptions {
        key: s.key,
        cert: s.cert,
        chain: s.chain.clone(),
        append: false,
        signing_time: None,
    };
    sign::sign(&image, &opts)
}

/// One signed `.pcrsig` per profile (one for the base when there are none), each
/// over the sections systemd-stub measures when it boots that profile.
fn pcrsigs(plan: &Plan<'_>, p: &PcrSigning<'_>) -> Result<Vec<Vec<u8>>> {
    let banks = if p.banks.is_empty() {
        vec![measure::parse_bank(DEFAULT_PCR_BANK)?]
    } else {
        p.banks
            .iter()
            .map(|b| measure::parse_bank(b))
            .collect::<Result<Vec<DigestAlgorithm>>>()?
    };
    let blocks: Vec<Option<usize>> = if plan.profile_count() == 0 {
        vec![None]
    } else {
        (0..plan.profile_count()).map(Some).collect()
    };
    let mut out = Vec::new();
    for b in blocks {
        let measured = plan.measured_parts(b)?;
        let parts: Vec<Part<'_>> = measured
            .iter()
            .map(|(name, chunks)| Part {
                name,
                chunks: chunks.clone(),
            })
            .collect();
        let mut signed = pcrsig::SignedPolicies::new();
        for k in &p.keys {
            let predictions = measure::predict(&parts, &banks, k.phases)?;
            pcrsig::sign_into(&mut signed, &predictions, k.key)?;
        }
        out.push(pcrsig::to_json(&signed)?.into_bytes());
    }
    Ok(out)
}

/// The COFF TimeDateStamp: `given`, else `SOURCE_DATE_EPOCH` (the caller's
/// environment; unset or blank: none), else `None`, which keeps the stub's.
pub fn timestamp(given: Option<u32>, source_date_epoch: Option<&str>) -> Result<Option<u32>> {
    if given.is_some() {
        return Ok(given);
    }
    let Some(v) = source_date_epoch.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let t: u64 = v.trim().parse().map_err(|e| {
        Error::invalid(format!(
            "SOURCE_DATE_EPOCH={v:?} is not a number of seconds: {e}"
        ))
    })?;
    // The COFF field is 32 bits; clamp like reproducible-builds tools do.
    Ok(Some(u32::try_from(t).unwrap_or(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_prefers_the_option_then_the_environment() {
        assert_eq!(timestamp(Some(5), Some("7")).unwrap(), Some(5));
        assert_eq!(timestamp(None, Some(" 7 ")).unwrap(), Some(7));
        assert_eq!(timestamp(None, Some("  ")).unwrap(), None);
        assert_eq!(timestamp(None, None).unwrap(), None);
        assert_eq!(
            timestamp(None, Some("99999999999")).unwrap(),
            Some(u32::MAX)
        );
        assert!(timestamp(None, Some("soon"))
            .unwrap_err()
            .to_string()
            .contains("SOURCE_DATE_EPOCH=\"soon\""));
    }
}
