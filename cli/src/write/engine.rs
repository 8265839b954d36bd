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
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
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
    Interrupted {
        written: u64,
        total: Option<u64>,
    },
    /// Read-back differs from what was written.
    Mismatch {
        offset: u64,
        /// false: only the chunk is known (the source cannot be re-read).
        exact: bool,
        table_written: bool,
    },
    /// The image (a stream) turned out larger than the device: data at `offset`.
    TooLarge {
        device_size: u64,
        offset: u64,
    },
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

/// A chunk of the image, read and hashed, ready to write.
struct Chunk {
    offset: u64,
    buf: AlignedBuf,
    digest: [u8; 32],
    /// All zeros: written with [`Target::zero_at`], not a data write.
    zero: bool,
}

/// The sha256 of a whole chunk of zeros, computed once: a 4 GiB image that is mostly
/// zeros then costs a zero scan per chunk, not a hash.
fn zero_chunk_digest() -> [u8; 32] {
    static D: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    *D.get_or_init(|| sha256(&vec![0u8; CHUNK]))
}

fn is_zero(b: &[u8]) -> bool {
    // Compare 16-byte words: as fast as memory on this kind of loop (no early-exit
    // branch per byte).
    let (words, rest) = b.split_at(b.len() - b.len() % 16);
    words
        .chunks_exact(16)
        .all(|w| u128::from_ne_bytes(w.try_into().unwrap_or([1; 16])) == 0)
        && rest.iter().all(|&x| x == 0)
}

fn produce(src: &mut dyn Source, buf: Option<AlignedBuf>) -> Result<Option<Chunk>> {
    let mut buf = buf.unwrap_or_else(|| AlignedBuf::new(CHUNK));
    Ok(src.next_chunk(&mut buf)?.map(|offset| {
        let data = buf.as_slice();
        let zero = is_zero(data);
        let digest = if zero && data.len() == CHUNK {
            zero_chunk_digest()
        } else {
            sha256(data)
        };
        Chunk {
            offset,
            digest,
            zero,
            buf,
        }
    }))
}

/// Where chunks come from: read and hashed on a helper thread while the main thread
/// writes (file and synthesised sources), or inline (stdin, whose read may block
/// indefinitely and must not keep a Ctrl-C waiting on a thread join).
enum Feed<'a> {
    Inline(&'a mut dyn Source, Vec<AlignedBuf>),
    Threaded(Receiver<Result<Option<Chunk>>>, Sender<AlignedBuf>),
}

impl<'env> Feed<'env> {
    /// Chunks of `src`: from a helper thread in `scope` when `threaded`, else read inline.
    fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        src: &'env mut dyn Source,
        threaded: bool,
    ) -> Self {
        if !threaded {
            return Feed::Inline(src, Vec::new());
        }
        let (tx, rx) = sync_channel::<Result<Option<Chunk>>>(2);
        let (back_tx, back_rx) = channel::<AlignedBuf>();
        scope.spawn(move || loop {
            let r = produce(src, back_rx.try_recv().ok());
            let more = matches!(r, Ok(Some(_)));
            // A closed channel means the writer stopped (error or Ctrl-C).
            if tx.send(r).is_err() || !more {
                break;
            }
        });
        Feed::Threaded(rx, back_tx)
    }

    fn next(&mut self) -> Result<Option<Chunk>> {
        match self {
            Feed::Inline(src, pool) => produce(&mut **src, pool.pop()),
            Feed::Threaded(rx, _) => rx.recv().unwrap_or(Ok(None)),
        }
    }

    fn recycle(&mut self, buf: AlignedBuf) {
        match self {
            Feed::Inline(_, pool) => pool.push(buf),
            Feed::Threaded(_, back) => {
                let _ = back.send(buf);
            }
        }
    }
}

/// The image's data as the body phase leaves it: the head gathered, the tail held back,
/// everything between written.
struct Body {
    /// The image's first MiB (protective MBR + primary GPT): written last.
    head: AlignedBuf,
    /// The end of the image's data seen so far.
    image_end: u64,
    /// Chunks not yet written: at the end, the last MiB of data (the backup GPT).
    pending: VecDeque<(u64, AlignedBuf, bool)>,
    pending_bytes: u64,
    /// Every chunk past the head, in order: the written ones, then the pending ones.
    records: Vec<Record>,
    written: u64,
    since_sync: u64,
}

impl Body {
    fn new() -> Self {
        let mut head = AlignedBuf::new(EDGE as usize);
        head.as_mut_slice().fill(0);
        Body {
            head,
            image_end: 0,
            pending: VecDeque::new(),
            pending_bytes: 0,
            records: Vec::new(),
            written: 0,
            since_sync: 0,
        }
    }

