//! The certificate table and the PKCS#7 SignedData of Authenticode (RFC 2315, the
//! Authenticode PE specification). Parsing keeps borrowed spans of the input so the
//! verifier can hash exactly the bytes that were signed.

use const_oid::ObjectIdentifier;
use der::Decode;

use super::asn1::{self, Reader, Tlv};
use super::cert::{self, Certificate};
use super::hash::DigestAlgorithm;
use super::oid;
use crate::bytes;
use crate::error::{Error, Result};
use crate::pe::PeFile;

/// WIN_CERTIFICATE revision 2.0 and type PKCS#7 SignedData (WinTrust.h).
pub const WIN_CERT_REVISION_2_0: u16 = 0x0200;
pub const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;
pub const WIN_CERTIFICATE_HEADER: u64 = 8;

/// One WIN_CERTIFICATE entry of the certificate table.
#[derive(Debug, Clone, Copy)]
pub struct CertEntry<'a> {
    /// File offset of the entry header.
    pub offset: u64,
    pub length: u32,
    pub revision: u16,
    pub cert_type: u16,
    /// bCertificate: the DER (plus any padding the signer left).
    pub data: &'a [u8],
    /// File offset of `data`.
    pub data_offset: u64,
}

/// Walk the certificate table: every entry inside the table, 8-byte aligned
/// (PE/COFF spec, "The Attribute Certificate Table"). Revision and type are
/// reported, not enforced here: a strange entry makes that signature malformed,
/// not the whole table. An entry that does not fit is an error.
pub fn certificate_entries<'a>(pe: &PeFile<'a>) -> Result<Vec<CertEntry<'a>>> {
    let (entries, problem) = walk_certificate_table(pe);
    match problem {
        Some(e) => Err(e),
        None => Ok(entries),
    }
}

/// The walk as firmware does it (EDK2 DxeImageVerificationLib): entries are taken
/// in order until one does not fit; the entries before it still count. Returns
/// them and the problem that ended the walk, if any.
pub fn walk_certificate_table<'a>(pe: &PeFile<'a>) -> (Vec<CertEntry<'a>>, Option<Error>) {
    let mut out = Vec::new();
    let problem = walk_into(pe, &mut out).err();
    (out, problem)
}

fn walk_into<'a>(pe: &PeFile<'a>, out: &mut Vec<CertEntry<'a>>) -> Result<()> {
    let Some(dir) = pe.certificate_table() else {
        return Ok(());
    };
    let dir_at = pe.security_dir_offset.unwrap_or(0);
    let start = u64::from(dir.virtual_address);
    let end = bytes::span_end(dir.virtual_address, dir.size);
    if start % 8 != 0 {
        return Err(Error::malformed(
            dir_at,
            format!("certificate table at {start:#x} is not 8-byte aligned"),
        ));
    }
    if end > pe.data.len() as u64 {
        return Err(Error::malformed(
            dir_at,
            format!(
                "certificate table {start:#x}..{end:#x} runs past the end of the file ({:#x})",
                pe.data.len()
            ),
        ));
    }
    let mut at = start;
    while let Some(left) = end.checked_sub(at).filter(|&n| n > 0) {
        let entry = bytes::slice(pe.data, at, left, "certificate table")?;
        let Some((header, after)) = entry.split_first_chunk::<8>() else {
            return Err(Error::malformed(
                at,
                format!(
                    "{left} bytes left in the certificate table: too few for a WIN_CERTIFICATE header"
                ),
            ));
        };
        let [l0, l1, l2, l3, r0, r1, t0, t1] = *header;
        let length = u32::from_le_bytes([l0, l1, l2, l3]);
        let len = u64::from(length);
        let data = len
            .checked_sub(WIN_CERTIFICATE_HEADER)
            .filter(|_| len <= left)
            .and_then(|n| after.get(..usize::try_from(n).ok()?))
            .ok_or_else(|| {
                Error::malformed(
                    at,
                    format!("WIN_CERTIFICATE dwLength {len} must be at least 8 and fit in the table ({left} bytes left)"),
                )
            })?;
        out.push(CertEntry {
            offset: at,
            length,
            revision: u16::from_le_bytes([r0, r1]),
            cert_type: u16::from_le_bytes([t0, t1]),
            data,
            data_offset: at.saturating_add(WIN_CERTIFICATE_HEADER),
        });
        // The next entry starts at the next 8-byte boundary; signers that do not pad
        // the last entry are tolerated by ending the walk at the table's end.
        at = at
            .checked_add(len)
            .and_then(|e| bytes::align_up(e, 8))
            .unwrap_or(end)
            .min(end);
    }
    Ok(())
}

