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

/// One entry per non-empty line; missing fields are empty, extra fields are ignored
/// (shim itself only needs the first two).
pub fn parse(text: &str) -> Vec<SbatEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
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
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_lines() {
        let e = super::parse("sbat,1,SBAT Version,sbat,1,https://x\nsystemd,1\n\n");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].url, "https://x");
        assert_eq!(e[1].generation, "1");
        assert_eq!(e[1].vendor, "");
    }
}
