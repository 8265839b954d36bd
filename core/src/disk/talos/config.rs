//! The text files and names of a Talos image: BOOT's grub.cfg (bootloader/grub
//! encode.go and quote.go), the ESP's loader.conf and the UKI's file name
//! (bootloader/sdboot).

use crate::bytes;
use crate::error::{Error, Result};
use crate::pe::PeFile;
use crate::uki::osrel;

/// Where the kernel and initramfs cut from the UKI go on BOOT.
pub const KERNEL_PATH: &str = "A/vmlinuz";
pub const INITRAMFS_PATH: &str = "A/initramfs.xz";
/// grub.cfg on BOOT; the i386-pc core.img's prefix points at its directory.
pub const GRUB_CFG_PATH: &str = "grub/grub.cfg";
/// What the Reset entry adds to the command line.
const WIPE_ARG: &str = "talos.experimental.wipe=system:EPHEMERAL,STATE";

/// Escape what GRUB's script language treats specially, as Talos's `Quote` does:
/// each of `\ { } & $ | ; < > "` gets a backslash; spaces stay word breaks.
pub fn grub_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\{}&$|;<>\"".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// BOOT's grub.cfg for an image: entry A booting `A/vmlinuz` and `A/initramfs.xz`
/// with `cmdline`, and the Reset entry, byte for byte as Talos's encoder writes them.
/// `version` names the entry (`A - Talos v1.11.0`).
pub fn grub_cfg(version: &str, cmdline: &str) -> Result<String> {
    check_version(version)?;
    let name = format!("A - Talos {version}");
    let cmdline = grub_quote(cmdline);
    let entry = |title: &str, extra: &str| {
        format!(
            "menuentry \"{title}\" {{\n  set gfxmode=auto\n  set gfxpayload=text\n  \
             linux /{KERNEL_PATH} {cmdline}{extra}\n  initrd /{INITRAMFS_PATH}\n}}\n"
        )
    };
    Ok(format!(
        "set default=\"{name}\"\n\nset timeout=3\n\ninsmod all_video\n\n\
         terminal_input console\nterminal_output console\n\n{}{}",
        entry(&name, ""),
        entry(
            "Reset Talos installation and return to maintenance mode",
            &format!(" {WIPE_ARG}")
        ),
    ))
}

/// systemd-boot's `secure-boot-enroll` modes (loader.conf(5)) that Talos writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecureBootEnroll {
    IfSafe,
    Manual,
    Force,
}

impl SecureBootEnroll {
    /// `if-safe`, `manual`, `force`; `off` is None: no line and no keys.
    pub fn parse(s: &str) -> Result<Option<SecureBootEnroll>> {
        Ok(Some(match s {
            "if-safe" => SecureBootEnroll::IfSafe,
            "manual" => SecureBootEnroll::Manual,
            "force" => SecureBootEnroll::Force,
            "off" => return Ok(None),
            _ => {
                return Err(Error::invalid(format!(
                    "secure-boot-enroll {s:?}: use if-safe, manual, force or off"
                )))
            }
        }))
    }

    pub fn name(self) -> &'static str {
        match self {
            SecureBootEnroll::IfSafe => "if-safe",
            SecureBootEnroll::Manual => "manual",
            SecureBootEnroll::Force => "force",
        }
    }
}

/// The ESP's `loader/loader.conf`, as Talos writes it; images that enrol Secure
/// Boot keys add the `secure-boot-enroll` line.
pub fn loader_conf(enroll: Option<SecureBootEnroll>) -> String {
    let mut conf = String::from("# systemd-boot configuration\n\ntimeout 10\n");
    if let Some(e) = enroll {
        conf.push_str(&format!("\nsecure-boot-enroll {}\n", e.name()));
    }
    conf
}

/// The removable-media path of systemd-boot (or GRUB) on a Talos ESP, with Talos's
/// lower-case directory and extension.
pub fn boot_file_path(arch: super::Arch) -> &'static str {
    match arch {
        super::Arch::Amd64 => "EFI/boot/BOOTX64.efi",
        super::Arch::Arm64 => "EFI/boot/BOOTAA64.efi",
    }
}

/// The UKI's path on the ESP: `EFI/Linux/Talos-<version>.efi`, the name Talos's
/// sd-boot code globs for (`Talos-*.efi`).
pub fn uki_path(version: &str) -> Result<String> {
    check_version(version)?;
    Ok(format!("EFI/Linux/Talos-{version}.efi"))
}

