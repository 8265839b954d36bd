//! Verification of every signature in a PE against a trust store, as UEFI firmware
//! does it (EDK2 DxeImageVerificationLib): the image digest, the messageDigest
//! attribute, the signer's signature, a chain to a db certificate, db hashes that
//! authorise an image directly, and dbx revocations. Validity dates are shown, never
//! enforced: firmware has no trustworthy clock.

use std::collections::BTreeMap;

use super::cert::{self, Certificate, CertificateInfo};
use super::hash::{hash_ranges, DigestAlgorithm, Hasher};
use super::pkcs7::{self, SignedData, Timestamp};
use crate::bytes::hex;
use crate::error::{Error, Result};
use crate::lint::{Lint, Severity};
use crate::pe::PeFile;
use crate::siglist::SignatureDatabase;

/// Nested signatures inside nested signatures: real signers use one level; the
/// bound stops a hostile file from recursing.
pub const MAX_NESTING: usize = 4;
/// Certificates in one chain, signer included.
pub const MAX_CHAIN: usize = 8;
/// Signatures reported per file (top-level and nested together).
pub const MAX_SIGNATURES: usize = 64;

pub const MS_UEFI_CA_2011: &str = "Microsoft Corporation UEFI CA 2011";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Unsigned,
    ValidTrusted,
    ValidUntrusted,
    Revoked,
    HashMismatch,
    BadSignature,
    Malformed,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Unsigned => "unsigned",
            Verdict::ValidTrusted => "valid-trusted",
            Verdict::ValidUntrusted => "valid-untrusted",
            Verdict::Revoked => "revoked",
            Verdict::HashMismatch => "hash-mismatch",
            Verdict::BadSignature => "bad-signature",
            Verdict::Malformed => "malformed",
        }
    }
    pub fn is_valid(self) -> bool {
        matches!(self, Verdict::ValidTrusted | Verdict::ValidUntrusted)
    }
}

/// Trust anchors and revocations, from certificates and db/dbx files.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    pub anchors: Vec<Certificate>,
    /// Authenticode SHA-256 image hashes that db authorises directly.
    pub allowed_hashes: Vec<Vec<u8>>,
    pub revoked_certs: Vec<Certificate>,
    pub revoked_hashes: Vec<Vec<u8>>,
    /// SHA-256 of revoked certificates' TBSCertificate.
    pub revoked_tbs_hashes: Vec<Vec<u8>>,
}

impl TrustStore {
    /// Did the user give anything to trust? Without it "valid-untrusted" is the best
    /// verdict and is not a failure.
    pub fn has_anchors(&self) -> bool {
        !self.anchors.is_empty() || !self.allowed_hashes.is_empty()
    }

    /// Add certificates from a PEM (one or more blocks) or DER file.
    pub fn add_cert_file(&mut self, data: &[u8]) -> Result<usize> {
        let certs = cert::parse_cert_file(data)?;
        let n = certs.len();
        self.anchors.extend(certs);
        Ok(n)
    }

    /// Add a db: X.509 entries become anchors, SHA-256 entries allowed hashes.
    pub fn add_db(&mut self, db: &SignatureDatabase) -> Result<()> {
        for der in db.x509() {
            self.anchors.push(Certificate::parse(der, 0)?);
        }
        self.allowed_hashes.extend(db.sha256().map(<[u8]>::to_vec));
        Ok(())
    }

    /// Add a dbx: certificates, image hashes and TBS hashes that are refused.
    pub fn add_dbx(&mut self, dbx: &SignatureDatabase) -> Result<()> {
        for der in dbx.x509() {
            self.revoked_certs.push(Certificate::parse(der, 0)?);
        }
        self.revoked_hashes.extend(dbx.sha256().map(<[u8]>::to_vec));
        self.revoked_tbs_hashes
            .extend(dbx.x509_sha256().map(<[u8]>::to_vec));
        Ok(())
    }

    fn cert_revoked(&self, c: &Certificate) -> bool {
        self.revoked_certs.iter().any(|r| r.der == c.der)
            || (!self.revoked_tbs_hashes.is_empty() && {
                let h = DigestAlgorithm::Sha256.digest(c.tbs());
                self.revoked_tbs_hashes.contains(&h)
            })
    }
}

