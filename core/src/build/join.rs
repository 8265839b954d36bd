//! ukify's joins: `--join-profile` takes a profile from a PE built for it, and
//! `--join-pcrsig` fills the signatures of an offline-signed policy into a built UKI.

use std::collections::BTreeMap;

use super::{NamedPart, ProfileSpec};
use crate::error::{Error, Result};
use crate::pe::PeFile;

/// The sections ukify 262 copies from a profile PE (`to_import` in ukify); the
/// stub's own sections (.text, .sdmagic, ...) are left behind. `.sbat` is not taken:
/// the image has one merged `.sbat`, before the profiles.
pub const PROFILE_SECTIONS: [&str; 10] = [
    ".profile", ".linux", ".osrel", ".cmdline", ".initrd", ".efifw", ".ucode", ".splash", ".dtb",
    ".uname",
];

/// The profile in `pe` (built with `--profile` and no `--join-profile`): its
/// `.profile` text and the UKI sections after it, as ukify's `--join-profile` reads
/// them. `.profile` must be the first of those sections, and the only one.
pub fn profile_from_pe<'a>(pe: &'a PeFile<'a>) -> Result<ProfileSpec<'a>> {
    let mut wanted = pe
        .sections
        .iter()
        .filter(|s| PROFILE_SECTIONS.contains(&s.name.as_str()));
    let first = wanted.next().ok_or_else(|| {
        Error::invalid("no UKI sections to join as a profile (ukify: \"Found no valid sections\")")
    })?;
    if first.name != ".profile" {
        return Err(Error::invalid(format!(
            "expected .profile as the first UKI section of a profile PE, found {}",
            first.name
        )));
    }
    let text = first.payload(pe.data)?;
    let mut sections = Vec::new();
    for s in wanted {
        if s.name == ".profile" {
            return Err(Error::invalid("a profile PE holds more than one .profile"));
        }
        sections.push(NamedPart {
            name: &s.name,
            data: s.payload(pe.data)?,
        });
    }
    Ok(ProfileSpec { text, sections })
}

/// One policy of a .pcrsig, as `systemd-measure policy-digest` writes it and an
/// offline signer completes it with `sig`; other fields are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OfflinePolicy {
    pub pcrs: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkfp: Option<String>,
    pub pol: String,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub policy_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tbs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

type Policies = BTreeMap<String, Vec<OfflinePolicy>>;

fn read_policies(json: &[u8], what: &str) -> Result<Policies> {
    serde_json::from_slice(crate::bytes::trim_nul(json))
        .map_err(|e| Error::invalid(format!("{what} is not .pcrsig JSON ({e})")))
}

/// Give each policy of `pcrsig` the `sig` of the matching signed policy (same
/// bank, and the same `tbs`, or without `tbs` the same `pol` and `ref`), as
/// ukify's `apply_pcr_signatures` does. Returns the JSON text, compact.
pub fn apply_signatures(pcrsig: &[u8], signed: &[u8]) -> Result<String> {
    let mut policies = read_policies(pcrsig, "the UKI's .pcrsig")?;
    let signed = read_policies(signed, "--pcrsig")?;
    for (bank, list) in &mut policies {
        let Some(given) = signed.get(bank) else {
            continue;
        };
        for p in list.iter_mut() {
            let found = given.iter().rev().find(|g| match (&p.tbs, &g.tbs) {
                (Some(a), Some(b)) => a == b,
                _ => (&p.pol, &p.policy_ref) == (&g.pol, &g.policy_ref),
            });
            if let Some(sig) = found.and_then(|g| g.sig.clone()) {
                p.sig = Some(sig);
            }
        }
    }
    serde_json::to_string(&policies).map_err(|e| Error::invalid(e.to_string()))
}

/// `build --join-pcrsig UKI --pcrsig JSON`: the UKI with every `.pcrsig` section's
/// policies signed from `signed`, rewritten in place (the section's file space must
/// hold the new text; ukify pads it for this) and the CheckSum recomputed.
pub fn join_pcrsig(uki: &[u8], signed: &[u8]) -> Result<Vec<u8>> {
    let pe = PeFile::parse(uki).map_err(|e| Error::invalid(format!("--join-pcrsig: {e}")))?;
    if pe.certificate_table().is_some() {
        return Err(Error::invalid(
            "--join-pcrsig: the UKI is signed, and a new .pcrsig would break the signature; join the .pcrsig first, then sign",
        ));
    }
    let mut out = uki.to_vec();
    let mut joined = 0usize;
    for s in pe.sections_named(".pcrsig") {
        let text = apply_signatures(s.payload(uki)?, signed)?;
        let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
        if len > s.size_of_raw_data {
            return Err(Error::invalid(format!(
                "--join-pcrsig: the signed .pcrsig needs {len} bytes, its section has {}",
                s.size_of_raw_data
            )));
        }
        let start = usize::try_from(s.pointer_to_raw_data).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(s.size_of_raw_data).unwrap_or(0));
        let region = out.get_mut(start..end).ok_or_else(|| {
            Error::malformed(s.header_offset, ".pcrsig raw data lies outside the file")
        })?;
        region.fill(0);
        region
            .get_mut(..text.len())
            .ok_or_else(|| Error::invalid("the signed .pcrsig does not fit"))?
            .copy_from_slice(text.as_bytes());
        put_u32(&mut out, s.header_offset.saturating_add(8), len)?;
        joined = joined.saturating_add(1);
    }
    if joined == 0 {
        return Err(Error::NotFound(
            "--join-pcrsig: the UKI has no .pcrsig (build it with ukify --policy-digest)".into(),
        ));
    }
    let sum = super::pe_checksum(&out, pe.checksum_offset);
    put_u32(&mut out, pe.checksum_offset, sum)?;
    Ok(out)
}

fn put_u32(out: &mut [u8], at: u64, v: u32) -> Result<()> {
    let at = usize::try_from(at).unwrap_or(usize::MAX);
    out.get_mut(at..at.saturating_add(4))
        .ok_or_else(|| Error::invalid("header field outside the file"))?
        .copy_from_slice(&v.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_by_tbs_then_by_pol_and_ref() {
        let digest =
            br#"{"sha256":[{"pcrs":[11],"pol":"aa","tbs":"aa"},{"pcrs":[11],"pol":"bb"}]}   "#;
        let signed = br#"{"sha256":[{"pcrs":[11],"pol":"aa","tbs":"aa","sig":"S1"},{"pcrs":[11],"pol":"bb","sig":"S2"}],"sha1":[]}"#;
        assert_eq!(
            apply_signatures(digest, signed).unwrap(),
            r#"{"sha256":[{"pcrs":[11],"pol":"aa","tbs":"aa","sig":"S1"},{"pcrs":[11],"pol":"bb","sig":"S2"}]}"#
        );
        assert!(apply_signatures(b"[", signed).is_err());
    }
}
