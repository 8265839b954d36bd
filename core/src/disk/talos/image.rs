//! `--layout talos`: Talos's `metal` image put together from the pieces of this
//! module: the plan's GPT, GRUB's BIOS boot code, the ESP (systemd-boot and the UKI,
//! or GRUB), the XFS BOOT (kernel, initramfs and grub.cfg cut from the UKI) and META.

use std::borrow::Cow;

use super::{bios, config, meta, plan, Arch, Bootloader, TalosPlan, TalosVersion};
use crate::disk::fat::{self, FatOptions};
use crate::disk::gpt;
use crate::disk::layout::{
    grub_boot_parts, place_esp, EspSummary, ImageOptions, ImageSummary, PartitionSummary,
};
use crate::disk::sparse::DiskImage;
use crate::disk::xfs::{self, ItemKind, XfsItem, XfsOptions};
use crate::error::{Error, Result};
use crate::pe::PeFile;

/// What only the talos layout takes, on top of [`ImageOptions`].
#[derive(Debug, Clone, Default)]
pub struct TalosOptions<'a> {
    /// `None`: what Talos picks for the UKI's machine (and Secure Boot, when keys
    /// are enrolled).
    pub bootloader: Option<Bootloader>,
    /// The release whose size table the image follows.
    pub version: TalosVersion,
    /// The UKI's version in its file and entry names; `None`: its `.osrel` VERSION_ID.
    pub name: Option<String>,
    /// GRUB's i386-pc directory, by file name (only the files
    /// [`bios::needed_files`] names are read).
    pub grub_bios: Vec<(String, &'a [u8])>,
    /// META records (tag, value) added to the image's.
    pub meta: Vec<(u8, Cow<'a, [u8]>)>,
}

/// What a Talos image is, for the summary and `--json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TalosSummary {
    pub bootloader: Bootloader,
    /// The size table followed (`1.11`).
    pub table: String,
    /// The version naming the UKI and the GRUB entry.
    pub version: String,
    /// The UKI on the ESP (sd-boot, dual-boot).
    pub uki_path: Option<String>,
    /// Files on BOOT (grub, dual-boot).
    pub boot_files: Vec<String>,
    /// META's tags, in order.
    pub meta_tags: Vec<u8>,
    /// core.img's size in the BIOS partition.
    pub core_img_size: Option<u64>,
}

fn overflow() -> Error {
    Error::invalid("Talos image offsets overflow 64 bits")
}

/// Build the Talos image described by `o` (`o.layout` is talos).
pub fn build<'a>(o: &ImageOptions<'a>) -> Result<(DiskImage<'a>, ImageSummary)> {
    let t = &o.talos;
    refuse_other_options(o)?;
    let pe = PeFile::parse(o.uki)
        .map_err(|e| Error::invalid(format!("the UKI is not a PE image: {e}")))?;
    let arch = Arch::from_machine(pe.coff.machine).ok_or_else(|| {
        Error::invalid(format!(
            "the UKI's machine {:#06x} is neither amd64 nor arm64, which Talos builds for",
            pe.coff.machine
        ))
    })?;
    // Talos's Secure Boot images enrol keys from the ESP; they are sd-boot only.
    let secure_boot = !o.enroll_keys.is_empty();
    let bootloader = Bootloader::choose(t.bootloader, arch, secure_boot)?;
    let p = plan(bootloader, t.version, o.sector_size)?;
    let size = match o.size {
        None => p.disk_size,
        Some(s) if s >= p.disk_size => s,
        Some(s) => {
            return Err(Error::invalid(format!(
                "the disk ({s} bytes) is smaller than the Talos {} image ({} bytes, {} MiB)",
                bootloader.name(),
                p.disk_size,
                p.disk_size >> 20
            )))
        }
    };
    let version = match &t.name {
        Some(n) => n.clone(),
        None => config::version_id(o.uki)?,
    };
    let mut img = DiskImage::new(size);
    let core_img_size = write_gpt_and_bios(&mut img, o, &p)?;
    let esp = write_esp(&mut img, o, &p, &pe, arch, &version)?;
    let boot_files = write_boot(&mut img, o, &p, &pe, &version)?;
    let meta_tags = write_meta(&mut img, o, &p)?;
    let talos = TalosSummary {
        bootloader,
        table: format!("{}.{}", t.version.major, t.version.minor),
        uki_path: (bootloader != Bootloader::Grub)
            .then(|| config::uki_path(&version))
            .transpose()?,
        version,
        boot_files,
        meta_tags,
        core_img_size,
    };
    let summary = ImageSummary {
        layout: o.layout,
        size,
        sector_size: p.sector_size,
        disk_guid: p.disk_guid,
        partitions: partition_summaries(&p)?,
        esp,
        data_bytes: img.data_len(),
        talos: Some(talos),
    };
    Ok((img, summary))
}

