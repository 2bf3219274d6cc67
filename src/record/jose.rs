//! Compact JWS with EdDSA (Ed25519), built on RustCrypto primitives.
//!
//! Why our own ~150 lines instead of a JOSE crate: the pure-Rust crates either lack parts we need
//! later (ECDH-ES+A256KW for the encrypted envelope, SM2 for the GM profile) or pull OpenSSL into
//! cross builds. The pieces here are small and are checked against RFC 8037 test vectors and, in
//! the end-to-end tests, against Python joserfc.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The `typ` of a countersign record JWS (RFC 7515 §4.1.9, media type without "application/").
pub const RECORD_TYP: &str = "vnd.countersign.record+jws";

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| JoseError::Malformed(format!("bad base64url: {e}")))
}

#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    #[error("malformed JWS: {0}")]
    Malformed(String),
    #[error("unsupported JWS algorithm {0:?} (expected EdDSA or Ed25519)")]
    UnsupportedAlg(String),
    #[error("JWS key id {got:?} does not match the verifying key {expected:?}")]
    WrongKid { expected: String, got: String },
    #[error("JWS signature does not verify")]
    BadSignature,
}

/// The protected header we emit and accept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub alg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// Signs `payload` as a compact JWS. The header is serialised once and signed as sent.
pub fn sign_compact(header: &Header, payload: &[u8], key: &SigningKey) -> String {
    // serde_json::to_vec on this struct cannot fail (plain strings only).
    let header_json = serde_json::to_vec(header).unwrap_or_default();
    let mut out = b64url(&header_json);
    out.push('.');
    out.push_str(&b64url(payload));
    let signature = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&b64url(&signature.to_bytes()));
    out
}

/// A verified JWS: the header and the payload bytes exactly as they were signed.
#[derive(Debug)]
pub struct Verified {
    pub header: Header,
    pub payload: Vec<u8>,
}

/// Verifies a compact JWS with an Ed25519 key (strict verification: no malleable signatures,
/// no small-order keys). `expected_kid`, when given, must equal the header's `kid`.
pub fn verify_compact(
    jws: &[u8],
    key: &VerifyingKey,
    expected_kid: Option<&str>,
) -> Result<Verified, JoseError> {
    let text = std::str::from_utf8(jws)
        .map_err(|_| JoseError::Malformed("not ASCII text".into()))?
        .trim_end_matches(['\r', '\n']);
    let mut parts = text.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed(
            "expected three dot-separated parts".into(),
        ));
    };
    let header: Header = serde_json::from_slice(&b64url_decode(h)?)
        .map_err(|e| JoseError::Malformed(format!("bad protected header: {e}")))?;
    // RFC 9864 renames EdDSA to Ed25519; we emit EdDSA and accept both.
    if header.alg != "EdDSA" && header.alg != "Ed25519" {
        return Err(JoseError::UnsupportedAlg(header.alg));
    }
    if let Some(expected) = expected_kid {
        let got = header.kid.clone().unwrap_or_default();
        if got != expected {
            return Err(JoseError::WrongKid {
                expected: expected.to_string(),
                got,
            });
        }
    }
    let sig_bytes: [u8; 64] = b64url_decode(s)?
        .try_into()
        .map_err(|_| JoseError::Malformed("signature is not 64 bytes".into()))?;
    let signature = Signature::from_bytes(&sig_bytes);
    let signing_input = &text.as_bytes()[..h.len() + 1 + p.len()];
    key.verify_strict(signing_input, &signature)
        .map_err(|_| JoseError::BadSignature)?;
    Ok(Verified {
        header,
        payload: b64url_decode(p)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 appendix A.1 private key.
    fn rfc8037_key() -> SigningKey {
        let d = b64url_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap();
        SigningKey::from_bytes(&d.try_into().unwrap())
    }

    #[test]
    fn rfc8037_a4_signature_is_reproduced_byte_for_byte() {
        // RFC 8037 A.4: header {"alg":"EdDSA"}, payload "Example of Ed25519 signing".
        let expected = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.\
hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        let header = Header {
            alg: "EdDSA".into(),
            kid: None,
            typ: None,
        };
        let jws = sign_compact(&header, b"Example of Ed25519 signing", &rfc8037_key());
        assert_eq!(jws, expected);
        let verified =
            verify_compact(jws.as_bytes(), &rfc8037_key().verifying_key(), None).unwrap();
        assert_eq!(verified.payload, b"Example of Ed25519 signing");
    }

    #[test]
    fn tampered_payload_or_wrong_key_is_rejected() {
        let key = rfc8037_key();
        let header = Header {
            alg: "EdDSA".into(),
            kid: Some("k1".into()),
            typ: Some(RECORD_TYP.into()),
        };
        let jws = sign_compact(&header, br#"{"a":1}"#, &key);
        let mut parts: Vec<&str> = jws.split('.').collect();
        let forged = b64url(br#"{"a":2}"#);
        parts[1] = &forged;
        let tampered = parts.join(".");
        assert!(matches!(
            verify_compact(tampered.as_bytes(), &key.verifying_key(), None),
            Err(JoseError::BadSignature)
        ));
        let other = SigningKey::from_bytes(&[7u8; 32]);
        assert!(matches!(
            verify_compact(jws.as_bytes(), &other.verifying_key(), None),
            Err(JoseError::BadSignature)
        ));
        assert!(matches!(
            verify_compact(jws.as_bytes(), &key.verifying_key(), Some("k2")),
            Err(JoseError::WrongKid { .. })
        ));
        assert!(verify_compact(jws.as_bytes(), &key.verifying_key(), Some("k1")).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        let key = rfc8037_key().verifying_key();
        for input in [
            &b""[..],
            b"...",
            b"a.b",
            b"a.b.c.d",
            b"\xff\xfe.x.y",
            b"eyJhbGciOiJub25lIn0.e30.",
            b"eyJ9.e30.AAAA",
        ] {
            assert!(verify_compact(input, &key, None).is_err());
        }
    }
}
