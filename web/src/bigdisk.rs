//! Disk images of any size in the page: the Worker hands over a synchronous read
//! function (`Blob.slice` + `FileReaderSync`), and the core reads only the partition
//! table, the filesystems' metadata, META and the EFI binaries through it. A
//! compressed image (zstd, xz, gzip, recognised by content) is decoded in wasm by
//! ukitool_core::stream's forward decoder with a bounded cache: the browser's
//! `DecompressionStream` is asynchronous and cannot serve the core's synchronous
//! reads, nor start again from the beginning when a reader goes back.

use std::rc::Rc;

use ukitool_core::disk;
use ukitool_core::inspect::InspectOptions;
use ukitool_core::readat::{ReadAt, Window};
use ukitool_core::stream::{Compression, Forward};
use wasm_bindgen::prelude::*;

use super::{file_len_arg, js_error, js_text, to_json};

/// Decoded chunks kept for going back (see ukitool_core::stream): 32 MiB of wasm
/// memory at most, whatever the image's size.
const CACHE_BUDGET: usize = 32 << 20;

/// A source read through a JS function `(offset, length) => Uint8Array`.
struct JsSource {
    read: js_sys::Function,
    size: u64,
}

impl ReadAt for JsSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> ukitool_core::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(ukitool_core::Error::Truncated {
                what: "read",
                offset,
                needed: buf.len() as u64,
                available: self.size.saturating_sub(offset),
            });
        }
        let fail = |what: String| ukitool_core::Error::Source { offset, what };
        let got = self
            .read
            .call2(
                &JsValue::NULL,
                &JsValue::from_f64(offset as f64),
                &JsValue::from_f64(buf.len() as f64),
            )
            .map_err(|e| fail(format!("{e:?}")))?;
        let arr = js_sys::Uint8Array::new(&got);
        if arr.length() as usize != buf.len() {
            return Err(fail(format!(
                "the browser gave {} bytes for {}",
                arr.length(),
                buf.len()
            )));
        }
        arr.copy_to(buf);
        Ok(())
    }
}

/// An opened disk image, raw or compressed, read a piece at a time.
#[wasm_bindgen]
pub struct Disk {
    src: Rc<dyn ReadAt>,
    compression: Option<Compression>,
}

/// What the first bytes of a file are: "disk" (a raw disk image), "zstd", "xz",
/// "gzip", or undefined.
#[wasm_bindgen(js_name = diskKind)]
pub fn disk_kind(head: &[u8]) -> Option<String> {
    if let Some(c) = Compression::detect(head) {
        return Some(c.name().to_string());
    }
    disk::inspect::looks_like_disk(head).then(|| "disk".to_string())
}

#[wasm_bindgen]
impl Disk {
    /// A file of `size` bytes read through `read(offset, length)`; a compressed one
    /// is decoded as it is read. Throws when it does not hold a disk image.
    #[wasm_bindgen(constructor)]
    pub fn new(size: f64, read: js_sys::Function) -> Result<Disk, JsValue> {
        let file: Rc<dyn ReadAt> = Rc::new(JsSource {
            read,
            size: file_len_arg(size)?,
        });
        let head = file
            .read_vec(0, file.size().min(512), "header")
            .map_err(js_error)?;
        let compression = Compression::detect(&head);
        let src: Rc<dyn ReadAt> = match compression {
            Some(c) => Rc::new(Forward::of(c, file, CACHE_BUDGET).map_err(js_error)?),
            None => file,
        };
        if !disk::inspect::looks_like_disk_at(&*src) {
            return Err(js_text("not a disk image (no 0x55AA boot signature)"));
        }
        Ok(Disk { src, compression })
    }

