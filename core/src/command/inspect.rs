//! `inspect`: the report on a PE, UKI, addon or raw disk image, signatures included;
//! whole ([`inspect()`]) or fed range by range ([`PartialInspection`], the page).

use std::collections::BTreeMap;

use crate::authenticode::hash::{hash_ranges, Hasher};
use crate::authenticode::verify::{digest_algorithms, verify_with_digests};
use crate::authenticode::{self, DigestAlgorithm, SignatureSummary, TrustStore};
use crate::disk::inspect::{inspect_disk_with, looks_like_disk, DiskReport};
use crate::error::{Error, Result};
use crate::inspect::{self as report, ByteSource, Chunks, InspectOptions, Report};
use crate::lint::Lint;
use crate::pe::PeFile;
use crate::readat::ReadAt;
use crate::uki::kernel;

/// What `inspect --json` prints: a PE's report, or a raw disk's.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum FileReport {
    Pe(Box<Report>),
    Disk(Box<DiskReport>),
    /// An `.esl`, `.auth` or efivarfs signature database.
    SignatureList(Box<crate::siglist::SignatureListReport>),
}

/// Runs two independent passes over a file and returns both results. The core has
/// no threads (it builds for wasm): [`InOrder`] runs one after the other, and the
/// CLI runs them on two threads, about one pass of wall time instead of two.
pub trait Join {
    fn join<A: Send, B: Send>(
        &self,
        a: impl FnOnce() -> A + Send,
        b: impl FnOnce() -> B + Send,
    ) -> (A, B);
}

/// [`Join`] on the calling thread: `a`, then `b`.
#[derive(Debug, Clone, Copy, Default)]
pub struct InOrder;

impl Join for InOrder {
    fn join<A: Send, B: Send>(
        &self,
        a: impl FnOnce() -> A + Send,
        b: impl FnOnce() -> B + Send,
    ) -> (A, B) {
        let a = a();
        (a, b())
    }
}

/// `ukitool inspect`: a raw disk image (partitions, FAT files, a report per EFI
/// binary) or a PE. With hashing on, a PE's section hashes and its Authenticode
/// digest (behind the signatures summary) are two full passes, run through `join`.
pub fn inspect(data: &[u8], opts: &InspectOptions, join: &impl Join) -> Result<FileReport> {
    if looks_like_disk(data) {
        return inspect_disk_with(data, opts).map(|r| FileReport::Disk(Box::new(r)));
    }
    if crate::siglist::looks_like_siglist(data) {
        return crate::siglist::inspect(data).map(|r| FileReport::SignatureList(Box::new(r)));
    }
    if !(opts.hash && opts.signatures) {
        return report::inspect(data, opts).map(|r| FileReport::Pe(Box::new(r)));
    }
    let sections_only = InspectOptions {
        signatures: false,
        ..*opts
    };
    let (report, signatures) = join.join(
        || report::inspect(data, &sections_only),
        || PeFile::parse(data).ok().map(|pe| Signatures::check(&pe)),
    );
    let mut report = report?;
    if let Some(s) = signatures {
        s.add_to(&mut report);
    }
    Ok(FileReport::Pe(Box::new(report)))
}

/// The signatures part of a report, checked without trust anchors, with their lints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signatures {
    pub summaries: Vec<SignatureSummary>,
    pub lints: Vec<Lint>,
}

impl Signatures {
    /// Check the signatures of `pe`, which holds the whole file (none without a
    /// certificate table).
    pub fn check(pe: &PeFile<'_>) -> Self {
        let (summaries, lints) = authenticode::inspect_signatures(pe);
        Signatures { summaries, lints }
    }

    /// [`Self::check`] with the image digests computed elsewhere: `pe` holds only the
    /// headers and the certificate table (see [`verify_with_digests`]).
    pub fn check_with_digests(
        pe: &PeFile<'_>,
        digests: BTreeMap<DigestAlgorithm, Vec<u8>>,
    ) -> Self {
        if pe.certificate_table().is_none() {
            return Signatures::default();
        }
        let r = verify_with_digests(pe, &TrustStore::default(), digests);
        Signatures {
            summaries: r.signatures,
            lints: r.lints,
        }
    }

