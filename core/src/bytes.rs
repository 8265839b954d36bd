//! Bounded, checked reads over untrusted byte slices. Every reader in the core goes
//! through these helpers, so no file-controlled offset can index out of bounds.

use crate::error::{Error, Result};

/// `data[offset..offset + len]`, or a `Truncated` error naming `what`.
pub fn slice<'a>(data: &'a [u8], offset: u64, len: u64, what: &'static str) -> Result<&'a [u8]> {
    let available = (data.len() as u64).saturating_sub(offset);
    let trunc = || Error::Truncated {
        what,
        offset,
        needed: len,
        available,
    };
    let start = usize::try_from(offset).map_err(|_| trunc())?;
    let n = usize::try_from(len).map_err(|_| trunc())?;
    let end = start.checked_add(n).ok_or_else(trunc)?;
    data.get(start..end).ok_or_else(trunc)
}

/// A fixed-size array read at `offset`.
pub fn array<const N: usize>(data: &[u8], offset: u64, what: &'static str) -> Result<[u8; N]> {
    let s = slice(data, offset, N as u64, what)?;
    let mut out = [0u8; N];
    out.copy_from_slice(s);
    Ok(out)
}

pub fn u8_at(data: &[u8], offset: u64, what: &'static str) -> Result<u8> {
    Ok(array::<1>(data, offset, what)?[0])
}

pub fn u16_le(data: &[u8], offset: u64, what: &'static str) -> Result<u16> {
    Ok(u16::from_le_bytes(array(data, offset, what)?))
}

pub fn u32_le(data: &[u8], offset: u64, what: &'static str) -> Result<u32> {
    Ok(u32::from_le_bytes(array(data, offset, what)?))
}

pub fn u64_le(data: &[u8], offset: u64, what: &'static str) -> Result<u64> {
    Ok(u64::from_le_bytes(array(data, offset, what)?))
}

/// Checked `a + b` on file-controlled values; overflow is a malformed input at `offset`.
pub fn add(a: u64, b: u64, offset: u64, what: &str) -> Result<u64> {
    a.checked_add(b)
        .ok_or_else(|| Error::malformed(offset, format!("{what} overflows")))
}

/// Round `value` up to a multiple of `align` (a power of two or any non-zero value).
pub fn align_up(value: u64, align: u64) -> Option<u64> {
    if align <= 1 {
        return Some(value);
    }
    let rem = value % align;
    if rem == 0 {
        Some(value)
    } else {
        value.checked_add(align - rem)
    }
}

/// Text of a section payload: UTF-8 (lossy), with trailing NULs removed.
pub fn text(data: &[u8]) -> String {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    String::from_utf8_lossy(data.get(..end).unwrap_or_default()).into_owned()
}

/// Lowercase hex of `data`.
pub fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(data.len().saturating_mul(2));
    for b in data {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let d = [1u8, 2, 3, 4];
        assert_eq!(u16_le(&d, 2, "x").unwrap(), 0x0403);
        assert!(matches!(
            u32_le(&d, 1, "x"),
            Err(Error::Truncated {
                offset: 1,
                needed: 4,
                available: 3,
                ..
            })
        ));
        assert!(slice(&d, u64::MAX, 2, "x").is_err());
        assert!(slice(&d, 2, u64::MAX, "x").is_err());
        assert_eq!(slice(&d, 4, 0, "x").unwrap(), &[] as &[u8]);
    }

    #[test]
    fn align_and_text() {
        assert_eq!(align_up(0x1001, 0x1000), Some(0x2000));
        assert_eq!(align_up(0x1000, 0x1000), Some(0x1000));
        assert_eq!(align_up(u64::MAX, 0x1000), None);
        assert_eq!(text(b"quiet\0\0"), "quiet");
        assert_eq!(hex(&[0xab, 0x01]), "ab01");
    }
}