/// Everything known about one signature: the serde view used by `verify --json`
/// and `inspect --json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureSummary {
    /// Position in the report (top-level entries first, nested ones after their parent).
    pub index: usize,
    /// File offset of the WIN_CERTIFICATE entry (top level) or the nested ContentInfo.
    pub offset: u64,
    /// Index of the signature this one is nested in.
    pub nested_in: Option<usize>,
    pub signer: Option<CertificateInfo>,
    /// How the SignerInfo names its signer: `issuer-and-serial` (what Authenticode
    /// specifies) or `subject-key-id` (CMS v3, RFC 5652 §5.3).
    pub signer_identified_by: Option<&'static str>,
    /// The signer's public key, e.g. `rsa-2048`, `ecdsa-p256`.
    pub signer_key: Option<String>,
    pub certificates: Vec<CertificateInfo>,
    pub digest_algorithm: Option<DigestAlgorithm>,
    /// The image digest the signature carries.
    pub signed_digest: Option<String>,
    /// The image digest ukitool computed with the same algorithm.
    pub image_digest: Option<String>,
    pub digest_matches: Option<bool>,
    pub message_digest_matches: Option<bool>,
    pub signature_valid: Option<bool>,
    /// Subject CNs (the whole subject when there is no CN) from the signer upwards,
    /// then the anchor when one was reached.
    pub chain: Vec<String>,
    /// Where the chain stops: the anchor's CN, or the issuer CN of the last
    /// certificate found.
    pub chain_ends_at: Option<String>,
    pub trusted_by: Option<String>,
    pub signing_time: Option<String>,
    pub program_name: Option<String>,
    pub timestamps: Vec<Timestamp>,
    pub verdict: Verdict,
    pub reason: String,
    /// One line for the human output.
    pub line: String,
}

impl SignatureSummary {
    /// The 1-based number people read ("signature 1").
    pub fn number(&self) -> usize {
        // `index` counts signatures held in memory, far below usize::MAX.
        self.index.saturating_add(1)
    }
}

/// The overall result of `ukitool verify`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub verdict: Verdict,
    pub reason: String,
    pub anchors_given: bool,
    /// Authenticode digests computed, per algorithm used, as hex.
    pub image_digests: BTreeMap<DigestAlgorithm, String>,
    pub certificate_table: Option<(u64, u32)>,
    pub signatures: Vec<SignatureSummary>,
    pub lints: Vec<Lint>,
}

/// Image digests, computed at most once per algorithm (each a single pass).
struct Digests<'p, 'a> {
    pe: &'p PeFile<'a>,
    ranges: Result<Vec<std::ops::Range<u64>>>,
    done: BTreeMap<DigestAlgorithm, Vec<u8>>,
    /// The digests were computed elsewhere ([`verify_with_digests`]): `pe.data` holds
    /// only the headers and the certificate table, so nothing may be hashed here.
    precomputed: bool,
}

impl Digests<'_, '_> {
    fn get(&mut self, alg: DigestAlgorithm) -> Result<Vec<u8>> {
        if let Some(d) = self.done.get(&alg) {
            return Ok(d.clone());
        }
        if self.precomputed {
            return Err(Error::invalid(format!(
                "no precomputed {} image digest was given",
                alg.name()
            )));
        }
        let ranges = self.ranges.as_ref().map_err(Clone::clone)?;
        let mut h = Hasher::new(alg);
        for r in ranges {
            h.update(crate::bytes::range(self.pe.data, r, "hashed range")?);
        }
        let d = h.finish();
        self.done.insert(alg, d.clone());
        Ok(d)
    }
}

struct Found<'a> {
    offset: u64,
    nested_in: Option<usize>,
    parsed: Result<SignedData<'a>>,
}

/// Parse every signature, nested ones after their parent, within the bounds.
fn collect<'a>(entries: &[pkcs7::CertEntry<'a>]) -> Vec<Found<'a>> {
    let mut out: Vec<Found<'a>> = Vec::new();
    for e in entries {
        let parsed = if e.revision != pkcs7::WIN_CERT_REVISION_2_0 {
            Err(Error::malformed(
                e.offset.saturating_add(4),
                format!(
                    "WIN_CERTIFICATE wRevision {:#06x} is not 0x0200",
                    e.revision
                ),
            ))
        } else if e.cert_type != pkcs7::WIN_CERT_TYPE_PKCS_SIGNED_DATA {
            Err(Error::malformed(
                e.offset.saturating_add(6),
                format!(
                    "WIN_CERTIFICATE wCertificateType {:#06x} is not PKCS#7 SignedData (0x0002)",
                    e.cert_type
                ),
            ))
        } else {
            pkcs7::parse_signed_data(e.data, e.data_offset)
        };
        push_with_nested(&mut out, e.offset, None, parsed, 0);
    }
    out
}

