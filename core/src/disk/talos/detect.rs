//! Recognising a Talos disk for `inspect`, as Talos's bootloader probe does
//! (bootloader/bootloader.go): GRUB when BOOT is XFS with `grub/grub.cfg`, sd-boot when
//! the EFI partition's FAT holds `EFI/Linux/Talos-*.efi`; both make a dual-boot disk.

use super::Bootloader;
use crate::bytes;

/// A Talos disk's facts, for `inspect` (text and `--json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TalosDisk {
    pub bootloader: Bootloader,
    /// The version in the UKI's name, else in grub.cfg's default entry.
    pub version: Option<String>,
    /// The UKI on the ESP (`EFI/Linux/Talos-<version>.efi`).
    pub uki: Option<String>,
    /// BOOT's grub.cfg: `set default`, and each menu entry.
    pub grub_default: Option<String>,
    pub grub_entries: Vec<GrubEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrubEntry {
    pub name: String,
    /// The `linux` line's path and arguments, and the `initrd` line's path.
    pub linux: Option<String>,
    pub initrd: Option<String>,
}

/// Whether `path` (on the ESP) is a Talos UKI, as Talos's glob `Talos-*.efi` matches.
pub fn is_talos_uki(path: &str) -> bool {
    path.strip_prefix("EFI/Linux/Talos-")
        .is_some_and(|rest| rest.ends_with(".efi") && !rest.contains('/'))
}

/// grub.cfg as Talos's decoder reads it: the quoted `set default`, and each
/// `menuentry "NAME" {` with its `linux` and `initrd` lines.
pub fn parse_grub_cfg(cfg: &[u8]) -> (Option<String>, Vec<GrubEntry>) {
    let text = bytes::text(cfg);
    let quoted = |s: &str| s.trim().trim_matches('"').to_string();
    let mut default = None;
    let mut entries: Vec<GrubEntry> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("set default=") {
            default = Some(quoted(v));
        } else if let Some(rest) = line.strip_prefix("menuentry ") {
            let name = rest.trim_end_matches('{').trim();
            entries.push(GrubEntry {
                name: quoted(name),
                linux: None,
                initrd: None,
            });
        } else if let Some(e) = entries.last_mut() {
            if let Some(v) = line.strip_prefix("linux ") {
                e.linux = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("initrd ") {
                e.initrd = Some(v.to_string());
            }
        }
    }
    (default, entries)
}

/// The Talos facts of a disk with `uki` on its ESP and `grub_cfg` on its XFS BOOT
/// (each when found), and whether it has a BIOS partition; `None` when neither
/// loader is there.
pub fn recognise(
    uki: Option<String>,
    grub_cfg: Option<&[u8]>,
    has_bios: bool,
) -> Option<TalosDisk> {
    let (grub_default, grub_entries) = grub_cfg.map(parse_grub_cfg).unwrap_or_default();
    let bootloader = match (uki.is_some(), grub_cfg.is_some()) {
        (true, true) if has_bios => Bootloader::DualBoot,
        (true, _) => Bootloader::SdBoot,
        (false, true) => Bootloader::Grub,
        (false, false) => return None,
    };
    let version = uki
        .as_deref()
        .and_then(|u| u.strip_prefix("EFI/Linux/Talos-"))
        .and_then(|u| u.strip_suffix(".efi"))
        .map(str::to_string)
        .or_else(|| {
            grub_default
                .as_deref()
                .and_then(|d| d.strip_prefix("A - Talos "))
                .or_else(|| {
                    grub_default
                        .as_deref()
                        .and_then(|d| d.strip_prefix("B - Talos "))
                })
                .map(str::to_string)
        });
    Some(TalosDisk {
        bootloader,
        version,
        uki,
        grub_default,
        grub_entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::talos::config::grub_cfg;

    #[test]
    fn reads_back_what_the_encoder_writes() {
        let cfg = grub_cfg("v1.11.0", "console=ttyS0 a=\"b\"").unwrap();
        let (d, e) = parse_grub_cfg(cfg.as_bytes());
        assert_eq!(d.as_deref(), Some("A - Talos v1.11.0"));
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].name, "A - Talos v1.11.0");
        assert_eq!(e[0].initrd.as_deref(), Some("/A/initramfs.xz"));
        assert!(e[1].name.starts_with("Reset "));
        let t = recognise(None, Some(cfg.as_bytes()), true).unwrap();
        assert_eq!(t.bootloader, Bootloader::Grub);
        assert_eq!(t.version.as_deref(), Some("v1.11.0"));
        let t = recognise(
            Some("EFI/Linux/Talos-v1.12.0.efi".into()),
            Some(cfg.as_bytes()),
            true,
        )
        .unwrap();
        assert_eq!(t.bootloader, Bootloader::DualBoot);
        assert_eq!(t.version.as_deref(), Some("v1.12.0"));
        assert!(recognise(None, None, true).is_none());
        assert!(is_talos_uki("EFI/Linux/Talos-1.0.efi"));
        assert!(!is_talos_uki("EFI/Linux/talos-1.0.efi"));
    }
}
