//! `diff`: what changed between two PEs or UKIs, as a reviewer of an update or of a
//! reproducibility check reads it: the PE header fields, the sections added, removed
//! or changed in each block (base and profiles) with their sizes and sha256, line
//! diffs of the text sections, the kernel version, the signers and the PCR 11
//! predictions. Both files go through [`inspect`](super::inspect), so a diff shows
//! the same facts, in the same words, as `inspect` does.

use crate::authenticode::DigestAlgorithm;
use crate::bytes::{self, hex};
use crate::error::{Error, Result};
use crate::inspect::{InspectOptions, Report, SectionInfo};
use crate::measure;
use crate::pe::PeFile;
use crate::uki::Kind;

use super::inspect::{FileReport, InOrder, Join};

/// Sections whose payload is text: a changed one carries a line diff.
pub const TEXT_SECTIONS: [&str; 4] = [".cmdline", ".osrel", ".uname", ".sbat"];

/// Text sections longer than this are compared by digest only (real ones are a few
/// hundred bytes; the line diff is quadratic).
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// Lines of unchanged context around each hunk, as `diff -u` shows.
const CONTEXT: usize = 3;

/// What `diff --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    /// The two files are byte for byte the same.
    pub identical: bool,
    /// Offset of the first byte that differs (the shorter length when one file is
    /// a prefix of the other); null when identical.
    pub first_difference: Option<u64>,
    pub a: FileFacts,
    pub b: FileFacts,
    /// PE header fields that differ.
    pub headers: Vec<FieldChange>,
    /// Sections added, removed or changed, base first, then by profile.
    pub sections: Vec<SectionChange>,
    pub kernel: Compared<Option<String>>,
    pub signers: Compared<Vec<Signer>>,
    /// PCR 11 (sha256 bank) per profile and boot phase, for UKIs.
    pub pcr11: Vec<PcrChange>,
}

impl Diff {
    /// As diff(1): 0 identical, 1 different.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.identical)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileFacts {
    pub kind: Kind,
    pub size: u64,
    pub sha256: String,
    pub sections: usize,
    pub profiles: usize,
}

/// A value in both files; `changed` when they differ.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Compared<T> {
    pub a: T,
    pub b: T,
    pub changed: bool,
}

impl<T: PartialEq> Compared<T> {
    fn new(a: T, b: T) -> Self {
        let changed = a != b;
        Compared { a, b, changed }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub a: String,
    pub b: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

/// A section's payload as the report describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Payload {
    pub size: u32,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SectionChange {
    /// The block: null for the base, else the profile number.
    pub profile: Option<u32>,
    pub name: String,
    /// Which copy of a repeated name in its block (.dtbauto, .efifw), from 0.
    pub copy: u32,
    pub change: Change,
    pub a: Option<Payload>,
    pub b: Option<Payload>,
    /// For the text sections: a unified line diff (`@@` hunk headers, then lines
    /// starting with ' ', '-' or '+'); null for other sections.
    pub text_diff: Option<Vec<String>>,
}

/// Who signed, as the signature names its signer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Signer {
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub serial: Option<String>,
    /// The signed image digest matches the file.
    pub digest_matches: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PcrChange {
    /// The profile booted (@0 is the base of a UKI without profiles).
    pub profile: u32,
    pub phase: String,
    /// Hex; null when that file has no such profile, or is no UKI.
    pub a: Option<String>,
    pub b: Option<String>,
    pub changed: bool,
}

/// One file's report and parsed PE.
struct Side<'a> {
    data: &'a [u8],
    pe: PeFile<'a>,
    report: Report,
}

impl<'a> Side<'a> {
    fn read(data: &'a [u8], which: &str) -> Result<Self> {
        let opts = InspectOptions::default();
        let report = match super::inspect(data, &opts, &InOrder)? {
            FileReport::Pe(r) => *r,
            FileReport::Disk(_) => {
                return Err(Error::invalid(format!(
                    "{which} is a disk image; diff compares PEs and UKIs"
                )))
            }
            FileReport::SignatureList(_) => {
                return Err(Error::invalid(format!(
                    "{which} is an EFI signature list; diff compares PEs and UKIs"
                )))
            }
        };
        Ok(Side {
            data,
            pe: PeFile::parse(data)?,
            report,
        })
    }

