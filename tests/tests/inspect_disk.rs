//! `ukitool inspect DISK.img` without `--json`: a readable listing (partitions, files per
//! FAT volume, a short summary of each EFI binary), checked against outside referees:
//! sgdisk and sfdisk for the partitions, mtools for the files, objdump for the sections,
//! the fixture's own os-release and uname texts. `--json` stays the full JSON report.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use ukitool_tests::blockdev::have;
use ukitool_tests::tools::objdump_sections;
use ukitool_tests::{big_fixture, esp_disk, fixture, run_logged, tmpdir, ukitool};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn inspect(img: &Path) -> String {
    let o = run_logged(ukitool().arg("inspect").arg(img));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout(&o)
}

/// (number, first sector, last sector) of each partition, as `sgdisk -p` lists them.
fn sgdisk_partitions(img: &Path) -> Vec<(u32, u64, u64)> {
    let o = run_logged(Command::new("sgdisk").arg("-p").arg(img));
    assert!(o.status.success());
    let text = stdout(&o);
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.trim_start().starts_with("Number") {
            in_table = true;
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if in_table && f.len() >= 3 {
            if let (Ok(n), Ok(a), Ok(b)) = (f[0].parse(), f[1].parse(), f[2].parse()) {
                rows.push((n, a, b));
            }
        }
    }
    assert!(!rows.is_empty(), "no partitions in sgdisk -p: {text}");
    rows
}

