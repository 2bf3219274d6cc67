//! The chip side of an eMRTD: EF.CardAccess, PACE (when the document offers it), the
//! application, BAC (refused with 6A88 by a PACE-only chip), secure messaging, chip
//! authentication (when the document has DG14), Active Authentication (DG15) and the files of a
//! [`TestDocument`], with faults (length errors above a set Le, a chip strict about Le that sends
//! long answers in pieces fetched by GET RESPONSE, no extended length, removal after N APDUs,
//! slow replies, fixed challenges for the ICAO worked example).

use std::time::Duration;

use crate::access;
use crate::apdu::{self, Command, Response};
use crate::ca::chip::CaChip;
use crate::crypto::{self, Key16};
use crate::pace::Password;
use crate::pace::chip::{ChipAnswer, ChipPaceFixed, PaceChip};
use crate::read::{AID, Transceiver, TransmitError};
use crate::sm::SecureMessaging;
use crate::tlv;

use super::document::TestDocument;

/// Faults and fixed values.
#[derive(Debug, Clone, Default)]
pub struct ChipOptions {
    /// Answer 6700 to READ BINARY asking for more than this.
    pub max_le: Option<usize>,
    /// After this many APDUs the card is pulled from the reader.
    pub remove_after_apdus: Option<u32>,
    /// Delay before each reply.
    pub reply_delay: Duration,
    /// Fixed RND.ICC and K.ICC instead of random ones.
    pub fixed: Option<([u8; 8], Key16)>,
    /// A card without the eMRTD application (a bank card, a staff badge).
    pub no_application: bool,
    /// Never send more than the command's Le: a longer answer goes out as its first Le bytes
    /// with `61xx`, the rest by GET RESPONSE (ISO/IEC 7816-4 §5.3.4).
    pub strict_le: bool,
    /// Refuse extended-length APDUs (6700), as chips and readers without them.
    pub no_extended_length: bool,
}

/// What the chip does with an APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChipReply {
    Response(Vec<u8>),
    /// The card leaves the field now (fault injection).
    Removed,
}

const FID_CARD_ACCESS: u16 = 0x011C;

pub struct Chip {
    doc: TestDocument,
    options: ChipOptions,
    app_selected: bool,
    selected: Option<u16>,
    sm: Option<SecureMessaging>,
    challenge: Option<[u8; 8]>,
    pace: Option<PaceChip>,
    ca: Option<CaChip>,
    /// The session chip authentication starts, once its answer has gone out under the old keys.
    next_sm: Option<SecureMessaging>,
    /// The rest of an answer longer than Le, for GET RESPONSE.
    pending: Vec<u8>,
    /// APDUs received since power-on.
    pub apdus: u32,
}

impl Chip {
    pub fn new(doc: TestDocument, options: ChipOptions) -> Chip {
        let pace = doc.pace.clone().map(|params| {
            let chip = PaceChip::new(
                params,
                vec![
                    (1, Password::Mrz(doc.key.clone()).key()),
                    (2, Password::Can(doc.can.clone()).key()),
                ],
                ChipPaceFixed::default(),
            );
            // PACE-CAM answers with the chip authentication key (a clone's own).
            match &doc.chip_auth {
                Some(key) => chip.with_cam_key(key.private.clone()),
                None => chip,
            }
        });
        let ca = doc
            .chip_auth
            .as_ref()
            .map(|k| CaChip::new(k.curve, k.cipher, k.key_id, k.private.clone()));
        Chip {
            doc,
            options,
            app_selected: false,
            selected: None,
            sm: None,
            challenge: None,
            pace,
            ca,
            next_sm: None,
            pending: Vec::new(),
            apdus: 0,
        }
    }

    /// Power-on or reset: back to the master file, no session.
    pub fn reset(&mut self) {
        self.app_selected = false;
        self.selected = None;
        self.reset_session();
        if let Some(pace) = &mut self.pace {
            pace.reset();
        }
    }

