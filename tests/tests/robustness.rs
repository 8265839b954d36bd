//! Hostile input (issue 9): every file ukitool opens may be crafted to crash it.
//!
//! - `mutation_corpus`: a deterministic, structure-aware mutation test (fixed-seed PRNG,
//!   10,000+ cases) over the real signed UKI, shim, an sbsign'ed stub, a doubly signed
//!   (nested) stub and two disks (ukitool-made FAT32, mtools-made FAT16). Mutations hit
//!   the fields that matter: section count, sizes, offsets, VirtualSize vs raw size, data
//!   directories, WIN_CERTIFICATE lengths, DER lengths inside the PKCS#7, GPT header fields
//!   and CRCs (recomputed half the time, so the parser gets past the CRC check), FAT BPB
//!   fields, FAT chains and directory entries. Every call must return a value or a typed
//!   error: a panic fails the test, a hang trips the watchdog. Outcomes are counted by
//!   `Error::kind()` (or verify verdict) and printed with the slowest case.
//! - Memory: a counting global allocator (per thread) checks that inspect and verify never
//!   allocate more than 2x the input plus [`MEM_SLACK`], whatever the headers claim.
//! - Time: constructed worst cases (65535 sections, deeply nested and very many
//!   signatures, FAT cluster-chain and directory cycles, 1024 GPT entries on one ESP)
//!   finish quickly; the times are printed and only a loose "not hung" bound is
//!   asserted.
//! - CLI: a sample of the mutation cases through `ukitool inspect`/`verify`: exit 0, 1 or
//!   2, and for 2 exactly one `ukitool: error:` line, never a panic or a backtrace.
//!
//! Run `cargo test -p ukitool-tests --test robustness -- --nocapture` to see the tables;
//! docs/robustness.md records them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use ukitool_core::authenticode::hash::DigestAlgorithm;
use ukitool_core::authenticode::verify::{verify, TrustStore};
use ukitool_core::disk::fat::read_volume;
use ukitool_core::disk::gpt;
use ukitool_core::disk::inspect::inspect_disk;
use ukitool_core::inspect::{inspect, InspectOptions};
use ukitool_core::measure::{predict, uki_parts};
use ukitool_core::pe::PeFile;
use ukitool_core::{extract, Error};
use ukitool_tests::{fixture, fixture_bytes, tmpdir, ukitool};

// ---------------------------------------------------------------------------------------
// Counting allocator: per-thread current and peak bytes, so tests running in parallel
// threads do not see each other's allocations.

struct Counting;

thread_local! {
    static CUR: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn note(delta: i64) {
    // try_with: the allocator also runs while thread-locals are being torn down.
    let _ = CUR.try_with(|c| {
        let v = c.get() + delta;
        c.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v)
            }
        });
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// plain thread-local integers.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            note(l.size() as i64);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            note(l.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        note(-(l.size() as i64));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            // Counted as new-then-free: the peak of a moving realloc.
            note(new as i64);
            note(-(l.size() as i64));
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Run `f` and return its result with the peak bytes it had allocated at once (on
/// this thread, above what was live when it started).
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let base = CUR.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get) - base;
    (r, peak.max(0) as u64)
}

/// The constant of the memory bound (report structs, strings, the small metadata
/// sections, one certificate chain): peak <= 2 * input + MEM_SLACK.
const MEM_SLACK: u64 = 1 << 20;

/// The memory bound for an input of `len` bytes.
fn mem_bound(len: usize) -> u64 {
    2 * len as u64 + MEM_SLACK
}

// ---------------------------------------------------------------------------------------
// Deterministic PRNG (splitmix64): no rand crate, same cases on every run.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------
// Little-endian helpers and CRC-32 (GPT), for the test's own view of the inputs.

fn get(d: &[u8], at: usize, w: usize) -> u64 {
    let mut v = 0u64;
    for i in (0..w).rev() {
        v = (v << 8) | u64::from(*d.get(at + i).unwrap_or(&0));
    }
    v
}

fn set(d: &mut [u8], at: usize, w: usize, v: u64) {
    for i in 0..w {
        if let Some(b) = d.get_mut(at + i) {
            *b = (v >> (8 * i)) as u8;
        }
    }
}

