//! Compact JWE to the case system's key.
//!
//! Standard profile (RFC 7516, RFC 7518, RFC 8037): `alg: "ECDH-ES+A256KW"` with an ephemeral
//! X25519 key (`epk`), Concat KDF over SHA-256 with `apu`/`apv`, AES-256 key wrap of a random
//! content key, `enc: "A256GCM"`.
//!
//! GM profile (no JOSE registry entry exists; documented in docs/record-format.md):
//! `alg: "SM2"`: the random 16-byte content key is encrypted with SM2 public-key encryption
//! (GB/T 32918.4, ciphertext `C1‖C3‖C2` with `C1 = 04‖x‖y`, per GB/T 35276) into the JWE
//! encrypted-key part; `enc: "SM4GCM"`: SM4 in GCM mode, 96-bit IV, 128-bit tag, AAD as in
//! RFC 7516 (the ASCII of the encoded protected header).
//!
//! `apu` (the station id) and `apv` (the recipient kid) are always set: some consumers reject
//! the null values other libraries write when they are unset.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, AesGcm};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use super::jose::{JoseError, b64url, b64url_decode, parts};
use super::keys::{DecryptKeys, Recipient, RecipientPublic, RecipientSecret};

type Sm4Gcm = AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EphemeralKey {
    pub kty: String,
    pub crv: String,
    pub x: String,
}

/// The protected header we emit and accept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub alg: String,
    pub enc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cty: Option<String>,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epk: Option<EphemeralKey>,
    pub apu: String,
    pub apv: String,
}

