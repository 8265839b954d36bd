//! GUID Partition Table (UEFI 2.10 §5.3): the protective MBR, the primary and backup
//! headers and entry arrays with their CRC32s, written as image extents; and a checked
//! reader for inspecting disks (GPT or plain MBR).

use std::num::NonZeroU64;

use crate::bytes::{self, u32_le, u64_le};
use crate::disk::sparse::DiskImage;
use crate::error::{Error, Result};
use crate::guid::Guid;
use crate::readat::Window;

/// Raw layout: offsets and constants, kept apart from the code that uses them.
pub mod raw {
    pub const SIGNATURE: &[u8; 8] = b"EFI PART";
    pub const REVISION_1_0: u32 = 0x0001_0000;
    pub const HEADER_SIZE: u32 = 92;
    pub const ENTRY_SIZE: u32 = 128;
    /// The minimum array size the spec requires (16 KiB): 128 entries of 128 bytes.
    pub const ENTRY_COUNT: u32 = 128;
    pub const ARRAY_LEN: usize = ENTRY_SIZE as usize * ENTRY_COUNT as usize;
    pub const ARRAY_BYTES: u64 = ARRAY_LEN as u64;
    pub const NAME_UNITS: usize = 36;
    pub const NAME_BYTES: u64 = 2 * NAME_UNITS as u64;

    // Header field offsets.
    pub const H_SIGNATURE: u64 = 0;
    pub const H_REVISION: u64 = 8;
    pub const H_SIZE: u64 = 12;
    pub const H_CRC: u64 = 16;
    pub const H_MY_LBA: u64 = 24;
    pub const H_ALTERNATE_LBA: u64 = 32;
    pub const H_FIRST_USABLE: u64 = 40;
    pub const H_LAST_USABLE: u64 = 48;
    pub const H_DISK_GUID: u64 = 56;
    pub const H_ENTRIES_LBA: u64 = 72;
    pub const H_ENTRY_COUNT: u64 = 80;
    pub const H_ENTRY_SIZE: u64 = 84;
    pub const H_ARRAY_CRC: u64 = 88;

    // Entry field offsets.
    pub const E_TYPE: u64 = 0;
    pub const E_UNIQUE: u64 = 16;
    pub const E_FIRST: u64 = 32;
    pub const E_LAST: u64 = 40;
    pub const E_ATTRS: u64 = 48;
    pub const E_NAME: u64 = 56;

    // MBR: boot code, four 16-byte partition entries, the 0x55AA signature.
    pub const MBR_BOOT_CODE: usize = 446;
    pub const MBR_TABLE: u64 = MBR_BOOT_CODE as u64;
    pub const MBR_SIGNATURE_AT: u64 = 510;
    pub const MBR_TYPE_PROTECTIVE: u8 = 0xee;
    pub const MBR_TYPE_EXTENDED: [u8; 3] = [0x05, 0x0f, 0x85];
}

/// Partition type GUIDs ukitool names (Discoverable Partitions Specification, UEFI).
pub mod types {
    pub const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
    pub const BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
    pub const LINUX_DATA: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
    pub const XBOOTLDR: &str = "BC13C2FF-59E6-4262-A352-B275FD6F7172";
    pub const MICROSOFT_BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
}

/// Attribute bit 2: legacy BIOS bootable (UEFI 2.10 Table 5.9).
pub const ATTR_LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;
/// Attribute bit 0: required by the platform.
pub const ATTR_REQUIRED: u64 = 1;

/// Friendly name of a known type GUID.
pub fn type_name(t: &Guid) -> Option<&'static str> {
    let s = t.to_string();
    [
        (types::ESP, "efi-system"),
        (types::BIOS_BOOT, "bios-boot"),
        (types::LINUX_DATA, "linux-data"),
        (types::XBOOTLDR, "xbootldr"),
        (types::MICROSOFT_BASIC_DATA, "microsoft-basic-data"),
    ]
    .into_iter()
    .find(|(g, _)| *g == s)
    .map(|(_, n)| n)
}

