//! Block devices as the kernel describes them: sysfs (`/sys/block`, `/sys/class/block`,
//! `/sys/dev/block`), `/proc/self/mountinfo` and `/proc/swaps`.
//!
//! Everything here reads; nothing changes the system. The two questions that matter for
//! safety are "is this disk in use (mounted, swapped on, held by device-mapper)?" and "does
//! this disk back the running system?"; both follow the sysfs `slaves/` and `holders/`
//! links, so LVM, LUKS and md on top of a partition are seen through.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Mount points whose backing disk is the running system (rpi-imager and drivelist use
/// the same set; /boot/efi and /efi hold the ESP the machine boots from).
const SYSTEM_MOUNTS: &[&str] = &["/", "/usr", "/boot", "/boot/efi", "/efi"];

/// Recursion bound for slaves/holders/loop chains; real stacks are 3-4 deep.
const MAX_DEPTH: usize = 16;

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct Mount {
    pub dev: (u32, u32),
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

/// The mount table, plus active swap devices.
#[derive(Debug, Clone, Default)]
pub struct MountTable {
    pub mounts: Vec<Mount>,
    /// Kernel names of block devices in use as swap.
    pub swaps: Vec<String>,
}

impl MountTable {
    pub fn read() -> Self {
        let mounts = fs::read_to_string("/proc/self/mountinfo")
            .map(|s| s.lines().filter_map(parse_mountinfo_line).collect())
            .unwrap_or_default();
        let swaps = fs::read_to_string("/proc/swaps")
            .map(|s| {
                s.lines()
                    .skip(1)
                    .filter_map(|l| l.split_whitespace().next())
                    .filter_map(|p| name_of_path(Path::new(&unescape(p))))
                    .collect()
            })
            .unwrap_or_default();
        MountTable { mounts, swaps }
    }

    /// Mounts whose file system lives on one of `names` (kernel names). Matches both the
    /// device number (ext4, vfat) and the source path (btrfs reports an anonymous number).
    pub fn mounts_on(&self, names: &BTreeSet<String>) -> Vec<&Mount> {
        self.mounts
            .iter()
            .filter(|m| {
                name_of_dev(m.dev).is_some_and(|n| names.contains(&n))
                    || (m.source.starts_with("/dev/")
                        && name_of_path(Path::new(&m.source)).is_some_and(|n| names.contains(&n)))
            })
            .collect()
    }
}

fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    // id parent major:minor root mount-point options [optional...] - fstype source super
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let dev = l.nth(2)?;
    let (maj, min) = dev.split_once(':')?;
    let mount_point = unescape(l.nth(1)?);
    let mut r = right.split(' ');
    let fstype = r.next()?.to_string();
    let source = unescape(r.next().unwrap_or(""));
    let super_options = r.next().unwrap_or("").to_string();
    Some(Mount {
        dev: (maj.parse().ok()?, min.parse().ok()?),
        mount_point: PathBuf::from(mount_point),
        fstype,
        source,
        super_options,
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\' {
            if let Some(oct) = b.get(i + 1..i + 4) {
                if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let v = oct.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
                    if let Ok(v) = u8::try_from(v) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The kernel name (`sda1`, `dm-0`, `loop3`) of a device number, through /sys/dev/block.
pub fn name_of_dev((maj, min): (u32, u32)) -> Option<String> {
    if maj == 0 {
        return None; // anonymous devices (tmpfs, overlay, btrfs subvolumes)
    }
    let p = fs::canonicalize(format!("/sys/dev/block/{maj}:{min}")).ok()?;
    Some(p.file_name()?.to_string_lossy().into_owned())
}

/// The kernel name of a block device node (`/dev/sdb`, `/dev/disk/by-id/...`).
pub fn name_of_path(path: &Path) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    name_of_dev(split_dev(meta.rdev()))
}

pub fn split_dev(dev: u64) -> (u32, u32) {
    (libc::major(dev), libc::minor(dev))
}

fn class_dir(name: &str) -> Option<PathBuf> {
    fs::canonicalize(Path::new("/sys/class/block").join(name)).ok()
}

fn read_trim(p: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn dir_names(p: impl AsRef<Path>) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Is `name` a partition, and if so of which disk?
pub fn parent_disk(name: &str) -> Option<String> {
    let dir = class_dir(name)?;
    if dir.join("partition").exists() {
        Some(dir.parent()?.file_name()?.to_string_lossy().into_owned())
    } else {
        None
    }
}

/// The whole disk a kernel name belongs to (itself when it is a disk).
pub fn whole_disk(name: &str) -> String {
    parent_disk(name).unwrap_or_else(|| name.to_string())
}

/// Every disk a block device ultimately stores its data on: the device's whole disk, and,
/// through `slaves/` (dm, md) and loop backing files, the disks under it. Intermediate
/// devices (dm-0) are included too.
pub fn underlying_disks(name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_underlying(name, &mut out, &mut BTreeSet::new(), 0);
    out
}

fn collect_underlying(
    name: &str,
    out: &mut BTreeSet<String>,
    seen: &mut BTreeSet<String>,
    depth: usize,
) {
    if depth > MAX_DEPTH || !seen.insert(name.to_string()) {
        return;
    }
    let disk = whole_disk(name);
    out.insert(disk.clone());
    for node in [name.to_string(), disk.clone()] {
        let Some(dir) = class_dir(&node) else {
            continue;
        };
        for slave in dir_names(dir.join("slaves")) {
            collect_underlying(&slave, out, seen, depth + 1);
        }
    }
    if let Some(file) = read_trim(format!("/sys/block/{disk}/loop/backing_file")) {
        if let Some(n) = fs::metadata(&file)
            .ok()
            .and_then(|m| name_of_dev(split_dev(m.dev())))
        {
            collect_underlying(&n, out, seen, depth + 1);
        }
    }
}

/// The disks a path's file system is stored on (empty for tmpfs and other virtual file
/// systems). An overlay root is followed through its lower and upper directories.
pub fn disks_of_path(path: &Path, table: &MountTable) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(meta) = fs::metadata(path) else {
        return out;
    };
    let dev = split_dev(meta.dev());
    if let Some(n) = name_of_dev(dev) {
        out.extend(underlying_disks(&n));
    }
    // btrfs and overlay report anonymous device numbers; the mount table names the source.
    for m in table.mounts.iter().filter(|m| m.dev == dev) {
        if m.source.starts_with("/dev/") {
            if let Some(n) = name_of_path(Path::new(&m.source)) {
                out.extend(underlying_disks(&n));
            }
        }
        if m.fstype == "overlay" {
            for opt in m.super_options.split(',') {
                let dirs = opt
                    .strip_prefix("lowerdir=")
                    .or_else(|| opt.strip_prefix("upperdir="));
                for d in dirs.into_iter().flat_map(|d| d.split(':')) {
                    if let Ok(m2) = fs::metadata(d) {
                        if let Some(n) = name_of_dev(split_dev(m2.dev())) {
                            out.extend(underlying_disks(&n));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Disks that hold the running system: everything under /, /usr, /boot and the ESP.
pub fn system_disks(table: &MountTable) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in SYSTEM_MOUNTS {
        let path = Path::new(p);
        let mounted = table.mounts.iter().any(|m| m.mount_point == path);
        if *p == "/" || mounted {
            out.extend(disks_of_path(path, table));
        }
    }
    out
}

/// A disk, its partitions, and everything stacked on them (dm, md, LUKS): the set of
/// kernel names whose use makes writing the disk unsafe.
pub fn stacked_on(disk: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_holders(disk, &mut out, 0);
    for p in partitions_of(disk) {
        collect_holders(&p, &mut out, 0);
    }
    out
}

fn collect_holders(name: &str, out: &mut BTreeSet<String>, depth: usize) {
    if depth > MAX_DEPTH || !out.insert(name.to_string()) {
        return;
    }
    if let Some(dir) = class_dir(name) {
        for h in dir_names(dir.join("holders")) {
            collect_holders(&h, out, depth + 1);
        }
    }
}

/// Kernel names of a disk's partitions, in partition-number order.
pub fn partitions_of(disk: &str) -> Vec<String> {
    let base = Path::new("/sys/block").join(disk);
    let mut parts: Vec<(u64, String)> = dir_names(&base)
        .into_iter()
        .filter_map(|n| {
            let num = read_trim(base.join(&n).join("partition"))?.parse().ok()?;
            Some((num, n))
        })
        .collect();
    parts.sort();
    parts.into_iter().map(|(_, n)| n).collect()
}

/// A partition of a listed disk.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionInfo {
    pub name: String,
    pub path: String,
    pub size: u64,
    pub mountpoints: Vec<String>,
}

/// A block device as `ukitool disks` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DiskInfo {
    pub name: String,
    pub path: String,
    pub size: u64,
    pub model: String,
    pub transport: String,
    pub removable: bool,
    pub read_only: bool,
    /// Where this disk or anything on it (partitions, dm/LUKS/md on top) is mounted,
    /// or `[SWAP]`.
    pub mountpoints: Vec<String>,
    pub partitions: Vec<PartitionInfo>,
    /// The disk backs /, /usr, /boot or the ESP of the running system.
    pub system: bool,
    /// Loop devices: the file behind the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing_file: Option<String>,
}

impl DiskInfo {
    /// Loop, RAM, zram and optical devices are not useful targets; `disks` hides them
    /// (and empty devices) unless `--all`, as drivelist and rpi-imager do.
    pub fn hidden_by_default(&self) -> bool {
        ["loop", "ram", "zram", "sr"]
            .iter()
            .any(|p| self.name.starts_with(p))
            || self.size == 0
    }
}

/// Sectors in sysfs `size` files are always 512 bytes, whatever the logical block size.
fn sysfs_size(dir: &Path) -> u64 {
    read_trim(dir.join("size"))
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(0, |s| s.saturating_mul(512))
}

fn mountpoints_for(names: &BTreeSet<String>, table: &MountTable) -> Vec<String> {
    let mut v: Vec<String> = table
        .mounts_on(names)
        .into_iter()
        .map(|m| m.mount_point.display().to_string())
        .collect();
    if table.swaps.iter().any(|s| names.contains(s)) {
        v.push("[SWAP]".into());
    }
    v.sort();
    v.dedup();
    v
}

fn model_of(dir: &Path) -> String {
    let dev = dir.join("device");
    let vendor = read_trim(dev.join("vendor")).unwrap_or_default();
    let model = read_trim(dev.join("model"))
        .or_else(|| read_trim(dev.join("name")))
        .unwrap_or_default();
    // virtio exposes a PCI vendor id (0x1af4) as `vendor`, which is not a name.
    let vendor = if vendor.starts_with("0x") {
        String::new()
    } else {
        vendor
    };
    let joined = format!("{vendor} {model}");
    // Sanitise: models come from device firmware.
    joined
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// The bus a disk hangs off, from its sysfs path (as lsblk's TRAN column does).
fn transport_of(name: &str, canonical: &Path) -> String {
    let p = canonical.to_string_lossy();
    let t = if name.starts_with("loop") {
        "loop"
    } else if name.starts_with("dm-") {
        "dm"
    } else if name.starts_with("md") {
        "md"
    } else if name.starts_with("zram") || name.starts_with("ram") {
        "ram"
    } else if p.contains("/usb") {
        "usb"
    } else if name.starts_with("nvme") {
        "nvme"
    } else if name.starts_with("mmcblk") {
        "mmc"
    } else if p.contains("/ata") {
        "sata"
    } else if p.contains("/virtio") {
        "virtio"
    } else if p.contains("/host") {
        "scsi"
    } else {
        ""
    };
    t.to_string()
}

/// Describe one disk (a name under /sys/block).
pub fn disk_info(name: &str, table: &MountTable, system: &BTreeSet<String>) -> DiskInfo {
    let dir = Path::new("/sys/block").join(name);
    let canonical = fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
    let partitions = partitions_of(name)
        .into_iter()
        .map(|p| {
            let pdir = dir.join(&p);
            PartitionInfo {
                path: format!("/dev/{p}"),
                size: sysfs_size(&pdir),
                mountpoints: mountpoints_for(&stacked_on_partition(&p), table),
                name: p,
            }
        })
        .collect();
    DiskInfo {
        name: name.to_string(),
        path: format!("/dev/{name}"),
        size: sysfs_size(&dir),
        model: model_of(&dir),
        transport: transport_of(name, &canonical),
        removable: read_trim(dir.join("removable")).as_deref() == Some("1"),
        read_only: read_trim(dir.join("ro")).as_deref() == Some("1"),
        mountpoints: mountpoints_for(&stacked_on(name), table),
        partitions,
        system: system.contains(name),
        backing_file: read_trim(dir.join("loop/backing_file")),
    }
}

fn stacked_on_partition(part: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_holders(part, &mut out, 0);
    out
}

/// Every disk under /sys/block, sorted by name.
pub fn list_disks() -> Vec<DiskInfo> {
    let table = MountTable::read();
    let system = system_disks(&table);
    dir_names("/sys/block")
        .iter()
        .map(|n| disk_info(n, &table, &system))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_optional_fields_and_escapes() {
        let m = parse_mountinfo_line(
            "36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!(m.dev, (98, 0));
        assert_eq!(m.mount_point, Path::new("/mnt/my disk"));
        assert_eq!(m.fstype, "ext3");
        assert_eq!(m.source, "/dev/root");
        assert!(parse_mountinfo_line("garbage").is_none());
        assert_eq!(unescape("a\\134b\\"), "a\\b\\");
    }
}
