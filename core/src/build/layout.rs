//! Laying new sections out after a stub and writing the image in one pass.
//!
//! The output buffer is allocated once at its final size; each payload byte is copied
//! exactly once, in file order. Header fields are patched at the end.

use object::pod;
use object::LittleEndian as LE;

use crate::bytes::{align_up, slice, span_end};
use crate::error::{Error, Result};
use crate::pe::raw::{
    ImageFileHeader, ImageSectionHeader, COFF_HEADER_SIZE, DIR_DEBUG, OPT_DLL_CHARACTERISTICS,
    OPT_SECTION_ALIGNMENT, OPT_SIZE_OF_CODE, OPT_SIZE_OF_HEADERS, OPT_SIZE_OF_IMAGE,
    OPT_SIZE_OF_INITIALIZED_DATA, SCN_CNT_CODE, SCN_CNT_INITIALIZED_DATA, SECTION_HEADER_SIZE,
};
use crate::pe::{self, PeFile};

use super::PlannedSection;
use crate::uki::MAX_IMAGE_SIZE;

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
    /// The header to start from (the stub's, or zeros).
    base: ImageSectionHeader,
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

fn internal(what: &str) -> Error {
    Error::invalid(format!("internal layout error: {what}"))
}

/// Write `bytes` at `base + field` of `out`.
fn put(out: &mut [u8], base: u64, field: u64, bytes: &[u8]) -> Result<()> {
    let at = base
        .checked_add(field)
        .ok_or_else(|| internal("header field offset overflows"))?;
    let start = usize::try_from(at).map_err(|_| too_big("header offset"))?;
    let end = start.saturating_add(bytes.len());
    out.get_mut(start..end)
        .ok_or_else(|| internal(&format!("field at {at:#x} outside the image")))?
        .copy_from_slice(bytes);
    Ok(())
}

/// `data[start..end]` of the stub body.
fn span(data: &[u8], start: u64, end: u64) -> Result<&[u8]> {
    let len = end
        .checked_sub(start)
        .ok_or_else(|| internal(&format!("stub body range {start:#x}..{end:#x}")))?;
    slice(data, start, len, "stub body")
}

/// End of a section table of `n` headers at `table_offset`.
fn table_end(table_offset: u64, n: u16) -> Result<u64> {
    SECTION_HEADER_SIZE
        .checked_mul(u64::from(n))
        .and_then(|t| t.checked_add(table_offset))
        .ok_or_else(|| {
            Error::malformed(
                table_offset,
                format!("a section table of {n} headers overflows"),
            )
        })
}

pub(super) fn write_image(l: &Layout<'_, '_>) -> Result<Vec<u8>> {
    let stub = Stub::check(l.stub)?;
    let mut t = Table::of_stub(l, &stub)?;
    let cut = t.close_gap(stub.debug_dir);
    let stub_body_end = t.body_end;
    let body_end = t
        .body_end
        .checked_sub(cut.map_or(0, |(_, r)| u64::from(r)))
        .ok_or_else(|| internal("the removed .sbat ends after the stub body"))?;
    let room = t.header_room(l.new.len(), &stub)?;
    for r in &mut t.rows {
        r.pointer_to_raw_data = room.shift(r.pointer_to_raw_data)?;
    }
    let first_new = t.rows.len();
    let new_body_end = room.moved(body_end)?;
    let (va, total) = t.append(l.new, &stub, new_body_end)?;
    if total > MAX_IMAGE_SIZE {
        return Err(Error::invalid(format!(
            "the image would be {total} bytes or more; images over 2 GiB fail to load on real firmware (systemd #31452)"
        )));
    }
    let sizes = Sizes {
        image: to_u32(va, "SizeOfImage")?,
        code: t.raw_size_with(SCN_CNT_CODE)?,
        initialized_data: t.raw_size_with(SCN_CNT_INITIALIZED_DATA)?,
    };

    // Write, in file order: headers, the stub body, the new payloads.
    let cap = usize::try_from(total).map_err(|_| too_big("image"))?;
    let data = l.stub.data;
    let mut out: Vec<u8> = Vec::with_capacity(cap);
    out.extend_from_slice(slice(data, 0, l.stub.section_table_offset, "stub headers")?);
    for r in &t.rows {
        out.extend_from_slice(pod::bytes_of(&r.header()));
    }
    out.resize(to_usize(room.size_of_headers)?, 0);
    let stub_end = stub_body_end.min(data.len() as u64);
    match cut {
        Some((p, r)) => {
            let cut_end = span_end(p, r);
            out.extend_from_slice(span(data, stub.size_of_headers, u64::from(p))?);
            out.extend_from_slice(span(data, cut_end, stub_end.max(cut_end))?);
        }
        None => out.extend_from_slice(span(data, stub.size_of_headers, stub_end)?),
    }
    out.resize(to_usize(new_body_end)?, 0);
    t.fill_slots(&mut out, &room, cut.is_some())?;
    for (r, s) in t.rows.iter().skip(first_new).zip(l.new) {
        out.resize(to_usize(u64::from(r.pointer_to_raw_data))?, 0);
        for c in &s.chunks {
            out.extend_from_slice(c);
        }
        out.resize(
            to_usize(span_end(r.pointer_to_raw_data, r.size_of_raw_data))?,
            0,
        );
    }
    out.resize(cap, 0);
    patch_headers(&mut out, l, &sizes, &room)?;
    Ok(out)
}

