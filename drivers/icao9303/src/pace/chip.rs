//! The chip side of PACE for the emulator: MSE:Set AT and the four GENERAL AUTHENTICATE steps,
//! answering with the status words chips use (6A80 for parameters it does not offer, 6985 out
//! of order, 6300 when the terminal's token does not verify: a wrong password). With the chip
//! authentication mapping the last answer also carries `8A`, `CA_IC = SK_Map,IC · SK_IC⁻¹`
//! encrypted, from the chip authentication key [`PaceChip::with_cam_key`] gives it.

use crate::apdu::{self, Command};
use crate::crypto::{self, KeyUse};
use crate::security_infos::Mapping;
use crate::sm::SecureMessaging;
use crate::tlv;

use super::{PaceParams, dynamic_data, dynamic_value, public_key_object};

/// Fixed chip values (reproducing the ICAO worked example); random when `None`.
#[derive(Debug, Clone, Default)]
pub struct ChipPaceFixed {
    pub nonce: Option<Vec<u8>>,
    pub sk_map: Option<Vec<u8>>,
    pub sk_eph: Option<Vec<u8>>,
}

enum Step {
    /// Waiting for MSE:Set AT.
    Idle,
    /// Set AT done with this password key; the nonce is next.
    Set {
        password: Vec<u8>,
    },
    NonceSent {
        s: Vec<u8>,
    },
    Mapped {
        g_hat: Vec<u8>,
        sk_map: Vec<u8>,
    },
    Agreed {
        sk_map: Vec<u8>,
        pk_ifd: Vec<u8>,
        pk_ic: Vec<u8>,
        ks_enc: Vec<u8>,
        ks_mac: Vec<u8>,
    },
}

/// One chip's PACE state.
pub struct PaceChip {
    params: PaceParams,
    /// Password keys by reference: 1 MRZ, 2 CAN.
    passwords: Vec<(u8, Vec<u8>)>,
    fixed: ChipPaceFixed,
    step: Step,
    /// PACE-CAM: the chip's static chip authentication private key `SK_IC`.
    cam_key: Option<Vec<u8>>,
}

/// What a GENERAL AUTHENTICATE produced.
pub enum ChipAnswer {
    /// Dynamic authentication data to send back with 9000.
    Data(Vec<u8>),
    /// The last step: the token and the session that starts now.
    Done(Vec<u8>, SecureMessaging),
}

impl PaceChip {
    pub fn new(params: PaceParams, passwords: Vec<(u8, Vec<u8>)>, fixed: ChipPaceFixed) -> Self {
        PaceChip {
            params,
            passwords,
            fixed,
            step: Step::Idle,
            cam_key: None,
        }
    }

    /// The chip authentication key PACE-CAM answers with (a clone's is not DG14's).
    pub fn with_cam_key(mut self, sk_ic: Vec<u8>) -> Self {
        self.cam_key = Some(sk_ic);
        self
    }

    /// Power-on or reset: no PACE under way.
    pub fn reset(&mut self) {
        self.step = Step::Idle;
    }

    /// MSE:Set AT (`00 22 C1 A4`): protocol OID, password reference, optional parameter id.
    pub fn set_at(&mut self, cmd: &Command) -> Result<(), u16> {
        self.step = Step::Idle;
        let objects = tlv::parse_all(&cmd.data).map_err(|_| apdu::SW_INCORRECT_DATA)?;
        let value = |tag: u32| objects.iter().find(|o| o.tag == tag).map(|o| o.value);
        if value(0x80) != Some(self.params.oid.as_slice()) {
            return Err(apdu::SW_INCORRECT_DATA);
        }
        if let Some(id) = value(0x84)
            && id != [self.params.curve.parameter_id()]
        {
            return Err(apdu::SW_INCORRECT_DATA);
        }
        let reference = match value(0x83) {
            Some([r]) => *r,
            _ => return Err(apdu::SW_INCORRECT_DATA),
        };
        let Some((_, password)) = self.passwords.iter().find(|(r, _)| *r == reference) else {
            return Err(apdu::SW_REFERENCE_DATA_NOT_FOUND);
        };
        self.step = Step::Set {
            password: password.clone(),
        };
        Ok(())
    }

