//! Issue 14's real-world EFI binaries, from Debian's archive (tests/fixtures/realworld.sh):
//! arm64, riscv64 and loongarch64 (EFI zboot) kernels, EFI Boot Guard's unified image,
//! `measure` and `image` refusals, the COFF symbol table rule, and the grub layout's
//! device tree. The referees are ukify and systemd-measure 262 (tests/fixtures/sid.sh),
//! pefile, file(1), zstd, the packages' own release names,
//! bg_gen_unified_kernel's input and mtools. Skips with a message only when the
//! archive is unreachable.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use ukitool_tests::{
    assert_one_line_error, fixture, fixtures_dir, path_str, repo_root, run, run_ok, text, tmpdir,
    ukitool, FileLock,
};

/// The real-world directory, fetched once per process under a lock shared with other
/// test processes; None (and a message) when Debian's archive cannot be reached.
fn realworld_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        // The EFI Boot Guard image is built from the base fixtures' kernel and initrd.
        fixture("vmlinuz");
        fixture("initrd.cpio.gz");
        let out = fixtures_dir().join("realworld");
        let _lock = FileLock::acquire(&fixtures_dir().join(".realworld.lock"));
        let o = run(Command::new("bash")
            .arg(repo_root().join("tests/fixtures/realworld.sh"))
            .arg(&out));
        if o.status.code() == Some(3) {
            eprintln!(
                "SKIP realworld: Debian's archive is unreachable: {}",
                text(&o)
            );
            return None;
        }
        assert!(
            o.status.success(),
            "tests/fixtures/realworld.sh: {}",
            text(&o)
        );
        Some(out)
    })
    .as_ref()
}

/// systemd 262's ukify and systemd-measure from sid (tests/fixtures/sid.sh, into
/// realworld/sid): (ukify, systemd-measure, LD_LIBRARY_PATH).
fn peers() -> Option<&'static (PathBuf, PathBuf, String)> {
    static PEERS: OnceLock<Option<(PathBuf, PathBuf, String)>> = OnceLock::new();
    PEERS
        .get_or_init(|| {
            let out = realworld_dir()?.join("sid");
            let _lock = FileLock::acquire(&fixtures_dir().join(".realworld-sid.lock"));
            let o = run(Command::new("bash")
                .arg(repo_root().join("tests/fixtures/sid.sh"))
                .arg(&out));
            if o.status.code() == Some(3) {
                eprintln!(
                    "SKIP realworld peers: Debian's archive is unreachable: {}",
                    text(&o)
                );
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
            Some((
                get("UKIFY").into(),
                get("MEASURE").into(),
                get("LD_LIBRARY_PATH"),
            ))
        })
        .as_ref()
}

/// The payload of section `name` of `pe`, by `ukitool extract`.
fn section(pe: &Path, name: &str) -> Vec<u8> {
    let o = run(ukitool().args(["extract", path_str(pe), name, "-o", "-"]));
    assert!(o.status.success(), "extract {name}: {}", text(&o));
    o.stdout
}

fn real(name: &str) -> Option<PathBuf> {
    realworld_dir().map(|d| d.join(name))
}

fn release(arch: &str) -> String {
    fs::read_to_string(real(&format!("{arch}.release")).unwrap())
        .unwrap()
        .trim()
        .to_string()
}

/// `inspect --json --no-hash`; the exit code may be 2 when the file has error lints.
fn inspect(path: &Path) -> Value {
    let o = run(ukitool().args(["inspect", "--json", "--no-hash", path_str(path)]));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}: {}", path.display(), text(&o)))
}

fn lint<'a>(v: &'a Value, id: &str) -> Option<&'a Value> {
    v["lints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == id)
}

/// A PE header field as pefile reads it (`FILE_HEADER.NumberOfSymbols`,
/// `OPTIONAL_HEADER.Subsystem`, ...), on the system python3 (python3-pefile): the
/// host's objdump knows no arm64 PE and does not print the symbol count.
fn pefile_field(path: &Path, field: &str) -> u64 {
    let script = format!(
        "import sys, pefile\npe = pefile.PE(sys.argv[1], fast_load=True)\nprint(pe.{field})"
    );
    let out = run_ok(
        Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .arg(path),
    );
    out.trim().parse().unwrap()
}

