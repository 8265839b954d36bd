//! VMDK streamOptimized (VMware's "Virtual Disk Format 5.0", stream-optimized
//! compressed sparse extents): the format of OVA/OVF disks. Little-endian fields.
//!
//! The file: the sparse extent header (sector 0) with the text descriptor embedded
//! after it, padding to the first grain; each 64 KiB grain holding a non-zero byte as a
//! grain marker (its LBA and compressed size) and a zlib stream, padded to a sector;
//! then each grain table that maps something behind a GT marker, the grain directory
//! behind a GD marker, the footer (a copy of the header that points to the directory)
//! behind a footer marker, and the end-of-stream marker. The header's directory offset
//! is GD_AT_END, so the file can be written in one pass, as VMware's exporter does.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::Compression;

use super::{nonzero_units, overflow, pad_to, ExportOptions, Piece, Pieces};
use crate::disk::DiskImage;
use crate::error::{Error, Result};

/// The layout constants (all fields little-endian).
pub mod raw {
    /// "KDMV".
    pub const MAGIC: u32 = 0x564d_444b;
    pub const VERSION: u32 = 3;
    /// Valid newline detection (bit 0), compressed grains (16), markers (17).
    pub const FLAGS: u32 = 1 | (1 << 16) | (1 << 17);
    pub const SECTOR: u64 = 512;
    pub const SECTOR_BYTES: usize = 512;
    pub const GRAIN_BYTES: usize = 64 << 10;
    pub const GT_BYTES: usize = 512 * 4;
    pub const GTES_PER_GT_FIELD: u32 = 512;
    /// Sectors per grain: 64 KiB grains.
    pub const GRAIN_SECTORS: u64 = 128;
    pub const GRAIN_SIZE: u64 = GRAIN_SECTORS * SECTOR;
    pub const GTES_PER_GT: u64 = 512;
    pub const DESCRIPTOR_OFFSET: u64 = 1;
    pub const DESCRIPTOR_SECTORS: u64 = 20;
    /// Sectors before the first grain: header and descriptor, rounded to a grain.
    pub const OVERHEAD: u64 = GRAIN_SECTORS;
    pub const GD_AT_END: u64 = u64::MAX;
    pub const COMPRESSION_DEFLATE: u16 = 1;
    pub const MARKER_EOS: u32 = 0;
    pub const MARKER_GT: u32 = 1;
    pub const MARKER_GD: u32 = 2;
    pub const MARKER_FOOTER: u32 = 3;
}

use raw::SECTOR;

/// The sparse extent header; `gd` is the grain directory's sector (GD_AT_END in the
/// header, the real one in the footer).
fn header(capacity: u64, gd: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(raw::SECTOR_BYTES);
    h.extend_from_slice(&raw::MAGIC.to_le_bytes()); // 0 magicNumber
    h.extend_from_slice(&raw::VERSION.to_le_bytes()); // 4 version
    h.extend_from_slice(&raw::FLAGS.to_le_bytes()); // 8 flags
    h.extend_from_slice(&capacity.to_le_bytes()); // 12 capacity (sectors)
    h.extend_from_slice(&raw::GRAIN_SECTORS.to_le_bytes()); // 20 grainSize
    h.extend_from_slice(&raw::DESCRIPTOR_OFFSET.to_le_bytes()); // 28 descriptorOffset
    h.extend_from_slice(&raw::DESCRIPTOR_SECTORS.to_le_bytes()); // 36 descriptorSize
    h.extend_from_slice(&raw::GTES_PER_GT_FIELD.to_le_bytes()); // 44 numGTEsPerGT
    h.extend_from_slice(&0u64.to_le_bytes()); // 48 rgdOffset (no redundant GD)
    h.extend_from_slice(&gd.to_le_bytes()); // 56 gdOffset
    h.extend_from_slice(&raw::OVERHEAD.to_le_bytes()); // 64 overHead
    h.push(0); // 72 uncleanShutdown
    h.extend_from_slice(b"\n \r\n"); // 73 the newline-detection characters
    h.extend_from_slice(&raw::COMPRESSION_DEFLATE.to_le_bytes()); // 77 compressAlgorithm
    h.resize(raw::SECTOR_BYTES, 0); // 79 pad
    h
}

