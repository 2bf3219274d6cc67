//! Reader ↔ Simulator over an in-memory transport.

use std::collections::VecDeque;

use super::*;
use crate::frame::encode_response;
use crate::sim::{
    FAKE_SAM_ID, FakeCard, Fault, FaultKind, Protocol, Simulator, fake_resident_cards,
    fake_resident_texts,
};
use crate::test_util::Lcg;

/// Connects a reader directly to a simulator: a write is fed to the simulator and its reply queued;
/// reads drain the queue, at most `max_chunk` bytes at a time; an empty queue is a timeout.
struct SimLink {
    sim: Simulator,
    rx: VecDeque<u8>,
    max_chunk: usize,
    mute: bool,
    commands: Vec<Vec<u8>>,
    /// The timeout of every read call, in order.
    timeouts: Vec<Duration>,
    /// The host's line rate and the simulated reader's; when they differ the host gets noise.
    host_baud: u32,
    reader_baud: u32,
}

impl SimLink {
    fn new() -> Self {
        Self {
            sim: Simulator::new(),
            rx: VecDeque::new(),
            max_chunk: 7,
            mute: false,
            commands: Vec::new(),
            timeouts: Vec::new(),
            host_baud: 115_200,
            reader_baud: 115_200,
        }
    }
}

impl Transport for SimLink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.commands.push(bytes.to_vec());
        if self.host_baud != self.reader_baud {
            self.rx.extend([0x13, 0xF0, 0x55, 0x02, 0x81]);
            return Ok(());
        }
        let reply = self.sim.feed(bytes);
        if !self.mute {
            self.rx.extend(reply);
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.timeouts.push(timeout);
        let n = buf.len().min(self.rx.len()).min(self.max_chunk);
        for (slot, b) in buf.iter_mut().zip(self.rx.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }

    fn discard_input(&mut self) -> io::Result<()> {
        self.rx.clear();
        Ok(())
    }

    fn set_baud(&mut self, baud: u32) -> io::Result<()> {
        self.host_baud = baud;
        Ok(())
    }
}

/// A reader that sends only find, select and read per poll (no `30 03`), like the protocol's
/// minimum; tests of the optional steps turn them on.
fn reader() -> Reader<SimLink> {
    Reader::new(
        SimLink::new(),
        ReaderOptions {
            appended_address: false,
            ..ReaderOptions::default()
        },
    )
}

fn card(i: usize) -> FakeCard {
    fake_resident_cards().remove(i)
}

fn set_card(r: &mut Reader<SimLink>, c: Option<FakeCard>) {
    r.transport_mut().sim.set_card(c);
}

fn expect_card(outcome: PollOutcome) -> CardRead {
    match outcome {
        PollOutcome::Card(c) => *c,
        other => panic!("expected a card, got {other:?}"),
    }
}

#[test]
fn stale_input_is_discarded_before_each_command() {
    let mut r = reader();
    set_card(&mut r, Some(card(0)));
    // A stale "no card" reply left in the input buffer must not be taken as the find reply.
    r.transport_mut()
        .rx
        .extend(encode_response(0, 0, 0x80, &[]));
    expect_card(r.poll().expect("poll"));
}

#[test]
fn no_card_is_not_an_error() {
    let mut r = reader();
    assert_eq!(r.poll().expect("poll"), PollOutcome::NoCard);
    assert_eq!(r.transport_mut().commands, [Command::FindCard.encode()]);
}

#[test]
fn placed_card_is_read_and_parsed() {
    let mut r = reader();
    let fake = card(0);
    set_card(&mut r, Some(fake.clone()));
    let read = expect_card(r.poll().expect("poll"));
    assert_eq!(read.text, fake.text);
    assert_eq!(read.photo_wlt, fake.photo);
    assert_eq!(read.card_type, CardType::Resident);
    let ParsedText::Resident(t) = &read.parsed else {
        panic!("not resident");
    };
    let expected = fake_resident_texts().remove(0);
    assert_eq!(t.name, "测试甲");
    assert_eq!(t.id_number, expected.id_number);
    assert_eq!(t, &expected);
    let sent: Vec<Vec<u8>> = [
        Command::FindCard,
        Command::SelectCard,
        Command::ReadTextPhoto,
    ]
    .iter()
    .map(Command::encode)
    .collect();
    assert_eq!(r.transport_mut().commands, sent);
}

