//! GRUB's legacy-BIOS boot code, built as `grub-mkimage --format i386-pc` builds it
//! and placed as Talos 1.13+ places it (grub/install.go, grub/blocklist.go), from the
//! files of GRUB's i386-pc directory, with no outside tool.
//!
//! ```text
//! core.img = diskboot.img (512 B; blocklist at 0x1F4: start u64, sectors u16, segment u16)
//!          + lzma_decompress.img (compressed size u32 at 0x08, uncompressed size at 0x0C)
//!          + raw LZMA (lc=3 lp=0 pb=2, no header, no end marker) of:
//!              kernel.img's loaded image (its ELF sections at their addresses - 0x9000)
//!              module info {"mimg", offset 12, size}   (include/grub/kernel.h)
//!              {type 0, size} + each module, 4-aligned, dependencies first (moddep.lst)
//!              {type 3, size} + the prefix, NUL-terminated, 4-aligned
//! ```
//! util/mkimage.c, util/grub-mkimagexx.c and util/resolve.c (GRUB 2.06 to 2.14) define
//! this layout; the LZMA encoder differs from GRUB's, so the compressed bytes do too.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use lzma_rust2::{LzmaOptions, LzmaReader, LzmaWriter};
use sha2::{Digest, Sha256};

use crate::bytes::{self, u32_le};
use crate::error::{Error, Result};

/// Talos's module list for the i386-pc core.img (grub/install.go: the shared list,
/// then `biosdisk part_msdos`).
pub const MODULES: &[&str] = &[
    "part_gpt",
    "ext2",
    "fat",
    "xfs",
    "normal",
    "configfile",
    "linux",
    "boot",
    "search",
    "search_fs_uuid",
    "search_fs_file",
    "ls",
    "cat",
    "echo",
    "test",
    "help",
    "reboot",
    "halt",
    "all_video",
    "biosdisk",
    "part_msdos",
];

/// Talos's prefix: grub.cfg on partition 3, BOOT.
pub const PREFIX: &str = "(hd0,gpt3)/grub";

/// Offsets and limits from GRUB's headers.
mod raw {
    /// include/grub/i386/pc/boot.h
    pub const KERNEL_SECTOR: usize = 0x5c;
    pub const DRIVE_CHECK: usize = 0x66;
    pub const MBR_CODE: usize = 446;
    pub const SECTOR: usize = 512;
    /// diskboot.img's blocklist: start (u64), sectors (u16), segment (u16).
    pub const BLOCKLIST_START: usize = 0x1f4;
    pub const BLOCKLIST_LEN: usize = 0x1fc;
    pub const BLOCKLIST_SEGMENT: usize = 0x1fe;
    /// GRUB_BOOT_I386_PC_KERNEL_SEG + 512 / 16.
    pub const KERNEL_SEGMENT: u16 = 0x820;
    /// include/grub/offsets.h: fields of lzma_decompress.img.
    pub const COMPRESSED_SIZE: usize = 0x08;
    pub const UNCOMPRESSED_SIZE: usize = 0x0c;
    pub const LINK_ADDR: u64 = 0x9000;
    pub const MAX_DECOMPRESSOR: usize = 0x9000 - 0x8200;
    /// mkimage's limits: kernel with bss below 0x68000, core.img below 0x78000.
    pub const KERNEL_END: u64 = 0x68000;
    pub const CORE_END: u64 = 0x78000;
    /// include/grub/kernel.h
    pub const MODULE_MAGIC: u32 = 0x676d_696d;
    pub const MODULE_INFO_LEN: u32 = 12;
    pub const OBJ_TYPE_ELF: u32 = 0;
    pub const OBJ_TYPE_PREFIX: u32 = 3;
    /// util/mkimage.c compress_kernel_lzma.
    pub const LZMA_DICT: u32 = 1 << 16;
    pub const LZMA_LC: u32 = 3;
    pub const LZMA_LP: u32 = 0;
    pub const LZMA_PB: u32 = 2;
}

/// A core.img and what went into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreImage {
    /// diskboot.img, the decompressor and the compressed payload, blocklist start
    /// left as diskboot.img has it ([`place`] sets it).
    pub bytes: Vec<u8>,
    /// The modules embedded, in order, dependencies first.
    pub modules: Vec<String>,
    /// The loaded kernel's size (the modules follow it) and its bss.
    pub kernel_size: u32,
    pub bss_size: u32,
    /// Module info, modules and prefix.
    pub total_module_size: u32,
    pub compressed_size: u32,
}

