//! The structure-aware mutation engine of the robustness tests: where the interesting
//! bytes of a PE or a disk are ([`Target`]), what to write there ([`mutate`]), and every
//! core entry point run on the result under `catch_unwind` and the allocation bound
//! ([`Stats`], [`run_pe`], [`run_disk`]).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use ukitool_core::authenticode::hash::DigestAlgorithm;
use ukitool_core::authenticode::verify::{verify, TrustStore};
use ukitool_core::disk::fat::read_volume;
use ukitool_core::disk::gpt;
use ukitool_core::disk::inspect::inspect_disk;
use ukitool_core::inspect::{inspect, InspectOptions};
use ukitool_core::measure::{predict, uki_parts};
use ukitool_core::pe::PeFile;
use ukitool_core::{extract, Error};

use super::alloc::{mem_bound, peak_of};
use super::bytes::{crc32, get, get_be, set};

/// Deterministic PRNG (splitmix64): no rand crate, same cases on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------
// Field catalogs: where the interesting bytes of each input are.

#[derive(Clone, Debug)]
pub struct Field {
    pub at: usize,
    pub width: usize,
    pub name: String,
}

/// A DER length inside the PKCS#7: `at` is the first length byte, `n` how many there are.
#[derive(Clone, Debug)]
pub struct DerLen {
    pub tag_at: usize,
    pub at: usize,
    pub n: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Pe,
    Disk,
    /// A GPT disk with an XFS partition (`hostile::xfs`).
    Xfs,
}

pub struct Target {
    pub name: &'static str,
    pub kind: Kind,
    pub data: Vec<u8>,
    /// Header fields (PE) or GPT fields (disk).
    pub fields: Vec<Field>,
    /// DER lengths (PE) .
    pub der: Vec<DerLen>,
    /// FAT fields (disk): BPB, FAT entries, root directory entries.
    pub fat: Vec<Field>,
    /// Disk: the ESP's byte range; XFS: the volume's.
    pub esp: Option<(usize, usize)>,
    /// Bytes worth random flips: headers (PE), first sectors (disk).
    pub hot: (usize, usize),
    /// XFS: the checksummed metadata blocks, to fix CRCs after a change.
    pub crc_blocks: Vec<super::xfs::CrcBlock>,
}

pub fn f(v: &mut Vec<Field>, at: usize, width: usize, name: impl Into<String>) {
    v.push(Field {
        at,
        width,
        name: name.into(),
    });
}

pub fn pe_target(name: &'static str, data: Vec<u8>) -> Target {
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
        crc_blocks: Vec::new(),
    }
}

/// Collect every TLV's length field in `d[start..end]`, descending into constructed
/// values and into OCTET STRINGs that hold DER (nested signatures, SpcIndirectData).
pub fn der_walk(d: &[u8], mut at: usize, end: usize, depth: usize, out: &mut Vec<DerLen>) {
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

pub fn disk_target(name: &'static str, data: Vec<u8>) -> Target {
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
        crc_blocks: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Mutation

/// An interesting value for a field of `w` bytes that held `orig`.
pub fn value(rng: &mut Rng, orig: u64, w: usize, file_len: u64) -> u64 {
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
        11 => rng.next_u64(),
        _ => orig ^ (1 << rng.below(8 * w as u64)),
    };
    v & max
}

/// One case: the mutations applied to `t.data` in place (undone by [`Case::undo`]) and the
/// length the input is cut to.
pub struct Case {
    pub undo: Vec<(usize, u8)>,
    pub len: usize,
    pub desc: String,
}

impl Case {
    pub fn write(&mut self, d: &mut [u8], at: usize, w: usize, v: u64) {
        for i in 0..w {
            if let Some(b) = d.get(at + i) {
                self.undo.push((at + i, *b));
            }
        }
        set(d, at, w, v);
    }
    pub fn restore(self, d: &mut [u8]) {
        for (at, b) in self.undo.into_iter().rev() {
            d[at] = b;
        }
    }
}

pub fn mutate(rng: &mut Rng, t: &mut Target) -> Case {
    let file_len = t.data.len() as u64;
    let mut c = Case {
        undo: Vec::new(),
        len: t.data.len(),
        desc: String::new(),
    };
    let n = 1 + rng.below(3) * rng.below(2); // mostly one, sometimes 2 or 3
    if t.kind == Kind::Xfs {
        for _ in 0..n {
            super::xfs::mutate_xfs(rng, t, &mut c, file_len);
        }
        if rng.chance(1, 2) {
            super::xfs::fix_crcs(t, &mut c);
        }
        return c;
    }
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
pub struct Stats {
    /// (operation, outcome) -> count
    pub outcomes: BTreeMap<(String, String), u64>,
    pub panics: Vec<String>,
    pub mem_violations: Vec<String>,
    /// Per operation: the largest peak allocation / input size, and its case.
    pub max_ratio: BTreeMap<String, (f64, String)>,
    pub slowest: (Duration, String),
    pub cases: u64,
}

pub fn kind_of<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.kind().into(),
    }
}

impl Stats {
    pub fn record(&mut self, op: &str, outcome: String) {
        *self.outcomes.entry((op.into(), outcome)).or_default() += 1;
    }

    /// Run `op` under catch_unwind (and, if `mem`, the allocation bound).
    pub fn op(
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

    pub fn table(&self) -> String {
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

pub fn run_pe(st: &mut Stats, desc: &str, d: &[u8], trust: &TrustStore, heavy: bool) {
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

pub fn run_disk(st: &mut Stats, desc: &str, d: &[u8], esp: (usize, usize)) {
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