    /// Put them into a report made without them; their lints go last, where
    /// [`report::inspect_pe`] puts them.
    pub fn add_to(self, report: &mut Report) {
        report.signatures = self.summaries;
        report.lints.extend(self.lints);
    }
}

/// An inspection fed from partial reads (the page slices a `Blob`): the header
/// prefix first, then the small ranges the report decodes ([`Self::needed_ranges`]),
/// then each section's sha256 as the caller streams the payloads, and the
/// signatures checked over a streamed digest. A 1 GiB file is never held whole; once
/// everything is in, [`Self::report`] equals [`inspect()`]'s.
#[derive(Debug, Clone)]
pub struct PartialInspection {
    src: Chunks,
    /// sha256 (lowercase hex) per section index, as the caller computes them.
    sha256: Vec<Option<String>>,
    signatures: Option<Signatures>,
}

impl PartialInspection {
    /// Parse the headers from the first bytes of a file of `file_len` bytes; a prefix
    /// too short for them is a `Truncated` error that says how far they reach.
    pub fn new(prefix: Vec<u8>, file_len: u64) -> Result<Self> {
        let sections = PeFile::parse_prefix(&prefix, file_len)?.sections.len();
        Ok(PartialInspection {
            src: Chunks {
                file_len,
                chunks: vec![(0, prefix)],
            },
            sha256: vec![None; sections],
            signatures: None,
        })
    }

    /// The headers, with long `/N` section names resolved once the COFF string table
    /// (often at the end of the file) has been read, as a whole-file parse does.
    pub fn pe(&self) -> Result<PeFile<'_>> {
        let mut pe = PeFile::parse_prefix(self.prefix(), self.src.file_len)?;
        if let Some(table) = self.string_table(&pe) {
            pe.resolve_long_names(table)?;
        }
        Ok(pe)
    }

    /// The ranges (offset, length) still to read before [`Self::report`] is complete.
    pub fn needed_ranges(&self) -> Result<Vec<(u64, u64)>> {
        let pe = self.pe()?;
        let mut ranges = report::needed_ranges(&pe);
        ranges.extend(self.string_table_range(&pe));
        ranges.extend(self.kernel_range(&pe));
        ranges.retain(|&(off, len)| len > 0 && self.src.read(off, len).is_none());
        Ok(ranges)
    }

    /// Hand over the bytes read at `offset`.
    pub fn add_chunk(&mut self, offset: u64, bytes: Vec<u8>) {
        self.src.chunks.push((offset, bytes));
    }

    /// Each section's payload (offset, length) to hash, in table order; the length is
    /// `None` when the payload does not lie inside the file (the report then has no
    /// hash for it, as [`inspect()`] has none).
    pub fn payload_ranges(&self) -> Result<Vec<(u64, Option<u64>)>> {
        let pe = self.pe()?;
        Ok(pe
            .sections
            .iter()
            .map(|s| {
                let off = u64::from(s.pointer_to_raw_data);
                let len = u64::from(s.payload_len());
                let inside = off.checked_add(len).is_some_and(|e| e <= self.src.file_len);
                (off, inside.then_some(len))
            })
            .collect())
    }

    /// Record the sha256 computed for section `index`.
    pub fn set_sha256(&mut self, index: usize, hex: String) -> Result<()> {
        let slot = self
            .sha256
            .get_mut(index)
            .ok_or_else(|| Error::NotFound(format!("section {index}")))?;
        *slot = Some(hex);
        Ok(())
    }

    pub fn set_signatures(&mut self, signatures: Signatures) {
        self.signatures = Some(signatures);
    }

    /// The report with whatever has been read and hashed so far.
    pub fn report(&self) -> Result<Report> {
        let pe = self.pe()?;
        let mut report = report::inspect_pe(&pe, &self.src, &InspectOptions::NO_HASH);
        for (row, sha) in report.sections.iter_mut().zip(&self.sha256) {
            if sha.is_some() {
                row.sha256.clone_from(sha);
            }
        }
        if let Some(s) = &self.signatures {
            s.clone().add_to(&mut report);
        }
        Ok(report)
    }

    /// The header prefix: always the first chunk.
    fn prefix(&self) -> &[u8] {
        self.src
            .chunks
            .first()
            .map_or(&[][..], |(_, d)| d.as_slice())
    }

    /// The whole kernel (.linux, EFI Boot Guard's .kernel, or the file itself), once
    /// its first bytes show an `Image` or EFI zboot kernel: their version needs all of
    /// it, where an x86 kernel's facts are all in the prefix already read.
    fn kernel_range(&self, pe: &PeFile<'_>) -> Option<(u64, u64)> {
        let (offset, len) = match pe
            .section(".linux")
            .or_else(|| pe.section(crate::uki::EFIBOOTGUARD_KERNEL))
        {
            Some(s) => (u64::from(s.pointer_to_raw_data), u64::from(s.payload_len())),
            None => (0, self.src.file_len),
        };
        let prefix = self.src.read(offset, len.min(kernel::PREFIX_LEN))?;
        matches!(
            kernel::format(prefix),
            Some(kernel::Format::Image | kernel::Format::Zboot)
        )
        .then_some((offset, len))
    }

    /// The string table's offset and length (from its size field), clamped to the
    /// file, once the size field has been read.
    fn string_table_range(&self, pe: &PeFile<'_>) -> Option<(u64, u64)> {
        let at = pe.string_table_offset()?;
        let size = self.src.read(at, 4)?;
        let size = u64::from(u32::from_le_bytes(size.try_into().ok()?));
        Some((at, size.min(self.src.file_len.saturating_sub(at))))
    }

    fn string_table(&self, pe: &PeFile<'_>) -> Option<&[u8]> {
        let (at, len) = self.string_table_range(pe)?;
        self.src.read(at, len)
    }
}

