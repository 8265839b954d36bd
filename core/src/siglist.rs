//! EFI_SIGNATURE_LIST databases (db, dbx, .auth, efivarfs files).
//!
//! UEFI specification §32.4.1: a database is a run of EFI_SIGNATURE_LISTs, each
//! `SignatureType` (GUID), `SignatureListSize`, `SignatureHeaderSize`,
//! `SignatureSize` (u32 each), a header, then entries of `SignatureSize` bytes: an
//! owner GUID and the data. The same bytes come wrapped in three ways, all accepted:
//! bare (`.esl`), behind the 4-byte attributes word efivarfs adds, and behind the
//! EFI_VARIABLE_AUTHENTICATION_2 header of an `.auth` enrolment file.

use crate::bytes::{self, u16_le, u32_le};
use crate::error::{Error, Result};
use crate::guid::Guid;

pub const EFI_CERT_X509_GUID: Guid = Guid::from_u128(0xa5c059a1_94e4_4aa7_87b5_ab155c2bf072);
pub const EFI_CERT_SHA256_GUID: Guid = Guid::from_u128(0xc1c41626_504c_4092_aca9_41f936934328);
/// dbx entries revoking a certificate by the SHA-256 of its TBSCertificate.
pub const EFI_CERT_X509_SHA256_GUID: Guid = Guid::from_u128(0x3bd2a492_96c0_4079_b420_fcf98ef103ed);
pub const EFI_CERT_TYPE_PKCS7_GUID: Guid = Guid::from_u128(0x4aafd29d_68df_49ee_8aa9_347d375665a7);
/// WIN_CERTIFICATE_UEFI_GUID's wCertificateType.
pub const WIN_CERT_TYPE_EFI_GUID: u16 = 0x0ef1;
const EFI_TIME_SIZE: u64 = 16;
const LIST_HEADER_SIZE: u64 = 28;

/// What one signature entry holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SignatureData {
    /// A DER certificate (EFI_CERT_X509_GUID).
    X509 {
        #[serde(serialize_with = "ser_hex")]
        der: Vec<u8>,
    },
    /// An Authenticode image hash (EFI_CERT_SHA256_GUID).
    Sha256 {
        #[serde(serialize_with = "ser_hex")]
        hash: Vec<u8>,
    },
    /// SHA-256 of a certificate's TBSCertificate (EFI_CERT_X509_SHA256_GUID).
    X509Sha256 {
        #[serde(serialize_with = "ser_hex")]
        tbs_hash: Vec<u8>,
    },
    /// A type ukitool does not interpret (RSA-2048 keys, SHA-1 hashes, ...).
    Other {
        #[serde(serialize_with = "crate::guid::lowercase")]
        signature_type: Guid,
        size: usize,
    },
}

fn ser_hex<S: serde::Serializer>(v: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&bytes::hex(v))
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureEntry {
    #[serde(serialize_with = "crate::guid::lowercase")]
    pub owner: Guid,
    /// File offset of the entry.
    pub offset: u64,
    #[serde(flatten)]
    pub data: SignatureData,
}

/// How the lists were wrapped in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    SignatureList,
    Efivarfs,
    Auth,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureDatabase {
    pub container: Container,
    pub entries: Vec<SignatureEntry>,
}

impl SignatureDatabase {
    pub fn x509(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.iter().filter_map(|e| match &e.data {
            SignatureData::X509 { der } => Some(der.as_slice()),
            _ => None,
        })
    }
    pub fn sha256(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.iter().filter_map(|e| match &e.data {
            SignatureData::Sha256 { hash } => Some(hash.as_slice()),
            _ => None,
        })
    }
    pub fn x509_sha256(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.iter().filter_map(|e| match &e.data {
            SignatureData::X509Sha256 { tbs_hash } => Some(tbs_hash.as_slice()),
            _ => None,
        })
    }
}

