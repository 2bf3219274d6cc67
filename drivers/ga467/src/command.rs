//! Host commands (reference §3) and how long to wait for each reply (§6).

use std::fmt;
use std::time::Duration;

use crate::frame::{HEADER_LEN, encode_command};

/// Every command this driver sends. All carry no data except [`Command::SetMaxRfByte`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `10 FF` reset the SAM (复位). Normal operation never needs it.
    ResetSam,
    /// `11 FF` SAM status (状态检测); also the baud probe.
    SamStatus,
    /// `12 FF` SAM management info: 16 bytes of SAM ID.
    SamId,
    /// `20 01` find card: SW3 9F found, 80 none.
    FindCard,
    /// `20 02` select card: SW3 90, 81 failed.
    SelectCard,
    /// `30 01` read text (256 B) and WLT photo (1024 B).
    ReadTextPhoto,
    /// `30 03` read the appended address (追加住址).
    ReadAppendedAddress,
    /// `30 10` read text, photo and fingerprints.
    ReadTextPhotoFingerprint,
    /// `61 FF xx` maximum RF frame size between SAM and card (SDK `SDT_SetMaxRFByte`, usually 0x50).
    SetMaxRfByte(u8),
}

/// Timeout for commands with short replies (§6 recommends 500–1000 ms).
pub const SHORT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Floor for read commands (§6: at least 2 s at 115200).
pub const READ_TIMEOUT_FLOOR: Duration = Duration::from_millis(2000);
/// Margin added to the wire time of a read reply (§6: about 1.5 s).
pub const READ_TIMEOUT_MARGIN: Duration = Duration::from_millis(1500);

impl Command {
    /// The CMD and PARA bytes.
    pub fn cmd_para(&self) -> (u8, u8) {
        match self {
            Self::ResetSam => (0x10, 0xFF),
            Self::SamStatus => (0x11, 0xFF),
            Self::SamId => (0x12, 0xFF),
            Self::FindCard => (0x20, 0x01),
            Self::SelectCard => (0x20, 0x02),
            Self::ReadTextPhoto => (0x30, 0x01),
            Self::ReadAppendedAddress => (0x30, 0x03),
            Self::ReadTextPhotoFingerprint => (0x30, 0x10),
            Self::SetMaxRfByte(_) => (0x61, 0xFF),
        }
    }

    /// Data bytes after PARA (empty for all but `61 FF`).
    pub fn data(&self) -> Vec<u8> {
        match self {
            Self::SetMaxRfByte(n) => vec![*n],
            _ => Vec::new(),
        }
    }

    /// The complete wire frame.
    pub fn encode(&self) -> Vec<u8> {
        let (cmd, para) = self.cmd_para();
        encode_command(cmd, para, &self.data())
    }

    /// Recognises a decoded command frame (simulator side). Unknown commands, and known ones with
    /// the wrong amount of data, give `None` (a reader answers SW3 21).
    pub fn from_frame(cmd: u8, para: u8, data: &[u8]) -> Option<Self> {
        let command = match (cmd, para, data) {
            (0x61, 0xFF, [n]) => return Some(Self::SetMaxRfByte(*n)),
            (_, _, [_, ..]) => return None,
            (0x10, 0xFF, []) => Self::ResetSam,
            (0x11, 0xFF, []) => Self::SamStatus,
            (0x12, 0xFF, []) => Self::SamId,
            (0x20, 0x01, []) => Self::FindCard,
            (0x20, 0x02, []) => Self::SelectCard,
            (0x30, 0x01, []) => Self::ReadTextPhoto,
            (0x30, 0x03, []) => Self::ReadAppendedAddress,
            (0x30, 0x10, []) => Self::ReadTextPhotoFingerprint,
            _ => return None,
        };
        Some(command)
    }

    /// Every command without data, plus `61 FF 50`.
    pub const ALL: [Command; 9] = [
        Self::ResetSam,
        Self::SamStatus,
        Self::SamId,
        Self::FindCard,
        Self::SelectCard,
        Self::ReadTextPhoto,
        Self::ReadAppendedAddress,
        Self::ReadTextPhotoFingerprint,
        Self::SetMaxRfByte(0x50),
    ];

