//! `ukitool image --add-partition NAME:SIZE:TYPE:xfs --add-file-to ...` against outside
//! referees (sgdisk -v, xfs_repair -n, the kernel's XFS), then `ukitool inspect` and
//! `ukitool extract` on the image. The mount needs root and loop devices; without them
//! it is skipped (and says so), the rest still runs.

use std::fs;
use std::path::Path;
use std::process::Command;

use ukitool_tests::blockdev::{can_use_loop_devices, have, Loop, Mounted};
use ukitool_tests::{fixture, path_str, run, run_ok, sha256_file, text, tmpdir, ukitool};

/// The files put on BOOT: (path under the partition, source).
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let src = dir.join("src");
    fs::create_dir_all(src.join("grub/fonts")).unwrap();
    fs::copy(fixture("vmlinuz"), src.join("vmlinuz")).unwrap();
    fs::copy(fixture("initrd.cpio.gz"), src.join("initramfs.xz")).unwrap();
    fs::write(src.join("grub/grub.cfg"), b"set timeout=0\n").unwrap();
    fs::write(src.join("grub/fonts/empty"), b"").unwrap();
    let mut want = Vec::new();
    for p in [
        "vmlinuz",
        "initramfs.xz",
        "grub/grub.cfg",
        "grub/fonts/empty",
    ] {
        want.push((format!("A/{p}"), fs::read(src.join(p)).unwrap()));
    }
    want.push((
        "EFI/Linux/uki.efi".into(),
        fs::read(fixture("uki.efi")).unwrap(),
    ));
    want
}

/// `ukitool image` with a 1000 MiB XFS BOOT partition and `sector`-byte sectors;
/// returns the JSON summary.
fn make_image(dir: &Path, out: &Path, sector: u64) -> serde_json::Value {
    let src = dir.join("src");
    let json = run_ok(
        ukitool()
            .args([
                "image",
                "--uki",
                path_str(&fixture("uki.efi")),
                "--json",
                "-q",
            ])
            .args([
                "--timestamp",
                "1700000000",
                "--add-partition",
                "BOOT:1000M:linux:xfs",
                "--sector-size",
                &sector.to_string(),
            ])
            .arg("--add-file-to")
            .arg(format!("BOOT:{}:/A", path_str(&src)))
            .arg("--add-file-to")
            .arg(format!(
                "BOOT:{}:/EFI/Linux/uki.efi",
                path_str(&fixture("uki.efi"))
            ))
            .arg("-o")
            .arg(out),
    );
    serde_json::from_str(&json).unwrap()
}

#[test]
fn xfs_partition_is_valid_readable_and_reproducible() {
    for sector in [512, 4096] {
        check_image(sector);
    }
}

fn check_image(sector: u64) {
    let dir = tmpdir();
    let want = tree(&dir);
    let img = dir.join("disk.img");
    let summary = make_image(&dir, &img, sector);
    assert_eq!(summary["sector_size"], sector);
    let again = dir.join("again.img");
    make_image(&dir, &again, sector);
    assert_eq!(
        sha256_file(&img),
        sha256_file(&again),
        "same inputs, same bytes"
    );
    fs::remove_file(&again).unwrap();

    let boot = &summary["partitions"][1];
    assert_eq!(boot["name"], "BOOT");
    let (off, size) = (
        boot["offset"].as_u64().unwrap(),
        boot["size"].as_u64().unwrap(),
    );

    // sgdisk reads a 4096-byte-sector table only through a device of that sector size.
    let lo4k = (sector == 4096 && can_use_loop_devices(&[]))
        .then(|| Loop::attach(&img, &["-r", "-b", "4096"]));
    if have("sgdisk") && (sector == 512 || lo4k.is_some()) {
        let dev = lo4k.as_ref().map_or(img.clone(), |l| l.dev.clone().into());
        let out = run(Command::new("sgdisk").arg("-v").arg(&dev));
        assert!(text(&out).contains("No problems found"), "{}", text(&out));
    }
    drop(lo4k);
    if have("xfs_repair") {
        let part = dir.join("boot.xfs");
        run_ok(Command::new("dd").args([
            format!("if={}", path_str(&img)),
            format!("of={}", path_str(&part)),
            "bs=1M".into(),
            format!("skip={}", off >> 20),
            format!("count={}", size >> 20),
            "conv=sparse".into(),
            "status=none".into(),
        ]));
        let out = run(Command::new("xfs_repair").args(["-n", "-f"]).arg(&part));
        assert!(
            out.status.success() && !text(&out).contains("would"),
            "xfs_repair -n: {}",
            text(&out)
        );
        fs::remove_file(&part).unwrap();
    }

    let listing = run_ok(ukitool().arg("inspect").arg(&img));
    assert!(
        listing.contains("\nPartition 2: XFS label \"BOOT\" uuid "),
        "{listing}"
    );
    assert!(
        listing.contains(&boot["unique_guid"].as_str().unwrap().to_lowercase()),
        "{listing}"
    );
    for (p, data) in &want {
        let row = format!("\n  /{p} ");
        assert!(listing.contains(&row), "{row:?} missing:\n{listing}");
        let got = dir.join("got");
        let _ = fs::remove_file(&got);
        run_ok(
            ukitool()
                .arg("extract")
                .arg(&img)
                .arg(format!("BOOT:/{p}"))
                .arg("-o")
                .arg(&got),
        );
        assert!(fs::read(&got).unwrap() == *data, "extract BOOT:/{p}");
    }
    assert!(
        listing.contains("\n  /EFI/Linux/uki.efi ("),
        "the UKI is inspected:\n{listing}"
    );

    let all = dir.join("all");
    run_ok(
        ukitool()
            .arg("extract")
            .arg(&img)
            .arg("--all")
            .arg("-o")
            .arg(&all),
    );
    for (p, data) in &want {
        assert!(
            fs::read(all.join("BOOT").join(p)).unwrap() == *data,
            "--all: {p}"
        );
    }
    assert!(all.join("EFI/EFI/BOOT/BOOTX64.EFI").is_file());

    if !can_use_loop_devices(&["mount"]) {
        return;
    }
    let lo = Loop::attach(
        &img,
        &[
            "-r",
            "-b",
            &sector.to_string(),
            "--offset",
            &off.to_string(),
            "--sizelimit",
            &size.to_string(),
        ],
    );
    let at = dir.join("mnt");
    fs::create_dir_all(&at).unwrap();
    let out = run(Command::new("mount")
        .args(["-t", "xfs", "-o", "ro", &lo.dev])
        .arg(&at));
    assert!(out.status.success(), "mount: {}", text(&out));
    let mounted = Mounted(at.clone());
    for (p, data) in &want {
        assert!(
            fs::read(at.join(p)).unwrap() == *data,
            "the kernel reads {p}"
        );
    }
    drop(mounted);
}

