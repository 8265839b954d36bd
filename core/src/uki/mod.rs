//! UKI semantics over a parsed PE: what kind of file it is, which sections belong to
//! the base and to each profile, and decoders for the metadata sections.
//!
//! Facts follow systemd's code (src/fundamental/uki.h, src/boot/stub.c); see
//! /work/shared/reference/uki-format.md for the summary this module implements.

pub mod bmp;
pub mod efifw;
pub mod hwids;
pub mod kernel;
pub mod lints;
pub mod osrel;
pub mod sbat;

use crate::pe::Section;

/// What a PE is, by the rules of the UKI specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A .linux section is present: a Unified Kernel Image.
    Uki,
    /// No .linux, but addon payloads (or an addon stub's .sdmagic).
    Addon,
    /// A bare Linux kernel, no .linux: an x86 bzImage with an EFI stub ("HdrS" at
    /// 0x202), an arm64/riscv64/loongarch64 `Image`, or an EFI zboot image.
    EfiStubKernel,
    /// EFI Boot Guard's unified image (its kernel-stub with `.cmdline` in UTF-16LE,
    /// `.kernel`, `.initrd` and `.dtb-N`, made by bg_gen_unified_kernel): no `.linux`,
    /// a `.kernel` section.
    EfibootguardUnified,
    /// Any other EFI (or PE) binary: shim, GRUB, systemd-boot, a stub.
    Pe,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Uki => "uki",
            Kind::Addon => "addon",
            Kind::EfiStubKernel => "efi-stub-kernel",
            Kind::EfibootguardUnified => "efibootguard-unified",
            Kind::Pe => "pe",
        }
    }
}

/// Sections that make a stub-based PE an addon when there is no .linux (systemd-stub(7)).
pub const ADDON_PAYLOADS: &[&str] = &[".cmdline", ".dtb", ".dtbauto", ".ucode", ".initrd"];

/// The kernel's section in an EFI Boot Guard unified image (its kernel-stub's
/// main.c; systemd-stub's is `.linux`).
pub const EFIBOOTGUARD_KERNEL: &str = ".kernel";

/// The sections systemd-stub interprets, and whether a block may hold several of them.
pub const KNOWN_SECTIONS: &[(&str, bool)] = &[
    (".linux", false),
    (".osrel", false),
    (".cmdline", false),
    (".initrd", false),
    (".ucode", false),
    (".splash", false),
    (".dtb", false),
    (".dtbauto", true),
    (".hwids", false),
    (".efifw", true),
    (".uname", false),
    (".sbat", false),
    (".pcrsig", false),
    (".pcrpkey", false),
    (".profile", true),
    (".sdmagic", false),
];

/// Is `name` one of the sections the stub interprets?
pub fn is_known(name: &str) -> bool {
    KNOWN_SECTIONS.iter().any(|(n, _)| *n == name)
}

/// May a block (base or profile) hold `name` at most once?
pub fn single_copy(name: &str) -> bool {
    KNOWN_SECTIONS.iter().any(|(n, many)| *n == name && !many)
}

/// May a block (base or profile) hold `name` more than once (`.dtbauto`, `.efifw`,
/// and `.profile`, which opens the next block)?
pub fn repeatable(name: &str) -> bool {
    KNOWN_SECTIONS.iter().any(|(n, many)| *n == name && *many)
}

/// Images larger than this fail to load on real firmware (systemd #31452): the build
/// refuses them and inspect reports them.
pub const MAX_IMAGE_SIZE: u64 = 2 << 30;

/// systemd-stub accepts at most 256 profiles (uki.h, MAX_PROFILES).
pub const MAX_PROFILES: usize = 256;

/// Decide the kind. `is_kernel` says whether the file is a Linux boot image
/// ([`kernel::format`]); `sdmagic` is the .sdmagic text if present.
pub fn classify(sections: &[Section], is_kernel: bool, sdmagic: Option<&str>) -> Kind {
    let has = |n: &str| sections.iter().any(|s| s.name == n);
    if has(".linux") {
        Kind::Uki
    } else if sdmagic.is_some_and(|m| m.contains("systemd-addon")) {
        Kind::Addon
    } else if is_kernel {
        Kind::EfiStubKernel
    } else if has(EFIBOOTGUARD_KERNEL) {
        Kind::EfibootguardUnified
    } else if ADDON_PAYLOADS.iter().any(|n| has(n)) {
        // A stub PE carrying addon payloads but no kernel: the stub treats it as an
        // addon, whatever its .sdmagic says (older stubs had no separate addon stub).
        Kind::Addon
    } else {
        Kind::Pe
    }
}

/// Which sections belong to the base and to each profile, as index ranges into
/// the section table. Sections before the first .profile are the base; each
/// .profile opens the next profile and owns the sections up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocks {
    pub base: std::ops::Range<usize>,
    pub profiles: Vec<std::ops::Range<usize>>,
}

