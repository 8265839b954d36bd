//! Outside tools as referees (objdump, objcopy), and the fixture UKI's parts as
//! `ukitool build` arguments.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::{fixture, run_ok};

/// Debian's systemd-stub, as systemd-boot-efi installs it.
pub const SYSTEMD_STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// `objdump -h` rows: (name, size, vma, file offset).
pub fn objdump_sections(path: &Path) -> Vec<(String, u64, u64, u64)> {
    let text = run_ok(Command::new("objdump").arg("-h").arg(path));
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 7 && f[0].parse::<u32>().is_ok() {
                let h = |s: &str| u64::from_str_radix(s, 16).ok();
                Some((f[1].to_string(), h(f[2])?, h(f[3])?, h(f[5])?))
            } else {
                None
            }
        })
        .collect()
}

/// `objcopy -O binary --only-section NAME`: the section's VirtualSize bytes, written to
/// `out` and returned.
pub fn objcopy_section(pe: &Path, name: &str, out: &Path) -> Vec<u8> {
    run_ok(
        Command::new("objcopy")
            .args(["-O", "binary", "--only-section", name])
            .arg(pe)
            .arg(out),
    );
    fs::read(out).unwrap()
}

/// `ukitool build` arguments for the fixture UKI's parts named in `parts`: `linux`,
/// `initrd`, `cmdline`, `os-release` and `splash`, from their fixtures.
pub fn fixture_parts(parts: &[&str]) -> Vec<OsString> {
    let mut args = Vec::new();
    for part in parts {
        let (flag, name) = match *part {
            "linux" => ("--linux", "vmlinuz"),
            "initrd" => ("--initrd", "initrd.cpio.gz"),
            "splash" => ("--splash", "splash.bmp"),
            // Text parts take `@FILE`.
            "cmdline" => ("--cmdline=@", "cmdline"),
            "os-release" => ("--os-release=@", "os-release"),
            other => panic!("no fixture part {other}"),
        };
        if let Some(flag) = flag.strip_suffix('@') {
            let mut a = OsString::from(format!("{flag}@"));
            a.push(fixture(name));
            args.push(a);
        } else {
            args.push(flag.into());
            args.push(fixture(name).into());
        }
    }
    args
}

/// `ukitool build --stub <systemd-stub>` with the fixture `parts` (see [`fixture_parts`]);
/// callers add the rest and `-o`.
pub fn build_command(parts: &[&str]) -> Command {
    let mut c = crate::ukitool();
    c.args(["build", "--stub", SYSTEMD_STUB])
        .args(fixture_parts(parts));
    c
}

/// `ukitool sign INPUT --key KEY --cert CERT -o OUT`; callers add options such as
/// `--append`.
pub fn sign_command(input: &Path, key: &Path, cert: &Path, out: &Path) -> Command {
    let mut c = crate::ukitool();
    c.arg("sign")
        .arg(input)
        .arg("--key")
        .arg(key)
        .arg("--cert")
        .arg(cert)
        .arg("-o")
        .arg(out);
    c
}
