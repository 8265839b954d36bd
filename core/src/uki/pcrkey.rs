//! .pcrpkey (a PEM SubjectPublicKeyInfo) and a summary of .pcrsig (JSON of signed
//! PCR policies: {"sha256":[{"pcrs":[11],"pkfp":"..","pol":"..","sig":".."}],...}).

use std::collections::BTreeSet;

use sha2::Digest;
use spki::der::Decode;

use crate::bytes;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublicKey {
    /// "rsa", "ec-p256", "ec-p384", "ec-p521", or the algorithm OID.
    pub key_type: String,
    pub bits: Option<u32>,
    /// sha256 of the DER SubjectPublicKeyInfo: what .pcrsig's `pkfp` names.
    pub fingerprint: String,
}

const RSA: &str = "1.2.840.113549.1.1.1";
const EC: &str = "1.2.840.10045.2.1";

pub fn parse_public_key(pem: &[u8]) -> Result<PublicKey> {
    let bad = |what: String| Error::malformed(0, format!(".pcrpkey: {what}"));
    let (label, der) =
        spki::der::pem::decode_vec(pem).map_err(|e| bad(format!("not PEM ({e})")))?;
    if label != "PUBLIC KEY" {
        return Err(bad(format!("PEM label is {label:?}, not \"PUBLIC KEY\"")));
    }
    let fingerprint = bytes::hex(&sha2::Sha256::digest(&der));
    let info = spki::SubjectPublicKeyInfoRef::from_der(&der)
        .map_err(|e| bad(format!("not a SubjectPublicKeyInfo ({e})")))?;
    let oid = info.algorithm.oid.to_string();
    let (key_type, bits) = match oid.as_str() {
        RSA => {
            let bits = pkcs1::RsaPublicKey::from_der(info.subject_public_key.raw_bytes())
                .ok()
                .map(|k| {
                    let m = k.modulus.as_bytes();
                    let lead = m.iter().position(|&b| b != 0).unwrap_or(m.len());
                    let first = m.get(lead).copied().unwrap_or(0);
                    let n = (m.len() - lead) as u32;
                    (n * 8).saturating_sub(first.leading_zeros())
                });
            ("rsa".to_string(), bits)
        }
        EC => {
            let curve = info
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<spki::ObjectIdentifier>().ok())
                .map(|o| o.to_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => ("ec-p256".to_string(), Some(256)),
                Some("1.3.132.0.34") => ("ec-p384".to_string(), Some(384)),
                Some("1.3.132.0.35") => ("ec-p521".to_string(), Some(521)),
                Some(c) => (format!("ec-{c}"), None),
                None => ("ec".to_string(), None),
            }
        }
        _ => (oid, None),
    };
    Ok(PublicKey {
        key_type,
        bits,
        fingerprint,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PcrSig {
    /// Banks in the file, e.g. ["sha256"].
    pub banks: Vec<String>,
    /// Every PCR any entry covers, ascending.
    pub pcrs: Vec<u32>,
    /// The distinct key fingerprints named by the entries.
    pub pkfp: Vec<String>,
    /// Number of signed policies over all banks.
    pub entries: u64,
}

pub fn parse_pcrsig(data: &[u8]) -> Result<PcrSig> {
    let text = bytes::text(data);
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::malformed(0, format!(".pcrsig is not JSON ({e})")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::malformed(0, ".pcrsig is not a JSON object"))?;
    let mut pcrs = BTreeSet::new();
    let mut pkfp = Vec::new();
    let mut entries = 0u64;
    for list in obj.values() {
        for e in list.as_array().map(Vec::as_slice).unwrap_or_default() {
            entries += 1;
            for p in e
                .get("pcrs")
                .and_then(|p| p.as_array())
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(n) = p.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    pcrs.insert(n);
                }
            }
            if let Some(fp) = e.get("pkfp").and_then(|f| f.as_str()) {
                let fp = fp.to_ascii_lowercase();
                if !pkfp.contains(&fp) {
                    pkfp.push(fp);
                }
            }
        }
    }
    Ok(PcrSig {
        banks: obj.keys().cloned().collect(),
        pcrs: pcrs.into_iter().collect(),
        pkfp,
        entries,
    })
}
