//! The bmap of an image (bmap-tools' block map, format 2.0): the 4 KiB blocks a writer
//! must write, as ranges with a sha256 of each, and a sha256 of the file itself
//! (computed with its own value written as 64 zeros, as bmaptool checks it).
//!
//! Every extent of the image is mapped, zero-filled ones too: they must read as zero on
//! a device that held something else (GPT backup area, FAT tables).

use sha2::{Digest, Sha256};

use crate::disk::DiskImage;

pub const BLOCK_SIZE: u64 = 4096;

/// The mapped block ranges, inclusive, in order.
pub fn mapped_ranges(img: &DiskImage<'_>) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for e in img.extents() {
        let first = e.offset / BLOCK_SIZE;
        let last = e.end().saturating_sub(1) / BLOCK_SIZE;
        match ranges.last_mut() {
            Some((_, l)) if first <= l.saturating_add(1) => *l = (*l).max(last),
            _ => ranges.push((first, last)),
        }
    }
    ranges
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of the image's bytes in blocks `first..=last` (the last block cut at the
/// image's end).
fn range_digest(img: &DiskImage<'_>, first: u64, last: u64) -> String {
    let start = first.saturating_mul(BLOCK_SIZE);
    let end = last
        .saturating_add(1)
        .saturating_mul(BLOCK_SIZE)
        .min(img.size);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = start;
    while pos < end {
        let n = usize::try_from(end.saturating_sub(pos).min(buf.len() as u64)).unwrap_or(0);
        let Some(b) = buf.get_mut(..n) else { break };
        img.read_at(pos, b);
        h.update(&*b);
        pos = pos.saturating_add(n as u64);
    }
    hex(&h.finalize())
}

/// The bmap file's text.
pub fn bmap(img: &DiskImage<'_>) -> String {
    let ranges = mapped_ranges(img);
    let blocks = img.size.div_ceil(BLOCK_SIZE);
    let mapped: u64 = ranges
        .iter()
        .map(|(f, l)| l.saturating_sub(*f).saturating_add(1))
        .sum();
    let zeros = "0".repeat(64);
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" ?>\n");
    x.push_str("<!-- The blocks of the image that hold data, made by ukitool: bmaptool\n");
    x.push_str("     copies these to the device and checks each range's sha256. -->\n");
    x.push_str("<bmap version=\"2.0\">\n");
    x.push_str(&format!("    <ImageSize> {} </ImageSize>\n", img.size));
    x.push_str(&format!("    <BlockSize> {BLOCK_SIZE} </BlockSize>\n"));
    x.push_str(&format!("    <BlocksCount> {blocks} </BlocksCount>\n"));
    x.push_str(&format!(
        "    <MappedBlocksCount> {mapped} </MappedBlocksCount>\n"
    ));
    x.push_str("    <ChecksumType> sha256 </ChecksumType>\n");
    x.push_str(&format!(
        "    <BmapFileChecksum> {zeros} </BmapFileChecksum>\n"
    ));
    x.push_str("    <BlockMap>\n");
    for &(f, l) in &ranges {
        let d = range_digest(img, f, l);
        if f == l {
            x.push_str(&format!("        <Range chksum=\"{d}\"> {f} </Range>\n"));
        } else {
            x.push_str(&format!(
                "        <Range chksum=\"{d}\"> {f}-{l} </Range>\n"
            ));
        }
    }
    x.push_str("    </BlockMap>\n</bmap>\n");
    let file_digest = hex(&Sha256::digest(x.as_bytes()));
    x.replacen(
        &format!("<BmapFileChecksum> {zeros} "),
        &format!("<BmapFileChecksum> {file_digest} "),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn ranges_cover_every_extent_and_the_file_digest_checks() {
        let img = sample();
        assert_eq!(mapped_ranges(&img), vec![(0, 2), (768, 792), (2047, 2047)]);
        let x = bmap(&img);
        let at = x.find("<BmapFileChecksum> ").unwrap() + 19;
        let digest = x[at..at + 64].to_string();
        let zeroed = x.replacen(&digest, &"0".repeat(64), 1);
        assert_eq!(hex(&Sha256::digest(zeroed.as_bytes())), digest);
        assert!(x.contains("> 2047 </Range>"));
    }
}
