//! Talos `metal` images (`ukitool image --layout talos`) against outside referees:
//! GRUB's own grub-mkimage for core.img; sgdisk and the `gpt` crate for the partition
//! table; fsck.fat, xfs_repair and the kernel's XFS for the filesystems; the GUID
//! table of ../shared/reference/talos-image.md; and real firmware: OVMF (plain,
//! Secure Boot with the snakeoil keys, 4096-byte sectors) through systemd-boot to
//! `EFI/Linux/Talos-*.efi`, and SeaBIOS through GRUB i386-pc and the XFS BOOT to
//! `A/vmlinuz`, each to the fixture kernel's marker. Each image boots once per path.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};
use ukitool_core::disk::gpt;
use ukitool_core::disk::sparse::DiskImage;
use ukitool_core::disk::talos::{bios, plan, Bootloader, TalosVersion};
use ukitool_tests::blockdev::{can_use_loop_devices, Loop, Mounted};
use ukitool_tests::qemu::{boot_bios_disk_with, boot_disk_with};
use ukitool_tests::tools::sign_command;
use ukitool_tests::{fixture, run, run_ok, text, tmpdir, ukitool, BootOptions, Firmware, TmpDir};

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

/// The identifiers of ../shared/reference/talos-image.md (Talos 1.13+, UUIDv8 over
/// SHA-256 of the label in the nil namespace): the disk's, then each partition's.
const DISK_GUID: &str = "d92d45b3-cde9-8760-be9f-a2a71fac8d11";
const PARTITION_GUIDS: [(&str, &str); 4] = [
    ("EFI", "bca5174b-0118-8a6a-af0b-2c6e1585acae"),
    ("BIOS", "a2a02ff5-d88d-8e6e-9c95-26b9b6c80bc3"),
    ("BOOT", "24c73076-4092-85dd-9d98-686a2dbf6d81"),
    ("META", "cf04f137-101e-8ec6-9627-fa3f51cdabb8"),
];
/// The dual-boot image on 1.11 and later, and its LBAs (talos-image.md).
const DUAL_BOOT_SIZE: u64 = 4_453_302_272;
const DUAL_BOOT_LBAS: [(&str, u64, u64); 4] = [
    ("EFI", 2048, 4_304_895),
    ("BIOS", 4_304_896, 4_306_943),
    ("BOOT", 4_306_944, 8_402_943),
    ("META", 8_402_944, 8_404_991),
];

/// `ukitool image --layout talos --json` of `uki` with `args`: the image and its summary.
fn talos_image(
    dir: &TmpDir,
    name: &str,
    uki: &Path,
    args: &[&str],
) -> (PathBuf, serde_json::Value) {
    let out = dir.join(name);
    let json = run_ok(
        ukitool()
            .arg("image")
            .arg("--uki")
            .arg(uki)
            .arg("-o")
            .arg(&out)
            .args(["--layout", "talos", "--json"])
            .args(args),
    );
    (out, serde_json::from_str(&json).unwrap())
}

fn fixture_str(name: &str) -> String {
    fixture(name).to_string_lossy().into_owned()
}

/// (offset, size) of the partition named `name` in a summary.
fn part(summary: &serde_json::Value, name: &str) -> (u64, u64) {
    let p = summary["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {summary}"));
    (p["offset"].as_u64().unwrap(), p["size"].as_u64().unwrap())
}

