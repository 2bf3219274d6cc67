//! The block ciphers negotiated by PACE and chip authentication (Doc 9303-11 §9.7, §9.8): the key
//! derivation function per cipher, nonce encryption (CBC, zero IV), the MAC of authentication
//! tokens, and the secure messaging cipher each one selects: [`Tdes`] (3DES, retail MAC) or
//! [`Aes`] (AES-CBC with `IV = E(KSenc, SSC)`, CMAC truncated to 8 bytes).

use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use cmac::{Cmac, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::crypto::{self, Key16, KeyUse};
use crate::sm::{SmCipher, Tdes};

/// The cipher of a PACE or chip authentication protocol OID's last arc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// Two-key 3DES, retail MAC (`-3DES-CBC-CBC`).
    Tdes,
    Aes128,
    Aes192,
    Aes256,
}

impl Cipher {
    /// From the OID's last arc: 1 = 3DES, 2/3/4 = AES-128/192/256.
    pub fn from_arc(arc: u8) -> Option<Cipher> {
        Some(match arc {
            1 => Cipher::Tdes,
            2 => Cipher::Aes128,
            3 => Cipher::Aes192,
            4 => Cipher::Aes256,
            _ => return None,
        })
    }

    pub fn arc(self) -> u8 {
        match self {
            Cipher::Tdes => 1,
            Cipher::Aes128 => 2,
            Cipher::Aes192 => 3,
            Cipher::Aes256 => 4,
        }
    }

    /// Name for records and logs.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Tdes => "3DES",
            Cipher::Aes128 => "AES-128",
            Cipher::Aes192 => "AES-192",
            Cipher::Aes256 => "AES-256",
        }
    }

    pub fn from_name(name: &str) -> Option<Cipher> {
        [Cipher::Tdes, Cipher::Aes128, Cipher::Aes192, Cipher::Aes256]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    pub fn block_size(self) -> usize {
        match self {
            Cipher::Tdes => 8,
            _ => 16,
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            Cipher::Tdes | Cipher::Aes128 => 16,
            Cipher::Aes192 => 24,
            Cipher::Aes256 => 32,
        }
    }

    /// `KDF(K, c)` of §9.7.1: SHA-1 for 3DES (parity adjusted) and AES-128, SHA-256 for
    /// AES-192/256, truncated to the key length.
    pub fn kdf(self, secret: &[u8], usage: KeyUse) -> Vec<u8> {
        match self {
            Cipher::Tdes => crypto::kdf_3des(secret, usage).to_vec(),
            Cipher::Aes128 => {
                let mut h = Sha1::new();
                h.update(secret);
                h.update((usage as u32).to_be_bytes());
                h.finalize()[..16].to_vec()
            }
            Cipher::Aes192 | Cipher::Aes256 => {
                let mut h = Sha256::new();
                h.update(secret);
                h.update((usage as u32).to_be_bytes());
                h.finalize()[..self.key_len()].to_vec()
            }
        }
    }

    /// CBC encryption with a zero IV of whole blocks (PACE's nonce).
    pub fn encrypt_zero_iv(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Cipher::Tdes => crypto::tdes_cbc_encrypt(&key16(key), [0; 8], data),
            _ => aes_cbc(self, key, &[0; 16], data, true),
        }
    }

    /// CBC decryption with a zero IV of whole blocks (PACE's nonce).
    pub fn decrypt_zero_iv(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Cipher::Tdes => crypto::tdes_cbc_decrypt(&key16(key), [0; 8], data),
            _ => aes_cbc(self, key, &[0; 16], data, false),
        }
    }

    /// PACE-CAM's Encrypted Chip Authentication Data (Doc 9303-11 §4.4.3.5): AES-CBC under
    /// `KSenc` with IV = E(KSenc, −1) (a block of FF), padded (ISO/IEC 9797-1 method 2). `None`
    /// for 3DES, with which CAM is not defined.
    pub fn cam_encrypt(self, ks_enc: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        if self == Cipher::Tdes {
            return None;
        }
        let iv = aes_block(self, ks_enc, &[0xFF; 16]);
        Some(aes_cbc(self, ks_enc, &iv, &crypto::pad(data, 16), true))
    }

    /// The inverse of [`Self::cam_encrypt`]: `None` when not whole blocks or badly padded.
    pub fn cam_decrypt(self, ks_enc: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        if self == Cipher::Tdes || data.is_empty() || !data.len().is_multiple_of(16) {
            return None;
        }
        let iv = aes_block(self, ks_enc, &[0xFF; 16]);
        let plain = aes_cbc(self, ks_enc, &iv, data, false);
        crypto::unpad(&plain).map(<[u8]>::to_vec)
    }

    /// The 8-byte MAC of authentication tokens: retail MAC over padded data (3DES) or CMAC
    /// over the data as is (AES), §9.4.7 / §9.8.
    pub fn token_mac(self, key: &[u8], data: &[u8]) -> [u8; 8] {
        match self {
            Cipher::Tdes => crypto::retail_mac(&key16(key), &crypto::pad(data, 8)),
            _ => cmac8(self, key, data),
        }
    }

    /// The secure messaging cipher with session keys `KSenc`, `KSmac`.
    pub fn sm(self, ks_enc: &[u8], ks_mac: &[u8]) -> Box<dyn SmCipher> {
        match self {
            Cipher::Tdes => Box::new(Tdes {
                ks_enc: key16(ks_enc),
                ks_mac: key16(ks_mac),
            }),
            _ => Box::new(Aes {
                cipher: self,
                ks_enc: ks_enc.to_vec(),
                ks_mac: ks_mac.to_vec(),
            }),
        }
    }
}

