//! Time-based authenticated variables: the `.auth` files that enrol PK, KEK, db and
//! dbx (UEFI 2.10 §8.2.2, EFI_VARIABLE_AUTHENTICATION_2).
//!
//! ```text
//!  EFI_TIME (16)                      the timestamp; Pad, Nanosecond, TimeZone = 0
//!  WIN_CERTIFICATE_UEFI_GUID          dwLength (u32, 24 + PKCS#7), wRevision 0x0200,
//!                                     wCertificateType 0x0EF1, CertType PKCS7 GUID
//!    SignedData (DER)                 bare, without a ContentInfo, as efitools writes it
//!  the EFI_SIGNATURE_LISTs            the variable's new value
//! ```
//!
//! The signature covers VariableName (UTF-16LE, no NUL) ‖ VendorGuid ‖ Attributes
//! (u32 LE) ‖ TimeStamp ‖ the lists. [`sign`] writes what efitools'
//! `sign-efi-sig-list` writes (detached id-data content, no signed attributes, the
//! signer's certificate, RSA PKCS#1 v1.5 with SHA-256), byte for byte.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::CmsVersion;
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use sha2::Digest;
use spki::AlgorithmIdentifierOwned;

use crate::authenticode::cert::{self, Certificate, CertificateInfo};
use crate::authenticode::hash::DigestAlgorithm;
use crate::authenticode::oid;
use crate::bytes::{self, u16_le, u32_le};
use crate::error::{Error, Result};
use crate::guid::Guid;
use crate::siglist::{EFI_CERT_TYPE_PKCS7_GUID, WIN_CERT_TYPE_EFI_GUID};
use crate::sign::SigningKey;

/// EFI_GLOBAL_VARIABLE: the vendor GUID of PK and KEK.
pub const EFI_GLOBAL_VARIABLE: Guid = Guid::from_u128(0x8be4df61_93ca_11d2_aa0d_00e098032b8c);
/// EFI_IMAGE_SECURITY_DATABASE_GUID: the vendor GUID of db and dbx.
pub const EFI_IMAGE_SECURITY_DATABASE: Guid =
    Guid::from_u128(0xd719b2cb_3d3a_4596_a3bc_dad00e67656f);
/// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS |
/// TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
pub const ATTRIBUTES: u32 = 0x27;
/// The variables an `.auth` file can be for, in the order they are tried.
pub const VARIABLES: [&str; 4] = ["PK", "KEK", "db", "dbx"];
const EFI_TIME_SIZE: u64 = 16;
/// WIN_CERTIFICATE (8) + CertType (16).
const WIN_CERT_UEFI_GUID_HEADER: u64 = 24;
const WIN_CERT_REVISION: u16 = 0x0200;

/// The vendor GUID of a Secure Boot variable.
pub fn vendor_guid(variable: &str) -> Result<Guid> {
    match variable {
        "PK" | "KEK" => Ok(EFI_GLOBAL_VARIABLE),
        "db" | "dbx" => Ok(EFI_IMAGE_SECURITY_DATABASE),
        other => Err(Error::invalid(format!(
            "{other:?} is not a Secure Boot variable (PK, KEK, db, dbx)"
        ))),
    }
}

/// EFI_TIME as authenticated variables use it: UTC, whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EfiTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl EfiTime {
    pub fn from_unix(secs: u64) -> Result<Self> {
        let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
            .map_err(|e| Error::invalid(format!("timestamp {secs}: {e}")))?;
        Ok(EfiTime {
            year: dt.year(),
            month: dt.month(),
            day: dt.day(),
            hour: dt.hour(),
            minute: dt.minutes(),
            second: dt.seconds(),
        })
    }

    /// The 16 bytes: Year (u16 LE), Month, Day, Hour, Minute, Second, Pad1,
    /// Nanosecond (u32), TimeZone (i16), Daylight, Pad2, the last five zero.
    pub fn to_bytes(self) -> [u8; 16] {
        let y = self.year.to_le_bytes();
        [
            y[0],
            y[1],
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]
    }

    pub fn from_bytes(b: [u8; 16]) -> Self {
        let [y0, y1, month, day, hour, minute, second, ..] = b;
        EfiTime {
            year: u16::from_le_bytes([y0, y1]),
            month,
            day,
            hour,
            minute,
            second,
        }
    }
}

