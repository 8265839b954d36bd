//! GUIDs, in both of the byte orders they are stored in.
//!
//! A [`Guid`] keeps the 16 bytes in the order of its text form
//! (`C12A7328-F81F-11D2-BA4B-00A0C93EC93B` is `c1 2a 73 28 f8 1f ...`). UEFI stores an
//! EFI_GUID with its first three fields little-endian ("mixed endian", UEFI 2.10
//! Appendix A): GPT headers and entries, EFI_SIGNATURE_LISTs and .hwids all do, and
//! [`Guid::to_bytes_le`] and [`Guid::from_bytes_le`] convert.
//!
//! Text is uppercase with `{}` (as GPT tools print it) and lowercase with `{:x}` (as
//! the UEFI specification and systemd write it).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const ZERO: Guid = Guid([0; 16]);

    /// From the text form read as one number: `0xa5c059a1_94e4_4aa7_87b5_ab155c2bf072`
    /// is `a5c059a1-94e4-4aa7-87b5-ab155c2bf072`.
    pub const fn from_u128(v: u128) -> Guid {
        Guid(v.to_be_bytes())
    }

    /// Parse `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (either case, braces allowed).
    pub fn parse(text: &str) -> Result<Guid> {
        let t = text.trim().trim_start_matches('{').trim_end_matches('}');
        let bad = || {
            Error::invalid(format!(
                "{text:?} is not a GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)"
            ))
        };
        let groups: Vec<&str> = t.split('-').collect();
        if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
            return Err(bad());
        }
        crate::bytes::unhex(&groups.concat())
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(Guid)
            .ok_or_else(bad)
    }

    /// A name-based GUID: RFC 9562 UUIDv8 built as in its Appendix B.2 — the first 16
    /// bytes of SHA-256(namespace || name) with the version (8) and variant (10)
    /// bits set. Same name, same GUID: images are reproducible without randomness.
    pub fn from_name(namespace: &Guid, name: &str) -> Guid {
        let mut h = Sha256::new();
        h.update(namespace.0);
        h.update(name.as_bytes());
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(d.get(..16).unwrap_or(&[0; 16]));
        b[6] = (b[6] & 0x0f) | 0x80;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid(b)
    }

    /// The EFI_GUID byte order: the first three fields little-endian.
    pub const fn to_bytes_le(&self) -> [u8; 16] {
        let g = self.0;
        [
            g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
            g[14], g[15],
        ]
    }

    /// From the EFI_GUID byte order.
    pub const fn from_bytes_le(b: [u8; 16]) -> Guid {
        // The swap is its own inverse.
        Guid(Guid(b).to_bytes_le())
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, upper: bool) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            if upper {
                write!(f, "{b:02X}")?;
            } else {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl From<[u8; 16]> for Guid {
    fn from(b: [u8; 16]) -> Self {
        Guid(b)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, true)
    }
}

impl fmt::LowerHex for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

/// Serialised as the uppercase text; see [`lowercase`] for the other form.
impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `#[serde(serialize_with = "crate::guid::lowercase")]`: the lowercase text.
pub fn lowercase<S: serde::Serializer>(g: &Guid, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{g:x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_format_and_efi_order() {
        let esp = Guid::parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b").unwrap();
        assert_eq!(esp.to_string(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(format!("{esp:x}"), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        assert_eq!(esp, Guid::from_u128(0xc12a7328_f81f_11d2_ba4b_00a0c93ec93b));
        // The ESP type GUID as it appears in a GPT entry (UEFI spec, Table 5.14).
        assert_eq!(
            esp.to_bytes_le(),
            [
                0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
                0xc9, 0x3b
            ]
        );
        assert_eq!(Guid::from_bytes_le(esp.to_bytes_le()), esp);
        assert!(Guid::parse("nope").is_err());
        assert!(Guid::parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93").is_err());
        assert!(Guid::parse("g12a7328-f81f-11d2-ba4b-00a0c93ec93b").is_err());
        assert!(Guid::parse("+12a7328-f81f-11d2-ba4b-00a0c93ec93b").is_err());
        assert!(Guid::parse("c12a7328-f81f-11d2-ba4b-00a0c93ec\u{e9}b").is_err());
    }

    #[test]
    fn name_based_guids_are_v8() {
        let a = Guid::from_name(&Guid::ZERO, "ukitool");
        assert_eq!(a, Guid::from_name(&Guid::ZERO, "ukitool"));
        assert_ne!(a, Guid::from_name(&Guid::ZERO, "other"));
        assert_eq!(a.0[6] >> 4, 8);
        assert_eq!(a.0[8] >> 6, 2);
    }
}