#[test]
fn arm64_and_riscv64_image_kernels_are_recognised() {
    for (file, arch) in [("vmlinuz-arm64", "arm64"), ("vmlinux-riscv64", "riscv64")] {
        let Some(path) = real(file) else { return };
        let v = inspect(&path);
        assert_eq!(v["kind"], "efi-stub-kernel", "{file}");
        let k = &v["kernel"];
        assert_eq!(k["format"], "image", "{file}");
        assert_eq!(k["architecture"], arch, "{file}");
        assert!(k["is_pe"].as_bool().unwrap());
        // The package names the release: /usr/lib/modules/<release>/.
        let version = k["version"].as_str().unwrap();
        assert!(
            version.starts_with(&format!("{} (", release(arch))),
            "{file}: {version}"
        );
        // The Image header's image_size is the whole image as loaded: pefile's SizeOfImage.
        assert_eq!(
            k["image_size"],
            pefile_field(&path, "OPTIONAL_HEADER.SizeOfImage"),
            "{file}"
        );
        // file(1) agrees on the format.
        let f = run_ok(Command::new("file").arg("-b").arg(&path));
        assert!(
            f.contains("boot executable Image") || f.contains("RISC-V"),
            "{file}: {f}"
        );
    }
}

#[test]
fn a_uki_from_an_arm64_or_riscv64_image_shows_its_version() {
    for (arch, kernel, stub, machine) in [
        ("arm64", "vmlinuz-arm64", "linuxaa64.efi.stub", "arm64"),
        (
            "riscv64",
            "vmlinux-riscv64",
            "linuxriscv64.efi.stub",
            "riscv64",
        ),
    ] {
        let (Some(kernel), Some(stub)) = (real(kernel), real(stub)) else {
            return;
        };
        let dir = tmpdir();
        let uki = dir.join("uki.efi");
        run_ok(ukitool().args([
            "build",
            "--stub",
            path_str(&stub),
            "--linux",
            path_str(&kernel),
            "--cmdline",
            "console=ttyAMA0",
            "-o",
            path_str(&uki),
        ]));
        let v = inspect(&uki);
        assert_eq!(v["kind"], "uki", "{arch}");
        assert_eq!(v["pe"]["machine_name"], machine);
        assert_eq!(v["kernel"]["architecture"], arch);
        let version = v["kernel"]["version"].as_str().unwrap();
        let rel = release(arch);
        assert!(version.starts_with(&format!("{rel} (")), "{version}");
        // .uname is found in the Image as ukify finds it (Uname.scrape_generic).
        assert_eq!(v["uname"], rel.as_str());
        let Some((ukify, _, ld)) = peers() else {
            return;
        };
        let theirs = dir.join("ukify.efi");
        run_ok(
            Command::new("/usr/bin/python3")
                .arg(ukify)
                .env("LD_LIBRARY_PATH", ld)
                .args([
                    "build",
                    "--linux",
                    path_str(&kernel),
                    "--stub",
                    path_str(&stub),
                ])
                .args(["--output", path_str(&theirs)]),
        );
        assert_eq!(
            section(&theirs, ".uname"),
            section(&uki, ".uname"),
            "{arch}"
        );
    }
}

#[test]
fn loongarch64_zboot_is_decompressed_for_its_version() {
    let Some(path) = real("vmlinuz-loong64") else {
        return;
    };
    let v = inspect(&path);
    assert_eq!(v["kind"], "efi-stub-kernel");
    let k = &v["kernel"];
    assert_eq!(k["format"], "zboot");
    assert_eq!(k["architecture"], "loongarch64");
    let z = &k["zboot"];
    assert_eq!(z["compression"], "zstd");
    // The referee: the payload cut out as the header says, through zstd(1).
    let data = fs::read(&path).unwrap();
    let le32 = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let (off, size) = (le32(8), le32(12));
    assert_eq!(z["payload_offset"], off);
    assert_eq!(z["payload_size"], size);
    let dir = tmpdir();
    fs::write(dir.join("payload.zst"), &data[off..off + size]).unwrap();
    let image = Command::new("zstd")
        .args(["-dc", "--no-progress"])
        .arg(dir.join("payload.zst"))
        .output()
        .unwrap()
        .stdout;
    let at = image
        .windows(14)
        .position(|w| w == b"Linux version ")
        .expect("zstd's output has a banner");
    let end = at + image[at..].iter().position(|&b| b == b'\n').unwrap();
    let banner = std::str::from_utf8(&image[at + 14..end]).unwrap();
    assert_eq!(k["version"], banner);
    assert!(banner.starts_with(&format!("{} (", release("loong64"))));
    // The inner Image's header, from zstd's output.
    let image_size = u64::from_le_bytes(image[0x10..0x18].try_into().unwrap());
    assert_eq!(k["image_size"], image_size);
}

