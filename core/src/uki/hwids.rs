//! .hwids: systemd's hardware-id table (257+, src/boot/chid.h, devicetree.c):
//! 28-byte entries {u32 descriptor = type<<28 | size; 16-byte CHID (EFI_GUID);
//! u32 name offset; u32 compatible offset}, ended by an all-zero entry, followed by
//! NUL-terminated strings. Offsets count from the start of the section.

use crate::bytes::{self, u32_le};
use crate::error::{Error, Result};

const ENTRY: u64 = 28;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hwid {
    /// Device type (descriptor >> 28); 1 is a device tree match.
    pub device_type: u32,
    /// The CHID as a GUID string.
    pub chid: String,
    pub name: String,
    pub compatible: String,
}

/// Format an EFI_GUID (first three fields little-endian) as text.
pub fn guid(b: &[u8; 16]) -> String {
    format!("{:x}", crate::guid::Guid::from_bytes_le(*b))
}

/// At most this many entries are decoded. ukify writes one per CHID of each device
/// (about 15 per device), so real tables hold hundreds; each costs about 120 bytes
/// beyond its 28 (issue 9).
pub const MAX_ENTRIES: usize = 4096;

/// At most this many bytes of names and compatibles are copied out. Entries share
/// their strings, so a small table could otherwise point thousands of entries at one
/// long string and be copied thousands of times.
pub const MAX_STRING_BYTES: usize = 256 * 1024;

fn string_at(data: &[u8], off: u32) -> Result<&[u8]> {
    let off = u64::from(off);
    let rest = bytes::slice(
        data,
        off,
        u64::try_from(data.len())
            .unwrap_or(u64::MAX)
            .saturating_sub(off),
        ".hwids string",
    )?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| Error::malformed(off, ".hwids string is not NUL-terminated"))?;
    Ok(rest.get(..end).unwrap_or_default())
}

/// Decode the entries: the first [`MAX_ENTRIES`] (fewer when their strings pass
/// [`MAX_STRING_BYTES`]), and how many more the table holds. The table must end
/// with its all-zero entry inside `data`; the strings of the entries not listed
/// are not checked.
pub fn parse(data: &[u8]) -> Result<(Vec<Hwid>, u64)> {
    let mut out = Vec::new();
    let mut copied = 0usize;
    let mut more = 0u64;
    let mut at = 0u64;
    loop {
        let e = bytes::slice(data, at, ENTRY, ".hwids entry")?;
        if e.iter().all(|&b| b == 0) {
            return Ok((out, more));
        }
        at = at.saturating_add(ENTRY);
        // Past a cap the rest are only counted: their strings are not even
        // scanned, or entries sharing a long string would scan it each time.
        if out.len() >= MAX_ENTRIES || copied > MAX_STRING_BYTES {
            more = more.saturating_add(1);
            continue;
        }
        let descriptor = u32_le(e, 0, ".hwids entry")?;
        let chid: [u8; 16] = bytes::array(e, 4, ".hwids entry")?;
        let name = string_at(data, u32_le(e, 20, ".hwids entry")?)?;
        let compatible = string_at(data, u32_le(e, 24, ".hwids entry")?)?;
        copied = copied
            .saturating_add(name.len())
            .saturating_add(compatible.len());
        if copied > MAX_STRING_BYTES {
            more = more.saturating_add(1);
            continue;
        }
        out.push(Hwid {
            device_type: descriptor >> 28,
            chid: guid(&chid),
            name: String::from_utf8_lossy(name).into_owned(),
            compatible: String::from_utf8_lossy(compatible).into_owned(),
        });
    }
}

/// Device types of the descriptor's top four bits (ukify's `DEVICE_TYPE_*`).
pub const DEVICE_TYPE_DEVICETREE: u32 = 1;
pub const DEVICE_TYPE_UEFI_FW: u32 = 2;

/// One hwids description file of a `--hwids DIR`: its path below the directory
/// (`/`-separated) and its JSON text, `{"type": "devicetree"|"uefi-fw", "name":
/// ..., "compatible"|"fwid": ..., "hwids": [CHID, ...]}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwidsFile<'a> {
    pub path: &'a str,
    pub json: &'a [u8],
}