/// `esp`, `bios`, `linux`, `xbootldr` or a literal GUID.
pub fn parse_type(text: &str) -> Result<Guid> {
    let g = match text.to_ascii_lowercase().as_str() {
        "esp" | "efi" | "efi-system" => types::ESP,
        "bios" | "bios-boot" => types::BIOS_BOOT,
        "linux" | "linux-data" | "data" => types::LINUX_DATA,
        "xbootldr" => types::XBOOTLDR,
        _ => {
            return Guid::parse(text).map_err(|_| {
                Error::invalid(format!(
                    "partition type {text:?}: use esp, bios, linux, xbootldr or a GUID"
                ))
            })
        }
    };
    Guid::parse(g)
}

/// One partition to write: LBAs are inclusive, in logical sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    pub name: String,
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub first_lba: u64,
    pub last_lba: u64,
    pub attributes: u64,
}

/// `sector` as a divisor, when it is a logical sector size ukitool writes: 512 or 4096.
pub fn sector_size(sector: u64) -> Result<NonZeroU64> {
    NonZeroU64::new(sector)
        .filter(|s| matches!(s.get(), 512 | 4096))
        .ok_or_else(|| Error::invalid(format!("sector size {sector}: use 512 or 4096")))
}

/// The sectors GPT needs at each end of a disk with `sector` bytes per sector:
/// (first usable LBA, sectors at the end for the backup array and header).
pub fn reserved_sectors(sector: NonZeroU64) -> (u64, u64) {
    let array = raw::ARRAY_BYTES.div_ceil(sector.get());
    // The array takes at most 32 sectors: neither sum can saturate.
    (array.saturating_add(2), array.saturating_add(1))
}

/// `lba * sector` as a byte offset; overflow means a disk past 2^64 bytes.
fn lba_offset(lba: u64, sector: NonZeroU64) -> Result<u64> {
    lba.checked_mul(sector.get()).ok_or_else(|| {
        Error::invalid(format!(
            "LBA {lba} of {sector}-byte sectors is past 2^64 bytes"
        ))
    })
}

/// One 128-byte entry of the partition array (UEFI 2.10 Table 5.7), fields in order.
/// The name must already fit its 36 UTF-16 units.
fn entry_bytes(p: &GptPartition) -> Vec<u8> {
    let mut e = [
        p.type_guid.to_bytes_le().as_slice(),
        &p.unique_guid.to_bytes_le(),
        &p.first_lba.to_le_bytes(),
        &p.last_lba.to_le_bytes(),
        &p.attributes.to_le_bytes(),
    ]
    .concat();
    e.extend(p.name.encode_utf16().flat_map(u16::to_le_bytes));
    e.resize(raw::ENTRY_SIZE as usize, 0);
    e
}

/// What a GPT may carry beyond the partitions; the defaults are the smallest table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GptOptions<'b> {
    /// FirstUsableLBA; at least what the entry array needs (34 at 512 B). Talos's
    /// writer rounds it up to 1 MiB (2048 at 512 B, 256 at 4 KiB).
    pub first_usable_lba: Option<u64>,
    /// The MBR's boot code (bytes 0-445), e.g. GRUB's boot.img; zeros without it.
    pub boot_code: Option<&'b [u8; raw::MBR_BOOT_CODE]>,
}

/// Write the protective MBR, primary and backup GPT into `img` (whose size must be a
/// multiple of `sector`). Partitions must lie within the usable LBAs and not overlap.
pub fn write(
    img: &mut DiskImage<'_>,
    sector: u64,
    disk_guid: Guid,
    parts: &[GptPartition],
) -> Result<()> {
    write_with(img, sector, disk_guid, parts, &GptOptions::default())
}

