//! `ukitool write` and `ukitool disks` against real block devices (loop devices).
//!
//! These need root (losetup, mount). Without root, or without loop devices, each test
//! prints why it is skipped and passes. Referees: sgdisk -v, blkid, partx, mtools, and a
//! byte-for-byte read-back of the device.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ukitool_tests::blockdev::{can_use_loop_devices, have, Loop, Mounted};
use ukitool_tests::{
    fixture, noise, run_logged, sha256_file, sha256_prefix, tmpdir, ukitool, TmpDir,
};

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------
// Helpers

fn sh(cmd: &str) -> Output {
    run_logged(Command::new("sh").args(["-c", cmd]))
}

/// A device node for partition `n` of a `losetup -P` device, made in the scratch directory
/// from the numbers in sysfs: containers often have no udev to create /dev/loopXpN, and a
/// stale node there could point at another device.
fn partition_node(l: &Loop, n: u32, s: &TmpDir) -> PathBuf {
    let sys = format!("/sys/block/{0}/{0}p{n}/dev", l.name());
    let mut dev = String::new();
    for i in 0..50 {
        if let Ok(d) = fs::read_to_string(&sys) {
            dev = d.trim().to_string();
            break;
        }
        if i == 10 {
            // Kernels without the GPT parser see no partitions; partx adds them (BLKPG).
            run_logged(Command::new("partx").args(["-a", &l.dev]));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (maj, min) = dev.split_once(':').expect("partition appears in sysfs");
    let node = s.join(format!("{}p{n}", l.name()));
    let out = run_logged(Command::new("mknod").arg(&node).args(["b", maj, min]));
    assert!(out.status.success());
    node
}

fn sparse_file(path: &Path, size: u64) {
    let f = fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
}

fn put(path: &Path, offset: u64, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(data, offset).unwrap();
}

/// A raw GPT image made by sgdisk (one ESP, one Linux partition) with noise written in
/// both partitions; sparse, with data scattered through it. Returns the ranges that hold
/// data (everything else is a hole).
fn gpt_image(path: &Path, size: u64, data_mib: u64) -> Vec<(u64, u64)> {
    sparse_file(path, size);
    let out = run_logged(
        Command::new("sgdisk")
            .args(["-n", "1:1M:+4M", "-t", "1:ef00", "-c", "1:EFI"])
            .args(["-n", "2:0:0", "-t", "2:8300", "-c", "2:DATA"])
            .arg(path),
    );
    assert!(out.status.success());
    // sgdisk writes the protective MBR and primary GPT in the first MiB and the backup GPT
    // in the last one.
    let mut ranges = vec![(0, MIB), (size - MIB, size)];
    // Data: a block in the ESP and a run spread over the second partition.
    put(path, 2 * MIB, &noise(1, MIB as usize));
    ranges.push((2 * MIB, 3 * MIB));
    let first = 6 * MIB;
    let step = (size - first - MIB) / data_mib.max(1) / MIB * MIB;
    for i in 0..data_mib.saturating_sub(1) {
        let off = first + i * step;
        put(path, off, &noise(i + 2, MIB as usize));
        ranges.push((off, off + MIB));
    }
    ranges
}

/// The device holds the image's bytes in every range.
fn assert_ranges_equal(dev: &str, img: &Path, ranges: &[(u64, u64)]) {
    use std::os::unix::fs::FileExt;
    let d = fs::File::open(dev).unwrap();
    let i = fs::File::open(img).unwrap();
    for &(s, e) in ranges {
        let mut a = vec![0u8; (e - s) as usize];
        let mut b = vec![0u8; (e - s) as usize];
        d.read_exact_at(&mut a, s).unwrap();
        i.read_exact_at(&mut b, s).unwrap();
        assert!(a == b, "device differs from the image in {s:#x}..{e:#x}");
    }
}

/// An 8 MiB two-partition GPT image in `dir`; None (the test is skipped) without sgdisk.
fn small_image(dir: &TmpDir) -> Option<PathBuf> {
    if !have("sgdisk") {
        eprintln!("SKIP: sgdisk is not installed");
        return None;
    }
    let img = dir.join("disk.img");
    gpt_image(&img, 8 * MIB, 2);
    Some(img)
}

fn device_hash(l: &Loop) -> String {
    sha256_prefix(Path::new(&l.dev), l.size())
}

/// A loop device (attached with `losetup_flags`) over `noise(seed, len)` in `dir`: a
/// device whose every byte was something else before the write.
fn noisy_device(dir: &TmpDir, seed: u64, len: u64, losetup_flags: &[&str]) -> (PathBuf, Loop) {
    let back = dir.join("dev.img");
    fs::write(&back, noise(seed, len as usize)).unwrap();
    let l = Loop::attach(&back, losetup_flags);
    (back, l)
}

/// The partition table type blkid finds on `dev` ("" for none).
fn pttype(dev: &str) -> String {
    let b = run_logged(Command::new("blkid").args(["-p", "-s", "PTTYPE", "-o", "value", dev]));
    String::from_utf8_lossy(&b.stdout).trim().to_string()
}

/// `sgdisk -v` finds no problem with the GPT on `dev`.
fn assert_gpt_valid(dev: &str) {
    let v = run_logged(Command::new("sgdisk").arg("-v").arg(dev));
    let vs = String::from_utf8_lossy(&v.stdout);
    assert!(vs.contains("No problems found"), "{vs}");
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Write `image` to `l` with --yes and return the output.
fn write_yes(image: &Path, l: &Loop, extra: &[&str]) -> Output {
    run_logged(
        ukitool()
            .arg("write")
            .arg(image)
            .arg(&l.dev)
            .arg("--yes")
            .args(extra),
    )
}

// ---------------------------------------------------------------------------------------
// Writing and reading back

#[test]
fn raw_sparse_image_is_written_and_reads_back_identical() {
    if !can_use_loop_devices(&["sgdisk", "blkid"]) {
        return;
    }
    let s = tmpdir();
    let img = s.join("disk.img");
    let ranges = gpt_image(&img, 64 * MIB, 8);
    // The device starts with a different, valid GPT and noise everywhere: the write must
    // leave exactly the image in its first 64 MiB, whatever was there before.
    let back = s.join("dev.img");
    fs::write(&back, noise(99, 80 * MIB as usize)).unwrap();
    let out = run_logged(
        Command::new("sgdisk")
            .args(["-o", "-n", "1:0:0"])
            .arg(&back),
    );
    assert!(out.status.success());
    let l = Loop::attach(&back, &[]);

    let out = write_yes(&img, &l, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("verified"));
    // Holes are not written (sparse write): only the data ranges are the image's.
    assert_ranges_equal(&l.dev, &img, &ranges);
    // Stale backup GPT at the device end is gone (wiped), and the image's GPT is valid.
    // sgdisk checks the GPT as written, on a view of the device as long as the image.
    let view = Loop::attach(&back, &["--sizelimit", &(64 * MIB).to_string()]);
    assert_gpt_valid(&view.dev);
    drop(view);
    let mut tail = vec![0u8; MIB as usize];
    {
        use std::os::unix::fs::FileExt;
        fs::File::open(&l.dev)
            .unwrap()
            .read_exact_at(&mut tail, l.size() - MIB)
            .unwrap();
    }
    assert!(
        tail.iter().all(|&b| b == 0),
        "the device's last MiB is wiped"
    );
    assert_eq!(pttype(&l.dev), "gpt");
}

#[test]
fn raw_image_from_stdin_and_to_file() {
    if !can_use_loop_devices(&["sgdisk"]) {
        return;
    }
    let s = tmpdir();
    let img = s.join("disk.img");
    gpt_image(&img, 32 * MIB, 4);
    let back = s.join("dev.img");
    sparse_file(&back, 40 * MIB);
    let l = Loop::attach(&back, &[]);
    let out = run_logged(
        ukitool()
            .args(["write", "-"])
            .arg(&l.dev)
            .arg("--yes")
            .stdin(fs::File::open(&img).unwrap()),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        sha256_prefix(Path::new(&l.dev), 32 * MIB),
        sha256_file(&img)
    );

    // --to-file: a regular file target is created and equals the image.
    let file = s.join("copy.img");
    let out = run_logged(ukitool().arg("write").arg(&img).arg(&file).args([
        "--yes",
        "--to-file",
        "--json",
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(sha256_file(&file), sha256_file(&img));
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["event"], "done");
    assert_eq!(v["verified"], true);
    assert_eq!(v["image_size"], 32 * MIB);
}

#[test]
fn image_from_ukitool_image_reads_back_byte_for_byte() {
    if !can_use_loop_devices(&["sgdisk"]) {
        return;
    }
    let uki = fixture("uki.efi");
    let s = tmpdir();
    let img = s.join("image.img");
    let out = run_logged(
        ukitool()
            .args(["image", "--uki"])
            .arg(&uki)
            .arg("-o")
            .arg(&img)
            .args(["--size", "256M"]),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let size = fs::metadata(&img).unwrap().len();
    // A zeroed device: holes are not written, so only then is the whole device the image.
    let back = s.join("dev.img");
    sparse_file(&back, size + 8 * MIB);
    let l = Loop::attach(&back, &[]);
    let out = write_yes(&img, &l, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(sha256_prefix(Path::new(&l.dev), size), sha256_file(&img));
}

#[test]
fn uki_in_uefi_layout_boots_from_the_esp_path() {
    if !can_use_loop_devices(&["sgdisk", "blkid", "partx", "mcopy"]) {
        return;
    }
    let uki = fixture("uki.efi");
    let s = tmpdir();
    let (_, l) = noisy_device(&s, 3, 300 * MIB, &[]);
    let out = write_yes(&uki, &l, &["--layout", "uefi"]);
    assert!(out.status.success(), "{}", stderr_of(&out));

    assert_gpt_valid(&l.dev);
    let p = run_logged(
        Command::new("partx")
            .args(["-g", "-o", "NR,START,TYPE"])
            .arg(&l.dev),
    );
    let ps = String::from_utf8_lossy(&p.stdout).to_lowercase();
    let esp = ps
        .lines()
        .find(|line| line.contains("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"))
        .unwrap_or_else(|| panic!("no ESP in partx output: {ps}"));
    let start: u64 = esp.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(pttype(&l.dev), "gpt");
    // The image is as large as the device: the backup GPT header is its last sector.
    let d = run_logged(Command::new("sgdisk").arg("-p").arg(&l.dev));
    let ds = String::from_utf8_lossy(&d.stdout);
    let last_usable = format!("last usable sector is {}", l.size() / 512 - 34);
    assert!(ds.contains(&last_usable), "{last_usable:?} in {ds}");
    let blk = run_logged(
        Command::new("blkid")
            .args(["-p", "-o", "export"])
            .arg(format!("--offset={}", start * 512))
            .arg(&l.dev),
    );
    let bs = String::from_utf8_lossy(&blk.stdout);
    assert!(bs.contains("TYPE=vfat"), "blkid sees the ESP's FAT: {bs}");

    let got = s.join("BOOTX64.EFI");
    let out = run_logged(
        Command::new("mcopy")
            .arg("-i")
            .arg(format!("{}@@{}", l.dev, start * 512))
            .arg("::/EFI/BOOT/BOOTX64.EFI")
            .arg(&got)
            .env("MTOOLS_SKIP_CHECK", "1"),
    );
    assert!(out.status.success());
    assert_eq!(fs::read(&got).unwrap(), fs::read(&uki).unwrap());
}

/// The `done` event of `write --json`.
fn done_event(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn read_dev(dev: &str, offset: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut v = vec![0u8; len as usize];
    fs::File::open(dev)
        .unwrap()
        .read_exact_at(&mut v, offset)
        .unwrap();
    v
}

#[test]
fn uki_in_systemd_boot_layout_with_an_explicit_size() {
    if !can_use_loop_devices(&["sgdisk", "mcopy"]) {
        return;
    }
    let uki = fixture("uki.efi");
    let sdboot = fixture("systemd-bootx64.efi");
    let s = tmpdir();
    let (back, l) = noisy_device(&s, 11, 300 * MIB, &[]);
    let out = write_yes(
        &uki,
        &l,
        &[
            "--json",
            "--size",
            "200M",
            "--layout",
            "systemd-boot",
            "--systemd-boot",
            sdboot.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let done = done_event(&out);
    assert_eq!(done["image_size"], 200 * MIB);
    assert_eq!(done["image"]["size"], 200 * MIB);
    assert_eq!(done["image"]["layout"], "systemd-boot");
    assert_eq!(done["verified"], true);
    // The GPT as written is valid on a view as long as the image (--size, not the device).
    let view = Loop::attach(&back, &["-r", "--sizelimit", &(200 * MIB).to_string()]);
    assert_gpt_valid(&view.dev);
    drop(view);
    // Each file's bytes are where the summary says, and mtools reads the same bytes.
    let files = done["image"]["esp"]["files"].as_array().unwrap();
    let esp_offset = done["image"]["partitions"][0]["offset"].as_u64().unwrap();
    for (path, want) in [
        ("EFI/BOOT/BOOTX64.EFI", fs::read(&sdboot).unwrap()),
        ("EFI/Linux/uki.efi", fs::read(&uki).unwrap()),
    ] {
        let f = files
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} in {files:?}"));
        let at = f["disk_offset"].as_u64().unwrap();
        assert!(
            read_dev(&l.dev, at, want.len() as u64) == want,
            "{path} at {at:#x}"
        );
        let got = s.join("got.efi");
        let _ = fs::remove_file(&got);
        let m = run_logged(
            Command::new("mcopy")
                .arg("-i")
                .arg(format!("{}@@{esp_offset}", l.dev))
                .arg(format!("::/{path}"))
                .arg(&got)
                .env("MTOOLS_SKIP_CHECK", "1"),
        );
        assert!(m.status.success());
        assert!(fs::read(&got).unwrap() == want, "mcopy {path}");
    }
}

#[test]
fn uki_with_4096_byte_sectors_on_a_4kn_loop_device() {
    if !can_use_loop_devices(&["sgdisk"]) {
        return;
    }
    let uki = fixture("uki.efi");
    let s = tmpdir();
    let (_, l) = noisy_device(&s, 12, 160 * MIB, &["-b", "4096"]);
    let out = write_yes(&uki, &l, &["--sector-size", "4096"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_gpt_valid(&l.dev);
    let p = run_logged(Command::new("sgdisk").arg("-p").arg(&l.dev));
    let ps = String::from_utf8_lossy(&p.stdout);
    assert!(ps.contains("Sector size (logical/physical): 4096/"), "{ps}");
    assert!(ps.contains("EF00"), "{ps}");
}

#[test]
fn uki_to_a_file_equals_ukitool_image() {
    // No device needed: --to-file into a fresh file leaves holes reading as zero, so the
    // file must equal `ukitool image`'s output byte for byte, at the default size and at
    // an explicit one.
    let uki = fixture("uki.efi");
    let s = tmpdir();
    for size in [None, Some("150M")] {
        let made = s.join("made.img");
        let written = s.join("written.img");
        let _ = fs::remove_file(&written);
        let mut c = ukitool();
        c.args(["image", "--uki"]).arg(&uki).arg("-o").arg(&made);
        let mut w = ukitool();
        w.arg("write")
            .arg(&uki)
            .arg(&written)
            .args(["--yes", "--to-file", "--json"]);
        if let Some(sz) = size {
            c.args(["--size", sz]);
            w.args(["--size", sz]);
        }
        assert!(run_logged(&mut c).status.success());
        let out = run_logged(&mut w);
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(
            fs::metadata(&written).unwrap().len(),
            fs::metadata(&made).unwrap().len()
        );
        assert_eq!(sha256_file(&written), sha256_file(&made), "size {size:?}");
        let done = done_event(&out);
        assert_eq!(done["image_size"], fs::metadata(&made).unwrap().len());
    }
}

#[test]
fn uki_written_to_a_loop_device_boots_under_ovmf() {
    if !can_use_loop_devices(&["qemu-system-x86_64"]) {
        return;
    }
    // Noise everywhere first: the holes the sparse write skips keep it, and firmware must
    // still find and boot BOOTX64.EFI.
    let s = tmpdir();
    let (_, l) = noisy_device(&s, 13, 256 * MIB, &[]);
    let out = write_yes(&fixture("uki.efi"), &l, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let log = ukitool_tests::boot_disk(Path::new(&l.dev), ukitool_tests::Firmware::Plain);
    assert!(log.marker().is_some(), "no marker: {log}");
}

#[test]
fn refuses_a_uki_whose_image_does_not_fit_the_device() {
    if !can_use_loop_devices(&[]) {
        return;
    }
    // The uefi layout's ESP is at least 100 MiB; the device has 64.
    let s = tmpdir();
    let (_, l) = noisy_device(&s, 14, 64 * MIB, &[]);
    assert_write_refused(&fixture("uki.efi"), &l, &[], "the image needs");
    // An explicit --size larger than the device is refused the same way.
    assert_write_refused(
        &fixture("uki.efi"),
        &l,
        &["--size", "1G"],
        "the image needs",
    );
}

#[test]
fn refuses_image_options_with_a_raw_image() {
    let s = tmpdir();
    let Some(img) = small_image(&s) else {
        return;
    };
    let file = s.join("target.img");
    for extra in [&["--layout", "grub"][..], &["--size", "16M"]] {
        let out = run_logged(
            ukitool()
                .arg("write")
                .arg(&img)
                .arg(&file)
                .args(["--yes", "--to-file"])
                .args(extra),
        );
        assert_refused(&out, "is a raw image");
        assert!(!file.exists(), "nothing written");
    }
}

// ---------------------------------------------------------------------------------------
// Refusals: each refuses with one line, a non-zero exit, and leaves the device unchanged.

fn assert_refused(out: &Output, needle: &str) {
    assert!(!out.status.success(), "must refuse");
    let e = stderr_of(out);
    assert!(e.contains(needle), "expected {needle:?} in {e:?}");
    assert_eq!(e.trim().lines().count(), 1, "one line: {e:?}");
}

/// `write --yes IMAGE DEV EXTRA...` is refused with `needle` and leaves the device as it was.
fn assert_write_refused(image: &Path, l: &Loop, extra: &[&str], needle: &str) {
    let before = device_hash(l);
    let out = write_yes(image, l, extra);
    assert_refused(&out, needle);
    assert_eq!(device_hash(l), before);
}

/// An `image_len`-byte two-partition GPT image written to a loop device (attached with
/// `losetup_flags`) over `noise(seed, dev_len)` is refused with `needle`.
fn refuses_gpt_image_on_noise(
    image_len: u64,
    (seed, dev_len): (u64, u64),
    losetup_flags: &[&str],
    needle: &str,
) {
    let s = tmpdir();
    let img = s.join("disk.img");
    gpt_image(&img, image_len, 2);
    let (_, l) = noisy_device(&s, seed, dev_len, losetup_flags);
    assert_write_refused(&img, &l, &[], needle);
}

#[test]
fn refuses_a_device_with_a_mounted_partition_unless_unmount() {
    if !can_use_loop_devices(&["sgdisk", "mkfs.ext4", "mount"]) {
        return;
    }
    let s = tmpdir();
    let img = s.join("disk.img");
    let ranges = gpt_image(&img, 16 * MIB, 2);
    let back = s.join("dev.img");
    sparse_file(&back, 64 * MIB);
    let out = run_logged(Command::new("sgdisk").args(["-n", "1:0:0"]).arg(&back));
    assert!(out.status.success());
    let l = Loop::attach(&back, &["-P"]);
    let part = partition_node(&l, 1, &s);
    assert!(run_logged(Command::new("mkfs.ext4").arg("-q").arg(&part))
        .status
        .success());
    let mnt = s.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    assert!(run_logged(Command::new("mount").arg(&part).arg(&mnt))
        .status
        .success());
    let m = Mounted(mnt.clone());
    fs::write(mnt.join("keep"), b"x").unwrap();

    assert_write_refused(&img, &l, &[], "is mounted at");

    let out = write_yes(&img, &l, &["--unmount"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("unmounted"));
    assert_ranges_equal(&l.dev, &img, &ranges);
    drop(m);
}

#[test]
fn refuses_a_read_only_device() {
    if !can_use_loop_devices(&["sgdisk"]) {
        return;
    }
    refuses_gpt_image_on_noise(8 * MIB, (5, 16 * MIB), &["-r"], "read-only");
}

#[test]
fn refuses_a_device_smaller_than_the_image() {
    if !can_use_loop_devices(&["sgdisk"]) {
        return;
    }
    refuses_gpt_image_on_noise(16 * MIB, (6, 8 * MIB), &[], "the image needs");
}

#[test]
fn refuses_a_regular_file_without_to_file() {
    let s = tmpdir();
    let Some(img) = small_image(&s) else {
        return;
    };
    let file = s.join("target.img");
    fs::write(&file, noise(8, 16 * MIB as usize)).unwrap();
    let before = sha256_file(&file);
    let out = run_logged(ukitool().arg("write").arg(&img).arg(&file).arg("--yes"));
    assert_refused(&out, "not a block device");
    assert_eq!(sha256_file(&file), before);
    // Nor the source itself, even with --to-file.
    let out = run_logged(
        ukitool()
            .arg("write")
            .arg(&img)
            .arg(&img)
            .args(["--yes", "--to-file"]),
    );
    assert_refused(&out, "source image itself");
}

#[test]
fn refuses_without_a_terminal_and_without_yes() {
    if !can_use_loop_devices(&["sgdisk"]) {
        return;
    }
    let s = tmpdir();
    let img = s.join("disk.img");
    gpt_image(&img, 8 * MIB, 2);
    let (_, l) = noisy_device(&s, 9, 16 * MIB, &[]);
    let before = device_hash(&l);
    let out = run_logged(ukitool().arg("write").arg(&img).arg(&l.dev));
    assert_refused(&out, "no terminal");
    assert_eq!(device_hash(&l), before);
}

#[test]
fn refuses_the_device_holding_the_source() {
    if !can_use_loop_devices(&["sgdisk", "mkfs.ext4", "mount"]) {
        return;
    }
    // The source image lives on an ext4 file system on the target loop device itself.
    let s = tmpdir();
    let back = s.join("dev.img");
    sparse_file(&back, 64 * MIB);
    let l = Loop::attach(&back, &[]);
    assert!(run_logged(Command::new("mkfs.ext4").args(["-q", &l.dev]))
        .status
        .success());
    let mnt = s.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    assert!(run_logged(Command::new("mount").arg(&l.dev).arg(&mnt))
        .status
        .success());
    let _m = Mounted(mnt.clone());
    let img = mnt.join("disk.img");
    gpt_image(&img, 8 * MIB, 2);
    let out = write_yes(&img, &l, &["--unmount"]);
    assert_refused(&out, "holds the source");
}

#[test]
fn refuses_the_system_disk_even_with_yes() {
    if !can_use_loop_devices(&[]) {
        return;
    }
    // The disk that holds / (skipped when / is not on a block device, e.g. an overlay).
    let out = sh("findmnt -n -o SOURCE --target / | head -n1");
    let src = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !src.starts_with("/dev/") || !Path::new(&src).exists() {
        eprintln!("SKIP: / is not on a block device ({src:?})");
        return;
    }
    let out = sh(&format!(
        "lsblk -n -d -o PKNAME,NAME {src} | awk '{{print ($1 != \"\") ? $1 : $2}}'"
    ));
    let disk = format!("/dev/{}", String::from_utf8_lossy(&out.stdout).trim());
    // Belt and braces: the image is one MiB larger than the disk, so even a broken
    // system-disk check would stop at the size check and write nothing.
    let sectors = fs::read_to_string(format!("/sys/class/block/{}/size", &disk[5..])).unwrap();
    let size = sectors.trim().parse::<u64>().unwrap() * 512;
    let s = tmpdir();
    let img = s.join("huge.img");
    sparse_file(&img, size + MIB);
    let out = run_logged(ukitool().arg("write").arg(&img).arg(&disk).arg("--yes"));
    assert_refused(&out, "system disk");
}

// ---------------------------------------------------------------------------------------
// Integrity

#[test]
fn verify_reports_the_offset_of_an_injected_flip() {
    if !can_use_loop_devices(&["sgdisk", "blkid"]) {
        return;
    }
    let s = tmpdir();
    let img = s.join("disk.img");
    gpt_image(&img, 32 * MIB, 4);
    let back = s.join("dev.img");
    sparse_file(&back, 32 * MIB);
    let l = Loop::attach(&back, &[]);
    let at = 2 * MIB + 12345; // inside the noise block in the ESP
    let out = run_logged(
        ukitool()
            .arg("write")
            .arg(&img)
            .arg(&l.dev)
            .arg("--yes")
            .env("UKITOOL_TEST_CORRUPT_AT", at.to_string()),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let e = stderr_of(&out);
    assert!(e.contains(&format!("at byte offset {at}")), "{e}");
    assert!(e.contains("no valid partition table"), "{e}");
    // The partition table was never written.
    assert_eq!(pttype(&l.dev), "");
}

#[test]
fn interrupt_leaves_no_valid_primary_gpt_and_says_so() {
    if !can_use_loop_devices(&["sgdisk", "blkid", "kill"]) {
        return;
    }
    let s = tmpdir();
    let img = s.join("disk.img");
    gpt_image(&img, 128 * MIB, 48);
    let back = s.join("dev.img");
    sparse_file(&back, 128 * MIB);
    // A valid GPT on the device before: the interrupted write must remove it.
    assert!(run_logged(
        Command::new("sgdisk")
            .args(["-o", "-n", "1:0:0"])
            .arg(&back)
    )
    .status
    .success());
    let l = Loop::attach(&back, &[]);
    let mut child = ukitool()
        .arg("write")
        .arg(&img)
        .arg(&l.dev)
        .args(["--yes", "--json"])
        .env("UKITOOL_TEST_THROTTLE_MS", "300")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until writing has started (a progress line for the writing phase).
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut byte = [0u8; 1];
    while !seen.contains("\"phase\":\"writing\"") {
        if stdout.read(&mut byte).unwrap() == 0 {
            break;
        }
        seen.push(byte[0] as char);
    }
    std::thread::sleep(Duration::from_millis(700));
    let k = run_logged(Command::new("kill").args(["-INT", &child.id().to_string()]));
    assert!(k.status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = std::io::copy(&mut stdout, &mut std::io::sink());
    let st = child.wait().unwrap();
    eprintln!("stderr: {err}");
    assert_eq!(st.code(), Some(130));
    assert!(err.contains("interrupted"), "{err}");
    assert!(err.contains("no valid partition table"), "{err}");
    assert_eq!(pttype(&l.dev), "");
    let v = run_logged(Command::new("sgdisk").arg("-v").arg(&l.dev));
    let vs = String::from_utf8_lossy(&v.stdout);
    // sgdisk finds no GPT at all and starts a new one in memory.
    assert!(vs.contains("Creating new GPT entries"), "{vs}");
}

// ---------------------------------------------------------------------------------------
// disks

#[test]
fn disks_lists_a_loop_device_only_with_all() {
    if !can_use_loop_devices(&[]) {
        return;
    }
    let s = tmpdir();
    let back = s.join("dev.img");
    sparse_file(&back, 24 * MIB);
    let l = Loop::attach(&back, &[]);
    let list = |all: bool| -> serde_json::Value {
        let mut c = ukitool();
        c.args(["disks", "--json"]);
        if all {
            c.arg("--all");
        }
        let out = run_logged(&mut c);
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let find = |v: &serde_json::Value| {
        v["disks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["path"] == l.dev.as_str())
            .cloned()
    };
    assert!(find(&list(false)).is_none());
    let d = find(&list(true)).expect("listed with --all");
    assert_eq!(d["size"], 24 * MIB);
    assert_eq!(d["transport"], "loop");
    assert_eq!(d["system"], false);
    assert_eq!(d["backing_file"], back.to_str().unwrap());
    let _ = std::io::stdout().flush();
}

#[test]
fn uki_with_an_xfs_boot_partition_on_a_noisy_device() {
    // `write` takes image's --add-partition and --add-file-to: an XFS BOOT holding the
    // kernel and initrd, written over a device full of noise. Whatever the old bytes,
    // xfs_repair -n finds nothing and the kernel reads both files back.
    if !can_use_loop_devices(&["sgdisk", "partx", "xfs_repair", "mount"]) {
        return;
    }
    let uki = fixture("uki.efi");
    let s = tmpdir();
    let (back, l) = noisy_device(&s, 15, 300 * MIB, &[]);
    let files = [
        ("vmlinuz", "A/vmlinuz"),
        ("initrd.cpio.gz", "A/initramfs.xz"),
    ];
    let mut args = vec![
        "--timestamp".to_string(),
        "1".into(),
        "--add-partition".into(),
        "BOOT:150M:linux:xfs".into(),
    ];
    for (src, dst) in files {
        args.push("--add-file-to".into());
        args.push(format!("BOOT:{}:/{dst}", fixture(src).display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = write_yes(&uki, &l, &args);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_gpt_valid(&l.dev);
    let p = run_logged(
        Command::new("partx")
            .args(["-g", "-o", "NR,START,SECTORS"])
            .arg(&l.dev),
    );
    let ps = String::from_utf8_lossy(&p.stdout).into_owned();
    let boot: Vec<u64> = ps
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(|w| w.parse().unwrap())
                .collect::<Vec<u64>>()
        })
        .find(|f| f[0] == 2)
        .unwrap_or_else(|| panic!("no partition 2 in {ps}"));
    let (off, len) = (boot[1] * 512, boot[2] * 512);
    drop(l);
    let part = Loop::attach(
        &back,
        &[
            "-r",
            "--offset",
            &off.to_string(),
            "--sizelimit",
            &len.to_string(),
        ],
    );
    let r = run_logged(Command::new("xfs_repair").arg("-n").arg(&part.dev));
    let rs = format!("{}{}", String::from_utf8_lossy(&r.stdout), stderr_of(&r));
    assert!(
        r.status.success() && !rs.contains("would"),
        "xfs_repair -n: {rs}"
    );
    let at = s.join("mnt");
    fs::create_dir_all(&at).unwrap();
    let m = run_logged(
        Command::new("mount")
            .args(["-t", "xfs", "-o", "ro", &part.dev])
            .arg(&at),
    );
    assert!(m.status.success(), "mount: {}", stderr_of(&m));
    let mounted = Mounted(at.clone());
    for (src, dst) in files {
        assert!(
            fs::read(at.join(dst)).unwrap() == fs::read(fixture(src)).unwrap(),
            "the kernel reads other bytes in /{dst}"
        );
    }
    drop(mounted);
}
