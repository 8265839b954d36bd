//! Boot layouts: which partitions a disk gets and which files go on its ESP, for a
//! UKI booted directly (`uefi`), through systemd-boot, through GRUB (kernel and
//! initrd extracted from the UKI, as Talos 1.10 does), or with Talos's partitions.

use std::borrow::Cow;
use std::num::NonZeroU64;

use crate::bytes;
use crate::disk::fat::{self, FatOptions, FatType};
use crate::disk::gpt::{self, GptPartition};
use crate::disk::guid;
use crate::disk::sparse::DiskImage;
use crate::disk::talos::{self, image::TalosOptions, image::TalosSummary};
use crate::disk::xfs::{self, XfsItem, XfsOptions};
use crate::error::{Error, Result};
use crate::guid::Guid;
use crate::pe::{raw, PeFile};
use crate::uki;

const MIB: u64 = 1 << 20;
/// The ESP's partition name.
const ESP_NAME: &str = "EFI";

/// The defaults of an image's options, for [`ImageOptions::new`] and for
/// `command::image`, which applies them to what a person gives.
pub const DEFAULT_LAYOUT: &str = "uefi";
pub const DEFAULT_SECTOR_SIZE: u64 = 512;
pub const DEFAULT_LABEL: &str = "EFI";
/// 1980-01-01T00:00:00Z, FAT's epoch: a reproducible default for every FAT timestamp.
pub const DEFAULT_TIMESTAMP: i64 = 315_532_800;
pub const DEFAULT_ENTRY_NAME: &str = "linux";
pub const DEFAULT_TIMEOUT: u32 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Uefi,
    SystemdBoot,
    Grub,
    Talos,
}

impl Layout {
    pub const NAMES: &'static [&'static str] = &["uefi", "systemd-boot", "grub", "talos"];

    pub fn parse(s: &str) -> Result<Layout> {
        Ok(match s {
            "uefi" => Layout::Uefi,
            "systemd-boot" | "sd-boot" => Layout::SystemdBoot,
            "grub" => Layout::Grub,
            "talos" => Layout::Talos,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown layout {s:?}: use one of {}",
                    Layout::NAMES.join(", ")
                )))
            }
        })
    }
}

/// The filesystem an extra partition is formatted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionFs {
    Xfs,
    Fat,
}

/// An extra partition (`--add-partition NAME:SIZE[:TYPE[:FS]]`), unformatted unless
/// it names a filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpec {
    pub name: String,
    pub size: u64,
    pub type_guid: Guid,
    pub attributes: u64,
    /// Overrides the GUID derived from the disk GUID and the name.
    pub unique_guid: Option<Guid>,
    pub fs: Option<PartitionFs>,
}

impl PartitionSpec {
    /// Parse `NAME:SIZE[:TYPE[:FS]]` (TYPE: esp, bios, linux, xbootldr or a GUID;
    /// default linux. FS: xfs or fat; default none).
    pub fn parse(s: &str) -> Result<PartitionSpec> {
        let mut it = s.splitn(4, ':');
        let (Some(name), Some(size)) = (it.next(), it.next()) else {
            return Err(Error::invalid(format!(
                "partition {s:?}: expected NAME:SIZE[:TYPE[:FS]]"
            )));
        };
        if name.is_empty() {
            return Err(Error::invalid(format!("partition {s:?}: empty name")));
        }
        Ok(PartitionSpec {
            name: name.into(),
            size: parse_size(size)?,
            type_guid: gpt::parse_type(it.next().unwrap_or("linux"))?,
            attributes: 0,
            unique_guid: None,
            fs: match it.next() {
                None => None,
                Some("xfs") => Some(PartitionFs::Xfs),
                Some("fat") => Some(PartitionFs::Fat),
                Some(fs) => {
                    return Err(Error::invalid(format!(
                        "partition {s:?}: unknown filesystem {fs:?}: use xfs or fat"
                    )))
                }
            },
        })
    }
}

/// A size in bytes: a number with an optional binary suffix K, M, G, T (also KiB,
/// MiB, ...; `truncate(1)`'s meaning).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => {
            return Err(Error::invalid(format!(
                "size {s:?}: use a number with an optional K, M, G or T suffix"
            )))
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| {
            Error::invalid(format!(
                "size {s:?} is not a number of bytes that fits in 64 bits"
            ))
        })
}

