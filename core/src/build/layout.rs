//! Laying new sections out after a stub and writing the image in one pass.
//!
//! The output buffer is allocated once at its final size; each payload byte is copied
//! exactly once, in file order. Header fields are patched at the end.

use crate::bytes::{align_up, slice};
use crate::error::{Error, Result};
use crate::pe::raw::{
    COFF_HEADER_SIZE, SCN_CNT_CODE, SCN_CNT_INITIALIZED_DATA, SECTION_HEADER_SIZE,
};
use crate::pe::PeFile;

use super::{PlannedSection, MAX_IMAGE_SIZE};

/// Index of the debug data directory, whose entries hold file offsets.
const DIR_DEBUG: usize = 6;

pub(super) struct Layout<'p, 'a> {
    pub stub: &'p PeFile<'a>,
    pub new: &'p [&'p PlannedSection<'a>],
    /// The stub's `.sbat` (section index) rewritten with this text.
    pub sbat_in_place: Option<(usize, &'p [u8])>,
    /// A stub section whose header is dropped and whose bytes are zeroed.
    pub removed_stub_section: Option<usize>,
    pub dll_characteristics: u16,
    pub timestamp: u32,
}

/// One row of the output section table.
struct Row {
    /// The 40-byte header to start from (the stub's, or zeros).
    base: [u8; 40],
    name: [u8; 8],
    virtual_size: u32,
    virtual_address: u32,
    size_of_raw_data: u32,
    pointer_to_raw_data: u32,
    characteristics: u32,
}

fn too_big(what: &str) -> Error {
    Error::invalid(format!(
        "{what} exceeds the PE format's 32-bit limits (and the 2 GiB firmware limit)"
    ))
}

fn to_u32(v: u64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| too_big(what))
}

fn put(out: &mut [u8], at: u64, bytes: &[u8]) -> Result<()> {
    let start = usize::try_from(at).map_err(|_| too_big("header offset"))?;
    let end = start.saturating_add(bytes.len());
    out.get_mut(start..end)
        .ok_or_else(|| {
            Error::invalid(format!(
                "internal layout error: field at {at:#x} outside the image"
            ))
        })?
        .copy_from_slice(bytes);
    Ok(())
}

