//! GA 467 ID-card SAM reader protocol (居民身份证阅读机具), host side plus a simulator.
//!
//! Layers, bottom up (the byte-level source of truth is `shared/reference/ga467.md`):
//!
//! * [`transport`]: a byte pipe ([`Transport`]); [`SerialTransport`] for real ports and ptys.
//! * [`frame`]: preamble, big-endian length, XOR checksum; a resyncing streaming decoder.
//! * [`command`]: the commands the host sends and how long to wait for each reply.
//! * [`status`]: SW3 codes and their texts.
//! * [`reader`]: [`Reader`] sends one command at a time, retries a garbled reply once, and polls
//!   for cards with re-read suppression.
//! * [`card`]: the 256-byte text block: card type, UCS-2 fields, resident layout, ID-number checks
//!   and masking for logs.
//! * [`sim`] (beside the stack): a simulated reader, in memory or behind a pty, driven by a
//!   [`sim::Scenario`].
//! * [`variant`]: recognising vendor protocols that are not GA 467.
//! * `photo` (feature `wlt-plugin`): the optional run-time WLT photo decoder.
//!
//! Nothing here panics on device input: every length is checked before slicing.

// Unsafe code is denied everywhere except the optional vendor-library loader (`photo`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod card;
pub mod command;
pub mod frame;
pub mod inspect;
#[cfg(feature = "wlt-plugin")]
pub mod photo;
pub mod reader;
pub mod sim;
pub mod status;
pub mod transport;
pub mod variant;

#[cfg(test)]
mod test_util;

pub use card::{
    CardError, CardType, Check, CheckResult, CivilDate, Foreign2017Text, Foreign2023Text,
    HkMacauTaiwanText, Nation, ParsedText, ResidentText, Sex, Validity, id_check_char,
    id_number_valid, mask_id_number, mask_name, parse_text, run_checks,
};
pub use command::Command;
pub use frame::{FrameDecoder, FrameError, Response};
pub use reader::{AppendedAddress, CardRead, PollOutcome, Reader, ReaderError, ReaderOptions};
pub use transport::{SerialTransport, Transport, TransportError};
