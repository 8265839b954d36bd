//! Raw disk images: a sparse model (total size + data extents), GPT, FAT ESP and
//! the boot layouts built from them.
//!
//! An image is never materialised as one buffer: it is a list of extents that borrow
//! the input UKI where they can, so a 64 GiB disk with a 100 MiB UKI costs about
//! 100 MiB. Writers (a sparse file, stdout, a block device, a browser stream) walk the
//! extents in order and treat everything between them as zeros.

pub mod export;
pub mod sparse;

pub use sparse::{DiskImage, Extent, ExtentData};

pub mod fat;
pub mod files;
pub mod gpt;
pub mod guid;
pub mod inspect;
pub mod layout;
pub mod talos;
pub mod xfs;
