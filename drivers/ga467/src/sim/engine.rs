//! The simulator's protocol engine: host bytes in, reply bytes out. Pure, so it can sit behind an
//! in-memory transport in tests as well as behind a pty.

use std::collections::VecDeque;
use std::time::Duration;

use tracing::debug;

use super::cards::FakeCard;
use crate::command::Command;
use crate::frame::{FrameDecoder, FrameError, encode_response, hex};
use crate::status;

/// The 16 bytes answered to `12 FF`: u16 LE 1, u16 LE 2, u32 LE 20100101, u32 LE 1, u32 LE 2.
pub const FAKE_SAM_ID: [u8; 16] = [
    0x01, 0x00, 0x02, 0x00, 0x05, 0xB4, 0x32, 0x01, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
];

/// Which protocol the simulated device speaks: GA 467, or one of the vendor variants a host must
/// recognise and reject (reference §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Standard GA 467 frames.
    #[default]
    Ga467,
    /// GA preamble, but an additive checksum (CVR-100AU style); every command gets a status reply.
    AdditiveChecksum,
    /// STX/ETX frames (`02 00 03 32 29 FF E4 03`) to every command.
    StxEtx,
    /// Standard frames, but SW3 21 (bad command) to everything: non-GA firmware.
    AllBadCommand,
}

/// A fault to inject into the replies to matching commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Reply with this SW3 and no data instead of the real reply.
    Status(u8),
    /// Flip bits in the checksum byte.
    Corrupt,
    /// Replace the checksum with a vendor's additive one (the reply, card text included, is
    /// otherwise unchanged): what a line error that happens to pass that check looks like.
    AdditiveChecksum,
    /// Send only the first `n` bytes of the reply.
    Truncate(usize),
    /// Send the reply after this delay.
    Delay(Duration),
    /// Send nothing.
    Silent,
}

/// A fault for the next `times` replies to `command` (any command when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The command whose replies are affected (matched by CMD and PARA); `None` matches all.
    pub command: Option<Command>,
    /// What happens to the reply.
    pub kind: FaultKind,
    /// How many replies it affects.
    pub times: u32,
}

/// One reply to send, possibly late.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Bytes on the wire (noise prefix included).
    pub bytes: Vec<u8>,
    /// How long to wait before sending them.
    pub delay: Duration,
}

/// A simulated SAM reader. The caller decides when a card is on the antenna.
#[derive(Debug, Clone)]
pub struct Simulator {
    decoder: FrameDecoder,
    card: Option<FakeCard>,
    selected: bool,
    max_rf_byte: Option<u8>,
    reply_prefix: Vec<u8>,
    faults: Vec<Fault>,
    scripted: VecDeque<Vec<u8>>,
    protocol: Protocol,
}

impl Default for Simulator {
    fn default() -> Self {
        Self::new()
    }
}

impl Simulator {
    /// A reader with no card present.
    pub fn new() -> Self {
        Self {
            decoder: FrameDecoder::for_commands(),
            card: None,
            selected: false,
            max_rf_byte: None,
            reply_prefix: Vec::new(),
            faults: Vec::new(),
            scripted: VecDeque::new(),
            protocol: Protocol::Ga467,
        }
    }

