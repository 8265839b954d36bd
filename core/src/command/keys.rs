//! `keys create` and `keys export`: a Secure Boot key set, and the signature lists
//! (`.esl`) and authenticated variables (`.auth`) that enrol it.
//!
//! Export signs as the UEFI hierarchy requires: PK's update with PK (setup mode
//! accepts a self-signed PK), KEK's with PK, db's and dbx's with KEK. Each signer
//! must be a CA certificate valid at the timestamp, so that `openssl verify` and
//! firmware that checks dates agree with what was enrolled.

use der::Decode;
use x509_cert::ext::pkix::BasicConstraints;

use crate::authenticode::cert::{Certificate, CertificateInfo};
use crate::authvar::{self, EfiTime};
use crate::error::{Error, Result};
use crate::keys::{self, KeyPair, KeySet};
use crate::siglist::{self, EFI_CERT_X509_GUID};

/// The time of a key set or an export: `given` (`--timestamp`), else
/// `SOURCE_DATE_EPOCH`, else `now` (the caller's clock; the core has none).
pub fn timestamp(given: Option<u64>, source_date_epoch: Option<&str>, now: u64) -> Result<u64> {
    super::timestamp_or_epoch(given, source_date_epoch, now)
}

/// Files to write: (name in the output directory, bytes).
pub type Files = Vec<(String, Vec<u8>)>;

/// What `keys create` made, for printing and `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Created {
    #[serde(serialize_with = "crate::guid::lowercase")]
    pub owner: crate::guid::Guid,
    pub algorithm: keys::KeyAlgorithm,
    pub certificates: Vec<(keys::Role, CertificateInfo)>,
    /// The files of the key directory, in writing order.
    pub files: Vec<String>,
}

/// `keys create`: the key set's files and their summary.
pub fn create(
    o: &keys::CreateOptions,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<(Files, Created)> {
    summarise(&keys::create(o, rng)?, o.algorithm)
}

/// The page's `keys create`: the same files and summary around private keys made
/// elsewhere (WebCrypto), `[PK, KEK, db]`; see [`keys::from_private_keys`].
pub fn create_from_keys(
    o: &keys::CreateOptions,
    private_keys: [crate::sign::SigningKey; 3],
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<(Files, Created)> {
    summarise(&keys::from_private_keys(o, private_keys, rng)?, o.algorithm)
}

fn summarise(set: &KeySet, algorithm: keys::KeyAlgorithm) -> Result<(Files, Created)> {
    let files = set.files()?;
    let certificates = set
        .pairs()
        .iter()
        .map(|p| Ok((p.role, Certificate::parse(&p.cert, 0)?.info())))
        .collect::<Result<_>>()?;
    let created = Created {
        owner: set.owner,
        algorithm,
        certificates,
        files: files.iter().map(|(n, _)| n.clone()).collect(),
    };
    Ok((files, created))
}

/// What `keys export` reads besides the key set.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions<'a> {
    /// (name for errors, bytes): certificates (PEM or DER) or signature lists to keep
    /// trusted in db besides the db key, e.g. Microsoft's CAs.
    pub append_db: Vec<(String, &'a [u8])>,
    /// (name for errors, bytes): dbx contents, as signature lists or certificates.
    pub dbx: Vec<(String, &'a [u8])>,
    /// Seconds since the Unix epoch: the `.auth` timestamp.
    pub timestamp: u64,
}

/// One exported variable.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportedVariable {
    pub name: String,
    pub signed_by: String,
    pub entries: usize,
    pub esl_size: usize,
    pub auth_size: usize,
}

/// What `keys export` wrote, for printing and `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    pub timestamp: String,
    pub variables: Vec<ExportedVariable>,
}

/// The signature lists of an input: each certificate as its own X.509 list (entries
/// of one list share one size), or the lists of an `.esl`/`.auth`/efivarfs file.
fn lists_of(name: &str, data: &[u8], owner: crate::guid::Guid) -> Result<Vec<u8>> {
    let pem = crate::pem::certificates(data).map_err(|e| Error::invalid(format!("{name}: {e}")))?;
    if !pem.is_empty() {
        let mut out = Vec::new();
        for der in &pem {
            Certificate::parse(der, 0).map_err(|e| Error::invalid(format!("{name}: {e}")))?;
            out.extend(siglist::build_list(EFI_CERT_X509_GUID, owner, &[der])?);
        }
        return Ok(out);
    }
    if let Ok(lists) = siglist::list_bytes(data) {
        return Ok(lists.to_vec());
    }
    Certificate::parse(data, 0).map_err(|e| {
        Error::invalid(format!(
            "{name}: neither a certificate (PEM or DER) nor an EFI signature list ({e})"
        ))
    })?;
    siglist::build_list(EFI_CERT_X509_GUID, owner, &[data])
}

/// Refuse a signer that is not a CA or has expired at `at`.
pub fn check_signer(p: &KeyPair, at: u64) -> Result<()> {
    let file = p.role.cert_file();
    let cert = x509_cert::Certificate::from_der(&p.cert)
        .map_err(|e| Error::Crypto(format!("{file}: {e}")))?;
    let v = &cert.tbs_certificate.validity;
    // An update timestamped before notBefore is not refused: firmware has no trusted
    // clock and uses the timestamp only to order updates, and a SOURCE_DATE_EPOCH
    // older than the keys is common in reproducible builds.
    let to = v.not_after.to_unix_duration().as_secs();
    let when = EfiTime::from_unix(at)?;
    if at > to {
        return Err(Error::Crypto(format!(
            "{file} expired on {} (the timestamp is {when}); it cannot sign the {} update",
            v.not_after,
            signs(p.role)
        )));
    }
    let ca = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|b| b.ca);
    if !ca {
        return Err(Error::Crypto(format!(
            "{file} is not a CA certificate (no basicConstraints CA:TRUE); it cannot sign the {} update",
            signs(p.role)
        )));
    }
    Ok(())
}

