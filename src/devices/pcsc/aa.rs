//! Active Authentication in the record: the challenge bound to the station's chain at read time
//! ([`ChainHead`]), the `active_authentication` and `sod_data_groups` checks, and the exchange
//! a verifier re-checks from the record alone ([`exchange_record`], [`recheck`]).

use std::path::PathBuf;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use icao9303::DocumentRead;
use icao9303::aa::{self, Binding};
use icao9303::sod::HashAlg;
use icao9303::verdict::Authenticity;
use tracing::warn;

use crate::record::{ActiveAuthenticationRecord, Check, CheckResult};

/// Where the station's chain head is read at the start of each document read: the outbox file
/// and the station id. `None` (no outbox: `countersign read-document`) gives a binding to no
/// record, which still names the station and the time.
#[derive(Debug, Clone)]
pub struct ChainHead {
    pub station: String,
    pub outbox: Option<PathBuf>,
}

impl ChainHead {
    /// The binding of a read starting now. An unreadable outbox is logged and gives `None`: the
    /// read then uses a random challenge (recorded as such), never a binding that is not true.
    pub fn binding(&self, read_at: SystemTime) -> Option<Binding> {
        let bound = match &self.outbox {
            None => None,
            Some(path) => match crate::outbox::head::chain_head(path, &self.station) {
                Ok(head) => head,
                Err(e) => {
                    warn!(error = %e, "chain head unreadable; Active Authentication uses a random challenge");
                    return None;
                }
            },
        };
        Some(Binding {
            station: self.station.clone(),
            bound,
            read_at: crate::station::seal::rfc3339(read_at),
        })
    }
}

/// The `chip_authentication` or `active_authentication` check: the detail starts with the
/// outcome (`passed: …`), which the result follows.
pub fn check(name: &str, outcome: &Authenticity) -> Check {
    Check {
        name: name.into(),
        result: match outcome {
            Authenticity::Passed(_) => CheckResult::Pass,
            Authenticity::Failed(_) | Authenticity::NotTrusted(_) => CheckResult::Fail,
            Authenticity::NotOffered(_)
            | Authenticity::NotSupported(_)
            | Authenticity::Skipped(_) => CheckResult::Unknown,
        },
        detail: Some(outcome.to_string()),
    }
}

/// `sod_data_groups`: every data group EF.COM or EF.SOD lists was read (and so hashed by
/// `sod_hashes`), or which were not and why.
pub fn data_groups_check(read: &DocumentRead) -> Check {
    let read_groups: Vec<String> = {
        let mut n: Vec<u8> = read.data_groups.iter().map(|(n, _)| *n).collect();
        n.sort_unstable();
        n.iter().map(|n| format!("DG{n}")).collect()
    };
    if read.not_read.is_empty() {
        return Check {
            name: "sod_data_groups".into(),
            result: CheckResult::Pass,
            detail: Some(format!(
                "every listed group read: {}",
                read_groups.join(", ")
            )),
        };
    }
    let missing: Vec<String> = read
        .not_read
        .iter()
        .map(|(n, why)| format!("DG{n} not read: {why}"))
        .collect();
    Check {
        name: "sod_data_groups".into(),
        result: CheckResult::Unknown,
        detail: Some(format!(
            "{}; read: {}",
            missing.join("; "),
            read_groups.join(", ")
        )),
    }
}

/// The exchange for the record, when INTERNAL AUTHENTICATE was answered.
pub fn exchange_record(read: &DocumentRead) -> Option<ActiveAuthenticationRecord> {
    let exchange = read.aa_exchange.as_ref()?;
    let dg15 = read.dg(15)?;
    let binding = exchange.binding.as_ref();
    Some(ActiveAuthenticationRecord {
        challenge_source: if binding.is_some() { "chain" } else { "random" }.into(),
        challenge: icao9303::hex(&exchange.challenge),
        station: binding.map(|b| b.station.clone()),
        bound_seq: binding.and_then(|b| b.bound.as_ref().map(|(seq, _)| *seq)),
        bound_record: binding.and_then(|b| b.bound.as_ref().map(|(_, h)| h.clone())),
        read_at: binding.map(|b| b.read_at.clone()),
        dg15: BASE64.encode(dg15),
        signature: BASE64.encode(&exchange.signature),
        ecdsa_hash: exchange.ecdsa_hash.map(|h| h.name().to_string()),
    })
}

/// Re-checks a recorded exchange from the record alone: the challenge against its inputs (for
/// `chain` challenges) and the signature against DG15's key. Ok names what verified.
pub fn recheck(r: &ActiveAuthenticationRecord) -> Result<String, String> {
    let challenge = hex_bytes(&r.challenge).ok_or("the challenge is not 8 bytes of hex")?;
    if r.challenge_source == "chain" {
        let (Some(station), Some(read_at)) = (&r.station, &r.read_at) else {
            return Err("a chain challenge without its station or read time".into());
        };
        let bound = match (r.bound_seq, &r.bound_record) {
            (Some(seq), Some(hash)) => Some((seq, hash.clone())),
            (None, None) => None,
            _ => return Err("bound_seq and bound_record must come together".into()),
        };
        let derived = aa::challenge(&Binding {
            station: station.clone(),
            bound,
            read_at: read_at.clone(),
        });
        if derived[..] != challenge[..] {
            return Err("the challenge is not the one its recorded inputs derive".into());
        }
    }
    let dg15 = BASE64
        .decode(&r.dg15)
        .map_err(|e| format!("dg15 is not base64: {e}"))?;
    let signature = BASE64
        .decode(&r.signature)
        .map_err(|e| format!("signature is not base64: {e}"))?;
    let key = aa::parse_dg15(&dg15).map_err(|e| format!("DG15: {e}"))?;
    let hash = match r.ecdsa_hash.as_deref() {
        None => None,
        Some(name) => {
            Some(HashAlg::from_name(name).ok_or_else(|| format!("unknown hash {name:?}"))?)
        }
    };
    aa::verify_response(&key, &challenge, &signature, hash).map_err(|e| e.to_string())
}

fn hex_bytes(text: &str) -> Option<[u8; 8]> {
    if text.len() != 16 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
