//! META, Talos's 1 MiB key-value partition, in its ADV format (siderolabs/go-adv
//! adv/talos and adv/syslinux; internal/pkg/meta; pkg/machinery/meta/constants.go).
//!
//! ```text
//! 0x00000  Talos ADV copy 1 (256 KiB, big-endian)
//! 0x40000  Talos ADV copy 2 (identical)
//! 0xFFC00  syslinux ADV, 2 x 512 B (little-endian; images leave it zero)
//!
//! Talos ADV: magic1 0x5A4B3C2D | {tag u32, len u32, value}... tag 0 ends |
//!            SHA-256 of the block with this field zeroed (at end-36) | magic2 0xA5B4C3D2
//! ```

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::bytes::{self, u32_le};
use crate::error::{Error, Result};

/// The partition's size: Talos finds META by name and this exact size.
pub const PARTITION_SIZE: u64 = 1 << 20;
/// One copy of the Talos ADV.
pub const COPY_LEN: usize = 256 * 1024;
const COPY_BYTES: u64 = COPY_LEN as u64;
const MAGIC1: u32 = 0x5a4b_3c2d;
const MAGIC2: u32 = 0xa5b4_c3d2;
/// magic1, then the records, then 32 bytes of hash and magic2.
const HASH_AT: usize = COPY_LEN - 36;
const RECORDS_AT: usize = 4;
/// The syslinux ADV: the last 1 KiB of the partition, two 512-byte copies.
const LEGACY_AT: u64 = PARTITION_SIZE - 1024;
const LEGACY_LEN: u64 = 512;
const LEGACY_MAGIC1: u32 = 0x5a2d_2fa5;
const LEGACY_CHECKSUM: u32 = 0xa304_1767;
const LEGACY_MAGIC3: u32 = 0xdd28_bf64;

/// The tags Talos defines (pkg/machinery/meta/constants.go), with the form of their
/// value: text, JSON or YAML (shown as text).
const TAGS: &[(u8, &str, Form)] = &[
    (0x06, "upgrade", Form::Text),
    (0x07, "staged-upgrade-image-ref", Form::Text),
    (0x08, "staged-upgrade-install-options", Form::Json),
    (0x09, "state-encryption-config", Form::Json),
    (0x0a, "metal-network-platform-config", Form::Text),
    (0x0b, "download-url-code", Form::Text),
    (0x0c, "user-reserved-1", Form::Text),
    (0x0d, "user-reserved-2", Form::Text),
    (0x0e, "user-reserved-3", Form::Text),
    (0x0f, "uuid-override", Form::Text),
    (0x10, "unique-machine-token", Form::Text),
    (0x11, "disk-image-bootloader", Form::Text),
];

/// Tag 0x11: the bootloader a disk image was made with; `dual-boot` makes Talos's
/// first boot remove the loader that did not boot.
pub const DISK_IMAGE_BOOTLOADER: u8 = 0x11;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Text,
    Json,
}

/// The name of a Talos META tag.
pub fn tag_name(tag: u8) -> Option<&'static str> {
    TAGS.iter().find(|t| t.0 == tag).map(|t| t.1)
}

/// A tag by name, or as a number (`10`, `0x0a`); 0 ends the records and is refused.
pub fn parse_tag(text: &str) -> Result<u8> {
    let t = text.trim();
    let n = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => t.parse::<u8>().ok(),
    }
    .or_else(|| TAGS.iter().find(|x| x.1 == t).map(|x| x.0));
    match n {
        Some(tag) if tag != 0 => Ok(tag),
        _ => Err(Error::invalid(format!(
            "META tag {text:?}: use a number from 1 to 255 (e.g. 0x0a) or a name such as metal-network-platform-config"
        ))),
    }
}

/// Where a `--meta` value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaSource {
    /// `TAG=VALUE`: the text itself.
    Text(String),
    /// `TAG=@FILE`: the file's bytes, which the caller reads.
    File(String),
}

/// One `--meta TAG=VALUE` or `--meta TAG=@FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaArg {
    pub tag: u8,
    pub source: MetaSource,
}

