//! Active Authentication within the read (Doc 9303-11 §6.1): DG15 read (so passive
//! authentication covers it) and checked against EF.SOD, the challenge (bound to the station's
//! chain when the caller gives a [`crate::aa::Binding`]) sent by INTERNAL AUTHENTICATE under the
//! current secure messaging, the answer verified. The verdict counts only when passive
//! authentication vouches for DG15's key: a clone bringing a DG15 of its own, whose key it holds,
//! answers correctly but cannot make EF.SOD's signature (`not_trusted`).

use crate::aa::{self, AaError, AaExchange, AaPublicKey, ActiveAuthentication};
use crate::apdu;
use crate::lds::LdsFile;
use crate::security_infos;
use crate::sod::{self, HashAlg, oid};

use super::{ReadError, ReadOptions, ReadStats, Reopen, Session, read_file, vouched};

const CLONE: &str =
    "the chip does not hold the private key of its DG15 public key (possible clone)";

pub(super) fn active_authentication(
    s: &mut Session,
    listed: &[u8],
    sod_bytes: &[u8],
    options: &ReadOptions,
    reopen: &Reopen,
    stats: &mut ReadStats,
    data_groups: &mut Vec<(u8, Vec<u8>)>,
) -> Result<(ActiveAuthentication, Option<AaExchange>), ReadError> {
    let sod_lists = |n: u8| {
        sod::parse_sod(sod_bytes)
            .ok()
            .is_some_and(|sod| sod.dg_hashes.iter().any(|(d, _)| *d == n))
    };
    if !listed.contains(&15) && !sod_lists(15) {
        return Ok((
            ActiveAuthentication::NotOffered(
                "the chip has no DG15 (neither EF.COM nor EF.SOD lists it)".into(),
            ),
            None,
        ));
    }
    if !options.active_authentication {
        return Ok((
            ActiveAuthentication::Skipped(
                "Active Authentication was turned off for this read (the chip has DG15)".into(),
            ),
            None,
        ));
    }
    let dg15 = match read_file(s, LdsFile::Dg(15), options, stats) {
        Ok(bytes) => bytes,
        Err(ReadError::File { sw, .. }) => {
            return Ok((
                ActiveAuthentication::Failed(format!(
                    "DG15 is listed but the chip refused to read it ({sw:04X}, {})",
                    apdu::sw_text(sw)
                )),
                None,
            ));
        }
        Err(e) => return Err(e),
    };
    data_groups.push((15, dg15.clone()));
    let trust = vouched(sod_bytes, 15, &dg15);
    let key = match aa::parse_dg15(&dg15) {
        Ok(key) => key,
        Err(e) => {
            let verdict = match trust {
                Err(why) => ActiveAuthentication::NotTrusted(format!("{why}; DG15: {e}")),
                Ok(()) => ActiveAuthentication::NotSupported(format!("DG15: {e}")),
            };
            return Ok((verdict, None));
        }
    };
    let ecdsa_hash = match &key {
        AaPublicKey::Rsa(_) => None,
        AaPublicKey::Ec { .. } => {
            match ecdsa_hash_of_dg14(s, listed, &sod_lists, options, stats, data_groups)? {
                Ok(hash) => Some(hash),
                Err(why) => return Ok((ActiveAuthentication::NotSupported(why), None)),
            }
        }
    };

    let challenge = options
        .aa_binding
        .as_ref()
        .map_or_else(crate::crypto::random, aa::challenge);
    let during = "Active Authentication (INTERNAL AUTHENTICATE)";
    let what = key.describe();
    let answer = match s.send_with(
        &aa::internal_authenticate(&challenge),
        during,
        options.extended_length,
    ) {
        Ok(resp) if resp.is_ok() && !resp.data.is_empty() => resp.data,
        Ok(resp) => {
            let failure = format!(
                "{what}: the chip refused INTERNAL AUTHENTICATE ({:04X}, {})",
                resp.sw,
                apdu::sw_text(resp.sw)
            );
            return Ok((refused(trust, failure), None));
        }
        Err(ReadError::SecureMessaging { source, .. }) => {
            let failure = format!("{what}: the chip's answer broke secure messaging ({source})");
            s.sm = None;
            reopen.after_failure(s, "Active Authentication", &failure)?;
            return Ok((refused(trust, failure), None));
        }
        Err(e) => return Err(e),
    };
    let verdict = match (
        aa::verify_response(&key, &challenge, &answer, ecdsa_hash),
        trust,
    ) {
        (Ok(verified), Ok(())) => ActiveAuthentication::Passed(match &options.aa_binding {
            Some(b) => format!(
                "{verified}, challenge bound to {}",
                match &b.bound {
                    Some((seq, _)) => format!("record {seq} of station {}", b.station),
                    None => format!("station {} before its first record", b.station),
                }
            ),
            None => format!("{verified}, random challenge"),
        }),
        (Ok(verified), Err(why)) => ActiveAuthentication::NotTrusted(format!(
            "{why}; the answer verifies under DG15's key ({verified}), which proves nothing without passive authentication"
        )),
        (Err(AaError::Unsupported(e)), Ok(())) => ActiveAuthentication::NotSupported(e),
        (Err(e), Ok(())) => ActiveAuthentication::Failed(format!("{CLONE}: {what}: {e}")),
        (Err(e), Err(why)) => ActiveAuthentication::NotTrusted(format!(
            "{why}; the answer does not verify under DG15's key either ({e})"
        )),
    };
    Ok((
        verdict,
        Some(AaExchange {
            binding: options.aa_binding.clone(),
            challenge,
            signature: answer,
            ecdsa_hash,
        }),
    ))
}

/// A chip that refused (or broke secure messaging): a possible clone, unless DG15 was not
/// trusted anyway.
fn refused(trust: Result<(), String>, failure: String) -> ActiveAuthentication {
    match trust {
        Ok(()) => ActiveAuthentication::Failed(format!("{CLONE}: {failure}")),
        Err(why) => ActiveAuthentication::NotTrusted(format!("{why}; {failure}")),
    }
}

/// The hash of ECDSA Active Authentication, from DG14's ActiveAuthenticationInfo (DG14 read
/// here when chip authentication did not read it).
fn ecdsa_hash_of_dg14(
    s: &mut Session,
    listed: &[u8],
    sod_lists: &dyn Fn(u8) -> bool,
    options: &ReadOptions,
    stats: &mut ReadStats,
    data_groups: &mut Vec<(u8, Vec<u8>)>,
) -> Result<Result<HashAlg, String>, ReadError> {
    let missing =
        "an ECDSA key in DG15 but no ActiveAuthenticationInfo in DG14 naming its hash".to_string();
    let dg14 = match data_groups.iter().find(|(n, _)| *n == 14) {
        Some((_, bytes)) => bytes.clone(),
        None if listed.contains(&14) || sod_lists(14) => {
            match read_file(s, LdsFile::Dg(14), options, stats) {
                Ok(bytes) => {
                    data_groups.push((14, bytes.clone()));
                    bytes
                }
                Err(ReadError::File { .. }) => return Ok(Err(missing)),
                Err(e) => return Err(e),
            }
        }
        None => return Ok(Err(missing)),
    };
    let Some(algorithm) = security_infos::parse(&dg14)
        .ok()
        .and_then(|infos| infos.aa_signature_algorithm)
    else {
        return Ok(Err(missing));
    };
    Ok(aa::ecdsa_hash(&algorithm).ok_or_else(|| {
        format!(
            "DG14 names signature algorithm {} for Active Authentication, which countersign does not implement",
            oid::dotted(&algorithm)
        )
    }))
}
