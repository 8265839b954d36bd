//! Secure Boot key sets: the platform key (PK), the key exchange key (KEK) and the
//! signature database key (db), each a private key and an X.509 certificate.
//!
//! As sbctl's `create-keys` and talosctl's `gen secureboot` make them, but chained:
//! PK is self-signed, KEK is certified by PK and db by KEK, so `openssl verify` walks
//! PK → KEK → db (PK and KEK carry `basicConstraints CA:TRUE`). Firmware only
//! compares each signature with the variable above it, so either shape enrols.
//!
//! The core has no randomness: [`create`] takes the caller's RNG (the CLI seeds one
//! from the operating system; tests from a fixed seed). Everything else (names,
//! validity, owner GUID) is an option, so the same RNG stream gives the same bytes.

use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode, Tag};
use rand_core::CryptoRngCore;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

use crate::authenticode::cert::Certificate;
use crate::authenticode::oid;
use crate::error::{Error, Result};
use crate::guid::Guid;
use crate::sign::SigningKey;

/// `--name`'s default: the organisation part of every subject.
pub const DEFAULT_NAME: &str = "ukitool";
/// `--valid-days`'s default: ten years (firmware ignores validity; openssl does not).
pub const DEFAULT_VALID_DAYS: u32 = 3650;
/// `--algorithm`'s default.
pub const DEFAULT_ALGORITHM: &str = "rsa2048";
/// The file holding the owner GUID in a key directory (sbctl's name for it).
pub const GUID_FILE: &str = "GUID";
const SECONDS_PER_DAY: u64 = 86_400;

/// The key types firmware accepts for PK, KEK and db: EDK2 verifies authenticated
/// variables and images with RSA only (EFI_CERT_RSA2048 is the floor; 3072 and 4096
/// work with X.509 certificates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl KeyAlgorithm {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "rsa2048" => KeyAlgorithm::Rsa2048,
            "rsa3072" => KeyAlgorithm::Rsa3072,
            "rsa4096" => KeyAlgorithm::Rsa4096,
            other => {
                return Err(Error::invalid(format!(
                    "key algorithm {other:?}: expected rsa2048, rsa3072 or rsa4096"
                )))
            }
        })
    }

    pub fn bits(self) -> usize {
        match self {
            KeyAlgorithm::Rsa2048 => 2048,
            KeyAlgorithm::Rsa3072 => 3072,
            KeyAlgorithm::Rsa4096 => 4096,
        }
    }
}

/// Which variable a key pair is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    #[serde(rename = "PK")]
    Pk,
    #[serde(rename = "KEK")]
    Kek,
    #[serde(rename = "db")]
    Db,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Pk, Role::Kek, Role::Db];

    /// The UEFI variable name, also the file stem: `PK`, `KEK`, `db`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Pk => "PK",
            Role::Kek => "KEK",
            Role::Db => "db",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Role::Pk => "Platform Key",
            Role::Kek => "Key Exchange Key",
            Role::Db => "Signature Database Key",
        }
    }

    /// `PK.key`: the private key, PKCS#8 PEM.
    pub fn key_file(self) -> String {
        format!("{}.key", self.name())
    }

    /// `PK.crt`: the certificate, PEM.
    pub fn cert_file(self) -> String {
        format!("{}.crt", self.name())
    }
}

/// What [`create`] makes.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Put in every subject: `CN=<name> Platform Key`, `O=<name>`.
    pub name: String,
    pub algorithm: KeyAlgorithm,
    /// The owner of every signature list entry; `None`: a random one from the RNG.
    pub owner: Option<Guid>,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: u64,
    pub valid_days: u32,
}

/// One private key and its certificate.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub role: Role,
    pub key: SigningKey,
    /// DER certificate.
    pub cert: Vec<u8>,
}

/// PK, KEK and db, and the owner GUID of their signature list entries.
#[derive(Debug, Clone)]
pub struct KeySet {
    pub owner: Guid,
    pub pk: KeyPair,
    pub kek: KeyPair,
    pub db: KeyPair,
}

fn crypto(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Crypto(format!("{what}: {e}"))
}

/// An X.509 Time: UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5).
pub fn x509_time(unix: u64) -> Result<x509_cert::time::Time> {
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(unix))
        .map_err(|e| crypto("time", e))?;
    Ok(match der::asn1::UtcTime::from_date_time(dt) {
        Ok(u) => x509_cert::time::Time::UtcTime(u),
        Err(_) => {
            x509_cert::time::Time::GeneralTime(der::asn1::GeneralizedTime::from_date_time(dt))
        }
    })
}