/// Parse `TAG=VALUE` or `TAG=@FILE`.
pub fn parse_arg(s: &str) -> Result<MetaArg> {
    let (tag, value) = s.split_once('=').ok_or_else(|| {
        Error::invalid(format!("META value {s:?}: expected TAG=VALUE or TAG=@FILE"))
    })?;
    let source = match value.strip_prefix('@') {
        Some(path) => MetaSource::File(path.into()),
        None => MetaSource::Text(value.into()),
    };
    Ok(MetaArg {
        tag: parse_tag(tag)?,
        source,
    })
}

/// META's records, kept sorted by tag so the bytes written are reproducible (Talos
/// writes them in Go map order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    records: BTreeMap<u8, Vec<u8>>,
}

impl Meta {
    /// Set `tag` (a later value replaces an earlier one), if all records still fit
    /// in one copy, as go-adv's SetTagBytes checks.
    pub fn set(&mut self, tag: u8, value: Vec<u8>) -> Result<()> {
        if tag == 0 {
            return Err(Error::invalid("META tag 0 ends the records: use 1 to 255"));
        }
        let others: usize = self
            .records
            .iter()
            .filter(|(t, _)| **t != tag)
            .map(|(_, v)| v.len().saturating_add(8))
            .sum();
        let room = HASH_AT - RECORDS_AT;
        if others.saturating_add(value.len()).saturating_add(8) > room {
            return Err(Error::invalid(format!(
                "META tag {tag:#04x}: the records would take more than the {room} bytes META holds"
            )));
        }
        self.records.insert(tag, value);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, in tag order.
    pub fn records(&self) -> impl Iterator<Item = (u8, &[u8])> {
        self.records.iter().map(|(t, v)| (*t, v.as_slice()))
    }

    /// The two identical copies of the Talos ADV (512 KiB), for META's first bytes;
    /// the rest of the partition, the syslinux ADV included, stays zero. An image
    /// without records leaves META all zero, which Talos reads as empty.
    pub fn encode(&self) -> Vec<u8> {
        let mut copy = Vec::with_capacity(COPY_LEN);
        copy.extend(MAGIC1.to_be_bytes());
        for (tag, value) in &self.records {
            // `set` bounds every length by the copy's size.
            let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
            copy.extend(u32::from(*tag).to_be_bytes());
            copy.extend(len.to_be_bytes());
            copy.extend_from_slice(value);
        }
        copy.resize(HASH_AT, 0);
        copy.extend([0; 32]);
        copy.extend(MAGIC2.to_be_bytes());
        let hash = Sha256::digest(&copy);
        if let Some(h) = copy.get_mut(HASH_AT..HASH_AT.saturating_add(32)) {
            h.copy_from_slice(&hash);
        }
        let mut both = copy.clone();
        both.append(&mut copy);
        both
    }
}

/// A decoded META, for `inspect`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MetaReport {
    /// Both Talos ADV copies: where, and whether magics and hash hold.
    pub copies: Vec<AdvCopy>,
    /// The records of the first valid copy, as Talos reads them.
    pub records: Vec<MetaRecord>,
    /// Records of the syslinux ADV, which Talos reads for tags the Talos ADV lacks.
    pub legacy: Vec<MetaRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdvCopy {
    pub offset: u64,
    pub valid: bool,
    /// Why it is not valid.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetaRecord {
    pub tag: u8,
    pub name: Option<&'static str>,
    pub size: u64,
    pub value: MetaValue,
}

/// A record's value: JSON for the tags that hold JSON, else text when it is UTF-8,
/// else hex.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "form", content = "value", rename_all = "lowercase")]
pub enum MetaValue {
    Text(String),
    Json(serde_json::Value),
    Hex(String),
}

impl MetaValue {
    fn of(tag: u8, data: &[u8]) -> MetaValue {
        let json = TAGS.iter().any(|t| t.0 == tag && t.2 == Form::Json);
        if json {
            if let Ok(v) = serde_json::from_slice(data) {
                return MetaValue::Json(v);
            }
        }
        match std::str::from_utf8(data) {
            Ok(s) => MetaValue::Text(s.into()),
            Err(_) => MetaValue::Hex(bytes::hex(data)),
        }
    }
}

/// Decode META from the partition's bytes (any length: what is missing reads as an
/// invalid copy). Like Talos, copy 2 is used when copy 1 is invalid, and no valid
/// copy means no records, not an error. Every read is bounded by `meta`.
pub fn decode(meta: &[u8]) -> MetaReport {
    let mut report = MetaReport::default();
    for offset in [0, COPY_BYTES] {
        let copy = bytes::slice(meta, offset, COPY_BYTES, "Talos ADV copy");
        let read = copy.and_then(|c| read_copy(c, offset));
        let (valid, problem) = match read {
            Ok(records) => {
                if report.copies.iter().all(|c| !c.valid) {
                    report.records = records;
                }
                (true, None)
            }
            Err(e) => (false, Some(e.to_string())),
        };
        report.copies.push(AdvCopy {
            offset,
            valid,
            problem,
        });
    }
    report.legacy = bytes::slice(meta, LEGACY_AT, LEGACY_LEN, "syslinux ADV")
        .map(read_legacy)
        .unwrap_or_default();
    report
}

/// The records of one Talos ADV copy at partition offset `base`, if its magics and
/// hash hold and its records stay inside it.
fn read_copy(copy: &[u8], base: u64) -> Result<Vec<MetaRecord>> {
    let be = |at: usize| -> Result<u32> {
        bytes::array::<4>(copy, at as u64, "Talos ADV").map(u32::from_be_bytes)
    };
    let at = |rel: usize| base.saturating_add(rel as u64);
    if be(0)? != MAGIC1 {
        return Err(Error::malformed(base, "no Talos ADV magic 0x5A4B3C2D"));
    }
    let magic2_at = COPY_LEN - 4;
    if be(magic2_at)? != MAGIC2 {
        return Err(Error::malformed(
            at(magic2_at),
            "no Talos ADV magic 0xA5B4C3D2",
        ));
    }
    let stored = bytes::slice(copy, HASH_AT as u64, 32, "Talos ADV hash")?;
    let mut h = Sha256::new();
    h.update(copy.get(..HASH_AT).unwrap_or_default());
    h.update([0; 32]);
    h.update(copy.get(magic2_at..).unwrap_or_default());
    if h.finalize().as_slice() != stored {
        return Err(Error::malformed(
            at(HASH_AT),
            "Talos ADV SHA-256 does not match",
        ));
    }
    let data = copy.get(RECORDS_AT..HASH_AT).unwrap_or_default();
    let mut records = Vec::new();
    let mut pos = 0u64;
    // Each record takes at least its 8-byte head: the walk ends.
    while let Ok(head) = bytes::slice(data, pos, 8, "META record") {
        let tag = u32::from_be_bytes(bytes::array(head, 0, "META record")?);
        if tag == 0 {
            break;
        }
        let len = u64::from(u32::from_be_bytes(bytes::array(head, 4, "META record")?));
        let rec_at = at(RECORDS_AT).saturating_add(pos);
        let value =
            bytes::slice(data, pos.saturating_add(8), len, "META record").map_err(|_| {
                Error::malformed(
                    rec_at,
                    format!("META record {tag:#x} of {len} bytes runs past the ADV"),
                )
            })?;
        // go-adv keeps the low byte of the tag.
        let tag = tag.to_le_bytes()[0];
        records.retain(|r: &MetaRecord| r.tag != tag);
        records.push(MetaRecord {
            tag,
            name: tag_name(tag),
            size: len,
            value: MetaValue::of(tag, value),
        });
        pos = pos.saturating_add(8).saturating_add(len);
    }
    records.sort_by_key(|r| r.tag);
    Ok(records)
}

/// The records of the syslinux ADV's first copy, if its magics and checksum hold.
fn read_legacy(adv: &[u8]) -> Vec<MetaRecord> {
    let word = |at: u64| u32_le(adv, at, "syslinux ADV").unwrap_or(0);
    let sum = (8..508u64)
        .step_by(4)
        .fold(0u32, |s, at| s.wrapping_add(word(at)));
    if word(0) != LEGACY_MAGIC1
        || word(508) != LEGACY_MAGIC3
        || word(4) != LEGACY_CHECKSUM.wrapping_sub(sum)
    {
        return Vec::new();
    }
    let mut records = Vec::new();
    let mut pos = 8u64;
    // Records are {tag u8, len u8, value} and end at tag 0 or the tail (go-adv).
    while pos < 506 {
        let (Ok(tag), Ok(len)) = (
            bytes::u8_at(adv, pos, "syslinux ADV"),
            bytes::u8_at(adv, pos.saturating_add(1), "syslinux ADV"),
        ) else {
            break;
        };
        if tag == 0 {
            break;
        }
        let start = pos.saturating_add(2);
        let end = start.saturating_add(u64::from(len));
        let value = match bytes::slice(adv, start, u64::from(len), "syslinux ADV") {
            Ok(v) if end <= 508 => v,
            _ => break,
        };
        records.push(MetaRecord {
            tag,
            name: tag_name(tag),
            size: u64::from(len),
            value: MetaValue::of(tag, value),
        });
        pos = end;
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_partition(m: &Meta) -> Vec<u8> {
        let mut p = m.encode();
        p.resize(PARTITION_SIZE as usize, 0);
        p
    }

    #[test]
    fn encodes_both_copies_with_hash_and_magics() {
        let mut m = Meta::default();
        m.set(0x0a, b"addresses: []\n".to_vec()).unwrap();
        m.set(DISK_IMAGE_BOOTLOADER, b"dual-boot".to_vec()).unwrap();
        m.set(0x06, b"A".to_vec()).unwrap();
        m.set(0x06, b"B".to_vec()).unwrap();
        let b = m.encode();
        assert_eq!(b.len(), 2 * COPY_LEN);
        let (c1, c2) = b.split_at(COPY_LEN);
        assert_eq!(c1, c2);
        assert_eq!(c1[..4], [0x5a, 0x4b, 0x3c, 0x2d]);
        assert_eq!(c1[COPY_LEN - 4..], [0xa5, 0xb4, 0xc3, 0xd2]);
        // Sorted records: 0x06, 0x0a, 0x11, then tag 0.
        let expect: Vec<u8> = [
            &[0, 0, 0, 6, 0, 0, 0, 1][..],
            b"B",
            &[0, 0, 0, 0x0a, 0, 0, 0, 14],
            b"addresses: []\n",
            &[0, 0, 0, 0x11, 0, 0, 0, 9],
            b"dual-boot",
            &[0; 8],
        ]
        .concat();
        assert_eq!(c1[4..4 + expect.len()], expect[..]);
        let mut zeroed = c1.to_vec();
        zeroed[HASH_AT..HASH_AT + 32].fill(0);
        assert_eq!(c1[HASH_AT..HASH_AT + 32], Sha256::digest(&zeroed)[..]);

        let r = decode(&meta_partition(&m));
        assert!(r.copies.iter().all(|c| c.valid), "{:?}", r.copies);
        let got: Vec<(u8, Option<&str>, MetaValue)> = r
            .records
            .iter()
            .map(|x| (x.tag, x.name, x.value.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (6, Some("upgrade"), MetaValue::Text("B".into())),
                (
                    10,
                    Some("metal-network-platform-config"),
                    MetaValue::Text("addresses: []\n".into())
                ),
                (
                    0x11,
                    Some("disk-image-bootloader"),
                    MetaValue::Text("dual-boot".into())
                ),
            ]
        );
        assert!(r.legacy.is_empty());
    }

    #[test]
    fn copy_two_stands_in_for_a_broken_copy_one() {
        let mut m = Meta::default();
        m.set(9, br#"{"provider":"luks2"}"#.to_vec()).unwrap();
        m.set(8, b"{not json".to_vec()).unwrap();
        m.set(0x0c, vec![0xff, 0x00]).unwrap();
        let mut p = meta_partition(&m);
        p[100] ^= 1;
        let r = decode(&p);
        assert!(!r.copies[0].valid);
        assert!(r.copies[0].problem.as_deref().unwrap().contains("SHA-256"));
        assert!(r.copies[1].valid);
        assert_eq!(r.records.len(), 3);
        assert_eq!(r.records[0].value, MetaValue::Text("{not json".into()));
        assert_eq!(
            r.records[1].value,
            MetaValue::Json(serde_json::json!({"provider": "luks2"}))
        );
        assert_eq!(r.records[2].value, MetaValue::Hex("ff00".into()));
        // All zero (an image without values): both copies invalid, no records.
        let r = decode(&vec![0; PARTITION_SIZE as usize]);
        assert!(r.records.is_empty() && r.copies.iter().all(|c| !c.valid));
        let json = serde_json::to_value(decode(&meta_partition(&m))).unwrap();
        assert_eq!(json["records"][1]["value"]["form"], "json");
    }

    #[test]
    fn reads_the_syslinux_adv() {
        let mut p = vec![0u8; PARTITION_SIZE as usize];
        let a = LEGACY_AT as usize;
        p[a..a + 4].copy_from_slice(&LEGACY_MAGIC1.to_le_bytes());
        p[a + 8..a + 13].copy_from_slice(&[6, 3, b'a', b'b', b'c']);
        p[a + 508..a + 512].copy_from_slice(&LEGACY_MAGIC3.to_le_bytes());
        let sum = (8..508)
            .step_by(4)
            .map(|i| u32::from_le_bytes(p[a + i..a + i + 4].try_into().unwrap()))
            .fold(0u32, u32::wrapping_add);
        p[a + 4..a + 8].copy_from_slice(&LEGACY_CHECKSUM.wrapping_sub(sum).to_le_bytes());
        let r = decode(&p);
        assert_eq!(r.legacy.len(), 1);
        assert_eq!(r.legacy[0].value, MetaValue::Text("abc".into()));
        p[a + 9] = 0xff;
        assert!(decode(&p).legacy.is_empty());
    }

    #[test]
    fn hostile_meta_does_not_panic() {
        let mut m = Meta::default();
        m.set(7, b"ref".to_vec()).unwrap();
        let good = meta_partition(&m);
        for len in [
            0,
            3,
            100,
            COPY_LEN - 1,
            COPY_LEN,
            COPY_LEN + 5,
            2 * COPY_LEN,
        ] {
            let _ = decode(&good[..len]);
        }
        // A record length past the copy, with a hash that matches it.
        let mut c = good[..COPY_LEN].to_vec();
        c[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        c[HASH_AT..HASH_AT + 32].fill(0);
        let h = Sha256::digest(&c);
        c[HASH_AT..HASH_AT + 32].copy_from_slice(&h);
        let r = decode(&c);
        assert!(r.copies[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("runs past"));
        // Noise with valid magics: the walk must stay bounded.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut s: Vec<u8> = (0..PARTITION_SIZE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        s[..4].copy_from_slice(&MAGIC1.to_be_bytes());
        s[COPY_LEN - 4..COPY_LEN].copy_from_slice(&MAGIC2.to_be_bytes());
        let _ = decode(&s);
    }

    #[test]
    fn tags_and_args_parse() {
        assert_eq!(parse_tag("0x0a").unwrap(), 10);
        assert_eq!(parse_tag("17").unwrap(), 0x11);
        assert_eq!(parse_tag("uuid-override").unwrap(), 0x0f);
        for bad in ["0", "256", "x", "0x"] {
            assert!(parse_tag(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_arg("0x0a=@net.yaml").unwrap(),
            MetaArg {
                tag: 10,
                source: MetaSource::File("net.yaml".into())
            }
        );
        assert_eq!(
            parse_arg("0xf=a=b").unwrap().source,
            MetaSource::Text("a=b".into())
        );
        assert!(parse_arg("novalue").is_err());
        let mut m = Meta::default();
        assert!(m.set(0, vec![]).is_err());
        assert!(m.set(1, vec![0; HASH_AT - RECORDS_AT - 8]).is_ok());
        assert!(m.set(2, vec![]).is_err());
        assert!(m.set(1, vec![0; HASH_AT - RECORDS_AT - 7]).is_err());
        assert!(Meta::default().is_empty());
    }
}