    /// Switches the protocol the device speaks.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// Fault injection: queues a fault (faults apply in the order injected).
    pub fn inject(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// Places a card on (or removes it from) the antenna. A new card must be selected again.
    pub fn set_card(&mut self, card: Option<FakeCard>) {
        self.card = card;
        self.selected = false;
    }

    /// The card on the antenna.
    pub fn card(&self) -> Option<&FakeCard> {
        self.card.as_ref()
    }

    /// The last `61 FF` value received.
    pub fn max_rf_byte(&self) -> Option<u8> {
        self.max_rf_byte
    }

    /// Fault injection: bytes sent before every reply (line noise).
    pub fn set_reply_prefix(&mut self, garbage: Vec<u8>) {
        self.reply_prefix = garbage;
    }

    /// Fault injection: the next `n` replies carry a wrong checksum.
    pub fn corrupt_next_replies(&mut self, n: u32) {
        self.inject(Fault {
            command: None,
            kind: FaultKind::Corrupt,
            times: n,
        });
    }

    /// Fault injection: answer the next command with these raw bytes instead of the real reply
    /// (queued; the command is still executed).
    pub fn script_reply(&mut self, raw: Vec<u8>) {
        self.scripted.push_back(raw);
    }

    /// Drops a partially received command (the host went away).
    pub fn reset_link(&mut self) {
        self.decoder.clear();
    }

    /// Feeds bytes from the host; returns the reply bytes for every complete command in them
    /// (delays ignored).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.feed_replies(bytes)
            .into_iter()
            .flat_map(|r| r.bytes)
            .collect()
    }

    /// Feeds bytes from the host; returns one [`Reply`] per complete command in them.
    pub fn feed_replies(&mut self, bytes: &[u8]) -> Vec<Reply> {
        self.decoder.push(bytes);
        let mut out = Vec::new();
        while let Some(item) = self.decoder.next_frame() {
            let (command, reply) = match item {
                Ok(body) => self.execute(&body),
                Err(e) => {
                    debug!(error = %e, "sim: bad frame from host");
                    let sw3 = match e {
                        FrameError::BadChecksum { .. } => status::BAD_CHECKSUM,
                        _ => status::BAD_LENGTH,
                    };
                    (None, plain(sw3))
                }
            };
            let mut reply = Reply {
                bytes: match self.scripted.pop_front() {
                    Some(raw) => raw,
                    None => reply,
                },
                delay: Duration::ZERO,
            };
            if let Some(kind) = self.take_fault(command) {
                match kind {
                    FaultKind::Status(sw3) => reply.bytes = plain(sw3),
                    FaultKind::Corrupt => {
                        if let Some(chk) = reply.bytes.last_mut() {
                            *chk ^= 0x5A;
                        }
                    }
                    FaultKind::AdditiveChecksum => additive_checksum(&mut reply.bytes),
                    FaultKind::Truncate(n) => reply.bytes.truncate(n),
                    FaultKind::Delay(d) => reply.delay = d,
                    FaultKind::Silent => continue,
                }
            }
            debug!(reply = %hex(&reply.bytes), "sim: reply");
            let mut bytes = self.reply_prefix.clone();
            bytes.append(&mut reply.bytes);
            reply.bytes = bytes;
            out.push(reply);
        }
        out
    }

    /// The first pending fault for `command`, used up by one.
    fn take_fault(&mut self, command: Option<Command>) -> Option<FaultKind> {
        let same = |a: &Command, b: &Command| a.cmd_para() == b.cmd_para();
        let index = self.faults.iter().position(|f| {
            f.times > 0
                && match (&f.command, &command) {
                    (None, _) => true,
                    (Some(want), Some(got)) => same(want, got),
                    (Some(_), None) => false,
                }
        })?;
        let fault = self.faults.get_mut(index)?;
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }

    /// Runs one command; returns it (when recognised) and the reply.
    fn execute(&mut self, body: &[u8]) -> (Option<Command>, Vec<u8>) {
        debug!(body = %hex(body), "sim: command");
        let (cmd, para, data) = match body {
            [cmd, para, data @ ..] => (*cmd, *para, data),
            _ => return (None, plain(status::BAD_LENGTH)),
        };
        let command = Command::from_frame(cmd, para, data);
        let reply = match (self.protocol, command) {
            (Protocol::Ga467, Some(command)) => self.execute_ga467(command),
            (Protocol::Ga467 | Protocol::AllBadCommand, _) => plain(status::BAD_COMMAND),
            (Protocol::AdditiveChecksum, _) => {
                let mut frame = plain(status::OK);
                additive_checksum(&mut frame);
                frame
            }
            (Protocol::StxEtx, _) => vec![0x02, 0x00, 0x03, 0x32, 0x29, 0xFF, 0xE4, 0x03],
        };
        (command, reply)
    }