impl std::fmt::Display for EfiTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// What the signature of `variable`'s update covers; `time` is the EFI_TIME as stored.
pub fn signed_bytes(variable: &str, time: &[u8; 16], payload: &[u8]) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(payload.len().saturating_add(64));
    for u in variable.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v.extend_from_slice(&vendor_guid(variable)?.to_bytes_le());
    v.extend_from_slice(&ATTRIBUTES.to_le_bytes());
    v.extend_from_slice(time);
    v.extend_from_slice(payload);
    Ok(v)
}

fn der_err(e: der::Error) -> Error {
    Error::Crypto(format!("DER encoding: {e}"))
}

/// The `.auth` file that sets `variable` to `payload` (signature lists), signed by
/// `key` whose certificate is `cert` (DER).
pub fn sign(
    variable: &str,
    time: EfiTime,
    payload: &[u8],
    key: &SigningKey,
    cert: &[u8],
) -> Result<Vec<u8>> {
    let signer = x509_cert::Certificate::from_der(cert)
        .map_err(|e| Error::Crypto(format!("signer certificate: {e}")))?;
    let signature =
        key.sign_pkcs1v15_sha256(&signed_bytes(variable, &time.to_bytes(), payload)?)?;
    let sha256 = AlgorithmIdentifierOwned {
        oid: oid::SHA256,
        parameters: Some(Any::null()),
    };
    let info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: signer.tbs_certificate.issuer.clone(),
            serial_number: signer.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: sha256.clone(),
        signed_attrs: None,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: oid::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        signature: OctetString::new(signature).map_err(der_err)?,
        unsigned_attrs: None,
    };
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256]).map_err(der_err)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid::DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(vec![CertificateChoices::Certificate(signer)]).map_err(der_err)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![info]).map_err(der_err)?),
    };
    let pkcs7 = sd.to_der().map_err(der_err)?;
    let len = u32::try_from(pkcs7.len())
        .ok()
        .and_then(|n| n.checked_add(24))
        .ok_or_else(|| Error::invalid("signature too large"))?;
    let mut out = Vec::with_capacity(payload.len().saturating_add(pkcs7.len()).saturating_add(40));
    out.extend_from_slice(&time.to_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_REVISION.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_TYPE_EFI_GUID.to_le_bytes());
    out.extend_from_slice(&EFI_CERT_TYPE_PKCS7_GUID.to_bytes_le());
    out.extend_from_slice(&pkcs7);
    out.extend_from_slice(payload);
    Ok(out)
}

/// An `.auth` file taken apart (it borrows the file).
#[derive(Debug, Clone)]
pub struct AuthVariable<'a> {
    pub time: EfiTime,
    /// The EFI_TIME bytes as stored (what the signature covers).
    pub time_bytes: [u8; 16],
    /// The DER SignedData and its file offset.
    pub pkcs7: &'a [u8],
    pub pkcs7_offset: u64,
    /// The signature lists and their file offset.
    pub payload: &'a [u8],
    pub payload_offset: u64,
}

