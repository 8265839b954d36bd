//! One entry per command. Each takes bytes and options and returns the value that
//! the CLI's `--json` prints and the page renders, so neither front end assembles a
//! pipeline, a default or an output struct of its own:
//!
//! | command   | entry                | returns                                        |
//! |-----------|----------------------|------------------------------------------------|
//! | `inspect` | [`inspect()`]        | [`inspect::FileReport`] (PE or disk report)    |
//! |           | [`inspect::PartialInspection`] | the same, fed range by range (the page) |
//! | `verify`  | [`verify()`]         | [`verify::Verification`] (and its exit code)   |
//! | `build`   | [`build()`]          | the UKI: built, `.pcrsig` per profile, signed  |
//! | `measure` | [`measure()`]        | [`measure::Measurement`] (systemd's JSON)      |
//! | `image`   | [`image()`]          | the disk as extents, and its summary           |
//! | `diff`    | [`diff()`]           | [`diff::Diff`]: what changed between two PEs    |
//! | `keys`    | [`keys::create`], [`keys::export`] | key files; `.esl` and `.auth` files |
//!
//! What the core may not do itself comes in as a parameter: the environment's
//! `SOURCE_DATE_EPOCH` as text, and a [`inspect::Join`] that the CLI backs with
//! two threads.

pub mod build;
pub mod diff;
pub mod image;
pub mod inspect;
pub mod keys;
pub mod measure;
pub mod verify;

pub use build::build;

/// A time option: `given` (`--timestamp`), else the environment's `SOURCE_DATE_EPOCH`
/// (as text), else `fallback`.
pub(crate) fn timestamp_or_epoch<T>(
    given: Option<T>,
    source_date_epoch: Option<&str>,
    fallback: T,
) -> crate::error::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match (given, source_date_epoch) {
        (Some(t), _) => Ok(t),
        (None, Some(v)) => v.trim().parse().map_err(|e| {
            crate::error::Error::invalid(format!("SOURCE_DATE_EPOCH={v:?} is not a number: {e}"))
        }),
        (None, None) => Ok(fallback),
    }
}
pub use diff::diff;
pub use image::image;
pub use inspect::inspect;
pub use measure::measure;
pub use verify::verify;
