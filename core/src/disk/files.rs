//! The files on a disk image's FAT and XFS partitions, for `ukitool extract DISK`.

use std::borrow::Cow;

use crate::disk::fat::read::{looks_like_fat, read_volume, FatVolume};
use crate::disk::gpt;
use crate::disk::xfs::{self, FileType, XfsVolume};
use crate::error::{Error, Result};
use crate::readat::{Runs, Window};

/// A partition's filesystem, as read.
#[derive(Debug, Clone)]
pub enum Volume {
    Fat(FatVolume),
    Xfs(XfsVolume),
}

/// A partition that holds a FAT or XFS volume.
#[derive(Debug, Clone)]
pub struct PartitionFiles<'a> {
    /// GPT index, from 1.
    pub index: u32,
    pub name: String,
    data: Window<'a>,
    pub volume: Volume,
}

/// Every partition of `disk` with a FAT or XFS volume, in table order. A volume that
/// does not read is an error: `extract` must not quietly skip files.
pub fn partitions<'a>(disk: impl Into<Window<'a>>) -> Result<Vec<PartitionFiles<'a>>> {
    let disk: Window<'a> = disk.into();
    let table = gpt::read(disk)?;
    let mut out = Vec::new();
    for p in &table.partitions {
        if p.mbr_type == Some(gpt::raw::MBR_TYPE_PROTECTIVE) {
            continue;
        }
        if p.offset.checked_add(p.size).is_none_or(|e| e > disk.len()) {
            continue;
        }
        let data = disk.clamp(p.offset, p.size);
        let volume = if looks_like_fat(data) {
            Volume::Fat(read_volume(data)?)
        } else if xfs::looks_like_xfs(data) {
            Volume::Xfs(xfs::read_volume(data)?)
        } else {
            continue;
        };
        out.push(PartitionFiles {
            index: p.index,
            name: p.name.clone(),
            data,
            volume,
        });
    }
    Ok(out)
}

/// The partition named `part`, by GPT name or by number.
pub fn find<'p, 'a>(parts: &'p [PartitionFiles<'a>], part: &str) -> Result<&'p PartitionFiles<'a>> {
    parts
        .iter()
        .find(|p| p.name == part)
        .or_else(|| parts.iter().find(|p| p.index.to_string() == part))
        .ok_or_else(|| {
            Error::invalid(format!(
                "no FAT or XFS partition named or numbered {part:?}"
            ))
        })
}

impl<'a> PartitionFiles<'a> {
    /// The paths of its regular files, `/`-separated from the root, without a leading `/`.
    pub fn files(&self) -> Vec<&str> {
        match &self.volume {
            Volume::Fat(v) => v
                .entries
                .iter()
                .filter(|e| !e.is_dir)
                .map(|e| e.path.as_str())
                .collect(),
            Volume::Xfs(v) => v
                .entries
                .iter()
                .filter(|e| e.kind == FileType::File)
                .map(|e| e.path.as_str())
                .collect(),
        }
    }

    /// The bytes of the file at `path` (FAT names match without regard to case).
    pub fn read(&self, path: &str) -> Result<Cow<'a, [u8]>> {
        let p = path.trim_matches('/');
        let missing = || Error::invalid(format!("partition {}: no file {path:?}", self.index));
        match &self.volume {
            Volume::Fat(v) => {
                let e = v
                    .entries
                    .iter()
                    .find(|e| !e.is_dir && e.path.eq_ignore_ascii_case(p))
                    .ok_or_else(missing)?;
                v.file_bytes(self.data, e)
            }
            Volume::Xfs(v) => v.file_bytes(self.data, v.find(p).ok_or_else(missing)?),
        }
    }

    /// The file at `path` as a source read a piece at a time (for files too large to
    /// read whole from an image not in memory); None when its data is not in runs
    /// (XFS holes) or it is missing.
    pub fn open(&self, path: &str) -> Option<Runs<'a>> {
        let p = path.trim_matches('/');
        let runs = match &self.volume {
            Volume::Fat(v) => v
                .entries
                .iter()
                .find(|e| !e.is_dir && e.path.eq_ignore_ascii_case(p))
                .filter(|e| e.size == 0 || !e.runs.is_empty())?
                .runs
                .clone(),
            Volume::Xfs(v) => v.file_runs(v.find(p)?)?,
        };
        Runs::new(self.data, &runs)
    }

    /// [`Self::open`]'s runs as (offset in the disk, length): where the file's bytes
    /// lie in the image, for a caller that reads them itself (the page slices them
    /// out of the dropped file).
    pub fn disk_runs(&self, path: &str) -> Option<Vec<(u64, u64)>> {
        let runs = self.open(path)?;
        let base = self.data.start();
        Some(
            runs.pieces()
                .iter()
                .filter_map(|&(o, l)| Some((base.checked_add(o)?, l)))
                .collect(),
        )
    }

    /// The directory `extract --all` writes its files under: the partition's name
    /// when it is one safe path component, else its number.
    pub fn dir_name(&self) -> String {
        if safe_component(&self.name) {
            self.name.clone()
        } else {
            self.index.to_string()
        }
    }
}

/// A path from a disk, as components that cannot leave the output directory (no
/// `..`, `.`, empty or control-character names), or None.
pub fn safe_path(path: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    parts.iter().all(|c| safe_component(c)).then_some(parts)
}

fn safe_component(c: &str) -> bool {
    !c.is_empty()
        && c != "."
        && c != ".."
        && !c.contains(['/', '\\'])
        && !c.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::layout::{build_image, test_pe, ImageOptions, Layout, PartitionSpec};

    #[test]
    fn reads_files_from_fat_and_xfs_partitions() {
        let uki = test_pe(0x8664, &[(".text", b"code")]);
        let mut o = ImageOptions::new(Layout::Uefi, &uki);
        o.extra_partitions = vec![PartitionSpec::parse("BOOT:300M:linux:xfs").unwrap()];
        o.partition_files = vec![("BOOT".into(), "/a/b".into(), Cow::Borrowed(&b"hi"[..]))];
        let disk = build_image(&o).unwrap().0.to_vec();
        let parts = partitions(&disk).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&*find(&parts, "BOOT").unwrap().read("/a/b").unwrap(), b"hi");
        assert_eq!(find(&parts, "2").unwrap().files(), ["a/b"]);
        let esp = find(&parts, "1").unwrap();
        assert_eq!(&*esp.read("/efi/boot/bootx64.efi").unwrap(), &uki[..]);
        assert!(esp.read("/nope").is_err());
        assert!(find(&parts, "3").is_err());
        assert_eq!(safe_path("/a/b"), Some(vec!["a", "b"]));
        assert_eq!(safe_path("a/../b"), None);
    }
}
