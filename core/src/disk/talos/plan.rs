//! The partition plan of a Talos `metal` image: which partitions, in which order,
//! with which sizes, names, type GUIDs, attributes and GUIDs, on how large a disk
//! (pkg/machinery/imager/quirks/partitions.go, pkg/imager/profile/output.go,
//! go-blockdevice partitioning/gpt).

use crate::disk::gpt::{self, GptOptions, GptPartition, ATTR_LEGACY_BIOS_BOOTABLE};
use crate::disk::guid::label_guid;
use crate::error::{Error, Result};
use crate::guid::Guid;

const MIB: u64 = 1 << 20;

/// The image disk's GUID is derived from this label (Talos 1.13+).
pub const DISK_GUID_LABEL: &str = "talos-image-disk";

/// Which boot loaders the image carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bootloader {
    /// systemd-boot on the ESP for UEFI, GRUB in BIOS and BOOT for legacy BIOS.
    DualBoot,
    /// systemd-boot and the UKI on the ESP, nothing else.
    SdBoot,
    /// GRUB for both: a GRUB EFI binary on a small ESP, GRUB i386-pc in BIOS.
    Grub,
}

impl Bootloader {
    pub const NAMES: &'static [&'static str] = &["dual-boot", "sd-boot", "grub"];

    pub fn parse(s: &str) -> Result<Bootloader> {
        Ok(match s {
            "dual-boot" => Bootloader::DualBoot,
            "sd-boot" => Bootloader::SdBoot,
            "grub" => Bootloader::Grub,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown Talos bootloader {s:?}: use one of {}",
                    Bootloader::NAMES.join(", ")
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Bootloader::DualBoot => "dual-boot",
            Bootloader::SdBoot => "sd-boot",
            Bootloader::Grub => "grub",
        }
    }

    /// What Talos's imager picks (`selectBootloader`): sd-boot for Secure Boot and
    /// for arm64, dual-boot for amd64 otherwise.
    pub fn default_for(arch: Arch, secure_boot: bool) -> Bootloader {
        match (arch, secure_boot) {
            (_, true) | (Arch::Arm64, false) => Bootloader::SdBoot,
            (Arch::Amd64, false) => Bootloader::DualBoot,
        }
    }

    /// `asked`, or the default; refused where Talos refuses or overrides it: dual-boot
    /// on arm64 (bootloader/dual), and anything but sd-boot with Secure Boot.
    pub fn choose(asked: Option<Bootloader>, arch: Arch, secure_boot: bool) -> Result<Bootloader> {
        let b = asked.unwrap_or_else(|| Bootloader::default_for(arch, secure_boot));
        if secure_boot && b != Bootloader::SdBoot {
            return Err(Error::invalid(format!(
                "Talos Secure Boot images boot through sd-boot, not {}",
                b.name()
            )));
        }
        if arch == Arch::Arm64 && b == Bootloader::DualBoot {
            return Err(Error::invalid(
                "dual-boot is for amd64 only: arm64 has no BIOS (use sd-boot or grub)",
            ));
        }
        Ok(b)
    }

    /// Whether the image has the BIOS and BOOT partitions (GRUB's).
    pub fn has_grub(self) -> bool {
        self != Bootloader::SdBoot
    }
}

/// The machines Talos builds images for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// From a PE machine type (the UKI's).
    pub fn from_machine(machine: u16) -> Option<Arch> {
        match machine {
            0x8664 => Some(Arch::Amd64),
            0xaa64 => Some(Arch::Arm64),
            _ => None,
        }
    }
}

/// The Talos release whose size table an image follows (only major.minor matter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct TalosVersion {
    pub major: u32,
    pub minor: u32,
}