/// [`write`] with [`GptOptions`].
pub fn write_with(
    img: &mut DiskImage<'_>,
    sector: u64,
    disk_guid: Guid,
    parts: &[GptPartition],
    opts: &GptOptions<'_>,
) -> Result<()> {
    let per_sector = sector_size(sector)?;
    let sector_len = usize::try_from(sector)
        .map_err(|_| Error::invalid(format!("sector size {sector} does not fit in memory")))?;
    if img.size % per_sector != 0 {
        return Err(Error::invalid(format!(
            "disk size {} is not a multiple of the {sector}-byte sector",
            img.size
        )));
    }
    if parts.len() > raw::ENTRY_COUNT as usize {
        return Err(Error::invalid(format!(
            "at most {} partitions",
            raw::ENTRY_COUNT
        )));
    }
    let total = img.size / per_sector;
    let (least_first_usable, tail) = reserved_sectors(per_sector);
    let first_usable = opts.first_usable_lba.unwrap_or(least_first_usable);
    if first_usable < least_first_usable {
        return Err(Error::invalid(format!(
            "first usable LBA {first_usable} overlaps the GPT (at least {least_first_usable})"
        )));
    }
    let too_small = || Error::invalid(format!("a {}-byte disk is too small for a GPT", img.size));
    let last_lba = total.checked_sub(1).ok_or_else(too_small)?;
    // The backup array and, in the last LBA, the backup header fill the last `tail`.
    let backup_array_lba = total.checked_sub(tail).ok_or_else(too_small)?;
    let last_usable = backup_array_lba
        .checked_sub(1)
        .filter(|&l| l >= first_usable)
        .ok_or_else(too_small)?;
    let mut sorted: Vec<&GptPartition> = parts.iter().collect();
    sorted.sort_by_key(|p| p.first_lba);
    let mut prev_last: Option<u64> = None;
    for p in &sorted {
        let overlaps = prev_last.is_some_and(|l| p.first_lba <= l);
        if p.first_lba < first_usable
            || overlaps
            || p.last_lba < p.first_lba
            || p.last_lba > last_usable
        {
            return Err(Error::invalid(format!(
                "partition {:?} (LBA {}..={}) does not fit: usable LBAs are {first_usable}..={last_usable} and partitions must not overlap",
                p.name, p.first_lba, p.last_lba
            )));
        }
        if p.name.encode_utf16().count() > raw::NAME_UNITS {
            return Err(Error::invalid(format!(
                "partition name {:?} is longer than {} UTF-16 units",
                p.name,
                raw::NAME_UNITS
            )));
        }
        prev_last = Some(p.last_lba);
    }

    let mut array: Vec<u8> = parts.iter().flat_map(entry_bytes).collect();
    array.resize(raw::ARRAY_LEN, 0);
    let array_crc = crc32fast::hash(&array);
    // On disk the array fills whole sectors.
    array.resize(raw::ARRAY_LEN.next_multiple_of(sector_len), 0);
    // The 92 header bytes in field order (UEFI 2.10 Table 5.5); its CRC covers them
    // with the CRC field read as zero.
    let header_fields = |my: u64, alt: u64, entries: u64, crc: u32| -> Vec<u8> {
        [
            raw::SIGNATURE.as_slice(),
            &raw::REVISION_1_0.to_le_bytes(),
            &raw::HEADER_SIZE.to_le_bytes(),
            &crc.to_le_bytes(),
            &[0; 4],
            &my.to_le_bytes(),
            &alt.to_le_bytes(),
            &first_usable.to_le_bytes(),
            &last_usable.to_le_bytes(),
            &disk_guid.to_bytes_le(),
            &entries.to_le_bytes(),
            &raw::ENTRY_COUNT.to_le_bytes(),
            &raw::ENTRY_SIZE.to_le_bytes(),
            &array_crc.to_le_bytes(),
        ]
        .concat()
    };
    let header = |my: u64, alt: u64, entries: u64| -> Vec<u8> {
        let crc = crc32fast::hash(&header_fields(my, alt, entries, 0));
        let mut h = header_fields(my, alt, entries, crc);
        h.resize(sector_len, 0);
        h
    };

    // LBA 0: protective MBR, one 0xEE entry covering the disk (capped at 2^32-1).
    let covered = u32::try_from(last_lba).unwrap_or(u32::MAX);
    let mut head = [
        opts.boot_code
            .unwrap_or(&[0; raw::MBR_BOOT_CODE])
            .as_slice(),
        &[0x00, 0x00, 0x02, 0x00], // not bootable; CHS of LBA 1
        &[raw::MBR_TYPE_PROTECTIVE, 0xff, 0xff, 0xff],
        &1u32.to_le_bytes(),
        &covered.to_le_bytes(),
        &[0; 48], // three unused entries
        &[0x55, 0xaa],
    ]
    .concat();
    head.resize(sector_len, 0);
    head.extend_from_slice(&header(1, last_lba, 2));
    head.extend_from_slice(&array);
    img.put(0, head)?;

    let mut tail_bytes = array;
    tail_bytes.extend_from_slice(&header(last_lba, 1, backup_array_lba));
    img.put(lba_offset(backup_array_lba, per_sector)?, tail_bytes)?;
    Ok(())
}

