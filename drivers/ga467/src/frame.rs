//! Frame codec (reference §2).
//!
//! ```text
//! host -> reader:  AA AA AA 96 69 | LenHi LenLo | CMD | PARA | Data…       | CHK
//! reader -> host:  AA AA AA 96 69 | LenHi LenLo | SW1 | SW2 | SW3 | Data… | CHK
//! ```
//!
//! `len` counts every byte after the length field, CHK included; CHK is the XOR of the length bytes
//! and the body (the preamble is excluded). The decoder is a streaming state machine because serial
//! input arrives in arbitrary pieces, with garbage and stray bytes that must never stop it.

use thiserror::Error;

/// The five bytes that open every frame in both directions.
pub const PREAMBLE: [u8; 5] = [0xAA, 0xAA, 0xAA, 0x96, 0x69];

/// Bytes before the body: preamble plus the two length bytes.
pub const HEADER_LEN: usize = PREAMBLE.len() + 2;

/// Smallest `len` of a command frame: CMD, PARA, CHK.
pub const MIN_COMMAND_LEN: u16 = 3;

/// Smallest `len` of a response frame: SW1, SW2, SW3, CHK.
pub const MIN_RESPONSE_LEN: u16 = 4;

/// Largest `len` accepted. The largest real reply is `0x090A`; anything above this cap is a false
/// preamble in garbage, and waiting for its "body" would stall the stream.
pub const MAX_LEN: u16 = 4096;

/// What went wrong while decoding a frame. Every variant is recoverable: the decoder resyncs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The XOR over the length bytes and body disagrees with the CHK byte.
    #[error(
        "frame checksum mismatch (length field {len}): XOR of length+body is {expected:#04x}, \
         CHK byte is {got:#04x}"
    )]
    BadChecksum {
        /// Checksum computed over the received bytes.
        expected: u8,
        /// Checksum byte carried by the frame.
        got: u8,
        /// The frame's length field.
        len: u16,
    },
    /// The length field after a preamble is outside the accepted range (a false preamble).
    #[error("frame length field {len} (at offset 5 after a preamble) is outside {min}..={max}")]
    BadLength {
        /// The length field as received.
        len: u16,
        /// Smallest length this decoder accepts.
        min: u16,
        /// Largest length this decoder accepts.
        max: u16,
    },
    /// A frame started but its bytes stopped coming before it was complete.
    #[error("frame truncated: received {have} of {need} bytes (counted from the preamble)")]
    Truncated {
        /// Bytes received, preamble included.
        have: usize,
        /// Bytes the frame needs (`7 + len`), when the length field was received.
        need: usize,
    },
    /// The XOR check fails but the additive check passes (the byte sum from offset 5 to the end is
    /// 0 mod 256): a vendor extension speaking GA-looking frames with another checksum (§10).
    #[error(
        "frame with length field {len} fails the XOR check but passes an additive checksum: \
         vendor extension frames (e.g. CVR-100AU), not GA 467"
    )]
    AdditiveChecksum {
        /// The frame's length field.
        len: u16,
    },
    /// A decoded body is too short for the frame kind (e.g. a response without SW1..SW3).
    #[error("frame body of {len} bytes is too short: a {kind} needs at least {min}")]
    ShortBody {
        /// Body length (bytes between the length field and CHK).
        len: usize,
        /// Minimum for this frame kind.
        min: usize,
        /// "response" or "command".
        kind: &'static str,
    },
}

/// A decoded reader reply: the three status bytes and the data that follows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Always `00` in captures.
    pub sw1: u8,
    /// Always `00` in captures.
    pub sw2: u8,
    /// The status that matters (§4).
    pub sw3: u8,
    /// Bytes after SW3, CHK excluded.
    pub data: Vec<u8>,
}

impl Response {
    /// Splits a decoded response body (as returned by [`FrameDecoder::next_frame`]).
    pub fn from_body(body: &[u8]) -> Result<Self, FrameError> {
        match body {
            [sw1, sw2, sw3, data @ ..] => Ok(Self {
                sw1: *sw1,
                sw2: *sw2,
                sw3: *sw3,
                data: data.to_vec(),
            }),
            _ => Err(FrameError::ShortBody {
                len: body.len(),
                min: 3,
                kind: "response",
            }),
        }
    }

    /// Encodes this response as a wire frame.
    pub fn encode(&self) -> Vec<u8> {
        encode_response(self.sw1, self.sw2, self.sw3, &self.data)
    }
}

