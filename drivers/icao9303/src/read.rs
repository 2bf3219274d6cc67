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

use crate::aa::{AaExchange, ActiveAuthentication, Binding};
use crate::access::{self, AccessError, AccessProtocol, BacTerminal};
use crate::apdu::{self, Command, Response};
use crate::ca::{CaTerminal, ChipAuthentication};
use crate::lds::{self, LdsFile};
use crate::mrz::MrzKey;
use crate::pa::{self, Verdict};

mod aa;
mod ca;
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
    /// Run Active Authentication when the chip has DG15 (default). Off, the result is
    /// [`ActiveAuthentication::Skipped`] (DG15 is still read and hashed).
    pub active_authentication: bool,
    /// What the challenge is bound to (the station's chain at read time); a random challenge
    /// when `None`.
    pub aa_binding: Option<Binding>,
    /// Ask for INTERNAL AUTHENTICATE's answer with an extended Le (reader and chip must support
    /// extended length); short Le and `61xx` pieces otherwise (default; what Chinese passports
    /// need).
    pub extended_length: bool,
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
            active_authentication: true,
            aa_binding: None,
            extended_length: false,
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
    /// Active Authentication: passed, failed (a possible clone), not trusted, or why not run.
    pub active_authentication: ActiveAuthentication,
    /// The challenge, its binding and the chip's answer, when INTERNAL AUTHENTICATE was sent.
    pub aa_exchange: Option<AaExchange>,
    /// Data groups EF.COM or EF.SOD list that were not read, and why.
    pub not_read: Vec<(u8, String)>,
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
    /// APDUs and time of Active Authentication (DG15's read and INTERNAL AUTHENTICATE).
    pub aa_apdus: u32,
    pub aa_time: Duration,
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
        "{protocol} failed: {failure}; the chip could not be opened again to finish the read: {reopen}"
    )]
    Reopen {
        /// `chip authentication` or `Active Authentication`.
        protocol: &'static str,
        failure: String,
        reopen: String,
    },
}

