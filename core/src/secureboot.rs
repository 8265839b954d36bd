//! An image that enrols its own Secure Boot keys (`image --secure-boot-keys`):
//! systemd-boot and the UKI signed with db, `loader/keys/auto/{PK,KEK,db}.auth`
//! ([`SecureBootFiles`], made by `command::image::secure_boot`), and the
//! `secure-boot-enroll` line of `loader.conf` ([`EnrollMode`], by systemd-boot version).
//!
//! systemd-boot, started in setup mode, finds the `.auth` files and enrols db, KEK
//! and PK (PK last, which ends setup mode), then resets. From then on the firmware
//! runs only what db signed, so systemd-boot and the UKI must already carry a db
//! signature.

use crate::error::{Error, Result};
use crate::pe::PeFile;

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
