//! ukify's configuration file (`ukify build --config FILE`, ukify(1) "CONFIGURATION
//! SETTINGS"): an INI file read by Python's configparser with `#` comments (also
//! after a value, following whitespace), `=` only, indented continuation lines and
//! no interpolation. `[UKI]` holds the image's inputs; each `[PCRSignature:NAME]`
//! one PCR signing key pair with its boot phases.
//!
//! [`parse`] reads the settings ukitool has options for; the CLI applies them as
//! ukify does: a value given on the command line wins, lists (Initrd, Firmware,
//! DeviceTreeAuto, SBAT) come before the command line's, and the key pairs after.

use crate::error::{Error, Result};

/// The `[UKI]` keys and the ukitool option each one sets.
pub const UKI_KEYS: [(&str, &str); 19] = [
    ("Linux", "--linux"),
    ("OSRelease", "--os-release"),
    ("Cmdline", "--cmdline"),
    ("Initrd", "--initrd"),
    ("Firmware", "--efifw"),
    ("Microcode", "--ucode"),
    ("Splash", "--splash"),
    ("DeviceTree", "--devicetree"),
    ("DeviceTreeAuto", "--devicetree-auto"),
    ("HWIDs", "--hwids"),
    ("Uname", "--uname"),
    ("SBAT", "--sbat"),
    ("PCRPKey", "--pcrpkey"),
    ("Profile", "--profile"),
    ("PCRSig", "--pcrsig"),
    ("Stub", "--stub"),
    ("PCRBanks", "--pcr-bank"),
    ("SecureBootPrivateKey", "--key"),
    ("SecureBootCertificate", "--cert"),
];

/// ukify keys that do not change what ukitool builds (target guessing, the signing
/// tool's name, `genkey` settings): read and ignored.
pub const IGNORED_KEYS: [&str; 4] = [
    "EFIArch",
    "SecureBootSigningTool",
    "SecureBootCertificateCommonName",
    "SecureBootCertificateValidity",
];

/// One `[PCRSignature:NAME]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcrKeyConfig {
    pub name: String,
    pub private_key: Option<String>,
    pub public_key: Option<String>,
    /// `Phases=`, split as ukify splits it.
    pub phases: Option<Vec<String>>,
}

/// The settings of a config file, by ukitool option.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `(option, value)` for the single-valued `[UKI]` keys, e.g. `("--linux", path)`.
    pub values: Vec<(&'static str, String)>,
    /// `(option, values)` for Initrd, DeviceTreeAuto (whitespace-separated lists),
    /// Firmware and SBAT.
    pub lists: Vec<(&'static str, Vec<String>)>,
    pub pcr_keys: Vec<PcrKeyConfig>,
    /// Settings read but not applied, one line each (for a warning).
    pub ignored: Vec<String>,
}

impl Config {
    /// The value of a single-valued option, if the file sets it.
    pub fn value(&self, option: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(o, _)| *o == option)
            .map(|(_, v)| v.as_str())
    }

    /// The values of a list option (empty when the file has none).
    pub fn list(&self, option: &str) -> &[String] {
        self.lists
            .iter()
            .find(|(o, _)| *o == option)
            .map_or(&[], |(_, v)| v.as_slice())
    }
}

/// ukify's `parse_banks`: comma- or whitespace-separated, one trailing comma allowed.
pub fn parse_banks(s: &str) -> Result<Vec<String>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let list = split_list(s);
    if list.iter().any(String::is_empty) {
        return Err(Error::invalid(format!(
            "empty entry in PCR bank list {s:?}"
        )));
    }
    Ok(list)
}

/// Boot phases ukify accepts in a phase path.
pub const KNOWN_PHASES: [&str; 6] = [
    "enter-initrd",
    "leave-initrd",
    "sysinit",
    "ready",
    "shutdown",
    "final",
];

/// ukify's `parse_phase_paths`: phase paths separated by commas or whitespace, each
/// a `:`-separated list of known phases.
pub fn parse_phase_paths(s: &str) -> Result<Vec<String>> {
    let paths = split_list(s.trim());
    for path in &paths {
        if let Some(bad) = path.split(':').find(|p| !KNOWN_PHASES.contains(p)) {
            return Err(Error::invalid(format!(
                "unknown boot phase {bad:?} in {path:?} (known: {})",
                KNOWN_PHASES.join(", ")
            )));
        }
    }
    Ok(paths)
}

/// `re.split(r'\s*,\s*|\s+', s.removesuffix(',').rstrip())`.
fn split_list(s: &str) -> Vec<String> {
    let s = s.strip_suffix(',').unwrap_or(s).trim_end();
    s.split(',')
        .flat_map(|part| {
            let part = part.trim();
            if part.is_empty() {
                vec![String::new()]
            } else {
                part.split_whitespace().map(str::to_string).collect()
            }
        })
        .collect()
}

