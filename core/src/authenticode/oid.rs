//! Object identifiers used by Authenticode, CMS, X.509 and keys: the one table of them
//! (raw constants, kept apart from the code that reads and writes them).

use const_oid::ObjectIdentifier as Oid;

pub const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
pub const SPC_INDIRECT_DATA: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.4");
pub const SPC_PE_IMAGE_DATA: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.15");
pub const SPC_SP_OPUS_INFO: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.12");
pub const SPC_NESTED_SIGNATURE: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.4.1");
pub const MS_RFC3161_TIMESTAMP: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.3.3.1");
pub const TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");

pub const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
pub const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
pub const SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
pub const COUNTER_SIGNATURE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.6");

pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
pub const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
pub const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");
/// id-at-commonName (RFC 4519 §2.3).
pub const COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
/// id-at-organizationName (RFC 4519 §2.19).
pub const ORGANIZATION_NAME: Oid = Oid::new_unwrap("2.5.4.10");
/// id-data (RFC 5652 §4): the content type of a detached signature over raw bytes.
pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
/// id-ce-subjectKeyIdentifier (RFC 5280 §4.2.1.2).
pub const SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");

use super::hash::DigestAlgorithm;

/// The digest algorithm an AlgorithmIdentifier names, if Authenticode allows it.
pub fn digest_algorithm(oid: &Oid) -> Option<DigestAlgorithm> {
    Some(match *oid {
        SHA1 => DigestAlgorithm::Sha1,
        SHA256 => DigestAlgorithm::Sha256,
        SHA384 => DigestAlgorithm::Sha384,
        SHA512 => DigestAlgorithm::Sha512,
        _ => return None,
    })
}

/// A named elliptic curve's short name and key size in bits.
pub fn curve(oid: &Oid) -> Option<(&'static str, u32)> {
    Some(match *oid {
        SECP256R1 => ("p256", 256),
        SECP384R1 => ("p384", 384),
        SECP521R1 => ("p521", 521),
        _ => return None,
    })
}
