//! Decoding a captured byte stream (a serial sniffer's log of both directions) into frames, for
//! `countersign inspect ga467`. Unlike [`crate::FrameDecoder`], which serves a live link, this
//! works on the whole capture at once and keeps offsets: every byte ends up in a frame, a bad
//! frame, or garbage, and decoding always continues after a problem.

use crate::command::Command;
use crate::frame::{HEADER_LEN, MAX_LEN, MIN_COMMAND_LEN, PREAMBLE, xor};
use crate::reader::{AppendedAddress, CardRead, parse_appended_address, parse_read_reply};

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Host → reader: the body starts with a known CMD PARA (or is too short for a reply).
    Command,
    /// Reader → host: SW1 SW2 SW3 and data.
    Response,
}

impl Direction {
    /// `command` or `response`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Response => "response",
        }
    }
}

/// What a well-formed frame holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A host command; `command` is `None` for CMD/PARA bytes this driver does not know.
    Command {
        /// The recognised command.
        command: Option<Command>,
        /// CMD and PARA as sent.
        cmd_para: (u8, u8),
    },
    /// A reader reply.
    Response {
        /// The status bytes.
        sw: [u8; 3],
        /// Data after SW3, CHK excluded.
        data_len: usize,
        /// The last command seen before it in the capture.
        in_reply_to: Option<Command>,
        /// What the data means for that command.
        payload: Payload,
    },
}

/// The decoded data of a reply, when the command it answers is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Nothing to decode (plain status, or unknown command).
    None,
    /// `12 FF`: the 16 SAM ID bytes.
    SamId([u8; 16]),
    /// `30 01` / `30 10` with SW3 90: the card, or why its data is malformed. Boxed: a read is
    /// ~1.6 KB.
    Card(Box<Result<CardRead, String>>),
    /// `30 03`.
    AppendedAddress(AppendedAddress),
}

/// One piece of the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A frame that passed the length and XOR checks.
    Frame {
        /// Offset of its preamble.
        offset: usize,
        /// Wire bytes, preamble to CHK.
        len: usize,
        /// Which way it went.
        direction: Direction,
        /// What it holds.
        content: Content,
    },
    /// Bytes outside any frame.
    Garbage {
        /// Offset of the first byte.
        offset: usize,
        /// The bytes (the caller shows as many as it likes).
        bytes: Vec<u8>,
    },
    /// A preamble whose frame failed a check; decoding resumed after it.
    BadFrame {
        /// Offset of the preamble.
        offset: usize,
        /// Bytes attributed to it.
        len: usize,
        /// Why it was rejected.
        reason: String,
    },
}

/// Splits a capture into frames, bad frames and garbage, in order.
pub fn inspect(bytes: &[u8]) -> Vec<Item> {
    let mut items = Vec::new();
    let mut last_command: Option<Command> = None;
    let mut garbage_start: Option<usize> = None;
    let mut pos = 0;
    let flush = |items: &mut Vec<Item>, start: &mut Option<usize>, end: usize| {
        if let Some(s) = start.take() {
            items.push(Item::Garbage {
                offset: s,
                bytes: bytes.get(s..end).unwrap_or_default().to_vec(),
            });
        }
    };
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or_default();
        if !rest.starts_with(&PREAMBLE) {
            garbage_start.get_or_insert(pos);
            pos += 1;
            continue;
        }
        flush(&mut items, &mut garbage_start, pos);
        let next_preamble = |from: usize, to: usize| {
            bytes
                .get(from..to.min(bytes.len()))
                .and_then(|w| w.windows(PREAMBLE.len()).position(|w| w == PREAMBLE))
                .map(|i| from + i)
        };
        let Some(len_bytes) = rest.get(PREAMBLE.len()..HEADER_LEN) else {
            items.push(Item::BadFrame {
                offset: pos,
                len: rest.len(),
                reason: format!(
                    "truncated: capture ends {} bytes into a frame header",
                    rest.len()
                ),
            });
            break;
        };
        let len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]);
        if !(MIN_COMMAND_LEN..=MAX_LEN).contains(&len) {
            let end = next_preamble(pos + 1, bytes.len()).unwrap_or(bytes.len());
            items.push(Item::BadFrame {
                offset: pos,
                len: end - pos,
                reason: format!(
                    "length field {len} is outside {MIN_COMMAND_LEN}..={MAX_LEN} (false preamble)"
                ),
            });
            pos = end;
            continue;
        }
        let total = HEADER_LEN + usize::from(len);
        let Some(frame) = rest.get(..total) else {
            // The frame runs past the end of the capture, or a later frame starts inside it.
            let end = next_preamble(pos + 1, bytes.len()).unwrap_or(bytes.len());
            items.push(Item::BadFrame {
                offset: pos,
                len: end - pos,
                reason: format!("truncated: {} of {total} bytes", end - pos),
            });
            pos = end;
            continue;
        };
        let covered = frame.get(PREAMBLE.len()..total - 1).unwrap_or_default();
        let chk = frame.last().copied().unwrap_or_default();
        if xor(covered) != chk {
            // A frame cut short by the next one: report the cut, resume at the next preamble.
            if let Some(next) = next_preamble(pos + 1, pos + total) {
                items.push(Item::BadFrame {
                    offset: pos,
                    len: next - pos,
                    reason: format!(
                        "truncated: {} of {total} bytes, the next frame starts at offset {next}",
                        next - pos
                    ),
                });
                pos = next;
                continue;
            }
            let additive = covered.iter().fold(chk, |a, b| a.wrapping_add(*b)) == 0;
            let reason = if additive {
                "XOR check fails but an additive checksum passes: vendor extension frame, \
                 not GA 467"
                    .to_owned()
            } else {
                format!(
                    "checksum mismatch: XOR of length and body is {:#04x}, CHK is {chk:#04x}",
                    xor(covered)
                )
            };
            items.push(Item::BadFrame {
                offset: pos,
                len: total,
                reason,
            });
            pos += total;
            continue;
        }
        let body = frame.get(HEADER_LEN..total - 1).unwrap_or_default();
        let (direction, content) = classify(body, &mut last_command);
        items.push(Item::Frame {
            offset: pos,
            len: total,
            direction,
            content,
        });
        pos += total;
    }
    flush(&mut items, &mut garbage_start, bytes.len());
    items
}

