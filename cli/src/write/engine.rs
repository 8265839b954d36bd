//! The write itself: wipe both ends, write the data chunks, sync, verify, and only then
//! write the image's last and first MiB (backup and primary GPT), sync and verify those.
//!
//! ```text
//!  wipe dev[0..1M] and dev[end-1M..end]   (stale MBR/GPT/backup GPT gone)
//!  write body chunks (sha256 each, fsync every 64 MiB, Ctrl-C checked per chunk)
//!  fsync, verify body (O_DIRECT read back, sha256 compare)
//!  write image tail (backup GPT), then head (MBR + primary GPT); fsync; verify them
//!  BLKFLSBUF, BLKRRPART
//! ```
//! Until the last step the device holds no valid partition table, so an interrupted or
//! failed write can never leave a disk that firmware half-trusts.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::device::{AlignedBuf, Target};
use super::source::{Source, CHUNK, EDGE};

/// fsync this often while writing: a Ctrl-C then waits for at most this much dirty data
/// (on O_DIRECT it also flushes the device's volatile write cache in steps).
const SYNC_EVERY: u64 = 64 << 20;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM once: the write stops at the next chunk and says what state
/// the disk is in. SA_RESETHAND makes a second Ctrl-C kill at once.
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe); sigaction
        // is given a zeroed, then filled, struct.
        #[allow(unsafe_code)]
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Settings of one write.
pub struct Options {
    pub verify: bool,
    pub json: bool,
    /// Test hook (UKITOOL_TEST_CORRUPT_AT): flip this byte between write and verify.
    pub corrupt_at: Option<u64>,
    /// Test hook (UKITOOL_TEST_THROTTLE_MS): sleep after each chunk, to interrupt midway.
    pub throttle: Option<Duration>,
}

/// What a finished write did.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub image_size: u64,
    pub bytes_written: u64,
    pub bytes_wiped: u64,
    pub seconds: f64,
    pub bytes_per_second: f64,
    pub verified: bool,
    pub direct_io: bool,
}

/// Why a write stopped, and what the disk holds now.
#[derive(Debug)]
pub enum Failure {
    /// Ctrl-C/SIGTERM before the partition table was written.
    Interrupted { written: u64, total: Option<u64> },
    /// Read-back differs from what was written.
    Mismatch {
        offset: u64,
        /// false: only the chunk is known (the source cannot be re-read).
        exact: bool,
        table_written: bool,
    },
    /// The image (from stdin) turned out larger than the device.
    TooLarge { device_size: u64 },
    Io(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e.into())
    }
}

/// A written range and the sha256 of its bytes.
struct Record {
    offset: u64,
    len: usize,
    digest: [u8; 32],
}

