//! `build`: assemble a UKI or an addon, then measure each profile and embed its
//! signed PCR 11 policies as `.pcrsig`, then sign the result (Authenticode).

use crate::authenticode::DigestAlgorithm;
use crate::build::{self as assemble, BuildSpec, Plan};
use crate::error::{Error, Result};
use crate::measure::{self, Part};
use crate::sign::{self, SignOptions, SigningKey};

/// The PCR bank `.pcrsig` policies are signed for when none is named.
pub const DEFAULT_PCR_BANK: &str = "sha256";

/// Sign PCR 11 policies into `.pcrsig` (one per profile) with an RSA key.
#[derive(Debug, Clone, Copy)]
pub struct PcrSigning<'a> {
    pub key: &'a SigningKey,
    /// Bank names (sha1, sha256, ...); empty: [`DEFAULT_PCR_BANK`].
    pub banks: &'a [String],
    /// Boot phase paths; empty: systemd's four.
    pub phases: &'a [String],
}

/// Who signs the built image (Authenticode): a key and its certificate (DER), plus
/// certificates to include with the signature. A build never appends to a signature
/// and adds no signing time, so its output is reproducible.
#[derive(Debug, Clone)]
pub struct Signer<'a> {
    pub key: &'a SigningKey,
    pub cert: &'a [u8],
    pub chain: Vec<&'a [u8]>,
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions<'a> {
    pub spec: BuildSpec<'a>,
    /// Embed signed PCR 11 policies; the spec's `.pcrpkey` defaults to this key's
    /// public half.
    pub pcr_signing: Option<PcrSigning<'a>>,
    pub signer: Option<Signer<'a>>,
}

/// `ukitool build`: the finished image.
pub fn build(o: &BuildOptions<'_>) -> Result<Vec<u8>> {
    let pcrpkey;
    let mut spec = o.spec.clone();
    if let (None, Some(p)) = (spec.pcrpkey, &o.pcr_signing) {
        pcrpkey = p.key.public_key_pem()?;
        spec.pcrpkey = Some(pcrpkey.as_bytes());
    }
    let plan = assemble::plan(&spec)?;
    let pcrsigs = match &o.pcr_signing {
        Some(p) => pcrsigs(&plan, p)?,
        None => Vec::new(),
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
        let predictions = measure::predict(&parts, &banks, p.phases)?;
        out.push(crate::pcrsig::sign(&predictions, p.key)?.into_bytes());
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