/// One entry as `inspect` shows it: X.509 entries with their certificate decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryReport {
    #[serde(serialize_with = "crate::guid::lowercase")]
    pub owner: Guid,
    pub offset: u64,
    /// `x509`, `sha256`, `x509-sha256` or the type GUID.
    #[serde(rename = "type")]
    pub kind: String,
    pub certificate: Option<crate::authenticode::CertificateInfo>,
    /// Hex: the image hash, the TBS hash, or (for a certificate that does not
    /// parse) nothing.
    pub hash: Option<String>,
    /// Why a certificate entry could not be decoded.
    pub problem: Option<String>,
}

/// `inspect` of an `.esl`, `.auth` or efivarfs file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureListReport {
    /// Always `signature-list`: tells this report from a PE's or a disk's in JSON.
    pub kind: &'static str,
    pub container: Container,
    pub entries: Vec<EntryReport>,
    /// For an `.auth` file: its timestamp, signer and the variable it signs.
    pub auth: Option<crate::authvar::AuthSummary>,
}

/// Decode a signature database file for `inspect`.
pub fn inspect(data: &[u8]) -> Result<SignatureListReport> {
    let db = parse(data)?;
    let auth = match db.container {
        Container::Auth => Some(crate::authvar::summarize(&crate::authvar::parse(data)?)),
        _ => None,
    };
    let entries = db
        .entries
        .iter()
        .map(|e| {
            let mut r = EntryReport {
                owner: e.owner,
                offset: e.offset,
                kind: String::new(),
                certificate: None,
                hash: None,
                problem: None,
            };
            match &e.data {
                SignatureData::X509 { der } => {
                    r.kind = "x509".into();
                    match crate::authenticode::Certificate::parse(der, e.offset.saturating_add(16))
                    {
                        Ok(c) => r.certificate = Some(c.info()),
                        Err(err) => r.problem = Some(err.to_string()),
                    }
                }
                SignatureData::Sha256 { hash } => {
                    r.kind = "sha256".into();
                    r.hash = Some(bytes::hex(hash));
                }
                SignatureData::X509Sha256 { tbs_hash } => {
                    r.kind = "x509-sha256".into();
                    r.hash = Some(bytes::hex(tbs_hash));
                }
                SignatureData::Other { signature_type, .. } => {
                    r.kind = format!("{signature_type:x}");
                }
            }
            r
        })
        .collect();
    Ok(SignatureListReport {
        kind: "signature-list",
        container: db.container,
        entries,
        auth,
    })
}

/// Does `data` look like a signature database rather than a PE? It must not start
/// with "MZ" and must parse in one of the three wrappings.
pub fn looks_like_siglist(data: &[u8]) -> bool {
    !data.starts_with(b"MZ") && parse(data).is_ok()
}

/// Parse a db/dbx file in any of its three wrappings.
pub fn parse(data: &[u8]) -> Result<SignatureDatabase> {
    if let Some(at) = auth_payload_offset(data) {
        return Ok(SignatureDatabase {
            container: Container::Auth,
            entries: parse_lists(data, at)?,
        });
    }
    match parse_lists(data, 0) {
        Ok(entries) => Ok(SignatureDatabase {
            container: Container::SignatureList,
            entries,
        }),
        Err(bare) => {
            // efivarfs prefixes the variable's attributes (a small u32, e.g. 0x27).
            if data.len() > 4 && u32_le(data, 0, "attributes").is_ok_and(|a| a < 0x100) {
                if let Ok(entries) = parse_lists(data, 4) {
                    return Ok(SignatureDatabase {
                        container: Container::Efivarfs,
                        entries,
                    });
                }
            }
            Err(bare)
        }
    }
}

/// The signature lists of a db/dbx file in any of its three wrappings, as bytes
/// (checked to parse), for copying into a new variable.
pub fn list_bytes(data: &[u8]) -> Result<&[u8]> {
    let db = parse(data)?;
    let start = match db.container {
        Container::Auth => auth_payload_offset(data).unwrap_or(0),
        Container::Efivarfs => 4,
        Container::SignatureList => 0,
    };
    bytes::slice(
        data,
        start,
        (data.len() as u64).saturating_sub(start),
        "signature lists",
    )
}

