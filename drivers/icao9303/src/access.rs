//! Access control: how a reader opens secure messaging with a chip. BAC here (both sides);
//! PACE in [`crate::pace`], which yields the same [`SecureMessaging`] with the negotiated
//! [`crate::sm::SmCipher`].

use crate::apdu::{self, Command, Response};
use crate::crypto::{self, Key16, KeyUse};
use crate::mrz::MrzKey;
use crate::sm::{SecureMessaging, Tdes};

/// The access protocol a document was read with (recorded with every read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessProtocol {
    /// Basic Access Control (Doc 9303-11 §4.3), 3DES secure messaging.
    Bac,
    /// PACE (Doc 9303-11 §4.4), 3DES or AES secure messaging.
    Pace,
}

impl AccessProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessProtocol::Bac => "BAC",
            AccessProtocol::Pace => "PACE",
        }
    }
}

/// Why access was refused, in terms a clerk can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error(
        "authentication failed (status {sw:04X}): the document number, birth date or expiry date does not match the chip; check the MRZ"
    )]
    WrongKey { sw: u16 },
    #[error(
        "authentication failed (status {sw:04X}): the CAN does not match the chip; check the six digits printed on the data page"
    )]
    WrongCan { sw: u16 },
    #[error(
        "the chip refuses BAC (status {sw:04X}), as PACE-only chips do, and offers no PACE countersign supports ({offered})"
    )]
    PaceOnly { sw: u16, offered: String },
    #[error("the chip refused {step} with status {sw:04X} ({})", apdu::sw_text(*sw))]
    Refused { step: &'static str, sw: u16 },
    #[error("the chip's BAC answer is malformed: {0}")]
    Malformed(&'static str),
    #[error("PACE failed: {0}")]
    PaceFailed(String),
    #[error(
        "the chip's answer does not authenticate (MAC, token or challenge mismatch): not the chip the password belongs to"
    )]
    ChipNotAuthenticated,
}

/// Fixed terminal values for BAC (reproducing Doc 9303-11 Appendix D byte for byte).
#[derive(Debug, Clone, Copy)]
pub struct BacTerminal {
    pub rnd_ifd: [u8; 8],
    pub k_ifd: Key16,
}

impl BacTerminal {
    pub fn random() -> Self {
        BacTerminal {
            rnd_ifd: crypto::random(),
            k_ifd: crypto::random(),
        }
    }
}

/// KENC and KMAC from the MRZ.
pub fn bac_keys(key: &MrzKey) -> (Key16, Key16) {
    let seed = crypto::key_seed(&key.mrz_information());
    (
        crypto::kdf_3des(&seed, KeyUse::Enc),
        crypto::kdf_3des(&seed, KeyUse::Mac),
    )
}

/// The session after a BAC handshake: keys from `K.IFD ⊕ K.ICC`, SSC from the challenges.
pub fn bac_session(
    k_ifd: &Key16,
    k_icc: &Key16,
    rnd_icc: &[u8; 8],
    rnd_ifd: &[u8; 8],
) -> SecureMessaging {
    let mut seed = [0u8; 16];
    for i in 0..16 {
        seed[i] = k_ifd[i] ^ k_icc[i];
    }
    let mut ssc = [0u8; 8];
    ssc[..4].copy_from_slice(&rnd_icc[4..]);
    ssc[4..].copy_from_slice(&rnd_ifd[4..]);
    SecureMessaging::new(
        Box::new(Tdes {
            ks_enc: crypto::kdf_3des(&seed, KeyUse::Enc),
            ks_mac: crypto::kdf_3des(&seed, KeyUse::Mac),
        }),
        &ssc,
    )
}

/// Status words with which a chip that is PACE-only refuses BAC's commands.
fn refuses_bac(sw: u16) -> bool {
    matches!(
        sw,
        apdu::SW_REFERENCE_DATA_NOT_FOUND
            | apdu::SW_INS_NOT_SUPPORTED
            | apdu::SW_FUNCTION_NOT_SUPPORTED
            | apdu::SW_CONDITIONS
            | apdu::SW_CLA_NOT_SUPPORTED
    )
}