    fn facts(&self) -> FileFacts {
        FileFacts {
            kind: self.report.kind,
            size: self.report.file_size,
            sha256: hex(&DigestAlgorithm::Sha256.digest(self.data)),
            sections: self.pe.sections.len(),
            profiles: self.report.profiles.len(),
        }
    }
}

/// `ukitool diff A B`: the two files are inspected (through `join`, side by side)
/// and compared. An error when either is not a PE.
pub fn diff(a: &[u8], b: &[u8], join: &impl Join) -> Result<Diff> {
    let (sa, sb) = join.join(|| Side::read(a, "A"), || Side::read(b, "B"));
    let (sa, sb) = (sa?, sb?);
    let identical = a == b;
    let first_difference = (!identical).then(|| {
        let same = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        u64::try_from(same).unwrap_or(u64::MAX)
    });
    Ok(Diff {
        identical,
        first_difference,
        a: sa.facts(),
        b: sb.facts(),
        headers: headers(&sa.report, &sb.report),
        sections: sections(&sa, &sb),
        kernel: Compared::new(kernel_version(&sa.report), kernel_version(&sb.report)),
        signers: Compared::new(signers(&sa.report), signers(&sb.report)),
        pcr11: pcr11(&sa, &sb),
    })
}

fn kernel_version(r: &Report) -> Option<String> {
    r.kernel.as_ref().and_then(|k| k.version.clone())
}

fn signers(r: &Report) -> Vec<Signer> {
    r.signatures
        .iter()
        .map(|s| Signer {
            subject: s.signer.as_ref().map(|c| c.subject.clone()),
            issuer: s.signer.as_ref().map(|c| c.issuer.clone()),
            serial: s.signer.as_ref().map(|c| c.serial.clone()),
            digest_matches: s.digest_matches,
        })
        .collect()
}

/// The header fields a rebuild or a re-signing can change, as text.
fn header_fields(r: &Report) -> Vec<(&'static str, String)> {
    let h = &r.pe;
    let range = |v: Option<crate::inspect::Range>| {
        v.map_or("none".to_string(), |r| {
            format!("{:#x}+{:#x}", r.offset, r.size)
        })
    };
    vec![
        ("machine", format!("{:#06x}", h.machine)),
        ("subsystem", h.subsystem.to_string()),
        ("entry_point", format!("{:#x}", h.entry_point)),
        ("image_base", format!("{:#x}", h.image_base)),
        ("section_alignment", format!("{:#x}", h.section_alignment)),
        ("file_alignment", format!("{:#x}", h.file_alignment)),
        ("size_of_image", format!("{:#x}", h.size_of_image)),
        ("size_of_headers", format!("{:#x}", h.size_of_headers)),
        ("checksum", format!("{:#010x}", h.checksum)),
        ("characteristics", format!("{:#06x}", h.characteristics)),
        (
            "dll_characteristics",
            format!("{:#06x}", h.dll_characteristics),
        ),
        ("timestamp", h.timestamp.to_string()),
        ("certificate_table", range(h.certificate_table)),
        (
            "symbol_table",
            h.symbol_table.map_or("none".to_string(), |s| {
                format!("{:#x} ({} symbols)", s.offset, s.symbols)
            }),
        ),
    ]
}

fn headers(a: &Report, b: &Report) -> Vec<FieldChange> {
    header_fields(a)
        .into_iter()
        .zip(header_fields(b))
        .filter(|((_, x), (_, y))| x != y)
        .map(|((field, a), (_, b))| FieldChange { field, a, b })
        .collect()
}

/// A section's place: its block, name and copy number within the block.
type Key = (Option<u32>, String, u32);

fn keyed(r: &Report) -> Vec<(Key, &SectionInfo)> {
    let mut seen: Vec<(Option<u32>, &str, u32)> = Vec::new();
    r.sections
        .iter()
        .map(|s| {
            let copy = match seen
                .iter_mut()
                .find(|(p, n, _)| *p == s.profile && *n == s.name)
            {
                Some((_, _, c)) => {
                    *c = c.saturating_add(1);
                    *c
                }
                None => {
                    seen.push((s.profile, &s.name, 0));
                    0
                }
            };
            ((s.profile, s.name.clone(), copy), s)
        })
        .collect()
}

fn payload(s: &SectionInfo) -> Payload {
    Payload {
        size: s.payload_size,
        sha256: s.sha256.clone(),
    }
}

fn sections(a: &Side<'_>, b: &Side<'_>) -> Vec<SectionChange> {
    let ka = keyed(&a.report);
    let kb = keyed(&b.report);
    let find = |list: &[(Key, &SectionInfo)], k: &Key| {
        list.iter()
            .find(|(key, _)| key == k)
            .map(|(_, s)| payload(s))
    };
    let mut out = Vec::new();
    let keys = ka
        .iter()
        .map(|(k, _)| k)
        .chain(kb.iter().map(|(k, _)| k).filter(|k| find(&ka, k).is_none()));
    for key in keys {
        let (pa, pb) = (find(&ka, key), find(&kb, key));
        let change = match (&pa, &pb) {
            (Some(x), Some(y)) if x == y => continue,
            (Some(_), Some(_)) => Change::Changed,
            (Some(_), None) => Change::Removed,
            _ => Change::Added,
        };
        let (profile, name, copy) = key.clone();
        let text_diff = TEXT_SECTIONS
            .contains(&name.as_str())
            .then(|| {
                let ta = section_text(a, key);
                let tb = section_text(b, key);
                Some(unified(&ta?, &tb?))
            })
            .flatten();
        out.push(SectionChange {
            profile,
            name,
            copy,
            change,
            a: pa,
            b: pb,
            text_diff,
        });
    }
    // Base first, then the profiles in order; within a block, file order.
    out.sort_by_key(|c| c.profile.map_or(0, |p| u64::from(p).saturating_add(1)));
    out
}

/// The text of the section at `key` (UTF-16LE decoded, as inspect reads it; empty
/// when the file has none there); None when it is too long or cannot be read.
fn section_text(side: &Side<'_>, key: &Key) -> Option<String> {
    let (profile, name, copy) = key;
    let found = keyed(&side.report)
        .into_iter()
        .find(|(k, _)| (&k.0, &k.1, &k.2) == (profile, name, copy));
    let Some((_, info)) = found else {
        return Some(String::new());
    };
    let s = side.pe.sections.get(usize::try_from(info.index).ok()?)?;
    let data = s.payload(side.data).ok()?;
    (data.len() <= MAX_TEXT_LEN).then(|| bytes::section_text(data).into_owned())
}

/// PCR 11 in the sha256 bank for each default phase of each profile either file
/// has (a UKI without profiles boots its base as @0).
fn pcr11(a: &Side<'_>, b: &Side<'_>) -> Vec<PcrChange> {
    let predict = |side: &Side<'_>, p: usize| -> Option<Vec<measure::Prediction>> {
        if side.report.kind != Kind::Uki {
            return None;
        }
        let n = side.report.profiles.len();
        let profile = match n {
            0 if p == 0 => None,
            0 => return None,
            _ if p < n => Some(u32::try_from(p).ok()?),
            _ => return None,
        };
        let parts = measure::uki_parts(&side.pe, profile).ok()?;
        measure::predict(&parts, &[DigestAlgorithm::Sha256], &[]).ok()
    };
    let profiles = a.report.profiles.len().max(b.report.profiles.len()).max(1);
    let mut out = Vec::new();
    for p in 0..profiles {
        let (pa, pb) = (predict(a, p), predict(b, p));
        if pa.is_none() && pb.is_none() {
            continue;
        }
        for (i, phase) in measure::DEFAULT_PHASES.iter().enumerate() {
            let value = |v: &Option<Vec<measure::Prediction>>| {
                v.as_ref().and_then(|v| v.get(i)).map(|x| hex(&x.hash))
            };
            let (va, vb) = (value(&pa), value(&pb));
            out.push(PcrChange {
                profile: u32::try_from(p).unwrap_or(u32::MAX),
                phase: phase.to_string(),
                changed: va != vb,
                a: va,
                b: vb,
            });
        }
    }
    out
}

