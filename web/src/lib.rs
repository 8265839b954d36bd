//! wasm-bindgen adapter: converts JS values to ukitool-core calls and back, nothing
//! more. The page (web/app/) runs it inside a Web Worker.
//!
//! Conventions at the boundary:
//! - reports cross as JSON text, produced by serde exactly as the CLI's `--json`
//!   produces it, so the page's "export JSON" is byte-identical to the CLI;
//! - every core error becomes a thrown JS `Error` whose message is the core's
//!   Display (it names the offset and the rule) and which carries `kind` and
//!   `offset` properties for the page;
//! - files cross once, in chunks, into a [`FileBuf`] owned by wasm, so a 100 MiB
//!   UKI is never held twice; header-only reads take a prefix from `Blob.slice`.
//!
//! wasm32 builds abort on panic, so `catch_unwind` cannot help: the adapter only
//! calls core functions that return `Result` (the core has no panicking paths on
//! input), and the hook below records any panic that slips through so the Worker
//! can report it and start a fresh instance.

mod bigdisk;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use ukitool_core::authenticode::hash::{hash_ranges, DigestAlgorithm, Hasher as CoreHasher};
use ukitool_core::authenticode::verify::digest_algorithms;
use ukitool_core::authenticode::{cert, TrustStore};
use ukitool_core::build::BuildSpec;
use ukitool_core::bytes::hex;
use ukitool_core::command;
use ukitool_core::command::build::{BuildOptions, Signer};
use ukitool_core::command::image::{ImageFiles, ImageSettings};
use ukitool_core::command::inspect::{InOrder, PartialInspection, Signatures};
use ukitool_core::command::measure::{MeasureInput, MeasureOptions};
use ukitool_core::command::verify::{verify_with_image_digests, PcrsigCheck};
use ukitool_core::disk;
use ukitool_core::extract;
use ukitool_core::inspect::InspectOptions;
use ukitool_core::pe::PeFile;
use ukitool_core::siglist;
use ukitool_core::sign::{self, SigningKey};
use ukitool_core::Error;
use wasm_bindgen::prelude::*;

/// Runs once when the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        // console_error_panic_hook logs the message with a JS stack; we also keep the
        // text on the global object, where the Worker reads it after the trap.
        console_error_panic_hook::hook(info);
        let msg = info.to_string();
        let _ = js_sys::Reflect::set(
            &js_sys::global(),
            &JsValue::from_str("__ukitoolPanic"),
            &JsValue::from_str(&msg),
        );
    }));
}

/// A core error as a thrown JS Error with `kind` and `offset` properties.
fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("UkitoolError");
    let _ = js_sys::Reflect::set(&err, &"kind".into(), &e.kind().into());
    if let Some(off) = e.offset() {
        // f64 holds every offset below 2^53, far beyond any file a browser can open.
        let _ = js_sys::Reflect::set(&err, &"offset".into(), &JsValue::from_f64(off as f64));
    }
    if let Error::Truncated { offset, needed, .. } = e {
        // Where the missing bytes end: the Worker reads a longer prefix up to here.
        let end = offset.saturating_add(needed) as f64;
        let _ = js_sys::Reflect::set(&err, &"end".into(), &JsValue::from_f64(end));
    }
    err.into()
}

fn js_text(msg: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&msg.to_string()).into()
}

fn to_json<T: Serialize>(value: &T) -> Result<String, JsValue> {
    serde_json::to_string_pretty(value).map_err(js_text)
}

/// A file's bytes inside wasm memory, filled chunk by chunk from JS so the page can
/// show progress and never holds a second whole copy.
#[wasm_bindgen]
pub struct FileBuf {
    data: Vec<u8>,
}

#[wasm_bindgen]
impl FileBuf {
    /// A zeroed buffer of `len` bytes. Large zeroed allocations come straight from
    /// `memory.grow` and are not touched until written.
    #[wasm_bindgen(constructor)]
    pub fn new(len: f64) -> Result<FileBuf, JsValue> {
        if !(0.0..=f64::from(u32::MAX)).contains(&len) || len.fract() != 0.0 {
            return Err(js_text(format!(
                "file length {len} does not fit in wasm memory"
            )));
        }
        let n = len as usize;
        let mut data = Vec::new();
        data.try_reserve_exact(n)
            .map_err(|_| js_text(format!("cannot allocate {n} bytes in wasm memory")))?;
        data.resize(n, 0);
        Ok(FileBuf { data })
    }

    /// Copy `chunk` in at `offset`.
    pub fn write(&mut self, offset: f64, chunk: &[u8]) -> Result<(), JsValue> {
        let start = offset as usize;
        let dst = start
            .checked_add(chunk.len())
            .and_then(|end| self.data.get_mut(start..end))
            .ok_or_else(|| js_text(format!("chunk at {offset} runs past the buffer")))?;
        dst.copy_from_slice(chunk);
        Ok(())
    }

    #[wasm_bindgen(getter)]
    pub fn length(&self) -> f64 {
        self.data.len() as f64
    }
}

fn file_len_arg(file_len: f64) -> Result<u64, JsValue> {
    if file_len >= 0.0 && file_len.fract() == 0.0 && file_len < 9.007_199_254_740_992e15 {
        Ok(file_len as u64)
    } else {
        Err(js_text(format!("bad file length {file_len}")))
    }
}

