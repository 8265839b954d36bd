//! ukify and systemd-measure parity, byte for byte where the peer defines the output,
//! against systemd 262 from Debian sid (tests/fixtures/sid.sh fetches and unpacks
//! systemd-ukify, systemd-tpm and their libraries; ukify runs on the system's
//! python3 with pefile). Skips with a message only when the archive is unreachable.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use ukitool_core::pe::PeFile;
use ukitool_tests::tools::{build_command, SYSTEMD_STUB};
use ukitool_tests::{
    fixture, fixtures_dir, path_str, repo_root, run, run_ok, text, tmpdir, FileLock, TmpDir,
};

/// The unpacked peers.
struct Peers {
    ukify: PathBuf,
    measure: PathBuf,
    ld_library_path: String,
    hwids: PathBuf,
}

/// Fetch the peers once per process, under a lock shared with other test processes;
/// None (and a message) when Debian's archive cannot be reached.
fn peers() -> Option<&'static Peers> {
    static PEERS: OnceLock<Option<Peers>> = OnceLock::new();
    PEERS
        .get_or_init(|| {
            let out = fixtures_dir().join("sid");
            let _lock = FileLock::acquire(&fixtures_dir().join(".sid.lock"));
            let o = run(Command::new("bash")
                .arg(repo_root().join("tests/fixtures/sid.sh"))
                .arg(&out));
            if o.status.code() == Some(3) {
                eprintln!("SKIP parity: Debian's archive is unreachable: {}", text(&o));
                return None;
            }
            assert!(o.status.success(), "tests/fixtures/sid.sh: {}", text(&o));
            let env = fs::read_to_string(out.join("env")).unwrap();
            let get = |k: &str| {
                env.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k}=")))
                    .unwrap_or_else(|| panic!("{k} missing from sid/env"))
                    .to_string()
            };
            Some(Peers {
                ukify: get("UKIFY").into(),
                measure: get("MEASURE").into(),
                ld_library_path: get("LD_LIBRARY_PATH"),
                hwids: get("HWIDS").into(),
            })
        })
        .as_ref()
}

impl Peers {
    /// ukify on the system's python3 (it has pefile); systemd-measure from --tools.
    fn ukify(&self) -> Command {
        let mut c = Command::new("/usr/bin/python3");
        c.arg(&self.ukify)
            .env("LD_LIBRARY_PATH", &self.ld_library_path)
            .arg("build")
            .arg("--tools")
            .arg(self.measure.parent().unwrap());
        c
    }

    fn measure(&self, verb: &str) -> Command {
        let mut c = Command::new(&self.measure);
        c.env("LD_LIBRARY_PATH", &self.ld_library_path).arg(verb);
        c
    }
}

/// The payload of every section named `name`, in file order.
fn sections(pe: &Path, name: &str) -> Vec<Vec<u8>> {
    let data = fs::read(pe).unwrap();
    let pe = PeFile::parse(&data).unwrap();
    pe.sections_named(name)
        .map(|s| s.payload(&data).unwrap().to_vec())
        .collect()
}

fn section(pe: &Path, name: &str) -> Vec<u8> {
    let mut all = sections(pe, name);
    assert_eq!(all.len(), 1, "{} {name}", pe.display());
    all.remove(0)
}

/// An RSA key pair: (private, public) PEM paths.
fn rsa_pair(dir: &TmpDir, name: &str) -> (PathBuf, PathBuf) {
    let (k, p) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    run_ok(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&k),
    );
    run_ok(
        Command::new("openssl")
            .args(["rsa", "-pubout", "-in"])
            .arg(&k)
            .arg("-out")
            .arg(&p),
    );
    (k, p)
}

/// systemd-measure's `--linux= --osrel= ...` for the measured sections of `uki`,
/// written under `dir`.
fn measure_parts(dir: &TmpDir, uki: &Path) -> Vec<String> {
    let mut args = Vec::new();
    for (name, flag) in [
        (".linux", "linux"),
        (".osrel", "osrel"),
        (".cmdline", "cmdline"),
        (".initrd", "initrd"),
        (".ucode", "ucode"),
        (".splash", "splash"),
        (".dtb", "dtb"),
        (".uname", "uname"),
        (".sbat", "sbat"),
        (".pcrpkey", "pcrpkey"),
    ] {
        if let Some(data) = sections(uki, name).into_iter().next() {
            let f = dir.join(format!("part{name}"));
            fs::write(&f, data).unwrap();
            args.push(format!("--{flag}={}", f.display()));
        }
    }
    args
}

