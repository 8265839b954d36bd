//! Issue 3's "agree with firmware" test: each variant of the fixture UKI boots under OVMF
//! Secure Boot (the snakeoil certificate in db) exactly when
//! `ukitool verify --cert snakeoil.pem` says `valid-trusted`. The firmware is the referee.
//!
//! Seven boots (TCG, 10-40 s each; a refused image ends as soon as OVMF runs out of boot
//! options, see `BootEnd::NoBootableOption`):
//!
//! | variant | how it is made |
//! |---|---|
//! | `signed` | fixture `uki-signed.efi` (sbsign, snakeoil) |
//! | `tampered` | fixture `uki-tampered.efi` (a `.cmdline` byte flipped after signing) |
//! | `other-signed` | fixture `uki-other-signed.efi` (a key outside db) |
//! | `unsigned` | fixture `uki.efi` |
//! | `dual-snakeoil-first` | `uki-signed.efi` + `ukitool sign --append` with other.key |
//! | `dual-other-first` | `uki-other-signed.efi` + `ukitool sign --append` with snakeoil |
//! | `ecdsa-p256` | `uki.efi` signed by `ukitool sign` with a fresh P-256 key whose certificate snakeoil issued (RSA) |
//!
//! Recorded firmware behaviour (Debian's OVMF_CODE_4M.secboot.fd): see [`ecdsa_p256`].

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ukitool_tests::{boot_disk, esp_disk, fixture, tmpdir, ukitool, BootEnd, Firmware, TmpDir};