/// A partition as read from a disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionEntry {
    pub index: u32,
    pub name: String,
    pub type_guid: Option<Guid>,
    pub type_name: Option<&'static str>,
    pub unique_guid: Option<Guid>,
    /// MBR partition type byte (MBR disks only).
    pub mbr_type: Option<u8>,
    pub first_lba: u64,
    pub last_lba: u64,
    pub offset: u64,
    pub size: u64,
    pub attributes: u64,
    pub legacy_bios_bootable: bool,
}

impl PartitionEntry {
    /// What the partition is, for people: the known type's name, else its type GUID,
    /// else the MBR type byte.
    pub fn type_label(&self) -> Option<String> {
        self.type_name
            .map(str::to_string)
            .or_else(|| self.type_guid.map(|g| g.to_string()))
            .or_else(|| self.mbr_type.map(|b| format!("type {b:#04x}")))
    }
}

/// A partition table as read from a disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionTable {
    /// `gpt` or `mbr`.
    pub scheme: &'static str,
    pub sector_size: u64,
    pub disk_guid: Option<Guid>,
    pub first_usable_lba: Option<u64>,
    pub last_usable_lba: Option<u64>,
    pub header_crc_ok: Option<bool>,
    pub array_crc_ok: Option<bool>,
    /// Whether a backup header was found where the primary says, with the same array CRC.
    pub backup_ok: Option<bool>,
    pub partitions: Vec<PartitionEntry>,
    /// Problems found while reading, one line each.
    pub problems: Vec<String>,
}

/// Read the partition table of a raw disk: GPT at 512- or 4096-byte sectors, else the
/// MBR's primary partitions. Every field read is bounded by `data`.
pub fn read<'a>(data: impl Into<Window<'a>>) -> Result<PartitionTable> {
    let data: Window<'a> = data.into();
    let (mut table, backup) = read_deferred(data)?;
    if let Some(b) = backup {
        b.apply(data, &mut table);
    }
    Ok(table)
}

/// The backup GPT header check, left for later: a reader of a stream reads the end
/// of the disk last, after the partitions, so as not to decode it twice.
#[derive(Debug, Clone)]
pub struct BackupCheck {
    alternate: u64,
    sector: u64,
    array_crc: [u8; 4],
    /// Where its problem goes in the table's problems (the order [`read`] gives).
    problem_at: usize,
}

impl BackupCheck {
    /// Reads the backup header and records what [`read`] would have.
    pub fn apply(self, data: Window<'_>, table: &mut PartitionTable) {
        let backup_ok = self
            .alternate
            .checked_mul(self.sector)
            .and_then(|o| data.bytes(o, 92, "backup GPT header").ok())
            .map(|b| b.starts_with(raw::SIGNATURE) && b.get(88..92) == Some(&self.array_crc[..]));
        if backup_ok != Some(true) {
            let at = self.problem_at.min(table.problems.len());
            table.problems.insert(
                at,
                format!("no matching backup GPT header at LBA {}", self.alternate),
            );
        }
        table.backup_ok = backup_ok;
    }
}

