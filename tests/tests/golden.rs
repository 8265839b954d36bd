//! Pinned outputs of `build`, `sign`, `image`, `measure` and `verify`: for each command
//! in [`CASES`], its exit code, stdout and stderr, and the sha256 of every file it wrote,
//! in tests/golden/commands/<case>.txt. A change to any byte of a UKI, an image, a
//! `--json` report or a printed one fails here; `UPDATE_GOLDEN=1` rewrites the files
//! when the change is meant.
//!
//! The inputs are the same on every machine: a stub, a kernel and an initrd built in
//! memory (`ukitool_tests::synthetic`), text parts written here, and for signatures the
//! snakeoil key and certificate of Debian's ovmf package (fixed files; RSA PKCS#1 v1.5
//! signatures are deterministic). Not Debian's kernel: its version changes.
//! The commands run in a temporary directory on relative names, so no path of this
//! machine appears in an output.

use std::fs;
use std::path::Path;

use ukitool_tests::golden::golden;
use ukitool_tests::synthetic::{fake_kernel, synthetic_stub};
use ukitool_tests::{fixture, run, sha256_file, tmpdir, ukitool};

/// One command: its golden file's name, its arguments (`base`, then `args`), and the
/// files it writes.
struct Case {
    name: &'static str,
    base: &'static [&'static str],
    args: &'static [&'static str],
    writes: &'static [&'static str],
}

const fn case(
    name: &'static str,
    base: &'static [&'static str],
    args: &'static [&'static str],
    writes: &'static [&'static str],
) -> Case {
    Case {
        name,
        base,
        args,
        writes,
    }
}

/// `ukitool build` of the synthetic parts; the cases add options and `-o`.
const BUILD: &[&str] = &[
    "build",
    "--stub",
    "stub.efi",
    "--linux",
    "linux.efi",
    "--initrd",
    "initrd.img",
    "--cmdline",
    "@cmdline",
    "--os-release",
    "@os-release",
    "--timestamp",
    "1700000000",
];

const IMAGE: &[&str] = &[
    "image",
    "--uki",
    "uki-signed.efi",
    "--timestamp",
    "1700000000",
];

