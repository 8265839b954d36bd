//! Talos Linux `metal` disk images, byte for byte as Talos's imager (1.10 to 1.14)
//! makes them: the partition plan and its size tables ([`plan`]), the identifiers
//! Talos 1.13+ derives, META in Talos's ADV format ([`meta`]), grub.cfg and
//! loader.conf ([`config`]), and GRUB's BIOS core.img assembled without grub-mkimage
//! ([`bios`]). docs/talos.md lists the sources each fact was checked against.
//!
//! Nothing here reads files: GRUB's i386-pc directory, the UKI and META values come
//! in as bytes, and the pieces come out as bytes for the image layout to place.

pub mod bios;
pub mod config;
pub mod detect;
pub mod image;
pub mod meta;
pub mod plan;

pub use plan::{plan, Arch, Bootloader, TalosPlan, TalosVersion};

/// The ESP's FAT volume id: dosfstools' `--invariant`, which Talos 1.13+ passes.
pub const ESP_VOLUME_ID: u32 = 0x1234_ABCD;
/// The ESP's FAT label, also its GPT name.
pub const ESP_LABEL: &str = "EFI";
/// BOOT's XFS label, also its GPT name; its XFS UUID is its partition GUID.
pub const BOOT_LABEL: &str = "BOOT";
