//! Chip authentication within the read (Doc 9303-11 §6.2): DG14 checked against EF.SOD, the
//! exchange under the current secure messaging, and its proof under the new keys; or, after
//! PACE-CAM, PACE's proof checked against DG14's key instead (§4.4.3.5).

use crate::apdu::{self, Command};
use crate::ca::{self, CaOffer, CaParams, CaTerminal, ChipAuthentication};
use crate::lds::LdsFile;
use crate::pace;
use crate::security_infos;
use crate::sod;

use super::{ReadError, ReadOptions, ReadStats, Reopen, Session, read_file, vouched};

const CLONE: &str =
    "the chip does not hold the private key of its DG14 public key (possible clone)";

/// Chip authentication within the read. DG14 is read (it goes into `data_groups`, so the
/// record keeps it and `sod_hashes` covers it), checked against EF.SOD (hash, and a signature
/// that does not fail), then the exchange of [`ca::authenticate`] runs under the current secure
/// messaging and the session switches to the new keys. The proof: DG14 selected again and its
/// first bytes read under the new keys, compared with what was read before. The rest of the read
/// then goes on under the new keys, which is the simplest order that is correct: every later
/// answer is checked under them too, and no data group but DG14 was read from a chip not yet
/// authenticated.
///
/// A failure that leaves the old session usable (the chip refused a command under it) lets the
/// read go on under the old keys; one that broke it (a clone's chip cannot answer under the new
/// keys, and drops secure messaging) opens the chip again with the access protocol that worked,
/// so the read completes and the record carries the failure. Only card and reader errors, and an
/// access that fails the second time, end the read.
pub(super) fn chip_authentication(
    s: &mut Session,
    listed: &[u8],
    sod_bytes: &[u8],
    options: &ReadOptions,
    reopen: &Reopen,
    stats: &mut ReadStats,
    data_groups: &mut Vec<(u8, Vec<u8>)>,
) -> Result<ChipAuthentication, ReadError> {
    let sod = sod::parse_sod(sod_bytes).ok();
    let in_sod = sod
        .as_ref()
        .is_some_and(|sod| sod.dg_hashes.iter().any(|(n, _)| *n == 14));
    let present = listed.contains(&14) || in_sod;
    if !options.chip_authentication {
        return Ok(ChipAuthentication::Skipped(format!(
            "chip authentication was turned off for this read{}",
            if present { " (the chip has DG14)" } else { "" }
        )));
    }
    if !present {
        return Ok(ChipAuthentication::NotOffered(
            "the chip has no DG14 (neither EF.COM nor EF.SOD lists it)".into(),
        ));
    }
    let dg14 = match read_file(s, LdsFile::Dg(14), options, stats) {
        Ok(bytes) => bytes,
        Err(ReadError::File { sw, .. }) => {
            return Ok(ChipAuthentication::Failed(format!(
                "DG14 is listed but the chip refused to read it ({sw:04X}, {})",
                apdu::sw_text(sw)
            )));
        }
        Err(e) => return Err(e),
    };
    data_groups.push((14, dg14.clone()));

    // Passive authentication vouches for DG14's key before it is used: its hash in EF.SOD and
    // EF.SOD's signature (a clone bringing a DG14 of its own cannot make that signature).
    if let Err(why) = vouched(sod_bytes, 14, &dg14) {
        return Ok(ChipAuthentication::NotTrusted(format!(
            "{why}; DG14's key was not used"
        )));
    }

    let infos = match security_infos::parse(&dg14) {
        Ok(infos) => infos,
        Err(e) => {
            return Ok(ChipAuthentication::NotSupported(format!(
                "DG14 does not parse: {e}"
            )));
        }
    };
    if let Some(proof) = s.cam.take() {
        return Ok(cam_verdict(&proof, &infos));
    }
    let params = match ca::choose(&infos) {
        CaOffer::Supported(p) => p,
        CaOffer::None(why) => return Ok(ChipAuthentication::NotOffered(why)),
        CaOffer::Unsupported(what) => {
            return Ok(ChipAuthentication::NotSupported(format!(
                "DG14 offers only {what}, which countersign does not implement"
            )));
        }
    };

    let failure = match exchange(s, &params, &options.ca_terminal, &dg14)? {
        None => {
            return Ok(ChipAuthentication::Passed(params.describe()));
        }
        Some(failure) => failure,
    };
    // The chip refused under the old keys and kept the session: go on with it. Otherwise open
    // the chip again.
    reopen.after_failure(s, "chip authentication", &failure)?;
    Ok(ChipAuthentication::Failed(failure))
}

