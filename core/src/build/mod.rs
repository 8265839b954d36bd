//! Assembling UKIs and addons from a stub, a kernel and parts (ukify-compatible inputs).
//!
//! [`plan`] resolves a [`BuildSpec`] into the list of sections to add (names, flags and
//! borrowed payload chunks) without copying any payload; [`Plan::write`] lays them out
//! after the stub and produces the image in one preallocated buffer. [`build`] does both.
//! The split lets a caller measure the planned sections (PCR 11) and sign a `.pcrsig`
//! before the image is written, with no second build.
//!
//! Layout rules come from the PE/COFF spec and ukify (see
//! `shared/reference/uki-format.md`): new sections follow the stub's, each rounded up to
//! SectionAlignment in memory and FileAlignment on disk, VirtualSize is the exact payload
//! length, and the headers (sizes, CheckSum, NX_COMPAT, symbol table) are fixed up.

pub mod config;
pub mod join;
mod layout;

use std::borrow::Cow;

use crate::bytes::{self, slice, u16_le};
use crate::error::{Error, Result};
use crate::pe::raw::{SCN_CNT_CODE, SCN_CNT_INITIALIZED_DATA, SCN_MEM_READ};
use crate::pe::PeFile;
use crate::uki;

pub use layout::pe_checksum;

/// Section order as ukify 262 writes it; `.sbat`, the profile blocks and `.pcrsig`
/// follow, and `--section` extras go after these and before `.sbat`.
pub const UKIFY_ORDER: [&str; 12] = [
    ".osrel", ".cmdline", ".dtb", ".dtbauto", ".hwids", ".uname", ".splash", ".pcrpkey", ".linux",
    ".initrd", ".efifw", ".ucode",
];

/// The SBAT header line; it must come first and exactly once (shim's SBAT.md).
const SBAT_HEADER: &str =
    "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md";
/// ukify's default component lines when the user gives no `--sbat`.
const SBAT_DEFAULT_UKI: &str =
    "uki,1,UKI,uki,1,https://uapi-group.org/specifications/specs/unified_kernel_image/";
const SBAT_DEFAULT_ADDON: &str = "uki-addon,1,UKI Addon,addon,1,https://www.freedesktop.org/software/systemd/man/latest/systemd-stub.html";

/// One named payload, e.g. from `--section NAME:FILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedPart<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

/// A `.profile` block: its ID=/TITLE= text and the sections it owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileSpec<'a> {
    pub text: &'a [u8],
    pub sections: Vec<NamedPart<'a>>,
}

/// Everything a UKI or addon is built from. All inputs are borrowed; nothing is
/// copied until [`Plan::write`]. Field names follow ukify's options.
#[derive(Debug, Clone, Default)]
pub struct BuildSpec<'a> {
    pub stub: &'a [u8],
    /// The kernel; without it an addon is built.
    pub linux: Option<&'a [u8]>,
    /// Concatenated in order into one `.initrd`.
    pub initrds: Vec<&'a [u8]>,
    pub ucode: Option<&'a [u8]>,
    pub cmdline: Option<&'a [u8]>,
    pub os_release: Option<&'a [u8]>,
    /// `None`: read from the kernel's setup header (x86 boot protocol).
    pub uname: Option<&'a [u8]>,
    pub splash: Option<&'a [u8]>,
    pub devicetree: Option<&'a [u8]>,
    pub devicetree_auto: Vec<&'a [u8]>,
    pub hwids: Option<&'a [u8]>,
    pub efifw: Vec<&'a [u8]>,
    pub pcrpkey: Option<&'a [u8]>,
    /// SBAT texts, each starting with the `sbat,1,...` header line; merged with the
    /// stub's and the kernel's. Empty: ukify's default `uki,1,...` line.
    pub sbat: Vec<&'a [u8]>,
    /// Extra `--section NAME:FILE` sections of the base.
    pub sections: Vec<NamedPart<'a>>,
    pub profiles: Vec<ProfileSpec<'a>>,
    /// COFF TimeDateStamp; `None` keeps the stub's.
    pub timestamp: Option<u32>,
}

