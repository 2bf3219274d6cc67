//! BAC key derivation and the 3DES primitives of Doc 9303-11 §9.7 and §9.8: ISO 9797-1 padding
//! method 2, 3DES-CBC with a zero IV, and the retail MAC (ISO 9797-1 MAC algorithm 3).

use des::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::{Des, TdesEde2};
use sha1::{Digest, Sha1};

/// A two-key 3DES key (K1 ‖ K2), as BAC derives them.
pub type Key16 = [u8; 16];

/// Which key `KDF(seed, counter)` derives (Doc 9303-11 §9.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    Enc = 1,
    Mac = 2,
    /// The PACE password key (used once PACE lands).
    Pace = 3,
}

/// `Kseed = SHA-1(MRZ_information)[0..16]`.
pub fn key_seed(mrz_information: &str) -> Key16 {
    let digest = Sha1::digest(mrz_information.as_bytes());
    first16(&digest)
}

/// `KDF(seed, c) = SHA-1(seed ‖ c as u32 BE)[0..16]`, DES parity adjusted.
pub fn kdf_3des(seed: &[u8], usage: KeyUse) -> Key16 {
    let mut hasher = Sha1::new();
    hasher.update(seed);
    hasher.update((usage as u32).to_be_bytes());
    let mut key = first16(&hasher.finalize());
    adjust_parity(&mut key);
    key
}

fn first16(bytes: &[u8]) -> Key16 {
    let mut out = [0u8; 16];
    out.copy_from_slice(&bytes[..16]);
    out
}

/// Sets each byte's lowest bit so that the byte has odd parity (DES ignores these bits; the
/// published vectors are adjusted).
pub fn adjust_parity(key: &mut [u8]) {
    for b in key {
        let ones = (*b & 0xFE).count_ones();
        *b = (*b & 0xFE) | u8::from(ones % 2 == 0);
    }
}

/// ISO 9797-1 padding method 2: `80`, then `00`s to a multiple of `block`.
pub fn pad(data: &[u8], block: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + block);
    out.extend_from_slice(data);
    out.push(0x80);
    while out.len() % block != 0 {
        out.push(0);
    }
    out
}

/// Removes method-2 padding; `None` when there is none.
pub fn unpad(data: &[u8]) -> Option<&[u8]> {
    let end = data.iter().rposition(|b| *b != 0)?;
    (data[end] == 0x80).then(|| &data[..end])
}

fn tdes(key: &Key16) -> TdesEde2 {
    TdesEde2::new(&Array::from(*key))
}

fn des_key(key: &[u8]) -> Des {
    let mut k = [0u8; 8];
    k.copy_from_slice(&key[..8]);
    Des::new(&Array::from(k))
}

fn block8(bytes: &[u8]) -> Array<u8, des::cipher::consts::U8> {
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    Array::from(b)
}

/// 3DES-CBC encryption with `iv` of data whose length is a multiple of 8 (callers pad).
/// Trailing bytes short of a block are ignored; callers never pass them.
pub fn tdes_cbc_encrypt(key: &Key16, iv: [u8; 8], data: &[u8]) -> Vec<u8> {
    let cipher = tdes(key);
    let mut chain = iv;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(8) {
        let mut block = [0u8; 8];
        for i in 0..8 {
            block[i] = chunk[i] ^ chain[i];
        }
        let mut b = block8(&block);
        cipher.encrypt_block(&mut b);
        chain.copy_from_slice(&b);
        out.extend_from_slice(&b);
    }
    out
}

/// 3DES-CBC decryption with `iv`; whole blocks only.
pub fn tdes_cbc_decrypt(key: &Key16, iv: [u8; 8], data: &[u8]) -> Vec<u8> {
    let cipher = tdes(key);
    let mut chain = iv;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(8) {
        let mut b = block8(chunk);
        cipher.decrypt_block(&mut b);
        for i in 0..8 {
            out.push(b[i] ^ chain[i]);
        }
        chain.copy_from_slice(chunk);
    }
    out
}