fn crc32(data: &[u8]) -> u32 {
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        t[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

// ---------------------------------------------------------------------------------------
// Field catalogs: where the interesting bytes of each input are.

#[derive(Clone, Debug)]
struct Field {
    at: usize,
    width: usize,
    name: String,
}

/// A DER length inside the PKCS#7: `at` is the first length byte, `n` how many there are.
#[derive(Clone, Debug)]
struct DerLen {
    tag_at: usize,
    at: usize,
    n: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Pe,
    Disk,
}

struct Target {
    name: &'static str,
    kind: Kind,
    data: Vec<u8>,
    /// Header fields (PE) or GPT fields (disk).
    fields: Vec<Field>,
    /// DER lengths (PE) .
    der: Vec<DerLen>,
    /// FAT fields (disk): BPB, FAT entries, root directory entries.
    fat: Vec<Field>,
    /// Disk: the ESP's byte range.
    esp: Option<(usize, usize)>,
    /// Bytes worth random flips: headers (PE), first sectors (disk).
    hot: (usize, usize),
}

fn f(v: &mut Vec<Field>, at: usize, width: usize, name: impl Into<String>) {
    v.push(Field {
        at,
        width,
        name: name.into(),
    });
}

fn pe_target(name: &'static str, data: Vec<u8>) -> Target {
    let d = &data;
    let mut v = Vec::new();
    let pe = get(d, 0x3c, 4) as usize;
    f(&mut v, 0x3c, 4, "e_lfanew");
    let c = pe + 4;
    f(&mut v, c + 2, 2, "NumberOfSections");
    f(&mut v, c + 8, 4, "PointerToSymbolTable");
    f(&mut v, c + 12, 4, "NumberOfSymbols");
    f(&mut v, c + 16, 2, "SizeOfOptionalHeader");
    let o = c + 20;
    let plus = get(d, o, 2) == 0x20b;
    f(&mut v, o, 2, "Magic");
    for (off, w, n) in [
        (16, 4, "AddressOfEntryPoint"),
        (32, 4, "SectionAlignment"),
        (36, 4, "FileAlignment"),
        (56, 4, "SizeOfImage"),
        (60, 4, "SizeOfHeaders"),
        (64, 4, "CheckSum"),
    ] {
        f(&mut v, o + off, w, n);
    }
    let dirs = o + if plus { 112 } else { 96 };
    f(&mut v, dirs - 4, 4, "NumberOfRvaAndSizes");
    for i in 0..16 {
        f(
            &mut v,
            dirs + 8 * i,
            4,
            format!("DataDirectory[{i}].VirtualAddress"),
        );
        f(
            &mut v,
            dirs + 8 * i + 4,
            4,
            format!("DataDirectory[{i}].Size"),
        );
    }
    let nsec = get(d, c + 2, 2) as usize;
    let st = o + get(d, c + 16, 2) as usize;
    for i in 0..nsec {
        let s = st + 40 * i;
        for (off, w, n) in [
            (0, 8, "Name"),
            (8, 4, "VirtualSize"),
            (12, 4, "VirtualAddress"),
            (16, 4, "SizeOfRawData"),
            (20, 4, "PointerToRawData"),
            (36, 4, "Characteristics"),
        ] {
            f(&mut v, s + off, w, format!("section[{i}].{n}"));
        }
    }
    // The certificate table: each WIN_CERTIFICATE header, and the DER inside.
    let mut der = Vec::new();
    let (ct, cs) = (get(d, dirs + 32, 4) as usize, get(d, dirs + 36, 4) as usize);
    let mut at = ct;
    let mut k = 0;
    while cs > 0 && at + 8 <= (ct + cs).min(d.len()) {
        let len = get(d, at, 4) as usize;
        f(&mut v, at, 4, format!("WIN_CERTIFICATE[{k}].dwLength"));
        f(&mut v, at + 4, 2, format!("WIN_CERTIFICATE[{k}].wRevision"));
        f(
            &mut v,
            at + 6,
            2,
            format!("WIN_CERTIFICATE[{k}].wCertificateType"),
        );
        der_walk(d, at + 8, (at + len).min(d.len()), 0, &mut der);
        if len < 8 {
            break;
        }
        at += (len + 7) & !7;
        k += 1;
    }
    let hot = (0, (st + 40 * nsec).min(d.len()));
    Target {
        name,
        kind: Kind::Pe,
        data,
        fields: v,
        der,
        fat: Vec::new(),
        esp: None,
        hot,
    }
}

/// Collect every TLV's length field in `d[start..end]`, descending into constructed
/// values and into OCTET STRINGs that hold DER (nested signatures, SpcIndirectData).
fn der_walk(d: &[u8], mut at: usize, end: usize, depth: usize, out: &mut Vec<DerLen>) {
    while at + 2 <= end && depth < 40 {
        let tag = d[at];
        let first = d[at + 1];
        let (n, len) = if first < 0x80 {
            (1, first as usize)
        } else {
            let k = (first & 0x7f) as usize;
            if k == 0 || k > 4 || at + 2 + k > end {
                return;
            }
            (1 + k, get_be(&d[at + 2..at + 2 + k]))
        };
        out.push(DerLen {
            tag_at: at,
            at: at + 1,
            n,
        });
        let body = at + 1 + n;
        let stop = body.saturating_add(len);
        if stop > end {
            return;
        }
        if tag & 0x20 != 0 {
            der_walk(d, body, stop, depth + 1, out);
        }
        at = stop;
    }
}

fn get_be(b: &[u8]) -> usize {
    b.iter().fold(0usize, |v, &x| (v << 8) | x as usize)
}

fn disk_target(name: &'static str, data: Vec<u8>) -> Target {
    let d = &data;
    let mut v = Vec::new();
    let h = 512;
    for (off, w, n) in [
        (0, 8, "Signature"),
        (8, 4, "Revision"),
        (12, 4, "HeaderSize"),
        (16, 4, "HeaderCRC32"),
        (24, 8, "MyLBA"),
        (32, 8, "AlternateLBA"),
        (40, 8, "FirstUsableLBA"),
        (48, 8, "LastUsableLBA"),
        (72, 8, "PartitionEntryLBA"),
        (80, 4, "NumberOfPartitionEntries"),
        (84, 4, "SizeOfPartitionEntry"),
        (88, 4, "PartitionEntryArrayCRC32"),
    ] {
        f(&mut v, h + off, w, format!("gpt.{n}"));
    }
    let alt = get(d, h + 32, 8) as usize * 512;
    for (off, w, n) in [
        (12, 4, "HeaderSize"),
        (72, 8, "PartitionEntryLBA"),
        (80, 4, "NumberOfPartitionEntries"),
    ] {
        f(&mut v, alt + off, w, format!("backup-gpt.{n}"));
    }
    let ents = get(d, h + 72, 8) as usize * 512;
    for i in 0..4 {
        let e = ents + 128 * i;
        f(&mut v, e, 8, format!("entry[{i}].PartitionTypeGUID"));
        f(&mut v, e + 32, 8, format!("entry[{i}].StartingLBA"));
        f(&mut v, e + 40, 8, format!("entry[{i}].EndingLBA"));
        f(&mut v, e + 48, 8, format!("entry[{i}].Attributes"));
    }
    f(&mut v, 0x1c6, 4, "mbr[0].StartingLBA");
    f(&mut v, 0x1ca, 4, "mbr[0].SizeInLBA");
    let start = get(d, ents + 32, 8) as usize * 512;
    let end = (get(d, ents + 40, 8) as usize + 1) * 512;
    let vol = &d[start..end];
    let mut fat = Vec::new();
    for (off, w, n) in [
        (11, 2, "BytsPerSec"),
        (13, 1, "SecPerClus"),
        (14, 2, "RsvdSecCnt"),
        (16, 1, "NumFATs"),
        (17, 2, "RootEntCnt"),
        (19, 2, "TotSec16"),
        (22, 2, "FATSz16"),
        (32, 4, "TotSec32"),
        (36, 4, "FATSz32"),
        (44, 4, "RootClus"),
        (48, 2, "FSInfo"),
        (510, 2, "Signature"),
    ] {
        f(&mut fat, start + off, w, format!("bpb.{n}"));
    }
    // FAT geometry of the original, to aim at FAT entries and directory entries.
    let bps = get(vol, 11, 2) as usize;
    let spc = get(vol, 13, 1) as usize;
    let rsvd = get(vol, 14, 2) as usize;
    let nfats = get(vol, 16, 1) as usize;
    let root_ents = get(vol, 17, 2) as usize;
    let fat16 = get(vol, 22, 2) as usize;
    let fatsz = if fat16 != 0 {
        fat16
    } else {
        get(vol, 36, 4) as usize
    };
    let ew = if fat16 != 0 { 2 } else { 4 };
    let fat_off = start + rsvd * bps;
    for c in 0..64 {
        f(&mut fat, fat_off + c * ew, ew, format!("FAT[{c}]"));
    }
    let root_dir_sectors = (root_ents * 32).div_ceil(bps);
    let data_off = start + (rsvd + nfats * fatsz) * bps + root_dir_sectors * bps;
    let root = if fat16 != 0 {
        start + (rsvd + nfats * fatsz) * bps
    } else {
        data_off + (get(vol, 44, 4) as usize - 2) * spc * bps
    };
    for i in 0..16 {
        let e = root + 32 * i;
        f(&mut fat, e + 11, 1, format!("root[{i}].Attr"));
        f(&mut fat, e + 20, 2, format!("root[{i}].FstClusHI"));
        f(&mut fat, e + 26, 2, format!("root[{i}].FstClusLO"));
        f(&mut fat, e + 28, 4, format!("root[{i}].FileSize"));
    }
    Target {
        name,
        kind: Kind::Disk,
        hot: (0, (start + 4096).min(d.len())),
        data,
        fields: v,
        der: Vec::new(),
        fat,
        esp: Some((start, end)),
    }
}

// ---------------------------------------------------------------------------------------
// Inputs

fn run(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The stub signed by sbsign (snakeoil), and that signed again with a nested SHA-384
/// signature by osslsigncode (other key): small signed PEs, so thousands of cases stay fast.
fn signed_stubs(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let one = dir.join("stub-signed.efi");
    let two = dir.join("stub-nested.efi");
    run(Command::new("sbsign")
        .arg("--key")
        .arg(fixture("snakeoil.key"))
        .arg("--cert")
        .arg(fixture("snakeoil.pem"))
        .arg("--output")
        .arg(&one)
        .arg(fixture("linuxx64.efi.stub")));
    run(Command::new("osslsigncode")
        .args(["sign", "-nest", "-h", "sha384", "-key"])
        .arg(fixture("other.key"))
        .arg("-certs")
        .arg(fixture("other.pem"))
        .arg("-in")
        .arg(&one)
        .arg("-out")
        .arg(&two));
    (fs::read(one).unwrap(), fs::read(two).unwrap())
}

/// A 5 MiB GPT disk whose ESP is a 3 MiB FAT16 volume made by mkfs.vfat and mtools.
fn mtools_disk(dir: &Path) -> Vec<u8> {
    let esp = dir.join("esp.fat");
    let disk = dir.join("mtools.img");
    let _ = fs::remove_file(&esp);
    run(Command::new("mkfs.vfat")
        .args(["-C", "-F", "16", "-s", "1", "-n", "MUT", "-i", "0badcafe"])
        .arg(&esp)
        .arg("3072"));
    let i = |args: &[&str]| {
        let mut c = Command::new(args[0]);
        c.arg("-i").arg(&esp).args(&args[1..]);
        run(&mut c);
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
    run(Command::new("truncate").args(["-s", "5M"]).arg(&disk));
    run(Command::new("sgdisk")
        .args([
            "--new=1:2048:+3M",
            "--typecode=1:ef00",
            "--change-name=1:ESP",
        ])
        .arg(&disk));
    run(Command::new("dd")
        .arg(format!("if={}", esp.display()))
        .arg(format!("of={}", disk.display()))
        .args(["bs=1M", "seek=1", "conv=notrunc", "status=none"]));
    fs::read(disk).unwrap()
}

/// A disk made by `ukitool image` (FAT32 ESP holding the signed stub as BOOTX64.EFI).
fn ukitool_disk(dir: &Path, uki: &Path) -> Vec<u8> {
    let out = dir.join("ukitool.img");
    run(ukitool()
        .args(["image", "--esp-size", "34M", "--timestamp", "1", "--uki"])
        .arg(uki)
        .arg("-o")
        .arg(&out));
    fs::read(out).unwrap()
}

fn snakeoil_trust() -> TrustStore {
    let mut t = TrustStore::default();
    t.add_cert_file(&fixture_bytes("snakeoil.pem")).unwrap();
    t
}

// ---------------------------------------------------------------------------------------
// Mutation

/// An interesting value for a field of `w` bytes that held `orig`.
fn value(rng: &mut Rng, orig: u64, w: usize, file_len: u64) -> u64 {
    let max = if w >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * w)) - 1
    };
    let v = match rng.below(13) {
        0 => 0,
        1 => 1,
        2 => max,
        3 => max / 2 + 1,
        4 => orig.wrapping_add(1),
        5 => orig.wrapping_sub(1),
        6 => orig.wrapping_mul(2),
        7 => file_len,
        8 => file_len.wrapping_sub(rng.below(64)),
        9 => file_len + rng.below(0x10000),
        10 => orig.wrapping_add(rng.below(0x2000)).wrapping_sub(0x1000),
        11 => rng.next(),
        _ => orig ^ (1 << rng.below(8 * w as u64)),
    };
    v & max
}

/// One case: the mutations applied to `t.data` in place (undone by [`Case::undo`]) and the
/// length the input is cut to.
struct Case {
    undo: Vec<(usize, u8)>,
    len: usize,
    desc: String,
}

impl Case {
    fn write(&mut self, d: &mut [u8], at: usize, w: usize, v: u64) {
        for i in 0..w {
            if let Some(b) = d.get(at + i) {
                self.undo.push((at + i, *b));
            }
        }
        set(d, at, w, v);
    }
    fn restore(self, d: &mut [u8]) {
        for (at, b) in self.undo.into_iter().rev() {
            d[at] = b;
        }
    }
}

fn mutate(rng: &mut Rng, t: &mut Target) -> Case {
    let file_len = t.data.len() as u64;
    let mut c = Case {
        undo: Vec::new(),
        len: t.data.len(),
        desc: String::new(),
    };
    let n = 1 + rng.below(3) * rng.below(2); // mostly one, sometimes 2 or 3
    for _ in 0..n {
        let r = rng.below(100);
        let d = &mut t.data;
        let mut field = |c: &mut Case, rng: &mut Rng, fl: &Field| {
            let orig = get(d, fl.at, fl.width);
            let v = value(rng, orig, fl.width, file_len);
            c.desc += &format!("{}={v:#x} ", fl.name);
            c.write(d, fl.at, fl.width, v);
        };
        match t.kind {
            Kind::Pe if r < 50 || (t.der.is_empty() && r < 85) => {
                let fl = rng.pick(&t.fields).clone();
                field(&mut c, rng, &fl);
            }
            Kind::Pe if r < 80 => {
                let l = rng.pick(&t.der).clone();
                let orig = get_be(&d[l.at + 1..l.at + l.n]);
                if l.n == 1 || rng.chance(1, 4) {
                    // The first length byte: short forms, indefinite (0x80), long forms
                    // that claim more bytes than follow.
                    let b = *rng.pick(&[0u8, 1, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x85, 0x89, 0xff]);
                    let b = if rng.chance(1, 3) {
                        rng.below(256) as u8
                    } else {
                        b
                    };
                    c.desc += &format!("der@{:#x}.len0={b:#x} ", l.at);
                    c.write(d, l.at, 1, u64::from(b));
                } else {
                    let w = l.n - 1;
                    let v = value(rng, orig as u64, w, file_len);
                    c.desc += &format!("der@{:#x}.len={v:#x} ", l.at);
                    for i in 0..w {
                        c.write(d, l.at + 1 + i, 1, v >> (8 * (w - 1 - i)));
                    }
                }
            }
            Kind::Pe if r < 85 => {
                let l = rng.pick(&t.der).clone();
                let tag = rng.below(256);
                c.desc += &format!("der@{:#x}.tag={tag:#x} ", l.tag_at);
                c.write(d, l.tag_at, 1, tag);
            }
            Kind::Disk if r < 40 => {
                let fl = rng.pick(&t.fields).clone();
                field(&mut c, rng, &fl);
            }
            Kind::Disk if r < 85 => {
                let fl = rng.pick(&t.fat).clone();
                if fl.name.starts_with("FAT[") && rng.chance(1, 2) {
                    // Chains: loops, back-links, bad/free/end markers.
                    let me = (fl.name[4..fl.name.len() - 1]).parse::<u64>().unwrap();
                    let any = rng.below(64);
                    let v =
                        *rng.pick(&[me, 2, me.saturating_sub(1), 0, 1, 0x0fff_fff7, 0xffff, any]);
                    c.desc += &format!("{}={v:#x} ", fl.name);
                    c.write(d, fl.at, fl.width, v);
                } else {
                    field(&mut c, rng, &fl);
                }
            }
            _ if r < 92 => {
                let cut = rng.below(t.data.len() as u64) as usize;
                let cut = if rng.chance(1, 2) {
                    cut % (t.hot.1 + 512)
                } else {
                    cut
                };
                c.len = c.len.min(cut);
                c.desc += &format!("truncate={cut:#x} ");
            }
            _ => {
                let at = t.hot.0 + rng.below((t.hot.1 - t.hot.0) as u64) as usize;
                let b = rng.below(256);
                c.desc += &format!("byte@{at:#x}={b:#x} ");
                c.write(d, at, 1, b);
            }
        }
    }
    if t.kind == Kind::Disk && rng.chance(1, 2) {
        // Fix the CRCs, so the reader goes past the header check with the mutated values.
        let d = &mut t.data;
        let hs = (get(d, 512 + 12, 4) as usize).clamp(92, 512);
        let ents = get(d, 512 + 72, 8) as usize;
        let count = get(d, 512 + 80, 4) as usize;
        let esz = get(d, 512 + 84, 4) as usize;
        let arr = ents
            .checked_mul(512)
            .and_then(|s| Some((s, s.checked_add(count.checked_mul(esz)?)?)))
            .filter(|&(s, e)| s <= e && e <= d.len());
        if let Some((s, e)) = arr {
            let crc = crc32(&d[s..e]);
            c.write(d, 512 + 88, 4, u64::from(crc));
        }
        c.write(d, 512 + 16, 4, 0);
        let crc = crc32(&d[512..512 + hs]);
        c.write(d, 512 + 16, 4, u64::from(crc));
        c.desc += "(crc fixed)";
    }
    c
}

// ---------------------------------------------------------------------------------------
// Running one case

#[derive(Default)]
struct Stats {
    /// (operation, outcome) -> count
    outcomes: BTreeMap<(String, String), u64>,
    panics: Vec<String>,
    mem_violations: Vec<String>,
    /// Per operation: the largest peak allocation / input size, and its case.
    max_ratio: BTreeMap<String, (f64, String)>,
    slowest: (Duration, String),
    cases: u64,
}

fn kind_of<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.kind().into(),
    }
}