/// One step of a line diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op<'t> {
    Same(&'t str),
    Del(&'t str),
    Add(&'t str),
}

/// The shortest edit from `a` to `b` by longest common subsequence (texts are at
/// most [`MAX_TEXT_LEN`] bytes; past a million line pairs, every line is replaced).
fn line_ops<'t>(a: &[&'t str], b: &[&'t str]) -> Vec<Op<'t>> {
    let (n, m) = (a.len(), b.len());
    let width = m.saturating_add(1);
    let cells = n.saturating_add(1).saturating_mul(width);
    if cells > 1 << 20 {
        return a
            .iter()
            .map(|l| Op::Del(l))
            .chain(b.iter().map(|l| Op::Add(l)))
            .collect();
    }
    // lcs[i * width + j]: the common subsequence length of a[i..] and b[j..].
    let mut lcs = vec![0u32; cells];
    let at = |i: usize, j: usize| i.saturating_mul(width).saturating_add(j);
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let v = if a.get(i) == b.get(j) {
                lcs.get(at(i.saturating_add(1), j.saturating_add(1)))
                    .map_or(0, |v| v.saturating_add(1))
            } else {
                let down = lcs.get(at(i.saturating_add(1), j)).copied().unwrap_or(0);
                let right = lcs.get(at(i, j.saturating_add(1))).copied().unwrap_or(0);
                down.max(right)
            };
            if let Some(c) = lcs.get_mut(at(i, j)) {
                *c = v;
            }
        }
    }
    let (mut i, mut j) = (0usize, 0usize);
    let mut ops = Vec::with_capacity(n.saturating_add(m));
    loop {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                ops.push(Op::Same(x));
                (i, j) = (i.saturating_add(1), j.saturating_add(1));
            }
            (Some(x), Some(_))
                if lcs.get(at(i.saturating_add(1), j)).copied().unwrap_or(0)
                    >= lcs.get(at(i, j.saturating_add(1))).copied().unwrap_or(0) =>
            {
                ops.push(Op::Del(x));
                i = i.saturating_add(1);
            }
            (Some(x), None) => {
                ops.push(Op::Del(x));
                i = i.saturating_add(1);
            }
            (_, Some(y)) => {
                ops.push(Op::Add(y));
                j = j.saturating_add(1);
            }
            (None, None) => return ops,
        }
    }
}