/// Random key material (ephemeral secrets, CEKs), wiped when dropped; IVs use it too.
fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, JoseError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut *bytes).map_err(|e| JoseError::Encrypt(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// RFC 7518 §4.6.2 Concat KDF with SHA-256, for key lengths up to 256 bits (one round).
/// The derived key (a KEK) is wiped when dropped.
pub fn concat_kdf(
    z: &[u8],
    alg: &str,
    apu: &[u8],
    apv: &[u8],
    key_bits: u32,
) -> Zeroizing<Vec<u8>> {
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(z);
    for field in [alg.as_bytes(), apu, apv] {
        h.update((field.len() as u32).to_be_bytes());
        h.update(field);
    }
    h.update(key_bits.to_be_bytes());
    let mut digest = h.finalize();
    let key = Zeroizing::new(digest[..(key_bits / 8) as usize].to_vec());
    digest.as_mut_slice().zeroize();
    key
}

/// Encrypts `plaintext` to `recipient`. `apu` names the sender (the station id); `cty` is
/// `Some("JOSE")` when the plaintext is itself a compact JWS.
pub fn encrypt(
    plaintext: &[u8],
    recipient: &Recipient,
    apu: &str,
    cty: Option<&str>,
) -> Result<String, JoseError> {
    let apv = recipient.kid.as_bytes();
    match &recipient.key {
        RecipientPublic::X25519(public) => {
            // StaticSecret and the shared secret wipe themselves on drop.
            let ephemeral = x25519_dalek::StaticSecret::from(*random::<32>()?);
            let epk = x25519_dalek::PublicKey::from(&ephemeral);
            let z = ephemeral.diffie_hellman(public);
            if !z.was_contributory() {
                return Err(JoseError::Encrypt(
                    "the case system's X25519 key is a low-order point".into(),
                ));
            }
            let header = Header {
                alg: "ECDH-ES+A256KW".into(),
                enc: "A256GCM".into(),
                cty: cty.map(str::to_string),
                kid: recipient.kid.clone(),
                epk: Some(EphemeralKey {
                    kty: "OKP".into(),
                    crv: "X25519".into(),
                    x: b64url(epk.as_bytes()),
                }),
                apu: b64url(apu.as_bytes()),
                apv: b64url(apv),
            };
            let kek = concat_kdf(z.as_bytes(), "ECDH-ES+A256KW", apu.as_bytes(), apv, 256);
            let cek = random::<32>()?;
            let kw = aes_kw::KwAes256::new_from_slice(&kek)
                .map_err(|_| JoseError::Encrypt("bad KEK length".into()))?;
            let mut wrapped = [0u8; 40];
            let wrapped = kw
                .wrap_key(&*cek, &mut wrapped)
                .map_err(|e| JoseError::Encrypt(format!("key wrap: {e}")))?
                .to_vec();
            seal_content(&header, &wrapped, &*cek, &*random::<12>()?, plaintext)
        }
        RecipientPublic::Sm2(public) => {
            let header = Header {
                alg: "SM2".into(),
                enc: "SM4GCM".into(),
                cty: cty.map(str::to_string),
                kid: recipient.kid.clone(),
                epk: None,
                apu: b64url(apu.as_bytes()),
                apv: b64url(apv),
            };
            let cek = random::<16>()?;
            let encrypting =
                sm2::pke::EncryptingKey::new_with_mode(*public, sm2::pke::Mode::C1C3C2);
            let wrapped = encrypting
                .encrypt(&mut getrandom::SysRng, &*cek)
                .map_err(|e| JoseError::Encrypt(format!("SM2 key transport: {e}")))?;
            seal_content(&header, &wrapped, &*cek, &*random::<12>()?, plaintext)
        }
    }
}

/// Content encryption with a given key and IV (split out so RFC vectors can drive it).
pub fn seal_content(
    header: &Header,
    encrypted_key: &[u8],
    cek: &[u8],
    iv: &[u8; 12],
    plaintext: &[u8],
) -> Result<String, JoseError> {
    let header_b64 = b64url(&serde_json::to_vec(header).unwrap_or_default());
    let (ciphertext, tag) =
        content_encrypt(&header.enc, cek, iv, header_b64.as_bytes(), plaintext)?;
    // Encode straight into the output: for a large page this saves a copy of the ciphertext.
    let mut out = String::with_capacity(header_b64.len() + ciphertext.len() * 4 / 3 + 256);
    out.push_str(&header_b64);
    for part in [encrypted_key, iv.as_slice(), &ciphertext, &tag] {
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(part, &mut out);
    }
    Ok(out)
}

/// AES-256-GCM or SM4-GCM, in place, tag detached.
pub fn content_encrypt(
    enc: &str,
    cek: &[u8],
    iv: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), JoseError> {
    let mut buffer = plaintext.to_vec();
    let nonce = iv.into();
    let tag = match enc {
        "A256GCM" => Aes256Gcm::new_from_slice(cek)
            .map_err(|_| JoseError::Encrypt("CEK is not 32 bytes".into()))?
            .encrypt_inout_detached(nonce, aad, buffer.as_mut_slice().into())
            .map_err(|_| JoseError::Encrypt("AES-GCM".into()))?
            .to_vec(),
        "SM4GCM" => Sm4Gcm::new_from_slice(cek)
            .map_err(|_| JoseError::Encrypt("CEK is not 16 bytes".into()))?
            .encrypt_inout_detached(nonce, aad, buffer.as_mut_slice().into())
            .map_err(|_| JoseError::Encrypt("SM4-GCM".into()))?
            .to_vec(),
        other => return Err(JoseError::Unsupported(format!("JWE enc {other:?}"))),
    };
    Ok((buffer, tag))
}

fn content_decrypt(
    enc: &str,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: Vec<u8>,
    tag: &[u8],
) -> Result<Vec<u8>, JoseError> {
    let iv: &[u8; 12] = iv
        .try_into()
        .map_err(|_| JoseError::Malformed("IV is not 96 bits".into()))?;
    let tag: &[u8; 16] = tag
        .try_into()
        .map_err(|_| JoseError::Malformed("tag is not 128 bits".into()))?;
    let mut buffer = ciphertext;
    let result = match enc {
        "A256GCM" => Aes256Gcm::new_from_slice(cek)
            .map_err(|_| JoseError::Decrypt)?
            .decrypt_inout_detached(iv.into(), aad, buffer.as_mut_slice().into(), tag.into()),
        "SM4GCM" => Sm4Gcm::new_from_slice(cek)
            .map_err(|_| JoseError::Decrypt)?
            .decrypt_inout_detached(iv.into(), aad, buffer.as_mut_slice().into(), tag.into()),
        other => return Err(JoseError::Unsupported(format!("JWE enc {other:?}"))),
    };
    result.map_err(|_| JoseError::Decrypt)?;
    Ok(buffer)
}

/// A decrypted JWE: its header and plaintext.
#[derive(Debug)]
pub struct Opened {
    pub header: Header,
    pub plaintext: Vec<u8>,
}

/// Decrypts a compact JWE with the key its `kid` names.
pub fn decrypt(jwe: &[u8], keys: &DecryptKeys) -> Result<Opened, JoseError> {
    let parts = parts(jwe)?;
    let [h, k, iv, c, t] = parts.as_slice() else {
        return Err(JoseError::Malformed(format!(
            "a JWE has five dot-separated parts, found {}",
            parts.len()
        )));
    };
    let header: Header = serde_json::from_slice(&b64url_decode(h)?)
        .map_err(|e| JoseError::Malformed(format!("bad JWE header: {e}")))?;
    let secret = keys
        .get(&header.kid)
        .ok_or_else(|| JoseError::UnknownKid(header.kid.clone()))?;
    let encrypted_key = b64url_decode(k)?;
    let cek = match (secret, header.alg.as_str(), header.enc.as_str()) {
        (RecipientSecret::X25519(secret), "ECDH-ES+A256KW", "A256GCM") => {
            let epk = header
                .epk
                .as_ref()
                .filter(|e| e.kty == "OKP" && e.crv == "X25519")
                .ok_or_else(|| JoseError::Malformed("missing or wrong epk".into()))?;
            let epk: [u8; 32] = b64url_decode(&epk.x)?
                .try_into()
                .map_err(|_| JoseError::Malformed("epk x is not 32 bytes".into()))?;
            let z = secret.diffie_hellman(&x25519_dalek::PublicKey::from(epk));
            if !z.was_contributory() {
                return Err(JoseError::Decrypt);
            }
            let kek = concat_kdf(
                z.as_bytes(),
                &header.alg,
                &b64url_decode(&header.apu)?,
                &b64url_decode(&header.apv)?,
                256,
            );
            let kw = aes_kw::KwAes256::new_from_slice(&kek).map_err(|_| JoseError::Decrypt)?;
            let mut cek = Zeroizing::new(vec![0u8; 32]);
            kw.unwrap_key(&encrypted_key, &mut cek)
                .map_err(|_| JoseError::Decrypt)?;
            cek
        }
        (RecipientSecret::Sm2(secret), "SM2", "SM4GCM") => {
            let decrypting = sm2::pke::DecryptingKey::new_with_mode(
                secret.to_nonzero_scalar(),
                sm2::pke::Mode::C1C3C2,
            );
            let cek = Zeroizing::new(
                decrypting
                    .decrypt(&encrypted_key)
                    .map_err(|_| JoseError::Decrypt)?,
            );
            if cek.len() != 16 {
                return Err(JoseError::Decrypt);
            }
            cek
        }
        (_, alg, enc) => {
            return Err(JoseError::Unsupported(format!(
                "JWE alg {alg:?} enc {enc:?} for this key type"
            )));
        }
    };
    let plaintext = content_decrypt(
        &header.enc,
        &cek,
        &b64url_decode(iv)?,
        h.as_bytes(),
        b64url_decode(c)?,
        &b64url_decode(t)?,
    )?;
    Ok(Opened { header, plaintext })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::keys::Jwk;

    fn recipient_pair(secret: RecipientSecret) -> (Recipient, DecryptKeys) {
        let jwk = Jwk::public_of_recipient(&secret.public());
        let recipient = Recipient {
            key: secret.public(),
            kid: jwk.thumbprint(),
        };
        let mut keys = DecryptKeys::default();
        keys.insert(jwk.thumbprint(), secret);
        (recipient, keys)
    }

    #[test]
    fn rfc8037_a6_x25519_shared_secret() {
        // RFC 8037 A.6: the ECDH-ES key agreement with X25519.
        let bob_public: [u8; 32] = b64url_decode("3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08")
            .unwrap()
            .try_into()
            .unwrap();
        let ephemeral_secret: [u8; 32] =
            hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .try_into()
                .unwrap();
        let secret = x25519_dalek::StaticSecret::from(ephemeral_secret);
        assert_eq!(
            b64url(x25519_dalek::PublicKey::from(&secret).as_bytes()),
            "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"
        );
        let z = secret.diffie_hellman(&x25519_dalek::PublicKey::from(bob_public));
        assert_eq!(
            z.as_bytes().to_vec(),
            hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
    }

    #[test]
    fn rfc7518_appendix_c_concat_kdf() {
        // RFC 7518 Appendix C: ECDH-ES, P-256, A128GCM, apu "Alice", apv "Bob".
        let z = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let key = concat_kdf(&z, "A128GCM", b"Alice", b"Bob", 128);
        assert_eq!(b64url(&key), "VqqN6vgjbSBcIijNcacQGg");
    }

    #[test]
    fn rfc3394_aes256_key_wrap_of_a_256_bit_key() {
        // RFC 3394 §4.6.
        let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let key = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        let mut out = [0u8; 40];
        let wrapped = aes_kw::KwAes256::new_from_slice(&kek)
            .unwrap()
            .wrap_key(&key, &mut out)
            .unwrap();
        assert_eq!(
            wrapped.to_vec(),
            hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
        );
    }

    #[test]
    fn rfc7520_5_2_a256gcm_content_encryption() {
        // RFC 7520 §5.2: A256GCM with the given CEK, IV and protected header.
        let plaintext = "You can trust us to stick with you through thick and thin\u{2013}to the \
bitter end. And you can trust us to keep any secret of yours\u{2013}closer than you keep it \
yourself. But you cannot trust us to let you face trouble alone, and go off without a word. \
We are your friends, Frodo.";
        let cek = b64url_decode("mYMfsggkTAm0TbvtlFh2hyoXnbEzJQjMxmgLN3d8xXA").unwrap();
        let iv: [u8; 12] = b64url_decode("-nBoKLH0YkLZPSI9")
            .unwrap()
            .try_into()
            .unwrap();
        let aad = "eyJhbGciOiJSU0EtT0FFUCIsImtpZCI6InNhbXdpc2UuZ2FtZ2VlQGhvYmJpdG9uLmV4YW1wbGUiLCJlbmMiOiJBMjU2R0NNIn0";
        let (ciphertext, tag) =
            content_encrypt("A256GCM", &cek, &iv, aad.as_bytes(), plaintext.as_bytes()).unwrap();
        assert_eq!(
            b64url(&ciphertext),
            "o4k2cnGN8rSSw3IDo1YuySkqeS_t2m1GXklSgqBdpACm6UJuJowOHC5ytjqYgRL-I-soPlwqMUf4UgRWWeaOGNw6vGW-xyM01lTYxrXfVzIIaRdhYtEMRBvBWbEwP7ua1DRfvaOjgZv6Ifa3brcAM64d8p5lhhNcizPersuhw5f-pGYzseva-TUaL8iWnctc-sSwy7SQmRkfhDjwbz0fz6kFovEgj64X1I5s7E6GLp5fnbYGLa1QUiML7Cc2GxgvI7zqWo0YIEc7aCflLG1-8BboVWFdZKLK9vNoycrYHumwzKluLWEbSVmaPpOslY2n525DxDfWaVFUfKQxMF56vn4B9QMpWAbnypNimbM8zVOw"
        );
        assert_eq!(b64url(&tag), "UCGiqJxhBI3IFVdPalHHvA");
    }

    #[test]
    fn both_profiles_round_trip_and_detect_tampering() {
        let secrets = [
            RecipientSecret::X25519(x25519_dalek::StaticSecret::from([9u8; 32])),
            RecipientSecret::Sm2(sm2::SecretKey::from_slice(&[7u8; 32]).unwrap()),
        ];
        for secret in secrets {
            let (recipient, keys) = recipient_pair(secret);
            let jwe = encrypt(b"secret payload", &recipient, "window-01", Some("JOSE")).unwrap();
            let opened = decrypt(jwe.as_bytes(), &keys).unwrap();
            assert_eq!(opened.plaintext, b"secret payload");
            assert_eq!(opened.header.cty.as_deref(), Some("JOSE"));
            assert_eq!(b64url_decode(&opened.header.apu).unwrap(), b"window-01");
            // Flip one character in each part: every change is caught.
            let parts: Vec<&str> = jwe.split('.').collect();
            for i in 0..5 {
                let mut changed: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
                let mut bytes = changed[i].clone().into_bytes();
                let at = bytes.len() / 2;
                bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
                changed[i] = String::from_utf8(bytes).unwrap();
                assert!(
                    decrypt(changed.join(".").as_bytes(), &keys).is_err(),
                    "part {i} altered"
                );
            }
        }
    }

    #[test]
    fn wrong_key_and_garbage_fail_cleanly() {
        let (recipient, _) = recipient_pair(RecipientSecret::X25519(
            x25519_dalek::StaticSecret::from([1u8; 32]),
        ));
        let (_, other_keys) = recipient_pair(RecipientSecret::X25519(
            x25519_dalek::StaticSecret::from([2u8; 32]),
        ));
        let jwe = encrypt(b"x", &recipient, "s", None).unwrap();
        assert!(matches!(
            decrypt(jwe.as_bytes(), &other_keys),
            Err(JoseError::UnknownKid(_))
        ));
        for input in [&b""[..], b"a.b.c.d.e", b"....", b"\xff.a.b.c.d"] {
            assert!(decrypt(input, &other_keys).is_err());
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