pub(super) fn write_image(l: &Layout<'_, '_>) -> Result<Vec<u8>> {
    let stub = l.stub;
    let data = stub.data;
    let fa = u64::from(stub.opt.file_alignment);
    let sa = u64::from(stub.opt.section_alignment);
    let opt_at = stub.optional_header_offset;
    if !fa.is_power_of_two() || !sa.is_power_of_two() {
        return Err(Error::malformed(
            opt_at + 32,
            format!("SectionAlignment {sa:#x} and FileAlignment {fa:#x} must be powers of two"),
        ));
    }
    let old_soh = u64::from(stub.opt.size_of_headers);
    let sto = stub.section_table_offset;
    let old_table_end = sto + SECTION_HEADER_SIZE * u64::from(stub.coff.number_of_sections);
    if old_table_end > old_soh || old_soh > data.len() as u64 {
        return Err(Error::malformed(
            opt_at + 60,
            format!("SizeOfHeaders {old_soh:#x} must cover the section table (ends {old_table_end:#x}) and lie within the stub ({:#x} bytes)", data.len()),
        ));
    }

    // The stub's sections, kept in table order, with the .sbat rewrite applied.
    let mut rows: Vec<Row> = Vec::new();
    let mut body_end = old_soh;
    let mut va_end = 0u64;
    let mut min_va = u64::MAX;
    let mut sbat_slot: Option<(u64, u64, &[u8])> = None; // (old ptr, slot len, text)
    let mut zero_slot: Option<(u64, u64)> = None;
    for (i, s) in stub.sections.iter().enumerate() {
        let ptr = u64::from(s.pointer_to_raw_data);
        if s.size_of_raw_data != 0 {
            if ptr < old_soh || s.raw_end() > data.len() as u64 {
                return Err(Error::malformed(
                    s.header_offset + 20,
                    format!(
                        "stub section {} raw data {ptr:#x}..{:#x} lies outside the stub body ({old_soh:#x}..{:#x})",
                        s.name,
                        s.raw_end(),
                        data.len()
                    ),
                ));
            }
            body_end = body_end.max(s.raw_end());
        }
        if l.removed_stub_section == Some(i) {
            zero_slot = Some((ptr, u64::from(s.size_of_raw_data)));
            continue;
        }
        let mut row = Row {
            base: crate::bytes::array(data, s.header_offset, "section header")?,
            name: s.raw_name,
            virtual_size: s.virtual_size,
            virtual_address: s.virtual_address,
            size_of_raw_data: s.size_of_raw_data,
            pointer_to_raw_data: s.pointer_to_raw_data,
            characteristics: s.characteristics,
        };
        if let Some((_, text)) = l.sbat_in_place.filter(|(j, _)| *j == i) {
            let len = text.len() as u64;
            let raw = align_up(len, fa).ok_or_else(|| too_big(".sbat"))?;
            let slot = raw.max(u64::from(s.size_of_raw_data));
            row.virtual_size = to_u32(len, ".sbat")?;
            row.size_of_raw_data = to_u32(slot, ".sbat")?;
            sbat_slot = Some((ptr, slot, text));
            body_end = body_end.max(ptr + slot);
        }
        let mem = if row.virtual_size == 0 {
            row.size_of_raw_data
        } else {
            row.virtual_size
        };
        va_end = va_end.max(u64::from(row.virtual_address) + u64::from(mem));
        min_va = min_va.min(u64::from(row.virtual_address));
        rows.push(row);
    }

    // A removed stub section (the .sbat that moved to the end) leaves no hole in the
    // file: the stub sections after it move down (sbverify warns about, and
    // Authenticode does not cover, gaps between sections). Only its address range
    // stays unused in memory, since VAs may be referenced by code.
    let debug_dir = stub
        .data_directories
        .get(DIR_DEBUG)
        .is_some_and(|d| d.size != 0);
    let cut = zero_slot.filter(|&(p, r)| {
        !debug_dir
            && r != 0
            && p + r <= body_end
            && !rows.iter().any(|row| {
                let q = u64::from(row.pointer_to_raw_data);
                row.size_of_raw_data != 0 && q >= p && q < p + r
            })
    });
    if let Some((p, r)) = cut {
        for row in &mut rows {
            if u64::from(row.pointer_to_raw_data) > p {
                row.pointer_to_raw_data -= r as u32;
            }
        }
    }
    let stub_body_end = body_end;
    let body_end = body_end - cut.map_or(0, |(_, r)| r);
    // Header room: grow SizeOfHeaders when the table no longer fits, shifting the
    // stub's raw data by whole FileAlignment units; impossible when the headers would
    // overlap the first section in memory (systemd #28593 "not enough header space")
    // or when the debug directory holds file offsets we would have to rewrite.
    let n = rows.len() + l.new.len();
    let nsec = u16::try_from(n)
        .map_err(|_| Error::invalid(format!("{n} sections exceed the PE limit of 65535")))?;
    let needed = sto + SECTION_HEADER_SIZE * n as u64;
    let new_soh = old_soh.max(align_up(needed, fa).ok_or_else(|| too_big("headers"))?);
    let delta = new_soh - old_soh;
    if delta != 0 {
        if new_soh > min_va {
            return Err(Error::invalid(format!(
                "not enough header space: {n} section headers need headers up to {needed:#x}, but the stub's SizeOfHeaders is {old_soh:#x} and its first section is mapped at {min_va:#x}"
            )));
        }
        if debug_dir {
            return Err(Error::invalid(format!(
                "not enough header space: {n} section headers need headers up to {needed:#x} (SizeOfHeaders is {old_soh:#x}), and the stub's debug directory holds file offsets, so its sections cannot be moved"
            )));
        }
    }
    let shift = |p: u32| -> Result<u32> {
        if p == 0 {
            Ok(0)
        } else {
            to_u32(u64::from(p) + delta, "section offset")
        }
    };
    for r in &mut rows {
        r.pointer_to_raw_data = shift(r.pointer_to_raw_data)?;
    }

    // New sections, after the stub's in memory and in the file.
    let mut va = align_up(va_end, sa).ok_or_else(|| too_big("image"))?;
    let mut file = align_up(body_end + delta, fa).ok_or_else(|| too_big("image"))?;
    for s in l.new {
        let len = s.len();
        if len == 0 {
            return Err(Error::invalid(format!("section {} is empty", s.name)));
        }
        let raw = align_up(len, fa).ok_or_else(|| too_big(&s.name))?;
        let mut name = [0u8; 8];
        let nb = s.name.as_bytes();
        name.get_mut(..nb.len())
            .ok_or_else(|| {
                Error::invalid(format!("section name {:?} longer than 8 bytes", s.name))
            })?
            .copy_from_slice(nb);
        rows.push(Row {
            base: [0; 40],
            name,
            virtual_size: to_u32(len, &s.name)?,
            virtual_address: to_u32(va, "image")?,
            size_of_raw_data: to_u32(raw, &s.name)?,
            pointer_to_raw_data: to_u32(file, "image")?,
            characteristics: s.characteristics,
        });
        va = align_up(va + len, sa).ok_or_else(|| too_big("image"))?;
        file += raw;
        if file > MAX_IMAGE_SIZE {
            break;
        }
    }
    let total = file;
    if total > MAX_IMAGE_SIZE {
        return Err(Error::invalid(format!(
            "the image would be {total} bytes or more; images over 2 GiB fail to load on real firmware (systemd #31452)"
        )));
    }
    let size_of_image = to_u32(va, "SizeOfImage")?;
    let sum = |flag: u32| -> Result<u32> {
        let v: u64 = rows
            .iter()
            .filter(|r| r.characteristics & flag != 0)
            .map(|r| u64::from(r.size_of_raw_data))
            .sum();
        to_u32(v, "section sizes")
    };
    let size_of_code = sum(SCN_CNT_CODE)?;
    let size_of_init = sum(SCN_CNT_INITIALIZED_DATA)?;

    // Write, in file order: headers, the stub body, the new payloads.
    let cap = usize::try_from(total).map_err(|_| too_big("image"))?;
    let mut out: Vec<u8> = Vec::with_capacity(cap);
    out.extend_from_slice(slice(data, 0, sto, "stub headers")?);
    for r in &rows {
        let mut h = r.base;
        h[..8].copy_from_slice(&r.name);
        h[8..12].copy_from_slice(&r.virtual_size.to_le_bytes());
        h[12..16].copy_from_slice(&r.virtual_address.to_le_bytes());
        h[16..20].copy_from_slice(&r.size_of_raw_data.to_le_bytes());
        h[20..24].copy_from_slice(&r.pointer_to_raw_data.to_le_bytes());
        h[36..40].copy_from_slice(&r.characteristics.to_le_bytes());
        out.extend_from_slice(&h);
    }
    out.resize(to_usize(new_soh)?, 0);
    match cut {
        Some((p, r)) => {
            out.extend_from_slice(slice(data, old_soh, p - old_soh, "stub body")?);
            out.extend_from_slice(slice(
                data,
                p + r,
                stub_body_end.min(data.len() as u64).saturating_sub(p + r),
                "stub body",
            )?);
        }
        None => out.extend_from_slice(slice(
            data,
            old_soh,
            stub_body_end.min(data.len() as u64) - old_soh,
            "stub body",
        )?),
    }
    out.resize(to_usize(body_end + delta)?, 0);
    if let Some((ptr, slot, text)) = sbat_slot {
        let at = to_usize(ptr + delta)?;
        let region = out
            .get_mut(at..at.saturating_add(to_usize(slot)?))
            .ok_or_else(|| Error::invalid("internal layout error: .sbat slot"))?;
        region.fill(0);
        region
            .get_mut(..text.len())
            .ok_or_else(|| Error::invalid("internal layout error: .sbat text"))?
            .copy_from_slice(text);
    }
    if let Some((ptr, len)) = zero_slot.filter(|_| cut.is_none()) {
        let at = to_usize(ptr + delta)?;
        if let Some(region) = out.get_mut(at..at.saturating_add(to_usize(len)?)) {
            region.fill(0);
        }
    }
    let first_new = rows.len() - l.new.len();
    for (r, s) in rows.iter().skip(first_new).zip(l.new) {
        out.resize(to_usize(u64::from(r.pointer_to_raw_data))?, 0);
        for c in &s.chunks {
            out.extend_from_slice(c);
        }
        out.resize(
            to_usize(u64::from(r.pointer_to_raw_data) + u64::from(r.size_of_raw_data))?,
            0,
        );
    }
    out.resize(cap, 0);

    // Header fields.
    let c = u64::from(stub.e_lfanew) + 4;
    put(&mut out, c + 2, &nsec.to_le_bytes())?;
    put(&mut out, c + 4, &l.timestamp.to_le_bytes())?;
    // The trailing COFF symbol table is not copied: clear the pointer to it.
    put(&mut out, c + 8, &0u32.to_le_bytes())?;
    put(&mut out, c + 12, &0u32.to_le_bytes())?;
    if c + COFF_HEADER_SIZE != opt_at {
        return Err(Error::malformed(
            c,
            "optional header does not follow the COFF header",
        ));
    }
    put(&mut out, opt_at + 4, &size_of_code.to_le_bytes())?;
    put(&mut out, opt_at + 8, &size_of_init.to_le_bytes())?;
    put(&mut out, opt_at + 56, &size_of_image.to_le_bytes())?;
    put(
        &mut out,
        opt_at + 60,
        &to_u32(new_soh, "SizeOfHeaders")?.to_le_bytes(),
    )?;
    put(&mut out, opt_at + 70, &l.dll_characteristics.to_le_bytes())?;
    let sum = pe_checksum(&out, stub.checksum_offset);
    put(&mut out, stub.checksum_offset, &sum.to_le_bytes())?;
    Ok(out)
}

