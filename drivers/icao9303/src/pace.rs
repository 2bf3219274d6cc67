//! PACE (Doc 9303-11 §4.4, BSI TR-03110): the terminal side, and the chip side in [`chip`] for
//! the emulator. ECDH with the generic mapping on the curves of [`crate::ec`]; 3DES or AES
//! secure messaging as the PACEInfo says; the MRZ or the CAN as password.
//!
//! The exchange: MSE:Set AT (`00 22 C1 A4`: protocol OID, password reference, parameter id when
//! the chip offers several), then four chained GENERAL AUTHENTICATEs: the encrypted nonce `z`
//! (`s = D(Kπ, z)`), the mapping keys (`G' = s·G + SK_Map,IFD·PK_Map,IC`), the ephemeral keys
//! on `G'` (shared secret `K = x(SK_IFD·PK_IC)`, `KSenc/KSmac = KDF(K, 1/2)`) and the tokens
//! (`T = MAC(KSmac, 7F49{06 OID, 86 PK of the other side})`). Secure messaging then starts
//! with SSC = 0.
//!
//! The chip authentication mapping (PACE-CAM, §4.4.3.5) is the generic mapping whose last answer
//! also carries `8A`, the Encrypted Chip Authentication Data: `CA_IC = SK_Map,IC · SK_IC⁻¹`
//! encrypted under `KSenc` ([`Cipher::cam_encrypt`]). It is returned in [`CamProof`]; the chip is
//! authenticated once DG14's key `PK_IC` (vouched for by EF.SOD) gives `CA_IC · PK_IC =
//! PK_Map,IC` ([`CamProof::verify`]). PACE-IM is not implemented.

pub mod chip;

use sha1::{Digest, Sha1};

use crate::access::AccessError;
use crate::apdu::{self, Command, Response};
use crate::cipher::Cipher;
use crate::crypto::{self, KeyUse};
use crate::ec::{Curve, EcError};
use crate::mrz::MrzKey;
use crate::security_infos::{KeyAgreement, Mapping, PaceInfo, PaceProtocol, SecurityInfos};
use crate::sm::SecureMessaging;
use crate::tlv;

/// The password PACE runs with.
#[derive(Clone)]
pub enum Password {
    /// The MRZ: `K = SHA-1(MRZ_information)`, reference 1.
    Mrz(MrzKey),
    /// The card access number printed on the data page: its ASCII digits, reference 2.
    Can(String),
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Passwords are personal data.
        write!(f, "Password({})", self.name())
    }
}

impl Password {
    /// `83` in MSE:Set AT: 1 MRZ, 2 CAN.
    pub fn reference(&self) -> u8 {
        match self {
            Password::Mrz(_) => 1,
            Password::Can(_) => 2,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Password::Mrz(_) => "MRZ",
            Password::Can(_) => "CAN",
        }
    }

    /// The password's key `K` before `Kπ = KDF(K, 3)`.
    pub fn key(&self) -> Vec<u8> {
        match self {
            Password::Mrz(key) => Sha1::digest(key.mrz_information().as_bytes()).to_vec(),
            Password::Can(can) => can.as_bytes().to_vec(),
        }
    }
}

/// A CAN as the case system or the clerk gives it: six digits (spaces ignored).
pub fn parse_can(text: &str) -> Result<String, String> {
    let can: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if can.len() == 6 && can.bytes().all(|b| b.is_ascii_digit()) {
        Ok(can)
    } else {
        Err("a CAN is six digits, as printed on the data page".into())
    }
}

/// The parameters chosen from EF.CardAccess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceParams {
    pub protocol: PaceProtocol,
    pub curve: Curve,
    /// The protocol OID as offered.
    pub oid: Vec<u8>,
    /// Send the parameter id (`84`): required when the chip offers more than one PACEInfo.
    pub send_parameter_id: bool,
}

impl PaceParams {
    /// For the record: `ECDH-GM brainpoolP256r1 AES-128`.
    pub fn describe(&self) -> String {
        let name = self.protocol.name();
        let (kind, cipher) = name.split_once(' ').unwrap_or((&name, ""));
        format!("{kind} {} {cipher}", self.curve.name())
    }