impl Stats {
    fn record(&mut self, op: &str, outcome: String) {
        *self.outcomes.entry((op.into(), outcome)).or_default() += 1;
    }

    /// Run `op` under catch_unwind (and, if `mem`, the allocation bound).
    fn op(
        &mut self,
        desc: &str,
        input_len: usize,
        op: &str,
        mem: bool,
        f: impl FnOnce() -> String,
    ) {
        let (r, peak) = peak_of(|| catch_unwind(AssertUnwindSafe(f)));
        match r {
            Ok(outcome) => self.record(op, outcome),
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                self.record(op, "PANIC".into());
                self.panics.push(format!("{op} on {desc}: {msg}"));
                return;
            }
        }
        if mem {
            let ratio = peak as f64 / (input_len.max(1) as f64);
            if peak > mem_bound(input_len) {
                self.mem_violations
                    .push(format!("{op} on {desc}: peak {peak} for {input_len} bytes"));
            }
            let best = self.max_ratio.entry(op.into()).or_default();
            if ratio > best.0 && input_len > 4096 {
                *best = (ratio, format!("{desc}: {peak} bytes for {input_len}"));
            }
        }
    }

    fn table(&self) -> String {
        let mut s = String::new();
        let mut last = "";
        for ((op, outcome), n) in &self.outcomes {
            if op != last {
                s += &format!("\n  {op:<16}");
                last = op;
            }
            s += &format!(" {outcome}={n}");
        }
        s
    }
}