fn key16(key: &[u8]) -> Key16 {
    let mut k = [0u8; 16];
    let n = key.len().min(16);
    k[..n].copy_from_slice(&key[..n]);
    k
}

/// AES secure messaging (§9.8.6.2/9.8.7): CBC with `IV = E(KSenc, SSC)`, CMAC truncated to 8.
pub struct Aes {
    cipher: Cipher,
    ks_enc: Vec<u8>,
    ks_mac: Vec<u8>,
}

impl SmCipher for Aes {
    fn block_size(&self) -> usize {
        16
    }
    fn encrypt(&self, ssc: &[u8], data: &[u8]) -> Vec<u8> {
        let iv = aes_block(self.cipher, &self.ks_enc, ssc);
        aes_cbc(self.cipher, &self.ks_enc, &iv, data, true)
    }
    fn decrypt(&self, ssc: &[u8], data: &[u8]) -> Vec<u8> {
        let iv = aes_block(self.cipher, &self.ks_enc, ssc);
        aes_cbc(self.cipher, &self.ks_enc, &iv, data, false)
    }
    fn mac(&self, data: &[u8]) -> [u8; 8] {
        cmac8(self.cipher, &self.ks_mac, data)
    }
    fn name(&self) -> &'static str {
        self.cipher.name()
    }
}

/// Runs `f` with the AES variant for `cipher` keyed with `key` (keys are always derived at the
/// right length; a wrong length would be a bug, and gives an all-zero key rather than a panic).
macro_rules! with_aes {
    ($cipher:expr, $key:expr, |$c:ident| $body:expr) => {
        match $cipher {
            Cipher::Aes192 => {
                let $c = Aes192::new(&Array::from(fixed::<24>($key)));
                $body
            }
            Cipher::Aes256 => {
                let $c = Aes256::new(&Array::from(fixed::<32>($key)));
                $body
            }
            _ => {
                let $c = Aes128::new(&Array::from(fixed::<16>($key)));
                $body
            }
        }
    };
}

fn fixed<const N: usize>(key: &[u8]) -> [u8; N] {
    let mut k = [0u8; N];
    if key.len() == N {
        k.copy_from_slice(key);
    }
    k
}

/// One block encrypted (the SM IV from the SSC).
fn aes_block(cipher: Cipher, key: &[u8], block: &[u8]) -> [u8; 16] {
    let mut b = Array::from(fixed::<16>(block));
    with_aes!(cipher, key, |c| c.encrypt_block(&mut b));
    b.into()
}

/// AES-CBC over whole blocks (trailing bytes short of a block are ignored; callers pad).
fn aes_cbc(cipher: Cipher, key: &[u8], iv: &[u8; 16], data: &[u8], encrypt: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut chain = *iv;
    with_aes!(cipher, key, |c| {
        for chunk in data.chunks_exact(16) {
            let mut b = Array::from(fixed::<16>(chunk));
            if encrypt {
                for (x, y) in b.iter_mut().zip(chain) {
                    *x ^= y;
                }
                c.encrypt_block(&mut b);
                chain = b.into();
                out.extend_from_slice(&b);
            } else {
                c.decrypt_block(&mut b);
                for (x, y) in b.iter_mut().zip(chain) {
                    *x ^= y;
                }
                chain = fixed::<16>(chunk);
                out.extend_from_slice(&b);
            }
        }
    });
    out
}

