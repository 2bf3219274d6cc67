//! A simulated SAM reader speaking the real wire protocol: for tests, the demo and development
//! without hardware.
//!
//! [`Simulator`] is the pure protocol engine (bytes in, bytes out; commands decoded with the same
//! [`crate::FrameDecoder`] the host uses). [`run_pty`] puts it behind a pseudo-terminal with a card
//! schedule and UART-like pacing.

mod cards;
mod engine;
mod pty;
mod scenario;

pub use crate::card::encode_resident_text;
pub use cards::{
    FakeCard, fake_cards_all_types, fake_other_texts, fake_resident_cards, fake_resident_texts,
    filler_photo,
};
pub use engine::{FAKE_SAM_ID, Fault, FaultKind, Protocol, Reply, Simulator};
pub use pty::{PtySimOptions, SimError, run_pty, run_scenario};
pub use scenario::{Action, Scenario, Step};