fn push_with_nested<'a>(
    out: &mut Vec<Found<'a>>,
    offset: u64,
    nested_in: Option<usize>,
    parsed: Result<SignedData<'a>>,
    depth: usize,
) {
    if out.len() >= MAX_SIGNATURES {
        return;
    }
    let nested: Vec<_> = parsed
        .as_ref()
        .map(|p| p.signer.nested.clone())
        .unwrap_or_default();
    let me = out.len();
    out.push(Found {
        offset,
        nested_in,
        parsed,
    });
    // Bounded by MAX_NESTING: deeper ones are errors, whose nesting is not followed.
    let depth = depth.saturating_add(1);
    for n in nested {
        let p = if depth > MAX_NESTING {
            Err(Error::malformed(
                n.offset,
                format!("nested signatures deeper than {MAX_NESTING} levels"),
            ))
        } else {
            pkcs7::parse_content_info(n)
        };
        push_with_nested(out, n.offset, Some(me), p, depth);
    }
}

/// Verify every signature of `pe` (which must hold the whole file) against `trust`.
pub fn verify(pe: &PeFile<'_>, trust: &TrustStore) -> VerifyReport {
    verify_inner(pe, trust, None)
}

/// [`verify`] with the Authenticode image digests computed elsewhere, e.g. streamed
/// over [`hash_ranges`] by the browser's WebCrypto. `pe.data` needs only the headers
/// and the certificate table at their file offsets (other bytes are not read), and
/// `digests` must hold SHA-256 plus every algorithm of [`digest_algorithms`]; a
/// missing one makes the signatures that need it `malformed`.
pub fn verify_with_digests(
    pe: &PeFile<'_>,
    trust: &TrustStore,
    digests: BTreeMap<DigestAlgorithm, Vec<u8>>,
) -> VerifyReport {
    verify_inner(pe, trust, Some(digests))
}

/// The image digest algorithms [`verify`] computes for `pe`: SHA-256 (always, for
/// db/dbx hashes) and each parsed signature's, nested ones included.
pub fn digest_algorithms(pe: &PeFile<'_>) -> Vec<DigestAlgorithm> {
    let (entries, _) = pkcs7::walk_certificate_table(pe);
    let mut algs: Vec<DigestAlgorithm> = collect(&entries)
        .iter()
        .filter_map(|f| f.parsed.as_ref().ok().map(|sd| sd.digest_algorithm))
        .collect();
    algs.push(DigestAlgorithm::Sha256);
    algs.sort();
    algs.dedup();
    algs
}

