//! `image`: a bootable raw GPT disk from a UKI. [`ImageSettings`] are the options as
//! a person gives them (the CLI's flags, the page's JSON), with every default here.

use std::borrow::Cow;

use crate::authenticode::{verify, TrustStore, Verdict};
use crate::command::keys::{export, ExportOptions};
use crate::disk::layout::{self, parse_size, ImageOptions, ImageSummary, Layout, PartitionSpec};
pub use crate::disk::layout::{
    DEFAULT_ENTRY_NAME, DEFAULT_LABEL, DEFAULT_LAYOUT, DEFAULT_SECTOR_SIZE, DEFAULT_TIMEOUT,
    DEFAULT_TIMESTAMP,
};
use crate::disk::talos::{self, image::TalosOptions, meta::MetaSource, Bootloader, TalosVersion};
use crate::disk::DiskImage;
use crate::error::{Error, Result};
use crate::guid::Guid;
use crate::keys::KeySet;
use crate::pe::PeFile;
pub use crate::secureboot::DEFAULT_ENROLL;
use crate::secureboot::{enroll_mode, EnrollMode, SecureBootFiles};
use crate::sign::{sign, SignOptions};

/// Everything that shapes an image besides its input files, named as `ukitool
/// image`'s options. Missing JSON fields take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ImageSettings {
    /// uefi, systemd-boot, grub or talos.
    pub layout: String,
    /// Disk size, bytes or with a K/M/G/T suffix; `None`: just large enough.
    pub size: Option<String>,
    /// ESP size; `None`: the layout's, or what the files need (at least 100 MiB).
    pub esp_size: Option<String>,
    /// Logical sector size: 512 or 4096.
    pub sector_size: u64,
    /// The ESP's volume label; also seeds the disk and partition GUIDs.
    pub label: String,
    /// `None`: derived from `label`.
    pub disk_guid: Option<String>,
    /// Unix time for every FAT timestamp; `None`: `SOURCE_DATE_EPOCH`, else 1980-01-01.
    pub timestamp: Option<i64>,
    /// The directory where GRUB reads grub.cfg; `None`: GRUB's built-in prefix.
    pub grub_prefix: Option<String>,
    /// The UKI's name under `\EFI\Linux\` and the boot entry's; `None`: `linux`.
    pub entry_name: Option<String>,
    /// Boot menu timeout in seconds (systemd-boot, GRUB).
    pub timeout: u32,
    /// Partitions after the ESP, each `NAME:SIZE[:TYPE[:FS]]` (FS: xfs or fat;
    /// none: unformatted).
    pub add_partition: Vec<String>,
    /// talos: dual-boot, sd-boot or grub; `None`: what Talos picks (dual-boot on
    /// amd64, sd-boot on arm64 and with Secure Boot keys).
    pub talos_bootloader: Option<String>,
    /// talos: the release whose size table the image follows (`X.Y`); `None`: the
    /// newest.
    pub talos_version: Option<String>,
    /// talos: META records, each `TAG=VALUE` or `TAG=@FILE` (the file's bytes come
    /// in [`ImageFiles::meta_files`]).
    pub meta: Vec<String>,
    /// `secure-boot-enroll` for systemd-boot: off, manual, if-safe or force; `None`:
    /// no line, or [`DEFAULT_ENROLL`] when the image enrols a key set.
    pub secure_boot_enroll: Option<String>,
}

impl Default for ImageSettings {
    fn default() -> Self {
        ImageSettings {
            layout: DEFAULT_LAYOUT.into(),
            size: None,
            esp_size: None,
            sector_size: DEFAULT_SECTOR_SIZE,
            label: DEFAULT_LABEL.into(),
            disk_guid: None,
            timestamp: None,
            grub_prefix: None,
            entry_name: None,
            timeout: DEFAULT_TIMEOUT,
            add_partition: Vec::new(),
            talos_bootloader: None,
            talos_version: None,
            meta: Vec::new(),
            secure_boot_enroll: None,
        }
    }
}

