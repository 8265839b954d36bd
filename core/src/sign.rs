//! Authenticode signing: PKCS#7 SignedData over the image hash, appended to the
//! certificate table.
//!
//! The SignedData is what sbsign writes (RFC 2315, Microsoft Authenticode spec):
//! content SpcIndirectDataContent (SPC_PE_IMAGE_DATA + the sha256 image digest),
//! signed attributes contentType, messageDigest and an empty SpcSpOpusInfo (plus
//! signingTime only when the caller passes one), the signer certificate and any chain
//! certificates. RSA signatures are PKCS#1 v1.5 (deterministic); ECDSA P-256 uses
//! RFC 6979 nonces, so signing needs no randomness either.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
pub use spki::AlgorithmIdentifierOwned;
use spki::EncodePublicKey;
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

use crate::authenticode::hash::{image_digest, DigestAlgorithm};
use crate::authenticode::oid;
use crate::error::{Error, Result};
use crate::pe::PeFile;

/// WIN_CERTIFICATE revision 2.0 and type PKCS_SIGNED_DATA.
const WIN_CERT_REVISION_2_0: u16 = 0x0200;
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

/// A private key that can sign: RSA (2048-4096 bits) or ECDSA P-256.
#[derive(Clone)]
pub enum SigningKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    EcP256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn crypto(what: &str) -> impl Fn(String) -> Error + '_ {
    move |e| Error::Crypto(format!("{what}: {e}"))
}

impl SigningKey {
    /// Load a PEM private key: PKCS#1 (`RSA PRIVATE KEY`), PKCS#8 (`PRIVATE KEY`),
    /// encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, needs `password`) or SEC1
    /// (`EC PRIVATE KEY`).
    pub fn from_pem(pem: &str, password: Option<&[u8]>) -> Result<Self> {
        use pkcs1::DecodeRsaPrivateKey;
        use pkcs8::der::pem::PemLabel;
        let (label, der) = crate::pem::decode(pem.as_bytes())
            .map_err(|e| crypto("private key PEM")(e.to_string()))?;
        match label {
            "RSA PRIVATE KEY" => {
                let k = rsa::RsaPrivateKey::from_pkcs1_der(&der)
                    .map_err(|e| crypto("PKCS#1 RSA key")(e.to_string()))?;
                Self::rsa(k)
            }
            l if l == pkcs8::PrivateKeyInfo::PEM_LABEL => Self::from_pkcs8_der(&der),
            l if l == pkcs8::EncryptedPrivateKeyInfo::PEM_LABEL => {
                let pw = password.ok_or_else(|| {
                    Error::Crypto("the private key is encrypted: a password is needed".into())
                })?;
                let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
                    .map_err(|e| crypto("encrypted PKCS#8 key")(e.to_string()))?;
                let doc = info.decrypt(pw).map_err(|e| {
                    crypto("decrypting the PKCS#8 key (wrong password?)")(e.to_string())
                })?;
                Self::from_pkcs8_der(doc.as_bytes())
            }
            "EC PRIVATE KEY" => {
                let k = p256::SecretKey::from_sec1_der(&der)
                    .map_err(|e| crypto("SEC1 EC key (only P-256 is supported)")(e.to_string()))?;
                Ok(SigningKey::EcP256(k.into()))
            }
            other => Err(Error::Crypto(format!(
                "unsupported PEM label {other:?}: expected an RSA or P-256 private key"
            ))),
        }
    }

