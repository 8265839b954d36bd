//! The one error type of the core. Each variant says what kind of failure it is;
//! malformed-input variants carry the file offset and the rule that was broken.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input ends before a structure that it declares.
    Truncated {
        what: &'static str,
        offset: u64,
        needed: u64,
        available: u64,
    },
    /// The input breaks a rule of its format at `offset`.
    Malformed { offset: u64, rule: String },
    /// The input is well-formed but uses something ukitool does not handle.
    Unsupported { offset: u64, what: String },
    /// A value the user asked for does not exist (a section, a profile, a partition).
    NotFound(String),
    /// Options or inputs given to a builder are not acceptable.
    InvalidInput(String),
    /// A key, certificate or signature could not be used.
    Crypto(String),
    /// The source of the bytes (a file, a device, a browser Blob, a decoder) failed at
    /// `offset` of the data it serves.
    Source { offset: u64, what: String },
}

impl Error {
    pub fn malformed(offset: u64, rule: impl Into<String>) -> Self {
        Error::Malformed {
            offset,
            rule: rule.into(),
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }

    /// A stable short name for the variant, for reports and statistics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::Malformed { .. } => "malformed",
            Error::Unsupported { .. } => "unsupported",
            Error::NotFound(_) => "not-found",
            Error::InvalidInput(_) => "invalid-input",
            Error::Crypto(_) => "crypto",
            Error::Source { .. } => "source",
        }
    }

    /// The file offset the error refers to, when it refers to one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::Truncated { offset, .. }
            | Error::Malformed { offset, .. }
            | Error::Unsupported { offset, .. }
            | Error::Source { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated {
                what,
                offset,
                needed,
                available,
            } => write!(
                f,
                "truncated at offset {offset:#x}: {what} needs {needed} bytes, {available} available"
            ),
            Error::Malformed { offset, rule } => write!(f, "malformed at offset {offset:#x}: {rule}"),
            Error::Unsupported { offset, what } => {
                write!(f, "unsupported at offset {offset:#x}: {what}")
            }
            Error::NotFound(what) => write!(f, "not found: {what}"),
            Error::InvalidInput(what) => write!(f, "invalid input: {what}"),
            Error::Crypto(what) => write!(f, "crypto: {what}"),
            Error::Source { offset, what } => write!(f, "read failed at offset {offset:#x}: {what}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_formats_with_its_offset_or_subject() {
        let cases = [
            (
                Error::Truncated {
                    what: "COFF header",
                    offset: 0x80,
                    needed: 20,
                    available: 4,
                },
                "truncated at offset 0x80: COFF header needs 20 bytes, 4 available",
            ),
            (
                Error::malformed(0x3c, "e_lfanew points past the end"),
                "malformed at offset 0x3c: e_lfanew points past the end",
            ),
            (
                Error::Unsupported {
                    offset: 4,
                    what: "machine 0x1234".into(),
                },
                "unsupported at offset 0x4: machine 0x1234",
            ),
            (
                Error::NotFound("section .linux".into()),
                "not found: section .linux",
            ),
            (Error::invalid("bad size"), "invalid input: bad size"),
            (
                Error::Source {
                    offset: 0x1000,
                    what: "Input/output error".into(),
                },
                "read failed at offset 0x1000: Input/output error",
            ),
            (Error::Crypto("bad key".into()), "crypto: bad key"),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
            assert!(!e.kind().is_empty());
        }
    }
}