fn verify_inner(
    pe: &PeFile<'_>,
    trust: &TrustStore,
    precomputed: Option<BTreeMap<DigestAlgorithm, Vec<u8>>>,
) -> VerifyReport {
    let given = precomputed.is_some();
    let mut digests = Digests {
        pe,
        ranges: hash_ranges(pe),
        done: precomputed.unwrap_or_default(),
        precomputed: given,
    };
    let table = pe
        .certificate_table()
        .map(|d| (u64::from(d.virtual_address), d.size));
    let mut report = VerifyReport {
        verdict: Verdict::Unsigned,
        reason: String::new(),
        anchors_given: trust.has_anchors(),
        image_digests: BTreeMap::new(),
        certificate_table: table,
        signatures: Vec::new(),
        lints: Vec::new(),
    };
    if !given && (pe.data.len() as u64) < pe.file_len {
        report.verdict = Verdict::Malformed;
        report.reason = "only the headers were read; verification needs the whole file".into();
        return report;
    }
    if let Err(e) = &digests.ranges {
        report.verdict = Verdict::Malformed;
        report.reason = format!("cannot compute the image hash: {e}");
        return report;
    }
    let (entries, table_problem) = pkcs7::walk_certificate_table(pe);
    let mut found = collect(&entries);
    if let Some(e) = table_problem {
        // Firmware stops the walk here; the entries before still count.
        found.push(Found {
            offset: e.offset().unwrap_or(0),
            nested_in: None,
            parsed: Err(e),
        });
    }
    // Always reported, and what db/dbx EFI_CERT_SHA256 entries are compared with:
    // firmware authorises or refuses by it whatever the signatures say.
    let sha256 = digests.get(DigestAlgorithm::Sha256).ok();
    let hash_revoked = sha256
        .as_ref()
        .is_some_and(|h| trust.revoked_hashes.contains(h));
    let hash_allowed = sha256
        .as_ref()
        .is_some_and(|h| trust.allowed_hashes.contains(h));

    let mut needs_ec = Vec::with_capacity(found.len());
    for (index, f) in found.iter().enumerate() {
        let (s, ec) = check_one(index, f, &mut digests, trust, hash_revoked);
        report.signatures.push(s);
        needs_ec.push(ec);
    }
    report.image_digests = digests.done.iter().map(|(k, v)| (*k, hex(v))).collect();

    let top: Vec<&SignatureSummary> = report
        .signatures
        .iter()
        .filter(|s| s.nested_in.is_none())
        .collect();
    let (verdict, reason) = if hash_revoked {
        (
            Verdict::Revoked,
            "the image's SHA-256 Authenticode hash is in dbx".to_string(),
        )
    } else if let Some(r) = top.iter().find(|s| s.verdict == Verdict::Revoked) {
        (
            Verdict::Revoked,
            format!("signature {}: {}", r.number(), r.reason),
        )
    } else if let Some(t) = top.iter().find(|s| s.verdict == Verdict::ValidTrusted) {
        (
            Verdict::ValidTrusted,
            format!("signature {}: {}", t.number(), t.reason),
        )
    } else if hash_allowed {
        (
            Verdict::ValidTrusted,
            "the image's SHA-256 Authenticode hash is in db".to_string(),
        )
    } else if top.is_empty() {
        (
            Verdict::Unsigned,
            "no certificate table: the image carries no signature".to_string(),
        )
    } else {
        // The most favourable of the remaining verdicts speaks for the file.
        let order = [
            Verdict::ValidUntrusted,
            Verdict::HashMismatch,
            Verdict::BadSignature,
            Verdict::Malformed,
        ];
        order
            .iter()
            .find_map(|v| {
                top.iter()
                    .find(|s| s.verdict == *v)
                    .map(|s| (*v, format!("signature {}: {}", s.number(), s.reason)))
            })
            .unwrap_or((Verdict::Malformed, "no usable signature".to_string()))
    };
    report.verdict = verdict;
    report.reason = reason;
    report.lints = lints(&report.signatures);
    report
        .lints
        .extend(firmware_lints(&report.signatures, &needs_ec, verdict));
    report
}

pub const ID_ISSUER_SERIAL: &str = "issuer-and-serial";
pub const ID_SUBJECT_KEY_ID: &str = "subject-key-id";

/// Signatures ukitool accepts but Debian 12's OVMF (edk2 2022.11) refuses with "Access
/// Denied", as the Secure Boot matrix test (tests/tests/secureboot_matrix.rs) observed.
/// They fire when every top-level signature that carries the overall valid verdict has
/// the problem, so a second, ordinary signature silences them.
///
/// - `signer-key-identifier`: EDK2's AuthenticodeVerify parses with OpenSSL's PKCS#7
///   (d2i_PKCS7), whose SignerInfo knows only issuerAndSerialNumber, as the Authenticode
///   format specifies; sbverify and osslsigncode fail the same way.
/// - `ecdsa-signature`: the signer's key, or a certificate signature on its chain, is
///   ECDSA; EDK2 builds whose OpenSSL lacks elliptic curves cannot verify it.
fn firmware_lints(sigs: &[SignatureSummary], needs_ec: &[bool], overall: Verdict) -> Vec<Lint> {
    if !overall.is_valid() {
        return Vec::new();
    }
    let deciding: Vec<(&SignatureSummary, bool)> = sigs
        .iter()
        .zip(needs_ec.iter().copied())
        .filter(|(s, _)| s.nested_in.is_none() && s.verdict == overall)
        .collect();
    let mut out = Vec::new();
    if deciding.is_empty() {
        return out;
    }
    if deciding
        .iter()
        .all(|(s, _)| s.signer_identified_by == Some(ID_SUBJECT_KEY_ID))
    {
        out.push(Lint::new(
            "signer-key-identifier",
            Severity::Warning,
            "the signer is named by subjectKeyIdentifier (CMS SignerInfo v3), not issuer and serial as Authenticode specifies; EDK2 firmware (e.g. Debian 12's OVMF), sbverify and osslsigncode cannot parse it and refuse the image",
        ));
    }
    if deciding.iter().all(|(_, ec)| *ec) {
        out.push(Lint::new(
            "ecdsa-signature",
            Severity::Warning,
            "the signature relies on ECDSA; EDK2 firmware built without elliptic-curve support (e.g. Debian 12's OVMF 2022.11) refuses the image",
        ));
    }
    out
}