/// A unified diff of two texts without file headers: `@@ -l,n +l,n @@` hunks with
/// [`CONTEXT`] lines of context.
pub fn unified(a: &str, b: &str) -> Vec<String> {
    let la: Vec<&str> = a.lines().collect();
    let lb: Vec<&str> = b.lines().collect();
    let ops = line_ops(&la, &lb);
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| !matches!(o, Op::Same(_)))
        .map(|(i, _)| i)
        .collect();
    // Hunks: runs of changes whose context windows touch.
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for &c in &changed {
        let start = c.saturating_sub(CONTEXT);
        let end = c.saturating_add(CONTEXT).saturating_add(1).min(ops.len());
        match hunks.last_mut() {
            Some((_, e)) if start <= *e => *e = end,
            _ => hunks.push((start, end)),
        }
    }
    let mut out = Vec::new();
    for (start, end) in hunks {
        let before = ops.get(..start).unwrap_or_default();
        let body = ops.get(start..end).unwrap_or_default();
        let count = |ops: &[Op<'_>], del: bool| {
            ops.iter()
                .filter(|o| match o {
                    Op::Same(_) => true,
                    Op::Del(_) => del,
                    Op::Add(_) => !del,
                })
                .count()
        };
        let (na, nb) = (count(body, true), count(body, false));
        // diff -u numbers an empty side by the line before it.
        let first = |skipped: usize, len: usize| {
            if len == 0 {
                skipped
            } else {
                skipped.saturating_add(1)
            }
        };
        out.push(format!(
            "@@ -{},{na} +{},{nb} @@",
            first(count(before, true), na),
            first(count(before, false), nb)
        ));
        out.extend(body.iter().map(|o| match o {
            Op::Same(l) => format!(" {l}"),
            Op::Del(l) => format!("-{l}"),
            Op::Add(l) => format!("+{l}"),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_has_hunks_with_context() {
        assert!(unified("a\nb\n", "a\nb\n").is_empty());
        assert_eq!(unified("x y", "x z"), ["@@ -1,1 +1,1 @@", "-x y", "+x z"]);
        let a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
        let b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n";
        assert_eq!(
            unified(a, b),
            [
                "@@ -2,9 +2,10 @@",
                " 2",
                " 3",
                " 4",
                "-5",
                "+five",
                " 6",
                " 7",
                " 8",
                " 9",
                " 10",
                "+11"
            ]
        );
        assert_eq!(unified("", "new"), ["@@ -0,0 +1,1 @@", "+new"]);
        assert_eq!(unified("old", ""), ["@@ -1,1 +0,0 @@", "-old"]);
    }

    #[test]
    fn far_apart_changes_make_two_hunks() {
        let a: String = (0..20).map(|i| format!("l{i}\n")).collect();
        let b = a.replace("l1\n", "one\n").replace("l18\n", "eighteen\n");
        let d = unified(&a, &b);
        assert_eq!(d.iter().filter(|l| l.starts_with("@@")).count(), 2, "{d:?}");
        assert_eq!(d[0], "@@ -1,5 +1,5 @@");
    }

    #[test]
    fn non_pe_inputs_are_errors() {
        assert!(diff(b"MZ", b"MZ", &InOrder).is_err());
    }
}
