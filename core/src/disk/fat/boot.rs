//! The boot sector: its BIOS parameter block, which fixes where the FATs, the root
//! directory and the clusters lie, and the volume's identity. The reader parses it and
//! the writer emits it; both get the byte offsets from [`BootSector::new`], checked once.

use std::num::NonZeroU64;

use super::raw::*;
use super::{put16, put32, FatType};
use crate::bytes::{self, u16_le, u32_le};
use crate::error::{Error, Result};

/// The extended block's volume serial number and label (FAT12/16 at 36, FAT32 at 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeId {
    pub serial: u32,
    pub label: [u8; 11],
}

/// A volume's boot sector and the layout it implies. Sizes are in sectors as the BPB
/// gives them; the offsets and lengths below them are bytes from the volume's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSector {
    pub fat_type: FatType,
    pub oem: [u8; 8],
    pub sector_size: u64,
    pub sectors_per_cluster: u64,
    pub reserved_sectors: u64,
    pub fats: u64,
    /// Entries of the fixed root directory (FAT12/16; 0 on FAT32).
    pub root_entries: u64,
    pub total_sectors: u64,
    /// Sectors of one FAT.
    pub fat_sectors: u64,
    pub hidden_sectors: u32,
    /// First cluster of the root directory (FAT32; 0 on FAT12/16).
    pub root_cluster: u32,
    /// None when the extended block's signature is missing.
    pub volume_id: Option<VolumeId>,
    pub cluster_size: u64,
    /// Clusters in the data area (numbered from 2).
    pub clusters: u64,
    /// Byte offset and length of the first FAT; the copies follow it.
    pub fat_offset: u64,
    pub fat_len: u64,
    /// Byte offset and length of the fixed root directory (zero length on FAT32).
    pub root_offset: u64,
    pub root_len: u64,
    /// Byte offset of cluster 2.
    pub data_offset: u64,
}

/// The BPB's counts, as read or as chosen by the writer.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    /// The BPB has a 32-bit FAT size (its 16-bit one is zero): FAT32.
    pub fat32: bool,
    pub sector_size: NonZeroU64,
    pub sectors_per_cluster: NonZeroU64,
    pub reserved_sectors: u64,
    pub fats: u64,
    pub root_entries: u64,
    pub total_sectors: u64,
    pub fat_sectors: u64,
}

impl BootSector {
    /// The layout of `c`, with no identity yet. Errors name the BPB field at fault.
    pub fn new(c: Counts) -> Result<BootSector> {
        let sector = c.sector_size.get();
        if c.reserved_sectors == 0 || c.fats == 0 || c.fat_sectors == 0 {
            return Err(Error::malformed(
                BPB_RSVD_SEC_CNT as u64,
                "reserved sectors, FAT count and FAT size must be non-zero",
            ));
        }
        let root_len = bytes::mul(
            c.root_entries,
            DIR_ENTRY_BYTES,
            BPB_ROOT_ENT_CNT as u64,
            "root directory size",
        )?;
        let root_sectors = root_len.div_ceil(sector);
        let fats = bytes::mul(c.fats, c.fat_sectors, BPB_NUM_FATS as u64, "FAT area size")?;
        let root_start = bytes::add(
            c.reserved_sectors,
            fats,
            BPB_RSVD_SEC_CNT as u64,
            "FAT area end",
        )?;
        let data_start = bytes::add(
            root_start,
            root_sectors,
            BPB_ROOT_ENT_CNT as u64,
            "data area start",
        )?;
        let clusters = c.total_sectors.checked_sub(data_start).ok_or_else(|| {
            Error::malformed(
                BPB_TOT_SEC16 as u64,
                "total sectors end before the data area",
            )
        })? / c.sectors_per_cluster;
        // A BPB with a 16-bit FAT size is FAT12 or FAT16 by its cluster count, never 32.
        let fat_type = if c.fat32 {
            FatType::Fat32
        } else if clusters < FAT16_MIN_CLUSTERS {
            FatType::Fat12
        } else {
            FatType::Fat16
        };
        let spc = c.sectors_per_cluster.get();
        let at = |sectors: u64, field: usize, what: &str| {
            bytes::mul(sectors, sector, field as u64, what)
        };
        Ok(BootSector {
            fat_type,
            oem: *OEM_NAME,
            sector_size: sector,
            sectors_per_cluster: spc,
            reserved_sectors: c.reserved_sectors,
            fats: c.fats,
            root_entries: c.root_entries,
            total_sectors: c.total_sectors,
            fat_sectors: c.fat_sectors,
            hidden_sectors: 0,
            root_cluster: 0,
            volume_id: None,
            cluster_size: at(spc, BPB_SEC_PER_CLUS, "cluster size")?,
            clusters,
            fat_offset: at(c.reserved_sectors, BPB_RSVD_SEC_CNT, "FAT offset")?,
            fat_len: at(c.fat_sectors, BPB_FAT_SZ16, "FAT size")?,
            root_offset: at(root_start, BPB_FAT_SZ16, "root directory offset")?,
            root_len,
            data_offset: at(data_start, BPB_ROOT_ENT_CNT, "data area offset")?,
        })
    }