/// (path, size) of every file on the FAT volume at `offset`, as mtools lists them.
fn mtools_files(img: &Path, offset: u64) -> Vec<(String, u64)> {
    let o = run_logged(
        Command::new("mdir")
            .args(["-/", "-a", "-i"])
            .arg(format!("{}@@{offset}", img.display()))
            .arg("::/")
            .env("MTOOLS_SKIP_CHECK", "1"),
    );
    assert!(o.status.success());
    // mdir -/ prints "Directory for ::/A/B" headers, then "NAME EXT size date time LONG".
    let mut files = Vec::new();
    let mut dir = String::new();
    for line in stdout(&o).lines() {
        if let Some(d) = line.trim().strip_prefix("Directory for ::") {
            dir = d.trim_matches('/').to_string();
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 || f.contains(&"<DIR>") || line.starts_with(' ') {
            continue;
        }
        // NAME [EXT] SIZE DATE TIME [LONG NAME]
        let Some(date_at) = f.iter().position(|w| w.len() == 10 && w.contains('-')) else {
            continue;
        };
        if date_at < 2 {
            continue;
        }
        let Ok(size) = f[date_at - 1].parse::<u64>() else {
            continue;
        };
        let long = f[date_at + 2..].join(" ");
        let name = if !long.is_empty() {
            long
        } else if date_at == 3 {
            format!("{}.{}", f[0], f[1])
        } else {
            f[0].to_string()
        };
        let path = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        files.push((path, size));
    }
    files
}

/// The column of `needle`'s last character in `line` (for right-aligned columns).
fn right_edge(line: &str, needle: &str) -> usize {
    line.find(needle)
        .map(|i| i + needle.len())
        .unwrap_or_else(|| panic!("{needle:?} in {line:?}"))
}

#[test]
fn listing_of_a_ukitool_image_matches_sgdisk_mtools_and_objdump() {
    let uki = fixture("uki-signed.efi");
    let sdboot = fixture("systemd-bootx64.efi");
    let dir = tmpdir();
    let img = dir.join("disk.img");
    let o = run_logged(
        ukitool()
            .args(["image", "--layout", "systemd-boot", "--uki"])
            .arg(&uki)
            .arg("--systemd-boot")
            .arg(&sdboot)
            .args(["--add-partition", "data:8M", "--add-partition", "swap2:3M"])
            .arg("-o")
            .arg(&img),
    );
    assert!(o.status.success());
    let text = inspect(&img);
    assert!(
        !text.trim_start().starts_with('{'),
        "human listing, not JSON"
    );
    assert!(text.contains("Kind:             raw disk image"), "{text}");
    assert!(
        text.contains("Partition table:  GPT, 512-byte sectors"),
        "{text}"
    );
    assert!(
        text.contains("header CRC ok, array CRC ok, backup ok"),
        "{text}"
    );

    // Partitions: every sgdisk row is there with its first and last sector, and the
    // numeric columns line up (right-aligned).
    let parts = sgdisk_partitions(&img);
    assert_eq!(parts.len(), 3);
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.trim_start().starts_with("#  name"))
        .expect("partition header");
    let mut edges = Vec::new();
    for (i, (n, first, last)) in parts.iter().enumerate() {
        let row = lines[header + 1 + i];
        let f: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(f[0], n.to_string(), "{row}");
        assert_eq!(f[3], first.to_string(), "{row}");
        assert_eq!(f[4], last.to_string(), "{row}");
        edges.push(right_edge(row, &format!(" {last} ")));
    }
    assert!(edges.windows(2).all(|w| w[0] == w[1]), "aligned: {edges:?}");
    assert!(text.contains("efi-system"));

    // Files: everything mtools lists on the ESP, with its size, in one aligned column.
    let esp_offset = parts[0].1 * 512;
    let files = mtools_files(&img, esp_offset);
    assert!(files.len() >= 3, "{files:?}");
    let mut size_edges = Vec::new();
    for (path, size) in &files {
        let line = lines
            .iter()
            .find(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() == 2 && f[0].eq_ignore_ascii_case(&format!("/{path}"))
            })
            .unwrap_or_else(|| panic!("/{path} not listed: {text}"));
        assert!(line.trim_end().ends_with(&format!(" {size}")), "{line}");
        size_edges.push(line.trim_end().len());
    }
    assert!(
        size_edges.windows(2).all(|w| w[0] == w[1]),
        "sizes aligned: {size_edges:?}"
    );

    // The UKI's summary: kind, the sections objdump sees, os-release PRETTY_NAME, uname,
    // and its signature.
    let block_at = text
        .find("/EFI/Linux/uki-signed.efi (")
        .expect("UKI summary");
    let block: String = text[block_at..]
        .lines()
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(block.contains("kind        uki (systemd-stub"), "{block}");
    let sections: Vec<String> = objdump_sections(&uki).into_iter().map(|s| s.0).collect();
    assert!(sections.len() > 5, "{sections:?}");
    let listed = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("sections"))
        .expect("sections line")
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(listed, sections, "{block}");
    let osrel = fs::read_to_string(fixture("os-release")).unwrap();
    let pretty = osrel
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .expect("fixture has PRETTY_NAME")
        .trim_matches('"');
    assert!(block.contains(&format!("os-release  {pretty}")), "{block}");
    let uname = fs::read_to_string(fixture("uname")).unwrap();
    assert!(
        block.contains(&format!("uname       {}", uname.trim())),
        "{block}"
    );
    assert!(block.contains("signatures  signature 1:"), "{block}");
    assert!(text.contains("/EFI/BOOT/BOOTX64.EFI ("), "{text}");
    assert!(text.contains("kind        pe (systemd-boot"), "{text}");

    // --json is unchanged: the full report.
    let o = run_logged(ukitool().args(["inspect", "--json"]).arg(&img));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["partition_table"]["scheme"], "gpt");
    assert_eq!(
        v["filesystems"][0]["efi_binaries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn listing_of_a_disk_made_by_other_tools() {
    // GPT by sgdisk, FAT by mkfs.vfat, files by mtools (the test harness's ESP disk).
    let dir = tmpdir();
    let img = dir.join("esp.img");
    let efi = fixture("uki.efi");
    esp_disk(&efi, &img);
    let text = inspect(&img);
    let parts = sgdisk_partitions(&img);
    let esp_offset = parts[0].1 * 512;
    assert!(text.contains(&format!("at {esp_offset:#x}")), "{text}");
    for (path, size) in mtools_files(&img, esp_offset) {
        assert!(
            text.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() == 2
                    && f[0].eq_ignore_ascii_case(&format!("/{path}"))
                    && f[1] == size.to_string()
            }),
            "/{path} {size} not listed: {text}"
        );
    }
    assert!(text.contains("kind        uki"), "{text}");
    assert!(text.contains("signed      no"), "{text}");
}