impl TalosVersion {
    /// The newest release these tables were checked against, and the default.
    pub const NEWEST: TalosVersion = TalosVersion {
        major: 1,
        minor: 14,
    };
    /// The first release with sd-boot, dual-boot and one UKI per image.
    pub const OLDEST: TalosVersion = TalosVersion {
        major: 1,
        minor: 10,
    };
    /// BOOT grew from 1000 to 2000 MiB here (quirks `minTalosVersionBoot2G`).
    const BOOT_2G: TalosVersion = TalosVersion {
        major: 1,
        minor: 11,
    };

    /// `X.Y`, also `vX.Y` and `X.Y.Z` (the patch level is ignored).
    pub fn parse(s: &str) -> Result<TalosVersion> {
        let bad = || {
            Error::invalid(format!(
                "Talos version {s:?}: use X.Y (e.g. {}.{})",
                Self::NEWEST.major,
                Self::NEWEST.minor
            ))
        };
        let mut parts = s.trim().trim_start_matches('v').split('.');
        let mut num = || -> Result<u32> {
            parts
                .next()
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
                .ok_or_else(bad)
        };
        let v = TalosVersion {
            major: num()?,
            minor: num()?,
        };
        if v < Self::OLDEST {
            return Err(Error::invalid(format!(
                "Talos {}.{} images predate one UKI per image: use {}.{} or later",
                v.major,
                v.minor,
                Self::OLDEST.major,
                Self::OLDEST.minor
            )));
        }
        Ok(v)
    }

    /// BOOT's size (quirks `PartitionSizes`).
    pub fn boot_size(self) -> u64 {
        if self < Self::BOOT_2G {
            1000 * MIB
        } else {
            2000 * MIB
        }
    }
}

impl Default for TalosVersion {
    fn default() -> Self {
        Self::NEWEST
    }
}

/// The sizes of one image (quirks `PartitionSizes`, profile `FillDefaults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sizes {
    esp: u64,
    bios: u64,
    boot: u64,
    meta: u64,
    disk: u64,
}

impl Sizes {
    fn of(bootloader: Bootloader, version: TalosVersion) -> Sizes {
        // A few GiB at most: the saturating sums below never saturate.
        let boot = version.boot_size();
        let bios = MIB;
        let grub_esp = 100 * MIB;
        // With sd-boot the ESP holds everything GRUB's three partitions would.
        let esp = match bootloader {
            Bootloader::Grub => grub_esp,
            Bootloader::DualBoot | Bootloader::SdBoot => {
                grub_esp.saturating_add(bios).saturating_add(boot)
            }
        };
        // MinRAWDiskSize (1246 MiB), plus BOOT's growth past 1000 MiB, plus BIOS and
        // BOOT again for dual-boot.
        let mut disk = (1246 * MIB).saturating_add(boot.saturating_sub(1000 * MIB));
        if bootloader == Bootloader::DualBoot {
            disk = disk.saturating_add(bios).saturating_add(boot);
        }
        Sizes {
            esp,
            bios,
            boot,
            meta: MIB,
            disk,
        }
    }
}

/// A planned image: the disk and its GPT, ready for [`gpt::write_with`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TalosPlan {
    pub bootloader: Bootloader,
    pub version: TalosVersion,
    pub sector_size: u64,
    pub disk_size: u64,
    pub disk_guid: Guid,
    /// 1 MiB in sectors, as go-blockdevice aligns it (not the GPT minimum of 34).
    pub first_usable_lba: u64,
    /// In GPT order: EFI, then BIOS and BOOT (GRUB), then META.
    #[serde(skip)]
    pub partitions: Vec<GptPartition>,
}

impl TalosPlan {
    /// The partition named `name` and its GPT number (from 1).
    pub fn partition(&self, name: &str) -> Option<(usize, &GptPartition)> {
        (1usize..)
            .zip(&self.partitions)
            .find(|(_, p)| p.name == name)
    }

    /// Byte offset and length of the partition named `name`.
    pub fn span(&self, name: &str) -> Option<(u64, u64)> {
        let (_, p) = self.partition(name)?;
        let offset = p.first_lba.checked_mul(self.sector_size)?;
        let len = p
            .last_lba
            .checked_sub(p.first_lba)?
            .checked_add(1)?
            .checked_mul(self.sector_size)?;
        Some((offset, len))
    }