/// Inspect a whole file held in a [`FileBuf`], hashing every section: the same
/// report, serialised the same way, as `ukitool inspect --json`.
#[wasm_bindgen]
pub fn inspect(file: &FileBuf) -> Result<String, JsValue> {
    let report =
        command::inspect(&file.data, &InspectOptions::default(), &InOrder).map_err(js_error)?;
    to_json(&report)
}

/// Does this prefix look like a raw disk image (MBR signature, no "MZ")?
#[wasm_bindgen(js_name = looksLikeDisk)]
pub fn looks_like_disk(prefix: &[u8]) -> bool {
    disk::inspect::looks_like_disk(prefix)
}

/// Inspect a raw disk image: partitions, FAT files, and a full report for each EFI
/// binary; the same JSON as `ukitool inspect --json` on the image.
#[wasm_bindgen(js_name = inspectDisk)]
pub fn inspect_disk(file: &FileBuf) -> Result<String, JsValue> {
    let report = disk::inspect::inspect_disk(&file.data).map_err(js_error)?;
    to_json(&report)
}

/// An inspection fed from `Blob.slice` reads: the header prefix first, then the
/// small ranges the report decodes ([`Inspection::needed_ranges`]), then section
/// hashes computed by the Worker while it streams the file. A 1 GiB file is never
/// loaded whole. The core's [`PartialInspection`] does the work.
#[wasm_bindgen]
pub struct Inspection {
    inner: PartialInspection,
}

#[wasm_bindgen]
impl Inspection {
    /// Parse the headers from the first bytes of a file of `fileLen` bytes. Throws
    /// when they are not a PE (or the prefix is too short: the error says so).
    #[wasm_bindgen(constructor)]
    pub fn new(prefix: Vec<u8>, file_len: f64) -> Result<Inspection, JsValue> {
        let inner = PartialInspection::new(prefix, file_len_arg(file_len)?).map_err(js_error)?;
        Ok(Inspection { inner })
    }

    /// The ranges to read next, flat: `[offset, length, offset, length, ...]`.
    #[wasm_bindgen(js_name = neededRanges)]
    pub fn needed_ranges(&self) -> Result<Vec<f64>, JsValue> {
        let ranges = self.inner.needed_ranges().map_err(js_error)?;
        Ok(ranges
            .into_iter()
            .flat_map(|(off, len)| [off as f64, len as f64])
            .collect())
    }

    /// Hand over the bytes read at `offset`.
    #[wasm_bindgen(js_name = addChunk)]
    pub fn add_chunk(&mut self, offset: f64, bytes: Vec<u8>) -> Result<(), JsValue> {
        self.inner.add_chunk(file_len_arg(offset)?, bytes);
        Ok(())
    }

    /// The payload ranges to hash, one per section in table order, flat:
    /// `[offset, length, ...]`. Length is -1 when the payload does not lie inside
    /// the file: the report then has no hash for it, as the CLI's has none.
    #[wasm_bindgen(js_name = payloadRanges)]
    pub fn payload_ranges(&self) -> Result<Vec<f64>, JsValue> {
        let ranges = self.inner.payload_ranges().map_err(js_error)?;
        Ok(ranges
            .into_iter()
            .flat_map(|(off, len)| [off as f64, len.map_or(-1.0, |l| l as f64)])
            .collect())
    }

    /// Record the sha256 the Worker computed for section `index`.
    #[wasm_bindgen(js_name = setSha256)]
    pub fn set_sha256(&mut self, index: u32, hex: String) -> Result<(), JsValue> {
        self.inner.set_sha256(index as usize, hex).map_err(js_error)
    }

    /// The report as JSON, with whatever has been read and hashed so far. Once every
    /// needed range and every hash is in, it equals `ukitool inspect --json`.
    pub fn report(&self) -> Result<String, JsValue> {
        to_json(&self.inner.report().map_err(js_error)?)
    }

    /// Take the signatures from a verifier whose digests are set, checked without
    /// trust anchors as `ukitool inspect` checks them.
    #[wasm_bindgen(js_name = setSignatures)]
    pub fn set_signatures(&mut self, verifier: &Verifier) -> Result<(), JsValue> {
        let pe = verifier.pe()?;
        self.inner.set_signatures(Signatures::check_with_digests(
            &pe,
            verifier.digests.clone(),
        ));
        Ok(())
    }

    /// The Authenticode hash ranges, flat `[start, end, ...]`, for streaming.
    #[wasm_bindgen(js_name = authenticodeRanges)]
    pub fn authenticode_ranges(&self) -> Result<Vec<f64>, JsValue> {
        flat_hash_ranges(&self.inner.pe().map_err(js_error)?)
    }
}

/// The exact payload of section `name` (with or without its dot) as `profile`
/// sees it (`undefined`: the base), as `ukitool extract` writes it.
#[wasm_bindgen(js_name = extractSection)]
pub fn extract_section(
    file: &FileBuf,
    name: &str,
    profile: Option<u32>,
) -> Result<Vec<u8>, JsValue> {
    extract::section(&file.data, name, profile)
        .map(<[u8]>::to_vec)
        .map_err(js_error)
}

/// The conventional file name for a section's payload (vmlinuz, initrd, ...).
#[wasm_bindgen(js_name = extractFileName)]
pub fn extract_file_name(section: &str) -> String {
    extract::file_name(section)
}

/// An incremental digest (sha1, sha256, sha384, sha512) fed chunk by chunk.
#[wasm_bindgen]
pub struct Hasher {
    inner: Option<CoreHasher>,
}