    fn execute_ga467(&mut self, command: Command) -> Vec<u8> {
        let present = self.card.is_some();
        match command {
            Command::ResetSam | Command::SamStatus => plain(status::OK),
            Command::SamId => encode_response(0, 0, status::OK, &FAKE_SAM_ID),
            Command::SetMaxRfByte(n) => {
                self.max_rf_byte = Some(n);
                plain(status::OK)
            }
            Command::FindCard => {
                self.selected = false;
                if present {
                    encode_response(0, 0, status::CARD_FOUND, &[0; 4])
                } else {
                    plain(status::NO_CARD)
                }
            }
            Command::SelectCard => {
                self.selected = present;
                if present {
                    encode_response(0, 0, status::OK, &[0; 8])
                } else {
                    plain(status::SELECT_FAILED)
                }
            }
            Command::ReadTextPhoto | Command::ReadTextPhotoFingerprint => {
                match self.card.as_ref().filter(|_| self.selected) {
                    Some(card) => read_reply(card, command == Command::ReadTextPhotoFingerprint),
                    None => plain(status::READ_FAILED),
                }
            }
            Command::ReadAppendedAddress => match self.card.as_ref().filter(|_| self.selected) {
                Some(FakeCard {
                    appended_address: Some(address),
                    ..
                }) => encode_response(0, 0, status::OK, &appended_address(address)),
                Some(_) => plain(status::NO_CONTENT),
                None => plain(status::READ_FAILED),
            },
        }
    }
}

/// A reply with no data.
fn plain(sw3: u8) -> Vec<u8> {
    encode_response(0, 0, sw3, &[])
}

/// `30 01` / `30 10` reply for `card`; the length fields state the real sizes.
fn read_reply(card: &FakeCard, fingerprint: bool) -> Vec<u8> {
    let len16 = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes();
    let mut data = Vec::with_capacity(6 + card.text.len() + card.photo.len());
    data.extend_from_slice(&len16(card.text.len()));
    data.extend_from_slice(&len16(card.photo.len()));
    if fingerprint {
        data.extend_from_slice(&len16(card.fingerprint.len()));
    }
    data.extend_from_slice(&card.text);
    data.extend_from_slice(&card.photo);
    if fingerprint {
        data.extend_from_slice(&card.fingerprint);
    }
    encode_response(0, 0, status::OK, &data)
}

/// The `30 03` data: the address as 70 bytes of UCS-2LE, space padded (§13 question 2).
fn appended_address(address: &str) -> Vec<u8> {
    let mut data: Vec<u8> = address
        .encode_utf16()
        .take(35)
        .flat_map(u16::to_le_bytes)
        .collect();
    data.resize(70, 0);
    for pair in data
        .chunks_exact_mut(2)
        .skip(address.encode_utf16().count())
    {
        pair.copy_from_slice(&[0x20, 0x00]);
    }
    data
}