/// The longest streamed PE whose signatures are checked (see [`inspect_at`]).
const MAX_SIGNED_LEN: u64 = 512 << 20;

/// Bytes read per step when a file not in memory is hashed.
const STREAM_CHUNK: u64 = 1 << 20;

/// The report on a PE read through [`ReadAt`] without holding it whole: its headers
/// and the small ranges the report decodes are read, each section's payload and the
/// Authenticode digest are hashed in 1 MiB steps, and the signatures are checked
/// over a buffer that holds only the headers and the certificate table (the rest of
/// it zero, never written). The report equals [`inspect()`]'s on the same bytes.
pub fn inspect_at(file: &dyn ReadAt, opts: &InspectOptions) -> Result<Report> {
    let len = file.size();
    let mut prefix_len = len.min(64 << 10);
    let mut p = loop {
        match PartialInspection::new(file.read_vec(0, prefix_len, "PE headers")?, len) {
            // Headers longer than the prefix (many sections): read as far as they reach.
            Err(Error::Truncated { offset, needed, .. })
                if offset.saturating_add(needed) > prefix_len && prefix_len < len =>
            {
                let want = offset
                    .saturating_add(needed)
                    .max(prefix_len.saturating_mul(2));
                prefix_len = want.min(len).min(crate::readat::MAX_OWNED_READ);
            }
            other => break other?,
        }
    };
    // Two rounds: a kernel's first bytes decide whether the whole of it is needed.
    for _round in 0..2 {
        for (off, n) in p.needed_ranges()? {
            let n = n.min(crate::readat::MAX_OWNED_READ);
            p.add_chunk(off, file.read_vec(off, n, "PE range")?);
        }
    }
    if !opts.hash {
        return p.report();
    }
    for (i, (off, n)) in p.payload_ranges()?.into_iter().enumerate() {
        if let Some(n) = n {
            let mut h = Hasher::new(DigestAlgorithm::Sha256);
            stream_range(file, off, n, &mut [&mut h])?;
            p.set_sha256(i, crate::bytes::hex(&h.finish()))?;
        }
    }
    if opts.signatures {
        if let Some(sig) = streamed_signatures(file, &p)? {
            p.set_signatures(sig);
        }
    }
    p.report()
}

/// Feeds `len` bytes from `offset` to each hasher, a chunk at a time.
fn stream_range(
    file: &dyn ReadAt,
    offset: u64,
    len: u64,
    hashers: &mut [&mut Hasher],
) -> Result<()> {
    let mut buf = vec![0u8; usize::try_from(len.min(STREAM_CHUNK)).unwrap_or(0)];
    let mut done = 0u64;
    while done < len {
        let n = (len.saturating_sub(done)).min(STREAM_CHUNK);
        let b = buf
            .get_mut(..usize::try_from(n).unwrap_or(0))
            .unwrap_or_default();
        file.read_exact_at(offset.saturating_add(done), b)?;
        for h in hashers.iter_mut() {
            h.update(b);
        }
        done = done.saturating_add(n);
    }
    Ok(())
}