/// The embedded descriptor, padded to its sectors. The geometry is the one VMware
/// gives SCSI disks (255 heads, 63 sectors).
fn descriptor(capacity: u64, opts: &ExportOptions) -> Result<Vec<u8>> {
    let id = opts.derive_id("vmdk cid");
    let cid = u32::from_le_bytes([id[0], id[1], id[2], id[3]]);
    let cylinders = (capacity / (255 * 63)).clamp(1, 65535);
    let name = opts
        .file_name
        .as_deref()
        .unwrap_or("disk.vmdk")
        .replace('"', "");
    let text = format!(
        "# Disk DescriptorFile\nversion=1\nCID={cid:08x}\nparentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\n# Extent description\n\
         RW {capacity} SPARSE \"{name}\"\n\n# The Disk Data Base\n#DDB\n\n\
         ddb.adapterType = \"lsilogic\"\nddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"255\"\nddb.geometry.sectors = \"63\"\n\
         ddb.virtualHWVersion = \"4\"\n"
    );
    let mut d = text.into_bytes();
    let room = usize::try_from(raw::DESCRIPTOR_SECTORS * SECTOR).unwrap_or(0);
    if d.len() > room {
        return Err(Error::invalid(format!(
            "VMDK descriptor of {} bytes does not fit in {room}",
            d.len()
        )));
    }
    d.resize(room, 0);
    Ok(d)
}

/// A metadata marker: `sectors` of metadata of kind `kind` follow it.
fn marker(sectors: u64, kind: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(raw::SECTOR_BYTES);
    m.extend_from_slice(&sectors.to_le_bytes()); // 0 numSectors
    m.extend_from_slice(&0u32.to_le_bytes()); // 8 size (0: metadata)
    m.extend_from_slice(&kind.to_le_bytes()); // 12 type
    m.resize(raw::SECTOR_BYTES, 0);
    m
}

/// The pieces of a streamOptimized VMDK, made as the grains go by: the directory and
/// tables need each grain's place in the file, known once it is deflated.
pub(crate) struct Stream {
    capacity: u64,
    grains: Vec<u64>,
    next: usize,
    /// (grain index, its marker's sector in the file), in grain order.
    placed: Vec<(u64, u32)>,
    /// The next free sector of the output.
    at: u64,
    level: Compression,
    head: Option<Vec<u8>>,
    tail: Option<std::collections::VecDeque<Piece>>,
    buf: Vec<u8>,
}

impl Stream {
    pub(crate) fn new(img: &DiskImage<'_>, opts: &ExportOptions) -> Result<Stream> {
        if img.size % SECTOR != 0 {
            return Err(Error::invalid(format!(
                "a VMDK holds whole 512-byte sectors; the image is {} bytes",
                img.size
            )));
        }
        let capacity = img.size / SECTOR;
        let mut head = header(capacity, raw::GD_AT_END);
        head.extend(descriptor(capacity, opts)?);
        head.resize(usize::try_from(raw::OVERHEAD * SECTOR).unwrap_or(0), 0);
        Ok(Stream {
            capacity,
            grains: nonzero_units(img, raw::GRAIN_SIZE)?,
            next: 0,
            placed: Vec::new(),
            at: raw::OVERHEAD,
            level: Compression::new(opts.deflate_level.unwrap_or(6).min(9)),
            head: Some(head),
            tail: None,
            buf: vec![0u8; raw::GRAIN_BYTES],
        })
    }

    fn sector(&self) -> Result<u32> {
        u32::try_from(self.at).map_err(|_| overflow("VMDK file offset"))
    }

    /// Advance the output by `len` bytes (a multiple of the sector size).
    fn advance(&mut self, len: usize) -> Result<()> {
        self.at = self
            .at
            .checked_add((len as u64).div_ceil(SECTOR))
            .ok_or_else(|| overflow("VMDK file offset"))?;
        Ok(())
    }

    /// One grain: marker (LBA, compressed size) and the zlib stream, sector-padded.
    fn grain(&mut self, img: &DiskImage<'_>, g: u64) -> Result<Vec<u8>> {
        let offset = g.saturating_mul(raw::GRAIN_SIZE);
        img.read_at(offset, &mut self.buf);
        let mut z = ZlibEncoder::new(Vec::with_capacity(self.buf.len() / 2), self.level);
        let deflated = z
            .write_all(&self.buf)
            .and_then(|()| z.finish())
            .map_err(|e| Error::invalid(format!("deflating the grain at {offset:#x}: {e}")))?;
        let size = u32::try_from(deflated.len()).map_err(|_| overflow("VMDK grain"))?;
        let mut v = Vec::with_capacity(deflated.len().saturating_add(raw::SECTOR_BYTES));
        v.extend_from_slice(&g.saturating_mul(raw::GRAIN_SECTORS).to_le_bytes()); // lba
        v.extend_from_slice(&size.to_le_bytes()); // size
        v.extend_from_slice(&deflated);
        pad_to(&mut v, raw::SECTOR_BYTES);
        self.placed.push((g, self.sector()?));
        self.advance(v.len())?;
        Ok(v)
    }

