//! Records: the evidence a counter produces. Built from what the devices read, signed as a compact
//! JWS, chained to the previous record, and verified by the same code a case system (or
//! `countersign demo`'s consumer) runs. Records know nothing of MQTT or SQLite.

pub mod audit;
pub mod jose;
pub mod jwe;
pub mod jws;
pub mod keys;
mod schema;

pub use schema::{
    ActiveAuthenticationRecord, CaseRef, Check, CheckResult, Checkpoint, Coded, DeviceInfo,
    EvidenceRef, Identity, MrzFields, Record, RecordKind, SCHEMA,
};

/// A piece of evidence as captured (plaintext), before sealing: the face photo, a fingerprint
/// template, a scanned page.
#[derive(Clone, PartialEq)]
pub struct Evidence {
    /// See [`EvidenceRef::role`].
    pub role: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// Index into the record's identities, when it belongs to one.
    pub identity: Option<usize>,
    pub label: Option<String>,
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evidence")
            .field("role", &self.role)
            .field("media_type", &self.media_type)
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .finish_non_exhaustive()
    }
}

/// A record sealed for the outbox: its wire form and its blobs' wire forms.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub record_id: String,
    pub wire: Vec<u8>,
    pub blobs: Vec<SealedBlob>,
}

#[derive(Debug, Clone)]
pub struct SealedBlob {
    pub blob_id: String,
    pub wire: Vec<u8>,
}

use sha2::{Digest, Sha256};

use jose::JoseError;
use keys::{DecryptKeys, Keyring, Recipient, StationKey};

/// File extension of a record's and a blob's wire form (compact JWE).
pub const WIRE_EXT: &str = "jwe";

/// Where a record sits in its station's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// Per-station sequence number, strictly increasing from 1, never reused.
    pub seq: u64,
    /// `sha256:<hex>` of the previous record's exact wire bytes; None for a station's first record.
    pub prev: Option<String>,
}

