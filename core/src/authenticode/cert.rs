//! X.509 certificates as Authenticode and firmware use them: raw spans for chain
//! checks (TBS, names, key), readable names and dates for reports, and the public
//! key operations (RSA PKCS#1 v1.5, ECDSA P-256/P-384) over a precomputed digest.

use std::ops::Range;

use const_oid::ObjectIdentifier;
use der::{Decode, Tagged};
use sha2::Digest;

use super::asn1::{self, Reader};
use super::hash::DigestAlgorithm;
use super::oid;
use crate::bytes::hex;
use crate::error::{Error, Result};

/// One certificate, owning its DER, with the spans a verifier needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub der: Vec<u8>,
    tbs: Range<usize>,
    serial: Range<usize>,
    issuer: Range<usize>,
    validity: Range<usize>,
    subject: Range<usize>,
    spki: Range<usize>,
    pub signature_algorithm: ObjectIdentifier,
    signature: Range<usize>,
    /// File offset of the certificate, when it came from the image.
    pub offset: u64,
}

/// What reports show about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateInfo {
    pub subject: String,
    pub subject_cn: Option<String>,
    pub issuer: String,
    pub issuer_cn: Option<String>,
    /// Hex, as OpenSSL prints it.
    pub serial: String,
    /// RFC 3339; firmware ignores validity dates, so they are informative only.
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    /// SHA-256 of the DER certificate.
    pub sha256: String,
}

fn span(outer: &[u8], inner: &[u8]) -> Range<usize> {
    // Both slices come from the same buffer; the difference of their addresses is
    // the offset (safe pointer arithmetic on addresses, no dereference).
    let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
    start..start.saturating_add(inner.len())
}

impl Certificate {
    /// Parse one DER certificate (exactly; nothing may follow). `offset` locates it
    /// in the input for error messages.
    pub fn parse(der: &[u8], offset: u64) -> Result<Self> {
        let what = "X.509 certificate";
        let mut top = Reader::new(der, offset);
        let cert = top.expect_tag(asn1::TAG_SEQUENCE, what)?;
        top.finish(what)?;
        let mut r = cert.reader();
        let tbs = r.expect_tag(asn1::TAG_SEQUENCE, "TBSCertificate")?;
        let sig_alg = asn1::algorithm(
            r.read("certificate signatureAlgorithm")?,
            "certificate signatureAlgorithm",
        )?;
        let sig = r.expect_tag(asn1::TAG_BIT_STRING, "certificate signature")?;
        r.finish(what)?;
        let (unused, sig_bytes) = sig.value.split_first().ok_or_else(|| {
            Error::malformed(sig.offset, "certificate signature BIT STRING is empty")
        })?;
        if *unused != 0 {
            return Err(Error::malformed(
                sig.offset,
                "certificate signature has unused bits",
            ));
        }
        let mut t = tbs.reader();
        t.optional(asn1::context(0), "TBSCertificate version")?;
        let serial = t.expect_tag(asn1::TAG_INTEGER, "certificate serialNumber")?;
        t.expect_tag(asn1::TAG_SEQUENCE, "TBSCertificate signature")?;
        let issuer = t.expect_tag(asn1::TAG_SEQUENCE, "certificate issuer")?;
        let validity = t.expect_tag(asn1::TAG_SEQUENCE, "certificate validity")?;
        let subject = t.expect_tag(asn1::TAG_SEQUENCE, "certificate subject")?;
        let spki = t.expect_tag(asn1::TAG_SEQUENCE, "certificate subjectPublicKeyInfo")?;
        Ok(Certificate {
            der: der.to_vec(),
            tbs: span(der, tbs.full),
            serial: span(der, serial.value),
            issuer: span(der, issuer.full),
            validity: span(der, validity.full),
            subject: span(der, subject.full),
            spki: span(der, spki.full),
            signature_algorithm: sig_alg,
            signature: span(der, sig_bytes),
            offset,
        })
    }

