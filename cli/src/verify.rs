//! `ukitool verify`: Authenticode signatures (and .pcrsig) against trust anchors.
//!
//! Exit codes: 0 valid (and trusted when anchors were given); 1 a negative verdict
//! (unsigned, untrusted, revoked, hash-mismatch, bad-signature, or a failed .pcrsig);
//! 2 unreadable or malformed input, or a usage error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ukitool_core::authenticode::verify::ID_SUBJECT_KEY_ID;
use ukitool_core::authenticode::TrustStore;
use ukitool_core::command::{self, verify::Verification};
use ukitool_core::siglist;

use crate::input::Input;

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The PE or UKI to verify
    pub file: PathBuf,
    /// A trust anchor certificate, PEM (one or more) or DER; repeatable
    #[arg(long = "cert", value_name = "PEM|DER")]
    pub certs: Vec<PathBuf>,
    /// A db: EFI signature list (.esl), efivarfs variable or .auth file; X.509
    /// entries are anchors, SHA-256 entries authorise an image hash directly
    #[arg(long, value_name = "FILE")]
    pub db: Vec<PathBuf>,
    /// A dbx: revoked certificates and image hashes
    #[arg(long, value_name = "FILE")]
    pub dbx: Vec<PathBuf>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{}", path.display()))
}

pub fn trust_store(a: &VerifyArgs) -> Result<TrustStore> {
    let mut t = TrustStore::default();
    for p in &a.certs {
        t.add_cert_file(&read(p)?)
            .with_context(|| format!("certificate {}", p.display()))?;
    }
    for p in &a.db {
        let db = siglist::parse(&read(p)?).with_context(|| format!("db {}", p.display()))?;
        t.add_db(&db)
            .with_context(|| format!("db {}", p.display()))?;
    }
    for p in &a.dbx {
        let db = siglist::parse(&read(p)?).with_context(|| format!("dbx {}", p.display()))?;
        t.add_dbx(&db)
            .with_context(|| format!("dbx {}", p.display()))?;
    }
    Ok(t)
}

pub fn run(a: VerifyArgs) -> Result<ExitCode> {
    let trust = trust_store(&a)?;
    let input = Input::open(&a.file)?;
    let name = a.file.display().to_string();
    let out = command::verify(&name, &input, &trust).with_context(|| name.clone())?;
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    if a.json {
        serde_json::to_writer_pretty(&mut w, &out)?;
        writeln!(w)?;
    } else {
        print_human(&mut w, &out)?;
    }
    Ok(ExitCode::from(out.exit_code()))
}

pub fn print_human(w: &mut dyn Write, out: &Verification) -> std::io::Result<()> {
    let r = &out.report;
    writeln!(w, "{}", out.file)?;
    match r.certificate_table {
        Some((off, size)) => writeln!(w, "  certificate table: {off:#x}, {size} bytes")?,
        None => writeln!(w, "  certificate table: none")?,
    }
    for (alg, d) in &r.image_digests {
        writeln!(w, "  image {}: {d}", alg.name())?;
    }
    for s in &r.signatures {
        let nested = s
            .nested_in
            .map(|p| format!(" (nested in signature {})", p + 1))
            .unwrap_or_default();
        writeln!(w, "signature {} at {:#x}{nested}", s.index + 1, s.offset)?;
        if s.signer_identified_by == Some(ID_SUBJECT_KEY_ID) {
            writeln!(w, "  signer id: subjectKeyIdentifier (CMS v3 SignerInfo)")?;
        }
        if let Some(c) = &s.signer {
            writeln!(
                w,
                "  signer:    {}",
                c.subject_cn.as_deref().unwrap_or(&c.subject)
            )?;
            writeln!(
                w,
                "  issuer:    {}",
                c.issuer_cn.as_deref().unwrap_or(&c.issuer)
            )?;
            writeln!(w, "  serial:    {}", c.serial)?;
            if let Some(k) = &s.signer_key {
                writeln!(w, "  key:       {k}")?;
            }
            writeln!(
                w,
                "  validity:  {} .. {} (not checked: firmware has no trusted clock)",
                c.not_before.as_deref().unwrap_or("?"),
                c.not_after.as_deref().unwrap_or("?")
            )?;
        }
        if let Some(alg) = s.digest_algorithm {
            let m = match s.digest_matches {
                Some(true) => "matches the image",
                Some(false) => "DIFFERS from the image",
                None => "not computed",
            };
            writeln!(
                w,
                "  digest:    {} {} ({m})",
                alg.name(),
                s.signed_digest.as_deref().unwrap_or("")
            )?;
        }
        if let Some(t) = &s.signing_time {
            writeln!(w, "  signed at: {t}")?;
        }
        for t in &s.timestamps {
            writeln!(
                w,
                "  timestamp: {} {} by {}",
                t.kind,
                t.time.as_deref().unwrap_or("?"),
                t.signer_issuer_cn.as_deref().unwrap_or("?")
            )?;
        }
        if !s.chain.is_empty() {
            let end = match (&s.trusted_by, &s.chain_ends_at) {
                (Some(_), _) => " [anchor]".to_string(),
                // A self-signed last certificate is where the chain ends: not twice.
                (None, Some(e)) if s.chain.last() == Some(e) => " [not an anchor]".to_string(),
                (None, Some(e)) => format!(" -> {e} [not an anchor]"),
                _ => String::new(),
            };
            writeln!(w, "  chain:     {}{end}", s.chain.join(" -> "))?;
        }
        writeln!(w, "  verdict:   {}: {}", s.verdict.name(), s.reason)?;
    }
    if let Some(p) = &out.pcrsig.pcrsig {
        let ok = p.entries.iter().filter(|e| e.problem.is_none()).count();
        writeln!(
            w,
            ".pcrsig: {ok}/{} entries valid (key {})",
            p.entries.len(),
            p.key_fingerprint
        )?;
        for e in p.entries.iter().filter(|e| e.problem.is_some()) {
            writeln!(
                w,
                "  {} pol {}: {}",
                e.bank,
                e.pol,
                e.problem.as_deref().unwrap_or("")
            )?;
        }
    }
    if let Some(e) = &out.pcrsig.pcrsig_error {
        writeln!(w, ".pcrsig: {e}")?;
    }
    for l in &r.lints {
        writeln!(w, "lint {}: {}", l.id, l.message)?;
    }
    writeln!(w, "verdict: {}: {}", r.verdict.name(), r.reason)
}
