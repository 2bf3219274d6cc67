//! ISO/IEC 7816-4 command and response APDUs: encoding (short and extended length) and total
//! parsing (the emulator parses what the reader sends; the reader parses what the chip sends).

use std::fmt;

/// A command APDU. `le` is the expected response length: `None` (no Le field), or 1..=65536
/// (256 is Le `00` in short form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    pub le: Option<usize>,
}

impl Command {
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }

    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    pub fn with_le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    pub fn header(&self) -> [u8; 4] {
        [self.cla, self.ins, self.p1, self.p2]
    }

    /// Whether the command needs extended length fields.
    pub fn is_extended(&self) -> bool {
        self.data.len() > 255 || self.le.is_some_and(|le| le > 256)
    }

    /// The encoded APDU: short form when it fits, extended otherwise.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 9);
        out.extend_from_slice(&self.header());
        if self.is_extended() {
            if !self.data.is_empty() {
                out.push(0);
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                if self.data.is_empty() {
                    out.push(0);
                }
                out.extend_from_slice(&((le % 65536) as u16).to_be_bytes());
            }
        } else {
            if !self.data.is_empty() {
                out.push(self.data.len() as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                out.push((le % 256) as u8);
            }
        }
        out
    }

    /// Parses an encoded command APDU (cases 1 to 4, short or extended).
    pub fn parse(bytes: &[u8]) -> Result<Command, ApduError> {
        let (header, body) = match bytes {
            [a, b, c, d, rest @ ..] => ([*a, *b, *c, *d], rest),
            _ => return Err(ApduError::new("command shorter than its 4-byte header", 0)),
        };
        let mut cmd = Command::new(header[0], header[1], header[2], header[3]);
        match body {
            [] => {}
            [le] => cmd.le = Some(if *le == 0 { 256 } else { usize::from(*le) }),
            [0, rest @ ..] if rest.len() >= 2 => {
                // Extended: Lc (2 bytes) or Le (2 bytes).
                let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let after = &rest[2..];
                if after.is_empty() {
                    cmd.le = Some(if n == 0 { 65536 } else { n });
                } else {
                    if after.len() < n {
                        return Err(ApduError::new("extended Lc runs past the end", 5));
                    }
                    cmd.data = after[..n].to_vec();
                    match &after[n..] {
                        [] => {}
                        [a, b] => {
                            let le = usize::from(u16::from_be_bytes([*a, *b]));
                            cmd.le = Some(if le == 0 { 65536 } else { le });
                        }
                        _ => return Err(ApduError::new("extended Le is not 2 bytes", 7 + n)),
                    }
                }
            }
            [lc, rest @ ..] => {
                let n = usize::from(*lc);
                if rest.len() < n {
                    return Err(ApduError::new("Lc runs past the end", 4));
                }
                cmd.data = rest[..n].to_vec();
                match &rest[n..] {
                    [] => {}
                    [le] => cmd.le = Some(if *le == 0 { 256 } else { usize::from(*le) }),
                    _ => return Err(ApduError::new("bytes after Le", 5 + n)),
                }
            }
        }
        Ok(cmd)
    }
}

