// Disk images of any size, in the Worker: the wasm core reads the image through a
// synchronous function over Blob.slice + FileReaderSync, so only the partition
// table, the filesystems' metadata, META and the EFI binaries are read, and nothing
// of the image is kept in wasm memory. A compressed image (.raw.zst, .raw.xz,
// .raw.gz, recognised by content) is decoded in wasm as it is read, with a bounded
// cache (ukitool_core::stream): DecompressionStream is asynchronous and cannot serve
// the core's synchronous reads.

import * as wasm from "../pkg/ukitool_web.js";

const PIECE = 8 * 1024 * 1024; // a compressed image's file data is read this much at a time

// "disk", "zstd", "xz", "gzip", or undefined, from a file's first bytes.
export function diskKind(head) {
  return wasm.diskKind(head);
}

// A wasm.Disk over `file`; throws when it holds no disk image.
export function openDisk(file) {
  const reader = new FileReaderSync();
  const read = (offset, length) => new Uint8Array(reader.readAsArrayBuffer(file.slice(offset, offset + length)));
  return new wasm.Disk(file.size, read);
}

// A partition's file as a Blob: slices of the dropped file for a raw image (no copy),
// else its bytes decoded PIECE at a time.
export function diskFileBlob(disk, file, partition, path) {
  const runs = disk.fileRuns(partition, path);
  const parts = [];
  for (let i = 0; i < runs.length; i += 2) {
    const [off, len] = [runs[i], runs[i + 1]];
    if (!disk.compression) {
      parts.push(file.slice(off, off + len));
      continue;
    }
    for (let at = 0; at < len; at += PIECE) parts.push(disk.read(off + at, Math.min(PIECE, len - at)));
  }
  return new Blob(parts, { type: "application/octet-stream" });
}

// `blob` compressed, streamed: gzip by the browser's CompressionStream when it has
// one, zstd and xz (and gzip without it) in wasm, which reads the Blob through
// FileReaderSync 8 MiB at a time and hands the output over 1 MiB at a time. The
// uncompressed image is never held: it is a Blob of slices of the dropped files,
// small owned parts and one shared zero part.
export async function compressBlob(blob, kind) {
  if (kind === "gzip" && typeof CompressionStream === "function") {
    return new Response(blob.stream().pipeThrough(new CompressionStream("gzip"))).blob();
  }
  const reader = new FileReaderSync();
  const parts = [];
  wasm.compressStream(
    kind,
    blob.size,
    (offset, length) => new Uint8Array(reader.readAsArrayBuffer(blob.slice(offset, offset + length))),
    (chunk) => parts.push(chunk),
  );
  return new Blob(parts, { type: "application/octet-stream" });
}