/// Take an `.auth` file apart; an error when it does not start with
/// EFI_VARIABLE_AUTHENTICATION_2.
pub fn parse(data: &[u8]) -> Result<AuthVariable<'_>> {
    let what = "WIN_CERTIFICATE_UEFI_GUID";
    let time_bytes = bytes::array(data, 0, "EFI_TIME")?;
    let time = EfiTime::from_bytes(time_bytes);
    let len = u64::from(u32_le(data, EFI_TIME_SIZE, what)?);
    let rev = u16_le(data, EFI_TIME_SIZE + 4, what)?;
    let ty = u16_le(data, EFI_TIME_SIZE + 6, what)?;
    let cert_type = Guid::from_bytes_le(bytes::array(data, EFI_TIME_SIZE + 8, what)?);
    if rev != WIN_CERT_REVISION || ty != WIN_CERT_TYPE_EFI_GUID {
        return Err(Error::malformed(
            EFI_TIME_SIZE + 4,
            format!("wRevision {rev:#06x} and wCertificateType {ty:#06x} must be 0x0200 and 0x0ef1 (WIN_CERT_TYPE_EFI_GUID)"),
        ));
    }
    if cert_type != EFI_CERT_TYPE_PKCS7_GUID {
        return Err(Error::malformed(
            EFI_TIME_SIZE + 8,
            format!("CertType {cert_type:x} is not EFI_CERT_TYPE_PKCS7_GUID"),
        ));
    }
    let pkcs7_len = len.checked_sub(WIN_CERT_UEFI_GUID_HEADER).ok_or_else(|| {
        Error::malformed(
            EFI_TIME_SIZE,
            format!("dwLength {len} is shorter than the 24-byte header"),
        )
    })?;
    let pkcs7_offset = EFI_TIME_SIZE + WIN_CERT_UEFI_GUID_HEADER;
    let pkcs7 = bytes::slice(data, pkcs7_offset, pkcs7_len, "PKCS#7 SignedData")?;
    let payload_offset = pkcs7_offset.saturating_add(pkcs7_len);
    let payload = bytes::slice(
        data,
        payload_offset,
        (data.len() as u64).saturating_sub(payload_offset),
        "signature lists",
    )?;
    Ok(AuthVariable {
        time,
        time_bytes,
        pkcs7,
        pkcs7_offset,
        payload,
        payload_offset,
    })
}

/// What `inspect` shows about an `.auth` file's signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuthSummary {
    /// RFC 3339, UTC.
    pub timestamp: String,
    /// The variable whose name the signature covers, found by trying PK, KEK, db and
    /// dbx; `None` when it verifies as none of them.
    pub signed_for: Option<String>,
    /// The signer's certificate, when the SignedData carries it.
    pub signer: Option<CertificateInfo>,
    /// Every certificate in the SignedData.
    pub certificates: Vec<CertificateInfo>,
    /// Why the signature could not be checked, if it could not.
    pub problem: Option<String>,
}

/// Decode the signature of an `.auth` file and find which variable it signs.
pub fn summarize(a: &AuthVariable<'_>) -> AuthSummary {
    let mut s = AuthSummary {
        timestamp: a.time.to_string(),
        signed_for: None,
        signer: None,
        certificates: Vec::new(),
        problem: None,
    };
    if let Err(e) = check_signature(a, &mut s) {
        s.problem = Some(e.to_string());
    }
    s
}

