//! `ukitool measure` against systemd 252's `systemd-measure calculate`, and against
//! an independent Python implementation of the reference algorithm for what 252 lacks:
//! the .uname, .sbat, .ucode, .profile, .dtbauto, .hwids and .efifw sections (added
//! in systemd 253-258) and `--profile` selection. The .pcrsig's `pol` is checked
//! against a Python PolicyPCR, and its `sig` with openssl.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ukitool_tests::tools::{build_command, objcopy_section};
use ukitool_tests::{fixture, run, run_ok, tmpdir, ukitool};

const MEASURE: &str = "/usr/lib/systemd/systemd-measure";

/// The parts systemd 252 knows, from the fixtures.
fn parts_252() -> Vec<(String, PathBuf)> {
    vec![
        ("linux".into(), fixture("vmlinuz")),
        ("osrel".into(), fixture("os-release")),
        ("cmdline".into(), fixture("cmdline")),
        ("initrd".into(), fixture("initrd.cpio.gz")),
        ("splash".into(), fixture("splash.bmp")),
        ("pcrpkey".into(), fixture("snakeoil.pem")),
        ("dtb".into(), fixture("uname")),
    ]
}

fn part_args(parts: &[(String, PathBuf)]) -> Vec<String> {
    parts
        .iter()
        .map(|(k, p)| format!("--{k}={}", p.display()))
        .collect()
}

#[test]
fn parts_match_systemd_measure_for_every_bank_and_phase() {
    let args = part_args(&parts_252());
    let theirs = run_ok(
        Command::new(MEASURE)
            .arg("calculate")
            .args(&args)
            .arg("--json=short"),
    );
    let ours = run_ok(ukitool().arg("measure").args(&args).arg("--json"));
    assert_eq!(ours.trim(), theirs.trim());
    let v: serde_json::Value = serde_json::from_str(&ours).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 4, "four banks");
    assert_eq!(
        v["sha256"].as_array().unwrap().len(),
        4,
        "four default phases"
    );
    // Text output and explicit banks/phases too.
    let extra = [
        "--bank=sha384",
        "--bank=sha1",
        "--phase=enter-initrd:leave-initrd",
        "--phase=sysinit",
    ];
    let theirs = run_ok(
        Command::new(MEASURE)
            .arg("calculate")
            .args(&args)
            .args(extra),
    );
    let ours = run_ok(ukitool().arg("measure").args(&args).args(extra));
    assert_eq!(ours, theirs);
}

#[test]
fn uki_matches_systemd_measure_on_its_parts() {
    // ukitool builds always add .sbat (and .uname when the kernel has a version);
    // systemd 252 cannot measure those, so the UKI's 252-measurable part is checked
    // through parts mode, and the whole through the Python reference below.
    let dir = tmpdir();
    let uki = dir.join("uki.efi");
    run_ok(
        build_command(&["linux", "initrd", "cmdline", "os-release", "splash"])
            .arg("--pcrpkey")
            .arg(fixture("snakeoil.pem"))
            .arg("--uname=6.1.0-test")
            .arg("-o")
            .arg(&uki),
    );
    let sbat = dir.join("sbat");
    objcopy_section(&uki, ".sbat", &sbat);
    let uname = dir.join("uname");
    fs::write(&uname, "6.1.0-test").unwrap();
    let mut parts: Vec<(String, PathBuf)> = parts_252()
        .into_iter()
        .filter(|(k, _)| k != "dtb")
        .collect();
    let known = part_args(&parts);
    parts.push(("uname".into(), uname));
    parts.push(("sbat".into(), sbat));
    let from_uki = run_ok(ukitool().arg("measure").arg(&uki).arg("--json"));
    let from_parts = run_ok(
        ukitool()
            .arg("measure")
            .args(part_args(&parts))
            .arg("--json"),
    );
    assert_eq!(from_uki, from_parts);
    assert_eq!(from_uki.trim(), python_measure(&parts, "").trim());
    // And the 252-known subset agrees with systemd itself.
    let theirs = run_ok(
        Command::new(MEASURE)
            .arg("calculate")
            .args(&known)
            .arg("--json=short"),
    );
    let ours = run_ok(ukitool().arg("measure").args(&known).arg("--json"));
    assert_eq!(ours.trim(), theirs.trim());
}

