//! GUIDs as GPT stores them, and the name-based GUIDs that make images reproducible.
//!
//! A [`Guid`] keeps the 16 bytes in the order of its text form
//! (`C12A7328-F81F-11D2-BA4B-00A0C93EC93B` is `c1 2a 73 28 f8 1f ...`). GPT stores the
//! first three fields little-endian ("mixed endian", UEFI 2.10 Appendix A), which
//! [`Guid::to_gpt_bytes`] and [`Guid::from_gpt_bytes`] convert.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const ZERO: Guid = Guid([0; 16]);

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
        let hex: String = groups.concat();
        let mut out = [0u8; 16];
        for (b, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            // from_str_radix alone would also take a sign ("+f").
            let pair = std::str::from_utf8(pair)
                .ok()
                .filter(|p| p.bytes().all(|c| c.is_ascii_hexdigit()))
                .ok_or_else(bad)?;
            *b = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Guid(out))
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

    /// GPT's on-disk byte order.
    pub fn to_gpt_bytes(&self) -> [u8; 16] {
        let g = self.0;
        [
            g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
            g[14], g[15],
        ]
    }

    pub fn from_gpt_bytes(b: [u8; 16]) -> Guid {
        // The swap is its own inverse.
        Guid(b).to_gpt_bytes().into()
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl From<[u8; 16]> for Guid {
    fn from(b: [u8; 16]) -> Self {
        Guid(b)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The namespace of every GUID ukitool derives: UUIDv8 of "ukitool" under the nil
/// namespace, written out so it never changes by accident.
pub const UKITOOL_NAMESPACE: Guid = Guid([
    0xf2, 0x15, 0xae, 0xb8, 0x10, 0xc6, 0x8f, 0x41, 0x8f, 0x99, 0x97, 0x4f, 0xf5, 0xe0, 0xcc, 0x17,
]);

/// The default disk GUID of an image labelled `label`.
pub fn disk_guid_for(label: &str) -> Guid {
    Guid::from_name(&UKITOOL_NAMESPACE, &format!("disk:{label}"))
}

/// The default unique GUID of partition `name` (the `index`-th, from 1) on `disk`.
pub fn partition_guid_for(disk: &Guid, index: usize, name: &str) -> Guid {
    Guid::from_name(
        &UKITOOL_NAMESPACE,
        &format!("partition:{disk}:{index}:{name}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_format_and_gpt_order() {
        let esp = Guid::parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b").unwrap();
        assert_eq!(esp.to_string(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        // The ESP type GUID as it appears in a GPT entry (UEFI spec, Table 5.14).
        assert_eq!(
            esp.to_gpt_bytes(),
            [
                0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
                0xc9, 0x3b
            ]
        );
        assert_eq!(Guid::from_gpt_bytes(esp.to_gpt_bytes()), esp);
        assert!(Guid::parse("nope").is_err());
        assert!(Guid::parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93").is_err());
        assert!(Guid::parse("g12a7328-f81f-11d2-ba4b-00a0c93ec93b").is_err());
        assert!(Guid::parse("+12a7328-f81f-11d2-ba4b-00a0c93ec93b").is_err());
        assert!(Guid::parse("c12a7328-f81f-11d2-ba4b-00a0c93ec\u{e9}b").is_err());
    }

    #[test]
    fn name_based_guids_are_v8_and_stable() {
        let a = disk_guid_for("ukitool");
        assert_eq!(a, disk_guid_for("ukitool"));
        assert_ne!(a, disk_guid_for("other"));
        assert_eq!(a.0[6] >> 4, 8);
        assert_eq!(a.0[8] >> 6, 2);
        assert_eq!(Guid::from_name(&Guid::ZERO, "ukitool"), UKITOOL_NAMESPACE);
        assert_ne!(
            partition_guid_for(&a, 1, "EFI"),
            partition_guid_for(&a, 2, "EFI")
        );
    }
}