#[wasm_bindgen]
impl Hasher {
    #[wasm_bindgen(constructor)]
    pub fn new(algorithm: &str) -> Result<Hasher, JsValue> {
        Ok(Hasher {
            inner: Some(CoreHasher::new(parse_alg(algorithm)?)),
        })
    }

    pub fn update(&mut self, chunk: &[u8]) -> Result<(), JsValue> {
        self.inner
            .as_mut()
            .ok_or_else(|| js_text("hasher already finished"))?
            .update(chunk);
        Ok(())
    }

    /// Update from a range of a [`FileBuf`] without copying it out to JS.
    #[wasm_bindgen(js_name = updateFrom)]
    pub fn update_from(&mut self, file: &FileBuf, start: f64, end: f64) -> Result<(), JsValue> {
        let part = file
            .data
            .get(start as usize..end as usize)
            .ok_or_else(|| js_text(format!("range {start}..{end} is outside the file")))?;
        self.update(part)
    }

    /// The digest as lowercase hex; the hasher cannot be used afterwards.
    pub fn finish(&mut self) -> Result<String, JsValue> {
        let h = self
            .inner
            .take()
            .ok_or_else(|| js_text("hasher already finished"))?;
        Ok(hex(&h.finish()))
    }
}

// ---- signatures -----------------------------------------------------------

/// Authenticode verification without the whole file in memory: the Worker writes the
/// headers and the certificate table at their offsets, streams the file through
/// [`Verifier::hash_ranges`] with the faster of WebCrypto and wasm sha2, hands the
/// digests over, and the core verifies against the anchors the user dropped.
#[wasm_bindgen]
pub struct Verifier {
    /// File-length buffer; only the written ranges hold file bytes.
    file: FileBuf,
    digests: BTreeMap<DigestAlgorithm, Vec<u8>>,
    trust: TrustStore,
    /// One line per anchor file added, for the page.
    anchors: Vec<String>,
}

fn parse_alg(name: &str) -> Result<DigestAlgorithm, JsValue> {
    DigestAlgorithm::ALL
        .into_iter()
        .find(|a| a.name() == name)
        .ok_or_else(|| js_text(format!("unknown digest algorithm {name:?}")))
}

fn unhex(s: &str) -> Result<Vec<u8>, JsValue> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return Err(js_text("odd-length hex digest"));
    }
    b.chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| js_text("bad hex digest"))
        })
        .collect()
}

#[wasm_bindgen]
impl Verifier {
    #[wasm_bindgen(constructor)]
    pub fn new(file_len: f64) -> Result<Verifier, JsValue> {
        Ok(Verifier {
            file: FileBuf::new(file_len)?,
            digests: BTreeMap::new(),
            trust: TrustStore::default(),
            anchors: Vec::new(),
        })
    }

    /// Copy bytes read from the file in at `offset` (the header prefix, the table).
    pub fn write(&mut self, offset: f64, chunk: &[u8]) -> Result<(), JsValue> {
        self.file.write(offset, chunk)
    }

    fn pe(&self) -> Result<PeFile<'_>, JsValue> {
        PeFile::parse(&self.file.data).map_err(js_error)
    }

    /// The certificate table's `[offset, size]`, or `[]` when unsigned.
    #[wasm_bindgen(js_name = certificateTable)]
    pub fn certificate_table(&self) -> Result<Vec<f64>, JsValue> {
        Ok(self
            .pe()?
            .certificate_table()
            .map(|d| vec![f64::from(d.virtual_address), f64::from(d.size)])
            .unwrap_or_default())
    }

    /// The Authenticode hash ranges, flat `[start, end, ...]`; throws (with the
    /// core's offset and rule) when the image hash cannot be computed.
    #[wasm_bindgen(js_name = hashRanges)]
    pub fn hash_ranges(&self) -> Result<Vec<f64>, JsValue> {
        flat_hash_ranges(&self.pe()?)
    }

    /// The digest algorithms to compute (names): sha256 and each signature's.
    #[wasm_bindgen(js_name = digestAlgorithms)]
    pub fn digest_algorithms(&self) -> Result<Vec<String>, JsValue> {
        let pe = self.pe()?;
        Ok(digest_algorithms(&pe)
            .into_iter()
            .map(|a| a.name().to_string())
            .collect())
    }

    /// Record an image digest (lowercase hex) computed over [`Self::hash_ranges`].
    #[wasm_bindgen(js_name = setDigest)]
    pub fn set_digest(&mut self, algorithm: &str, hex_digest: &str) -> Result<(), JsValue> {
        let alg = parse_alg(algorithm)?;
        let d = unhex(hex_digest)?;
        if d.len() != alg.output_len() {
            return Err(js_text(format!(
                "a {} digest has {} bytes",
                alg.name(),
                alg.output_len()
            )));
        }
        self.digests.insert(alg, d);
        Ok(())
    }

    /// Add a trust anchor file: PEM (one or more certificates) or DER, as `verify
    /// --cert`; else an EFI signature list, db variable or .auth file, as `verify
    /// --db`. Returns one line describing what was added.
    #[wasm_bindgen(js_name = addAnchor)]
    pub fn add_anchor(&mut self, name: &str, data: &[u8]) -> Result<String, JsValue> {
        let line = match cert::parse_cert_file(data) {
            Ok(certs) => {
                let cns: Vec<String> = certs
                    .iter()
                    .map(|c| c.subject_cn().unwrap_or_else(|| cert::name_string(c.subject())))
                    .collect();
                self.trust.anchors.extend(certs);
                format!("{name}: certificate {}", cns.join(", "))
            }
            // PEM text is never an EFI signature list: the certificate error alone says
            // what is wrong (a private key, a broken block).
            Err(cert_err) if data.trim_ascii().starts_with(b"-----BEGIN") => {
                return Err(js_text(format!("{name}: {cert_err}")))
            }
            Err(cert_err) => match siglist::parse(data) {
                Ok(db) => {
                    self.trust.add_db(&db).map_err(js_error)?;
                    format!(
                        "{name}: signature database, {} certificates, {} image hashes",
                        db.x509().count(),
                        db.sha256().count()
                    )
                }
                Err(db_err) => {
                    return Err(js_text(format!(
                        "{name} is neither a certificate ({cert_err}) nor an EFI signature list ({db_err})"
                    )))
                }
            },
        };
        self.anchors.push(line.clone());
        Ok(line)
    }

    /// Forget every anchor.
    #[wasm_bindgen(js_name = clearAnchors)]
    pub fn clear_anchors(&mut self) {
        self.trust = TrustStore::default();
        self.anchors.clear();
    }

    /// The anchors added so far, one line each.
    pub fn anchors(&self) -> Vec<String> {
        self.anchors.clone()
    }

    /// Verify against the anchors: the JSON of `ukitool verify --json` (with
    /// `file` as given and no .pcrsig part: [`pcr_check`] gives it from the whole file).
    pub fn verify(&self, file: &str) -> Result<String, JsValue> {
        let v = verify_with_image_digests(file, &self.file.data, &self.trust, self.digests.clone())
            .map_err(js_error)?;
        to_json(&v)
    }
}

