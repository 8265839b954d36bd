//! The mutation corpus through the core, and a sample of it through the CLI.

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use ukitool_tests::hostile::inputs::{
    mkfs_xfs_volume, mtools_disk, signed_stubs, signed_systemd_boot, snakeoil_trust, ukitool_disk,
    ukitool_xfs_volume, xfs_disk,
};
use ukitool_tests::hostile::mutate::{
    disk_target, mutate, pe_target, run_disk, run_pe, Case, Kind, Rng, Stats, Target,
};
use ukitool_tests::hostile::worst::with_watchdog;
use ukitool_tests::hostile::xfs::{run_xfs, xfs_target};
use ukitool_tests::{fixture_bytes, tmpdir, ukitool};

fn targets() -> Vec<(Target, u64, bool)> {
    let dir = tmpdir();
    let (signed, nested) = signed_stubs(&dir);
    let small_disk = mtools_disk(&dir);
    let img = ukitool_disk(&dir, &signed_systemd_boot(&dir));
    let (xfs_own, own_at) = xfs_disk(&dir, &ukitool_xfs_volume());
    let (xfs_mkfs, mkfs_at) = xfs_disk(&dir, &mkfs_xfs_volume(&dir));
    // (input, cases, heavy): the 9 MiB UKI gets fewer cases and no section hashing.
    vec![
        (pe_target("stub-sbsign", signed), 3600, false),
        (pe_target("stub-nested", nested), 2000, false),
        (
            pe_target("shimx64.efi.signed", fixture_bytes("shimx64.efi.signed")),
            1200,
            false,
        ),
        (
            pe_target("uki-signed.efi", fixture_bytes("uki-signed.efi")),
            200,
            true,
        ),
        (disk_target("disk-mtools-fat16", small_disk), 1500, false),
        (disk_target("disk-ukitool-fat32", img), 1500, false),
        (xfs_target("disk-ukitool-xfs", xfs_own, own_at), 1500, false),
        (xfs_target("disk-mkfs-xfs", xfs_mkfs, mkfs_at), 1500, false),
    ]
}

#[test]
fn mutation_corpus() {
    let mut all = targets();
    let trust = snakeoil_trust();
    let total: u64 = all.iter().map(|t| t.1).sum();
    assert!(total >= 10_000);
    let stats = with_watchdog(Duration::from_secs(120), move |tx, current| {
        let mut st = Stats::default();
        let mut rng = Rng(0x75_6b69_746f_6f6c); // "ukitool"
        for (t, cases, heavy) in &mut all {
            // The unmutated input first: it must be accepted.
            for i in 0..*cases {
                let c = if i == 0 {
                    Case {
                        undo: Vec::new(),
                        len: t.data.len(),
                        desc: "unmutated".into(),
                    }
                } else {
                    mutate(&mut rng, t)
                };
                let desc = format!("{} #{i}: {}", t.name, c.desc);
                *current.lock().unwrap() = desc.clone();
                let start = Instant::now();
                let d = &t.data[..c.len];
                match t.kind {
                    Kind::Pe => run_pe(&mut st, &desc, d, &trust, *heavy),
                    Kind::Disk => run_disk(&mut st, &desc, d, t.esp.unwrap()),
                    Kind::Xfs => run_xfs(&mut st, &desc, d, t.esp.unwrap()),
                }
                let took = start.elapsed();
                if took > st.slowest.0 {
                    st.slowest = (took, desc);
                }
                st.cases += 1;
                c.restore(&mut t.data);
                let _ = tx.send(());
            }
        }
        st
    });
    println!("mutation cases: {}", stats.cases);
    println!(
        "outcomes by operation (error kind, or verify verdict):{}",
        stats.table()
    );
    println!(
        "slowest case: {:.1} ms ({})",
        stats.slowest.0.as_secs_f64() * 1e3,
        stats.slowest.1
    );
    println!("peak allocation / input size, max over inputs > 4 KiB:");
    for (op, (ratio, case)) in &stats.max_ratio {
        println!("  {op:<16} {ratio:.3} ({case})");
    }
    assert!(
        stats.panics.is_empty(),
        "{} panics, first: {:#?}",
        stats.panics.len(),
        &stats.panics[..stats.panics.len().min(10)]
    );
    assert!(
        stats.mem_violations.is_empty(),
        "{} allocation-bound violations: {:#?}",
        stats.mem_violations.len(),
        &stats.mem_violations[..stats.mem_violations.len().min(10)]
    );
}

/// A sample of the mutation cases through the CLI: never a panic or a backtrace, exit
/// 0/1/2, and exit 2 is exactly one `ukitool: error:` line.
#[test]
fn cli_on_mutated_inputs() {
    let dir = tmpdir();
    let (signed, nested) = signed_stubs(&dir);
    let (xfs, at) = xfs_disk(&dir, &ukitool_xfs_volume());
    let mut inputs = [
        pe_target("stub-sbsign", signed),
        pe_target("stub-nested", nested),
        disk_target("disk-mtools-fat16", mtools_disk(&dir)),
        xfs_target("disk-ukitool-xfs", xfs, at),
    ];
    let mut rng = Rng(0x0063_6c69); // "cli"
    let path = dir.join("case.bin");
    let mut codes: BTreeMap<(String, i32), u32> = BTreeMap::new();
    let mut bad = Vec::new();
    for i in 0..240 {
        let t = &mut inputs[i % 4];
        let c = mutate(&mut rng, t);
        fs::write(&path, &t.data[..c.len]).unwrap();
        let cmds: &[&[&str]] = match t.kind {
            Kind::Pe => &[&["inspect"], &["verify"], &["extract", "--all"]],
            Kind::Disk => &[&["inspect"]],
            Kind::Xfs => &[&["inspect"], &["extract", "--all"]],
        };
        for args in cmds {
            let mut cmd = ukitool();
            cmd.args(*args).arg(&path).env("RUST_BACKTRACE", "1");
            if args[0] == "extract" {
                cmd.arg("--force").arg("-o").arg(dir.join("x"));
            }
            let o = cmd.output().unwrap();
            let code = o.status.code().unwrap_or(-1);
            let err = String::from_utf8_lossy(&o.stderr);
            *codes.entry((args[0].to_string(), code)).or_default() += 1;
            let out = String::from_utf8_lossy(&o.stdout);
            // verify reports a malformed file as its verdict: the report on stdout,
            // ending in one `verdict: malformed: <reason>` line, and exit 2.
            let one_line = (err.lines().count() == 1 && err.starts_with("ukitool: error: "))
                || (args[0] == "verify"
                    && err.is_empty()
                    && out
                        .lines()
                        .last()
                        .is_some_and(|l| l.starts_with("verdict: malformed: ")));
            let broken = !(0..=2).contains(&code)
                || err.contains("panicked")
                || err.contains("backtrace")
                || err.contains("internal error")
                || (code == 2 && !one_line);
            if broken {
                bad.push(format!(
                    "{} {args:?} on {} {}: exit {code}: {err}",
                    t.name, c.desc, i
                ));
            }
        }
        c.restore(&mut t.data);
    }
    println!("CLI exit codes over {} mutated files: {codes:?}", 240);
    assert!(
        bad.is_empty(),
        "{} bad CLI runs: {:#?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
}