#[test]
fn card_left_on_reader_is_reported_once_and_rearmed_after_two_empty_polls() {
    let mut r = reader();
    set_card(&mut r, Some(card(0)));
    expect_card(r.poll().expect("poll"));
    for _ in 0..3 {
        assert_eq!(r.poll().expect("poll"), PollOutcome::StillPresent);
    }
    // One empty poll is not enough to re-arm (a flaky find must not duplicate a read).
    set_card(&mut r, None);
    assert_eq!(r.poll().expect("poll"), PollOutcome::NoCard);
    set_card(&mut r, Some(card(0)));
    assert_eq!(r.poll().expect("poll"), PollOutcome::StillPresent);
    // Two consecutive empty polls re-arm.
    set_card(&mut r, None);
    assert_eq!(r.poll().expect("poll"), PollOutcome::NoCard);
    assert_eq!(r.poll().expect("poll"), PollOutcome::NoCard);
    set_card(&mut r, Some(card(0)));
    expect_card(r.poll().expect("poll"));
    assert_eq!(r.poll().expect("poll"), PollOutcome::StillPresent);
}

#[test]
fn two_different_cards_in_a_row_are_two_reads() {
    let mut r = reader();
    set_card(&mut r, Some(card(0)));
    let a = expect_card(r.poll().expect("poll"));
    set_card(&mut r, Some(card(1)));
    let b = expect_card(r.poll().expect("poll"));
    assert_ne!(a.text, b.text);
    let ParsedText::Resident(t) = &b.parsed else {
        panic!("not resident");
    };
    assert_eq!(t.name, "测试乙");
    // And back to A: also new.
    set_card(&mut r, Some(card(0)));
    expect_card(r.poll().expect("poll"));
}

#[test]
fn rearm_forgets_the_last_card() {
    let mut r = reader();
    set_card(&mut r, Some(card(2)));
    expect_card(r.poll().expect("poll"));
    r.rearm();
    expect_card(r.poll().expect("poll"));
}

#[test]
fn garbage_before_each_reply_is_skipped() {
    let mut r = reader();
    let mut garbage = vec![0x00, 0xFF, 0xAA, 0xAA, 0x13, 0xAA, 0xAA, 0xAA, 0x96];
    let mut rng = Lcg(42);
    garbage.extend((0..100).map(|_| (rng.next() as u8) & 0x7F));
    r.transport_mut().sim.set_reply_prefix(garbage);
    r.sam_status().expect("status");
    set_card(&mut r, Some(card(1)));
    expect_card(r.poll().expect("poll"));
    // One command per step: no retries were needed.
    assert_eq!(r.transport_mut().commands.len(), 4);
}

#[test]
fn corrupted_reply_is_retried_once() {
    let mut r = reader();
    set_card(&mut r, Some(card(0)));
    r.transport_mut().sim.corrupt_next_replies(1);
    expect_card(r.poll().expect("poll"));
    let find = Command::FindCard.encode();
    let finds = r
        .transport_mut()
        .commands
        .iter()
        .filter(|c| **c == find)
        .count();
    assert_eq!(finds, 2, "find was sent again after the bad checksum");
    assert_eq!(r.transport_mut().commands.len(), 4);

    // Corrupted again on the retry: the error surfaces, naming the command.
    r.transport_mut().sim.corrupt_next_replies(2);
    let err = r
        .transact(&Command::SamStatus)
        .expect_err("two bad replies");
    assert!(matches!(
        err,
        ReaderError::Frame {
            command: Command::SamStatus,
            source: FrameError::BadChecksum { .. }
        }
    ));
    assert!(err.to_string().contains("SAM status (11 FF)"), "{err}");
}