// ---- PCR 11 ---------------------------------------------------------------

/// PCR 11 predictions for every bank and the default phases: exactly the text of
/// `ukitool measure FILE --json` (without its newline).
#[wasm_bindgen]
pub fn measure(file: &FileBuf, profile: Option<u32>) -> Result<String, JsValue> {
    let pe = PeFile::parse(&file.data).map_err(js_error)?;
    let input = MeasureInput::Uki { pe: &pe, profile };
    let m = command::measure(&input, &MeasureOptions::default()).map_err(js_error)?;
    serde_json::to_string(&m).map_err(js_text)
}

/// Which sections systemd-stub measures for `profile`: `names` are the report's section
/// names in file order; the result is their indices (core `measure::select_parts`).
/// The page hashes those payloads itself, streamed through WebCrypto.
#[wasm_bindgen(js_name = measurePlan)]
pub fn measure_plan(names: Vec<String>, profile: Option<u32>) -> Result<Vec<u32>, JsValue> {
    let items = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32));
    let parts = ukitool_core::measure::select_parts(items, profile).map_err(js_error)?;
    Ok(parts.into_iter().map(|(_, i)| i).collect())
}

/// `ukitool measure FILE --json` from the digests of the parts `measurePlan` chose:
/// `names[i]` (a section name), `lens[i]` its payload length, and `digests[4 i ..]` its
/// sha1, sha256, sha384 and sha512 digests in hex.
#[wasm_bindgen(js_name = measureDigests)]
pub fn measure_digests(
    names: Vec<String>,
    lens: Vec<f64>,
    digests: Vec<String>,
) -> Result<String, JsValue> {
    let opts = MeasureOptions::default();
    let banks = command::measure::banks(&opts);
    let mut parts = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let len = lens.get(i).copied().unwrap_or(0.0);
        let mut ds = Vec::with_capacity(banks.len());
        for b in 0..banks.len() {
            let hexd = digests
                .get(i * banks.len() + b)
                .ok_or_else(|| js_text(format!("{name}: a digest is missing")))?;
            ds.push(unhex(hexd)?);
        }
        parts.push(ukitool_core::measure::PartDigests {
            name,
            len: len as u64,
            digests: ds,
        });
    }
    let m = command::measure::measure_digests(&parts, &opts).map_err(js_error)?;
    serde_json::to_string(&m).map_err(js_text)
}

/// The .pcrsig check of `ukitool verify` (`{"pcrsig": null, ...}` without one).
#[wasm_bindgen(js_name = pcrCheck)]
pub fn pcr_check(file: &FileBuf) -> Result<String, JsValue> {
    let pe = PeFile::parse(&file.data).map_err(js_error)?;
    to_json(&PcrsigCheck::of(&pe))
}

// ---- disk images ----------------------------------------------------------

/// Where `needle` lies inside `hay`, when it is a borrowed sub-slice of it. Only
/// addresses are compared: this is how an extent is traced back to its input file.
/// Output bytes at their offsets in the output file.
type Pieces<'i> = Vec<(u64, Cow<'i, [u8]>)>;

/// The data of `img` in `format` as (offset in the output, bytes), gaps reading as
/// zero, and the output's length.
fn export_pieces<'i>(
    img: &'i disk::DiskImage<'_>,
    format: Option<&str>,
) -> Result<(Pieces<'i>, u64), JsValue> {
    use disk::export::{Chunk, Export, ExportOptions, Format};
    let format = match format {
        None | Some("") | Some("raw") => None,
        Some(f) => Some(Format::parse(f).map_err(js_error)?),
    };
    let Some(format) = format else {
        let pieces = img
            .extents()
            .iter()
            .map(|e| (e.offset, Cow::Borrowed(&e.data[..])))
            .collect();
        return Ok((pieces, img.size));
    };
    let opts = ExportOptions {
        id_seed: "ukitool page".into(),
        ..ExportOptions::default()
    };
    let mut ex = Export::new(img, format, &opts).map_err(js_error)?;
    let mut pieces = Vec::new();
    let mut pos = 0u64;
    while let Some(c) = ex.next_chunk(img).map_err(js_error)? {
        let n = c.len();
        if let Chunk::Data(d) = c {
            pieces.push((pos, d));
        }
        pos = pos.saturating_add(n);
    }
    Ok((pieces, pos))
}