/// A section to be added: its payload is a list of borrowed (or small owned) chunks
/// written back to back, so `--initrd a --initrd b` is never concatenated in memory.
#[derive(Debug, Clone)]
pub struct PlannedSection<'a> {
    pub name: String,
    pub characteristics: u32,
    pub chunks: Vec<Cow<'a, [u8]>>,
}

impl PlannedSection<'_> {
    pub fn len(&self) -> u64 {
        self.chunks.iter().map(|c| c.len() as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What happens to the stub's own `.sbat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SbatPlacement {
    /// The stub has none: a new section goes after the base sections.
    Append,
    /// Rewritten in place (stub section index): it fits before the next section.
    InPlace(usize),
    /// Too big for its slot: its header is removed, its old bytes zeroed, and the
    /// merged .sbat is appended like a new section (stub section index).
    Moved(usize),
}

/// A resolved build: the stub, the sections to add in order, and header decisions.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    stub: PeFile<'a>,
    /// Base sections after the stub's, in ukify order (without `.sbat`).
    base: Vec<PlannedSection<'a>>,
    /// Merged SBAT text (with its NUL terminator, as ukify writes it).
    sbat: Option<Vec<u8>>,
    sbat_placement: SbatPlacement,
    profiles: Vec<Vec<PlannedSection<'a>>>,
    dll_characteristics: u16,
    timestamp: u32,
}

/// A planned section as measured: name and payload chunks.
pub type MeasuredPart<'p> = (&'p str, Vec<&'p [u8]>);

impl<'a> Plan<'a> {
    /// Is this an addon (no `.linux`)?
    pub fn is_addon(&self) -> bool {
        !self.base.iter().any(|s| s.name == ".linux")
    }

    pub fn profile_count(&self) -> usize {
        self.profiles.len()
    }

    /// The sections systemd-stub would measure for `profile` (base, overridden by the
    /// profile's own sections), in file order. Stub sections other than `.sbat` are
    /// never measured, so only what the build adds is listed.
    pub fn measured_parts(&self, profile: Option<usize>) -> Result<Vec<MeasuredPart<'_>>> {
        let mut out: Vec<MeasuredPart<'_>> = Vec::new();
        for s in &self.base {
            out.push((
                s.name.as_str(),
                s.chunks.iter().map(|c| c.as_ref()).collect(),
            ));
        }
        if let Some(sbat) = &self.sbat {
            out.push((".sbat", vec![sbat.as_slice()]));
        }
        let selected = match (profile, self.profiles.is_empty()) {
            (None, true) | (Some(0), true) => None,
            (None, false) => self.profiles.first(),
            (Some(n), _) => Some(self.profiles.get(n).ok_or_else(|| {
                Error::NotFound(format!(
                    "profile @{n} (the build has {})",
                    self.profiles.len()
                ))
            })?),
        };
        if let Some(block) = selected {
            // A profile's section replaces the base section of the same name.
            for s in block {
                out.retain(|(n, _)| *n != s.name.as_str());
            }
            for s in block {
                out.push((
                    s.name.as_str(),
                    s.chunks.iter().map(|c| c.as_ref()).collect(),
                ));
            }
        }
        Ok(out)
    }

    /// Lay out and write the image. `pcrsig`: none, or one `.pcrsig` payload (no
    /// profiles: appended last), or one per profile (each closes its profile block).
    pub fn write(&self, pcrsig: &[Vec<u8>]) -> Result<Vec<u8>> {
        let expected = if self.profiles.is_empty() {
            1
        } else {
            self.profiles.len()
        };
        if !pcrsig.is_empty() && pcrsig.len() != expected {
            return Err(Error::invalid(format!(
                "{} .pcrsig payloads given, the build needs {expected}",
                pcrsig.len()
            )));
        }
        let mut tail: Vec<PlannedSection<'_>> = Vec::new();
        if let (Some(sbat), SbatPlacement::Append | SbatPlacement::Moved(_)) =
            (&self.sbat, self.sbat_placement)
        {
            tail.push(data_section(".sbat", vec![Cow::Borrowed(sbat.as_slice())]));
        }
        for (i, block) in self.profiles.iter().enumerate() {
            tail.extend(block.iter().cloned());
            if let Some(sig) = pcrsig.get(i).filter(|_| !self.profiles.is_empty()) {
                tail.push(data_section(".pcrsig", vec![Cow::Borrowed(sig.as_slice())]));
            }
        }
        if self.profiles.is_empty() {
            if let Some(sig) = pcrsig.first() {
                tail.push(data_section(".pcrsig", vec![Cow::Borrowed(sig.as_slice())]));
            }
        }
        let new: Vec<&PlannedSection<'_>> = self.base.iter().chain(tail.iter()).collect();
        let (in_place, removed) = match self.sbat_placement {
            SbatPlacement::InPlace(i) => (self.sbat.as_deref().map(|s| (i, s)), None),
            SbatPlacement::Moved(i) => (None, Some(i)),
            SbatPlacement::Append => (None, None),
        };
        layout::write_image(&layout::Layout {
            stub: &self.stub,
            new: &new,
            sbat_in_place: in_place,
            removed_stub_section: removed,
            dll_characteristics: self.dll_characteristics,
            timestamp: self.timestamp,
        })
    }
}

