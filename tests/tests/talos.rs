//! `disk::talos` against outside referees: GRUB's own grub-mkimage for core.img, sgdisk
//! and the `gpt` crate for the partition table, and QEMU's SeaBIOS booting the BIOS
//! boot code through Talos's grub.cfg to the fixture kernel's marker.
//!
//! BOOT is XFS in a Talos image; until the XFS writer lands, these tests put a FAT
//! volume there (GRUB's `fat` module is in Talos's list), which is all GRUB needs to
//! find `(hd0,gpt3)/grub/grub.cfg`, `A/vmlinuz` and `A/initramfs.xz`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ukitool_core::disk::fat::{self, FatOptions};
use ukitool_core::disk::gpt;
use ukitool_core::disk::sparse::DiskImage;
use ukitool_core::disk::talos::{bios, config, meta, plan, Bootloader, TalosPlan, TalosVersion};
use ukitool_core::pe::PeFile;
use ukitool_tests::qemu::boot_bios_disk_with;
use ukitool_tests::{fixture, run_ok, tmpdir, BootOptions};

const GRUB_DIR: &str = "/usr/lib/grub/i386-pc";

/// Every file of GRUB's i386-pc directory, by name (what `--grub-bios DIR` reads).
fn grub_files() -> BTreeMap<String, Vec<u8>> {
    let dir = Path::new(GRUB_DIR);
    assert!(
        dir.join("kernel.img").exists(),
        "{GRUB_DIR} is missing: apt-get install grub-pc-bin"
    );
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap())
        })
        .collect()
}

fn our_core_img(files: &BTreeMap<String, Vec<u8>>) -> bios::CoreImage {
    bios::core_img(
        |n| files.get(n).map(Vec::as_slice),
        bios::MODULES,
        bios::PREFIX,
    )
    .unwrap()
}

/// Write a sparse image to `out`: data extents written, holes left as holes.
fn write_sparse(img: &DiskImage<'_>, out: &Path) {
    let mut f = File::create(out).unwrap();
    f.set_len(img.size).unwrap();
    img.walk::<std::io::Error>(
        |off, data| {
            f.seek(SeekFrom::Start(off))?;
            f.write_all(data)
        },
        |_, _| Ok(()),
    )
    .unwrap();
}

#[test]
fn core_img_matches_grub_mkimage_structurally() {
    let files = grub_files();
    let ours = our_core_img(&files);
    let dir = tmpdir();
    let theirs_path = dir.join("core.img");
    run_ok(
        Command::new("grub-mkimage")
            .args(["-O", "i386-pc", "-d", GRUB_DIR, "-p", bios::PREFIX, "-o"])
            .arg(&theirs_path)
            .args(bios::MODULES),
    );
    let theirs = fs::read(&theirs_path).unwrap();
    let a = bios::read_core(&ours.bytes).unwrap();
    let b = bios::read_core(&theirs).unwrap();
    // The same modules, in the same order, the same kernel, prefix and header fields,
    // and the same payload before compression, byte for byte.
    assert_eq!(a.modules, b.modules);
    assert_eq!(a.modules, ours.modules);
    assert!(a.modules.iter().any(|m| m == "fat") && a.modules.len() > bios::MODULES.len());
    assert_eq!(a.prefix.as_deref(), Some(bios::PREFIX));
    assert_eq!(a.prefix, b.prefix);
    assert_eq!(a.kernel_size, b.kernel_size);
    assert_eq!(a.kernel_size, ours.kernel_size);
    assert_eq!(a.uncompressed_size, b.uncompressed_size);
    assert_eq!(
        a.uncompressed_size,
        ours.kernel_size + ours.total_module_size
    );
    assert_eq!(a.payload_sha256, b.payload_sha256);
    assert_eq!(a.decompressor_size, b.decompressor_size);
    assert_eq!(
        (a.blocklist_start, a.blocklist_segment),
        (b.blocklist_start, b.blocklist_segment)
    );
    let sectors = |core: &[u8], c: &bios::CoreInfo| {
        (core.len() as u64 - 512).div_ceil(512) == u64::from(c.blocklist_sectors)
    };
    assert!(sectors(&ours.bytes, &a) && sectors(&theirs, &b));
    // diskboot.img up to the blocklist, and the decompressor but its compressed size,
    // are GRUB's own bytes.
    assert_eq!(ours.bytes[..0x1fc], theirs[..0x1fc]);
    let dec = 512 + a.decompressor_size as usize;
    assert_eq!(ours.bytes[512..520], theirs[512..520]);
    assert_eq!(ours.bytes[524..dec], theirs[524..dec]);
    eprintln!(
        "core.img: ours {} bytes, grub-mkimage {} bytes; payload {} bytes, {} modules",
        ours.bytes.len(),
        theirs.len(),
        a.uncompressed_size,
        a.modules.len()
    );
}