fn signs(role: keys::Role) -> &'static str {
    match role {
        keys::Role::Pk => "PK and KEK",
        _ => "db and dbx",
    }
}

/// `keys export`: `(file name, bytes)` for `PK KEK db [dbx]` `.esl` and `.auth`, and
/// the summary. Nothing is returned unless every signer passes [`check_signer`].
pub fn export(set: &KeySet, o: &ExportOptions<'_>) -> Result<(Files, Exported)> {
    check_signer(&set.pk, o.timestamp)?;
    check_signer(&set.kek, o.timestamp)?;
    let time = EfiTime::from_unix(o.timestamp)?;
    let own = |cert: &[u8]| siglist::build_list(EFI_CERT_X509_GUID, set.owner, &[cert]);
    let mut db = own(&set.db.cert)?;
    for (name, data) in &o.append_db {
        db.extend(lists_of(name, data, set.owner)?);
    }
    let mut vars = vec![
        ("PK", own(&set.pk.cert)?, &set.pk),
        ("KEK", own(&set.kek.cert)?, &set.pk),
        ("db", db, &set.kek),
    ];
    if !o.dbx.is_empty() {
        let mut dbx = Vec::new();
        for (name, data) in &o.dbx {
            dbx.extend(lists_of(name, data, set.owner)?);
        }
        vars.push(("dbx", dbx, &set.kek));
    }
    let mut files = Vec::new();
    let mut variables = Vec::new();
    for (name, esl, signer) in vars {
        let auth = authvar::sign(name, time, &esl, &signer.key, &signer.cert)?;
        let signer_cn = Certificate::parse(&signer.cert, 0)?.subject_cn();
        variables.push(ExportedVariable {
            name: name.into(),
            signed_by: signer_cn.unwrap_or_else(|| signer.role.name().into()),
            entries: siglist::parse(&esl)?.entries.len(),
            esl_size: esl.len(),
            auth_size: auth.len(),
        });
        files.push((format!("{name}.esl"), esl));
        files.push((format!("{name}.auth"), auth));
    }
    Ok((
        files,
        Exported {
            timestamp: time.to_string(),
            variables,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_signs_each_variable_with_its_parent() {
        let set = crate::keys::tests::test_keys(3);
        let o = ExportOptions {
            append_db: vec![("other".into(), set.pk.cert.as_slice())],
            timestamp: 1_700_000_100,
            ..Default::default()
        };
        let (files, sum) = export(&set, &o).unwrap();
        let names: Vec<_> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["PK.esl", "PK.auth", "KEK.esl", "KEK.auth", "db.esl", "db.auth"]
        );
        assert_eq!(sum.variables[2].entries, 2);
        for (name, data) in files.iter().filter(|(n, _)| n.ends_with(".auth")) {
            let s = authvar::summarize(&authvar::parse(data).unwrap());
            assert_eq!(
                s.signed_for.as_deref(),
                name.strip_suffix(".auth"),
                "{name}"
            );
        }
        // A timestamp after the keys expire (30 days), and a leaf as KEK, are refused.
        let late = ExportOptions {
            timestamp: 1_800_000_000,
            ..Default::default()
        };
        let e = export(&set, &late).unwrap_err().to_string();
        assert!(e.contains("PK.crt expired"), "{e}");
        let mut leaf = set.clone();
        leaf.kek = KeyPair {
            role: keys::Role::Kek,
            ..set.db.clone()
        };
        let e = export(&leaf, &o).unwrap_err().to_string();
        assert!(e.contains("KEK.crt is not a CA"), "{e}");
        assert_eq!(timestamp(None, Some(" 5 "), 9).unwrap(), 5);
        assert_eq!(timestamp(Some(1), Some("5"), 9).unwrap(), 1);
        assert_eq!(timestamp(None, None, 9).unwrap(), 9);
    }
}
