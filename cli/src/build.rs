//! `ukitool build`, `ukitool sign` and `ukitool measure`: argument parsing, input
//! loading and atomic output. The work is done by ukitool_core::{build, sign, measure}.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ukitool_core::authenticode::DigestAlgorithm;
use ukitool_core::build::{self, BuildSpec, NamedPart, ProfileSpec};
use ukitool_core::measure::{self, Part, Prediction};
use ukitool_core::pcrsig;
use ukitool_core::pe::PeFile;
use ukitool_core::sign::{self, SignOptions, SigningKey};

use crate::input::Input;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The UEFI stub (e.g. /usr/lib/systemd/boot/efi/linuxx64.efi.stub); an addon stub
    /// when --linux is absent
    #[arg(long, value_name = "FILE")]
    pub stub: PathBuf,
    /// The kernel (.linux); without it an addon is built
    #[arg(long, value_name = "FILE")]
    pub linux: Option<PathBuf>,
    /// Initrd (.initrd); repeatable, concatenated in order
    #[arg(long, value_name = "FILE")]
    pub initrd: Vec<PathBuf>,
    /// Microcode cpio (.ucode)
    #[arg(long, value_name = "FILE")]
    pub ucode: Option<PathBuf>,
    /// Kernel command line (.cmdline)
    #[arg(long, value_name = "TEXT|@FILE")]
    pub cmdline: Option<String>,
    /// os-release (.osrel)
    #[arg(long, value_name = "TEXT|@FILE")]
    pub os_release: Option<String>,
    /// Kernel release (.uname); read from the kernel's setup header when omitted
    #[arg(long, value_name = "TEXT")]
    pub uname: Option<String>,
    /// Boot splash, a BMP image (.splash)
    #[arg(long, value_name = "BMP")]
    pub splash: Option<PathBuf>,
    /// Device tree (.dtb)
    #[arg(long, value_name = "DTB")]
    pub devicetree: Option<PathBuf>,
    /// Device tree matched against the hardware (.dtbauto); repeatable
    #[arg(long, value_name = "DTB")]
    pub devicetree_auto: Vec<PathBuf>,
    /// Hardware id table (.hwids)
    #[arg(long, value_name = "FILE")]
    pub hwids: Option<PathBuf>,
    /// Firmware blob (.efifw); repeatable
    #[arg(long, value_name = "FILE")]
    pub efifw: Vec<PathBuf>,
    /// Public key for PCR signatures (.pcrpkey), PEM
    #[arg(long, value_name = "PEM")]
    pub pcrpkey: Option<PathBuf>,
    /// SBAT text merged with the stub's and kernel's .sbat; repeatable
    #[arg(long, value_name = "TEXT|@FILE")]
    pub sbat: Vec<String>,
    /// Extra section; after a --profile it belongs to that profile; repeatable
    #[arg(long, value_name = "NAME:FILE")]
    pub section: Vec<String>,
    /// Start a profile block (.profile, ID=/TITLE= lines); the --section options after
    /// it are that profile's; repeatable
    #[arg(long, value_name = "TEXT|@FILE")]
    pub profile: Vec<String>,
    /// COFF TimeDateStamp (seconds); default SOURCE_DATE_EPOCH, else the stub's
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<u32>,
    /// Sign the result (Authenticode) with this private key (PEM)
    #[arg(long, value_name = "KEY.pem", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Signer certificate (PEM) for --key
    #[arg(long, value_name = "CERT.pem", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Extra certificates to include with the signature; repeatable
    #[arg(long, value_name = "CERT.pem")]
    pub chain: Vec<PathBuf>,
    /// File holding the password of an encrypted --key or --pcr-key
    #[arg(long, value_name = "FILE")]
    pub key_password_file: Option<PathBuf>,
    /// Sign PCR 11 policies with this RSA key and embed them as .pcrsig (+ .pcrpkey)
    #[arg(long, value_name = "KEY.pem")]
    pub pcr_key: Option<PathBuf>,
    /// PCR banks to sign with --pcr-key; repeatable
    #[arg(long, value_name = "BANK", default_value = "sha256")]
    pub pcr_bank: Vec<String>,
    /// Boot phase paths to sign with --pcr-key; repeatable (default: systemd's four)
    #[arg(long, value_name = "PHASE")]
    pub phase: Vec<String>,
    /// Output file (written to a temporary file, then renamed)
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// The PE image to sign
    pub file: PathBuf,
    /// Private key, PEM (PKCS#1, PKCS#8, encrypted PKCS#8, SEC1 P-256)
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,
    /// Signer certificate, PEM
    #[arg(long, value_name = "CERT.pem")]
    pub cert: PathBuf,
    /// Extra certificates to include; repeatable
    #[arg(long, value_name = "CERT.pem")]
    pub chain: Vec<PathBuf>,
    /// Add a second signature to a signed image (dual signing)
    #[arg(long)]
    pub append: bool,
    /// File holding the password of an encrypted key
    #[arg(long, value_name = "FILE")]
    pub key_password_file: Option<PathBuf>,
    /// Add a signingTime attribute: seconds since the epoch, or `now`
    #[arg(long, value_name = "SECONDS|now")]
    pub signing_time: Option<String>,
    /// Output file (written to a temporary file, then renamed)
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct MeasureArgs {
    /// A UKI to measure; or give its parts with --linux, --osrel, ...
    pub file: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub linux: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub osrel: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub cmdline: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub initrd: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub ucode: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub splash: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub dtb: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub uname: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub sbat: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub pcrpkey: Option<PathBuf>,
    #[arg(long = "profile-text", value_name = "FILE", conflicts_with = "file")]
    pub profile_text: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub dtbauto: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub hwids: Option<PathBuf>,
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub efifw: Option<PathBuf>,
    /// Profile of a multi-profile UKI: the base plus profile N (default @0)
    #[arg(long, value_name = "N", requires = "file")]
    pub profile: Option<u32>,
    /// PCR banks (sha1, sha256, sha384, sha512); repeatable; default all four
    #[arg(long, value_name = "BANK")]
    pub bank: Vec<String>,
    /// Boot phase paths, e.g. enter-initrd:leave-initrd; repeatable
    #[arg(long, value_name = "PHASE")]
    pub phase: Vec<String>,
    /// Print JSON in systemd-measure's shape
    #[arg(long)]
    pub json: bool,
    /// Sign the policies with this RSA key and print the .pcrsig JSON
    #[arg(long, value_name = "KEY.pem")]
    pub sign: Option<PathBuf>,
    /// File holding the password of an encrypted --sign key
    #[arg(long, value_name = "FILE")]
    pub key_password_file: Option<PathBuf>,
}