fn offset_in(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let h = hay.as_ptr() as usize;
    let n = needle.as_ptr() as usize;
    let off = n.checked_sub(h)?;
    (off.checked_add(needle.len())? <= hay.len()).then_some(off)
}

/// Build a disk image as `ukitool image --uki UKI` does with the same options
/// (JSON [`ImageSettings`]: `{layout, size, esp_size, sector_size, label, timestamp,
/// entry_name, timeout, talos_bootloader, talos_version, meta, ...}`, missing fields
/// taking `ukitool image`'s defaults), `loader` being the systemd-boot or GRUB binary
/// the systemd-boot and grub layouts need, and `inputs` the other files, each
/// `[role, name, bytes]`: role `systemd-boot`, `grub`, `shim` (the talos layout's
/// loaders, the CLI's `--systemd-boot`, `--grub`, `--shim`), `grub-bios` (a file of
/// GRUB's i386-pc directory, by its name: `--grub-bios DIR`) or `meta` (the file
/// `name` of a `--meta TAG=@name`); or `["partition-file", NAME, bytes, PATH]`, a file
/// put in the filesystem of `add_partition`'s partition NAME at PATH (as
/// `--add-file-to NAME:SRC:PATH`, in the order the CLI reads them); `esp-file` (a file
/// put on the ESP at `name`, `--add-file SRC:ESP_PATH`); `enroll-key` (`PK.auth`,
/// `KEK.auth`, `db.auth`, `dbx.auth` of `--enroll-keys DIR`, in that order);
/// `secure-boot-key` (a file of `--secure-boot-keys DIR`, by its name). Returns `{summary, size, extents, owned}`:
/// `summary` is the `--json` text, `extents` a flat `[offset, length, input,
/// input_offset, ...]` list where input 0 is the UKI, 1 the loader, 2.. the entries
/// of `inputs` in order, and -1 means `owned[input_offset]` (metadata built in wasm).
/// Gaps read as zero. The page slices the dropped files for input extents, so the
/// UKI is never copied into the download. `format` ("qcow2", "vhd", "vhd-fixed",
/// "vmdk"; undefined or "raw": the raw disk) gives the same list for that container
/// (`ukitool image --format`, core's `disk::export`): offsets and `size` are then the
/// container file's, and its tables are owned parts.
#[wasm_bindgen(js_name = buildDiskImage)]
pub fn build_disk_image(
    uki: &FileBuf,
    loader: Option<Vec<u8>>,
    options: &str,
    inputs: Option<js_sys::Array>,
    format: Option<String>,
) -> Result<js_sys::Object, JsValue> {
    let settings: ImageSettings = serde_json::from_str(options).map_err(js_text)?;
    let mut extra: Vec<(String, String, Vec<u8>, String)> = Vec::new();
    for item in inputs.iter().flat_map(|a| a.iter()) {
        let a = js_sys::Array::from(&item);
        let text = |i: u32| {
            a.get(i)
                .as_string()
                .ok_or_else(|| js_text("input: [role, name, bytes, path]"))
        };
        let data = js_sys::Uint8Array::new(&a.get(2)).to_vec();
        let path = a.get(3).as_string().unwrap_or_default();
        extra.push((text(0)?, text(1)?, data, path));
    }
    let mut files = ImageFiles {
        uki: &uki.data,
        ..ImageFiles::default()
    };
    let loader_data: &[u8] = loader.as_deref().unwrap_or(&[]);
    // role "secure-boot-key": the files of `--secure-boot-keys DIR`, by name.
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    if loader.is_some() {
        files.set_loader(settings.layout().map_err(js_error)?, loader_data);
    }
    for (role, name, data, path) in &extra {
        match role.as_str() {
            "systemd-boot" => files.systemd_boot = Some(data),
            "grub" => files.grub = Some(data),
            "shim" => files.shim = Some(data),
            "grub-bios" => files.grub_bios.push((name.clone(), data)),
            "meta" => files.meta_files.push((name.clone(), data)),
            "partition-file" => files
                .partition_files
                .push((name.clone(), path.clone(), data)),
            "secure-boot-key" => keys.push((name.clone(), data.clone())),
            "esp-file" => files.extra_files.push((name.clone(), data)),
            "enroll-key" => files.enroll_keys.push((name.clone(), data)),
            other => return Err(js_text(format!("unknown input role {other:?}"))),
        }
    }
    let secure_boot = match keys.is_empty() {
        true => None,
        false => {
            let set = key_set(&keys)?;
            Some(command::image::secure_boot(&settings, &files, &set, None).map_err(js_error)?)
        }
    };
    files.secure_boot = secure_boot.as_ref();
    // The page has no environment: no SOURCE_DATE_EPOCH.
    let (img, summary) = command::image(&settings, files, None).map_err(js_error)?;
    let sources: Vec<&[u8]> = [&uki.data[..], loader_data]
        .into_iter()
        .chain(extra.iter().map(|(_, _, d, _)| d.as_slice()))
        .collect();
    let (pieces, total) = export_pieces(&img, format.as_deref())?;
    let mut flat: Vec<f64> = Vec::new();
    let owned = js_sys::Array::new();
    for (offset, data) in &pieces {
        let src = match data {
            Cow::Borrowed(b) => sources
                .iter()
                .enumerate()
                .find_map(|(i, s)| offset_in(s, b).map(|off| (i as f64, off as f64))),
            Cow::Owned(_) => None,
        };
        let (input, at) = match src {
            Some(s) => s,
            None => {
                let i = owned.length();
                owned.push(&js_sys::Uint8Array::from(&data[..]));
                (-1.0, f64::from(i))
            }
        };
        flat.extend([*offset as f64, data.len() as f64, input, at]);
    }
    let out = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&out, &k.into(), v);
    set("summary", &to_json(&summary)?.into())?;
    set("size", &JsValue::from_f64(total as f64))?;
    set("extents", &js_sys::Float64Array::from(&flat[..]).into())?;
    set("owned", &owned.into())?;
    Ok(out)
}

