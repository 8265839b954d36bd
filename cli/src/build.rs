//! `ukitool build`, `ukitool sign` and `ukitool measure`: argument parsing, input
//! loading and atomic output. The work is done by ukitool_core::command::{build, measure}
//! and ukitool_core::sign.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::ArgMatches;
use ukitool_core::build::config::{self, parse_phase_paths, Config};
use ukitool_core::build::{join, BuildSpec, NamedPart, ProfileSpec};
use ukitool_core::command::{
    self,
    build::{BuildOptions, PcrKey, PcrSigning, Signer, DEFAULT_PCR_BANK},
    measure::{MeasureInput, MeasureOptions, Measurement},
};
use ukitool_core::measure::{self, Part, Prediction};
use ukitool_core::pe::PeFile;
use ukitool_core::sign::{self, SignOptions, SigningKey};
use ukitool_core::uki::efifw;
use ukitool_core::uki::hwids::{self, HwidsFile};

use crate::input::Input;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// ukify's configuration file ([UKI] and [PCRSignature:NAME] sections); options
    /// given here win, lists add to the file's
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The UEFI stub for the kernel's architecture (e.g.
    /// /usr/lib/systemd/boot/efi/linuxx64.efi.stub, linuxaa64.efi.stub on arm64); an
    /// addon stub when --linux is absent
    #[arg(long, value_name = "FILE")]
    pub stub: Option<PathBuf>,
    /// The kernel (.linux), for the stub's machine; without it an addon is built
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
    /// Hardware ids (.hwids): a directory of ukify's JSON description files, or a
    /// built section
    #[arg(long, value_name = "DIR|FILE")]
    pub hwids: Option<PathBuf>,
    /// Firmware (.efifw): a directory holding one blob (its name is the firmware id),
    /// or a built section; repeatable
    #[arg(long, value_name = "DIR|FILE")]
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
    /// Add the profile of a PE built with --profile (and no --join-profile) as the
    /// next profile; without --profile the base profile is `ID=main`; repeatable
    #[arg(long, value_name = "PE")]
    pub join_profile: Vec<PathBuf>,
    /// Fill the signatures of --pcrsig into this UKI's .pcrsig (built with ukify
    /// --policy-digest); no other input may be given
    #[arg(long, value_name = "UKI", requires = "pcrsig")]
    pub join_pcrsig: Option<PathBuf>,
    /// The offline-signed policies (.pcrsig JSON) for --join-pcrsig
    #[arg(long, value_name = "TEXT|@FILE", requires = "join_pcrsig")]
    pub pcrsig: Option<String>,
    /// COFF TimeDateStamp (seconds); default SOURCE_DATE_EPOCH, else the stub's
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<u32>,
    /// Sign the result (Authenticode) with this private key (PEM), or a key in a
    /// PKCS#11 token (`pkcs11:token=T;object=LABEL?pin-value=PIN`, RFC 7512)
    #[arg(long, value_name = "KEY.pem|pkcs11:URI")]
    pub key: Option<PathBuf>,
    /// The PKCS#11 module for a pkcs11: --key (default: the URI's module-path, else
    /// p11-kit's proxy)
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
    /// Signer certificate (PEM) for --key
    #[arg(long, value_name = "CERT.pem")]
    pub cert: Option<PathBuf>,
    /// Extra certificates to include with the signature; repeatable
    #[arg(long, value_name = "CERT.pem")]
    pub chain: Vec<PathBuf>,
    /// File holding the password of an encrypted --key or --pcr-key
    #[arg(long, value_name = "FILE")]
    pub key_password_file: Option<PathBuf>,
    /// Sign PCR 11 policies with this RSA key and embed them as .pcrsig (+ .pcrpkey)
    #[arg(long, value_name = "KEY.pem", conflicts_with = "pcr_private_key")]
    pub pcr_key: Option<PathBuf>,
    /// A PCR signing key (RSA, PEM, or a pkcs11: URI with its --pcr-public-key), as
    /// ukify's; repeatable, each with its
    /// --pcr-public-key and --phases in the same order
    #[arg(long, value_name = "KEY.pem")]
    pub pcr_private_key: Vec<PathBuf>,
    /// The public half of each --pcr-private-key (checked against it; with one key
    /// it becomes .pcrpkey as given); repeatable
    #[arg(long, value_name = "PUB.pem")]
    pub pcr_public_key: Vec<PathBuf>,
    /// The phase paths each --pcr-private-key signs, comma-separated; repeatable
    #[arg(long, value_name = "PHASE-PATH,...")]
    pub phases: Vec<String>,
    /// PCR banks to sign with --pcr-key; repeatable
    #[arg(long, value_name = "BANK", default_value = DEFAULT_PCR_BANK)]
    pub pcr_bank: Vec<String>,
    /// Boot phase paths to sign with --pcr-key (and the keys without --phases);
    /// repeatable (default: systemd's four)
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
    /// Private key, PEM (PKCS#1, PKCS#8, encrypted PKCS#8, SEC1 P-256), or a key in a
    /// PKCS#11 token: an RFC 7512 URI, `pkcs11:token=T;object=LABEL?pin-value=PIN`
    /// (or pin-source=FILE)
    #[arg(
        long,
        value_name = "KEY.pem|pkcs11:URI",
        required_unless_present_any = ["export_signed_attributes", "attach"],
        conflicts_with_all = ["export_signed_attributes", "attach"]
    )]
    pub key: Option<PathBuf>,
    /// Signer certificate, PEM
    #[arg(long, value_name = "CERT.pem")]
    pub cert: PathBuf,
    /// The PKCS#11 module for a pkcs11: --key (default: the URI's module-path, else
    /// p11-kit's proxy)
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
    /// Two-step signing, step 1: write the DER signed attributes the key must sign
    /// (SHA-256; e.g. `openssl dgst -sha256 -binary F | openssl pkeyutl -sign -inkey K
    /// -pkeyopt digest:sha256`) to OUT, and sign nothing
    #[arg(long, value_name = "OUT", conflicts_with = "attach")]
    pub export_signed_attributes: Option<PathBuf>,
    /// Two-step signing, step 2: complete the signature with SIG, the raw signature
    /// over step 1's attributes (same image, --cert and --signing-time); it is checked
    /// against the certificate's key first
    #[arg(long, value_name = "SIG")]
    pub attach: Option<PathBuf>,
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
    #[arg(
        short,
        long,
        value_name = "OUT",
        required_unless_present = "export_signed_attributes"
    )]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MeasureArgs {
    #[command(subcommand)]
    pub verb: Option<MeasureVerb>,
    #[command(flatten)]
    pub input: MeasureInputArgs,
    /// Print JSON in systemd-measure's shape
    #[arg(long)]
    pub json: bool,
    /// Sign the policies with this RSA key and print the .pcrsig JSON
    #[arg(long, value_name = "KEY.pem|pkcs11:URI")]
    pub sign: Option<PathBuf>,
    /// With --sign pkcs11:URI: the public key (PEM) the token's key must match
    #[arg(long, value_name = "PUB.pem", requires = "sign")]
    pub public_key: Option<PathBuf>,
    /// The PKCS#11 module for --sign pkcs11:URI (default: the URI's module-path, else
    /// p11-kit's proxy)
    #[arg(long, value_name = "PATH", requires = "sign")]
    pub pkcs11_module: Option<PathBuf>,
    /// File holding the password of an encrypted --sign key
    #[arg(long, value_name = "FILE")]
    pub key_password_file: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum MeasureVerb {
    /// Print the TPM2 policy digests to sign offline, as `systemd-measure
    /// policy-digest` does (JSON: per bank, pcrs, pkfp, pol, tbs)
    PolicyDigest(PolicyDigestArgs),
}

#[derive(clap::Args, Debug)]
pub struct PolicyDigestArgs {
    #[command(flatten)]
    pub input: MeasureInputArgs,
    /// The public key the policies will be signed for (PEM): adds its fingerprint
    #[arg(long, value_name = "PUB.pem")]
    pub public_key: Option<PathBuf>,
}

/// What `measure` measures: a UKI, or its parts, and for which banks and phases.
#[derive(clap::Args, Debug)]
pub struct MeasureInputArgs {
    /// A UKI to measure; or give its parts with --linux, --osrel, ... A file
    /// without .linux (shim, a bare stub, an addon, a plain kernel), or parts without
    /// --linux, is refused (exit 2), as systemd-measure refuses them.
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

/// The signer's certificate (the first of its PEM file) and the `--chain` ones, DER.
fn signer_certs(cert: &Path, chain: &[PathBuf]) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let cert = load_certs(cert)?
        .into_iter()
        .next()
        .context("no certificate")?;
    let mut chain_der = Vec::new();
    for c in chain {
        chain_der.extend(load_certs(c)?);
    }
    Ok((cert, chain_der))
}

/// `SOURCE_DATE_EPOCH` from the environment, for the core to apply.
pub fn source_date_epoch() -> Option<String> {
    std::env::var("SOURCE_DATE_EPOCH").ok()
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

/// Which `--section` values come after which `--profile`: clap's derive API keeps
/// each option's values apart, its matches keep their positions. Returns, per
/// section value, the index of the profile block it belongs to (`None`: the base).
fn section_owners(a: &BuildArgs, matches: Option<&ArgMatches>) -> Vec<Option<usize>> {
    let indices = |id: &str| -> Vec<usize> {
        matches
            .and_then(|m| m.indices_of(id))
            .map(Iterator::collect)
            .unwrap_or_default()
    };
    let profiles = indices("profile");
    let sections = indices("section");
    if sections.len() != a.section.len() {
        return vec![None; a.section.len()];
    }
    sections
        .iter()
        .map(|si| profiles.iter().rposition(|pi| pi < si))
        .collect()
}

/// The files and texts the build options name, read once; the spec borrows them.
struct BuildInputs {
    stub: Input,
    linux: Option<Input>,
    initrds: Vec<Input>,
    ucode: Option<Vec<u8>>,
    cmdline: Option<Vec<u8>>,
    os_release: Option<Vec<u8>>,
    splash: Option<Vec<u8>>,
    dtb: Option<Vec<u8>>,
    dtbauto: Vec<Vec<u8>>,
    hwids: Option<Vec<u8>>,
    efifw: Vec<Vec<u8>>,
    sbat: Vec<Vec<u8>>,
    profiles: Vec<Vec<u8>>,
    pcrpkey: Option<Vec<u8>>,
    /// `--section NAME:FILE`, in order.
    sections: Vec<(String, Vec<u8>)>,
}

impl BuildInputs {
    fn read(a: &BuildArgs) -> Result<Self> {
        let all = |paths: &[PathBuf]| paths.iter().map(|p| read(p)).collect::<Result<Vec<_>>>();
        let texts = |v: &[String]| {
            v.iter()
                .map(|s| text_or_file(s))
                .collect::<Result<Vec<_>>>()
        };
        let stub = open(
            a.stub
                .as_deref()
                .context("--stub is required (or Stub= in --config)")?,
        )?;
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
        let dtbauto = all(&a.devicetree_auto)?;
        let hwids = a.hwids.as_deref().map(hwids_section).transpose()?;
        let efifw = a
            .efifw
            .iter()
            .map(|p| efifw_section(p))
            .collect::<Result<Vec<_>>>()?;
        let sbat = texts(&a.sbat)?;
        let mut profiles = texts(&a.profile)?;
        if !a.join_profile.is_empty() && profiles.is_empty() {
            // ukify: joined profiles need a base profile; "ID=main" when none is given.
            profiles.push(b"ID=main".to_vec());
        }
        let pcrpkey = a.pcrpkey.as_deref().map(read).transpose()?;
        let mut sections = Vec::new();
        for s in &a.section {
            let (name, path) = s
                .split_once(':')
                .with_context(|| format!("--section {s:?}: expected NAME:FILE"))?;
            let path = path.strip_prefix('@').unwrap_or(path);
            sections.push((name.to_string(), read(Path::new(path))?));
        }
        Ok(BuildInputs {
            stub,
            linux,
            initrds,
            ucode,
            cmdline,
            os_release,
            splash,
            dtb,
            dtbauto,
            hwids,
            efifw,
            sbat,
            profiles,
            pcrpkey,
            sections,
        })
    }

    /// The core's spec; `owners` places each `--section` in the base or a profile.
    fn spec<'a>(
        &'a self,
        uname: Option<&'a str>,
        owners: &[Option<usize>],
        timestamp: Option<u32>,
    ) -> BuildSpec<'a> {
        let mut spec = BuildSpec {
            stub: &self.stub,
            linux: self.linux.as_deref(),
            initrds: self.initrds.iter().map(|i| &**i).collect(),
            ucode: self.ucode.as_deref(),
            cmdline: self.cmdline.as_deref(),
            os_release: self.os_release.as_deref(),
            uname: uname.map(str::as_bytes),
            splash: self.splash.as_deref(),
            devicetree: self.dtb.as_deref(),
            devicetree_auto: self.dtbauto.iter().map(Vec::as_slice).collect(),
            hwids: self.hwids.as_deref(),
            efifw: self.efifw.iter().map(Vec::as_slice).collect(),
            pcrpkey: self.pcrpkey.as_deref(),
            sbat: self.sbat.iter().map(Vec::as_slice).collect(),
            sections: Vec::new(),
            profiles: self
                .profiles
                .iter()
                .map(|t| ProfileSpec {
                    text: t,
                    sections: Vec::new(),
                })
                .collect(),
            timestamp,
        };
        for ((name, data), owner) in self.sections.iter().zip(owners) {
            let part = NamedPart { name, data };
            match owner.and_then(|i| spec.profiles.get_mut(i)) {
                Some(p) => p.sections.push(part),
                None => spec.sections.push(part),
            }
        }
        spec
    }
}

