//! Bounded, checked reads over untrusted byte slices. Every reader in the core goes
//! through these helpers, so no file-controlled offset can index out of bounds.

use std::ops::Range;

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

/// `data[range]` for a range of file offsets; a range that ends before it starts is
/// malformed at its start.
pub fn range<'a>(data: &'a [u8], range: &Range<u64>, what: &'static str) -> Result<&'a [u8]> {
    let len = range.end.checked_sub(range.start).ok_or_else(|| {
        Error::malformed(
            range.start,
            format!(
                "{what} {:#x}..{:#x} ends before it starts",
                range.start, range.end
            ),
        )
    })?;
    slice(data, range.start, len, what)
}

/// Checked `a + b` on file-controlled values; overflow is a malformed input at `offset`.
pub fn add(a: u64, b: u64, offset: u64, what: &str) -> Result<u64> {
    a.checked_add(b)
        .ok_or_else(|| Error::malformed(offset, format!("{what} overflows")))
}

/// Checked `a * b` on file-controlled values; overflow is a malformed input at `offset`.
pub fn mul(a: u64, b: u64, offset: u64, what: &str) -> Result<u64> {
    a.checked_mul(b)
        .ok_or_else(|| Error::malformed(offset, format!("{what} overflows")))
}

/// End of a span given by two 32-bit fields (PointerToRawData + SizeOfRawData, an
/// RVA + a size), exact in 64 bits.
#[allow(clippy::arithmetic_side_effects)] // u32::MAX + u32::MAX < u64::MAX
pub fn span_end(start: u32, len: u32) -> u64 {
    u64::from(start) + u64::from(len)
}

/// Round `value` up to a multiple of `align` (a power of two or any non-zero value).
pub fn align_up(value: u64, align: u64) -> Option<u64> {
    if align <= 1 {
        return Some(value);
    }
    value.checked_next_multiple_of(align)
}

/// Text of a section payload: UTF-8 (lossy), with trailing NULs removed.
pub fn text(data: &[u8]) -> String {
    text_ref(data).into_owned()
}

/// [`text`] borrowed from `data` when it is valid UTF-8.
pub fn text_ref(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(trim_nul(data))
}

/// A text section as a person reads it: UTF-16LE when [`is_utf16le`] says so (EFI
/// Boot Guard's `.cmdline`), else [`text_ref`]'s UTF-8. Either way lossy, without
/// trailing NULs, and at most 1.5 times `data`'s length.
pub fn section_text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    if !is_utf16le(data) {
        return text_ref(data);
    }
    let body = data.strip_prefix(&[0xff, 0xfe]).unwrap_or(data);
    let units = body
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .take_while(|&u| u != 0);
    std::borrow::Cow::Owned(
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

/// Is `data` UTF-16LE text? It starts with the byte-order mark FF FE, or, up to a
/// NUL terminator (two zero bytes), it is at least two ASCII characters each
/// followed by a zero byte: UTF-8 text never has NULs inside, so the pattern tells.
pub fn is_utf16le(data: &[u8]) -> bool {
    if data.starts_with(&[0xff, 0xfe]) {
        return true;
    }
    let mut chars = 0usize;
    for c in data.chunks(2) {
        match c {
            [0, 0] => break,
            [lo, 0] if *lo != 0 && lo.is_ascii() => chars = chars.saturating_add(1),
            _ => return false,
        }
    }
    chars >= 2
}

/// `data` without its trailing NUL bytes.
pub fn trim_nul(data: &[u8]) -> &[u8] {
    let mut t = data;
    while let [rest @ .., 0] = t {
        t = rest;
    }
    t
}

/// Lowercase hex of `data`.
pub fn hex(data: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(data.len().saturating_mul(2));
    for b in data {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The bytes of hex text (either case), or None when it is not an even number of hex
/// digits. Only digits count: `u8::from_str_radix` alone would also take a sign ("+f").
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|p| match p {
            [hi, lo] => Some(digit(*hi)?.checked_mul(16)?.checked_add(digit(*lo)?)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn utf16le_text_by_bom_or_by_its_nuls() {
        let u16le = |t: &str| {
            t.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>()
        };
        let mut cmdline = u16le("console=ttyS0 x=1");
        cmdline.resize(64, 0);
        assert!(is_utf16le(&cmdline));
        assert_eq!(section_text(&cmdline), "console=ttyS0 x=1");
        let bom = [&[0xff, 0xfe][..], &u16le("é ok")].concat();
        assert_eq!(section_text(&bom), "é ok");
        for utf8 in [
            &b"console=ttyS0\0\0"[..],
            b"a\0",
            b"",
            b"\0\0",
            "é".as_bytes(),
        ] {
            assert!(!is_utf16le(utf8), "{utf8:?}");
        }
        assert_eq!(section_text(b"quiet\0\0"), "quiet");
    }

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
        assert_eq!(align_up(7, 3), Some(9));
        assert_eq!(align_up(7, 0), Some(7));
        assert_eq!(text(b"quiet\0\0"), "quiet");
        assert_eq!(text(b"a\0b\0"), "a\0b");
        assert_eq!(text(b"\0\0"), "");
        assert_eq!(hex(&[0xab, 0x01]), "ab01");
        assert_eq!(hex(&[]), "");
        assert_eq!(unhex("aB01"), Some(vec![0xab, 0x01]));
        assert_eq!(unhex(""), Some(vec![]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("+f"), None);
        assert_eq!(unhex("\u{e9}"), None);
    }

    #[test]
    fn arithmetic_is_checked() {
        let d = [1u8, 2, 3];
        assert_eq!(range(&d, &(1..3), "x").unwrap(), &[2, 3]);
        assert!(matches!(
            range(&d, &Range { start: 2, end: 1 }, "x"),
            Err(Error::Malformed { offset: 2, .. })
        ));
        assert!(matches!(
            add(u64::MAX, 1, 7, "x"),
            Err(Error::Malformed { offset: 7, .. })
        ));
        assert!(mul(u64::MAX, 2, 7, "x").is_err());
        assert_eq!(mul(3, 40, 0, "x").unwrap(), 120);
        assert_eq!(span_end(u32::MAX, u32::MAX), 2 * u64::from(u32::MAX));
    }
}
