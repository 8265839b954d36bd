//! `ukitool image` in the formats people ship (issue 17): compressed raw (zstd, xz,
//! gzip), qcow2, VHD (dynamic and fixed), VMDK streamOptimized, and the bmap, each
//! checked by an outside referee against the raw image: `zstd -t`/`xz -t`/`gzip -t`
//! and decompression, `qemu-img check` and `qemu-img compare`, `bmaptool copy`. Every
//! output is made twice and must be byte-identical.
//!
//! One small image (the uefi layout of uki.efi, 102 MiB, 9 MiB of data) serves every
//! test; xz runs at level 1 to keep CI short (the default level is the same code path).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ukitool_tests::{
    assert_one_line_error, fixture, path_str, run, sha256_file, text, tmpdir, ukitool, TmpDir,
};

const EPOCH: &str = "1700000000";

/// `ukitool image --uki uki.efi -o DIR/NAME ARGS...`, twice (the second to
/// DIR/again/NAME: VMDK's descriptor names its file); asserts both runs succeed and give
/// the same bytes.
fn image_twice(dir: &TmpDir, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    fs::create_dir_all(dir.join("again")).unwrap();
    let mut digests = Vec::new();
    for path in [out.clone(), dir.join("again").join(name)] {
        let o = run(ukitool()
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .args(["image", "-q", "--uki"])
            .arg(fixture("uki.efi"))
            .arg("-o")
            .arg(&path)
            .args(args));
        assert!(o.status.success(), "image -o {name} {args:?}: {}", text(&o));
        digests.push(sha256_file(&path));
        if path != out {
            fs::remove_file(&path).unwrap();
        }
    }
    assert_eq!(
        digests[0], digests[1],
        "{name} {args:?} is not reproducible"
    );
    out
}

fn raw_image(dir: &TmpDir) -> PathBuf {
    image_twice(dir, "disk.img", &[])
}

fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(o.status.success(), "{cmd:?}: {}", text(&o));
    text(&o)
}

/// `tool -dc file` is byte-identical to `raw`.
fn decompresses_to(tool: &str, file: &Path, raw: &Path) {
    let mut child = Command::new(tool)
        .arg("-dc")
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let mut got = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut got).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "{tool} -dc {}",
        file.display()
    );
    assert!(
        got == fs::read(raw).unwrap(),
        "{tool} -dc {} differs from the raw image",
        file.display()
    );
}

#[test]
fn compressed_outputs_pass_their_own_tools_and_decompress_to_the_raw_image() {
    let dir = tmpdir();
    let raw = raw_image(&dir);
    let cases: [(&str, &[&str], &str); 4] = [
        ("disk.raw.zst", &[], "zstd"),
        ("disk.raw.gz", &[], "gzip"),
        ("disk.raw.xz", &["--compress", "xz:1"], "xz"),
        ("disk.zst9", &["--compress", "zstd:9"], "zstd"),
    ];
    for (name, args, tool) in cases {
        let out = image_twice(&dir, name, args);
        ok(Command::new(tool).arg("-t").arg(&out));
        decompresses_to(tool, &out, &raw);
        let size = fs::metadata(&out).unwrap().len();
        assert!(size < 12 << 20, "{name}: {size} bytes for 9 MiB of data");
    }
    // Stdout stays raw unless --compress says otherwise, and then matches the file.
    let o = run(ukitool()
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .args(["image", "-q", "--compress", "zstd", "-o", "-", "--uki"])
        .arg(fixture("uki.efi")));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        o.stdout == fs::read(dir.join("disk.raw.zst")).unwrap(),
        "-o - --compress zstd"
    );
}

/// `qemu-img check` (where the format has a checker) and `qemu-img compare` with the raw
/// image, formats named explicitly (a fixed VHD probes as raw).
fn qemu_accepts(raw: &Path, img: &Path, qemu_format: &str) {
    let o = run(Command::new("qemu-img")
        .args(["check", "-f", qemu_format])
        .arg(img));
    let t = text(&o);
    // qemu's vpc driver has no checker: it says so and exits 63.
    let unsupported = qemu_format == "vpc" && t.contains("does not support checks");
    assert!(
        unsupported || (o.status.success() && t.contains("No errors were found")),
        "qemu-img check {}: {t}",
        img.display()
    );
    let t = ok(Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", qemu_format])
        .arg(raw)
        .arg(img));
    assert!(
        t.contains("Images are identical"),
        "qemu-img compare {}: {t}",
        img.display()
    );
}

