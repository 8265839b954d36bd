//! Authenticode: the PE image hash, the certificate table and PKCS#7 signatures.

pub mod hash;

pub use hash::{hash_ranges, image_digest, DigestAlgorithm};