/// Options that shape other layouts and have no meaning in Talos's fixed one.
fn refuse_other_options(o: &ImageOptions<'_>) -> Result<()> {
    let given = [
        (o.esp_size.is_some(), "--esp-size (Talos sizes the ESP)"),
        (
            !o.extra_partitions.is_empty() || !o.partition_files.is_empty(),
            "--add-partition and --add-file-to (Talos's partitions are fixed)",
        ),
        (
            o.disk_guid.is_some(),
            "--disk-guid (Talos derives every identifier)",
        ),
        (
            o.grub_prefix.is_some(),
            "--grub-prefix (GRUB reads BOOT's grub/grub.cfg)",
        ),
    ];
    match given.iter().find(|(set, _)| *set) {
        Some((_, what)) => Err(Error::invalid(format!(
            "the talos layout does not take {what}"
        ))),
        None => Ok(()),
    }
}

/// Zeros over `len` bytes at `at`: areas that must read as zero on a reused device.
fn put_zeros(img: &mut DiskImage<'_>, at: u64, len: u64) -> Result<()> {
    let mut z = Vec::new();
    fat::write::push_zeros(&mut z, at, len);
    for (off, d) in z {
        img.put(off, d)?;
    }
    Ok(())
}

fn span(p: &TalosPlan, name: &str) -> Result<(u64, u64)> {
    p.span(name)
        .ok_or_else(|| Error::invalid(format!("the Talos plan has no {name} partition")))
}

/// The GPT, and for GRUB's layouts boot.img's code in the MBR and core.img in BIOS
/// (the rest of BIOS zeroed). Returns core.img's size.
fn write_gpt_and_bios(
    img: &mut DiskImage<'_>,
    o: &ImageOptions<'_>,
    p: &TalosPlan,
) -> Result<Option<u64>> {
    let boot = if p.bootloader.has_grub() {
        let grub_bios = &o.talos.grub_bios;
        if grub_bios.is_empty() {
            return Err(Error::invalid(format!(
                "missing bootloader files: the Talos {} image boots BIOS machines through GRUB i386-pc: give its directory with --grub-bios DIR (on Debian, grub-pc-bin's /usr/lib/grub/i386-pc)",
                p.bootloader.name()
            )));
        }
        let file = |name: &str| grub_bios.iter().find(|(n, _)| n == name).map(|(_, d)| *d);
        let core = bios::core_img(file, bios::MODULES, bios::PREFIX)?;
        let boot_img = file("boot.img").ok_or_else(|| {
            Error::NotFound("boot.img in GRUB's i386-pc directory (--grub-bios)".into())
        })?;
        let (at, len) = span(p, "BIOS")?;
        let placed = bios::place(
            &core.bytes,
            boot_img,
            at.checked_div(p.sector_size).ok_or_else(overflow)?,
        )?;
        let n = placed.core_img.len() as u64;
        if n > len {
            return Err(Error::invalid(format!(
                "GRUB's core.img ({n} bytes) does not fit the {len}-byte BIOS partition"
            )));
        }
        Some((at, len, placed))
    } else {
        None
    };
    let code = boot.as_ref().map(|(_, _, b)| &b.boot_code);
    gpt::write_with(
        img,
        p.sector_size,
        p.disk_guid,
        &p.partitions,
        &p.gpt_options(code),
    )?;
    let Some((at, len, placed)) = boot else {
        return Ok(None);
    };
    let n = placed.core_img.len() as u64;
    img.put(at, placed.core_img)?;
    put_zeros(
        img,
        at.checked_add(n).ok_or_else(overflow)?,
        len.saturating_sub(n),
    )?;
    Ok(Some(n))
}