#[test]
fn vm_images_pass_qemu_img_check_and_compare_equal_to_the_raw_image() {
    let dir = tmpdir();
    let raw = raw_image(&dir);
    let raw_len = fs::metadata(&raw).unwrap().len();
    for (name, args, qemu_format) in [
        ("disk.qcow2", &[][..], "qcow2"),
        ("disk.vhd", &[][..], "vpc"),
        ("fixed.vhd", &["--format", "vhd-fixed"][..], "vpc"),
        ("disk.vmdk", &[][..], "vmdk"),
        ("disk.out", &["--format", "qcow2"][..], "qcow2"),
    ] {
        let img = image_twice(&dir, name, args);
        qemu_accepts(&raw, &img, qemu_format);
        let info = ok(Command::new("qemu-img")
            .args(["info", "-f", qemu_format])
            .arg(&img));
        assert!(
            info.contains(&format!("({raw_len} bytes)")),
            "{name}: {info}"
        );
    }
    // Sparse: the formats hold the 9 MiB of data, not the 102 MiB disk.
    for name in ["disk.qcow2", "disk.vhd", "disk.vmdk"] {
        let len = fs::metadata(dir.join(name)).unwrap().len();
        assert!(len < 16 << 20, "{name} is {len} bytes");
    }
    let info = ok(Command::new("qemu-img")
        .args(["info", "disk.vmdk"])
        .current_dir(&dir));
    assert!(info.contains("streamOptimized"), "{info}");
}

/// The bytes of `f` in 4 KiB blocks `first..=last`.
fn blocks(f: &mut fs::File, first: u64, last: u64) -> Vec<u8> {
    let mut v = vec![0u8; ((last - first + 1) * 4096) as usize];
    f.seek(SeekFrom::Start(first * 4096)).unwrap();
    let n = f.read(&mut v).unwrap();
    v.truncate(n);
    v
}

#[test]
fn bmaptool_copies_the_mapped_ranges_with_ukitools_bmap() {
    let dir = tmpdir();
    let bmap = dir.join("disk.bmap");
    let raw = image_twice(&dir, "disk.img", &["--bmap", path_str(&bmap)]);
    let zst = image_twice(&dir, "disk.raw.zst", &[]);
    let len = fs::metadata(&raw).unwrap().len();
    let xml = fs::read_to_string(&bmap).unwrap();
    assert!(
        xml.contains("<bmap version=\"2.0\">") && xml.contains("sha256"),
        "{xml}"
    );
    // The mapped ranges, as bmaptool reads them.
    let ranges: Vec<(u64, u64)> = xml
        .lines()
        .filter_map(|l| l.split_once("\"> ").map(|(_, r)| r))
        .map(|r| r.trim_end_matches(" </Range>"))
        .map(|r| match r.split_once('-') {
            Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
            None => (r.parse().unwrap(), r.parse().unwrap()),
        })
        .collect();
    assert!(ranges.len() >= 3, "{xml}");
    for (source, target) in [(&raw, "target.bin"), (&zst, "target2.bin")] {
        let target = dir.join(target);
        ok(Command::new("bmaptool")
            .arg("copy")
            .arg("--bmap")
            .arg(&bmap)
            .arg(source)
            .arg(&target));
        let (mut a, mut b) = (
            fs::File::open(&raw).unwrap(),
            fs::File::open(&target).unwrap(),
        );
        for &(first, last) in &ranges {
            assert!(
                blocks(&mut a, first, last) == blocks(&mut b, first, last),
                "blocks {first}-{last}"
            );
        }
        // bmaptool made the file sparse and wrote only the map: its allocated blocks
        // are about the mapped ones (9 MiB of 102 MiB).
        let allocated = fs::metadata(&target).unwrap().blocks() * 512;
        assert!(
            allocated < len / 4,
            "{} has {allocated} bytes allocated",
            target.display()
        );
    }
}

#[test]
fn output_options_that_cannot_apply_are_refused() {
    let dir = tmpdir();
    let uki = fixture("uki.efi");
    let out = run(ukitool()
        .args([
            "image",
            "--uki",
            path_str(&uki),
            "--format",
            "qcow2",
            "--bmap",
        ])
        .arg(dir.join("x.bmap"))
        .arg("-o")
        .arg(dir.join("x.qcow2")));
    assert!(assert_one_line_error(&out, "--bmap with qcow2").contains("raw image"));
    let out = run(ukitool()
        .args([
            "image",
            "--uki",
            path_str(&uki),
            "--format",
            "vhd-fixed",
            "--size",
            "104858112",
        ])
        .arg("-o")
        .arg(dir.join("x.vhd")));
    assert!(assert_one_line_error(&out, "fixed VHD of an odd size").contains("MiB"));
    let out = run(ukitool()
        .args(["image", "--uki", path_str(&uki), "--compress", "lz4", "-o"])
        .arg(dir.join("x.img")));
    assert!(assert_one_line_error(&out, "unknown codec").contains("zstd, xz or gzip"));
}
