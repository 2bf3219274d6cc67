//! The host side: one command at a time over a [`Transport`], card polling and re-read suppression.
//!
//! Synchronous on purpose: the protocol is strictly request/reply, and the daemon runs a reader on
//! its own thread.

use std::io;
use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::{debug, warn};

use crate::card::{CardType, PHOTO_LEN, ParsedText, TEXT_LEN, decode_ucs2, parse_text};
use crate::command::Command;
use crate::frame::{FrameDecoder, FrameError, Response, hex};
use crate::status;
use crate::transport::Transport;
use crate::variant::find_stx_etx;

/// The rates to try, in order, when the reader's rate is not known (§1).
pub const PROBE_BAUDS: [u32; 5] = [115_200, 57_600, 38_400, 19_200, 9_600];

/// How long to wait for the `11 FF` reply at each rate while probing.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Sizes a `30 10` reply may give the fingerprint data: none, one or two 512-byte templates.
pub const FINGERPRINT_LENS: [usize; 3] = [0, 512, 1024];

/// Raw bytes kept per exchange for diagnostics (vendor variant detection, error messages).
const DIAGNOSTIC_BYTES: usize = 64;

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
    /// Read with `30 10` (text, photo and fingerprints) instead of `30 01`.
    pub fingerprint: bool,
    /// Read the appended address (`30 03`) after each new card.
    pub appended_address: bool,
    /// `61 FF n` sent once per session by [`Reader::start`] (the SDK sends 0x50); `None` skips it.
    pub max_rf_byte: Option<u8>,
    /// While no card is present, re-check the SAM (`11 FF`) this often (§6: every few seconds).
    pub status_recheck: Duration,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            baud: 115_200,
            byte_gap: Duration::from_millis(100),
            rearm_after_empty_polls: 2,
            fingerprint: false,
            appended_address: true,
            max_rf_byte: Some(0x50),
            status_recheck: Duration::from_secs(5),
        }
    }
}

/// Everything that can go wrong talking to a reader. Messages name the command.
#[derive(Debug, Error)]
pub enum ReaderError {
    /// Nothing (or only garbage) arrived within the command's timeout.
    #[error("no reply to {command} within {waited:?} ({received} bytes of garbage received)")]
    Timeout {
        /// The command sent.
        command: Command,
        /// How long we waited.
        waited: Duration,
        /// Bytes that arrived without forming a frame (0: the line stayed silent).
        received: usize,
    },
    /// The device answers, but not with GA 467 frames (a vendor extension, §10). Retrying does
    /// not help.
    #[error("unsupported reader protocol ({what}); {received} bytes received")]
    UnsupportedProtocol {
        /// What was recognised.
        what: String,
        /// How many bytes the device sent in that exchange. Never the bytes: a card-text reply
        /// that happens to pass another checksum would put a citizen's name and number into
        /// the warn log and the `events` topic.
        received: usize,
    },
    /// Baud probing found nothing that answers `11 FF` with a well-formed frame.
    #[error(
        "no GA 467 reader answers SAM status (11 FF) at {rates:?} baud ({detail}): wrong port, \
         or not a SAM reader"
    )]
    NoReader {
        /// The rates tried.
        rates: Vec<u32>,
        /// What was seen: silence, or the first garbage bytes.
        detail: String,
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
    /// Fingerprint templates (opaque, 512 or 1024 bytes) when read with `30 10` and the card has
    /// any; `None` otherwise.
    pub fingerprint: Option<Vec<u8>>,
    /// The appended address (`30 03`).
    pub appended_address: AppendedAddress,
}