    /// The GPT options Talos's writer implies, with `boot_code` (GRUB's boot.img) in
    /// the MBR for images that boot from BIOS.
    pub fn gpt_options<'b>(&self, boot_code: Option<&'b [u8; 446]>) -> GptOptions<'b> {
        GptOptions {
            first_usable_lba: Some(self.first_usable_lba),
            boot_code,
        }
    }
}

/// Plan the image Talos `version` makes with `bootloader` on `sector_size`-byte
/// sectors (512, or 4096 for `metal-4k`).
pub fn plan(bootloader: Bootloader, version: TalosVersion, sector_size: u64) -> Result<TalosPlan> {
    let per_sector = gpt::sector_size(sector_size)?;
    let sector = per_sector.get();
    let sizes = Sizes::of(bootloader, version);
    let esp = Guid::parse(gpt::types::ESP)?;
    let bios = Guid::parse(gpt::types::BIOS_BOOT)?;
    let linux = Guid::parse(gpt::types::LINUX_DATA)?;
    let mut layout = vec![(super::ESP_LABEL, esp, sizes.esp, 0)];
    if bootloader.has_grub() {
        layout.push(("BIOS", bios, sizes.bios, ATTR_LEGACY_BIOS_BOOTABLE));
        layout.push((super::BOOT_LABEL, linux, sizes.boot, 0));
    }
    layout.push(("META", linux, sizes.meta, 0));
    // Sizes are whole MiB and sectors divide a MiB: each partition starts where the
    // last one ended, on a 1 MiB boundary. Small fixed numbers: nothing saturates.
    let first_usable_lba = MIB / per_sector;
    let mut lba = first_usable_lba;
    let partitions = layout
        .into_iter()
        .map(|(name, type_guid, size, attributes)| {
            let first_lba = lba;
            lba = lba.saturating_add(size / per_sector);
            GptPartition {
                name: name.into(),
                type_guid,
                unique_guid: label_guid(name),
                first_lba,
                last_lba: lba.saturating_sub(1),
                attributes,
            }
        })
        .collect();
    Ok(TalosPlan {
        bootloader,
        version,
        sector_size: sector,
        disk_size: sizes.disk,
        disk_guid: label_guid(DISK_GUID_LABEL),
        first_usable_lba,
        partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::sparse::DiskImage;

    fn spans(p: &TalosPlan) -> Vec<(&str, u64, u64)> {
        p.partitions
            .iter()
            .map(|e| (e.name.as_str(), e.first_lba, e.last_lba))
            .collect()
    }

    #[test]
    fn lbas_and_sizes_match_talos_1_11_and_later() {
        let v = TalosVersion::parse("1.11").unwrap();
        let p = plan(Bootloader::DualBoot, v, 512).unwrap();
        assert_eq!(p.disk_size, 4247 * MIB);
        assert_eq!(p.disk_size, 4_453_302_272);
        assert_eq!(
            spans(&p),
            [
                ("EFI", 2048, 4_304_895),
                ("BIOS", 4_304_896, 4_306_943),
                ("BOOT", 4_306_944, 8_402_943),
                ("META", 8_402_944, 8_404_991)
            ]
        );
        let p = plan(Bootloader::SdBoot, v, 512).unwrap();
        assert_eq!(p.disk_size, 2246 * MIB);
        assert_eq!(
            spans(&p),
            [("EFI", 2048, 4_304_895), ("META", 4_304_896, 4_306_943)]
        );
        let p = plan(Bootloader::Grub, v, 512).unwrap();
        assert_eq!(p.disk_size, 2246 * MIB);
        assert_eq!(
            spans(&p),
            [
                ("EFI", 2048, 206_847),
                ("BIOS", 206_848, 208_895),
                ("BOOT", 208_896, 4_304_895),
                ("META", 4_304_896, 4_306_943)
            ]
        );
        assert_eq!(plan(Bootloader::Grub, v, 512).unwrap().span("BIOS"), {
            Some((206_848 * 512, MIB))
        });
    }

    #[test]
    fn talos_1_10_has_the_1000_mib_boot() {
        let v = TalosVersion::parse("v1.10.3").unwrap();
        let sizes = |b| {
            let p = plan(b, v, 512).unwrap();
            let esp = p.span("EFI").unwrap().1 / MIB;
            (p.disk_size / MIB, esp)
        };
        assert_eq!(sizes(Bootloader::DualBoot), (2247, 1101));
        assert_eq!(sizes(Bootloader::SdBoot), (1246, 1101));
        assert_eq!(sizes(Bootloader::Grub), (1246, 100));
        assert_eq!(
            plan(Bootloader::Grub, v, 512).unwrap().span("BOOT"),
            Some((102 * MIB, 1000 * MIB))
        );
        // The default is the newest table.
        let p = plan(Bootloader::DualBoot, TalosVersion::default(), 512).unwrap();
        assert_eq!(p.span("EFI").unwrap().1, 2101 * MIB);
    }

    #[test]
    fn four_k_sectors_keep_the_byte_layout() {
        let v = TalosVersion::NEWEST;
        let small = plan(Bootloader::DualBoot, v, 512).unwrap();
        let big = plan(Bootloader::DualBoot, v, 4096).unwrap();
        assert_eq!(big.first_usable_lba, 256);
        assert_eq!(big.partitions[0].first_lba, 256);
        for name in ["EFI", "BIOS", "BOOT", "META"] {
            assert_eq!(small.span(name), big.span(name), "{name}");
        }
        assert_eq!(small.disk_size, big.disk_size);
        assert!(plan(Bootloader::SdBoot, v, 1024).is_err());
    }

    #[test]
    fn names_types_attributes_and_guids() {
        let p = plan(Bootloader::DualBoot, TalosVersion::NEWEST, 512).unwrap();
        let row = |n: &str| {
            let (i, e) = p.partition(n).unwrap();
            (
                i,
                format!("{:x}", e.type_guid),
                e.attributes,
                format!("{:x}", e.unique_guid),
            )
        };
        let linux = "0fc63daf-8483-4772-8e79-3d69d8477de4";
        assert_eq!(
            row("EFI"),
            (
                1,
                "c12a7328-f81f-11d2-ba4b-00a0c93ec93b".into(),
                0,
                "bca5174b-0118-8a6a-af0b-2c6e1585acae".into()
            )
        );
        assert_eq!(
            row("BIOS"),
            (
                2,
                "21686148-6449-6e6f-744e-656564454649".into(),
                4,
                "a2a02ff5-d88d-8e6e-9c95-26b9b6c80bc3".into()
            )
        );
        assert_eq!(
            row("BOOT"),
            (
                3,
                linux.into(),
                0,
                "24c73076-4092-85dd-9d98-686a2dbf6d81".into()
            )
        );
        assert_eq!(
            row("META"),
            (
                4,
                linux.into(),
                0,
                "cf04f137-101e-8ec6-9627-fa3f51cdabb8".into()
            )
        );
        assert_eq!(
            format!("{:x}", p.disk_guid),
            "d92d45b3-cde9-8760-be9f-a2a71fac8d11"
        );
        let sd = plan(Bootloader::SdBoot, TalosVersion::NEWEST, 512).unwrap();
        assert_eq!(sd.partition("META").unwrap().0, 2);
        assert!(sd.partition("BOOT").is_none());
    }

    #[test]
    fn the_gpt_it_writes_has_talos_first_usable_lba_and_boot_code() {
        for sector in [512u64, 4096] {
            let p = plan(Bootloader::DualBoot, TalosVersion::NEWEST, sector).unwrap();
            let mut img = DiskImage::new(p.disk_size);
            let code = [0xfa; 446];
            gpt::write_with(
                &mut img,
                sector,
                p.disk_guid,
                &p.partitions,
                &p.gpt_options(Some(&code)),
            )
            .unwrap();
            let mut head = vec![0u8; 2 * sector as usize];
            img.read_at(0, &mut head);
            assert_eq!(head[..446], code);
            // PMBR entry 1 as go-blockdevice writes it, then 55 AA.
            let last = (p.disk_size / sector - 1) as u32;
            let mut pmbr = vec![0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff, 1, 0, 0, 0];
            pmbr.extend(last.to_le_bytes());
            assert_eq!(head[446..462], pmbr[..]);
            assert_eq!(head[510..512], [0x55, 0xaa]);
            let hdr = &head[sector as usize..];
            assert_eq!(
                u64::from_le_bytes(hdr[40..48].try_into().unwrap()),
                MIB / sector
            );
            // LastUsable = lastLBA - 33 at 512 B (the backup array and header).
            let last_usable = u64::from_le_bytes(hdr[48..56].try_into().unwrap());
            assert_eq!(last_usable, p.disk_size / sector - 1 - 16384 / sector - 1);
            // The entry array (the 4 GiB image itself is never materialised).
            let mut array = vec![0u8; 16384];
            img.read_at(2 * sector, &mut array);
            assert_eq!(crc32fast::hash(&array).to_le_bytes(), hdr[88..92]);
            let entry = |i: usize| &array[128 * i..][..128];
            assert_eq!(entry(1)[48], 4, "BIOS partition: legacy BIOS bootable");
            assert_eq!(entry(3)[56..64], *b"M\0E\0T\0A\0");
            assert!(entry(4).iter().all(|&b| b == 0));
        }
        // A first usable LBA inside the GPT's own sectors is refused.
        let p = plan(Bootloader::SdBoot, TalosVersion::NEWEST, 512).unwrap();
        let o = GptOptions {
            first_usable_lba: Some(33),
            boot_code: None,
        };
        assert!(
            gpt::write_with(&mut DiskImage::new(p.disk_size), 512, p.disk_guid, &[], &o).is_err()
        );
    }

    #[test]
    fn bootloader_choice_follows_talos() {
        use Arch::*;
        use Bootloader::*;
        assert_eq!(Bootloader::choose(None, Amd64, false).unwrap(), DualBoot);
        assert_eq!(Bootloader::choose(None, Amd64, true).unwrap(), SdBoot);
        assert_eq!(Bootloader::choose(None, Arm64, false).unwrap(), SdBoot);
        assert_eq!(Bootloader::choose(Some(Grub), Arm64, false).unwrap(), Grub);
        assert_eq!(
            Bootloader::choose(Some(SdBoot), Amd64, false).unwrap(),
            SdBoot
        );
        assert!(Bootloader::choose(Some(DualBoot), Arm64, false).is_err());
        assert!(Bootloader::choose(Some(Grub), Amd64, true).is_err());
        for n in Bootloader::NAMES {
            assert_eq!(Bootloader::parse(n).unwrap().name(), *n);
        }
        assert!(Bootloader::parse("lilo").is_err());
        assert_eq!(Arch::from_machine(0xaa64), Some(Arm64));
        assert_eq!(Arch::from_machine(0x14c), None);
    }

    #[test]
    fn versions_parse() {
        assert_eq!(
            TalosVersion::parse("1.13").unwrap(),
            TalosVersion {
                major: 1,
                minor: 13
            }
        );
        assert_eq!(TalosVersion::parse("v1.12.4").unwrap().minor, 12);
        assert_eq!(TalosVersion::parse("2.0").unwrap().boot_size(), 2000 * MIB);
        for bad in ["1.9", "1", "", "x.y", "1.-1", "1.99999999999"] {
            assert!(TalosVersion::parse(bad).is_err(), "{bad}");
        }
    }
}
