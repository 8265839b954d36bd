//! A checked, zero-copy view of a PE/COFF image. Parsing reads only the headers and
//! the section table; section payloads are borrowed on demand.

pub mod raw;

use std::mem::size_of;

use object::pod::{self, Pod};
use object::read::pe::ImageOptionalHeader;
use object::LittleEndian as LE;

use crate::bytes::{self, slice, u16_le, u32_le};
use crate::error::{Error, Result};
use raw::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[serde(rename = "PE32")]
    Pe32,
    #[serde(rename = "PE32+")]
    Pe32Plus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CoffHeader {
    pub machine: u16,
    pub number_of_sections: u16,
    pub time_date_stamp: u32,
    pub pointer_to_symbol_table: u32,
    pub number_of_symbols: u32,
    pub size_of_optional_header: u16,
    pub characteristics: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OptionalHeader {
    pub format: Format,
    pub major_linker_version: u8,
    pub minor_linker_version: u8,
    pub size_of_code: u32,
    pub size_of_initialized_data: u32,
    pub size_of_uninitialized_data: u32,
    pub address_of_entry_point: u32,
    pub base_of_code: u32,
    pub image_base: u64,
    pub section_alignment: u32,
    pub file_alignment: u32,
    pub major_subsystem_version: u16,
    pub minor_subsystem_version: u16,
    pub size_of_image: u32,
    pub size_of_headers: u32,
    pub checksum: u32,
    pub subsystem: u16,
    pub dll_characteristics: u16,
    pub number_of_rva_and_sizes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DataDirectory {
    pub virtual_address: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Section {
    /// Resolved name: long `/N` names are looked up in the COFF string table.
    pub name: String,
    /// The 8 name bytes as stored in the header.
    #[serde(skip)]
    pub raw_name: [u8; 8],
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub size_of_raw_data: u32,
    pub pointer_to_raw_data: u32,
    pub characteristics: u32,
    /// File offset of this section's 40-byte header.
    #[serde(skip)]
    pub header_offset: u64,
}

impl Section {
    /// Length of the payload the stub uses: VirtualSize, clamped to the raw data
    /// present in the file (bytes past SizeOfRawData are zero-fill, not payload).
    /// A VirtualSize of 0 means the raw size (as linkers of object files do).
    pub fn payload_len(&self) -> u32 {
        if self.virtual_size == 0 {
            self.size_of_raw_data
        } else {
            self.virtual_size.min(self.size_of_raw_data)
        }
    }

    /// The exact payload bytes of this section inside `data`.
    pub fn payload<'a>(&self, data: &'a [u8]) -> Result<&'a [u8]> {
        slice(
            data,
            u64::from(self.pointer_to_raw_data),
            u64::from(self.payload_len()),
            "section payload",
        )
    }

    /// The full raw data (SizeOfRawData bytes) of this section inside `data`.
    pub fn raw_data<'a>(&self, data: &'a [u8]) -> Result<&'a [u8]> {
        slice(
            data,
            u64::from(self.pointer_to_raw_data),
            u64::from(self.size_of_raw_data),
            "section raw data",
        )
    }

    /// End of the raw data in the file.
    pub fn raw_end(&self) -> u64 {
        bytes::span_end(self.pointer_to_raw_data, self.size_of_raw_data)
    }

    /// End of the section in memory (VA + VirtualSize).
    pub fn virtual_end(&self) -> u64 {
        bytes::span_end(self.virtual_address, self.virtual_size)
    }
}

/// A parsed PE image: headers and section table, borrowing the input.
#[derive(Debug, Clone)]
pub struct PeFile<'a> {
    /// The bytes available to the parser (the whole file, or a header prefix).
    pub data: &'a [u8],
    /// Length of the whole file (may exceed `data.len()` when parsing a prefix).
    pub file_len: u64,
    pub e_lfanew: u32,
    pub coff: CoffHeader,
    pub opt: OptionalHeader,
    pub data_directories: Vec<DataDirectory>,
    pub sections: Vec<Section>,
    /// File offset of the optional header.
    pub optional_header_offset: u64,
    /// File offset of the CheckSum field.
    pub checksum_offset: u64,
    /// File offset of the security (certificate table) data directory entry, if present.
    pub security_dir_offset: Option<u64>,
    /// File offset of the first section header.
    pub section_table_offset: u64,
}

