//! The read sequence (icao9303.md §2.1): EF.CardAccess in plain (which PACE does the chip
//! offer?), PACE when offered with parameters this reader implements, then SELECT of the eMRTD
//! application (under PACE's secure messaging), BAC otherwise (or when PACE failed for another
//! reason than the password), then EF.COM and EF.SOD under secure messaging, chip
//! authentication when DG14 offers it (DG14 read and checked against EF.SOD first, see
//! [`chip_authentication`]), then the wanted data groups under the secure messaging chip
//! authentication started, in chunks that fit short APDUs. Runs over any [`Transceiver`]:
//! PC/SC, or the emulator in process.

use std::time::{Duration, Instant};

use tracing::debug;

use crate::access::{self, AccessError, AccessProtocol, BacTerminal};
use crate::apdu::{self, Command, Response};
use crate::ca::{self, CaOffer, CaParams, CaTerminal, ChipAuthentication};
use crate::lds::{self, LdsFile};
use crate::mrz::MrzKey;
use crate::pa::{self, Verdict};
use crate::pace::{self, Offer, PaceParams, PaceTerminal, Password};
use crate::security_infos;
use crate::sm::{SecureMessaging, SmError};
use crate::sod;
use crate::tlv;

/// Largest file accepted: DG2/DG3 hold a few tens of KB; a chip announcing more is refused
/// rather than read into memory without end.
pub const MAX_FILE: usize = 512 * 1024;

/// The eMRTD application identifier.
pub const AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];

/// EF.CardAccess holds a few SecurityInfos; more than this is not a real one.
const MAX_CARD_ACCESS: usize = 4096;

/// Sends one APDU to the card and returns the response (data ‖ SW1 SW2).
pub trait Transceiver {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransmitError>;
}

/// Why an APDU could not be exchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransmitError {
    #[error("the card was removed")]
    CardRemoved,
    #[error("the reader is gone")]
    ReaderGone,
    #[error("{0}")]
    Other(String),
}

/// How to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// READ BINARY block size (Le) under secure messaging: 0xDF fits 3DES and AES wrapping in
    /// 256 bytes (icao9303.md §2.5).
    pub block: usize,
    /// Block size to fall back to when the chip answers a length error.
    pub fallback_block: usize,
    /// Data groups to read when EF.COM lists them (DG1 and DG2 are always wanted).
    pub data_groups: Vec<u8>,
    /// Fixed RND.IFD and K.IFD (tests reproducing the ICAO worked example); random otherwise.
    pub terminal: Option<BacTerminal>,
    /// Fixed PACE keys (tests); random otherwise.
    pub pace_terminal: PaceTerminal,
    /// The card access number, when the case system supplies one: PACE then runs with it
    /// instead of the MRZ (BAC, if the chip has no PACE, still uses the MRZ).
    pub can: Option<String>,
    /// Run chip authentication when DG14 offers it (default). Off, DG14 is not read for it and
    /// the result is [`ChipAuthentication::Skipped`].
    pub chip_authentication: bool,
    /// Fixed chip authentication key (tests); random otherwise.
    pub ca_terminal: CaTerminal,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            block: 0xDF,
            fallback_block: 0xA0,
            data_groups: vec![1, 2, 11, 12],
            terminal: None,
            pace_terminal: PaceTerminal::default(),
            can: None,
            chip_authentication: true,
            ca_terminal: CaTerminal::default(),
        }
    }
}