    /// Take a chunk of the head into the buffer written last. Chunks never cross EDGE.
    fn keep_head(&mut self, chunk: &Chunk) {
        let at = chunk.offset as usize;
        let data = chunk.buf.as_slice();
        if let Some(dst) = self.head.as_mut_slice().get_mut(at..at + data.len()) {
            dst.copy_from_slice(data);
        }
    }

    fn hold(&mut self, chunk: Chunk) {
        let len = chunk.buf.as_slice().len();
        self.pending_bytes += len as u64;
        self.records.push(Record {
            offset: chunk.offset,
            len,
            digest: chunk.digest,
        });
        self.pending
            .push_back((chunk.offset, chunk.buf, chunk.zero));
    }

    /// Write held chunks while more than the last MiB of data would stay held back.
    fn write_ready(
        &mut self,
        target: &Target,
        opts: &Options,
        progress: &mut Progress,
        feed: &mut Feed,
    ) -> Result<(), Failure> {
        while self.pending.len() > 1 {
            let front_len = self
                .pending
                .front()
                .map_or(0, |(_, b, _)| b.as_slice().len() as u64);
            if self.pending_bytes - front_len < EDGE {
                break;
            }
            let Some((o, b, zero)) = self.pending.pop_front() else {
                break;
            };
            self.pending_bytes -= front_len;
            if zero {
                target.zero_at(o, b.as_slice()).with_context(|| {
                    format!("zeroing {front_len} bytes at byte offset {o} ({o:#x})")
                })?;
            } else {
                target
                    .write_at(o, b.as_slice())
                    .with_context(|| format!("writing at byte offset {o} ({o:#x})"))?;
            }
            self.written += front_len;
            self.since_sync += front_len;
            progress.inc(front_len);
            feed.recycle(b);
            if self.since_sync >= SYNC_EVERY {
                target.sync().context("syncing")?;
                self.since_sync = 0;
            }
            if let Some(t) = opts.throttle {
                std::thread::sleep(t);
            }
        }
        Ok(())
    }
}