/// Progress: an indicatif bar on a terminal, JSON lines with `--json`, or nothing.
struct Progress {
    bar: Option<ProgressBar>,
    json: bool,
    phase: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(json: bool) -> Self {
        Progress {
            bar: None,
            json,
            phase: "",
            total: None,
            done: 0,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn phase(&mut self, phase: &'static str, total: Option<u64>) {
        self.end_phase();
        self.phase = phase;
        self.total = total;
        self.done = 0;
        self.started = Instant::now();
        if !self.json && std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let tmpl = if total.is_some() {
                "{msg:>9} [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
            } else {
                "{msg:>9} {spinner} {bytes} {bytes_per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(tmpl) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(phase);
            self.bar = Some(bar);
        }
        self.line(true);
    }

    fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(b) = &self.bar {
            b.inc(n);
        }
        self.line(false);
    }

    fn end_phase(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if !self.phase.is_empty() {
            self.line(true);
        }
    }

    /// One JSON progress line, at most four a second (plus phase starts and ends).
    fn line(&mut self, force: bool) {
        if !self.json || (!force && self.last_line.elapsed() < Duration::from_millis(250)) {
            return;
        }
        self.last_line = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        };
        let v = serde_json::json!({
            "event": "progress",
            "phase": self.phase,
            "bytes_done": self.done,
            "bytes_total": self.total,
            "bytes_per_second": rate.round(),
        });
        println!("{v}");
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Write `src` to `target` (already opened and checked), whose size is `device_size`.
pub fn write_image(
    src: &mut dyn Source,
    target: &Target,
    device_size: u64,
    opts: &Options,
) -> Result<Summary, Failure> {
    let started = Instant::now();
    let mut progress = Progress::new(opts.json);
    let mut buf_pool: Vec<AlignedBuf> = Vec::new();
    let mut take_buf = |pool: &mut Vec<AlignedBuf>| pool.pop().unwrap_or_else(|| AlignedBuf::new(CHUNK));

    // 1. Wipe stale signatures at both ends: old MBR/GPT at the start, a stale backup GPT
    //    at the end (firmware "repairs" a disk from it). The image's own data is written
    //    after this, so where the two overlap the image wins.
    let mut wiped = 0u64;
    {
        let edge = EDGE.min(device_size);
        let mut zeros = AlignedBuf::new(edge as usize);
        zeros.set_len(edge as usize);
        progress.phase("wiping", Some(edge * 2));
        for off in [0, device_size - edge] {
            target
                .write_at(off, zeros.as_slice())
                .with_context(|| format!("wiping the device at {off:#x}"))?;
            wiped += edge;
            progress.inc(edge);
        }
        target.sync().context("syncing the wipe")?;
    }

    // 2. The body: every chunk except the image's first and last MiB.
    progress.phase("writing", src.data_len());
    let mut head = AlignedBuf::new(EDGE as usize);
    head.as_mut_slice().fill(0);
    let mut image_end = 0u64;
    let mut pending: VecDeque<(u64, AlignedBuf)> = VecDeque::new();
    let mut pending_bytes = 0u64;
    let mut body: Vec<Record> = Vec::new();
    let mut written = 0u64;
    let mut since_sync = 0u64;
    let total = src.data_len();
    loop {
        if interrupted() {
            let _ = target.sync();
            progress.end_phase();
            return Err(Failure::Interrupted { written, total });
        }
        let mut buf = take_buf(&mut buf_pool);
        let Some(off) = src.next_chunk(&mut buf)? else {
            buf_pool.push(buf);
            break;
        };
        let len = buf.as_slice().len() as u64;
        let end = off + len;
        if end > device_size {
            progress.end_phase();
            return Err(Failure::TooLarge { device_size });
        }
        image_end = image_end.max(end);
        if off < EDGE {
            // Deferred: the head is written last. Chunks never cross EDGE.
            let at = off as usize;
            if let Some(dst) = head.as_mut_slice().get_mut(at..at + len as usize) {
                dst.copy_from_slice(buf.as_slice());
            }
            progress.inc(len);
            buf_pool.push(buf);
            continue;
        }
        pending_bytes += len;
        pending.push_back((off, buf));
        // Keep the last MiB of data back: it holds the backup GPT.
        while pending.len() > 1 {
            let front_len = pending.front().map_or(0, |(_, b)| b.as_slice().len() as u64);
            if pending_bytes - front_len < EDGE {
                break;
            }
            let Some((o, b)) = pending.pop_front() else {
                break;
            };
            pending_bytes -= front_len;
            target
                .write_at(o, b.as_slice())
                .with_context(|| format!("writing at {o:#x}"))?;
            body.push(Record {
                offset: o,
                len: b.as_slice().len(),
                digest: sha256(b.as_slice()),
            });
            written += front_len;
            since_sync += front_len;
            progress.inc(front_len);
            buf_pool.push(b);
            if since_sync >= SYNC_EVERY {
                target.sync().context("syncing")?;
                since_sync = 0;
            }
            if let Some(t) = opts.throttle {
                std::thread::sleep(t);
            }
        }
    }
    let head_len = image_end.min(EDGE) as usize;
    head.set_len(head_len);

    progress.phase("syncing", None);
    target.sync().context("syncing")?;
    if let Some(at) = opts.corrupt_at {
        if body.iter().any(|r| at >= r.offset && at < r.offset + r.len as u64) {
            target.corrupt_byte(at)?;
        }
    }

    // 3. Verify the body before the partition table exists.
    if opts.verify {
        verify(&body, target, &mut progress, &|off, out| src.read_at(off, out), false)?;
    }

    // 4. Tail (backup GPT) then head (protective MBR + primary GPT).
    progress.phase("finishing", Some(pending_bytes + head_len as u64));
    let mut last: Vec<(u64, AlignedBuf)> = pending.into_iter().collect();
    if head_len > 0 {
        last.push((0, head));
    }
    let mut edges = Vec::new();
    for (o, b) in &last {
        target
            .write_at(*o, b.as_slice())
            .with_context(|| format!("writing at {o:#x}"))?;
        let n = b.as_slice().len();
        edges.push(Record {
            offset: *o,
            len: n,
            digest: sha256(b.as_slice()),
        });
        written += n as u64;
        progress.inc(n as u64);
    }
    target.sync().context("syncing")?;
    if let Some(at) = opts.corrupt_at {
        if edges.iter().any(|r| at >= r.offset && at < r.offset + r.len as u64) {
            target.corrupt_byte(at)?;
        }
    }
    if opts.verify {
        let expected = |off: u64, out: &mut [u8]| -> Result<bool> {
            for (o, b) in &last {
                let s = b.as_slice();
                if off >= *o && off + out.len() as u64 <= *o + s.len() as u64 {
                    let at = (off - o) as usize;
                    out.copy_from_slice(&s[at..at + out.len()]);
                    return Ok(true);
                }
            }
            Ok(false)
        };
        verify(&edges, target, &mut progress, &expected, true)?;
    }
    progress.end_phase();
    target.finish();

    let seconds = started.elapsed().as_secs_f64();
    Ok(Summary {
        image_size: image_end.max(src.size().unwrap_or(0)),
        bytes_written: written,
        bytes_wiped: wiped,
        seconds,
        bytes_per_second: if seconds > 0.0 {
            written as f64 / seconds
        } else {
            0.0
        },
        verified: opts.verify,
        direct_io: target.o_direct,
    })
}

/// Read every record back (bypassing the page cache) and compare its sha256. On a
/// mismatch, find the first differing byte from the source when it can be re-read.
fn verify(
    records: &[Record],
    target: &Target,
    progress: &mut Progress,
    expected: &dyn Fn(u64, &mut [u8]) -> Result<bool>,
    table_written: bool,
) -> Result<(), Failure> {
    if !target.has_direct_reader() {
        target.drop_cache();
    }
    if !table_written {
        progress.phase("verifying", Some(records.iter().map(|r| r.len as u64).sum()));
    }
    let mut buf = AlignedBuf::new(CHUNK);
    for r in records {
        if interrupted() && !table_written {
            progress.end_phase();
            return Err(Failure::Interrupted {
                written: 0,
                total: None,
            });
        }
        buf.set_len(r.len);
        target
            .read_at(r.offset, buf.as_mut_slice())
            .with_context(|| format!("reading back at {:#x}", r.offset))?;
        if sha256(buf.as_slice()) != r.digest {
            progress.end_phase();
            let mut want = vec![0u8; r.len];
            let (offset, exact) = match expected(r.offset, &mut want) {
                Ok(true) => {
                    let i = buf
                        .as_slice()
                        .iter()
                        .zip(&want)
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    (r.offset + i as u64, true)
                }
                _ => (r.offset, false),
            };
            return Err(Failure::Mismatch {
                offset,
                exact,
                table_written,
            });
        }
        if !table_written {
            progress.inc(r.len as u64);
        }
    }
    Ok(())
}