fn run_pe(st: &mut Stats, desc: &str, d: &[u8], trust: &TrustStore, heavy: bool) {
    let n = d.len();
    st.op(desc, n, "inspect", true, || {
        let opts = if heavy {
            InspectOptions::NO_HASH
        } else {
            InspectOptions::default()
        };
        kind_of(&inspect(d, &opts))
    });
    let pe = match PeFile::parse(d) {
        Ok(pe) => pe,
        Err(e) => {
            st.record("pe-parse", e.kind().into());
            return;
        }
    };
    st.record("pe-parse", "ok".into());
    if !heavy {
        st.op(desc, n, "verify", true, || {
            verify(&pe, &TrustStore::default()).verdict.name().into()
        });
    }
    st.op(desc, n, "verify+anchor", true, || {
        verify(&pe, trust).verdict.name().into()
    });
    st.op(desc, n, "extract", false, || {
        kind_of(&extract::all(d, None))
    });
    st.op(desc, n, "measure", false, || {
        kind_of(&uki_parts(&pe, None).and_then(|p| predict(&p, &[DigestAlgorithm::Sha256], &[])))
    });
}

fn run_disk(st: &mut Stats, desc: &str, d: &[u8], esp: (usize, usize)) {
    let n = d.len();
    st.op(desc, n, "inspect_disk", true, || kind_of(&inspect_disk(d)));
    st.op(desc, n, "gpt", true, || kind_of(&gpt::read(d)));
    let vol = d.get(esp.0..esp.1.min(n)).unwrap_or_default();
    st.op(desc, vol.len(), "fat", true, || {
        let v = read_volume(vol);
        if let Ok(v) = &v {
            for e in v.entries.iter().filter(|e| !e.is_dir) {
                let _ = v.file_bytes(vol, e);
            }
        }
        kind_of(&v)
    });
}

