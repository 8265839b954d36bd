//! Small real inputs for the robustness tests: signed stubs and GPT disks.

use std::fs;
use std::path::Path;
use std::process::Command;

use ukitool_core::authenticode::verify::TrustStore;

use crate::{fixture, fixture_bytes, run_ok, ukitool};

/// The stub signed by sbsign (snakeoil), and that signed again with a nested SHA-384
/// signature by osslsigncode (other key): small signed PEs, so thousands of cases stay fast.
pub fn signed_stubs(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let one = dir.join("stub-signed.efi");
    let two = dir.join("stub-nested.efi");
    run_ok(
        Command::new("sbsign")
            .arg("--key")
            .arg(fixture("snakeoil.key"))
            .arg("--cert")
            .arg(fixture("snakeoil.pem"))
            .arg("--output")
            .arg(&one)
            .arg(fixture("linuxx64.efi.stub")),
    );
    run_ok(
        Command::new("osslsigncode")
            .args(["sign", "-nest", "-h", "sha384", "-key"])
            .arg(fixture("other.key"))
            .arg("-certs")
            .arg(fixture("other.pem"))
            .arg("-in")
            .arg(&one)
            .arg("-out")
            .arg(&two),
    );
    (fs::read(one).unwrap(), fs::read(two).unwrap())
}

/// A 5 MiB GPT disk whose ESP is a 3 MiB FAT16 volume made by mkfs.vfat and mtools.
pub fn mtools_disk(dir: &Path) -> Vec<u8> {
    let esp = dir.join("esp.fat");
    let disk = dir.join("mtools.img");
    let _ = fs::remove_file(&esp);
    run_ok(
        Command::new("mkfs.vfat")
            .args(["-C", "-F", "16", "-s", "1", "-n", "MUT", "-i", "0badcafe"])
            .arg(&esp)
            .arg("3072"),
    );
    let i = |args: &[&str]| {
        let mut c = Command::new(args[0]);
        c.arg("-i").arg(&esp).args(&args[1..]);
        run_ok(&mut c);
    };
    i(&[
        "mmd",
        "::/EFI",
        "::/EFI/BOOT",
        "::/loader",
        "::/loader/entries",
        "::/A long directory name",
    ]);
    let stub = fixture("linuxx64.efi.stub");
    let stub = stub.to_str().unwrap();
    i(&["mcopy", stub, "::/EFI/BOOT/BOOTX64.EFI"]);
    i(&[
        "mcopy",
        fixture("os-release").to_str().unwrap(),
        "::/loader/entries/a long file name.conf",
    ]);
    i(&[
        "mcopy",
        fixture("cmdline").to_str().unwrap(),
        "::/A long directory name/cmdline.txt",
    ]);
    fs::write(&disk, []).unwrap();
    run_ok(Command::new("truncate").args(["-s", "5M"]).arg(&disk));
    run_ok(
        Command::new("sgdisk")
            .args([
                "--new=1:2048:+3M",
                "--typecode=1:ef00",
                "--change-name=1:ESP",
            ])
            .arg(&disk),
    );
    run_ok(
        Command::new("dd")
            .arg(format!("if={}", esp.display()))
            .arg(format!("of={}", disk.display()))
            .args(["bs=1M", "seek=1", "conv=notrunc", "status=none"]),
    );
    fs::read(disk).unwrap()
}

/// systemd-boot signed by sbsign (snakeoil), as `dir/boot-signed.efi`: a small signed
/// EFI application that `ukitool image` takes as BOOTX64.EFI (it refuses a bare stub,
/// which has no kernel to boot).
pub fn signed_systemd_boot(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("boot-signed.efi");
    run_ok(
        Command::new("sbsign")
            .arg("--key")
            .arg(fixture("snakeoil.key"))
            .arg("--cert")
            .arg(fixture("snakeoil.pem"))
            .arg("--output")
            .arg(&out)
            .arg(fixture("systemd-bootx64.efi")),
    );
    out
}

/// A disk made by `ukitool image` (FAT32 ESP holding `uki`, a signed EFI application
/// such as [`signed_systemd_boot`], as BOOTX64.EFI).
pub fn ukitool_disk(dir: &Path, uki: &Path) -> Vec<u8> {
    let out = dir.join("ukitool.img");
    run_ok(
        ukitool()
            .args(["image", "--esp-size", "34M", "--timestamp", "1", "--uki"])
            .arg(uki)
            .arg("-o")
            .arg(&out),
    );
    fs::read(out).unwrap()
}

pub fn snakeoil_trust() -> TrustStore {
    let mut t = TrustStore::default();
    t.add_cert_file(&fixture_bytes("snakeoil.pem")).unwrap();
    t
}
