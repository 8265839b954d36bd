//! .sbat: the SBAT CSV (shim's SBAT.md): component,generation,vendor,package,version,url.

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SbatEntry {
    pub component: String,
    pub generation: String,
    pub vendor: String,
    pub package: String,
    pub version: String,
    pub url: String,
}

/// At most this many entries are decoded; a real .sbat has a handful of lines, and
/// each entry costs about 150 bytes however short its line (issue 9).
pub const MAX_ENTRIES: usize = 256;

/// One entry per non-empty line; missing fields are empty, extra fields are ignored
/// (shim itself only needs the first two). Returns the first [`MAX_ENTRIES`] entries
/// and how many more lines there were.
pub fn parse(text: &str) -> (Vec<SbatEntry>, u64) {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let entries = lines
        .by_ref()
        .take(MAX_ENTRIES)
        .map(|l| {
            let mut f = l.split(',').map(|s| s.trim().to_string());
            let mut next = || f.next().unwrap_or_default();
            SbatEntry {
                component: next(),
                generation: next(),
                vendor: next(),
                package: next(),
                version: next(),
                url: next(),
            }
        })
        .collect();
    let more = lines.fold(0u64, |n, _| n.saturating_add(1));
    (entries, more)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_lines() {
        let (e, more) = super::parse("sbat,1,SBAT Version,sbat,1,https://x\nsystemd,1\n\n");
        assert_eq!(more, 0);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].url, "https://x");
        assert_eq!(e[1].generation, "1");
        assert_eq!(e[1].vendor, "");
    }

    #[test]
    fn caps_entries() {
        let (e, more) = super::parse(&"a,1\n".repeat(super::MAX_ENTRIES + 7));
        assert_eq!(e.len(), super::MAX_ENTRIES);
        assert_eq!(more, 7);
    }
}