/// If `data` starts with EFI_VARIABLE_AUTHENTICATION_2 (EFI_TIME, then a
/// WIN_CERTIFICATE_UEFI_GUID with the PKCS#7 cert type), where the lists begin.
fn auth_payload_offset(data: &[u8]) -> Option<u64> {
    let len = u64::from(u32_le(data, EFI_TIME_SIZE, "WIN_CERTIFICATE").ok()?);
    let rev = u16_le(data, EFI_TIME_SIZE + 4, "WIN_CERTIFICATE").ok()?;
    let ty = u16_le(data, EFI_TIME_SIZE + 6, "WIN_CERTIFICATE").ok()?;
    let guid = bytes::array::<16>(data, EFI_TIME_SIZE + 8, "CertType").ok()?;
    let end = EFI_TIME_SIZE.checked_add(len)?;
    (rev == 0x0200
        && ty == WIN_CERT_TYPE_EFI_GUID
        && Guid::from_bytes_le(guid) == EFI_CERT_TYPE_PKCS7_GUID
        && len >= 24
        && end <= data.len() as u64)
        .then_some(end)
}

/// The entries of every list from `start` to the end of `data`.
pub fn parse_lists(data: &[u8], start: u64) -> Result<Vec<SignatureEntry>> {
    let end = data.len() as u64;
    if start >= end {
        return Err(Error::malformed(
            start,
            "no EFI_SIGNATURE_LIST: the database is empty",
        ));
    }
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let header = bytes::slice(data, at, LIST_HEADER_SIZE, "EFI_SIGNATURE_LIST")?;
        let what = "EFI_SIGNATURE_LIST";
        let ty = Guid::from_bytes_le(bytes::array(header, 0, what)?);
        let list_size = u64::from(u32_le(header, 16, what)?);
        let header_size = u64::from(u32_le(header, 20, what)?);
        let sig_size = u64::from(u32_le(header, 24, what)?);
        let list_end = at
            .checked_add(list_size)
            .filter(|&e| e <= end && list_size >= LIST_HEADER_SIZE)
            .ok_or_else(|| {
                Error::malformed(
                    at.saturating_add(16),
                    format!("SignatureListSize {list_size} must be at least 28 and fit in the file ({} bytes left)", end.saturating_sub(at)),
                )
            })?;
        // Entries follow the list header and SignatureHeaderSize bytes; each is an
        // owner GUID and SignatureSize - 16 bytes of data. A saturated `first` lies
        // past `list_end` and is refused below.
        let first = at
            .saturating_add(LIST_HEADER_SIZE)
            .saturating_add(header_size);
        let entries = list_end
            .checked_sub(first)
            .filter(|&n| sig_size >= 16 && n.checked_rem(sig_size) == Some(0));
        let (Some(entries_len), Ok(step)) = (entries, usize::try_from(sig_size)) else {
            return Err(Error::malformed(
                at.saturating_add(24),
                format!("SignatureSize {sig_size} (header {header_size}) does not divide the list's {} entry bytes", list_end.saturating_sub(first)),
            ));
        };
        let want_size = |n: u64, what: &str| -> Result<()> {
            if sig_size == n {
                Ok(())
            } else {
                Err(Error::malformed(
                    at.saturating_add(24),
                    format!("{what} entries must be {n} bytes, SignatureSize is {sig_size}"),
                ))
            }
        };
        if ty == EFI_CERT_SHA256_GUID {
            want_size(16 + 32, "EFI_CERT_SHA256")?;
        } else if ty == EFI_CERT_X509_SHA256_GUID {
            want_size(16 + 48, "EFI_CERT_X509_SHA256")?;
        }
        let mut e = first;
        for entry in bytes::slice(data, first, entries_len, "signature data")?.chunks_exact(step) {
            let Some((owner, body)) = entry.split_first_chunk::<16>() else {
                break; // SignatureSize >= 16
            };
            let d = if ty == EFI_CERT_X509_GUID {
                SignatureData::X509 { der: body.to_vec() }
            } else if ty == EFI_CERT_SHA256_GUID {
                SignatureData::Sha256 {
                    hash: body.to_vec(),
                }
            } else if ty == EFI_CERT_X509_SHA256_GUID {
                // EFI_CERT_X509_SHA256: the hash, then an EFI_TIME of revocation.
                SignatureData::X509Sha256 {
                    tbs_hash: body.get(..32).unwrap_or_default().to_vec(),
                }
            } else {
                SignatureData::Other {
                    signature_type: ty,
                    size: body.len(),
                }
            };
            out.push(SignatureEntry {
                owner: Guid::from_bytes_le(*owner),
                offset: e,
                data: d,
            });
            // The entries lie inside the list: this never saturates.
            e = e.saturating_add(sig_size);
        }
        at = list_end;
    }
    Ok(out)
}

