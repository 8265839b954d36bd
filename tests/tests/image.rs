//! `ukitool image` against outside referees: sgdisk -v for the GPT, fsck.fat -n for the
//! ESP, mtools to read every file back, QEMU + OVMF to boot each layout; plus
//! reproducibility, `ukitool inspect` on the result, and clear errors for bad options.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use ukitool_tests::blockdev::Loop;
use ukitool_tests::{
    boot_disk, fixture, fixture_bytes, path_str, run, sha256_file, text, tmpdir, ukitool, Firmware,
    TmpDir,
};

/// Make an image; returns its path and the `--json` summary.
fn image<S: AsRef<OsStr>>(dir: &TmpDir, name: &str, args: &[S]) -> (PathBuf, Value) {
    let out = dir.join(name);
    let o = run(ukitool()
        .arg("image")
        .arg("-o")
        .arg(&out)
        .arg("--json")
        .args(args));
    let shown: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    assert!(o.status.success(), "ukitool image {shown:?}: {}", text(&o));
    let summary =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("summary: {e}: {}", text(&o)));
    (out, summary)
}

/// `--uki uki.efi` and the options of one layout, its bootloaders from the fixtures:
/// `uefi`, `systemd-boot` or `grub` (behind shim); then `extra`.
fn layout_args(layout: &str, extra: &[&str]) -> Vec<String> {
    let f = |name: &str| fixture(name).display().to_string();
    let mut args = vec!["--uki".to_string(), f("uki.efi")];
    let more: Vec<String> = match layout {
        "uefi" => vec![],
        "systemd-boot" => vec![
            "--layout".into(),
            "systemd-boot".into(),
            "--systemd-boot".into(),
            f("systemd-bootx64.efi"),
        ],
        "grub" => vec![
            "--layout".into(),
            "grub".into(),
            "--grub".into(),
            f("grubx64.efi.signed"),
            "--shim".into(),
            f("shimx64.efi.signed"),
        ],
        other => panic!("no layout {other}"),
    };
    args.extend(more);
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// sgdisk -v on the image; for 4096-byte sectors through a read-only loop device with
/// that logical block size, since sgdisk reads an image file as 512-byte sectors.
fn sgdisk_verify(img: &Path, sector: u64) {
    let out = if sector == 512 {
        run(Command::new("sgdisk").arg("-v").arg(img))
    } else {
        let lo = match Loop::try_attach(img, &["-r", "-b", "4096"]) {
            Ok(lo) => lo,
            Err(e) => {
                eprintln!("SKIP sgdisk -v at 4096-byte sectors: losetup: {e}");
                return;
            }
        };
        run(Command::new("sgdisk").arg("-v").arg(&lo.dev))
    };
    let t = text(&out);
    assert!(
        out.status.success() && t.contains("No problems found"),
        "sgdisk -v {}: {t}",
        img.display()
    );
}

/// fsck.fat -n on the ESP, copied out of the image: it must print nothing but its
/// version line and the summary line.
fn fsck_esp(dir: &TmpDir, img: &Path, offset: u64, size: u64) {
    let data = fs::read(img).unwrap();
    let esp = dir.join("esp.fat");
    fs::write(&esp, &data[offset as usize..(offset + size) as usize]).unwrap();
    let o = run(Command::new("fsck.fat").arg("-n").arg(&esp));
    let t = text(&o);
    let lines: Vec<&str> = t.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(o.status.success(), "fsck.fat -n: {t}");
    assert_eq!(lines.len(), 2, "fsck.fat -n reported something: {t}");
    assert!(lines[0].starts_with("fsck.fat "), "{t}");
    assert!(lines[1].contains(" files, "), "{t}");
    let _ = fs::remove_file(esp);
}

/// Every file mdir lists on the ESP, and each one's bytes through mcopy.
fn esp_files(dir: &TmpDir, img: &Path, offset: u64) -> BTreeMap<String, Vec<u8>> {
    let at = format!("{}@@{offset}", path_str(img));
    let o = run(Command::new("mdir").args(["-/", "-b", "-i", &at, "::/"]));
    assert!(o.status.success(), "mdir: {}", text(&o));
    let mut files = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let Some(p) = line.trim().strip_prefix("::/") else {
            continue;
        };
        if p.is_empty() || p.ends_with('/') {
            continue;
        }
        let dst = dir.join("mcopy.out");
        let _ = fs::remove_file(&dst);
        let c = run(Command::new("mcopy")
            .args(["-n", "-i", &at, &format!("::/{p}")])
            .arg(&dst));
        if !c.status.success() {
            // mdir -b also lists directories without a trailing slash.
            continue;
        }
        files.insert(p.to_string(), fs::read(&dst).unwrap());
    }
    files
}

