//! Every input in tests/regressions/ once crashed, hung or exhausted memory in some
//! core entry point (found by the fuzz targets or the mutation test; see
//! tests/regressions/README.md for what each one was). Each file goes through every
//! entry point a file can reach; all must return a value or a typed error. Some files
//! also have an expectation of their own, checked below.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ukitool_core::authenticode::hash::{hash_ranges, DigestAlgorithm};
use ukitool_core::authenticode::verify::{verify, TrustStore, Verdict};
use ukitool_core::disk::fat::read_volume;
use ukitool_core::disk::gpt;
use ukitool_core::disk::inspect::inspect_disk;
use ukitool_core::disk::xfs;
use ukitool_core::inspect::{inspect, InspectOptions};
use ukitool_core::measure::{predict, uki_parts};
use ukitool_core::pe::PeFile;
use ukitool_core::{extract, siglist};

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

/// Every entry point, on `d`.
fn all_entry_points(d: &[u8]) {
    let _ = inspect(d, &InspectOptions::default());
    let _ = extract::all(d, None);
    let _ = extract::all(d, Some(1));
    if let Ok(pe) = PeFile::parse(d) {
        let _ = verify(&pe, &TrustStore::default());
        let _ = uki_parts(&pe, None).and_then(|p| predict(&p, &[DigestAlgorithm::Sha256], &[]));
    }
    let _ = siglist::parse(d);
    let _ = inspect_disk(d);
    let _ = gpt::read(d);
    if let Ok(v) = read_volume(d) {
        for e in v.entries.iter().filter(|e| !e.is_dir) {
            let _ = v.file_bytes(d, e);
        }
    }
    if let Ok(v) = xfs::read_volume(d) {
        for e in v.entries.iter().filter(|e| e.kind == xfs::FileType::File) {
            let _ = v.file_bytes(d, e);
        }
    }
}

#[test]
fn every_regression_input_is_handled() {
    let mut files: Vec<PathBuf> = fs::read_dir(regressions_dir())
        .expect("tests/regressions")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x != "md"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut failed = Vec::new();
    for p in &files {
        let d = fs::read(p).unwrap();
        let start = Instant::now();
        if catch_unwind(AssertUnwindSafe(|| all_entry_points(&d))).is_err() {
            failed.push(p.display().to_string());
        }
        let took = start.elapsed();
        println!("{}: {:.1} ms", p.display(), took.as_secs_f64() * 1e3);
        // A loose "not hung" bound, not a performance assertion.
        assert!(took < Duration::from_secs(60), "{}: {took:?}", p.display());
    }
    assert!(failed.is_empty(), "panicked on {failed:?}");
}

/// 64 sections all claiming the same 4 KiB: the Authenticode hash covered each copy,
/// so 65535 such sections over a large payload hashed 65535 times the file (a hang).
/// Raw data adding up to more than twice the file is now refused as overlapping.
#[test]
fn overlapping_sections_are_not_hashed_once_each() {
    let d = fs::read(regressions_dir().join("overlapping-sections-hash.efi")).unwrap();
    let pe = PeFile::parse(&d).unwrap();
    assert_eq!(pe.sections.len(), 64);
    let e = hash_ranges(&pe).unwrap_err();
    assert_eq!(e.kind(), "malformed", "{e}");
    assert!(e.to_string().contains("overlap"), "{e}");
    assert_eq!(
        verify(&pe, &TrustStore::default()).verdict,
        Verdict::Malformed
    );
}

/// 16 GPT entries (a valid GPT: sgdisk lists them) all on one 64 KiB FAT12 ESP. Each
/// entry's volume was walked and reported again, so 1024 entries on a 1000-directory
/// ESP took 36 s and 25x the image's size. Overlapping volumes are now walked once.
#[test]
fn overlapping_partitions_are_walked_once() {
    let d = fs::read(regressions_dir().join("gpt-16-partitions-one-esp.img")).unwrap();
    let r = inspect_disk(&d).unwrap();
    assert_eq!(
        r.partition_table.as_ref().map(|t| t.partitions.len()),
        Some(16)
    );
    assert_eq!(r.filesystems.len(), 1);
    let skipped = r
        .problems
        .iter()
        .filter(|p| p.contains("not walked again"))
        .count();
    assert_eq!(skipped, 15, "{:?}", r.problems);
}

/// 200 sections all named .cmdline. `extract::all` tried cmdline, cmdline.1, ... from
/// the start for each one, so 65535 of them took n^2/2 attempts (a hang); it now keeps
/// the next suffix per name. The names must be unchanged: cmdline, cmdline.1, ...
#[test]
fn repeated_section_names_extract_in_order() {
    let d = fs::read(regressions_dir().join("200-sections-one-name.efi")).unwrap();
    let all = extract::all(&d, None).unwrap();
    assert_eq!(all.len(), 200);
    for (i, (name, data)) in all.iter().enumerate() {
        let want = if i == 0 {
            "cmdline".to_string()
        } else {
            format!("cmdline.{i}")
        };
        assert_eq!(name, &want);
        assert_eq!(*data, format!("x{i:015}").as_bytes());
    }
}

/// 100 .cmdline in the base, a .profile, 99 .osrel in profile @0: `measure::uki_parts`
/// scanned the whole block for every base part (32767 on each side: 26 s); it now uses
/// a set. The parts are unchanged: the base's (no name in common), then the block's.
#[test]
fn measured_parts_of_disjoint_base_and_profile() {
    let d = fs::read(regressions_dir().join("base-and-profile-disjoint.efi")).unwrap();
    let pe = PeFile::parse(&d).unwrap();
    let parts = uki_parts(&pe, None).unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p.name).collect();
    let mut want = vec![".cmdline"; 100];
    want.push(".profile");
    want.extend(vec![".osrel"; 99]);
    assert_eq!(names, want);
    assert_eq!(parts[0].chunks, vec![&b"x000000000000000"[..]]);
    assert_eq!(parts[199].chunks, vec![&b"x000000000000199"[..]]);
}

/// A 46 KiB XFS volume prefix found by the `xfs` fuzz target (3 s under ASan, past
/// libFuzzer's 10 s on a loaded machine): a directory's extents claim millions of
/// blocks outside the volume, and the reader listed a problem for each block (1.26
/// million lines, 120 MB of text, 1.5 s). It now lists one per extent and keeps at
/// most 1,000 problems, counting the rest.
#[test]
fn xfs_problems_stay_bounded() {
    let d = fs::read(regressions_dir().join("xfs-fuzz-slow.xfs")).unwrap();
    let v = xfs::read_volume(&d).unwrap();
    let text: usize = v.problems.iter().map(String::len).sum();
    println!(
        "{} entries, {} problems, {text} bytes",
        v.entries.len(),
        v.problems.len()
    );
    assert!(v.problems.len() <= 1001, "{}", v.problems.len());
    assert!(
        text < d.len(),
        "{text} bytes of problems for {} bytes",
        d.len()
    );
    assert!(
        v.problems.iter().any(|p| p.contains("outside the volume")),
        "{:?}",
        v.problems
    );
}
