//! FAT cluster-chain and directory cycles, and many GPT entries on one ESP: time and
//! memory bounds.

use std::fs;
use std::process::Command;

use ukitool_tests::hostile::bytes::{crc32, get, set};
use ukitool_tests::hostile::inputs::{mtools_disk, signed_systemd_boot, ukitool_disk};
use ukitool_tests::hostile::worst::{assert_mem_bound, report, time_disk, timed_rows};
use ukitool_tests::{run_ok, tmpdir};

/// FAT geometry of the ESP of a ukitool-made disk: (volume start, bytes per sector,
/// sectors per cluster, FAT offset, data offset, root cluster, cluster count).
struct Geo {
    vol: usize,
    cs: usize,
    fat: usize,
    data: usize,
    root: u32,
    clusters: u32,
}

fn fat32_geo(d: &[u8]) -> Geo {
    let ents = get(d, 512 + 72, 8) as usize * 512;
    let vol = get(d, ents + 32, 8) as usize * 512;
    let bps = get(d, vol + 11, 2) as usize;
    let spc = get(d, vol + 13, 1) as usize;
    let rsvd = get(d, vol + 14, 2) as usize;
    let nfats = get(d, vol + 16, 1) as usize;
    let fatsz = get(d, vol + 36, 4) as usize;
    let total = get(d, vol + 32, 4) as usize;
    let data_sec = rsvd + nfats * fatsz;
    Geo {
        vol,
        cs: bps * spc,
        fat: vol + rsvd * bps,
        data: vol + data_sec * bps,
        root: get(d, vol + 44, 4) as u32,
        clusters: ((total - data_sec) / spc) as u32,
    }
}

#[test]
fn fat_cycles_stay_linear() {
    let dir = tmpdir();
    let img = ukitool_disk(&dir, &signed_systemd_boot(&dir));
    let g = fat32_geo(&img);
    assert_eq!(get(&img, g.vol + 82, 8), u64::from_le_bytes(*b"FAT32   "));
    let esp_end = g.vol + (get(&img, g.vol + 32, 4) as usize) * 512;
    let fat_entry =
        |d: &mut Vec<u8>, c: u32, v: u32| set(d, g.fat + 4 * c as usize, 4, u64::from(v));
    let root_at = g.data + (g.root as usize - 2) * g.cs;
    // The first directory entry of the root that is a directory (EFI).
    let efi_entry = (0..g.cs / 32)
        .map(|i| root_at + 32 * i)
        .find(|&e| img[e + 11] & 0x10 != 0 && img[e] != 0xe5 && img[e + 11] != 0x0f)
        .expect("a directory in the root");
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    let mut d = img.clone();
    fat_entry(&mut d, g.root, g.root);
    cases.push(("root directory chain loops on itself".into(), d));
    let mut d = img.clone();
    for c in 2..g.clusters + 2 {
        fat_entry(&mut d, c, if c + 1 < g.clusters + 2 { c + 1 } else { 2 });
    }
    cases.push((
        format!(
            "one chain through all {} clusters, back to the first",
            g.clusters
        ),
        d,
    ));
    let mut d = img.clone();
    set(&mut d, efi_entry + 20, 2, u64::from(g.root >> 16));
    set(&mut d, efi_entry + 26, 2, u64::from(g.root & 0xffff));
    cases.push(("\\EFI is the root again (directory cycle)".into(), d));
    let mut d = img.clone();
    for c in 2..g.clusters + 2 {
        fat_entry(&mut d, c, c);
    }
    for i in 0..g.cs / 32 {
        let e = root_at + 32 * i;
        if d[e] != 0 && d[e] != 0xe5 && d[e + 11] != 0x0f {
            set(&mut d, e + 28, 4, 0xffff_ffff);
        }
    }
    cases.push(("every cluster loops on itself, files claim 4 GiB".into(), d));
    let esp = (g.vol, esp_end);
    let rows = timed_rows(cases, move |name, d| time_disk(name, d, esp));
    report(
        "FAT cycles (inspect_disk / FAT walk + every file's bytes)",
        &rows,
    );
    assert_mem_bound(&rows, true);
}

/// reader that walks each partition's volume does the same walk `n` times.
/// `disk` with `n` GPT entries that all point at partition 1 (the CRCs fixed): a
fn duplicate_partitions(disk: &[u8], n: usize) -> Vec<u8> {
    let mut d = disk.to_vec();
    let ents = get(&d, 512 + 72, 8) as usize * 512;
    let first = get(&d, ents + 32, 8) as usize;
    assert!(ents + 128 * n <= first * 512, "room for {n} entries");
    let e1 = d[ents..ents + 128].to_vec();
    for i in 1..n {
        let e = ents + 128 * i;
        d[e..e + 128].copy_from_slice(&e1);
        d[e + 16] ^= i as u8; // a distinct unique GUID
        d[e + 17] ^= (i >> 8) as u8;
    }
    set(&mut d, 512 + 80, 4, n as u64);
    let crc = crc32(&d[ents..ents + 128 * n]);
    set(&mut d, 512 + 88, 4, u64::from(crc));
    set(&mut d, 512 + 16, 4, 0);
    let crc = crc32(&d[512..512 + 92]);
    set(&mut d, 512 + 16, 4, u64::from(crc));
    d
}

#[test]
fn duplicate_partitions_stay_linear() {
    let dir = tmpdir();
    // A FAT16 ESP with 1000 directories, so one walk has something to do.
    let mut disk = mtools_disk(&dir);
    let esp = dir.join("many.fat");
    let _ = fs::remove_file(&esp);
    run_ok(
        Command::new("mkfs.vfat")
            .args(["-C", "-F", "16", "-s", "1", "-n", "MANY"])
            .arg(&esp)
            .arg("3072"),
    );
    let mut names = vec!["::/many".to_string()];
    names.extend((0..1000).map(|i| format!("::/many/d{i}")));
    run_ok(Command::new("mmd").arg("-i").arg(&esp).args(&names));
    let vol = fs::read(&esp).unwrap();
    disk[1 << 20..(1 << 20) + vol.len()].copy_from_slice(&vol);
    let esp_range = (1 << 20, (1 << 20) + vol.len());
    let cases: Vec<(String, usize)> = [1usize, 128, 1024]
        .into_iter()
        .map(|n| {
            (
                format!("{n} GPT entries on one 1000-directory FAT16 ESP"),
                n,
            )
        })
        .collect();
    let rows = timed_rows(cases, move |name, &n| {
        time_disk(name, &duplicate_partitions(&disk, n), esp_range)
    });
    report("duplicate partitions (inspect_disk / FAT walk)", &rows);
    assert_mem_bound(&rows, true);
}
