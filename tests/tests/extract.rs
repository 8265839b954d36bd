//! `ukitool extract`: byte-exact payloads against the parts the fixtures were built
//! from, conventional names, profiles, and safe output files.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use ukitool_tests::tools::objdump_sections;
use ukitool_tests::{assert_one_line_error, fixture, path_str, run_ukitool, tmpdir, ukitool_bin};

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ukitool extract FILE --all -o DIR EXTRA...`.
fn extract_all(file: &Path, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["extract", path_str(file), "--all", "-o", path_str(dir)];
    args.extend_from_slice(extra);
    run_ukitool(&args)
}

#[test]
fn kernel_and_initrd_are_byte_identical_to_their_sources() {
    let dir = tmpdir();
    let uki = fixture("uki.efi");
    for (section, source) in [
        (".linux", "vmlinuz"),
        ("linux", "vmlinuz"),
        ("vmlinuz", "vmlinuz"),
        (".initrd", "initrd.cpio.gz"),
        (".cmdline", "cmdline"),
        (".osrel", "os-release"),
        (".splash", "splash.bmp"),
    ] {
        let out = dir.join(format!("{section}.out"));
        ok(&run_ukitool(&[
            "extract",
            path_str(&uki),
            section,
            "-o",
            path_str(&out),
        ]));
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(fixture(source)).unwrap(),
            "{section} differs from {source}"
        );
    }
}

#[test]
fn stdout_is_the_default_and_dash_works() {
    let uki = fixture("uki.efi");
    let want = std::fs::read(fixture("cmdline")).unwrap();
    for extra in [&[][..], &["-o", "-"][..]] {
        let mut args = vec!["extract", path_str(&uki), ".cmdline"];
        args.extend_from_slice(extra);
        let out = run_ukitool(&args);
        ok(&out);
        assert_eq!(out.stdout, want);
    }
}

#[test]
fn all_uses_conventional_names() {
    let dir = tmpdir();
    let uki = fixture("uki.efi");
    ok(&extract_all(&uki, &dir, &[]));
    for (name, source) in [
        ("vmlinuz", "vmlinuz"),
        ("initrd", "initrd.cpio.gz"),
        ("cmdline", "cmdline"),
        ("os-release", "os-release"),
        ("uname", "uname"),
        ("splash.bmp", "splash.bmp"),
    ] {
        assert!(
            std::fs::read(dir.join(name)).unwrap() == std::fs::read(fixture(source)).unwrap(),
            "{name}"
        );
    }
    // The stub's own sections come out under their names; .sbat as sbat.csv.
    for name in ["text", "data", "sdmagic", "sbat.csv"] {
        assert!(dir.join(name).exists(), "{name}");
    }
    // Every section of the table is there (objdump counts them).
    let n = objdump_sections(&uki).len();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), n);
    // No temporary files are left behind.
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("ukitool-tmp")));
}

#[test]
fn existing_outputs_are_refused_without_force() {
    let dir = tmpdir();
    let uki = fixture("uki.efi");
    let out = dir.join("cmdline");
    std::fs::write(&out, b"keep me").unwrap();
    let err = assert_one_line_error(
        &run_ukitool(&["extract", path_str(&uki), ".cmdline", "-o", path_str(&out)]),
        "extract",
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let err = assert_one_line_error(&extract_all(&uki, &dir, &[]), "extract");
    assert!(err.contains("exists"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    ok(&run_ukitool(&[
        "extract",
        path_str(&uki),
        ".cmdline",
        "-o",
        path_str(&out),
        "--force",
    ]));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(fixture("cmdline")).unwrap()
    );
    ok(&extract_all(&uki, &dir, &["--force"]));
}

#[test]
fn missing_sections_and_profiles_are_clear_errors() {
    let uki = fixture("uki.efi");
    let err = assert_one_line_error(
        &run_ukitool(&["extract", path_str(&uki), ".dtb"]),
        "extract",
    );
    assert!(
        err.contains(".dtb") && err.contains(".linux") && err.contains(".initrd"),
        "{err}"
    );
    let err = assert_one_line_error(
        &run_ukitool(&["extract", path_str(&uki), ".cmdline", "--profile", "0"]),
        "extract",
    );
    assert!(err.contains("profile"), "{err}");
    for name in ["garbage.bin", "truncated.efi"] {
        assert_one_line_error(
            &run_ukitool(&["extract", path_str(&fixture(name)), ".linux"]),
            "extract",
        );
    }
}

#[test]
fn profiles_select_their_own_sections_and_fall_back_to_the_base() {
    let p = fixture("profiles.efi");
    let bytes = std::fs::read(&p).unwrap();
    let table = objdump_sections(&p);
    let cmdlines: Vec<&[u8]> = table
        .iter()
        .filter(|s| s.0 == ".cmdline")
        .map(|(_, size, _, off)| &bytes[*off as usize..(*off + *size) as usize])
        .collect();
    assert_eq!(cmdlines.len(), 3, "base + two profiles");
    for (profile, want) in [
        (None, cmdlines[0]),
        (Some("0"), cmdlines[1]),
        (Some("1"), cmdlines[2]),
    ] {
        let mut args = vec!["extract", path_str(&p), ".cmdline"];
        if let Some(n) = profile {
            args.extend(["--profile", n]);
        }
        let out = run_ukitool(&args);
        ok(&out);
        assert_eq!(out.stdout, want, "profile {profile:?}");
    }
    // .linux is only in the base: a profile sees it.
    let out = run_ukitool(&["extract", path_str(&p), ".linux", "--profile", "1"]);
    ok(&out);
    assert!(out.stdout == std::fs::read(fixture("vmlinuz")).unwrap());
    assert_one_line_error(
        &run_ukitool(&["extract", path_str(&p), ".cmdline", "--profile", "2"]),
        "extract",
    );

    // --all with a profile: the profile's .cmdline replaces the base's.
    let dir = tmpdir();
    ok(&extract_all(&p, &dir, &["--profile", "1"]));
    assert_eq!(std::fs::read(dir.join("cmdline")).unwrap(), cmdlines[2]);
    assert!(dir.join("profile").exists() && dir.join("vmlinuz").exists());
}

#[test]
fn stdin_input_extracts_the_same_bytes() {
    let uki = std::fs::read(fixture("uki.efi")).unwrap();
    let mut child = Command::new(ukitool_bin())
        .args(["extract", "-", ".uname"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&uki).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    ok(&out);
    assert_eq!(out.stdout, std::fs::read(fixture("uname")).unwrap());
}