fn esp_of(summary: &Value) -> (u64, u64) {
    let p = &summary["partitions"][0];
    assert_eq!(p["type_name"], "efi-system");
    (p["offset"].as_u64().unwrap(), p["size"].as_u64().unwrap())
}

/// The referee checks every layout gets: GPT, FAT, file contents, inspect.
fn check(
    dir: &TmpDir,
    img: &Path,
    summary: &Value,
    sector: u64,
    expected: &BTreeMap<&str, Vec<u8>>,
) {
    sgdisk_verify(img, sector);
    let (off, size) = esp_of(summary);
    assert_eq!(off % (1 << 20), 0, "ESP not 1 MiB aligned");
    fsck_esp(dir, img, off, size);
    let got = esp_files(dir, img, off);
    let got_names: Vec<&str> = got.keys().map(String::as_str).collect();
    let want_names: Vec<&str> = expected.keys().copied().collect();
    assert_eq!(got_names, want_names, "files on the ESP");
    for (p, want) in expected {
        assert!(got[*p] == *want, "{p} differs from its source");
    }
    // ukitool inspect finds the partitions, the files and the UKI's sections.
    let o = run(ukitool().args(["inspect", "--json"]).arg(img));
    assert!(o.status.success(), "inspect: {}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let parts = r["partition_table"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), summary["partitions"].as_array().unwrap().len());
    assert_eq!(r["partition_table"]["sector_size"], sector);
    let fs0 = &r["filesystems"][0];
    let listed: Vec<&str> = fs0["fat"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["is_dir"] == false)
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for p in expected.keys() {
        assert!(listed.contains(p), "inspect does not list {p}: {listed:?}");
    }
    let efis = fs0["efi_binaries"].as_array().unwrap();
    let has_uki = efis.iter().any(|b| {
        b["report"]["sections"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == ".linux"))
    });
    let uki_expected = expected.values().any(|v| *v == fixture_bytes("uki.efi"));
    assert_eq!(has_uki, uki_expected, "inspect's EFI binaries: {efis:?}");
}