#[test]
fn a_corrupted_read_reply_is_retried_too() {
    let mut r = reader();
    set_card(&mut r, Some(card(0)));
    let sim = &mut r.transport_mut().sim;
    // find, select answer normally; the 30 01 reply is corrupted once.
    sim.script_reply(encode_response(0, 0, 0x9F, &[0; 4]));
    sim.script_reply(encode_response(0, 0, 0x90, &[0; 8]));
    let mut bad = {
        let mut probe = Simulator::new();
        probe.set_card(Some(card(0)));
        probe.feed(&Command::SelectCard.encode());
        probe.feed(&Command::ReadTextPhoto.encode())
    };
    assert_eq!(bad.len(), 1295);
    if let Some(b) = bad.get_mut(600) {
        *b ^= 0x01;
    }
    sim.script_reply(bad);
    // The scripted replies do not change the sim's state, so select it for real.
    expect_card(r.poll().expect("poll"));
    let read = Command::ReadTextPhoto.encode();
    let reads = r
        .transport_mut()
        .commands
        .iter()
        .filter(|c| **c == read)
        .count();
    assert_eq!(reads, 2);
}

#[test]
fn reader_rejected_checksum_is_retried_once() {
    let mut r = reader();
    r.transport_mut()
        .sim
        .script_reply(encode_response(0, 0, 0x10, &[]));
    r.sam_status().expect("second attempt succeeds");
    assert_eq!(r.transport_mut().commands.len(), 2);
}

#[test]
fn sam_commands() {
    let mut r = reader();
    r.sam_status().expect("status");
    assert_eq!(r.sam_id().expect("sam id"), FAKE_SAM_ID);
    r.set_max_rf_byte(0x50).expect("61 FF");
    assert_eq!(r.transport_mut().sim.max_rf_byte(), Some(0x50));

    r.transport_mut()
        .sim
        .script_reply(encode_response(0, 0, 0x60, &[]));
    let err = r.sam_status().expect_err("self-test failed");
    assert!(matches!(err, ReaderError::Sam { sw3: 0x60, .. }), "{err}");
    assert!(err.to_string().contains("SAM_V自检失败"), "{err}");

    r.transport_mut()
        .sim
        .script_reply(encode_response(0, 0, 0x90, &[1, 2, 3]));
    let err = r.sam_id().expect_err("short SAM ID");
    assert!(matches!(err, ReaderError::BadReply { .. }), "{err}");
}