/// XOR of all bytes: the GA 467 checksum when applied to length bytes + body.
pub fn xor(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// Builds a frame around `head` (command or status bytes) and `data`.
///
/// A body longer than 65534 bytes cannot be represented; the length field saturates and every
/// decoder will reject the frame. Nothing in the protocol comes near that.
fn encode_frame(head: &[u8], data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(head.len() + data.len() + 1).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(HEADER_LEN + usize::from(len));
    out.extend_from_slice(&PREAMBLE);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(head);
    out.extend_from_slice(data);
    let chk = xor(out.get(PREAMBLE.len()..).unwrap_or_default());
    out.push(chk);
    out
}

/// Encodes a host → reader command frame.
pub fn encode_command(cmd: u8, para: u8, data: &[u8]) -> Vec<u8> {
    encode_frame(&[cmd, para], data)
}

/// Encodes a reader → host response frame (used by the simulator and tests).
pub fn encode_response(sw1: u8, sw2: u8, sw3: u8, data: &[u8]) -> Vec<u8> {
    encode_frame(&[sw1, sw2, sw3], data)
}

/// Streaming frame decoder: push bytes as they arrive, pull frames out.
///
/// Garbage before a preamble is dropped as soon as it is seen (at most four bytes that could start a
/// preamble are kept), so the buffer holds at most one partial frame plus whatever was pushed and not
/// yet pulled.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    min_len: u16,
    max_len: u16,
    discarded: u64,
}

impl FrameDecoder {
    /// A decoder accepting `min_len..=MAX_LEN` in the length field (`min_len` is at least 1: the
    /// CHK byte).
    pub fn new(min_len: u16) -> Self {
        Self {
            buf: Vec::new(),
            min_len: min_len.max(1),
            max_len: MAX_LEN,
            discarded: 0,
        }
    }

    /// Decoder for reader replies (host side).
    pub fn for_responses() -> Self {
        Self::new(MIN_RESPONSE_LEN)
    }

    /// Decoder for host commands (simulator side).
    pub fn for_commands() -> Self {
        Self::new(MIN_COMMAND_LEN)
    }

    /// Appends received bytes and drops leading garbage right away.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.hunt();
    }

    /// Forgets buffered bytes (e.g. before sending a new command).
    pub fn clear(&mut self) {
        self.discarded += self.buf.len() as u64;
        self.buf.clear();
    }

    /// Total garbage bytes dropped so far (diagnostics for "reader speaks something else").
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// True when a preamble has been seen and the rest of its frame is still awaited.
    pub fn in_frame(&self) -> bool {
        self.buf.starts_with(&PREAMBLE)
    }

    /// Call when input has stopped (byte-gap timeout): a frame in progress is reported as
    /// [`FrameError::Truncated`] and dropped; otherwise `None`.
    pub fn end_of_input(&mut self) -> Option<FrameError> {
        if !self.in_frame() {
            return None;
        }
        let have = self.buf.len();
        let need = self
            .length_field()
            .map_or(HEADER_LEN, |len| HEADER_LEN + usize::from(len));
        self.clear();
        Some(FrameError::Truncated { have, need })
    }

    /// The next complete frame's body (bytes between the length field and CHK), an error for a
    /// rejected frame (after which decoding resumes), or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        self.hunt();
        if !self.in_frame() {
            return None;
        }
        let len = self.length_field()?;
        if len < self.min_len || len > self.max_len {
            self.drop_front(1);
            return Some(Err(FrameError::BadLength {
                len,
                min: self.min_len,
                max: self.max_len,
            }));
        }
        let total = HEADER_LEN + usize::from(len);
        let frame = self.buf.get(..total)?;
        let (covered, chk) = match frame.get(PREAMBLE.len()..) {
            Some([covered @ .., chk]) => (covered, *chk),
            _ => return None, // unreachable: len >= 1 so the frame has a CHK byte
        };
        let expected = xor(covered);
        if expected != chk {
            let additive = covered.iter().fold(chk, |acc: u8, b| acc.wrapping_add(*b)) == 0;
            // Resume one byte past this preamble: a real frame may hide inside a false one.
            self.drop_front(1);
            if additive {
                return Some(Err(FrameError::AdditiveChecksum { len }));
            }
            return Some(Err(FrameError::BadChecksum {
                expected,
                got: chk,
                len,
            }));
        }
        let body = frame
            .get(HEADER_LEN..total - 1)
            .unwrap_or_default()
            .to_vec();
        self.buf.drain(..total);
        Some(Ok(body))
    }

    fn length_field(&self) -> Option<u16> {
        let bytes = self.buf.get(PREAMBLE.len()..HEADER_LEN)?;
        Some(u16::from_be_bytes(bytes.try_into().ok()?))
    }

    /// Drops bytes up to the first preamble; without one, keeps only a possible preamble prefix.
    fn hunt(&mut self) {
        let start = self
            .buf
            .windows(PREAMBLE.len())
            .position(|w| w == PREAMBLE)
            .unwrap_or_else(|| self.buf.len().saturating_sub(PREAMBLE.len() - 1));
        self.drop_front(start);
    }

    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        if n > 0 {
            self.buf.drain(..n);
            self.discarded += n as u64;
        }
    }
}

/// Hex for debug logs, cut after 32 bytes (read replies carry personal data).
pub(crate) fn hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(32).map(|b| format!("{b:02X}")).collect();
    let mut s = shown.join(" ");
    if bytes.len() > 32 {
        s.push_str(&format!(" … ({} bytes)", bytes.len()));
    }
    s
}

#[cfg(test)]
mod tests;