fn json(text: &[u8]) -> Value {
    serde_json::from_slice(ukitool_core::bytes::trim_nul(text)).unwrap()
}

/// A hwids directory ukify's loader reads in path order: a uefi-fw device, and a
/// devicetree device split over two files, one in a subdirectory.
fn hwids_dir(dir: &TmpDir) -> PathBuf {
    let d = dir.join("hwids");
    fs::create_dir_all(d.join("sub")).unwrap();
    fs::write(d.join("b-fw.json"), r#"{"type": "uefi-fw", "name": "Board FW", "fwid": "board-fw", "hwids": ["{7d2f9a3e-8c3b-5b1a-9e4f-0a1b2c3d4e5f}"]}"#).unwrap();
    fs::write(d.join("a.json"), r#"{"type": "devicetree", "name": "Board", "compatible": "vendor,board", "hwids": ["ffffffff-0000-0000-0000-000000000001", "00000000-0000-0000-0000-0000000000ff"]}"#).unwrap();
    fs::write(d.join("sub/a.json"), r#"{"type": "devicetree", "name": "Board", "compatible": "vendor,board", "hwids": ["12345678123456781234567812345678"]}"#).unwrap();
    fs::write(d.join("notes.txt"), "not a description").unwrap();
    d
}

#[test]
fn hwids_and_efifw_from_directories_equal_ukifys() {
    let Some(p) = peers() else { return };
    let dir = tmpdir();
    let fw1 = dir.join("fw/ucsi-a");
    let fw2 = dir.join("fw/ucsi-b");
    for (d, fill) in [(&fw1, 0xa5u8), (&fw2, 0x5a)] {
        fs::create_dir_all(d).unwrap();
        fs::write(d.join("blob.bin"), vec![fill; 3001]).unwrap();
    }
    for hwids in [p.hwids.join("aa64"), hwids_dir(&dir)] {
        let (a, b) = (dir.join("ukify.efi"), dir.join("ukitool.efi"));
        let inputs = |c: &mut Command| {
            c.args(["--stub", SYSTEMD_STUB, "--cmdline", "quiet", "--hwids"])
                .arg(&hwids)
                .arg("--efifw")
                .arg(&fw1)
                .arg("--efifw")
                .arg(&fw2);
        };
        let mut c = p.ukify();
        inputs(&mut c);
        run_ok(c.arg("--output").arg(&a));
        let mut c = ukitool_tests::ukitool();
        c.arg("build");
        inputs(&mut c);
        run_ok(c.arg("-o").arg(&b));
        assert_eq!(
            section(&a, ".hwids"),
            section(&b, ".hwids"),
            "{}",
            hwids.display()
        );
        let (fa, fb) = (sections(&a, ".efifw"), sections(&b, ".efifw"));
        assert_eq!(fa.len(), 2);
        assert_eq!(fa, fb);
    }
}

#[test]
fn pcrsig_of_two_key_pairs_is_what_systemd_measure_writes() {
    let Some(p) = peers() else { return };
    let dir = tmpdir();
    let (k1, p1) = rsa_pair(&dir, "all");
    let (k2, p2) = rsa_pair(&dir, "initrd");
    let phases1 = "enter-initrd,enter-initrd:leave-initrd enter-initrd:leave-initrd:sysinit";
    // The same two key pairs, as ukify and ukitool take them.
    let key_args: Vec<String> = [(&k1, &p1, phases1), (&k2, &p2, "enter-initrd")]
        .iter()
        .flat_map(|(k, p, phases)| {
            [
                format!("--pcr-private-key={}", k.display()),
                format!("--pcr-public-key={}", p.display()),
                format!("--phases={phases}"),
            ]
        })
        .collect();
    let uki = dir.join("uki.efi");
    run_ok(
        build_command(&["linux", "initrd", "cmdline", "os-release"])
            .args(["--pcr-bank", "sha1", "--pcr-bank", "sha256"])
            .args(&key_args)
            .arg("-o")
            .arg(&uki),
    );
    assert!(
        sections(&uki, ".pcrpkey").is_empty(),
        "ukify writes no .pcrpkey for two keys"
    );
    let ours = section(&uki, ".pcrsig");
    // systemd-measure sign, then sign --append, over the same sections.
    let parts = measure_parts(&dir, &uki);
    let first = dir.join("first.json");
    let out = run_ok(
        p.measure("sign")
            .args(&parts)
            .args(["--bank=sha1", "--bank=sha256"])
            .arg(format!("--private-key={}", k1.display()))
            .arg(format!("--public-key={}", p1.display()))
            .args(
                phases1
                    .replace(',', " ")
                    .split(' ')
                    .map(|ph| format!("--phase={ph}")),
            ),
    );
    fs::write(&first, &out).unwrap();
    let both = run_ok(
        p.measure("sign")
            .args(&parts)
            .args(["--bank=sha1", "--bank=sha256"])
            .arg(format!("--private-key={}", k2.display()))
            .arg(format!("--public-key={}", p2.display()))
            .arg("--phase=enter-initrd")
            .arg(format!("--append={}", first.display())),
    );
    assert_eq!(String::from_utf8(ours.clone()).unwrap(), both.trim_end());
    // ukify, given the same inputs, signs the same key pairs and phases in the same
    // order. Its `pol` values differ: ukify 262 writes .sbat without the NUL that
    // ukitool's builder ends it with, so the measured .sbat differs by one byte.
    let theirs = dir.join("ukify.efi");
    run_ok(
        p.ukify()
            .args(["--stub", SYSTEMD_STUB, "--linux"])
            .arg(fixture("vmlinuz"))
            .arg("--initrd")
            .arg(fixture("initrd.cpio.gz"))
            .arg(format!("--cmdline=@{}", fixture("cmdline").display()))
            .arg(format!("--os-release=@{}", fixture("os-release").display()))
            .args(["--pcr-banks", "sha1,sha256"])
            .args(&key_args)
            .arg("--output")
            .arg(&theirs),
    );
    let shape = |v: Value| -> Vec<(String, Vec<Value>)> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(bank, list)| {
                let keys = list
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["pkfp"].clone())
                    .collect();
                (bank.clone(), keys)
            })
            .collect()
    };
    assert_eq!(
        shape(json(&section(&theirs, ".pcrsig"))),
        shape(json(&ours))
    );
    assert!(sections(&theirs, ".pcrpkey").is_empty());
}

