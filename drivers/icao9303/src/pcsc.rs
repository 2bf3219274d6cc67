//! The PC/SC backend: a card behind pcsc-lite as a [`Transceiver`], and a reader watcher driven
//! by status-change events (no polling loop): readers appearing and disappearing (the PnP
//! notification), cards inserted and removed, several readers at once.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::time::Duration;

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};

use crate::read::{Transceiver, TransmitError};

/// The pcsc-lite binding, for callers that handle contexts and errors themselves.
pub use ::pcsc as sys;

/// A connected card.
pub struct PcscCard {
    card: pcsc::Card,
    buf: Vec<u8>,
}

/// Maps pcsc-lite errors to what the reader needs to know.
pub fn transmit_error(e: pcsc::Error) -> TransmitError {
    use pcsc::Error as E;
    match e {
        // A contactless card leaving the field mid-exchange shows as a failed transaction on
        // some readers (and on vpcd, whose card "leaves" by closing its connection) before the
        // removal event arrives: for the clerk it is the same, put the card back.
        E::RemovedCard
        | E::ResetCard
        | E::NoSmartcard
        | E::UnpoweredCard
        | E::UnresponsiveCard
        | E::NotTransacted
        | E::CommDataLost => TransmitError::CardRemoved,
        E::ReaderUnavailable
        | E::UnknownReader
        | E::NoService
        | E::ServiceStopped
        | E::NoReadersAvailable => TransmitError::ReaderGone,
        other => TransmitError::Other(other.to_string()),
    }
}

impl PcscCard {
    /// Connects (shared) to the card in `reader`.
    pub fn connect(ctx: &Context, reader: &CStr) -> Result<PcscCard, pcsc::Error> {
        let card = ctx.connect(reader, ShareMode::Shared, Protocols::ANY)?;
        Ok(PcscCard {
            card,
            buf: vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        })
    }

    /// The card's ATR (empty when pcsc-lite cannot say).
    pub fn atr(&self) -> Vec<u8> {
        self.card
            .status2_owned()
            .map(|s| s.atr().to_vec())
            .unwrap_or_default()
    }

    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransmitError> {
        self.card
            .transmit(apdu, &mut self.buf)
            .map(<[u8]>::to_vec)
            .map_err(transmit_error)
    }
}

impl Transceiver for PcscCard {
    /// Sends an APDU; follows `61xx` with GET RESPONSE and resends on `6Cxx`
    /// ([`crate::apdu::exchange_whole`]).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransmitError> {
        crate::apdu::exchange_whole(apdu, &mut |bytes| {
            let resp = self.exchange(bytes)?;
            // A card always ends its answer with a status word; nothing at all means it is
            // gone (vpcd answers so when its card leaves mid-exchange).
            if resp.len() < 2 {
                return Err(TransmitError::CardRemoved);
            }
            Ok(resp)
        })
    }
}

/// Something that happened to the readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    ReaderAdded(String),
    ReaderRemoved(String),
    CardInserted { reader: String, atr: Vec<u8> },
    CardRemoved(String),
}

/// Watches every reader pcscd knows through `SCardGetStatusChange`, including the PnP
/// pseudo-reader for readers coming and going.
pub struct Watcher {
    ctx: Context,
    states: Vec<ReaderState>,
    present: BTreeMap<String, bool>,
}

impl Watcher {
    pub fn new() -> Result<Watcher, pcsc::Error> {
        let ctx = Context::establish(Scope::User)?;
        let mut w = Watcher {
            ctx,
            states: vec![ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE)],
            present: BTreeMap::new(),
        };
        w.relist()?;
        Ok(w)
    }

    /// The context (clone it into another thread to `cancel` a wait, or to connect cards).
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Reader names as pcscd reports them now.
    pub fn readers(&self) -> Vec<String> {
        self.states[1..].iter().map(|s| name(s.name())).collect()
    }

    fn relist(&mut self) -> Result<Vec<ReaderEvent>, pcsc::Error> {
        let names = match self.ctx.list_readers_owned() {
            Ok(n) => n,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut events = Vec::new();
        let now: Vec<String> = names.iter().map(|n| name(n)).collect();
        self.states.retain(|s| {
            let n = name(s.name());
            let keep = s.name() == pcsc::PNP_NOTIFICATION() || now.contains(&n);
            if !keep {
                events.push(ReaderEvent::ReaderRemoved(n));
            }
            keep
        });
        for gone in events
            .iter()
            .filter_map(|e| match e {
                ReaderEvent::ReaderRemoved(n) => Some(n.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
        {
            if self.present.remove(&gone) == Some(true) {
                events.push(ReaderEvent::CardRemoved(gone));
            }
        }
        for n in names {
            let text = name(&n);
            if !self.states.iter().any(|s| name(s.name()) == text) {
                events.push(ReaderEvent::ReaderAdded(text.clone()));
                self.present.insert(text, false);
                self.states.push(ReaderState::new(n, State::UNAWARE));
            }
        }
        Ok(events)
    }

    /// Waits up to `timeout` for changes; returns what changed (empty on timeout).
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<ReaderEvent>, pcsc::Error> {
        for s in &mut self.states {
            s.sync_current_state();
        }
        match self.ctx.get_status_change(Some(timeout), &mut self.states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
        let mut events = Vec::new();
        let mut relist = self.states[0].event_state().contains(State::CHANGED);
        for s in &self.states[1..] {
            let state = s.event_state();
            if !state.contains(State::CHANGED) {
                continue;
            }
            if state.intersects(State::UNKNOWN | State::IGNORE) {
                relist = true;
                continue;
            }
            let reader = name(s.name());
            let present = state.contains(State::PRESENT) && !state.contains(State::MUTE);
            let was = self
                .present
                .insert(reader.clone(), present)
                .unwrap_or(false);
            match (was, present) {
                (false, true) => events.push(ReaderEvent::CardInserted {
                    reader,
                    atr: s.atr().to_vec(),
                }),
                (true, false) => events.push(ReaderEvent::CardRemoved(reader)),
                _ => {}
            }
        }
        if relist {
            events.extend(self.relist()?);
        }
        Ok(events)
    }
}

fn name(n: &CStr) -> String {
    n.to_string_lossy().into_owned()
}

/// A reader name as the C string pcsc-lite wants.
pub fn reader_cstring(reader: &str) -> Option<CString> {
    CString::new(reader).ok()
}
