//! ukitool-core: everything ukitool knows about Unified Kernel Images, in memory.
//!
//! The crate does no I/O: no file system, no clock, no randomness. Callers hand it
//! bytes and options and get values back, or give it a sink to write into. The same
//! code runs in the native CLI and, compiled to wasm32, in the browser page.
//!
//! ```text
//!  bytes ──► pe::PeFile (borrowed view) ──► uki (kinds, sections, profiles, lints)
//!                 │                          ├─► inspect::Report (serde, --json)
//!                 │                          └─► extract (exact payload slices)
//!                 ├─► authenticode (image hash, PKCS#7, verify against anchors)
//!                 ├─► measure (PCR 11 prediction) ─► pcrsig (.pcrsig: sign, check)
//!                 └─► build / sign (assemble and sign UKIs into a Vec<u8>)
//!  options ──► disk (sparse image model: GPT + FAT32 ESP, streamed as extents)
//!
//!  command::{inspect, verify, build, measure, image}: one entry per command over the
//!  modules above, returning what `--json` prints; the CLI and the page only adapt.
//! ```
//!
//! Every input is untrusted: all offset arithmetic on file-controlled values is
//! checked, and errors name the offset and the rule that was broken.

#![forbid(unsafe_code)]
// Tests may index and compute freely; the code under test may not (core/Cargo.toml).
#![cfg_attr(
    test,
    allow(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::cast_possible_truncation
    )
)]

pub mod authenticode;
pub mod authvar;
pub mod bmap;
pub mod build;
pub mod bytes;
pub mod command;
pub mod disk;
pub mod error;
pub mod extract;
pub mod guid;
pub mod inspect;
pub mod keys;
pub mod lint;
pub mod measure;
pub mod pcrsig;
pub mod pe;
pub mod pem;
pub mod readat;
pub mod secureboot;
pub mod siglist;
pub mod sign;
pub mod stream;
pub mod uki;
pub mod units;
pub mod vdisk;

pub use error::{Error, Result};