/// A counter-signature or RFC 3161 timestamp attached to a signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Timestamp {
    /// `counter-signature` or `rfc3161`.
    pub kind: &'static str,
    pub time: Option<String>,
    pub signer_issuer_cn: Option<String>,
    pub signer_serial: Option<String>,
}

/// The SignerInfo of an Authenticode signature.
#[derive(Debug, Clone)]
pub struct SignerInfo<'a> {
    pub offset: u64,
    /// DER Name and serial content octets (IssuerAndSerialNumber), or a key id.
    pub issuer: Option<&'a [u8]>,
    pub serial: Option<&'a [u8]>,
    pub subject_key_id: Option<&'a [u8]>,
    pub digest_algorithm: DigestAlgorithm,
    /// The signed attributes re-encoded as a DER SET OF (what the signature covers).
    pub signed_attrs: Option<Vec<u8>>,
    pub message_digest: Option<&'a [u8]>,
    pub signing_time: Option<String>,
    pub program_name: Option<String>,
    pub signature_algorithm: ObjectIdentifier,
    pub signature: &'a [u8],
    /// Nested signatures (unsigned attribute 1.3.6.1.4.1.311.2.4.1): ContentInfos.
    pub nested: Vec<Tlv<'a>>,
    pub timestamps: Vec<Timestamp>,
}

/// An Authenticode PKCS#7 SignedData.
#[derive(Debug, Clone)]
pub struct SignedData<'a> {
    pub offset: u64,
    /// SpcIndirectDataContent: the image digest and its algorithm.
    pub digest_algorithm: DigestAlgorithm,
    pub digest: &'a [u8],
    /// The content octets of SpcIndirectDataContent (what messageDigest hashes,
    /// RFC 2315 §9.3).
    pub content: &'a [u8],
    pub certificates: Vec<Certificate>,
    pub signer: SignerInfo<'a>,
}

fn digest_alg(t: Tlv<'_>, what: &str) -> Result<DigestAlgorithm> {
    let at = t.offset;
    let o = asn1::algorithm(t, what)?;
    oid::digest_algorithm(&o)
        .ok_or_else(|| Error::malformed(at, format!("{what}: unsupported digest algorithm {o}")))
}

/// Parse a ContentInfo holding an Authenticode SignedData. `data` may carry
/// padding after the DER; `offset` is the file offset of `data[0]`.
pub fn parse_signed_data(data: &[u8], offset: u64) -> Result<SignedData<'_>> {
    let mut top = Reader::new(data, offset);
    let ci = top.expect_tag(asn1::TAG_SEQUENCE, "ContentInfo")?;
    parse_content_info(ci)
}

