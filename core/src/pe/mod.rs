//! A checked, zero-copy view of a PE/COFF image. Parsing reads only the headers and
//! the section table; section payloads are borrowed on demand.

pub mod raw;

use crate::bytes::{self, slice, u16_le, u32_le, u64_le};
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
    data.starts_with(DOS_MAGIC)
        && slice(data, u64::from(lfanew), 4, "PE signature").is_ok_and(|s| s == PE_SIGNATURE)
}

impl<'a> PeFile<'a> {
    /// Parse a whole file.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        Self::parse_prefix(data, data.len() as u64)
    }

    /// Parse the headers from a prefix of a file whose full length is `file_len`
    /// (the browser reads only the first bytes of a large file through Blob.slice).
    pub fn parse_prefix(data: &'a [u8], file_len: u64) -> Result<Self> {
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
        let c = bytes::add(pe_off, 4, E_LFANEW_OFFSET, "COFF header offset")?;
        let ch = slice(data, c, COFF_HEADER_SIZE, "COFF header")?;
        let what = "COFF header";
        let coff = CoffHeader {
            machine: u16_le(ch, 0, what)?,
            number_of_sections: u16_le(ch, 2, what)?,
            time_date_stamp: u32_le(ch, 4, what)?,
            pointer_to_symbol_table: u32_le(ch, 8, what)?,
            number_of_symbols: u32_le(ch, 12, what)?,
            size_of_optional_header: u16_le(ch, 16, what)?,
            characteristics: u16_le(ch, 18, what)?,
        };
        let o = bytes::add(c, COFF_HEADER_SIZE, c, "optional header offset")?;
        let opt_size = u64::from(coff.size_of_optional_header);
        let opt_bytes = slice(data, o, opt_size, "optional header")?;
        let magic = u16_le(opt_bytes, 0, "optional header magic")
            .map_err(|_| Error::malformed(o, "optional header too small for its magic"))?;
        let (format, rva_count_at, dirs_at) = match magic {
            OPT_MAGIC_PE32 => (Format::Pe32, OPT_NUMBER_OF_RVA_PE32, OPT_DATA_DIRS_PE32),
            OPT_MAGIC_PE32_PLUS => (
                Format::Pe32Plus,
                OPT_NUMBER_OF_RVA_PE32_PLUS,
                OPT_DATA_DIRS_PE32_PLUS,
            ),
            m => {
                return Err(Error::malformed(
                    o,
                    format!(
                        "optional header magic {m:#x} is neither PE32 (0x10b) nor PE32+ (0x20b)"
                    ),
                ))
            }
        };
        let Some(dir_bytes) = usize::try_from(dirs_at)
            .ok()
            .and_then(|at| opt_bytes.get(at..))
        else {
            return Err(Error::malformed(
                c.saturating_add(16),
                format!(
                    "SizeOfOptionalHeader {opt_size} is smaller than the fixed part ({dirs_at})"
                ),
            ));
        };
        let ob = opt_bytes;
        let what = "optional header";
        let plus = format == Format::Pe32Plus;
        let image_base = if plus {
            u64_le(ob, 24, what)?
        } else {
            u64::from(u32_le(ob, 28, what)?)
        };
        let base_of_code = u32_le(ob, 20, what)?;
        let number_of_rva_and_sizes = u32_le(ob, rva_count_at, what)?;
        let opt = OptionalHeader {
            format,
            major_linker_version: bytes::u8_at(ob, 2, what)?,
            minor_linker_version: bytes::u8_at(ob, 3, what)?,
            size_of_code: u32_le(ob, 4, what)?,
            size_of_initialized_data: u32_le(ob, 8, what)?,
            size_of_uninitialized_data: u32_le(ob, 12, what)?,
            address_of_entry_point: u32_le(ob, 16, what)?,
            base_of_code,
            image_base,
            section_alignment: u32_le(ob, 32, what)?,
            file_alignment: u32_le(ob, 36, what)?,
            major_subsystem_version: u16_le(ob, 48, what)?,
            minor_subsystem_version: u16_le(ob, 50, what)?,
            size_of_image: u32_le(ob, 56, what)?,
            size_of_headers: u32_le(ob, 60, what)?,
            checksum: u32_le(ob, 64, what)?,
            subsystem: u16_le(ob, 68, what)?,
            dll_characteristics: u16_le(ob, 70, what)?,
            number_of_rva_and_sizes,
        };
        // The directory count is bounded by the header size actually present, so a
        // huge NumberOfRvaAndSizes cannot make us allocate.
        let data_directories: Vec<DataDirectory> = dir_bytes
            .chunks_exact(DATA_DIRECTORY_LEN)
            .take(DATA_DIRECTORY_NAMES.len())
            .take(usize::try_from(number_of_rva_and_sizes).unwrap_or(usize::MAX))
            .map(|d| {
                Ok(DataDirectory {
                    virtual_address: u32_le(d, 0, "data directory")?,
                    size: u32_le(d, 4, "data directory")?,
                })
            })
            .collect::<Result<_>>()?;
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
            sections: Vec::with_capacity(usize::from(coff.number_of_sections)),
            optional_header_offset: o,
            checksum_offset: bytes::add(o, OPT_CHECKSUM, o, "CheckSum offset")?,
            security_dir_offset,
            section_table_offset,
        };
        let mut header_offset = section_table_offset;
        for h in table.chunks_exact(SECTION_HEADER_LEN) {
            let what = "section header";
            let raw_name: [u8; 8] = bytes::array(h, 0, what)?;
            let name = pe.resolve_name(&raw_name, header_offset)?;
            pe.sections.push(Section {
                name,
                raw_name,
                virtual_size: u32_le(h, 8, what)?,
                virtual_address: u32_le(h, 12, what)?,
                size_of_raw_data: u32_le(h, 16, what)?,
                pointer_to_raw_data: u32_le(h, 20, what)?,
                characteristics: u32_le(h, 36, what)?,
                header_offset,
            });
            header_offset = bytes::add(
                header_offset,
                SECTION_HEADER_SIZE,
                header_offset,
                "section header offset",
            )?;
        }
        Ok(pe)
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