/// The files [`core_img`] and [`place`] read from GRUB's i386-pc directory for
/// `modules`, given its moddep.lst: so a caller reads only those.
pub fn needed_files(moddep: &[u8], modules: &[&str]) -> Result<Vec<String>> {
    let mut files: Vec<String> = [
        "moddep.lst",
        "boot.img",
        "diskboot.img",
        "lzma_decompress.img",
        "kernel.img",
    ]
    .map(String::from)
    .to_vec();
    files.extend(
        resolve(moddep, modules)?
            .into_iter()
            .map(|m| format!("{m}.mod")),
    );
    Ok(files)
}

/// Assemble core.img from GRUB's i386-pc directory (`file` returns a file's bytes by
/// name), embedding `modules` and their dependencies and `prefix`, as `grub-mkimage
/// -O i386-pc -p PREFIX MODULES...` does.
pub fn core_img<'f>(
    file: impl Fn(&str) -> Option<&'f [u8]>,
    modules: &[&str],
    prefix: &str,
) -> Result<CoreImage> {
    let need = |name: &str| -> Result<&'f [u8]> {
        file(name).ok_or_else(|| {
            Error::NotFound(format!("{name} in GRUB's i386-pc directory (--grub-bios)"))
        })
    };
    let resolved = resolve(need("moddep.lst")?, modules)?;
    let objects: Vec<(u32, &[u8])> = resolved
        .iter()
        .map(|m| Ok((raw::OBJ_TYPE_ELF, need(&format!("{m}.mod"))?)))
        .collect::<Result<_>>()?;
    let mut prefix_z = prefix.as_bytes().to_vec();
    prefix_z.push(0);
    let objects: Vec<(u32, &[u8])> = objects
        .into_iter()
        .chain([(raw::OBJ_TYPE_PREFIX, prefix_z.as_slice())])
        .collect();
    let total_module_size = objects
        .iter()
        .try_fold(raw::MODULE_INFO_LEN, |sum, (_, d)| {
            object_len(d).and_then(|n| sum.checked_add(n))
        });
    let total_module_size =
        total_module_size.ok_or_else(|| Error::invalid("the GRUB modules pass 4 GiB"))?;
    let kernel = load_kernel(need("kernel.img")?)?;
    if kernel
        .end
        .checked_add(raw::LINK_ADDR)
        .is_none_or(|e| e > raw::KERNEL_END)
    {
        return Err(Error::invalid(format!(
            "kernel.img with its bss ends past {:#x}: it does not fit below GRUB's stack",
            raw::KERNEL_END
        )));
    }
    let kernel_size = u32::try_from(kernel.image.len())
        .map_err(|_| Error::invalid("kernel.img loads past 4 GiB"))?;
    let mut payload = kernel.image;
    payload.extend(raw::MODULE_MAGIC.to_le_bytes());
    payload.extend(raw::MODULE_INFO_LEN.to_le_bytes());
    payload.extend(total_module_size.to_le_bytes());
    for (kind, data) in &objects {
        let len = object_len(data).unwrap_or(u32::MAX);
        payload.extend(kind.to_le_bytes());
        payload.extend(len.to_le_bytes());
        payload.extend_from_slice(data);
        payload.resize(payload.len().next_multiple_of(4), 0);
    }
    let compressed = lzma(&payload)?;
    let bytes = assemble(
        need("diskboot.img")?,
        need("lzma_decompress.img")?,
        &compressed,
        payload.len(),
    )?;
    Ok(CoreImage {
        bytes,
        modules: resolved,
        kernel_size,
        bss_size: u32::try_from(kernel.end.saturating_sub(u64::from(kernel_size)))
            .unwrap_or(u32::MAX),
        total_module_size,
        compressed_size: u32::try_from(compressed.len()).unwrap_or(u32::MAX),
    })
}

/// An object's length in the module area: its 8-byte header and its data padded to 4.
fn object_len(data: &[u8]) -> Option<u32> {
    u32::try_from(data.len())
        .ok()?
        .checked_next_multiple_of(4)?
        .checked_add(8)
}