    pub fn process(&mut self, bytes: &[u8]) -> ChipReply {
        self.apdus += 1;
        if self
            .options
            .remove_after_apdus
            .is_some_and(|n| self.apdus > n)
        {
            return ChipReply::Removed;
        }
        if !self.options.reply_delay.is_zero() {
            std::thread::sleep(self.options.reply_delay);
        }
        let Ok(cmd) = Command::parse(bytes) else {
            return ChipReply::Response(Response::status(apdu::SW_WRONG_LENGTH).encode());
        };
        let pending = std::mem::take(&mut self.pending);
        if cmd.cla == 0x00 && cmd.ins == 0xC0 {
            return ChipReply::Response(self.get_response(pending, &cmd).encode());
        }
        if self.options.no_extended_length && cmd.is_extended() {
            return ChipReply::Response(Response::status(apdu::SW_WRONG_LENGTH).encode());
        }
        let resp = if cmd.cla & 0x0C == 0x0C {
            match self.sm.take() {
                None => Response::status(apdu::SW_SM_MISSING),
                Some(mut sm) => match sm.unprotect_command(&cmd) {
                    Err(_) => {
                        // A broken SM command ends the session (Doc 9303-11 §9.8.4).
                        self.reset_session();
                        Response::status(apdu::SW_SM_INCORRECT)
                    }
                    Ok(inner) => {
                        let answer = self.secure(&inner);
                        let wrapped = sm.protect_response(&answer);
                        // After chip authentication the answer goes under the old keys, and
                        // the session restarts with the new ones.
                        self.sm = Some(self.next_sm.take().unwrap_or(sm));
                        wrapped
                    }
                },
            }
        } else {
            self.plain(&cmd)
        };
        ChipReply::Response(self.deliver(resp, &cmd).encode())
    }

    /// A chip strict about Le sends at most Le bytes, and `61xx` when more are waiting.
    fn deliver(&mut self, resp: Response, cmd: &Command) -> Response {
        let le = cmd.le.unwrap_or(0);
        if !self.options.strict_le || resp.data.len() <= le {
            return resp;
        }
        let mut data = resp.data;
        let rest = data.split_off(le);
        let sw = 0x6100 | (rest.len().min(256) % 256) as u16;
        let mut pending = rest;
        pending.extend_from_slice(&resp.sw.to_be_bytes());
        self.pending = pending;
        Response::new(data, sw)
    }

    /// GET RESPONSE: the next piece of the waiting answer (its status word comes with the last).
    fn get_response(&mut self, mut pending: Vec<u8>, cmd: &Command) -> Response {
        if pending.len() < 2 {
            return Response::status(apdu::SW_CONDITIONS);
        }
        let sw_at = pending.len() - 2;
        let sw = u16::from_be_bytes([pending[sw_at], pending[sw_at + 1]]);
        pending.truncate(sw_at);
        let le = cmd.le.unwrap_or(256);
        if pending.len() <= le {
            return Response::new(pending, sw);
        }
        let rest = pending.split_off(le);
        let next = 0x6100 | (rest.len().min(256) % 256) as u16;
        self.pending = rest;
        self.pending.extend_from_slice(&sw.to_be_bytes());
        Response::new(pending, next)
    }

    fn reset_session(&mut self) {
        self.sm = None;
        self.next_sm = None;
        self.challenge = None;
        if let Some(ca) = &mut self.ca {
            ca.reset();
        }
    }

