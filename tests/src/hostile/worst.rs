//! Constructed worst cases: tiny PEs with hostile tables, every operation timed with its
//! allocation peak, a watchdog against hangs, and the printed tables.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ukitool_core::authenticode::hash::DigestAlgorithm;
use ukitool_core::authenticode::verify::{verify, TrustStore};
use ukitool_core::disk::fat::read_volume;
use ukitool_core::disk::inspect::inspect_disk;
use ukitool_core::extract;
use ukitool_core::inspect::{inspect, InspectOptions};
use ukitool_core::measure::{predict, uki_parts};
use ukitool_core::pe::PeFile;

use super::alloc::{mem_bound, peak_of};
use super::bytes::set;

/// Run `work` on a worker thread; fail if it makes no progress for `limit` (a hang).
/// `work` reports progress through the sender and the current case through the mutex.
pub fn with_watchdog<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce(mpsc::Sender<()>, Arc<Mutex<String>>) -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let current = Arc::new(Mutex::new(String::new()));
    let cur = current.clone();
    let h = thread::spawn(move || work(tx, cur));
    loop {
        match rx.recv_timeout(limit) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "hang: no progress for {limit:?} in case {}",
                    current.lock().unwrap()
                )
            }
        }
    }
    h.join()
        .unwrap_or_else(|_| panic!("worker died in case {}", current.lock().unwrap()))
}

/// A generous "not hung" bound for one constructed case (the times are printed; a
/// healthy run takes well under a second each).
pub const NOT_HUNG: Duration = Duration::from_secs(60);

pub struct Sec {
    pub name: &'static [u8],
    pub vsize: u32,
    pub raw: u32,
    pub ptr: u32,
    pub ch: u32,
}

/// A PE32+ EFI application made of a section table and `tail` bytes of data, with each
/// section's VirtualAddress laid out 4 KiB apart.
pub fn mini_pe(secs: &[Sec], tail: usize, cert: Option<(u32, u32)>) -> Vec<u8> {
    let table = 0x148usize;
    let hdrs = table + 40 * secs.len();
    let mut d = vec![0u8; hdrs + tail];
    d[..2].copy_from_slice(b"MZ");
    set(&mut d, 0x3c, 4, 0x40);
    d[0x40..0x44].copy_from_slice(b"PE\0\0");
    set(&mut d, 0x44, 2, 0x8664);
    set(&mut d, 0x46, 2, secs.len() as u64);
    set(&mut d, 0x54, 2, 240);
    set(&mut d, 0x56, 2, 0x22);
    let o = 0x58;
    set(&mut d, o, 2, 0x20b);
    set(&mut d, o + 32, 4, 0x1000);
    set(&mut d, o + 36, 4, 0x200);
    set(&mut d, o + 56, 4, 0x1000 * (secs.len() as u64 + 1));
    set(&mut d, o + 60, 4, hdrs as u64);
    set(&mut d, o + 68, 2, 10);
    set(&mut d, o + 108, 4, 16);
    if let Some((at, size)) = cert {
        set(&mut d, o + 112 + 32, 4, u64::from(at));
        set(&mut d, o + 112 + 36, 4, u64::from(size));
    }
    for (i, s) in secs.iter().enumerate() {
        let h = table + 40 * i;
        d[h..h + s.name.len().min(8)].copy_from_slice(&s.name[..s.name.len().min(8)]);
        set(&mut d, h + 8, 4, u64::from(s.vsize));
        set(&mut d, h + 12, 4, 0x1000 * (i as u64 + 1));
        set(&mut d, h + 16, 4, u64::from(s.raw));
        set(&mut d, h + 20, 4, u64::from(s.ptr));
        set(&mut d, h + 36, 4, u64::from(s.ch));
    }
    d
}

/// Every PE operation on `d`, timed, with the allocation peak of inspect and verify.
pub struct Timed {
    pub name: String,
    pub len: usize,
    pub took: Duration,
    /// Peak allocation of inspect (or inspect_disk) and of verify (or the FAT walk).
    pub peak: (u64, u64),
    /// Peak allocation of extract::all and of measure (PE only; printed, not asserted).
    pub side: Option<(u64, u64)>,
}