/// `--hwids`: a directory of ukify's JSON description files (all `*.json` below
/// it), encoded; or a built section, read as it is.
fn hwids_section(path: &Path) -> Result<Vec<u8>> {
    if !path.is_dir() {
        return read(path);
    }
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        for entry in fs::read_dir(dir).with_context(|| dir.display().to_string())? {
            let entry = entry.with_context(|| dir.display().to_string())?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(&path, &rel, out)?;
            } else if name.ends_with(".json") {
                out.push((rel, read(&path)?));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(path, "", &mut files)?;
    let list: Vec<HwidsFile<'_>> = files
        .iter()
        .map(|(path, json)| HwidsFile { path, json })
        .collect();
    hwids::encode(&list).with_context(|| path.display().to_string())
}

/// `--efifw`: a directory holding exactly one firmware blob, named for the firmware
/// id by the directory, encoded; or a built section, read as it is.
fn efifw_section(path: &Path) -> Result<Vec<u8>> {
    if !path.is_dir() {
        return read(path);
    }
    let entries = fs::read_dir(path)
        .and_then(|d| d.collect::<io::Result<Vec<_>>>())
        .with_context(|| path.display().to_string())?;
    let [blob] = entries.as_slice() else {
        bail!(
            "{}: must contain exactly one firmware image file",
            path.display()
        );
    };
    let fwid = path
        .file_name()
        .with_context(|| {
            format!(
                "{}: no directory name to use as the firmware id",
                path.display()
            )
        })?
        .to_string_lossy();
    efifw::encode(&fwid, &read(&blob.path())?).with_context(|| path.display().to_string())
}

/// Apply `--config`: the file's value where the command line gave none, its lists
/// before the command line's, its key pairs after.
fn apply_config(a: &mut BuildArgs, c: &Config, matches: Option<&ArgMatches>) {
    let path = |o: &str| c.value(o).map(PathBuf::from);
    let text = |o: &str| c.value(o).map(str::to_string);
    a.stub = a.stub.take().or_else(|| path("--stub"));
    a.linux = a.linux.take().or_else(|| path("--linux"));
    a.ucode = a.ucode.take().or_else(|| path("--ucode"));
    a.splash = a.splash.take().or_else(|| path("--splash"));
    a.devicetree = a.devicetree.take().or_else(|| path("--devicetree"));
    a.hwids = a.hwids.take().or_else(|| path("--hwids"));
    a.pcrpkey = a.pcrpkey.take().or_else(|| path("--pcrpkey"));
    a.key = a.key.take().or_else(|| path("--key"));
    a.cert = a.cert.take().or_else(|| path("--cert"));
    a.cmdline = a.cmdline.take().or_else(|| text("--cmdline"));
    a.os_release = a.os_release.take().or_else(|| text("--os-release"));
    a.uname = a.uname.take().or_else(|| text("--uname"));
    a.pcrsig = a.pcrsig.take().or_else(|| text("--pcrsig"));
    if a.profile.is_empty() {
        a.profile.extend(text("--profile"));
    }
    let prepend = |list: &mut Vec<PathBuf>, o: &str| {
        let mut v: Vec<PathBuf> = c.list(o).iter().map(PathBuf::from).collect();
        v.append(list);
        *list = v;
    };
    prepend(&mut a.initrd, "--initrd");
    prepend(&mut a.efifw, "--efifw");
    prepend(&mut a.devicetree_auto, "--devicetree-auto");
    let mut sbat = c.list("--sbat").to_vec();
    sbat.append(&mut a.sbat);
    a.sbat = sbat;
    let banks_given = matches
        .and_then(|m| m.value_source("pcr_bank"))
        .is_some_and(|s| s != clap::parser::ValueSource::DefaultValue);
    if !banks_given && !c.list("--pcr-bank").is_empty() {
        a.pcr_bank = c.list("--pcr-bank").to_vec();
    }
}

/// A PCR signing key pair as named: private key, public key, phase paths.
type KeyPaths = (PathBuf, Option<PathBuf>, Vec<String>);

/// The PCR signing key pairs: `--pcr-key` with `--phase`, or the
/// `--pcr-private-key`s with their `--pcr-public-key`s and `--phases` (counts must
/// match, as in ukify), then the config file's `[PCRSignature:NAME]` sections.
fn pcr_key_specs(a: &BuildArgs, c: &Config) -> Result<Vec<KeyPaths>> {
    if let Some(k) = &a.pcr_key {
        return Ok(vec![(k.clone(), None, a.phase.clone())]);
    }
    let n = a.pcr_private_key.len();
    if !a.pcr_public_key.is_empty() && a.pcr_public_key.len() != n {
        bail!("--pcr-public-key must be given once per --pcr-private-key");
    }
    if !a.phases.is_empty() && a.phases.len() != n {
        bail!("--phases must be given once per --pcr-private-key");
    }
    let mut keys = Vec::new();
    for (i, k) in a.pcr_private_key.iter().enumerate() {
        let phases = match a.phases.get(i) {
            Some(p) => parse_phase_paths(p)?,
            None => a.phase.clone(),
        };
        keys.push((k.clone(), a.pcr_public_key.get(i).cloned(), phases));
    }
    for k in &c.pcr_keys {
        let private = k
            .private_key
            .as_deref()
            .with_context(|| format!("[PCRSignature:{}] has no PCRPrivateKey=", k.name))?;
        let phases = k.phases.clone().unwrap_or_else(|| a.phase.clone());
        keys.push((
            private.into(),
            k.public_key.as_deref().map(PathBuf::from),
            phases,
        ));
    }
    Ok(keys)
}

/// `--join-pcrsig UKI --pcrsig JSON`: only those two, and the output.
fn run_join_pcrsig(a: &BuildArgs, uki: &Path) -> Result<ExitCode> {
    let others = a.stub.is_some()
        || a.linux.is_some()
        || !a.initrd.is_empty()
        || a.cmdline.is_some()
        || a.os_release.is_some()
        || !a.profile.is_empty()
        || !a.join_profile.is_empty()
        || a.pcr_key.is_some()
        || !a.pcr_private_key.is_empty();
    if others {
        bail!("--join-pcrsig and --pcrsig cannot be used with other sections");
    }
    let pcrsig = text_or_file(a.pcrsig.as_deref().unwrap_or_default())?;
    let joined = ukitool_core::build::join::join_pcrsig(&open(uki)?, &pcrsig)
        .with_context(|| uki.display().to_string())?;
    write_atomic(&a.output, &joined)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_build(mut a: BuildArgs, matches: Option<&ArgMatches>) -> Result<ExitCode> {
    let config = match &a.config {
        Some(p) => config::parse(&fs::read_to_string(p).with_context(|| p.display().to_string())?)
            .with_context(|| p.display().to_string())?,
        None => Config::default(),
    };
    for line in &config.ignored {
        eprintln!("ukitool: warning: {line}");
    }
    apply_config(&mut a, &config, matches);
    if let Some(uki) = a.join_pcrsig.clone() {
        return run_join_pcrsig(&a, &uki);
    }
    let inputs = BuildInputs::read(&a)?;
    let owners = section_owners(&a, matches);
    let timestamp = command::build::timestamp(a.timestamp, source_date_epoch().as_deref())?;
    let pw = password(a.key_password_file.as_deref())?;
    let mut pcr_keys = Vec::new();
    for (private, public, phases) in pcr_key_specs(&a, &config)? {
        let public = public.as_deref().map(read).transpose()?;
        let key = crate::pkcs11::pcr_signer(
            &private,
            public.as_deref(),
            a.pkcs11_module.as_deref(),
            pw.as_deref(),
        )?;
        pcr_keys.push((key, public, phases));
    }
    let signer = match (&a.key, &a.cert) {
        (Some(k), Some(c)) => {
            let (cert, chain) = signer_certs(c, &a.chain)?;
            let key = authenticode_signer(k, a.pkcs11_module.as_deref(), pw.as_deref(), &cert)?;
            Some((key, (cert, chain)))
        }
        (None, None) => None,
        _ => bail!("--key and --cert go together"),
    };
    let joined: Vec<Input> = a
        .join_profile
        .iter()
        .map(|p| open(p))
        .collect::<Result<_>>()?;
    let joined_pes: Vec<PeFile<'_>> = joined
        .iter()
        .zip(&a.join_profile)
        .map(|(d, p)| PeFile::parse(d).with_context(|| p.display().to_string()))
        .collect::<Result<_>>()?;
    let mut spec = inputs.spec(a.uname.as_deref(), &owners, timestamp);
    for (pe, p) in joined_pes.iter().zip(&a.join_profile) {
        spec.profiles
            .push(join::profile_from_pe(pe).with_context(|| p.display().to_string())?);
    }
    let opts = BuildOptions {
        spec,
        pcr_signing: (!pcr_keys.is_empty()).then(|| PcrSigning {
            keys: pcr_keys
                .iter()
                .map(|(key, public_key, phases)| PcrKey {
                    key: key.as_ref(),
                    public_key: public_key.as_deref(),
                    phases,
                })
                .collect(),
            banks: &a.pcr_bank,
        }),
        signer: signer.as_ref().map(|(key, (cert, chain))| Signer {
            key: key.as_ref(),
            cert,
            chain: chain.iter().map(Vec::as_slice).collect(),
        }),
    };
    let image = command::build(&opts)?;
    write_atomic(&a.output, &image)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_sign(a: SignArgs) -> Result<ExitCode> {
    let image = open(&a.file)?;
    let signing_time = signing_time(a.signing_time.as_deref())?;
    let name = a.file.display().to_string();
    if let Some(out) = &a.export_signed_attributes {
        let attrs = sign::signed_attributes_for(&image, a.append, signing_time)
            .with_context(|| name.clone())?;
        write_atomic(out, &attrs)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (cert, chain) = signer_certs(&a.cert, &a.chain)?;
    let signer: Box<dyn sign::AttributeSigner> = match (&a.key, &a.attach) {
        (_, Some(sig)) => Box::new(
            sign::DetachedSignature::new(&cert, read(sig)?)
                .with_context(|| a.cert.display().to_string())?,
        ),
        (Some(key), None) if crate::pkcs11::is_uri(key) => {
            Box::new(crate::pkcs11::Pkcs11Signer::open(
                &key.to_string_lossy(),
                a.pkcs11_module.as_deref(),
                &cert,
            )?)
        }
        (Some(key), None) => {
            let pw = password(a.key_password_file.as_deref())?;
            Box::new(load_key(key, pw.as_deref())?)
        }
        (None, None) => bail!("--key or --attach is needed"),
    };
    let opts = SignOptions {
        key: signer.as_ref(),
        cert: &cert,
        chain: chain.iter().map(Vec::as_slice).collect(),
        append: a.append,
        signing_time,
    };
    let signed = sign::sign(&image, &opts).with_context(|| name.clone())?;
    let out = a.output.as_deref().context("-o OUT is needed")?;
    write_atomic(out, &signed)?;
    Ok(ExitCode::SUCCESS)
}

/// What signs with `--key`: a PEM key file, or a key in a PKCS#11 token (a `pkcs11:`
/// URI) checked against `cert`.
fn authenticode_signer(
    key: &Path,
    module: Option<&Path>,
    pw: Option<&[u8]>,
    cert: &[u8],
) -> Result<Box<dyn sign::AttributeSigner>> {
    if crate::pkcs11::is_uri(key) {
        return Ok(Box::new(crate::pkcs11::Pkcs11Signer::open(
            &key.to_string_lossy(),
            module,
            cert,
        )?));
    }
    Ok(Box::new(load_key(key, pw)?))
}

/// `--signing-time`: seconds since the epoch, or `now`.
fn signing_time(arg: Option<&str>) -> Result<Option<u64>> {
    Ok(match arg {
        None => None,
        Some("now") => Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("clock before 1970")?
                .as_secs(),
        ),
        Some(s) => {
            Some(s.parse().with_context(|| {
                format!("--signing-time {s:?}: seconds since the epoch, or now")
            })?)
        }
    })
}

/// The parts named by `measure --linux ... --osrel ...`, read, in systemd's names.
fn measure_parts(a: &MeasureInputArgs) -> Result<Vec<(&'static str, Input)>> {
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
    let mut loaded = Vec::new();
    for (name, path) in named {
        if let Some(p) = path {
            loaded.push((name, open(p)?));
        }
    }
    if loaded.is_empty() {
        bail!("give a UKI, or its parts (--linux, --osrel, --cmdline, --initrd, ...)");
    }
    Ok(loaded)
}

/// The predictions for `measure`'s input.
fn measurement(a: &MeasureInputArgs) -> Result<Measurement> {
    let opts = MeasureOptions {
        banks: a
            .bank
            .iter()
            .map(|b| measure::parse_bank(b))
            .collect::<ukitool_core::Result<Vec<_>>>()?,
        phases: a.phase.clone(),
    };
    if let Some(file) = &a.file {
        let data = open(file)?;
        let pe = PeFile::parse(&data).with_context(|| file.display().to_string())?;
        let input = MeasureInput::Uki {
            pe: &pe,
            profile: a.profile,
        };
        return Ok(command::measure(&input, &opts)?);
    }
    let loaded = measure_parts(a)?;
    let parts = loaded
        .iter()
        .map(|(name, d)| Part {
            name,
            chunks: vec![&**d],
        })
        .collect();
    Ok(command::measure(&MeasureInput::Parts(parts), &opts)?)
}

pub fn run_measure(a: MeasureArgs) -> Result<ExitCode> {
    if let Some(MeasureVerb::PolicyDigest(p)) = &a.verb {
        let public_key = p.public_key.as_deref().map(read).transpose()?;
        let digests = measurement(&p.input)?.policy_digest(public_key.as_deref())?;
        let mut out = io::stdout().lock();
        writeln!(out, "{digests}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let measurement = measurement(&a.input)?;
    let mut out = io::stdout().lock();
    if let Some(k) = &a.sign {
        let pw = password(a.key_password_file.as_deref())?;
        let public = a.public_key.as_deref().map(read).transpose()?;
        let key = crate::pkcs11::pcr_signer(
            k,
            public.as_deref(),
            a.pkcs11_module.as_deref(),
            pw.as_deref(),
        )?;
        writeln!(out, "{}", measurement.sign(key.as_ref())?)?;
    } else if a.json {
        serde_json::to_writer(&mut out, &measurement)?;
        writeln!(out)?;
    } else {
        print_predictions(&mut out, &mut io::stderr().lock(), &measurement.predictions)?;
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
