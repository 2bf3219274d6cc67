//! Secure messaging (Doc 9303-11 §9.8), both sides: the reader protects commands and checks
//! responses; the emulator checks commands and protects responses. The cipher is a parameter
//! ([`SmCipher`]): 3DES after BAC; AES (IV = E(KSenc, SSC), CMAC) or 3DES after PACE and chip authentication.

use crate::apdu::{Command, Response};
use crate::crypto::{self, Key16};
use crate::tlv;

/// The cipher suite of a secure messaging session.
pub trait SmCipher: Send {
    /// Block size: 8 (3DES) or 16 (AES); also the length of the SSC.
    fn block_size(&self) -> usize;
    /// Encrypts padded data; `ssc` is the current counter (AES derives its IV from it).
    fn encrypt(&self, ssc: &[u8], data: &[u8]) -> Vec<u8>;
    fn decrypt(&self, ssc: &[u8], data: &[u8]) -> Vec<u8>;
    /// The 8-byte MAC over padded data.
    fn mac(&self, data: &[u8]) -> [u8; 8];
    /// Name for records and logs (`3DES`).
    fn name(&self) -> &'static str;
}

/// 3DES secure messaging after BAC: two-key 3DES-CBC with a zero IV, retail MAC.
pub struct Tdes {
    pub ks_enc: Key16,
    pub ks_mac: Key16,
}

impl SmCipher for Tdes {
    fn block_size(&self) -> usize {
        8
    }
    fn encrypt(&self, _ssc: &[u8], data: &[u8]) -> Vec<u8> {
        crypto::tdes_cbc_encrypt(&self.ks_enc, [0; 8], data)
    }
    fn decrypt(&self, _ssc: &[u8], data: &[u8]) -> Vec<u8> {
        crypto::tdes_cbc_decrypt(&self.ks_enc, [0; 8], data)
    }
    fn mac(&self, data: &[u8]) -> [u8; 8] {
        crypto::retail_mac(&self.ks_mac, data)
    }
    fn name(&self) -> &'static str {
        "3DES"
    }
}

/// Why a secure messaging object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmError {
    #[error("the chip answered {sw:04X} without secure messaging: it left the session")]
    Plain { sw: u16 },
    #[error("secure messaging response malformed: {0}")]
    Malformed(String),
    #[error("secure messaging MAC mismatch ({0})")]
    BadMac(&'static str),
    #[error("secure messaging data does not decrypt to padded plaintext")]
    BadPadding,
}

/// One secure messaging session: the cipher and the send sequence counter.
pub struct SecureMessaging {
    cipher: Box<dyn SmCipher>,
    ssc: u128,
}

impl std::fmt::Debug for SecureMessaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        write!(f, "SecureMessaging({})", self.cipher.name())
    }
}

impl SecureMessaging {
    /// `ssc` is the initial counter (BAC: RND.ICC[4..8] ‖ RND.IFD[4..8]; PACE: 0).
    pub fn new(cipher: Box<dyn SmCipher>, ssc: &[u8]) -> Self {
        let ssc = ssc.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        SecureMessaging { cipher, ssc }
    }