    /// Stable snake_case key for JSON and scenario files: `sam_status`, `find_card`, ...
    pub fn key(&self) -> &'static str {
        match self {
            Self::ResetSam => "reset_sam",
            Self::SamStatus => "sam_status",
            Self::SamId => "sam_id",
            Self::FindCard => "find_card",
            Self::SelectCard => "select_card",
            Self::ReadTextPhoto => "read_text_photo",
            Self::ReadAppendedAddress => "read_appended_address",
            Self::ReadTextPhotoFingerprint => "read_text_photo_fingerprint",
            Self::SetMaxRfByte(_) => "set_max_rf_byte",
        }
    }

    /// The command for a [`Command::key`] (`set_max_rf_byte` gives 0x50).
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.key() == key)
    }

    /// A short English name for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ResetSam => "reset SAM",
            Self::SamStatus => "SAM status",
            Self::SamId => "SAM ID",
            Self::FindCard => "find card",
            Self::SelectCard => "select card",
            Self::ReadTextPhoto => "read text+photo",
            Self::ReadAppendedAddress => "read appended address",
            Self::ReadTextPhotoFingerprint => "read text+photo+fingerprint",
            Self::SetMaxRfByte(_) => "set max RF byte",
        }
    }

    /// The largest reply this command can produce, in wire bytes (§5).
    pub fn max_reply_len(&self) -> usize {
        let plain = HEADER_LEN + 4;
        match self {
            Self::ResetSam | Self::SamStatus | Self::SetMaxRfByte(_) => plain,
            Self::SamId => plain + 16,
            Self::FindCard => plain + 4,
            Self::SelectCard => plain + 8,
            Self::ReadTextPhoto => plain + 4 + 256 + 1024,
            // Presumed 70 bytes of UCS-2 address (§13 question 2, unverified).
            Self::ReadAppendedAddress => plain + 70,
            Self::ReadTextPhotoFingerprint => plain + 6 + 256 + 1024 + 1024,
        }
    }

    /// True for the `30 xx` card reads, whose reply time scales with the baud rate.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Self::ReadTextPhoto | Self::ReadAppendedAddress | Self::ReadTextPhotoFingerprint
        )
    }

    /// Total time to wait for the whole reply: 1 s for short commands; for reads the wire time of
    /// the largest reply (10 bits per byte) plus 1.5 s, and at least 2 s.
    pub fn timeout(&self, baud: u32) -> Duration {
        if !self.is_read() {
            return SHORT_TIMEOUT;
        }
        (wire_time(self.max_reply_len(), baud) + READ_TIMEOUT_MARGIN).max(READ_TIMEOUT_FLOOR)
    }
}

/// Time to move `bytes` over 8N1 at `baud` (10 bits per byte). A zero baud is treated as 1.
pub fn wire_time(bytes: usize, baud: u32) -> Duration {
    let micros = (bytes as u64).saturating_mul(10_000_000) / u64::from(baud.max(1));
    Duration::from_micros(micros)
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (cmd, para) = self.cmd_para();
        write!(f, "{} ({cmd:02X} {para:02X}", self.name())?;
        if let Self::SetMaxRfByte(n) = self {
            write!(f, " {n:02X}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_frame_round_trips_every_command() {
        let all = [
            Command::ResetSam,
            Command::SamStatus,
            Command::SamId,
            Command::FindCard,
            Command::SelectCard,
            Command::ReadTextPhoto,
            Command::ReadAppendedAddress,
            Command::ReadTextPhotoFingerprint,
            Command::SetMaxRfByte(0x50),
        ];
        for c in all {
            let (cmd, para) = c.cmd_para();
            assert_eq!(Command::from_frame(cmd, para, &c.data()), Some(c), "{c}");
        }
        assert_eq!(Command::from_frame(0x11, 0xFF, &[1]), None);
        assert_eq!(Command::from_frame(0x61, 0xFF, &[]), None);
        assert_eq!(Command::from_frame(0x60, 0x01, &[]), None);
        for c in Command::ALL {
            assert_eq!(Command::from_key(c.key()), Some(c));
        }
        assert_eq!(Command::from_key("find"), None);
    }

    #[test]
    fn timeouts_scale_with_baud() {
        assert_eq!(Command::FindCard.timeout(9600), SHORT_TIMEOUT);
        // 1295 B at 115200 is ~112 ms: the 2 s floor wins.
        assert_eq!(Command::ReadTextPhoto.timeout(115_200), READ_TIMEOUT_FLOOR);
        // 2321 B at 9600 is ~2.42 s, plus 1.5 s.
        let t = Command::ReadTextPhotoFingerprint.timeout(9600);
        assert!(
            t > Duration::from_millis(3900) && t < Duration::from_millis(4000),
            "{t:?}"
        );
        assert_eq!(Command::ReadTextPhoto.max_reply_len(), 1295);
        assert_eq!(Command::ReadTextPhotoFingerprint.max_reply_len(), 2321);
        assert!(Command::ReadTextPhoto.timeout(0) > Duration::from_secs(1000));
    }

    #[test]
    fn display_names_command_and_bytes() {
        assert_eq!(Command::FindCard.to_string(), "find card (20 01)");
        assert_eq!(
            Command::SetMaxRfByte(0x50).to_string(),
            "set max RF byte (61 FF 50)"
        );
    }
}