/// `microsoft-uefi-ca-2011-only`: every valid top-level signature depends on the
/// 2011 UEFI CA, which expires in June 2026; machines whose db holds only the 2023
/// CA refuse such binaries.
fn lints(sigs: &[SignatureSummary]) -> Vec<Lint> {
    let valid: Vec<_> = sigs
        .iter()
        .filter(|s| s.nested_in.is_none() && s.signature_valid == Some(true))
        .collect();
    let via_2011 = |s: &SignatureSummary| {
        s.chain.iter().any(|c| c == MS_UEFI_CA_2011)
            || s.chain_ends_at.as_deref() == Some(MS_UEFI_CA_2011)
    };
    if !valid.is_empty() && valid.iter().all(|s| via_2011(s)) {
        vec![Lint::new(
            "microsoft-uefi-ca-2011-only",
            Severity::Warning,
            format!("the only signature chains end at \"{MS_UEFI_CA_2011}\", which expires in June 2026; machines whose db holds only \"Microsoft UEFI CA 2023\" refuse this binary"),
        )]
    } else {
        Vec::new()
    }
}

fn check_one(
    index: usize,
    f: &Found<'_>,
    digests: &mut Digests<'_, '_>,
    trust: &TrustStore,
    hash_revoked: bool,
) -> (SignatureSummary, bool) {
    let mut needs_ec = false;
    let mut s = SignatureSummary {
        index,
        offset: f.offset,
        nested_in: f.nested_in,
        signer: None,
        signer_identified_by: None,
        signer_key: None,
        certificates: Vec::new(),
        digest_algorithm: None,
        signed_digest: None,
        image_digest: None,
        digest_matches: None,
        message_digest_matches: None,
        signature_valid: None,
        chain: Vec::new(),
        chain_ends_at: None,
        trusted_by: None,
        signing_time: None,
        program_name: None,
        timestamps: Vec::new(),
        verdict: Verdict::Malformed,
        reason: String::new(),
        line: String::new(),
    };
    let (verdict, reason) = match &f.parsed {
        Err(e) => (Verdict::Malformed, e.to_string()),
        Ok(sd) => evaluate(sd, &mut s, &mut needs_ec, digests, trust, hash_revoked),
    };
    s.verdict = verdict;
    s.reason = reason;
    s.line = summary_line(&s);
    (s, needs_ec)
}

/// A signature's verdict and the reason for it.
type Outcome = (Verdict, String);

fn evaluate(
    sd: &SignedData<'_>,
    s: &mut SignatureSummary,
    needs_ec: &mut bool,
    digests: &mut Digests<'_, '_>,
    trust: &TrustStore,
    hash_revoked: bool,
) -> Outcome {
    let signer = describe(sd, s);
    let checks = match check(sd, signer, s, digests) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    // 4. The chain, from the signer to an anchor through embedded intermediates.
    let chain = build_chain(checks.signer, &sd.certificates, &trust.anchors);
    *needs_ec = checks.signer.is_ec_key()
        || chain
            .path
            .iter()
            .any(|c| cert::is_ecdsa_signature(&c.signature_algorithm));
    record_chain(s, &chain);
    outcome(sd, s, &checks, &chain, trust, hash_revoked)
}