struct Session<'a> {
    card: &'a mut dyn Transceiver,
    sm: Option<SecureMessaging>,
    apdus: u32,
    /// PACE-CAM's proof, checked once DG14 is read (chip authentication is then not run).
    cam: Option<pace::CamProof>,
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
        self.send_with(cmd, during, false)
    }

    /// [`Self::send`], with the protected command's Le extended (`00 00`: any length) when
    /// `extended_le`; short otherwise, a longer answer then comes in `61xx` pieces.
    fn send_with(
        &mut self,
        cmd: &Command,
        during: &str,
        extended_le: bool,
    ) -> Result<Response, ReadError> {
        match self.sm.take() {
            None => self.raw(cmd, during),
            Some(mut sm) => {
                let mut protected = sm.protect(cmd);
                if extended_le {
                    // Outside the MAC (only DO'97' is covered), so it can change after protect.
                    protected.le = Some(65536);
                }
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
        cam: None,
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
                    s.cam = session.cam;
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
    let chip_authentication = ca::chip_authentication(
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

    let aa_started = Instant::now();
    let aa_apdus_before = s.apdus;
    let (active_authentication, aa_exchange) = aa::active_authentication(
        &mut s,
        &listed,
        &sod,
        options,
        &reopen,
        &mut stats,
        &mut data_groups,
    )?;
    stats.aa_apdus = s.apdus - aa_apdus_before;
    stats.aa_time = aa_started.elapsed();
    debug!(apdus = stats.aa_apdus, result = %active_authentication, "active authentication");

    for n in &options.data_groups {
        if (listed.contains(n) || *n == 1) && !data_groups.iter().any(|(d, _)| d == n) {
            let bytes = read_file(&mut s, LdsFile::Dg(*n), options, &mut stats)?;
            data_groups.push((*n, bytes));
        }
    }
    let not_read = read_the_rest(&mut s, &listed, &sod, options, &mut stats, &mut data_groups)?;
    stats.apdus = s.apdus;
    stats.total = started.elapsed();
    Ok(DocumentRead {
        access,
        sm_cipher,
        pace_offered,
        pace: pace_used,
        pace_not_used,
        chip_authentication,
        active_authentication,
        aa_exchange,
        not_read,
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
    /// After `protocol` failed: when it broke secure messaging, the chip opened again so the read
    /// can finish. Only card and reader errors, and an access that fails again, end the read.
    fn after_failure(
        &self,
        s: &mut Session,
        protocol: &'static str,
        failure: &str,
    ) -> Result<(), ReadError> {
        if s.sm.is_some() {
            return Ok(());
        }
        match self.run(s) {
            Ok(()) => Ok(()),
            Err(
                e @ (ReadError::CardRemoved { .. }
                | ReadError::ReaderGone { .. }
                | ReadError::Transmit { .. }),
            ) => Err(e),
            Err(e) => Err(ReadError::Reopen {
                protocol,
                failure: failure.into(),
                reopen: e.to_string(),
            }),
        }
    }

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

/// Whether passive authentication vouches for data group `dg`: its hash is in EF.SOD and matches,
/// and EF.SOD's signature verifies. The error says which part failed (the key is then not
/// trusted, whatever the chip answers with it).
fn vouched(sod_bytes: &[u8], dg: u8, bytes: &[u8]) -> Result<(), String> {
    let checks = pa::verify(sod_bytes, &[(dg, bytes)], None);
    let verdict = |name: &str| checks.iter().find(|c| c.name == name);
    let detail = |c: &pa::PaCheck| c.detail.clone().unwrap_or_else(|| "no detail".into());
    match (verdict("sod_hashes"), verdict("sod_signature")) {
        (Some(h), _) if h.verdict != Verdict::Pass => Err(format!(
            "DG{dg} failed passive authentication ({})",
            detail(h)
        )),
        (_, Some(sig)) if sig.verdict == Verdict::Fail => Err(format!(
            "EF.SOD's signature does not verify ({})",
            detail(sig)
        )),
        (_, Some(sig)) if sig.verdict == Verdict::Unknown => Err(format!(
            "DG{dg} matches EF.SOD, but EF.SOD's signature could not be checked ({})",
            detail(sig)
        )),
        (_, Some(_)) => Ok(()),
        (_, None) => Err("EF.SOD's signature was not checked".into()),
    }
}

/// Every other data group EF.COM or EF.SOD lists, read so that passive authentication covers
/// it (a clone cannot hide a data group it changed by leaving it unread), except DG3 and DG4
/// (fingerprints and irises need Extended Access Control, terminal authentication, which
/// countersign does not do) and DG14 or DG15 when chip or Active Authentication was turned off
/// for the read. A group the chip refuses is reported, not an error.
fn read_the_rest(
    s: &mut Session,
    listed: &[u8],
    sod_bytes: &[u8],
    options: &ReadOptions,
    stats: &mut ReadStats,
    data_groups: &mut Vec<(u8, Vec<u8>)>,
) -> Result<Vec<(u8, String)>, ReadError> {
    let mut all: Vec<u8> = listed.to_vec();
    if let Ok(sod) = sod::parse_sod(sod_bytes) {
        all.extend(sod.dg_hashes.iter().map(|(n, _)| *n));
    }
    all.sort_unstable();
    all.dedup();
    let mut not_read = Vec::new();
    for n in all {
        if data_groups.iter().any(|(d, _)| *d == n) || !(1..=16).contains(&n) {
            continue;
        }
        let skipped = match n {
            3 | 4 => Some(
                "needs Extended Access Control (terminal authentication), which countersign does not do",
            ),
            14 if !options.chip_authentication => {
                Some("chip authentication was turned off for this read")
            }
            15 if !options.active_authentication => {
                Some("Active Authentication was turned off for this read")
            }
            _ => None,
        };
        if let Some(why) = skipped {
            not_read.push((n, why.into()));
            continue;
        }
        match read_file(s, LdsFile::Dg(n), options, stats) {
            Ok(bytes) => data_groups.push((n, bytes)),
            Err(ReadError::File { sw, .. }) => not_read.push((
                n,
                format!("the chip refused it ({sw:04X}, {})", apdu::sw_text(sw)),
            )),
            // A group no parser needs, too large or with a broken header: reported, the read
            // goes on (the session is intact).
            Err(ReadError::Malformed { detail, .. }) => not_read.push((n, detail)),
            Err(e) => return Err(e),
        }
    }
    Ok(not_read)
}