/// Build a UKI (or an addon when `linux` is `None`) into a new buffer.
pub fn build(spec: &BuildSpec<'_>) -> Result<Vec<u8>> {
    plan(spec)?.write(&[])
}

fn data_section<'a>(name: &str, chunks: Vec<Cow<'a, [u8]>>) -> PlannedSection<'a> {
    PlannedSection {
        name: name.to_string(),
        characteristics: if name == ".linux" {
            SCN_MEM_READ | SCN_CNT_CODE
        } else {
            SCN_MEM_READ | SCN_CNT_INITIALIZED_DATA
        },
        chunks,
    }
}

/// Section names are stored in the 8-byte header field: no long `/N` names, since the
/// string table they need is dropped with the symbol table.
pub fn check_section_name(name: &str) -> Result<()> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_graphic());
    if name.is_empty() || name.len() > 8 || !ok_chars || name.starts_with('/') {
        return Err(Error::invalid(format!(
            "section name {name:?} must be 1 to 8 printable ASCII bytes (PE section header name field) and not start with '/'"
        )));
    }
    Ok(())
}

/// Resolve `spec` into a plan: validate every input, merge SBAT, read the uname,
/// decide header flags. No payload is copied.
pub fn plan<'a>(spec: &BuildSpec<'a>) -> Result<Plan<'a>> {
    let stub = checked_stub(spec.stub)?;
    if let Some(k) = spec.linux {
        check_kernel_machine(&stub, k)?;
    }
    let base = base_sections(spec, &stub)?;
    let profiles = profile_blocks(&spec.profiles, &stub)?;
    // SBAT: ukify merges the stub's and the kernel's for a UKI; an addon gets only
    // the given text (ukify: "Addons don't use the stub").
    let mut sources: Vec<&[u8]> = Vec::new();
    if let Some(k) = spec.linux {
        if let Some(s) = stub.section_payload(".sbat") {
            sources.push(s?);
        }
        if let Ok(kpe) = PeFile::parse(k) {
            if let Some(Ok(s)) = kpe.section_payload(".sbat") {
                sources.push(s);
            }
        }
    }
    let default: &[u8] = if spec.linux.is_some() {
        SBAT_DEFAULT_UKI.as_bytes()
    } else {
        SBAT_DEFAULT_ADDON.as_bytes()
    };
    let sbat = merge_sbat(&sources, &spec.sbat, default)?;
    let sbat_placement = place_sbat(&stub, sbat.len() as u64);

    // NX_COMPAT: the UKI must not claim it when the kernel does not support it
    // (systemd #38545); a kernel that is not a PE cannot claim it either.
    let mut dll_characteristics = stub.opt.dll_characteristics;
    if let Some(k) = spec.linux {
        let kernel_nx = PeFile::parse(k).map(|p| p.nx_compat()).unwrap_or(false);
        if !kernel_nx {
            dll_characteristics &= !crate::pe::raw::DLLCHAR_NX_COMPAT;
        }
    }
    Ok(Plan {
        timestamp: spec.timestamp.unwrap_or(stub.coff.time_date_stamp),
        stub,
        base,
        sbat: Some(sbat),
        sbat_placement,
        profiles,
        dll_characteristics,
    })
}