/// Rewrites a frame's checksum as the additive one some vendor readers use (the sum of length
/// and body, negated), in place of GA 467's XOR.
fn additive_checksum(frame: &mut [u8]) {
    let sum = frame
        .iter()
        .skip(5)
        .take(frame.len().saturating_sub(6))
        .fold(0u8, |acc, b| acc.wrapping_add(*b));
    if let Some(chk) = frame.last_mut() {
        *chk = 0u8.wrapping_sub(sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameDecoder, Response, encode_command};
    use crate::sim::fake_resident_cards;
    use crate::test_util::h;

    /// Feeds one command and decodes exactly one reply.
    fn ask(sim: &mut Simulator, frame: &[u8]) -> Response {
        let out = sim.feed(frame);
        let mut d = FrameDecoder::for_responses();
        d.push(&out);
        let body = d.next_frame().expect("a reply").expect("well-formed");
        assert!(d.next_frame().is_none(), "exactly one reply");
        Response::from_body(&body).expect("response")
    }

    fn send(sim: &mut Simulator, cmd: Command) -> Response {
        ask(sim, &cmd.encode())
    }

    #[test]
    fn answers_like_the_reference() {
        let mut sim = Simulator::new();
        assert_eq!(
            sim.feed(&Command::SamStatus.encode()),
            h("AA AA AA 96 69 00 04 00 00 90 94")
        );
        assert_eq!(
            sim.feed(&Command::FindCard.encode()),
            h("AA AA AA 96 69 00 04 00 00 80 84")
        );
        assert_eq!(
            sim.feed(&Command::SelectCard.encode()),
            h("AA AA AA 96 69 00 04 00 00 81 85")
        );
        assert_eq!(
            sim.feed(&Command::ReadTextPhoto.encode()),
            h("AA AA AA 96 69 00 04 00 00 41 45")
        );
        sim.set_card(fake_resident_cards().into_iter().next());
        assert_eq!(
            sim.feed(&Command::FindCard.encode()),
            h("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")
        );
        // Read before select fails.
        assert_eq!(send(&mut sim, Command::ReadTextPhoto).sw3, 0x41);
        assert_eq!(
            sim.feed(&Command::SelectCard.encode()),
            h("AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C")
        );
        let read = sim.feed(&Command::ReadTextPhoto.encode());
        assert_eq!(read.len(), 1295);
        assert_eq!(
            read.get(..14),
            Some(&h("AA AA AA 96 69 05 08 00 00 90 01 00 04 00")[..])
        );
        let fp = sim.feed(&Command::ReadTextPhotoFingerprint.encode());
        assert_eq!(fp.len(), 1297);
        assert_eq!(
            fp.get(..16),
            Some(&h("AA AA AA 96 69 05 0A 00 00 90 01 00 04 00 00 00")[..])
        );
        assert_eq!(send(&mut sim, Command::ReadAppendedAddress).sw3, 0x91);
        let id = send(&mut sim, Command::SamId);
        assert_eq!((id.sw3, id.data.as_slice()), (0x90, &FAKE_SAM_ID[..]));
        assert_eq!(
            FAKE_SAM_ID
                .get(4..8)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Some(20_100_101)
        );
        assert_eq!(send(&mut sim, Command::SetMaxRfByte(0x50)).sw3, 0x90);
        assert_eq!(sim.max_rf_byte(), Some(0x50));
        assert_eq!(send(&mut sim, Command::ResetSam).sw3, 0x90);
    }

    #[test]
    fn rejects_bad_host_frames() {
        let mut sim = Simulator::new();
        // Bad checksum from the host: SW3 10.
        assert_eq!(ask(&mut sim, &h("AA AA AA 96 69 00 03 11 FF EE")).sw3, 0x10);
        // Unknown command, or known command with stray data: SW3 21.
        assert_eq!(ask(&mut sim, &encode_command(0x60, 0x01, &[])).sw3, 0x21);
        assert_eq!(ask(&mut sim, &encode_command(0x11, 0xFF, &[0])).sw3, 0x21);
        // A response-sized minimum is not applied to commands; garbage around frames is skipped.
        let mut input = h("00 AA 13");
        input.extend(Command::SamStatus.encode());
        input.extend(h("FF"));
        input.extend(Command::SamStatus.encode());
        let out = sim.feed(&input);
        assert_eq!(out.len(), 22);
    }

    #[test]
    fn removing_the_card_deselects() {
        let mut sim = Simulator::new();
        let card = fake_resident_cards().into_iter().next();
        sim.set_card(card.clone());
        send(&mut sim, Command::FindCard);
        assert_eq!(send(&mut sim, Command::SelectCard).sw3, 0x90);
        sim.set_card(None);
        assert_eq!(send(&mut sim, Command::ReadTextPhoto).sw3, 0x41);
        sim.set_card(card);
        assert_eq!(
            send(&mut sim, Command::ReadTextPhoto).sw3,
            0x41,
            "new card needs a select"
        );
    }
}
