//! The one reader of .pcrsig JSON, for the summary and the check alike.
//!
//! The JSON is read as it streams, never into a tree: what each bank keeps of its
//! entries is the caller's [`Bank`], so a summary of a hostile file of a million tiny
//! values costs a few KiB, not a tree of 32-byte nodes (issue 9). Every visitor takes
//! any JSON value where a different one was expected and reads it as nothing (no
//! banks, no entries, no PCRs, no text), as the tree-based readers did.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Policy, MAX_PCRS};
use crate::error::{Error, Result};

/// What a reader keeps of one bank's entries.
pub trait Bank: Default {
    /// How many banks are kept; more are counted as dropped.
    const MAX_BANKS: usize;
    /// One entry, in file order; `dropped` of its PCRs were past [`MAX_PCRS`].
    fn push(&mut self, entry: Policy, dropped: u64);
    /// The bank's value is not a list (it holds no entries).
    fn not_a_list(&mut self) {}
}

/// The banks of a file by name (a repeated bank keeps its last value), and how many
/// were past [`Bank::MAX_BANKS`].
pub struct Banks<B> {
    pub list: BTreeMap<String, B>,
    pub dropped: u64,
}

/// Read a .pcrsig: an error when it is not JSON or not a JSON object.
pub fn read<B: Bank>(json: &[u8]) -> Result<Banks<B>> {
    let text = crate::bytes::text_ref(json);
    let mut de = serde_json::Deserializer::from_str(&text);
    Top(PhantomData)
        .deserialize(&mut de)
        .and_then(|t| de.end().map(|()| t))
        .map_err(|e| Error::malformed(0, format!(".pcrsig is not JSON ({e})")))?
        .ok_or_else(|| Error::malformed(0, ".pcrsig is not a JSON object"))
}

/// `visit_*` methods of a visitor that return `$other` for the values it does not
/// read: the scalars, and optionally lists (`seq`) and objects (`map`), skipped.
macro_rules! read_as {
    ($other:expr) => {
        fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
    };
    ($other:expr, u64) => {
        fn visit_u64<E>(self, _: u64) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
    };
    ($other:expr, str) => {
        fn visit_str<E>(self, _: &str) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
    };
    ($other:expr, seq) => {
        fn visit_seq<A: SeqAccess<'de>>(
            self,
            mut a: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok($other)
        }
    };
    ($other:expr, map) => {
        fn visit_map<A: MapAccess<'de>>(
            self,
            mut a: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($other)
        }
    };
}

/// A seed that reads any JSON value with itself as the visitor.
macro_rules! seed {
    ($t:ty, $value:ty $(, $bank:ident)?) => {
        impl<'de $(, $bank: Bank)?> DeserializeSeed<'de> for $t {
            type Value = $value;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<$value, D::Error> {
                d.deserialize_any(self)
            }
        }
    };
}

/// The top level: Some(banks) for an object, None for any other value.
struct Top<B>(PhantomData<B>);

seed!(Top<B>, Option<Banks<B>>, B);

impl<'de, B: Bank> Visitor<'de> for Top<B> {
    type Value = Option<Banks<B>>;
    read_as!(None);
    read_as!(None, u64);
    read_as!(None, str);
    read_as!(None, seq);
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> std::result::Result<Self::Value, A::Error> {
        let mut banks = Banks {
            list: BTreeMap::new(),
            dropped: 0,
        };
        while let Some(name) = a.next_key::<String>()? {
            let bank = a.next_value_seed(BankSeed(PhantomData))?;
            if banks.list.len() < B::MAX_BANKS || banks.list.contains_key(&name) {
                banks.list.insert(name, bank);
            } else {
                banks.dropped = banks.dropped.saturating_add(1);
            }
        }
        Ok(Some(banks))
    }
}

/// A bank's value: a list of entries (anything else holds none).
struct BankSeed<B>(PhantomData<B>);

seed!(BankSeed<B>, B, B);

fn not_a_list<B: Bank>() -> B {
    let mut b = B::default();
    b.not_a_list();
    b
}

impl<'de, B: Bank> Visitor<'de> for BankSeed<B> {
    type Value = B;
    read_as!(not_a_list());
    read_as!(not_a_list(), u64);
    read_as!(not_a_list(), str);
    read_as!(not_a_list(), map);
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> std::result::Result<B, A::Error> {
        let mut bank = B::default();
        while let Some((entry, dropped)) = a.next_element_seed(EntrySeed)? {
            bank.push(entry, dropped);
        }
        Ok(bank)
    }
}

/// One signed policy, and how many of its PCRs were past [`MAX_PCRS`]. A repeated
/// key keeps its last value; any other value than an object is an empty entry.
struct EntrySeed;

seed!(EntrySeed, (Policy, u64));

impl<'de> Visitor<'de> for EntrySeed {
    type Value = (Policy, u64);
    read_as!((Policy::default(), 0));
    read_as!((Policy::default(), 0), u64);
    read_as!((Policy::default(), 0), str);
    read_as!((Policy::default(), 0), seq);
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> std::result::Result<Self::Value, A::Error> {
        let mut e = Policy::default();
        let mut dropped = 0u64;
        while let Some(key) = a.next_key::<String>()? {
            match key.as_str() {
                "pcrs" => {
                    let (pcrs, more) = a.next_value_seed(PcrList)?;
                    e.pcrs = pcrs;
                    dropped = dropped.saturating_add(more);
                }
                "pkfp" => e.pkfp = a.next_value_seed(Text { lowercase: true })?,
                "pol" => e.pol = a.next_value_seed(Text { lowercase: true })?,
                "sig" => e.sig = a.next_value_seed(Text { lowercase: false })?,
                _ => {
                    a.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((e, dropped))
    }
}

/// "pcrs": the distinct u32 numbers of a list in order (up to [`MAX_PCRS`]), and how
/// many more there were; any other value is no PCRs.
struct PcrList;

seed!(PcrList, (Vec<u32>, u64));

impl<'de> Visitor<'de> for PcrList {
    type Value = (Vec<u32>, u64);
    read_as!((Vec::new(), 0));
    read_as!((Vec::new(), 0), u64);
    read_as!((Vec::new(), 0), str);
    read_as!((Vec::new(), 0), map);
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> std::result::Result<Self::Value, A::Error> {
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

seed!(PcrNumber, Option<u32>);

impl<'de> Visitor<'de> for PcrNumber {
    type Value = Option<u32>;
    read_as!(None);
    read_as!(None, str);
    read_as!(None, seq);
    read_as!(None, map);
    fn visit_u64<E>(self, n: u64) -> std::result::Result<Option<u32>, E> {
        Ok(u32::try_from(n).ok())
    }
}

/// "pkfp", "pol", "sig": a string (hex lowercased); any other value is none.
struct Text {
    lowercase: bool,
}

seed!(Text, Option<String>);

impl<'de> Visitor<'de> for Text {
    type Value = Option<String>;
    read_as!(None);
    read_as!(None, u64);
    read_as!(None, seq);
    read_as!(None, map);
    fn visit_str<E>(self, s: &str) -> std::result::Result<Option<String>, E> {
        Ok(Some(if self.lowercase {
            s.to_ascii_lowercase()
        } else {
            s.to_string()
        }))
    }
}