/// `sha256:<hex>` of some bytes: chain links (`prev`) and evidence hashes.
pub fn chain_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Signs a record (compact JWS) and encrypts the JWS to the case system (compact JWE,
/// `cty: "JOSE"`); the result is the record's wire form. The record must already name both keys
/// (`station_kid`, `recipient_kid`) so that the signature binds the recipient.
pub fn seal(
    record: &Record,
    key: &StationKey,
    recipient: &Recipient,
) -> Result<Vec<u8>, JoseError> {
    let header = jws::Header {
        alg: String::new(),
        kid: Some(key.kid.clone()),
        typ: Some(jws::RECORD_TYP.into()),
    };
    // Serialising plain strings, numbers and maps cannot fail.
    let payload = serde_json::to_vec(record).unwrap_or_default();
    let signed = jws::sign(&header, &payload, &key.signing);
    Ok(jwe::encrypt(signed.as_bytes(), recipient, &record.station, Some("JOSE"))?.into_bytes())
}

/// Encrypts an evidence blob to the case system; its plaintext hash is in the signed manifest.
pub fn seal_blob(bytes: &[u8], recipient: &Recipient, station: &str) -> Result<Vec<u8>, JoseError> {
    Ok(jwe::encrypt(bytes, recipient, station, None)?.into_bytes())
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Jose(#[from] JoseError),
    #[error("the record is encrypted; a case-system key is needed to open it")]
    Encrypted,
    #[error("signed payload is not a countersign record: {0}")]
    Payload(String),
    #[error("unexpected JWS typ {0:?}")]
    Typ(Option<String>),
    #[error("the record names {field} {named:?} but its envelope uses {used:?}")]
    KeyMismatch {
        field: &'static str,
        named: String,
        used: String,
    },
}

/// An opened record: the verified payload and what it was wrapped in.
#[derive(Debug)]
pub struct OpenedRecord {
    pub record: Record,
    /// The inner compact JWS (what the station signed).
    pub jws: Vec<u8>,
    /// The JWE's recipient kid, when the wire form was encrypted.
    pub recipient_kid: Option<String>,
}

/// Decrypts (when the wire form is a JWE) and verifies a record.
pub fn open(
    wire: &[u8],
    keyring: &Keyring,
    decrypt: &DecryptKeys,
) -> Result<OpenedRecord, VerifyError> {
    let (jws_bytes, recipient_kid) = if jose::is_jwe(wire) {
        if decrypt.is_empty() {
            return Err(VerifyError::Encrypted);
        }
        let opened = jwe::decrypt(wire, decrypt)?;
        (opened.plaintext, Some(opened.header.kid))
    } else {
        (wire.to_vec(), None)
    };
    let verified = jws::verify(&jws_bytes, keyring)?;
    if verified.header.typ.as_deref() != Some(jws::RECORD_TYP) {
        return Err(VerifyError::Typ(verified.header.typ));
    }
    let record: Record = serde_json::from_slice(&verified.payload)
        .map_err(|e| VerifyError::Payload(e.to_string()))?;
    let signed_kid = verified.header.kid.unwrap_or_default();
    if record.station_kid != signed_kid {
        return Err(VerifyError::KeyMismatch {
            field: "station_kid",
            named: record.station_kid,
            used: signed_kid,
        });
    }
    if let Some(used) = &recipient_kid
        && record.recipient_kid.as_deref() != Some(used.as_str())
    {
        return Err(VerifyError::KeyMismatch {
            field: "recipient_kid",
            named: record.recipient_kid.unwrap_or_default(),
            used: used.clone(),
        });
    }
    Ok(OpenedRecord {
        record,
        jws: jws_bytes,
        recipient_kid,
    })
}

/// Decrypts a blob's wire form (plain bytes pass through when it is not a JWE).
pub fn open_blob(wire: &[u8], decrypt: &DecryptKeys) -> Result<Vec<u8>, VerifyError> {
    if jose::is_jwe(wire) {
        Ok(jwe::decrypt(wire, decrypt)?.plaintext)
    } else {
        Ok(wire.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keys::{Jwk, RecipientSecret, SigningKey};

    pub(crate) fn test_keys() -> (StationKey, Recipient, Keyring, DecryptKeys) {
        let signing = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]));
        let public = Jwk::public_of_signing(&signing);
        let mut keyring = Keyring::default();
        keyring.insert(public.thumbprint(), public.verifying_key().unwrap());
        let key = StationKey {
            kid: public.thumbprint(),
            signing,
        };
        let secret = RecipientSecret::X25519(x25519_dalek::StaticSecret::from([4u8; 32]));
        let recipient_jwk = Jwk::public_of_recipient(&secret.public());
        let recipient = Recipient {
            key: secret.public(),
            kid: recipient_jwk.thumbprint(),
        };
        let mut decrypt = DecryptKeys::default();
        decrypt.insert(recipient_jwk.thumbprint(), secret);
        (key, recipient, keyring, decrypt)
    }

    #[test]
    fn sealed_record_opens_and_tampering_fails() {
        let (key, recipient, keyring, decrypt) = test_keys();
        let mut record = schema::tests::sample_record();
        record.station_kid = key.kid.clone();
        record.recipient_kid = Some(recipient.kid.clone());
        let wire = seal(&record, &key, &recipient).unwrap();
        assert!(jose::is_jwe(&wire));
        let opened = open(&wire, &keyring, &decrypt).unwrap();
        assert_eq!(opened.record, record);
        assert!(matches!(
            open(&wire, &keyring, &DecryptKeys::default()),
            Err(VerifyError::Encrypted)
        ));
        let mut bad = wire.clone();
        let at = bad.len() - 30;
        bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
        assert!(open(&bad, &keyring, &decrypt).is_err());
        // A record that names another recipient than its envelope is refused.
        record.recipient_kid = Some("someone-else".into());
        let wire = seal(&record, &key, &recipient).unwrap();
        assert!(matches!(
            open(&wire, &keyring, &decrypt),
            Err(VerifyError::KeyMismatch { .. })
        ));
    }

    #[test]
    fn blobs_round_trip() {
        let (_, recipient, _, decrypt) = test_keys();
        let wire = seal_blob(&[1, 2, 3], &recipient, "s").unwrap();
        assert_eq!(open_blob(&wire, &decrypt).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn chain_hash_is_sha256_hex() {
        assert_eq!(
            chain_hash(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
