//! Small real inputs for the robustness tests: signed stubs and GPT disks.

use std::fs;
use std::path::Path;
use std::process::Command;

use ukitool_core::authenticode::verify::TrustStore;

use crate::{fixture, fixture_bytes, run_ok, ukitool};

/// The stub signed by sbsign (snakeoil), and that signed again with a nested SHA-384
/// signature by osslsigncode (other key): small signed PEs, so thousands of cases stay fast.
pub fn signed_stubs(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let one = dir.join("stub-signed.efi");
    let two = dir.join("stub-nested.efi");
    run_ok(
        Command::new("sbsign")
            .arg("--key")
            .arg(fixture("snakeoil.key"))
            .arg("--cert")
            .arg(fixture("snakeoil.pem"))
            .arg("--output")
            .arg(&one)
            .arg(fixture("linuxx64.efi.stub")),
    );
    run_ok(
        Command::new("osslsigncode")
            .args(["sign", "-nest", "-h", "sha384", "-key"])
            .arg(fixture("other.key"))
            .arg("-certs")
            .arg(fixture("other.pem"))
            .arg("-in")
            .arg(&one)
            .arg("-out")
            .arg(&two),
    );
    (fs::read(one).unwrap(), fs::read(two).unwrap())
}

/// A 5 MiB GPT disk whose ESP is a 3 MiB FAT16 volume made by mkfs.vfat and mtools.
pub fn mtools_disk(dir: &Path) -> Vec<u8> {
    let esp = dir.join("esp.fat");
    let disk = dir.join("mtools.img");
    let _ = fs::remove_file(&esp);
    run_ok(
        Command::new("mkfs.vfat")
            .args(["-C", "-F", "16", "-s", "1", "-n", "MUT", "-i", "0badcafe"])
            .arg(&esp)
            .arg("3072"),
    );
    let i = |args: &[&str]| {
        let mut c = Command::new(args[0]);
        c.arg("-i").arg(&esp).args(&args[1..]);
        run_ok(&mut c);
    };
    i(&[
        "mmd",
        "::/EFI",
        "::/EFI/BOOT",
        "::/loader",
        "::/loader/entries",
        "::/A long directory name",
    ]);
    let stub = fixture("linuxx64.efi.stub");
    let stub = stub.to_str().unwrap();
    i(&["mcopy", stub, "::/EFI/BOOT/BOOTX64.EFI"]);
    i(&[
        "mcopy",
        fixture("os-release").to_str().unwrap(),
        "::/loader/entries/a long file name.conf",
    ]);
    i(&[
        "mcopy",
        fixture("cmdline").to_str().unwrap(),
        "::/A long directory name/cmdline.txt",
    ]);
    fs::write(&disk, []).unwrap();
    run_ok(Command::new("truncate").args(["-s", "5M"]).arg(&disk));
    run_ok(
        Command::new("sgdisk")
            .args([
                "--new=1:2048:+3M",
                "--typecode=1:ef00",
                "--change-name=1:ESP",
            ])
            .arg(&disk),
    );
    run_ok(
        Command::new("dd")
            .arg(format!("if={}", esp.display()))
            .arg(format!("of={}", disk.display()))
            .args(["bs=1M", "seek=1", "conv=notrunc", "status=none"]),
    );
    fs::read(disk).unwrap()
}

/// systemd-boot signed by sbsign (snakeoil), as `dir/boot-signed.efi`: a small signed
/// EFI application that `ukitool image` takes as BOOTX64.EFI (it refuses a bare stub,
/// which has no kernel to boot).
pub fn signed_systemd_boot(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("boot-signed.efi");
    run_ok(
        Command::new("sbsign")
            .arg("--key")
            .arg(fixture("snakeoil.key"))
            .arg("--cert")
            .arg(fixture("snakeoil.pem"))
            .arg("--output")
            .arg(&out)
            .arg(fixture("systemd-bootx64.efi")),
    );
    out
}

/// A disk made by `ukitool image` (FAT32 ESP holding `uki`, a signed EFI application
/// such as [`signed_systemd_boot`], as BOOTX64.EFI).
pub fn ukitool_disk(dir: &Path, uki: &Path) -> Vec<u8> {
    let out = dir.join("ukitool.img");
    run_ok(
        ukitool()
            .args(["image", "--esp-size", "34M", "--timestamp", "1", "--uki"])
            .arg(uki)
            .arg("-o")
            .arg(&out),
    );
    fs::read(out).unwrap()
}

pub fn snakeoil_trust() -> TrustStore {
    let mut t = TrustStore::default();
    t.add_cert_file(&fixture_bytes("snakeoil.pem")).unwrap();
    t
}

/// The tree put on the mutation test's XFS volumes: (path, bytes) for files, with
/// directories of 40, 300 and 1200 entries (block, leaf and node forms), a symlink
/// kept in the inode and, on the ukitool volume, one in a block.
fn xfs_tree() -> Vec<(String, Vec<u8>)> {
    let mut v = vec![
        ("A/vmlinuz".to_string(), fixture_bytes("vmlinuz")),
        (
            "A/initramfs.xz".to_string(),
            fixture_bytes("initrd.cpio.gz"),
        ),
        ("grub/grub.cfg".to_string(), b"set timeout=0\n".to_vec()),
        (
            "EFI/Linux/stub.efi".to_string(),
            fixture_bytes("linuxx64.efi.stub"),
        ),
    ];
    for n in [40usize, 300, 1200] {
        for i in 0..n {
            v.push((
                format!("d{n}/entry-{i:04}"),
                crate::noise(i as u64, i % 3000),
            ));
        }
    }
    v
}

