//! `ukitool extract`: byte-exact payloads against the parts the fixtures were built
//! from, conventional names, profiles, and safe output files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ukitool_tests::{fixture, ukitool_bin};

fn ukitool(args: &[&str]) -> Output {
    ukitool_tests::ukitool().args(args).output().unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ukitool-extract-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn one_line_error(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ukitool: error: "), "{err}");
    err
}

#[test]
fn kernel_and_initrd_are_byte_identical_to_their_sources() {
    let dir = tempdir("parts");
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
        ok(&ukitool(&["extract", s(&uki), section, "-o", s(&out)]));
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
        let mut args = vec!["extract", s(&uki), ".cmdline"];
        args.extend_from_slice(extra);
        let out = ukitool(&args);
        ok(&out);
        assert_eq!(out.stdout, want);
    }
}

#[test]
fn all_uses_conventional_names() {
    let dir = tempdir("all");
    let uki = fixture("uki.efi");
    ok(&ukitool(&["extract", s(&uki), "--all", "-o", s(&dir)]));
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
    let od = Command::new("objdump")
        .arg("-h")
        .arg(&uki)
        .output()
        .unwrap();
    let n = String::from_utf8(od.stdout)
        .unwrap()
        .lines()
        .filter(|l| {
            l.split_whitespace().count() == 7 && l.trim_start().starts_with(char::is_numeric)
        })
        .count();
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
    let dir = tempdir("force");
    let uki = fixture("uki.efi");
    let out = dir.join("cmdline");
    std::fs::write(&out, b"keep me").unwrap();
    let err = one_line_error(&ukitool(&["extract", s(&uki), ".cmdline", "-o", s(&out)]));
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let err = one_line_error(&ukitool(&["extract", s(&uki), "--all", "-o", s(&dir)]));
    assert!(err.contains("exists"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    ok(&ukitool(&[
        "extract",
        s(&uki),
        ".cmdline",
        "-o",
        s(&out),
        "--force",
    ]));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(fixture("cmdline")).unwrap()
    );
    ok(&ukitool(&[
        "extract",
        s(&uki),
        "--all",
        "-o",
        s(&dir),
        "--force",
    ]));
}

#[test]
fn missing_sections_and_profiles_are_clear_errors() {
    let uki = fixture("uki.efi");
    let err = one_line_error(&ukitool(&["extract", s(&uki), ".dtb"]));
    assert!(
        err.contains(".dtb") && err.contains(".linux") && err.contains(".initrd"),
        "{err}"
    );
    let err = one_line_error(&ukitool(&[
        "extract",
        s(&uki),
        ".cmdline",
        "--profile",
        "0",
    ]));
    assert!(err.contains("profile"), "{err}");
    for name in ["garbage.bin", "truncated.efi"] {
        one_line_error(&ukitool(&["extract", s(&fixture(name)), ".linux"]));
    }
}

/// (name, size, file offset) of every section, from `objdump -h`.
fn objdump(path: &Path) -> Vec<(String, usize, usize)> {
    let out = Command::new("objdump")
        .arg("-h")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 7 && f[0].parse::<u32>().is_ok()).then(|| {
                let h = |s: &str| usize::from_str_radix(s, 16).unwrap();
                (f[1].to_string(), h(f[2]), h(f[5]))
            })
        })
        .collect()
}

#[test]
fn profiles_select_their_own_sections_and_fall_back_to_the_base() {
    let p = fixture("profiles.efi");
    let bytes = std::fs::read(&p).unwrap();
    let table = objdump(&p);
    let cmdlines: Vec<&[u8]> = table
        .iter()
        .filter(|s| s.0 == ".cmdline")
        .map(|(_, size, off)| &bytes[*off..*off + *size])
        .collect();
    assert_eq!(cmdlines.len(), 3, "base + two profiles");
    for (profile, want) in [
        (None, cmdlines[0]),
        (Some("0"), cmdlines[1]),
        (Some("1"), cmdlines[2]),
    ] {
        let mut args = vec!["extract", s(&p), ".cmdline"];
        if let Some(n) = profile {
            args.extend(["--profile", n]);
        }
        let out = ukitool(&args);
        ok(&out);
        assert_eq!(out.stdout, want, "profile {profile:?}");
    }
    // .linux is only in the base: a profile sees it.
    let out = ukitool(&["extract", s(&p), ".linux", "--profile", "1"]);
    ok(&out);
    assert!(out.stdout == std::fs::read(fixture("vmlinuz")).unwrap());
    one_line_error(&ukitool(&["extract", s(&p), ".cmdline", "--profile", "2"]));

    // --all with a profile: the profile's .cmdline replaces the base's.
    let dir = tempdir("profile-all");
    ok(&ukitool(&[
        "extract",
        s(&p),
        "--all",
        "-o",
        s(&dir),
        "--profile",
        "1",
    ]));
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
