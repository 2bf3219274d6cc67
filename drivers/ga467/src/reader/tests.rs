//! Reader ↔ Simulator over an in-memory transport.

use std::collections::VecDeque;

use super::*;
use crate::frame::encode_response;
use crate::sim::{FAKE_SAM_ID, FakeCard, Simulator, fake_resident_cards, fake_resident_texts};
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
        }
    }
}

impl Transport for SimLink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.commands.push(bytes.to_vec());
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
}

fn reader() -> Reader<SimLink> {
    Reader::new(SimLink::new(), ReaderOptions::default())
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
        .script_reply(encode_response(0, 0, 0x21, &[]));
    let err = r.poll().expect_err("21");
    assert!(
        matches!(
            err,
            ReaderError::UnexpectedStatus {
                command: Command::FindCard,
                sw3: 0x21,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("命令错误"), "{err}");
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
