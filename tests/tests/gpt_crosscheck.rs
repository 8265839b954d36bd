//! The `gpt` crate as an independent reader of ukitool's partition tables. ukitool writes
//! GPT itself (the image is a list of extents, never a device the crate could write to; see
//! docs/image.md); this test holds it to what the crate, and through `sgdisk -v` in
//! tests/image.rs, another implementation reads back: same disk GUID, partitions, types,
//! names, LBAs and attributes, at 512- and 4096-byte sectors.

use std::path::Path;

use gpt::disk::LogicalBlockSize;
use ukitool_tests::{fixture, tmpdir, ukitool};

fn make_image(out: &Path, args: &[&str]) -> serde_json::Value {
    let o = ukitool()
        .args(["image", "-q", "--uki"])
        .arg(fixture("uki.efi"))
        .arg("-o")
        .arg(out)
        .args(args)
        .output()
        .expect("run ukitool image");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ukitool()
        .args(["inspect", "--json", "--no-hash"])
        .arg(out)
        .output()
        .expect("run ukitool inspect");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("inspect JSON")
}

fn cross_check(args: &[&str], lb: LogicalBlockSize, expect_parts: usize) {
    let dir = tmpdir();
    let img = dir.path().join("disk.img");
    let report = make_image(&img, args);
    let table = &report["partition_table"];
    assert_eq!(table["scheme"], "gpt");

    let disk = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(lb)
        .open(&img)
        .expect("the gpt crate opens ukitool's image");
    assert_eq!(
        disk.guid().to_string().to_uppercase(),
        table["disk_guid"].as_str().unwrap()
    );
    let theirs = disk.partitions();
    let ours = table["partitions"].as_array().unwrap();
    assert_eq!(theirs.len(), expect_parts);
    assert_eq!(ours.len(), theirs.len());
    for p in ours {
        let idx = u32::try_from(p["index"].as_u64().unwrap()).unwrap();
        let t = theirs.get(&idx).expect("same partition index");
        assert_eq!(t.name, p["name"].as_str().unwrap());
        assert_eq!(
            t.part_type_guid.guid.to_string().to_uppercase(),
            p["type_guid"].as_str().unwrap()
        );
        assert_eq!(
            t.part_guid.to_string().to_uppercase(),
            p["unique_guid"].as_str().unwrap()
        );
        assert_eq!(t.first_lba, p["first_lba"].as_u64().unwrap());
        assert_eq!(t.last_lba, p["last_lba"].as_u64().unwrap());
        assert_eq!(t.flags, p["attributes"].as_u64().unwrap());
        // 1 MiB alignment, whatever the sector size.
        assert_eq!((t.first_lba * lb.as_u64()) % (1 << 20), 0);
    }
}

#[test]
fn uefi_layout_reads_back_with_the_gpt_crate() {
    cross_check(&[], LogicalBlockSize::Lb512, 1);
}

#[test]
fn uefi_layout_4k_sectors_reads_back_with_the_gpt_crate() {
    cross_check(&["--sector-size", "4096"], LogicalBlockSize::Lb4096, 1);
}

#[test]
fn talos_grub_layout_reads_back_with_the_gpt_crate() {
    let grub = fixture("grubx64.efi.signed");
    cross_check(
        &[
            "--layout",
            "talos",
            "--talos-bootloader",
            "grub",
            "--grub",
            grub.to_str().unwrap(),
            "--grub-bios",
            "/usr/lib/grub/i386-pc",
            "--size",
            "3G",
        ],
        LogicalBlockSize::Lb512,
        4,
    );
}
