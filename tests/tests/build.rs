//! `ukitool build` and `ukitool sign` against outside referees: objdump and objcopy
//! (layout, payloads), sbverify and osslsigncode (signatures), the objcopy-built
//! fixture UKI (same payloads, no wasted gaps), and QEMU+OVMF (boots, Secure Boot).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ukitool_core::pe::PeFile;
use ukitool_tests::tools::{
    build_command, objcopy_section, objdump_sections, sign_command, SYSTEMD_STUB,
};
use ukitool_tests::{
    boot_disk, esp_disk, fixture, run, run_ok, sha256_file, tmpdir, ukitool, BootEnd, Firmware,
    TmpDir,
};

/// Build the fixture UKI's parts with ukitool into `dir/name`.
fn build_uki(dir: &TmpDir, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    run_ok(
        build_command(&["linux", "initrd", "cmdline", "os-release", "splash"])
            .args(["--timestamp", "1700000000"])
            .args(extra)
            .arg("-o")
            .arg(&out),
    );
    out
}

#[test]
fn built_uki_has_a_sane_layout_and_exact_payloads() {
    let dir = tmpdir();
    let uki = build_uki(&dir, "uki.efi", &[]);
    let rows = objdump_sections(&uki);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    // ukify's order after the stub's sections; .sbat moves to the end because the
    // merged text no longer fits before .sdmagic in memory.
    let new_at = names.iter().position(|n| *n == ".osrel").expect(".osrel");
    assert_eq!(
        names[new_at..],
        [".osrel", ".cmdline", ".uname", ".splash", ".linux", ".initrd", ".sbat"]
    );
    // Ascending in memory and in the file; new sections contiguous up to alignment
    // (objdump does not print alignment for PE; the stub's is 0x200 for both).
    let pe_bytes = fs::read(&uki).unwrap();
    let pe = PeFile::parse(&pe_bytes).unwrap();
    let (sa, fa) = (
        u64::from(pe.opt.section_alignment),
        u64::from(pe.opt.file_alignment),
    );
    for w in rows.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(b.2 >= a.2 + a.1, "{} overlaps {} in memory", a.0, b.0);
        assert!(b.3 >= a.3, "{} before {} in the file", b.0, a.0);
    }
    for w in rows[new_at - 1..].windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(b.2 - (a.2 + a.1) < sa, "memory gap before {}", b.0);
        assert!(b.3 - (a.3 + a.1) < fa, "file gap before {}", b.0);
    }
    let last = pe.sections.last().unwrap();
    assert_eq!(pe_bytes.len() as u64, last.raw_end(), "no trailing data");
    assert_eq!(pe.coff.pointer_to_symbol_table, 0, "symbol table dropped");
    assert_eq!(pe.coff.time_date_stamp, 1_700_000_000);
    assert_eq!(
        pe.opt.checksum,
        ukitool_core::build::pe_checksum(&pe_bytes, pe.checksum_offset)
    );

    // Every payload, extracted by objcopy, is byte-identical to its input.
    let want: [(&str, Vec<u8>); 6] = [
        (".linux", fs::read(fixture("vmlinuz")).unwrap()),
        (".initrd", fs::read(fixture("initrd.cpio.gz")).unwrap()),
        (".cmdline", fs::read(fixture("cmdline")).unwrap()),
        (".osrel", fs::read(fixture("os-release")).unwrap()),
        (".splash", fs::read(fixture("splash.bmp")).unwrap()),
        (".uname", fs::read(fixture("uname")).unwrap()),
    ];
    for (name, data) in &want {
        let got = objcopy_section(&uki, name, &dir.join("sec.bin"));
        // objcopy -O binary writes the VirtualSize bytes.
        assert!(got == *data, "{name} differs from its input");
    }
    let sbat = String::from_utf8(objcopy_section(&uki, ".sbat", &dir.join("sbat"))).unwrap();
    assert!(sbat.starts_with("sbat,1,SBAT Version,"));
    assert!(sbat.contains("\nsystemd,1,"), "stub's SBAT kept: {sbat}");
    assert!(sbat.contains("\nuki,1,UKI,"), "default uki line: {sbat}");
    assert_eq!(sbat.lines().filter(|l| l.starts_with("sbat,")).count(), 1);
}

#[test]
fn built_uki_passes_inspect_without_warnings() {
    let dir = tmpdir();
    let uki = build_uki(&dir, "uki.efi", &[]);
    let o = run(ukitool().arg("inspect").arg("--json").arg(&uki));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "uki");
    // The stub itself has one info finding (its .sdmagic is not aligned); nothing the
    // build adds may raise a warning or an error.
    for l in v["lints"].as_array().into_iter().flatten() {
        assert_eq!(l["severity"], "info", "lint on a built UKI: {l}");
        assert!(
            l["message"].as_str().unwrap_or("").contains(".sdmagic"),
            "{l}"
        );
    }
}