/// An EFI-stub kernel (a PE: x86 bzImage, arm64 `Image` or zboot) must be for the
/// stub's machine: the stub runs the kernel's own EFI entry point, so an arm64 stub
/// with an x86-64 kernel makes a UKI that can never boot. A kernel that is not a PE
/// is left to the stub.
fn check_kernel_machine(stub: &PeFile<'_>, kernel: &[u8]) -> Result<()> {
    let Ok(k) = PeFile::parse(kernel) else {
        return Ok(());
    };
    if k.coff.machine == stub.coff.machine {
        return Ok(());
    }
    let name = |pe: &PeFile<'_>| {
        let m = pe.coff.machine;
        pe.machine_name()
            .map_or_else(|| format!("{m:#06x}"), |n| format!("{m:#06x} ({n})"))
    };
    Err(Error::invalid(format!(
        "the kernel (--linux) is for machine {}, the stub for {}: use the stub of the kernel's architecture",
        name(&k),
        name(stub)
    )))
}

/// The stub, if sections can be added to it: unsigned, and with no long `/N` names.
fn checked_stub(data: &[u8]) -> Result<PeFile<'_>> {
    let stub = PeFile::parse(data).map_err(|e| Error::invalid(format!("stub: {e}")))?;
    if stub.certificate_table().is_some() {
        return Err(Error::invalid(
            "stub is signed: adding sections would invalidate its signature; use the unsigned stub (e.g. linuxx64.efi.stub) and sign the result",
        ));
    }
    if let Some(s) = stub
        .sections
        .iter()
        .find(|s| s.raw_name.first() == Some(&b'/'))
    {
        return Err(Error::Unsupported {
            offset: s.header_offset,
            what: format!(
                "stub section {} has a long /N name, which needs the COFF string table the build drops",
                s.name
            ),
        });
    }
    Ok(stub)
}

/// The base sections in ukify's order, then the `--section` extras; an addon must
/// have one of the parts an addon can carry.
fn base_sections<'a>(spec: &BuildSpec<'a>, stub: &PeFile<'_>) -> Result<Vec<PlannedSection<'a>>> {
    let mut base: Vec<PlannedSection<'a>> = Vec::new();
    fn add<'a>(base: &mut Vec<PlannedSection<'a>>, name: &str, data: Option<&'a [u8]>) {
        if let Some(d) = data.filter(|d| !d.is_empty()) {
            base.push(data_section(name, vec![Cow::Borrowed(d)]));
        }
    }
    if let Some(splash) = spec.splash {
        check_bmp(splash)?;
    }
    let uname: Option<Cow<'a, [u8]>> = match (spec.uname, spec.linux) {
        (Some(u), _) => Some(Cow::Borrowed(u)),
        (None, Some(k)) => kernel_release(k).map(|s| Cow::Owned(s.into_bytes())),
        (None, None) => None,
    };
    add(&mut base, ".osrel", spec.os_release);
    add(&mut base, ".cmdline", spec.cmdline);
    add(&mut base, ".dtb", spec.devicetree);
    for d in &spec.devicetree_auto {
        add(&mut base, ".dtbauto", Some(d));
    }
    add(&mut base, ".hwids", spec.hwids);
    if let Some(u) = uname.filter(|u| !u.is_empty()) {
        base.push(data_section(".uname", vec![u]));
    }
    add(&mut base, ".splash", spec.splash);
    add(&mut base, ".pcrpkey", spec.pcrpkey);
    add(&mut base, ".linux", spec.linux);
    let initrd: Vec<Cow<'a, [u8]>> = spec
        .initrds
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| Cow::Borrowed(*d))
        .collect();
    if !initrd.is_empty() {
        base.push(data_section(".initrd", initrd));
    }
    for f in &spec.efifw {
        add(&mut base, ".efifw", Some(f));
    }
    add(&mut base, ".ucode", spec.ucode);
    for p in &spec.sections {
        check_section_name(p.name)?;
        if p.data.is_empty() {
            return Err(Error::invalid(format!("section {} is empty", p.name)));
        }
        base.push(data_section(p.name, vec![Cow::Borrowed(p.data)]));
    }
    check_block("base", &base, stub)?;

    let addon_payload = |s: &PlannedSection<'_>| uki::ADDON_PAYLOADS.contains(&s.name.as_str());
    if spec.linux.is_none() && !base.iter().any(addon_payload) {
        return Err(Error::invalid(
            "no --linux: an addon is built, and it needs at least one of .cmdline .dtb .dtbauto .ucode .initrd",
        ));
    }
    Ok(base)
}