/// Everything an image is made from. Byte inputs are borrowed; the image borrows them.
#[derive(Debug, Clone)]
pub struct ImageOptions<'a> {
    pub layout: Layout,
    pub uki: &'a [u8],
    /// Total disk size; default: the partitions plus 1 MiB at each end.
    pub size: Option<u64>,
    /// ESP size; default: the layout's (Talos) or what the files need, at least 100 MiB.
    pub esp_size: Option<u64>,
    pub sector_size: u64,
    /// The ESP's FAT label; also names the disk (its GUID is derived from it).
    pub label: String,
    pub disk_guid: Option<Guid>,
    /// Unix time for every FAT timestamp.
    pub timestamp: i64,
    pub systemd_boot: Option<&'a [u8]>,
    pub grub: Option<&'a [u8]>,
    pub shim: Option<&'a [u8]>,
    /// Where GRUB reads grub.cfg (e.g. `/EFI/debian`); default: the prefix built into
    /// the GRUB binary, if it has one on the ESP.
    pub grub_prefix: Option<String>,
    /// File name of the UKI under `\EFI\Linux\` (systemd-boot), without `.efi`.
    pub entry_name: String,
    /// `loader.conf` timeout in seconds (systemd-boot) and GRUB's timeout.
    pub timeout: u32,
    /// (file name, bytes) copied to `\loader\keys\auto\` (PK.auth, KEK.auth, db.auth).
    pub enroll_keys: Vec<(String, &'a [u8])>,
    /// `secure-boot-enroll` in `loader.conf` (systemd-boot); none: no line.
    pub secure_boot_enroll: Option<crate::secureboot::EnrollMode>,
    /// (ESP path, bytes) added to the ESP.
    pub extra_files: Vec<(String, Cow<'a, [u8]>)>,
    pub extra_partitions: Vec<PartitionSpec>,
    /// (partition name, path, bytes) added to an extra partition's filesystem.
    pub partition_files: Vec<(String, String, Cow<'a, [u8]>)>,
    /// The talos layout's own options.
    pub talos: TalosOptions<'a>,
}

impl<'a> ImageOptions<'a> {
    pub fn new(layout: Layout, uki: &'a [u8]) -> Self {
        ImageOptions {
            layout,
            uki,
            size: None,
            esp_size: None,
            sector_size: DEFAULT_SECTOR_SIZE,
            label: DEFAULT_LABEL.into(),
            disk_guid: None,
            timestamp: DEFAULT_TIMESTAMP,
            systemd_boot: None,
            grub: None,
            shim: None,
            grub_prefix: None,
            entry_name: DEFAULT_ENTRY_NAME.into(),
            timeout: DEFAULT_TIMEOUT,
            enroll_keys: Vec::new(),
            secure_boot_enroll: None,
            extra_files: Vec::new(),
            extra_partitions: Vec::new(),
            partition_files: Vec::new(),
            talos: TalosOptions::default(),
        }
    }
}

/// What was built, for printing and `--json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageSummary {
    pub layout: Layout,
    pub size: u64,
    pub sector_size: u64,
    pub disk_guid: Guid,
    pub partitions: Vec<PartitionSummary>,
    pub esp: EspSummary,
    /// Bytes of data extents (what a sparse writer writes).
    pub data_bytes: u64,
    /// What the talos layout made (absent for the other layouts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talos: Option<TalosSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionSummary {
    pub index: usize,
    pub name: String,
    pub type_guid: Guid,
    pub type_name: Option<&'static str>,
    pub unique_guid: Guid,
    pub offset: u64,
    pub size: u64,
    pub attributes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EspSummary {
    pub partition: usize,
    pub fat_type: FatType,
    pub label: String,
    pub volume_id: String,
    pub cluster_size: u64,
    pub files: Vec<EspFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EspFile {
    pub path: String,
    pub size: u64,
    /// Byte offset of the file's data in the disk image.
    pub disk_offset: u64,
}

/// The removable-media boot file name for a PE machine (UEFI 2.10 §3.5.1.1).
pub fn removable_boot_name(machine: u16) -> Option<&'static str> {
    Some(match machine {
        0x8664 => "BOOTX64.EFI",
        0xaa64 => "BOOTAA64.EFI",
        0x014c => "BOOTIA32.EFI",
        0x01c2 | 0x01c4 => "BOOTARM.EFI",
        0x5064 => "BOOTRISCV64.EFI",
        0x6264 => "BOOTLOONGARCH64.EFI",
        _ => return None,
    })
}

/// GRUB's built-in prefix: the OBJ_TYPE_PREFIX object of the module info in the
/// `mods` section (grub-mkimage -p), e.g. `/EFI/debian` in Debian's signed GRUB.
pub fn grub_builtin_prefix(grub: &[u8]) -> Option<String> {
    const MAGIC: u32 = 0x676d_696d; // "mimg"
    const OBJ_TYPE_PREFIX: u32 = 3;
    let pe = PeFile::parse(grub).ok()?;
    let mods = pe.section("mods")?.raw_data(grub).ok()?;
    if bytes::u32_le(mods, 0, "module info").ok()? != MAGIC {
        return None;
    }
    let first = bytes::u64_le(mods, 8, "module info").ok()?;
    let total = bytes::u64_le(mods, 16, "module info")
        .ok()?
        .min(mods.len() as u64);
    let mut at = first;
    // Each object is at least its 8-byte header, so the walk ends.
    while at.checked_add(8)? <= total {
        let kind = bytes::u32_le(mods, at, "module header").ok()?;
        let size = u64::from(bytes::u32_le(mods, at.checked_add(4)?, "module header").ok()?);
        let body_len = size.checked_sub(8)?;
        if kind == OBJ_TYPE_PREFIX {
            let body = bytes::slice(mods, at.checked_add(8)?, body_len, "prefix").ok()?;
            return Some(bytes::text(
                body.split(|&b| b == 0).next().unwrap_or_default(),
            ));
        }
        at = at.checked_add(size)?;
    }
    None
}

/// Escape a kernel command line for a GRUB `linux` line: words stay words, and every
/// character GRUB's script language treats specially is backslash-escaped.
fn grub_escape(cmdline: &str) -> String {
    cmdline
        .split_whitespace()
        .map(|w| {
            w.chars()
                .flat_map(|c| {
                    let plain = c.is_ascii_alphanumeric() || "-_=.,/:+@%^~".contains(c);
                    (!plain)
                        .then_some('\\')
                        .into_iter()
                        .chain(std::iter::once(c))
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the grub layout puts the UKI's `.dtb`: next to the kernel.
pub const GRUB_DTB: &str = "A/devicetree.dtb";

/// Does GRUB for `machine` have the `devicetree` command? It lives in GRUB's
/// loader/efi/fdt.c, built only for the EFI platforms that boot with a device tree
/// (arm, arm64, riscv, loongarch64); on x86 the command does not exist, so the
/// `.dtb` is copied but grub.cfg does not load it (x86 kernels take no device tree
/// from the loader).
fn grub_has_devicetree(machine: u16) -> bool {
    matches!(machine, 0xaa64 | 0x01c2 | 0x01c4 | 0x5064 | 0x5032 | 0x6264)
}

struct PlannedPartition {
    name: String,
    type_guid: Guid,
    size: u64,
    attributes: u64,
    unique_guid: Option<Guid>,
}

fn esp_files<'a>(
    o: &ImageOptions<'a>,
    pe: &PeFile<'a>,
    volume_id: u32,
) -> Result<Vec<(String, Cow<'a, [u8]>)>> {
    let boot_name = removable_boot_name(pe.coff.machine).ok_or_else(|| {
        Error::invalid(format!(
            "the UKI's machine {:#06x} has no removable-media boot file name",
            pe.coff.machine
        ))
    })?;
    let boot = format!("EFI/BOOT/{boot_name}");
    let mut files: Vec<(String, Cow<'a, [u8]>)> = Vec::new();
    let use_grub = o.layout == Layout::Grub;
    let use_sdboot = o.layout == Layout::SystemdBoot;
    if use_grub {
        let grub = o.grub.ok_or_else(|| {
            Error::invalid(
                "missing bootloader file: the grub layout needs a GRUB EFI binary (--grub FILE)",
            )
        })?;
        check_loader(grub, pe.coff.machine, "GRUB")?;
        let (kernel, initrd, cmdline) =
            grub_boot_parts(pe, "the grub layout boots its kernel and initrd")?;
        let dtb = pe.section_payload(".dtb").transpose()?;
        let devicetree = match dtb {
            Some(_) if grub_has_devicetree(pe.coff.machine) => {
                format!("    devicetree /{GRUB_DTB}\n")
            }
            _ => String::new(),
        };
        let cfg = format!(
            "# Written by ukitool: boots the kernel and initrd extracted from the UKI.\n\
             set default=0\nset timeout={}\n\
             search --no-floppy --fs-uuid --set=root {:04x}-{:04x}\n\
             menuentry \"{}\" {{\n    linux /A/vmlinuz {}\n    initrd /A/initramfs\n{devicetree}}}\n",
            o.timeout,
            volume_id >> 16,
            volume_id & 0xffff,
            o.entry_name.replace(['"', '\\', '$'], "_"),
            grub_escape(cmdline.trim())
        );
        match o.shim {
            Some(shim) => {
                check_loader(shim, pe.coff.machine, "shim")?;
                files.push((boot.clone(), Cow::Borrowed(shim)));
                // shim loads grub<arch>.efi from its own directory.
                let arch = boot_name.trim_start_matches("BOOT").to_ascii_lowercase();
                files.push((format!("EFI/BOOT/grub{arch}"), Cow::Borrowed(grub)));
            }
            None => files.push((boot.clone(), Cow::Borrowed(grub))),
        }
        // GRUB reads $prefix/grub.cfg; Debian's signed build falls back to the
        // directory it was loaded from ($cmdpath), so both places get the config.
        files.push((
            "EFI/BOOT/grub.cfg".into(),
            Cow::Owned(cfg.clone().into_bytes()),
        ));
        let prefix = o.grub_prefix.clone().or_else(|| grub_builtin_prefix(grub));
        if let Some(p) = prefix {
            let p = p.trim_matches('/');
            if !p.is_empty() && !p.starts_with('(') && !p.eq_ignore_ascii_case("EFI/BOOT") {
                files.push((format!("{p}/grub.cfg"), Cow::Owned(cfg.into_bytes())));
            }
        }
        files.push(("A/vmlinuz".into(), Cow::Borrowed(kernel)));
        files.push(("A/initramfs".into(), Cow::Borrowed(initrd)));
        if let Some(dtb) = dtb {
            files.push((GRUB_DTB.into(), Cow::Borrowed(dtb)));
        }
    } else if use_sdboot {
        let sdboot = o.systemd_boot.ok_or_else(|| {
            Error::invalid("missing bootloader file: the systemd-boot layout needs systemd-boot's EFI binary (--systemd-boot FILE)")
        })?;
        check_loader(sdboot, pe.coff.machine, "systemd-boot")?;
        let entry = format!("{}.efi", o.entry_name);
        files.push((boot, Cow::Borrowed(sdboot)));
        files.push((format!("EFI/Linux/{entry}"), Cow::Borrowed(o.uki)));
        let mut conf = format!("timeout {}\ndefault {entry}\n", o.timeout);
        if let Some(m) = o.secure_boot_enroll {
            conf.push_str(&format!("secure-boot-enroll {}\n", m.name()));
        }
        files.push(("loader/loader.conf".into(), Cow::Owned(conf.into_bytes())));
        for (name, data) in &o.enroll_keys {
            files.push((format!("loader/keys/auto/{name}"), Cow::Borrowed(*data)));
        }
    } else {
        check_bootable(pe, &boot)?;
        files.push((boot, Cow::Borrowed(o.uki)));
    }
    if !use_sdboot && !o.enroll_keys.is_empty() {
        return Err(Error::invalid(
            "key enrolment files are read by systemd-boot: use them with the systemd-boot layout",
        ));
    }
    files.extend(o.extra_files.iter().cloned());
    Ok(files)
}

/// Can firmware start `pe` as the removable-media file `boot`? Only an EFI
/// application (subsystem 10) runs from there (UEFI 2.10 §3.5.1.1): a driver is
/// refused ("Unsupported"). An addon, or a systemd-stub without .linux, is an
/// application, but has nothing to boot: the stub finds no kernel and fails. Any
/// other application (a shell, memtest86+, iPXE, a bare EFI-stub kernel) may boot.
fn check_bootable(pe: &PeFile<'_>, boot: &str) -> Result<()> {
    let refuse = |what: String, why: &str| {
        Err(Error::invalid(format!(
            "the file is {what}; it cannot boot as {boot}: {why}"
        )))
    };
    let subsystem = pe.opt.subsystem;
    if subsystem != raw::SUBSYSTEM_EFI_APPLICATION {
        let name = crate::pe::raw::SUBSYSTEMS
            .iter()
            .find(|(n, _)| *n == subsystem)
            .map_or("unknown", |(_, name)| *name);
        return refuse(
            format!("not an EFI application (subsystem {subsystem}, {name})"),
            "firmware starts only EFI applications (subsystem 10) from there and refuses drivers",
        );
    }
    let sdmagic = pe
        .section_payload(".sdmagic")
        .and_then(|r| r.ok())
        .map(crate::uki::stub_identity);
    let has_linux = pe.section(".linux").is_some();
    match uki::classify(&pe.sections, false, sdmagic.as_deref()) {
        uki::Kind::Addon => refuse(
            "a UKI addon".into(),
            "systemd-stub loads addons from the UKI's .extra.d directory; firmware cannot boot one",
        ),
        _ if !has_linux
            && sdmagic
                .as_deref()
                .is_some_and(|m| m.starts_with("systemd-stub")) =>
        {
            refuse(
                "a systemd-stub without .linux".into(),
                "the stub has no kernel to start; build a UKI from it first (ukitool build)",
            )
        }
        _ => Ok(()),
    }
}

/// What GRUB boots from a UKI: its `.linux` and `.initrd` payloads and its `.cmdline`
/// as text (empty when absent). A missing section is an error that says `why` it is
/// needed.
pub(crate) fn grub_boot_parts<'a>(
    pe: &PeFile<'a>,
    why: &str,
) -> Result<(&'a [u8], &'a [u8], String)> {
    let payload = |name: &str| -> Result<&'a [u8]> {
        pe.section_payload(name)
            .ok_or_else(|| Error::NotFound(format!("section {name} in the UKI ({why})")))?
    };
    let kernel = payload(".linux")?;
    let initrd = payload(".initrd")?;
    let cmdline = pe
        .section_payload(".cmdline")
        .transpose()?
        .map(bytes::text)
        .unwrap_or_default();
    Ok((kernel, initrd, cmdline))
}

pub(crate) fn check_loader(bin: &[u8], machine: u16, what: &str) -> Result<()> {
    let pe = PeFile::parse(bin)
        .map_err(|e| Error::invalid(format!("the {what} binary is not a PE image: {e}")))?;
    if pe.coff.machine != machine {
        return Err(Error::invalid(format!(
            "the {what} binary is for machine {:#06x}, the UKI for {machine:#06x}",
            pe.coff.machine
        )));
    }
    Ok(())
}

/// Build the disk image described by `o`. The image borrows the UKI and the other
/// inputs; nothing the size of the disk is allocated.
pub fn build_image<'a>(o: &ImageOptions<'a>) -> Result<(DiskImage<'a>, ImageSummary)> {
    if o.layout == Layout::Talos {
        return talos::image::build(o);
    }
    let per_sector = gpt::sector_size(o.sector_size)?;
    let pe = PeFile::parse(o.uki)
        .map_err(|e| Error::invalid(format!("the UKI is not a PE image: {e}")))?;
    let disk_guid = o.disk_guid.unwrap_or_else(|| guid::disk_guid_for(&o.label));
    let after_esp = partitions_after_esp(o)?;
    let esp_guid = guid::partition_guid_for(&disk_guid, 1, ESP_NAME);
    // The FAT volume id: the ESP's partition GUID's first four bytes, so it is as
    // reproducible as the GUID and differs between disks with different labels.
    let volume_id =
        u32::from_be_bytes([esp_guid.0[0], esp_guid.0[1], esp_guid.0[2], esp_guid.0[3]]);
    let files = esp_files(o, &pe, volume_id)?;
    let esp = esp_partition(o, &files)?;
    let esp_size = esp.size;
    let partitions: Vec<PlannedPartition> = std::iter::once(esp).chain(after_esp).collect();
    let placed = place(o, per_sector, &disk_guid, &partitions)?;

    let mut img = DiskImage::new(placed.size);
    gpt::write(&mut img, per_sector.get(), disk_guid, &placed.parts)?;
    let esp = write_esp(&mut img, o, per_sector, &placed, esp_size, volume_id, files)?;
    let formatted = format_partitions(&mut img, o, per_sector, &placed)?;
    let unformatted: Vec<(u64, u64)> = (1..placed.spans.len())
        .filter(|i| !formatted.contains(i))
        .filter_map(|i| placed.spans.get(i).copied())
        .collect();
    zero_partition_heads(&mut img, &unformatted)?;
    let summary = ImageSummary {
        layout: o.layout,
        size: placed.size,
        sector_size: per_sector.get(),
        disk_guid,
        partitions: placed
            .parts
            .iter()
            .zip(&placed.spans)
            .zip(1usize..)
            .map(|((p, &(offset, size)), index)| PartitionSummary {
                index,
                name: p.name.clone(),
                type_guid: p.type_guid,
                type_name: gpt::type_name(&p.type_guid),
                unique_guid: p.unique_guid,
                offset,
                size,
                attributes: p.attributes,
            })
            .collect(),
        esp,
        data_bytes: img.data_len(),
        talos: None,
    };
    Ok((img, summary))
}

fn overflow() -> Error {
    Error::invalid("partitions overflow 64 bits")
}

/// The partitions after the ESP (always the first), in order: the layout's, then
/// the extra ones.
fn partitions_after_esp(o: &ImageOptions<'_>) -> Result<Vec<PlannedPartition>> {
    let mut planned = Vec::new();
    for p in &o.extra_partitions {
        if p.size == 0 {
            return Err(Error::invalid(format!("partition {:?} has size 0", p.name)));
        }
        planned.push(PlannedPartition {
            name: p.name.clone(),
            type_guid: p.type_guid,
            size: p.size,
            attributes: p.attributes,
            unique_guid: p.unique_guid,
        });
    }
    Ok(planned)
}

/// The ESP, sized as asked, or as the layout has it (Talos), or to hold `files`.
fn esp_partition(
    o: &ImageOptions<'_>,
    files: &[(String, Cow<'_, [u8]>)],
) -> Result<PlannedPartition> {
    let file_bytes: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    let size = match o.esp_size {
        Some(s) => s,
        // Room for the files, their FAT and directories, and 5% slack. A sum that
        // saturates fails placement.
        None => file_bytes
            .saturating_add(file_bytes / 20)
            .saturating_add(4 * MIB)
            .max(100 * MIB),
    };
    if size < file_bytes {
        return Err(Error::invalid(format!(
            "the ESP ({size} bytes) is smaller than the files it must hold ({file_bytes} bytes, the UKI is {}); raise --esp-size",
            o.uki.len()
        )));
    }
    Ok(PlannedPartition {
        name: ESP_NAME.into(),
        type_guid: Guid::parse(gpt::types::ESP)?,
        size,
        attributes: 0,
        unique_guid: None,
    })
}

/// Partitions placed on the disk, and the disk's size.
struct Placement {
    parts: Vec<GptPartition>,
    /// (offset, size) in bytes of each partition, the ESP first.
    spans: Vec<(u64, u64)>,
    esp_offset: u64,
    size: u64,
}

/// Place `partitions` one after the other on 1 MiB boundaries, after the GPT; the
/// disk is `o.size`, or just large enough for them and the backup GPT.
fn place(
    o: &ImageOptions<'_>,
    per_sector: NonZeroU64,
    disk_guid: &Guid,
    partitions: &[PlannedPartition],
) -> Result<Placement> {
    let sector = per_sector.get();
    let (first_usable, tail) = gpt::reserved_sectors(per_sector);
    // The GPT takes at most 34 sectors at each end: these cannot saturate.
    let esp_offset = MIB.max(first_usable.saturating_mul(sector));
    let tail_len = MIB.max(tail.saturating_mul(sector));
    let mut at = esp_offset;
    let mut parts = Vec::new();
    let mut spans = Vec::new();
    // `index` counts from 1, as GPT numbers partitions.
    for (p, index) in partitions.iter().zip(1usize..) {
        let size = p
            .size
            .checked_next_multiple_of(MIB)
            .ok_or_else(|| Error::invalid("partition size overflows"))?;
        let end = at.checked_add(size).ok_or_else(overflow)?;
        parts.push(GptPartition {
            name: p.name.clone(),
            type_guid: p.type_guid,
            unique_guid: p
                .unique_guid
                .unwrap_or_else(|| guid::partition_guid_for(disk_guid, index, &p.name)),
            first_lba: at / per_sector,
            // `end` is at least 1 MiB: no saturation.
            last_lba: (end / per_sector).saturating_sub(1),
            attributes: p.attributes,
        });
        spans.push((at, size));
        at = end;
    }
    let needed = at.checked_add(tail_len).ok_or_else(overflow)?;
    let size = o.size.unwrap_or(needed);
    if size < needed {
        return Err(Error::invalid(format!(
            "the disk ({size} bytes) is smaller than its partitions need ({needed} bytes, {} MiB, with the GPT)",
            needed.div_ceil(MIB)
        )));
    }
    if size % per_sector != 0 {
        return Err(Error::invalid(format!(
            "disk size {size} is not a multiple of the {sector}-byte sector"
        )));
    }
    Ok(Placement {
        parts,
        spans,
        esp_offset,
        size,
    })
}

/// Format the ESP (`esp_size` bytes, as placed) with `files` into `img`.
fn write_esp<'a>(
    img: &mut DiskImage<'a>,
    o: &ImageOptions<'_>,
    per_sector: NonZeroU64,
    placed: &Placement,
    esp_size: u64,
    volume_id: u32,
    files: Vec<(String, Cow<'a, [u8]>)>,
) -> Result<EspSummary> {
    let esp_off = placed.esp_offset;
    let fopts = FatOptions {
        label: o.label.clone(),
        volume_id,
        timestamp: o.timestamp,
        sector_size: per_sector.get(),
        hidden_sectors: esp_off / per_sector,
    };
    // Placement rounded the same size with a check: this cannot overflow.
    let plan = fat::format(esp_size.next_multiple_of(MIB), &fopts, files)?;
    place_esp(img, plan, esp_off, o.label.to_ascii_uppercase(), volume_id)
}

/// Put the formatted ESP `plan` at byte `at` of `img`; returns what the summary says of
/// it (partition 1, `label`, `volume_id`, every file with its disk offset).
pub(crate) fn place_esp<'a>(
    img: &mut DiskImage<'a>,
    plan: fat::FatPlan<'a>,
    at: u64,
    label: String,
    volume_id: u32,
) -> Result<EspSummary> {
    let summary = EspSummary {
        partition: 1,
        fat_type: plan.fat_type,
        label,
        volume_id: format!("{:04X}-{:04X}", volume_id >> 16, volume_id & 0xffff),
        cluster_size: plan.cluster_size,
        files: plan
            .files
            .iter()
            .map(|f| {
                Ok(EspFile {
                    path: f.path.clone(),
                    size: f.len,
                    disk_offset: at.checked_add(f.offset).ok_or_else(overflow)?,
                })
            })
            .collect::<Result<_>>()?,
    };
    for (off, data) in plan.extents {
        img.put(at.checked_add(off).ok_or_else(overflow)?, data)?;
    }
    Ok(summary)
}

/// Format the extra partitions that name a filesystem, with their files from
/// `o.partition_files`; returns their indexes in `placed.spans`.
fn format_partitions<'a>(
    img: &mut DiskImage<'a>,
    o: &ImageOptions<'a>,
    per_sector: NonZeroU64,
    placed: &Placement,
) -> Result<Vec<usize>> {
    for (name, path, _) in &o.partition_files {
        if !o
            .extra_partitions
            .iter()
            .any(|p| &p.name == name && p.fs.is_some())
        {
            return Err(Error::invalid(format!(
                "file {path:?} for partition {name:?}: no --add-partition of that name with a filesystem (NAME:SIZE:TYPE:FS)"
            )));
        }
    }
    // The extra partitions come last.
    let first = placed
        .spans
        .len()
        .checked_sub(o.extra_partitions.len())
        .ok_or_else(overflow)?;
    let mut formatted = Vec::new();
    for (p, index) in o.extra_partitions.iter().zip(first..) {
        let (Some(fs), Some(&(at, size)), Some(gp)) =
            (p.fs, placed.spans.get(index), placed.parts.get(index))
        else {
            continue;
        };
        let files = o
            .partition_files
            .iter()
            .filter(|(name, _, _)| *name == p.name)
            .map(|(_, path, data)| (path.clone(), data.clone()));
        let extents = match fs {
            PartitionFs::Xfs => {
                let opts = XfsOptions {
                    size,
                    sector_size: per_sector.get(),
                    // As Talos does: the name as label, the partition GUID as UUID.
                    label: truncate_utf8(&p.name, 12).into(),
                    uuid: gp.unique_guid,
                    timestamp: o.timestamp,
                    ag_count: None,
                };
                let items = files.map(|(path, d)| XfsItem::file(path, d)).collect();
                xfs::format(&opts, items)?.extents
            }
            PartitionFs::Fat => {
                let g = gp.unique_guid.0;
                let fopts = FatOptions {
                    label: truncate_utf8(&p.name, 11).into(),
                    volume_id: u32::from_be_bytes([g[0], g[1], g[2], g[3]]),
                    timestamp: o.timestamp,
                    sector_size: per_sector.get(),
                    hidden_sectors: at / per_sector,
                };
                fat::format(size, &fopts, files.collect())?.extents
            }
        };
        for (off, data) in extents {
            img.put(at.checked_add(off).ok_or_else(overflow)?, data)?;
        }
        formatted.push(index);
    }
    Ok(formatted)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    let end = (0..=max.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    s.get(..end).unwrap_or_default()
}

/// Partitions other than the ESP start zeroed (their first MiB), so a stale
/// filesystem signature on a reused disk cannot be mistaken for theirs.
fn zero_partition_heads(img: &mut DiskImage<'_>, spans: &[(u64, u64)]) -> Result<()> {
    for &(off, len) in spans {
        let mut z = Vec::new();
        fat::write::push_zeros(&mut z, off, len.min(MIB));
        for (o, d) in z {
            img.put(o, d)?;
        }
    }
    Ok(())
}

/// A minimal PE32+ UKI-shaped image for tests: sections (name, payload), each at a
/// 0x200-aligned file offset and a 0x1000-aligned address.
#[cfg(test)]
pub(crate) fn test_pe(machine: u16, sections: &[(&str, &[u8])]) -> Vec<u8> {
    let n = sections.len();
    let hdr = 0x400usize;
    let mut d = vec![0u8; hdr];
    d[0..2].copy_from_slice(b"MZ");
    d[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    d[0x80..0x84].copy_from_slice(b"PE\0\0");
    let c = 0x84;
    d[c..c + 2].copy_from_slice(&machine.to_le_bytes());
    d[c + 2..c + 4].copy_from_slice(&(n as u16).to_le_bytes());
    d[c + 16..c + 18].copy_from_slice(&240u16.to_le_bytes());
    let o = c + 20;
    d[o..o + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    d[o + 32..o + 36].copy_from_slice(&0x1000u32.to_le_bytes());
    d[o + 36..o + 40].copy_from_slice(&0x200u32.to_le_bytes());
    d[o + 60..o + 64].copy_from_slice(&(hdr as u32).to_le_bytes());
    d[o + 68..o + 70].copy_from_slice(&10u16.to_le_bytes());
    d[o + 108..o + 112].copy_from_slice(&16u32.to_le_bytes());
    let mut va = 0x1000u32;
    for (i, (name, data)) in sections.iter().enumerate() {
        let s = o + 240 + 40 * i;
        let raw = data.len().next_multiple_of(0x200);
        let ptr = d.len();
        let mut nm = [0u8; 8];
        nm[..name.len()].copy_from_slice(name.as_bytes());
        d[s..s + 8].copy_from_slice(&nm);
        d[s + 8..s + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        d[s + 12..s + 16].copy_from_slice(&va.to_le_bytes());
        d[s + 16..s + 20].copy_from_slice(&(raw as u32).to_le_bytes());
        d[s + 20..s + 24].copy_from_slice(&(ptr as u32).to_le_bytes());
        d.extend_from_slice(data);
        d.resize(ptr + raw, 0);
        va += (data.len() as u32).next_multiple_of(0x1000).max(0x1000);
    }
    let image = va;
    d[o + 56..o + 60].copy_from_slice(&image.to_le_bytes());
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::fat::read_volume;

    fn uki(machine: u16) -> Vec<u8> {
        test_pe(
            machine,
            &[
                (".text", b"code"),
                (".cmdline", b"console=ttyS0 root=\"LABEL=a b\" $x\0"),
                (".linux", &[0x4d; 5000]),
                (".initrd", &[0x07; 3000]),
            ],
        )
    }

    fn esp(img: &DiskImage<'_>, s: &ImageSummary) -> (Vec<u8>, crate::disk::fat::FatVolume) {
        let p = &s.partitions[0];
        let mut v = vec![0u8; p.size as usize];
        img.read_at(p.offset, &mut v);
        let vol = read_volume(&v).unwrap();
        (v, vol)
    }

    fn file(v: &[u8], vol: &crate::disk::fat::FatVolume, path: &str) -> Vec<u8> {
        let e = vol
            .entries
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{path} missing"));
        vol.file_bytes(v, e).unwrap().into_owned()
    }

    #[test]
    fn uefi_layout_uses_the_machine_boot_name_and_borrows_the_uki() {
        for (machine, name) in [(0x8664u16, "BOOTX64.EFI"), (0xaa64, "BOOTAA64.EFI")] {
            let u = uki(machine);
            let (img, s) = build_image(&ImageOptions::new(Layout::Uefi, &u)).unwrap();
            let (v, vol) = esp(&img, &s);
            assert_eq!(file(&v, &vol, &format!("EFI/BOOT/{name}")), u);
            // Zero copy: one extent is the UKI itself, borrowed.
            assert!(img
                .extents()
                .iter()
                .any(|e| matches!(&e.data, Cow::Borrowed(b) if b.as_ptr() == u.as_ptr())));
            assert_eq!(s.size, 102 * MIB);
            assert_eq!(vol.hidden_sectors, 2048);
        }
    }

    #[test]
    fn grub_layout_extracts_kernel_initrd_and_cmdline() {
        let u = uki(0x8664);
        let g = test_pe(0x8664, &[(".text", b"grub")]);
        let mut o = ImageOptions::new(Layout::Grub, &u);
        o.grub = Some(&g);
        o.grub_prefix = Some("/EFI/debian".into());
        let (img, s) = build_image(&o).unwrap();
        let (v, vol) = esp(&img, &s);
        assert_eq!(file(&v, &vol, "A/vmlinuz"), vec![0x4d; 5000]);
        assert_eq!(file(&v, &vol, "A/initramfs"), vec![0x07; 3000]);
        let cfg = String::from_utf8(file(&v, &vol, "EFI/debian/grub.cfg")).unwrap();
        assert_eq!(
            cfg,
            String::from_utf8(file(&v, &vol, "EFI/BOOT/grub.cfg")).unwrap()
        );
        assert!(
            cfg.contains(r#"linux /A/vmlinuz console=ttyS0 root=\"LABEL=a b\" \$x"#),
            "{cfg}"
        );
        assert_eq!(file(&v, &vol, "EFI/BOOT/BOOTX64.EFI"), g);
    }

    #[test]
    fn grub_layout_puts_the_dtb_next_to_the_kernel() {
        for (machine, loads) in [(0xaa64, true), (0x8664, false)] {
            let u = test_pe(
                machine,
                &[
                    (".linux", &[0x4d; 500]),
                    (".initrd", &[7; 300]),
                    (".dtb", b"\xd0\x0d\xfe\xed dtb"),
                ],
            );
            let g = test_pe(machine, &[(".text", b"grub")]);
            let mut o = ImageOptions::new(Layout::Grub, &u);
            o.grub = Some(&g);
            let (img, s) = build_image(&o).unwrap();
            let (v, vol) = esp(&img, &s);
            assert_eq!(file(&v, &vol, GRUB_DTB), b"\xd0\x0d\xfe\xed dtb");
            let cfg = String::from_utf8(file(&v, &vol, "EFI/BOOT/grub.cfg")).unwrap();
            let line = format!("    devicetree /{GRUB_DTB}\n}}");
            assert_eq!(cfg.contains(&line), loads, "{cfg}");
        }
    }

    #[test]
    fn systemd_boot_layout() {
        let u = uki(0x8664);
        let sd = test_pe(0x8664, &[(".text", b"sd-boot")]);
        let mut o = ImageOptions::new(Layout::SystemdBoot, &u);
        o.systemd_boot = Some(&sd);
        o.entry_name = "talos".into();
        o.enroll_keys = vec![("db.auth".into(), b"db".as_slice())];
        let (img, s) = build_image(&o).unwrap();
        let (v, vol) = esp(&img, &s);
        assert_eq!(file(&v, &vol, "EFI/Linux/talos.efi"), u);
        assert_eq!(
            file(&v, &vol, "loader/loader.conf"),
            b"timeout 0\ndefault talos.efi\n"
        );
        assert_eq!(file(&v, &vol, "loader/keys/auto/db.auth"), b"db");
    }

    #[test]
    fn bad_options_are_clear_errors() {
        let u = uki(0x8664);
        let err = |o: &ImageOptions<'_>| build_image(o).unwrap_err().to_string();
        assert!(Layout::parse("bios")
            .unwrap_err()
            .to_string()
            .contains("unknown layout"));
        let o = ImageOptions {
            esp_size: Some(4096),
            ..ImageOptions::new(Layout::Uefi, &u)
        };
        assert!(err(&o).contains("smaller than the files"), "{}", err(&o));
        let o = ImageOptions {
            size: Some(50 * MIB),
            ..ImageOptions::new(Layout::Uefi, &u)
        };
        assert!(
            err(&o).contains("smaller than its partitions"),
            "{}",
            err(&o)
        );
        assert!(err(&ImageOptions::new(Layout::Grub, &u)).contains("missing bootloader"));
        assert!(err(&ImageOptions::new(Layout::SystemdBoot, &u)).contains("missing bootloader"));
        let o = ImageOptions {
            sector_size: 1024,
            ..ImageOptions::new(Layout::Uefi, &u)
        };
        assert!(err(&o).contains("512 or 4096"));
        let g = test_pe(0x8664, &[(".text", b"grub")]);
        let plain = test_pe(0x8664, &[(".text", b"x")]);
        let mut o = ImageOptions::new(Layout::Grub, &plain);
        o.grub = Some(&g);
        assert!(err(&o).contains(".linux"), "{}", err(&o));
        let a = uki(0xaa64);
        let mut o = ImageOptions::new(Layout::Grub, &a);
        o.grub = Some(&g);
        assert!(err(&o).contains("machine"));
        // Partitions that end 1 MiB short of 2^64 leave no room for the backup GPT:
        // an error, not an overflow.
        let o = ImageOptions {
            extra_partitions: vec![PartitionSpec {
                size: u64::MAX - 102 * MIB + 1,
                ..PartitionSpec::parse("big:1M").unwrap()
            }],
            ..ImageOptions::new(Layout::Uefi, &u)
        };
        assert!(err(&o).contains("overflow"), "{}", err(&o));
    }

    #[test]
    fn sizes_and_partition_specs_parse() {
        assert_eq!(parse_size("100M").unwrap(), 100 * MIB);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("99999999999T").is_err());
        let p = PartitionSpec::parse("data:64M:xbootldr").unwrap();
        assert_eq!((p.name.as_str(), p.size), ("data", 64 * MIB));
        assert_eq!(p.type_guid.to_string(), gpt::types::XBOOTLDR);
        assert!(PartitionSpec::parse("x").is_err());
        assert!(PartitionSpec::parse("x:1M:nonsense").is_err());
        assert_eq!(p.fs, None);
        let p = PartitionSpec::parse("BOOT:1000M:linux:xfs").unwrap();
        assert_eq!(p.fs, Some(PartitionFs::Xfs));
        assert_eq!(
            PartitionSpec::parse("d:1M:linux:fat").unwrap().fs,
            Some(PartitionFs::Fat)
        );
        assert!(PartitionSpec::parse("d:1M:linux:ext4").is_err());
    }

    #[test]
    fn extra_partitions_get_their_filesystem_and_files() {
        let u = uki(0x8664);
        let mut o = ImageOptions::new(Layout::Uefi, &u);
        o.extra_partitions = vec![
            PartitionSpec::parse("A-LONG-BOOT-NAME:300M:linux:xfs").unwrap(),
            PartitionSpec::parse("DATA:40M:linux:fat").unwrap(),
        ];
        o.partition_files = vec![
            (
                "A-LONG-BOOT-NAME".into(),
                "/k/vmlinuz".into(),
                Cow::Borrowed(&b"kernel"[..]),
            ),
            ("DATA".into(), "/X.TXT".into(), Cow::Borrowed(&b"x"[..])),
        ];
        let (img, s) = build_image(&o).unwrap();
        let disk = img.to_vec();
        let part = |i: usize| {
            let p = &s.partitions[i];
            &disk[p.offset as usize..(p.offset + p.size) as usize]
        };
        let vol = xfs::read_volume(part(1)).unwrap();
        assert_eq!(vol.label, "A-LONG-BOOT-");
        assert_eq!(
            vol.uuid,
            s.partitions[1].unique_guid.to_string().to_lowercase()
        );
        let e = vol.find("/k/vmlinuz").unwrap();
        assert_eq!(&*vol.file_bytes(part(1), e).unwrap(), b"kernel");
        let fat = read_volume(part(2)).unwrap();
        assert_eq!(file(part(2), &fat, "X.TXT"), b"x");
        o.partition_files[1].0 = "EFI".into();
        assert!(build_image(&o).is_err());
    }

    #[test]
    fn same_inputs_same_image_and_guids_follow_the_label() {
        let u = uki(0x8664);
        let a = build_image(&ImageOptions::new(Layout::Uefi, &u))
            .unwrap()
            .0
            .to_vec();
        let b = build_image(&ImageOptions::new(Layout::Uefi, &u))
            .unwrap()
            .0
            .to_vec();
        assert!(a == b);
        let o = ImageOptions {
            label: "OTHER".into(),
            ..ImageOptions::new(Layout::Uefi, &u)
        };
        let (_, s1) = build_image(&o).unwrap();
        let (_, s0) = build_image(&ImageOptions::new(Layout::Uefi, &u)).unwrap();
        assert_ne!(s1.disk_guid, s0.disk_guid);
        let g = Guid::parse("01234567-89ab-cdef-0123-456789abcdef").unwrap();
        let o = ImageOptions {
            disk_guid: Some(g),
            ..ImageOptions::new(Layout::Uefi, &u)
        };
        assert_eq!(build_image(&o).unwrap().1.disk_guid, g);
    }

    #[test]
    fn memory_does_not_depend_on_disk_size() {
        let u = uki(0x8664);
        let o = ImageOptions {
            size: Some(64 << 30),
            ..ImageOptions::new(Layout::Uefi, &u)
        };
        let (img, _) = build_image(&o).unwrap();
        let owned: usize = img
            .extents()
            .iter()
            .filter(|e| matches!(e.data, Cow::Owned(_)))
            .map(|e| e.data.len())
            .sum();
        assert!(
            owned < 2 * MIB as usize,
            "{owned} bytes owned for a 64 GiB disk"
        );
    }
}