/// A response APDU: data ‖ SW1 SW2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl Response {
    pub fn new(data: Vec<u8>, sw: u16) -> Self {
        Response { data, sw }
    }

    pub fn status(sw: u16) -> Self {
        Response {
            data: Vec::new(),
            sw,
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Response, ApduError> {
        match bytes.len() {
            0 | 1 => Err(ApduError::new("response shorter than its status word", 0)),
            n => Ok(Response {
                data: bytes[..n - 2].to_vec(),
                sw: u16::from_be_bytes([bytes[n - 2], bytes[n - 1]]),
            }),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        out.extend_from_slice(&self.sw.to_be_bytes());
        out
    }

    pub fn is_ok(&self) -> bool {
        self.sw == SW_OK
    }
}

pub const SW_OK: u16 = 0x9000;
pub const SW_WRONG_LENGTH: u16 = 0x6700;
pub const SW_SECURITY_NOT_SATISFIED: u16 = 0x6982;
pub const SW_AUTH_FAILED: u16 = 0x6300;
pub const SW_SM_MISSING: u16 = 0x6987;
pub const SW_SM_INCORRECT: u16 = 0x6988;
pub const SW_FILE_NOT_FOUND: u16 = 0x6A82;
pub const SW_WRONG_PARAMS: u16 = 0x6A86;
pub const SW_INCORRECT_DATA: u16 = 0x6A80;
pub const SW_WRONG_P1P2: u16 = 0x6B00;
pub const SW_INS_NOT_SUPPORTED: u16 = 0x6D00;
pub const SW_CLA_NOT_SUPPORTED: u16 = 0x6E00;
pub const SW_CONDITIONS: u16 = 0x6985;
pub const SW_FUNCTION_NOT_SUPPORTED: u16 = 0x6A81;
/// BAC refused by a PACE-only chip (seen on German passports, icao9303.md §2.6).
pub const SW_REFERENCE_DATA_NOT_FOUND: u16 = 0x6A88;
pub const SW_END_OF_FILE: u16 = 0x6282;

/// Sends `apdu` through `exchange` and gathers the whole answer: `6Cxx` (wrong Le) sends it again
/// with the Le the card named, `61xx` (more data) is followed by GET RESPONSE, at most 64 times.
/// Short-length cards answer long secure messaging replies (an RSA-2048 Active Authentication
/// signature is about 283 bytes) this way.
pub fn exchange_whole<E, F>(apdu: &[u8], exchange: &mut F) -> Result<Vec<u8>, E>
where
    F: FnMut(&[u8]) -> Result<Vec<u8>, E>,
{
    let mut resp = exchange(apdu)?;
    if let [.., 0x6C, le] = resp[..]
        && apdu.len() >= 5
    {
        let mut again = apdu.to_vec();
        if let Some(last) = again.last_mut() {
            *last = le;
        }
        resp = exchange(&again)?;
    }
    let mut data = Vec::new();
    for _ in 0..64 {
        match resp[..] {
            [ref body @ .., 0x61, le] => {
                data.extend_from_slice(body);
                resp = exchange(&[0x00, 0xC0, 0x00, 0x00, le])?;
            }
            _ => break,
        }
    }
    data.extend_from_slice(&resp);
    Ok(data)
}

/// A short text for a status word, for error messages.
pub fn sw_text(sw: u16) -> &'static str {
    match sw {
        SW_OK => "success",
        SW_WRONG_LENGTH => "wrong length",
        SW_SECURITY_NOT_SATISFIED => "security status not satisfied",
        SW_SM_MISSING => "secure messaging data objects missing",
        SW_SM_INCORRECT => "secure messaging data objects incorrect",
        SW_FILE_NOT_FOUND => "file or application not found",
        SW_WRONG_PARAMS => "incorrect parameters",
        SW_INCORRECT_DATA => "incorrect data",
        SW_WRONG_P1P2 => "wrong parameters P1-P2 (offset outside the file)",
        SW_INS_NOT_SUPPORTED => "instruction not supported",
        SW_CLA_NOT_SUPPORTED => "class not supported",
        SW_CONDITIONS => "conditions of use not satisfied",
        SW_FUNCTION_NOT_SUPPORTED => "function not supported",
        SW_REFERENCE_DATA_NOT_FOUND => "referenced data not found",
        SW_END_OF_FILE => "end of file reached before Le bytes",
        0x6300..=0x63FF => "authentication failed",
        _ => "unexpected status",
    }
}

/// A malformed APDU: what, and the byte offset where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (at byte {offset})")]
pub struct ApduError {
    pub what: &'static str,
    pub offset: usize,
}

impl ApduError {
    fn new(what: &'static str, offset: usize) -> Self {
        ApduError { what, offset }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02X} {:02X} {:02X} {:02X} (Lc {}, Le {:?})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_cases_round_trip() {
        let cases = [
            Command::new(0, 0x84, 0, 0),
            Command::new(0, 0x84, 0, 0).with_le(8),
            Command::new(0, 0xB0, 0, 0).with_le(256),
            Command::new(0, 0xA4, 2, 0x0C).with_data(vec![1, 0x1E]),
            Command::new(0, 0x82, 0, 0)
                .with_data(vec![7; 40])
                .with_le(40),
            Command::new(0, 0xB0, 0, 0).with_le(1000),
            Command::new(0, 0xD6, 0, 0).with_data(vec![1; 300]),
            Command::new(0, 0xD6, 0, 0)
                .with_data(vec![1; 300])
                .with_le(65536),
        ];
        for c in cases {
            assert_eq!(Command::parse(&c.encode()).unwrap(), c, "{c}");
        }
        assert_eq!(
            Command::new(0, 0x84, 0, 0).with_le(8).encode(),
            [0, 0x84, 0, 0, 8]
        );
    }

    #[test]
    fn malformed_commands_are_errors() {
        assert!(Command::parse(&[0, 1, 2]).is_err());
        assert!(Command::parse(&[0, 1, 2, 3, 5, 1]).is_err());
        assert!(Command::parse(&[0, 1, 2, 3, 1, 1, 1, 1]).is_err());
        assert!(Response::parse(&[0x90]).is_err());
        assert_eq!(Response::parse(&[1, 0x90, 0]).unwrap().data, [1]);
    }
}