/// The signatures of a streamed PE: None when it has no certificate table.
fn streamed_signatures(file: &dyn ReadAt, p: &PartialInspection) -> Result<Option<Signatures>> {
    let pe = p.pe()?;
    let Some(dir) = pe.certificate_table() else {
        return Ok(None);
    };
    let (at, size) = (u64::from(dir.virtual_address), u64::from(dir.size));
    let end = at.checked_add(size).filter(|&e| e <= file.size());
    // A table past 512 MiB (no real UKI is that large; a hostile size field) is not
    // checked: the buffer below is as long as the table's end.
    let Some(end) = end.filter(|&e| size <= crate::readat::MAX_OWNED_READ && e <= MAX_SIGNED_LEN)
    else {
        return Ok(None);
    };
    // Zeroed and never written outside the headers and the table: the allocator
    // maps it lazily, so only those pages are resident.
    let mut sparse = vec![0u8; usize::try_from(end).map_err(|_| Error::invalid("PE too large"))?];
    let prefix = p.prefix();
    if let Some(d) = sparse.get_mut(..prefix.len()) {
        d.copy_from_slice(prefix);
    }
    let table = usize::try_from(at)
        .ok()
        .and_then(|a| sparse.get_mut(a..))
        .ok_or_else(|| Error::invalid("certificate table offset"))?;
    file.read_exact_at(at, table)?;
    let whole = PeFile::parse_prefix(&sparse, file.size())?;
    let ranges = hash_ranges(&whole)?;
    let mut digests = BTreeMap::new();
    let algs = digest_algorithms(&whole);
    let mut hashers: Vec<Hasher> = algs.iter().map(|&a| Hasher::new(a)).collect();
    for r in &ranges {
        let mut refs: Vec<&mut Hasher> = hashers.iter_mut().collect();
        stream_range(file, r.start, r.end.saturating_sub(r.start), &mut refs)?;
    }
    for (a, h) in algs.into_iter().zip(hashers) {
        digests.insert(a, h.finish());
    }
    Ok(Some(Signatures::check_with_digests(&whole, digests)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::hex;
    use crate::disk::layout::test_pe;

    #[test]
    fn partial_inspection_fed_everything_equals_the_whole_file_report() {
        // An arm64 Image in .linux: its banner is past the prefix, so a second round
        // asks for the whole kernel, as the page's worker reads it.
        let mut image = vec![0u8; 100_000];
        image[0x38..0x3c].copy_from_slice(b"ARMd");
        image.extend_from_slice(b"Linux version 6.12.1-arm64 (x@y) #1 SMP\n");
        let data = test_pe(0x8664, &[(".osrel", b"ID=x\n"), (".linux", &image)]);
        let mut p = PartialInspection::new(data[..0x400].to_vec(), data.len() as u64).unwrap();
        for _round in 0..2 {
            for (off, len) in p.needed_ranges().unwrap() {
                let (off, len) = (off as usize, len as usize);
                p.add_chunk(off as u64, data[off..off + len].to_vec());
            }
        }
        assert!(p.needed_ranges().unwrap().is_empty());
        let version = p.report().unwrap().kernel.unwrap().version;
        assert_eq!(version.as_deref(), Some("6.12.1-arm64 (x@y) #1 SMP"));
        for (i, (off, len)) in p.payload_ranges().unwrap().into_iter().enumerate() {
            let (off, len) = (off as usize, len.unwrap() as usize);
            let sha = DigestAlgorithm::Sha256.digest(&data[off..off + len]);
            p.set_sha256(i, hex(&sha)).unwrap();
        }
        assert!(p.set_sha256(9, String::new()).is_err());
        let FileReport::Pe(whole) = inspect(&data, &InspectOptions::default(), &InOrder).unwrap()
        else {
            panic!("not a PE report");
        };
        assert_eq!(p.report().unwrap(), *whole);
    }
}