    /// A PKCS#8 DER private key (`PrivateKeyInfo`): RSA or P-256, as WebCrypto's
    /// `exportKey("pkcs8")` gives it.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        use pkcs8::DecodePrivateKey;
        let info = pkcs8::PrivateKeyInfo::from_der(der)
            .map_err(|e| crypto("PKCS#8 key")(e.to_string()))?;
        let alg = info.algorithm.oid;
        if alg == oid::RSA_ENCRYPTION {
            let k = rsa::RsaPrivateKey::from_pkcs8_der(der)
                .map_err(|e| crypto("PKCS#8 RSA key")(e.to_string()))?;
            Self::rsa(k)
        } else if alg == oid::EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|e| crypto("EC key curve")(e.to_string()))?;
            if curve != oid::SECP256R1 {
                return Err(Error::Crypto(format!(
                    "EC key on curve {curve}: only P-256 is supported"
                )));
            }
            let k = p256::SecretKey::from_pkcs8_der(der)
                .map_err(|e| crypto("PKCS#8 P-256 key")(e.to_string()))?;
            Ok(SigningKey::EcP256(k.into()))
        } else {
            Err(Error::Crypto(format!(
                "key algorithm {alg} is not supported (RSA or ECDSA P-256)"
            )))
        }
    }

    fn rsa(k: rsa::RsaPrivateKey) -> Result<Self> {
        use rsa::traits::PublicKeyParts;
        let bits = k.n().bits();
        if !(2048..=4096).contains(&bits) {
            return Err(Error::Crypto(format!(
                "RSA key has {bits} bits: 2048 to 4096 are supported"
            )));
        }
        Ok(SigningKey::Rsa(Box::new(k)))
    }

    /// "RSA 2048" or "ECDSA P-256".
    pub fn describe(&self) -> String {
        use rsa::traits::PublicKeyParts;
        match self {
            SigningKey::Rsa(k) => format!("RSA {}", k.n().bits()),
            SigningKey::EcP256(_) => "ECDSA P-256".into(),
        }
    }

    /// The DER SubjectPublicKeyInfo of the public key.
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        let doc = match self {
            SigningKey::Rsa(k) => k.to_public_key().to_public_key_der(),
            SigningKey::EcP256(k) => k.verifying_key().to_public_key_der(),
        }
        .map_err(|e| crypto("encoding the public key")(e.to_string()))?;
        Ok(doc.as_bytes().to_vec())
    }

    /// The public key as PEM (`PUBLIC KEY`), as `.pcrpkey` holds it.
    pub fn public_key_pem(&self) -> Result<String> {
        crate::pem::encode_public_key(&self.public_key_der()?)
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `msg` (RSA keys only).
    pub fn sign_pkcs1v15_sha256(&self, msg: &[u8]) -> Result<Vec<u8>> {
        use signature::{SignatureEncoding, Signer};
        match self {
            SigningKey::Rsa(k) => {
                let sk = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone());
                let sig = sk
                    .try_sign(msg)
                    .map_err(|e| crypto("RSA signature")(e.to_string()))?;
                Ok(sig.to_vec())
            }
            SigningKey::EcP256(_) => Err(Error::Crypto(
                "this needs an RSA key (systemd's .pcrsig uses RSA)".into(),
            )),
        }
    }
}

/// What makes the signature over the signed attributes: a key in memory
/// ([`SigningKey`]), a signature made elsewhere ([`DetachedSignature`], the two-step
/// flow), or a token the caller drives (PKCS#11 in the CLI).
pub trait AttributeSigner: std::fmt::Debug {
    /// The signer's DER SubjectPublicKeyInfo, checked against the certificate.
    fn public_key_der(&self) -> Result<Vec<u8>>;
    /// Sign `msg` with SHA-256; returns the signature and the SignerInfo's
    /// digestEncryptionAlgorithm.
    fn sign_sha256(&self, msg: &[u8]) -> Result<(Vec<u8>, AlgorithmIdentifierOwned)>;
}

/// The digestEncryptionAlgorithm for a key: rsaEncryption with NULL parameters (what
/// sbsign writes) or ecdsa-with-SHA256.
pub fn signature_algorithm(spki: &[u8]) -> Result<AlgorithmIdentifierOwned> {
    match crate::authenticode::cert::key_algorithm(spki)? {
        (oid::RSA_ENCRYPTION, _) => Ok(AlgorithmIdentifierOwned {
            oid: oid::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        }),
        (oid::EC_PUBLIC_KEY, _) => Ok(AlgorithmIdentifierOwned {
            oid: oid::ECDSA_WITH_SHA256,
            parameters: None,
        }),
        (other, _) => Err(Error::Crypto(format!(
            "key algorithm {other} is not supported (RSA or ECDSA)"
        ))),
    }
}

