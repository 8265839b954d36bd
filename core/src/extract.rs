//! Section extraction: exact payload bytes, conventional file names, profiles.
//!
//! A payload is the VirtualSize bytes the stub uses (clamped to the raw data in the
//! file), never SizeOfRawData: the alignment padding is not part of it.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::pe::{PeFile, Section};
use crate::uki::{self, Blocks};

/// The payload of section `name` (with or without its leading dot) as seen by
/// `profile`: the profile's own copy first, then the base's. Without a profile,
/// only base sections are considered.
pub fn section<'a>(data: &'a [u8], name: &str, profile: Option<u32>) -> Result<&'a [u8]> {
    let pe = PeFile::parse(data)?;
    let blocks = uki::blocks(&pe.sections);
    check_profile(&blocks, profile)?;
    // Accept ".linux", "linux" and the conventional file name "vmlinuz".
    let dotted = format!(".{name}");
    let conventional = CONVENTIONAL
        .iter()
        .find(|(_, file)| *file == name)
        .map(|(section, _)| *section);
    let index = [Some(name), Some(dotted.as_str()), conventional]
        .into_iter()
        .flatten()
        .find_map(|n| blocks.lookup(&pe.sections, n, profile))
        .ok_or_else(|| {
            let mut have: Vec<&str> = visible(&pe, &blocks, profile)
                .map(|s| s.name.as_str())
                .collect();
            have.dedup();
            let scope =
                profile.map_or_else(String::new, |p| format!(" in profile @{p} or the base"));
            Error::NotFound(format!(
                "section {name}{scope}; the file has: {}",
                have.join(" ")
            ))
        })?;
    pe.sections
        .get(index)
        .ok_or_else(|| Error::NotFound(format!("section {name}")))?
        .payload(data)
}

/// Every section visible to `profile` (the base, then the profile's own), as
/// (file name, payload). A profile's section replaces the base's of the same name.
/// File names are the conventional ones (vmlinuz, initrd, ...) or the section
/// name made safe for a file system; repeats get `.1`, `.2`, ... suffixes.
pub fn all(data: &[u8], profile: Option<u32>) -> Result<Vec<(String, &[u8])>> {
    let pe = PeFile::parse(data)?;
    let blocks = uki::blocks(&pe.sections);
    check_profile(&blocks, profile)?;
    let own: HashSet<&str> = match profile.and_then(|p| blocks.profiles.get(p as usize)) {
        Some(r) => pe
            .sections
            .get(r.clone())
            .unwrap_or_default()
            .iter()
            .map(|s| s.name.as_str())
            .collect(),
        None => HashSet::new(),
    };
    let mut used = HashSet::new();
    // The next suffix to try per base name: restarting at 1 made 65535 sections of
    // one name quadratic (issue 9); the names chosen are the same.
    let mut next: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (i, s) in pe.sections.iter().enumerate() {
        let in_base = blocks.base.contains(&i);
        let in_profile = profile
            .and_then(|p| blocks.profiles.get(p as usize))
            .is_some_and(|r| r.contains(&i));
        // A base section overridden by the profile is left out.
        if !(in_profile || (in_base && !own.contains(s.name.as_str()))) {
            continue;
        }
        let base = file_name(&s.name);
        let mut name = base.clone();
        let n = next.entry(base.clone()).or_insert(1);
        while !used.insert(name.clone()) {
            name = format!("{base}.{n}");
            *n = n.checked_add(1).ok_or_else(|| {
                Error::malformed(s.header_offset, "more than 2^32 sections of one name")
            })?;
        }
        out.push((name, s.payload(data)?));
    }
    Ok(out)
}

fn visible<'p>(
    pe: &'p PeFile<'_>,
    blocks: &'p Blocks,
    profile: Option<u32>,
) -> impl Iterator<Item = &'p Section> + 'p {
    let prof = profile
        .and_then(|p| blocks.profiles.get(p as usize))
        .cloned()
        .unwrap_or(0..0);
    pe.sections
        .iter()
        .enumerate()
        .filter(move |(i, _)| blocks.base.contains(i) || prof.contains(i))
        .map(|(_, s)| s)
}

fn check_profile(blocks: &Blocks, profile: Option<u32>) -> Result<()> {
    match profile {
        Some(p) if (p as usize) >= blocks.profiles.len() => Err(Error::NotFound(format!(
            "profile @{p}; the file has {} profile(s){}",
            blocks.profiles.len(),
            match blocks.profiles.len().checked_sub(1) {
                None => String::new(),
                Some(last) => format!(" (@0..@{last})"),
            }
        ))),
        _ => Ok(()),
    }
}

/// Section names and the file names ukify and `systemd-measure` use for them.
pub const CONVENTIONAL: &[(&str, &str)] = &[
    (".linux", "vmlinuz"),
    (".initrd", "initrd"),
    (".cmdline", "cmdline"),
    (".osrel", "os-release"),
    (".uname", "uname"),
    (".splash", "splash.bmp"),
    (".sbat", "sbat.csv"),
    (".pcrsig", "pcrsig.json"),
    (".pcrpkey", "pcrpkey.pem"),
];

/// The conventional file name of a section's payload (what ukify and
/// `systemd-measure` call the parts), or the section name made file-system safe.
pub fn file_name(section: &str) -> String {
    if let Some((_, file)) = CONVENTIONAL.iter().find(|(s, _)| *s == section) {
        return (*file).to_string();
    }
    let t: String = section
        .trim_start_matches('.')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Never "", "." or "..": those are not file names.
    if t.chars().all(|c| c == '.') {
        format!("section{}", t.len())
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name(".linux"), "vmlinuz");
        assert_eq!(file_name(".text"), "text");
        assert_eq!(file_name("../x/y"), "_x_y");
        assert_eq!(file_name(".."), "section0");
        assert_eq!(file_name(""), "section0");
        assert_eq!(file_name(".a b\u{e9}"), "a_b_");
    }
}