/// Runs BAC through `transmit` (plain APDUs in, plain responses out). `pace_offered` is what
/// EF.CardAccess advertised (PACE this reader could not run): a refusal of BAC by such a chip
/// is reported as PACE-only rather than as a wrong MRZ.
pub fn bac<E>(
    transmit: &mut dyn FnMut(&Command) -> Result<Response, E>,
    key: &MrzKey,
    terminal: BacTerminal,
    pace_offered: Option<&str>,
) -> Result<Result<SecureMessaging, AccessError>, E> {
    let pace_only = |sw: u16| AccessError::PaceOnly {
        sw,
        offered: pace_offered
            .unwrap_or("EF.CardAccess lists no PACE")
            .to_string(),
    };
    let (kenc, kmac) = bac_keys(key);
    let challenge = transmit(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8))?;
    if !challenge.is_ok() {
        return Ok(Err(
            if refuses_bac(challenge.sw) || pace_offered.is_some() {
                pace_only(challenge.sw)
            } else {
                AccessError::Refused {
                    step: "GET CHALLENGE",
                    sw: challenge.sw,
                }
            },
        ));
    }
    let Ok(rnd_icc) = <[u8; 8]>::try_from(challenge.data.as_slice()) else {
        return Ok(Err(AccessError::Malformed("challenge is not 8 bytes")));
    };
    let mut s = Vec::with_capacity(32);
    s.extend_from_slice(&terminal.rnd_ifd);
    s.extend_from_slice(&rnd_icc);
    s.extend_from_slice(&terminal.k_ifd);
    let e_ifd = crypto::tdes_cbc_encrypt(&kenc, [0; 8], &s);
    let m_ifd = crypto::retail_mac(&kmac, &crypto::pad(&e_ifd, 8));
    let mut data = e_ifd;
    data.extend_from_slice(&m_ifd);
    let answer = transmit(
        &Command::new(0x00, 0x82, 0x00, 0x00)
            .with_data(data)
            .with_le(40),
    )?;
    if !answer.is_ok() {
        let sw = answer.sw;
        return Ok(Err(match sw {
            apdu::SW_AUTH_FAILED | apdu::SW_SECURITY_NOT_SATISFIED | 0x6300..=0x63FF => {
                AccessError::WrongKey { sw }
            }
            _ if refuses_bac(sw) => pace_only(sw),
            _ => AccessError::Refused {
                step: "EXTERNAL AUTHENTICATE",
                sw,
            },
        }));
    }
    if answer.data.len() != 40 {
        return Ok(Err(AccessError::Malformed(
            "EXTERNAL AUTHENTICATE answer is not 40 bytes",
        )));
    }
    let (e_icc, m_icc) = answer.data.split_at(32);
    if !crypto::ct_eq(m_icc, &crypto::retail_mac(&kmac, &crypto::pad(e_icc, 8))) {
        return Ok(Err(AccessError::ChipNotAuthenticated));
    }
    let r = crypto::tdes_cbc_decrypt(&kenc, [0; 8], e_icc);
    if r[..8] != rnd_icc || r[8..16] != terminal.rnd_ifd {
        return Ok(Err(AccessError::ChipNotAuthenticated));
    }
    let mut k_icc = [0u8; 16];
    k_icc.copy_from_slice(&r[16..32]);
    Ok(Ok(bac_session(
        &terminal.k_ifd,
        &k_icc,
        &rnd_icc,
        &terminal.rnd_ifd,
    )))
}