/// Parse a ContentInfo element (top-level or nested).
pub fn parse_content_info(ci: Tlv<'_>) -> Result<SignedData<'_>> {
    let mut r = ci.expect_tag(asn1::TAG_SEQUENCE, "ContentInfo")?.reader();
    let ty = r.read("ContentInfo contentType")?;
    if ty.oid("ContentInfo contentType")? != oid::SIGNED_DATA {
        return Err(Error::malformed(
            ty.offset,
            "ContentInfo contentType is not signedData (1.2.840.113549.1.7.2)",
        ));
    }
    let explicit = r.expect_tag(asn1::context(0), "ContentInfo content")?;
    let mut er = explicit.reader();
    let sd = er.expect_tag(asn1::TAG_SEQUENCE, "SignedData")?;
    let mut s = sd.reader();
    s.expect_tag(asn1::TAG_INTEGER, "SignedData version")?;
    // OpenSSL (sbverify, EDK2) sets up one digest per digestAlgorithms entry and
    // fails on an unknown one, and needs the signer's among them.
    let algs = s.expect_tag(asn1::TAG_SET, "SignedData digestAlgorithms")?;
    let mut digest_algorithms = Vec::new();
    let mut ar = algs.reader();
    while !ar.is_empty() {
        digest_algorithms.push(digest_alg(
            ar.read("digestAlgorithms entry")?,
            "digestAlgorithms entry",
        )?);
    }

    // encapContentInfo: SpcIndirectDataContent.
    let eci = s.expect_tag(asn1::TAG_SEQUENCE, "SignedData contentInfo")?;
    let mut e = eci.reader();
    let ety = e.read("contentInfo contentType")?;
    if ety.oid("contentInfo contentType")? != oid::SPC_INDIRECT_DATA {
        return Err(Error::malformed(
            ety.offset,
            "contentInfo contentType is not SpcIndirectDataContent (1.3.6.1.4.1.311.2.1.4)",
        ));
    }
    let econtent = e.expect_tag(asn1::context(0), "SpcIndirectDataContent wrapper")?;
    let idc = econtent
        .reader()
        .expect_tag(asn1::TAG_SEQUENCE, "SpcIndirectDataContent")?;
    let mut ir = idc.reader();
    ir.expect_tag(asn1::TAG_SEQUENCE, "SpcAttributeTypeAndOptionalValue")?;
    let digest_info = ir.expect_tag(asn1::TAG_SEQUENCE, "DigestInfo")?;
    let mut dr = digest_info.reader();
    let digest_algorithm = digest_alg(dr.read("DigestInfo algorithm")?, "DigestInfo algorithm")?;
    let digest = dr.expect_tag(asn1::TAG_OCTET_STRING, "DigestInfo digest")?;
    if digest.value.len() != digest_algorithm.output_len() {
        return Err(Error::malformed(
            digest.offset,
            format!(
                "DigestInfo digest is {} bytes, {} needs {}",
                digest.value.len(),
                digest_algorithm.name(),
                digest_algorithm.output_len()
            ),
        ));
    }

    let mut certificates = Vec::new();
    if let Some(certs) = s.optional(asn1::context(0), "SignedData certificates")? {
        let mut cr = certs.reader();
        while !cr.is_empty() {
            let c = cr.read("certificate")?;
            // Only X.509 certificates (SEQUENCE); attribute certificates are skipped.
            if c.tag == asn1::TAG_SEQUENCE {
                certificates.push(Certificate::parse(c.full, c.offset)?);
            }
        }
    }
    s.optional(asn1::context(1), "SignedData crls")?;
    let signer_infos = s.expect_tag(asn1::TAG_SET, "SignedData signerInfos")?;
    let mut sr = signer_infos.reader();
    let si = sr.expect_tag(asn1::TAG_SEQUENCE, "SignerInfo")?;
    if !sr.is_empty() {
        return Err(Error::malformed(
            signer_infos.offset,
            "Authenticode allows exactly one SignerInfo; found more",
        ));
    }
    let signer = parse_signer_info(si)?;
    if !digest_algorithms.contains(&signer.digest_algorithm) {
        return Err(Error::malformed(
            algs.offset,
            format!(
                "SignerInfo digest {} is not among the SignedData digestAlgorithms",
                signer.digest_algorithm.name()
            ),
        ));
    }
    Ok(SignedData {
        offset: ci.offset,
        digest_algorithm,
        digest: digest.value,
        content: idc.value,
        certificates,
        signer,
    })
}

/// DER SET OF ordering (X.690 §11.6): encodings compared as octet strings, the
/// shorter padded with zeros. OpenSSL re-encodes signed attributes this way before
/// verifying, so firmware verifies over the sorted form.
fn der_set_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    let pa = a.iter().copied().chain(std::iter::repeat(0)).take(n);
    let pb = b.iter().copied().chain(std::iter::repeat(0)).take(n);
    pa.cmp(pb)
}

