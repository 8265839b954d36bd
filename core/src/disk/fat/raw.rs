//! FAT on-disk layout (Microsoft "FAT: General Overview of On-Disk Format" 1.03):
//! offsets and constants only; the writer and the reader use these.

// BIOS parameter block, common part.
pub const BS_JMP: usize = 0;
pub const BS_OEM: usize = 3;
pub const BPB_BYTES_PER_SEC: usize = 11;
pub const BPB_SEC_PER_CLUS: usize = 13;
pub const BPB_RSVD_SEC_CNT: usize = 14;
pub const BPB_NUM_FATS: usize = 16;
pub const BPB_ROOT_ENT_CNT: usize = 17;
pub const BPB_TOT_SEC16: usize = 19;
pub const BPB_MEDIA: usize = 21;
pub const BPB_FAT_SZ16: usize = 22;
pub const BPB_SEC_PER_TRK: usize = 24;
pub const BPB_NUM_HEADS: usize = 26;
pub const BPB_HIDD_SEC: usize = 28;
pub const BPB_TOT_SEC32: usize = 32;
// FAT32 extension.
pub const BPB_FAT_SZ32: usize = 36;
pub const BPB_EXT_FLAGS: usize = 40;
pub const BPB_ROOT_CLUS: usize = 44;
pub const BPB_FS_INFO: usize = 48;
pub const BPB_BK_BOOT_SEC: usize = 50;
/// Where the extended block's fields lie (drive number, signature, volume id and
/// label, type); the boot code follows it.
pub struct ExtBlock {
    pub drv_num: usize,
    pub boot_sig: usize,
    pub vol_id: usize,
    pub vol_lab: usize,
    pub fil_sys_type: usize,
    pub boot_code: usize,
}
/// The extended block at 36 on FAT12/16 ...
pub const EXT16: ExtBlock = ExtBlock {
    drv_num: 36,
    boot_sig: 38,
    vol_id: 39,
    vol_lab: 43,
    fil_sys_type: 54,
    boot_code: 62,
};
/// ... and at 64 on FAT32.
pub const EXT32: ExtBlock = ExtBlock {
    drv_num: 64,
    boot_sig: 66,
    vol_id: 67,
    vol_lab: 71,
    fil_sys_type: 82,
    boot_code: 90,
};
pub const SIGNATURE_AT: usize = 510;

pub const MEDIA_FIXED: u8 = 0xf8;
pub const NUM_FATS: u8 = 2;
pub const EXT_BOOT_SIG: u8 = 0x29;
pub const BOOT_SIGNATURE: [u8; 2] = [0x55, 0xaa];
/// What the writer puts in the fields firmware ignores but other tools expect.
pub const OEM_NAME: &[u8; 8] = b"MSWIN4.1";
pub const DRIVE_FIXED: u8 = 0x80;
pub const SECTORS_PER_TRACK: u16 = 63;
pub const HEADS: u16 = 255;
pub const FS_TYPE_FAT16: &[u8; 8] = b"FAT16   ";
pub const FS_TYPE_FAT32: &[u8; 8] = b"FAT32   ";
pub const NO_LABEL: &[u8; 11] = b"NO NAME    ";
/// The jump over the BPB to the boot code, which follows the extended block.
pub const JMP_FAT16: [u8; 3] = [0xeb, 0x3c, 0x90];
pub const JMP_FAT32: [u8; 3] = [0xeb, 0x58, 0x90];
/// Boot code that halts forever if a BIOS ever jumps here (cli; hlt; jmp $-1).
pub const HALT: [u8; 4] = [0xfa, 0xf4, 0xeb, 0xfd];

// FSInfo sector (FAT32).
pub const FSI_LEAD_SIG: u32 = 0x4161_5252;
pub const FSI_STRUC_SIG: u32 = 0x6141_7272;
pub const FSI_TRAIL_SIG: u32 = 0xaa55_0000;
pub const FSI_STRUC_AT: usize = 484;
pub const FSI_FREE_COUNT: usize = 488;
pub const FSI_NXT_FREE: usize = 492;
pub const FSI_TRAIL_AT: usize = 508;
pub const FSINFO_SECTOR: u16 = 1;
pub const BACKUP_BOOT_SECTOR: u16 = 6;

// Cluster-count limits that decide the FAT type (the spec's only rule for it).
pub const FAT16_MIN_CLUSTERS: u64 = 4085;
pub const FAT32_MIN_CLUSTERS: u64 = 65525;
pub const FAT32_MAX_CLUSTERS: u64 = 0x0fff_fff5;

// FAT entry values.
pub const FAT32_EOC: u32 = 0x0fff_ffff;
pub const FAT16_EOC: u32 = 0xffff;
pub const FAT32_MASK: u32 = 0x0fff_ffff;

// Directory entries.
pub const DIR_ENTRY_SIZE: usize = 32;
/// The same, for arithmetic on volume offsets.
pub const DIR_ENTRY_BYTES: u64 = DIR_ENTRY_SIZE as u64;
pub const D_NAME: usize = 0;
pub const D_ATTR: usize = 11;
pub const D_NTRES: usize = 12;
pub const D_CRT_TIME: usize = 14;
pub const D_CRT_DATE: usize = 16;
pub const D_LST_ACC_DATE: usize = 18;
pub const D_FST_CLUS_HI: usize = 20;
pub const D_WRT_TIME: usize = 22;
pub const D_WRT_DATE: usize = 24;
pub const D_FST_CLUS_LO: usize = 26;
pub const D_FILE_SIZE: usize = 28;

pub const ATTR_READ_ONLY: u8 = 0x01;
pub const ATTR_HIDDEN: u8 = 0x02;
pub const ATTR_SYSTEM: u8 = 0x04;
pub const ATTR_VOLUME_ID: u8 = 0x08;
pub const ATTR_DIRECTORY: u8 = 0x10;
pub const ATTR_ARCHIVE: u8 = 0x20;
pub const ATTR_LONG_NAME: u8 = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME_ID;
pub const ATTR_LONG_NAME_MASK: u8 = 0x3f;
pub const ENTRY_FREE: u8 = 0xe5;
pub const ENTRY_END: u8 = 0x00;

// Long-name entries.
pub const LFN_LAST: u8 = 0x40;
pub const LFN_CHARS: usize = 13;
pub const LFN_MAX_UNITS: usize = 255;
/// UTF-16 unit positions within a long-name entry.
pub const LFN_UNIT_OFFSETS: [usize; LFN_CHARS] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
pub const LFN_CHECKSUM: usize = 13;

/// Characters allowed in a short (8.3) name besides A-Z and 0-9.
pub const SHORT_NAME_EXTRA: &[u8] = b"$%'-_@~`!(){}^#&";
/// Characters a long name may not contain.
pub const LONG_NAME_FORBIDDEN: &str = "\"*/:<>?\\|";