/// Each profile's block: its `.profile` section, then its own sections in ukify's
/// order.
fn profile_blocks<'a>(
    specs: &[ProfileSpec<'a>],
    stub: &PeFile<'_>,
) -> Result<Vec<Vec<PlannedSection<'a>>>> {
    let mut profiles = Vec::with_capacity(specs.len());
    if specs.len() > 256 {
        return Err(Error::invalid(
            "at most 256 profiles (systemd-stub's limit)",
        ));
    }
    for (i, p) in specs.iter().enumerate() {
        if p.text.is_empty() {
            return Err(Error::invalid(format!(
                "profile @{i}: its .profile text is empty"
            )));
        }
        let mut block = vec![data_section(".profile", vec![Cow::Borrowed(p.text)])];
        let mut own: Vec<PlannedSection<'a>> = Vec::new();
        for s in &p.sections {
            check_section_name(s.name)?;
            if s.data.is_empty() {
                return Err(Error::invalid(format!(
                    "profile @{i}: section {} is empty",
                    s.name
                )));
            }
            if s.name == ".profile" || s.name == ".pcrsig" || s.name == ".sbat" {
                return Err(Error::invalid(format!(
                    "profile @{i}: section {} cannot be given inside a profile",
                    s.name
                )));
            }
            own.push(data_section(s.name, vec![Cow::Borrowed(s.data)]));
        }
        // Within a block, ukify's order; unknown names keep their order, after.
        own.sort_by_key(|s| {
            UKIFY_ORDER
                .iter()
                .position(|n| *n == s.name)
                .unwrap_or(UKIFY_ORDER.len())
        });
        check_block(&format!("profile @{i}"), &own, stub)?;
        block.extend(own);
        profiles.push(block);
    }
    Ok(profiles)
}

