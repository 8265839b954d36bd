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
use ukitool_core::pe::{DataDirectory, OptionalHeader, PeFile, Section};
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
            return Err(js_text(format!("file length {len} does not fit in wasm memory")));
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

/// One row of the section table, with the exact payload range the page slices for
/// a download (VirtualSize bytes clamped to the raw data, as the stub reads them).
#[derive(Serialize)]
struct SectionRow<'a> {
    name: &'a str,
    virtual_address: u32,
    virtual_size: u32,
    file_offset: u32,
    raw_size: u32,
    characteristics: u32,
    payload_offset: u32,
    payload_len: u32,
    sha256: Option<String>,
}

/// The headers and section table: what the page shows before any payload is read.
#[derive(Serialize)]
struct HeaderView<'a> {
    file_len: u64,
    machine: u16,
    machine_name: Option<&'static str>,
    subsystem_name: Option<&'static str>,
    nx_compat: bool,
    time_date_stamp: u32,
    optional_header: &'a OptionalHeader,
    data_directories: &'a [DataDirectory],
    certificate_table: Option<DataDirectory>,
    end_of_section_data: u64,
    sections: Vec<SectionRow<'a>>,
}

fn header_view<'a>(pe: &'a PeFile<'_>, hash: bool) -> Result<HeaderView<'a>, Error> {
    let row = |s: &'a Section| -> Result<SectionRow<'a>, Error> {
        let sha256 = if hash {
            Some(hex(&DigestAlgorithm::Sha256.digest(s.payload(pe.data)?)))
        } else {
            None
        };
        Ok(SectionRow {
            name: &s.name,
            virtual_address: s.virtual_address,
            virtual_size: s.virtual_size,
            file_offset: s.pointer_to_raw_data,
            raw_size: s.size_of_raw_data,
            characteristics: s.characteristics,
            payload_offset: s.pointer_to_raw_data,
            payload_len: s.payload_len(),
            sha256,
        })
    };
    Ok(HeaderView {
        file_len: pe.file_len,
        machine: pe.coff.machine,
        machine_name: pe.machine_name(),
        subsystem_name: pe.subsystem_name(),
        nx_compat: pe.nx_compat(),
        time_date_stamp: pe.coff.time_date_stamp,
        optional_header: &pe.opt,
        data_directories: &pe.data_directories,
        certificate_table: pe.certificate_table(),
        end_of_section_data: pe.end_of_section_data(),
        sections: pe.sections.iter().map(row).collect::<Result<_, _>>()?,
    })
}

fn file_len_arg(file_len: f64) -> Result<u64, JsValue> {
    if file_len >= 0.0 && file_len.fract() == 0.0 && file_len < 9.007_199_254_740_992e15 {
        Ok(file_len as u64)
    } else {
        Err(js_text(format!("bad file length {file_len}")))
    }
}

/// Headers and section table from the first bytes of a file of `fileLen` bytes
/// (read with `Blob.slice`); no payload is read and no hash computed.
#[wasm_bindgen(js_name = inspectPrefix)]
pub fn inspect_prefix(prefix: &[u8], file_len: f64) -> Result<String, JsValue> {
    let pe = PeFile::parse_prefix(prefix, file_len_arg(file_len)?).map_err(js_error)?;
    to_json(&header_view(&pe, false).map_err(js_error)?)
}

/// Headers and section table of a whole file, with per-section sha256.
#[wasm_bindgen(js_name = inspectHeaders)]
pub fn inspect_headers(file: &FileBuf) -> Result<String, JsValue> {
    let pe = PeFile::parse(&file.data).map_err(js_error)?;
    to_json(&header_view(&pe, true).map_err(js_error)?)
}

/// The exact payload of the first section named `name`.
#[wasm_bindgen(js_name = extractSection)]
pub fn extract_section(file: &FileBuf, name: &str) -> Result<Vec<u8>, JsValue> {
    let pe = PeFile::parse(&file.data).map_err(js_error)?;
    let payload = pe
        .section_payload(name)
        .ok_or_else(|| js_error(Error::NotFound(format!("section {name}"))))?
        .map_err(js_error)?;
    Ok(payload.to_vec())
}

/// The Authenticode hash ranges of a file as a flat `[start, end, start, end, ...]`
/// list, computed from its header prefix, so the Worker can stream the file through
/// a [`Hasher`] (or WebCrypto) without loading it whole.
#[wasm_bindgen(js_name = authenticodeRanges)]
pub fn authenticode_ranges(prefix: &[u8], file_len: f64) -> Result<Vec<f64>, JsValue> {
    let pe = PeFile::parse_prefix(prefix, file_len_arg(file_len)?).map_err(js_error)?;
    let ranges = hash_ranges(&pe).map_err(js_error)?;
    Ok(ranges
        .iter()
        .flat_map(|r| [r.start as f64, r.end as f64])
        .collect())
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