fn map(entries: &[(&'static str, Vec<u8>)]) -> BTreeMap<&'static str, Vec<u8>> {
    entries.iter().cloned().collect()
}

/// [`check`] for an image whose ESP holds just the fixture UKI, as BOOTX64.EFI.
fn check_uki_on_esp(dir: &TmpDir, img: &Path, summary: &Value, sector: u64) {
    let expected = map(&[("EFI/BOOT/BOOTX64.EFI", fixture_bytes("uki.efi"))]);
    check(dir, img, summary, sector, &expected);
}

/// The uefi layout: (image, options, sector size, FAT type of the ESP). FAT32 at 4096-byte
/// sectors needs an ESP large enough for 65525 clusters.
const UEFI_CASES: &[(&str, &[&str], u64, &str)] = &[
    ("uefi-512.img", &["--sector-size", "512"], 512, "fat32"),
    ("uefi-4096.img", &["--sector-size", "4096"], 4096, "fat16"),
    (
        "big-esp.img",
        &["--sector-size", "4096", "--esp-size", "300M"],
        4096,
        "fat32",
    ),
];

#[test]
fn uefi_layout_at_both_sector_sizes_and_fat32_at_4096_when_the_esp_is_large_enough() {
    let dir = tmpdir();
    for (name, options, sector, fat_type) in UEFI_CASES {
        let (img, sum) = image(&dir, name, &layout_args("uefi", options));
        assert_eq!(sum["esp"]["fat_type"], *fat_type, "{name}");
        check_uki_on_esp(&dir, &img, &sum, *sector);
    }
}

#[test]
fn systemd_boot_layout_with_keys_and_extra_files_both_sector_sizes() {
    let dir = tmpdir();
    let keys = dir.join("keys");
    fs::create_dir_all(&keys).unwrap();
    for k in ["PK.auth", "KEK.auth", "db.auth"] {
        fs::write(keys.join(k), format!("test {k}")).unwrap();
    }
    let extra = fixture("os-release");
    let add = format!("{}:extra/a long name with spaces.txt", path_str(&extra));
    for sector in [512u64, 4096] {
        let s = sector.to_string();
        let (img, sum) = image(
            &dir,
            &format!("sd-{sector}.img"),
            &layout_args(
                "systemd-boot",
                &[
                    "--enroll-keys",
                    path_str(&keys),
                    "--entry-name",
                    "test",
                    "--add-file",
                    &add,
                    "--sector-size",
                    &s,
                ],
            ),
        );
        let expected = map(&[
            ("EFI/BOOT/BOOTX64.EFI", fixture_bytes("systemd-bootx64.efi")),
            ("EFI/Linux/test.efi", fixture_bytes("uki.efi")),
            (
                "loader/loader.conf",
                b"timeout 0\ndefault test.efi\n".to_vec(),
            ),
            ("loader/keys/auto/PK.auth", b"test PK.auth".to_vec()),
            ("loader/keys/auto/KEK.auth", b"test KEK.auth".to_vec()),
            ("loader/keys/auto/db.auth", b"test db.auth".to_vec()),
            (
                "extra/a long name with spaces.txt",
                fixture_bytes("os-release"),
            ),
        ]);
        check(&dir, &img, &sum, sector, &expected);
    }
}

fn grub_expected(cfg: &[u8], with_debian: bool) -> BTreeMap<&'static str, Vec<u8>> {
    let mut m = map(&[
        ("EFI/BOOT/BOOTX64.EFI", fixture_bytes("shimx64.efi.signed")),
        ("EFI/BOOT/grubx64.efi", fixture_bytes("grubx64.efi.signed")),
        ("EFI/BOOT/grub.cfg", cfg.to_vec()),
        // The UKI was built from these two files: extraction must give them back.
        ("A/vmlinuz", fixture_bytes("vmlinuz")),
        ("A/initramfs", fixture_bytes("initrd.cpio.gz")),
    ]);
    if with_debian {
        m.insert("EFI/debian/grub.cfg", cfg.to_vec());
    }
    m
}

#[test]
fn grub_layout_behind_shim_both_sector_sizes() {
    let dir = tmpdir();
    let cmdline = String::from_utf8(fixture_bytes("cmdline")).unwrap();
    for sector in [512u64, 4096] {
        let s = sector.to_string();
        let (img, sum) = image(
            &dir,
            &format!("grub-{sector}.img"),
            &layout_args("grub", &["--sector-size", &s]),
        );
        let (off, _) = esp_of(&sum);
        let cfg = esp_files(&dir, &img, off)
            .remove("EFI/BOOT/grub.cfg")
            .expect("grub.cfg");
        let cfg_text = String::from_utf8_lossy(&cfg).to_string();
        assert!(
            cfg_text.contains(&format!("linux /A/vmlinuz {}", cmdline.trim())),
            "{cfg_text}"
        );
        // Debian's GRUB has /EFI/debian built in as its prefix: detected, no flag needed.
        check(&dir, &img, &sum, sector, &grub_expected(&cfg, true));
    }
}

// The talos layout has its own referees and boots: tests/tests/talos.rs.

#[test]
fn extra_partitions_guids_and_sizes() {
    let dir = tmpdir();
    let (img, sum) = image(
        &dir,
        "extra.img",
        &layout_args(
            "uefi",
            &[
                "--size",
                "1G",
                "--add-partition",
                "data:64M:linux",
                "--add-partition",
                "xboot:32M:xbootldr",
                "--disk-guid",
                "01234567-89AB-CDEF-0123-456789ABCDEF",
            ],
        ),
    );
    assert_eq!(sum["size"], 1u64 << 30);
    sgdisk_verify(&img, 512);
    // The sparse file holds only the data, not a gigabyte.
    let blocks = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&img).unwrap().blocks() * 512
    };
    assert_eq!(fs::metadata(&img).unwrap().len(), 1 << 30);
    assert!(
        blocks < 64 << 20,
        "{blocks} bytes allocated for a 1 GiB image"
    );
    let o = run(Command::new("sgdisk").arg("-p").arg(&img));
    let t = text(&o);
    assert!(t.contains("01234567-89AB-CDEF-0123-456789ABCDEF"), "{t}");
    assert!(t.contains("data") && t.contains("xboot"), "{t}");
    let o = run(Command::new("sgdisk").arg("-i").arg("3").arg(&img));
    assert!(
        text(&o).contains("BC13C2FF-59E6-4262-A352-B275FD6F7172"),
        "{}",
        text(&o)
    );
}