    pub fn cipher_name(&self) -> &'static str {
        self.cipher.name()
    }

    /// The counter as bytes (block-size long).
    pub fn ssc(&self) -> Vec<u8> {
        let n = self.cipher.block_size();
        self.ssc.to_be_bytes()[16 - n..].to_vec()
    }

    fn next_ssc(&mut self) -> Vec<u8> {
        let n = self.cipher.block_size();
        let modulus_bits = 8 * n as u32;
        self.ssc = if modulus_bits >= 128 {
            self.ssc.wrapping_add(1)
        } else {
            (self.ssc + 1) % (1u128 << modulus_bits)
        };
        self.ssc()
    }

    fn pad(&self, data: &[u8]) -> Vec<u8> {
        crypto::pad(data, self.cipher.block_size())
    }

    /// The data object carrying (encrypted) command or response data: DO'87' (with the `01`
    /// padding indicator) or, for odd INS, DO'85'.
    fn data_object(&self, ssc: &[u8], data: &[u8], odd_ins: bool) -> Vec<u8> {
        if data.is_empty() {
            return Vec::new();
        }
        let encrypted = self.cipher.encrypt(ssc, &self.pad(data));
        if odd_ins {
            tlv::encode(0x85, &encrypted)
        } else {
            let mut value = Vec::with_capacity(encrypted.len() + 1);
            value.push(0x01);
            value.extend_from_slice(&encrypted);
            tlv::encode(0x87, &value)
        }
    }

    fn le_object(le: Option<usize>) -> Vec<u8> {
        match le {
            None => Vec::new(),
            Some(le) if le <= 256 => tlv::encode(0x97, &[(le % 256) as u8]),
            Some(le) => tlv::encode(0x97, &((le % 65536) as u16).to_be_bytes()),
        }
    }

    /// Reader side: the protected form of `cmd` (the counter advances once).
    pub fn protect(&mut self, cmd: &Command) -> Command {
        // The counter used for the MAC is the incremented one; 3DES ignores it for the IV, AES
        // uses the same incremented value.
        let ssc = self.next_ssc();
        let header = [cmd.cla | 0x0C, cmd.ins, cmd.p1, cmd.p2];
        let do87 = self.data_object(&ssc, &cmd.data, cmd.ins & 1 == 1);
        let do97 = Self::le_object(cmd.le);
        let mut mac_input = ssc.clone();
        mac_input.extend_from_slice(&self.pad(&header));
        mac_input.extend_from_slice(&do87);
        mac_input.extend_from_slice(&do97);
        let mac = self.cipher.mac(&self.pad(&mac_input));
        let mut data = do87;
        data.extend_from_slice(&do97);
        data.extend_from_slice(&tlv::encode(0x8E, &mac));
        let extended = data.len() > 255 || cmd.le.is_some_and(|le| le > 256);
        Command {
            cla: header[0],
            ins: cmd.ins,
            p1: cmd.p1,
            p2: cmd.p2,
            data,
            le: Some(if extended { 65536 } else { 256 }),
        }
    }

    /// Reader side: checks and decrypts a response to a protected command (the counter advances
    /// once). A bare status word means the chip dropped secure messaging.
    pub fn unprotect(&mut self, resp: &Response) -> Result<Response, SmError> {
        if resp.data.is_empty() {
            return Err(SmError::Plain { sw: resp.sw });
        }
        let ssc = self.next_ssc();
        let objects = tlv::parse_all(&resp.data).map_err(|e| SmError::Malformed(e.to_string()))?;
        let mut mac_input = ssc.clone();
        let mut encrypted: Option<&[u8]> = None;
        let mut inner_sw = None;
        let mut mac = None;
        for o in &objects {
            match o.tag {
                0x8E => mac = Some(o.value),
                0x87 | 0x85 | 0x99 => {
                    if mac.is_some() {
                        return Err(SmError::Malformed("data object after DO'8E'".into()));
                    }
                    mac_input.extend_from_slice(o.raw);
                    match o.tag {
                        0x87 => match o.value.split_first() {
                            Some((0x01, rest)) => encrypted = Some(rest),
                            _ => {
                                return Err(SmError::Malformed(
                                    "DO'87' without padding indicator 01".into(),
                                ));
                            }
                        },
                        0x85 => encrypted = Some(o.value),
                        _ => match o.value {
                            [a, b] => inner_sw = Some(u16::from_be_bytes([*a, *b])),
                            _ => return Err(SmError::Malformed("DO'99' is not 2 bytes".into())),
                        },
                    }
                }
                other => {
                    return Err(SmError::Malformed(format!(
                        "unexpected data object {other:02X} at offset {}",
                        o.offset
                    )));
                }
            }
        }
        let mac = mac.ok_or_else(|| SmError::Malformed("DO'8E' (MAC) missing".into()))?;
        let inner_sw = inner_sw.ok_or_else(|| SmError::Malformed("DO'99' missing".into()))?;
        let expected = self.cipher.mac(&self.pad(&mac_input));
        if !crypto::ct_eq(mac, &expected) {
            return Err(SmError::BadMac("response"));
        }
        let data = match encrypted {
            None => Vec::new(),
            Some(enc) => {
                if enc.is_empty() || enc.len() % self.cipher.block_size() != 0 {
                    return Err(SmError::Malformed(
                        "encrypted data is not whole blocks".into(),
                    ));
                }
                let plain = self.cipher.decrypt(&ssc, enc);
                crypto::unpad(&plain).ok_or(SmError::BadPadding)?.to_vec()
            }
        };
        Ok(Response::new(data, inner_sw))
    }

    /// Card side: checks and decrypts a protected command (the counter advances once).
    pub fn unprotect_command(&mut self, cmd: &Command) -> Result<Command, SmError> {
        if cmd.cla & 0x0C != 0x0C {
            return Err(SmError::Malformed(
                "command without secure messaging".into(),
            ));
        }
        let ssc = self.next_ssc();
        let objects = tlv::parse_all(&cmd.data).map_err(|e| SmError::Malformed(e.to_string()))?;
        let header = [cmd.cla, cmd.ins, cmd.p1, cmd.p2];
        let mut mac_input = ssc.clone();
        mac_input.extend_from_slice(&self.pad(&header));
        let mut encrypted = None;
        let mut le = None;
        let mut mac = None;
        for o in &objects {
            match o.tag {
                0x8E => mac = Some(o.value),
                0x87 => {
                    mac_input.extend_from_slice(o.raw);
                    encrypted = o.value.split_first().map(|(_, rest)| rest);
                }
                0x85 => {
                    mac_input.extend_from_slice(o.raw);
                    encrypted = Some(o.value);
                }
                0x97 => {
                    mac_input.extend_from_slice(o.raw);
                    le = Some(match o.value {
                        [0] => 256,
                        [n] => usize::from(*n),
                        [0, 0] => 65536,
                        [a, b] => usize::from(u16::from_be_bytes([*a, *b])),
                        _ => return Err(SmError::Malformed("DO'97' longer than 2 bytes".into())),
                    });
                }
                _ => return Err(SmError::Malformed("unexpected data object".into())),
            }
        }
        let mac = mac.ok_or_else(|| SmError::Malformed("DO'8E' (MAC) missing".into()))?;
        if !crypto::ct_eq(mac, &self.cipher.mac(&self.pad(&mac_input))) {
            return Err(SmError::BadMac("command"));
        }
        let data = match encrypted {
            None => Vec::new(),
            Some(enc) if enc.len() % self.cipher.block_size() == 0 && !enc.is_empty() => {
                let plain = self.cipher.decrypt(&ssc, enc);
                crypto::unpad(&plain).ok_or(SmError::BadPadding)?.to_vec()
            }
            Some(_) => {
                return Err(SmError::Malformed(
                    "encrypted data is not whole blocks".into(),
                ));
            }
        };
        Ok(Command {
            cla: cmd.cla & !0x0C,
            ins: cmd.ins,
            p1: cmd.p1,
            p2: cmd.p2,
            data,
            le,
        })
    }

    /// Card side: the protected form of a response (the counter advances once).
    pub fn protect_response(&mut self, resp: &Response) -> Response {
        let ssc = self.next_ssc();
        let mut body = self.data_object(&ssc, &resp.data, false);
        body.extend_from_slice(&tlv::encode(0x99, &resp.sw.to_be_bytes()));
        let mut mac_input = ssc.clone();
        mac_input.extend_from_slice(&body);
        let mac = self.cipher.mac(&self.pad(&mac_input));
        body.extend_from_slice(&tlv::encode(0x8E, &mac));
        Response::new(body, 0x9000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tests::{h, k16};

    fn pair() -> (SecureMessaging, SecureMessaging) {
        let make = || {
            SecureMessaging::new(
                Box::new(Tdes {
                    ks_enc: k16("979EC13B1CBFE9DCD01AB0FED307EAE5"),
                    ks_mac: k16("F1CB1F1FB5ADF208806B89DC579DC1F8"),
                }),
                &h("887022120C06C226"),
            )
        };
        (make(), make())
    }

    /// Doc 9303-11 Appendix D.4: the three protected exchanges, byte for byte, from both sides.
    #[test]
    fn transcript_matches_the_icao_worked_example() {
        let (mut reader, mut card) = pair();
        let exchanges = [
            (
                Command::new(0, 0xA4, 0x02, 0x0C).with_data(h("011E")),
                "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800",
                Response::status(0x9000),
                "990290008E08FA855A5D4C50A8ED9000",
            ),
            (
                Command::new(0, 0xB0, 0, 0).with_le(4),
                "0CB000000D9701048E08ED6705417E96BA5500",
                Response::new(h("60145F01"), 0x9000),
                "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000",
            ),
            (
                Command::new(0, 0xB0, 0, 4).with_le(0x12),
                "0CB000040D9701128E082EA28A70F3C7B53500",
                Response::new(h("04303130365F36063034303030305C026175"), 0x9000),
                "871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000",
            ),
        ];
        for (plain, wire, answer, wire_answer) in exchanges {
            let protected = reader.protect(&plain);
            assert_eq!(protected.encode(), h(wire), "{plain}");
            let on_card = card
                .unprotect_command(&Command::parse(&h(wire)).unwrap())
                .unwrap();
            assert_eq!(on_card, plain);
            let sent = card.protect_response(&answer);
            assert_eq!(sent.encode(), h(wire_answer), "{plain}");
            let got = reader
                .unprotect(&Response::parse(&h(wire_answer)).unwrap())
                .unwrap();
            assert_eq!(got, answer);
        }
        assert_eq!(reader.ssc(), h("887022120C06C22C"));
        assert_eq!(card.ssc(), h("887022120C06C22C"));
    }

    #[test]
    fn tampering_and_plain_answers_are_refused() {
        let (mut reader, mut card) = pair();
        reader.protect(&Command::new(0, 0xB0, 0, 0).with_le(4));
        card.next_ssc();
        let mut resp = card.protect_response(&Response::new(h("60145F01"), 0x9000));
        resp.data[4] ^= 1;
        assert_eq!(reader.unprotect(&resp), Err(SmError::BadMac("response")));
        assert_eq!(
            reader.unprotect(&Response::status(0x6988)),
            Err(SmError::Plain { sw: 0x6988 })
        );
        for junk in [h("99029000"), h("8E08AAAAAAAAAAAAAAAA"), h("87"), h("7F")] {
            assert!(reader.unprotect(&Response::new(junk, 0x9000)).is_err());
        }
    }

    #[test]
    fn counter_wraps_within_the_block() {
        let mut sm = SecureMessaging::new(
            Box::new(Tdes {
                ks_enc: [1; 16],
                ks_mac: [2; 16],
            }),
            &[0xFF; 8],
        );
        assert_eq!(sm.next_ssc(), vec![0; 8]);
    }
}