/// One file from the FAT or XFS filesystem of a partition of a disk image, as
/// `ukitool extract DISK PART:/PATH` writes it (`partition`: the partition's GPT name
/// or number). Returns `{offset, length}` when the file is one contiguous run of the
/// disk (the page slices the dropped file), else `{bytes}` (gathered in wasm).
#[wasm_bindgen(js_name = diskFile)]
pub fn disk_file(disk: &FileBuf, partition: &str, path: &str) -> Result<js_sys::Object, JsValue> {
    let parts = disk::files::partitions(&disk.data).map_err(js_error)?;
    let part = disk::files::find(&parts, partition).map_err(js_error)?;
    let bytes = part.read(path).map_err(js_error)?;
    let out = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&out, &k.into(), v);
    let borrowed = match &bytes {
        Cow::Borrowed(b) => offset_in(&disk.data, b),
        Cow::Owned(_) => None,
    };
    match borrowed {
        Some(off) => {
            set("offset", &JsValue::from_f64(off as f64))?;
            set("length", &JsValue::from_f64(bytes.len() as f64))?;
        }
        None => {
            set("bytes", &js_sys::Uint8Array::from(&bytes[..]).into())?;
        }
    }
    Ok(out)
}

// ---- building UKIs --------------------------------------------------------

// ---- Secure Boot keys and signing ------------------------------------------

/// `[[name, Uint8Array], ...]` to owned pairs.
fn named_files(list: Option<js_sys::Array>) -> Result<Vec<(String, Vec<u8>)>, JsValue> {
    let mut out = Vec::new();
    for item in list.iter().flat_map(|a| a.iter()) {
        let a = js_sys::Array::from(&item);
        let name = a
            .get(0)
            .as_string()
            .ok_or_else(|| js_text("file: [name, bytes]"))?;
        out.push((name, js_sys::Uint8Array::new(&a.get(1)).to_vec()));
    }
    Ok(out)
}

/// Owned pairs to `[[name, Uint8Array], ...]`.
fn js_files(files: &[(String, Vec<u8>)]) -> js_sys::Array {
    files
        .iter()
        .map(|(n, d)| {
            let pair = js_sys::Array::new();
            pair.push(&JsValue::from_str(n));
            pair.push(&js_sys::Uint8Array::from(&d[..]));
            JsValue::from(pair)
        })
        .collect()
}

fn files_and_json<T: Serialize>(
    files: &[(String, Vec<u8>)],
    key: &str,
    value: &T,
) -> Result<js_sys::Object, JsValue> {
    let out = js_sys::Object::new();
    js_sys::Reflect::set(&out, &"files".into(), &js_files(files))?;
    js_sys::Reflect::set(&out, &key.into(), &to_json(value)?.into())?;
    Ok(out)
}

/// A key set from a key directory's files, `[[name, bytes], ...]` (`PK.key PK.crt
/// KEK.key KEK.crt db.key db.crt`, optionally `GUID`), as `--secure-boot-keys DIR`
/// and `keys export DIR` read it.
fn key_set(files: &[(String, Vec<u8>)]) -> Result<ukitool_core::keys::KeySet, JsValue> {
    ukitool_core::keys::KeySet::from_files(|name| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.as_slice())
    })
    .map_err(js_error)
}

