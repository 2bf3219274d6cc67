//! Fixed test keys for the JOSE and command targets: deterministic, so a crash input replays with
//! the same keys. Never used outside fuzzing.

use countersign::record::jose::b64url;
use countersign::record::keys::{
    DecryptKeys, Jwk, Keyring, Recipient, RecipientSecret, SigningKey, VerifyingKey,
};
use ed25519_dalek::Signer as _;

// Each target uses the part it needs.
#[allow(dead_code)]
pub struct Fixture {
    /// The station's (or case system's) Ed25519 key and its kid.
    pub ed25519: ed25519_dalek::SigningKey,
    pub kid: String,
    /// Every key type a verifier can hold: Ed25519, P-256 and SM2 (kids below).
    pub keyring: Keyring,
    pub p256_kid: String,
    pub sm2_kid: String,
    /// X25519 and SM2 decryption keys.
    pub decrypt: DecryptKeys,
    pub x25519: Recipient,
    pub sm2_recipient: Recipient,
}

fn kid_of(jwk: &Jwk) -> String {
    jwk.thumbprint()
}

impl Fixture {
    pub fn new() -> Fixture {
        let ed25519 = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let signing = SigningKey::Ed25519(ed25519.clone());
        let kid = kid_of(&Jwk::public_of_signing(&signing));
        let mut keyring = Keyring::default();
        keyring.insert(kid.clone(), VerifyingKey::Ed25519(ed25519.verifying_key()));

        let p256 = p256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("a valid P-256 scalar");
        let p256 = SigningKey::P256(p256);
        let p256_jwk = Jwk::public_of_signing(&p256);
        let p256_kid = kid_of(&p256_jwk);
        keyring.insert(
            p256_kid.clone(),
            p256_jwk.verifying_key().expect("P-256 public key"),
        );

        let sm2 = sm2::SecretKey::from_slice(&[9; 32]).expect("a valid SM2 scalar");
        let sm2_secret = RecipientSecret::Sm2(sm2.clone());
        let sm2_jwk = Jwk::public_of_recipient(&sm2_secret.public());
        let sm2_kid = kid_of(&sm2_jwk);
        let sm2_sign = Jwk {
            use_: None,
            ..sm2_jwk.clone()
        };
        keyring.insert(
            sm2_kid.clone(),
            sm2_sign.verifying_key().expect("SM2 public key"),
        );

        let x = x25519_dalek::StaticSecret::from([11; 32]);
        let x_secret = RecipientSecret::X25519(x);
        let x_public = x_secret.public();
        let x_kid = kid_of(&Jwk::public_of_recipient(&x_public));
        let sm2_public = sm2_secret.public();
        let mut decrypt = DecryptKeys::default();
        decrypt.insert(x_kid.clone(), x_secret);
        decrypt.insert(sm2_kid.clone(), sm2_secret);
        Fixture {
            ed25519,
            kid,
            keyring,
            p256_kid,
            sm2_kid: sm2_kid.clone(),
            decrypt,
            x25519: Recipient {
                key: x_public,
                kid: x_kid,
            },
            sm2_recipient: Recipient {
                key: sm2_public,
                kid: sm2_kid,
            },
        }
    }

    /// A compact JWS with a valid Ed25519 signature over any header and payload bytes.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = b64url(header);
        out.push('.');
        out.push_str(&b64url(payload));
        let signature = self.ed25519.sign(out.as_bytes());
        out.push('.');
        out.push_str(&b64url(&signature.to_bytes()));
        out.into_bytes()
    }

    /// `header` as JSON, with `kid` (and `typ` when given) put in when it is an object, so the
    /// fuzzer need not guess the kid; other bytes are kept as they are.
    pub fn header_with_kid(&self, header: &[u8], typ: Option<&str>) -> Vec<u8> {
        self.header_with(header, &self.kid, typ)
    }

    /// As [`Fixture::header_with_kid`] with another key's kid (the P-256 and SM2 verifiers run
    /// on the Ed25519 signature and must refuse it).
    #[allow(dead_code)]
    pub fn header_with(&self, header: &[u8], kid: &str, typ: Option<&str>) -> Vec<u8> {
        match serde_json::from_slice::<serde_json::Value>(header) {
            Ok(serde_json::Value::Object(mut map)) => {
                map.entry("kid").or_insert_with(|| kid.into());
                map.entry("alg").or_insert_with(|| "EdDSA".into());
                if let Some(typ) = typ {
                    map.entry("typ").or_insert_with(|| typ.into());
                }
                serde_json::to_vec(&map).unwrap_or_default()
            }
            _ => header.to_vec(),
        }
    }
}

/// Splits `data` in two at a length given by its first byte.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.split_first() {
        Some((&n, rest)) => rest.split_at((n as usize).min(rest.len())),
        None => (&[], &[]),
    }
}
