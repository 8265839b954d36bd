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

use serde::Serialize;
use ukitool_core::authenticode::hash::{hash_ranges, DigestAlgorithm, Hasher as CoreHasher};
use ukitool_core::bytes::hex;
use ukitool_core::disk;
use ukitool_core::extract;
use ukitool_core::inspect::{
    inspect as core_inspect, inspect_pe, needed_ranges, ByteSource, Chunks, InspectOptions,
};
use ukitool_core::pe::PeFile;
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
    let report = core_inspect(&file.data, &InspectOptions::default()).map_err(js_error)?;
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
/// loaded whole.
#[wasm_bindgen]
pub struct Inspection {
    src: Chunks,
    /// sha256 (lowercase hex) per section index, set as the Worker computes them.
    sha256: Vec<Option<String>>,
}

impl Inspection {
    /// The header prefix: always the first chunk.
    fn prefix(&self) -> &[u8] {
        self.src
            .chunks
            .first()
            .map_or(&[][..], |(_, d)| d.as_slice())
    }

    fn pe(&self) -> Result<PeFile<'_>, JsValue> {
        PeFile::parse_prefix(self.prefix(), self.src.file_len).map_err(js_error)
    }
}

#[wasm_bindgen]
impl Inspection {
    /// Parse the headers from the first bytes of a file of `fileLen` bytes. Throws
    /// when they are not a PE (or the prefix is too short: the error says so).
    #[wasm_bindgen(constructor)]
    pub fn new(prefix: Vec<u8>, file_len: f64) -> Result<Inspection, JsValue> {
        let file_len = file_len_arg(file_len)?;
        let n = PeFile::parse_prefix(&prefix, file_len)
            .map_err(js_error)?
            .sections
            .len();
        Ok(Inspection {
            src: Chunks {
                file_len,
                chunks: vec![(0, prefix)],
            },
            sha256: vec![None; n],
        })
    }

    /// The ranges to read next, flat: `[offset, length, offset, length, ...]`.
    #[wasm_bindgen(js_name = neededRanges)]
    pub fn needed_ranges(&self) -> Result<Vec<f64>, JsValue> {
        let pe = self.pe()?;
        Ok(needed_ranges(&pe)
            .into_iter()
            .filter(|&(off, len)| len > 0 && self.src.read(off, len).is_none())
            .flat_map(|(off, len)| [off as f64, len as f64])
            .collect())
    }

    /// Hand over the bytes read at `offset`.
    #[wasm_bindgen(js_name = addChunk)]
    pub fn add_chunk(&mut self, offset: f64, bytes: Vec<u8>) -> Result<(), JsValue> {
        self.src.chunks.push((file_len_arg(offset)?, bytes));
        Ok(())
    }

    /// The payload ranges to hash, one per section in table order, flat:
    /// `[offset, length, ...]`. Length is -1 when the payload does not lie inside
    /// the file: the report then has no hash for it, as the CLI's has none.
    #[wasm_bindgen(js_name = payloadRanges)]
    pub fn payload_ranges(&self) -> Result<Vec<f64>, JsValue> {
        let pe = self.pe()?;
        Ok(pe
            .sections
            .iter()
            .flat_map(|s| {
                let off = u64::from(s.pointer_to_raw_data);
                let len = u64::from(s.payload_len());
                let inside = off.checked_add(len).is_some_and(|e| e <= self.src.file_len);
                [off as f64, if inside { len as f64 } else { -1.0 }]
            })
            .collect())
    }

    /// Record the sha256 the Worker computed for section `index`.
    #[wasm_bindgen(js_name = setSha256)]
    pub fn set_sha256(&mut self, index: u32, hex: String) -> Result<(), JsValue> {
        let slot = self
            .sha256
            .get_mut(index as usize)
            .ok_or_else(|| js_text(format!("no section {index}")))?;
        *slot = Some(hex);
        Ok(())
    }

    /// The report as JSON, with whatever has been read and hashed so far. Once every
    /// needed range and every hash is in, it equals `ukitool inspect --json`.
    pub fn report(&self) -> Result<String, JsValue> {
        let pe = self.pe()?;
        let mut report = inspect_pe(&pe, &self.src, &InspectOptions::NO_HASH);
        for (row, sha) in report.sections.iter_mut().zip(&self.sha256) {
            if sha.is_some() {
                row.sha256.clone_from(sha);
            }
        }
        to_json(&report)
    }

    /// The Authenticode hash ranges, flat `[start, end, ...]`, for streaming.
    #[wasm_bindgen(js_name = authenticodeRanges)]
    pub fn authenticode_ranges(&self) -> Result<Vec<f64>, JsValue> {
        let pe = self.pe()?;
        let ranges = hash_ranges(&pe).map_err(js_error)?;
        Ok(ranges
            .iter()
            .flat_map(|r| [r.start as f64, r.end as f64])
            .collect())
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
        let alg = DigestAlgorithm::ALL
            .into_iter()
            .find(|a| a.name() == algorithm)
            .ok_or_else(|| js_text(format!("unknown digest algorithm {algorithm:?}")))?;
        Ok(Hasher {
            inner: Some(CoreHasher::new(alg)),
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

/// The crate version, shown in the page footer.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
