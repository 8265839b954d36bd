//! The Authenticode image hash (Microsoft PE/COFF spec, "Calculating the PE Image Hash").
//!
//! Split in two so that callers that cannot hold the file in memory (the browser
//! streaming a Blob) can hash the same ranges chunk by chunk: [`hash_ranges`] says
//! which byte ranges to hash, [`image_digest`] hashes them from a slice.

use std::ops::Range;

use sha2::Digest;

use crate::bytes::{add, range};
use crate::error::{Error, Result};
use crate::pe::PeFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub const ALL: [DigestAlgorithm; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// One-shot digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finish()
    }
}

/// An incremental hasher over any of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(alg: DigestAlgorithm) -> Self {
        match alg {
            DigestAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// The file ranges covered by the Authenticode hash, in hashing order:
///
/// 1. 0..CheckSum;
/// 2. after CheckSum up to the security directory entry;
/// 3. after that entry up to SizeOfHeaders;
/// 4. each section's raw data, sorted by PointerToRawData, empty ones skipped;
/// 5. the "extra data": from SUM_OF_BYTES_HASHED (SizeOfHeaders plus the hashed
///    SizeOfRawData) up to the file length minus the certificate table size.
///
/// Step 5 follows the spec's arithmetic literally, as EDK2's
/// DxeImageVerificationLib and sbsigntools do: when sections leave gaps or overlap,
/// the start is a byte count, not the end of the last section, so firmware and
/// sbverify hash some bytes twice. Matching them matters more than elegance: the
/// firmware's answer is the one that boots. Signers pad the file to 8 bytes before
/// appending the table; that padding lies in range 5.
pub fn hash_ranges(pe: &PeFile<'_>) -> Result<Vec<Range<u64>>> {
    let len = pe.file_len;
    let checksum = pe.checksum_offset;
    let secdir = pe
        .security_dir_offset
        .ok_or_else(|| Error::malformed(pe.optional_header_offset, "no security data directory entry: the optional header has fewer than 5 data directories"))?;
    let headers_end = u64::from(pe.opt.size_of_headers);
    let after_secdir = add(secdir, 8, secdir, "security directory entry end")?;
    let after_checksum = add(checksum, 4, checksum, "CheckSum end")?;
    if headers_end < after_secdir || headers_end > len {
        return Err(Error::malformed(
            pe.optional_header_offset.saturating_add(60),
            format!("SizeOfHeaders {headers_end:#x} must cover the data directories and lie within the file ({len:#x} bytes)"),
        ));
    }
    // Where the table lies is checked by the certificate table walk; the hash only
    // needs its size, and uses it as EDK2 and sbsigntools do even when the table is
    // misplaced, so the digest of a broken file still matches theirs.
    let cert_size = pe.certificate_table().map_or(0, |d| u64::from(d.size));
    let image_end = len.saturating_sub(cert_size);
    // Sized once, and the order kept as table indices: a file that is nothing but
    // section table must not cost more than twice its size here (issue 9).
    let mut order: Vec<(u32, u32)> = pe
        .sections
        .iter()
        .zip(0u32..)
        .filter(|(s, _)| s.size_of_raw_data != 0)
        .map(|(s, i)| (s.pointer_to_raw_data, i))
        .collect();
    // Sections at the same offset keep table order (the index breaks ties), as EDK2's
    // insertion sort does.
    order.sort_unstable();
    let mut ranges = Vec::with_capacity(order.len().saturating_add(4));
    ranges.extend([
        0..checksum,
        after_checksum..secdir,
        after_secdir..headers_end,
    ]);
    let mut sum_of_bytes_hashed = headers_end;
    for s in order
        .iter()
        .filter_map(|&(_, i)| pe.sections.get(usize::try_from(i).ok()?))
    {
        let start = u64::from(s.pointer_to_raw_data);
        let end = s.raw_end();
        if end > len {
            return Err(Error::malformed(
                s.header_offset.saturating_add(16),
                format!("section {} raw data {start:#x}..{end:#x} runs past the end of the file ({len:#x})", s.name),
            ));
        }
        ranges.push(start..end);
        sum_of_bytes_hashed = add(
            sum_of_bytes_hashed,
            u64::from(s.size_of_raw_data),
            s.header_offset,
            "sum of the sections' SizeOfRawData",
        )?;
        // Overlapping raw data is hashed once per section, as EDK2 does; a table that
        // points 65535 sections at the same bytes must not cost 65535 passes (issue 9).
        if sum_of_bytes_hashed > len.saturating_mul(2) {
            return Err(Error::malformed(
                s.header_offset.saturating_add(16),
                format!("sections' raw data adds up to more than twice the file size ({len:#x} bytes): they overlap"),
            ));
        }
    }
    if sum_of_bytes_hashed < image_end {
        ranges.push(sum_of_bytes_hashed..image_end);
    }
    Ok(ranges)
}

/// The Authenticode digest of a whole file held in memory.
pub fn image_digest(pe: &PeFile<'_>, alg: DigestAlgorithm) -> Result<Vec<u8>> {
    let ranges = hash_ranges(pe)?;
    let mut h = Hasher::new(alg);
    for r in &ranges {
        h.update(range(pe.data, r, "hashed range")?);
    }
    Ok(h.finish())
}