/// The stub's alignments and header size, checked before anything is laid out.
struct Stub {
    section_table_offset: u64,
    file_alignment: u64,
    section_alignment: u64,
    size_of_headers: u64,
    /// The stub has a debug directory, whose entries hold file offsets: its sections
    /// cannot move in the file.
    debug_dir: bool,
}

impl Stub {
    fn check(stub: &PeFile<'_>) -> Result<Stub> {
        let fa = u64::from(stub.opt.file_alignment);
        let sa = u64::from(stub.opt.section_alignment);
        let opt_at = stub.optional_header_offset;
        if !fa.is_power_of_two() || !sa.is_power_of_two() {
            return Err(Error::malformed(
                opt_at.saturating_add(OPT_SECTION_ALIGNMENT),
                format!("SectionAlignment {sa:#x} and FileAlignment {fa:#x} must be powers of two"),
            ));
        }
        let soh = u64::from(stub.opt.size_of_headers);
        let table_end = table_end(stub.section_table_offset, stub.coff.number_of_sections)?;
        let len = stub.data.len() as u64;
        if table_end > soh || soh > len {
            return Err(Error::malformed(
                opt_at.saturating_add(OPT_SIZE_OF_HEADERS),
                format!("SizeOfHeaders {soh:#x} must cover the section table (ends {table_end:#x}) and lie within the stub ({len:#x} bytes)"),
            ));
        }
        Ok(Stub {
            section_table_offset: stub.section_table_offset,
            file_alignment: fa,
            section_alignment: sa,
            size_of_headers: soh,
            debug_dir: stub
                .data_directories
                .get(DIR_DEBUG)
                .is_some_and(|d| d.size != 0),
        })
    }
}

/// The output section table as it is worked out, and what the stub's rows leave to
/// fill in the body.
struct Table<'t> {
    rows: Vec<Row>,
    /// End of the stub's raw data in the stub file.
    body_end: u64,
    /// End of the stub's sections in memory, and the lowest address of one.
    va_end: u64,
    min_va: u64,
    /// The stub's `.sbat` rewritten in place: (old pointer, slot length, text).
    sbat_slot: Option<(u64, u64, &'t [u8])>,
    /// The removed stub section: (old pointer, raw size).
    zero_slot: Option<(u32, u32)>,
}

/// Where the stub's body lands once the headers have room for every row.
struct Room {
    number_of_sections: u16,
    size_of_headers: u64,
    /// How far the stub's raw data moves (whole FileAlignment units).
    delta: u64,
}

impl Room {
    fn moved(&self, p: u64) -> Result<u64> {
        p.checked_add(self.delta).ok_or_else(|| too_big("image"))
    }

    /// A raw data pointer after the move (0, no raw data, stays 0).
    fn shift(&self, p: u32) -> Result<u32> {
        if p == 0 {
            Ok(0)
        } else {
            to_u32(self.moved(u64::from(p))?, "section offset")
        }
    }
}