/// The release a UKI carries: VERSION_ID of its `.osrel` (`v1.11.0` in Talos's).
pub fn version_id(uki: &[u8]) -> Result<String> {
    let pe = PeFile::parse(uki)?;
    let text = pe.section_payload(".osrel").ok_or_else(|| {
        Error::NotFound(
            "section .osrel in the UKI (its VERSION_ID names a Talos UKI; --entry-name gives one)"
                .into(),
        )
    })??;
    let (release, _) = osrel::parse(&bytes::text(text));
    let v = release.get("VERSION_ID").ok_or_else(|| {
        Error::NotFound("VERSION_ID in the UKI's .osrel (--entry-name gives one)".into())
    })?;
    check_version(v)?;
    Ok(v.to_string())
}

/// A version names a file and a quoted GRUB menu entry: keep it to characters that
/// need no escaping in either.
fn check_version(v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+~-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Talos version {v:?}: up to 64 characters from A-Z a-z 0-9 . _ + ~ -"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::layout::test_pe;

    #[test]
    fn grub_cfg_is_talos_byte_for_byte() {
        let cfg = grub_cfg(
            "v1.11.0",
            r#"console=ttyS0 talos.platform=metal a="b c" $x;{}&|<>\"#,
        )
        .unwrap();
        let cmd = r#"console=ttyS0 talos.platform=metal a=\"b c\" \$x\;\{\}\&\|\<\>\\"#;
        let want = format!(
            r#"set default="A - Talos v1.11.0"

set timeout=3

insmod all_video

terminal_input console
terminal_output console

menuentry "A - Talos v1.11.0" {{
  set gfxmode=auto
  set gfxpayload=text
  linux /A/vmlinuz {cmd}
  initrd /A/initramfs.xz
}}
menuentry "Reset Talos installation and return to maintenance mode" {{
  set gfxmode=auto
  set gfxpayload=text
  linux /A/vmlinuz {cmd} talos.experimental.wipe=system:EPHEMERAL,STATE
  initrd /A/initramfs.xz
}}
"#
        );
        assert_eq!(cfg, want);
        // Talos's parse rules: one default, entries `A - ...` and `Reset ...`, each
        // with one linux and one initrd line.
        assert_eq!(cfg.matches("set default=").count(), 1);
        assert_eq!(cfg.matches("\n  linux ").count(), 2);
        assert_eq!(cfg.matches("\n  initrd ").count(), 2);
        assert!(grub_cfg("v1\"", "x").is_err());
    }

    #[test]
    fn loader_conf_and_names() {
        assert_eq!(
            loader_conf(None),
            "# systemd-boot configuration\n\ntimeout 10\n"
        );
        assert_eq!(
            loader_conf(SecureBootEnroll::parse("if-safe").unwrap()),
            "# systemd-boot configuration\n\ntimeout 10\n\nsecure-boot-enroll if-safe\n"
        );
        assert_eq!(SecureBootEnroll::parse("off").unwrap(), None);
        assert!(SecureBootEnroll::parse("maybe").is_err());
        assert_eq!(uki_path("v1.11.0").unwrap(), "EFI/Linux/Talos-v1.11.0.efi");
        assert!(uki_path("../x").is_err());
        assert!(uki_path("").is_err());
        assert_eq!(
            boot_file_path(super::super::Arch::Arm64),
            "EFI/boot/BOOTAA64.efi"
        );
    }

    #[test]
    fn version_comes_from_osrel() {
        let osrel =
            b"NAME=\"Talos\"\nID=talos\nVERSION_ID=v1.11.0\nPRETTY_NAME=\"Talos (v1.11.0)\"\n";
        let uki = test_pe(0x8664, &[(".osrel", osrel), (".linux", b"k")]);
        assert_eq!(version_id(&uki).unwrap(), "v1.11.0");
        let none = test_pe(0x8664, &[(".osrel", b"ID=talos\n")]);
        assert!(version_id(&none)
            .unwrap_err()
            .to_string()
            .contains("VERSION_ID"));
        let bad = test_pe(0x8664, &[(".osrel", b"VERSION_ID=\"a b\"\n")]);
        assert!(version_id(&bad).is_err());
        assert!(version_id(&test_pe(0x8664, &[(".text", b"x")])).is_err());
        assert!(version_id(b"MZ").is_err());
    }
}