    fn part(&self, r: &Range<usize>) -> &[u8] {
        self.der.get(r.clone()).unwrap_or_default()
    }
    pub fn tbs(&self) -> &[u8] {
        self.part(&self.tbs)
    }
    /// The serialNumber content octets.
    pub fn serial(&self) -> &[u8] {
        self.part(&self.serial)
    }
    /// DER of the issuer Name.
    pub fn issuer(&self) -> &[u8] {
        self.part(&self.issuer)
    }
    /// DER of the subject Name.
    pub fn subject(&self) -> &[u8] {
        self.part(&self.subject)
    }
    /// DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> &[u8] {
        self.part(&self.spki)
    }
    pub fn signature(&self) -> &[u8] {
        self.part(&self.signature)
    }

    pub fn subject_cn(&self) -> Option<String> {
        common_name(self.subject())
    }
    pub fn issuer_cn(&self) -> Option<String> {
        common_name(self.issuer())
    }

    /// Does `issuer`'s subject name this certificate's issuer? Byte equality first;
    /// then the parsed names, since encoders differ in string types.
    pub fn named_issuer_is(&self, issuer: &Certificate) -> bool {
        names_equal(self.issuer(), issuer.subject())
    }

    /// Is this certificate's signature made by `issuer`'s key?
    pub fn signed_by(&self, issuer: &Certificate) -> bool {
        let Some(alg) = signature_digest(&self.signature_algorithm, None) else {
            return false;
        };
        let digest = alg.digest(self.tbs());
        verify_digest(issuer.spki(), alg, &digest, self.signature()).is_ok()
    }

    /// The subjectKeyIdentifier extension's key id (RFC 5280 §4.2.1.2), which a CMS
    /// SignerInfo may name its signer by (`sid [0]`, RFC 5652 §5.3) instead of issuer
    /// and serial. None when the certificate has no such extension (or it does not
    /// parse: the id is then unusable, not an error).
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        let tbs = Reader::new(self.tbs(), 0).read("TBSCertificate").ok()?;
        let mut t = tbs.reader();
        // Only the extensions field carries [3]; the fields before it are skipped.
        let exts = loop {
            let f = t.read("TBSCertificate field").ok()?;
            if f.tag == asn1::context(3) {
                break f;
            }
        };
        let list = exts
            .reader()
            .expect_tag(asn1::TAG_SEQUENCE, "extensions")
            .ok()?;
        let mut r = list.reader();
        while !r.is_empty() {
            let ext = r.expect_tag(asn1::TAG_SEQUENCE, "extension").ok()?;
            let mut e = ext.reader();
            if e.read("extnID").ok()?.oid("extnID").ok()? != oid::SUBJECT_KEY_IDENTIFIER {
                continue;
            }
            // critical BOOLEAN DEFAULT FALSE, then extnValue wrapping the key id.
            let mut v = e.read("extnValue").ok()?;
            if v.tag == 0x01 {
                v = e.read("extnValue").ok()?;
            }
            let id = v
                .expect_tag(asn1::TAG_OCTET_STRING, "extnValue")
                .ok()?
                .reader()
                .expect_tag(asn1::TAG_OCTET_STRING, "SubjectKeyIdentifier")
                .ok()?;
            return Some(id.value);
        }
        None
    }

    /// Is the public key an elliptic-curve key?
    pub fn is_ec_key(&self) -> bool {
        key_kind(self.spki()).starts_with("ecdsa")
    }

    /// The public key's kind, e.g. `rsa-2048`, `ecdsa-p256`: reports show it, and
    /// the firmware-compatibility lints depend on it.
    pub fn key_kind(&self) -> String {
        key_kind(self.spki())
    }

    pub fn sha256(&self) -> Vec<u8> {
        sha2::Sha256::digest(&self.der).to_vec()
    }

    pub fn info(&self) -> CertificateInfo {
        let (not_before, not_after) =
            x509_cert::time::Validity::from_der(self.part(&self.validity))
                .map(|v| {
                    (
                        Some(v.not_before.to_date_time().to_string()),
                        Some(v.not_after.to_date_time().to_string()),
                    )
                })
                .unwrap_or((None, None));
        CertificateInfo {
            subject: name_string(self.subject()),
            subject_cn: self.subject_cn(),
            issuer: name_string(self.issuer()),
            issuer_cn: self.issuer_cn(),
            serial: serial_hex(self.serial()),
            not_before,
            not_after,
            sha256: hex(&self.sha256()),
        }
    }
}