    fn plain(&mut self, cmd: &Command) -> Response {
        // Command chaining (CLA 10) only for PACE's GENERAL AUTHENTICATE.
        if cmd.cla != 0x00 && !(cmd.cla == 0x10 && cmd.ins == 0x86) {
            return Response::status(apdu::SW_CLA_NOT_SUPPORTED);
        }
        match (cmd.ins, cmd.p1) {
            (0x22, 0xC1) if cmd.p2 == 0xA4 => match &mut self.pace {
                Some(pace) => {
                    let result = pace.set_at(cmd);
                    self.reset_session();
                    match result {
                        Ok(()) => Response::status(apdu::SW_OK),
                        Err(sw) => Response::status(sw),
                    }
                }
                None => Response::status(apdu::SW_INS_NOT_SUPPORTED),
            },
            (0x86, _) => match &mut self.pace {
                Some(pace) => match pace.general_authenticate(cmd) {
                    Ok(ChipAnswer::Data(d)) => Response::new(d, apdu::SW_OK),
                    Ok(ChipAnswer::Done(d, session)) => {
                        self.sm = Some(session);
                        Response::new(d, apdu::SW_OK)
                    }
                    Err(sw) => Response::status(sw),
                },
                None => Response::status(apdu::SW_INS_NOT_SUPPORTED),
            },
            (0xA4, 0x04) => {
                self.reset_session();
                self.app_selected = cmd.data == AID && !self.options.no_application;
                self.selected = None;
                Response::status(if self.app_selected {
                    apdu::SW_OK
                } else {
                    apdu::SW_FILE_NOT_FOUND
                })
            }
            (0xA4, _) => {
                let fid = match cmd.data.as_slice() {
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    [] => 0x3F00,
                    _ => return Response::status(apdu::SW_WRONG_PARAMS),
                };
                match fid {
                    0x3F00 => {
                        self.app_selected = false;
                        self.selected = None;
                        Response::status(apdu::SW_OK)
                    }
                    FID_CARD_ACCESS if self.doc.card_access.is_some() => {
                        self.selected = Some(fid);
                        Response::status(apdu::SW_OK)
                    }
                    _ if self.app_selected && self.doc.file(fid).is_some() => {
                        Response::status(apdu::SW_SECURITY_NOT_SATISFIED)
                    }
                    _ => Response::status(apdu::SW_FILE_NOT_FOUND),
                }
            }
            (0xB0, p1) => {
                let (fid, offset) = if p1 & 0x80 != 0 {
                    (0x0100 | u16::from(p1 & 0x1F), usize::from(cmd.p2))
                } else {
                    match self.selected {
                        Some(f) => (f, usize::from(u16::from_be_bytes([p1, cmd.p2]))),
                        None => return Response::status(apdu::SW_CONDITIONS),
                    }
                };
                if fid & 0x1F == FID_CARD_ACCESS & 0x1F && !self.app_selected {
                    return match &self.doc.card_access {
                        Some(bytes) => {
                            self.selected = Some(FID_CARD_ACCESS);
                            read(bytes, offset, cmd.le.unwrap_or(256))
                        }
                        None => Response::status(apdu::SW_FILE_NOT_FOUND),
                    };
                }
                Response::status(apdu::SW_SECURITY_NOT_SATISFIED)
            }
            (0x84, _) if self.app_selected => {
                let rnd = self.options.fixed.map_or_else(crypto::random, |(r, _)| r);
                self.challenge = Some(rnd);
                Response::new(rnd.to_vec(), apdu::SW_OK)
            }
            (0x82, _) if self.app_selected => {
                if self.doc.pace_only {
                    return Response::status(apdu::SW_REFERENCE_DATA_NOT_FOUND);
                }
                let Some(rnd_icc) = self.challenge.take() else {
                    return Response::status(apdu::SW_CONDITIONS);
                };
                let k_icc = self.options.fixed.map_or_else(crypto::random, |(_, k)| k);
                match access::bac_chip_answer(&self.doc.key, &rnd_icc, &k_icc, &cmd.data) {
                    Ok((answer, session)) => {
                        self.sm = Some(session);
                        Response::new(answer, apdu::SW_OK)
                    }
                    Err(sw) => Response::status(sw),
                }
            }
            (0x84 | 0x82, _) => Response::status(apdu::SW_CONDITIONS),
            _ => Response::status(apdu::SW_INS_NOT_SUPPORTED),
        }
    }