/// The reference algorithm (shared/reference/uki-format.md), written independently in
/// Python: systemd's section order, H(name+NUL) then H(data), then phase words.
const PY_MEASURE: &str = r#"
import hashlib, json, sys
order = [".linux",".osrel",".cmdline",".initrd",".ucode",".splash",".dtb",".uname",".sbat",".pcrpkey",".profile",".dtbauto",".hwids",".efifw"]
parts = dict(a.split("=", 1) for a in sys.argv[2:])
phases = ["enter-initrd","enter-initrd:leave-initrd","enter-initrd:leave-initrd:sysinit","enter-initrd:leave-initrd:sysinit:ready"]
if sys.argv[1]: phases = sys.argv[1].split(",")
out = {}
for bank in ["sha1","sha256","sha384","sha512"]:
    H = lambda b: hashlib.new(bank, b).digest()
    pcr = bytes(hashlib.new(bank).digest_size)
    for name in order:
        if name not in parts: continue
        data = open(parts[name], "rb").read()
        if not data: continue
        pcr = H(pcr + H(name.encode() + b"\0"))
        pcr = H(pcr + H(data))
    res = []
    for ph in phases:
        p = pcr
        for w in ph.split(":"):
            if w: p = H(p + H(w.encode()))
        res.append({"phase": ph, "pcr": 11, "hash": p.hex()})
    out[bank] = res
print(json.dumps(out, separators=(",", ":")))
"#;

fn python_measure(parts: &[(String, PathBuf)], phases: &str) -> String {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PY_MEASURE, phases]);
    for (k, p) in parts {
        cmd.arg(format!(".{k}={}", p.display()));
    }
    run_ok(&mut cmd)
}

#[test]
fn sections_newer_than_systemd_252_follow_the_reference_algorithm() {
    let dir = tmpdir();
    let mk = |name: &str, text: &str| -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p
    };
    let parts: Vec<(String, PathBuf)> = vec![
        ("linux".into(), fixture("vmlinuz")),
        ("cmdline".into(), fixture("cmdline")),
        ("ucode".into(), mk("ucode", "microcode")),
        ("uname".into(), mk("uname", "6.1.0")),
        ("sbat".into(), mk("sbat", "sbat,1,x\n")),
        ("dtbauto".into(), mk("dtbauto", "dtb")),
        ("hwids".into(), mk("hwids", "hw")),
        ("efifw".into(), mk("efifw", "fw")),
        ("profile".into(), mk("profile", "ID=one")),
    ];
    let mut args: Vec<String> = parts
        .iter()
        .map(|(k, p)| {
            let flag = if k == "profile" { "profile-text" } else { k };
            format!("--{flag}={}", p.display())
        })
        .collect();
    args.push("--phase=enter-initrd".into());
    args.push("--phase=enter-initrd:leave-initrd:sysinit:ready".into());
    let ours = run_ok(ukitool().arg("measure").args(&args).arg("--json"));
    let theirs = python_measure(
        &parts,
        "enter-initrd,enter-initrd:leave-initrd:sysinit:ready",
    );
    assert_eq!(ours.trim(), theirs.trim());
}

