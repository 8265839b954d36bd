//! bmap files (bmap-tools' block map, format 2.0 and 1.x): which blocks of an image hold
//! data, with a digest of each range, so a writer can skip the rest and check what it
//! writes.
//!
//! ```xml
//! <bmap version="2.0">
//!   <ImageSize> 821752 </ImageSize>  <BlockSize> 4096 </BlockSize>
//!   <BlocksCount> 201 </BlocksCount> <MappedBlocksCount> 117 </MappedBlocksCount>
//!   <ChecksumType> sha256 </ChecksumType>
//!   <BmapFileChecksum> (sha256 of this file with this value written as zeros) </BmapFileChecksum>
//!   <BlockMap> <Range chksum="..."> 0-1 </Range> <Range chksum="..."> 3 </Range> </BlockMap>
//! </bmap>
//! ```
//! Format 1.x names the digests `sha1` (1.0-1.2: a `sha1` attribute; 1.3: `chksum` with
//! SHA-1) and the file digest `BmapFileSHA1`. Parsed with roxmltree (no DTDs, no entity
//! expansion beyond the predefined ones). Errors name the byte offset in the XML text.

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The digest of each range and of the bmap file itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumType {
    Sha256,
    Sha1,
}

impl ChecksumType {
    /// "sha256" or "sha1", as bmap files spell it.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumType::Sha256 => "sha256",
            ChecksumType::Sha1 => "sha1",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            ChecksumType::Sha256 => Sha256::digest(data).to_vec(),
            ChecksumType::Sha1 => Sha1::digest(data).to_vec(),
        }
    }

    fn len(self) -> usize {
        match self {
            ChecksumType::Sha256 => 32,
            ChecksumType::Sha1 => 20,
        }
    }
}

/// One mapped range, in bytes of the image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Range {
    pub offset: u64,
    pub len: u64,
    /// The digest of the range's bytes (absent in some 1.x files).
    pub digest: Option<Vec<u8>>,
}

/// A parsed bmap.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bmap {
    pub version: String,
    pub image_size: u64,
    pub block_size: u64,
    pub blocks_count: u64,
    pub mapped_blocks: u64,
    pub checksum: ChecksumType,
    /// Ascending, not overlapping, inside the image.
    pub ranges: Vec<Range>,
}

impl Bmap {
    /// The bytes the ranges cover.
    pub fn mapped_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.len).sum()
    }
}

fn malformed(at: usize, rule: impl Into<String>) -> Error {
    Error::malformed(at as u64, rule)
}

