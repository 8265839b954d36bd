//! .pcrpkey (a PEM SubjectPublicKeyInfo) and a summary of .pcrsig (JSON of signed
//! PCR policies: {"sha256":[{"pcrs":[11],"pkfp":"..","pol":"..","sig":".."}],...}).

use std::collections::BTreeSet;

use sha2::Digest;
use spki::der::Decode;

use crate::bytes;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublicKey {
    /// "rsa", "ec-p256", "ec-p384", "ec-p521", or the algorithm OID.
    pub key_type: String,
    pub bits: Option<u32>,
    /// sha256 of the DER SubjectPublicKeyInfo: what .pcrsig's `pkfp` names.
    pub fingerprint: String,
}

const RSA: &str = "1.2.840.113549.1.1.1";
const EC: &str = "1.2.840.10045.2.1";

pub fn parse_public_key(pem: &[u8]) -> Result<PublicKey> {
    let bad = |what: String| Error::malformed(0, format!(".pcrpkey: {what}"));
    let (label, der) =
        spki::der::pem::decode_vec(pem).map_err(|e| bad(format!("not PEM ({e})")))?;
    if label != "PUBLIC KEY" {
        return Err(bad(format!("PEM label is {label:?}, not \"PUBLIC KEY\"")));
    }
    let fingerprint = bytes::hex(&sha2::Sha256::digest(&der));
    let info = spki::SubjectPublicKeyInfoRef::from_der(&der)
        .map_err(|e| bad(format!("not a SubjectPublicKeyInfo ({e})")))?;
    let oid = info.algorithm.oid.to_string();
    let (key_type, bits) = match oid.as_str() {
        RSA => {
            let bits = pkcs1::RsaPublicKey::from_der(info.subject_public_key.raw_bytes())
                .ok()
                .map(|k| {
                    let m = k.modulus.as_bytes();
                    let lead = m.iter().position(|&b| b != 0).unwrap_or(m.len());
                    let first = m.get(lead).copied().unwrap_or(0);
                    let n = u32::try_from(m.len().saturating_sub(lead)).unwrap_or(u32::MAX);
                    n.saturating_mul(8).saturating_sub(first.leading_zeros())
                });
            ("rsa".to_string(), bits)
        }
        EC => {
            let curve = info
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<spki::ObjectIdentifier>().ok())
                .map(|o| o.to_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => ("ec-p256".to_string(), Some(256)),
                Some("1.3.132.0.34") => ("ec-p384".to_string(), Some(384)),
                Some("1.3.132.0.35") => ("ec-p521".to_string(), Some(521)),
                Some(c) => (format!("ec-{c}"), None),
                None => ("ec".to_string(), None),
            }
        }
        _ => (oid, None),
    };
    Ok(PublicKey {
        key_type,
        bits,
        fingerprint,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PcrSig {
    /// Banks in the file, e.g. ["sha256"].
    pub banks: Vec<String>,
    /// Every PCR any entry covers, ascending.
    pub pcrs: Vec<u32>,
    /// The distinct key fingerprints named by the entries.
    pub pkfp: Vec<String>,
    /// Number of signed policies over all banks.
    pub entries: u64,
}

/// Caps on what a .pcrsig summary collects (issue 9: memory bounded by the input,
/// never a parse tree of it). Real files have one to four banks, PCRs below 24 and
/// one or two key fingerprints; values past a cap are counted, not kept.
pub const MAX_BANKS: usize = 16;
pub const MAX_PCRS: usize = 64;
pub const MAX_PKFP: usize = 16;

/// Summarise .pcrsig. Returns the summary and how many banks, PCRs and
/// fingerprints were past the caps. The JSON is read as it streams: a hostile file
/// of a million tiny values costs a few KiB, not a tree of 32-byte nodes.
pub fn parse_pcrsig(data: &[u8]) -> Result<(PcrSig, u64)> {
    let text = bytes::text_ref(data);
    let mut de = serde_json::Deserializer::from_str(&text);
    let top = serde::de::DeserializeSeed::deserialize(sig::Top, &mut de)
        .and_then(|t| de.end().map(|()| t))
        .map_err(|e| Error::malformed(0, format!(".pcrsig is not JSON ({e})")))?;
    let Some(banks) = top else {
        return Err(Error::malformed(0, ".pcrsig is not a JSON object"));
    };
    let mut dropped = banks.dropped;
    let mut pcrs = BTreeSet::new();
    let mut pkfp: Vec<String> = Vec::new();
    let mut entries = 0u64;
    // Bank order is the key order of a JSON object read into a sorted map (what
    // this summary has always reported); a repeated bank keeps its last value.
    for bank in banks.list.values() {
        entries = entries.saturating_add(bank.entries);
        dropped = dropped.saturating_add(bank.dropped);
        for &p in &bank.pcrs {
            if pcrs.len() < MAX_PCRS || pcrs.contains(&p) {
                pcrs.insert(p);
            } else {
                dropped = dropped.saturating_add(1);
            }
        }
        for fp in &bank.pkfp {
            if pkfp.contains(fp) {
                continue;
            }
            if pkfp.len() < MAX_PKFP {
                pkfp.push(fp.clone());
            } else {
                dropped = dropped.saturating_add(1);
            }
        }
    }
    Ok((
        PcrSig {
            banks: banks.list.into_keys().collect(),
            pcrs: pcrs.into_iter().collect(),
            pkfp,
            entries,
        },
        dropped,
    ))
}

/// Streaming visitors for [`parse_pcrsig`]. Each accepts any JSON value where a
/// different one was expected and ignores it, as the tree-based summary did.
mod sig {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

    use super::{MAX_BANKS, MAX_PCRS, MAX_PKFP};

    #[derive(Default)]
    pub struct Bank {
        pub entries: u64,
        pub pcrs: BTreeSet<u32>,
        pub pkfp: Vec<String>,
        pub dropped: u64,
    }

    #[derive(Default)]
    pub struct Banks {
        pub list: BTreeMap<String, Bank>,
        pub dropped: u64,
    }

    /// Implements every `visit_*` of a visitor that takes anything and returns
    /// `$other` for what it does not handle itself.
    macro_rules! ignore_others {
        ($other:expr) => {
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok($other)
            }
        };
    }

    /// The top level: Some(banks) for an object, None for any other value.
    pub struct Top;

    impl<'de> DeserializeSeed<'de> for Top {
        type Value = Option<Banks>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Top {
        type Value = Option<Banks>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        ignore_others!(None);
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            let mut banks = Banks::default();
            while let Some(name) = a.next_key::<String>()? {
                let bank = a.next_value_seed(BankSeed)?;
                if banks.list.len() < MAX_BANKS || banks.list.contains_key(&name) {
                    banks.list.insert(name, bank);
                } else {
                    banks.dropped = banks.dropped.saturating_add(1);
                }
            }
            Ok(Some(banks))
        }
    }

    /// A bank's value: a list of entries (anything else holds none).
    struct BankSeed;

    impl<'de> DeserializeSeed<'de> for BankSeed {
        type Value = Bank;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Bank, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for BankSeed {
        type Value = Bank;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        ignore_others!(Bank::default());
        fn visit_u64<E>(self, _: u64) -> Result<Bank, E> {
            Ok(Bank::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Bank, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Bank::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Bank, A::Error> {
            let mut bank = Bank::default();
            while let Some(e) = a.next_element_seed(EntrySeed)? {
                bank.entries = bank.entries.saturating_add(1);
                bank.dropped = bank.dropped.saturating_add(e.dropped);
                for p in e.pcrs {
                    if bank.pcrs.len() < MAX_PCRS || bank.pcrs.contains(&p) {
                        bank.pcrs.insert(p);
                    } else {
                        bank.dropped = bank.dropped.saturating_add(1);
                    }
                }
                if let Some(fp) = e.pkfp {
                    if !bank.pkfp.contains(&fp) {
                        if bank.pkfp.len() < MAX_PKFP {
                            bank.pkfp.push(fp);
                        } else {
                            bank.dropped = bank.dropped.saturating_add(1);
                        }
                    }
                }
            }
            Ok(bank)
        }
    }

    /// One signed policy: its "pcrs" and "pkfp" (the last of a repeated key).
    #[derive(Default)]
    struct Entry {
        pcrs: Vec<u32>,
        pkfp: Option<String>,
        dropped: u64,
    }

    struct EntrySeed;

    impl<'de> DeserializeSeed<'de> for EntrySeed {
        type Value = Entry;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for EntrySeed {
        type Value = Entry;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        ignore_others!(Entry::default());
        fn visit_u64<E>(self, _: u64) -> Result<Entry, E> {
            Ok(Entry::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Entry, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Entry::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Entry, A::Error> {
            let mut e = Entry::default();
            while let Some(key) = a.next_key::<String>()? {
                match key.as_str() {
                    "pcrs" => {
                        let (pcrs, dropped) = a.next_value_seed(PcrList)?;
                        e.pcrs = pcrs;
                        e.dropped = e.dropped.saturating_add(dropped);
                    }
                    "pkfp" => e.pkfp = a.next_value_seed(Fingerprint)?,
                    _ => {
                        a.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(e)
        }
    }

    /// "pcrs": the u32 numbers of a list (up to [`MAX_PCRS`] distinct), and how
    /// many more there were; any other value is no PCRs.
    struct PcrList;

    impl<'de> DeserializeSeed<'de> for PcrList {
        type Value = (Vec<u32>, u64);
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for PcrList {
        type Value = (Vec<u32>, u64);
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        ignore_others!((Vec::new(), 0));
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok((Vec::new(), 0))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok((Vec::new(), 0))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            let mut pcrs = Vec::new();
            let mut dropped = 0u64;
            while let Some(n) = a.next_element_seed(PcrNumber)? {
                let Some(n) = n else { continue };
                if pcrs.contains(&n) {
                    continue;
                }
                if pcrs.len() < MAX_PCRS {
                    pcrs.push(n);
                } else {
                    dropped = dropped.saturating_add(1);
                }
            }
            Ok((pcrs, dropped))
        }
    }

    /// One element of "pcrs": a number that fits a u32, else None.
    struct PcrNumber;

    impl<'de> DeserializeSeed<'de> for PcrNumber {
        type Value = Option<u32>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u32>, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for PcrNumber {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        ignore_others!(None);
        fn visit_u64<E>(self, n: u64) -> Result<Option<u32>, E> {
            Ok(u32::try_from(n).ok())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Option<u32>, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Option<u32>, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }

    /// "pkfp": a string, lowercased; any other value is none.
    struct Fingerprint;

    impl<'de> DeserializeSeed<'de> for Fingerprint {
        type Value = Option<String>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Fingerprint {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_str<E>(self, s: &str) -> Result<Option<String>, E> {
            Ok(Some(s.to_ascii_lowercase()))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Option<String>, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Option<String>, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcrsig_summary_reads_like_a_sorted_tree() {
        let (s, more) = parse_pcrsig(
            br#"{"sha256":[{"pcrs":[11,4],"pkfp":"BB","pol":"x"},{"pcrs":[11],"pkfp":"aa"},7],
                "sha1":[{"pcrs":[1,"2",-3,4294967296],"pkfp":"aa"}],
                "sha384":{"not":"a list"},"sha1":[{"pcrs":[9],"pcrs":[12],"pkfp":"cc"}]}"#,
        )
        .unwrap();
        assert_eq!(more, 0);
        // Sorted bank names; a repeated bank and a repeated key keep their last value.
        assert_eq!(s.banks, ["sha1", "sha256", "sha384"]);
        assert_eq!(s.pcrs, [4, 11, 12]);
        assert_eq!(s.pkfp, ["cc", "bb", "aa"]);
        assert_eq!(s.entries, 4);
        assert!(parse_pcrsig(b"[1]")
            .unwrap_err()
            .to_string()
            .contains("not a JSON object"));
        assert!(parse_pcrsig(b"{\"a\":")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        let many: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let (s, more) =
            parse_pcrsig(format!("{{\"b\":[{{\"pcrs\":[{}]}}]}}", many.join(",")).as_bytes())
                .unwrap();
        assert_eq!((s.pcrs.len(), more), (MAX_PCRS, 100 - MAX_PCRS as u64));
    }
}
