//! os-release text (.osrel, .profile): KEY=value lines, values optionally quoted
//! with shell-like escapes (os-release(5)).

use serde::ser::SerializeMap;

/// Key/value pairs in file order; serialised as a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease(pub Vec<(String, String)>);

impl OsRelease {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl serde::Serialize for OsRelease {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// At most this many keys are kept: os-release(5) files have a few dozen, and each
/// key costs about 50 bytes however short its line (issue 9). It also bounds the
/// search for a repeated key.
pub const MAX_KEYS: usize = 256;

/// Parse os-release text. Lines that are not KEY=value are skipped, never fatal;
/// a key given twice keeps its last value, as a shell would. Keys past the first
/// [`MAX_KEYS`] are dropped; the count says how many lines that dropped.
pub fn parse(text: &str) -> (OsRelease, u64) {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut dropped = 0u64;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(slot) = out.iter_mut().find(|(ok, _)| ok == k) {
            slot.1 = unquote(v.trim());
        } else if out.len() < MAX_KEYS {
            out.push((k.to_string(), unquote(v.trim())));
        } else {
            dropped = dropped.saturating_add(1);
        }
    }
    (OsRelease(out), dropped)
}

fn unquote(v: &str) -> String {
    let mut chars = v.chars().peekable();
    let quote = match chars.peek() {
        Some(&q @ ('"' | '\'')) => {
            chars.next();
            Some(q)
        }
        _ => None,
    };
    let mut out = String::with_capacity(v.len());
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => break,
            (Some('\''), c) => out.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (_, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_and_bare_values() {
        let (o, dropped) =
            parse("# c\nNAME=\"Debian GNU/Linux\"\nID=debian\nX='a b'\nY=\"q\\\"x\"\nbad line\n");
        assert_eq!(dropped, 0);
        assert_eq!(o.get("NAME"), Some("Debian GNU/Linux"));
        assert_eq!(o.get("ID"), Some("debian"));
        assert_eq!(o.get("X"), Some("a b"));
        assert_eq!(o.get("Y"), Some("q\"x"));
        assert_eq!(o.0.len(), 4);
    }

    #[test]
    fn caps_keys() {
        let text: String = (0..MAX_KEYS + 5).map(|i| format!("K{i}=v\n")).collect();
        let (o, dropped) = parse(&format!("{text}K0=last\n"));
        assert_eq!(o.0.len(), MAX_KEYS);
        assert_eq!(dropped, 5);
        assert_eq!(o.get("K0"), Some("last"));
    }
}