/// Serial number content octets as hex, without the sign-padding zero.
pub fn serial_hex(serial: &[u8]) -> String {
    match serial {
        [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => hex(rest),
        s => hex(s),
    }
}

/// A Name as RFC 4514 text, or hex when it does not parse.
pub fn name_string(der: &[u8]) -> String {
    match x509_cert::name::Name::from_der(der) {
        Ok(n) => n.to_string(),
        Err(_) => format!("<unparsable name {}>", hex(der)),
    }
}

pub fn names_equal(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (
        x509_cert::name::Name::from_der(a),
        x509_cert::name::Name::from_der(b),
    ) {
        (Ok(x), Ok(y)) => x.to_string() == y.to_string(),
        _ => false,
    }
}

/// The first commonName of a Name, decoded from whichever string type it uses.
pub fn common_name(der: &[u8]) -> Option<String> {
    let name = x509_cert::name::Name::from_der(der).ok()?;
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == oid::COMMON_NAME {
                let v = atv.value.value();
                return Some(if atv.value.tag() == der::Tag::BmpString {
                    let units: Vec<u16> = v
                        .chunks(2)
                        .map(|c| {
                            u16::from_be_bytes([
                                c.first().copied().unwrap_or(0),
                                c.get(1).copied().unwrap_or(0),
                            ])
                        })
                        .collect();
                    String::from_utf16_lossy(&units)
                } else {
                    String::from_utf8_lossy(v).into_owned()
                });
            }
        }
    }
    None
}

/// The digest a signature algorithm implies; `rsaEncryption` and the EC key OID
/// carry none, so `fallback` (the SignerInfo digestAlgorithm) is used.
pub fn signature_digest(
    sig_alg: &ObjectIdentifier,
    fallback: Option<DigestAlgorithm>,
) -> Option<DigestAlgorithm> {
    use DigestAlgorithm::*;
    Some(match *sig_alg {
        oid::SHA1_WITH_RSA => Sha1,
        oid::SHA256_WITH_RSA | oid::ECDSA_WITH_SHA256 => Sha256,
        oid::SHA384_WITH_RSA | oid::ECDSA_WITH_SHA384 => Sha384,
        oid::SHA512_WITH_RSA | oid::ECDSA_WITH_SHA512 => Sha512,
        oid::RSA_ENCRYPTION | oid::EC_PUBLIC_KEY => return fallback,
        _ => return None,
    })
}

/// The DER DigestInfo prefix PKCS#1 v1.5 puts before the digest (RFC 8017 §9.2).
fn pkcs1_prefix(alg: DigestAlgorithm) -> &'static [u8] {
    match alg {
        DigestAlgorithm::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        DigestAlgorithm::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        DigestAlgorithm::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        DigestAlgorithm::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// Verify `sig` over a message whose `alg` digest is `digest`, with the key in
/// `spki` (DER SubjectPublicKeyInfo): RSA PKCS#1 v1.5, or ECDSA on P-256/P-384.
pub fn verify_digest(spki: &[u8], alg: DigestAlgorithm, digest: &[u8], sig: &[u8]) -> Result<()> {
    match key_algorithm(spki)? {
        (oid::RSA_ENCRYPTION, _) => {
            use rsa::pkcs8::DecodePublicKey;
            let key = rsa::RsaPublicKey::from_public_key_der(spki)
                .map_err(|e| Error::Crypto(format!("RSA public key: {e}")))?;
            let scheme = rsa::Pkcs1v15Sign {
                hash_len: Some(alg.output_len()),
                prefix: pkcs1_prefix(alg).into(),
            };
            key.verify(scheme, digest, sig)
                .map_err(|_| Error::Crypto("RSA PKCS#1 v1.5 signature does not verify".into()))
        }
        (oid::EC_PUBLIC_KEY, Some(oid::SECP256R1)) => {
            use p256::pkcs8::DecodePublicKey;
            use signature::hazmat::PrehashVerifier;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki)
                .map_err(|e| Error::Crypto(format!("P-256 public key: {e}")))?;
            let s = p256::ecdsa::Signature::from_der(sig)
                .map_err(|e| Error::Crypto(format!("ECDSA signature encoding: {e}")))?;
            key.verify_prehash(digest, &s)
                .map_err(|_| Error::Crypto("ECDSA P-256 signature does not verify".into()))
        }
        (oid::EC_PUBLIC_KEY, Some(oid::SECP384R1)) => {
            use p384::pkcs8::DecodePublicKey;
            use signature::hazmat::PrehashVerifier;
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki)
                .map_err(|e| Error::Crypto(format!("P-384 public key: {e}")))?;
            let s = p384::ecdsa::Signature::from_der(sig)
                .map_err(|e| Error::Crypto(format!("ECDSA signature encoding: {e}")))?;
            key.verify_prehash(digest, &s)
                .map_err(|_| Error::Crypto("ECDSA P-384 signature does not verify".into()))
        }
        (alg, curve) => Err(Error::Crypto(format!(
            "unsupported public key algorithm {alg}{}",
            curve.map(|c| format!(" on curve {c}")).unwrap_or_default()
        ))),
    }
}