fn classify(body: &[u8], last_command: &mut Option<Command>) -> (Direction, Content) {
    if let [cmd, para, data @ ..] = body {
        let command = Command::from_frame(*cmd, *para, data);
        if command.is_some() || body.len() < 3 {
            *last_command = command;
            return (
                Direction::Command,
                Content::Command {
                    command,
                    cmd_para: (*cmd, *para),
                },
            );
        }
    }
    let [sw1, sw2, sw3, data @ ..] = body else {
        // Unreachable with len >= 3 (body >= 2 bytes handled above); kept total.
        return (
            Direction::Command,
            Content::Command {
                command: None,
                cmd_para: (
                    body.first().copied().unwrap_or(0),
                    body.get(1).copied().unwrap_or(0),
                ),
            },
        );
    };
    let in_reply_to = *last_command;
    let payload = match (in_reply_to, *sw3) {
        (Some(Command::SamId), 0x90) => data
            .try_into()
            .map_or(Payload::None, |id: [u8; 16]| Payload::SamId(id)),
        (Some(c @ (Command::ReadTextPhoto | Command::ReadTextPhotoFingerprint)), 0x90) => {
            Payload::Card(Box::new(
                parse_read_reply(c, data).map_err(|e| e.to_string()),
            ))
        }
        (Some(Command::ReadAppendedAddress), sw3) => {
            Payload::AppendedAddress(parse_appended_address(sw3, data))
        }
        _ => Payload::None,
    };
    (
        Direction::Response,
        Content::Response {
            sw: [*sw1, *sw2, *sw3],
            data_len: data.len(),
            in_reply_to,
            payload,
        },
    )
}

/// Parses hex text (pairs of hex digits, any whitespace between and inside pairs is allowed)
/// when `bytes` is nothing but hex digits and whitespace; `None` for binary input. An odd number
/// of digits is an error naming the position of the last one.
pub fn hex_text(bytes: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let is_text = bytes
        .iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    if !is_text || bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let digits: Vec<(usize, u8)> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_hexdigit())
        .map(|(i, b)| (i, *b))
        .collect();
    if digits.len() % 2 == 1 {
        let at = digits.last().map_or(0, |(i, _)| *i);
        return Some(Err(format!(
            "odd number of hex digits ({}); the last one is at byte {at}",
            digits.len()
        )));
    }
    let value = |d: u8| char::from(d).to_digit(16).unwrap_or(0) as u8;
    Some(Ok(digits
        .chunks_exact(2)
        .map(|p| value(p[0].1) << 4 | value(p[1].1))
        .collect()))
}

#[cfg(test)]
mod tests;
