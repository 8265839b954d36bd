//! .efifw: a firmware blob with a small header (systemd 258, src/fundamental/efifw.h):
//! u32 magic 0xFEEDDEAD, u32 header length (16), u32 fwid length, u32 payload length,
//! then the NUL-terminated fwid, then the payload.

use crate::bytes::{self, u32_le};
use crate::error::{Error, Result};

pub const MAGIC: u32 = 0xFEED_DEAD;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Firmware {
    pub fwid: String,
    pub payload_size: u64,
}

/// `data` is a prefix of the section (at least header and fwid); `section_len` its full size.
pub fn parse(data: &[u8], section_len: u64) -> Result<Firmware> {
    let magic = u32_le(data, 0, ".efifw header")?;
    if magic != MAGIC {
        return Err(Error::malformed(
            0,
            format!(".efifw magic {magic:#x} is not 0xfeeddead"),
        ));
    }
    let hlen = u64::from(u32_le(data, 4, ".efifw header")?);
    let fwid_len = u64::from(u32_le(data, 8, ".efifw header")?);
    let payload_len = u64::from(u32_le(data, 12, ".efifw header")?);
    let fwid = bytes::slice(data, hlen, fwid_len, ".efifw fwid")?;
    // Only the header and fwid are read; the payload's extent is checked against
    // the section size, so a large firmware blob is never touched.
    // Three u32 values summed in a u64: cannot saturate.
    let payload_at = hlen.saturating_add(fwid_len);
    if payload_at.saturating_add(payload_len) > section_len {
        return Err(Error::Truncated {
            what: ".efifw payload",
            offset: payload_at,
            needed: payload_len,
            available: section_len.saturating_sub(payload_at),
        });
    }
    Ok(Firmware {
        fwid: bytes::text(fwid),
        payload_size: payload_len,
    })
}

/// The `.efifw` section ukify builds from a firmware directory (`parse_efifw_dir`):
/// the header, `fwid` (the directory's name) with its NUL, then the blob.
pub fn encode(fwid: &str, payload: &[u8]) -> Result<Vec<u8>> {
    if payload.is_empty() {
        return Err(Error::invalid(format!(
            "firmware {fwid}: the blob is empty"
        )));
    }
    let too_big = || Error::invalid(format!("firmware {fwid}: over 4 GiB"));
    let fwid_len = u32::try_from(fwid.len().saturating_add(1)).map_err(|_| too_big())?;
    let payload_len = u32::try_from(payload.len()).map_err(|_| too_big())?;
    let mut out = Vec::with_capacity(payload.len().saturating_add(fwid.len()).saturating_add(17));
    for v in [MAGIC, HEADER_LEN, fwid_len, payload_len] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(fwid.as_bytes());
    out.push(0);
    out.extend_from_slice(payload);
    Ok(out)
}

/// The header length ukify writes (`EFIFW_HEADER_SIZE`).
pub const HEADER_LEN: u32 = 16;