/// The outcome of reading the appended address (追加住址, `30 03`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendedAddress {
    /// Not asked for.
    NotRequested,
    /// The card has none (SW3 91, or an empty field).
    Absent,
    /// The address, trimmed.
    Present(String),
    /// The card was read but the address could not be (card moved, odd reply); why.
    Unreadable(String),
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
            .field(
                "fingerprint",
                &self
                    .fingerprint
                    .as_ref()
                    .map(|f| format!("<{} bytes>", f.len())),
            )
            .field(
                "appended_address",
                &match &self.appended_address {
                    AppendedAddress::Present(a) => format!("<{} chars>", a.chars().count()),
                    other => format!("{other:?}"),
                },
            )
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
    /// When the SAM status was last confirmed.
    last_status: Option<Instant>,
    /// `61 FF` already sent in this session.
    rf_set: bool,
    /// The first bytes received during the current exchange, to recognise vendor framing (never
    /// put into an error or a log: they may be card text).
    received: Vec<u8>,
    received_total: usize,
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
            last_status: None,
            rf_set: false,
            received: Vec::new(),
            received_total: 0,
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
    /// SW3 saying the reader got a garbled command (10, 11) is retried exactly once. Timeouts are
    /// not retried here (the caller's poll loop is the retry), and vendor-variant replies never
    /// are.
    pub fn transact(&mut self, cmd: &Command) -> Result<Response, ReaderError> {
        let timeout = cmd.timeout(self.opts.baud);
        match self.exchange(cmd, timeout) {
            Err(ReaderError::Frame { source, .. }) => {
                warn!(command = %cmd, error = %source, "garbled reply, retrying once");
                self.exchange(cmd, timeout)
            }
            Ok(r) if matches!(r.sw3, status::BAD_CHECKSUM | status::BAD_LENGTH) => {
                warn!(command = %cmd, sw3 = %format!("{:#04x}", r.sw3), "reader got a garbled command, retrying once");
                self.exchange(cmd, timeout)
            }
            other => other,
        }
    }

    /// One attempt: flush input, send, read until a whole frame or `total` has passed. The gap
    /// between bytes of a frame may not exceed `byte_gap`.
    fn exchange(&mut self, cmd: &Command, total: Duration) -> Result<Response, ReaderError> {
        let io_err = |source| ReaderError::Io {
            command: *cmd,
            source,
        };
        self.transport.discard_input().map_err(io_err)?;
        self.decoder.clear();
        self.received.clear();
        self.received_total = 0;
        let frame = cmd.encode();
        debug!(command = %cmd, frame = %hex(&frame), "send");
        self.transport.write_all(&frame).map_err(io_err)?;

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
                    Err(FrameError::AdditiveChecksum { len }) => {
                        return Err(self.unsupported(format!(
                            "GA preamble with an additive checksum (length field {len}) in \
                             reply to {cmd}"
                        )));
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
            let wait = if self.decoder.in_frame() {
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
                if !self.decoder.in_frame() && find_stx_etx(&self.received).is_some() {
                    return Err(self.unsupported(format!("STX/ETX frames in reply to {cmd}")));
                }
                let frame_error = self.decoder.end_of_input().or(bad_length);
                return Err(match frame_error {
                    Some(source) => ReaderError::Frame {
                        command: *cmd,
                        source,
                    },
                    None => ReaderError::Timeout {
                        command: *cmd,
                        waited: started.elapsed(),
                        received: self.received_total,
                    },
                });
            }
            let bytes = buf.get(..n).unwrap_or_default();
            let keep = DIAGNOSTIC_BYTES.saturating_sub(self.received.len());
            self.received
                .extend_from_slice(bytes.get(..keep.min(n)).unwrap_or_default());
            self.received_total += n;
            self.decoder.push(bytes);
        }
    }

    fn unsupported(&self, what: String) -> ReaderError {
        ReaderError::UnsupportedProtocol {
            what,
            received: self.received_total,
        }
    }

    /// Tries `rates` in order with `11 FF` and keeps the first at which a well-formed frame comes
    /// back (§1: never changes the reader's own rate). The transport is left at that rate and the
    /// read timeouts scale with it. Vendor variants stop the probe at once.
    pub fn probe_baud(&mut self, rates: &[u32]) -> Result<u32, ReaderError> {
        let mut seen: Option<String> = None;
        for &rate in rates {
            self.transport
                .set_baud(rate)
                .map_err(|source| ReaderError::Io {
                    command: Command::SamStatus,
                    source,
                })?;
            self.opts.baud = rate;
            match self.exchange(&Command::SamStatus, PROBE_TIMEOUT) {
                Ok(r) if r.sw3 == status::BAD_COMMAND => return Err(self.all_21()),
                Ok(_) => {
                    debug!(baud = rate, "reader answers");
                    return Ok(rate);
                }
                Err(e @ (ReaderError::UnsupportedProtocol { .. } | ReaderError::Io { .. })) => {
                    return Err(e);
                }
                Err(e) => {
                    debug!(baud = rate, error = %e, "no well-formed reply at this rate");
                    // A count, not the bytes: they may be a card's text at another rate.
                    if seen.is_none() && self.received_total > 0 {
                        seen = Some(format!(
                            "at {rate} baud it sent {} bytes that form no GA 467 frame",
                            self.received_total
                        ));
                    }
                }
            }
        }
        Err(ReaderError::NoReader {
            rates: rates.to_vec(),
            detail: seen.unwrap_or_else(|| "silence at every rate".into()),
        })
    }

    fn all_21(&self) -> ReaderError {
        self.unsupported(
            "SW3 21 (bad command) to a standard command: non-GA firmware or a non-GA mode".into(),
        )
    }

    /// Starts a session: SAM status, then `61 FF` once if configured (a failure there is logged,
    /// not fatal).
    pub fn start(&mut self) -> Result<(), ReaderError> {
        self.sam_status()?;
        if let (Some(n), false) = (self.opts.max_rf_byte, self.rf_set) {
            match self.set_max_rf_byte(n) {
                Ok(()) => self.rf_set = true,
                Err(e @ ReaderError::Io { .. }) => return Err(e),
                Err(e) => warn!(error = %e, "reader refused the max RF frame size; continuing"),
            }
        }
        Ok(())
    }

    /// `11 FF`: Ok when the SAM answers 90; SW3 60, 66 and the like are [`ReaderError::Sam`];
    /// SW3 21 means the device is not speaking GA 467 ([`ReaderError::UnsupportedProtocol`]).
    pub fn sam_status(&mut self) -> Result<(), ReaderError> {
        let r = self.transact(&Command::SamStatus)?;
        if r.sw3 == status::BAD_COMMAND {
            return Err(self.all_21());
        }
        sam_ok(r.sw3)?;
        self.last_status = Some(Instant::now());
        Ok(())
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

    /// One poll: find → select → read (`30 01`, or `30 10` with fingerprints), with re-read
    /// suppression, then `30 03` for a new card when configured.
    ///
    /// The text block is read on every poll while a card is present and compared with the last card
    /// reported. This costs one read per poll (about 0.11 s at 115200) but is correct whatever
    /// the reader answers to `20 01` for a card it has already read (§13 question 6), and a card
    /// swapped for another between two polls is always a new read. No-card outcomes (80, 81, 41)
    /// count towards re-arming; errors leave the suppression state as it was. While no card is
    /// present the SAM status is re-checked every `status_recheck`.
    pub fn poll(&mut self) -> Result<PollOutcome, ReaderError> {
        let Some(mut card) = self.try_read_card()? else {
            self.empty_polls = self.empty_polls.saturating_add(1);
            if self.empty_polls >= self.opts.rearm_after_empty_polls {
                self.last_text = None;
            }
            // The first check is `start`'s; from then on, one every `status_recheck`.
            let since = *self.last_status.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.opts.status_recheck {
                self.sam_status()?;
            }
            return Ok(PollOutcome::NoCard);
        };
        self.empty_polls = 0;
        if self.last_text.as_ref() == Some(&card.text) {
            return Ok(PollOutcome::StillPresent);
        }
        self.last_text = Some(card.text);
        if self.opts.appended_address {
            card.appended_address = self.read_appended_address()?;
        }
        Ok(PollOutcome::Card(Box::new(card)))
    }

    /// find → select → read, without suppression or appended address. `None` when the card is
    /// absent or moved.
    pub fn try_read_card(&mut self) -> Result<Option<CardRead>, ReaderError> {
        let find = self.transact(&Command::FindCard)?;
        if find.sw3 == status::BAD_COMMAND {
            return Err(self.all_21());
        }
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
        let cmd = if self.opts.fingerprint {
            Command::ReadTextPhotoFingerprint
        } else {
            Command::ReadTextPhoto
        };
        let read = self.transact(&cmd)?;
        if expect(cmd, read.sw3, &[status::OK, status::READ_FAILED])? == status::READ_FAILED {
            return Ok(None);
        }
        parse_read_reply(cmd, &read.data).map(Some)
    }

    /// `30 03` for the selected card. Only port failures are errors: the card itself was read, so
    /// anything else becomes [`AppendedAddress::Unreadable`].
    pub fn read_appended_address(&mut self) -> Result<AppendedAddress, ReaderError> {
        let cmd = Command::ReadAppendedAddress;
        match self.transact(&cmd) {
            Ok(r) => Ok(parse_appended_address(r.sw3, &r.data)),
            Err(e @ ReaderError::Io { .. }) => Err(e),
            Err(e) => Ok(AppendedAddress::Unreadable(e.to_string())),
        }
    }
}