/// The GPT as the `gpt` crate reads it: the disk GUID, and each partition's name,
/// GUID, LBAs and attributes.
fn check_gpt(img: &Path, sector: u64, lbas: Option<&[(&str, u64, u64)]>) {
    if sector == 512 {
        let v = run_ok(Command::new("sgdisk").arg("-v").arg(img));
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
        .open(img)
        .unwrap();
    assert_eq!(disk.guid().to_string(), DISK_GUID);
    assert_eq!(disk.header().first_usable, (1 << 20) / sector);
    for (i, p) in disk.partitions() {
        let want = PARTITION_GUIDS.iter().find(|g| g.0 == p.name).unwrap();
        assert_eq!(p.part_guid.to_string(), want.1, "partition {i} {}", p.name);
        assert_eq!(p.flags, if p.name == "BIOS" { 4 } else { 0 });
        if let Some(l) = lbas {
            let want = l.iter().find(|l| l.0 == p.name).unwrap();
            assert_eq!((p.first_lba, p.last_lba), (want.1, want.2), "{}", p.name);
        }
    }
}

fn read_at(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut v = vec![0u8; len as usize];
    std::io::Read::read_exact(&mut f, &mut v).unwrap();
    v
}

/// META read as go-adv reads it, written out here from its format (not through the
/// core): both 256 KiB copies with their magics and SHA-256; the records of copy 1.
fn meta_records(img: &Path, summary: &serde_json::Value) -> BTreeMap<u32, Vec<u8>> {
    let (at, len) = part(summary, "META");
    assert_eq!(len, 1 << 20);
    let meta = read_at(img, at, len);
    let be = |b: &[u8], o: usize| u32::from_be_bytes(b[o..o + 4].try_into().unwrap());
    for copy in [&meta[..0x40000], &meta[0x40000..0x80000]] {
        assert_eq!(be(copy, 0), 0x5a4b_3c2d, "magic1");
        assert_eq!(be(copy, copy.len() - 4), 0xa5b4_c3d2, "magic2");
        let mut zeroed = copy.to_vec();
        let h = copy.len() - 36;
        zeroed[h..h + 32].fill(0);
        assert_eq!(Sha256::digest(&zeroed)[..], copy[h..h + 32], "META hash");
    }
    assert_eq!(meta[..0x40000], meta[0x40000..0x80000]);
    assert!(meta[0x80000..].iter().all(|&b| b == 0), "syslinux ADV zero");
    let mut records = BTreeMap::new();
    let mut o = 4;
    while be(&meta, o) != 0 {
        let len = be(&meta, o + 4) as usize;
        records.insert(be(&meta, o), meta[o + 8..o + 8 + len].to_vec());
        o += 8 + len;
    }
    records
}

/// Talos's grub.cfg parse rules (bootloader/grub/decode.go): exactly one `set
/// default`, entries `A - ...` and `Reset ...` with one `linux` and one `initrd` line
/// each. Returns the A entry's linux arguments.
fn check_grub_cfg(cfg: &str) -> String {
    let defaults: Vec<&str> = cfg
        .lines()
        .filter(|l| l.starts_with("set default="))
        .collect();
    assert_eq!(defaults.len(), 1, "{cfg}");
    let mut entries: Vec<(String, Vec<&str>)> = Vec::new();
    for l in cfg.lines() {
        if let Some(name) = l.strip_prefix("menuentry \"") {
            entries.push((name.split('"').next().unwrap().to_string(), Vec::new()));
        } else if let Some(e) = entries.last_mut() {
            if l != "}" {
                e.1.push(l.trim());
            }
        }
    }
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert!(
        names.len() == 2 && names[0].starts_with("A - ") && names[1].starts_with("Reset "),
        "{names:?}"
    );
    assert_eq!(defaults[0], format!("set default=\"{}\"", names[0]));
    for (_, body) in &entries {
        assert_eq!(body.iter().filter(|l| l.starts_with("linux ")).count(), 1);
        assert_eq!(body.iter().filter(|l| l.starts_with("initrd ")).count(), 1);
        assert!(body.contains(&"initrd /A/initramfs.xz"));
    }
    let linux = entries[0]
        .1
        .iter()
        .find(|l| l.starts_with("linux "))
        .unwrap();
    linux.strip_prefix("linux /A/vmlinuz ").unwrap().to_string()
}

/// A partition on a read-only loop device.
fn partition_loop(img: &Path, (at, len): (u64, u64)) -> Loop {
    Loop::attach(
        img,
        &[
            "-r",
            "--offset",
            &at.to_string(),
            "--sizelimit",
            &len.to_string(),
        ],
    )
}

/// fsck.fat on the ESP; for GRUB's layouts xfs_repair on BOOT, then BOOT mounted
/// read-only: grub.cfg by Talos's rules, the kernel and initramfs byte-identical to
/// the fixture files the UKI was built from.
fn check_filesystems(img: &Path, summary: &serde_json::Value, has_boot: bool) {
    if !can_use_loop_devices(&["fsck.fat", "xfs_repair", "mount"]) {
        return;
    }
    let esp = partition_loop(img, part(summary, "EFI"));
    let out = run(Command::new("fsck.fat").arg("-n").arg(&esp.dev));
    assert!(out.status.success(), "fsck.fat: {}", text(&out));
    drop(esp);
    if !has_boot {
        return;
    }
    let boot = partition_loop(img, part(summary, "BOOT"));
    let out = run(Command::new("xfs_repair").arg("-n").arg(&boot.dev));
    assert!(out.status.success(), "xfs_repair -n: {}", text(&out));
    let dir = tmpdir();
    let at = dir.join("mnt");
    fs::create_dir_all(&at).unwrap();
    let out = run(Command::new("mount")
        .args(["-t", "xfs", "-o", "ro", &boot.dev])
        .arg(&at));
    assert!(out.status.success(), "mount: {}", text(&out));
    let mounted = Mounted(at.clone());
    let cfg = fs::read_to_string(at.join("grub/grub.cfg")).unwrap();
    let args = check_grub_cfg(&cfg);
    assert_eq!(args, fs::read_to_string(fixture("cmdline")).unwrap().trim());
    assert!(fs::read(at.join("A/vmlinuz")).unwrap() == fs::read(fixture("vmlinuz")).unwrap());
    assert!(
        fs::read(at.join("A/initramfs.xz")).unwrap()
            == fs::read(fixture("initrd.cpio.gz")).unwrap()
    );
    drop(mounted);
}

fn long_boot() -> BootOptions {
    BootOptions {
        timeout: Duration::from_secs(240),
        ..BootOptions::default()
    }
}

/// The marker, with the command line the fixture UKI carries.
fn assert_marker(what: &str, log: &ukitool_tests::BootLog) {
    let marker = log
        .marker()
        .unwrap_or_else(|| panic!("{what}: no marker: {}", log.tail(40)));
    assert!(
        log.cmdline().unwrap_or_default().contains("ukitool.test=1"),
        "{marker}"
    );
    eprintln!("{what}: {marker} ({:.1}s)", log.elapsed.as_secs_f64());
}

/// One dual-boot image: the table, sizes, identifiers, filesystems and META by the
/// referees, `inspect`'s report, then the same disk booted from UEFI and from BIOS.
#[test]
fn dual_boot_image_passes_the_referees_and_boots_uefi_and_bios() {
    let dir = tmpdir();
    let net = dir.join("net.yaml");
    fs::write(&net, "addresses: []\n").unwrap();
    let meta_arg = format!("0x0a=@{}", net.display());
    let (img, s) = talos_image(
        &dir,
        "talos-dual-boot.raw",
        &fixture("uki.efi"),
        &[
            "--systemd-boot",
            &fixture_str("systemd-bootx64.efi"),
            "--grub-bios",
            GRUB_DIR,
            "--meta",
            &meta_arg,
        ],
    );
    assert_eq!(fs::metadata(&img).unwrap().len(), DUAL_BOOT_SIZE);
    assert_eq!(s["talos"]["bootloader"], "dual-boot");
    check_gpt(&img, 512, Some(&DUAL_BOOT_LBAS));
    check_filesystems(&img, &s, true);
    let records = meta_records(&img, &s);
    assert_eq!(records[&0x11], b"dual-boot");
    assert_eq!(records[&0x0a], b"addresses: []\n");
    assert_eq!(records.len(), 2);
    // The ESP's files by the names Talos globs for.
    let files: Vec<&str> = s["esp"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for want in [
        "EFI/boot/BOOTX64.efi",
        "EFI/Linux/Talos-1.0.efi",
        "loader/loader.conf",
    ] {
        assert!(files.contains(&want), "{files:?}");
    }
    // The same inputs make the same bytes.
    let (again, _) = talos_image(
        &dir,
        "again.raw",
        &fixture("uki.efi"),
        &[
            "--systemd-boot",
            &fixture_str("systemd-bootx64.efi"),
            "--grub-bios",
            GRUB_DIR,
            "--meta",
            &meta_arg,
        ],
    );
    assert_eq!(
        ukitool_tests::sha256_file(&img),
        ukitool_tests::sha256_file(&again)
    );
    fs::remove_file(&again).unwrap();
    check_inspect(&img);

    let log = boot_disk_with(&img, Firmware::Plain, &long_boot());
    assert_marker("dual-boot, OVMF -> systemd-boot -> Talos-1.0.efi", &log);
    let log = boot_bios_disk_with(&img, &long_boot());
    assert!(log.serial.contains("GRUB loading"), "{}", log.tail(30));
    assert_marker("dual-boot, SeaBIOS -> GRUB i386-pc -> XFS BOOT", &log);
}

/// `ukitool inspect` on a Talos disk: META by tag name, and the Talos facts.
fn check_inspect(img: &Path) {
    let json = run_ok(ukitool().arg("inspect").arg(img).arg("--json"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let t = &v["talos"];
    assert_eq!(t["bootloader"], "dual-boot", "{t}");
    assert_eq!(t["version"], "1.0");
    assert_eq!(t["uki"], "EFI/Linux/Talos-1.0.efi");
    let entries: Vec<&str> = t["grub_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(entries[0], "A - Talos 1.0");
    let m = &v["meta"];
    assert!(
        m["copies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["valid"] == true),
        "{m}"
    );
    let rec = m["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tag"] == 0x11)
        .unwrap();
    assert_eq!(rec["name"], "disk-image-bootloader");
    assert_eq!(rec["value"]["value"], "dual-boot");
    let human = run_ok(ukitool().arg("inspect").arg(img));
    assert!(human.contains("disk-image-bootloader"), "{human}");
    assert!(human.contains("dual-boot image, version 1.0"), "{human}");
}

/// sd-boot under OVMF Secure Boot with the snakeoil keys: systemd-boot and the UKI
/// both signed by `ukitool sign`.
#[test]
fn sd_boot_image_boots_under_secure_boot() {
    let dir = tmpdir();
    let (key, cert) = (fixture("snakeoil.key"), fixture("snakeoil.pem"));
    let sdboot = dir.join("systemd-bootx64.signed.efi");
    run_ok(&mut sign_command(
        &fixture("systemd-bootx64.efi"),
        &key,
        &cert,
        &sdboot,
    ));
    let uki = dir.join("uki.signed.efi");
    run_ok(&mut sign_command(&fixture("uki.efi"), &key, &cert, &uki));
    let (img, s) = talos_image(
        &dir,
        "talos-sd-boot.raw",
        &uki,
        &[
            "--talos-bootloader",
            "sd-boot",
            "--systemd-boot",
            sdboot.to_str().unwrap(),
        ],
    );
    assert_eq!(fs::metadata(&img).unwrap().len(), 2246 << 20);
    check_gpt(&img, 512, None);
    check_filesystems(&img, &s, false);
    // No META records in an sd-boot image: META all zero, read as empty.
    let (at, len) = part(&s, "META");
    assert!(read_at(&img, at, len).iter().all(|&b| b == 0));
    let log = boot_disk_with(&img, Firmware::SecureBoot, &long_boot());
    assert!(!log.firmware_refused(), "{}", log.tail(30));
    assert_marker("sd-boot, OVMF Secure Boot", &log);
    assert_eq!(log.secure_boot(), Some(true), "{}", log.tail(20));
}

/// The grub image: GRUB i386-pc from the BIOS partition, and GRUB EFI from the ESP,
/// both reading BOOT's XFS.
#[test]
fn grub_image_boots_from_bios() {
    let dir = tmpdir();
    let (img, s) = talos_image(
        &dir,
        "talos-grub.raw",
        &fixture("uki.efi"),
        &[
            "--talos-bootloader",
            "grub",
            "--grub",
            &fixture_str("grubx64.efi.signed"),
            "--grub-bios",
            GRUB_DIR,
        ],
    );
    assert_eq!(fs::metadata(&img).unwrap().len(), 2246 << 20);
    assert_eq!(part(&s, "EFI").1, 100 << 20);
    check_gpt(&img, 512, None);
    check_filesystems(&img, &s, true);
    let (at, len) = part(&s, "META");
    assert!(
        read_at(&img, at, len).iter().all(|&b| b == 0),
        "no META records"
    );
    let log = boot_bios_disk_with(&img, &long_boot());
    assert_marker("grub, SeaBIOS -> GRUB i386-pc", &log);
    // UEFI: Debian's signed GRUB reads the ESP's grub.cfg in its built-in prefix
    // (/EFI/debian), which finds BOOT by its UUID and reads BOOT's grub.cfg.
    let log = boot_disk_with(&img, Firmware::Plain, &long_boot());
    assert_marker("grub, OVMF -> GRUB EFI -> XFS BOOT", &log);
}

/// `metal-4k`: the sd-boot image on 4096-byte sectors, booted by OVMF from a
/// virtio-blk disk with logical_block_size=4096.
#[test]
fn sd_boot_4k_image_boots_with_4096_byte_sectors() {
    let dir = tmpdir();
    let (img, s) = talos_image(
        &dir,
        "talos-4k.raw",
        &fixture("uki.efi"),
        &[
            "--talos-bootloader",
            "sd-boot",
            "--sector-size",
            "4096",
            "--systemd-boot",
            &fixture_str("systemd-bootx64.efi"),
        ],
    );
    assert_eq!(s["sector_size"], 4096);
    check_gpt(&img, 4096, None);
    let opts = BootOptions {
        logical_block_size: Some(4096),
        ..long_boot()
    };
    let log = boot_disk_with(&img, Firmware::Plain, &opts);
    assert_marker("sd-boot 4K, OVMF virtio-blk 4096", &log);
}

/// `write` with a UKI source makes the same Talos image as `image`.
#[test]
fn write_to_a_file_makes_the_same_talos_image() {
    let dir = tmpdir();
    let args = [
        "--talos-bootloader",
        "sd-boot",
        "--systemd-boot",
        &fixture_str("systemd-bootx64.efi"),
    ];
    let (img, _) = talos_image(&dir, "image.raw", &fixture("uki.efi"), &args);
    let file = dir.join("written.raw");
    let out = run(ukitool()
        .arg("write")
        .arg(fixture("uki.efi"))
        .arg(&file)
        .args(["--yes", "--to-file", "--layout", "talos"])
        .args(args));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        ukitool_tests::sha256_file(&file),
        ukitool_tests::sha256_file(&img)
    );
}

/// Refusals: dual-boot on arm64 is the core's (unit tests); here the CLI's one line.
#[test]
fn missing_grub_bios_is_one_clear_line() {
    let dir = tmpdir();
    let out = run(ukitool()
        .args(["image", "--layout", "talos", "--uki"])
        .arg(fixture("uki.efi"))
        .arg("-o")
        .arg(dir.join("x.raw"))
        .arg("--systemd-boot")
        .arg(fixture("systemd-bootx64.efi")));
    let line = ukitool_tests::assert_one_line_error(&out, "talos without --grub-bios");
    assert!(line.contains("--grub-bios"), "{line}");
}