impl AttributeSigner for SigningKey {
    fn public_key_der(&self) -> Result<Vec<u8>> {
        SigningKey::public_key_der(self)
    }

    /// PKCS#1 v1.5 for RSA, DER ECDSA for P-256.
    fn sign_sha256(&self, msg: &[u8]) -> Result<(Vec<u8>, AlgorithmIdentifierOwned)> {
        use signature::Signer;
        match self {
            SigningKey::Rsa(_) => Ok((
                self.sign_pkcs1v15_sha256(msg)?,
                // sbsign writes rsaEncryption with NULL parameters.
                AlgorithmIdentifierOwned {
                    oid: oid::RSA_ENCRYPTION,
                    parameters: Some(Any::null()),
                },
            )),
            SigningKey::EcP256(k) => {
                let sig: p256::ecdsa::Signature = k
                    .try_sign(msg)
                    .map_err(|e| crypto("ECDSA signature")(e.to_string()))?;
                Ok((
                    sig.to_der().as_bytes().to_vec(),
                    AlgorithmIdentifierOwned {
                        oid: oid::ECDSA_WITH_SHA256,
                        parameters: None,
                    },
                ))
            }
        }
    }
}

/// Every certificate in a PEM bundle, checked to parse; returns their DER.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    let certs = crate::pem::certificates(pem)?;
    if certs.is_empty() {
        return Err(Error::Crypto("no certificate in the PEM input".into()));
    }
    for c in &certs {
        Certificate::from_der(c).map_err(|e| crypto("certificate")(e.to_string()))?;
    }
    Ok(certs)
}

/// An ECDSA signature as PKCS#11 returns it (r ‖ s, each the curve's size) in the DER
/// form CMS carries (RFC 5753 §7.2: ECDSA-Sig-Value).
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>> {
    let bad = |e: String| Error::Crypto(format!("ECDSA signature from the token: {e}"));
    match raw.len() {
        64 => p256::ecdsa::Signature::from_slice(raw)
            .map(|s| s.to_der().as_bytes().to_vec())
            .map_err(|e| bad(e.to_string())),
        96 => p384::ecdsa::Signature::from_slice(raw)
            .map(|s| s.to_der().as_bytes().to_vec())
            .map_err(|e| bad(e.to_string())),
        n => Err(bad(format!("{n} bytes: expected 64 (P-256) or 96 (P-384)"))),
    }
}

/// A signature over the signed attributes made outside ukitool (`sign --attach`):
/// checked against the certificate's key before it is used.
#[derive(Debug, Clone)]
pub struct DetachedSignature {
    /// The signer certificate's SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    pub signature: Vec<u8>,
}

impl DetachedSignature {
    /// For the signer certificate `cert` (DER).
    pub fn new(cert: &[u8], signature: Vec<u8>) -> Result<Self> {
        let c = crate::authenticode::Certificate::parse(cert, 0)?;
        Ok(DetachedSignature {
            spki: c.spki().to_vec(),
            signature,
        })
    }
}

impl AttributeSigner for DetachedSignature {
    fn public_key_der(&self) -> Result<Vec<u8>> {
        Ok(self.spki.clone())
    }

    fn sign_sha256(&self, msg: &[u8]) -> Result<(Vec<u8>, AlgorithmIdentifierOwned)> {
        let digest = DigestAlgorithm::Sha256.digest(msg);
        crate::authenticode::cert::verify_digest(
            &self.spki,
            DigestAlgorithm::Sha256,
            &digest,
            &self.signature,
        )
        .map_err(|_| {
            Error::Crypto(
                "the signature does not verify over these signed attributes with the certificate's key (another image, key or --signing-time?)".into(),
            )
        })?;
        Ok((self.signature.clone(), signature_algorithm(&self.spki)?))
    }
}

/// What to sign with.
#[derive(Debug, Clone)]
pub struct SignOptions<'a> {
    pub key: &'a dyn AttributeSigner,
    /// The signer's certificate (DER); its public key must match `key`.
    pub cert: &'a [u8],
    /// Extra certificates to include (DER), e.g. intermediates.
    pub chain: Vec<&'a [u8]>,
    /// Add a signature to an already signed image (dual signing) instead of refusing.
    pub append: bool,
    /// signingTime attribute, seconds since the Unix epoch; none when `None`.
    pub signing_time: Option<u64>,
}