#[test]
fn policy_digest_prints_what_systemd_measure_prints() {
    let Some(p) = peers() else { return };
    let dir = tmpdir();
    let (_, public) = rsa_pair(&dir, "pcr");
    let uki = fixture("uki.efi");
    let parts = measure_parts(&dir, &uki);
    for (banks, key) in [
        (vec!["--bank=sha256"], Some(&public)),
        (vec!["--bank=sha512", "--bank=sha1"], None),
    ] {
        let mut peer = p.measure("policy-digest");
        peer.args(&parts)
            .args(&banks)
            .arg("--phase=enter-initrd:leave-initrd");
        let mut ours = ukitool_tests::ukitool();
        ours.args(["measure", "policy-digest"])
            .arg(&uki)
            .args(&banks)
            .arg("--phase=enter-initrd:leave-initrd");
        if let Some(k) = key {
            peer.arg(format!("--public-key={}", k.display()));
            ours.arg("--public-key").arg(k);
        }
        assert_eq!(run_ok(&mut ours), run_ok(&mut peer));
    }
    // The parts form, with systemd's four default phases and banks.
    let mut ours = ukitool_tests::ukitool();
    ours.args(["measure", "policy-digest"]).args(&parts);
    assert_eq!(
        run_ok(&mut ours),
        run_ok(p.measure("policy-digest").args(&parts))
    );
}