/// In order: later cases read what earlier ones wrote.
const CASES: &[Case] = &[
    case("build", BUILD, &["-o", "uki.efi"], &["uki.efi"]),
    case(
        "build-signed",
        BUILD,
        &[
            "--key",
            "snakeoil.key",
            "--cert",
            "snakeoil.pem",
            "-o",
            "uki-built-signed.efi",
        ],
        &["uki-built-signed.efi"],
    ),
    case(
        "build-profiles-pcrsig",
        BUILD,
        &[
            "--profile",
            "ID=one\nTITLE=Profile one",
            "--section",
            ".cmdline:cmdline-one",
            "--profile",
            "ID=two",
            "--pcrpkey",
            "snakeoil.pub",
            "--pcr-key",
            "snakeoil.key",
            "--pcr-bank",
            "sha256",
            "--pcr-bank",
            "sha1",
            "-o",
            "uki-pcr.efi",
        ],
        &["uki-pcr.efi"],
    ),
    case(
        "build-addon",
        &["build", "--stub", "stub.efi"],
        &[
            "--cmdline",
            "addon=1",
            "--timestamp",
            "1",
            "-o",
            "addon.efi",
        ],
        &["addon.efi"],
    ),
    case(
        "sign",
        &["sign", "uki.efi"],
        &[
            "--key",
            "snakeoil.key",
            "--cert",
            "snakeoil.pem",
            "-o",
            "uki-signed.efi",
        ],
        &["uki-signed.efi"],
    ),
    case(
        "sign-signing-time",
        &["sign", "uki.efi"],
        &[
            "--key",
            "snakeoil.key",
            "--cert",
            "snakeoil.pem",
            "--signing-time",
            "1700000000",
            "-o",
            "uki-signed-time.efi",
        ],
        &["uki-signed-time.efi"],
    ),
    case(
        "sign-refused",
        &["sign", "uki-signed.efi"],
        &[
            "--key",
            "snakeoil.key",
            "--cert",
            "snakeoil.pem",
            "-o",
            "refused.efi",
        ],
        &[],
    ),
    case("image", IMAGE, &["-o", "uefi.img"], &["uefi.img"]),
    case(
        "image-json-4096",
        IMAGE,
        &["--sector-size", "4096", "--json", "-o", "uefi-4096.img"],
        &["uefi-4096.img"],
    ),
    case(
        "image-systemd-boot",
        IMAGE,
        &[
            "--layout",
            "systemd-boot",
            "--systemd-boot",
            "stub.efi",
            "--add-partition",
            "data:8M:linux",
            "--json",
            "-o",
            "systemd-boot.img",
        ],
        &["systemd-boot.img"],
    ),
    case("measure", &["measure", "uki.efi"], &[], &[]),
    case("measure-json", &["measure", "uki.efi"], &["--json"], &[]),
    case(
        "measure-profile-1",
        &["measure", "uki-pcr.efi"],
        &["--json", "--profile", "1", "--bank", "sha256"],
        &[],
    ),
    case(
        "measure-parts-signed",
        &["measure", "--linux", "linux.efi", "--cmdline", "cmdline"],
        &["--phase", "enter-initrd", "--sign", "snakeoil.key"],
        &[],
    ),
    case("verify-unsigned", &["verify", "uki.efi"], &[], &[]),
    case(
        "verify-signed",
        &["verify", "uki-signed.efi"],
        &["--cert", "snakeoil.pem"],
        &[],
    ),
    case(
        "verify-signed-json",
        &["verify", "uki-built-signed.efi"],
        &["--json", "--cert", "snakeoil.pem"],
        &[],
    ),
    case(
        "verify-pcrsig-json",
        &["verify", "uki-pcr.efi"],
        &["--json"],
        &[],
    ),
];

/// The inputs, under the names the cases use.
fn write_inputs(dir: &Path) {
    let files: [(&str, Vec<u8>); 6] = [
        ("stub.efi", synthetic_stub()),
        ("linux.efi", fake_kernel(true)),
        ("initrd.img", (0..=255u8).cycle().take(3000).collect()),
        ("cmdline", b"console=ttyS0 quiet".to_vec()),
        ("cmdline-one", b"console=ttyS0 one".to_vec()),
        (
            "os-release",
            b"NAME=\"Golden OS\"\nID=golden\nPRETTY_NAME=\"Golden OS 1\"\n".to_vec(),
        ),
    ];
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).unwrap();
    }
    for name in ["snakeoil.key", "snakeoil.pem"] {
        fs::copy(fixture(name), dir.join(name)).unwrap();
    }
    // The public half of the key, for .pcrpkey.
    let public = ukitool_tests::run_ok(
        std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(dir.join("snakeoil.key")),
    );
    fs::write(dir.join("snakeoil.pub"), public).unwrap();
}

/// What a person sees of one case: the command, its exit code and output, and the
/// sha256 of each file it wrote.
fn transcript(dir: &Path, case: &Case) -> String {
    let args: Vec<&str> = case.base.iter().chain(case.args).copied().collect();
    let out = run(ukitool().current_dir(dir).args(&args));
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(char::is_whitespace) {
                format!("{a:?}")
            } else {
                a.to_string()
            }
        })
        .collect();
    let mut t = format!(
        "$ ukitool {}\nexit {}\n--- stdout\n{}--- stderr\n{}",
        shown.join(" "),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for f in case.writes {
        let path = dir.join(f);
        assert!(path.exists(), "{}: {f} was not written", case.name);
        t += &format!("--- {f}\nsha256 {}\n", sha256_file(&path));
    }
    t
}

#[test]
fn build_sign_image_measure_and_verify_outputs_are_pinned() {
    let dir = tmpdir();
    write_inputs(&dir);
    for case in CASES {
        golden(
            &format!("commands/{}.txt", case.name),
            &transcript(&dir, case),
        );
    }
}