#[test]
fn profile_selection_measures_base_plus_profile() {
    let dir = tmpdir();
    let w = |name: &str, text: &str| -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p
    };
    let (p1, c1, p2) = (w("p1", "ID=one"), w("c1", "rescue"), w("p2", "ID=two"));
    let uki = dir.join("multi.efi");
    run_ok(
        build_command(&["linux", "cmdline"])
            .arg("--uname=6.1.0-test")
            .arg(format!("--profile=@{}", p1.display()))
            .arg(format!("--section=.cmdline:{}", c1.display()))
            .arg(format!("--profile=@{}", p2.display()))
            .arg("-o")
            .arg(&uki),
    );
    let sbat = dir.join("sbat");
    objcopy_section(&uki, ".sbat", &sbat);
    let uname = w("uname", "6.1.0-test");
    let base = |cmdline: &Path, profile: &Path| -> Vec<(String, PathBuf)> {
        vec![
            ("linux".into(), fixture("vmlinuz")),
            ("cmdline".into(), cmdline.to_path_buf()),
            ("uname".into(), uname.clone()),
            ("sbat".into(), sbat.clone()),
            ("profile".into(), profile.to_path_buf()),
        ]
    };
    let m0 = run_ok(ukitool().arg("measure").arg(&uki).arg("--json"));
    // Profile @0 overrides the base .cmdline; @1 keeps it.
    assert_eq!(m0.trim(), python_measure(&base(&c1, &p1), "").trim());
    let m1 = run_ok(
        ukitool()
            .arg("measure")
            .arg(&uki)
            .args(["--profile", "1", "--json"]),
    );
    assert_eq!(
        m1.trim(),
        python_measure(&base(&fixture("cmdline"), &p2), "").trim()
    );
    let m0b = run_ok(
        ukitool()
            .arg("measure")
            .arg(&uki)
            .args(["--profile", "0", "--json"]),
    );
    assert_eq!(m0, m0b);
    let o = run(ukitool().arg("measure").arg(&uki).args(["--profile", "2"]));
    assert_eq!(o.status.code(), Some(2));
}

/// PolicyPCR as the TPM 2.0 spec defines it, in Python (formats.md).
const PY_POLICY: &str = r#"
import hashlib, sys
alg = {"sha1":4,"sha256":0xB,"sha384":0xC,"sha512":0xD}[sys.argv[1]]
pcr = bytes.fromhex(sys.argv[2])
sel = (1).to_bytes(4,"big") + alg.to_bytes(2,"big") + bytes([3, 0, 8, 0])
d = hashlib.sha256(bytes(32) + (0x17F).to_bytes(4,"big") + sel + hashlib.sha256(pcr).digest()).hexdigest()
print(d)
"#;

