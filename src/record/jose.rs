//! JOSE building blocks shared by `jws` and `jwe`: base64url and errors.
//!
//! Why our own JOSE layer (about 500 lines over `jws.rs` and `jwe.rs`) instead of a JOSE crate:
//! the pure-Rust crates lack pieces we need (ECDH-ES with X25519, the SM2/SM4 GM profile) or pull
//! OpenSSL into cross builds. It is built only from RustCrypto primitives (ed25519-dalek, p256,
//! sm2/sm3/sm4, x25519-dalek, aes-gcm, aes-kw, sha2), checked against RFC 8037 (A.4, A.6),
//! RFC 7520 §5.2, RFC 7518 Appendix C and RFC 3394 vectors, and in the end-to-end tests against
//! Python joserfc and jwcrypto (and gmssl for SM2).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
    #[error("malformed JOSE object: {0}")]
    Malformed(String),
    #[error("unsupported algorithm {0}")]
    Unsupported(String),
    #[error("no key for kid {0:?}")]
    UnknownKid(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("decryption failed (wrong key, or the ciphertext or its header was altered)")]
    Decrypt,
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
}

/// Splits compact serialization into its dot-separated parts.
pub fn parts(compact: &[u8]) -> Result<Vec<&str>, JoseError> {
    let text = std::str::from_utf8(compact)
        .map_err(|_| JoseError::Malformed("not ASCII text".into()))?
        .trim_end_matches(['\r', '\n']);
    Ok(text.split('.').collect())
}

/// Whether compact bytes are a JWE (five parts) rather than a JWS (three).
pub fn is_jwe(compact: &[u8]) -> bool {
    compact.iter().filter(|b| **b == b'.').count() == 4
}