fn parse_signer_info(si: Tlv<'_>) -> Result<SignerInfo<'_>> {
    let mut r = si.reader();
    r.expect_tag(asn1::TAG_INTEGER, "SignerInfo version")?;
    let sid = r.read("SignerInfo sid")?;
    let (issuer, serial, subject_key_id) = match sid.tag {
        asn1::TAG_SEQUENCE => {
            let mut ir = sid.reader();
            let name = ir.expect_tag(asn1::TAG_SEQUENCE, "IssuerAndSerialNumber issuer")?;
            let serial = ir.expect_tag(asn1::TAG_INTEGER, "IssuerAndSerialNumber serialNumber")?;
            (Some(name.full), Some(serial.value), None)
        }
        t if t == asn1::context_primitive(0) => (None, None, Some(sid.value)),
        t => {
            return Err(Error::malformed(
                sid.offset,
                format!("SignerInfo sid: unexpected tag {t:#04x}"),
            ))
        }
    };
    let digest_algorithm = digest_alg(
        r.read("SignerInfo digestAlgorithm")?,
        "SignerInfo digestAlgorithm",
    )?;
    let mut info = SignerInfo {
        offset: si.offset,
        issuer,
        serial,
        subject_key_id,
        digest_algorithm,
        signed_attrs: None,
        message_digest: None,
        signing_time: None,
        program_name: None,
        signature_algorithm: oid::RSA_ENCRYPTION,
        signature: &[],
        nested: Vec::new(),
        timestamps: Vec::new(),
    };
    if let Some(attrs) = r.optional(asn1::context(0), "SignerInfo signedAttrs")? {
        let mut ar = attrs.reader();
        let mut encodings = Vec::new();
        while !ar.is_empty() {
            let a = ar.expect_tag(asn1::TAG_SEQUENCE, "signed attribute")?;
            encodings.push(a.full);
            let mut a_r = a.reader();
            let ty = a_r.read("attribute type")?.oid("attribute type")?;
            let values = a_r.expect_tag(asn1::TAG_SET, "attribute values")?;
            let first = values.reader().read("attribute value");
            match ty {
                oid::MESSAGE_DIGEST => {
                    if info.message_digest.is_some() {
                        return Err(Error::malformed(
                            a.offset,
                            "messageDigest attribute appears twice",
                        ));
                    }
                    let v = first?.expect_tag(asn1::TAG_OCTET_STRING, "messageDigest")?;
                    info.message_digest = Some(v.value);
                }
                oid::SIGNING_TIME => {
                    info.signing_time = first.ok().and_then(|v| time_string(v.full));
                }
                oid::SPC_SP_OPUS_INFO => {
                    info.program_name = first.ok().and_then(opus_program_name);
                }
                _ => {}
            }
        }
        encodings.sort_by(|a, b| der_set_order(a, b));
        let body: usize = encodings.iter().map(|e| e.len()).sum();
        let mut der = Vec::with_capacity(body.saturating_add(6));
        der.push(asn1::TAG_SET);
        asn1::encode_len(&mut der, body);
        for e in encodings {
            der.extend_from_slice(e);
        }
        info.signed_attrs = Some(der);
    }
    info.signature_algorithm = asn1::algorithm(
        r.read("SignerInfo signatureAlgorithm")?,
        "SignerInfo signatureAlgorithm",
    )?;
    info.signature = r
        .expect_tag(asn1::TAG_OCTET_STRING, "SignerInfo signature")?
        .value;
    if let Some(unsigned) = r.optional(asn1::context(1), "SignerInfo unsignedAttrs")? {
        let mut ur = unsigned.reader();
        while !ur.is_empty() {
            let a = ur.expect_tag(asn1::TAG_SEQUENCE, "unsigned attribute")?;
            let mut a_r = a.reader();
            let ty = a_r.read("attribute type")?.oid("attribute type")?;
            let values = a_r.expect_tag(asn1::TAG_SET, "attribute values")?;
            let mut vr = values.reader();
            while !vr.is_empty() {
                let v = vr.read("attribute value")?;
                match ty {
                    oid::SPC_NESTED_SIGNATURE => info.nested.push(v),
                    oid::COUNTER_SIGNATURE => info.timestamps.push(counter_signature(v)),
                    oid::MS_RFC3161_TIMESTAMP => info.timestamps.push(rfc3161(v)),
                    _ => {}
                }
            }
        }
    }
    r.finish("SignerInfo")?;
    Ok(info)
}

fn time_string(der: &[u8]) -> Option<String> {
    if let Ok(t) = x509_cert::time::Time::from_der(der) {
        return Some(t.to_date_time().to_string());
    }
    // RFC 3161 genTime may carry fractional seconds, which DER GeneralizedTime
    // decoders refuse: YYYYMMDDHHMMSS[.f*]Z, rendered as RFC 3339.
    let t = Reader::new(der, 0).read("time").ok()?;
    let s = std::str::from_utf8(t.value).ok()?;
    let d = s.get(..14)?;
    if t.tag != 0x18 || !d.bytes().all(|b| b.is_ascii_digit()) || !s.ends_with('Z') {
        return None;
    }
    let frac = s
        .get(14..)
        .and_then(|f| f.strip_suffix('Z'))
        .unwrap_or_default();
    Some(format!(
        "{}-{}-{}T{}:{}:{}{frac}Z",
        d.get(..4)?,
        d.get(4..6)?,
        d.get(6..8)?,
        d.get(8..10)?,
        d.get(10..12)?,
        d.get(12..14)?
    ))
}

/// SpcSpOpusInfo ::= SEQUENCE { programName [0] EXPLICIT SpcString OPTIONAL, ... };
/// SpcString ::= CHOICE { unicode [0] IMPLICIT BMPString, ascii [1] IMPLICIT IA5String }.
fn opus_program_name(v: Tlv<'_>) -> Option<String> {
    let mut r = v.reader();
    let pn = r.optional(asn1::context(0), "programName").ok()??;
    let s = pn.reader().read("SpcString").ok()?;
    if s.tag == asn1::context_primitive(0) {
        let units: Vec<u16> = s
            .value
            .chunks_exact(2)
            .map(|c| {
                u16::from_be_bytes([
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                ])
            })
            .collect();
        Some(String::from_utf16_lossy(&units))
    } else {
        Some(String::from_utf8_lossy(s.value).into_owned())
    }
}

/// A PKCS#9 counter-signature: a SignerInfo whose signed attributes hold the time.
fn counter_signature(v: Tlv<'_>) -> Timestamp {
    let parsed = parse_signer_info(v).ok();
    Timestamp {
        kind: "counter-signature",
        time: parsed.as_ref().and_then(|s| s.signing_time.clone()),
        signer_issuer_cn: parsed
            .as_ref()
            .and_then(|s| s.issuer)
            .and_then(cert::common_name),
        signer_serial: parsed.as_ref().and_then(|s| s.serial).map(cert::serial_hex),
    }
}

/// An RFC 3161 timestamp token: a SignedData whose content is a TSTInfo
/// (genTime is its fifth field).
fn rfc3161(v: Tlv<'_>) -> Timestamp {
    let mut ts = Timestamp {
        kind: "rfc3161",
        time: None,
        signer_issuer_cn: None,
        signer_serial: None,
    };
    let walk = || -> Result<(Option<String>, Option<String>, Option<String>)> {
        let mut r = v.reader();
        r.read("ContentInfo contentType")?;
        let sd = r
            .expect_tag(asn1::context(0), "content")?
            .reader()
            .expect_tag(asn1::TAG_SEQUENCE, "SignedData")?;
        let mut s = sd.reader();
        s.read("version")?;
        s.read("digestAlgorithms")?;
        let eci = s.expect_tag(asn1::TAG_SEQUENCE, "encapContentInfo")?;
        let mut e = eci.reader();
        e.read("eContentType")?;
        let octets = e
            .expect_tag(asn1::context(0), "eContent")?
            .reader()
            .expect_tag(asn1::TAG_OCTET_STRING, "eContent")?;
        let tst = octets.reader().expect_tag(asn1::TAG_SEQUENCE, "TSTInfo")?;
        let mut t = tst.reader();
        for what in ["version", "policy", "messageImprint", "serialNumber"] {
            t.read(what)?;
        }
        let time = time_string(t.read("genTime")?.full);
        s.optional(asn1::context(0), "certificates")?;
        s.optional(asn1::context(1), "crls")?;
        let si = s
            .expect_tag(asn1::TAG_SET, "signerInfos")?
            .reader()
            .expect_tag(asn1::TAG_SEQUENCE, "SignerInfo")?;
        let signer = parse_signer_info(si).ok();
        Ok((
            time,
            signer
                .as_ref()
                .and_then(|s| s.issuer)
                .and_then(cert::common_name),
            signer.as_ref().and_then(|s| s.serial).map(cert::serial_hex),
        ))
    };
    if let Ok((time, cn, serial)) = walk() {
        ts.time = time;
        ts.signer_issuer_cn = cn;
        ts.signer_serial = serial;
    }
    ts
}
