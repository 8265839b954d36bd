//! Signing with a key that stays in a PKCS#11 token (an HSM, a smart card, SoftHSM):
//! `--key pkcs11:token=T;object=O?pin-value=1234` (RFC 7512). Native only: the module is
//! a shared library loaded at run time (`--pkcs11-module PATH`, the URI's
//! `module-path`, else p11-kit's proxy, which reaches every module p11-kit knows).
//!
//! The token signs the DER signed attributes (RSA: CKM_SHA256_RSA_PKCS over them;
//! ECDSA: CKM_ECDSA over their SHA-256). Each signature is checked against the
//! certificate before it is used, so a key that the certificate does not certify is an
//! error, not a bad signature in the output.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use ukitool_core::authenticode::cert::verify_digest;
use ukitool_core::authenticode::DigestAlgorithm;
use ukitool_core::sign::{self, AttributeSigner};

/// p11-kit's proxy module (Debian's p11-kit-modules): every module p11-kit is set up for.
pub const P11_KIT_PROXY: &str = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so";

/// A signer for `.pcrsig` policies: a PEM key file, or a token key (a `pkcs11:` URI)
/// checked against `public` (the PEM public key, needed with a URI).
pub fn pcr_signer(
    key: &Path,
    public: Option<&[u8]>,
    module: Option<&Path>,
    pw: Option<&[u8]>,
) -> Result<Box<dyn AttributeSigner>> {
    if !is_uri(key) {
        let pem = std::fs::read_to_string(key).with_context(|| key.display().to_string())?;
        let k = ukitool_core::sign::SigningKey::from_pem(&pem, pw)
            .with_context(|| key.display().to_string())?;
        return Ok(Box::new(k));
    }
    let public = public.context(
        "a pkcs11: PCR key needs its public key (--pcr-public-key, or --public-key for measure)",
    )?;
    let spki = ukitool_core::pem::public_key(public, "PCR public key")?;
    Ok(Box::new(Pkcs11Signer::open_for_key(
        &key.to_string_lossy(),
        module,
        spki,
    )?))
}

/// Is this `--key` a PKCS#11 URI?
pub fn is_uri(key: &Path) -> bool {
    key.to_str().is_some_and(|s| s.starts_with("pkcs11:"))
}

/// The parts of an RFC 7512 URI that select a key and log in.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Uri {
    pub token: Option<String>,
    pub serial: Option<String>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub pin_value: Option<String>,
    pub pin_source: Option<String>,
    pub module_path: Option<String>,
}

/// RFC 3986 percent-decoding.
fn pct_decode(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut it = s.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let h: String = it.by_ref().take(2).map(char::from).collect();
            let v = u8::from_str_radix(&h, 16)
                .with_context(|| format!("bad percent escape %{h} in the PKCS#11 URI"))?;
            out.push(v);
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

impl Uri {
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .context("a PKCS#11 URI starts with pkcs11:")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut u = Uri::default();
        let text = |v: &str| -> Result<String> {
            String::from_utf8(pct_decode(v)?).context("PKCS#11 URI value is not UTF-8")
        };
        for (sep, part) in [(';', path), ('&', query)] {
            for attr in part.split(sep).filter(|a| !a.is_empty()) {
                let (k, v) = attr
                    .split_once('=')
                    .with_context(|| format!("PKCS#11 URI attribute {attr:?} has no value"))?;
                match k {
                    "token" => u.token = Some(text(v)?),
                    "serial" => u.serial = Some(text(v)?),
                    "object" => u.object = Some(text(v)?),
                    "id" => u.id = Some(pct_decode(v)?),
                    "pin-value" => u.pin_value = Some(text(v)?),
                    "pin-source" => u.pin_source = Some(text(v)?),
                    "module-path" => u.module_path = Some(text(v)?),
                    // type=private, manufacturer, model, library-*: not needed to
                    // find a private key; accepted and ignored.
                    _ => {}
                }
            }
        }
        if u.object.is_none() && u.id.is_none() {
            bail!("the PKCS#11 URI names no key: give object=LABEL or id=%XX");
        }
        Ok(u)
    }

    fn pin(&self) -> Result<Option<String>> {
        if let Some(p) = &self.pin_value {
            return Ok(Some(p.clone()));
        }
        let Some(src) = &self.pin_source else {
            return Ok(None);
        };
        let path = src.strip_prefix("file:").unwrap_or(src);
        let pin = std::fs::read_to_string(path).with_context(|| format!("pin-source {path}"))?;
        Ok(Some(pin.trim_end_matches(['\r', '\n']).to_string()))
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.token {
            parts.push(format!("token={t}"));
        }
        if let Some(o) = &self.object {
            parts.push(format!("object={o}"));
        }
        parts.join(";")
    }
}

/// A private key in a token, logged in, with the certificate it must match.
pub struct Pkcs11Signer {
    session: Session,
    key: ObjectHandle,
    key_type: KeyType,
    spki: Vec<u8>,
    what: String,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PKCS#11 key {}", self.what)
    }
}

fn p11<T>(r: cryptoki::error::Result<T>, what: &str) -> Result<T> {
    use cryptoki::error::{Error, RvError};
    r.map_err(|e| match e {
        Error::Pkcs11(RvError::PinIncorrect, _) => {
            anyhow::anyhow!("PKCS#11: the PIN is incorrect (CKR_PIN_INCORRECT, {what})")
        }
        Error::Pkcs11(rv, f) => anyhow::anyhow!("PKCS#11 {f}: {rv:?} ({what})"),
        other => anyhow::anyhow!("PKCS#11: {other} ({what})"),
    })
}

