//! PEM (RFC 7468): the one reader of keys and certificates given as text (private
//! keys, `.pcrpkey` public keys, certificate bundles), and the writer of `.pcrpkey`.

use crate::error::{Error, Result};

const BEGIN_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";
const END_CERTIFICATE: &str = "-----END CERTIFICATE-----";
const PUBLIC_KEY: &str = "PUBLIC KEY";

/// One PEM block: its label and its DER contents. Whitespace around it is ignored.
pub fn decode(text: &[u8]) -> std::result::Result<(&str, Vec<u8>), der::pem::Error> {
    der::pem::decode_vec(text.trim_ascii())
}

/// A public key as a DER SubjectPublicKeyInfo, from PEM (`PUBLIC KEY`) or from DER,
/// which is returned as it is. `what` names the input in errors.
pub fn public_key(data: &[u8], what: &str) -> Result<Vec<u8>> {
    if !data.trim_ascii().starts_with(b"-----BEGIN") {
        return Ok(data.to_vec());
    }
    let (label, der) =
        decode(data).map_err(|e| Error::malformed(0, format!("{what}: not PEM ({e})")))?;
    if label != PUBLIC_KEY {
        return Err(Error::malformed(
            0,
            format!("{what}: PEM label is {label:?}, not \"{PUBLIC_KEY}\""),
        ));
    }
    Ok(der)
}

/// A DER SubjectPublicKeyInfo as PEM, as `.pcrpkey` holds it.
pub fn encode_public_key(der: &[u8]) -> Result<String> {
    der::pem::encode_string(PUBLIC_KEY, der::pem::LineEnding::LF, der)
        .map_err(|e| Error::Crypto(format!("encoding the public key: {e}")))
}

/// The DER of every `CERTIFICATE` block in `data`, in order; none when `data` has no
/// such block (it may be a DER certificate). Text between blocks, such as the
/// `subject=` lines openssl writes, is skipped.
pub fn certificates(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    let begin = BEGIN_CERTIFICATE.as_bytes();
    if !data.windows(begin.len()).any(|w| w == begin) {
        if let Some(label) = first_label(data).filter(|l| l.ends_with("PRIVATE KEY")) {
            return Err(Error::invalid(format!(
                "this is a private key (PEM \"{label}\"), not a certificate: give the certificate that goes with it"
            )));
        }
        return Ok(Vec::new());
    }
    let text = String::from_utf8_lossy(data);
    text.split(BEGIN_CERTIFICATE)
        .skip(1)
        .enumerate()
        .map(|(i, block)| {
            let (body, _) = block
                .split_once(END_CERTIFICATE)
                .ok_or_else(|| Error::invalid(format!("PEM certificate {i} has no END line")))?;
            let pem = format!("{BEGIN_CERTIFICATE}{body}{END_CERTIFICATE}\n");
            let (_, der) = decode(pem.as_bytes())
                .map_err(|e| Error::invalid(format!("PEM certificate {i}: {e}")))?;
            Ok(der)
        })
        .collect()
}

/// The label of the first PEM block in `data` (`-----BEGIN LABEL-----`), if any.
fn first_label(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data.get(..data.len().min(4096))?);
    let (_, rest) = text.split_once("-----BEGIN ")?;
    let (label, _) = rest.split_once("-----")?;
    Some(label.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn a_private_key_is_not_taken_for_a_certificate() {
        let key =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        let e = certificates(key.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("private key (PEM \"PRIVATE KEY\")"), "{e}");
        assert!(
            certificates(b"\x30\x82").unwrap().is_empty(),
            "DER passes through"
        );
    }

    #[test]
    fn public_keys_round_trip_and_der_passes_through() {
        let der = public_key(format!("\n  {KEY}").as_bytes(), "key").unwrap();
        assert_eq!(der.len(), 44);
        assert_eq!(encode_public_key(&der).unwrap(), KEY);
        assert_eq!(public_key(&der, "key").unwrap(), der);
        let other = KEY.replace("PUBLIC KEY", "PRIVATE KEY");
        let e = public_key(other.as_bytes(), ".pcrpkey").unwrap_err();
        assert!(e
            .to_string()
            .contains(".pcrpkey: PEM label is \"PRIVATE KEY\""));
        assert!(public_key(b"-----BEGIN nonsense", "key").is_err());
    }

    #[test]
    fn certificate_blocks_are_found_between_other_text() {
        assert!(certificates(b"\x30\x03\x02\x01\x01").unwrap().is_empty());
        let one = format!("{BEGIN_CERTIFICATE}\nMAMCAQE=\n{END_CERTIFICATE}\n");
        let bundle = format!("subject=CN = a\n{one}issuer=CN = b\n{one}");
        let certs = certificates(bundle.as_bytes()).unwrap();
        assert_eq!(certs, vec![vec![0x30, 3, 2, 1, 1]; 2]);
        assert!(certificates(format!("{BEGIN_CERTIFICATE}\nMAMCAQE=\n").as_bytes()).is_err());
    }
}
