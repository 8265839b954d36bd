//! `ukitool diff A B`: two reproducible builds are identical (exit 0); a changed
//! cmdline, a changed initrd, an added profile and a re-signed file are each reported
//! exactly (exit 1); unreadable input is exit 2.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use ukitool_tests::tools::build_command;
use ukitool_tests::{fixture, path_str, run_ok, run_ukitool, sha256_file, text, tmpdir, TmpDir};

/// The fixture UKI's parts built by ukitool, reproducibly, plus `extra`.
fn build(dir: &TmpDir, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    run_ok(
        build_command(&["linux", "initrd", "os-release", "splash"])
            .args(["--timestamp", "1700000000"])
            .args(extra)
            .arg("-o")
            .arg(&out),
    );
    out
}

/// `diff --json A B`: the JSON and the exit code.
fn diff(a: &Path, b: &Path) -> (Value, i32) {
    let out = run_ukitool(&["diff", "--json", path_str(a), path_str(b)]);
    let code = out.status.code().unwrap();
    assert!(code == 0 || code == 1, "exit {code}: {}", text(&out));
    (serde_json::from_slice(&out.stdout).unwrap(), code)
}

fn section_changes(d: &Value) -> Vec<(String, Value, String)> {
    d["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["profile"].clone(),
                s["change"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn changed_pcrs(d: &Value) -> usize {
    d["pcr11"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["changed"] == true)
        .count()
}

#[test]
fn reproducible_builds_are_identical() {
    let dir = tmpdir();
    let a = build(&dir, "a.efi", &["--cmdline", "quiet"]);
    let b = build(&dir, "b.efi", &["--cmdline", "quiet"]);
    assert_eq!(sha256_file(&a), sha256_file(&b));
    let (d, code) = diff(&a, &b);
    assert_eq!(code, 0);
    assert_eq!(d["identical"], true);
    assert_eq!(d["first_difference"], Value::Null);
    assert!(d["headers"].as_array().unwrap().is_empty());
    assert!(d["sections"].as_array().unwrap().is_empty());
    assert_eq!(d["kernel"]["changed"], false);
    assert_eq!(changed_pcrs(&d), 0);
    let out = run_ukitool(&["diff", path_str(&a), path_str(&b)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).contains("identical"), "{}", text(&out));
}

#[test]
fn a_changed_cmdline_is_one_changed_section_with_its_line_diff() {
    let dir = tmpdir();
    let a = build(&dir, "a.efi", &["--cmdline", "console=ttyS0 quiet"]);
    let b = build(&dir, "b.efi", &["--cmdline", "console=ttyS0 debug"]);
    let (d, code) = diff(&a, &b);
    assert_eq!(code, 1);
    assert_eq!(
        section_changes(&d),
        [(".cmdline".into(), Value::Null, "changed".into())]
    );
    let s = &d["sections"][0];
    assert_eq!(s["a"]["size"], 19);
    assert_eq!(s["b"]["size"], 19);
    assert_eq!(
        s["a"]["sha256"],
        ukitool_tests::sha256_hex(b"console=ttyS0 quiet")
    );
    assert_eq!(
        s["text_diff"],
        serde_json::json!([
            "@@ -1,1 +1,1 @@",
            "-console=ttyS0 quiet",
            "+console=ttyS0 debug"
        ])
    );
    // Same size: only the CheckSum changes in the headers.
    let fields: Vec<&str> = d["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["checksum"]);
    assert_eq!(d["kernel"]["changed"], false);
    assert_eq!(changed_pcrs(&d), 4, "every phase follows the cmdline");
}

#[test]
fn a_changed_initrd_names_the_section_and_its_digests() {
    let dir = tmpdir();
    let initrd = dir.join("extra.cpio");
    fs::write(&initrd, b"not really a cpio, but a different initrd").unwrap();
    let a = build(&dir, "a.efi", &["--cmdline", "quiet"]);
    let b = build(
        &dir,
        "b.efi",
        &["--cmdline", "quiet", "--initrd", path_str(&initrd)],
    );
    let (d, code) = diff(&a, &b);
    assert_eq!(code, 1);
    // The second --initrd is concatenated into .initrd; .sbat after it only moves.
    assert_eq!(
        section_changes(&d),
        [(".initrd".into(), Value::Null, "changed".into())]
    );
    let s = &d["sections"][0];
    let base = fs::metadata(fixture("initrd.cpio.gz")).unwrap().len();
    assert_eq!(s["a"]["size"], base);
    assert_eq!(s["b"]["size"], base + 41);
    assert_eq!(s["a"]["sha256"], sha256_file(&fixture("initrd.cpio.gz")));
    assert_eq!(s["text_diff"], Value::Null);
    assert_eq!(changed_pcrs(&d), 4);
}

#[test]
fn an_added_profile_is_its_sections_and_its_pcr_values() {
    let dir = tmpdir();
    let a = build(
        &dir,
        "a.efi",
        &["--cmdline", "quiet", "--profile", "ID=one"],
    );
    let cmdline = dir.join("two.cmdline");
    fs::write(&cmdline, "quiet two").unwrap();
    let section = format!(".cmdline:{}", path_str(&cmdline));
    let b = build(
        &dir,
        "b.efi",
        &[
            "--cmdline",
            "quiet",
            "--profile",
            "ID=one",
            "--profile",
            "ID=two\nTITLE=Two",
            "--section",
            &section,
        ],
    );
    let (d, code) = diff(&a, &b);
    assert_eq!(code, 1);
    assert_eq!(
        section_changes(&d),
        [
            (".profile".into(), 1.into(), "added".into()),
            (".cmdline".into(), 1.into(), "added".into())
        ]
    );
    assert_eq!(d["sections"][0]["b"]["size"], 16);
    assert_eq!(
        d["sections"][1]["text_diff"],
        serde_json::json!(["@@ -0,0 +1,1 @@", "+quiet two"])
    );
    assert_eq!(
        (d["a"]["profiles"].clone(), d["b"]["profiles"].clone()),
        (1.into(), 2.into())
    );
    // Profile @0 boots the same sections; @1 exists only in B.
    let pcrs = d["pcr11"].as_array().unwrap();
    assert_eq!(pcrs.len(), 8);
    for p in pcrs {
        if p["profile"] == 0 {
            assert_eq!(p["changed"], false, "{p}");
        } else {
            assert_eq!((p["a"].is_null(), p["b"].is_string()), (true, true), "{p}");
        }
    }
}

#[test]
fn a_resigned_file_changes_only_its_signers_and_certificate_table() {
    let dir = tmpdir();
    let a = fixture("uki-signed.efi");
    let b = dir.join("other-signed.efi");
    run_ok(&mut ukitool_tests::tools::sign_command(
        &fixture("uki.efi"),
        &fixture("other.key"),
        &fixture("other.pem"),
        &b,
    ));
    let (d, code) = diff(&a, &b);
    assert_eq!(code, 1);
    assert!(
        d["sections"].as_array().unwrap().is_empty(),
        "{}",
        d["sections"]
    );
    assert_eq!(changed_pcrs(&d), 0);
    assert_eq!(d["signers"]["changed"], true);
    let subject = |side: &str| {
        d["signers"][side][0]["subject"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(subject("a").contains("SnakeOil"), "{}", subject("a"));
    assert!(!subject("b").contains("SnakeOil"), "{}", subject("b"));
    assert_eq!(d["signers"]["a"][0]["digest_matches"], true);
    assert_eq!(d["signers"]["b"][0]["digest_matches"], true);
    for h in d["headers"].as_array().unwrap() {
        assert!(
            ["checksum", "certificate_table"].contains(&h["field"].as_str().unwrap()),
            "{h}"
        );
    }
}

#[test]
fn unreadable_input_is_exit_2() {
    let dir = tmpdir();
    let garbage = fixture("garbage.bin");
    let out = run_ukitool(&["diff", path_str(&fixture("uki.efi")), path_str(&garbage)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let missing = dir.join("missing.efi");
    let out = run_ukitool(&["diff", path_str(&missing), path_str(&garbage)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