fn to_usize(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| too_big("image"))
}

/// The PE CheckSum (as imagehlp's CheckSumMappedFile computes it): the 16-bit
/// one's-complement sum of the file's little-endian words, with the 4-byte CheckSum
/// field at `checksum_offset` read as zero, plus the file length.
pub fn pe_checksum(data: &[u8], checksum_offset: u64) -> u32 {
    // Summing u32 words and folding is the same 16-bit end-around-carry sum, since
    // 2^16 = 1 (mod 2^16 - 1); a u64 accumulator cannot overflow below 16 GiB.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for w in &mut chunks {
        acc += u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    }
    let mut tail = [0u8; 4];
    for (t, b) in tail.iter_mut().zip(chunks.remainder()) {
        *t = *b;
    }
    acc += u64::from(u32::from_le_bytes(tail));
    // Remove the CheckSum field's own two words (it sits at an even offset, so they
    // are whole 16-bit words of the sum).
    if let Ok(field) = crate::bytes::array::<4>(data, checksum_offset, "CheckSum") {
        let v = u64::from(u32::from_le_bytes(field));
        let lo = v & 0xffff;
        let hi = v >> 16;
        let m = 0xffff_u64;
        // Work modulo 2^16-1: adding (m - x) subtracts x.
        acc += (m - lo % m) + (m - hi % m);
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    (acc as u32).wrapping_add(data.len() as u32)
}