/// `(section, key, value)` in file order, as configparser reads them.
fn ini_entries(text: &str) -> Result<Vec<(String, String, String)>> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut section: Option<String> = None;
    // The entry a continuation line extends, while it may be extended.
    let mut open: Option<usize> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        let lineno = n.saturating_add(1);
        if line.trim().is_empty() {
            open = None;
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if let (true, Some(i)) = (indented, open) {
            if let Some(e) = out.get_mut(i) {
                e.2.push('\n');
                e.2.push_str(line.trim());
            }
            continue;
        }
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = Some(name.to_string());
            open = None;
            continue;
        }
        let Some(sec) = &section else {
            return Err(Error::invalid(format!(
                "config line {lineno}: a setting before any [section]"
            )));
        };
        let (key, value) = t
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("config line {lineno}: expected KEY = VALUE")))?;
        out.push((
            sec.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
        ));
        open = Some(out.len().saturating_sub(1));
    }
    Ok(out)
}

/// A line without its comment: whole-line `#` comments, and `#` after whitespace.
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    let mut prev_space = false;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return line.get(..i).unwrap_or(line);
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Read a ukify config file.
pub fn parse(text: &str) -> Result<Config> {
    let mut c = Config::default();
    for (section, key, value) in ini_entries(text)? {
        if let Some(name) = section.strip_prefix("PCRSignature:") {
            if name.is_empty() || name.contains(':') {
                return Err(Error::invalid(format!("bad section name [{section}]")));
            }
            pcr_key(&mut c, name, &key, value)?;
        } else if section == "UKI" {
            uki_key(&mut c, &key, value)?;
        } else {
            c.ignored
                .push(format!("unknown config setting [{section}] {key}="));
        }
    }
    Ok(c)
}

fn uki_key(c: &mut Config, key: &str, value: String) -> Result<()> {
    if IGNORED_KEYS.contains(&key) {
        c.ignored
            .push(format!("[UKI] {key}= has no effect on ukitool"));
        return Ok(());
    }
    let Some((_, option)) = UKI_KEYS.iter().find(|(k, _)| *k == key) else {
        c.ignored.push(format!(
            "unknown or unsupported config setting [UKI] {key}="
        ));
        return Ok(());
    };
    let items = match key {
        "Initrd" | "DeviceTreeAuto" => Some(value.split_whitespace().map(str::to_string).collect()),
        "Firmware" | "SBAT" => Some(vec![value.clone()]),
        "PCRBanks" => Some(parse_banks(&value)?),
        _ => None,
    };
    match items {
        // A repeated key: configparser (strict=False) keeps the last value.
        Some(list) => {
            c.lists.retain(|(o, _)| o != option);
            c.lists.push((option, list));
        }
        None => {
            // ukify normalises the whitespace of a literal command line.
            let value = if key == "Cmdline" && !value.starts_with('@') {
                value.split_whitespace().collect::<Vec<_>>().join(" ")
            } else {
                value
            };
            c.values.retain(|(o, _)| o != option);
            c.values.push((option, value));
        }
    }
    Ok(())
}

fn pcr_key(c: &mut Config, name: &str, key: &str, value: String) -> Result<()> {
    let i = match c.pcr_keys.iter().position(|k| k.name == name) {
        Some(i) => i,
        None => {
            c.pcr_keys.push(PcrKeyConfig {
                name: name.to_string(),
                ..Default::default()
            });
            c.pcr_keys.len().saturating_sub(1)
        }
    };
    let Some(k) = c.pcr_keys.get_mut(i) else {
        return Ok(());
    };
    match key {
        "PCRPrivateKey" => k.private_key = Some(value),
        "PCRPublicKey" => k.public_key = Some(value),
        "Phases" => k.phases = Some(parse_phase_paths(&value)?),
        _ => c.ignored.push(format!(
            "unknown or unsupported config setting [PCRSignature:{name}] {key}="
        )),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ukify_config_as_configparser_does() {
        let c = parse(
            "# a comment\n[UKI]\nLinux = /boot/vmlinuz # inline\nCmdline = quiet\n  rw\nInitrd = a.img  b.img\nSBAT=x#y\nPCRBanks = sha1, sha256,\nEFIArch = x64\nSignKernel = yes\n\n[PCRSignature:initrd]\nPCRPrivateKey = k1.pem\nPhases = enter-initrd\n[PCRSignature:all]\nPCRPrivateKey = k2.pem\nPCRPublicKey = p2.pem\nPhases = enter-initrd,enter-initrd:leave-initrd enter-initrd:leave-initrd:sysinit\n",
        )
        .unwrap();
        assert_eq!(c.value("--linux"), Some("/boot/vmlinuz"));
        assert_eq!(c.value("--cmdline"), Some("quiet rw"));
        assert_eq!(c.list("--initrd"), ["a.img", "b.img"]);
        assert_eq!(c.list("--sbat"), ["x#y"]);
        assert_eq!(c.list("--pcr-bank"), ["sha1", "sha256"]);
        assert_eq!(c.pcr_keys.len(), 2);
        assert_eq!(
            c.pcr_keys[0].phases.as_deref(),
            Some(&["enter-initrd".to_string()][..])
        );
        assert_eq!(c.pcr_keys[1].public_key.as_deref(), Some("p2.pem"));
        assert_eq!(c.pcr_keys[1].phases.as_ref().unwrap().len(), 3);
        assert_eq!(c.ignored.len(), 2, "{:?}", c.ignored);
        assert!(parse("Linux=x\n").is_err());
        assert!(parse("[PCRSignature:a]\nPhases = boot\n").is_err());
        assert!(parse_banks("sha1,,sha256").is_err());
    }
}
