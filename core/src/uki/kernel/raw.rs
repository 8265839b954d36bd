//! The layouts of the Linux boot images that ukitool recognises: offsets and magics,
//! apart from the code that reads them.

/// x86 bzImage: the boot-protocol setup header (Documentation/arch/x86/boot.rst).
pub const HDRS_OFFSET: u64 = 0x202;
pub const HDRS_MAGIC: &[u8; 4] = b"HdrS";
/// `version`: the boot protocol, major in the high byte.
pub const X86_VERSION_OFFSET: u64 = 0x206;
/// `kernel_version`: an offset from 0x200 to the version string (protocol 2.00+).
pub const X86_KERNEL_VERSION_OFFSET: u64 = 0x20e;
/// `kernel_version` counts from the setup header's start.
pub const X86_SETUP_BASE: u64 = 0x200;
/// `init_size`: the linear memory the kernel needs to boot (protocol 2.10+).
pub const X86_INIT_SIZE_OFFSET: u64 = 0x260;

/// arm64, riscv64 and loongarch64 `Image` files all start with a 64-byte header whose
/// `image_size` (the effective image size, little endian) is at 0x10 and whose magic
/// is at 0x38, before the PE header's offset at 0x3c
/// (Documentation/arch/arm64/booting.rst, riscv/boot-image-header.rst,
/// loongarch/booting.rst).
pub const IMAGE_SIZE_OFFSET: u64 = 0x10;
pub const IMAGE_MAGIC_OFFSET: u64 = 0x38;
/// `ARM\x64`.
pub const ARM64_MAGIC: &[u8; 4] = b"ARMd";
/// `RSC\x05` (magic2; the deprecated `RISCV\0\0\0` sits at 0x30).
pub const RISCV_MAGIC: &[u8; 4] = b"RSC\x05";
/// LINUX_PE_MAGIC (include/linux/pe.h), 0x818223cd little endian: loongarch64's
/// Image, and every EFI zboot image.
pub const LINUX_PE_MAGIC: &[u8; 4] = &[0xcd, 0x23, 0x82, 0x81];

/// EFI zboot (drivers/firmware/efi/libstub/zboot-header.S): "MZ", then `zimg` at 4,
/// the payload's offset and size (u32, from the file's start; the size leaves out
/// the 4-byte uncompressed size some methods append), 8 reserved bytes, and the
/// compression method's name, NUL-terminated, up to the magic at 0x38.
pub const ZIMG_OFFSET: u64 = 4;
pub const ZIMG_MAGIC: &[u8; 4] = b"zimg";
pub const ZBOOT_PAYLOAD_OFFSET: u64 = 8;
pub const ZBOOT_PAYLOAD_SIZE: u64 = 0xc;
pub const ZBOOT_COMPRESSION_OFFSET: u64 = 0x18;
pub const ZBOOT_COMPRESSION_LEN: u64 = 0x20;

/// The banner every kernel carries (init/version.c, `linux_banner`):
/// "Linux version <uname -r> (<builder>) (<compiler>) <#build> ...\n".
pub const BANNER: &[u8] = b"Linux version ";