/// A CHID as Python's `uuid.UUID` reads it: 32 hex digits, hyphens anywhere, in
/// braces or after `urn:uuid:`.
fn parse_chid(text: &str, file: &str) -> Result<crate::guid::Guid> {
    let t = text.strip_prefix("urn:").unwrap_or(text);
    let t = t.strip_prefix("uuid:").unwrap_or(t);
    let t: String = t
        .trim_matches(|c| c == '{' || c == '}')
        .chars()
        .filter(|c| *c != '-')
        .collect();
    crate::bytes::unhex(&t)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(crate::guid::Guid)
        .ok_or_else(|| Error::invalid(format!("{file}: {text:?} is not a hardware id (UUID)")))
}

/// One device of a description file: (type, name, compatible or fwid) and its CHIDs.
type Device = (
    (u32, String, String),
    std::collections::BTreeSet<crate::guid::Guid>,
);

fn read_device(f: &HwidsFile<'_>) -> Result<Device> {
    let file = f.path;
    let bad = |what: String| Error::invalid(format!("hwid description file \"{file}\" {what}"));
    let v: serde_json::Value =
        serde_json::from_slice(f.json).map_err(|e| bad(format!("is not JSON ({e})")))?;
    for k in ["type", "name", "hwids"] {
        if v.get(k).is_none() {
            return Err(bad(format!("does not contain \"{k}\"")));
        }
    }
    let text = |k: &str| -> Result<Option<String>> {
        match v.get(k) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("has a \"{k}\" that is not a string"))),
        }
    };
    let devtype = match text("type")?.as_deref() {
        Some("devicetree") => DEVICE_TYPE_DEVICETREE,
        Some("uefi-fw") => DEVICE_TYPE_UEFI_FW,
        other => return Err(bad(format!("has an unknown type {other:?}"))),
    };
    let (key, value) = match (text("compatible")?, text("fwid")?) {
        (Some(c), None) => (DEVICE_TYPE_DEVICETREE, c),
        (None, Some(f)) => (DEVICE_TYPE_UEFI_FW, f),
        (None, None) => return Err(bad("must contain one of compatible,fwid".into())),
        (Some(_), Some(_)) => return Err(bad("has both compatible and fwid".into())),
    };
    if key != devtype {
        return Err(bad(format!(
            "has the wrong attribute for device type {devtype}"
        )));
    }
    let name = text("name")?.unwrap_or_default();
    let list = v
        .get("hwids")
        .and_then(|h| h.as_array())
        .ok_or_else(|| bad("has \"hwids\" that is not a list".into()))?;
    let mut chids = std::collections::BTreeSet::new();
    for h in list {
        let s = h
            .as_str()
            .ok_or_else(|| bad("lists a hardware id that is not a string".into()))?;
        chids.insert(parse_chid(s, file)?);
    }
    Ok(((devtype, name, value), chids))
}