fn check_signature(a: &AuthVariable<'_>, s: &mut AuthSummary) -> Result<()> {
    let sd = SignedData::from_der(a.pkcs7)
        .or_else(|_| {
            // Some tools wrap it in a ContentInfo after all.
            cms::content_info::ContentInfo::from_der(a.pkcs7)
                .map_err(der_err)
                .and_then(|ci| ci.content.decode_as::<SignedData>().map_err(der_err))
        })
        .map_err(|e| Error::malformed(a.pkcs7_offset, format!("PKCS#7 SignedData: {e}")))?;
    let mut certs = Vec::new();
    for c in sd.certificates.iter().flat_map(|c| c.0.iter()) {
        if let CertificateChoices::Certificate(c) = c {
            let der = c.to_der().map_err(der_err)?;
            certs.push(Certificate::parse(&der, a.pkcs7_offset)?);
        }
    }
    s.certificates = certs.iter().map(Certificate::info).collect();
    let info = sd
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| Error::malformed(a.pkcs7_offset, "SignedData has no SignerInfo"))?;
    let SignerIdentifier::IssuerAndSerialNumber(id) = &info.sid else {
        return Err(Error::Crypto(
            "the signer is named by key identifier".into(),
        ));
    };
    let issuer = id.issuer.to_der().map_err(der_err)?;
    let serial = id.serial_number.as_bytes();
    let signer = certs
        .iter()
        .find(|c| cert::names_equal(c.issuer(), &issuer) && c.serial() == serial)
        .ok_or_else(|| {
            Error::Crypto("the SignedData does not carry the signer's certificate".into())
        })?;
    s.signer = Some(signer.info());
    let attrs = info
        .signed_attrs
        .as_ref()
        .map(|a| a.to_der().map_err(der_err))
        .transpose()?;
    for variable in VARIABLES {
        let content = signed_bytes(variable, &a.time_bytes, a.payload)?;
        let digest = sha2::Sha256::digest(&content).to_vec();
        // With signed attributes the signature covers them, and their messageDigest
        // the content (RFC 5652 §5.4); without, it covers the content itself.
        let (covered, ok) = match &attrs {
            Some(der) => (
                sha2::Sha256::digest(der).to_vec(),
                message_digest_is(info, &digest),
            ),
            None => (digest, true),
        };
        if ok
            && cert::verify_digest(
                signer.spki(),
                DigestAlgorithm::Sha256,
                &covered,
                info.signature.as_bytes(),
            )
            .is_ok()
        {
            s.signed_for = Some(variable.to_string());
            return Ok(());
        }
    }
    Err(Error::Crypto(
        "the signature verifies as an update of none of PK, KEK, db and dbx".into(),
    ))
}

fn message_digest_is(info: &SignerInfo, digest: &[u8]) -> bool {
    info.signed_attrs.iter().flat_map(|a| a.iter()).any(|a| {
        a.oid == oid::MESSAGE_DIGEST
            && a.values.iter().any(|v| {
                v.decode_as::<OctetString>()
                    .is_ok_and(|o| o.as_bytes() == digest)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efi_time_is_civil_utc() {
        let t = EfiTime::from_unix(1_735_787_045).unwrap(); // 2025-01-02 03:04:05
        assert_eq!(t.to_string(), "2025-01-02T03:04:05Z");
        assert_eq!(t.to_bytes()[..8], [0xe9, 0x07, 1, 2, 3, 4, 5, 0]);
        assert_eq!(EfiTime::from_bytes(t.to_bytes()), t);
    }

    #[test]
    fn an_auth_file_verifies_as_the_variable_it_was_signed_for() {
        let keys = crate::keys::tests::test_keys(2);
        let list = crate::siglist::build_list(
            crate::siglist::EFI_CERT_X509_GUID,
            keys.owner,
            &[&keys.db.cert],
        )
        .unwrap();
        let t = EfiTime::from_unix(1_700_000_000).unwrap();
        let auth = sign("db", t, &list, &keys.kek.key, &keys.kek.cert).unwrap();
        let a = parse(&auth).unwrap();
        assert_eq!(a.payload, list.as_slice());
        let s = summarize(&a);
        assert_eq!(s.signed_for.as_deref(), Some("db"), "{s:?}");
        assert_eq!(
            s.signer.unwrap().subject_cn.as_deref(),
            Some("test Key Exchange Key")
        );
        // A changed payload verifies as nothing.
        let mut bad = auth.clone();
        *bad.last_mut().unwrap() ^= 1;
        let s = summarize(&parse(&bad).unwrap());
        assert_eq!(s.signed_for, None);
        assert!(s.problem.is_some());
        // Hostile copies: every prefix, and every byte flipped, through inspect's
        // report. Errors, never panics; a flip in the signed bytes (the timestamp, the
        // lists) never verifies.
        let signed_from = auth.len() - list.len();
        for n in 0..auth.len() {
            let _ = crate::siglist::inspect(&auth[..n]);
            let mut m = auth.clone();
            m[n] ^= 0x5a;
            if let Ok(r) = crate::siglist::inspect(&m) {
                if n < 16 || n >= signed_from {
                    assert_eq!(r.auth.and_then(|a| a.signed_for), None, "flip at {n}");
                }
            }
        }
    }
}
