//! The card emulator: a chip model ([`chip`]) serving generated test documents ([`document`])
//! signed under a test PKI made at run time ([`pki`]), reachable by pcscd through vsmartcard's
//! vpcd ([`vpcd`]) or in process through [`crate::read::Transceiver`]. Format and options:
//! `docs/icao9303-emulator.md`.

pub mod chip;
pub mod document;
pub mod pki;
pub mod vpcd;

pub use chip::{Chip, ChipOptions, ChipReply};
pub use document::{AaKeyKind, ChipAuthKey, DocumentKind, DocumentSpec, TestDocument};
pub use pki::TestPki;

#[cfg(test)]
mod aa_tests;
#[cfg(test)]
mod pa_tests;
#[cfg(test)]
mod tests;
