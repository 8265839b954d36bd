//! `ukitool keys`: make a Secure Boot key set (PK, KEK, db) and export the `.esl` and
//! `.auth` files that enrol it. The core does the work; this reads and writes files
//! and supplies what the core may not have: entropy and the clock.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ukitool_core::command::keys as cmd;
use ukitool_core::guid::Guid;
use ukitool_core::keys::{self, KeyAlgorithm, KeySet, Role};

use crate::build::{source_date_epoch, write_atomic};

#[derive(clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(clap::Subcommand)]
enum KeysCommand {
    /// Make PK (self-signed), KEK (certified by PK) and db (certified by KEK): DIR gets
    /// PK.key PK.crt KEK.key KEK.crt db.key db.crt (PEM) and GUID (the owner GUID)
    Create(CreateArgs),
    /// Write PK, KEK, db (and dbx) as EFI signature lists (.esl) and signed
    /// time-based authenticated variables (.auth): PK and KEK signed by PK, db and dbx
    /// by KEK, as efitools' sign-efi-sig-list does
    Export(ExportArgs),
}

#[derive(clap::Args)]
struct CreateArgs {
    /// The key directory to create (it must not hold keys already)
    dir: PathBuf,
    /// Put in every subject: CN=<NAME> Platform Key, O=<NAME>
    #[arg(long, default_value = keys::DEFAULT_NAME)]
    name: String,
    /// rsa2048, rsa3072 or rsa4096 (firmware verifies RSA only)
    #[arg(long, default_value = keys::DEFAULT_ALGORITHM)]
    algorithm: String,
    /// Owner GUID of the signature list entries (default: a random one)
    #[arg(long, value_name = "GUID")]
    owner_guid: Option<String>,
    /// Certificate lifetime in days
    #[arg(long, default_value_t = keys::DEFAULT_VALID_DAYS)]
    valid_days: u32,
    /// notBefore, Unix seconds (default: $SOURCE_DATE_EPOCH, else now)
    #[arg(long, value_name = "SECONDS")]
    timestamp: Option<u64>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// A key directory (from `keys create`, or PK/KEK/db .key and .crt files)
    dir: PathBuf,
    /// Output directory for PK.esl PK.auth KEK.esl KEK.auth db.esl db.auth (dbx.*)
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// Also trust this in db: a certificate (PEM or DER) or an EFI signature list,
    /// e.g. Microsoft's UEFI CA (repeatable)
    #[arg(long, value_name = "CERT")]
    append_db: Vec<PathBuf>,
    /// dbx contents: an EFI signature list (.esl, .auth, efivarfs) or a certificate
    /// (repeatable); without it no dbx is written
    #[arg(long, value_name = "FILE")]
    dbx: Vec<PathBuf>,
    /// The .auth timestamp, Unix seconds (default: $SOURCE_DATE_EPOCH, else now)
    #[arg(long, value_name = "SECONDS")]
    timestamp: Option<u64>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: KeysArgs) -> Result<ExitCode> {
    match a.command {
        KeysCommand::Create(a) => create(a),
        KeysCommand::Export(a) => export(a),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The time for `given`, `SOURCE_DATE_EPOCH` or the clock.
pub fn timestamp(given: Option<u64>) -> Result<u64> {
    Ok(cmd::timestamp(
        given,
        source_date_epoch().as_deref(),
        now(),
    )?)
}

fn create(a: CreateArgs) -> Result<ExitCode> {
    let opts = keys::CreateOptions {
        name: a.name.clone(),
        algorithm: KeyAlgorithm::parse(&a.algorithm)?,
        owner: a.owner_guid.as_deref().map(Guid::parse).transpose()?,
        not_before: timestamp(a.timestamp)?,
        valid_days: a.valid_days,
    };
    for r in Role::ALL {
        for f in [r.key_file(), r.cert_file()] {
            let p = a.dir.join(&f);
            if p.exists() {
                bail!("{} exists: refusing to replace a key", p.display());
            }
        }
    }
    let (files, created) = cmd::create(&opts, &mut rand_core::OsRng)?;
    std::fs::create_dir_all(&a.dir).with_context(|| a.dir.display().to_string())?;
    for (name, data) in &files {
        let p = a.dir.join(name);
        write_atomic(&p, data)?;
        if name.ends_with(".key") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                .with_context(|| p.display().to_string())?;
        }
    }
    let mut w = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut w, &created)?;
        writeln!(w)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(w, "{}: owner GUID {:x}", a.dir.display(), created.owner)?;
    for (role, c) in &created.certificates {
        writeln!(
            w,
            "  {:<4} {} (issuer {}, serial {}, valid {} .. {})",
            role.name(),
            c.subject_cn.as_deref().unwrap_or(&c.subject),
            c.issuer_cn.as_deref().unwrap_or(&c.issuer),
            c.serial,
            c.not_before.as_deref().unwrap_or("?"),
            c.not_after.as_deref().unwrap_or("?"),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Read a key directory: `PK.key PK.crt KEK.key KEK.crt db.key db.crt`, and `GUID`
/// when present (the core's [`KeySet::from_files`] reads them, as the page does).
pub fn load_key_set(dir: &Path) -> Result<KeySet> {
    let mut files = std::collections::BTreeMap::new();
    for name in Role::ALL
        .iter()
        .flat_map(|r| [r.key_file(), r.cert_file()])
        .chain([keys::GUID_FILE.to_string()])
    {
        let p = dir.join(&name);
        match std::fs::read(&p) {
            Ok(d) => {
                files.insert(name, d);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == keys::GUID_FILE => {}
            Err(e) => return Err(e).with_context(|| p.display().to_string()),
        }
    }
    KeySet::from_files(|n| files.get(n).map(Vec::as_slice))
        .with_context(|| dir.display().to_string())
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>> {
    paths
        .iter()
        .map(|p| {
            let d = std::fs::read(p).with_context(|| p.display().to_string())?;
            Ok((p.display().to_string(), d))
        })
        .collect()
}

fn borrow(v: &[(String, Vec<u8>)]) -> Vec<(String, &[u8])> {
    v.iter().map(|(n, d)| (n.clone(), d.as_slice())).collect()
}

fn export(a: ExportArgs) -> Result<ExitCode> {
    let set = load_key_set(&a.dir)?;
    let append = read_all(&a.append_db)?;
    let dbx = read_all(&a.dbx)?;
    let opts = cmd::ExportOptions {
        append_db: borrow(&append),
        dbx: borrow(&dbx),
        timestamp: timestamp(a.timestamp)?,
    };
    // Everything is computed before anything is written: a refusal leaves no file.
    let (files, exported) = cmd::export(&set, &opts)?;
    std::fs::create_dir_all(&a.output).with_context(|| a.output.display().to_string())?;
    for (name, data) in &files {
        write_atomic(&a.output.join(name), data)?;
    }
    let mut w = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut w, &exported)?;
        writeln!(w)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        w,
        "{}: timestamp {}",
        a.output.display(),
        exported.timestamp
    )?;
    for v in &exported.variables {
        writeln!(
            w,
            "  {:<4} {} entr{}, {}.esl {} bytes, {}.auth {} bytes, signed by {}",
            v.name,
            v.entries,
            if v.entries == 1 { "y" } else { "ies" },
            v.name,
            v.esl_size,
            v.name,
            v.auth_size,
            v.signed_by
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
