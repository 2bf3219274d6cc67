//! Records: the evidence a counter produces. Built from what the devices read, signed as a compact
//! JWS, chained to the previous record, and verified by the same code a case system (or
//! `countersign demo`'s consumer) runs. Records know nothing of MQTT or SQLite.

pub mod jose;
pub mod keys;
mod schema;

pub use schema::{
    CaseRef, Check, CheckResult, Checkpoint, Coded, DeviceInfo, EvidenceRef, Identity, Record,
    RecordKind, SCHEMA,
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

use jose::{Header, JoseError, RECORD_TYP};
use keys::StationKey;

/// File extension of a record's wire form (a compact JWS today).
pub const WIRE_EXT: &str = "jws";

/// Where a record sits in its station's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// Per-station sequence number, strictly increasing from 1, never reused.
    pub seq: u64,
    /// `sha256:<hex>` of the previous record's exact wire bytes; None for a station's first record.
    pub prev: Option<String>,
}

/// The chain hash of a record's wire bytes, as the next record's `prev`.
pub fn chain_hash(wire: &[u8]) -> String {
    let digest = Sha256::digest(wire);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Signs a record; the result is the record's wire form.
pub fn seal(record: &Record, key: &StationKey) -> Vec<u8> {
    let header = Header {
        alg: "EdDSA".into(),
        kid: Some(key.kid.clone()),
        typ: Some(RECORD_TYP.into()),
    };
    // Serialising plain strings, numbers and maps cannot fail.
    let payload = serde_json::to_vec(record).unwrap_or_default();
    jose::sign_compact(&header, &payload, &key.signing).into_bytes()
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Jose(#[from] JoseError),
    #[error("signed payload is not a countersign record: {0}")]
    Payload(String),
    #[error("unexpected JWS typ {0:?}")]
    Typ(Option<String>),
}

/// Verifies a record's wire bytes against the station's public key and returns the record.
pub fn open(
    wire: &[u8],
    key: &ed25519_dalek::VerifyingKey,
    kid: &str,
) -> Result<Record, VerifyError> {
    let verified = jose::verify_compact(wire, key, Some(kid))?;
    if verified.header.typ.as_deref() != Some(RECORD_TYP) {
        return Err(VerifyError::Typ(verified.header.typ));
    }
    serde_json::from_slice(&verified.payload).map_err(|e| VerifyError::Payload(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_record_opens_and_tampering_fails() {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
        let key = StationKey {
            kid: keys::Jwk::public_from(&signing.verifying_key()).thumbprint(),
            signing,
        };
        let record = schema::tests::sample_record();
        let wire = seal(&record, &key);
        let opened = open(&wire, &key.signing.verifying_key(), &key.kid).unwrap();
        assert_eq!(opened, record);
        let mut bad = wire.clone();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert!(open(&bad, &key.signing.verifying_key(), &key.kid).is_err());
        assert!(open(&wire, &key.signing.verifying_key(), "other-kid").is_err());
    }

    #[test]
    fn chain_hash_is_sha256_hex_of_wire_bytes() {
        assert_eq!(
            chain_hash(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