#[test]
fn talos_tables_pass_sgdisk_and_the_gpt_crate() {
    let dir = tmpdir();
    for (bootloader, sector) in [
        (Bootloader::DualBoot, 512u64),
        (Bootloader::Grub, 512),
        (Bootloader::SdBoot, 512),
        (Bootloader::SdBoot, 4096),
    ] {
        let p = plan(bootloader, TalosVersion::NEWEST, sector).unwrap();
        let mut img = DiskImage::new(p.disk_size);
        gpt::write_with(
            &mut img,
            sector,
            p.disk_guid,
            &p.partitions,
            &p.gpt_options(None),
        )
        .unwrap();
        let out = dir.join(format!("{}-{sector}.img", bootloader.name()));
        write_sparse(&img, &out);
        if sector == 512 {
            let v = run_ok(Command::new("sgdisk").arg("-v").arg(&out));
            assert!(v.contains("No problems found"), "{v}");
        }
        let lb = if sector == 512 {
            ::gpt::disk::LogicalBlockSize::Lb512
        } else {
            ::gpt::disk::LogicalBlockSize::Lb4096
        };
        let disk = ::gpt::GptConfig::new()
            .writable(false)
            .logical_block_size(lb)
            .open(&out)
            .unwrap();
        assert_eq!(
            disk.guid().to_string(),
            "d92d45b3-cde9-8760-be9f-a2a71fac8d11"
        );
        assert_eq!(disk.header().first_usable, (1 << 20) / sector);
        for (i, want) in (1u32..).zip(&p.partitions) {
            let got = &disk.partitions()[&i];
            assert_eq!(got.name, want.name);
            assert_eq!(got.part_guid.to_string(), format!("{:x}", want.unique_guid));
            assert_eq!(
                (got.first_lba, got.last_lba),
                (want.first_lba, want.last_lba)
            );
            assert_eq!(got.flags, want.attributes);
        }
        fs::remove_file(&out).unwrap();
    }
}

/// The dual-boot image with BIOS boot and a FAT BOOT: the GPT, GRUB's boot code and
/// core.img, BOOT with grub.cfg and the kernel and initramfs cut from the UKI, META.
fn dual_boot_disk(uki: &[u8], out: &Path) -> TalosPlan {
    let p = plan(Bootloader::DualBoot, TalosVersion::NEWEST, 512).unwrap();
    let files = grub_files();
    let core = our_core_img(&files);
    let (bios_at, bios_len) = p.span("BIOS").unwrap();
    let placed = bios::place(&core.bytes, &files["boot.img"], bios_at / 512).unwrap();
    assert!((placed.core_img.len() as u64) < bios_len);
    let mut img = DiskImage::new(p.disk_size);
    let opts = p.gpt_options(Some(&placed.boot_code));
    gpt::write_with(&mut img, 512, p.disk_guid, &p.partitions, &opts).unwrap();
    img.put(bios_at, placed.core_img).unwrap();

    let pe = PeFile::parse(uki).unwrap();
    let section = |n: &str| pe.section_payload(n).unwrap().unwrap();
    let version = config::version_id(uki).unwrap();
    let cmdline = ukitool_core::bytes::text(section(".cmdline"));
    let cfg = config::grub_cfg(&version, cmdline.trim()).unwrap();
    let (boot_at, boot_len) = p.span("BOOT").unwrap();
    let fopts = FatOptions {
        label: "BOOT".into(),
        hidden_sectors: boot_at / 512,
        ..FatOptions::default()
    };
    let boot_files: Vec<(String, Cow<'_, [u8]>)> = vec![
        (config::GRUB_CFG_PATH.into(), Cow::Owned(cfg.into_bytes())),
        (config::KERNEL_PATH.into(), Cow::Borrowed(section(".linux"))),
        (
            config::INITRAMFS_PATH.into(),
            Cow::Borrowed(section(".initrd")),
        ),
    ];
    for (off, data) in fat::format(boot_len, &fopts, boot_files).unwrap().extents {
        img.put(boot_at + off, data).unwrap();
    }
    let mut m = meta::Meta::default();
    m.set(meta::DISK_IMAGE_BOOTLOADER, b"dual-boot".to_vec())
        .unwrap();
    img.put(p.span("META").unwrap().0, m.encode()).unwrap();
    write_sparse(&img, out);
    p
}

fn read_at(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut v = vec![0u8; len as usize];
    std::io::Read::read_exact(&mut f, &mut v).unwrap();
    v
}

#[test]
fn qemu_boot_seabios_grub_i386_pc_to_the_kernel() {
    let dir = tmpdir();
    let img: PathBuf = dir.join("talos-dual-boot.raw");
    let uki = fs::read(fixture("uki.efi")).unwrap();
    let p = dual_boot_disk(&uki, &img);
    let v = run_ok(Command::new("sgdisk").arg("-v").arg(&img));
    assert!(v.contains("No problems found"), "{v}");
    let (meta_at, meta_len) = p.span("META").unwrap();
    let m = meta::decode(&read_at(&img, meta_at, meta_len));
    assert!(m.copies.iter().all(|c| c.valid), "{:?}", m.copies);
    assert_eq!(m.records.len(), 1);
    assert_eq!(m.records[0].name, Some("disk-image-bootloader"));

    let opts = BootOptions {
        timeout: Duration::from_secs(240),
        ..BootOptions::default()
    };
    let log = boot_bios_disk_with(&img, &opts);
    assert!(
        log.serial.contains("GRUB loading"),
        "SeaBIOS did not run boot.img: {}",
        log.tail(30)
    );
    let marker = log
        .marker()
        .unwrap_or_else(|| panic!("no marker: {}", log.tail(40)));
    // GRUB booted A/vmlinuz and A/initramfs.xz with the UKI's command line.
    let cmdline = log.cmdline().unwrap_or_default();
    assert!(cmdline.contains("ukitool.test=1"), "{marker}");
    eprintln!("{marker} ({:.1}s)", log.elapsed.as_secs_f64());
}