fn der_err(e: der::Error) -> Error {
    Error::Crypto(format!("DER encoding: {e}"))
}

/// The DER of SpcIndirectDataContent for a sha256 image digest.
fn spc_indirect_data(digest: &[u8]) -> Result<Vec<u8>> {
    // SpcPeImageData { flags BIT STRING {} , file [0] EXPLICIT SpcLink { file [2]
    // EXPLICIT SpcString { unicode [0] IMPLICIT BMPString "<<<Obsolete>>>" } } }:
    // the constant value every signer (signtool, sbsign, osslsigncode) writes.
    let mut obsolete = Vec::new();
    for u in "<<<Obsolete>>>".encode_utf16() {
        obsolete.extend_from_slice(&u.to_be_bytes());
    }
    let bmp = tlv(0x80, &obsolete)?;
    let link = tlv(0xa0, &tlv(0xa2, &bmp)?)?;
    let pe_image_data = tlv(0x30, &[&[0x03, 0x01, 0x00][..], &link].concat())?;
    let type_value = tlv(
        0x30,
        &[
            oid::SPC_PE_IMAGE_DATA.to_der().map_err(der_err)?,
            pe_image_data,
        ]
        .concat(),
    )?;
    let alg = AlgorithmIdentifierOwned {
        oid: oid::SHA256,
        parameters: Some(Any::null()),
    };
    let digest_info = tlv(
        0x30,
        &[
            alg.to_der().map_err(der_err)?,
            OctetString::new(digest)
                .map_err(der_err)?
                .to_der()
                .map_err(der_err)?,
        ]
        .concat(),
    )?;
    tlv(0x30, &[type_value, digest_info].concat())
}

/// A DER TLV with a definite length (X.690 §10.1: the shortest length form).
fn tlv(tag: u8, content: &[u8]) -> Result<Vec<u8>> {
    let len = der::Length::try_from(content.len()).map_err(der_err)?;
    let mut out = vec![tag];
    len.encode_to_vec(&mut out).map_err(der_err)?;
    out.extend_from_slice(content);
    Ok(out)
}

/// The contents octets of a DER TLV (RFC 2315 §9.3: messageDigest is computed over
/// the content's value, without its tag and length).
fn tlv_value(der: &[u8]) -> Result<&[u8]> {
    let hdr = match der.get(1) {
        Some(&l) if l < 0x80 => 2,
        Some(&l) => 2 + usize::from(l & 0x7f),
        None => return Err(Error::Crypto("empty DER".into())),
    };
    der.get(hdr..)
        .ok_or_else(|| Error::Crypto("short DER".into()))
}

fn attribute(id: ObjectIdentifier, value: Any) -> Result<Attribute> {
    Ok(Attribute {
        oid: id,
        values: SetOfVec::try_from(vec![value]).map_err(der_err)?,
    })
}

/// The DER PKCS#7 ContentInfo (SignedData) signing `digest`, an Authenticode sha256
/// image digest.
pub fn signed_data(digest: &[u8], opts: &SignOptions<'_>) -> Result<Vec<u8>> {
    let cert = Certificate::from_der(opts.cert)
        .map_err(|e| crypto("signer certificate")(e.to_string()))?;
    let cert_spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(der_err)?;
    if cert_spki != opts.key.public_key_der()? {
        return Err(Error::Crypto(
            "the certificate's public key does not match the private key".into(),
        ));
    }
    let (content, signed_attrs) = signed_attributes(digest, opts.signing_time)?;
    // The signature covers the attributes encoded as a SET OF (tag 0x31), not as the
    // [0] IMPLICIT field stored in the SignerInfo.
    let to_sign = signed_attrs.to_der().map_err(der_err)?;
    let (signature, sig_alg) = opts.key.sign_sha256(&to_sign)?;
    assemble(cert, content, signed_attrs, signature, sig_alg, &opts.chain)
}