/// diskboot.img with its sector count, the decompressor with its sizes, then the
/// compressed payload; with mkimage's size checks.
fn assemble(
    diskboot: &[u8],
    decompressor: &[u8],
    compressed: &[u8],
    uncompressed: usize,
) -> Result<Vec<u8>> {
    if diskboot.len() != raw::SECTOR {
        return Err(Error::invalid(format!(
            "diskboot.img is {} bytes, not 512",
            diskboot.len()
        )));
    }
    if !(raw::UNCOMPRESSED_SIZE + 4..=raw::MAX_DECOMPRESSOR).contains(&decompressor.len()) {
        return Err(Error::invalid(format!(
            "lzma_decompress.img is {} bytes: GRUB's is at most {} bytes",
            decompressor.len(),
            raw::MAX_DECOMPRESSOR
        )));
    }
    let segment = bytes::u16_le(diskboot, raw::BLOCKLIST_SEGMENT as u64, "diskboot.img")?;
    if segment != raw::KERNEL_SEGMENT {
        return Err(Error::malformed(
            raw::BLOCKLIST_SEGMENT as u64,
            format!("diskboot.img loads to segment {segment:#x}, not 0x820"),
        ));
    }
    let core_len = decompressor.len().saturating_add(compressed.len());
    let too_big = || {
        Error::invalid(format!(
            "core.img is too big ({core_len} bytes past GRUB's {:#x})",
            raw::LINK_ADDR
        ))
    };
    if (core_len as u64).saturating_add(raw::LINK_ADDR) > raw::CORE_END {
        return Err(too_big());
    }
    let sectors = u16::try_from(core_len.div_ceil(raw::SECTOR)).map_err(|_| too_big())?;
    let mut out = diskboot.to_vec();
    put(&mut out, raw::BLOCKLIST_LEN, &sectors.to_le_bytes());
    let at = out.len();
    out.extend_from_slice(decompressor);
    let size = |n: usize| u32::try_from(n).map_err(|_| too_big());
    put(
        &mut out,
        at.saturating_add(raw::COMPRESSED_SIZE),
        &size(compressed.len())?.to_le_bytes(),
    );
    put(
        &mut out,
        at.saturating_add(raw::UNCOMPRESSED_SIZE),
        &size(uncompressed)?.to_le_bytes(),
    );
    out.extend_from_slice(compressed);
    Ok(out)
}

/// Overwrite `out[at..]` with `data`, where the caller checked it fits.
fn put(out: &mut [u8], at: usize, data: &[u8]) {
    if let Some(dst) = out.get_mut(at..at.saturating_add(data.len())) {
        dst.copy_from_slice(data);
    }
}

/// GRUB's BIOS boot code for a disk whose BIOS boot partition starts at
/// `bios_first_lba`, patched as Talos patches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosBoot {
    /// core.img, for the start of the BIOS partition; its blocklist reads the rest
    /// of it from `bios_first_lba + 1`.
    pub core_img: Vec<u8>,
    /// boot.img's first 446 bytes, for the MBR; it loads core.img's first sector
    /// from `bios_first_lba`.
    pub boot_code: [u8; raw::MBR_CODE],
}

/// Patch boot.img and core.img for a BIOS partition at `bios_first_lba` (in the
/// image's sectors, as Talos counts them): boot.img's kernel sector (0x5C) and the
/// NOPs over its drive check (0x66, as grub-install does on GPT), and core.img's
/// blocklist start (0x1F4).
pub fn place(core_img: &[u8], boot_img: &[u8], bios_first_lba: u64) -> Result<BiosBoot> {
    if boot_img.len() != raw::SECTOR {
        return Err(Error::invalid(format!(
            "boot.img is {} bytes, not 512",
            boot_img.len()
        )));
    }
    if core_img.len() < raw::SECTOR {
        return Err(Error::invalid("core.img is shorter than its first sector"));
    }
    let mut boot = boot_img.to_vec();
    put(&mut boot, raw::KERNEL_SECTOR, &bios_first_lba.to_le_bytes());
    put(&mut boot, raw::DRIVE_CHECK, &[0x90, 0x90]);
    let mut core = core_img.to_vec();
    let next = bios_first_lba
        .checked_add(1)
        .ok_or_else(|| Error::invalid("the BIOS partition is at the last LBA"))?;
    put(&mut core, raw::BLOCKLIST_START, &next.to_le_bytes());
    Ok(BiosBoot {
        core_img: core,
        boot_code: bytes::array(&boot, 0, "boot.img")?,
    })
}