impl<'t> Table<'t> {
    /// The stub's sections, kept in table order, with the .sbat rewrite applied.
    fn of_stub(l: &Layout<'t, '_>, stub: &Stub) -> Result<Table<'t>> {
        let data = l.stub.data;
        let old_soh = stub.size_of_headers;
        let mut t = Table {
            rows: Vec::new(),
            body_end: old_soh,
            va_end: 0,
            min_va: u64::MAX,
            sbat_slot: None,
            zero_slot: None,
        };
        for (i, s) in l.stub.sections.iter().enumerate() {
            let ptr = u64::from(s.pointer_to_raw_data);
            if s.size_of_raw_data != 0 {
                if ptr < old_soh || s.raw_end() > data.len() as u64 {
                    return Err(Error::malformed(
                        s.header_offset.saturating_add(20),
                        format!(
                            "stub section {} raw data {ptr:#x}..{:#x} lies outside the stub body ({old_soh:#x}..{:#x})",
                            s.name,
                            s.raw_end(),
                            data.len()
                        ),
                    ));
                }
                t.body_end = t.body_end.max(s.raw_end());
            }
            if l.removed_stub_section == Some(i) {
                t.zero_slot = Some((s.pointer_to_raw_data, s.size_of_raw_data));
                continue;
            }
            let mut row = Row {
                base: *pe::view(data, s.header_offset, "section header")?,
                name: s.raw_name,
                virtual_size: s.virtual_size,
                virtual_address: s.virtual_address,
                size_of_raw_data: s.size_of_raw_data,
                pointer_to_raw_data: s.pointer_to_raw_data,
                characteristics: s.characteristics,
            };
            if let Some((_, text)) = l.sbat_in_place.filter(|(j, _)| *j == i) {
                let len = text.len() as u64;
                let raw = align_up(len, stub.file_alignment).ok_or_else(|| too_big(".sbat"))?;
                let slot = raw.max(u64::from(s.size_of_raw_data));
                row.virtual_size = to_u32(len, ".sbat")?;
                row.size_of_raw_data = to_u32(slot, ".sbat")?;
                t.sbat_slot = Some((ptr, slot, text));
                t.body_end = t
                    .body_end
                    .max(span_end(row.pointer_to_raw_data, row.size_of_raw_data));
            }
            let mem = if row.virtual_size == 0 {
                row.size_of_raw_data
            } else {
                row.virtual_size
            };
            t.va_end = t.va_end.max(span_end(row.virtual_address, mem));
            t.min_va = t.min_va.min(u64::from(row.virtual_address));
            t.rows.push(row);
        }
        Ok(t)
    }

    /// A removed stub section (the .sbat that moved to the end) leaves no hole in the
    /// file: the stub sections after it move down (sbverify warns about, and
    /// Authenticode does not cover, gaps between sections). Only its address range
    /// stays unused in memory, since VAs may be referenced by code. Returns the cut
    /// (old pointer, raw size), if there is one.
    fn close_gap(&mut self, debug_dir: bool) -> Option<(u32, u32)> {
        let body_end = self.body_end;
        let rows = &mut self.rows;
        let cut = self.zero_slot.filter(|&(p, r)| {
            !debug_dir
                && r != 0
                && span_end(p, r) <= body_end
                && !rows.iter().any(|row| {
                    let q = row.pointer_to_raw_data;
                    row.size_of_raw_data != 0 && q >= p && u64::from(q) < span_end(p, r)
                })
        });
        if let Some((p, r)) = cut {
            for row in rows.iter_mut() {
                let q = row.pointer_to_raw_data;
                if q > p {
                    // Only an empty section can point inside the cut: it moves to its start.
                    row.pointer_to_raw_data = q.checked_sub(r).filter(|&n| n >= p).unwrap_or(p);
                }
            }
        }
        cut
    }

    /// Header room: grow SizeOfHeaders when the table no longer fits, shifting the
    /// stub's raw data by whole FileAlignment units; impossible when the headers would
    /// overlap the first section in memory (systemd #28593 "not enough header space")
    /// or when the debug directory holds file offsets we would have to rewrite.
    fn header_room(&self, new_sections: usize, stub: &Stub) -> Result<Room> {
        let n = self.rows.len().saturating_add(new_sections);
        let nsec = u16::try_from(n)
            .map_err(|_| Error::invalid(format!("{n} sections exceed the PE limit of 65535")))?;
        let needed = table_end(stub.section_table_offset, nsec)?;
        let grown = align_up(needed, stub.file_alignment).ok_or_else(|| too_big("headers"))?;
        let old_soh = stub.size_of_headers;
        let new_soh = old_soh.max(grown);
        let delta = grown.saturating_sub(old_soh);
        if delta != 0 {
            if new_soh > self.min_va {
                return Err(Error::invalid(format!(
                    "not enough header space: {n} section headers need headers up to {needed:#x}, but the stub's SizeOfHeaders is {old_soh:#x} and its first section is mapped at {:#x}",
                    self.min_va
                )));
            }
            if stub.debug_dir {
                return Err(Error::invalid(format!(
                    "not enough header space: {n} section headers need headers up to {needed:#x} (SizeOfHeaders is {old_soh:#x}), and the stub's debug directory holds file offsets, so its sections cannot be moved"
                )));
            }
        }
        Ok(Room {
            number_of_sections: nsec,
            size_of_headers: new_soh,
            delta,
        })
    }

    /// Rows for the new sections, after the stub's in memory and from `body_end` in
    /// the file; returns the end of the image in memory and in the file (the latter
    /// stops growing once past the size limit).
    fn append(
        &mut self,
        new: &[&PlannedSection<'_>],
        stub: &Stub,
        body_end: u64,
    ) -> Result<(u64, u64)> {
        let (fa, sa) = (stub.file_alignment, stub.section_alignment);
        let mut va = align_up(self.va_end, sa).ok_or_else(|| too_big("image"))?;
        let mut file = align_up(body_end, fa).ok_or_else(|| too_big("image"))?;
        for s in new {
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
            self.rows.push(Row {
                base: ImageSectionHeader::default(),
                name,
                virtual_size: to_u32(len, &s.name)?,
                virtual_address: to_u32(va, "image")?,
                size_of_raw_data: to_u32(raw, &s.name)?,
                pointer_to_raw_data: to_u32(file, "image")?,
                characteristics: s.characteristics,
            });
            va = va
                .checked_add(len)
                .and_then(|end| align_up(end, sa))
                .ok_or_else(|| too_big("image"))?;
            file = file.checked_add(raw).ok_or_else(|| too_big("image"))?;
            if file > MAX_IMAGE_SIZE {
                break;
            }
        }
        Ok((va, file))
    }

    /// The rewritten `.sbat` in its slot, and the removed section's bytes zeroed when
    /// they were not cut out.
    fn fill_slots(&self, out: &mut [u8], room: &Room, cut: bool) -> Result<()> {
        if let Some((ptr, slot, text)) = self.sbat_slot {
            let at = to_usize(room.moved(ptr)?)?;
            let region = out
                .get_mut(at..at.saturating_add(to_usize(slot)?))
                .ok_or_else(|| internal(".sbat slot"))?;
            region.fill(0);
            region
                .get_mut(..text.len())
                .ok_or_else(|| internal(".sbat text"))?
                .copy_from_slice(text);
        }
        if let Some((ptr, len)) = self.zero_slot.filter(|_| !cut) {
            let at = to_usize(room.moved(u64::from(ptr))?)?;
            if let Some(region) = out.get_mut(at..at.saturating_add(to_usize(u64::from(len))?)) {
                region.fill(0);
            }
        }
        Ok(())
    }

    /// The sum of SizeOfRawData over the rows with `flag` set.
    fn raw_size_with(&self, flag: u32) -> Result<u32> {
        let v: u64 = self
            .rows
            .iter()
            .filter(|r| r.characteristics & flag != 0)
            .map(|r| u64::from(r.size_of_raw_data))
            .sum();
        to_u32(v, "section sizes")
    }
}