/// SpcIndirectDataContent for `digest`, and the signed attributes over it.
fn signed_attributes(
    digest: &[u8],
    signing_time: Option<u64>,
) -> Result<(Vec<u8>, SetOfVec<Attribute>)> {
    let content = spc_indirect_data(digest)?;
    let content_digest = DigestAlgorithm::Sha256.digest(tlv_value(&content)?);

    let mut attrs = vec![
        attribute(
            oid::CONTENT_TYPE,
            Any::encode_from(&oid::SPC_INDIRECT_DATA).map_err(der_err)?,
        )?,
        attribute(
            oid::MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(content_digest).map_err(der_err)?)
                .map_err(der_err)?,
        )?,
        // sbsign's SpcSpOpusInfo: an empty SEQUENCE (no program name, no URL).
        attribute(
            oid::SPC_SP_OPUS_INFO,
            Any::from_der(&[0x30, 0x00]).map_err(der_err)?,
        )?,
    ];
    if let Some(t) = signing_time {
        // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after.
        let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(t))
            .map_err(der_err)?;
        let time = match der::asn1::UtcTime::from_date_time(dt) {
            Ok(u) => x509_cert::time::Time::UtcTime(u),
            Err(_) => {
                x509_cert::time::Time::GeneralTime(der::asn1::GeneralizedTime::from_date_time(dt))
            }
        };
        attrs.push(attribute(
            oid::SIGNING_TIME,
            Any::encode_from(&time).map_err(der_err)?,
        )?);
    }
    let signed_attrs = SetOfVec::try_from(attrs).map_err(der_err)?;
    Ok((content, signed_attrs))
}

/// The ContentInfo: SignedData with one SignerInfo for `cert`.
fn assemble(
    cert: Certificate,
    content: Vec<u8>,
    signed_attrs: SetOfVec<Attribute>,
    signature: Vec<u8>,
    sig_alg: AlgorithmIdentifierOwned,
    chain: &[&[u8]],
) -> Result<Vec<u8>> {
    let sha256 = AlgorithmIdentifierOwned {
        oid: oid::SHA256,
        parameters: Some(Any::null()),
    };
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: sha256.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: sig_alg,
        signature: OctetString::new(signature).map_err(der_err)?,
        unsigned_attrs: None,
    };
    let mut certs = vec![CertificateChoices::Certificate(cert)];
    for c in chain {
        let c = Certificate::from_der(c).map_err(|e| crypto("chain certificate")(e.to_string()))?;
        certs.push(CertificateChoices::Certificate(c));
    }
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256]).map_err(der_err)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid::SPC_INDIRECT_DATA,
            econtent: Some(Any::from_der(&content).map_err(der_err)?),
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(certs).map_err(der_err)?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(der_err)?),
    };
    let ci = ContentInfo {
        content_type: oid::SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(der_err)?,
    };
    ci.to_der().map_err(der_err)
}

/// `v` rounded up to a multiple of 8 (WIN_CERTIFICATE entries are 8-byte aligned).
fn round8(v: u64) -> Result<u64> {
    v.checked_next_multiple_of(8)
        .ok_or_else(|| Error::invalid("image too large to sign"))
}

fn to_usize(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::invalid("image too large to sign"))
}

/// An image made ready for its signature: padded, with where the table goes.
struct Prepared {
    out: Vec<u8>,
    table_start: u64,
    secdir: u64,
    checksum_offset: u64,
}

/// Unsigned input: the file is padded to a multiple of 8 (the padding is hashed, as
/// sbsign and pesign do). Signed input with `append`: the new WIN_CERTIFICATE goes
/// after the existing ones (shim-style dual signing); the digest is the same because
/// the certificate table is outside the hash.
fn prepare(image: &[u8], append: bool) -> Result<Prepared> {
    let pe = PeFile::parse(image)?;
    let secdir = pe.security_dir_offset.ok_or_else(|| {
        Error::malformed(
            pe.optional_header_offset,
            "no security data directory entry to record a signature in",
        )
    })?;
    let len = image.len() as u64;
    let table_start;
    let padded_len = match pe.certificate_table() {
        Some(d) if !append => {
            return Err(Error::invalid(format!(
                "the image is already signed (certificate table at {:#x}); use --append to add a second signature",
                d.virtual_address
            )))
        }
        Some(d) => {
            let start = u64::from(d.virtual_address);
            let end = crate::bytes::add(start, u64::from(d.size), secdir, "certificate table end")?;
            let padded = round8(end)?;
            if end != len && padded != len {
                return Err(Error::malformed(
                    secdir,
                    format!("certificate table {start:#x}..{end:#x} is not at the end of the file ({len:#x}); cannot append"),
                ));
            }
            table_start = start;
            padded
        }
        None => {
            table_start = round8(len)?;
            table_start
        }
    };
    let padded_len = to_usize(padded_len)?;
    let mut out: Vec<u8> = Vec::with_capacity(padded_len.saturating_add(4096));
    out.extend_from_slice(image);
    out.resize(padded_len, 0);
    Ok(Prepared {
        out,
        table_start,
        secdir,
        checksum_offset: pe.checksum_offset,
    })
}