/// Modules in the order grub-mkimage embeds them (util/resolve.c): each wanted
/// module after its dependencies, dependencies visited last-listed first, the last
/// line for a module winning, each module once.
fn resolve(moddep: &[u8], wanted: &[&str]) -> Result<Vec<String>> {
    let text = std::str::from_utf8(moddep)
        .map_err(|e| Error::malformed(e.valid_up_to() as u64, "moddep.lst is not UTF-8"))?;
    let mut deps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (line, n) in text.lines().zip(1u64..) {
        let (name, list) = line
            .split_once(':')
            .ok_or_else(|| Error::invalid(format!("moddep.lst line {n}: no ':'")))?;
        deps.insert(name, list.split_whitespace().rev().collect());
    }
    let mut added: Vec<String> = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for &want in wanted {
        if want.is_empty() || want.contains(['/', '\\']) || want.contains(char::is_whitespace) {
            return Err(Error::invalid(format!("GRUB module name {want:?}")));
        }
        // Depth-first, post-order, with an explicit stack: moddep.lst is input, and a
        // deep or cyclic one must not exhaust the native stack.
        let mut stack: Vec<(&str, usize)> = vec![(want, 0)];
        let mut on_stack: BTreeSet<&str> = BTreeSet::from([want]);
        while let Some((name, next)) = stack.last_mut() {
            let name: &str = name;
            let dep = deps.get(name).and_then(|d| d.get(*next)).copied();
            *next = next.saturating_add(1);
            match dep {
                Some(d) if done.contains(d) => {}
                Some(d) if on_stack.contains(d) => {
                    return Err(Error::invalid(format!(
                        "moddep.lst: modules {name} and {d} depend on each other"
                    )))
                }
                Some(d) => {
                    on_stack.insert(d);
                    stack.push((d, 0));
                }
                None => {
                    stack.pop();
                    on_stack.remove(name);
                    if done.insert(name) {
                        added.push(name.to_string());
                    }
                }
            }
        }
    }
    Ok(added)
}

/// kernel.img loaded as grub-mkimage loads a non-relocatable i386-pc kernel: its
/// PROGBITS sections copied to their addresses less 0x9000; the image ends where
/// the last data section ends, and `end` where the bss does.
struct LoadedKernel {
    image: Vec<u8>,
    end: u64,
}

const SHT_PROGBITS: u32 = 1;
const SHT_NOBITS: u32 = 8;
const SHF_ALLOC: u32 = 2;
const SHF_EXECINSTR: u32 = 4;

fn load_kernel(elf: &[u8]) -> Result<LoadedKernel> {
    let sections = elf_sections(elf)?;
    let rel = |s: &ElfSection<'_>| {
        u64::from(s.addr)
            .checked_sub(raw::LINK_ADDR)
            .ok_or_else(|| {
                Error::malformed(
                    s.header,
                    format!("kernel.img section at {:#x}, below 0x9000", s.addr),
                )
            })
    };
    let alloc = |s: &ElfSection<'_>| s.kind == SHT_PROGBITS && s.flags & SHF_ALLOC != 0;
    let text = |s: &ElfSection<'_>| alloc(s) && s.flags & SHF_EXECINSTR != 0;
    let mut kernel_size = 0u64;
    // Text first, then data, each ending the image where it ends (mkimage's
    // locate_sections for targets that are not relocatable).
    for s in sections.iter().filter(|s| text(s)) {
        if u64::from(s.addr) != raw::LINK_ADDR {
            return Err(Error::malformed(
                s.header,
                format!("kernel.img text at {:#x}, not at GRUB's 0x9000", s.addr),
            ));
        }
        kernel_size = rel(s)?.saturating_add(u64::from(s.size));
    }
    for s in sections.iter().filter(|s| alloc(s) && !text(s)) {
        kernel_size = rel(s)?.saturating_add(u64::from(s.size));
    }
    let mut end = kernel_size;
    for s in sections.iter().filter(|s| s.kind == SHT_NOBITS) {
        end = rel(s)?.saturating_add(u64::from(s.size));
    }
    if kernel_size.saturating_add(raw::LINK_ADDR) > raw::KERNEL_END {
        return Err(Error::invalid(format!(
            "kernel.img loads {kernel_size} bytes: past GRUB's {:#x}",
            raw::KERNEL_END
        )));
    }
    // Bounded just above by KERNEL_END.
    let mut image = vec![0u8; usize::try_from(kernel_size).unwrap_or(0)];
    for s in sections.iter().filter(|s| alloc(s)) {
        let at = rel(s)?;
        let data = bytes::slice(
            elf,
            u64::from(s.offset),
            u64::from(s.size),
            "kernel.img section",
        )?;
        let dst = usize::try_from(at)
            .ok()
            .and_then(|a| image.get_mut(a..a.checked_add(data.len())?))
            .ok_or_else(|| {
                Error::malformed(s.header, "kernel.img section lies past the loaded image")
            })?;
        dst.copy_from_slice(data);
    }
    Ok(LoadedKernel { image, end })
}