/// [`read`] without reading the backup GPT header: the check to do afterwards.
pub fn read_deferred(data: Window<'_>) -> Result<(PartitionTable, Option<BackupCheck>)> {
    if data.bytes(raw::MBR_SIGNATURE_AT, 2, "MBR signature")?[..] != [0x55, 0xaa] {
        return Err(Error::malformed(
            raw::MBR_SIGNATURE_AT,
            "no 0x55AA boot signature",
        ));
    }
    for sector in [512u64, 4096] {
        if data
            .bytes(sector, 8, "GPT header")
            .is_ok_and(|s| s[..] == raw::SIGNATURE[..])
        {
            return read_gpt(data, sector);
        }
    }
    Ok((read_mbr(data)?, None))
}

/// CRC32 of a GPT header with its own CRC field read as zero (UEFI 2.10 §5.3.2).
fn header_crc(hdr: &[u8]) -> u32 {
    let (head, rest) = hdr.split_at_checked(16).unwrap_or((hdr, &[]));
    let mut crc = crc32fast::Hasher::new();
    crc.update(head);
    crc.update(&[0; 4]);
    crc.update(rest.get(4..).unwrap_or_default());
    crc.finalize()
}

/// Read the GPT whose header is at LBA 1 of `sector`-byte sectors (512 or 4096).
fn read_gpt(data: Window<'_>, sector: u64) -> Result<(PartitionTable, Option<BackupCheck>)> {
    let h = sector;
    // The file offset of a header field; the header is within the first 8 KiB.
    let at = |field: u64| h.saturating_add(field);
    let what = "GPT header";
    let header_size = data.u32_le(at(raw::H_SIZE), what)?;
    let mut problems = Vec::new();
    if !(u64::from(raw::HEADER_SIZE)..=sector).contains(&u64::from(header_size)) {
        return Err(Error::malformed(
            at(raw::H_SIZE),
            format!("GPT header size {header_size} is outside 92..={sector}"),
        ));
    }
    let hdr = data.bytes(h, u64::from(header_size), what)?;
    let hdr: &[u8] = &hdr;
    let stored_crc = u32_le(hdr, raw::H_CRC, what)?;
    let header_crc_ok = header_crc(hdr) == stored_crc;
    if !header_crc_ok {
        problems.push(format!(
            "primary GPT header CRC mismatch at offset {:#x}",
            at(raw::H_CRC)
        ));
    }
    let rev = u32_le(hdr, raw::H_REVISION, what)?;
    if rev != raw::REVISION_1_0 {
        problems.push(format!("GPT revision {rev:#x} (expected 0x00010000)"));
    }
    let alternate = u64_le(hdr, raw::H_ALTERNATE_LBA, what)?;
    let first_usable = u64_le(hdr, raw::H_FIRST_USABLE, what)?;
    let last_usable = u64_le(hdr, raw::H_LAST_USABLE, what)?;
    let disk_guid = Guid::from_bytes_le(bytes::array(hdr, raw::H_DISK_GUID, what)?);
    let entries_lba = u64_le(hdr, raw::H_ENTRIES_LBA, what)?;
    let count = u32_le(hdr, raw::H_ENTRY_COUNT, what)?;
    let esize = u32_le(hdr, raw::H_ENTRY_SIZE, what)?;
    let array_crc = u32_le(hdr, raw::H_ARRAY_CRC, what)?;
    if esize < raw::ENTRY_SIZE || !esize.is_power_of_two() {
        return Err(Error::malformed(
            at(raw::H_ENTRY_SIZE),
            format!("GPT entry size {esize} is not a power of two >= 128"),
        ));
    }
    let array_off = entries_lba
        .checked_mul(sector)
        .ok_or_else(|| Error::malformed(at(raw::H_ENTRIES_LBA), "entry array LBA overflows"))?;
    let array_len = u64::from(count)
        .checked_mul(u64::from(esize))
        .ok_or_else(|| Error::malformed(at(raw::H_ENTRY_COUNT), "entry array size overflows"))?;
    // Bounded by the input: slice() fails before anything is allocated.
    let array = data.bytes(array_off, array_len, "GPT entry array")?;
    let array_crc_ok = crc32fast::hash(&array) == array_crc;
    if !array_crc_ok {
        problems.push(format!(
            "GPT entry array CRC mismatch (array at {array_off:#x})"
        ));
    }
    let backup = BackupCheck {
        alternate,
        sector,
        array_crc: bytes::array(hdr, 88, what)?,
        problem_at: problems.len(),
    };
    let entry_len = usize::try_from(esize).map_err(|_| {
        Error::malformed(
            at(raw::H_ENTRY_SIZE),
            format!("GPT entry size {esize} does not fit in memory"),
        )
    })?;
    let partitions = gpt_partitions(&array, entry_len, sector, &mut problems)?;
    let table = PartitionTable {
        scheme: "gpt",
        sector_size: sector,
        disk_guid: Some(disk_guid),
        first_usable_lba: Some(first_usable),
        last_usable_lba: Some(last_usable),
        header_crc_ok: Some(header_crc_ok),
        array_crc_ok: Some(array_crc_ok),
        backup_ok: None,
        partitions,
        problems,
    };
    Ok((table, Some(backup)))
}