/// `CN=<cn>, O=<org>` with UTF8String values.
fn subject(cn: &str, org: &str) -> Result<Name> {
    let rdn = |id, v: &str| -> Result<RelativeDistinguishedName> {
        let value = Any::new(Tag::Utf8String, v.as_bytes()).map_err(|e| crypto("name", e))?;
        let atv = AttributeTypeAndValue { oid: id, value };
        SetOfVec::try_from(vec![atv])
            .map(RelativeDistinguishedName)
            .map_err(|e| crypto("name", e))
    };
    Ok(RdnSequence(vec![
        rdn(oid::ORGANIZATION_NAME, org)?,
        rdn(oid::COMMON_NAME, cn)?,
    ]))
}

/// A positive 16-byte serial from the RNG (RFC 5280 §4.1.2.2: at most 20 octets).
fn serial(rng: &mut impl CryptoRngCore) -> Result<SerialNumber> {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[0] = (b[0] & 0x7f) | 0x40;
    SerialNumber::new(&b).map_err(|e| crypto("serial number", e))
}

fn rsa_signer(k: &SigningKey) -> Result<rsa::pkcs1v15::SigningKey<sha2::Sha256>> {
    match k {
        SigningKey::Rsa(k) => Ok(rsa::pkcs1v15::SigningKey::new((**k).clone())),
        SigningKey::EcP256(_) => Err(Error::Crypto(
            "Secure Boot keys must be RSA (firmware verifies RSA only)".into(),
        )),
    }
}

/// A certificate for `key` with `profile`, signed by `issuer_key`.
fn certify(
    profile: Profile,
    subject: Name,
    key: &SigningKey,
    issuer_key: &SigningKey,
    validity: &Validity,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.public_key_der()?)
        .map_err(|e| crypto("public key", e))?;
    let signer = rsa_signer(issuer_key)?;
    let builder = CertificateBuilder::new(profile, serial(rng)?, *validity, subject, spki, &signer)
        .map_err(|e| crypto("certificate", e))?;
    let cert = builder
        .build::<rsa::pkcs1v15::Signature>()
        .map_err(|e| crypto("signing the certificate", e))?;
    cert.to_der().map_err(|e| crypto("certificate", e))
}

/// A new RSA key of `bits` from `rng`.
fn generate(bits: usize, rng: &mut impl CryptoRngCore) -> Result<SigningKey> {
    let k = rsa::RsaPrivateKey::new(rng, bits).map_err(|e| crypto("RSA key generation", e))?;
    Ok(SigningKey::Rsa(Box::new(k)))
}

/// Make PK (self-signed), KEK (certified by PK) and db (certified by KEK).
pub fn create(o: &CreateOptions, rng: &mut impl CryptoRngCore) -> Result<KeySet> {
    let owner = owner_or_random(o.owner, rng);
    let bits = o.algorithm.bits();
    let keys = [
        generate(bits, rng)?,
        generate(bits, rng)?,
        generate(bits, rng)?,
    ];
    certify_keys(o, owner, keys, rng)
}

/// The key set of [`create`] around private keys made elsewhere, `[PK, KEK, db]`: the
/// page generates them with WebCrypto, where RSA key generation is native and fast,
/// and the core only certifies them. Each key must be RSA of `o.algorithm`'s size.
pub fn from_private_keys(
    o: &CreateOptions,
    keys: [SigningKey; 3],
    rng: &mut impl CryptoRngCore,
) -> Result<KeySet> {
    use rsa::traits::PublicKeyParts;
    for (k, role) in keys.iter().zip(Role::ALL) {
        let bits = match k {
            SigningKey::Rsa(k) => k.n().bits(),
            SigningKey::EcP256(_) => 0,
        };
        if bits != o.algorithm.bits() {
            return Err(Error::Crypto(format!(
                "{}: {} where {} bits of RSA were asked for (firmware verifies RSA only)",
                role.key_file(),
                k.describe(),
                o.algorithm.bits()
            )));
        }
    }
    let owner = owner_or_random(o.owner, rng);
    certify_keys(o, owner, keys, rng)
}

/// `owner`, else a random (version 4, RFC 9562 §5.4) GUID.
fn owner_or_random(owner: Option<Guid>, rng: &mut impl CryptoRngCore) -> Guid {
    owner.unwrap_or_else(|| {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid(b)
    })
}

