//! An image that enrols its own Secure Boot keys (`image --secure-boot-keys`):
//! systemd-boot and the UKI signed with db, `loader/keys/auto/{PK,KEK,db}.auth`, and
//! the `secure-boot-enroll` line of `loader.conf`.
//!
//! systemd-boot, started in setup mode, finds the `.auth` files and enrols db, KEK
//! and PK (PK last, which ends setup mode), then resets. From then on the firmware
//! runs only what db signed, so systemd-boot and the UKI must already carry a db
//! signature.

use crate::authenticode::{verify, TrustStore, Verdict};
use crate::command::keys::{export, ExportOptions};
use crate::error::{Error, Result};
use crate::keys::KeySet;
use crate::pe::PeFile;
use crate::sign::{sign, SignOptions};

/// `--secure-boot-enroll`'s default, as Talos sets it.
pub const DEFAULT_ENROLL: &str = "if-safe";
/// The first systemd release whose systemd-boot accepts `if-safe`; 252 logs "Error
/// parsing 'secure-boot-enroll' config option: if-safe" and does not enrol.
pub const IF_SAFE_SINCE: u32 = 253;

/// What systemd-boot does with `loader/keys/auto` (loader.conf(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnrollMode {
    /// No enrolment, not even a menu entry.
    Off,
    /// A menu entry enrols the keys when chosen.
    Manual,
    /// Automatic enrolment where it is safe (in a virtual machine); systemd 253+.
    IfSafe,
    /// Automatic enrolment whenever the firmware is in setup mode.
    Force,
}

impl EnrollMode {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "off" => EnrollMode::Off,
            "manual" => EnrollMode::Manual,
            "if-safe" => EnrollMode::IfSafe,
            "force" => EnrollMode::Force,
            other => {
                return Err(Error::invalid(format!(
                    "secure-boot-enroll {other:?}: expected off, manual, if-safe or force"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            EnrollMode::Off => "off",
            EnrollMode::Manual => "manual",
            EnrollMode::IfSafe => "if-safe",
            EnrollMode::Force => "force",
        }
    }
}

/// systemd-boot's version from its `.sdmagic` section (`#### LoaderInfo:
/// systemd-boot 252.39-1~deb12u2 ####`): the major number.
pub fn systemd_boot_version(sdboot: &[u8]) -> Option<u32> {
    let pe = PeFile::parse(sdboot).ok()?;
    let magic = pe.section_payload(".sdmagic")?.ok()?;
    let text = String::from_utf8_lossy(magic);
    let rest = text.split("systemd-boot ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The mode to write for `requested` (`None`: the default, if-safe) with this
/// systemd-boot: if-safe asked for explicitly from a systemd-boot that predates it
/// is refused; the default falls back to `manual` there, with a note saying so.
pub fn enroll_mode(
    requested: Option<EnrollMode>,
    sdboot: &[u8],
) -> Result<(EnrollMode, Option<String>)> {
    let mode = requested.unwrap_or(EnrollMode::IfSafe);
    let version = systemd_boot_version(sdboot);
    match (mode, version) {
        (EnrollMode::IfSafe, Some(v)) if v < IF_SAFE_SINCE => {
            if requested.is_some() {
                return Err(Error::invalid(format!(
                    "systemd-boot {v} does not accept secure-boot-enroll if-safe ({IF_SAFE_SINCE} and later do): use force or manual"
                )));
            }
            Ok((
                EnrollMode::Manual,
                Some(format!(
                    "systemd-boot {v} has no if-safe (since {IF_SAFE_SINCE}): secure-boot-enroll manual; use --secure-boot-enroll force to enrol unattended"
                )),
            ))
        }
        _ => Ok((mode, None)),
    }
}

/// What a key set changes in an image: signed copies of the binaries (`None`: the
/// input already carries a db signature, and is used as it is) and the `.auth` files.
#[derive(Debug, Clone, Default)]
pub struct SecureBootFiles {
    pub uki: Option<Vec<u8>>,
    pub systemd_boot: Option<Vec<u8>>,
    /// (file name, bytes) for `loader/keys/auto/`.
    pub enroll_keys: Vec<(String, Vec<u8>)>,
    /// What was done, one line each, for the summary.
    pub notes: Vec<String>,
}

/// `pe` signed with db, unless a signature in it is already trusted by db. A
/// signature by another key stays, and db's is added after it.
fn signed_with_db(pe_bytes: &[u8], keys: &KeySet, what: &str) -> Result<(Option<Vec<u8>>, String)> {
    let pe = PeFile::parse(pe_bytes)
        .map_err(|e| Error::invalid(format!("the {what} is not a PE image: {e}")))?;
    let mut trust = TrustStore::default();
    trust.add_cert_file(&keys.db.cert)?;
    let report = verify(&pe, &trust);
    if report.verdict == Verdict::ValidTrusted {
        return Ok((None, format!("{what}: already signed by db")));
    }
    let append = pe.certificate_table().is_some();
    let opts = SignOptions {
        key: &keys.db.key,
        cert: &keys.db.cert,
        chain: Vec::new(),
        append,
        signing_time: None,
    };
    let signed = sign(pe_bytes, &opts)
        .map_err(|e| Error::invalid(format!("signing the {what} with db: {e}")))?;
    let how = if append {
        "db signature added to its own"
    } else {
        "signed by db"
    };
    Ok((Some(signed), format!("{what}: {how}")))
}

/// Sign `uki` and `systemd_boot` with db as needed, and export PK, KEK and db as
/// `.auth` files timestamped `timestamp` (the `.esl` files are not needed on the ESP).
pub fn prepare(
    uki: &[u8],
    systemd_boot: Option<&[u8]>,
    keys: &KeySet,
    timestamp: u64,
) -> Result<SecureBootFiles> {
    let mut out = SecureBootFiles::default();
    let (u, note) = signed_with_db(uki, keys, "UKI")?;
    out.uki = u;
    out.notes.push(note);
    if let Some(sd) = systemd_boot {
        let (s, note) = signed_with_db(sd, keys, "systemd-boot")?;
        out.systemd_boot = s;
        out.notes.push(note);
    }
    let (files, _) = export(
        keys,
        &ExportOptions {
            timestamp,
            ..Default::default()
        },
    )?;
    out.enroll_keys = files
        .into_iter()
        .filter(|(n, _)| n.ends_with(".auth"))
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_if_safe_needs_systemd_253() {
        for m in ["off", "manual", "if-safe", "force"] {
            assert_eq!(EnrollMode::parse(m).unwrap().name(), m);
        }
        assert!(EnrollMode::parse("yes").is_err());
        // Not a PE: no version known, the mode is kept.
        assert_eq!(enroll_mode(None, b"").unwrap(), (EnrollMode::IfSafe, None));
    }
}