#[test]
fn config_file_builds_what_the_same_options_build() {
    let Some(p) = peers() else { return };
    let dir = tmpdir();
    let (k1, p1) = rsa_pair(&dir, "a");
    let (k2, p2) = rsa_pair(&dir, "b");
    let hwids = hwids_dir(&dir);
    let fw = dir.join("fw/ucsi");
    fs::create_dir_all(&fw).unwrap();
    fs::write(fw.join("blob"), b"firmware").unwrap();
    let extra_initrd = dir.join("extra.img");
    fs::write(&extra_initrd, b"second initrd").unwrap();
    let f = |n: &str| fixture(n).display().to_string();
    let config = dir.join("uki.conf");
    fs::write(
        &config,
        format!(
            "# ukify's own format\n[UKI]\nLinux = {}\nInitrd = {} {}\nCmdline = console=ttyS0\n   quiet   # normalised as ukify does\nOSRelease = @{}\nStub = {SYSTEMD_STUB}\nHWIDs = {}\nFirmware = {}\nPCRBanks = sha256, sha384\nEFIArch = x64\n\n[PCRSignature:all]\nPCRPrivateKey = {}\nPCRPublicKey = {}\n\n[PCRSignature:initrd]\nPCRPrivateKey = {}\nPCRPublicKey = {}\nPhases = enter-initrd\n",
            f("vmlinuz"), f("initrd.cpio.gz"), extra_initrd.display(), f("os-release"),
            hwids.display(), fw.display(), k1.display(), p1.display(), k2.display(), p2.display()
        ),
    )
    .unwrap();
    let from_config = dir.join("config.efi");
    let out = run(ukitool_tests::ukitool()
        .args(["build", "--config"])
        .arg(&config)
        .args(["--timestamp", "1700000000", "-o"])
        .arg(&from_config));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("EFIArch= has no effect"),
        "{}",
        text(&out)
    );
    let from_flags = dir.join("flags.efi");
    run_ok(
        build_command(&["linux", "initrd"])
            .arg("--initrd")
            .arg(&extra_initrd)
            .args(["--cmdline", "console=ttyS0 quiet"])
            .arg(format!("--os-release=@{}", f("os-release")))
            .arg("--hwids").arg(&hwids).arg("--efifw").arg(&fw)
            .args(["--pcr-bank", "sha256", "--pcr-bank", "sha384"])
            .arg("--pcr-private-key").arg(&k1).arg("--pcr-private-key").arg(&k2)
            .arg("--pcr-public-key").arg(&p1).arg("--pcr-public-key").arg(&p2)
            .args(["--phases", "enter-initrd,enter-initrd:leave-initrd,enter-initrd:leave-initrd:sysinit,enter-initrd:leave-initrd:sysinit:ready", "--phases", "enter-initrd"])
            .args(["--timestamp", "1700000000", "-o"])
            .arg(&from_flags),
    );
    assert_eq!(
        fs::read(&from_config).unwrap(),
        fs::read(&from_flags).unwrap()
    );
    // ukify reads the same file without complaint.
    let summary = run(p.ukify().arg("--config").arg(&config).arg("--summary"));
    assert!(summary.status.success(), "{}", text(&summary));
    assert!(
        !text(&summary).contains("Unknown config setting"),
        "{}",
        text(&summary)
    );
}