/// The PK, KEK and db certificates for `[pk, kek, db]`.
fn certify_keys(
    o: &CreateOptions,
    owner: Guid,
    [pk_key, kek_key, db_key]: [SigningKey; 3],
    rng: &mut impl CryptoRngCore,
) -> Result<KeySet> {
    let not_after = u64::from(o.valid_days)
        .checked_mul(SECONDS_PER_DAY)
        .and_then(|d| o.not_before.checked_add(d))
        .ok_or_else(|| Error::invalid("the validity period ends after year 9999"))?;
    let validity = Validity {
        not_before: x509_time(o.not_before)?,
        not_after: x509_time(not_after)?,
    };
    let name = |r: Role| subject(&format!("{} {}", o.name, r.title()), &o.name);
    let pk_name = name(Role::Pk)?;
    let kek_name = name(Role::Kek)?;
    let pk_cert = certify(
        Profile::Root,
        pk_name.clone(),
        &pk_key,
        &pk_key,
        &validity,
        rng,
    )?;
    let kek_cert = certify(
        Profile::SubCA {
            issuer: pk_name,
            path_len_constraint: None,
        },
        kek_name.clone(),
        &kek_key,
        &pk_key,
        &validity,
        rng,
    )?;
    let db_cert = certify(
        Profile::Leaf {
            issuer: kek_name,
            enable_key_agreement: false,
            enable_key_encipherment: false,
        },
        name(Role::Db)?,
        &db_key,
        &kek_key,
        &validity,
        rng,
    )?;
    let pair = |role, key, cert| KeyPair { role, key, cert };
    Ok(KeySet {
        owner,
        pk: pair(Role::Pk, pk_key, pk_cert),
        kek: pair(Role::Kek, kek_key, kek_cert),
        db: pair(Role::Db, db_key, db_cert),
    })
}

impl KeyPair {
    /// From a PEM private key and a PEM or DER certificate, checked to match.
    pub fn from_pem(role: Role, key_pem: &str, cert: &[u8]) -> Result<Self> {
        let key = SigningKey::from_pem(key_pem, None)
            .map_err(|e| Error::Crypto(format!("{}: {e}", role.key_file())))?;
        let cert = match crate::pem::certificates(cert)?.into_iter().next() {
            Some(der) => der,
            None => cert.to_vec(),
        };
        let parsed = Certificate::parse(&cert, 0)
            .map_err(|e| Error::Crypto(format!("{}: {e}", role.cert_file())))?;
        if parsed.spki() != key.public_key_der()?.as_slice() {
            return Err(Error::Crypto(format!(
                "{} does not certify the key in {}",
                role.cert_file(),
                role.key_file()
            )));
        }
        Ok(KeyPair { role, key, cert })
    }

    /// The private key as PKCS#8 PEM (`PRIVATE KEY`).
    pub fn key_pem(&self) -> Result<String> {
        use pkcs8::EncodePrivateKey;
        let doc = match &self.key {
            SigningKey::Rsa(k) => k.to_pkcs8_pem(der::pem::LineEnding::LF),
            SigningKey::EcP256(k) => k.to_pkcs8_pem(der::pem::LineEnding::LF),
        }
        .map_err(|e| crypto("encoding the private key", e))?;
        Ok(doc.as_str().to_string())
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> Result<String> {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.cert)
            .map_err(|e| crypto("encoding the certificate", e))
    }
}

/// A certificate's notBefore, Unix seconds.
pub fn not_before(cert: &[u8]) -> Result<u64> {
    let c = x509_cert::Certificate::from_der(cert).map_err(|e| crypto("certificate", e))?;
    Ok(c.tbs_certificate
        .validity
        .not_before
        .to_unix_duration()
        .as_secs())
}

/// The owner GUID of a key directory without a `GUID` file: derived from the PK
/// certificate, so that exports stay reproducible.
pub fn owner_from_certificate(pk_cert: &[u8]) -> Guid {
    let ns = Guid::from_u128(0x8be4df61_93ca_11d2_aa0d_00e098032b8c);
    Guid::from_name(&ns, &crate::bytes::hex(pk_cert))
}