#[test]
fn same_inputs_same_bytes_and_stdout_matches_the_file() {
    let dir = tmpdir();
    let args = layout_args("systemd-boot", &["--timestamp", "1700000000"]);
    let (a, _) = image(&dir, "a.img", &args);
    let (b, _) = image(&dir, "b.img", &args);
    assert_eq!(sha256_file(&a), sha256_file(&b));
    // SOURCE_DATE_EPOCH is the default timestamp.
    let c = dir.join("c.img");
    let o = run(ukitool()
        .arg("image")
        .arg("-o")
        .arg(&c)
        .args(&args[..6])
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha256_file(&a), sha256_file(&c));
    // A different time gives a different image.
    let (d, _) = image(
        &dir,
        "d.img",
        &[&args[..6], &["--timestamp".into(), "1700000002".into()]].concat(),
    );
    assert_ne!(sha256_file(&a), sha256_file(&d));
    // `-o -` streams the same bytes.
    let o = run(ukitool().args(["image", "-o", "-"]).args(&args));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stdout == fs::read(&a).unwrap(),
        "stdout differs from the file"
    );
    let mtime =
        run(Command::new("mdir").args(["-i", &format!("{}@@1M", path_str(&a)), "::/EFI/Linux"]));
    assert!(text(&mtime).contains("2023-11-14"), "{}", text(&mtime));
}

#[test]
fn bad_options_are_clear_errors() {
    let dir = tmpdir();
    let uki = fixture("uki.efi");
    let u = path_str(&uki);
    let out = dir.join("x.img");
    let fail = |args: &[&str], want: &str| {
        let o = run(ukitool().arg("image").arg("-o").arg(&out).args(args));
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(
            t.contains("ukitool: error:") && t.contains(want),
            "{args:?}: want {want:?} in {t}"
        );
    };
    fail(&["--uki", u, "--esp-size", "2M"], "smaller than the files");
    fail(
        &["--uki", u, "--size", "20M"],
        "smaller than its partitions",
    );
    fail(&["--uki", u, "--layout", "bios"], "unknown layout");
    fail(
        &["--uki", u, "--layout", "systemd-boot"],
        "missing bootloader",
    );
    fail(&["--uki", u, "--layout", "grub"], "missing bootloader");
    fail(
        &[
            "--uki",
            u,
            "--layout",
            "grub",
            "--grub",
            "/nonexistent/grubx64.efi",
        ],
        "GRUB binary",
    );
    fail(&["--uki", u, "--sector-size", "1024"], "512 or 4096");
    fail(&["--uki", u, "--add-file", "nocolon"], "SRC:ESP_PATH");
    fail(
        &["--uki", u, "--add-partition", "x:1M:nonsense"],
        "partition type",
    );
    fail(&["--uki", path_str(&fixture("os-release"))], "not a PE");
}

