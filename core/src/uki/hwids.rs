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
    crate::siglist::Guid(*b).to_string()
}

fn string_at(data: &[u8], off: u32) -> Result<String> {
    let off = u64::from(off);
    let rest = bytes::slice(
        data,
        off,
        (data.len() as u64).saturating_sub(off),
        ".hwids string",
    )?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| Error::malformed(off, ".hwids string is not NUL-terminated"))?;
    Ok(String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned())
}

/// Decode every entry. The number of entries is bounded by the section size.
pub fn parse(data: &[u8]) -> Result<Vec<Hwid>> {
    let mut out = Vec::new();
    let mut at = 0u64;
    loop {
        let e = bytes::slice(data, at, ENTRY, ".hwids entry")?;
        if e.iter().all(|&b| b == 0) {
            return Ok(out);
        }
        let descriptor = u32_le(e, 0, ".hwids entry")?;
        let chid: [u8; 16] = bytes::array(e, 4, ".hwids entry")?;
        let name_off = u32_le(e, 20, ".hwids entry")?;
        let compat_off = u32_le(e, 24, ".hwids entry")?;
        out.push(Hwid {
            device_type: descriptor >> 28,
            chid: guid(&chid),
            name: string_at(data, name_off)?,
            compatible: string_at(data, compat_off)?,
        });
        at += ENTRY;
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
        let h = parse(&d).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].chid, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(h[0].name, "name");
        assert_eq!(h[0].compatible, "comp");
        assert!(parse(&d[..30]).is_err());
    }
}