/// One ELF32 section header, with the file offset of the header for errors.
struct ElfSection<'a> {
    header: u64,
    name: &'a [u8],
    kind: u32,
    flags: u32,
    addr: u32,
    offset: u32,
    size: u32,
}

/// The section headers of a little-endian ELF32 file, every read bounded.
fn elf_sections(elf: &[u8]) -> Result<Vec<ElfSection<'_>>> {
    if elf.get(..7) != Some(b"\x7fELF\x01\x01\x01".as_slice()) {
        return Err(Error::malformed(0, "not a little-endian ELF32 file"));
    }
    let shoff = u64::from(u32_le(elf, 0x20, "ELF header")?);
    let entsize = u64::from(bytes::u16_le(elf, 0x2e, "ELF header")?);
    let count = u64::from(bytes::u16_le(elf, 0x30, "ELF header")?);
    let strndx = u64::from(bytes::u16_le(elf, 0x32, "ELF header")?);
    if entsize < 40 {
        return Err(Error::malformed(
            0x2e,
            "ELF section headers shorter than 40 bytes",
        ));
    }
    // Checked once: every header read below lies inside this table.
    let table_len = bytes::mul(entsize, count, 0x30, "ELF section table")?;
    bytes::slice(elf, shoff, table_len, "ELF section table")?;
    let header = |i: u64| shoff.saturating_add(i.saturating_mul(entsize));
    let strtab = if count == 0 {
        &[][..]
    } else {
        let h = header(strndx);
        let off = u64::from(u32_le(elf, h.saturating_add(16), "ELF section header")?);
        let len = u64::from(u32_le(elf, h.saturating_add(20), "ELF section header")?);
        bytes::slice(elf, off, len, "ELF section names")?
    };
    (0..count)
        .map(|i| {
            let h = header(i);
            let field = |at: u64| u32_le(elf, h.saturating_add(at), "ELF section header");
            let name_at = usize::try_from(field(0)?).unwrap_or(usize::MAX);
            let name = strtab.get(name_at..).unwrap_or_default();
            Ok(ElfSection {
                header: h,
                name: name.split(|&b| b == 0).next().unwrap_or_default(),
                kind: field(4)?,
                flags: field(8)?,
                addr: field(12)?,
                offset: field(16)?,
                size: field(20)?,
            })
        })
        .collect()
}

/// The raw LZMA stream grub-mkimage's decompressor reads: lc=3 lp=0 pb=2, a 64 KiB
/// dictionary, no header and no end marker (the size is in the decompressor).
fn lzma(data: &[u8]) -> Result<Vec<u8>> {
    let mut opts = LzmaOptions::with_preset(9);
    opts.dict_size = raw::LZMA_DICT;
    opts.lc = raw::LZMA_LC;
    opts.lp = raw::LZMA_LP;
    opts.pb = raw::LZMA_PB;
    let fail = |e: std::io::Error| Error::invalid(format!("LZMA compression failed: {e}"));
    let mut w = LzmaWriter::new_no_header(Vec::new(), &opts, false).map_err(fail)?;
    w.write_all(data).map_err(fail)?;
    w.finish().map_err(fail)
}

/// What a core.img holds, read back: the blocklist, the sizes, and the decompressed
/// payload's kernel, modules and prefix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CoreInfo {
    pub blocklist_start: u64,
    pub blocklist_sectors: u16,
    pub blocklist_segment: u16,
    pub decompressor_size: u64,
    pub compressed_size: u32,
    pub uncompressed_size: u32,
    pub kernel_size: u32,
    /// Each embedded module's name (its ELF `.modname`), in order.
    pub modules: Vec<String>,
    pub prefix: Option<String>,
    /// SHA-256 of the decompressed payload: equal payloads, equal images but for
    /// the compression.
    pub payload_sha256: String,
}