#[test]
fn build_is_reproducible_and_honours_source_date_epoch() {
    let dir = tmpdir();
    let a = build_uki(&dir, "a.efi", &[]);
    let b = build_uki(&dir, "b.efi", &[]);
    assert_eq!(sha256_file(&a), sha256_file(&b));
    let out = dir.join("c.efi");
    run_ok(
        build_command(&["linux"])
            .env("SOURCE_DATE_EPOCH", "1234567")
            .args(["--cmdline", "x", "-o"])
            .arg(&out),
    );
    let d = fs::read(&out).unwrap();
    assert_eq!(PeFile::parse(&d).unwrap().coff.time_date_stamp, 1_234_567);
}

#[test]
fn same_payloads_as_the_objcopy_recipe_with_no_wasted_space() {
    let dir = tmpdir();
    let ours = build_uki(&dir, "uki.efi", &[]);
    let theirs = fixture("uki.efi");
    for name in [
        ".osrel", ".cmdline", ".uname", ".splash", ".linux", ".initrd",
    ] {
        let a = objcopy_section(&ours, name, &dir.join("a"));
        let b = objcopy_section(&theirs, name, &dir.join("b"));
        assert!(a == b, "{name}: payloads differ from the objcopy recipe's");
    }
    // Wasted space: file bytes not covered by any section's payload or headers.
    let waste = |p: &Path| {
        let d = fs::read(p).unwrap();
        let pe = PeFile::parse(&d).unwrap();
        let used: u64 = pe
            .sections
            .iter()
            .map(|s| u64::from(s.payload_len()))
            .sum::<u64>()
            + u64::from(pe.opt.size_of_headers);
        d.len() as u64 - used
    };
    let (w_ours, w_theirs) = (waste(&ours), waste(&theirs));
    let pe_d = fs::read(&ours).unwrap();
    let n = PeFile::parse(&pe_d).unwrap().sections.len() as u64;
    // Only alignment padding: under FileAlignment (0x200) per section.
    assert!(w_ours < n * 0x200, "ukitool wastes {w_ours} bytes");
    assert!(
        w_ours <= w_theirs,
        "ukitool wastes {w_ours} bytes, objcopy {w_theirs}"
    );
}

fn sbverify(cert: &Path, file: &Path) -> bool {
    run(Command::new("sbverify").arg("--cert").arg(cert).arg(file))
        .status
        .success()
}

#[test]
fn signed_with_snakeoil_verifies_and_dual_signing_lists_two() {
    let dir = tmpdir();
    let pw = dir.join("pw");
    fs::write(&pw, "snakeoil\n").unwrap();
    // The ovmf package's encrypted PKCS#8 key, and build+sign in one step.
    let build_signed = |name: &str| {
        build_uki(
            &dir,
            name,
            &[
                "--key",
                "/usr/share/ovmf/PkKek-1-snakeoil.key",
                "--cert",
                "/usr/share/ovmf/PkKek-1-snakeoil.pem",
                "--key-password-file",
                pw.to_str().unwrap(),
            ],
        )
    };
    let signed = build_signed("signed.efi");
    let snakeoil = Path::new("/usr/share/ovmf/PkKek-1-snakeoil.pem");
    assert!(sbverify(snakeoil, &signed));
    assert!(!sbverify(&fixture("other.pem"), &signed));
    // Deterministic RSA: signing twice gives the same bytes.
    let again = build_signed("signed2.efi");
    assert_eq!(sha256_file(&signed), sha256_file(&again));

    // Signing a signed image without --append is refused.
    let dual = dir.join("dual.efi");
    let o = run(&mut sign_command(
        &signed,
        &fixture("other.key"),
        &fixture("other.pem"),
        &dual,
    ));
    assert_eq!(o.status.code(), Some(2));
    assert!(!dual.exists());
    let mut append = sign_command(&signed, &fixture("other.key"), &fixture("other.pem"), &dual);
    run_ok(append.arg("--append"));
    let list = run_ok(Command::new("sbverify").arg("--list").arg(&dual));
    assert!(
        list.contains("signature 1") && list.contains("signature 2"),
        "{list}"
    );
    assert!(sbverify(snakeoil, &dual));
    assert!(sbverify(&fixture("other.pem"), &dual));
}