/// The ESP's files: systemd-boot, the UKI as `EFI/Linux/Talos-<version>.efi` and
/// loader.conf (sd-boot, dual-boot), or GRUB (with shim) and a grub.cfg that reads
/// BOOT's (grub).
fn esp_files<'a>(
    o: &ImageOptions<'a>,
    p: &TalosPlan,
    pe: &PeFile<'a>,
    arch: Arch,
    version: &str,
) -> Result<Vec<(String, Cow<'a, [u8]>)>> {
    let machine = pe.coff.machine;
    let boot = config::boot_file_path(arch);
    let mut files: Vec<(String, Cow<'a, [u8]>)> = Vec::new();
    if p.bootloader == Bootloader::Grub {
        let grub = o.grub.ok_or_else(|| {
            Error::invalid("missing bootloader file: the Talos grub image boots UEFI through a GRUB EFI binary (--grub FILE)")
        })?;
        crate::disk::layout::check_loader(grub, machine, "GRUB")?;
        match o.shim {
            Some(shim) => {
                crate::disk::layout::check_loader(shim, machine, "shim")?;
                files.push((boot.into(), Cow::Borrowed(shim)));
                // shim loads grub<arch>.efi from its own directory.
                let arch_name = boot
                    .trim_start_matches("EFI/boot/BOOT")
                    .to_ascii_lowercase();
                files.push((format!("EFI/boot/grub{arch_name}"), Cow::Borrowed(grub)));
            }
            None => files.push((boot.into(), Cow::Borrowed(grub))),
        }
        // A GRUB built for another prefix (a distribution's signed one) reads
        // grub.cfg there or next to itself: both chain to BOOT's.
        let boot_uuid = p
            .partition(super::BOOT_LABEL)
            .map(|(_, b)| b.unique_guid)
            .ok_or_else(|| Error::invalid("the Talos plan has no BOOT partition"))?;
        let cfg = format!(
            "search --no-floppy --fs-uuid --set=root {}\nset prefix=($root)/grub\nconfigfile ($root)/{}\n",
            format!("{boot_uuid:x}").to_ascii_lowercase(),
            config::GRUB_CFG_PATH
        );
        files.push((
            "EFI/boot/grub.cfg".into(),
            Cow::Owned(cfg.clone().into_bytes()),
        ));
        if let Some(prefix) = crate::disk::layout::grub_builtin_prefix(grub) {
            let d = prefix.trim_matches('/');
            if !d.is_empty() && !d.starts_with('(') && !d.eq_ignore_ascii_case("EFI/boot") {
                files.push((format!("{d}/grub.cfg"), Cow::Owned(cfg.into_bytes())));
            }
        }
    } else {
        let sdboot = o.systemd_boot.ok_or_else(|| {
            Error::invalid(format!(
                "missing bootloader file: the Talos {} image boots UEFI through systemd-boot (--systemd-boot FILE)",
                p.bootloader.name()
            ))
        })?;
        crate::disk::layout::check_loader(sdboot, machine, "systemd-boot")?;
        files.push((boot.into(), Cow::Borrowed(sdboot)));
        files.push((config::uki_path(version)?, Cow::Borrowed(o.uki)));
        let enroll = (!o.enroll_keys.is_empty()).then_some(config::SecureBootEnroll::IfSafe);
        let conf = config::loader_conf(enroll);
        files.push(("loader/loader.conf".into(), Cow::Owned(conf.into_bytes())));
        for (name, data) in &o.enroll_keys {
            files.push((format!("loader/keys/auto/{name}"), Cow::Borrowed(*data)));
        }
    }
    files.extend(o.extra_files.iter().cloned());
    Ok(files)
}

/// Format the ESP as Talos does (`mkfs.vfat -F 32 -n EFI --invariant` on a file:
/// volume id 0x1234ABCD, hidden sectors 0) with its files.
fn write_esp<'a>(
    img: &mut DiskImage<'a>,
    o: &ImageOptions<'a>,
    p: &TalosPlan,
    pe: &PeFile<'a>,
    arch: Arch,
    version: &str,
) -> Result<EspSummary> {
    let files = esp_files(o, p, pe, arch, version)?;
    let (at, len) = span(p, super::ESP_LABEL)?;
    let fopts = FatOptions {
        label: super::ESP_LABEL.into(),
        volume_id: super::ESP_VOLUME_ID,
        timestamp: o.timestamp,
        sector_size: p.sector_size,
        hidden_sectors: 0,
    };
    let plan = fat::format(len, &fopts, files)?;
    place_esp(img, plan, at, super::ESP_LABEL.into(), super::ESP_VOLUME_ID)
}