/// Read a core.img (exactly the file: the compressed payload is its last bytes).
/// Allocation is bounded by GRUB's own limit on what the payload may unpack to.
pub fn read_core(core: &[u8]) -> Result<CoreInfo> {
    let u16_at = |at: usize| bytes::u16_le(core, at as u64, "diskboot.img");
    let dec = |at: usize| {
        u32_le(
            core,
            at.saturating_add(raw::SECTOR) as u64,
            "lzma_decompress.img",
        )
    };
    let compressed_size = dec(raw::COMPRESSED_SIZE)?;
    let uncompressed_size = dec(raw::UNCOMPRESSED_SIZE)?;
    let payload_at = (core.len() as u64)
        .checked_sub(u64::from(compressed_size))
        .filter(|&p| p >= (raw::SECTOR + raw::UNCOMPRESSED_SIZE + 4) as u64)
        .ok_or_else(|| {
            Error::malformed(
                (raw::SECTOR + raw::COMPRESSED_SIZE) as u64,
                "compressed size larger than the core.img",
            )
        })?;
    if u64::from(uncompressed_size) > raw::CORE_END {
        return Err(Error::malformed(
            (raw::SECTOR + raw::UNCOMPRESSED_SIZE) as u64,
            format!(
                "uncompressed size {uncompressed_size} is past GRUB's {:#x}",
                raw::CORE_END
            ),
        ));
    }
    let compressed = core
        .get(usize::try_from(payload_at).unwrap_or(usize::MAX)..)
        .unwrap_or_default();
    let mut payload = Vec::new();
    LzmaReader::new(
        compressed,
        u64::from(uncompressed_size),
        raw::LZMA_LC,
        raw::LZMA_LP,
        raw::LZMA_PB,
        raw::LZMA_DICT,
        None,
    )
    .and_then(|mut r| r.read_to_end(&mut payload))
    .map_err(|e| Error::malformed(payload_at, format!("core.img payload is not LZMA: {e}")))?;
    let (kernel_size, modules, prefix) = read_modules(&payload)?;
    Ok(CoreInfo {
        blocklist_start: bytes::u64_le(core, raw::BLOCKLIST_START as u64, "diskboot.img")?,
        blocklist_sectors: u16_at(raw::BLOCKLIST_LEN)?,
        blocklist_segment: u16_at(raw::BLOCKLIST_SEGMENT)?,
        decompressor_size: payload_at.saturating_sub(raw::SECTOR as u64),
        compressed_size,
        uncompressed_size,
        kernel_size,
        modules,
        prefix,
        payload_sha256: bytes::hex(&Sha256::digest(&payload)),
    })
}

/// The module area of a decompressed payload: found as mkimage leaves it, a module
/// info at a 4-aligned offset whose size runs exactly to the end.
fn read_modules(payload: &[u8]) -> Result<(u32, Vec<String>, Option<String>)> {
    let len = payload.len() as u64;
    let word = |at: u64| u32_le(payload, at, "module info");
    let info = (0..len)
        .step_by(4)
        .find(|&at| {
            word(at).ok() == Some(raw::MODULE_MAGIC)
                && word(at.saturating_add(4)).ok() == Some(raw::MODULE_INFO_LEN)
                && word(at.saturating_add(8))
                    .is_ok_and(|size| at.checked_add(u64::from(size)) == Some(len))
        })
        .ok_or_else(|| Error::malformed(0, "no GRUB module info in the core.img payload"))?;
    let mut modules = Vec::new();
    let mut prefix = None;
    let mut at = info.saturating_add(u64::from(raw::MODULE_INFO_LEN));
    // Each object is at least its 8-byte header: the walk ends.
    while at < len {
        let kind = word(at)?;
        let size = u64::from(word(at.saturating_add(4))?);
        let body = bytes::slice(
            payload,
            at.saturating_add(8),
            size.saturating_sub(8),
            "module",
        )?;
        if size < 8 {
            return Err(Error::malformed(
                at,
                format!("module object of {size} bytes"),
            ));
        }
        match kind {
            raw::OBJ_TYPE_ELF => modules.push(module_name(body).unwrap_or_else(|| "?".into())),
            raw::OBJ_TYPE_PREFIX => {
                prefix = Some(bytes::text(
                    body.split(|&b| b == 0).next().unwrap_or_default(),
                ))
            }
            _ => {}
        }
        at = at.saturating_add(size.next_multiple_of(4));
    }
    let kernel_size = u32::try_from(info).unwrap_or(u32::MAX);
    Ok((kernel_size, modules, prefix))
}