#[test]
fn pcrsig_policies_and_signatures_check_out() {
    let dir = tmpdir();
    let args = part_args(&parts_252());
    let preds: serde_json::Value =
        serde_json::from_str(&run_ok(ukitool().arg("measure").args(&args).arg("--json"))).unwrap();
    let sig: serde_json::Value = serde_json::from_str(&run_ok(
        ukitool()
            .arg("measure")
            .args(&args)
            .arg("--sign")
            .arg(fixture("snakeoil.key")),
    ))
    .unwrap();
    // pkfp: sha256 of the PKCS#1 RSAPublicKey DER (systemd's i2d_PublicKey),
    // computed by openssl.
    let der = dir.join("pub.der");
    run_ok(
        Command::new("openssl")
            .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
            .arg(fixture("snakeoil.key"))
            .arg("-out")
            .arg(&der),
    );
    let pkfp = run_ok(Command::new("sha256sum").arg(&der));
    let pkfp = pkfp.split_whitespace().next().unwrap();
    let pubpem = dir.join("pub.pem");
    run_ok(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(fixture("snakeoil.key"))
            .arg("-out")
            .arg(&pubpem),
    );
    let mut checked = 0;
    for bank in ["sha1", "sha256", "sha384", "sha512"] {
        let entries = sig[bank].as_array().unwrap();
        let pcrs = preds[bank].as_array().unwrap();
        assert_eq!(entries.len(), pcrs.len());
        for (e, p) in entries.iter().zip(pcrs) {
            assert_eq!(e["pcrs"], serde_json::json!([11]));
            assert_eq!(e["pkfp"], pkfp);
            let want = run_ok(Command::new("python3").args([
                "-c",
                PY_POLICY,
                bank,
                p["hash"].as_str().unwrap(),
            ]));
            assert_eq!(e["pol"].as_str().unwrap(), want.trim(), "{bank} pol");
            // sig: RSASSA-PKCS1-v1_5 over sha256(pol), checked by openssl.
            let pol = dir.join("pol");
            let polhex = e["pol"].as_str().unwrap();
            let bytes: Vec<u8> = (0..polhex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&polhex[i..i + 2], 16).unwrap())
                .collect();
            fs::write(&pol, bytes).unwrap();
            let sigfile = dir.join("sig");
            let b64 = dir.join("sig.b64");
            fs::write(&b64, format!("{}\n", e["sig"].as_str().unwrap())).unwrap();
            run_ok(
                Command::new("openssl")
                    .args(["base64", "-d", "-A", "-in"])
                    .arg(&b64)
                    .arg("-out")
                    .arg(&sigfile),
            );
            run_ok(
                Command::new("openssl")
                    .args(["dgst", "-sha256", "-verify"])
                    .arg(&pubpem)
                    .arg("-signature")
                    .arg(&sigfile)
                    .arg(&pol),
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
}

#[test]
fn build_embeds_pcrsig_for_the_built_uki() {
    let dir = tmpdir();
    let uki = dir.join("uki.efi");
    run_ok(
        build_command(&["linux", "cmdline"])
            .arg("--pcr-key")
            .arg(fixture("snakeoil.key"))
            .arg("-o")
            .arg(&uki),
    );
    let pcrsig = objcopy_section(&uki, ".pcrsig", &dir.join("pcrsig"));
    let embedded: serde_json::Value = serde_json::from_slice(&pcrsig).unwrap();
    // Measuring the finished UKI (which skips .pcrsig) and signing gives the same.
    let again: serde_json::Value = serde_json::from_str(&run_ok(
        ukitool()
            .arg("measure")
            .arg(&uki)
            .args(["--bank", "sha256", "--sign"])
            .arg(fixture("snakeoil.key")),
    ))
    .unwrap();
    assert_eq!(embedded, again);
    // .pcrpkey holds the matching public key.
    let pk = objcopy_section(&uki, ".pcrpkey", &dir.join("pcrpkey"));
    let want = run_ok(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(fixture("snakeoil.key")),
    );
    assert_eq!(String::from_utf8(pk).unwrap(), want);
}

/// `ukitool verify` recomputes each .pcrsig `pol` from the UKI's own sections: a UKI
/// built with --pcr-key checks out, and the same UKI with one .cmdline byte changed
/// keeps valid signatures over `pol` but no longer matches the prediction.
#[test]
fn verify_recomputes_pcrsig_policies_from_the_uki() {
    let dir = tmpdir();
    let key = dir.path().join("pcr.key");
    let public = dir.path().join("pcr.pub");
    run_ok(
        Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048"),
    );
    run_ok(
        Command::new("openssl")
            .args(["rsa", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public),
    );
    let uki = dir.path().join("pcr.efi");
    run_ok(
        build_command(&["linux", "initrd"])
            .args(["--cmdline", "console=ttyS0 pcrsig-test"])
            .arg("--pcr-key")
            .arg(&key)
            .arg("--pcrpkey")
            .arg(&public)
            .arg("-o")
            .arg(&uki),
    );
    let report: serde_json::Value = serde_json::from_str(&String::from_utf8_lossy(
        &run(ukitool().args(["verify", "--json"]).arg(&uki)).stdout,
    ))
    .unwrap();
    let entries = report["pcrsig"]["entries"]
        .as_array()
        .expect("pcrsig entries");
    assert!(!entries.is_empty());
    assert!(entries
        .iter()
        .all(|e| e["pol_predicted"] == true && e["signature_valid"] == true));
    assert_eq!(report["pcrsig"]["valid"], true);

    let mut bytes = fs::read(&uki).unwrap();
    let at = find(&bytes, b"pcrsig-test").expect("cmdline payload");
    bytes[at] ^= 0x20;
    let tampered = dir.path().join("tampered.efi");
    fs::write(&tampered, &bytes).unwrap();
    let o = run(ukitool().args(["verify", "--json"]).arg(&tampered));
    assert_eq!(
        o.status.code(),
        Some(1),
        "a stale .pcrsig is a negative verdict"
    );
    let report: serde_json::Value =
        serde_json::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
    let entries = report["pcrsig"]["entries"]
        .as_array()
        .expect("pcrsig entries");
    assert!(entries
        .iter()
        .all(|e| e["pol_predicted"] == false && e["signature_valid"] == true));
    assert_eq!(report["pcrsig"]["valid"], false);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