/// Everything read from a document, as read (raw bytes: hashes cover them).
#[derive(Debug, Clone)]
pub struct DocumentRead {
    pub access: AccessProtocol,
    /// The secure messaging cipher access control opened (`3DES`, `AES-128`...). After chip
    /// authentication the read goes on under its cipher (named in [`Self::chip_authentication`]).
    pub sm_cipher: &'static str,
    /// Whether EF.CardAccess offered PACE.
    pub pace_offered: bool,
    /// PACE as run: `ECDH-GM brainpoolP256r1 AES-128` and the password (`MRZ` or `CAN`).
    pub pace: Option<(String, &'static str)>,
    /// Why BAC was used although the chip offers PACE (recorded, never hidden).
    pub pace_not_used: Option<String>,
    /// Chip authentication: passed, failed (a possible clone), or why it was not run.
    pub chip_authentication: ChipAuthentication,
    pub com: Vec<u8>,
    pub sod: Vec<u8>,
    /// (DG number, bytes as read), in reading order (DG14, when read for chip authentication,
    /// comes first).
    pub data_groups: Vec<(u8, Vec<u8>)>,
    pub stats: ReadStats,
}

impl DocumentRead {
    pub fn dg(&self, n: u8) -> Option<&[u8]> {
        self.data_groups
            .iter()
            .find(|(d, _)| *d == n)
            .map(|(_, b)| b.as_slice())
    }
}

/// APDUs and time spent, per phase.
#[derive(Debug, Clone, Default)]
pub struct ReadStats {
    pub apdus: u32,
    pub total: Duration,
    /// APDUs and time of access control (EF.CardAccess, PACE or BAC, SELECT).
    pub access_apdus: u32,
    pub access_time: Duration,
    /// APDUs and time of chip authentication: DG14's read and check against EF.SOD, the
    /// exchange, the proof under the new keys (and access again when it failed).
    pub ca_apdus: u32,
    pub ca_time: Duration,
    /// (file, APDUs, bytes, time) per file read.
    pub files: Vec<(String, u32, usize, Duration)>,
}

/// Why a document could not be read, in terms a clerk (or the supervisor) can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("not an eMRTD: the card has no ICAO travel document application (status {sw:04X})")]
    NotAnEmrtd { sw: u16 },
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(
        "the card was removed (or stopped answering) during the read ({during}); put it back and read again"
    )]
    CardRemoved { during: String },
    #[error("the reader is gone ({during})")]
    ReaderGone { during: String },
    #[error("card communication failed during {during}: {detail}")]
    Transmit { during: String, detail: String },
    #[error("reading {file}: the chip answered {sw:04X} ({})", apdu::sw_text(*sw))]
    File { file: String, sw: u16 },
    #[error("reading {file}: {detail}")]
    Malformed { file: String, detail: String },
    #[error("reading {file}: {source}")]
    SecureMessaging { file: String, source: SmError },
    #[error(
        "chip authentication failed: {failure}; the chip could not be opened again to finish the read: {reopen}"
    )]
    ChipAuthentication { failure: String, reopen: String },
}

struct Session<'a> {
    card: &'a mut dyn Transceiver,
    sm: Option<SecureMessaging>,
    apdus: u32,
}

impl Session<'_> {
    fn raw(&mut self, cmd: &Command, during: &str) -> Result<Response, ReadError> {
        self.apdus += 1;
        let bytes = self.card.transmit(&cmd.encode()).map_err(|e| match e {
            TransmitError::CardRemoved => ReadError::CardRemoved {
                during: during.into(),
            },
            TransmitError::ReaderGone => ReadError::ReaderGone {
                during: during.into(),
            },
            TransmitError::Other(detail) => ReadError::Transmit {
                during: during.into(),
                detail,
            },
        })?;
        Response::parse(&bytes).map_err(|e| ReadError::Malformed {
            file: during.into(),
            detail: e.to_string(),
        })
    }

    /// Sends under secure messaging when a session is open.
    fn send(&mut self, cmd: &Command, during: &str) -> Result<Response, ReadError> {
        match self.sm.take() {
            None => self.raw(cmd, during),
            Some(mut sm) => {
                let protected = sm.protect(cmd);
                let resp = self.raw(&protected, during)?;
                let plain = sm
                    .unprotect(&resp)
                    .map_err(|source| ReadError::SecureMessaging {
                        file: during.into(),
                        source,
                    })?;
                self.sm = Some(sm);
                Ok(plain)
            }
        }
    }
}