impl Row {
    /// The section header: the base's, with this row's fields.
    fn header(&self) -> ImageSectionHeader {
        let mut h = self.base;
        h.name = self.name;
        h.virtual_size.set(LE, self.virtual_size);
        h.virtual_address.set(LE, self.virtual_address);
        h.size_of_raw_data.set(LE, self.size_of_raw_data);
        h.pointer_to_raw_data.set(LE, self.pointer_to_raw_data);
        h.characteristics.set(LE, self.characteristics);
        h
    }
}

/// The optional header's size fields of the new image.
struct Sizes {
    image: u32,
    code: u32,
    initialized_data: u32,
}

/// The COFF and optional header fields of the new image, then its CheckSum.
fn patch_headers(out: &mut [u8], l: &Layout<'_, '_>, sizes: &Sizes, room: &Room) -> Result<()> {
    let stub = l.stub;
    let c = span_end(stub.e_lfanew, 4);
    let coff: &mut ImageFileHeader = usize::try_from(c)
        .ok()
        .and_then(|at| out.get_mut(at..))
        .and_then(|b| pod::from_bytes_mut(b).ok())
        .map(|(h, _)| h)
        .ok_or_else(|| internal(&format!("COFF header at {c:#x} outside the image")))?;
    coff.number_of_sections.set(LE, room.number_of_sections);
    coff.time_date_stamp.set(LE, l.timestamp);
    // The trailing COFF symbol table is not copied: clear the pointer to it.
    coff.pointer_to_symbol_table.set(LE, 0);
    coff.number_of_symbols.set(LE, 0);
    let opt_at = stub.optional_header_offset;
    if c.checked_add(COFF_HEADER_SIZE) != Some(opt_at) {
        return Err(Error::malformed(
            c,
            "optional header does not follow the COFF header",
        ));
    }
    put(out, opt_at, OPT_SIZE_OF_CODE, &sizes.code.to_le_bytes())?;
    let init = sizes.initialized_data.to_le_bytes();
    put(out, opt_at, OPT_SIZE_OF_INITIALIZED_DATA, &init)?;
    put(out, opt_at, OPT_SIZE_OF_IMAGE, &sizes.image.to_le_bytes())?;
    let soh = to_u32(room.size_of_headers, "SizeOfHeaders")?;
    put(out, opt_at, OPT_SIZE_OF_HEADERS, &soh.to_le_bytes())?;
    let dll = l.dll_characteristics.to_le_bytes();
    put(out, opt_at, OPT_DLL_CHARACTERISTICS, &dll)?;
    let sum = pe_checksum(out, stub.checksum_offset);
    put(out, stub.checksum_offset, 0, &sum.to_le_bytes())
}

