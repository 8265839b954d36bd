//! The inspect report: everything ukitool knows about a file, serialisable as the
//! stable `--json` (documented field by field in docs/json.md).
//!
//! The report is built from the PE headers plus the few small metadata sections
//! (and a prefix of .linux). Payloads are fetched through [`ByteSource`], so a
//! caller holding only the first bytes of a file and the small sections (the web
//! page reading a Blob) gets the same report; [`needed_ranges`] says what to fetch.
//! Hashing is the only pass over whole payloads, and only when asked for.

use std::borrow::Cow;

use sha2::Digest;

use crate::authenticode::{self, SignatureSummary};
use crate::bytes;
use crate::error::Result;
use crate::lint::{Lint, Lints, Severity};
use crate::pcrsig::{PcrsigSummary, PublicKey};
use crate::pe::raw::{self, flag_names};
use crate::pe::{Format, PeFile, Section};
use crate::uki::bmp::Splash;
use crate::uki::efifw::Firmware;
use crate::uki::hwids::Hwid;
use crate::uki::kernel::{self, Kernel};
use crate::uki::osrel::OsRelease;
use crate::uki::sbat::SbatEntry;
use crate::uki::{self, Blocks, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InspectOptions {
    /// Compute each section's sha256 (the only full pass over the payloads).
    pub hash: bool,
    /// Check the Authenticode signatures: this hashes the whole image, so it is a
    /// second full pass; `--no-hash` turns it off with the section hashes.
    pub signatures: bool,
}

impl InspectOptions {
    /// Headers and metadata only: no pass over the payloads.
    pub const NO_HASH: InspectOptions = InspectOptions {
        hash: false,
        signatures: false,
    };
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            hash: true,
            signatures: true,
        }
    }
}

/// Random access to the bytes of the file being inspected. A slice is the whole
/// file; [`Chunks`] holds only the ranges a caller has fetched.
pub trait ByteSource {
    /// Length of the whole file.
    fn len(&self) -> u64;
    /// `len` bytes at `offset`, or None when they are not available.
    fn read(&self, offset: u64, len: u64) -> Option<&[u8]>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ByteSource for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read(&self, offset: u64, len: u64) -> Option<&[u8]> {
        bytes::slice(self, offset, len, "read").ok()
    }
}

/// Some ranges of a file of known length (what the browser has read so far).
#[derive(Debug, Clone, Default)]
pub struct Chunks {
    pub file_len: u64,
    /// (file offset, bytes); a read must fall inside one chunk.
    pub chunks: Vec<(u64, Vec<u8>)>,
}

impl ByteSource for Chunks {
    fn len(&self) -> u64 {
        self.file_len
    }
    fn read(&self, offset: u64, len: u64) -> Option<&[u8]> {
        self.chunks.iter().find_map(|(at, data)| {
            let rel = offset.checked_sub(*at)?;
            bytes::slice(data, rel, len, "read").ok()
        })
    }
}

/// At most this much of a metadata section is read (they are a few KiB in practice;
/// a hostile 1 GiB .cmdline must not be pulled into memory for a report).
pub const METADATA_CAP: u64 = 1024 * 1024;

/// How many bytes of section `name` the report reads (None: none).
fn wanted(name: &str) -> Option<u64> {
    match name {
        ".osrel" | ".cmdline" | ".uname" | ".sbat" | ".pcrsig" | ".pcrpkey" | ".profile"
        | ".sdmagic" | ".hwids" => Some(METADATA_CAP),
        ".splash" => Some(32),
        ".efifw" => Some(4096),
        ".linux" | uki::EFIBOOTGUARD_KERNEL => Some(kernel::PREFIX_LEN),
        _ => None,
    }
}