const XFS_SHORT_LINK: (&str, &str) = ("A/current", "vmlinuz");
const XFS_LONG_LINK: &str = "long-link";

/// A 32 MiB XFS volume (two 16 MiB AGs, 512-byte sectors) written by ukitool-core.
pub fn ukitool_xfs_volume() -> Vec<u8> {
    use ukitool_core::disk::xfs::{format, ItemKind, XfsItem, XfsOptions};
    let tree = xfs_tree();
    let mut items: Vec<XfsItem<'_>> = tree
        .iter()
        .map(|(p, d)| XfsItem::file(p.clone(), &d[..]))
        .collect();
    let long = "x/".repeat(300);
    for (path, target) in [XFS_SHORT_LINK, (XFS_LONG_LINK, long.as_str())] {
        items.push(XfsItem {
            path: path.into(),
            mode: None,
            kind: ItemKind::Symlink(target.into()),
        });
    }
    let o = XfsOptions {
        size: 32 << 20,
        label: "BOOT".into(),
        ag_count: Some(2),
        ..XfsOptions::default()
    };
    let plan = format(&o, items).unwrap();
    let mut img = ukitool_core::disk::DiskImage::new(plan.size);
    plan.place(&mut img, 0).unwrap();
    img.to_vec()
}

/// A 32 MiB XFS volume made by mkfs.xfs with its defaults (reflink, finobt, sparse
/// inodes, bigtime, inobtcount) and 4096-byte sectors, filled from a protofile (the
/// tree of [`xfs_tree`] and the short symlink).
/// mkfs refuses volumes under 300 MB unless it runs under fstests, which its
/// TEST_DIR, TEST_DEV and QA_CHECK_FS variables say.
pub fn mkfs_xfs_volume(dir: &Path) -> Vec<u8> {
    let src = dir.join("xfs-src");
    let mut proto = String::from("/dev/null\n0 0\nd--755 0 0\n");
    // The protofile lists each directory's entries, then `$`; the tree is sorted,
    // so one pass opens and closes directories in order.
    let mut files = xfs_tree();
    files.sort();
    let mut open: Vec<String> = Vec::new();
    for (i, (path, data)) in files.iter().enumerate() {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let parts: Vec<&str> = parent.split('/').filter(|s| !s.is_empty()).collect();
        let common = open.iter().zip(&parts).take_while(|(a, b)| a == b).count();
        for _ in common..open.len() {
            proto.push_str("$\n");
        }
        open.truncate(common);
        for p in &parts[common..] {
            proto.push_str(&format!("{p} d--755 0 0\n"));
            open.push(p.to_string());
        }
        let at = src.join(format!("{i}"));
        fs::create_dir_all(&src).unwrap();
        fs::write(&at, data).unwrap();
        proto.push_str(&format!("{name} ---644 0 0 {}\n", at.display()));
        if path == "A/vmlinuz" {
            proto.push_str(&format!("current l--777 0 0 {}\n", XFS_SHORT_LINK.1));
        }
    }
    for _ in &open {
        proto.push_str("$\n");
    }
    // No remote symlink: mkfs.xfs 6.1 writes a protofile's long symlink target into
    // its block without the v5 header (xfs_repair -n: "bad symlink header"; the
    // kernel's readlink fails), so that volume would not start clean.
    proto.push_str("$\n");
    let pf = dir.join("xfs.proto");
    fs::write(&pf, proto).unwrap();
    let img = dir.join("mkfs.xfs.img");
    let _ = fs::remove_file(&img);
    fs::File::create(&img).unwrap().set_len(32 << 20).unwrap();
    run_ok(
        Command::new("mkfs.xfs")
            .args(["-q", "-f", "-s", "size=4096", "-L", "BOOT", "-p"])
            .arg(&pf)
            .arg(&img)
            .env("TEST_DIR", dir)
            .env("TEST_DEV", &img)
            .env("QA_CHECK_FS", "1"),
    );
    fs::read(img).unwrap()
}

/// `vol` as the one partition (Linux filesystem, from 1 MiB) of a GPT disk made by
/// sgdisk; returns the disk and the volume's byte range on it.
pub fn xfs_disk(dir: &Path, vol: &[u8]) -> (Vec<u8>, (usize, usize)) {
    let disk = dir.join("xfs-disk.img");
    let _ = fs::remove_file(&disk);
    let start = 1 << 20;
    let f = fs::File::create(&disk).unwrap();
    f.set_len((start + vol.len() + (1 << 20)) as u64).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, vol, start as u64).unwrap();
    drop(f);
    run_ok(
        Command::new("sgdisk")
            .arg(format!("--new=1:2048:+{}K", vol.len() / 1024))
            .args(["--typecode=1:8300", "--change-name=1:BOOT"])
            .arg(&disk),
    );
    (fs::read(disk).unwrap(), (start, start + vol.len()))
}