    /// Read the boot sector at the start of `vol`.
    pub fn parse(vol: &[u8]) -> Result<BootSector> {
        let w = "FAT boot sector";
        let sector = u16_le(vol, BPB_BYTES_PER_SEC as u64, w)?;
        let Some(sector_size) = NonZeroU64::new(u64::from(sector))
            .filter(|s| matches!(s.get(), 512 | 1024 | 2048 | 4096))
        else {
            return Err(Error::malformed(
                BPB_BYTES_PER_SEC as u64,
                format!("bytes per sector {sector} is not 512..4096"),
            ));
        };
        let spc = bytes::u8_at(vol, BPB_SEC_PER_CLUS as u64, w)?;
        let Some(sectors_per_cluster) =
            NonZeroU64::new(u64::from(spc)).filter(|s| s.is_power_of_two())
        else {
            return Err(Error::malformed(
                BPB_SEC_PER_CLUS as u64,
                format!("sectors per cluster {spc} is not a power of two"),
            ));
        };
        let field16 = |at: usize| u16_le(vol, at as u64, w).map(u64::from);
        let field32 = |at: usize| u32_le(vol, at as u64, w).map(u64::from);
        let reserved_sectors = field16(BPB_RSVD_SEC_CNT)?;
        let fats = u64::from(bytes::u8_at(vol, BPB_NUM_FATS as u64, w)?);
        let root_entries = field16(BPB_ROOT_ENT_CNT)?;
        let tot16 = field16(BPB_TOT_SEC16)?;
        let tot32 = field32(BPB_TOT_SEC32)?;
        let fat16 = field16(BPB_FAT_SZ16)?;
        let mut boot = BootSector::new(Counts {
            fat32: fat16 == 0,
            sector_size,
            sectors_per_cluster,
            reserved_sectors,
            fats,
            root_entries,
            total_sectors: if tot16 != 0 { tot16 } else { tot32 },
            fat_sectors: if fat16 != 0 {
                fat16
            } else {
                field32(BPB_FAT_SZ32)?
            },
        })?;
        let ext = boot.ext_block();
        if bytes::u8_at(vol, ext.boot_sig as u64, w)? == EXT_BOOT_SIG {
            boot.volume_id = Some(VolumeId {
                label: bytes::array(vol, ext.vol_lab as u64, w)?,
                serial: u32_le(vol, ext.vol_id as u64, w)?,
            });
        }
        if boot.fat_type == FatType::Fat32 {
            boot.root_cluster = u32_le(vol, BPB_ROOT_CLUS as u64, w)?;
        }
        boot.oem = bytes::array(vol, BS_OEM as u64, w)?;
        boot.hidden_sectors = u32_le(vol, BPB_HIDD_SEC as u64, w)?;
        Ok(boot)
    }