/// Cheap check: does this look like a PE image at all ("MZ" and "PE\0\0")?
pub fn looks_like_pe(data: &[u8]) -> bool {
    let Ok(lfanew) = u32_le(data, E_LFANEW_OFFSET, "e_lfanew") else {
        return false;
    };
    data.starts_with(&DOS_MAGIC)
        && slice(data, u64::from(lfanew), 4, "PE signature").is_ok_and(|s| s == PE_SIGNATURE)
}

/// `e_lfanew`, once "MZ" and the "PE\0\0" signature it points at are checked.
fn nt_headers_offset(data: &[u8]) -> Result<u32> {
    let dos = slice(data, 0, 2, "DOS header")?;
    if dos != DOS_MAGIC {
        return Err(Error::malformed(0, "missing \"MZ\" DOS signature"));
    }
    let e_lfanew = u32_le(data, E_LFANEW_OFFSET, "e_lfanew")?;
    let pe_off = u64::from(e_lfanew);
    if slice(data, pe_off, 4, "PE signature")? != PE_SIGNATURE {
        return Err(Error::malformed(
            pe_off,
            "missing \"PE\\0\\0\" signature at e_lfanew",
        ));
    }
    Ok(e_lfanew)
}

/// `object`'s structure `T` in place at `offset` of `data`, or `Truncated`.
pub(crate) fn view<'d, T: Pod>(data: &'d [u8], offset: u64, what: &'static str) -> Result<&'d T> {
    let bytes = slice(data, offset, size_of::<T>() as u64, what)?;
    // object's `unaligned` feature makes every field a byte array: any address will do.
    pod::from_bytes(bytes)
        .map(|(t, _)| t)
        .map_err(|()| Error::malformed(offset, format!("{what} is not aligned")))
}

impl CoffHeader {
    fn of(h: &ImageFileHeader) -> CoffHeader {
        CoffHeader {
            machine: h.machine.get(LE),
            number_of_sections: h.number_of_sections.get(LE),
            time_date_stamp: h.time_date_stamp.get(LE),
            pointer_to_symbol_table: h.pointer_to_symbol_table.get(LE),
            number_of_symbols: h.number_of_symbols.get(LE),
            size_of_optional_header: h.size_of_optional_header.get(LE),
            characteristics: h.characteristics.get(LE),
        }
    }
}

impl OptionalHeader {
    /// The optional header in `ob` (at file offset `o`, after the COFF header at `c`),
    /// and where its data directories start.
    fn read(ob: &[u8], o: u64, c: u64) -> Result<(OptionalHeader, u64)> {
        let magic = u16_le(ob, 0, "optional header magic")
            .map_err(|_| Error::malformed(o, "optional header too small for its magic"))?;
        let (format, dirs_at) = match magic {
            OPT_MAGIC_PE32 => (Format::Pe32, OPT_DATA_DIRS_PE32),
            OPT_MAGIC_PE32_PLUS => (Format::Pe32Plus, OPT_DATA_DIRS_PE32_PLUS),
            m => {
                return Err(Error::malformed(
                    o,
                    format!(
                        "optional header magic {m:#x} is neither PE32 (0x10b) nor PE32+ (0x20b)"
                    ),
                ))
            }
        };
        if (ob.len() as u64) < dirs_at {
            return Err(Error::malformed(
                c.saturating_add(16),
                format!(
                    "SizeOfOptionalHeader {} is smaller than the fixed part ({dirs_at})",
                    ob.len()
                ),
            ));
        }
        let opt = match format {
            Format::Pe32 => Self::of::<ImageOptionalHeader32>(ob, format)?,
            Format::Pe32Plus => Self::of::<ImageOptionalHeader64>(ob, format)?,
        };
        Ok((opt, dirs_at))
    }

