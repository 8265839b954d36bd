// The disk image builder's "Download as" choice (main thread; bigdisk.js does the
// compression in the Worker).

// The built image's download container and compression, from the page's choice
// ("img", "img.zst", "img.xz", "img.gz", "qcow2", "vhd"): {format, compress, ext}.
export function outputChoice(value) {
  const v = value || "img";
  const [format, compress] = {
    img: ["raw", null],
    "img.zst": ["raw", "zstd"],
    "img.xz": ["raw", "xz"],
    "img.gz": ["raw", "gzip"],
    qcow2: ["qcow2", null],
    vhd: ["vhd", null],
  }[v] || ["raw", null];
  return { format, compress, ext: v };
}
