//! .hwids: systemd's hardware-id table (257+, src/boot/chid.h, devicetree.c):
//! 28-byte entries {u32 descriptor = type<<28 | size; 16-byte CHID (EFI_GUID);
//! u32 name offset; u32 compatible offset}, ended by an all-zero entry, followed by
//! NUL-terminated strings. Offsets count from the start of the section.

use crate::bytes::{self, u32_le};
use crate::error::{Error, Result};

const ENTRY: u64 = 28;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hwid {
    /// Device type (descriptor >> 28); 1 is a device tree match.
    pub device_type: u32,
    /// The CHID as a GUID string.
    pub chid: String,
    pub name: String,
    pub compatible: String,
}

/// Format an EFI_GUID (first three fields little-endian) as text.
pub fn guid(b: &[u8; 16]) -> String {
    format!("{:x}", crate::guid::Guid::from_bytes_le(*b))
}

/// At most this many entries are decoded. ukify writes one per CHID of each device
/// (about 15 per device), so real tables hold hundreds; each costs about 120 bytes
/// beyond its 28 (issue 9).
pub const MAX_ENTRIES: usize = 4096;

/// At most this many bytes of names and compatibles are copied out. Entries share
/// their strings, so a small table could otherwise point thousands of entries at one
/// long string and be copied thousands of times.
pub const MAX_STRING_BYTES: usize = 256 * 1024;

fn string_at(data: &[u8], off: u32) -> Result<&[u8]> {
    let off = u64::from(off);
    let rest = bytes::slice(
        data,
        off,
        u64::try_from(data.len())
            .unwrap_or(u64::MAX)
            .saturating_sub(off),
        ".hwids string",
    )?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| Error::malformed(off, ".hwids string is not NUL-terminated"))?;
    Ok(rest.get(..end).unwrap_or_default())
}

/// Decode the entries: the first [`MAX_ENTRIES`] (fewer when their strings pass
/// [`MAX_STRING_BYTES`]), and how many more the table holds. The table must end
/// with its all-zero entry inside `data`; the strings of the entries not listed
/// are not checked.
pub fn parse(data: &[u8]) -> Result<(Vec<Hwid>, u64)> {
    let mut out = Vec::new();
    let mut copied = 0usize;
    let mut more = 0u64;
    let mut at = 0u64;
    loop {
        let e = bytes::slice(data, at, ENTRY, ".hwids entry")?;
        if e.iter().all(|&b| b == 0) {
            return Ok((out, more));
        }
        at = at.saturating_add(ENTRY);
        // Past a cap the rest are only counted: their strings are not even
        // scanned, or entries sharing a long string would scan it each time.
        if out.len() >= MAX_ENTRIES || copied > MAX_STRING_BYTES {
            more = more.saturating_add(1);
            continue;
        }
        let descriptor = u32_le(e, 0, ".hwids entry")?;
        let chid: [u8; 16] = bytes::array(e, 4, ".hwids entry")?;
        let name = string_at(data, u32_le(e, 20, ".hwids entry")?)?;
        let compatible = string_at(data, u32_le(e, 24, ".hwids entry")?)?;
        copied = copied
            .saturating_add(name.len())
            .saturating_add(compatible.len());
        if copied > MAX_STRING_BYTES {
            more = more.saturating_add(1);
            continue;
        }
        out.push(Hwid {
            device_type: descriptor >> 28,
            chid: guid(&chid),
            name: String::from_utf8_lossy(name).into_owned(),
            compatible: String::from_utf8_lossy(compatible).into_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_one_entry() {
        let mut d = vec![0u8; 56];
        d[0..4].copy_from_slice(&(1u32 << 28 | 28).to_le_bytes());
        d[4..20].copy_from_slice(&[
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        d[20..24].copy_from_slice(&56u32.to_le_bytes());
        d[24..28].copy_from_slice(&61u32.to_le_bytes());
        d.extend_from_slice(b"name\0comp\0");
        let (h, more) = parse(&d).unwrap();
        assert_eq!(more, 0);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].chid, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(h[0].name, "name");
        assert_eq!(h[0].compatible, "comp");
        assert!(parse(&d[..30]).is_err());
    }

    #[test]
    fn shared_long_string_is_copied_a_bounded_number_of_times() {
        // 1000 entries all naming one 64 KiB string.
        let n = 1000;
        let strings = 28 * (n + 1);
        let mut d = vec![0u8; strings];
        for e in d.chunks_exact_mut(28).take(n) {
            e[0..4].copy_from_slice(&(1u32 << 28).to_le_bytes());
            e[20..24].copy_from_slice(&(strings as u32).to_le_bytes());
            e[24..28].copy_from_slice(&(strings as u32).to_le_bytes());
        }
        d.extend(std::iter::repeat_n(b'x', 64 * 1024));
        d.push(0);
        let (h, more) = parse(&d).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(more, n as u64 - 2);
    }
}