    /// The 512 bytes of the boot sector (the rest of a larger sector is zero).
    pub fn emit(&self) -> Result<[u8; 512]> {
        let fat32 = self.fat_type == FatType::Fat32;
        let mut b = [0u8; 512];
        let mut put = |at: usize, v: &[u8]| {
            if let Some(d) = b.get_mut(at..).and_then(|d| d.get_mut(..v.len())) {
                d.copy_from_slice(v);
            }
        };
        put(BS_JMP, if fat32 { &JMP_FAT32 } else { &JMP_FAT16 });
        put(BS_OEM, &self.oem);
        put(
            BPB_SEC_PER_CLUS,
            &[fits(self.sectors_per_cluster, "sectors per cluster")?],
        );
        put(BPB_NUM_FATS, &[fits(self.fats, "FAT count")?]);
        put(BPB_MEDIA, &[MEDIA_FIXED]);
        let ext = self.ext_block();
        if let Some(id) = self.volume_id {
            put(ext.drv_num, &[DRIVE_FIXED]);
            put(ext.boot_sig, &[EXT_BOOT_SIG]);
            put(ext.vol_lab, &id.label);
            put(
                ext.fil_sys_type,
                if fat32 { FS_TYPE_FAT32 } else { FS_TYPE_FAT16 },
            );
        }
        // Boot code right after the extended block, where the jump lands.
        put(ext.boot_code, &HALT);
        put(SIGNATURE_AT, &BOOT_SIGNATURE);
        put16(
            &mut b,
            BPB_BYTES_PER_SEC,
            fits(self.sector_size, "sector size")?,
        );
        put16(
            &mut b,
            BPB_RSVD_SEC_CNT,
            fits(self.reserved_sectors, "reserved sectors")?,
        );
        put16(
            &mut b,
            BPB_ROOT_ENT_CNT,
            fits(self.root_entries, "root entries")?,
        );
        if !fat32 && self.total_sectors < 0x1_0000 {
            put16(
                &mut b,
                BPB_TOT_SEC16,
                fits(self.total_sectors, "total sectors")?,
            );
        } else {
            put32(
                &mut b,
                BPB_TOT_SEC32,
                fits(self.total_sectors, "total sectors")?,
            );
        }
        if fat32 {
            put32(&mut b, BPB_FAT_SZ32, fits(self.fat_sectors, "FAT sectors")?);
            put32(&mut b, BPB_ROOT_CLUS, self.root_cluster);
            put16(&mut b, BPB_FS_INFO, FSINFO_SECTOR);
            put16(&mut b, BPB_BK_BOOT_SEC, BACKUP_BOOT_SECTOR);
        } else {
            put16(&mut b, BPB_FAT_SZ16, fits(self.fat_sectors, "FAT sectors")?);
        }
        put16(&mut b, BPB_SEC_PER_TRK, SECTORS_PER_TRACK);
        put16(&mut b, BPB_NUM_HEADS, HEADS);
        put32(&mut b, BPB_HIDD_SEC, self.hidden_sectors);
        if let Some(id) = self.volume_id {
            put32(&mut b, ext.vol_id, id.serial);
        }
        Ok(b)
    }

    /// Offset of the extended block (drive number, signature, id, label, type).
    fn ext_block(&self) -> &'static ExtBlock {
        if self.fat_type == FatType::Fat32 {
            &EXT32
        } else {
            &EXT16
        }
    }

    /// Byte offset of cluster `c`, or None outside the data area.
    pub fn cluster_offset(&self, c: u64) -> Option<u64> {
        let idx = c.checked_sub(2).filter(|&i| i < self.clusters)?;
        idx.checked_mul(self.cluster_size)?
            .checked_add(self.data_offset)
    }

    /// Byte offset of each FAT copy.
    pub fn fat_offsets(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.fats).map_while(|i| i.checked_mul(self.fat_len)?.checked_add(self.fat_offset))
    }
}

/// A BPB count as its narrower on-disk field; the writer's geometry keeps every one in
/// range, so a failure is a bug, not a large input.
pub(super) fn fits<T: TryFrom<u64>>(v: u64, what: &str) -> Result<T> {
    T::try_from(v).map_err(|_| Error::invalid(format!("FAT writer: {what} {v} does not fit")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_emitted_parses_back_the_same() {
        for (fat32, sector, spc, reserved, fat_sectors, root_entries, total) in [
            (true, 512, 8, 32, 1024, 0, 1 << 20),
            (false, 4096, 1, 1, 16, 512, 20_000),
            (false, 512, 4, 4, 200, 512, 100_000),
        ] {
            let mut boot = BootSector::new(Counts {
                fat32,
                sector_size: NonZeroU64::new(sector).unwrap(),
                sectors_per_cluster: NonZeroU64::new(spc).unwrap(),
                reserved_sectors: reserved,
                fats: 2,
                root_entries,
                total_sectors: total,
                fat_sectors,
            })
            .unwrap();
            boot.hidden_sectors = 2048;
            boot.root_cluster = if fat32 { 2 } else { 0 };
            boot.volume_id = Some(VolumeId {
                serial: 0x1234_5678,
                label: *b"EFI        ",
            });
            let mut sector0 = boot.emit().unwrap().to_vec();
            sector0.resize(sector as usize, 0);
            assert_eq!(BootSector::parse(&sector0).unwrap(), boot);
            assert_eq!(boot.fat_offsets().count(), 2);
            assert_eq!(boot.cluster_offset(2), Some(boot.data_offset));
            assert_eq!(boot.cluster_offset(boot.clusters + 2), None);
        }
    }
}