/// The file ranges (offset, length) that [`inspect_pe`] reads without hashing,
/// besides the headers already parsed.
pub fn needed_ranges(pe: &PeFile<'_>) -> Vec<(u64, u64)> {
    let mut r: Vec<(u64, u64)> = pe
        .sections
        .iter()
        .filter_map(|s| {
            let cap = wanted(&s.name)?;
            Some((
                u64::from(s.pointer_to_raw_data),
                u64::from(s.payload_len()).min(cap),
            ))
        })
        .collect();
    // The setup header of a bare kernel, and the string table's size field.
    r.push((0, kernel::PREFIX_LEN.min(pe.file_len)));
    if let Some(at) = pe.string_table_offset() {
        if at.saturating_add(4) <= pe.file_len {
            r.push((at, 4));
        }
    }
    r
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DataDirectoryInfo {
    pub index: u32,
    pub name: &'static str,
    pub virtual_address: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Range {
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeHeaders {
    pub format: Format,
    pub machine: u16,
    pub machine_name: Option<&'static str>,
    pub subsystem: u16,
    pub subsystem_name: Option<&'static str>,
    pub entry_point: u32,
    pub image_base: u64,
    pub section_alignment: u32,
    pub file_alignment: u32,
    pub size_of_image: u32,
    pub size_of_headers: u32,
    pub checksum: u32,
    pub characteristics: u16,
    pub characteristics_names: Vec<String>,
    pub dll_characteristics: u16,
    pub dll_characteristics_names: Vec<String>,
    pub nx_compat: bool,
    pub timestamp: u32,
    pub data_directories: Vec<DataDirectoryInfo>,
    pub certificate_table: Option<Range>,
    pub symbol_table: Option<SymbolTable>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SymbolTable {
    pub offset: u32,
    pub symbols: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SectionInfo {
    pub index: u32,
    pub name: String,
    pub virtual_address: u32,
    pub virtual_size: u32,
    pub file_offset: u32,
    pub raw_size: u32,
    /// Payload bytes (VirtualSize clamped to SizeOfRawData): what extract writes.
    pub payload_size: u32,
    pub characteristics: u32,
    pub characteristics_names: SectionFlags,
    /// sha256 of the payload bytes; null without hashing or when the data is missing.
    pub sha256: Option<String>,
    /// The profile owning this section; null for the base.
    pub profile: Option<u32>,
    /// ukify's `size` (`ukify inspect --json`): min(VirtualSize, SizeOfRawData).
    pub size: u32,
    /// ukify's `text`, for the sections ukify shows as text ([`UKIFY_TEXT_SECTIONS`]):
    /// the first `size` bytes without trailing NULs, inner NULs as `\0`, or
    /// `(not valid UTF-8)`. Absent for other sections, as in ukify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The sections `ukify inspect` shows as text (its DEFAULT_SECTIONS_TO_SHOW).
pub const UKIFY_TEXT_SECTIONS: [&str; 7] = [
    ".cmdline", ".osrel", ".uname", ".pcrpkey", ".pcrsig", ".sbat", ".profile",
];

/// ukify's `text` of a section (see [`SectionInfo::text`]), charged to `budget`
/// (text of at most the file's size in all: sections may overlap).
fn ukify_text(s: &Section, src: &dyn ByteSource, budget: &mut u64) -> Option<String> {
    if !UKIFY_TEXT_SECTIONS.contains(&s.name.as_str()) {
        return None;
    }
    let size = u64::from(s.virtual_size.min(s.size_of_raw_data));
    *budget = budget.checked_sub(size).filter(|_| size <= METADATA_CAP)?;
    let data = bytes::trim_nul(src.read(u64::from(s.pointer_to_raw_data), size)?);
    Some(match std::str::from_utf8(data) {
        Ok(t) => t.replace('\0', "\\0"),
        Err(_) => "(not valid UTF-8)".to_string(),
    })
}

/// A section's Characteristics, serialised as the names of its set bits (unknown
/// bits as hex). The names are made when serialising, not stored per section: a
/// table of 65535 sections would otherwise hold a quarter million Strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionFlags(pub u32);

impl SectionFlags {
    pub fn names(self) -> Vec<String> {
        flag_names(self.0, raw::SECTION_CHARACTERISTICS)
    }
}

impl serde::Serialize for SectionFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProfileInfo {
    pub index: u32,
    pub id: Option<String>,
    pub title: Option<String>,
    /// Every KEY=value of the .profile section.
    pub fields: OsRelease,
    /// Names of the sections of this profile, .profile first.
    pub sections: Vec<String>,
    /// The profile's own .cmdline, if it overrides the base's.
    pub cmdline: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub kind: Kind,
    pub file_size: u64,
    pub pe: PeHeaders,
    pub sections: Vec<SectionInfo>,
    pub stub: Option<String>,
    pub os_release: Option<OsRelease>,
    pub cmdline: Option<String>,
    pub uname: Option<String>,
    pub sbat: Option<Vec<SbatEntry>>,
    pub splash: Option<Splash>,
    pub pcrpkey: Option<PublicKey>,
    pub pcrsig: Option<PcrsigSummary>,
    pub hwids: Option<Vec<Hwid>>,
    pub efifw: Vec<Firmware>,
    /// Names of the base sections (those before the first .profile).
    pub base_sections: Vec<String>,
    pub profiles: Vec<ProfileInfo>,
    pub kernel: Option<Kernel>,
    pub signatures: Vec<SignatureSummary>,
    pub lints: Vec<Lint>,
}

impl Report {
    /// Does any lint say the file is broken (not merely unusual)?
    pub fn has_errors(&self) -> bool {
        self.lints.iter().any(|l| l.severity == Severity::Error)
    }
}

/// The report lists at most this many sections (in `sections`, `base_sections` and
/// the profiles that start among them); a `report-truncated` lint gives the count
/// and the lints still cover the whole table. Firmware loaders handle files of a
/// few dozen sections and systemd-stub at most 256 profiles; a hostile table of
/// 65535 sections must not cost a report entry each (issue 9: memory bounded by
/// twice the input).
pub const MAX_LISTED_SECTIONS: usize = 1024;

/// At most this many `.efifw` entries are listed (real UKIs carry a few).
pub const MAX_FIRMWARE: usize = 64;

/// Inspect a whole file held in memory.
pub fn inspect(data: &[u8], opts: &InspectOptions) -> Result<Report> {
    let pe = PeFile::parse(data)?;
    Ok(inspect_pe(&pe, &data, opts))
}

fn truncated(what: &str, listed: usize, more: u64) -> Lint {
    Lint::new(
        "report-truncated",
        Severity::Warning,
        format!("{what}: the report lists the first {listed}; {more} more not listed"),
    )
}

/// Inspect a parsed PE, reading payloads through `src`. Never fails: sections
/// that cannot be read or decoded become lints.
pub fn inspect_pe(pe: &PeFile<'_>, src: &dyn ByteSource, opts: &InspectOptions) -> Report {
    let file_len = src.len();
    let secs = &pe.sections;
    let blocks = uki::blocks(secs);
    let listed = secs.len().min(MAX_LISTED_SECTIONS);
    let base = |name: &str| blocks.lookup(secs, name, None);
    let mut d = Decoding {
        rd: Reader {
            src,
            secs,
            file_len,
            budget: file_len,
            missing: Lints::default(),
        },
        lints: Lints::default(),
        cut: Lints::default(),
        meta: Metadata::default(),
    };

    let sdmagic = base(".sdmagic").and_then(|i| d.rd.text(i));
    let is_kernel = src
        .read(0, file_len.min(kernel::PREFIX_LEN))
        .and_then(kernel::format)
        .is_some();
    let kind = uki::classify(secs, is_kernel, sdmagic.as_deref());
    for (name, decode) in METADATA {
        if let Some(i) = base(name) {
            decode(&mut d, i);
        }
    }
    d.firmware();
    let linux = match kind {
        Kind::EfibootguardUnified => base(uki::EFIBOOTGUARD_KERNEL),
        _ => base(".linux"),
    };
    let kernel = kernel_facts(&mut d.rd, linux, kind, pe);
    if let (Some(key), Some(sig)) = (&d.meta.pcrpkey, &d.meta.pcrsig) {
        if sig.pkfp.iter().any(|fp| *fp != key.fingerprint) {
            d.lints.push(Lint::new(
                "pcrsig-pkfp-mismatch",
                Severity::Warning,
                ".pcrsig names a key fingerprint that is not .pcrpkey's; those policies cannot unlock",
            ));
        }
    }
    let profiles = d.profiles(&blocks, listed);
    if secs.len() > listed {
        d.cut.push(truncated(
            &format!(
                "{} sections (sections, base_sections and profiles; the lints cover all)",
                secs.len()
            ),
            listed,
            u64::try_from(secs.len().saturating_sub(listed)).unwrap_or(u64::MAX),
        ));
    }
    let sections = section_infos(secs, &blocks, src, opts.hash, listed, &mut d.rd.budget);

    let Decoding {
        rd,
        mut lints,
        cut,
        meta,
    } = d;
    uki::lints::check(
        &uki::lints::Facts {
            pe,
            kind,
            blocks: &blocks,
            file_len,
            kernel: kernel.as_ref(),
            string_table_size: pe
                .string_table_offset()
                .and_then(|at| src.read(at, 4))
                .and_then(|b| b.try_into().ok())
                .map(|b: [u8; 4]| u64::from(u32::from_le_bytes(b))),
        },
        &mut lints,
    );
    lints.append(rd.missing);
    lints.append(cut);
    let signatures = if opts.signatures {
        let (signatures, sig_lints) = authenticode::inspect_signatures(pe);
        lints.extend(sig_lints);
        signatures
    } else {
        Vec::new()
    };

    Report {
        kind,
        file_size: file_len,
        pe: headers(pe),
        sections,
        stub: sdmagic.map(|m| uki::stub_identity(m.as_bytes())),
        os_release: meta.os_release,
        cmdline: meta.cmdline,
        uname: meta.uname,
        sbat: meta.sbat,
        splash: meta.splash,
        pcrpkey: meta.pcrpkey,
        pcrsig: meta.pcrsig,
        hwids: meta.hwids,
        efifw: meta.efifw,
        base_sections: names(secs, &blocks.base, listed),
        profiles,
        kernel,
        signatures,
        lints: lints.into_vec(),
    }
}

/// The kernel in .linux or EFI Boot Guard's .kernel (index `linux`), or the file
/// itself when it is a bare kernel.
fn kernel_facts(
    rd: &mut Reader<'_, '_>,
    linux: Option<usize>,
    kind: Kind,
    pe: &PeFile<'_>,
) -> Option<Kernel> {
    let (src, secs, file_len) = (rd.src, rd.secs, rd.file_len);
    linux
        .and_then(|i| Some((rd.get(i)?, secs.get(i)?)))
        .map(|(prefix, s)| {
            let len = u64::from(s.payload_len());
            kernel::inspect(
                whole_kernel(src, prefix, u64::from(s.pointer_to_raw_data), len),
                len,
            )
        })
        .or_else(|| {
            // A bare kernel describes itself.
            (kind == Kind::EfiStubKernel).then(|| {
                let prefix = src
                    .read(0, file_len.min(kernel::PREFIX_LEN))
                    .unwrap_or(pe.data);
                kernel::inspect(whole_kernel(src, prefix, 0, file_len), file_len)
            })
        })
}

/// The bytes the kernel facts read: an `Image` or zboot kernel's version needs the
/// whole kernel (a scan, or the zboot payload), when `src` holds it (a partial
/// source may hold only `prefix`); an x86 kernel's facts are all in `prefix`.
fn whole_kernel<'s>(src: &'s dyn ByteSource, prefix: &'s [u8], offset: u64, len: u64) -> &'s [u8] {
    match kernel::format(prefix) {
        Some(kernel::Format::Image | kernel::Format::Zboot) => {
            src.read(offset, len).unwrap_or(prefix)
        }
        _ => prefix,
    }
}

/// What the report decodes from the base's metadata sections.
#[derive(Default)]
struct Metadata {
    os_release: Option<OsRelease>,
    cmdline: Option<String>,
    uname: Option<String>,
    sbat: Option<Vec<SbatEntry>>,
    splash: Option<Splash>,
    pcrpkey: Option<PublicKey>,
    pcrsig: Option<PcrsigSummary>,
    hwids: Option<Vec<Hwid>>,
    efifw: Vec<Firmware>,
}

/// The decoding of the metadata sections: the reader with its budget, the lints made
/// so far, and the notes of what was cut short.
struct Decoding<'s, 'p> {
    rd: Reader<'s, 'p>,
    lints: Lints,
    cut: Lints,
    meta: Metadata,
}

/// How each metadata section of the base lands in the report, in the order they are
/// read (the decode budget, and so what a hostile file leaves undecoded, follows it).
type Decode = fn(&mut Decoding<'_, '_>, usize);

const METADATA: [(&str, Decode); 8] = [
    (".osrel", |d, i| {
        d.meta.os_release = d.rd.text(i).map(|t| {
            let (o, more) = uki::osrel::parse(&t);
            d.note_cut(".osrel keys", o.0.len(), more);
            o
        });
    }),
    (".cmdline", |d, i| {
        d.meta.cmdline = d.rd.text(i).map(|t| t.trim_end().to_string());
    }),
    (".uname", |d, i| {
        d.meta.uname = d.rd.text(i).map(|t| t.trim().to_string());
    }),
    (".sbat", |d, i| {
        d.meta.sbat = d.rd.text(i).map(|t| {
            let (e, more) = uki::sbat::parse(&t);
            d.rd.charge(e.len(), std::mem::size_of::<SbatEntry>());
            d.note_cut(".sbat entries", e.len(), more);
            e
        });
    }),
    (".splash", |d, i| {
        d.meta.splash = d.decode(i, uki::bmp::parse)
    }),
    (".pcrpkey", |d, i| {
        d.meta.pcrpkey = d.decode(i, crate::pcrsig::public_key);
    }),
    (".pcrsig", |d, i| {
        d.meta.pcrsig = d.decode(i, crate::pcrsig::summarise).map(|(sig, more)| {
            let listed = sig
                .banks
                .len()
                .saturating_add(sig.pcrs.len())
                .saturating_add(sig.pkfp.len());
            d.note_cut(".pcrsig banks, PCRs and key fingerprints", listed, more);
            sig
        });
    }),
    (".hwids", |d, i| {
        d.meta.hwids = d.decode(i, uki::hwids::parse).map(|(h, more)| {
            d.note_cut(".hwids entries", h.len(), more);
            h
        });
    }),
];

impl Decoding<'_, '_> {
    /// Section `i` decoded by `parse`; a failure is an `undecodable-section` lint.
    fn decode<T>(&mut self, i: usize, parse: impl FnOnce(&[u8]) -> Result<T>) -> Option<T> {
        let data = self.rd.get(i)?;
        parse(data).map_err(|e| self.undecodable(i, e)).ok()
    }

    fn undecodable(&mut self, i: usize, e: crate::Error) {
        let name = self.rd.secs.get(i).map_or("", |s| s.name.as_str());
        self.lints.push(Lint::new(
            "undecodable-section",
            Severity::Warning,
            format!("{name}: {e}"),
        ));
    }

    /// Note that a decoded list stopped at `listed` entries with `more` left.
    fn note_cut(&mut self, what: &str, listed: usize, more: u64) {
        if more > 0 {
            self.cut.push(truncated(what, listed, more));
        }
    }

    /// Every `.efifw` section (they repeat), up to [`MAX_FIRMWARE`].
    fn firmware(&mut self) {
        let secs = self.rd.secs;
        let mut more = 0u64;
        for (i, s) in secs.iter().enumerate().filter(|(_, s)| s.name == ".efifw") {
            if self.meta.efifw.len() >= MAX_FIRMWARE {
                more = more.saturating_add(1);
                continue;
            }
            if let Some(f) = self.decode(i, |d| uki::efifw::parse(d, u64::from(s.payload_len()))) {
                self.meta.efifw.push(f);
            }
        }
        let listed = self.meta.efifw.len();
        self.note_cut(".efifw sections", listed, more);
    }

    /// The profiles that start among the listed sections, with their fields.
    fn profiles(&mut self, blocks: &Blocks, listed: usize) -> Vec<ProfileInfo> {
        let secs = self.rd.secs;
        let listed_profiles = blocks
            .profiles
            .iter()
            .take_while(|r| r.start < listed)
            .count();
        let mut profiles = Vec::with_capacity(listed_profiles);
        for (range, index) in blocks.profiles.iter().take(listed_profiles).zip(0u32..) {
            let (fields, more) = self
                .rd
                .text(range.start)
                .map(|t| uki::osrel::parse(&t))
                .unwrap_or_default();
            self.rd
                .charge(fields.0.len(), std::mem::size_of::<(String, String)>());
            self.note_cut(&format!(".profile @{index} keys"), fields.0.len(), more);
            let cmdline = range
                .clone()
                .find(|&i| secs.get(i).is_some_and(|s| s.name == ".cmdline"))
                .and_then(|i| self.rd.text(i))
                .map(|t| t.trim_end().to_string());
            profiles.push(ProfileInfo {
                index,
                id: fields.get("ID").map(str::to_string),
                title: fields.get("TITLE").map(str::to_string),
                sections: names(secs, range, listed),
                cmdline,
                fields,
            });
        }
        if blocks.profiles.len() > uki::MAX_PROFILES {
            self.lints.push(Lint::new(
                "too-many-profiles",
                Severity::Error,
                format!(
                    "{} profiles; systemd-stub accepts at most {}",
                    blocks.profiles.len(),
                    uki::MAX_PROFILES
                ),
            ));
        }
        profiles
    }
}

/// The listed sections, hashed when `hash` is set. Like the decode budget: hashing
/// more than the file's size means sections overlap, and a hostile table must not
/// make us hash one payload 65535 times. ukify's text fields are charged to
/// `text_budget`, the metadata decode budget, so that text and decoded metadata
/// together never cost more than the file.
fn section_infos(
    secs: &[Section],
    blocks: &Blocks,
    src: &dyn ByteSource,
    hash: bool,
    listed: usize,
    text_budget: &mut u64,
) -> Vec<SectionInfo> {
    let mut hash_budget = src.len();
    let mut sections = Vec::with_capacity(listed);
    for (s, i) in secs.iter().zip(0u32..).take(listed) {
        let len = u64::from(s.payload_len());
        let hash = hash
            && match hash_budget.checked_sub(len) {
                Some(rest) => {
                    hash_budget = rest;
                    true
                }
                None => false,
            };
        let mut info = section_info(i, s, blocks, src, hash);
        info.text = ukify_text(s, src, text_budget);
        sections.push(info);
    }
    sections
}

/// Reads the capped payload of the sections the report decodes.
struct Reader<'s, 'p> {
    src: &'s dyn ByteSource,
    secs: &'p [Section],
    file_len: u64,
    /// Bytes still allowed to be decoded: payload read, text grown by lossy UTF-8
    /// decoding, and the per-entry size of decoded lists. Distinct sections of a
    /// sane file add up to less than the file; a hostile table pointing 65535
    /// sections at one big payload must not turn into 65535 copies of it.
    budget: u64,
    missing: Lints,
}

impl<'s> Reader<'s, '_> {
    fn get(&mut self, i: usize) -> Option<&'s [u8]> {
        let s = self.secs.get(i)?;
        let cap = wanted(&s.name).unwrap_or(0);
        let len = u64::from(s.payload_len()).min(cap);
        if !self.take(len) {
            self.over(&s.name);
            return None;
        }
        let got = self.src.read(u64::from(s.pointer_to_raw_data), len);
        if got.is_none() && s.raw_end() <= self.file_len {
            // Within the file but not fetched: the caller gave us a partial source.
            self.missing.push(Lint::new(
                "section-unavailable",
                Severity::Info,
                format!("{}: payload was not available to the inspector", s.name),
            ));
        }
        got
    }

    /// The payload as text (see [`text`]); what lossy decoding adds is charged too.
    fn text(&mut self, i: usize) -> Option<Cow<'s, str>> {
        let d = self.get(i)?;
        let utf16 = bytes::is_utf16le(d);
        // UTF-16 text is at most 1.5 times its bytes: charged before it is made.
        let grown = if utf16 {
            d.len() / 2
        } else {
            text_len(d).saturating_sub(d.len())
        };
        if !self.take(u64::try_from(grown).unwrap_or(u64::MAX)) {
            self.over(&self.secs.get(i)?.name);
            return None;
        }
        Some(bytes::section_text(d))
    }

    /// Charge `n` decoded entries of `size` bytes each; later sections go
    /// undecoded once the budget is spent.
    fn charge(&mut self, n: usize, size: usize) {
        let bytes = u64::try_from(n.saturating_mul(size)).unwrap_or(u64::MAX);
        self.budget = self.budget.saturating_sub(bytes);
    }

    fn take(&mut self, n: u64) -> bool {
        match self.budget.checked_sub(n) {
            Some(rest) => {
                self.budget = rest;
                true
            }
            None => false,
        }
    }

    fn over(&mut self, name: &str) {
        self.missing.push(Lint::new(
            "section-unavailable",
            Severity::Warning,
            format!(
                "{name}: not decoded; the sections' metadata exceeds the file size (overlapping sections?)"
            ),
        ));
    }
}

/// Length of [`bytes::text`] without making it: each invalid sequence becomes U+FFFD (3 bytes).
fn text_len(data: &[u8]) -> usize {
    bytes::trim_nul(data).utf8_chunks().fold(0usize, |n, c| {
        let bad = if c.invalid().is_empty() { 0 } else { 3 };
        n.saturating_add(c.valid().len()).saturating_add(bad)
    })
}

/// Names of the sections in `r` that the report lists (index below `listed`).
fn names(secs: &[Section], r: &std::ops::Range<usize>, listed: usize) -> Vec<String> {
    secs.get(r.start.min(listed)..r.end.min(listed))
        .unwrap_or_default()
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

fn section_info(
    index: u32,
    s: &Section,
    blocks: &Blocks,
    src: &dyn ByteSource,
    hash: bool,
) -> SectionInfo {
    let sha256 = hash
        .then(|| src.read(u64::from(s.pointer_to_raw_data), u64::from(s.payload_len())))
        .flatten()
        .map(|d| bytes::hex(&sha2::Sha256::digest(d)));
    SectionInfo {
        index,
        name: s.name.clone(),
        virtual_address: s.virtual_address,
        virtual_size: s.virtual_size,
        file_offset: s.pointer_to_raw_data,
        raw_size: s.size_of_raw_data,
        payload_size: s.payload_len(),
        characteristics: s.characteristics,
        characteristics_names: SectionFlags(s.characteristics),
        sha256,
        profile: usize::try_from(index)
            .ok()
            .and_then(|i| blocks.profile_of(i)),
        size: s.virtual_size.min(s.size_of_raw_data),
        text: None,
    }
}

fn headers(pe: &PeFile<'_>) -> PeHeaders {
    let o = &pe.opt;
    PeHeaders {
        format: o.format,
        machine: pe.coff.machine,
        machine_name: pe.machine_name(),
        subsystem: o.subsystem,
        subsystem_name: pe.subsystem_name(),
        entry_point: o.address_of_entry_point,
        image_base: o.image_base,
        section_alignment: o.section_alignment,
        file_alignment: o.file_alignment,
        size_of_image: o.size_of_image,
        size_of_headers: o.size_of_headers,
        checksum: o.checksum,
        characteristics: pe.coff.characteristics,
        characteristics_names: flag_names(pe.coff.characteristics, raw::FILE_CHARACTERISTICS),
        dll_characteristics: o.dll_characteristics,
        dll_characteristics_names: flag_names(o.dll_characteristics, raw::DLL_CHARACTERISTICS),
        nx_compat: pe.nx_compat(),
        timestamp: pe.coff.time_date_stamp,
        data_directories: pe
            .data_directories
            .iter()
            .zip(raw::DATA_DIRECTORY_NAMES)
            .zip(0u32..)
            .map(|((d, name), index)| DataDirectoryInfo {
                index,
                name,
                virtual_address: d.virtual_address,
                size: d.size,
            })
            .collect(),
        certificate_table: pe.certificate_table().map(|c| Range {
            offset: u64::from(c.virtual_address),
            size: u64::from(c.size),
        }),
        symbol_table: (pe.coff.pointer_to_symbol_table != 0).then_some(SymbolTable {
            offset: pe.coff.pointer_to_symbol_table,
            symbols: pe.coff.number_of_symbols,
        }),
    }
}