/// ISO 9797-1 MAC algorithm 3 with DES ("retail MAC") over `data`, which the caller has padded
/// to a multiple of 8: single-DES CBC-MAC under K1, the last block decrypted with K2 and
/// encrypted with K1.
pub fn retail_mac(key: &Key16, data: &[u8]) -> [u8; 8] {
    let k1 = des_key(&key[..8]);
    let k2 = des_key(&key[8..]);
    let mut h = block8(&[0u8; 8]);
    for chunk in data.chunks_exact(8) {
        for i in 0..8 {
            h[i] ^= chunk[i];
        }
        k1.encrypt_block(&mut h);
    }
    k2.decrypt_block(&mut h);
    k1.encrypt_block(&mut h);
    let mut out = [0u8; 8];
    out.copy_from_slice(&h);
    out
}

/// Constant-time comparison of MACs.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Fresh random bytes from the operating system (RND.IFD, K.IFD).
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS generator does not fail on Linux once booted; a failure here is not recoverable.
    getrandom::fill(&mut out).expect("the operating system's random generator failed");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn h(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    pub(crate) fn k16(s: &str) -> Key16 {
        h(s).try_into().unwrap()
    }

    /// Doc 9303-11 Appendix D.2: key seed and keys from the MRZ of the worked example.
    #[test]
    fn key_derivation_matches_the_icao_worked_example() {
        let seed = key_seed("L898902C<369080619406236");
        assert_eq!(seed, k16("239AB9CB282DAF66231DC5A4DF6BFBAE"));
        assert_eq!(
            kdf_3des(&seed, KeyUse::Enc),
            k16("AB94FDECF2674FDFB9B391F85D7F76F2")
        );
        assert_eq!(
            kdf_3des(&seed, KeyUse::Mac),
            k16("7962D9ECE03D1ACD4C76089DCE131543")
        );
        let mut raw = k16("AB94FCEDF2664EDFB9B291F85D7F77F2");
        adjust_parity(&mut raw);
        assert_eq!(raw, k16("AB94FDECF2674FDFB9B391F85D7F76F2"));
        // Session keys from KSseed (D.3).
        let ks_seed = k16("0036D272F5C350ACAC50C3F572D23600");
        assert_eq!(
            kdf_3des(&ks_seed, KeyUse::Enc),
            k16("979EC13B1CBFE9DCD01AB0FED307EAE5")
        );
        assert_eq!(
            kdf_3des(&ks_seed, KeyUse::Mac),
            k16("F1CB1F1FB5ADF208806B89DC579DC1F8")
        );
    }

    /// D.3: E_IFD and M_IFD from S = RND.IFD ‖ RND.ICC ‖ K.IFD.
    #[test]
    fn encryption_and_mac_match_the_icao_worked_example() {
        let kenc = k16("AB94FDECF2674FDFB9B391F85D7F76F2");
        let kmac = k16("7962D9ECE03D1ACD4C76089DCE131543");
        let s = h("781723860C06C226 4608F91988702212 0B795240CB7049B01C19B33E32804F0B");
        let e_ifd = tdes_cbc_encrypt(&kenc, [0; 8], &s);
        assert_eq!(
            e_ifd,
            h("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2")
        );
        assert_eq!(
            retail_mac(&kmac, &pad(&e_ifd, 8)).to_vec(),
            h("5F1448EEA8AD90A7")
        );
        assert_eq!(tdes_cbc_decrypt(&kenc, [0; 8], &e_ifd), s);
    }

    #[test]
    fn padding_method_2() {
        assert_eq!(pad(&[], 8), h("8000000000000000"));
        assert_eq!(pad(&h("0102030405060708"), 8).len(), 16);
        assert_eq!(pad(&h("01020304050607"), 8), h("0102030405060780"));
        assert_eq!(unpad(&h("0102038000000000")), Some(&h("010203")[..]));
        assert_eq!(unpad(&h("0102030000000000")), None);
        assert_eq!(unpad(&[]), None);
        assert_eq!(unpad(&h("80")), Some(&[][..]));
    }
}