/// `TEXT|@FILE`: literal text, or a file's bytes.
fn text_or_file(v: &str) -> Result<Vec<u8>> {
    match v.strip_prefix('@') {
        Some(path) => fs::read(path).with_context(|| path.to_string()),
        None => Ok(v.as_bytes().to_vec()),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| path.display().to_string())
}

fn open(path: &Path) -> Result<Input> {
    Input::open(path)
}

fn password(path: Option<&Path>) -> Result<Option<Vec<u8>>> {
    let Some(p) = path else { return Ok(None) };
    let mut pw = read(p)?;
    // A password file usually ends in a newline that is not part of the password.
    while pw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        pw.pop();
    }
    Ok(Some(pw))
}

fn load_key(path: &Path, pw: Option<&[u8]>) -> Result<SigningKey> {
    let pem = fs::read_to_string(path).with_context(|| path.display().to_string())?;
    SigningKey::from_pem(&pem, pw).with_context(|| path.display().to_string())
}

fn load_certs(path: &Path) -> Result<Vec<Vec<u8>>> {
    sign::certificates_from_pem(&read(path)?).with_context(|| path.display().to_string())
}

/// Write `bytes` to `out` atomically: a temporary file in the same directory, then a
/// rename, so an error never leaves a partial output behind.
pub fn write_atomic(out: &Path, bytes: &[u8]) -> Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .with_context(|| format!("{}: not a file name", out.display()))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let res = (|| -> Result<()> {
        let mut f = fs::File::create(&tmp).with_context(|| tmp.display().to_string())?;
        // No fsync: like objcopy and ukify, durability is left to the caller; the
        // rename still guarantees that `out` is never seen half-written.
        f.write_all(bytes)
            .with_context(|| tmp.display().to_string())?;
        fs::rename(&tmp, out).with_context(|| out.display().to_string())
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// The build's TimeDateStamp: --timestamp, else SOURCE_DATE_EPOCH, else the stub's.
fn timestamp(arg: Option<u32>) -> Result<Option<u32>> {
    if arg.is_some() {
        return Ok(arg);
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => {
            let t: u64 = v
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?;
            // The COFF field is 32 bits; clamp like reproducible-builds tools do.
            Ok(Some(u32::try_from(t).unwrap_or(u32::MAX)))
        }
        _ => Ok(None),
    }
}

/// Which `--section` values come after which `--profile`: clap's derive API keeps
/// each option's values apart, so the build subcommand's own arguments are parsed
/// again with their positions. Returns, per section value, the index of the profile
/// block it belongs to (`None`: the base).
fn section_owners(a: &BuildArgs) -> Vec<Option<usize>> {
    use clap::{Args, Command};
    let none = vec![None; a.section.len()];
    if a.profile.is_empty() {
        return none;
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    let Some(pos) = args.iter().position(|s| s == "build") else {
        return none;
    };
    let cmd = BuildArgs::augment_args(Command::new("build").no_binary_name(true));
    let Ok(m) = cmd.try_get_matches_from(args.get(pos + 1..).unwrap_or_default()) else {
        return none;
    };
    let profiles: Vec<usize> = m
        .indices_of("profile")
        .map(|i| i.collect())
        .unwrap_or_default();
    let sections: Vec<usize> = m
        .indices_of("section")
        .map(|i| i.collect())
        .unwrap_or_default();
    if sections.len() != a.section.len() {
        return none;
    }
    sections
        .iter()
        .map(|si| profiles.iter().rposition(|pi| pi < si))
        .collect()
}

pub fn run_build(a: BuildArgs) -> Result<ExitCode> {
    let stub = open(&a.stub)?;
    let linux = a.linux.as_deref().map(open).transpose()?;
    let initrds = a
        .initrd
        .iter()
        .map(|p| open(p))
        .collect::<Result<Vec<_>>>()?;
    let ucode = a.ucode.as_deref().map(read).transpose()?;
    let cmdline = a.cmdline.as_deref().map(text_or_file).transpose()?;
    let os_release = a.os_release.as_deref().map(text_or_file).transpose()?;
    let splash = a.splash.as_deref().map(read).transpose()?;
    let dtb = a.devicetree.as_deref().map(read).transpose()?;
    let dtbauto = a
        .devicetree_auto
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>>>()?;
    let hwids = a.hwids.as_deref().map(read).transpose()?;
    let efifw = a
        .efifw
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>>>()?;
    let sbat = a
        .sbat
        .iter()
        .map(|s| text_or_file(s))
        .collect::<Result<Vec<_>>>()?;
    let profiles_text = a
        .profile
        .iter()
        .map(|s| text_or_file(s))
        .collect::<Result<Vec<_>>>()?;
    let pw = password(a.key_password_file.as_deref())?;
    let pcr_key = a
        .pcr_key
        .as_deref()
        .map(|p| load_key(p, pw.as_deref()))
        .transpose()?;
    let pcrpkey = match (&a.pcrpkey, &pcr_key) {
        (Some(p), _) => Some(read(p)?),
        (None, Some(k)) => Some(k.public_key_pem()?.into_bytes()),
        (None, None) => None,
    };
    let mut sections: Vec<(String, Vec<u8>)> = Vec::new();
    for s in &a.section {
        let (name, path) = s
            .split_once(':')
            .with_context(|| format!("--section {s:?}: expected NAME:FILE"))?;
        let path = path.strip_prefix('@').unwrap_or(path);
        sections.push((name.to_string(), read(Path::new(path))?));
    }
    let owners = section_owners(&a);

    let mut spec = BuildSpec {
        stub: &stub,
        linux: linux.as_deref(),
        initrds: initrds.iter().map(|i| &**i).collect(),
        ucode: ucode.as_deref(),
        cmdline: cmdline.as_deref(),
        os_release: os_release.as_deref(),
        uname: a.uname.as_deref().map(str::as_bytes),
        splash: splash.as_deref(),
        devicetree: dtb.as_deref(),
        devicetree_auto: dtbauto.iter().map(Vec::as_slice).collect(),
        hwids: hwids.as_deref(),
        efifw: efifw.iter().map(Vec::as_slice).collect(),
        pcrpkey: pcrpkey.as_deref(),
        sbat: sbat.iter().map(Vec::as_slice).collect(),
        sections: Vec::new(),
        profiles: profiles_text
            .iter()
            .map(|t| ProfileSpec {
                text: t,
                sections: Vec::new(),
            })
            .collect(),
        timestamp: timestamp(a.timestamp)?,
    };
    for ((name, data), owner) in sections.iter().zip(&owners) {
        let part = NamedPart { name, data };
        match owner.and_then(|i| spec.profiles.get_mut(i)) {
            Some(p) => p.sections.push(part),
            None => spec.sections.push(part),
        }
    }
    let plan = build::plan(&spec)?;
    let mut pcrsigs = Vec::new();
    if let Some(key) = &pcr_key {
        let banks = a
            .pcr_bank
            .iter()
            .map(|b| measure::parse_bank(b))
            .collect::<ukitool_core::Result<Vec<_>>>()?;
        let blocks: Vec<Option<usize>> = if plan.profile_count() == 0 {
            vec![None]
        } else {
            (0..plan.profile_count()).map(Some).collect()
        };
        for b in blocks {
            let measured = plan.measured_parts(b)?;
            let parts: Vec<Part<'_>> = measured
                .iter()
                .map(|(name, chunks)| Part {
                    name,
                    chunks: chunks.clone(),
                })
                .collect();
            let preds = measure::predict(&parts, &banks, &a.phase)?;
            pcrsigs.push(pcrsig::sign(&preds, key)?.into_bytes());
        }
    }
    let mut image = plan.write(&pcrsigs)?;
    drop(plan);
    if let (Some(k), Some(c)) = (&a.key, &a.cert) {
        let key = load_key(k, pw.as_deref())?;
        image = sign_image(&image, &key, c, &a.chain, false, None)?;
    }
    write_atomic(&a.output, &image)?;
    Ok(ExitCode::SUCCESS)
}

fn sign_image(
    image: &[u8],
    key: &SigningKey,
    cert: &Path,
    chain: &[PathBuf],
    append: bool,
    signing_time: Option<u64>,
) -> Result<Vec<u8>> {
    let certs = load_certs(cert)?;
    let mut chain_der = Vec::new();
    for c in chain {
        chain_der.extend(load_certs(c)?);
    }
    let opts = SignOptions {
        key,
        cert: certs.first().context("no certificate")?,
        chain: chain_der.iter().map(Vec::as_slice).collect(),
        append,
        signing_time,
    };
    Ok(sign::sign(image, &opts)?)
}

pub fn run_sign(a: SignArgs) -> Result<ExitCode> {
    let image = open(&a.file)?;
    let pw = password(a.key_password_file.as_deref())?;
    let key = load_key(&a.key, pw.as_deref())?;
    let signing_time =
        match a.signing_time.as_deref() {
            None => None,
            Some("now") => Some(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .context("clock before 1970")?
                    .as_secs(),
            ),
            Some(s) => Some(s.parse().with_context(|| {
                format!("--signing-time {s:?}: seconds since the epoch, or now")
            })?),
        };
    let signed = sign_image(&image, &key, &a.cert, &a.chain, a.append, signing_time)
        .with_context(|| a.file.display().to_string())?;
    write_atomic(&a.output, &signed)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_measure(a: MeasureArgs) -> Result<ExitCode> {
    let mut banks = if a.bank.is_empty() {
        DigestAlgorithm::ALL.to_vec()
    } else {
        a.bank
            .iter()
            .map(|b| measure::parse_bank(b))
            .collect::<ukitool_core::Result<Vec<_>>>()?
    };
    // systemd-measure prints banks in its own order, whatever the option order.
    banks.sort();
    banks.dedup();
    let preds: Vec<Prediction> = if let Some(file) = &a.file {
        let data = open(file)?;
        let pe = PeFile::parse(&data).with_context(|| file.display().to_string())?;
        let parts = measure::uki_parts(&pe, a.profile)?;
        measure::predict(&parts, &banks, &a.phase)?
    } else {
        let named: [(&str, &Option<PathBuf>); 14] = [
            (".linux", &a.linux),
            (".osrel", &a.osrel),
            (".cmdline", &a.cmdline),
            (".initrd", &a.initrd),
            (".ucode", &a.ucode),
            (".splash", &a.splash),
            (".dtb", &a.dtb),
            (".uname", &a.uname),
            (".sbat", &a.sbat),
            (".pcrpkey", &a.pcrpkey),
            (".profile", &a.profile_text),
            (".dtbauto", &a.dtbauto),
            (".hwids", &a.hwids),
            (".efifw", &a.efifw),
        ];
        let mut loaded: Vec<(&str, Input)> = Vec::new();
        for (name, path) in named {
            if let Some(p) = path {
                loaded.push((name, open(p)?));
            }
        }
        if loaded.is_empty() {
            bail!("give a UKI, or its parts (--linux, --osrel, --cmdline, --initrd, ...)");
        }
        let parts: Vec<Part<'_>> = loaded
            .iter()
            .map(|(name, d)| Part {
                name,
                chunks: vec![&**d],
            })
            .collect();
        measure::predict(&parts, &banks, &a.phase)?
    };
    let mut out = io::stdout().lock();
    if let Some(k) = &a.sign {
        let pw = password(a.key_password_file.as_deref())?;
        let key = load_key(k, pw.as_deref())?;
        writeln!(out, "{}", pcrsig::sign(&preds, &key)?)?;
    } else if a.json {
        serde_json::to_writer(&mut out, &measure::predictions_json(&preds))?;
        writeln!(out)?;
    } else {
        print_predictions(&mut out, &mut io::stderr().lock(), &preds)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// systemd-measure's text output: per phase a `# PCR[11] Phase <...>` comment (to
/// `notes`, as systemd writes it to stderr), then `11:<bank>=<hex>` per bank.
pub fn print_predictions(
    out: &mut dyn Write,
    notes: &mut dyn Write,
    preds: &[Prediction],
) -> Result<()> {
    let mut phases: Vec<&str> = Vec::new();
    for p in preds {
        if !phases.contains(&p.phase.as_str()) {
            phases.push(&p.phase);
        }
    }
    for phase in phases {
        writeln!(notes, "# PCR[11] Phase <{phase}>")?;
        for p in preds.iter().filter(|p| p.phase == phase) {
            writeln!(
                out,
                "{}:{}={}",
                p.pcr,
                p.bank.name(),
                ukitool_core::bytes::hex(&p.hash)
            )?;
        }
    }
    Ok(())
}