/// ecdsa-with-SHA256/384/512.
pub fn is_ecdsa_signature(alg: &ObjectIdentifier) -> bool {
    matches!(
        *alg,
        oid::ECDSA_WITH_SHA256 | oid::ECDSA_WITH_SHA384 | oid::ECDSA_WITH_SHA512
    )
}

/// A SubjectPublicKeyInfo's key algorithm and, for an EC key, its named curve.
pub fn key_algorithm(spki: &[u8]) -> Result<(ObjectIdentifier, Option<ObjectIdentifier>)> {
    let info = Reader::new(spki, 0).read("SubjectPublicKeyInfo")?;
    let mut r = info
        .reader()
        .read("SubjectPublicKeyInfo algorithm")?
        .reader();
    let alg = r.read("key algorithm")?.oid("key algorithm")?;
    let param = r.optional(asn1::TAG_OID, "key parameters")?;
    Ok((alg, param.and_then(|p| p.oid("curve").ok())))
}

/// The size of an RSA key's modulus in bits; None when the key is not an RSA public
/// key (RFC 8017 A.1.1) inside a SubjectPublicKeyInfo.
pub fn rsa_bits(spki: &[u8]) -> Option<u32> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki).ok()?;
    let key = pkcs1::RsaPublicKey::from_der(info.subject_public_key.raw_bytes()).ok()?;
    let m = key.modulus.as_bytes();
    let lead = m.iter().position(|&b| b != 0).unwrap_or(m.len());
    let first = m.get(lead).copied().unwrap_or(0);
    let n = u32::try_from(m.len().saturating_sub(lead)).unwrap_or(u32::MAX);
    Some(n.saturating_mul(8).saturating_sub(first.leading_zeros()))
}

/// See [`Certificate::key_kind`]; `unknown` when the SubjectPublicKeyInfo does not parse.
pub fn key_kind(spki: &[u8]) -> String {
    match key_algorithm(spki) {
        Ok((oid::RSA_ENCRYPTION, _)) => {
            rsa_bits(spki).map_or_else(|| "rsa".into(), |bits| format!("rsa-{bits}"))
        }
        Ok((oid::EC_PUBLIC_KEY, curve)) => match curve.as_ref().and_then(oid::curve) {
            Some((name, _)) => format!("ecdsa-{name}"),
            None => "ecdsa".into(),
        },
        Ok((other, _)) => other.to_string(),
        Err(_) => "unknown".into(),
    }
}

/// Certificates from a file: one DER certificate, or any number of PEM blocks.
pub fn parse_cert_file(data: &[u8]) -> Result<Vec<Certificate>> {
    let pem = crate::pem::certificates(data)?;
    if pem.is_empty() {
        return Ok(vec![Certificate::parse(data, 0)?]);
    }
    pem.iter().map(|der| Certificate::parse(der, 0)).collect()
}