/// The files an image is made from; the image borrows them.
#[derive(Debug, Clone, Default)]
pub struct ImageFiles<'a> {
    pub uki: &'a [u8],
    pub systemd_boot: Option<&'a [u8]>,
    pub grub: Option<&'a [u8]>,
    pub shim: Option<&'a [u8]>,
    /// (file name, bytes) for `\loader\keys\auto\` (PK.auth, KEK.auth, db.auth).
    pub enroll_keys: Vec<(String, &'a [u8])>,
    /// (ESP path, bytes) added to the ESP.
    pub extra_files: Vec<(String, &'a [u8])>,
    /// (partition name, path, bytes) added to the filesystem of a partition from
    /// `add_partition`.
    pub partition_files: Vec<(String, String, &'a [u8])>,
    /// GRUB's i386-pc directory (talos's BIOS boot), by file name.
    pub grub_bios: Vec<(String, &'a [u8])>,
    /// (FILE, bytes) for each `--meta TAG=@FILE`.
    pub meta_files: Vec<(String, &'a [u8])>,
    /// The key set's changes (from [`secure_boot`]): they replace the UKI, systemd-boot
    /// and the enrolment files above.
    pub secure_boot: Option<&'a SecureBootFiles>,
}

impl<'a> ImageFiles<'a> {
    /// Give `loader` to the slot `layout` boots through: systemd-boot for
    /// systemd-boot, GRUB for grub. The uefi layout boots the UKI itself; talos takes
    /// its loaders by name (the page passes each in its own slot).
    pub fn set_loader(&mut self, layout: Layout, loader: &'a [u8]) {
        match layout {
            Layout::SystemdBoot => self.systemd_boot = Some(loader),
            Layout::Grub => self.grub = Some(loader),
            Layout::Uefi | Layout::Talos => {}
        }
    }
}

impl ImageSettings {
    pub fn layout(&self) -> Result<Layout> {
        Layout::parse(&self.layout)
    }

    /// The core's options for `files`, every default applied. `source_date_epoch` is
    /// the caller's environment (the page has none).
    pub fn options<'a>(
        &self,
        files: ImageFiles<'a>,
        source_date_epoch: Option<&str>,
    ) -> Result<ImageOptions<'a>> {
        let size = |s: &Option<String>| s.as_deref().map(parse_size).transpose();
        let mut files = files;
        let requested = self
            .secure_boot_enroll
            .as_deref()
            .map(EnrollMode::parse)
            .transpose()?;
        let mut enroll = requested;
        if let Some(sb) = files.secure_boot {
            if let Some(u) = &sb.uki {
                files.uki = u;
            }
            if let Some(s) = &sb.systemd_boot {
                files.systemd_boot = Some(s);
            }
            files.enroll_keys = sb
                .enroll_keys
                .iter()
                .map(|(n, d)| (n.clone(), d.as_slice()))
                .collect();
            let sdboot = files.systemd_boot.unwrap_or_default();
            enroll = Some(enroll_mode(requested, sdboot)?.0);
        }
        let mut o = ImageOptions::new(self.layout()?, files.uki);
        o.secure_boot_enroll = enroll;
        o.size = size(&self.size)?;
        o.esp_size = size(&self.esp_size)?;
        o.sector_size = self.sector_size;
        o.label.clone_from(&self.label);
        o.disk_guid = self.disk_guid.as_deref().map(Guid::parse).transpose()?;
        o.timestamp = fat_timestamp(self.timestamp, source_date_epoch)?;
        o.systemd_boot = files.systemd_boot;
        o.grub = files.grub;
        o.shim = files.shim;
        o.grub_prefix.clone_from(&self.grub_prefix);
        o.entry_name = self
            .entry_name
            .clone()
            .unwrap_or_else(|| DEFAULT_ENTRY_NAME.into());
        o.timeout = self.timeout;
        o.enroll_keys = files.enroll_keys;
        o.extra_files = files
            .extra_files
            .into_iter()
            .map(|(path, data)| (path, Cow::Borrowed(data)))
            .collect();
        o.extra_partitions = self
            .add_partition
            .iter()
            .map(|s| PartitionSpec::parse(s))
            .collect::<Result<_>>()?;
        o.partition_files = files
            .partition_files
            .into_iter()
            .map(|(part, path, data)| (part, path, Cow::Borrowed(data)))
            .collect();
        o.talos = self.talos_options(files.grub_bios, &files.meta_files)?;
        Ok(o)
    }
}

impl ImageSettings {
    /// The talos layout's options: its bootloader, size table, the UKI's name
    /// (`entry_name`), GRUB's i386-pc files and META's records.
    pub fn talos_options<'a>(
        &self,
        grub_bios: Vec<(String, &'a [u8])>,
        meta_files: &[(String, &'a [u8])],
    ) -> Result<TalosOptions<'a>> {
        let mut meta = Vec::new();
        for arg in &self.meta {
            let m = talos::meta::parse_arg(arg)?;
            let value: Cow<'a, [u8]> = match m.source {
                MetaSource::Text(t) => Cow::Owned(t.into_bytes()),
                MetaSource::File(f) => meta_files
                    .iter()
                    .find(|(name, _)| *name == f)
                    .map(|(_, d)| Cow::Borrowed(*d))
                    .ok_or_else(|| Error::NotFound(format!("the file {f:?} of --meta {arg:?}")))?,
            };
            meta.push((m.tag, value));
        }
        Ok(TalosOptions {
            bootloader: self
                .talos_bootloader
                .as_deref()
                .map(Bootloader::parse)
                .transpose()?,
            version: self
                .talos_version
                .as_deref()
                .map(TalosVersion::parse)
                .transpose()?
                .unwrap_or_default(),
            name: self.entry_name.clone(),
            grub_bios,
            meta,
        })
    }
}

/// The FAT timestamp: `given`, else `SOURCE_DATE_EPOCH`, else 1980-01-01 (FAT's
/// epoch), so that images are reproducible by default.
pub fn fat_timestamp(given: Option<i64>, source_date_epoch: Option<&str>) -> Result<i64> {
    super::timestamp_or_epoch(given, source_date_epoch, DEFAULT_TIMESTAMP)
}

/// What `--secure-boot-keys` changes in an image of `files` (see
/// [`crate::secureboot::prepare`]); its notes say what was signed, and the enrolment
/// mode. The `.auth` timestamp is `settings.timestamp`, else `SOURCE_DATE_EPOCH`,
/// else the PK certificate's notBefore: reproducible without a clock.
pub fn secure_boot(
    settings: &ImageSettings,
    files: &ImageFiles<'_>,
    keys: &KeySet,
    source_date_epoch: Option<&str>,
) -> Result<SecureBootFiles> {
    let layout = settings.layout()?;
    if !matches!(layout, Layout::SystemdBoot | Layout::Talos) || files.systemd_boot.is_none() {
        return Err(Error::invalid(
            "--secure-boot-keys needs systemd-boot, which enrols them: use --layout systemd-boot (or talos) with --systemd-boot FILE",
        ));
    }
    let given = settings
        .timestamp
        .map(|t| u64::try_from(t).map_err(|_| Error::invalid("the timestamp is before 1970")))
        .transpose()?;
    let not_before = crate::keys::not_before(&keys.pk.cert)?;
    let time = crate::command::keys::timestamp(given, source_date_epoch, not_before)?;
    let mut sb = prepare(files.uki, files.systemd_boot, keys, time)?;
    let requested = settings
        .secure_boot_enroll
        .as_deref()
        .map(EnrollMode::parse)
        .transpose()?;
    let sdboot = sb
        .systemd_boot
        .as_deref()
        .or(files.systemd_boot)
        .unwrap_or_default();
    let (mode, note) = enroll_mode(requested, sdboot)?;
    sb.notes.push(format!("secure-boot-enroll {}", mode.name()));
    sb.notes.extend(note);
    Ok(sb)
}

/// `pe` signed with db, unless a signature in it is already trusted by db. A
/// signature by another key stays, and db's is added after it.
fn signed_with_db(pe_bytes: &[u8], keys: &KeySet, what: &str) -> Result<(Option<Vec<u8>>, String)> {
    let pe = PeFile::parse(pe_bytes)
        .map_err(|e| Error::invalid(format!("the {what} is not a PE image: {e}")))?;
    let mut trust = TrustStore::default();
    trust.add_cert_file(&keys.db.cert)?;
    let report = verify(&pe, &trust);
    if report.verdict == Verdict::ValidTrusted {
        return Ok((None, format!("{what}: already signed by db")));
    }
    let append = pe.certificate_table().is_some();
    let opts = SignOptions {
        key: &keys.db.key,
        cert: &keys.db.cert,
        chain: Vec::new(),
        append,
        signing_time: None,
    };
    let signed = sign(pe_bytes, &opts)
        .map_err(|e| Error::invalid(format!("signing the {what} with db: {e}")))?;
    let how = if append {
        "db signature added to its own"
    } else {
        "signed by db"
    };
    Ok((Some(signed), format!("{what}: {how}")))
}

/// Sign `uki` and `systemd_boot` with db as needed, and export PK, KEK and db as
/// `.auth` files timestamped `timestamp` (the `.esl` files are not needed on the ESP).
fn prepare(
    uki: &[u8],
    systemd_boot: Option<&[u8]>,
    keys: &KeySet,
    timestamp: u64,
) -> Result<SecureBootFiles> {
    let mut out = SecureBootFiles::default();
    let (u, note) = signed_with_db(uki, keys, "UKI")?;
    out.uki = u;
    out.notes.push(note);
    if let Some(sd) = systemd_boot {
        let (s, note) = signed_with_db(sd, keys, "systemd-boot")?;
        out.systemd_boot = s;
        out.notes.push(note);
    }
    let (files, _) = export(
        keys,
        &ExportOptions {
            timestamp,
            ..Default::default()
        },
    )?;
    out.enroll_keys = files
        .into_iter()
        .filter(|(n, _)| n.ends_with(".auth"))
        .collect();
    Ok(out)
}

/// `ukitool image`: the disk as extents (it borrows `files`) and its summary.
pub fn image<'a>(
    settings: &ImageSettings,
    files: ImageFiles<'a>,
    source_date_epoch: Option<&str>,
) -> Result<(DiskImage<'a>, ImageSummary)> {
    layout::build_image(&settings.options(files, source_date_epoch)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_json_fields_take_the_defaults() {
        let s: ImageSettings = serde_json::from_str(r#"{"layout":"grub"}"#).unwrap();
        assert_eq!(
            s,
            ImageSettings {
                layout: "grub".into(),
                ..ImageSettings::default()
            }
        );
        let s: ImageSettings = serde_json::from_str(r#"{"timestamp":null}"#).unwrap();
        assert_eq!(s, ImageSettings::default());
    }

    #[test]
    fn fat_timestamp_prefers_the_option_then_the_environment() {
        assert_eq!(fat_timestamp(Some(-1), Some("7")).unwrap(), -1);
        assert_eq!(fat_timestamp(None, Some(" 7 ")).unwrap(), 7);
        assert_eq!(fat_timestamp(None, None).unwrap(), 315_532_800);
        assert!(fat_timestamp(None, Some("")).is_err());
    }

    #[test]
    fn talos_settings_read_meta_files_and_names() {
        let s: ImageSettings = serde_json::from_str(
            r#"{"layout":"talos","talos_bootloader":"grub","talos_version":"1.10",
                "meta":["0x0c=hi","metal-network-platform-config=@net.yaml"]}"#,
        )
        .unwrap();
        let t = s
            .talos_options(Vec::new(), &[("net.yaml".into(), &b"a: 1"[..])])
            .unwrap();
        assert_eq!(t.bootloader, Some(Bootloader::Grub));
        assert_eq!(t.version, TalosVersion::parse("1.10").unwrap());
        assert_eq!(t.name, None);
        let meta: Vec<(u8, &[u8])> = t.meta.iter().map(|(k, v)| (*k, &v[..])).collect();
        assert_eq!(meta, [(0x0c, &b"hi"[..]), (0x0a, &b"a: 1"[..])]);
        let err = s.talos_options(Vec::new(), &[]).unwrap_err().to_string();
        assert!(err.contains("net.yaml"), "{err}");
        let bad = ImageSettings {
            talos_bootloader: Some("lilo".into()),
            ..ImageSettings::default()
        };
        assert!(bad.talos_options(Vec::new(), &[]).is_err());
    }

    #[test]
    fn the_loader_goes_where_the_layout_boots_it() {
        let mut f = ImageFiles::default();
        f.set_loader(Layout::Talos, b"t");
        f.set_loader(Layout::Uefi, b"u");
        assert_eq!((f.grub, f.systemd_boot), (None, None));
        f.set_loader(Layout::Grub, b"g");
        assert_eq!(f.grub, Some(&b"g"[..]));
        f.set_loader(Layout::SystemdBoot, b"s");
        assert_eq!(f.systemd_boot, Some(&b"s"[..]));
    }
}