// Boot tests: one QEMU + OVMF boot each (~10-30 s under TCG).

fn boot_image(name: &str, args: &[String], fw: Firmware) -> (ukitool_tests::BootLog, TmpDir) {
    let dir = tmpdir();
    let (img, _) = image(&dir, name, args);
    (boot_disk(&img, fw), dir)
}

/// [`boot_image`] of the default (uefi) layout holding the fixture `uki`.
fn boot_uki(name: &str, uki: &str, fw: Firmware) -> (ukitool_tests::BootLog, TmpDir) {
    boot_image(name, &["--uki".into(), path_str(&fixture(uki)).into()], fw)
}

fn assert_booted(log: &ukitool_tests::BootLog) {
    assert!(log.marker().is_some(), "no marker: {}", log.tail(30));
}

#[test]
fn qemu_boot_uefi_plain() {
    let (log, _d) = boot_uki("b1.img", "uki.efi", Firmware::Plain);
    assert_booted(&log);
    assert_eq!(log.secure_boot(), Some(false));
}

#[test]
fn qemu_boot_uefi_signed_under_secure_boot() {
    let (log, _d) = boot_uki("b2.img", "uki-signed.efi", Firmware::SecureBoot);
    assert_booted(&log);
    assert_eq!(log.secure_boot(), Some(true));
}

#[test]
fn qemu_boot_uefi_tampered_is_refused_under_secure_boot() {
    let (log, _d) = boot_uki("b3.img", "uki-tampered.efi", Firmware::SecureBoot);
    assert!(
        log.marker().is_none(),
        "a tampered UKI booted: {}",
        log.tail(30)
    );
    assert!(log.firmware_refused(), "no refusal seen: {}", log.tail(30));
}

#[test]
fn qemu_boot_systemd_boot() {
    let (log, _d) = boot_image("b4.img", &layout_args("systemd-boot", &[]), Firmware::Plain);
    assert_booted(&log);
}

#[test]
fn qemu_boot_grub_with_the_ukis_cmdline() {
    let (log, _d) = boot_image("b5.img", &layout_args("grub", &[]), Firmware::Plain);
    let cmdline = String::from_utf8(fixture_bytes("cmdline")).unwrap();
    let got = log
        .cmdline()
        .unwrap_or_else(|| panic!("no marker: {}", log.tail(30)));
    for word in cmdline.split_whitespace() {
        assert!(
            got.split_whitespace().any(|w| w == word),
            "{word:?} missing from {got:?}"
        );
    }
}

#[test]
fn memory_does_not_grow_with_the_disk_size() {
    // Peak RSS (GNU time's %M) must stay within the UKI's size plus 32 MiB whether the
    // disk is 1 GiB or 64 GiB: the image is extents, never a buffer of the disk's size.
    let dir = tmpdir();
    let uki = fixture("uki.efi");
    let limit_kib = (fs::metadata(&uki).unwrap().len() + (32 << 20)) / 1024;
    for size in ["1G", "64G"] {
        let out = dir.join(format!("m-{size}.img"));
        let o = run(Command::new("/usr/bin/time")
            .args(["-f", "maxrss=%M"])
            .arg(ukitool_tests::ukitool_bin())
            .args(["image", "-q", "--uki", path_str(&uki), "--size", size, "-o"])
            .arg(&out));
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        let rss: u64 = t
            .lines()
            .find_map(|l| l.strip_prefix("maxrss="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no maxrss in {t}"));
        assert!(
            rss < limit_kib,
            "{size}: peak RSS {rss} KiB, limit {limit_kib} KiB"
        );
        sgdisk_verify(&out, 512);
        let _ = fs::remove_file(out);
    }
}