impl KeySet {
    /// A key directory's files by name (`PK.key PK.crt KEK.key KEK.crt db.key db.crt`
    /// and, when present, `GUID`; else the owner is derived from the PK certificate,
    /// reproducibly). `get` returns a file's bytes, or `None` when it is absent.
    pub fn from_files<'a>(get: impl Fn(&str) -> Option<&'a [u8]>) -> Result<KeySet> {
        let file = |name: &str| {
            get(name).ok_or_else(|| Error::invalid(format!("the key set has no {name}")))
        };
        let pair = |role: Role| -> Result<KeyPair> {
            let key = std::str::from_utf8(file(&role.key_file())?)
                .map_err(|_| Error::Crypto(format!("{}: not PEM text", role.key_file())))?;
            KeyPair::from_pem(role, key, file(&role.cert_file())?)
        };
        let pk = pair(Role::Pk)?;
        let kek = pair(Role::Kek)?;
        let db = pair(Role::Db)?;
        let owner = match get(GUID_FILE) {
            Some(t) => Guid::parse(std::str::from_utf8(t).unwrap_or_default().trim())?,
            None => owner_from_certificate(&pk.cert),
        };
        Ok(KeySet { owner, pk, kek, db })
    }

    pub fn pairs(&self) -> [&KeyPair; 3] {
        [&self.pk, &self.kek, &self.db]
    }

    /// The files of a key directory: `PK.key PK.crt KEK.key KEK.crt db.key db.crt GUID`.
    pub fn files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for p in self.pairs() {
            out.push((p.role.key_file(), p.key_pem()?.into_bytes()));
            out.push((p.role.cert_file(), p.cert_pem()?.into_bytes()));
        }
        out.push((GUID_FILE.into(), format!("{:x}\n", self.owner).into_bytes()));
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand_core::SeedableRng;

    pub(crate) fn test_keys(seed: u64) -> KeySet {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        create(
            &CreateOptions {
                name: "test".into(),
                algorithm: KeyAlgorithm::Rsa2048,
                owner: None,
                not_before: 1_700_000_000,
                valid_days: 30,
            },
            &mut rng,
        )
        .unwrap()
    }

    #[test]
    fn the_chain_is_pk_kek_db_and_reproducible_from_the_seed() {
        let k = test_keys(1);
        let pk = Certificate::parse(&k.pk.cert, 0).unwrap();
        let kek = Certificate::parse(&k.kek.cert, 0).unwrap();
        let db = Certificate::parse(&k.db.cert, 0).unwrap();
        assert!(pk.signed_by(&pk) && kek.signed_by(&pk) && db.signed_by(&kek));
        assert!(!db.signed_by(&pk));
        assert_eq!(
            db.subject_cn().as_deref(),
            Some("test Signature Database Key")
        );
        assert_eq!(k.owner.0[6] >> 4, 4);
        let again = test_keys(1);
        assert_eq!((again.db.cert, again.owner), (k.db.cert.clone(), k.owner));
        // The files read back into the same pairs.
        let files = k.files().unwrap();
        let get = |n: &str| files.iter().find(|(f, _)| f == n).unwrap().1.clone();
        let back = KeyPair::from_pem(
            Role::Kek,
            &String::from_utf8(get("KEK.key")).unwrap(),
            &get("KEK.crt"),
        )
        .unwrap();
        assert_eq!(back.cert, k.kek.cert);
        let wrong = KeyPair::from_pem(
            Role::Kek,
            &String::from_utf8(get("db.key")).unwrap(),
            &get("KEK.crt"),
        );
        assert!(wrong.unwrap_err().to_string().contains("does not certify"));
    }

    /// The page's path: keys made elsewhere, certified as `create` certifies its own;
    /// the files read back through `KeySet::from_files`. A key of another size is
    /// refused, naming its file.
    #[test]
    fn keys_made_elsewhere_are_certified_the_same_way() {
        let made = test_keys(2);
        let keys = || {
            [
                made.pk.key.clone(),
                made.kek.key.clone(),
                made.db.key.clone(),
            ]
        };
        let o = CreateOptions {
            name: "test".into(),
            algorithm: KeyAlgorithm::Rsa2048,
            owner: None,
            not_before: 1_700_000_000,
            valid_days: 30,
        };
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let set = from_private_keys(&o, keys(), &mut rng).unwrap();
        let pk = Certificate::parse(&set.pk.cert, 0).unwrap();
        let kek = Certificate::parse(&set.kek.cert, 0).unwrap();
        let db = Certificate::parse(&set.db.cert, 0).unwrap();
        assert!(pk.signed_by(&pk) && kek.signed_by(&pk) && db.signed_by(&kek));
        assert_eq!(db.spki(), made.db.key.public_key_der().unwrap().as_slice());
        let files = set.files().unwrap();
        let back = KeySet::from_files(|n| {
            files
                .iter()
                .find(|(f, _)| f == n)
                .map(|(_, d)| d.as_slice())
        })
        .unwrap();
        assert_eq!((back.owner, back.db.cert), (set.owner, set.db.cert.clone()));
        let missing = KeySet::from_files(|n| {
            files
                .iter()
                .find(|(f, _)| f == n && n != "KEK.crt")
                .map(|(_, d)| d.as_slice())
        });
        assert!(missing.unwrap_err().to_string().contains("no KEK.crt"));
        let big = CreateOptions {
            algorithm: KeyAlgorithm::Rsa3072,
            ..o
        };
        let e = from_private_keys(&big, keys(), &mut rng).unwrap_err();
        assert!(e.to_string().contains("PK.key: RSA 2048"), "{e}");
    }
}