    /// Grain tables, directory, footer and end-of-stream marker.
    fn tail(&mut self) -> Result<std::collections::VecDeque<Piece>> {
        let gt_count = self
            .capacity
            .div_ceil(raw::GRAIN_SECTORS)
            .div_ceil(raw::GTES_PER_GT);
        let gt_len = raw::GTES_PER_GT * 4;
        let gt_sectors = gt_len / SECTOR;
        let mut gd = vec![
            0u8;
            usize::try_from(gt_count.saturating_mul(4))
                .map_err(|_| overflow("VMDK GD"))?
        ];
        let mut q = std::collections::VecDeque::new();
        let placed = std::mem::take(&mut self.placed);
        let mut i = 0;
        while let Some(&(g, _)) = placed.get(i) {
            let t = g / raw::GTES_PER_GT;
            let mut gt = vec![0u8; raw::GT_BYTES];
            while let Some(&(g, sector)) = placed.get(i).filter(|(g, _)| g / raw::GTES_PER_GT == t)
            {
                let at =
                    usize::try_from((g % raw::GTES_PER_GT).saturating_mul(4)).unwrap_or(usize::MAX);
                if let Some(s) = gt.get_mut(at..at.saturating_add(4)) {
                    s.copy_from_slice(&sector.to_le_bytes());
                }
                i = i.saturating_add(1);
            }
            q.push_back(Piece::Bytes(marker(gt_sectors, raw::MARKER_GT)));
            self.advance(raw::SECTOR_BYTES)?;
            let at = usize::try_from(t.saturating_mul(4)).unwrap_or(usize::MAX);
            if let Some(s) = gd.get_mut(at..at.saturating_add(4)) {
                s.copy_from_slice(&self.sector()?.to_le_bytes());
            }
            q.push_back(Piece::Bytes(gt));
            self.advance(raw::GT_BYTES)?;
        }
        pad_to(&mut gd, raw::SECTOR_BYTES);
        q.push_back(Piece::Bytes(marker(
            gd.len() as u64 / SECTOR,
            raw::MARKER_GD,
        )));
        self.advance(raw::SECTOR_BYTES)?;
        let gd_at = self.at;
        q.push_back(Piece::Bytes(gd));
        q.push_back(Piece::Bytes(marker(1, raw::MARKER_FOOTER)));
        q.push_back(Piece::Bytes(header(self.capacity, gd_at)));
        q.push_back(Piece::Bytes(marker(0, raw::MARKER_EOS)));
        Ok(q)
    }
}

impl Pieces for Stream {
    fn next_piece(&mut self, img: &DiskImage<'_>) -> Result<Option<Piece>> {
        if let Some(h) = self.head.take() {
            return Ok(Some(Piece::Bytes(h)));
        }
        if let Some(&g) = self.grains.get(self.next) {
            self.next = self.next.saturating_add(1);
            return Ok(Some(Piece::Bytes(self.grain(img, g)?)));
        }
        if self.tail.is_none() {
            self.tail = Some(self.tail()?);
        }
        Ok(self.tail.as_mut().and_then(|t| t.pop_front()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::super::tests::{collect, sample};
    use super::super::Format;

    #[test]
    fn grains_inflate_to_the_disk_and_the_footer_finds_the_directory() {
        let img = sample();
        let v = collect(&img, Format::Vmdk);
        assert_eq!(&v[..4], b"KDMV");
        assert_eq!(v.len() % 512, 0);
        let n = v.len();
        // footer marker, footer, end-of-stream marker.
        assert_eq!(
            u32::from_le_bytes(v[n - 1536 + 12..n - 1536 + 16].try_into().unwrap()),
            3
        );
        assert_eq!(&v[n - 1024..n - 1020], b"KDMV");
        let gd = u64::from_le_bytes(v[n - 1024 + 56..n - 1024 + 64].try_into().unwrap()) as usize;
        let gt = u32::from_le_bytes(v[gd * 512..gd * 512 + 4].try_into().unwrap()) as usize;
        let g48 = u32::from_le_bytes(
            v[gt * 512 + 48 * 4..gt * 512 + 48 * 4 + 4]
                .try_into()
                .unwrap(),
        );
        let m = g48 as usize * 512;
        assert_eq!(
            u64::from_le_bytes(v[m..m + 8].try_into().unwrap()),
            48 * 128
        );
        let size = u32::from_le_bytes(v[m + 8..m + 12].try_into().unwrap()) as usize;
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(&v[m + 12..m + 12 + size])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, img.to_vec()[48 << 16..49 << 16]);
    }
}