/// Interprets a `30 03` reply: SW3 91 or an empty field is "none"; the data is UCS-2 text
/// (presumably 70 bytes, §13 question 2).
pub fn parse_appended_address(sw3: u8, data: &[u8]) -> AppendedAddress {
    match sw3 {
        status::NO_CONTENT => AppendedAddress::Absent,
        status::OK if data.len() % 2 == 1 || data.len() > TEXT_LEN => AppendedAddress::Unreadable(
            format!("{} data bytes is not UCS-2 address text", data.len()),
        ),
        status::OK => {
            let (text, lossy) = decode_ucs2(data);
            let text = text.trim().to_owned();
            if lossy {
                AppendedAddress::Unreadable("invalid UTF-16 in the appended address".into())
            } else if text.is_empty() {
                AppendedAddress::Absent
            } else {
                AppendedAddress::Present(text)
            }
        }
        other => {
            AppendedAddress::Unreadable(format!("SW3 {other:#04x} {}", status::describe(other)))
        }
    }
}

/// Splits and checks read data. `30 01`: text length (256), photo length (1024), text, photo.
/// `30 10`: text length, photo length, fingerprint length (0, 512 or 1024), text, photo,
/// fingerprint. The lengths must be exactly these and agree with the data size (§5).
pub fn parse_read_reply(command: Command, data: &[u8]) -> Result<CardRead, ReaderError> {
    let bad = |reason: String| ReaderError::BadReply { command, reason };
    let with_fp = command == Command::ReadTextPhotoFingerprint;
    let header = if with_fp { 6 } else { 4 };
    let (Some(text_len), Some(photo_len)) = (be16(data, 0), be16(data, 2)) else {
        return Err(bad(format!("{} data bytes, no length fields", data.len())));
    };
    let fp_len = if with_fp {
        let len = be16(data, 4).ok_or_else(|| {
            bad(format!(
                "{} data bytes, no fingerprint length field",
                data.len()
            ))
        })?;
        usize::from(len)
    } else {
        0
    };
    if usize::from(text_len) != TEXT_LEN || usize::from(photo_len) != PHOTO_LEN {
        return Err(bad(format!(
            "text length {text_len} and photo length {photo_len}, expected {TEXT_LEN} and {PHOTO_LEN}"
        )));
    }
    if !FINGERPRINT_LENS.contains(&fp_len) {
        return Err(bad(format!(
            "fingerprint length {fp_len}, expected 0, 512 or 1024"
        )));
    }
    let expected = header + TEXT_LEN + PHOTO_LEN + fp_len;
    if data.len() != expected {
        return Err(bad(format!(
            "{} data bytes, expected {expected}",
            data.len()
        )));
    }
    let text: [u8; TEXT_LEN] = data
        .get(header..header + TEXT_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| bad("text block out of range".into()))?;
    let photo_start = header + TEXT_LEN;
    let photo_wlt = data
        .get(photo_start..photo_start + PHOTO_LEN)
        .unwrap_or_default()
        .to_vec();
    let fingerprint = data
        .get(photo_start + PHOTO_LEN..)
        .filter(|fp| !fp.is_empty())
        .map(<[u8]>::to_vec);
    let parsed = parse_text(&text).map_err(|e| bad(e.to_string()))?;
    Ok(CardRead {
        text,
        photo_wlt,
        card_type: parsed.card_type(),
        parsed,
        fingerprint,
        appended_address: AppendedAddress::NotRequested,
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