    pub fn new(protocol: PaceProtocol, curve: Curve) -> PaceParams {
        PaceParams {
            oid: protocol.oid(),
            protocol,
            curve,
            send_parameter_id: false,
        }
    }
}

/// What EF.CardAccess offers, as far as this reader is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// No PACEInfo: BAC.
    None,
    /// A PACEInfo this reader implements.
    Supported(PaceParams),
    /// PACE offered only with parameters not implemented (DH, integrated mapping, other curves):
    /// what was offered, in words.
    Unsupported(String),
}

/// Picks the PACEInfo to run: ECDH with the chip authentication mapping (AES only, as §4.4.3.5
/// defines it) before the generic mapping, on a supported curve, AES before 3DES, then the order
/// of EF.CardAccess.
pub fn choose(infos: &SecurityInfos) -> Offer {
    if infos.pace.is_empty() {
        return Offer::None;
    }
    let usable = |p: &PaceInfo| -> Option<(PaceProtocol, Curve)> {
        let protocol = p.protocol?;
        let curve = Curve::from_parameter_id(p.parameter_id?)?;
        let mapping = match protocol.mapping {
            Mapping::Generic => true,
            Mapping::ChipAuthentication => protocol.cipher != Cipher::Tdes,
            Mapping::Integrated => false,
        };
        (protocol.agreement == KeyAgreement::Ecdh && mapping).then_some((protocol, curve))
    };
    let best = infos
        .pace
        .iter()
        .filter_map(|p| usable(p).map(|u| (p, u)))
        .min_by_key(|(_, (protocol, _))| {
            (
                u8::from(protocol.mapping != Mapping::ChipAuthentication),
                u8::from(protocol.cipher == Cipher::Tdes),
            )
        });
    match best {
        Some((info, (protocol, curve))) => Offer::Supported(PaceParams {
            protocol,
            curve,
            oid: info.oid.clone(),
            send_parameter_id: infos.pace.len() > 1,
        }),
        None => Offer::Unsupported(
            infos
                .pace
                .iter()
                .map(|p| {
                    let what = p
                        .protocol
                        .map_or_else(|| crate::sod::oid::dotted(&p.oid), |pr| pr.name());
                    match p.parameter_id {
                        Some(id) => match Curve::from_parameter_id(id) {
                            Some(c) => format!("{what} on {}", c.name()),
                            None => format!("{what} with domain parameters {id}"),
                        },
                        None => format!("{what} with explicit domain parameters"),
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

/// Fixed terminal keys (reproducing the ICAO worked example); random when `None`.
#[derive(Debug, Clone, Default)]
pub struct PaceTerminal {
    pub sk_map: Option<Vec<u8>>,
    pub sk_eph: Option<Vec<u8>>,
}

/// A finished PACE: the secure messaging session and what was used.
pub struct PaceSession {
    pub sm: SecureMessaging,
    pub params: PaceParams,
    /// The chip's ephemeral public key (`PK_IC`).
    pub chip_key: Vec<u8>,
    /// PACE-CAM: what proves the chip holds DG14's private key, once DG14 is read.
    pub cam: Option<CamProof>,
}

/// PACE-CAM's proof, checked against DG14's chip authentication key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CamProof {
    pub curve: Curve,
    /// The decrypted Chip Authentication Data `CA_IC`.
    pub ca_ic: Vec<u8>,
    /// The chip's mapping public key `PK_Map,IC` (step 2).
    pub pk_map_ic: Vec<u8>,
}

impl CamProof {
    /// Whether `CA_IC · PK_IC = PK_Map,IC` for the static key `pk_ic` (a clone without the
    /// private key cannot make it hold).
    pub fn verify(&self, pk_ic: &[u8]) -> Result<bool, EcError> {
        Ok(self
            .curve
            .mul(&self.ca_ic, pk_ic, "DG14's chip authentication key")?
            == self.pk_map_ic)
    }
}

/// The public key data object the tokens are computed over: `7F49 { 06 OID, 86 point }`.
pub fn public_key_object(oid: &[u8], point: &[u8]) -> Vec<u8> {
    tlv::encode(
        0x7F49,
        &[tlv::encode(0x06, oid), tlv::encode(0x86, point)].concat(),
    )
}

/// `7C { tag value }`: dynamic authentication data.
pub fn dynamic_data(tag: u32, value: &[u8]) -> Vec<u8> {
    if value.is_empty() && tag == 0 {
        return tlv::encode(0x7C, &[]);
    }
    tlv::encode(0x7C, &tlv::encode(tag, value))
}

/// The value of `tag` inside a `7C` answer.
pub fn dynamic_value(data: &[u8], tag: u32) -> Result<Vec<u8>, String> {
    let outer = tlv::expect(data, 0x7C).map_err(|e| format!("not 7C dynamic data: {e}"))?;
    match tlv::find(outer.value, tag) {
        Ok(Some(o)) => Ok(o.value.to_vec()),
        Ok(None) => Err(format!("7C without data object {tag:02X}")),
        Err(e) => Err(format!("7C content: {e}")),
    }
}

fn general_authenticate(last: bool, tag: u32, value: &[u8]) -> Command {
    Command::new(if last { 0x00 } else { 0x10 }, 0x86, 0x00, 0x00)
        .with_data(dynamic_data(tag, value))
        .with_le(256)
}

fn failed(detail: String) -> AccessError {
    AccessError::PaceFailed(detail)
}

fn crypto_failed(step: &str, e: EcError) -> AccessError {
    failed(format!("{step}: {e}"))
}

/// Runs PACE through `transmit` (plain APDUs in, plain responses out).
pub fn pace<E>(
    transmit: &mut dyn FnMut(&Command) -> Result<Response, E>,
    password: &Password,
    params: &PaceParams,
    terminal: &PaceTerminal,
) -> Result<Result<PaceSession, AccessError>, E> {
    let cipher = params.protocol.cipher;
    let curve = params.curve;

    let mut mse = tlv::encode(0x80, &params.oid);
    mse.extend_from_slice(&tlv::encode(0x83, &[password.reference()]));
    if params.send_parameter_id {
        mse.extend_from_slice(&tlv::encode(0x84, &[curve.parameter_id()]));
    }
    let resp = transmit(&Command::new(0x00, 0x22, 0xC1, 0xA4).with_data(mse))?;
    if !resp.is_ok() {
        return Ok(Err(AccessError::Refused {
            step: "MSE:Set AT (PACE)",
            sw: resp.sw,
        }));
    }

    // 1. The encrypted nonce.
    let resp = transmit(&general_authenticate(false, 0, &[]))?;
    if !resp.is_ok() {
        return Ok(Err(AccessError::Refused {
            step: "GENERAL AUTHENTICATE (nonce)",
            sw: resp.sw,
        }));
    }
    let z = match dynamic_value(&resp.data, 0x80) {
        Ok(z) if !z.is_empty() && z.len() % cipher.block_size() == 0 && z.len() <= 64 => z,
        Ok(z) => {
            return Ok(Err(failed(format!(
                "the encrypted nonce is {} bytes",
                z.len()
            ))));
        }
        Err(e) => return Ok(Err(failed(format!("nonce answer: {e}")))),
    };
    let k_pi = cipher.kdf(&password.key(), KeyUse::Pace);
    let s = cipher.decrypt_zero_iv(&k_pi, &z);

    // 2. Generic mapping.
    let sk_map = terminal
        .sk_map
        .clone()
        .unwrap_or_else(|| curve.random_scalar());
    let g = curve.generator();
    let pk_map = match curve.mul(&sk_map, &g, "G") {
        Ok(p) => p,
        Err(e) => return Ok(Err(crypto_failed("mapping key", e))),
    };
    let resp = transmit(&general_authenticate(false, 0x81, &pk_map))?;
    if !resp.is_ok() {
        return Ok(Err(AccessError::Refused {
            step: "GENERAL AUTHENTICATE (mapping)",
            sw: resp.sw,
        }));
    }
    let pk_map_ic = match dynamic_value(&resp.data, 0x82) {
        Ok(p) => p,
        Err(e) => return Ok(Err(failed(format!("mapping answer: {e}")))),
    };
    if pk_map_ic == pk_map {
        return Ok(Err(failed("the chip echoed the mapping key".into())));
    }
    let g_hat = match curve
        .mul(&sk_map, &pk_map_ic, "the chip's mapping key")
        .and_then(|h| curve.mul_base_add(&s, &h, "the mapping point"))
    {
        Ok(g) => g,
        Err(e) => return Ok(Err(crypto_failed("generic mapping", e))),
    };

    // 3. Key agreement on the mapped generator.
    let sk_eph = terminal
        .sk_eph
        .clone()
        .unwrap_or_else(|| curve.random_scalar());
    let pk_eph = match curve.mul(&sk_eph, &g_hat, "G'") {
        Ok(p) => p,
        Err(e) => return Ok(Err(crypto_failed("ephemeral key", e))),
    };
    let resp = transmit(&general_authenticate(false, 0x83, &pk_eph))?;
    if !resp.is_ok() {
        return Ok(Err(AccessError::Refused {
            step: "GENERAL AUTHENTICATE (key agreement)",
            sw: resp.sw,
        }));
    }
    let pk_ic = match dynamic_value(&resp.data, 0x84) {
        Ok(p) => p,
        Err(e) => return Ok(Err(failed(format!("key agreement answer: {e}")))),
    };
    if pk_ic == pk_eph {
        return Ok(Err(failed("the chip echoed the ephemeral key".into())));
    }
    let shared = match curve.mul(&sk_eph, &pk_ic, "the chip's ephemeral key") {
        Ok(p) => curve.x_of(&p),
        Err(e) => return Ok(Err(crypto_failed("key agreement", e))),
    };
    let ks_enc = cipher.kdf(&shared, KeyUse::Enc);
    let ks_mac = cipher.kdf(&shared, KeyUse::Mac);

    // 4. Mutual authentication.
    let token = cipher.token_mac(&ks_mac, &public_key_object(&params.oid, &pk_ic));
    let resp = transmit(&general_authenticate(true, 0x85, &token))?;
    if !resp.is_ok() {
        let sw = resp.sw;
        return Ok(Err(match (sw, password) {
            (0x6300..=0x63FF | apdu::SW_SECURITY_NOT_SATISFIED, Password::Mrz(_)) => {
                AccessError::WrongKey { sw }
            }
            (0x6300..=0x63FF | apdu::SW_SECURITY_NOT_SATISFIED, Password::Can(_)) => {
                AccessError::WrongCan { sw }
            }
            _ => AccessError::Refused {
                step: "GENERAL AUTHENTICATE (tokens)",
                sw,
            },
        }));
    }
    let chip_token = match dynamic_value(&resp.data, 0x86) {
        Ok(t) => t,
        Err(e) => return Ok(Err(failed(format!("token answer: {e}")))),
    };
    let expected = cipher.token_mac(&ks_mac, &public_key_object(&params.oid, &pk_eph));
    if !crypto::ct_eq(&chip_token, &expected) {
        return Ok(Err(AccessError::ChipNotAuthenticated));
    }
    let cam = if params.protocol.mapping == Mapping::ChipAuthentication {
        let a_ic = match dynamic_value(&resp.data, 0x8A) {
            Ok(a) => a,
            Err(e) => {
                return Ok(Err(failed(format!(
                    "PACE-CAM without Encrypted Chip Authentication Data: {e}"
                ))));
            }
        };
        match cipher.cam_decrypt(&ks_enc, &a_ic) {
            Some(ca_ic) => Some(CamProof {
                curve,
                ca_ic,
                pk_map_ic,
            }),
            None => {
                return Ok(Err(failed(
                    "PACE-CAM's Encrypted Chip Authentication Data does not decrypt".into(),
                )));
            }
        }
    } else {
        None
    };
    Ok(Ok(PaceSession {
        sm: SecureMessaging::new(cipher.sm(&ks_enc, &ks_mac), &vec![0; cipher.block_size()]),
        params: params.clone(),
        chip_key: pk_ic,
        cam,
    }))
}

#[cfg(test)]
mod tests;
