//! PE/COFF on-disk layout (Microsoft PE/COFF spec). The structures are the `object`
//! crate's (`object::pe`, viewed in place with `object::pod`); the sizes and offsets
//! below come from them. Then the tables that name flags and values in reports.

use std::mem::{offset_of, size_of};

use object::pe;
pub use object::pe::{
    ImageDataDirectory, ImageDosHeader, ImageFileHeader, ImageOptionalHeader32,
    ImageOptionalHeader64, ImageSectionHeader,
};

pub const DOS_MAGIC: [u8; 2] = pe::IMAGE_DOS_SIGNATURE.to_le_bytes();
pub const E_LFANEW_OFFSET: u64 = offset_of!(ImageDosHeader, e_lfanew) as u64;
pub const PE_SIGNATURE: [u8; 4] = pe::IMAGE_NT_SIGNATURE.to_le_bytes();
pub const COFF_HEADER_SIZE: u64 = size_of::<ImageFileHeader>() as u64;
pub const SECTION_HEADER_SIZE: u64 = size_of::<ImageSectionHeader>() as u64;
pub const SYMBOL_SIZE: u64 = pe::IMAGE_SIZEOF_SYMBOL as u64;

pub const OPT_MAGIC_PE32: u16 = pe::IMAGE_NT_OPTIONAL_HDR32_MAGIC;
pub const OPT_MAGIC_PE32_PLUS: u16 = pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC;
/// Where the data directories start inside the optional header: after its fixed part.
pub const OPT_DATA_DIRS_PE32: u64 = size_of::<ImageOptionalHeader32>() as u64;
pub const OPT_DATA_DIRS_PE32_PLUS: u64 = size_of::<ImageOptionalHeader64>() as u64;

/// Offsets of optional header fields that the builder patches and the image hash
/// skips. PE32 and PE32+ differ only in ImageBase (and BaseOfData) before these and in
/// the stack and heap sizes after them, so one offset serves both.
macro_rules! opt_field {
    ($($name:ident = $field:ident),* $(,)?) => {$(
        pub const $name: u64 = offset_of!(ImageOptionalHeader64, $field) as u64;
        const _: () = assert!(
            offset_of!(ImageOptionalHeader32, $field) == offset_of!(ImageOptionalHeader64, $field)
        );
    )*};
}
opt_field!(
    OPT_SIZE_OF_CODE = size_of_code,
    OPT_SIZE_OF_INITIALIZED_DATA = size_of_initialized_data,
    OPT_SECTION_ALIGNMENT = section_alignment,
    OPT_SIZE_OF_IMAGE = size_of_image,
    OPT_SIZE_OF_HEADERS = size_of_headers,
    OPT_CHECKSUM = check_sum,
    OPT_DLL_CHARACTERISTICS = dll_characteristics,
);

pub const DATA_DIRECTORY_SIZE: u64 = size_of::<ImageDataDirectory>() as u64;
pub const DIR_SECURITY: usize = pe::IMAGE_DIRECTORY_ENTRY_SECURITY;
/// The debug directory, whose entries hold file offsets.
pub const DIR_DEBUG: usize = pe::IMAGE_DIRECTORY_ENTRY_DEBUG;
/// Offset of the security entry from the start of the data directories.
pub const SECURITY_DIR_ENTRY: u64 = DIR_SECURITY as u64 * DATA_DIRECTORY_SIZE;

pub const DATA_DIRECTORY_NAMES: [&str; 16] = [
    "export",
    "import",
    "resource",
    "exception",
    "security",
    "basereloc",
    "debug",
    "architecture",
    "globalptr",
    "tls",
    "load_config",
    "bound_import",
    "iat",
    "delay_import",
    "clr_runtime",
    "reserved",
];

pub const MACHINES: &[(u16, &str)] = &[
    (0x014c, "i386"),
    (0x8664, "x86_64"),
    (0xaa64, "arm64"),
    (0x01c2, "arm-thumb"),
    (0x01c4, "armv7"),
    (0x5032, "riscv32"),
    (0x5064, "riscv64"),
    (0x5128, "riscv128"),
    (0x6232, "loongarch32"),
    (0x6264, "loongarch64"),
    (0x0ebc, "ebc"),
];