pub fn blocks(sections: &[Section]) -> Blocks {
    let is_profile = |s: &Section| s.name == ".profile";
    let n = sections.len();
    // Counted first so the list is allocated once, at its exact size (a table of
    // 65535 .profile sections is 1 MiB of ranges, not 2 MiB plus a copy).
    let mut profiles = Vec::with_capacity(sections.iter().filter(|s| is_profile(s)).count());
    let mut open: Option<usize> = None;
    for (i, _) in sections.iter().enumerate().filter(|(_, s)| is_profile(s)) {
        if let Some(start) = open.replace(i) {
            profiles.push(start..i);
        }
    }
    if let Some(start) = open {
        profiles.push(start..n);
    }
    Blocks {
        base: 0..profiles.first().map_or(n, |r| r.start),
        profiles,
    }
}

impl Blocks {
    /// The block a section index belongs to: None for the base, Some(profile).
    /// Profiles are contiguous and ascending, so this is a binary search.
    pub fn profile_of(&self, index: usize) -> Option<u32> {
        let p = self
            .profiles
            .partition_point(|r| r.start <= index)
            .checked_sub(1)?;
        self.profiles
            .get(p)
            .filter(|r| r.contains(&index))
            .and_then(|_| u32::try_from(p).ok())
    }

    /// Index of the section named `name` as seen by profile `profile` (None: the
    /// base alone): the profile's own copy first, then the base's.
    pub fn lookup(&self, sections: &[Section], name: &str, profile: Option<u32>) -> Option<usize> {
        let find = |r: &std::ops::Range<usize>| {
            r.clone()
                .find(|&i| sections.get(i).is_some_and(|s| s.name == name))
        };
        if let Some(p) = profile {
            let r = self.profiles.get(usize::try_from(p).ok()?)?;
            if let Some(i) = find(r) {
                return Some(i);
            }
        }
        find(&self.base)
    }
}

/// `.sdmagic` text: the stub's identity without the `#### LoaderInfo: ... ####` frame.
pub fn stub_identity(sdmagic: &[u8]) -> String {
    let t = crate::bytes::text(sdmagic);
    let t = t.trim();
    t.strip_prefix("#### LoaderInfo:")
        .and_then(|r| r.strip_suffix("####"))
        .map_or_else(|| t.to_string(), |r| r.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(name: &str) -> Section {
        Section {
            name: name.into(),
            raw_name: [0; 8],
            virtual_size: 0,
            virtual_address: 0,
            size_of_raw_data: 0,
            pointer_to_raw_data: 0,
            characteristics: 0,
            header_offset: 0,
        }
    }

    #[test]
    fn blocks_split_at_each_profile() {
        let s: Vec<Section> = [
            ".linux", ".cmdline", ".profile", ".cmdline", ".profile", ".dtb",
        ]
        .iter()
        .map(|n| sec(n))
        .collect();
        let b = blocks(&s);
        assert_eq!(b.base, 0..2);
        assert_eq!(b.profiles, vec![2..4, 4..6]);
        assert_eq!(b.profile_of(1), None);
        assert_eq!(b.profile_of(3), Some(0));
        assert_eq!(b.profile_of(5), Some(1));
        assert_eq!(b.lookup(&s, ".cmdline", None), Some(1));
        assert_eq!(b.lookup(&s, ".cmdline", Some(0)), Some(3));
        assert_eq!(b.lookup(&s, ".cmdline", Some(1)), Some(1));
        assert_eq!(b.lookup(&s, ".dtb", None), None);
        assert_eq!(b.lookup(&s, ".linux", Some(7)), None);
        assert_eq!(classify(&s, false, None), Kind::Uki);
        assert_eq!(classify(&s[1..2], false, None), Kind::Addon);
        assert_eq!(classify(&[], true, None), Kind::EfiStubKernel);
        assert_eq!(classify(&[sec(".text")], false, None), Kind::Pe);
        let ebg = [
            sec(".text"),
            sec(".cmdline"),
            sec(".kernel"),
            sec(".initrd"),
        ];
        assert_eq!(classify(&ebg, false, None), Kind::EfibootguardUnified);
        assert_eq!(
            classify(&[sec(".text")], false, Some("systemd-addon 257")),
            Kind::Addon
        );
    }

    #[test]
    fn many_profiles_stay_cheap() {
        // 65535 sections, all .profile: every per-section query must be sub-linear.
        let s: Vec<Section> = (0..65535).map(|_| sec(".profile")).collect();
        let b = blocks(&s);
        let found = (0..s.len()).filter(|&i| b.profile_of(i).is_some()).count();
        assert_eq!(found, 65535);
    }
}