/// Names in one block: valid, unique except the repeatable ones, and not already in
/// the stub (ukify: "Not overwriting existing section").
fn check_block(block: &str, sections: &[PlannedSection<'_>], stub: &PeFile<'_>) -> Result<()> {
    for (i, s) in sections.iter().enumerate() {
        check_section_name(&s.name)?;
        if stub.section(&s.name).is_some() {
            return Err(Error::invalid(format!(
                "{block}: the stub already has a {} section",
                s.name
            )));
        }
        if s.name == ".sbat" || s.name == ".pcrsig" || s.name == ".profile" {
            return Err(Error::invalid(format!(
                "{block}: {} is made by the build (use --sbat, --pcr-key, --profile)",
                s.name
            )));
        }
        let dup = sections.iter().take(i).any(|o| o.name == s.name);
        if dup && !uki::repeatable(&s.name) {
            return Err(Error::invalid(format!(
                "{block}: section {} given twice (only .dtbauto and .efifw may repeat)",
                s.name
            )));
        }
    }
    Ok(())
}

/// A splash must be a BMP: "BM" and a header long enough for width, height and depth.
fn check_bmp(data: &[u8]) -> Result<()> {
    if !data.starts_with(b"BM") {
        return Err(Error::invalid(
            "splash is not a BMP image (no \"BM\" signature at offset 0)",
        ));
    }
    bytes::u16_le(data, 28, "BMP header (bits per pixel)")
        .map_err(|e| Error::invalid(format!("splash: {e}")))?;
    Ok(())
}

/// `uname -r` of an arm64/riscv64/loongarch64 `Image`: the release in its
/// `Linux version <release> (` banner, as ukify's `Uname.scrape_generic` finds it.
/// An EFI zboot image is left alone, as ukify leaves it (its banner is compressed).
fn image_release(kernel: &[u8]) -> Option<String> {
    use crate::uki::kernel::{self, Format};
    if kernel::format(kernel) != Some(Format::Image) {
        return None;
    }
    let (banner, _) = kernel::banner(kernel)?;
    let (release, rest) = banner.split_once(' ')?;
    rest.starts_with('(').then(|| release.to_string())
}

/// `uname -r` of an x86 kernel (or an `Image`, [`image_release`]): the first word of the version string that the setup
/// header's kernel_version field points to (Linux boot protocol; ukify's
/// `Uname.scrape_x86`). `None` when the kernel has no such header.
pub fn kernel_release(kernel: &[u8]) -> Option<String> {
    if slice(kernel, 0x202, 4, "setup header magic").ok()? != b"HdrS" {
        return image_release(kernel);
    }
    let ptr = u16_le(kernel, 0x20e, "kernel_version").ok()?;
    if ptr == 0 {
        return None;
    }
    let at = u64::from(ptr) + 0x200;
    let rest = slice(
        kernel,
        at,
        (kernel.len() as u64).checked_sub(at)?,
        "version",
    )
    .ok()?;
    let text = rest.get(..rest.iter().take(512).position(|&b| b == 0)?)?;
    let s = std::str::from_utf8(text).ok()?;
    s.split_whitespace().next().map(str::to_string)
}

/// Merge SBAT texts as ukify's `merge_sbat` does: the `sbat,1,...` header line once
/// and first, then the component lines of every source in order, each text ending in a
/// newline and the whole in a NUL. Sources whose first line is not the header are
/// skipped (ukify prints a warning and skips them too).
pub fn merge_sbat(pe_sections: &[&[u8]], given: &[&[u8]], default: &[u8]) -> Result<Vec<u8>> {
    let mut lines: Vec<String> = Vec::new();
    fn take(lines: &mut Vec<String>, text: &[u8], from_user: bool) -> Result<()> {
        let t = bytes::text(text);
        let mut it = t.lines();
        match it.next() {
            Some(first) if first.starts_with("sbat,") => {
                lines.extend(it.filter(|l| !l.is_empty()).map(str::to_string));
                Ok(())
            }
            _ if from_user => Err(Error::invalid(
                "--sbat text must start with the \"sbat,1,SBAT Version,...\" header line",
            )),
            _ => Ok(()),
        }
    }
    for s in pe_sections {
        take(&mut lines, s, false)?;
    }
    if given.is_empty() {
        lines.push(bytes::text(default));
    }
    for g in given {
        take(&mut lines, g, true)?;
    }
    let mut out = String::from(SBAT_HEADER);
    out.push('\n');
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    let mut v = out.into_bytes();
    v.push(0);
    Ok(v)
}

/// In place when the merged text fits the stub's `.sbat` slot in the file and in
/// memory (or the slot is the stub's last); otherwise moved to the end.
fn place_sbat(stub: &PeFile<'_>, len: u64) -> SbatPlacement {
    let Some(i) = stub.sections.iter().position(|s| s.name == ".sbat") else {
        return SbatPlacement::Append;
    };
    let Some(s) = stub.sections.get(i) else {
        return SbatPlacement::Append;
    };
    let fa = u64::from(stub.opt.file_alignment.max(1));
    let raw = bytes::align_up(len, fa).unwrap_or(u64::MAX);
    let ptr = u64::from(s.pointer_to_raw_data);
    let va = u64::from(s.virtual_address);
    let next_raw = stub
        .sections
        .iter()
        .map(|o| u64::from(o.pointer_to_raw_data))
        .filter(|&p| p > ptr)
        .min();
    let next_va = stub
        .sections
        .iter()
        .map(|o| u64::from(o.virtual_address))
        .filter(|&v| v > va)
        .min();
    let fits_file = next_raw.is_none_or(|n| ptr.checked_add(raw).is_some_and(|end| end <= n));
    let fits_mem = next_va.is_none_or(|n| va.checked_add(len).is_some_and(|end| end <= n));
    if fits_file && fits_mem {
        SbatPlacement::InPlace(i)
    } else {
        SbatPlacement::Moved(i)
    }
}

#[cfg(test)]
mod tests;