    /// One GENERAL AUTHENTICATE; any error ends the attempt (a new Set AT starts again).
    pub fn general_authenticate(&mut self, cmd: &Command) -> Result<ChipAnswer, u16> {
        let step = std::mem::replace(&mut self.step, Step::Idle);
        let last = cmd.cla & 0x10 == 0;
        let cipher = self.params.protocol.cipher;
        let curve = self.params.curve;
        let value = |tag| dynamic_value(&cmd.data, tag).map_err(|_| apdu::SW_INCORRECT_DATA);
        match step {
            Step::Set { password } if !last => {
                if tlv::expect(&cmd.data, 0x7C).map(|o| o.value.is_empty()) != Ok(true) {
                    return Err(apdu::SW_INCORRECT_DATA);
                }
                let s = self
                    .fixed
                    .nonce
                    .clone()
                    .unwrap_or_else(|| crypto::random::<16>().to_vec());
                let k_pi = cipher.kdf(&password, KeyUse::Pace);
                let z = cipher.encrypt_zero_iv(&k_pi, &s);
                self.step = Step::NonceSent { s };
                Ok(ChipAnswer::Data(dynamic_data(0x80, &z)))
            }
            Step::NonceSent { s } if !last => {
                let pk_map_ifd = value(0x81)?;
                let sk = self
                    .fixed
                    .sk_map
                    .clone()
                    .unwrap_or_else(|| curve.random_scalar());
                let pk_map_ic = curve
                    .mul(&sk, &curve.generator(), "G")
                    .map_err(|_| apdu::SW_INCORRECT_DATA)?;
                if pk_map_ifd == pk_map_ic {
                    return Err(apdu::SW_INCORRECT_DATA);
                }
                let h = curve
                    .mul(&sk, &pk_map_ifd, "PK_Map,IFD")
                    .map_err(|_| apdu::SW_INCORRECT_DATA)?;
                let g_hat = curve
                    .mul_base_add(&s, &h, "H")
                    .map_err(|_| apdu::SW_INCORRECT_DATA)?;
                self.step = Step::Mapped { g_hat, sk_map: sk };
                Ok(ChipAnswer::Data(dynamic_data(0x82, &pk_map_ic)))
            }
            Step::Mapped { g_hat, sk_map } if !last => {
                let pk_ifd = value(0x83)?;
                let sk = self
                    .fixed
                    .sk_eph
                    .clone()
                    .unwrap_or_else(|| curve.random_scalar());
                let pk_ic = curve
                    .mul(&sk, &g_hat, "G'")
                    .map_err(|_| apdu::SW_INCORRECT_DATA)?;
                // §4.4.3.4: the chip checks that the terminal's key differs from its own.
                if pk_ifd == pk_ic {
                    return Err(apdu::SW_INCORRECT_DATA);
                }
                let shared = curve
                    .mul(&sk, &pk_ifd, "PK_IFD")
                    .map_err(|_| apdu::SW_INCORRECT_DATA)?;
                let shared = curve.x_of(&shared);
                self.step = Step::Agreed {
                    sk_map,
                    pk_ifd,
                    pk_ic: pk_ic.clone(),
                    ks_enc: cipher.kdf(&shared, KeyUse::Enc),
                    ks_mac: cipher.kdf(&shared, KeyUse::Mac),
                };
                Ok(ChipAnswer::Data(dynamic_data(0x84, &pk_ic)))
            }
            Step::Agreed {
                sk_map,
                pk_ifd,
                pk_ic,
                ks_enc,
                ks_mac,
            } if last => {
                let token = value(0x85)?;
                let expected =
                    cipher.token_mac(&ks_mac, &public_key_object(&self.params.oid, &pk_ic));
                if !crypto::ct_eq(&token, &expected) {
                    return Err(apdu::SW_AUTH_FAILED);
                }
                let answer =
                    cipher.token_mac(&ks_mac, &public_key_object(&self.params.oid, &pk_ifd));
                let mut data = tlv::encode(0x86, &answer);
                if self.params.protocol.mapping == Mapping::ChipAuthentication {
                    let sk_ic = self.cam_key.as_ref().ok_or(apdu::SW_CONDITIONS)?;
                    let ca_ic = curve
                        .div_scalar(&sk_map, sk_ic)
                        .map_err(|_| apdu::SW_CONDITIONS)?;
                    let a_ic = cipher
                        .cam_encrypt(&ks_enc, &ca_ic)
                        .ok_or(apdu::SW_CONDITIONS)?;
                    data.extend_from_slice(&tlv::encode(0x8A, &a_ic));
                }
                let sm = SecureMessaging::new(
                    cipher.sm(&ks_enc, &ks_mac),
                    &vec![0; cipher.block_size()],
                );
                Ok(ChipAnswer::Done(tlv::encode(0x7C, &data), sm))
            }
            _ => Err(apdu::SW_CONDITIONS),
        }
    }
}