fn cmac8(cipher: Cipher, key: &[u8], data: &[u8]) -> [u8; 8] {
    fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> [u8; 8] {
        let mut out = [0u8; 8];
        if let Ok(mut m) = <M as KeyInit>::new_from_slice(key) {
            m.update(data);
            out.copy_from_slice(&m.finalize().into_bytes()[..8]);
        }
        out
    }
    match cipher {
        Cipher::Aes192 => run::<Cmac<Aes192>>(key, data),
        Cipher::Aes256 => run::<Cmac<Aes256>>(key, data),
        _ => run::<Cmac<Aes128>>(key, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::{Command, Response};
    use crate::crypto::tests::h;
    use crate::sm::SecureMessaging;

    /// Doc 9303-11 Appendix G.1: Kπ from the MRZ password, the nonce, and the session keys
    /// from the shared secret.
    #[test]
    fn kdf_and_nonce_match_the_icao_worked_example() {
        let k = h("7E2D2A41C74EA0B38CD36F863939BFA8E9032AAD");
        let k_pi = Cipher::Aes128.kdf(&k, KeyUse::Pace);
        assert_eq!(k_pi, h("89DED1B26624EC1E634C1989302849DD"));
        let z = h("95A3A016522EE98D01E76CB6B98B42C3");
        let s = h("3F00C4D39D153F2B2A214A078D899B22");
        assert_eq!(Cipher::Aes128.decrypt_zero_iv(&k_pi, &z), s);
        assert_eq!(Cipher::Aes128.encrypt_zero_iv(&k_pi, &s), z);
        let shared = h("28768D20701247DAE81804C9E780EDE582A9996DB4A315020B2733197DB84925");
        assert_eq!(
            Cipher::Aes128.kdf(&shared, KeyUse::Enc),
            h("F5F0E35C0D7161EE6724EE513A0D9A7F")
        );
        assert_eq!(
            Cipher::Aes128.kdf(&shared, KeyUse::Mac),
            h("FE251C7858B356B24514B3BD5F4297D1")
        );
        // AES-192/256 take SHA-256 (§9.7.1): lengths and distinct keys.
        assert_eq!(Cipher::Aes192.kdf(&shared, KeyUse::Enc).len(), 24);
        let k256 = Cipher::Aes256.kdf(&shared, KeyUse::Enc);
        assert_eq!(k256.len(), 32);
        assert_eq!(
            Cipher::Aes192.kdf(&shared, KeyUse::Enc),
            k256[..24].to_vec()
        );
    }

    /// The authentication tokens of Appendix G.1: CMAC over the other side's public key data
    /// object `7F49 { 06 OID, 86 point }`.
    #[test]
    fn cmac_tokens_match_the_icao_worked_example() {
        let ks_mac = h("FE251C7858B356B24514B3BD5F4297D1");
        let pk_ic = h(
            "7F494F060A04007F000702020402028641049E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB7764B22277A2EDDC3C265A9F018F9CB852E111B768B326904B59A0193776F094",
        );
        assert_eq!(
            Cipher::Aes128.token_mac(&ks_mac, &pk_ic).to_vec(),
            h("C2B0BD78D94BA866")
        );
    }

    /// AES secure messaging after PACE, from a German ID card's trace published with gmrtd's
    /// PACE tests (`TestDoPace_CAM_ECDH_DE`): SSC from 0, SELECT 011D, then READ BINARY of 4
    /// bytes and of 256 bytes, byte for byte from the reader's side and the chip's.
    #[test]
    fn aes_secure_messaging_matches_a_real_chip() {
        let make = || {
            SecureMessaging::new(
                Cipher::Aes128.sm(
                    &h("a8e85e938514ec67ae33cda3d43d3c48"),
                    &h("27f1adeb705a049a305b0c619b14b9b3"),
                ),
                &[0; 16],
            )
        };
        let (mut reader, mut card) = (make(), make());
        let select = Command::new(0, 0xA4, 0x02, 0x0C).with_data(h("011D"));
        let wire = reader.protect(&select);
        assert_eq!(
            wire.encode(),
            h("0ca4020c1d87110147ee2e3bd440fb596167f2bb6cd6395e8e08a105747484314bcf00")
        );
        assert_eq!(card.unprotect_command(&wire).unwrap(), select);
        let answer = h("990290008e085f570baddd1002d29000");
        assert_eq!(
            card.protect_response(&Response::status(0x9000)).encode(),
            answer
        );
        let got = reader
            .unprotect(&Response::parse(&answer).unwrap())
            .unwrap();
        assert_eq!(got.sw, 0x9000);

        let read = Command::new(0, 0xB0, 0, 0).with_le(4);
        assert_eq!(
            reader.protect(&read).encode(),
            h("0cb000000d9701048e085d283ec183cbb99800")
        );
        let got = reader
            .unprotect(
                &Response::parse(&h(
                    "871101d688d27a6d16f03619e76dcb59c1f1ec990290008e08b7df9a5982bb17299000",
                ))
                .unwrap(),
            )
            .unwrap();
        assert_eq!(got.sw, 0x9000);
        assert_eq!(got.data.len(), 4);
        // On the eID card 011D is EF.CardSecurity: CMS ContentInfo, a SEQUENCE.
        assert_eq!(got.data[..2], [0x30, 0x82]);
        let read = Command::new(0, 0xB0, 0, 4).with_le(256);
        assert_eq!(
            reader.protect(&read).encode(),
            h("0cb000040d9701008e08a893fca2cd1cb17d00")
        );
    }
}
