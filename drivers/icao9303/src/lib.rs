//! ICAO Doc 9303 travel documents (ePassports, Chinese exit-entry permits) read over PC/SC.
//!
//! Layers, bottom up, none of them knowing of records or MQTT:
//! - [`tlv`], [`apdu`]: BER-TLV and ISO 7816-4 APDUs; total parsers (no panic on any bytes).
//! - [`crypto`], [`sm`], [`access`]: BAC key derivation, 3DES, retail MAC, secure messaging
//!   parameterised by cipher (3DES after BAC, AES or 3DES after PACE and chip authentication), the access protocols.
//! - [`ca`]: chip authentication (DG14's key, a clone's chip cannot answer under its keys);
//!   [`aa`]: Active Authentication (DG15's key signs a challenge bound to the station's chain).
//! - [`ecsig`]: ECDSA verification on the curves documents use (passive and active authentication).
//! - [`mrz`], [`lds`], [`sod`], [`pa`]: MRZ (TD1, TD2, TD3, CS/CD 3×30), data groups, EF.SOD and
//!   passive authentication (hashes, CMS signature, chain to a CSCA).
//! - [`read`]: the read sequence over any [`read::Transceiver`] (PC/SC, or the emulator in
//!   process); [`pcsc`] (feature `pcsc`): the PC/SC backend and reader watcher.
//! - [`face`] (feature `face`): the DG2 image converted to JPEG.
//! - [`sim`] (feature `sim`): the chip side, generated test documents, and the vpcd client that
//!   lets pcscd see them as cards.
//!
//! Protocol reference: the project's `icao9303.md`; Doc 9303 Parts 10, 11 and 12.

#![forbid(unsafe_code)]

pub mod aa;
pub mod access;
pub mod apdu;
pub mod ca;
pub mod cipher;
pub mod crypto;
pub mod ec;
pub mod ecsig;
#[cfg(feature = "face")]
pub mod face;

pub mod lds;
pub mod mrz;
pub mod pa;
pub mod pace;
#[cfg(feature = "pcsc")]
pub mod pcsc;

pub mod read;
pub use read::{DocumentRead, ReadError, ReadOptions, Transceiver, read_document};

pub mod security_infos;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sm;
pub mod sod;
pub mod tlv;
pub mod verdict;

pub use access::AccessProtocol;
pub use mrz::{Mrz, MrzKey};

/// Lower-case hex, for logs and error messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