/// `ukitool keys create` around three RSA private keys made by WebCrypto
/// (`exportKey("pkcs8")`, PK, KEK, db). `options`: `{name, algorithm, owner_guid,
/// not_before, valid_days}`, missing fields taking the CLI's defaults. Returns
/// `{files: [[name, bytes]...], created}`: the key directory's files and the `--json`
/// summary. Serial numbers (and a random owner) come from crypto.getRandomValues.
#[wasm_bindgen(js_name = keysCreate)]
pub fn keys_create(
    pk: &[u8],
    kek: &[u8],
    db: &[u8],
    options: &str,
) -> Result<js_sys::Object, JsValue> {
    use ukitool_core::keys::{CreateOptions, KeyAlgorithm, DEFAULT_ALGORITHM, DEFAULT_NAME};
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Options {
        name: Option<String>,
        algorithm: Option<String>,
        owner_guid: Option<String>,
        not_before: u64,
        valid_days: Option<u32>,
    }
    let o: Options = serde_json::from_str(options).map_err(js_text)?;
    let opts = CreateOptions {
        name: o.name.unwrap_or_else(|| DEFAULT_NAME.into()),
        algorithm: KeyAlgorithm::parse(o.algorithm.as_deref().unwrap_or(DEFAULT_ALGORITHM))
            .map_err(js_error)?,
        owner: o
            .owner_guid
            .as_deref()
            .map(ukitool_core::guid::Guid::parse)
            .transpose()
            .map_err(js_error)?,
        not_before: o.not_before,
        valid_days: o
            .valid_days
            .unwrap_or(ukitool_core::keys::DEFAULT_VALID_DAYS),
    };
    let key = |der: &[u8]| SigningKey::from_pkcs8_der(der).map_err(js_error);
    let keys = [key(pk)?, key(kek)?, key(db)?];
    let (files, created) =
        command::keys::create_from_keys(&opts, keys, &mut rand_core::OsRng).map_err(js_error)?;
    files_and_json(&files, "created", &created)
}

/// `ukitool keys export`: `keys` is the key directory's files, `append_db` and `dbx`
/// `[[name, bytes], ...]` as `--append-db` and `--dbx`, `timestamp` the `.auth` time
/// (Unix seconds; the page has no clock default: it passes the field's value).
/// Returns `{files, exported}`.
#[wasm_bindgen(js_name = keysExport)]
pub fn keys_export(
    keys: js_sys::Array,
    append_db: Option<js_sys::Array>,
    dbx: Option<js_sys::Array>,
    timestamp: f64,
) -> Result<js_sys::Object, JsValue> {
    let set = key_set(&named_files(Some(keys))?)?;
    let append = named_files(append_db)?;
    let dbx = named_files(dbx)?;
    fn borrow(v: &[(String, Vec<u8>)]) -> Vec<(String, &[u8])> {
        v.iter().map(|(n, d)| (n.clone(), d.as_slice())).collect()
    }
    if !(0.0..=9.007_199_254_740_991e15).contains(&timestamp) || timestamp.fract() != 0.0 {
        return Err(js_text("the timestamp must be whole seconds since 1970"));
    }
    let opts = command::keys::ExportOptions {
        append_db: borrow(&append),
        dbx: borrow(&dbx),
        timestamp: timestamp as u64,
    };
    let (files, exported) = command::keys::export(&set, &opts).map_err(js_error)?;
    files_and_json(&files, "exported", &exported)
}

/// `--signing-time SECONDS` for the sign functions: undefined means none.
fn signing_time(t: Option<f64>) -> Result<Option<u64>, JsValue> {
    t.map(|t| {
        if (0.0..=9.007_199_254_740_991e15).contains(&t) && t.fract() == 0.0 {
            Ok(t as u64)
        } else {
            Err(js_text("the signing time must be whole seconds since 1970"))
        }
    })
    .transpose()
}

/// The signer certificate: the first of a PEM file (as the CLI's `--cert` reads it),
/// or a DER certificate.
fn signer_cert(cert: &[u8]) -> Result<Vec<u8>, JsValue> {
    let certs = ukitool_core::pem::certificates(cert).map_err(js_error)?;
    match certs.into_iter().next() {
        Some(first) => Ok(first),
        None => {
            cert::Certificate::parse(cert, 0).map_err(js_error)?;
            Ok(cert.to_vec())
        }
    }
}

/// `ukitool sign FILE --key KEY --cert CERT [--append] [--signing-time T]`: the
/// signed PE.
#[wasm_bindgen(js_name = signPe)]
pub fn sign_pe(
    image: &[u8],
    key_pem: &str,
    cert: &[u8],
    append: bool,
    time: Option<f64>,
) -> Result<Vec<u8>, JsValue> {
    let key = SigningKey::from_pem(key_pem, None).map_err(js_error)?;
    let cert = signer_cert(cert)?;
    sign_with(image, &key, &cert, append, time)
}

/// `ukitool sign` with the page's options: no chain, optionally appended, signed at
/// `time`.
fn sign_with(
    image: &[u8],
    key: &dyn sign::AttributeSigner,
    cert: &[u8],
    append: bool,
    time: Option<f64>,
) -> Result<Vec<u8>, JsValue> {
    let opts = sign::SignOptions {
        key,
        cert,
        chain: Vec::new(),
        append,
        signing_time: signing_time(time)?,
    };
    sign::sign(image, &opts).map_err(js_error)
}

/// `ukitool sign FILE --export-signed-attributes OUT`: the DER bytes the key must
/// sign (SHA-256, PKCS#1 v1.5 or ECDSA), for an outside signer.
#[wasm_bindgen(js_name = signedAttributes)]
pub fn signed_attributes(
    image: &[u8],
    append: bool,
    time: Option<f64>,
) -> Result<Vec<u8>, JsValue> {
    sign::signed_attributes_for(image, append, signing_time(time)?).map_err(js_error)
}

/// `ukitool sign FILE --attach SIG --cert CERT`: the PE signed with an outside
/// signature over [`signed_attributes`]; one that does not verify with the
/// certificate's key is refused.
#[wasm_bindgen(js_name = attachSignature)]
pub fn attach_signature(
    image: &[u8],
    cert: &[u8],
    signature: Vec<u8>,
    append: bool,
    time: Option<f64>,
) -> Result<Vec<u8>, JsValue> {
    let cert = signer_cert(cert)?;
    let key = sign::DetachedSignature::new(&cert, signature).map_err(js_error)?;
    sign_with(image, &key, &cert, append, time)
}

