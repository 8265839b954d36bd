//! Layout and UKI lints. Each check is linear, or n log n where it sorts once, in
//! the number of sections: a hostile table of 65535 sections stays cheap.

use std::collections::HashMap;

use super::kernel::Kernel;
use super::{single_copy, Blocks, Kind};
use crate::bytes::align_up;
use crate::lint::{Lint, Lints, Severity};
use crate::pe::{PeFile, Section};

pub struct Facts<'p, 'a> {
    pub pe: &'p PeFile<'a>,
    pub kind: Kind,
    pub blocks: &'p Blocks,
    /// Length of the whole file (the PE view may hold only a prefix).
    pub file_len: u64,
    /// The kernel in .linux, for UKIs.
    pub kernel: Option<&'p Kernel>,
    /// The COFF string table's own size field, when it could be read.
    pub string_table_size: Option<u64>,
}

/// Add the layout and UKI lints of `f` to `out`.
pub fn check(f: &Facts<'_, '_>, out: &mut Lints) {
    for check in CHECKS {
        check(f, out);
    }
}

/// Every check, in the order its lints are reported.
const CHECKS: [fn(&Facts<'_, '_>, &mut Lints); 9] = [
    section_extents,
    overlaps,
    ascending,
    alignment,
    size_of_image,
    nx_compat,
    image_size,
    uki_parts,
    trailing,
];

/// A UKI or an addon: the stub reads its sections as payloads.
fn uki_like(f: &Facts<'_, '_>) -> bool {
    matches!(f.kind, Kind::Uki | Kind::Addon)
}

/// Each section's data: present in the file, and no zero fill read as payload.
fn section_extents(f: &Facts<'_, '_>, out: &mut Lints) {
    for s in &f.pe.sections {
        if s.virtual_size > s.size_of_raw_data {
            // Normal for .bss-like data in compiled binaries (zero fill), wrong for a
            // UKI payload: the stub would read zeros past the data (systemd #35851).
            let payload = uki_like(f) && super::is_known(&s.name);
            out.push(Lint::new(
                "virtual-size-exceeds-raw",
                if payload {
                    Severity::Error
                } else {
                    Severity::Info
                },
                format!(
                    "{}: VirtualSize {:#x} exceeds SizeOfRawData {:#x}{}",
                    s.name,
                    s.virtual_size,
                    s.size_of_raw_data,
                    if payload {
                        "; the stub reads zero fill as payload"
                    } else {
                        " (zero-filled at load)"
                    }
                ),
            ));
        }
        if s.size_of_raw_data > 0 && s.raw_end() > f.file_len {
            out.push(Lint::new(
                "section-beyond-eof",
                Severity::Error,
                format!(
                    "{}: raw data {:#x}..{:#x} runs past the end of the file ({:#x}); the file is truncated",
                    s.name, s.pointer_to_raw_data, s.raw_end(), f.file_len
                ),
            ));
        }
    }
}

/// Table order must follow memory order (the loader and builders assume it).
fn ascending(f: &Facts<'_, '_>, out: &mut Lints) {
    if let Some((a, b)) = f.pe.sections.windows(2).find_map(|w| match w {
        [a, b] if b.virtual_address < a.virtual_address => Some((a, b)),
        _ => None,
    }) {
        out.push(Lint::new(
            "sections-not-ascending",
            Severity::Warning,
            format!(
                "{} at {:#x} follows {} at {:#x}: virtual addresses do not ascend in table order",
                b.name, b.virtual_address, a.name, a.virtual_address
            ),
        ));
    }
}