pub fn time_pe(name: &str, d: &[u8], trust: &TrustStore) -> Timed {
    let start = Instant::now();
    let (_, p1) = peak_of(|| inspect(d, &InspectOptions::default()).map(|r| r.sections.len()));
    let (_, p0) = peak_of(|| inspect(d, &InspectOptions::NO_HASH).map(|r| r.sections.len()));
    let (_, pp) = peak_of(|| PeFile::parse(d).map(|p| p.sections.len()));
    if std::env::var_os("UKITOOL_MEM_DETAIL").is_some() {
        println!("{name}: parse {pp} inspect-no-hash {p0} inspect {p1}");
    }
    let (_, p2) = peak_of(|| PeFile::parse(d).map(|pe| verify(&pe, trust).verdict));
    let (_, p3) = peak_of(|| extract::all(d, None).map(|v| v.len()));
    let (_, p4) = peak_of(|| {
        PeFile::parse(d).and_then(|pe| {
            predict(&uki_parts(&pe, None)?, &[DigestAlgorithm::Sha256], &[]).map(|p| p.len())
        })
    });
    Timed {
        name: name.into(),
        len: d.len(),
        took: start.elapsed(),
        peak: (p1, p2),
        side: Some((p3, p4)),
    }
}

pub fn time_disk(name: &str, d: &[u8], esp: (usize, usize)) -> Timed {
    let start = Instant::now();
    let (_, p1) = peak_of(|| inspect_disk(d).map(|r| r.filesystems.len()));
    let vol = &d[esp.0..esp.1];
    let (_, p2) = peak_of(|| {
        read_volume(vol).map(|v| {
            v.entries
                .iter()
                .filter(|e| !e.is_dir)
                .map(|e| v.file_bytes(vol, e).map(|b| b.len()).unwrap_or(0))
                .sum::<usize>()
        })
    });
    Timed {
        name: name.into(),
        len: d.len(),
        took: start.elapsed(),
        peak: (p1, p2),
        side: None,
    }
}

pub fn report(title: &str, rows: &[Timed]) {
    println!("{title}:");
    for r in rows {
        println!(
            "  {:<52} {:>9} bytes {:>8.1} ms  peak alloc {:>9} / {:>9} ({:.2}x / {:.2}x input)",
            r.name,
            r.len,
            r.took.as_secs_f64() * 1e3,
            r.peak.0,
            r.peak.1,
            r.peak.0 as f64 / r.len as f64,
            r.peak.1 as f64 / r.len as f64
        );
        if let Some((x, m)) = r.side {
            println!(
                "  {:<52} extract {x} ({:.2}x), measure {m} ({:.2}x)",
                "",
                x as f64 / r.len as f64,
                m as f64 / r.len as f64
            );
        }
    }
}

/// inspect (and, if `verify`, verify) within the memory bound on every row.
pub fn assert_mem_bound(rows: &[Timed], verify: bool) {
    for r in rows {
        let peak = if verify {
            r.peak.0.max(r.peak.1)
        } else {
            r.peak.0
        };
        assert!(
            peak <= mem_bound(r.len),
            "{}: peak allocation {:?} for {} bytes (bound {})",
            r.name,
            r.peak,
            r.len,
            mem_bound(r.len)
        );
    }
}

/// `measure` on every case in order, under a [`NOT_HUNG`] watchdog per case.
pub fn timed_rows<C: Send + 'static>(
    cases: Vec<(String, C)>,
    measure: impl Fn(&str, &C) -> Timed + Send + 'static,
) -> Vec<Timed> {
    with_watchdog(NOT_HUNG, move |tx, cur| {
        let mut rows = Vec::new();
        for (name, case) in &cases {
            *cur.lock().unwrap() = name.clone();
            rows.push(measure(name, case));
            let _ = tx.send(());
        }
        rows
    })
}