#[test]
fn ecdsa_p256_signature_verifies_with_osslsigncode() {
    let dir = tmpdir();
    let key = dir.join("ec.key");
    let cert = dir.join("ec.pem");
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-subj",
                "/CN=ukitool ec test",
                "-days",
                "3650",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let signed = dir.join("ec.efi");
    run_ok(&mut sign_command(&fixture("uki.efi"), &key, &cert, &signed));
    let o = run_ok(
        Command::new("osslsigncode")
            .args(["verify", "-in"])
            .arg(&signed)
            .arg("-CAfile")
            .arg(&cert),
    );
    assert!(o.contains("Signature verification: ok"), "{o}");
    assert!(sbverify(&cert, &signed));
}

/// Each bad input: exit 2, one `ukitool: error:` line naming the problem, no output.
#[test]
fn bad_inputs_fail_cleanly_and_leave_no_file() {
    let dir = tmpdir();
    let notpe = dir.join("notpe");
    fs::write(&notpe, b"this is not a PE file at all").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--stub".into(), notpe.display().to_string()], "stub"),
        (
            vec![
                "--stub".into(),
                SYSTEMD_STUB.into(),
                "--splash".into(),
                fixture("os-release").display().to_string(),
            ],
            "BMP",
        ),
        (
            vec![
                "--stub".into(),
                SYSTEMD_STUB.into(),
                "--section".into(),
                format!(".waytoolong:{}", fixture("cmdline").display()),
            ],
            "1 to 8",
        ),
        (
            vec![
                "--stub".into(),
                fixture("uki-signed.efi").display().to_string(),
            ],
            "signed",
        ),
    ];
    for (args, why) in cases {
        let out = dir.join("out.efi");
        let o = run(ukitool()
            .arg("build")
            .args(&args)
            .arg("--linux")
            .arg(fixture("vmlinuz"))
            .arg("-o")
            .arg(&out));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("ukitool: error:") && err.contains(why),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!out.exists(), "{args:?} left an output file");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
    }
}

#[test]
fn stub_checksum_matches_the_linkers() {
    // The linker wrote the stub's CheckSum: our algorithm must reproduce it.
    let d = fs::read(SYSTEMD_STUB).unwrap();
    let pe = PeFile::parse(&d).unwrap();
    assert_ne!(pe.opt.checksum, 0);
    assert_eq!(
        ukitool_core::build::pe_checksum(&d, pe.checksum_offset),
        pe.opt.checksum
    );
}

fn boot(efi: &Path, fw: Firmware) -> ukitool_tests::BootLog {
    let dir = tmpdir();
    let img = dir.join("disk.img");
    esp_disk(efi, &img);
    boot_disk(&img, fw)
}

#[test]
fn built_uki_boots_plain_and_signed_boots_under_secure_boot() {
    let dir = tmpdir();
    let uki = build_uki(&dir, "uki.efi", &[]);
    let log = boot(&uki, Firmware::Plain);
    assert!(log.marker().is_some(), "plain boot: {log}");
    let cmdline = fs::read_to_string(fixture("cmdline")).unwrap();
    assert_eq!(log.cmdline().as_deref(), Some(cmdline.trim_end()), "{log}");
    assert_eq!(log.secure_boot(), Some(false), "{log}");

    let signed = dir.join("signed.efi");
    run_ok(&mut sign_command(
        &uki,
        &fixture("snakeoil.key"),
        &fixture("snakeoil.pem"),
        &signed,
    ));
    let log = boot(&signed, Firmware::SecureBoot);
    assert!(log.marker().is_some(), "secure boot: {log}");
    assert_eq!(log.secure_boot(), Some(true), "{log}");

    // Dual-signed (snakeoil + a key outside db): still boots.
    let dual = dir.join("dual.efi");
    let mut append = sign_command(&signed, &fixture("other.key"), &fixture("other.pem"), &dual);
    run_ok(append.arg("--append"));
    let log = boot(&dual, Firmware::SecureBoot);
    assert_eq!(log.secure_boot(), Some(true), "dual-signed: {log}");

    // One flipped byte in the kernel: the firmware refuses the image.
    let mut bytes = fs::read(&signed).unwrap();
    let pe = PeFile::parse(&bytes).unwrap();
    let linux = pe.section(".linux").unwrap();
    let at = linux.pointer_to_raw_data as usize + 0x1000;
    bytes[at] ^= 0x01;
    let flipped = dir.join("flipped.efi");
    fs::write(&flipped, &bytes).unwrap();
    let log = boot(&flipped, Firmware::SecureBoot);
    assert!(log.marker().is_none(), "tampered image booted: {log}");
    assert!(
        log.firmware_refused() || log.end == BootEnd::NoBootableOption,
        "{log}"
    );
}