/// The used entries of a GPT entry array of `entry_len`-byte entries.
fn gpt_partitions(
    array: &[u8],
    entry_len: usize,
    sector: u64,
    problems: &mut Vec<String>,
) -> Result<Vec<PartitionEntry>> {
    let mut partitions = Vec::new();
    // Numbered from 1; the header counts entries in a u32.
    for (index, e) in (1..=u32::MAX).zip(array.chunks_exact(entry_len)) {
        let t = Guid::from_bytes_le(bytes::array(e, raw::E_TYPE, "GPT entry")?);
        if t.is_zero() {
            continue;
        }
        let first = u64_le(e, raw::E_FIRST, "GPT entry")?;
        let last = u64_le(e, raw::E_LAST, "GPT entry")?;
        let attributes = u64_le(e, raw::E_ATTRS, "GPT entry")?;
        let units: Vec<u16> = bytes::slice(e, raw::E_NAME, raw::NAME_BYTES, "GPT entry name")?
            .chunks_exact(2)
            .filter_map(|u| <[u8; 2]>::try_from(u).ok())
            .map(u16::from_le_bytes)
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&units);
        if last < first {
            problems.push(format!(
                "partition {index} ends (LBA {last}) before it starts (LBA {first})"
            ));
        }
        let size = last
            .checked_sub(first)
            .and_then(|n| n.checked_add(1))
            .and_then(|n| n.checked_mul(sector))
            .unwrap_or(0);
        partitions.push(PartitionEntry {
            index,
            name,
            type_name: type_name(&t),
            type_guid: Some(t),
            unique_guid: Some(Guid::from_bytes_le(bytes::array(
                e,
                raw::E_UNIQUE,
                "GPT entry",
            )?)),
            mbr_type: None,
            first_lba: first,
            last_lba: last,
            offset: first.saturating_mul(sector),
            size,
            attributes,
            legacy_bios_bootable: attributes & ATTR_LEGACY_BIOS_BOOTABLE != 0,
        });
    }
    Ok(partitions)
}