/// BOOT (grub, dual-boot): XFS labelled BOOT whose UUID is its partition GUID, with
/// `A/vmlinuz` and `A/initramfs.xz` cut from the UKI and `grub/grub.cfg`. Returns
/// its files.
fn write_boot<'a>(
    img: &mut DiskImage<'a>,
    o: &ImageOptions<'a>,
    p: &TalosPlan,
    pe: &PeFile<'a>,
    version: &str,
) -> Result<Vec<String>> {
    let Some((_, part)) = p.partition(super::BOOT_LABEL) else {
        return Ok(Vec::new());
    };
    let (kernel, initrd, cmdline) =
        grub_boot_parts(pe, "Talos's BOOT holds its kernel and initramfs")?;
    let cfg = config::grub_cfg(version, cmdline.trim())?;
    // Modes as Talos's staging tree has them (grub/ 0700, grub.cfg 0600).
    let items = vec![
        XfsItem::file(config::KERNEL_PATH, Cow::Borrowed(kernel)),
        XfsItem::file(config::INITRAMFS_PATH, Cow::Borrowed(initrd)),
        XfsItem {
            path: "grub".into(),
            mode: Some(0o700),
            kind: ItemKind::Directory,
        },
        XfsItem {
            path: config::GRUB_CFG_PATH.into(),
            mode: Some(0o600),
            kind: ItemKind::File(Cow::Owned(cfg.into_bytes())),
        },
    ];
    let names = items.iter().map(|i| i.path.clone()).collect();
    let (at, len) = span(p, super::BOOT_LABEL)?;
    let opts = XfsOptions {
        size: len,
        sector_size: p.sector_size,
        label: super::BOOT_LABEL.into(),
        uuid: part.unique_guid,
        timestamp: o.timestamp,
        ag_count: None,
    };
    xfs::format(&opts, items)?.place(img, at)?;
    Ok(names)
}

/// META: the caller's records and, in dual-boot images, tag 0x11 = `dual-boot`;
/// all zero without records. Returns the tags written.
fn write_meta(img: &mut DiskImage<'_>, o: &ImageOptions<'_>, p: &TalosPlan) -> Result<Vec<u8>> {
    let mut m = meta::Meta::default();
    for (tag, value) in &o.talos.meta {
        m.set(*tag, value.to_vec())?;
    }
    if p.bootloader == Bootloader::DualBoot {
        m.set(meta::DISK_IMAGE_BOOTLOADER, b"dual-boot".to_vec())?;
    }
    let (at, len) = span(p, "META")?;
    let mut written = 0u64;
    if !m.is_empty() {
        let data = m.encode();
        written = data.len() as u64;
        img.put(at, data)?;
    }
    put_zeros(
        img,
        at.checked_add(written).ok_or_else(overflow)?,
        len.saturating_sub(written),
    )?;
    Ok(m.records().map(|(t, _)| t).collect())
}