#[test]
fn measure_refuses_files_without_linux() {
    let mut files: Vec<PathBuf> = vec![fixture("linuxx64.efi.stub"), fixture("vmlinuz")];
    for name in [
        "shimx64-trixie.efi.signed",
        "addonx64.efi.stub",
        "vmlinuz-arm64",
        "ebg-unified.efi",
    ] {
        let Some(p) = real(name) else { return };
        files.push(p);
    }
    for f in &files {
        let o = run(ukitool().args(["measure", path_str(f)]));
        let line = assert_one_line_error(&o, &f.display().to_string());
        assert!(line.contains("no .linux section"), "{line}");
    }
    let cmdline = fixture("cmdline");
    let o = run(ukitool().args(["measure", "--cmdline", path_str(&cmdline)]));
    assert!(assert_one_line_error(&o, "parts without --linux").contains("--linux is required"));
    // systemd-measure refuses the same.
    let Some((_, measure, ld)) = peers() else {
        return;
    };
    let o = run(Command::new(measure)
        .env("LD_LIBRARY_PATH", ld)
        .arg("calculate")
        .arg(format!("--cmdline={}", path_str(&cmdline))));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("Either --linux= or --current must be specified"),
        "{}",
        text(&o)
    );
}

#[test]
fn efibootguard_unified_image_is_its_own_kind() {
    let Some(path) = real("ebg-unified.efi") else {
        return;
    };
    let v = inspect(&path);
    assert_eq!(v["kind"], "efibootguard-unified");
    // What realworld.sh gave bg_gen_unified_kernel -c, read back from UTF-16LE.
    assert_eq!(v["cmdline"], "console=ttyS0 panic=-1 ebg.test=1");
    // The kernel facts come from .kernel: the base fixtures' vmlinuz.
    let base = inspect(&fixture("vmlinuz"));
    assert_eq!(v["kernel"]["version"], base["kernel"]["version"]);
    assert!(v["kernel"]["version"].as_str().is_some());
    // diff shows the command line as text too.
    let mut changed = fs::read(&path).unwrap();
    let needle: Vec<u8> = "ebg.test=1"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let at = changed
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    changed[at + needle.len() - 2] = b'2';
    let dir = tmpdir();
    let other = dir.join("changed.efi");
    fs::write(&other, changed).unwrap();
    let o = run(ukitool().args(["diff", path_str(&path), path_str(&other)]));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("-console=ttyS0 panic=-1 ebg.test=1\n"),
        "{out}"
    );
    assert!(
        out.contains("+console=ttyS0 panic=-1 ebg.test=2\n"),
        "{out}"
    );
}

#[test]
fn uefi_layout_boots_only_efi_applications() {
    let Some(ext4) = real("ext4_x64.efi") else {
        return;
    };
    let dir = tmpdir();
    // rEFInd's driver: pefile says subsystem 11. A copy with the runtime-driver
    // subsystem (12) stands for the drivers Debian does not ship as files.
    assert_eq!(pefile_field(&ext4, "OPTIONAL_HEADER.Subsystem"), 11);
    let mut runtime = fs::read(&ext4).unwrap();
    let pe = u32::from_le_bytes(runtime[0x3c..0x40].try_into().unwrap()) as usize;
    runtime[pe + 24 + 68..pe + 24 + 70].copy_from_slice(&12u16.to_le_bytes());
    let runtime_path = dir.join("runtime.efi");
    fs::write(&runtime_path, runtime).unwrap();
    assert_eq!(pefile_field(&runtime_path, "OPTIONAL_HEADER.Subsystem"), 12);
    let refused = [
        (ext4, "subsystem 11"),
        (runtime_path, "subsystem 12"),
        (real("addonx64.efi.stub").unwrap(), "a UKI addon"),
        (
            fixture("linuxx64.efi.stub"),
            "a systemd-stub without .linux",
        ),
    ];
    let img = dir.join("disk.img");
    for (file, why) in &refused {
        let o = run(ukitool().args(["image", "--uki", path_str(file), "-o", path_str(&img)]));
        let line = assert_one_line_error(&o, &file.display().to_string());
        assert!(line.contains(why), "{line}");
        assert!(!img.exists(), "{}: an image was written", file.display());
    }
    for name in ["shellx64.efi", "memtest86+x64.efi", "ipxe-amd64.efi"] {
        let file = real(name).unwrap();
        assert_eq!(
            pefile_field(&file, "OPTIONAL_HEADER.Subsystem"),
            10,
            "{name}"
        );
        let out = run_ok(ukitool().args([
            "image",
            "--uki",
            path_str(&file),
            "-o",
            path_str(&img),
            "--json",
        ]));
        let v: Value = serde_json::from_str(&out).unwrap();
        let boot = v["esp"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "EFI/BOOT/BOOTX64.EFI")
            .unwrap_or_else(|| panic!("{name}: {out}"));
        assert_eq!(boot["size"], fs::metadata(&file).unwrap().len(), "{name}");
        fs::remove_file(&img).unwrap();
    }
}