#[test]
fn listing_of_an_mbr_disk_and_of_a_bare_fat_volume() {
    let dir = tmpdir();
    if !have("sfdisk") || !have("mkfs.vfat") {
        eprintln!("SKIP: sfdisk or mkfs.vfat missing");
        return;
    }
    // A bare FAT volume (a "superfloppy") with one file.
    let vol = dir.join("vol.img");
    assert!(run_logged(
        Command::new("mkfs.vfat")
            .args(["-C", "-n", "BARE"])
            .arg(&vol)
            .arg("4096")
    )
    .status
    .success());
    let note = dir.join("note.txt");
    fs::write(&note, b"hello\n").unwrap();
    assert!(run_logged(
        Command::new("mcopy")
            .arg("-i")
            .arg(&vol)
            .arg(&note)
            .arg("::/NOTE.TXT")
            .env("MTOOLS_SKIP_CHECK", "1")
    )
    .status
    .success());
    let text = inspect(&vol);
    assert!(text.contains("Partition table:  none"), "{text}");
    assert!(text.contains("Volume: FAT"), "{text}");
    assert!(text.contains("label \"BARE\""), "{text}");
    assert!(
        text.lines().any(
            |l| l.split_whitespace().collect::<Vec<_>>() == ["/NOTE.TXT", "6"]
                || l.split_whitespace().collect::<Vec<_>>() == ["/note.txt", "6"]
        ),
        "{text}"
    );

    // An MBR disk (sfdisk) whose first partition holds that volume.
    let disk = dir.join("mbr.img");
    let f = fs::File::create(&disk).unwrap();
    f.set_len(16 << 20).unwrap();
    drop(f);
    let mut c = Command::new("sfdisk");
    c.arg(&disk).stdin(std::process::Stdio::piped());
    let mut child = c.stdout(std::process::Stdio::null()).spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nstart=2048, size=8192, type=ef\nstart=10240, type=83\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let bytes = fs::read(&vol).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(&disk).unwrap();
        f.write_all_at(&bytes, 2048 * 512).unwrap();
    }
    let text = inspect(&disk);
    assert!(text.contains("Partition table:  MBR"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.trim_start().starts_with("#  name"))
        .expect("partition header");
    let rows: Vec<Vec<&str>> = lines[header + 1..header + 3]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    // sfdisk's sectors: 2048..10239 and 10240..32767.
    assert_eq!(rows[0][0], "1");
    assert!(
        rows[0].contains(&"2048") && rows[0].contains(&"10239"),
        "{text}"
    );
    assert_eq!(rows[1][0], "2");
    assert!(
        rows[1].contains(&"10240") && rows[1].contains(&"32767"),
        "{text}"
    );
    assert!(text.contains("Partition 1: FAT"), "{text}");
}

/// `ukitool inspect` of `img` under GNU time: (stdout, peak RSS in KiB).
fn inspect_rss(img: &Path) -> (String, u64) {
    let o = run_logged(
        Command::new("/usr/bin/time")
            .args(["-f", "maxrss=%M"])
            .arg(ukitool_tests::ukitool_bin())
            .arg("inspect")
            .arg(img),
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let rss = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {err}"));
    (stdout(&o), rss)
}

#[test]
fn compressed_disks_are_inspected_in_bounded_memory() {
    // A 192 MiB disk whose ESP holds the 109 MiB signed UKI, raw and compressed by the
    // zstd and gzip tools: each listing equals the raw one (the UKI's signature
    // checked over a streamed digest), and peak RSS stays under 64 MiB plus the codec's
    // window (8 MiB for zstd -3, 32 KiB for gzip): the image, and the UKI, are never
    // held whole. xz is left to `make bench`, which inspects the 4247 MiB Talos image
    // as .raw.zst and .raw.xz with a release build (the xz decoder is slow in a debug
    // build) and reports the same peak RSS.
    let dir = tmpdir();
    let img = dir.join("d.raw");
    let uki = big_fixture("uki-big-signed.efi");
    let o = run_logged(
        ukitool()
            .args(["image", "-q", "--size", "192M", "--uki"])
            .arg(&uki)
            .arg("-o")
            .arg(&img),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (raw, raw_rss) = inspect_rss(&img);
    assert!(raw.contains("valid-untrusted"), "{raw}");
    assert!(raw_rss < 64 << 10, "raw: peak RSS {raw_rss} KiB");
    for (tool, args, ext) in [
        ("zstd", &["-q", "-3", "-k"][..], "zst"),
        ("gzip", &["-1", "-k"][..], "gz"),
    ] {
        let o = run_logged(Command::new(tool).args(args).arg(&img));
        assert!(o.status.success(), "{tool}");
        let packed = dir.join(format!("d.raw.{ext}"));
        let (text, rss) = inspect_rss(&packed);
        let kind = format!(
            "raw disk image, {}-compressed",
            if ext == "gz" { "gzip" } else { tool }
        );
        assert!(text.contains(&kind), "{text}");
        let strip = |t: &str| t.lines().skip(2).collect::<Vec<_>>().join("\n");
        assert_eq!(strip(&text), strip(&raw), "{ext}");
        assert!(rss < (64 + 8) << 10, "{ext}: peak RSS {rss} KiB");
        let _ = fs::remove_file(packed);
    }
    // A truncated stream is one error naming the offset, not a partial listing.
    let o = run_logged(Command::new("zstd").args(["-q", "-3", "-k"]).arg(&img));
    assert!(o.status.success());
    let packed = dir.join("d.raw.zst");
    let bytes = fs::read(&packed).unwrap();
    fs::write(&packed, &bytes[..bytes.len() / 2]).unwrap();
    let o = run_logged(ukitool().arg("inspect").arg(&packed));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("offset"), "{err}");
}