/// `ukitool diff --json A B`: what changed between two PEs or UKIs, the same JSON
/// text (the page adds the CLI's final newline to its download).
#[wasm_bindgen]
pub fn diff(a: &FileBuf, b: &FileBuf) -> Result<String, JsValue> {
    to_json(&command::diff(&a.data, &b.data, &InOrder).map_err(js_error)?)
}

/// What `buildUkiWith` reads besides files: `ukitool build`'s texts and PCR options.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct UkiOptions {
    cmdline: Option<String>,
    uname: Option<String>,
    sbat: Vec<String>,
    timestamp: Option<u32>,
    pcr_banks: Vec<String>,
    phases: Vec<String>,
}

/// Build a UKI as `ukitool build` does, from `parts` `[[role, name, bytes], ...]` and
/// `options` (`{cmdline, uname, sbat: [text], timestamp, pcr_banks, phases}`). Roles,
/// each the CLI option of the same name: `stub`, `linux`, `initrd` (repeatable,
/// concatenated in the order given), `ucode`, `splash`, `devicetree`, `os-release`,
/// `section` (`--section NAME:FILE`, NAME = `name`), `profile` (`--profile`, its text
/// as bytes), `profile-section` (a `--section` after that profile), `key`, `cert`,
/// `chain` (Authenticode signing), `pcr-key` (`--pcr-key`: `.pcrsig` for `pcr_banks`
/// and `phases`, empty meaning the CLI's defaults).
#[wasm_bindgen(js_name = buildUkiWith)]
pub fn build_uki_with(parts: js_sys::Array, options: &str) -> Result<Vec<u8>, JsValue> {
    let o: UkiOptions = serde_json::from_str(options).map_err(js_text)?;
    let mut list: Vec<(String, String, Vec<u8>)> = Vec::new();
    for item in parts.iter() {
        let a = js_sys::Array::from(&item);
        let text = |i: u32| {
            a.get(i)
                .as_string()
                .ok_or_else(|| js_text("part: [role, name, bytes]"))
        };
        list.push((
            text(0)?,
            text(1)?,
            js_sys::Uint8Array::new(&a.get(2)).to_vec(),
        ));
    }
    let one = |role: &str| {
        list.iter()
            .find(|(r, _, _)| r == role)
            .map(|(_, _, d)| d.as_slice())
    };
    let all = |role: &str| -> Vec<&[u8]> {
        list.iter()
            .filter(|(r, _, _)| r == role)
            .map(|(_, _, d)| d.as_slice())
            .collect()
    };
    let stub = one("stub").ok_or_else(|| js_text("a stub is needed"))?;
    let key = one("key")
        .map(|k| SigningKey::from_pem(&String::from_utf8_lossy(k), None))
        .transpose()
        .map_err(js_error)?;
    let certs = one("cert").map(signer_cert).transpose()?;
    let chain: Vec<Vec<u8>> = all("chain")
        .into_iter()
        .map(sign::certificates_from_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(js_error)?
        .into_iter()
        .flatten()
        .collect();
    let signer = match (&key, &certs) {
        (Some(key), Some(cert)) => Some(Signer {
            key,
            cert,
            chain: chain.iter().map(Vec::as_slice).collect(),
        }),
        (None, None) => None,
        _ => return Err(js_text("signing needs both a key and a certificate")),
    };
    let pcr_key = one("pcr-key")
        .map(|k| SigningKey::from_pem(&String::from_utf8_lossy(k), None))
        .transpose()
        .map_err(js_error)?;
    let mut spec = BuildSpec {
        stub,
        linux: one("linux"),
        initrds: all("initrd"),
        ucode: one("ucode"),
        cmdline: o.cmdline.as_deref().map(str::as_bytes),
        os_release: one("os-release"),
        uname: o.uname.as_deref().map(str::as_bytes),
        splash: one("splash"),
        devicetree: one("devicetree"),
        sbat: o.sbat.iter().map(|s| s.as_bytes()).collect(),
        timestamp: o.timestamp,
        ..BuildSpec::default()
    };
    for (role, name, data) in &list {
        let part = ukitool_core::build::NamedPart { name, data };
        match role.as_str() {
            "section" => spec.sections.push(part),
            "profile" => spec.profiles.push(ukitool_core::build::ProfileSpec {
                text: data,
                sections: Vec::new(),
            }),
            "profile-section" => spec
                .profiles
                .last_mut()
                .ok_or_else(|| js_text("a profile section needs a profile before it"))?
                .sections
                .push(part),
            _ => {}
        }
    }
    let opts = BuildOptions {
        spec,
        pcr_signing: pcr_key.as_ref().map(|key| command::build::PcrSigning {
            keys: vec![command::build::PcrKey {
                key,
                public_key: None,
                phases: &o.phases,
            }],
            banks: &o.pcr_banks,
        }),
        signer,
    };
    command::build(&opts).map_err(js_error)
}

/// The crate version, shown in the page footer.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The Authenticode hash ranges as JS numbers, flat `[start, end, ...]`.
fn flat_hash_ranges(pe: &PeFile<'_>) -> Result<Vec<f64>, JsValue> {
    let ranges = hash_ranges(pe).map_err(js_error)?;
    Ok(ranges
        .iter()
        .flat_map(|r| [r.start as f64, r.end as f64])
        .collect())
}