/// Parse and check a bmap file: its own digest, and each range against the image size.
pub fn parse(text: &[u8]) -> Result<Bmap> {
    let s = std::str::from_utf8(text)
        .map_err(|e| malformed(e.valid_up_to(), "bmap file is not UTF-8"))?;
    let doc = roxmltree::Document::parse(s)
        .map_err(|e| malformed(text_offset(s, e.pos()), format!("bmap XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "bmap" {
        return Err(malformed(
            root.range().start,
            "bmap root element is not <bmap>",
        ));
    }
    let version = root
        .attribute("version")
        .ok_or_else(|| malformed(root.range().start, "<bmap> has no version"))?
        .to_string();
    let major = version.split('.').next().unwrap_or("");
    let checksum = match major {
        "2" => ChecksumType::Sha256,
        "1" => ChecksumType::Sha1,
        _ => {
            return Err(Error::Unsupported {
                offset: root.range().start as u64,
                what: format!("bmap format version {version}"),
            })
        }
    };
    let field = |name: &str| -> Result<(usize, &str)> {
        let n = root
            .children()
            .find(|c| c.has_tag_name(name))
            .ok_or_else(|| malformed(root.range().start, format!("bmap has no <{name}>")))?;
        Ok((n.range().start, n.text().unwrap_or("").trim()))
    };
    let number = |name: &str| -> Result<u64> {
        let (at, t) = field(name)?;
        t.parse()
            .map_err(|_| malformed(at, format!("<{name}> {t:?} is not a number")))
    };
    let image_size = number("ImageSize")?;
    let block_size = number("BlockSize")?;
    let blocks_count = number("BlocksCount")?;
    let mapped_blocks = number("MappedBlocksCount")?;
    if major == "2" {
        let (at, t) = field("ChecksumType")?;
        if t != "sha256" {
            return Err(Error::Unsupported {
                offset: at as u64,
                what: format!("bmap checksum type {t:?} (sha256 is read)"),
            });
        }
    }
    if block_size == 0 || image_size.div_ceil(block_size) != blocks_count {
        let (at, _) = field("BlocksCount")?;
        return Err(malformed(
            at,
            format!("bmap BlocksCount {blocks_count} is not ImageSize {image_size} / BlockSize {block_size}, rounded up"),
        ));
    }
    check_file_digest(s, &root, checksum)?;
    let ranges = ranges(&root, checksum, block_size, image_size)?;
    let bmap = Bmap {
        version,
        image_size,
        block_size,
        blocks_count,
        mapped_blocks,
        checksum,
        ranges,
    };
    let mapped = bmap.mapped_bytes().div_ceil(block_size);
    if mapped != mapped_blocks {
        let (at, _) = field("MappedBlocksCount")?;
        return Err(malformed(
            at,
            format!("bmap MappedBlocksCount {mapped_blocks}, but its ranges map {mapped} blocks"),
        ));
    }
    Ok(bmap)
}

/// A line/column position as a byte offset into `s`.
fn text_offset(s: &str, pos: roxmltree::TextPos) -> usize {
    let line = usize::try_from(pos.row.saturating_sub(1)).unwrap_or(0);
    let col = usize::try_from(pos.col.saturating_sub(1)).unwrap_or(0);
    s.split_inclusive('\n')
        .take(line)
        .map(str::len)
        .sum::<usize>()
        .saturating_add(col)
}

/// `<BmapFileChecksum>` (2.0) or `<BmapFileSHA1>` (1.3): the digest of the file with
/// that value replaced by as many `0`s (bmaptool's rule). Older files have neither.
fn check_file_digest(s: &str, root: &roxmltree::Node, kind: ChecksumType) -> Result<()> {
    let Some(node) = root
        .children()
        .find(|c| c.has_tag_name("BmapFileChecksum") || c.has_tag_name("BmapFileSHA1"))
    else {
        return Ok(());
    };
    let want = node.text().unwrap_or("").trim();
    let at = node.range().start;
    let want_bytes = crate::bytes::unhex(want)
        .filter(|b| b.len() == kind.len())
        .ok_or_else(|| {
            malformed(
                at,
                format!("bmap file checksum {want:?} is not a {kind:?} digest"),
            )
        })?;
    let zeroed = s.replace(want, &"0".repeat(want.len()));
    if kind.digest(zeroed.as_bytes()) != want_bytes {
        return Err(malformed(
            at,
            "the bmap file's own checksum does not match its contents (the .bmap is damaged or edited)",
        ));
    }
    Ok(())
}

/// The `<BlockMap>` ranges, as byte ranges clamped to the image size.
fn ranges(
    root: &roxmltree::Node,
    kind: ChecksumType,
    block_size: u64,
    image_size: u64,
) -> Result<Vec<Range>> {
    let map = root
        .children()
        .find(|c| c.has_tag_name("BlockMap"))
        .ok_or_else(|| malformed(root.range().start, "bmap has no <BlockMap>"))?;
    let mut out: Vec<Range> = Vec::new();
    for r in map.children().filter(|c| c.has_tag_name("Range")) {
        let at = r.range().start;
        let t = r.text().unwrap_or("").trim();
        let (first, last) = match t.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u64>(), b.trim().parse::<u64>()),
            None => (t.parse(), t.parse()),
        };
        let (Ok(first), Ok(last)) = (first, last) else {
            return Err(malformed(at, format!("bmap range {t:?} is not N or N-M")));
        };
        let offset = first.checked_mul(block_size);
        let end = last.checked_add(1).and_then(|l| l.checked_mul(block_size));
        let (Some(offset), Some(end)) = (offset, end) else {
            return Err(malformed(at, format!("bmap range {t:?} overflows")));
        };
        if last < first || offset >= image_size {
            return Err(malformed(
                at,
                format!("bmap range {t:?} is empty or past the image's {image_size} bytes"),
            ));
        }
        if out
            .last()
            .is_some_and(|p| p.offset.saturating_add(p.len) > offset)
        {
            return Err(malformed(
                at,
                format!("bmap range {t:?} overlaps or precedes the one before"),
            ));
        }
        let digest = match r.attribute("chksum").or_else(|| r.attribute("sha1")) {
            None => None,
            Some(h) => Some(
                crate::bytes::unhex(h.trim())
                    .filter(|b| b.len() == kind.len())
                    .ok_or_else(|| {
                        malformed(
                            at,
                            format!("bmap range {t:?}: checksum {h:?} is not a {kind:?} digest"),
                        )
                    })?,
            ),
        };
        out.push(Range {
            offset,
            len: end.min(image_size).saturating_sub(offset),
            digest,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_digest(body: &str) -> String {
        let zero = "0".repeat(64);
        let doc = body.replace("FILESUM", &zero);
        let sum = crate::bytes::hex(&Sha256::digest(doc.as_bytes()));
        doc.replace(&zero, &sum)
    }

    const DOC: &str = r#"<?xml version="1.0" ?>
<bmap version="2.0">
    <ImageSize> 10000 </ImageSize>
    <BlockSize> 4096 </BlockSize>
    <BlocksCount> 3 </BlocksCount>
    <MappedBlocksCount> 2 </MappedBlocksCount>
    <ChecksumType> sha256 </ChecksumType>
    <BmapFileChecksum> FILESUM </BmapFileChecksum>
    <BlockMap>
        <Range chksum="RANGE0"> 0 </Range>
        <Range chksum="RANGE2"> 2 </Range>
    </BlockMap>
</bmap>
"#;

    fn doc() -> String {
        let d0 = crate::bytes::hex(&Sha256::digest([1u8; 4096]));
        let d2 = crate::bytes::hex(&Sha256::digest([2u8; 10000 - 8192]));
        with_digest(&DOC.replace("RANGE0", &d0).replace("RANGE2", &d2))
    }

    #[test]
    fn parses_ranges_and_clamps_the_last_to_the_image() {
        let b = parse(doc().as_bytes()).unwrap();
        assert_eq!(b.ranges.len(), 2);
        assert_eq!((b.ranges[1].offset, b.ranges[1].len), (8192, 10000 - 8192));
        assert_eq!(
            b.ranges[1].digest.as_deref().unwrap(),
            Sha256::digest([2u8; 10000 - 8192]).as_slice()
        );
    }

    #[test]
    fn refuses_an_edited_file_and_bad_ranges() {
        let d = doc().replace("<Range chksum", "<Range  chksum");
        let e = parse(d.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("own checksum"), "{e}");
        let bad = with_digest(
            &DOC.replace(" 2 </Range>", " 5 </Range>")
                .replace("RANGE0", "")
                .replace("RANGE2", ""),
        );
        assert!(parse(bad.as_bytes()).is_err());
        assert!(parse(b"<bmap version=\"9.0\"/>").is_err());
        assert!(parse(b"<not xml").unwrap_err().offset().is_some());
    }
}
