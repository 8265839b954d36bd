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
    Case {
        name: "build",
        base: BUILD,
        args: &["-o", "uki.efi"],
        writes: &["uki.efi"],
    },
    Case {
        name: "build-signed",
        base: BUILD,
        args: &[
            "--key",
            "snakeoil.key",
            "--cert",
            "snakeoil.pem",
            "-o",
            "uki-built-signed.efi",
        ],
        writes: &["uki-built-signed.efi"],
    },
    Case {
        name: "build-profiles-pcrsig",
        base: BUILD,
        args: &[
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
        writes: &["uki-pcr.efi"],
    },
    Case {
        name: "build-addon",
        base: &["build", "--stub", "stub.efi"],
        args: &[
            "--cmdline",
            "addon=1",
            "--timestamp",
            "1",
            "-o",
            "addon.efi",
        ],
        writes: &["addon.efi"],
    },
    Case {
        name: "sign",
        base: &["sign", "uki.efi"],
        args: &[
            "--key",
            "snakeoil.key",
            "--cert",
            "snakeoil.pem",
            "-o",
            "uki-signed.efi",
        ],
        writes: &["uki-signed.efi"],
    },
    Case {
        name: "sign-signing-time",
        base: &["sign", "uki.efi"],
        args: &[
            "--key",
            "snakeoil.key",
            "--cert",
            "snakeoil.pem",
            "--signing-time",
            "1700000000",
            "-o",
            "uki-signed-time.efi",
        ],
        writes: &["uki-signed-time.efi"],
    },
    Case {
        name: "sign-refused",
        base: &["sign", "uki-signed.efi"],
        args: &[
            "--key",
            "snakeoil.key",
            "--cert",
            "snakeoil.pem",
            "-o",
            "refused.efi",
        ],
        writes: &[],
    },
    Case {
        name: "image",
        base: IMAGE,
        args: &["-o", "uefi.img"],
        writes: &["uefi.img"],
    },
    Case {
        name: "image-json-4096",
        base: IMAGE,
        args: &["--sector-size", "4096", "--json", "-o", "uefi-4096.img"],
        writes: &["uefi-4096.img"],
    },
    Case {
        name: "image-systemd-boot",
        base: IMAGE,
        args: &[
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
        writes: &["systemd-boot.img"],
    },
    Case {
        name: "measure",
        base: &["measure", "uki.efi"],
        args: &[],
        writes: &[],
    },
    Case {
        name: "measure-json",
        base: &["measure", "uki.efi"],
        args: &["--json"],
        writes: &[],
    },
    Case {
        name: "measure-profile-1",
        base: &["measure", "uki-pcr.efi"],
        args: &["--json", "--profile", "1", "--bank", "sha256"],
        writes: &[],
    },
    Case {
        name: "measure-parts-signed",
        base: &["measure", "--linux", "linux.efi", "--cmdline", "cmdline"],
        args: &["--phase", "enter-initrd", "--sign", "snakeoil.key"],
        writes: &[],
    },
    Case {
        name: "verify-unsigned",
        base: &["verify", "uki.efi"],
        args: &[],
        writes: &[],
    },
    Case {
        name: "verify-signed",
        base: &["verify", "uki-signed.efi"],
        args: &["--cert", "snakeoil.pem"],
        writes: &[],
    },
    Case {
        name: "verify-signed-json",
        base: &["verify", "uki-built-signed.efi"],
        args: &["--json", "--cert", "snakeoil.pem"],
        writes: &[],
    },
    Case {
        name: "verify-pcrsig-json",
        base: &["verify", "uki-pcr.efi"],
        args: &["--json"],
        writes: &[],
    },
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