impl Pkcs11Signer {
    /// Open the token the URI names through `module` (or the URI's module-path, else
    /// p11-kit's proxy), log in and find the private key. `cert` is the signer's DER
    /// certificate.
    pub fn open(uri: &str, module: Option<&Path>, cert: &[u8]) -> Result<Self> {
        let spki = ukitool_core::authenticode::Certificate::parse(cert, 0)?
            .spki()
            .to_vec();
        Self::open_for_key(uri, module, spki)
    }

    /// As [`Self::open`], the key checked against `spki` (a DER SubjectPublicKeyInfo:
    /// the PCR public key, for `.pcrsig`).
    pub fn open_for_key(uri: &str, module: Option<&Path>, spki: Vec<u8>) -> Result<Self> {
        let u = Uri::parse(uri)?;
        let module: PathBuf = module
            .map(Path::to_path_buf)
            .or_else(|| u.module_path.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(P11_KIT_PROXY));
        let ctx = Pkcs11::new(&module)
            .map_err(|e| anyhow::anyhow!("loading the PKCS#11 module {}: {e}", module.display()))?;
        p11(
            ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)),
            "C_Initialize",
        )?;
        let mut labels = Vec::new();
        let mut found = None;
        for slot in p11(ctx.get_slots_with_token(), "listing slots")? {
            let info = p11(ctx.get_token_info(slot), "token info")?;
            let label = info.label().trim_end().to_string();
            let serial = info.serial_number().trim_end().to_string();
            let ok = u.token.as_ref().is_none_or(|t| *t == label)
                && u.serial.as_ref().is_none_or(|s| *s == serial);
            if !label.is_empty() {
                labels.push(label);
            }
            if ok {
                found = Some(slot);
                break;
            }
        }
        let Some(slot) = found else {
            bail!(
                "no PKCS#11 token matches {} in {} (tokens: {})",
                u.describe(),
                module.display(),
                if labels.is_empty() {
                    "none".into()
                } else {
                    labels.join(", ")
                }
            );
        };
        let session = p11(ctx.open_ro_session(slot), "opening a session")?;
        if let Some(pin) = u.pin()? {
            let pin = AuthPin::new(pin.into());
            p11(
                session.login(UserType::User, Some(&pin)),
                "logging in to the token",
            )?;
        }
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(o) = &u.object {
            template.push(Attribute::Label(o.as_bytes().to_vec()));
        }
        if let Some(id) = &u.id {
            template.push(Attribute::Id(id.clone()));
        }
        let keys = p11(session.find_objects(&template), "finding the key")?;
        let Some(&key) = keys.first() else {
            bail!(
                "no private key matches {} (is the PIN given, with pin-value or pin-source?)",
                u.describe()
            );
        };
        let attrs = p11(
            session.get_attributes(key, &[AttributeType::KeyType]),
            "reading the key type",
        )?;
        let key_type = attrs
            .iter()
            .find_map(|a| match a {
                Attribute::KeyType(t) => Some(*t),
                _ => None,
            })
            .context("the token does not say the key's type")?;
        if key_type != KeyType::RSA && key_type != KeyType::EC {
            bail!("the token's key is {key_type}: RSA or ECDSA keys are supported");
        }
        Ok(Pkcs11Signer {
            session,
            key,
            key_type,
            spki,
            what: u.describe(),
        })
    }
}

impl AttributeSigner for Pkcs11Signer {
    fn public_key_der(&self) -> ukitool_core::Result<Vec<u8>> {
        Ok(self.spki.clone())
    }

    fn sign_sha256(
        &self,
        msg: &[u8],
    ) -> ukitool_core::Result<(Vec<u8>, sign::AlgorithmIdentifierOwned)> {
        let crypto = |e: String| ukitool_core::Error::Crypto(e);
        let digest = DigestAlgorithm::Sha256.digest(msg);
        let sig = if self.key_type == KeyType::RSA {
            self.session
                .sign(&Mechanism::Sha256RsaPkcs, self.key, msg)
                .map_err(|e| crypto(format!("PKCS#11 signing with {}: {e}", self.what)))?
        } else {
            let raw = self
                .session
                .sign(&Mechanism::Ecdsa, self.key, &digest)
                .map_err(|e| crypto(format!("PKCS#11 signing with {}: {e}", self.what)))?;
            sign::ecdsa_raw_to_der(&raw)?
        };
        verify_digest(&self.spki, DigestAlgorithm::Sha256, &digest, &sig).map_err(|_| {
            crypto(format!(
                "the token's key {} is not the one the certificate (or public key) names",
                self.what
            ))
        })?;
        Ok((sig, sign::signature_algorithm(&self.spki)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_as_rfc_7512_writes_them() {
        let u = Uri::parse(
            "pkcs11:token=My%20Token;object=db;id=%01%ff?pin-value=12&module-path=/m.so",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("My Token"));
        assert_eq!(u.object.as_deref(), Some("db"));
        assert_eq!(u.id, Some(vec![1, 0xff]));
        assert_eq!(u.pin_value.as_deref(), Some("12"));
        assert_eq!(u.module_path.as_deref(), Some("/m.so"));
        assert!(Uri::parse("pkcs11:token=t").is_err());
        assert!(Uri::parse("file:x").is_err());
        assert!(is_uri(Path::new("pkcs11:object=a")) && !is_uri(Path::new("db.key")));
    }
}