fn ok(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ukitool verify --cert snakeoil.pem --json FILE`: the overall verdict, checked against
/// the exit code the README documents (0 exactly for valid-trusted once a cert is given).
fn verdict(efi: &Path) -> String {
    let out = ukitool()
        .arg("verify")
        .arg("--json")
        .arg("--cert")
        .arg(fixture("snakeoil.pem"))
        .arg(efi)
        .output()
        .expect("run ukitool verify");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: bad JSON ({e}); stderr: {}",
            efi.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let verdict = v["verdict"].as_str().expect("verdict").to_string();
    let code = out.status.code();
    assert_eq!(
        code == Some(0),
        verdict == "valid-trusted",
        "{}: exit {code:?} with verdict {verdict}",
        efi.display()
    );
    verdict
}

/// Boot `efi` from an ESP under Secure Boot. Some(true) when it reached the marker with
/// Secure Boot on, Some(false) when the firmware refused it, None when the boot proved
/// nothing (a timeout or a crash), which fails the test rather than count as either.
fn firmware_accepts(name: &str, efi: &Path) -> (Option<bool>, String) {
    let dir = tmpdir();
    let img = dir.join("disk.img");
    esp_disk(efi, &img);
    let log = boot_disk(&img, Firmware::SecureBoot);
    let booted = log.marker().is_some();
    let accepted = if booted {
        assert_eq!(
            log.secure_boot(),
            Some(true),
            "{name}: booted without Secure Boot: {log}"
        );
        Some(true)
    } else if log.firmware_refused() || log.end == BootEnd::NoBootableOption {
        Some(false)
    } else {
        None
    };
    eprintln!(
        "secureboot-matrix: {name}: firmware {} ({:?}, {:.1}s, refused message: {})",
        match accepted {
            Some(true) => "booted",
            Some(false) => "refused",
            None => "undecided",
        },
        log.end,
        log.elapsed.as_secs_f64(),
        log.firmware_refused()
    );
    (accepted, log.to_string())
}

/// The property under test, for one variant; returns the verdict for extra checks.
fn agrees(name: &str, efi: &Path) -> String {
    let v = verdict(efi);
    let (accepted, log) = firmware_accepts(name, efi);
    eprintln!("secureboot-matrix: {name}: ukitool verify: {v}");
    let Some(accepted) = accepted else {
        panic!("{name}: the boot neither reached the marker nor was refused: {log}");
    };
    assert_eq!(
        accepted,
        v == "valid-trusted",
        "{name}: ukitool says {v}, firmware {}: {log}",
        if accepted { "booted it" } else { "refused it" }
    );
    v
}

/// `ukitool sign --append`: add a signature with `key`/`cert` to the signed `base`.
fn append_signature(dir: &TmpDir, base: &Path, key: &Path, cert: &Path, out: &str) -> PathBuf {
    let out = dir.join(out);
    ok(
        "ukitool sign --append",
        ukitool()
            .arg("sign")
            .arg(base)
            .arg("--append")
            .arg("--key")
            .arg(key)
            .arg("--cert")
            .arg(cert)
            .arg("-o")
            .arg(&out)
            .output(),
    );
    out
}

#[test]
fn signed() {
    assert_eq!(
        agrees("signed", &fixture("uki-signed.efi")),
        "valid-trusted"
    );
}

#[test]
fn tampered() {
    assert_eq!(
        agrees("tampered", &fixture("uki-tampered.efi")),
        "hash-mismatch"
    );
}

#[test]
fn other_signed() {
    assert_eq!(
        agrees("other-signed", &fixture("uki-other-signed.efi")),
        "valid-untrusted"
    );
}

#[test]
fn unsigned() {
    assert_eq!(agrees("unsigned", &fixture("uki.efi")), "unsigned");
}

#[test]
fn dual_snakeoil_first() {
    let dir = tmpdir();
    let efi = append_signature(
        &dir,
        &fixture("uki-signed.efi"),
        &fixture("other.key"),
        &fixture("other.pem"),
        "dual.efi",
    );
    assert_eq!(agrees("dual-snakeoil-first", &efi), "valid-trusted");
}

#[test]
fn dual_other_first() {
    // EDK2 tries every WIN_CERTIFICATE entry; a trusted second signature is enough.
    let dir = tmpdir();
    let efi = append_signature(
        &dir,
        &fixture("uki-other-signed.efi"),
        &fixture("snakeoil.key"),
        &fixture("snakeoil.pem"),
        "dual.efi",
    );
    assert_eq!(agrees("dual-other-first", &efi), "valid-trusted");
}

/// A P-256 signer whose certificate the snakeoil CA issued: the chain to db is RSA, the
/// Authenticode signature itself ECDSA.
#[test]
fn ecdsa_p256() {
    let dir = tmpdir();
    let (key, csr, pem, ext) = (
        dir.join("ec.key"),
        dir.join("ec.csr"),
        dir.join("ec.pem"),
        dir.join("ext.cnf"),
    );
    ok(
        "openssl ecparam",
        Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&key)
            .output(),
    );
    ok(
        "openssl req",
        Command::new("openssl")
            .args(["req", "-new", "-subj", "/CN=ukitool ecdsa test key", "-key"])
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .output(),
    );
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=codeSigning\n",
    )
    .unwrap();
    ok(
        "openssl x509 -req",
        Command::new("openssl")
            .args(["x509", "-req", "-days", "3650", "-set_serial", "0x5b0e"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(fixture("snakeoil.pem"))
            .arg("-CAkey")
            .arg(fixture("snakeoil.key"))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&pem)
            .output(),
    );
    let efi = dir.join("ecdsa.efi");
    ok(
        "ukitool sign (P-256)",
        ukitool()
            .arg("sign")
            .arg(fixture("uki.efi"))
            .arg("--key")
            .arg(&key)
            .arg("--cert")
            .arg(&pem)
            .arg("-o")
            .arg(&efi)
            .output(),
    );
    // The outside referee for the signature itself: sbverify (OpenSSL) accepts it.
    let sb = Command::new("sbverify")
        .arg("--cert")
        .arg(fixture("snakeoil.pem"))
        .arg(&efi)
        .output()
        .expect("run sbverify");
    assert!(
        sb.status.success(),
        "sbverify refuses the P-256 signature: {}{}",
        String::from_utf8_lossy(&sb.stdout),
        String::from_utf8_lossy(&sb.stderr)
    );
    assert_eq!(agrees("ecdsa-p256", &efi), "valid-trusted");
}

#[test]
#[ignore]
fn tmp_ski_boot() {
    agrees("ski", Path::new("/tmp/sbm/ski.efi"));
}
