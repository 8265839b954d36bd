//! A minimal, bounded DER reader that keeps the exact bytes of every element.
//!
//! Typed decoders (der, x509-cert, cms) re-encode and sort SET OF values, which loses
//! the bytes a signature was computed over and rejects some structures firmware
//! accepts. Authenticode needs raw spans (the content octets of
//! SpcIndirectDataContent, the signed attributes, each certificate's TBS), so the
//! structure is walked here and only leaf values go to the typed decoders.

use const_oid::ObjectIdentifier;

use crate::error::{Error, Result};

pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_BIT_STRING: u8 = 0x03;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_NULL: u8 = 0x05;
pub const TAG_OID: u8 = 0x06;
pub const TAG_SEQUENCE: u8 = 0x30;
pub const TAG_SET: u8 = 0x31;
/// `[n]` context-specific, constructed.
pub const fn context(n: u8) -> u8 {
    0xa0 | n
}
/// `[n]` context-specific, primitive.
pub const fn context_primitive(n: u8) -> u8 {
    0x80 | n
}

/// One element: its tag, its whole encoding and its content octets.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    /// Tag, length and value.
    pub full: &'a [u8],
    /// The content octets.
    pub value: &'a [u8],
    /// File offset of the tag byte.
    pub offset: u64,
    /// File offset of the first content octet.
    pub value_offset: u64,
}

impl<'a> Tlv<'a> {
    /// A reader over the content octets.
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.value, self.value_offset)
    }

    pub fn expect_tag(self, tag: u8, what: &str) -> Result<Self> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(Error::malformed(
                self.offset,
                format!("{what}: expected tag {tag:#04x}, found {:#04x}", self.tag),
            ))
        }
    }

    pub fn oid(&self, what: &str) -> Result<ObjectIdentifier> {
        if self.tag != TAG_OID {
            return Err(Error::malformed(
                self.offset,
                format!(
                    "{what}: expected an OBJECT IDENTIFIER, found tag {:#04x}",
                    self.tag
                ),
            ));
        }
        ObjectIdentifier::from_bytes(self.value).map_err(|e| {
            Error::malformed(self.offset, format!("{what}: bad OBJECT IDENTIFIER ({e})"))
        })
    }
}

/// A cursor over a run of DER elements.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    /// The elements not read yet.
    rest: &'a [u8],
    /// File offset of `rest[0]`.
    offset: u64,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Reader {
            rest: data,
            offset: base,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element. Definite lengths only (DER); at most 4 length octets.
    pub fn read(&mut self, what: &str) -> Result<Tlv<'a>> {
        let input = self.rest;
        let offset = self.offset;
        let trunc = |rule: &str| Error::malformed(offset, format!("{what}: {rule}"));
        let (&tag, after_tag) = input
            .split_first()
            .ok_or_else(|| trunc("element expected, input ends"))?;
        if tag & 0x1f == 0x1f {
            return Err(trunc("multi-byte tags are not used by Authenticode"));
        }
        let (&first, after_first) = after_tag
            .split_first()
            .ok_or_else(|| trunc("length octet missing"))?;
        let (len, body) = if first < 0x80 {
            (usize::from(first), after_first)
        } else if first == 0x80 {
            return Err(trunc("indefinite length (BER) is not DER"));
        } else {
            let n = usize::from(first & 0x7f);
            if n > 4 {
                return Err(trunc("length of more than 4 octets"));
            }
            let (octets, body) = after_first
                .split_at_checked(n)
                .ok_or_else(|| trunc("length octets truncated"))?;
            // At most 4 octets: fits a usize on 32-bit targets too.
            let len = octets
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, body)
        };
        let (value, rest) = body.split_at_checked(len).ok_or_else(|| {
            trunc(&format!(
                "length {len} runs past the end of the enclosing element ({} bytes left)",
                body.len()
            ))
        })?;
        // `body` and `rest` are suffixes of `input`.
        #[allow(clippy::arithmetic_side_effects)]
        let (header, consumed) = (input.len() - body.len(), input.len() - rest.len());
        let full = input.get(..consumed).unwrap_or_default();
        self.rest = rest;
        self.offset = offset.saturating_add(consumed as u64);
        Ok(Tlv {
            tag,
            full,
            value,
            offset,
            value_offset: offset.saturating_add(header as u64),
        })
    }

    pub fn expect_tag(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>> {
        self.read(what)?.expect_tag(tag, what)
    }

    /// The next element if it has `tag`.
    pub fn optional(&mut self, tag: u8, what: &str) -> Result<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(tag) {
            self.read(what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Require that nothing follows.
    pub fn finish(&self, what: &str) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::malformed(
                self.offset,
                format!("{what}: unexpected trailing data"),
            ))
        }
    }
}

/// Encode a DER length.
pub fn encode_len(out: &mut Vec<u8>, len: usize) {
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = (len as u64).to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            let sig = bytes.get(skip..).unwrap_or_default();
            #[allow(clippy::cast_possible_truncation)] // at most 8 octets
            let count = sig.len() as u8;
            out.push(0x80 | count);
            out.extend_from_slice(sig);
        }
    }
}

/// A DER AlgorithmIdentifier: its OID (parameters are not needed by Authenticode).
pub fn algorithm(tlv: Tlv<'_>, what: &str) -> Result<ObjectIdentifier> {
    let tlv = tlv.expect_tag(TAG_SEQUENCE, what)?;
    tlv.reader().read(what)?.oid(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths_and_rejects_bad_ones() {
        let d = [0x30, 0x03, 0x02, 0x01, 0x05];
        let mut r = Reader::new(&d, 100);
        let t = r.read("x").unwrap();
        assert_eq!((t.tag, t.value.len(), t.value_offset), (0x30, 3, 102));
        assert!(r.is_empty());
        let long = [0x04, 0x81, 0x01, 0xaa];
        assert_eq!(Reader::new(&long, 0).read("x").unwrap().value, &[0xaa]);
        for bad in [
            &[0x30, 0x80, 0, 0][..],
            &[0x30, 0x05, 0x01],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30],
            &[],
            &[0x1f, 0x01, 0],
        ] {
            assert!(Reader::new(bad, 0).read("x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encodes_lengths() {
        for (n, enc) in [
            (5usize, vec![5u8]),
            (0x80, vec![0x81, 0x80]),
            (0x1234, vec![0x82, 0x12, 0x34]),
        ] {
            let mut v = Vec::new();
            encode_len(&mut v, n);
            assert_eq!(v, enc);
        }
    }
}