fn to_usize(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| too_big("image"))
}

/// The PE CheckSum (as imagehlp's CheckSumMappedFile computes it): the 16-bit
/// one's-complement sum of the file's little-endian words, with the 4-byte CheckSum
/// field at `checksum_offset` read as zero, plus the file length.
pub fn pe_checksum(data: &[u8], checksum_offset: u64) -> u32 {
    // Summing u32 words and folding is the same 16-bit end-around-carry sum, since
    // 2^16 = 1 (mod 2^16 - 1). Folding keeps a sum's residue and whether it is zero,
    // so each 1 GiB block is summed (below 2^60) and folded on its own.
    let mut acc: u64 = data.chunks(1 << 30).map(block_sum).sum();
    // Remove the CheckSum field's own two words (it sits at an even offset, so they
    // are whole 16-bit words of the sum).
    if let Ok(field) = crate::bytes::array::<4>(data, checksum_offset, "CheckSum") {
        let [a, b, c, d] = field;
        const M: u64 = 0xffff;
        // Work modulo 2^16-1: adding (M - x) subtracts x (x % M <= M).
        let lo = M.saturating_sub(u64::from(u16::from_le_bytes([a, b])) % M);
        let hi = M.saturating_sub(u64::from(u16::from_le_bytes([c, d])) % M);
        acc = acc.saturating_add(lo).saturating_add(hi);
    }
    let folded = u32::from(fold16(acc));
    // imagehlp adds the length in 32-bit arithmetic: modulo 2^32 is the meaning.
    #[allow(clippy::cast_possible_truncation)]
    let len = data.len() as u32;
    folded.wrapping_add(len)
}

/// The u32 words of a block of whole words (the last block may end in a partial one,
/// padded with zeros), folded to 16 bits.
fn block_sum(block: &[u8]) -> u64 {
    let mut words = block.chunks_exact(4);
    let mut tail = [0u8; 4];
    let sum: u64 = words
        .by_ref()
        .map(|w| match *w {
            [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
            _ => 0,
        })
        .sum();
    for (t, b) in tail.iter_mut().zip(words.remainder()) {
        *t = *b;
    }
    u64::from(fold16(
        sum.saturating_add(u64::from(u32::from_le_bytes(tail))),
    ))
}

/// End-around-carry fold to 16 bits: keeps the value modulo 2^16 - 1, and zero only
/// for zero.
fn fold16(mut v: u64) -> u16 {
    loop {
        match u16::try_from(v) {
            Ok(w) => return w,
            // (v & 0xffff) + (v >> 16) < v, so this ends.
            Err(_) => v = (v & 0xffff).saturating_add(v >> 16),
        }
    }
}