fn alignment(f: &Facts<'_, '_>, out: &mut Lints) {
    let sa = u64::from(f.pe.opt.section_alignment);
    let fa = u64::from(f.pe.opt.file_alignment);
    for s in &f.pe.sections {
        let off = |v: u32, align: u64| align > 1 && u64::from(v).checked_rem(align) != Some(0);
        let va_bad = off(s.virtual_address, sa);
        let raw_bad = s.size_of_raw_data > 0 && off(s.pointer_to_raw_data, fa);
        if va_bad || raw_bad {
            // A raw offset off FileAlignment breaks loaders that read whole blocks; an
            // unaligned VA is tolerated by EDK2 and produced by systemd's own stubs
            // (.sdmagic at 0x19100 in 252), so it is only worth knowing.
            out.push(Lint::new(
                "section-misaligned",
                if raw_bad {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                format!(
                    "{}: {} (SectionAlignment {sa:#x}, FileAlignment {fa:#x})",
                    s.name,
                    if raw_bad {
                        format!("file offset {:#x} is not aligned", s.pointer_to_raw_data)
                    } else {
                        format!("virtual address {:#x} is not aligned", s.virtual_address)
                    }
                ),
            ));
        }
    }
}

/// SizeOfImage must cover the last section as mapped: VirtualSize bytes
/// (SizeOfRawData when VirtualSize is 0). Linkers differ on whether raw padding
/// counts (BFD counts it for systemd's stub), so anything from the VirtualSize end
/// to the raw end, rounded to SectionAlignment, is accepted.
///
/// Too small is an error only when a section ends past SizeOfImage: EDK2's loader
/// refuses a section it cannot place inside the image (PeCoffLoaderImageAddress), but
/// loads an image whose SizeOfImage covers every section and is merely not rounded up
/// (the PE format's "multiple of SectionAlignment" rule). Debian's arm64 systemd-stub
/// 252 is such a file (0x10e00 for a last section ending at 0x10e00 with 4 KiB
/// alignment), and AAVMF starts it.
fn size_of_image(f: &Facts<'_, '_>, out: &mut Lints) {
    let sa = u64::from(f.pe.opt.section_alignment);
    let ends = f.pe.sections.iter().map(|s| {
        let va = u64::from(s.virtual_address);
        let v = if s.virtual_size == 0 {
            s.size_of_raw_data
        } else {
            s.virtual_size
        };
        // u32 + u32 in u64: cannot saturate.
        (
            va.saturating_add(u64::from(v)),
            va.saturating_add(u64::from(v.max(s.size_of_raw_data))),
        )
    });
    let Some((end, hi)) = ends.reduce(|a, b| (a.0.max(b.0), a.1.max(b.1))) else {
        return;
    };
    let (lo, hi) = (align_up(end, sa.max(1)), align_up(hi, sa.max(1)));
    let soi = u64::from(f.pe.opt.size_of_image);
    if lo.is_none_or(|lo| soi < lo) || hi.is_none_or(|hi| soi > hi) {
        let show = |v: Option<u64>| v.map_or_else(|| "overflow".to_string(), |w| format!("{w:#x}"));
        out.push(Lint::new(
            "size-of-image-mismatch",
            if soi < end {
                Severity::Error
            } else {
                Severity::Warning
            },
            format!(
                "SizeOfImage {soi:#x} does not match the last section's end rounded to SectionAlignment ({})",
                show(lo)
            ),
        ));
    }
}

fn nx_compat(f: &Facts<'_, '_>, out: &mut Lints) {
    if f.kind == Kind::Uki && f.pe.nx_compat() && f.kernel.is_some_and(|k| k.is_pe && !k.nx_compat)
    {
        out.push(Lint::new(
            "nx-compat-without-kernel-support",
            Severity::Error,
            "the UKI claims NX_COMPAT but its kernel does not; firmware enforcing NX may fail to boot it (systemd #38545)",
        ));
    }
}

fn image_size(f: &Facts<'_, '_>, out: &mut Lints) {
    let image = u64::from(f.pe.opt.size_of_image).max(f.file_len);
    if image > super::MAX_IMAGE_SIZE {
        out.push(Lint::new(
            "image-over-2gib",
            Severity::Error,
            format!("the image is {image} bytes; images over 2 GiB fail to load on real firmware (systemd #31452)"),
        ));
    }
}

/// What a UKI or an addon should carry: one copy of each section a block reads once,
/// .sbat for shim, and .pcrsig with the .pcrpkey that checks it.
fn uki_parts(f: &Facts<'_, '_>, out: &mut Lints) {
    if !uki_like(f) {
        return;
    }
    let secs = &f.pe.sections;
    duplicates(secs, f.blocks, out);
    let has = |n: &str| secs.iter().any(|s| s.name == n);
    if !has(".sbat") {
        out.push(Lint::new(
            "missing-sbat",
            Severity::Warning,
            "no .sbat section; shim refuses binaries without SBAT under Secure Boot",
        ));
    }
    match (has(".pcrsig"), has(".pcrpkey")) {
        (true, false) => out.push(Lint::new(
            "pcrsig-without-pcrpkey",
            Severity::Warning,
            ".pcrsig is present without .pcrpkey; the signed policies cannot be used to unlock",
        )),
        (false, true) => out.push(Lint::new(
            "pcrpkey-without-pcrsig",
            Severity::Info,
            ".pcrpkey is present without .pcrsig; no signed PCR policy is shipped",
        )),
        _ => {}
    }
}

/// Overlaps in memory (VA ranges) and in the file (raw ranges), one sort each:
/// after sorting by start, a range overlaps an earlier one exactly when it starts
/// before the furthest end seen so far. Sorts section indices (4 bytes each), not
/// copies of the ranges, so a table of 65535 sections costs 256 KiB here.
fn overlaps(f: &Facts<'_, '_>, out: &mut Lints) {
    let secs = &f.pe.sections;
    let mut report = |what: &str, range: fn(&Section) -> Option<(u64, u64)>| {
        let mut order: Vec<u32> = (0..u32::try_from(secs.len()).unwrap_or(u32::MAX))
            .filter(|&i| sec(secs, i).and_then(range).is_some())
            .collect();
        // Stable: equal ranges keep table order.
        order.sort_by_key(|&i| sec(secs, i).and_then(range));
        let mut furthest: Option<(u64, &str)> = None;
        for s in order.iter().filter_map(|&i| sec(secs, i)) {
            let Some((start, end)) = range(s) else {
                continue;
            };
            if let Some((fend, fname)) = furthest {
                if start < fend {
                    out.push(Lint::new(
                        "sections-overlap",
                        Severity::Error,
                        format!(
                            "{} overlaps {fname} in the {what} ({start:#x} < {fend:#x})",
                            s.name
                        ),
                    ));
                }
            }
            if furthest.is_none_or(|(fend, _)| end > fend) {
                furthest = Some((end, s.name.as_str()));
            }
        }
    };
    report("image", |s| {
        (s.virtual_size > 0).then(|| (u64::from(s.virtual_address), s.virtual_end()))
    });
    report("file", |s| {
        (s.size_of_raw_data > 0).then(|| (u64::from(s.pointer_to_raw_data), s.raw_end()))
    });
}

fn sec(secs: &[Section], i: u32) -> Option<&Section> {
    secs.get(usize::try_from(i).ok()?)
}

/// A name the stub reads once per block appears twice in the base or a profile.
fn duplicates(secs: &[Section], blocks: &Blocks, out: &mut Lints) {
    let all = std::iter::once((None, &blocks.base)).chain(
        blocks
            .profiles
            .iter()
            .enumerate()
            .map(|(i, r)| (Some(i), r)),
    );
    for (profile, range) in all {
        let mut seen: HashMap<&str, u32> = HashMap::new();
        for s in secs.get(range.clone()).unwrap_or_default() {
            if !single_copy(&s.name) {
                continue;
            }
            let n = seen.entry(s.name.as_str()).or_insert(0);
            *n = n.saturating_add(1);
            if *n == 2 {
                let block =
                    profile.map_or_else(|| "the base".to_string(), |p| format!("profile @{p}"));
                out.push(Lint::new(
                    "duplicate-section",
                    Severity::Error,
                    format!(
                        "{} appears more than once in {block}; the stub uses only one",
                        s.name
                    ),
                ));
            }
        }
    }
}

/// The COFF symbol table the file header points to, with the string table after it
/// (its own size field, at least its 4 bytes), as a file range clamped to the file;
/// None without one, or when it does not lie after the section data.
fn symbol_tables(f: &Facts<'_, '_>, sections_end: u64) -> Option<(u64, u64)> {
    let start = u64::from(f.pe.coff.pointer_to_symbol_table);
    let strings = f.pe.string_table_offset()?;
    if start < sections_end || start >= f.file_len {
        return None;
    }
    let end = strings.saturating_add(f.string_table_size.unwrap_or(0).max(4));
    Some((start, end.min(f.file_len)))
}

/// The rule, the same in every file (docs/json.md): after the last section's raw
/// data (or the headers) the file may hold the COFF symbol table and string table
/// that the file header points to, and the certificate table with up to 7 bytes of
/// the signer's padding before it. The symbol and string tables are reported as
/// `coff-symbol-table` (debugging data: a warning in a UKI or addon, whose builder
/// should drop them, and information elsewhere: gnu-efi binaries such as shim and
/// efitools keep them); any other byte there is `trailing-data`.
fn trailing(f: &Facts<'_, '_>, out: &mut Lints) {
    let sections_end =
        f.pe.end_of_section_data()
            .max(u64::from(f.pe.opt.size_of_headers));
    let symbols = symbol_tables(f, sections_end);
    let cert = f.pe.certificate_table().map(|c| {
        let start = u64::from(c.virtual_address);
        let end = start.saturating_add(u64::from(c.size));
        (start, align_up(end, 8).unwrap_or(end))
    });
    // Walk the known regions in file order, counting the bytes between them.
    let mut regions: Vec<(u64, u64, bool)> = symbols
        .map(|(a, b)| (a, b, false))
        .into_iter()
        .chain(cert.map(|(a, b)| (a, b, true)))
        .filter(|&(a, _, _)| a >= sections_end)
        .collect();
    regions.sort_unstable();
    let mut extra: u64 = 0;
    let mut covered = sections_end;
    for (start, end, is_cert) in regions {
        let gap = start.saturating_sub(covered);
        // Up to 7 bytes of padding before the certificate table are the signer's alignment.
        if !(is_cert && gap < 8) {
            extra = extra.saturating_add(gap);
        }
        covered = covered.max(end);
    }
    extra = extra.saturating_add(f.file_len.saturating_sub(covered));
    if let Some((start, end)) = symbols {
        let long_names =
            f.pe.sections
                .iter()
                .any(|s| s.raw_name.first() == Some(&b'/'));
        out.push(Lint::new(
            "coff-symbol-table",
            if uki_like(f) {
                Severity::Warning
            } else {
                Severity::Info
            },
            format!(
                "a COFF symbol table of {} symbols and its string table at {start:#x}..{end:#x} ({} bytes) after the last section{}; covered by the signature but loaded by nothing",
                f.pe.coff.number_of_symbols,
                end.saturating_sub(start),
                if long_names { " (long section names are resolved through it)" } else { "" }
            ),
        ));
    }
    if extra > 0 {
        out.push(Lint::new(
            "trailing-data",
            Severity::Warning,
            format!("{extra} bytes after the last section that no header accounts for; covered by the signature but loaded by nothing"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::disk::layout::test_pe;
    use crate::inspect::{inspect, InspectOptions};
    use crate::lint::Severity;

    /// The severity of `size-of-image-mismatch` for a two-section image (last section
    /// at 0x2000, 0x10 bytes) whose SizeOfImage is `soi`.
    fn severity(soi: u32) -> Option<Severity> {
        let mut pe = test_pe(0xaa64, &[(".text", b"code"), (".data", &[7u8; 0x10])]);
        // SizeOfImage: optional header (0x98) + 56.
        pe[0xd0..0xd4].copy_from_slice(&soi.to_le_bytes());
        let r = inspect(&pe, &InspectOptions::NO_HASH).unwrap();
        r.lints
            .iter()
            .find(|l| l.id == "size-of-image-mismatch")
            .map(|l| l.severity)
    }

    #[test]
    fn size_of_image_is_an_error_only_when_a_section_ends_past_it() {
        assert_eq!(severity(0x3000), None);
        // Covers the section, not rounded up (Debian's arm64 systemd-stub 252).
        assert_eq!(severity(0x2010), Some(Severity::Warning));
        assert_eq!(severity(0x4000), Some(Severity::Warning));
        assert_eq!(severity(0x200f), Some(Severity::Error));
    }
}
