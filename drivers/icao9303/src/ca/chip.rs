//! The chip side of chip authentication for the emulator: MSE:Set KAT (3DES), or MSE:Set AT and
//! GENERAL AUTHENTICATE (AES), all received under the current secure messaging. The answer goes
//! back under the old keys; the caller then switches to the session this returns. Status words as
//! chips use them: `6A80` for a malformed or off-curve key or a protocol it does not offer, `6A88`
//! for a key reference it does not hold, `6985` for a GENERAL AUTHENTICATE without its MSE.

use crate::apdu::{self, Command};
use crate::cipher::Cipher;
use crate::crypto::KeyUse;
use crate::ec::Curve;
use crate::pace::dynamic_value;
use crate::sm::SecureMessaging;
use crate::tlv;

use super::{CaParams, key_reference};

/// One chip's chip authentication key and state.
pub struct CaChip {
    pub curve: Curve,
    pub cipher: Cipher,
    pub key_id: Option<u32>,
    /// The private key the chip holds. A genuine chip's matches DG14's public key; a clone's
    /// does not (`--cloned-chip`).
    private: Vec<u8>,
    /// MSE:Set AT accepted; GENERAL AUTHENTICATE is next.
    set: bool,
}

impl CaChip {
    pub fn new(curve: Curve, cipher: Cipher, key_id: Option<u32>, private: Vec<u8>) -> Self {
        CaChip {
            curve,
            cipher,
            key_id,
            private,
            set: false,
        }
    }

    /// Power-on, reset, or a broken session: no chip authentication under way.
    pub fn reset(&mut self) {
        self.set = false;
    }

    fn check_key_reference(&self, value: Option<&[u8]>) -> Result<(), u16> {
        match (value, self.key_id) {
            (None, _) => Ok(()),
            (Some(v), Some(id)) if tlv::encode(0x84, v) == key_reference(id) => Ok(()),
            (Some(_), _) => Err(apdu::SW_REFERENCE_DATA_NOT_FOUND),
        }
    }

    /// The session of `K = x(SK_chip · PK_IFD)`, SSC 0.
    fn session(&self, pk_ifd: &[u8]) -> Result<SecureMessaging, u16> {
        let k = self
            .curve
            .mul(&self.private, pk_ifd, "PK_IFD")
            .map_err(|_| apdu::SW_INCORRECT_DATA)?;
        let k = self.curve.x_of(&k);
        Ok(SecureMessaging::new(
            self.cipher.sm(
                &self.cipher.kdf(&k, KeyUse::Enc),
                &self.cipher.kdf(&k, KeyUse::Mac),
            ),
            &vec![0; self.cipher.block_size()],
        ))
    }

    /// MSE:Set KAT (`22 41 A6`): `91` the terminal's ephemeral key, `84` the key reference.
    /// Only for 3DES, as Doc 9303-11 §6.2.4 has it.
    pub fn set_kat(&mut self, cmd: &Command) -> Result<SecureMessaging, u16> {
        self.set = false;
        if self.cipher != Cipher::Tdes {
            return Err(apdu::SW_INCORRECT_DATA);
        }
        let objects = tlv::parse_all(&cmd.data).map_err(|_| apdu::SW_INCORRECT_DATA)?;
        let value = |tag: u32| objects.iter().find(|o| o.tag == tag).map(|o| o.value);
        self.check_key_reference(value(0x84))?;
        let pk = value(0x91).ok_or(apdu::SW_INCORRECT_DATA)?;
        self.session(pk)
    }

    /// MSE:Set AT (`22 41 A4`): `80` the protocol OID, `84` the key reference. Only for AES.
    pub fn set_at(&mut self, cmd: &Command) -> Result<(), u16> {
        self.set = false;
        let objects = tlv::parse_all(&cmd.data).map_err(|_| apdu::SW_INCORRECT_DATA)?;
        let value = |tag: u32| objects.iter().find(|o| o.tag == tag).map(|o| o.value);
        if self.cipher == Cipher::Tdes
            || value(0x80) != Some(CaParams::oid_for(self.cipher).as_slice())
        {
            return Err(apdu::SW_INCORRECT_DATA);
        }
        self.check_key_reference(value(0x84))?;
        self.set = true;
        Ok(())
    }

    /// GENERAL AUTHENTICATE (`86 00 00`, `7C { 80 PK_IFD }`): the empty `7C 00` answer and the
    /// session that starts after it.
    pub fn general_authenticate(
        &mut self,
        cmd: &Command,
    ) -> Result<(Vec<u8>, SecureMessaging), u16> {
        if !std::mem::take(&mut self.set) {
            return Err(apdu::SW_CONDITIONS);
        }
        let pk = dynamic_value(&cmd.data, 0x80).map_err(|_| apdu::SW_INCORRECT_DATA)?;
        let sm = self.session(&pk)?;
        Ok((tlv::encode(0x7C, &[]), sm))
    }
}