/// The `.hwids` section ukify builds from a directory of description files
/// (`parse_hwid_dir`): files in path order (component by component), one device per
/// (type, name, compatible/fwid) in order of first appearance, each with its CHIDs
/// sorted; an entry per CHID, the all-zero entry, then the sorted, NUL-terminated
/// strings the entries point at.
pub fn encode(files: &[HwidsFile<'_>]) -> Result<Vec<u8>> {
    let mut sorted: Vec<&HwidsFile<'_>> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    let mut devices: Vec<Device> = Vec::new();
    for f in sorted {
        let (key, chids) = read_device(f)?;
        match devices.iter_mut().find(|(k, _)| *k == key) {
            Some((_, set)) => set.extend(chids),
            None => devices.push((key, chids)),
        }
    }
    let strings: std::collections::BTreeSet<&str> = devices
        .iter()
        .flat_map(|((_, n, c), _)| [n.as_str(), c.as_str()])
        .collect();
    let entries = devices
        .iter()
        .map(|(_, c)| c.len())
        .sum::<usize>()
        .saturating_add(1);
    let too_big = || Error::invalid(".hwids: the table exceeds 4 GiB");
    let base = entries.checked_mul(28).ok_or_else(too_big)?;
    let mut offsets: std::collections::BTreeMap<&str, u32> = Default::default();
    let mut blob = Vec::new();
    for s in &strings {
        let at = base.checked_add(blob.len()).ok_or_else(too_big)?;
        offsets.insert(s, u32::try_from(at).map_err(|_| too_big())?);
        blob.extend_from_slice(s.as_bytes());
        blob.push(0);
    }
    let mut out = Vec::with_capacity(base.saturating_add(blob.len()));
    for ((devtype, name, compat), chids) in &devices {
        for chid in chids {
            out.extend_from_slice(&((devtype << 28) | 28).to_le_bytes());
            out.extend_from_slice(&chid.to_bytes_le());
            for s in [name, compat] {
                let off = offsets.get(s.as_str()).copied().ok_or_else(too_big)?;
                out.extend_from_slice(&off.to_le_bytes());
            }
        }
    }
    out.extend_from_slice(&[0u8; 28]);
    out.extend_from_slice(&blob);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_one_entry() {
        let mut d = vec![0u8; 56];
        d[0..4].copy_from_slice(&(1u32 << 28 | 28).to_le_bytes());
        d[4..20].copy_from_slice(&[
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        d[20..24].copy_from_slice(&56u32.to_le_bytes());
        d[24..28].copy_from_slice(&61u32.to_le_bytes());
        d.extend_from_slice(b"name\0comp\0");
        let (h, more) = parse(&d).unwrap();
        assert_eq!(more, 0);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].chid, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(h[0].name, "name");
        assert_eq!(h[0].compatible, "comp");
        assert!(parse(&d[..30]).is_err());
    }

    #[test]
    fn encodes_what_it_decodes() {
        let a = br#"{"type":"devicetree","name":"Board B","compatible":"vendor,b",
            "hwids":["{00112233-4455-6677-8899-aabbccddeeff}","0000000000000000000000000000000a"]}"#;
        let b = br#"{"type":"uefi-fw","name":"Board A","fwid":"fw-a","hwids":["urn:uuid:10000000-0000-0000-0000-000000000000"]}"#;
        let files = [
            HwidsFile {
                path: "x/b.json",
                json: b,
            },
            HwidsFile {
                path: "a.json",
                json: a,
            },
        ];
        let d = encode(&files).unwrap();
        let (h, more) = parse(&d).unwrap();
        assert_eq!(more, 0);
        let got: Vec<(u32, &str, &str, &str)> = h
            .iter()
            .map(|h| {
                (
                    h.device_type,
                    h.chid.as_str(),
                    h.name.as_str(),
                    h.compatible.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    1,
                    "00000000-0000-0000-0000-00000000000a",
                    "Board B",
                    "vendor,b"
                ),
                (
                    1,
                    "00112233-4455-6677-8899-aabbccddeeff",
                    "Board B",
                    "vendor,b"
                ),
                (2, "10000000-0000-0000-0000-000000000000", "Board A", "fw-a"),
            ]
        );
        assert_eq!(d.len(), 4 * 28 + "Board A\0Board B\0fw-a\0vendor,b\0".len());
        let wrong = br#"{"type":"uefi-fw","name":"n","compatible":"c","hwids":[]}"#;
        let e = encode(&[HwidsFile {
            path: "w.json",
            json: wrong,
        }])
        .unwrap_err();
        assert!(e.to_string().contains("wrong attribute"), "{e}");
    }

    #[test]
    fn shared_long_string_is_copied_a_bounded_number_of_times() {
        // 1000 entries all naming one 64 KiB string.
        let n = 1000;
        let strings = 28 * (n + 1);
        let mut d = vec![0u8; strings];
        for e in d.chunks_exact_mut(28).take(n) {
            e[0..4].copy_from_slice(&(1u32 << 28).to_le_bytes());
            e[20..24].copy_from_slice(&(strings as u32).to_le_bytes());
            e[24..28].copy_from_slice(&(strings as u32).to_le_bytes());
        }
        d.extend(std::iter::repeat_n(b'x', 64 * 1024));
        d.push(0);
        let (h, more) = parse(&d).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(more, n as u64 - 2);
    }
}