#[test]
fn join_pcrsig_fills_the_offline_signatures_of_a_ukify_policy_digest_build() {
    let Some(p) = peers() else { return };
    let dir = tmpdir();
    let (key, public) = rsa_pair(&dir, "pcr");
    let base = dir.join("base.efi");
    let digests = run_ok(
        p.ukify()
            .args(["--stub", SYSTEMD_STUB, "--linux"])
            .arg(fixture("vmlinuz"))
            .arg(format!("--os-release=@{}", fixture("os-release").display()))
            .args([
                "--cmdline",
                "quiet",
                "--pcr-banks",
                "sha256",
                "--json",
                "short",
                "--policy-digest",
            ])
            .arg("--pcr-public-key")
            .arg(&public)
            .arg("--output")
            .arg(&base),
    );
    // Sign each tbs offline, as ukify(1)'s example does.
    let mut signed: Value = serde_json::from_str(digests.trim()).unwrap();
    for policy in signed["sha256"].as_array_mut().unwrap() {
        let tbs = dir.join("tbs");
        fs::write(
            &tbs,
            ukitool_core::bytes::unhex(policy["tbs"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let sig = dir.join("sig");
        run_ok(
            Command::new("openssl")
                .args(["dgst", "-sha256", "-sign"])
                .arg(&key)
                .arg("-out")
                .arg(&sig)
                .arg(&tbs),
        );
        let b64 = run_ok(
            Command::new("openssl")
                .args(["base64", "-A", "-in"])
                .arg(&sig),
        );
        policy["sig"] = b64.trim().into();
    }
    let signed_path = dir.join("signed.json");
    fs::write(&signed_path, signed.to_string()).unwrap();
    let (theirs, ours) = (dir.join("ukify.efi"), dir.join("ukitool.efi"));
    run_ok(
        p.ukify()
            .arg("--join-pcrsig")
            .arg(&base)
            .arg(format!("--pcrsig=@{}", signed_path.display()))
            .arg("--output")
            .arg(&theirs),
    );
    run_ok(
        ukitool_tests::ukitool()
            .args(["build", "--join-pcrsig"])
            .arg(&base)
            .arg(format!("--pcrsig=@{}", signed_path.display()))
            .arg("-o")
            .arg(&ours),
    );
    assert_eq!(
        json(&section(&theirs, ".pcrsig")),
        json(&section(&ours, ".pcrsig"))
    );
    // Every other section is untouched, and ukitool's own check accepts the policies.
    for name in [".linux", ".osrel", ".cmdline", ".pcrpkey", ".sbat"] {
        assert_eq!(section(&base, name), section(&ours, name), "{name}");
    }
    let data = fs::read(&ours).unwrap();
    let report = ukitool_core::pcrsig::check_pe(&PeFile::parse(&data).unwrap())
        .unwrap()
        .unwrap();
    assert!(report.valid, "{report:?}");
}

#[test]
fn join_profile_adds_the_profile_pes_as_the_same_options_would() {
    let Some(p) = peers() else { return };
    let dir = tmpdir();
    let profile_pe = |name: &str, profile: &str, cmdline: &str| {
        let out = dir.join(name);
        run_ok(
            p.ukify()
                .args([
                    "--stub",
                    SYSTEMD_STUB,
                    "--profile",
                    profile,
                    "--cmdline",
                    cmdline,
                    "--output",
                ])
                .arg(&out),
        );
        out
    };
    let one = profile_pe("one.efi", "ID=one\nTITLE=One", "quiet one");
    let two = profile_pe("two.efi", "ID=two", "quiet two");
    let joined = dir.join("joined.efi");
    run_ok(
        build_command(&["linux", "initrd", "cmdline"])
            .arg("--join-profile")
            .arg(&one)
            .arg("--join-profile")
            .arg(&two)
            .args(["--timestamp", "1700000000", "-o"])
            .arg(&joined),
    );
    let (c1, c2) = (dir.join("c1"), dir.join("c2"));
    fs::write(&c1, "quiet one").unwrap();
    fs::write(&c2, "quiet two").unwrap();
    let by_options = dir.join("options.efi");
    run_ok(
        build_command(&["linux", "initrd", "cmdline"])
            .args(["--profile", "ID=main", "--profile", "ID=one\nTITLE=One"])
            .arg(format!("--section=.cmdline:{}", path_str(&c1)))
            .args(["--profile", "ID=two"])
            .arg(format!("--section=.cmdline:{}", path_str(&c2)))
            .args(["--timestamp", "1700000000", "-o"])
            .arg(&by_options),
    );
    assert_eq!(fs::read(&joined).unwrap(), fs::read(&by_options).unwrap());
}

#[test]
fn inspect_sections_carry_ukifys_inspect_fields() {
    let Some(p) = peers() else { return };
    for uki in [fixture("uki-signed.efi"), fixture("profiles.efi")] {
        let theirs = run_ok(
            Command::new("/usr/bin/python3")
                .arg(&p.ukify)
                .arg("inspect")
                .arg(&uki)
                .args(["--json=pretty", "--all"]),
        );
        let theirs: Value = serde_json::from_str(&theirs).unwrap();
        let ours: Value = serde_json::from_str(&run_ok(
            ukitool_tests::ukitool()
                .args(["inspect", "--json"])
                .arg(&uki),
        ))
        .unwrap();
        // ukify keys the base's sections by name and each profile's under _profiles.
        let mut blocks = vec![(Value::Null, theirs.clone())];
        for (i, b) in theirs["_profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            blocks.push((i.into(), b.clone()));
        }
        let mut compared = 0;
        for (profile, block) in blocks {
            for (name, desc) in block.as_object().unwrap() {
                if name == "_profiles" {
                    continue;
                }
                let mine: Vec<&Value> = ours["sections"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["name"] == name.as_str() && s["profile"] == profile)
                    .collect();
                let descs = desc
                    .as_array()
                    .cloned()
                    .unwrap_or_else(|| vec![desc.clone()]);
                assert_eq!(mine.len(), descs.len(), "{name}");
                for (m, d) in mine.iter().zip(&descs) {
                    for field in ["size", "sha256", "text"] {
                        assert_eq!(
                            m.get(field),
                            d.get(field),
                            "{} {name} {field}",
                            uki.display()
                        );
                    }
                    compared += 1;
                }
            }
        }
        assert!(compared >= 10, "{compared}");
    }
}