/// Build one EFI_SIGNATURE_LIST (tests use it to make db files). Every entry takes
/// the first entry's size; a list that does not fit the u32 sizes is refused.
pub fn build_list(ty: Guid, owner: Guid, entries: &[&[u8]]) -> Result<Vec<u8>> {
    let too_big = || Error::invalid("EFI_SIGNATURE_LIST larger than 4 GiB");
    let size = entries
        .first()
        .map_or(0, |e| e.len())
        .checked_add(16)
        .ok_or_else(too_big)?;
    let total = size
        .checked_mul(entries.len())
        .and_then(|n| n.checked_add(28))
        .ok_or_else(too_big)?;
    let mut v = Vec::with_capacity(total);
    v.extend_from_slice(&ty.to_bytes_le());
    v.extend_from_slice(&u32::try_from(total).map_err(|_| too_big())?.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&u32::try_from(size).map_err(|_| too_big())?.to_le_bytes());
    for e in entries {
        v.extend_from_slice(&owner.to_bytes_le());
        v.extend_from_slice(e);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_text_matches_the_spec_form() {
        assert_eq!(
            format!("{EFI_CERT_X509_GUID:x}"),
            "a5c059a1-94e4-4aa7-87b5-ab155c2bf072"
        );
        // As the UEFI specification lists it: the first three fields little-endian.
        assert_eq!(
            EFI_CERT_SHA256_GUID.to_bytes_le()[..4],
            [0x26, 0x16, 0xc4, 0xc1]
        );
    }

    #[test]
    fn parses_all_three_wrappings() {
        let owner = Guid([7; 16]);
        let list = build_list(EFI_CERT_SHA256_GUID, owner, &[&[1u8; 32], &[2u8; 32]]).unwrap();
        let db = parse(&list).unwrap();
        assert_eq!(db.container, Container::SignatureList);
        assert_eq!(db.sha256().count(), 2);
        let mut var = 0x27u32.to_le_bytes().to_vec();
        var.extend_from_slice(&list);
        assert_eq!(parse(&var).unwrap().container, Container::Efivarfs);
        let mut auth = vec![0u8; 16];
        auth.extend_from_slice(&24u32.to_le_bytes());
        auth.extend_from_slice(&0x0200u16.to_le_bytes());
        auth.extend_from_slice(&WIN_CERT_TYPE_EFI_GUID.to_le_bytes());
        auth.extend_from_slice(&EFI_CERT_TYPE_PKCS7_GUID.to_bytes_le());
        auth.extend_from_slice(&list);
        let db = parse(&auth).unwrap();
        assert_eq!((db.container, db.entries.len()), (Container::Auth, 2));
    }

    #[test]
    fn bad_sizes_are_errors_not_panics() {
        let list = build_list(EFI_CERT_SHA256_GUID, Guid([0; 16]), &[&[1u8; 32]]).unwrap();
        for n in 0..list.len() {
            let _ = parse(&list[..n]);
        }
        for i in 16..28 {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut l = list.clone();
                l[i] = v;
                let _ = parse(&l);
            }
        }
        assert!(parse(&[]).is_err());
    }
}