fn read_mbr(data: Window<'_>) -> Result<PartitionTable> {
    let mut partitions = Vec::new();
    let mut problems = Vec::new();
    let table = data.bytes(raw::MBR_TABLE, 64, "MBR partition table")?;
    for (index, e) in (1..=4u32).zip(table.chunks_exact(16)) {
        let kind = bytes::u8_at(e, 4, "MBR partition entry")?;
        let start = u64::from(u32_le(e, 8, "MBR partition entry")?);
        let count = u64::from(u32_le(e, 12, "MBR partition entry")?);
        if kind == 0 || count == 0 {
            continue;
        }
        if raw::MBR_TYPE_EXTENDED.contains(&kind) {
            problems.push(format!(
                "partition {index} is an extended partition; logical partitions are not listed"
            ));
        }
        let boot = bytes::u8_at(e, 0, "MBR partition entry")?;
        partitions.push(PartitionEntry {
            index,
            name: String::new(),
            type_guid: None,
            type_name: match kind {
                0xef => Some("efi-system"),
                0x83 => Some("linux"),
                0x0b | 0x0c => Some("fat32"),
                0x06 | 0x0e => Some("fat16"),
                0xee => Some("gpt-protective"),
                _ => None,
            },
            unique_guid: None,
            mbr_type: Some(kind),
            first_lba: start,
            // u32 values in u64: nothing here can saturate.
            last_lba: start.saturating_add(count).saturating_sub(1),
            offset: start.saturating_mul(512),
            size: count.saturating_mul(512),
            attributes: u64::from(boot),
            legacy_bios_bootable: boot == 0x80,
        });
    }
    Ok(PartitionTable {
        scheme: "mbr",
        sector_size: 512,
        disk_guid: None,
        first_usable_lba: None,
        last_usable_lba: None,
        header_crc_ok: None,
        array_crc_ok: None,
        backup_ok: None,
        partitions,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back_both_sector_sizes() {
        for sector in [512u64, 4096] {
            let mut img = DiskImage::new(8 << 20);
            let (first, _) = reserved_sectors(sector_size(sector).unwrap());
            let mib = (1 << 20) / sector;
            let p = GptPartition {
                name: "EFI".into(),
                type_guid: parse_type("esp").unwrap(),
                unique_guid: Guid::from_name(&Guid::ZERO, "p"),
                first_lba: mib,
                last_lba: 3 * mib - 1,
                attributes: ATTR_LEGACY_BIOS_BOOTABLE,
            };
            assert!(first <= mib);
            write(
                &mut img,
                sector,
                Guid::from_name(&Guid::ZERO, "d"),
                std::slice::from_ref(&p),
            )
            .unwrap();
            let t = read(&img.to_vec()).unwrap();
            assert_eq!(t.sector_size, sector);
            assert_eq!(t.problems, Vec::<String>::new());
            assert_eq!(t.partitions.len(), 1);
            let e = &t.partitions[0];
            assert_eq!(
                (e.name.as_str(), e.first_lba, e.size),
                ("EFI", mib, 2 << 20)
            );
            assert_eq!(e.type_name, Some("efi-system"));
            assert!(e.legacy_bios_bootable);
        }
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let mut img = DiskImage::new(4 << 20);
        let p = GptPartition {
            name: "X".into(),
            type_guid: parse_type("linux").unwrap(),
            unique_guid: Guid::ZERO,
            first_lba: 2048,
            last_lba: 8191,
            attributes: 0,
        };
        assert!(write(&mut img, 512, Guid::ZERO, &[p]).is_err());
        assert!(write(&mut DiskImage::new(4 << 20), 1024, Guid::ZERO, &[]).is_err());
    }

    #[test]
    fn hostile_tables_do_not_panic() {
        let mut img = DiskImage::new(1 << 20);
        write(&mut img, 512, Guid::ZERO, &[]).unwrap();
        let good = img.to_vec();
        for at in [512 + 12, 512 + 72, 512 + 80, 512 + 84] {
            for v in [0u32, 1, 0xffff_ffff, 0x8000_0000] {
                let mut d = good.clone();
                d[at..at + 4].copy_from_slice(&v.to_le_bytes());
                let _ = read(&d);
            }
        }
        assert!(read(&good[..600]).is_err());
    }
}