/// Write `src` to `target` (already opened and checked), whose size is `device_size`
/// (`None`: a regular file that grows with a streamed image).
pub fn write_image(
    src: &mut dyn Source,
    target: &Target,
    device_size: Option<u64>,
    opts: &Options,
) -> Result<Summary, Failure> {
    let started = Instant::now();
    let mut progress = Progress::new(opts.json);
    // A stream that says how large it is (a zstd frame header, a bmap) is refused before
    // anything is written; one that does not is stopped at the device's end, before the
    // partition table is written.
    if let (Some(d), Some(declared)) = (device_size, src.declared_size()) {
        if declared > d {
            return Err(Failure::TooLarge {
                device_size: d,
                offset: d,
            });
        }
    }
    let wiped = wipe_ends(target, device_size, &mut progress)?;

    // 2. The body: every chunk except the image's first and last MiB.
    progress.phase("writing", src.data_len());
    let total = src.data_len();
    let mut body = write_body(src, target, device_size, opts, &mut progress)?;
    // Whole-source checks (the file's sha256) end here, before the partition table.
    src.finish()?;
    // The chunks still pending are the tail; their records move to the final phase.
    let body_len = body.records.len() - body.pending.len();
    let tail_records = body.records.split_off(body_len);
    progress.phase("syncing", None);
    target.sync().context("syncing")?;
    corrupt_for_test(target, opts, &body.records)?;

    // 3. Verify the body before the partition table exists.
    if opts.verify {
        let written = body.written;
        verify(
            &body.records,
            target,
            &mut progress,
            &|off, out| src.read_at(off, out),
            false,
        )
        .map_err(|f| match f {
            Failure::Interrupted { .. } => Failure::Interrupted { written, total },
            other => other,
        })?;
    }

    let image_end = body.image_end;
    let written = write_edges(body, tail_records, target, device_size, opts, &mut progress)?;
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

/// 1. Wipe stale signatures at both ends: old MBR/GPT at the start, a stale backup GPT
///    at the end (firmware "repairs" a disk from it). The image's own data is written
///    after this, so where the two overlap the image wins. Returns the bytes wiped.
fn wipe_ends(
    target: &Target,
    device_size: Option<u64>,
    progress: &mut Progress,
) -> Result<u64, Failure> {
    let edge = device_size.map_or(EDGE, |d| d.min(EDGE));
    let mut zeros = AlignedBuf::new(edge as usize);
    zeros.set_len(edge as usize);
    let ends: Vec<u64> = match device_size {
        Some(d) if d > edge => vec![0, d - edge],
        _ => vec![0],
    };
    progress.phase("wiping", Some(edge * ends.len() as u64));
    let mut wiped = 0u64;
    for off in ends {
        target
            .write_at(off, zeros.as_slice())
            .with_context(|| format!("wiping the device at {off:#x}"))?;
        wiped += edge;
        progress.inc(edge);
    }
    // No sync here: the body's syncs flush the wipe too, long before the head is written.
    Ok(wiped)
}

/// Read `src` chunk by chunk: keep the head, write the body, hold the last MiB back.
fn write_body(
    src: &mut dyn Source,
    target: &Target,
    device_size: Option<u64>,
    opts: &Options,
    progress: &mut Progress,
) -> Result<Body, Failure> {
    let mut body = Body::new();
    let total = src.data_len();
    let threaded = src.size().is_some();
    std::thread::scope(|scope| -> Result<(), Failure> {
        let mut feed = Feed::start(scope, src, threaded);
        loop {
            if interrupted() {
                let _ = target.sync();
                progress.end_phase();
                return Err(Failure::Interrupted {
                    written: body.written,
                    total,
                });
            }
            let Some(chunk) = feed.next()? else {
                break;
            };
            let len = chunk.buf.as_slice().len() as u64;
            let end = chunk.offset + len;
            if let Some(device_size) = device_size.filter(|&d| end > d) {
                progress.end_phase();
                return Err(Failure::TooLarge {
                    device_size,
                    offset: chunk.offset.max(device_size),
                });
            }
            body.image_end = body.image_end.max(end);
            if chunk.offset < EDGE {
                // Deferred: the head is written last.
                body.keep_head(&chunk);
                progress.inc(len);
                feed.recycle(chunk.buf);
                continue;
            }
            body.hold(chunk);
            body.write_ready(target, opts, progress, &mut feed)?;
        }
        Ok(())
    })?;
    Ok(body)
}

/// 4. The tail (backup GPT), then the head (protective MBR + primary GPT); sync, and
///    verify them. Returns all bytes written.
fn write_edges(
    body: Body,
    tail_records: Vec<Record>,
    target: &Target,
    device_size: Option<u64>,
    opts: &Options,
    progress: &mut Progress,
) -> Result<u64, Failure> {
    let Body {
        mut head,
        image_end,
        pending,
        pending_bytes,
        mut written,
        ..
    } = body;
    let head_len = image_end.min(EDGE) as usize;
    head.set_len(head_len);
    progress.phase("finishing", Some(pending_bytes + head_len as u64));
    let mut last: Vec<(u64, AlignedBuf)> = pending.into_iter().map(|(o, b, _)| (o, b)).collect();
    let mut edges = tail_records;
    if head_len > 0 {
        edges.push(Record {
            offset: 0,
            len: head_len,
            digest: sha256(head.as_slice()),
        });
        last.push((0, head));
    }
    for (o, b) in &last {
        target
            .write_at(*o, b.as_slice())
            .with_context(|| format!("writing at byte offset {o} ({o:#x})"))?;
        let n = b.as_slice().len();
        written += n as u64;
        progress.inc(n as u64);
    }
    if !target.is_block && device_size.is_none() {
        // A streamed image into a file: the wipe may have written past its end.
        target
            .buffered
            .set_len(image_end)
            .context("setting the file length")?;
    }
    target.sync().context("syncing")?;
    corrupt_for_test(target, opts, &edges)?;
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
        verify(&edges, target, progress, &expected, true)?;
    }
    Ok(written)
}

/// The UKITOOL_TEST_CORRUPT_AT hook: flip that byte when one of `records` holds it.
fn corrupt_for_test(target: &Target, opts: &Options, records: &[Record]) -> Result<(), Failure> {
    if let Some(at) = opts.corrupt_at {
        if records
            .iter()
            .any(|r| at >= r.offset && at < r.offset + r.len as u64)
        {
            target.corrupt_byte(at)?;
        }
    }
    Ok(())
}

/// Read every record back (bypassing the page cache) and compare its sha256, reading
/// the next chunk on a helper thread while this one is hashed. On a mismatch, find the
/// first differing byte from the source when it can be re-read.
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
        progress.phase(
            "verifying",
            Some(records.iter().map(|r| r.len as u64).sum()),
        );
    }
    std::thread::scope(|scope| -> Result<(), Failure> {
        let (tx, rx) = sync_channel::<std::io::Result<AlignedBuf>>(1);
        let (back_tx, back_rx) = channel::<AlignedBuf>();
        scope.spawn(move || {
            for r in records {
                let mut buf = back_rx
                    .try_recv()
                    .unwrap_or_else(|_| AlignedBuf::new(CHUNK));
                buf.set_len(r.len);
                let res = target.read_at(r.offset, buf.as_mut_slice()).map(|_| buf);
                let failed = res.is_err();
                if tx.send(res).is_err() || failed {
                    break;
                }
            }
        });
        for r in records {
            if interrupted() && !table_written {
                progress.end_phase();
                return Err(Failure::Interrupted {
                    written: 0,
                    total: None,
                });
            }
            let buf = match rx.recv() {
                Ok(b) => b.with_context(|| format!("reading back at {:#x}", r.offset))?,
                Err(_) => break,
            };
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
            let _ = back_tx.send(buf);
        }
        Ok(())
    })
}
