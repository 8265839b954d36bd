//! FAT12/16/32: a writer that formats a fresh volume for a known file set (the ESP),
//! and a bounded reader for inspecting volumes found on disks.
//!
//! Why our own writer rather than the `fatfs` crate: fatfs 0.3.6 writes long-name
//! entries before `.`/`..` and a non-zero `..` cluster in subdirectories of the root
//! (rafalh/rust-fatfs#117), which `fsck.fat` rejects; and it formats by writing
//! through a block device, so every file is copied. An ESP is written once with a
//! file set known up front, so its whole layout can be computed: directories first,
//! then each file in one contiguous run of clusters. The volume is then a handful of
//! small metadata buffers plus extents that borrow the file bytes (zero copy), and
//! its memory does not depend on the volume size. The core's tests read the result
//! back with fatfs, and the integration tests with fsck.fat and mtools.

pub mod boot;
pub mod raw;
pub mod read;
pub mod write;

pub use boot::BootSector;
pub use read::{read_volume, FatEntry, FatVolume};
pub use write::{format, FatOptions, FatPlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

impl FatType {
    pub fn name(self) -> &'static str {
        match self {
            FatType::Fat12 => "FAT12",
            FatType::Fat16 => "FAT16",
            FatType::Fat32 => "FAT32",
        }
    }

    /// The type the cluster count decides (the spec's only rule).
    pub fn for_clusters(clusters: u64) -> FatType {
        if clusters < raw::FAT16_MIN_CLUSTERS {
            FatType::Fat12
        } else if clusters < raw::FAT32_MIN_CLUSTERS {
            FatType::Fat16
        } else {
            FatType::Fat32
        }
    }
}

/// DOS (date, time) of a Unix time in UTC, clamped to the FAT range 1980..=2107.
/// FAT stores local time with no zone; UTC is the reproducible choice.
// The clamp keeps the year in 1980..=2107: every field fits its bits, nothing overflows.
#[allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
pub fn dos_date_time(unix: i64) -> (u16, u16) {
    const MIN: i64 = 315_532_800; // 1980-01-01T00:00:00Z
    const MAX: i64 = 4_354_819_198; // 2107-12-31T23:59:58Z
    let t = unix.clamp(MIN, MAX);
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time = (((secs / 3600) as u16) << 11)
        | ((((secs / 60) % 60) as u16) << 5)
        | ((secs % 60) / 2) as u16;
    (date, time)
}

/// Unix time of a DOS date and time (for reports), or None if the date is invalid.
// Every operand comes from a 16-bit field: the result is below 2^33.
#[allow(clippy::arithmetic_side_effects)]
pub fn unix_of_dos(date: u16, time: u16) -> Option<i64> {
    let y = 1980 + i64::from(date >> 9);
    let m = i64::from((date >> 5) & 0xf);
    let d = i64::from(date & 0x1f);
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    let h = i64::from(time >> 11);
    let mi = i64::from((time >> 5) & 0x3f);
    let s = i64::from(time & 0x1f) * 2;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

// Howard Hinnant's civil-from-days and days-from-civil (public domain algorithms).
// Both are called only with dates in FAT's range (1980..=2107), far from overflow.
#[allow(clippy::arithmetic_side_effects)]
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[allow(clippy::arithmetic_side_effects)]
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The checksum of an 11-byte short name that each of its long-name entries carries.
pub fn short_name_checksum(name: &[u8; 11]) -> u8 {
    name.iter()
        .fold(0u8, |sum, &c| sum.rotate_right(1).wrapping_add(c))
}

// Field stores for the fixed-size buffers the writer fills (32-byte entries, 512-byte
// boot and FSInfo sectors), at raw.rs offsets that lie inside them.
fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(d) = b.get_mut(at..).and_then(<[u8]>::first_chunk_mut) {
        *d = v.to_le_bytes();
    }
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    if let Some(d) = b.get_mut(at..).and_then(<[u8]>::first_chunk_mut) {
        *d = v.to_le_bytes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_dates() {
        // 2025-01-02T03:04:06Z
        let (d, t) = dos_date_time(1_735_787_046);
        assert_eq!(d, (45 << 9) | (1 << 5) | 2);
        assert_eq!(t, (3 << 11) | (4 << 5) | 3);
        assert_eq!(unix_of_dos(d, t), Some(1_735_787_046));
        assert_eq!(dos_date_time(0), (33, 0)); // clamped to 1980-01-01
        assert_eq!(dos_date_time(i64::MAX).0 >> 9, 127);
        assert_eq!(unix_of_dos(0, 0), None);
    }

    #[test]
    fn checksum_matches_the_spec_example() {
        // "FOO     BAR": computed by the spec's ChkSum routine.
        let mut sum = 0u8;
        for &c in b"FOO     BAR" {
            sum = (if sum & 1 != 0 { 0x80u8 } else { 0 })
                .wrapping_add(sum >> 1)
                .wrapping_add(c);
        }
        assert_eq!(short_name_checksum(b"FOO     BAR"), sum);
    }
}