/// Reads a document: access with `key`, then EF.COM, EF.SOD, chip authentication and the data
/// groups of `options`.
pub fn read_document(
    card: &mut dyn Transceiver,
    key: &MrzKey,
    options: &ReadOptions,
) -> Result<DocumentRead, ReadError> {
    let started = Instant::now();
    let mut s = Session {
        card,
        sm: None,
        apdus: 0,
    };
    let (offer, pace_offered) = card_access(&mut s)?;
    let password = match &options.can {
        Some(can) => Password::Can(can.clone()),
        None => Password::Mrz(key.clone()),
    };
    let mut access = AccessProtocol::Bac;
    let mut pace_used = None;
    let mut pace_params = None;
    let mut pace_not_used = None;
    match offer {
        Offer::Supported(params) => {
            let mut transmit = |cmd: &Command| s.raw(cmd, "PACE");
            match pace::pace(&mut transmit, &password, &params, &options.pace_terminal)? {
                Ok(session) => {
                    s.sm = Some(session.sm);
                    access = AccessProtocol::Pace;
                    pace_used = Some((params.describe(), password.name()));
                    debug!(apdus = s.apdus, pace = %params.describe(), "PACE done");
                    pace_params = Some(params);
                }
                // The password or the chip is wrong: BAC would say the same, or worse.
                Err(
                    e @ (AccessError::WrongKey { .. }
                    | AccessError::WrongCan { .. }
                    | AccessError::ChipNotAuthenticated),
                ) => return Err(e.into()),
                Err(e) => {
                    debug!(error = %e, "PACE failed; trying BAC");
                    pace_not_used = Some(format!(
                        "PACE ({}) failed: {e}; read with BAC",
                        params.describe()
                    ));
                }
            }
        }
        Offer::Unsupported(what) => {
            pace_not_used = Some(format!(
                "the chip offers PACE only as {what}, which countersign does not implement; read with BAC"
            ));
        }
        Offer::None => {}
    }
    let select = s.send(&select_application(), "SELECT eMRTD application")?;
    if !select.is_ok() {
        return Err(ReadError::NotAnEmrtd { sw: select.sw });
    }
    if access == AccessProtocol::Bac {
        let terminal = options.terminal.unwrap_or_else(BacTerminal::random);
        let offered = pace_not_used.clone();
        let mut transmit = |cmd: &Command| s.raw(cmd, "BAC");
        let sm = access::bac(&mut transmit, key, terminal, offered.as_deref())??;
        s.sm = Some(sm);
        debug!(apdus = s.apdus, "BAC done");
    }
    let sm_cipher = s.sm.as_ref().map_or("none", SecureMessaging::cipher_name);

    let mut stats = ReadStats {
        access_apdus: s.apdus,
        access_time: started.elapsed(),
        ..Default::default()
    };
    let com = read_file(&mut s, LdsFile::Com, options, &mut stats)?;
    let listed = lds::parse_com(&com)
        .map_err(|e| ReadError::Malformed {
            file: "EF.COM".into(),
            detail: e.what,
        })?
        .data_groups;
    let sod = read_file(&mut s, LdsFile::Sod, options, &mut stats)?;
    let mut data_groups = Vec::new();

    let ca_started = Instant::now();
    let ca_apdus_before = s.apdus;
    let reopen = Reopen {
        key,
        options,
        password: &password,
        pace: pace_params.as_ref(),
        offered: pace_not_used.as_deref(),
    };
    let chip_authentication = chip_authentication(
        &mut s,
        &listed,
        &sod,
        options,
        &reopen,
        &mut stats,
        &mut data_groups,
    )?;
    stats.ca_apdus = s.apdus - ca_apdus_before;
    stats.ca_time = ca_started.elapsed();
    debug!(apdus = stats.ca_apdus, result = %chip_authentication, "chip authentication");

    for n in &options.data_groups {
        if (listed.contains(n) || *n == 1) && !data_groups.iter().any(|(d, _)| d == n) {
            let bytes = read_file(&mut s, LdsFile::Dg(*n), options, &mut stats)?;
            data_groups.push((*n, bytes));
        }
    }
    stats.apdus = s.apdus;
    stats.total = started.elapsed();
    Ok(DocumentRead {
        access,
        sm_cipher,
        pace_offered,
        pace: pace_used,
        pace_not_used,
        chip_authentication,
        com,
        sod,
        data_groups,
        stats,
    })
}

fn select_application() -> Command {
    Command::new(0x00, 0xA4, 0x04, 0x0C).with_data(AID.to_vec())
}

/// What it takes to open the chip again after chip authentication broke the session.
struct Reopen<'a> {
    key: &'a MrzKey,
    options: &'a ReadOptions,
    password: &'a Password,
    /// PACE as it ran; BAC when `None`.
    pace: Option<&'a PaceParams>,
    /// Why PACE was not used (BAC's report of a PACE-only chip).
    offered: Option<&'a str>,
}