impl Prepared {
    fn digest(&self) -> Result<Vec<u8>> {
        image_digest(&PeFile::parse(&self.out)?, DigestAlgorithm::Sha256)
    }

    /// Append the WIN_CERTIFICATE holding `pkcs7`, point the security directory at the
    /// table and fix the checksum.
    fn finish(self, pkcs7: &[u8]) -> Result<Vec<u8>> {
        let Prepared {
            mut out,
            table_start,
            secdir,
            checksum_offset,
        } = self;
        let entry_len = round8((pkcs7.len() as u64).saturating_add(8))?;
        let entry_len32 =
            u32::try_from(entry_len).map_err(|_| Error::invalid("signature too large"))?;
        out.extend_from_slice(&entry_len32.to_le_bytes());
        out.extend_from_slice(&WIN_CERT_REVISION_2_0.to_le_bytes());
        out.extend_from_slice(&WIN_CERT_TYPE_PKCS_SIGNED_DATA.to_le_bytes());
        out.extend_from_slice(pkcs7);
        out.resize(to_usize(round8(out.len() as u64)?)?, 0);
        let table_len = (out.len() as u64)
            .checked_sub(table_start)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Error::invalid("certificate table too large"))?;
        let start32 = u32::try_from(table_start).map_err(|_| {
            Error::invalid("image too large to sign (certificate table offset is 32-bit)")
        })?;
        let dir = field_mut(&mut out, secdir, 8)
            .ok_or_else(|| Error::malformed(secdir, "security directory outside the image"))?;
        let (va, size) = dir.split_at_mut(4);
        va.copy_from_slice(&start32.to_le_bytes());
        size.copy_from_slice(&table_len.to_le_bytes());
        let sum = crate::build::pe_checksum(&out, checksum_offset);
        if let Some(f) = field_mut(&mut out, checksum_offset, 4) {
            f.copy_from_slice(&sum.to_le_bytes());
        }
        Ok(out)
    }
}

/// Sign a PE image: returns the signed image (see [`prepare`] for padding and
/// `append`).
pub fn sign(image: &[u8], opts: &SignOptions<'_>) -> Result<Vec<u8>> {
    let p = prepare(image, opts.append)?;
    let pkcs7 = signed_data(&p.digest()?, opts)?;
    p.finish(&pkcs7)
}

/// The two-step flow's first step: the DER signed attributes (a SET OF, tag 0x31) that
/// [`sign`] would have the key sign for `image` with these options. An outside signer
/// signs them with SHA-256 (`openssl dgst -sha256 -binary | openssl pkeyutl -sign
/// -pkeyopt digest:sha256`); [`DetachedSignature`] brings the signature back.
pub fn signed_attributes_for(
    image: &[u8],
    append: bool,
    signing_time: Option<u64>,
) -> Result<Vec<u8>> {
    let p = prepare(image, append)?;
    let (_, attrs) = signed_attributes(&p.digest()?, signing_time)?;
    attrs.to_der().map_err(der_err)
}

/// The `len` bytes at `offset` of `out`, if they are inside it.
fn field_mut(out: &mut [u8], offset: u64, len: usize) -> Option<&mut [u8]> {
    let at = usize::try_from(offset).ok()?;
    out.get_mut(at..at.checked_add(len)?)
}