/// A GRUB module's name: its ELF `.modname` section.
fn module_name(elf: &[u8]) -> Option<String> {
    let s = elf_sections(elf)
        .ok()?
        .into_iter()
        .find(|s| s.name == b".modname")?;
    let name = bytes::slice(elf, u64::from(s.offset), u64::from(s.size), ".modname").ok()?;
    Some(bytes::text(
        name.split(|&b| b == 0).next().unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF32 with the given sections (name, type, flags, addr, data).
    fn elf(sections: &[(&str, u32, u32, u32, &[u8])]) -> Vec<u8> {
        let mut names = vec![0u8];
        let mut body = Vec::new();
        let mut headers = vec![[0u8; 40]];
        for (name, kind, flags, addr, data) in sections {
            let mut h = [0u8; 40];
            h[0..4].copy_from_slice(&(names.len() as u32).to_le_bytes());
            names.extend(name.as_bytes());
            names.push(0);
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[8..12].copy_from_slice(&flags.to_le_bytes());
            h[12..16].copy_from_slice(&addr.to_le_bytes());
            h[16..20].copy_from_slice(&((52 + body.len()) as u32).to_le_bytes());
            h[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
            if *kind != SHT_NOBITS {
                body.extend_from_slice(data);
            }
            headers.push(h);
        }
        let mut h = [0u8; 40];
        h[16..20].copy_from_slice(&((52 + body.len()) as u32).to_le_bytes());
        h[20..24].copy_from_slice(&(names.len() as u32).to_le_bytes());
        body.extend(&names);
        headers.push(h);
        let mut e = b"\x7fELF\x01\x01\x01".to_vec();
        e.resize(52, 0);
        e[0x20..0x24].copy_from_slice(&((52 + body.len()) as u32).to_le_bytes());
        e[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
        e[0x30..0x32].copy_from_slice(&(headers.len() as u16).to_le_bytes());
        e[0x32..0x34].copy_from_slice(&((headers.len() - 1) as u16).to_le_bytes());
        e.extend(body);
        e.extend(headers.concat());
        e
    }

    fn module(name: &str) -> Vec<u8> {
        elf(&[(
            ".modname",
            SHT_PROGBITS,
            0,
            0,
            format!("{name}\0").as_bytes(),
        )])
    }

    fn grub_dir() -> BTreeMap<String, Vec<u8>> {
        let mut d = BTreeMap::new();
        let kernel = elf(&[
            (
                ".text",
                SHT_PROGBITS,
                SHF_ALLOC | SHF_EXECINSTR,
                0x9000,
                &[0xc3; 0x31],
            ),
            (".data", SHT_PROGBITS, SHF_ALLOC, 0x9034, b"data"),
            (".bss", SHT_NOBITS, SHF_ALLOC, 0x9040, &[0; 0x100]),
        ]);
        d.insert("kernel.img".into(), kernel);
        let mut diskboot = vec![0u8; 512];
        diskboot[0x1f4] = 2;
        diskboot[0x1fe..].copy_from_slice(&0x820u16.to_le_bytes());
        d.insert("diskboot.img".into(), diskboot);
        d.insert("lzma_decompress.img".into(), vec![0xea; 0x40]);
        d.insert("boot.img".into(), vec![0x33; 512]);
        d.insert(
            "moddep.lst".into(),
            b"a: c b\nb: c\nc:\nd: a\nd: b\n".to_vec(),
        );
        for m in ["a", "b", "c", "d"] {
            d.insert(format!("{m}.mod"), module(m));
        }
        d
    }

    #[test]
    fn resolves_modules_as_grub_does() {
        let dep = b"a: c b\nb: c\nc:\nd: a\nd: b\n";
        assert_eq!(resolve(dep, &["a"]).unwrap(), ["c", "b", "a"]);
        // The last line for d wins; a module already added is not added again.
        assert_eq!(
            resolve(dep, &["d", "a", "x"]).unwrap(),
            ["c", "b", "d", "a", "x"]
        );
        assert!(resolve(b"a: b\nb: a\n", &["a"]).is_err());
        assert!(resolve(b"nocolon\n", &["a"]).is_err());
        assert!(resolve(b"", &["../a"]).is_err());
        // A long chain is resolved without recursion.
        let chain: String = (0..20_000).map(|i| format!("m{i}: m{}\n", i + 1)).collect();
        assert_eq!(resolve(chain.as_bytes(), &["m0"]).unwrap().len(), 20_001);
        assert_eq!(
            needed_files(dep, &["b"]).unwrap()[5..],
            ["c.mod".to_string(), "b.mod".to_string()]
        );
    }

    #[test]
    fn builds_and_reads_back_a_core_img() {
        let d = grub_dir();
        let get = |n: &str| d.get(n).map(Vec::as_slice);
        let core = core_img(get, &["a", "d"], PREFIX).unwrap();
        assert_eq!(core.modules, ["c", "b", "a", "d"]);
        assert_eq!(core.kernel_size, 0x38);
        assert_eq!(core.bss_size, 0x108);
        let module_len = module("a").len().next_multiple_of(4) as u32 + 8;
        let prefix_len = (PREFIX.len() as u32 + 1).next_multiple_of(4) + 8;
        assert_eq!(core.total_module_size, 12 + 4 * module_len + prefix_len);
        let b = &core.bytes;
        assert_eq!(
            b[0x1fc..0x1fe],
            (((0x40 + core.compressed_size as usize).div_ceil(512)) as u16).to_le_bytes()
        );
        assert_eq!(b[512 + 8..512 + 12], core.compressed_size.to_le_bytes());
        assert_eq!(
            b[512 + 12..512 + 16],
            (core.kernel_size + core.total_module_size).to_le_bytes()
        );
        let info = read_core(b).unwrap();
        assert_eq!(info.modules, ["c", "b", "a", "d"]);
        assert_eq!(info.prefix.as_deref(), Some(PREFIX));
        assert_eq!((info.kernel_size, info.decompressor_size), (0x38, 0x40));
        assert_eq!(info.blocklist_start, 2);

        let placed = place(b, get("boot.img").unwrap(), 4_304_896).unwrap();
        assert_eq!(placed.boot_code[0x5c..0x64], 4_304_896u64.to_le_bytes());
        assert_eq!(placed.boot_code[0x66..0x68], [0x90, 0x90]);
        assert_eq!(placed.boot_code[0x68], 0x33);
        assert_eq!(placed.core_img[0x1f4..0x1fc], 4_304_897u64.to_le_bytes());
        assert_eq!(placed.core_img[0x1fc..], b[0x1fc..]);
        assert_eq!(
            read_core(&placed.core_img).unwrap().blocklist_start,
            4_304_897
        );
    }

    #[test]
    fn refuses_broken_grub_files() {
        let d = grub_dir();
        let with = |name: &str, data: Vec<u8>| {
            let mut d = d.clone();
            d.insert(name.into(), data);
            let get = |n: &str| d.get(n).map(Vec::as_slice);
            core_img(get, &["a"], PREFIX).map(|_| ())
        };
        assert!(with("diskboot.img", vec![0; 511]).is_err());
        assert!(with("diskboot.img", vec![0; 512]).is_err());
        assert!(with("lzma_decompress.img", vec![0; 0xe01]).is_err());
        assert!(with("kernel.img", b"MZ".to_vec()).is_err());
        let low = elf(&[(".text", SHT_PROGBITS, 6, 0x8000, b"x")]);
        assert!(with("kernel.img", low).is_err());
        let huge = elf(&[
            (".text", SHT_PROGBITS, 6, 0x9000, b"x"),
            (".bss", SHT_NOBITS, 2, 0x70000, &[]),
        ]);
        assert!(with("kernel.img", huge).is_err());
        let get = |n: &str| d.get(n).map(Vec::as_slice);
        assert!(core_img(get, &["missing/x"], PREFIX).is_err());
        let no_mod = |n: &str| {
            if n == "c.mod" {
                None
            } else {
                d.get(n).map(Vec::as_slice)
            }
        };
        let e = core_img(no_mod, &["a"], PREFIX).unwrap_err().to_string();
        assert!(e.contains("c.mod"), "{e}");
        assert!(place(&[0; 600], &[0; 100], 1).is_err());
        assert!(place(&[0; 100], &[0; 512], 1).is_err());
        assert!(place(&[0; 600], &[0; 512], u64::MAX).is_err());
    }

    #[test]
    fn hostile_core_and_elf_do_not_panic() {
        let d = grub_dir();
        let get = |n: &str| d.get(n).map(Vec::as_slice);
        let good = core_img(get, &["a"], PREFIX).unwrap().bytes;
        for cut in [0, 100, 512, 530, good.len() - 1] {
            let _ = read_core(&good[..cut]);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..200 {
            let mut b = good.clone();
            for _ in 0..1 + round % 8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % b.len();
                b[at] = (x >> 32) as u8;
            }
            let _ = read_core(&b);
            let mut e = get("kernel.img").unwrap().to_vec();
            let at = (x as usize) % e.len();
            e[at] ^= (x >> 40) as u8;
            let _ = load_kernel(&e);
            let _ = elf_sections(&e);
        }
    }
}