/// IMAGE_SUBSYSTEM_EFI_APPLICATION: what firmware boots.
pub const SUBSYSTEM_EFI_APPLICATION: u16 = 10;

pub const SUBSYSTEMS: &[(u16, &str)] = &[
    (1, "native"),
    (2, "windows_gui"),
    (3, "windows_cui"),
    (10, "efi_application"),
    (11, "efi_boot_service_driver"),
    (12, "efi_runtime_driver"),
    (13, "efi_rom"),
];

pub const DLL_CHARACTERISTICS: &[(u16, &str)] = &[
    (0x0020, "HIGH_ENTROPY_VA"),
    (0x0040, "DYNAMIC_BASE"),
    (0x0080, "FORCE_INTEGRITY"),
    (0x0100, "NX_COMPAT"),
    (0x0200, "NO_ISOLATION"),
    (0x0400, "NO_SEH"),
    (0x0800, "NO_BIND"),
    (0x1000, "APPCONTAINER"),
    (0x2000, "WDM_DRIVER"),
    (0x4000, "GUARD_CF"),
    (0x8000, "TERMINAL_SERVER_AWARE"),
];
pub const DLLCHAR_NX_COMPAT: u16 = 0x0100;

pub const FILE_CHARACTERISTICS: &[(u16, &str)] = &[
    (0x0001, "RELOCS_STRIPPED"),
    (0x0002, "EXECUTABLE_IMAGE"),
    (0x0004, "LINE_NUMS_STRIPPED"),
    (0x0008, "LOCAL_SYMS_STRIPPED"),
    (0x0020, "LARGE_ADDRESS_AWARE"),
    (0x0100, "32BIT_MACHINE"),
    (0x0200, "DEBUG_STRIPPED"),
    (0x2000, "DLL"),
];

pub const SCN_CNT_CODE: u32 = 0x0000_0020;
pub const SCN_CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
pub const SCN_CNT_UNINITIALIZED_DATA: u32 = 0x0000_0080;
pub const SCN_MEM_DISCARDABLE: u32 = 0x0200_0000;
pub const SCN_MEM_EXECUTE: u32 = 0x2000_0000;
pub const SCN_MEM_READ: u32 = 0x4000_0000;
pub const SCN_MEM_WRITE: u32 = 0x8000_0000;

pub const SECTION_CHARACTERISTICS: &[(u32, &str)] = &[
    (0x0000_0008, "TYPE_NO_PAD"),
    (SCN_CNT_CODE, "CNT_CODE"),
    (SCN_CNT_INITIALIZED_DATA, "CNT_INITIALIZED_DATA"),
    (SCN_CNT_UNINITIALIZED_DATA, "CNT_UNINITIALIZED_DATA"),
    (0x0000_0200, "LNK_INFO"),
    (0x0000_0800, "LNK_REMOVE"),
    (0x0000_1000, "LNK_COMDAT"),
    (0x0000_8000, "GPREL"),
    (0x0100_0000, "LNK_NRELOC_OVFL"),
    (SCN_MEM_DISCARDABLE, "MEM_DISCARDABLE"),
    (0x0400_0000, "MEM_NOT_CACHED"),
    (0x0800_0000, "MEM_NOT_PAGED"),
    (0x1000_0000, "MEM_SHARED"),
    (SCN_MEM_EXECUTE, "MEM_EXECUTE"),
    (SCN_MEM_READ, "MEM_READ"),
    (SCN_MEM_WRITE, "MEM_WRITE"),
];

/// Names of the set bits of `value` from a (bit, name) table; unknown bits as hex.
pub fn flag_names<T>(value: T, table: &[(T, &str)]) -> Vec<String>
where
    T: Copy
        + PartialEq
        + Default
        + std::ops::BitAnd<Output = T>
        + std::ops::Not<Output = T>
        + std::ops::BitAndAssign
        + std::fmt::LowerHex,
{
    let mut rest = value;
    let mut out = Vec::new();
    for &(bit, name) in table {
        if value & bit == bit && bit != T::default() {
            out.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != T::default() {
        out.push(format!("{rest:#x}"));
    }
    out
}

pub fn lookup<T: PartialEq + Copy>(value: T, table: &[(T, &'static str)]) -> Option<&'static str> {
    table.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}