/// Peak RSS in KiB of `ukitool ARGS` (GNU time's %M).
fn peak_rss_kib(args: &[String]) -> u64 {
    let o = run(Command::new("/usr/bin/time")
        .args(["-f", "maxrss=%M"])
        .arg(ukitool_tests::ukitool_bin())
        .args(args));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    t.lines()
        .find_map(|l| l.strip_prefix("maxrss="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {t}"))
}

#[test]
fn memory_of_an_xfs_boot_partition_does_not_grow_with_its_size() {
    // 110 MiB of files on BOOT: Debian's kernel and initrd plus a 102 MiB initramfs.
    // Peak RSS less the mapped inputs (the UKI and every file, which the writer reads
    // through their mappings) stays below 32 MiB, for a 2000 MiB and a 64 GiB BOOT.
    let dir = tmpdir();
    let src = dir.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::copy(fixture("vmlinuz"), src.join("vmlinuz")).unwrap();
    fs::copy(fixture("initrd.cpio.gz"), src.join("initrd.cpio.gz")).unwrap();
    fs::write(
        src.join("initramfs.xz"),
        ukitool_tests::noise(110, 102 << 20),
    )
    .unwrap();
    let uki = fixture("uki.efi");
    let mapped: u64 = ["vmlinuz", "initrd.cpio.gz", "initramfs.xz"]
        .iter()
        .map(|f| fs::metadata(src.join(f)).unwrap().len())
        .sum::<u64>()
        + fs::metadata(&uki).unwrap().len();
    assert!(mapped - fs::metadata(&uki).unwrap().len() >= 110 << 20);
    for size in ["2000M", "64G"] {
        let out = dir.join(format!("boot-{size}.img"));
        let args: Vec<String> = [
            "image",
            "-q",
            "--timestamp",
            "1700000000",
            "--uki",
            path_str(&uki),
            "--add-partition",
            &format!("BOOT:{size}:linux:xfs"),
            "--add-file-to",
            &format!("BOOT:{}:/A", path_str(&src)),
            "-o",
            path_str(&out),
        ]
        .map(String::from)
        .to_vec();
        let rss = peak_rss_kib(&args);
        let over = (rss * 1024).saturating_sub(mapped);
        eprintln!(
            "BOOT {size}: peak RSS {rss} KiB, {} KiB over the {} KiB of mapped inputs",
            over / 1024,
            mapped / 1024
        );
        assert!(
            over < 32 << 20,
            "BOOT {size}: peak RSS {rss} KiB is {over} bytes over the mapped inputs"
        );
        // The image is sparse: far fewer blocks than its size.
        let used = std::os::unix::fs::MetadataExt::blocks(&fs::metadata(&out).unwrap()) * 512;
        assert!(
            used < mapped + (200 << 20),
            "{size}: {used} bytes allocated"
        );
        // Our reader finds the three files on it, with no problem.
        let json = run_ok(ukitool().args(["inspect", "--json"]).arg(&out));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let x = &v["xfs_volumes"][0]["xfs"];
        assert_eq!(x["problems"], serde_json::json!([]), "{size}");
        let files = x["entries"].as_array().unwrap();
        assert_eq!(files.iter().filter(|e| e["kind"] == "file").count(), 3);
        fs::remove_file(&out).unwrap();
    }
}
