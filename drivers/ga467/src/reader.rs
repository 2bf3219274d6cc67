//! The host side: one command at a time over a [`Transport`], card polling and re-read suppression.
//!
//! Synchronous on purpose: the protocol is strictly request/reply, and the daemon runs a reader on
//! its own thread.

use std::io;
use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::{debug, warn};

use crate::card::{CardType, PHOTO_LEN, ParsedText, TEXT_LEN, parse_text};
use crate::command::Command;
use crate::frame::{FrameDecoder, FrameError, Response, hex};
use crate::status;
use crate::transport::Transport;

/// Tuning for a [`Reader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Line rate; scales read timeouts.
    pub baud: u32,
    /// Longest silence allowed between bytes once a frame has started.
    pub byte_gap: Duration,
    /// Consecutive no-card polls after which the last card may be reported again (0 behaves
    /// like 1).
    pub rearm_after_empty_polls: u32,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            baud: 115_200,
            byte_gap: Duration::from_millis(100),
            rearm_after_empty_polls: 2,
        }
    }
}

/// Everything that can go wrong talking to a reader. Messages name the command.
#[derive(Debug, Error)]
pub enum ReaderError {
    /// Nothing (or only garbage) arrived within the command's timeout.
    #[error("no reply to {command} within {waited:?}")]
    Timeout {
        /// The command sent.
        command: Command,
        /// How long we waited.
        waited: Duration,
    },
    /// The port failed (unplugged, closed, …).
    #[error("serial I/O failed during {command}: {source}")]
    Io {
        /// The command in progress.
        command: Command,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The reply was garbled (after the one retry).
    #[error("garbled reply to {command}: {source}")]
    Frame {
        /// The command sent.
        command: Command,
        /// What the decoder found.
        #[source]
        source: FrameError,
    },
    /// The SAM reports a fault (status or SAM ID not OK).
    #[error("SAM fault: SW3 {sw3:#04x} {text}")]
    Sam {
        /// Status byte.
        sw3: u8,
        /// [`status::describe`] text.
        text: &'static str,
    },
    /// A status that makes no sense for this command.
    #[error("{command}: unexpected SW3 {sw3:#04x} {text}")]
    UnexpectedStatus {
        /// The command sent.
        command: Command,
        /// Status byte.
        sw3: u8,
        /// [`status::describe`] text.
        text: &'static str,
    },
    /// A well-framed reply whose contents are wrong (lengths, sizes).
    #[error("{command}: malformed reply: {reason}")]
    BadReply {
        /// The command sent.
        command: Command,
        /// What was wrong.
        reason: String,
    },
}

/// One card read from the reader.
#[derive(Clone, PartialEq, Eq)]
pub struct CardRead {
    /// The raw 256-byte text block (goes into the signed record as is).
    pub text: [u8; TEXT_LEN],
    /// The raw WLT photo, 1024 bytes, opaque.
    pub photo_wlt: Vec<u8>,
    /// Layout detected from the text.
    pub card_type: CardType,
    /// Parsed fields.
    pub parsed: ParsedText,
}

impl std::fmt::Debug for CardRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardRead")
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .field(
                "photo_wlt",
                &format_args!("<{} bytes>", self.photo_wlt.len()),
            )
            .field("card_type", &self.card_type)
            .field("parsed", &self.parsed)
            .finish()
    }
}

/// Result of one [`Reader::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// No card in the field (find 80, select 81 or read 41).
    NoCard,
    /// The card last reported is still there; not reported again.
    StillPresent,
    /// A new card (or the same card after being re-armed). Boxed: a read is ~1.6 KB and the other
    /// outcomes are empty.
    Card(Box<CardRead>),
}

/// A GA 467 reader on some transport.
pub struct Reader<T: Transport> {
    transport: T,
    opts: ReaderOptions,
    decoder: FrameDecoder,
    /// Text block of the last card reported, while suppression is armed.
    last_text: Option<[u8; TEXT_LEN]>,
    empty_polls: u32,
}