#[test]
fn no_reply_is_a_timeout_naming_the_command() {
    let mut r = reader();
    r.transport_mut().mute = true;
    let err = r.poll().expect_err("mute reader");
    assert!(
        matches!(
            err,
            ReaderError::Timeout {
                command: Command::FindCard,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("find card (20 01)"), "{err}");
    // A timeout is not a garbled frame: no retry.
    assert_eq!(r.transport_mut().commands.len(), 1);
}

#[test]
fn truncated_reply_is_retried() {
    let mut r = reader();
    let full = encode_response(0, 0, 0x90, &[]);
    r.transport_mut()
        .sim
        .script_reply(full.get(..8).unwrap_or_default().to_vec());
    r.sam_status().expect("retry succeeds");
    assert_eq!(r.transport_mut().commands.len(), 2);
    // First read waits the command's whole timeout; once the preamble is in, only the byte gap.
    let gap = r.options().byte_gap;
    let timeouts = std::mem::take(&mut r.transport_mut().timeouts);
    let first = timeouts.first().copied().unwrap_or_default();
    assert!(
        first > gap && first <= Command::SamStatus.timeout(115_200),
        "{timeouts:?}"
    );
    assert!(timeouts.contains(&gap), "{timeouts:?}");

    r.transport_mut()
        .sim
        .script_reply(full.get(..8).unwrap_or_default().to_vec());
    r.transport_mut()
        .sim
        .script_reply(full.get(..9).unwrap_or_default().to_vec());
    let err = r.sam_status().expect_err("truncated twice");
    assert!(
        matches!(
            err,
            ReaderError::Frame {
                source: FrameError::Truncated { have: 9, need: 11 },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn select_and_read_failures_are_no_card() {
    let mut r = reader();
    set_card(&mut r, Some(card(0)));
    let sim = &mut r.transport_mut().sim;
    sim.script_reply(encode_response(0, 0, 0x9F, &[0; 4]));
    sim.script_reply(encode_response(0, 0, 0x81, &[]));
    assert_eq!(r.poll().expect("poll"), PollOutcome::NoCard);

    let sim = &mut r.transport_mut().sim;
    sim.script_reply(encode_response(0, 0, 0x9F, &[0; 4]));
    sim.script_reply(encode_response(0, 0, 0x90, &[0; 8]));
    sim.script_reply(encode_response(0, 0, 0x41, &[]));
    assert_eq!(r.poll().expect("poll"), PollOutcome::NoCard);

    // Those two no-card polls re-armed; the card is still there and is reported.
    expect_card(r.poll().expect("poll"));
}

#[test]
fn unexpected_status_names_command_and_text() {
    let mut r = reader();
    r.transport_mut()
        .sim
        .script_reply(encode_response(0, 0, 0x24, &[]));
    let err = r.poll().expect_err("24");
    assert!(
        matches!(
            err,
            ReaderError::UnexpectedStatus {
                command: Command::FindCard,
                sw3: 0x24,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("无法识别的错误"), "{err}");
}

#[test]
fn read_reply_sizes_are_validated() {
    let mut r = reader();
    let mut short_photo = card(0);
    short_photo.photo.truncate(1000);
    set_card(&mut r, Some(short_photo));
    let err = r.poll().expect_err("photo of 1000 bytes");
    assert!(
        matches!(
            err,
            ReaderError::BadReply {
                command: Command::ReadTextPhoto,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("photo length 1000"), "{err}");

    let cmd = Command::ReadTextPhoto;
    let mut good = vec![0x01, 0x00, 0x04, 0x00];
    good.extend([0x20; 256]);
    good.extend([0x00; 1024]);
    assert!(parse_read_reply(cmd, &good).is_ok());
    for len in [0, 1, 3, 4, 100, good.len() - 1] {
        let data = good.get(..len).unwrap_or_default();
        assert!(
            matches!(
                parse_read_reply(cmd, data),
                Err(ReaderError::BadReply { .. })
            ),
            "{len}"
        );
    }
    let mut extra = good.clone();
    extra.push(0);
    assert!(parse_read_reply(cmd, &extra).is_err());
    let mut wrong_text_len = good.clone();
    wrong_text_len[1] = 0x01;
    assert!(parse_read_reply(cmd, &wrong_text_len).is_err());
}

#[test]
fn random_replies_never_panic() {
    let mut rng = Lcg(2024);
    let mut r = reader();
    set_card(&mut r, Some(card(0)));
    for _ in 0..2000 {
        let mut reply: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 {
            let sw3 = rng.next() as u8;
            let data: Vec<u8> = (0..rng.below(1400)).map(|_| rng.next() as u8).collect();
            reply.extend(encode_response(0, 0, sw3, &data));
        }
        r.transport_mut().sim.script_reply(reply);
        let _ = r.poll();
    }
}

#[test]
fn card_read_debug_does_not_leak() {
    let mut r = reader();
    set_card(&mut r, Some(card(0)));
    let read = expect_card(r.poll().expect("poll"));
    let dbg = format!("{read:?}");
    assert!(!dbg.contains("测试甲"), "{dbg}");
    assert!(
        dbg.contains("<256 bytes>") && dbg.contains("<1024 bytes>"),
        "{dbg}"
    );
}

fn sent(r: &mut Reader<SimLink>) -> Vec<Command> {
    r.transport_mut()
        .commands
        .iter()
        .filter_map(|c| {
            let (cmd, para) = (*c.get(7)?, *c.get(8)?);
            Command::from_frame(cmd, para, c.get(9..c.len() - 1)?)
        })
        .collect()
}

#[test]
fn start_checks_the_sam_and_sets_the_rf_frame_size_once() {
    let mut r = reader();
    r.start().expect("start");
    r.start().expect("start again");
    assert_eq!(
        sent(&mut r),
        [
            Command::SamStatus,
            Command::SetMaxRfByte(0x50),
            Command::SamStatus
        ]
    );
    assert_eq!(r.transport_mut().sim.max_rf_byte(), Some(0x50));
    // A reader refusing 61 FF still starts.
    let mut r = reader();
    r.transport_mut().sim.inject(Fault {
        command: Some(Command::SetMaxRfByte(0)),
        kind: FaultKind::Status(0x21),
        times: 1,
    });
    r.start().expect("start despite 61 FF refused");
}

#[test]
fn sam_faults_are_errors_with_their_text() {
    for (sw3, text) in [
        (0x60, "self-test"),
        (0x66, "not authorised"),
        (0x47, "random"),
    ] {
        let mut r = reader();
        r.transport_mut().sim.inject(Fault {
            command: Some(Command::SamStatus),
            kind: FaultKind::Status(sw3),
            times: 1,
        });
        let err = r.start().expect_err("SAM fault");
        assert!(
            matches!(err, ReaderError::Sam { sw3: s, .. } if s == sw3),
            "{err}"
        );
        assert!(err.to_string().contains(text), "{err}");
    }
}

#[test]
fn idle_polls_recheck_the_sam_status() {
    let mut r = Reader::new(
        SimLink::new(),
        ReaderOptions {
            status_recheck: Duration::ZERO,
            appended_address: false,
            ..ReaderOptions::default()
        },
    );
    r.start().expect("start");
    assert_eq!(r.poll().expect("poll"), PollOutcome::NoCard);
    assert_eq!(sent(&mut r)[2..], [Command::FindCard, Command::SamStatus]);
    // The SAM fails its self-test while idle: the poll reports it.
    r.transport_mut().sim.inject(Fault {
        command: Some(Command::SamStatus),
        kind: FaultKind::Status(0x60),
        times: 1,
    });
    assert!(matches!(r.poll(), Err(ReaderError::Sam { sw3: 0x60, .. })));
}

#[test]
fn fingerprints_are_read_with_30_10_and_kept_opaque() {
    for templates in [0, 1, 2] {
        let mut r = Reader::new(
            SimLink::new(),
            ReaderOptions {
                fingerprint: true,
                appended_address: false,
                ..ReaderOptions::default()
            },
        );
        let fake = card(0).with_fingerprints(templates, 9);
        set_card(&mut r, Some(fake.clone()));
        let read = expect_card(r.poll().expect("poll"));
        assert_eq!(sent(&mut r)[2], Command::ReadTextPhotoFingerprint);
        assert_eq!(read.text, fake.text);
        assert_eq!(read.photo_wlt, fake.photo);
        match templates {
            0 => assert_eq!(read.fingerprint, None),
            n => assert_eq!(read.fingerprint.map(|f| f.len()), Some(512 * n)),
        }
    }
    // Without the option, 30 01 and no fingerprint even if the card has one.
    let mut r = reader();
    set_card(&mut r, Some(card(0).with_fingerprints(2, 9)));
    assert_eq!(expect_card(r.poll().expect("poll")).fingerprint, None);
}

#[test]
fn fingerprint_reply_lengths_are_validated() {
    let cmd = Command::ReadTextPhotoFingerprint;
    let fake = card(0);
    let build = |fp_len: u16, fp: usize| {
        let mut data = vec![0x01, 0x00, 0x04, 0x00];
        data.extend(fp_len.to_be_bytes());
        data.extend(fake.text);
        data.extend(&fake.photo);
        data.extend(vec![0xEE; fp]);
        data
    };
    for (len, actual) in [(512, 512), (1024, 1024), (0, 0)] {
        assert!(parse_read_reply(cmd, &build(len, actual)).is_ok(), "{len}");
    }
    for (len, actual, why) in [
        (256, 256, "fingerprint length 256"),
        (512, 511, "expected 1798"),
        (0, 1, "expected 1286"),
    ] {
        let err = parse_read_reply(cmd, &build(len, actual)).expect_err("bad");
        assert!(err.to_string().contains(why), "{err}");
    }
    assert!(parse_read_reply(cmd, &[1, 0, 4, 0, 0]).is_err());
}

#[test]
fn appended_address_is_read_for_new_cards_only() {
    let mut r = Reader::new(SimLink::new(), ReaderOptions::default());
    set_card(
        &mut r,
        Some(card(0).with_appended_address("北京市西城区测试街2号")),
    );
    let read = expect_card(r.poll().expect("poll"));
    assert_eq!(
        read.appended_address,
        AppendedAddress::Present("北京市西城区测试街2号".into())
    );
    assert_eq!(r.poll().expect("poll"), PollOutcome::StillPresent);
    let reads = sent(&mut r)
        .iter()
        .filter(|c| **c == Command::ReadAppendedAddress)
        .count();
    assert_eq!(reads, 1, "30 03 only once per card");
    // SW3 91: none.
    set_card(&mut r, Some(card(1)));
    let read = expect_card(r.poll().expect("poll"));
    assert_eq!(read.appended_address, AppendedAddress::Absent);
    // The card moved before 30 03: the card is still reported, the address is unreadable.
    r.transport_mut().sim.inject(Fault {
        command: Some(Command::ReadAppendedAddress),
        kind: FaultKind::Status(0x41),
        times: 1,
    });
    set_card(&mut r, Some(card(2)));
    let read = expect_card(r.poll().expect("poll"));
    assert!(
        matches!(&read.appended_address, AppendedAddress::Unreadable(why) if why.contains("0x41")),
        "{:?}",
        read.appended_address
    );
}

#[test]
fn appended_address_replies() {
    assert_eq!(parse_appended_address(0x91, &[]), AppendedAddress::Absent);
    assert_eq!(
        parse_appended_address(0x90, &[0x20, 0x00].repeat(35)),
        AppendedAddress::Absent
    );
    assert!(matches!(
        parse_appended_address(0x90, &[0x20, 0x00, 0x31]),
        AppendedAddress::Unreadable(_)
    ));
    assert!(matches!(
        parse_appended_address(0x90, &[0x00, 0xD8]),
        AppendedAddress::Unreadable(_)
    ));
    assert_eq!(
        parse_appended_address(0x90, &[0x31, 0x00, 0x20, 0x00]),
        AppendedAddress::Present("1".into())
    );
}

#[test]
fn every_sw3_code_on_every_card_command_is_handled() {
    let codes = [
        0x90, 0x91, 0x9F, 0x10, 0x11, 0x21, 0x23, 0x24, 0x31, 0x32, 0x33, 0x40, 0x41, 0x47, 0x60,
        0x66, 0x80, 0x81, 0x00, 0xFF,
    ];
    let commands = [
        Command::SamStatus,
        Command::FindCard,
        Command::SelectCard,
        Command::ReadTextPhoto,
        Command::ReadAppendedAddress,
    ];
    for command in commands {
        for sw3 in codes {
            let mut r = Reader::new(SimLink::new(), ReaderOptions::default());
            set_card(&mut r, Some(card(0)));
            r.transport_mut().sim.inject(Fault {
                command: Some(command),
                kind: FaultKind::Status(sw3),
                times: 2,
            });
            let outcome = if command == Command::SamStatus {
                r.start().map(|()| PollOutcome::NoCard)
            } else {
                r.poll()
            };
            let expected_ok = match (command, sw3) {
                (Command::SamStatus, 0x90) => true,
                (Command::SamStatus, _) => false,
                (Command::FindCard, 0x9F | 0x80) => true,
                (Command::SelectCard, 0x90 | 0x81) => true,
                (Command::ReadTextPhoto, 0x41) => true,
                // Anything on 30 03 leaves the card read.
                (Command::ReadAppendedAddress, _) => true,
                _ => false,
            };
            assert_eq!(
                outcome.is_ok(),
                expected_ok,
                "{command} SW3 {sw3:#04x}: {outcome:?}"
            );
            if let Err(e) = outcome {
                let message = e.to_string();
                assert!(
                    message.contains(&format!("{sw3:#04x}"))
                        || message.contains("unsupported")
                        || message.contains("malformed reply"),
                    "{message}"
                );
            }
        }
    }
}

#[test]
fn baud_probe_takes_the_first_rate_that_answers() {
    let mut r = reader();
    r.transport_mut().reader_baud = 19_200;
    assert_eq!(r.probe_baud(&PROBE_BAUDS).expect("probe"), 19_200);
    assert_eq!(r.options().baud, 19_200);
    assert_eq!(
        sent(&mut r)
            .iter()
            .filter(|c| **c == Command::SamStatus)
            .count(),
        4
    );
    // The read timeouts now scale with 19200.
    set_card(&mut r, Some(card(0)));
    expect_card(r.poll().expect("poll at 19200"));
    let longest = r.transport_mut().timeouts.iter().max().copied();
    let limit = Command::ReadTextPhoto.timeout(19_200);
    assert!(
        longest.is_some_and(|t| t <= limit && t > limit - Duration::from_millis(100)),
        "{longest:?}"
    );
    assert!(limit > Command::ReadTextPhoto.timeout(115_200));

    let mut r = reader();
    r.transport_mut().reader_baud = 4800;
    let err = r.probe_baud(&PROBE_BAUDS).expect_err("nothing answers");
    assert!(matches!(err, ReaderError::NoReader { .. }), "{err}");
    assert!(
        err.to_string().contains("bytes that form no GA 467 frame"),
        "{err}"
    );
    let mut r = reader();
    r.transport_mut().mute = true;
    let err = r.probe_baud(&[115_200]).expect_err("silence");
    assert!(err.to_string().contains("silence"), "{err}");
}

#[test]
fn vendor_variants_are_unsupported_not_retried() {
    for (protocol, what) in [
        (Protocol::AdditiveChecksum, "additive checksum"),
        (Protocol::StxEtx, "STX/ETX"),
        (Protocol::AllBadCommand, "SW3 21"),
    ] {
        let mut r = reader();
        r.transport_mut().sim.set_protocol(protocol);
        let err = r.probe_baud(&PROBE_BAUDS).and_then(|_| r.start());
        let err = err.expect_err("unsupported");
        assert!(
            matches!(err, ReaderError::UnsupportedProtocol { .. }),
            "{protocol:?}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("unsupported reader protocol") && message.contains(what),
            "{message}"
        );
        assert!(
            sent(&mut r).len() <= 2,
            "{protocol:?}: no retry loop: {:?}",
            sent(&mut r)
        );
    }
}

#[test]
fn slow_reply_within_the_read_timeout_is_fine() {
    // The in-memory link has no clock, but the timeouts handed to the transport are the
    // per-command ones: short for find/select, baud-scaled for reads.
    let mut r = reader();
    set_card(&mut r, Some(card(0)));
    expect_card(r.poll().expect("poll"));
    let timeouts = &r.transport_mut().timeouts;
    let near =
        |t: &Duration, limit: Duration| *t <= limit && *t > limit - Duration::from_millis(50);
    assert!(
        near(&timeouts[0], Command::FindCard.timeout(115_200)),
        "{timeouts:?}"
    );
    assert!(
        timeouts
            .iter()
            .any(|t| near(t, Command::ReadTextPhoto.timeout(115_200))),
        "{timeouts:?}"
    );
}

/// A card-text reply whose checksum happens to pass the additive check (or line noise that
/// looks like one) becomes an "unsupported protocol" error: it reaches the warn log and the
/// MQTT `events` topic, so it may carry lengths and command codes, never the bytes received.
#[test]
fn unsupported_protocol_errors_carry_no_received_bytes() {
    let text = card(0).text;
    let mut reply = encode_response(0, 0, status::OK, &text);
    let sum = reply
        .iter()
        .skip(5)
        .take(reply.len().saturating_sub(6))
        .fold(0u8, |acc, b| acc.wrapping_add(*b));
    if let Some(chk) = reply.last_mut() {
        *chk = 0u8.wrapping_sub(sum);
    }
    let mut r = reader();
    r.start().expect("start");
    r.transport_mut().sim.script_reply(reply);
    let err = r
        .sam_status()
        .expect_err("an additive checksum is not GA 467");
    assert!(
        matches!(err, ReaderError::UnsupportedProtocol { .. }),
        "{err}"
    );
    let shown = format!("{err} {err:?}");
    for window in text.windows(3) {
        let spaced = window
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(!shown.contains(&spaced), "card bytes {spaced} in {shown}");
    }
    assert!(shown.contains("additive checksum"), "{shown}");

    // Probing at the wrong rate: the garbage is counted, not shown.
    let mut r = reader();
    r.transport_mut().reader_baud = 4800;
    let err = r.probe_baud(&PROBE_BAUDS).expect_err("nothing answers");
    assert!(!err.to_string().contains("13 F0 55"), "{err}");
    assert!(err.to_string().contains("bytes"), "{err}");
}