/// Run `work` on a worker thread; fail if it makes no progress for `limit` (a hang).
/// `work` reports progress through the sender and the current case through the mutex.
fn with_watchdog<T: Send + 'static>(
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

fn targets() -> Vec<(Target, u64, bool)> {
    let dir = tmpdir();
    let (signed, nested) = signed_stubs(&dir);
    let small_disk = mtools_disk(&dir);
    let img = ukitool_disk(&dir, &dir.join("stub-signed.efi"));
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

// ---------------------------------------------------------------------------------------
// Constructed worst cases: time and memory bounds.

/// A generous "not hung" bound for one constructed case (the times are printed; a
/// healthy run takes well under a second each).
const NOT_HUNG: Duration = Duration::from_secs(60);

struct Sec {
    name: &'static [u8],
    vsize: u32,
    raw: u32,
    ptr: u32,
    ch: u32,
}

/// A PE32+ EFI application made of a section table and `tail` bytes of data, with each
/// section's VirtualAddress laid out 4 KiB apart.
fn mini_pe(secs: &[Sec], tail: usize, cert: Option<(u32, u32)>) -> Vec<u8> {
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
struct Timed {
    name: String,
    len: usize,
    took: Duration,
    /// Peak allocation of inspect (or inspect_disk) and of verify (or the FAT walk).
    peak: (u64, u64),
    /// Peak allocation of extract::all and of measure (PE only; printed, not asserted).
    side: Option<(u64, u64)>,
}

fn time_pe(name: &str, d: &[u8], trust: &TrustStore) -> Timed {
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

fn time_disk(name: &str, d: &[u8], esp: (usize, usize)) -> Timed {
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

fn report(title: &str, rows: &[Timed]) {
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
fn assert_mem_bound(rows: &[Timed], verify: bool) {
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

/// `names`: 0 cycles through UKI names (a .profile every 8th), 1 all .cmdline, 2 half
/// .cmdline in the base, a .profile, half .osrel in profile @0 (no name in common),
/// 3 all .profile.
fn many_sections(n: usize, overlapping: bool, names: u8) -> Vec<u8> {
    const NAMES: [&[u8]; 8] = [
        b".linux",
        b".initrd",
        b".cmdline",
        b".osrel",
        b".sbat",
        b".text",
        b".profile",
        b".uname",
    ];
    let data_at = 0x148 + 40 * n;
    let secs: Vec<Sec> = (0..n)
        .map(|i| Sec {
            name: match names {
                0 => NAMES[i % NAMES.len()],
                2 if i == n / 2 => b".profile",
                2 if i > n / 2 => b".osrel",
                3 => b".profile",
                _ => b".cmdline",
            },
            vsize: if overlapping { 1 << 20 } else { 16 },
            raw: if overlapping { 1 << 20 } else { 16 },
            ptr: (data_at + if overlapping { 0 } else { 16 * i }) as u32,
            ch: 0x4000_0040,
        })
        .collect();
    let tail = if overlapping { 1 << 20 } else { 16 * n };
    let mut d = mini_pe(&secs, tail, None);
    for (i, b) in d[data_at..].iter_mut().enumerate() {
        *b = b"ID=x\nfoo=bar \n"[i % 14];
    }
    d
}

#[test]
fn many_sections_stay_linear() {
    let trust = snakeoil_trust();
    let rows = with_watchdog(NOT_HUNG, move |tx, cur| {
        let mut rows = Vec::new();
        for (n, overlapping, same) in [
            (6553, false, 0),
            (65535, false, 0),
            (6553, true, 0),
            (65535, true, 0),
            (6553, false, 1),
            (65535, false, 1),
            (6553, false, 2),
            (65535, false, 2),
            (6553, true, 3),
            (65535, true, 3),
        ] {
            let name = format!(
                "{n} sections{}{}",
                if overlapping {
                    ", all on one 1 MiB payload"
                } else {
                    ""
                },
                [
                    "",
                    ", all named .cmdline",
                    ", .cmdline in the base, .osrel in profile @0",
                    ", all named .profile"
                ][same as usize]
            );
            *cur.lock().unwrap() = name.clone();
            rows.push(time_pe(&name, &many_sections(n, overlapping, same), &trust));
            let _ = tx.send(());
        }
        rows
    });
    report(
        "many sections (inspect + verify + extract + measure)",
        &rows,
    );
    assert_mem_bound(&rows, true);
    for pair in rows.chunks(2) {
        println!(
            "  10x the sections took {:.1}x the time",
            pair[1].took.as_secs_f64() / pair[0].took.as_secs_f64().max(1e-6)
        );
    }
}

#[test]
fn claims_do_not_allocate() {
    // 1 KiB files whose headers claim 4 GiB: sections, the certificate table, the
    // symbol table, the data directories.
    let trust = snakeoil_trust();
    let big = u32::MAX;
    let mut cases = Vec::new();
    for name in [
        &b".linux"[..],
        b".cmdline",
        b".osrel",
        b".initrd",
        b".profile",
        b".pcrsig",
        b".sbat",
    ] {
        let secs = [Sec {
            name,
            vsize: big,
            raw: big,
            ptr: 0x200,
            ch: 0x4000_0040,
        }];
        cases.push((
            format!("{} claiming 4 GiB", String::from_utf8_lossy(name)),
            mini_pe(&secs, 1024 - 0x170, None),
        ));
    }
    let secs = [Sec {
        name: b".text",
        vsize: 16,
        raw: 16,
        ptr: 0x200,
        ch: 0x6000_0020,
    }];
    cases.push((
        "certificate table claiming 4 GiB".into(),
        mini_pe(&secs, 1024 - 0x170, Some((0x300, big))),
    ));
    let mut d = mini_pe(&secs, 1024 - 0x170, Some((0x300, 0x100)));
    set(&mut d, 0x300, 4, u64::from(big)); // WIN_CERTIFICATE.dwLength
    set(&mut d, 0x304, 4, 0x0002_0200);
    d[0x308..0x30e].copy_from_slice(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xf0]);
    cases.push(("WIN_CERTIFICATE and DER claiming 4 GiB".into(), d));
    let mut d = mini_pe(&secs, 1024 - 0x170, None);
    set(&mut d, 0x4c, 4, 0x200); // PointerToSymbolTable
    set(&mut d, 0x50, 4, big.into()); // NumberOfSymbols
    set(&mut d, 0x58 + 108, 4, big.into()); // NumberOfRvaAndSizes
    cases.push((
        "symbol table and data directories claiming 4G entries".into(),
        d,
    ));
    let rows: Vec<Timed> = cases
        .iter()
        .map(|(name, d)| time_pe(name, d, &trust))
        .collect();
    report("headers claiming 4 GiB in a 1 KiB file", &rows);
    assert_mem_bound(&rows, true);
}

/// A PE whose sections all hold `payload` (one copy in the file).
fn sections_on(names: &[&'static [u8]], payload: &[u8]) -> Vec<u8> {
    let at = (0x148 + 40 * names.len()) as u32;
    let secs: Vec<Sec> = names
        .iter()
        .map(|&name| Sec {
            name,
            vsize: payload.len() as u32,
            raw: payload.len() as u32,
            ptr: at,
            ch: 0x4000_0040,
        })
        .collect();
    let mut d = mini_pe(&secs, payload.len(), None);
    d[at as usize..].copy_from_slice(payload);
    d
}

#[test]
fn decoded_metadata_stays_linear() {
    // Metadata sections of about 1 MiB shaped to make decoders allocate per byte.
    const MIB: usize = 1 << 20;
    let trust = snakeoil_trust();
    let lines = |f: &dyn Fn(usize) -> String| {
        let mut t = String::new();
        for i in 0.. {
            if t.len() >= MIB {
                break;
            }
            t += &f(i);
        }
        t.into_bytes()
    };
    let json = |head: &str, f: &dyn Fn(usize) -> String, tail: &str| {
        let mut t = head.to_string();
        let mut i = 0;
        while t.len() < MIB {
            if i > 0 {
                t.push(',');
            }
            t += &f(i);
            i += 1;
        }
        t += tail;
        t.into_bytes()
    };
    // .hwids: 4096 entries all naming one string that fills the rest of the section.
    let mut hwids = vec![0u8; 28 * 4097];
    let strings = hwids.len() as u32;
    for e in hwids.chunks_exact_mut(28).take(4096) {
        e[0..4].copy_from_slice(&(1u32 << 28).to_le_bytes());
        e[20..24].copy_from_slice(&strings.to_le_bytes());
        e[24..28].copy_from_slice(&strings.to_le_bytes());
    }
    hwids.resize(MIB - 1, b'x');
    hwids.push(0);
    // .efifw: one header that 65535 sections share.
    let mut efifw = Vec::new();
    for v in [0xfeed_deadu32, 16, 4, 0] {
        efifw.extend_from_slice(&v.to_le_bytes());
    }
    efifw.extend_from_slice(b"fw\0\0");
    // os-release and .profile of distinct keys: the same payload for both.
    let keys = lines(&|i| format!("K{i}=\n"));
    let cases: Vec<(String, Vec<u8>)> = vec![
        (
            ".sbat: 1 MiB of 2-byte lines".into(),
            sections_on(
                &[b".sbat"],
                &lines(&|_| {
                    "a
"
                    .into()
                }),
            ),
        ),
        (
            ".osrel: 1 MiB of distinct keys".into(),
            sections_on(&[b".osrel"], &keys),
        ),
        (
            ".profile: 1 MiB of distinct keys".into(),
            sections_on(&[b".profile"], &keys),
        ),
        (
            ".cmdline: 1 MiB of invalid UTF-8".into(),
            sections_on(&[b".cmdline"], &vec![0xff; MIB]),
        ),
        (
            ".hwids: 4096 entries naming one 900 KiB string".into(),
            sections_on(&[b".hwids"], &hwids),
        ),
        (
            ".pcrsig: 1 MiB list of entries".into(),
            sections_on(&[b".pcrsig"], &json("{\"sha256\":[", &|_| "0".into(), "]}")),
        ),
        (
            ".pcrsig: 1 MiB of distinct PCRs".into(),
            sections_on(
                &[b".pcrsig"],
                &json("{\"sha256\":[{\"pcrs\":[", &|i| i.to_string(), "]}]}"),
            ),
        ),
        (
            ".pcrsig: 1 MiB of banks".into(),
            sections_on(&[b".pcrsig"], &json("{", &|i| format!("\"{i}\":0"), "}")),
        ),
        (
            ".pcrsig: 1 MiB of distinct key fingerprints".into(),
            sections_on(
                &[b".pcrsig"],
                &json("{\"sha256\":[", &|i| format!("{{\"pkfp\":\"{i}\"}}"), "]}"),
            ),
        ),
        (
            "65535 .efifw sections on one header".into(),
            sections_on(&vec![&b".efifw"[..]; 65535], &efifw),
        ),
        (
            "65535 empty .profile sections (nothing but the table)".into(),
            sections_on(&vec![&b".profile"[..]; 65535], &[]),
        ),
        (
            "65535 .profile sections on one 1 MiB of keys".into(),
            sections_on(
                &vec![&b".profile"[..]; 65535],
                &lines(&|i| format!("K{i}=\n")),
            ),
        ),
    ];
    let rows = with_watchdog(NOT_HUNG, move |tx, cur| {
        let mut rows = Vec::new();
        for (name, d) in &cases {
            *cur.lock().unwrap() = name.clone();
            rows.push(time_pe(name, d, &trust));
            let _ = tx.send(());
        }
        rows
    });
    report(
        "decoded metadata (inspect + verify + extract + measure)",
        &rows,
    );
    assert_mem_bound(&rows, true);
}

/// DER TLV with a definite length.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = body.len();
    if n < 0x80 {
        v.push(n as u8);
    } else {
        let b = n.to_be_bytes();
        let skip = b.iter().take_while(|&&x| x == 0).count();
        v.push(0x80 | (b.len() - skip) as u8);
        v.extend_from_slice(&b[skip..]);
    }
    v.extend_from_slice(body);
    v
}

/// The children of the TLV at the start of `d`: (tag, whole TLV bytes).
fn children(d: &[u8]) -> Vec<&[u8]> {
    let (hdr, len) = tlv_header(d);
    let mut body = &d[hdr..hdr + len];
    let mut out = Vec::new();
    while !body.is_empty() {
        let (h, l) = tlv_header(body);
        out.push(&body[..h + l]);
        body = &body[h + l..];
    }
    out
}

fn tlv_header(d: &[u8]) -> (usize, usize) {
    if d[1] < 0x80 {
        (2, d[1] as usize)
    } else {
        let k = (d[1] & 0x7f) as usize;
        (2 + k, get_be(&d[2..2 + k]))
    }
}

/// SPC_NESTED_SIGNATURE_OBJID 1.3.6.1.4.1.311.2.4.1.
const NESTED_OID: [u8; 12] = [
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x04, 0x01,
];

/// `ci` (a PKCS#7 ContentInfo) with `nested` ContentInfos added to its signer's
/// unauthenticated attributes as one nested-signature attribute.
fn with_nested(ci: &[u8], nested: &[Vec<u8>]) -> Vec<u8> {
    let top = children(ci); // OID, [0]
    let sd = children(top[1])[0];
    let parts = children(sd); // version, digestAlgorithms, contentInfo, [0] certs, signerInfos
    let infos = parts[parts.len() - 1];
    let signer = children(infos)[0];
    let mut sbody: Vec<u8> = children(signer).concat();
    let mut set = Vec::new();
    for n in nested {
        set.extend_from_slice(n);
    }
    let attr = tlv(0x30, &[&NESTED_OID[..], &tlv(0x31, &set)].concat());
    sbody.extend(tlv(0xa1, &attr));
    let infos = tlv(0x31, &tlv(0x30, &sbody));
    let mut sdbody: Vec<u8> = parts[..parts.len() - 1].concat();
    sdbody.extend(infos);
    tlv(0x30, &[top[0], &tlv(0xa0, &tlv(0x30, &sdbody))].concat())
}

/// `ci` with `n` look-alikes of its first certificate added (the last byte of each,
/// in the signature value, changed).
fn with_certs(ci: &[u8], n: usize) -> Vec<u8> {
    let top = children(ci);
    let sd = children(top[1])[0];
    let mut parts: Vec<Vec<u8>> = children(sd).iter().map(|p| p.to_vec()).collect();
    let certs = parts
        .iter()
        .position(|p| p[0] == 0xa0)
        .expect("a certificates field");
    let first = children(&parts[certs])[0].to_vec();
    let mut body = children(&parts[certs]).concat();
    for i in 0..n {
        let mut c = first.clone();
        let last = c.len() - 1;
        c[last] ^= (i as u8) | 1;
        c[last - 1] ^= (i >> 8) as u8;
        body.extend(c);
    }
    parts[certs] = tlv(0xa0, &body);
    tlv(
        0x30,
        &[top[0], &tlv(0xa0, &tlv(0x30, &parts.concat()))].concat(),
    )
}

/// `signed` (an sbsign'ed PE) with its certificate table replaced by `entries`
/// (WIN_CERTIFICATE bodies: each wrapped, 8-byte aligned).
fn with_cert_table(signed: &[u8], entries: &[Vec<u8>]) -> Vec<u8> {
    let pe = get(signed, 0x3c, 4) as usize;
    let dir = pe + 24 + 112 + 32;
    let at = get(signed, dir, 4) as usize;
    let mut d = signed[..at].to_vec();
    for e in entries {
        let len = 8 + e.len();
        let mut w = Vec::with_capacity(len + 8);
        w.extend_from_slice(&(len as u32).to_le_bytes());
        w.extend_from_slice(&0x0002_0200u32.to_le_bytes());
        w.extend_from_slice(e);
        w.resize(len.next_multiple_of(8), 0);
        d.extend(w);
    }
    let size = (d.len() - at) as u64;
    set(&mut d, dir + 4, 4, size);
    d
}

#[test]
fn nested_and_many_signatures_stay_linear() {
    let dir = tmpdir();
    let (signed, _) = signed_stubs(&dir);
    let trust = snakeoil_trust();
    let pe = get(&signed, 0x3c, 4) as usize;
    let at = get(&signed, pe + 24 + 112 + 32, 4) as usize;
    let len = get(&signed, at, 4) as usize;
    let (h, l) = tlv_header(&signed[at + 8..]);
    let base = signed[at + 8..at + 8 + h + l].to_vec();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    // Each level nests the previous: depth N is N valid signatures of the same image.
    for depth in [16usize, 256] {
        let mut ci = base.clone();
        for _ in 0..depth {
            ci = with_nested(&base, &[ci]);
        }
        cases.push((
            format!("signatures nested {depth} deep"),
            with_cert_table(&signed, &[ci]),
        ));
    }
    for wide in [100usize, 1000] {
        let ci = with_nested(&base, &vec![base.clone(); wide]);
        cases.push((
            format!("{wide} nested signatures in one attribute"),
            with_cert_table(&signed, &[ci]),
        ));
    }
    for n in [1000usize, 10000] {
        cases.push((
            format!("{n} WIN_CERTIFICATE entries"),
            with_cert_table(&signed, &vec![base.clone(); n]),
        ));
    }
    // 2000 copies of the signer's certificate, each with a different last signature
    // byte: same names and key, so every chain step tries each (an RSA check each).
    for n in [200usize, 2000] {
        cases.push((
            format!("{n} look-alike certificates in one signature"),
            with_cert_table(&signed, &[with_certs(&base, n)]),
        ));
    }
    // 100,000 nested SEQUENCE headers: a recursive DER reader would blow the stack.
    let mut deep = Vec::new();
    for i in 0..100_000u32 {
        let rest = 6 * (100_000 - i - 1);
        deep.extend_from_slice(&[0x30, 0x84]);
        deep.extend_from_slice(&rest.to_be_bytes());
    }
    cases.push((
        "100000 nested DER SEQUENCEs".into(),
        with_cert_table(&signed, &[deep]),
    ));
    assert!(len > 8);
    let rows = with_watchdog(NOT_HUNG, move |tx, cur| {
        let mut rows = Vec::new();
        for (name, d) in &cases {
            *cur.lock().unwrap() = name.clone();
            rows.push(time_pe(name, d, &trust));
            let _ = tx.send(());
        }
        rows
    });
    report(
        "nested and repeated signatures (inspect + verify + extract + measure)",
        &rows,
    );
}

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
    let (signed, _) = signed_stubs(&dir);
    let _ = signed;
    let img = ukitool_disk(&dir, &dir.join("stub-signed.efi"));
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
    let rows = with_watchdog(NOT_HUNG, move |tx, cur| {
        let mut rows = Vec::new();
        for (name, d) in &cases {
            *cur.lock().unwrap() = name.clone();
            rows.push(time_disk(name, d, (g.vol, esp_end)));
            let _ = tx.send(());
        }
        rows
    });
    report(
        "FAT cycles (inspect_disk / FAT walk + every file's bytes)",
        &rows,
    );
    for r in &rows {
        assert!(
            r.peak.0.max(r.peak.1) <= 2 * r.len as u64 + MEM_SLACK,
            "{}: peak allocation {:?} for {} bytes",
            r.name,
            r.peak,
            r.len
        );
    }
}

/// A sample of the mutation cases through the CLI: never a panic or a backtrace, exit
/// 0/1/2, and exit 2 is exactly one `ukitool: error:` line.
#[test]
fn cli_on_mutated_inputs() {
    let dir = tmpdir();
    let (signed, nested) = signed_stubs(&dir);
    let mut inputs = [
        pe_target("stub-sbsign", signed),
        pe_target("stub-nested", nested),
        disk_target("disk-mtools-fat16", mtools_disk(&dir)),
    ];
    let mut rng = Rng(0x0063_6c69); // "cli"
    let path = dir.join("case.bin");
    let mut codes: BTreeMap<(String, i32), u32> = BTreeMap::new();
    let mut bad = Vec::new();
    for i in 0..240 {
        let t = &mut inputs[i % 3];
        let c = mutate(&mut rng, t);
        fs::write(&path, &t.data[..c.len]).unwrap();
        let cmds: &[&[&str]] = match t.kind {
            Kind::Pe => &[&["inspect"], &["verify"], &["extract", "--all"]],
            Kind::Disk => &[&["inspect"]],
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

/// `disk` with `n` GPT entries that all point at partition 1 (the CRCs fixed): a
/// reader that walks each partition's volume does the same walk `n` times.
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
    run(Command::new("mkfs.vfat")
        .args(["-C", "-F", "16", "-s", "1", "-n", "MANY"])
        .arg(&esp)
        .arg("3072"));
    let mut names = vec!["::/many".to_string()];
    names.extend((0..1000).map(|i| format!("::/many/d{i}")));
    run(Command::new("mmd").arg("-i").arg(&esp).args(&names));
    let vol = fs::read(&esp).unwrap();
    disk[1 << 20..(1 << 20) + vol.len()].copy_from_slice(&vol);
    let esp_range = (1 << 20, (1 << 20) + vol.len());
    let rows = with_watchdog(NOT_HUNG, move |tx, cur| {
        let mut rows = Vec::new();
        for n in [1usize, 128, 1024] {
            let name = format!("{n} GPT entries on one 1000-directory FAT16 ESP");
            *cur.lock().unwrap() = name.clone();
            rows.push(time_disk(&name, &duplicate_partitions(&disk, n), esp_range));
            let _ = tx.send(());
        }
        rows
    });
    report("duplicate partitions (inspect_disk / FAT walk)", &rows);
    for r in &rows {
        assert!(
            r.peak.0.max(r.peak.1) <= 2 * r.len as u64 + MEM_SLACK,
            "{}: peak allocation {:?} for {} bytes",
            r.name,
            r.peak,
            r.len
        );
    }
}