impl<T: Transport> Reader<T> {
    /// Wraps a transport. No bytes are sent until the first call.
    pub fn new(transport: T, opts: ReaderOptions) -> Self {
        Self {
            transport,
            opts,
            decoder: FrameDecoder::for_responses(),
            last_text: None,
            empty_polls: 0,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &ReaderOptions {
        &self.opts
    }

    /// The transport, e.g. for tests.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back (to close and re-open the port).
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Forgets the last card, so the next read is reported even if it is the same card.
    pub fn rearm(&mut self) {
        self.last_text = None;
        self.empty_polls = 0;
    }

    /// Sends a command and returns the decoded reply, whatever its SW3.
    ///
    /// This is the single retry point: a garbled reply (bad checksum, bad length, truncated) or an
    /// SW3 saying the reader got a garbled command (10, 11) is retried exactly once.
    pub fn transact(&mut self, cmd: &Command) -> Result<Response, ReaderError> {
        match self.exchange(cmd) {
            Err(ReaderError::Frame { source, .. }) => {
                warn!(command = %cmd, error = %source, "garbled reply, retrying once");
                self.exchange(cmd)
            }
            Ok(r) if matches!(r.sw3, status::BAD_CHECKSUM | status::BAD_LENGTH) => {
                warn!(command = %cmd, sw3 = r.sw3, "reader got a garbled command, retrying once");
                self.exchange(cmd)
            }
            other => other,
        }
    }

    /// One attempt: flush input, send, read until a whole frame or a timeout.
    fn exchange(&mut self, cmd: &Command) -> Result<Response, ReaderError> {
        let io_err = |source| ReaderError::Io {
            command: *cmd,
            source,
        };
        self.transport.discard_input().map_err(io_err)?;
        self.decoder.clear();
        let frame = cmd.encode();
        debug!(command = %cmd, frame = %hex(&frame), "send");
        self.transport.write_all(&frame).map_err(io_err)?;

        let total = cmd.timeout(self.opts.baud);
        let started = Instant::now();
        let mut bad_length = None;
        let mut buf = [0u8; 512];
        loop {
            while let Some(item) = self.decoder.next_frame() {
                match item {
                    Ok(body) => {
                        let response =
                            Response::from_body(&body).map_err(|source| ReaderError::Frame {
                                command: *cmd,
                                source,
                            })?;
                        debug!(command = %cmd, sw3 = response.sw3, len = body.len(), "reply");
                        return Ok(response);
                    }
                    // A false preamble in noise: keep hunting, the real reply may follow.
                    Err(e @ FrameError::BadLength { .. }) => bad_length = Some(e),
                    Err(source) => {
                        return Err(ReaderError::Frame {
                            command: *cmd,
                            source,
                        });
                    }
                }
            }
            let remaining = total.saturating_sub(started.elapsed());
            let in_frame = self.decoder.in_frame();
            let wait = if in_frame {
                remaining.min(self.opts.byte_gap)
            } else {
                remaining
            };
            let n = if wait.is_zero() {
                0
            } else {
                self.transport.read(&mut buf, wait).map_err(io_err)?
            };
            if n == 0 {
                let frame_error = self.decoder.end_of_input().or(bad_length);
                return Err(match frame_error {
                    Some(source) => ReaderError::Frame {
                        command: *cmd,
                        source,
                    },
                    None => ReaderError::Timeout {
                        command: *cmd,
                        waited: started.elapsed(),
                    },
                });
            }
            self.decoder.push(buf.get(..n).unwrap_or_default());
        }
    }

    /// `11 FF`: Ok when the SAM answers 90, otherwise [`ReaderError::Sam`].
    pub fn sam_status(&mut self) -> Result<(), ReaderError> {
        let r = self.transact(&Command::SamStatus)?;
        sam_ok(r.sw3)
    }

    /// `12 FF`: the 16 raw SAM ID bytes (records store them raw).
    pub fn sam_id(&mut self) -> Result<[u8; 16], ReaderError> {
        let cmd = Command::SamId;
        let r = self.transact(&cmd)?;
        sam_ok(r.sw3)?;
        r.data
            .as_slice()
            .try_into()
            .map_err(|_| ReaderError::BadReply {
                command: cmd,
                reason: format!("SAM ID has {} data bytes, expected 16", r.data.len()),
            })
    }

    /// `61 FF n`: sets the SAM↔card RF frame size (the SDK uses 0x50), expects 90.
    pub fn set_max_rf_byte(&mut self, n: u8) -> Result<(), ReaderError> {
        let cmd = Command::SetMaxRfByte(n);
        let r = self.transact(&cmd)?;
        expect(cmd, r.sw3, &[status::OK])?;
        Ok(())
    }

    /// One poll: find → select → read `30 01`, with re-read suppression.
    ///
    /// The text block is read on every poll while a card is present and compared with the last card
    /// reported. This costs one `30 01` per poll (about 0.11 s at 115200) but is correct whatever
    /// the reader answers to `20 01` for a card it has already read (§13 question 6), and a card
    /// swapped for another between two polls is always a new read. No-card outcomes (80, 81, 41)
    /// count towards re-arming; errors leave the suppression state as it was.
    pub fn poll(&mut self) -> Result<PollOutcome, ReaderError> {
        let Some(card) = self.try_read_card()? else {
            self.empty_polls = self.empty_polls.saturating_add(1);
            if self.empty_polls >= self.opts.rearm_after_empty_polls {
                self.last_text = None;
            }
            return Ok(PollOutcome::NoCard);
        };
        self.empty_polls = 0;
        if self.last_text.as_ref() == Some(&card.text) {
            return Ok(PollOutcome::StillPresent);
        }
        self.last_text = Some(card.text);
        Ok(PollOutcome::Card(Box::new(card)))
    }

    /// find → select → read, without suppression. `None` when the card is absent or moved.
    pub fn try_read_card(&mut self) -> Result<Option<CardRead>, ReaderError> {
        let find = self.transact(&Command::FindCard)?;
        if expect(
            Command::FindCard,
            find.sw3,
            &[status::CARD_FOUND, status::NO_CARD],
        )? == status::NO_CARD
        {
            return Ok(None);
        }
        let select = self.transact(&Command::SelectCard)?;
        if expect(
            Command::SelectCard,
            select.sw3,
            &[status::OK, status::SELECT_FAILED],
        )? == status::SELECT_FAILED
        {
            return Ok(None);
        }
        let cmd = Command::ReadTextPhoto;
        let read = self.transact(&cmd)?;
        if expect(cmd, read.sw3, &[status::OK, status::READ_FAILED])? == status::READ_FAILED {
            return Ok(None);
        }
        parse_read_reply(cmd, &read.data).map(Some)
    }
}

/// Splits and checks `30 01` data: text_len (256) + photo_len (1024) + text + photo, nothing else.
pub fn parse_read_reply(command: Command, data: &[u8]) -> Result<CardRead, ReaderError> {
    let bad = |reason: String| ReaderError::BadReply { command, reason };
    let (Some(text_len), Some(photo_len)) = (be16(data, 0), be16(data, 2)) else {
        return Err(bad(format!("{} data bytes, no length fields", data.len())));
    };
    if usize::from(text_len) != TEXT_LEN || usize::from(photo_len) != PHOTO_LEN {
        return Err(bad(format!(
            "text length {text_len} and photo length {photo_len}, expected {TEXT_LEN} and {PHOTO_LEN}"
        )));
    }
    let expected = 4 + TEXT_LEN + PHOTO_LEN;
    if data.len() != expected {
        return Err(bad(format!(
            "{} data bytes, expected {expected}",
            data.len()
        )));
    }
    let text: [u8; TEXT_LEN] = data
        .get(4..4 + TEXT_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| bad("text block out of range".into()))?;
    let photo_wlt = data.get(4 + TEXT_LEN..).unwrap_or_default().to_vec();
    let parsed = parse_text(&text).map_err(|e| bad(e.to_string()))?;
    Ok(CardRead {
        text,
        photo_wlt,
        card_type: parsed.card_type(),
        parsed,
    })
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at + 2)?;
    Some(u16::from_be_bytes(bytes.try_into().ok()?))
}

fn sam_ok(sw3: u8) -> Result<(), ReaderError> {
    if sw3 == status::OK {
        Ok(())
    } else {
        Err(ReaderError::Sam {
            sw3,
            text: status::describe(sw3),
        })
    }
}

/// Returns `sw3` when it is one of `allowed`, else [`ReaderError::UnexpectedStatus`].
fn expect(command: Command, sw3: u8, allowed: &[u8]) -> Result<u8, ReaderError> {
    if allowed.contains(&sw3) {
        Ok(sw3)
    } else {
        Err(ReaderError::UnexpectedStatus {
            command,
            sw3,
            text: status::describe(sw3),
        })
    }
}

#[cfg(test)]
mod tests;