    fn of<H: ImageOptionalHeader>(ob: &[u8], format: Format) -> Result<OptionalHeader> {
        let h: &H = view(ob, 0, "optional header")?;
        Ok(OptionalHeader {
            format,
            major_linker_version: h.major_linker_version(),
            minor_linker_version: h.minor_linker_version(),
            size_of_code: h.size_of_code(),
            size_of_initialized_data: h.size_of_initialized_data(),
            size_of_uninitialized_data: h.size_of_uninitialized_data(),
            address_of_entry_point: h.address_of_entry_point(),
            base_of_code: h.base_of_code(),
            image_base: h.image_base(),
            section_alignment: h.section_alignment(),
            file_alignment: h.file_alignment(),
            major_subsystem_version: h.major_subsystem_version(),
            minor_subsystem_version: h.minor_subsystem_version(),
            size_of_image: h.size_of_image(),
            size_of_headers: h.size_of_headers(),
            checksum: h.check_sum(),
            subsystem: h.subsystem(),
            dll_characteristics: h.dll_characteristics(),
            number_of_rva_and_sizes: h.number_of_rva_and_sizes(),
        })
    }
}

impl<'a> PeFile<'a> {
    /// Parse a whole file.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        Self::parse_prefix(data, data.len() as u64)
    }

    /// Parse the headers from a prefix of a file whose full length is `file_len`
    /// (the browser reads only the first bytes of a large file through Blob.slice).
    pub fn parse_prefix(data: &'a [u8], file_len: u64) -> Result<Self> {
        let e_lfanew = nt_headers_offset(data)?;
        let c = bytes::add(
            u64::from(e_lfanew),
            4,
            E_LFANEW_OFFSET,
            "COFF header offset",
        )?;
        let coff = CoffHeader::of(view(data, c, "COFF header")?);
        let o = bytes::add(c, COFF_HEADER_SIZE, c, "optional header offset")?;
        let opt_size = u64::from(coff.size_of_optional_header);
        let opt_bytes = slice(data, o, opt_size, "optional header")?;
        let (opt, dirs_at) = OptionalHeader::read(opt_bytes, o, c)?;
        // The directory count is bounded by the header size actually present, so a
        // huge NumberOfRvaAndSizes cannot make us allocate.
        let dir_bytes = usize::try_from(dirs_at)
            .ok()
            .and_then(|at| opt_bytes.get(at..))
            .unwrap_or_default();
        let count = dir_bytes
            .len()
            .checked_div(size_of::<ImageDataDirectory>())
            .unwrap_or(0)
            .min(DATA_DIRECTORY_NAMES.len())
            .min(usize::try_from(opt.number_of_rva_and_sizes).unwrap_or(usize::MAX));
        let data_directories: Vec<DataDirectory> = pod::slice_from_bytes(dir_bytes, count)
            .map_err(|()| Error::malformed(o, "data directories"))?
            .0
            .iter()
            .map(|d: &ImageDataDirectory| DataDirectory {
                virtual_address: d.virtual_address.get(LE),
                size: d.size.get(LE),
            })
            .collect();
        let security_dir_offset = if data_directories.len() > DIR_SECURITY {
            let dirs = bytes::add(o, dirs_at, o, "data directories offset")?;
            Some(bytes::add(
                dirs,
                SECURITY_DIR_ENTRY,
                o,
                "security entry offset",
            )?)
        } else {
            None
        };

        let section_table_offset = bytes::add(o, opt_size, o, "section table offset")?;
        let nsec = u64::from(coff.number_of_sections);
        let table_len = bytes::mul(nsec, SECTION_HEADER_SIZE, c, "section table size")?;
        let table = slice(data, section_table_offset, table_len, "section table")?;
        let mut pe = PeFile {
            data,
            file_len,
            e_lfanew,
            coff,
            opt,
            data_directories,
            sections: Vec::new(),
            optional_header_offset: o,
            checksum_offset: bytes::add(o, OPT_CHECKSUM, o, "CheckSum offset")?,
            security_dir_offset,
            section_table_offset,
        };
        pe.sections = pe.read_sections(table)?;
        Ok(pe)
    }

    /// The section table's headers, their names resolved.
    fn read_sections(&self, table: &[u8]) -> Result<Vec<Section>> {
        let headers: &[ImageSectionHeader] = pod::slice_from_all_bytes(table)
            .map_err(|()| Error::malformed(self.section_table_offset, "section table"))?;
        let mut sections = Vec::with_capacity(headers.len());
        let mut header_offset = self.section_table_offset;
        for h in headers {
            sections.push(Section {
                name: self.resolve_name(&h.name, header_offset)?,
                raw_name: h.name,
                virtual_size: h.virtual_size.get(LE),
                virtual_address: h.virtual_address.get(LE),
                size_of_raw_data: h.size_of_raw_data.get(LE),
                pointer_to_raw_data: h.pointer_to_raw_data.get(LE),
                characteristics: h.characteristics.get(LE),
                header_offset,
            });
            header_offset = bytes::add(
                header_offset,
                SECTION_HEADER_SIZE,
                header_offset,
                "section header offset",
            )?;
        }
        Ok(sections)
    }

    /// A section name: 8 bytes, NUL-padded, or `/N` naming offset N of the COFF
    /// string table (which follows the symbol table).
    fn resolve_name(&self, raw: &[u8; 8], header_offset: u64) -> Result<String> {
        let len = raw.iter().position(|&b| b == 0).unwrap_or(8);
        let short = raw.get(..len).unwrap_or_default();
        if let Some(digits) = short.strip_prefix(b"/") {
            if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                let n: u64 = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        Error::malformed(header_offset, "long section name offset is not a number")
                    })?;
                let Some(strtab) = self.string_table_offset() else {
                    return Err(Error::malformed(
                        header_offset,
                        "long section name but no COFF string table",
                    ));
                };
                let at = bytes::add(strtab, n, header_offset, "long section name offset")?;
                // A header prefix may end before the string table (it sits at the end
                // of the file): keep "/N" and let the caller resolve it later with
                // `resolve_long_names` once it has read the table.
                if at >= self.data.len() as u64 && at < self.file_len {
                    return Ok(String::from_utf8_lossy(short).into_owned());
                }
                let rest = slice(
                    self.data,
                    at,
                    (self.data.len() as u64).saturating_sub(at),
                    "COFF string table",
                )?;
                let end = rest.iter().take(256).position(|&b| b == 0).ok_or_else(|| {
                    Error::malformed(
                        at,
                        "long section name is not NUL-terminated within 256 bytes",
                    )
                })?;
                return Ok(
                    String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned()
                );
            }
        }
        Ok(String::from_utf8_lossy(short).into_owned())
    }

    /// File offset of the COFF string table (after the symbol table), if there is one.
    pub fn string_table_offset(&self) -> Option<u64> {
        if self.coff.pointer_to_symbol_table == 0 {
            return None;
        }
        // At most 2^32 + 18 * 2^32: no overflow in 64 bits.
        u64::from(self.coff.number_of_symbols)
            .checked_mul(SYMBOL_SIZE)?
            .checked_add(u64::from(self.coff.pointer_to_symbol_table))
    }

    /// Resolve the `/N` names a prefix parse left as they were, from the string
    /// table's bytes read separately (`table` starts at `string_table_offset`).
    pub fn resolve_long_names(&mut self, table: &[u8]) -> Result<()> {
        let Some(base) = self.string_table_offset() else {
            return Ok(());
        };
        for s in &mut self.sections {
            let Some(n) = s
                .name
                .strip_prefix('/')
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u64>().ok())
            else {
                continue;
            };
            let rest = slice(
                table,
                n,
                (table.len() as u64).saturating_sub(n),
                "COFF string table",
            )?;
            let end = rest.iter().take(256).position(|&b| b == 0).ok_or_else(|| {
                Error::malformed(
                    base.saturating_add(n),
                    "long section name is not NUL-terminated within 256 bytes",
                )
            })?;
            s.name = String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned();
        }
        Ok(())
    }

    pub fn is_pe32_plus(&self) -> bool {
        self.opt.format == Format::Pe32Plus
    }

    /// The certificate table range (file offset, size), if the directory is set.
    pub fn certificate_table(&self) -> Option<DataDirectory> {
        self.data_directories
            .get(DIR_SECURITY)
            .copied()
            .filter(|d| d.virtual_address != 0 && d.size != 0)
    }

    /// All sections with this exact name, in table order.
    pub fn sections_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Section> + 's {
        self.sections.iter().filter(move |s| s.name == name)
    }

    /// The first section with this name.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Payload of the first section named `name`.
    pub fn section_payload(&self, name: &str) -> Option<Result<&'a [u8]>> {
        let data = self.data;
        self.section(name).map(|s| s.payload(data))
    }

    pub fn machine_name(&self) -> Option<&'static str> {
        lookup(self.coff.machine, MACHINES)
    }

    pub fn subsystem_name(&self) -> Option<&'static str> {
        lookup(self.opt.subsystem, SUBSYSTEMS)
    }

    pub fn nx_compat(&self) -> bool {
        self.opt.dll_characteristics & DLLCHAR_NX_COMPAT != 0
    }

    /// End of the last section's raw data in the file (0 if there are none).
    pub fn end_of_section_data(&self) -> u64 {
        self.sections
            .iter()
            .map(Section::raw_end)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE32+ with one section, built by hand.
    pub(crate) fn tiny_pe() -> Vec<u8> {
        let mut d = vec![0u8; 0x400];
        d[0..2].copy_from_slice(b"MZ");
        d[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        d[0x80..0x84].copy_from_slice(b"PE\0\0");
        let c = 0x84;
        d[c..c + 2].copy_from_slice(&0x8664u16.to_le_bytes());
        d[c + 2..c + 4].copy_from_slice(&1u16.to_le_bytes());
        d[c + 16..c + 18].copy_from_slice(&240u16.to_le_bytes());
        let o = c + 20;
        d[o..o + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        d[o + 32..o + 36].copy_from_slice(&0x1000u32.to_le_bytes());
        d[o + 36..o + 40].copy_from_slice(&0x200u32.to_le_bytes());
        d[o + 56..o + 60].copy_from_slice(&0x2000u32.to_le_bytes());
        d[o + 60..o + 64].copy_from_slice(&0x200u32.to_le_bytes());
        d[o + 68..o + 70].copy_from_slice(&10u16.to_le_bytes());
        d[o + 108..o + 112].copy_from_slice(&16u32.to_le_bytes());
        let s = o + 240;
        d[s..s + 8].copy_from_slice(b".text\0\0\0");
        d[s + 8..s + 12].copy_from_slice(&5u32.to_le_bytes());
        d[s + 12..s + 16].copy_from_slice(&0x1000u32.to_le_bytes());
        d[s + 16..s + 20].copy_from_slice(&0x200u32.to_le_bytes());
        d[s + 20..s + 24].copy_from_slice(&0x200u32.to_le_bytes());
        d[0x200..0x205].copy_from_slice(b"hello");
        d
    }

    #[test]
    fn parses_a_minimal_pe() {
        let d = tiny_pe();
        let pe = PeFile::parse(&d).unwrap();
        assert!(pe.is_pe32_plus());
        assert_eq!(pe.sections.len(), 1);
        assert_eq!(pe.sections[0].name, ".text");
        assert_eq!(pe.sections[0].payload(&d).unwrap(), b"hello");
        assert_eq!(pe.machine_name(), Some("x86_64"));
        assert_eq!(pe.data_directories.len(), 16);
        assert_eq!(pe.checksum_offset, 0x98 + 64);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let d = tiny_pe();
        for n in 0..0x1b0 {
            assert!(PeFile::parse(&d[..n]).is_err(), "prefix {n}");
        }
    }
}