    fn secure(&mut self, cmd: &Command) -> Response {
        match cmd.ins {
            // After PACE the application is selected under secure messaging.
            0xA4 if cmd.p1 == 0x04 => {
                self.app_selected = cmd.data == AID && !self.options.no_application;
                self.selected = None;
                Response::status(if self.app_selected {
                    apdu::SW_OK
                } else {
                    apdu::SW_FILE_NOT_FOUND
                })
            }
            0xA4 => match cmd.data.as_slice() {
                [a, b] if self.doc.file(u16::from_be_bytes([*a, *b])).is_some() => {
                    self.selected = Some(u16::from_be_bytes([*a, *b]));
                    Response::status(apdu::SW_OK)
                }
                _ => Response::status(apdu::SW_FILE_NOT_FOUND),
            },
            // Chip authentication (only under secure messaging, as after BAC or PACE).
            0x22 if cmd.p1 == 0x41 && (cmd.p2 == 0xA6 || cmd.p2 == 0xA4) => {
                let Some(ca) = &mut self.ca else {
                    return Response::status(apdu::SW_REFERENCE_DATA_NOT_FOUND);
                };
                if cmd.p2 == 0xA6 {
                    match ca.set_kat(cmd) {
                        Ok(sm) => {
                            self.next_sm = Some(sm);
                            Response::status(apdu::SW_OK)
                        }
                        Err(sw) => Response::status(sw),
                    }
                } else {
                    match ca.set_at(cmd) {
                        Ok(()) => Response::status(apdu::SW_OK),
                        Err(sw) => Response::status(sw),
                    }
                }
            }
            // Active Authentication (under secure messaging, once the application is open).
            0x88 if self.app_selected => match &self.doc.active_auth {
                Some(key) => match crate::aa::chip::internal_authenticate(key, cmd) {
                    Ok(signature) => Response::new(signature, apdu::SW_OK),
                    Err(sw) => Response::status(sw),
                },
                None => Response::status(apdu::SW_INS_NOT_SUPPORTED),
            },
            0x86 if cmd.cla == 0x00 => {
                let Some(ca) = &mut self.ca else {
                    return Response::status(apdu::SW_CONDITIONS);
                };
                match ca.general_authenticate(cmd) {
                    Ok((answer, sm)) => {
                        self.next_sm = Some(sm);
                        Response::new(answer, apdu::SW_OK)
                    }
                    Err(sw) => Response::status(sw),
                }
            }
            0xB0 | 0xB1 => {
                let le = cmd.le.unwrap_or(256);
                if self.options.max_le.is_some_and(|max| le > max) {
                    return Response::status(apdu::SW_WRONG_LENGTH);
                }
                let (fid, offset) = if cmd.ins == 0xB1 {
                    let offset = match tlv::expect(&cmd.data, 0x54) {
                        Ok(o) if !o.value.is_empty() && o.value.len() <= 3 => o
                            .value
                            .iter()
                            .fold(0usize, |a, b| (a << 8) | usize::from(*b)),
                        _ => return Response::status(apdu::SW_INCORRECT_DATA),
                    };
                    (self.selected, offset)
                } else if cmd.p1 & 0x80 != 0 {
                    (Some(0x0100 | u16::from(cmd.p1 & 0x1F)), usize::from(cmd.p2))
                } else {
                    (
                        self.selected,
                        usize::from(u16::from_be_bytes([cmd.p1, cmd.p2])),
                    )
                };
                let Some(fid) = fid else {
                    return Response::status(apdu::SW_CONDITIONS);
                };
                let Some(bytes) = self.doc.file(fid) else {
                    return Response::status(apdu::SW_FILE_NOT_FOUND);
                };
                self.selected = Some(fid);
                let mut resp = read(bytes, offset, le);
                if cmd.ins == 0xB1 && !resp.data.is_empty() {
                    resp.data = tlv::encode(0x53, &resp.data);
                }
                resp
            }
            _ => Response::status(apdu::SW_INS_NOT_SUPPORTED),
        }
    }
}

/// `le` bytes at `offset`: fewer with 6282 at the end of the file, 6B00 beyond it.
fn read(bytes: &[u8], offset: usize, le: usize) -> Response {
    if offset >= bytes.len() {
        return Response::status(apdu::SW_WRONG_P1P2);
    }
    let end = (offset + le).min(bytes.len());
    let sw = if offset + le > bytes.len() {
        apdu::SW_END_OF_FILE
    } else {
        apdu::SW_OK
    };
    Response::new(bytes[offset..end].to_vec(), sw)
}

/// The chip in process, behind the same trait as a PC/SC card (which gathers `61xx` answers the
/// same way).
impl Transceiver for Chip {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransmitError> {
        apdu::exchange_whole(apdu, &mut |bytes| match self.process(bytes) {
            ChipReply::Response(r) => Ok(r),
            ChipReply::Removed => Err(TransmitError::CardRemoved),
        })
    }
}