fn partition_summaries(p: &TalosPlan) -> Result<Vec<PartitionSummary>> {
    (1usize..)
        .zip(&p.partitions)
        .map(|(index, gp)| {
            let (offset, size) = span(p, &gp.name)?;
            Ok(PartitionSummary {
                index,
                name: gp.name.clone(),
                type_guid: gp.type_guid,
                type_name: gpt::type_name(&gp.type_guid),
                unique_guid: gp.unique_guid,
                offset,
                size,
                attributes: gp.attributes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::layout::{build_image, test_pe, Layout};

    fn uki(machine: u16) -> Vec<u8> {
        test_pe(
            machine,
            &[
                (".osrel", b"NAME=Talos\nVERSION_ID=v1.11.0\n"),
                (".cmdline", b"talos.platform=metal console=ttyS0\0"),
                (".linux", &[0x4d; 5000]),
                (".initrd", &[0x07; 3000]),
            ],
        )
    }

    #[test]
    fn sd_boot_image_has_talos_esp_and_meta() {
        let u = uki(0x8664);
        let sd = test_pe(0x8664, &[(".text", b"sd-boot")]);
        let mut o = ImageOptions::new(Layout::Talos, &u);
        o.systemd_boot = Some(&sd);
        o.talos.bootloader = Some(Bootloader::SdBoot);
        o.talos.meta = vec![(0x0a, Cow::Borrowed(&b"net: {}"[..]))];
        let (img, s) = build_image(&o).unwrap();
        assert_eq!(s.size, 2246 << 20);
        let names: Vec<&str> = s.partitions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["EFI", "META"]);
        let t = s.talos.as_ref().unwrap();
        assert_eq!(t.uki_path.as_deref(), Some("EFI/Linux/Talos-v1.11.0.efi"));
        assert_eq!(t.meta_tags, [0x0a]);
        let paths: Vec<&str> = s.esp.files.iter().map(|f| f.path.as_str()).collect();
        assert!(paths.contains(&"EFI/boot/BOOTX64.efi"), "{paths:?}");
        assert_eq!(s.esp.volume_id, "1234-ABCD");
        let disk = img.to_vec();
        let m = &s.partitions[1];
        let r = meta::decode(&disk[m.offset as usize..(m.offset + m.size) as usize]);
        assert!(r.copies.iter().all(|c| c.valid));
        assert_eq!(r.records.len(), 1);
    }

    #[test]
    fn keys_make_a_secure_boot_sd_boot_image() {
        let u = uki(0x8664);
        let sd = test_pe(0x8664, &[(".text", b"sd-boot")]);
        let mut o = ImageOptions::new(Layout::Talos, &u);
        o.systemd_boot = Some(&sd);
        o.enroll_keys = vec![
            ("PK.auth".into(), &b"pk"[..]),
            ("db.auth".into(), &b"db"[..]),
        ];
        let (img, s) = build_image(&o).unwrap();
        assert_eq!(s.talos.as_ref().unwrap().bootloader, Bootloader::SdBoot);
        let disk = img.to_vec();
        let p = &s.partitions[0];
        let esp = &disk[p.offset as usize..(p.offset + p.size) as usize];
        let vol = crate::disk::fat::read_volume(esp).unwrap();
        let read = |path: &str| {
            let e = vol.entries.iter().find(|e| e.path == path).unwrap();
            vol.file_bytes(esp, e).unwrap().into_owned()
        };
        assert_eq!(
            read("loader/loader.conf"),
            b"# systemd-boot configuration\n\ntimeout 10\n\nsecure-boot-enroll if-safe\n"
        );
        assert_eq!(read("loader/keys/auto/db.auth"), b"db");
        assert_eq!(read("EFI/Linux/Talos-v1.11.0.efi"), u);
        o.talos.bootloader = Some(Bootloader::DualBoot);
        assert!(build_image(&o)
            .unwrap_err()
            .to_string()
            .contains("Secure Boot"));
    }

    #[test]
    fn refusals_name_the_missing_input() {
        let u = uki(0x8664);
        let err = |o: &ImageOptions<'_>| build_image(o).unwrap_err().to_string();
        let o = ImageOptions::new(Layout::Talos, &u);
        assert!(err(&o).contains("--grub-bios"), "{}", err(&o));
        let mut o = ImageOptions::new(Layout::Talos, &u);
        o.talos.bootloader = Some(Bootloader::SdBoot);
        assert!(err(&o).contains("--systemd-boot"), "{}", err(&o));
        let a = uki(0xaa64);
        let mut o = ImageOptions::new(Layout::Talos, &a);
        o.talos.bootloader = Some(Bootloader::DualBoot);
        assert!(err(&o).contains("amd64 only"), "{}", err(&o));
        let mut o = ImageOptions::new(Layout::Talos, &u);
        o.esp_size = Some(1 << 30);
        assert!(err(&o).contains("--esp-size"), "{}", err(&o));
        let mut o = ImageOptions::new(Layout::Talos, &u);
        o.talos.bootloader = Some(Bootloader::SdBoot);
        o.size = Some(1 << 30);
        assert!(err(&o).contains("smaller"), "{}", err(&o));
    }
}