    /// The image's (decompressed) size.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> f64 {
        self.src.size() as f64
    }

    /// "zstd", "xz", "gzip", or undefined for a raw image.
    #[wasm_bindgen(getter)]
    pub fn compression(&self) -> Option<String> {
        self.compression.map(|c| c.name().to_string())
    }

    /// The disk report as JSON, as `ukitool inspect --json` prints it.
    pub fn inspect(&self) -> Result<String, JsValue> {
        let mut r = disk::inspect::inspect_disk_at(&*self.src, &InspectOptions::default())
            .map_err(js_error)?;
        r.compression = self.compression;
        to_json(&r)
    }

    /// Where the bytes of file `path` of partition `partition` lie in the image, flat
    /// `[offset, length, ...]` in file order (for a raw image the Worker slices the
    /// dropped file; for a compressed one it reads them with [`Disk::read`]); throws
    /// when the file is missing or not stored in runs.
    #[wasm_bindgen(js_name = fileRuns)]
    pub fn file_runs(&self, partition: &str, path: &str) -> Result<Vec<f64>, JsValue> {
        let parts = disk::files::partitions(Window::new(&*self.src)).map_err(js_error)?;
        let part = disk::files::find(&parts, partition).map_err(js_error)?;
        let runs = part.disk_runs(path).ok_or_else(|| {
            js_text(format!(
                "partition {partition}: no file {path:?} stored in runs"
            ))
        })?;
        Ok(runs
            .into_iter()
            .flat_map(|(o, l)| [o as f64, l as f64])
            .collect())
    }

    /// `length` bytes of the (decompressed) image at `offset`.
    pub fn read(&self, offset: f64, length: f64) -> Result<Vec<u8>, JsValue> {
        self.src
            .read_vec(file_len_arg(offset)?, file_len_arg(length)?, "read")
            .map_err(js_error)
    }
}

/// Output handed to a JS function `(Uint8Array) => void` 1 MiB at a time.
struct JsWriter {
    write: js_sys::Function,
    buf: Vec<u8>,
    total: u64,
}

impl JsWriter {
    fn flush_out(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let arr = js_sys::Uint8Array::from(&self.buf[..]);
        self.write
            .call1(&JsValue::NULL, &arr)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        self.total = self.total.saturating_add(self.buf.len() as u64);
        self.buf.clear();
        Ok(())
    }
}

impl std::io::Write for JsWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            self.flush_out()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_out()
    }
}

/// Compresses `size` bytes read through `read(offset, length)` (the Worker's
/// `FileReaderSync` over the built image's Blob) as one zstd frame, an xz stream or a
/// gzip member, handing the output to `write(Uint8Array)` as it is made: the
/// uncompressed image is never in memory. For the page's downloads where the browser
/// has no codec (`CompressionStream` does gzip only). Returns the compressed length.
#[wasm_bindgen(js_name = compressStream)]
pub fn compress_stream(
    kind: &str,
    size: f64,
    read: js_sys::Function,
    write: js_sys::Function,
) -> Result<f64, JsValue> {
    use std::io::Write;
    let src: Rc<dyn ReadAt> = Rc::new(JsSource {
        read,
        size: file_len_arg(size)?,
    });
    let mut input =
        std::io::BufReader::with_capacity(8 << 20, ukitool_core::stream::SeqReader::new(src));
    let mut out = JsWriter {
        write,
        buf: Vec::with_capacity(1 << 20),
        total: 0,
    };
    let io = |e: std::io::Error| js_text(format!("compressing: {e}"));
    match kind {
        "zstd" => {
            ruzstd::encoding::compress(
                &mut input,
                &mut out,
                ruzstd::encoding::CompressionLevel::Fastest,
            );
        }
        "xz" => {
            let opts = lzma_rust2::XzOptions::with_preset(1);
            let mut w = lzma_rust2::XzWriter::new(&mut out, opts).map_err(io)?;
            std::io::copy(&mut input, &mut w).map_err(io)?;
            w.finish().map_err(io)?;
        }
        "gzip" => {
            let mut w = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
            std::io::copy(&mut input, &mut w).map_err(io)?;
            w.finish().map_err(io)?;
        }
        other => return Err(js_text(format!("unknown compression {other:?}"))),
    }
    out.flush().map_err(io)?;
    Ok(out.total as f64)
}
