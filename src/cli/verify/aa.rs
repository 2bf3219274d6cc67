//! `countersign verify`: Active Authentication re-checked offline from each record alone (the
//! challenge from its recorded inputs, the chip's signature under the recorded DG15), and the
//! record the challenge is bound to looked up in the set: present with the recorded hash and
//! older than the record itself. One line per identity that carries an exchange.

use std::collections::HashMap;

use crate::devices::pcsc::aa::recheck;
use crate::record::audit::Item;
use crate::record::keys::{DecryptKeys, Keyring};
use crate::record::{chain_hash, open};

/// Lines to print, and how many re-checks failed.
#[derive(Debug, Default)]
pub struct AaReport {
    pub lines: Vec<String>,
    pub failures: usize,
}

pub fn recheck_all(items: &[Item], keyring: &Keyring, decrypt: &DecryptKeys) -> AaReport {
    let mut report = AaReport::default();
    let opened: Vec<_> = items
        .iter()
        .filter_map(|item| {
            open(&item.wire, keyring, decrypt)
                .ok()
                .map(|o| (o.record, chain_hash(&item.wire)))
        })
        .collect();
    // (station, seq) → the wire hash a later record's challenge may be bound to.
    let chain: HashMap<(&str, u64), &str> = opened
        .iter()
        .map(|(r, hash)| ((r.station.as_str(), r.seq), hash.as_str()))
        .collect();
    for (record, _) in &opened {
        for (i, identity) in record.identities.iter().enumerate() {
            let Some(aa) = &identity.active_authentication else {
                continue;
            };
            let at = format!(
                "{} seq {} record {} identity {i}",
                record.station, record.seq, record.record_id
            );
            let verified = match recheck(aa) {
                Ok(what) => what,
                Err(why) => {
                    report.failures += 1;
                    report
                        .lines
                        .push(format!("FAIL  active authentication: {at}: {why}"));
                    continue;
                }
            };
            let bound = match (aa.challenge_source.as_str(), aa.bound_seq, &aa.bound_record) {
                ("random", ..) => Ok("random challenge (not bound to the chain)".to_string()),
                (_, None, _) => Ok(format!(
                    "challenge bound to station {} before its first record",
                    aa.station.as_deref().unwrap_or("?")
                )),
                (_, Some(seq), _) if seq >= record.seq => Err(format!(
                    "the challenge is bound to record {seq}, not older than the record itself"
                )),
                (_, Some(seq), Some(hash)) => {
                    let station = aa.station.as_deref().unwrap_or(&record.station);
                    if station != record.station {
                        Err(format!(
                            "the challenge is bound to another station's chain ({station})"
                        ))
                    } else {
                        match chain.get(&(station, seq)) {
                            Some(found) if found == hash => Ok(format!(
                                "challenge bound to record {seq}, which is in this set"
                            )),
                            Some(_) => Err(format!(
                                "the challenge is bound to a record {seq} whose hash is not that of record {seq} in this set"
                            )),
                            None => Ok(format!(
                                "challenge bound to record {seq} (not in this set: its hash is not confirmed)"
                            )),
                        }
                    }
                }
                (_, Some(_), None) => Err("bound_seq without bound_record".into()),
            };
            match bound {
                Ok(binding) => report.lines.push(format!(
                    "aa    {at}: active authentication re-checked ({verified}); {binding}"
                )),
                Err(why) => {
                    report.failures += 1;
                    report.lines.push(format!(
                        "FAIL  active authentication: {at}: the signature verifies ({verified}) but {why}"
                    ));
                }
            }
        }
    }
    report
}