/// The chip side of BAC's EXTERNAL AUTHENTICATE: checks the terminal's cryptogram and returns
/// the answer and the session, or the status word to refuse with.
pub fn bac_chip_answer(
    key: &MrzKey,
    rnd_icc: &[u8; 8],
    k_icc: &Key16,
    cmd_data: &[u8],
) -> Result<(Vec<u8>, SecureMessaging), u16> {
    let (kenc, kmac) = bac_keys(key);
    if cmd_data.len() != 40 {
        return Err(apdu::SW_WRONG_LENGTH);
    }
    let (e_ifd, m_ifd) = cmd_data.split_at(32);
    if !crypto::ct_eq(m_ifd, &crypto::retail_mac(&kmac, &crypto::pad(e_ifd, 8))) {
        return Err(apdu::SW_AUTH_FAILED);
    }
    let s = crypto::tdes_cbc_decrypt(&kenc, [0; 8], e_ifd);
    if s[8..16] != rnd_icc[..] {
        return Err(apdu::SW_AUTH_FAILED);
    }
    let mut rnd_ifd = [0u8; 8];
    rnd_ifd.copy_from_slice(&s[..8]);
    let mut k_ifd = [0u8; 16];
    k_ifd.copy_from_slice(&s[16..32]);
    let mut r = Vec::with_capacity(32);
    r.extend_from_slice(rnd_icc);
    r.extend_from_slice(&rnd_ifd);
    r.extend_from_slice(k_icc);
    let e_icc = crypto::tdes_cbc_encrypt(&kenc, [0; 8], &r);
    let m_icc = crypto::retail_mac(&kmac, &crypto::pad(&e_icc, 8));
    let mut answer = e_icc;
    answer.extend_from_slice(&m_icc);
    Ok((answer, bac_session(&k_ifd, k_icc, rnd_icc, &rnd_ifd)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tests::{h, k16};

    fn example_key() -> MrzKey {
        MrzKey::new("L898902C", "690806", "940623").unwrap()
    }

    /// Doc 9303-11 Appendix D.3, both sides: the terminal's EXTERNAL AUTHENTICATE data, the
    /// chip's answer, and the session they agree on.
    #[test]
    fn bac_matches_the_icao_worked_example() {
        let rnd_icc: [u8; 8] = h("4608F91988702212").try_into().unwrap();
        let k_icc = k16("0B4F80323EB3191CB04970CB4052790B");
        let terminal = BacTerminal {
            rnd_ifd: h("781723860C06C226").try_into().unwrap(),
            k_ifd: k16("0B795240CB7049B01C19B33E32804F0B"),
        };
        let mut chip_session = None;
        let mut sent = Vec::new();
        let mut transmit = |cmd: &Command| -> Result<Response, ()> {
            sent.push(cmd.encode());
            match cmd.ins {
                0x84 => Ok(Response::new(rnd_icc.to_vec(), 0x9000)),
                0x82 => {
                    let (answer, session) =
                        bac_chip_answer(&example_key(), &rnd_icc, &k_icc, &cmd.data).unwrap();
                    chip_session = Some(session);
                    Ok(Response::new(answer, 0x9000))
                }
                _ => Ok(Response::status(0x6D00)),
            }
        };
        let session = bac(&mut transmit, &example_key(), terminal, None)
            .unwrap()
            .unwrap();
        assert_eq!(sent[0], h("0084000008"));
        assert_eq!(
            sent[1],
            h(
                "0082000028 72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2 5F1448EEA8AD90A7 28"
            )
        );
        assert_eq!(session.ssc(), h("887022120C06C226"));
        assert_eq!(chip_session.unwrap().ssc(), h("887022120C06C226"));
        // The chip's answer of the worked example.
        let (answer, _) =
            bac_chip_answer(&example_key(), &rnd_icc, &k_icc, &sent[1][5..45]).unwrap();
        assert_eq!(
            answer,
            h("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F 2F2D235D074D7449")
        );
    }

    #[test]
    fn wrong_mrz_and_pace_only_are_told_apart() {
        let wrong = MrzKey::new("L898902C", "690806", "940624").unwrap();
        let rnd_icc = [1u8; 8];
        let mut chip = |cmd: &Command| -> Result<Response, ()> {
            Ok(match cmd.ins {
                0x84 => Response::new(rnd_icc.to_vec(), 0x9000),
                _ => match bac_chip_answer(&example_key(), &rnd_icc, &[2; 16], &cmd.data) {
                    Ok((a, _)) => Response::new(a, 0x9000),
                    Err(sw) => Response::status(sw),
                },
            })
        };
        let e = bac(&mut chip, &wrong, BacTerminal::random(), None)
            .unwrap()
            .err()
            .unwrap();
        assert_eq!(e, AccessError::WrongKey { sw: 0x6300 });
        assert!(e.to_string().contains("check the MRZ"));
        let mut pace_only = |_: &Command| -> Result<Response, ()> { Ok(Response::status(0x6A88)) };
        let e = bac(
            &mut pace_only,
            &wrong,
            BacTerminal::random(),
            Some("ECDH-IM AES-256 on brainpoolP384r1"),
        )
        .unwrap()
        .err()
        .unwrap();
        assert_eq!(
            e,
            AccessError::PaceOnly {
                sw: 0x6A88,
                offered: "ECDH-IM AES-256 on brainpoolP384r1".into()
            }
        );
        assert!(e.to_string().contains("PACE"));
    }
}