#[test]
fn coff_symbol_tables_follow_one_rule() {
    // shim keeps long section names in its string table, HashTool does not: both get
    // the same lint, with pefile's symbol count, and no trailing-data.
    for name in ["shimx64-trixie.efi.signed", "HashTool.efi"] {
        let Some(path) = real(name) else { return };
        let v = inspect(&path);
        let symbols = pefile_field(&path, "FILE_HEADER.NumberOfSymbols");
        let l = lint(&v, "coff-symbol-table").unwrap_or_else(|| panic!("{name}: {v}"));
        assert_eq!(l["severity"], "info", "{name}");
        assert!(
            l["message"]
                .as_str()
                .unwrap()
                .contains(&format!("of {symbols} symbols")),
            "{name}: {l}"
        );
        assert!(lint(&v, "trailing-data").is_none(), "{name}");
    }
}

#[test]
fn grub_layout_loads_the_dtb_next_to_the_kernel() {
    let (Some(kernel), Some(stub), Some(dtb), Some(grub)) = (
        real("vmlinuz-arm64"),
        real("linuxaa64.efi.stub"),
        real("bcm2711-rpi-4-b.dtb"),
        real("grubaa64.efi.signed"),
    ) else {
        return;
    };
    let dir = tmpdir();
    let uki = dir.join("arm64.efi");
    run_ok(ukitool().args([
        "build",
        "--stub",
        path_str(&stub),
        "--linux",
        path_str(&kernel),
        "--initrd",
        path_str(&fixture("initrd.cpio.gz")),
        "--devicetree",
        path_str(&dtb),
        "-o",
        path_str(&uki),
    ]));
    let img = dir.join("disk.img");
    let out = run_ok(ukitool().args([
        "image",
        "--uki",
        path_str(&uki),
        "--layout",
        "grub",
        "--grub",
        path_str(&grub),
        "-o",
        path_str(&img),
        "--json",
    ]));
    let v: Value = serde_json::from_str(&out).unwrap();
    let esp_offset = v["partitions"][0]["offset"].as_u64().unwrap();
    // mtools reads the ESP: the dtb is next to the kernel and grub.cfg loads it.
    let mtype = |p: &str| {
        let o = Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(format!("{}@@{esp_offset}", img.display()))
            .arg(format!("::{p}"))
            .output()
            .unwrap();
        assert!(o.status.success(), "mtype {p}: {}", text(&o));
        o.stdout
    };
    assert_eq!(mtype("/A/devicetree.dtb"), fs::read(&dtb).unwrap());
    let cfg = String::from_utf8(mtype("/EFI/BOOT/grub.cfg")).unwrap();
    assert!(cfg.contains("    devicetree /A/devicetree.dtb\n"), "{cfg}");
}

#[test]
fn hostile_zboot_headers_give_facts_not_panics() {
    let Some(path) = real("vmlinuz-loong64") else {
        return;
    };
    let good = fs::read(&path).unwrap();
    let dir = tmpdir();
    let f = dir.join("zboot.efi");
    type Mutation = fn(&mut Vec<u8>);
    let cases: [(&str, Mutation); 4] = [
        ("payload past the end", |d| {
            d[12..16].copy_from_slice(&u32::MAX.to_le_bytes())
        }),
        ("a method ukitool does not decompress", |d| {
            d[0x18..0x1c].copy_from_slice(b"xz\0\0")
        }),
        ("a corrupt stream", |d| {
            let off = u32::from_le_bytes(d[8..12].try_into().unwrap()) as usize;
            for b in &mut d[off + 64..off + 4096] {
                *b = !*b;
            }
        }),
        ("the file cut in the payload", |d| d.truncate(d.len() / 2)),
    ];
    for (what, mutate) in cases {
        let mut d = good.clone();
        mutate(&mut d);
        fs::write(&f, &d).unwrap();
        let o = run(ukitool().args(["inspect", "--json", "--no-hash", path_str(&f)]));
        assert!(
            matches!(o.status.code(), Some(0..=2)),
            "{what}: {}",
            text(&o)
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{what}: {e}"));
        let k = &v["kernel"];
        assert_eq!(k["format"], "zboot", "{what}");
        assert!(k["version"].is_null(), "{what}: {k}");
    }
}