/// The exchange and its proof: `None` when the chip answered correctly under the new keys, the
/// failure otherwise. On return `s.sm` is the new session (passed), the old one (the chip
/// refused under it), or `None` (secure messaging broke).
fn exchange(
    s: &mut Session,
    params: &CaParams,
    terminal: &CaTerminal,
    dg14: &[u8],
) -> Result<Option<String>, ReadError> {
    let what = params.describe();
    let during = "chip authentication";
    let mut transmit = |cmd: &Command| s.send(cmd, during);
    match ca::authenticate(&mut transmit, params, terminal) {
        Ok(Ok(sm)) => s.sm = Some(sm),
        Ok(Err(e)) => {
            // A refusal came under the old keys, which the chip keeps; a malformed answer to
            // GENERAL AUTHENTICATE came with 9000, after which the chip uses keys of its own.
            if matches!(e, ca::CaError::Malformed { .. }) {
                s.sm = None;
            }
            return Ok(Some(format!("{what}: {e}")));
        }
        Err(ReadError::SecureMessaging { source, .. }) => {
            return Ok(Some(format!(
                "{what}: the chip's answer broke secure messaging ({source})"
            )));
        }
        Err(e) => return Err(e),
    }
    // The proof: SELECT DG14 and its first bytes under the new keys.
    let head = &dg14[..dg14.len().min(8)];
    let proof = (|| -> Result<Result<(), String>, ReadError> {
        let select = s.send(
            &Command::new(0x00, 0xA4, 0x02, 0x0C)
                .with_data(LdsFile::Dg(14).fid().to_be_bytes().to_vec()),
            "chip authentication (SELECT DG14 under the new keys)",
        )?;
        if !select.is_ok() {
            return Ok(Err(format!(
                "SELECT DG14 under the new keys answered {:04X}",
                select.sw
            )));
        }
        let read = s.send(
            &Command::new(0x00, 0xB0, 0x00, 0x00).with_le(head.len()),
            "chip authentication (READ BINARY DG14 under the new keys)",
        )?;
        if !read.is_ok() || read.data != head {
            return Ok(Err(format!(
                "DG14's first bytes read under the new keys are not those read before (status {:04X})",
                read.sw
            )));
        }
        Ok(Ok(()))
    })();
    match proof {
        Ok(Ok(())) => Ok(None),
        Ok(Err(wrong)) => {
            // Answers under the new keys, but wrong ones: do not go on with this session.
            s.sm = None;
            Ok(Some(format!("{CLONE}: {what}: {wrong}")))
        }
        Err(ReadError::SecureMessaging { source, .. }) => Ok(Some(format!(
            "{CLONE}: {what}: the first answer under the new keys does not verify ({source})"
        ))),
        Err(e) => Err(e),
    }
}

/// PACE-CAM's verdict: `CA_IC · PK_IC = PK_Map,IC` for DG14's key on PACE's curve.
fn cam_verdict(
    proof: &pace::CamProof,
    infos: &security_infos::SecurityInfos,
) -> ChipAuthentication {
    let what = format!("PACE-CAM on {}", proof.curve.name());
    let Some(key) = infos
        .ca_public_keys
        .iter()
        .find(|k| k.curve == Some(proof.curve))
    else {
        return ChipAuthentication::Failed(format!(
            "{what}: DG14 has no chip authentication key on PACE's curve"
        ));
    };
    match proof.verify(&key.point) {
        Ok(true) => ChipAuthentication::Passed(format!("{what} (chip authentication mapping)")),
        Ok(false) => ChipAuthentication::Failed(format!(
            "{CLONE}: {what}: the chip authentication data does not map DG14's key to the chip's mapping key"
        )),
        Err(e) => ChipAuthentication::Failed(format!("{CLONE}: {what}: {e}")),
    }
}