/// Fill in what the signature says about itself, and find its signer among the
/// embedded certificates.
fn describe<'c>(sd: &'c SignedData<'_>, s: &mut SignatureSummary) -> Option<&'c Certificate> {
    let si = &sd.signer;
    s.certificates = sd.certificates.iter().map(Certificate::info).collect();
    s.digest_algorithm = Some(sd.digest_algorithm);
    s.signed_digest = Some(hex(sd.digest));
    s.signing_time = si.signing_time.clone();
    s.program_name = si.program_name.clone();
    s.timestamps = si.timestamps.clone();

    s.signer_identified_by = match (si.issuer, si.subject_key_id) {
        (Some(_), _) => Some(ID_ISSUER_SERIAL),
        (None, Some(_)) => Some(ID_SUBJECT_KEY_ID),
        (None, None) => None,
    };
    let signer = sd
        .certificates
        .iter()
        .find(|c| match (si.issuer, si.serial, si.subject_key_id) {
            (Some(issuer), Some(serial), _) => {
                c.serial() == serial && cert::names_equal(c.issuer(), issuer)
            }
            // RFC 5652 §5.3: the key id matches the certificate's subjectKeyIdentifier
            // extension; a certificate without one cannot be named this way.
            (_, _, Some(ski)) => c.subject_key_id() == Some(ski),
            _ => false,
        });
    s.signer = signer.map(Certificate::info);
    s.signer_key = signer.map(Certificate::key_kind);
    signer
}

/// The results of a signature's three checks, made with its signer's certificate.
struct Checks<'c> {
    signer: &'c Certificate,
    digest_ok: bool,
    message_digest_ok: bool,
    signature: Result<()>,
}

/// The checks 1 to 3, recorded in `s`; an outcome when one cannot be made.
fn check<'c>(
    sd: &SignedData<'_>,
    signer: Option<&'c Certificate>,
    s: &mut SignatureSummary,
    digests: &mut Digests<'_, '_>,
) -> std::result::Result<Checks<'c>, Outcome> {
    let si = &sd.signer;
    // 1. The image digest.
    let image = digests.get(sd.digest_algorithm).map_err(|e| {
        (
            Verdict::Malformed,
            format!("cannot compute the image hash: {e}"),
        )
    })?;
    s.image_digest = Some(hex(&image));
    let digest_ok = image.as_slice() == sd.digest;
    s.digest_matches = Some(digest_ok);

    // 2. messageDigest over the content octets of SpcIndirectDataContent.
    let content_hash = si.digest_algorithm.digest(sd.content);
    let md_ok = match si.message_digest {
        Some(md) => md == content_hash.as_slice(),
        None => si.signed_attrs.is_none(),
    };
    s.message_digest_matches = Some(md_ok);

    // 3. The signer's signature over the signed attributes (or, without them, the
    // content digest itself).
    let Some(signer) = signer else {
        s.signature_valid = Some(false);
        return Err((
            Verdict::BadSignature,
            if si.subject_key_id.is_some() {
                "signer identified by subject key id; no embedded certificate matches".into()
            } else {
                "the signer's certificate is not embedded in the signature".into()
            },
        ));
    };
    let signature = match &si.signed_attrs {
        Some(attrs) => {
            let Some(alg) =
                cert::signature_digest(&si.signature_algorithm, Some(si.digest_algorithm))
            else {
                s.signature_valid = Some(false);
                return Err((
                    Verdict::BadSignature,
                    format!("unsupported signature algorithm {}", si.signature_algorithm),
                ));
            };
            cert::verify_digest(signer.spki(), alg, &alg.digest(attrs), si.signature)
        }
        None => cert::verify_digest(
            signer.spki(),
            si.digest_algorithm,
            &content_hash,
            si.signature,
        ),
    };
    s.signature_valid = Some(signature.is_ok() && md_ok);
    Ok(Checks {
        signer,
        digest_ok,
        message_digest_ok: md_ok,
        signature,
    })
}

/// The chain's names in `s`. A certificate without a CN (the snakeoil one) is named
/// by its whole subject, so the chain never silently skips a link.
fn record_chain(s: &mut SignatureSummary, chain: &Chain<'_>) {
    s.chain = chain
        .path
        .iter()
        .map(|c| {
            c.subject_cn()
                .unwrap_or_else(|| cert::name_string(c.subject()))
        })
        .collect();
    if let Some(a) = chain.anchor {
        let cn = a
            .subject_cn()
            .unwrap_or_else(|| cert::name_string(a.subject()));
        if chain.path.last().is_none_or(|l| l.der != a.der) {
            s.chain.push(cn.clone());
        }
        s.trusted_by = Some(cn.clone());
        s.chain_ends_at = Some(cn);
    } else {
        s.chain_ends_at = chain.path.last().and_then(|c| c.issuer_cn());
    }
}