impl Reopen<'_> {
    /// The access protocol that worked the first time, again (no EF.CardAccess: its answer is
    /// known), then the application selected.
    fn run(&self, s: &mut Session) -> Result<(), ReadError> {
        s.sm = None;
        match self.pace {
            Some(params) => {
                let mut transmit = |cmd: &Command| s.raw(cmd, "PACE (again)");
                let session = pace::pace(
                    &mut transmit,
                    self.password,
                    params,
                    &self.options.pace_terminal,
                )??;
                s.sm = Some(session.sm);
                let select = s.send(&select_application(), "SELECT eMRTD application")?;
                if !select.is_ok() {
                    return Err(ReadError::NotAnEmrtd { sw: select.sw });
                }
            }
            None => {
                let select = s.raw(&select_application(), "SELECT eMRTD application")?;
                if !select.is_ok() {
                    return Err(ReadError::NotAnEmrtd { sw: select.sw });
                }
                let terminal = self.options.terminal.unwrap_or_else(BacTerminal::random);
                let mut transmit = |cmd: &Command| s.raw(cmd, "BAC (again)");
                s.sm = Some(access::bac(
                    &mut transmit,
                    self.key,
                    terminal,
                    self.offered,
                )??);
            }
        }
        Ok(())
    }
}

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
fn chip_authentication(
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

    // Passive authentication of DG14 before its key is trusted.
    let checks = pa::verify(sod_bytes, &[(14, &dg14)], None);
    let verdict = |name: &str| checks.iter().find(|c| c.name == name);
    let mut caveat = String::new();
    match (verdict("sod_hashes"), verdict("sod_signature")) {
        (Some(h), _) if h.verdict != Verdict::Pass => {
            return Ok(ChipAuthentication::NotTrusted(format!(
                "DG14 failed passive authentication ({}); its key was not used",
                h.detail.as_deref().unwrap_or("no detail")
            )));
        }
        (_, Some(sig)) if sig.verdict == Verdict::Fail => {
            return Ok(ChipAuthentication::NotTrusted(format!(
                "EF.SOD's signature does not verify ({}); DG14's key was not used",
                sig.detail.as_deref().unwrap_or("no detail")
            )));
        }
        (_, Some(sig)) if sig.verdict == Verdict::Unknown => {
            caveat = format!(
                "; DG14 matches EF.SOD but EF.SOD's signature could not be checked ({})",
                sig.detail.as_deref().unwrap_or("no detail")
            );
        }
        _ => {}
    }

    let infos = match security_infos::parse(&dg14) {
        Ok(infos) => infos,
        Err(e) => {
            return Ok(ChipAuthentication::NotSupported(format!(
                "DG14 does not parse: {e}"
            )));
        }
    };
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
            return Ok(ChipAuthentication::Passed(format!(
                "{}{caveat}",
                params.describe()
            )));
        }
        Some(failure) => failure,
    };
    // The chip refused under the old keys and kept the session: go on with it. Otherwise open
    // the chip again.
    if s.sm.is_none() {
        match reopen.run(s) {
            Ok(()) => {}
            Err(
                e @ (ReadError::CardRemoved { .. }
                | ReadError::ReaderGone { .. }
                | ReadError::Transmit { .. }),
            ) => return Err(e),
            Err(e) => {
                return Err(ReadError::ChipAuthentication {
                    failure,
                    reopen: e.to_string(),
                });
            }
        }
    }
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

/// EF.CardAccess (SFI 1C) read in plain: what PACE the chip offers, and whether it offers any.
/// An unreadable or unparsable file with a PACE OID in it counts as an unsupported offer.
fn card_access(s: &mut Session) -> Result<(Offer, bool), ReadError> {
    let name = "EF.CardAccess";
    let first = s.raw(&Command::new(0x00, 0xB0, 0x9C, 0x00).with_le(256), name)?;
    if !matches!(first.sw, apdu::SW_OK | apdu::SW_END_OF_FILE) || first.data.is_empty() {
        return Ok((Offer::None, false));
    }
    let mut data = first.data;
    // Longer files continue from the implicitly selected EF (plain, offsets in P1-P2).
    if let Ok((_, hlen, vlen)) = tlv::header(&data) {
        let total = (hlen + vlen).min(MAX_CARD_ACCESS);
        while data.len() < total {
            let offset = data.len();
            let more = s.raw(
                &Command::new(0x00, 0xB0, (offset >> 8) as u8, offset as u8)
                    .with_le((total - offset).min(256)),
                name,
            )?;
            if !matches!(more.sw, apdu::SW_OK | apdu::SW_END_OF_FILE) || more.data.is_empty() {
                break;
            }
            data.extend_from_slice(&more.data);
        }
        data.truncate(total);
    }
    let mentions_pace = data
        .windows(security_infos::ID_PACE.len())
        .any(|w| w == security_infos::ID_PACE);
    let offer = match security_infos::parse(&data) {
        Ok(infos) => pace::choose(&infos),
        Err(e) if mentions_pace => {
            Offer::Unsupported(format!("an EF.CardAccess that does not parse ({e})"))
        }
        Err(e) => {
            debug!(error = %e, "EF.CardAccess does not parse and offers no PACE");
            Offer::None
        }
    };
    let offered = offer != Offer::None;
    Ok((offer, offered))
}

