//! Real boots in QEMU (TCG, ~10-20 s each): the fixtures' busybox /init prints
//! `UKITOOL-MARKER booted secureboot=... cmdline=...` and powers off.
//!
//! - The harness itself: the fixture kernel+initrd boot directly; uki.efi on an ESP boots
//!   under plain OVMF; under Secure Boot (snakeoil keys enrolled) the snakeoil-signed UKI
//!   boots and reports `secureboot=enabled`, while a tampered or foreign-signed one is refused.
//! - Issue 2's GRUB path: `ukitool extract uki.efi --all -o DIR` gives a vmlinuz and initrd
//!   that boot with DIR/cmdline.

use std::fs;
use std::path::Path;

use ukitool_tests::{
    boot_disk, boot_kernel, esp_disk, fixture, fixture_text, tmpdir, ukitool, BootEnd, BootLog,
    Firmware,
};

/// The command line as the stub hands it over: the section's text without trailing
/// NULs or newlines.
fn cmdline_of(path: &Path) -> String {
    let raw = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    String::from_utf8_lossy(&raw)
        .trim_end_matches(['\0', '\n', ' '])
        .to_string()
}

fn assert_marker(log: &BootLog, cmdline: &str, secure_boot: Option<bool>) {
    assert!(log.marker().is_some(), "no marker: {log}");
    assert_eq!(log.cmdline().as_deref(), Some(cmdline), "{log}");
    assert_eq!(log.secure_boot(), secure_boot, "{log}");
}

fn disk_for(efi_fixture: &str) -> (ukitool_tests::TmpDir, std::path::PathBuf) {
    let dir = tmpdir();
    let img = dir.join("disk.img");
    esp_disk(&fixture(efi_fixture), &img);
    (dir, img)
}

#[test]
fn fixture_kernel_and_initrd_boot_directly() {
    let append = "console=ttyS0 panic=-1 ukitool.direct=1";
    let log = boot_kernel(&fixture("vmlinuz"), &fixture("initrd.cpio.gz"), append);
    // SeaBIOS, no EFI: the kernel cannot know the Secure Boot state.
    assert_marker(&log, append, None);
    assert_eq!(log.end, BootEnd::Exited, "{log}");
}

#[test]
fn extracted_kernel_and_initrd_boot_with_extracted_cmdline() {
    let out = tmpdir();
    let dir = out.join("parts");
    let res = ukitool()
        .arg("extract")
        .arg(fixture("uki.efi"))
        .arg("--all")
        .arg("-o")
        .arg(&dir)
        .output()
        .expect("run ukitool extract");
    assert!(
        res.status.success(),
        "ukitool extract --all failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    // Byte-identical to what the generator put in.
    for (part, source) in [("vmlinuz", "vmlinuz"), ("initrd", "initrd.cpio.gz")] {
        let got = fs::read(dir.join(part)).unwrap_or_else(|e| panic!("{part}: {e}"));
        assert!(
            got == fs::read(fixture(source)).unwrap(),
            "{part} differs from {source}"
        );
    }
    let cmdline = cmdline_of(&dir.join("cmdline"));
    assert_eq!(cmdline, fixture_text("cmdline"));
    let log = boot_kernel(&dir.join("vmlinuz"), &dir.join("initrd"), &cmdline);
    assert_marker(&log, &cmdline, None);
}

#[test]
fn uki_on_esp_boots_under_plain_ovmf() {
    let (_dir, img) = disk_for("uki.efi");
    let log = boot_disk(&img, Firmware::Plain);
    // The stub passes .cmdline; the EFI kernel reports Secure Boot off.
    assert_marker(&log, &fixture_text("cmdline"), Some(false));
}

#[test]
fn signed_uki_boots_under_secure_boot() {
    let (_dir, img) = disk_for("uki-signed.efi");
    let log = boot_disk(&img, Firmware::SecureBoot);
    assert_marker(&log, &fixture_text("cmdline"), Some(true));
    assert!(!log.firmware_refused(), "{log}");
}

#[test]
fn tampered_uki_is_refused_under_secure_boot() {
    let (_dir, img) = disk_for("uki-tampered.efi");
    let log = boot_disk(&img, Firmware::SecureBoot);
    assert!(log.marker().is_none(), "tampered UKI booted: {log}");
    assert!(
        log.firmware_refused(),
        "no 'Access Denied' from OVMF: {log}"
    );
    assert_eq!(log.end, BootEnd::NoBootableOption, "{log}");
}

#[test]
fn uki_signed_by_a_key_outside_db_is_refused_under_secure_boot() {
    let (_dir, img) = disk_for("uki-other-signed.efi");
    let log = boot_disk(&img, Firmware::SecureBoot);
    assert!(
        log.marker().is_none(),
        "UKI signed by other.key booted: {log}"
    );
    assert!(log.firmware_refused(), "{log}");
}