/// The verdict: the first failed check, then revocation, then trust.
fn outcome(
    sd: &SignedData<'_>,
    s: &SignatureSummary,
    checks: &Checks<'_>,
    chain: &Chain<'_>,
    trust: &TrustStore,
    hash_revoked: bool,
) -> Outcome {
    if !checks.digest_ok {
        return (
            Verdict::HashMismatch,
            format!(
                "image {} digest differs from the signed one: modified after signing",
                sd.digest_algorithm.name()
            ),
        );
    }
    if !checks.message_digest_ok {
        return (
            Verdict::BadSignature,
            "messageDigest attribute does not match the SpcIndirectDataContent".into(),
        );
    }
    if let Err(e) = &checks.signature {
        return (
            Verdict::BadSignature,
            format!("signer's signature over the signed attributes: {e}"),
        );
    }
    let revoked_cert = chain
        .path
        .iter()
        .copied()
        .chain(chain.anchor)
        .find(|c| trust.cert_revoked(c));
    if let Some(c) = revoked_cert {
        return (
            Verdict::Revoked,
            format!(
                "certificate \"{}\" is in dbx",
                c.subject_cn()
                    .unwrap_or_else(|| cert::name_string(c.subject()))
            ),
        );
    }
    if hash_revoked {
        return (Verdict::Revoked, "the image hash is in dbx".into());
    }
    match (&s.trusted_by, trust.has_anchors()) {
        (Some(a), _) => (
            Verdict::ValidTrusted,
            format!("valid; chain reaches anchor \"{a}\""),
        ),
        (None, false) => (
            Verdict::ValidUntrusted,
            "valid; no trust anchor given".into(),
        ),
        (None, true) => (
            Verdict::ValidUntrusted,
            format!(
                "valid, but the chain ends at \"{}\", which is not among the anchors",
                s.chain_ends_at.clone().unwrap_or_default()
            ),
        ),
    }
}

struct Chain<'c> {
    path: Vec<&'c Certificate>,
    anchor: Option<&'c Certificate>,
}

/// Walk up from `signer`: stop at a certificate that is itself an anchor, or one an
/// anchor issued (name and signature both checked); otherwise continue through an
/// embedded certificate that issued the current one. Bounded by MAX_CHAIN, and a
/// certificate is never used twice, so loops end.
fn build_chain<'c>(
    signer: &'c Certificate,
    embedded: &'c [Certificate],
    anchors: &'c [Certificate],
) -> Chain<'c> {
    let mut path = vec![signer];
    let mut cur = signer;
    loop {
        if let Some(a) = anchors.iter().find(|a| a.der == cur.der) {
            return Chain {
                path,
                anchor: Some(a),
            };
        }
        if let Some(a) = anchors
            .iter()
            .find(|a| cur.named_issuer_is(a) && cur.signed_by(a))
        {
            return Chain {
                path,
                anchor: Some(a),
            };
        }
        if path.len() >= MAX_CHAIN {
            break;
        }
        let next = embedded.iter().find(|c| {
            !path.iter().any(|p| p.der == c.der) && cur.named_issuer_is(c) && cur.signed_by(c)
        });
        match next {
            Some(n) => {
                path.push(n);
                cur = n;
            }
            None => break,
        }
    }
    Chain { path, anchor: None }
}

fn summary_line(s: &SignatureSummary) -> String {
    let who = s
        .signer
        .as_ref()
        .map(|c| {
            format!(
                "\"{}\" (issuer \"{}\")",
                c.subject_cn.clone().unwrap_or_else(|| c.subject.clone()),
                c.issuer_cn.clone().unwrap_or_else(|| c.issuer.clone())
            )
        })
        .unwrap_or_else(|| "unknown signer".into());
    let alg = s.digest_algorithm.map(DigestAlgorithm::name).unwrap_or("?");
    let nested = if s.nested_in.is_some() { "nested " } else { "" };
    format!(
        "{nested}signature {}: {who}, {alg}: {} ({})",
        s.number(),
        s.verdict.name(),
        s.reason
    )
}