/// SELECT EF then READ BINARY in chunks: first 8 bytes for tag and length, then `block`-sized
/// pieces (even INS up to offset 32767, odd INS `B1` with an offset object beyond).
fn read_file(
    s: &mut Session,
    file: LdsFile,
    options: &ReadOptions,
    stats: &mut ReadStats,
) -> Result<Vec<u8>, ReadError> {
    let name = file.name();
    let started = Instant::now();
    let apdus_before = s.apdus;
    let select = s.send(
        &Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(file.fid().to_be_bytes().to_vec()),
        &name,
    )?;
    if !select.is_ok() {
        return Err(ReadError::File {
            file: name,
            sw: select.sw,
        });
    }
    let head = read_binary(s, 0, 8, &name)?;
    let (_, hlen, vlen) = tlv::header(&head).map_err(|e| ReadError::Malformed {
        file: name.clone(),
        detail: format!("file header: {e}"),
    })?;
    let total = hlen + vlen;
    if total > MAX_FILE {
        return Err(ReadError::Malformed {
            file: name,
            detail: format!("announces {total} bytes, more than the {MAX_FILE} accepted"),
        });
    }
    let mut data = head;
    data.truncate(total);
    let mut block = options.block.clamp(1, 0xFF);
    while data.len() < total {
        let want = block.min(total - data.len());
        match read_binary(s, data.len(), want, &name) {
            Ok(chunk) if chunk.is_empty() => {
                return Err(ReadError::Malformed {
                    file: name,
                    detail: format!("the chip returned no data at offset {}", data.len()),
                });
            }
            Ok(mut chunk) => {
                chunk.truncate(total - data.len());
                data.extend_from_slice(&chunk);
            }
            Err(ReadError::File { sw, .. })
                if block > options.fallback_block
                    && (sw == apdu::SW_WRONG_LENGTH
                        || sw & 0xFF00 == 0x6C00
                        || sw == apdu::SW_WRONG_P1P2) =>
            {
                debug!(file = %name, sw = format_args!("{sw:04X}"), "length error; smaller blocks");
                block = options.fallback_block;
            }
            Err(e) => return Err(e),
        }
    }
    stats
        .files
        .push((name, s.apdus - apdus_before, data.len(), started.elapsed()));
    Ok(data)
}

fn read_binary(
    s: &mut Session,
    offset: usize,
    le: usize,
    name: &str,
) -> Result<Vec<u8>, ReadError> {
    let resp = if offset <= 0x7FFF {
        s.send(
            &Command::new(0x00, 0xB0, (offset >> 8) as u8, offset as u8).with_le(le),
            name,
        )?
    } else {
        let off = (offset as u32).to_be_bytes();
        let skip = off.iter().take_while(|b| **b == 0).count();
        let cmd = Command::new(0x00, 0xB1, 0x00, 0x00)
            .with_data(tlv::encode(0x54, &off[skip..]))
            .with_le(le);
        let mut resp = s.send(&cmd, name)?;
        if !resp.data.is_empty() {
            let object = tlv::expect(&resp.data, 0x53).map_err(|e| ReadError::Malformed {
                file: name.into(),
                detail: format!("odd-INS READ BINARY answer: {e}"),
            })?;
            resp.data = object.value.to_vec();
        }
        resp
    };
    match resp.sw {
        apdu::SW_OK | apdu::SW_END_OF_FILE => Ok(resp.data),
        sw => Err(ReadError::File {
            file: name.into(),
            sw,
        }),
    }
}
