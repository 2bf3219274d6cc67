//! Property tests of the outbox as the station and the uplink use it: random interleavings of
//! append (some refused as full, some failing or panicking while sealing), publish, ack, reject,
//! progress, reconnect, crash (the `Outbox` dropped unclosed and the file opened again) and power
//! cut (a copy of the database and its WAL taken mid-run, opened in place of the original).
//!
//! After every step: every record appended and not answered is pending, in `seq` order (none
//! lost); no record the case system stored or rejected is ever offered for delivery again; the
//! rejected ones are in the dead letters; and the chain stays gapless: the next append gets
//! `seq = last + 1` and `prev = sha256 of the last record's wire bytes`, whatever failed between.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::{Limits, Outbox, OutboxError, Settle};
use crate::record::{ChainLink, Sealed, SealedBlob, chain_hash};

const STATION: &str = "window-01";

#[derive(Debug, Clone)]
enum Op {
    Append {
        blobs: u8,
    },
    /// The outbox is full: the append is refused and consumes no `seq`.
    AppendFull,
    /// Sealing fails (a key error): nothing is written.
    AppendSealFails,
    /// Sealing panics mid-transaction (a crash inside `append`): rolled back.
    AppendPanics,
    /// The uplink sends the oldest `n` pending records.
    Publish {
        n: u8,
    },
    /// The case system answers for the i-th record ever appended (duplicates included).
    Ack {
        pick: u16,
    },
    Reject {
        pick: u16,
    },
    /// Blob progress for the i-th record's first blob.
    Progress {
        pick: u16,
        offset: u16,
    },
    /// A burst of answers in one transaction.
    AckBurst {
        picks: Vec<u16>,
    },
    /// CONNACK: every unacknowledged record is started again.
    Reconnect,
    /// The process dies: the connection is dropped without closing, the file opened again.
    Crash,
    /// A power-cut image: the database and WAL files copied now, the copy opened from then on.
    PowerCut,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3).prop_map(|blobs| Op::Append { blobs }),
        1 => Just(Op::AppendFull),
        1 => Just(Op::AppendSealFails),
        1 => Just(Op::AppendPanics),
        3 => (1u8..5).prop_map(|n| Op::Publish { n }),
        3 => any::<u16>().prop_map(|pick| Op::Ack { pick }),
        2 => any::<u16>().prop_map(|pick| Op::Reject { pick }),
        2 => (any::<u16>(), any::<u16>()).prop_map(|(pick, offset)| Op::Progress { pick, offset }),
        1 => prop::collection::vec(any::<u16>(), 1..6).prop_map(|picks| Op::AckBurst { picks }),
        1 => Just(Op::Reconnect),
        1 => Just(Op::Crash),
        1 => Just(Op::PowerCut),
    ]
}

/// What the outbox must hold, kept beside it.
#[derive(Default)]
struct Model {
    /// Every record appended, in order: (id, wire, blob ids).
    appended: Vec<(String, Vec<u8>, Vec<String>)>,
    pending: BTreeSet<String>,
    stored: BTreeSet<String>,
    rejected: BTreeSet<String>,
    /// Last reported progress per pending blob.
    progress: BTreeMap<String, u64>,
}

impl Model {
    fn pick(&self, pick: u16) -> Option<&(String, Vec<u8>, Vec<String>)> {
        if self.appended.is_empty() {
            return None;
        }
        self.appended.get(usize::from(pick) % self.appended.len())
    }

    /// The link the next append must get.
    fn next_link(&self) -> ChainLink {
        ChainLink {
            seq: self.appended.len() as u64 + 1,
            prev: self.appended.last().map(|(_, wire, _)| chain_hash(wire)),
        }
    }

    fn settle(&mut self, answer: &Settle) -> bool {
        match answer {
            Settle::Stored(id) => {
                let changed = self.pending.remove(id);
                if changed {
                    self.stored.insert(id.clone());
                    self.forget_progress(id);
                }
                changed
            }
            Settle::Rejected(id, _) => {
                let changed = self.pending.remove(id);
                if changed {
                    self.rejected.insert(id.clone());
                    self.forget_progress(id);
                }
                changed
            }
        }
    }

    fn forget_progress(&mut self, id: &str) {
        if let Some((_, _, blobs)) = self.appended.iter().find(|(i, _, _)| i == id) {
            for blob in blobs {
                self.progress.remove(blob);
            }
        }
    }
}

fn sealed(link: &ChainLink, blobs: u8) -> Sealed {
    let record_id = format!("rec-{:04}", link.seq);
    Sealed {
        wire: format!("{record_id} seq {} prev {:?}", link.seq, link.prev).into_bytes(),
        blobs: (0..blobs)
            .map(|i| SealedBlob {
                blob_id: format!("{record_id}-blob-{i}"),
                wire: vec![i; 64 + usize::from(i) * 32],
            })
            .collect(),
        record_id,
    }
}

/// Copies the database and its WAL (no -shm: the copy rebuilds it), as a power cut would leave
/// them, to a new name in the same directory.
fn power_cut_image(from: &Path, n: usize) -> PathBuf {
    let to = from.with_file_name(format!("power-cut-{n}.sqlite"));
    std::fs::copy(from, &to).expect("copy the database");
    let wal = PathBuf::from(format!("{}-wal", from.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", to.display())).expect("copy the WAL");
    }
    to
}

fn check(outbox: &Outbox, model: &Model) -> Result<(), TestCaseError> {
    let pending = outbox.oldest(usize::MAX >> 1).expect("oldest");
    let ids: Vec<&str> = pending.iter().map(|p| p.record_id.as_str()).collect();
    let expected: Vec<&str> = model
        .appended
        .iter()
        .map(|(id, _, _)| id.as_str())
        .filter(|id| model.pending.contains(*id))
        .collect();
    prop_assert_eq!(&ids, &expected, "pending records (in seq order)");
    for p in &pending {
        prop_assert!(
            !model.stored.contains(&p.record_id),
            "stored record offered again"
        );
        prop_assert!(
            !model.rejected.contains(&p.record_id),
            "rejected record offered again"
        );
        let (_, wire, blobs) = model
            .appended
            .iter()
            .find(|(id, _, _)| *id == p.record_id)
            .expect("known record");
        prop_assert_eq!(&p.wire, wire);
        prop_assert_eq!(&outbox.blob_ids(&p.record_id).expect("blob ids"), blobs);
    }
    for window in pending.windows(2) {
        prop_assert!(window[0].seq < window[1].seq);
    }
    let stats = outbox.stats().expect("stats");
    prop_assert_eq!(stats.depth, model.pending.len() as u64);
    prop_assert_eq!(stats.dead_letters, model.rejected.len() as u64);
    for (blob, offset) in &model.progress {
        prop_assert_eq!(
            outbox.progress(blob).expect("progress"),
            *offset,
            "progress of {}",
            blob
        );
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut path = dir.path().join("outbox.sqlite");
    let mut outbox = Outbox::open(&path).expect("open");
    let mut model = Model::default();
    // What the uplink has in flight (published, unanswered).
    let mut in_flight: BTreeSet<String> = BTreeSet::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append { blobs } => {
                let expected = model.next_link();
                let mut got = None;
                let (link, id) = outbox
                    .append(STATION, |link| {
                        got = Some(link.clone());
                        Ok(sealed(link, blobs))
                    })
                    .expect("append");
                prop_assert_eq!(got.as_ref(), Some(&expected), "the link given to seal");
                prop_assert_eq!(&link, &expected);
                let s = sealed(&link, blobs);
                let blob_ids = s.blobs.iter().map(|b| b.blob_id.clone()).collect();
                model.pending.insert(id.clone());
                model.appended.push((id, s.wire, blob_ids));
            }
            Op::AppendFull => {
                let held = (model.pending.len() + model.rejected.len()) as u64;
                outbox.set_limits(Limits {
                    max_records: held,
                    ..Limits::default()
                });
                let r = outbox.append(STATION, |link| Ok(sealed(link, 1)));
                prop_assert!(matches!(r, Err(OutboxError::Full { .. })), "{:?}", r.err());
                outbox.set_limits(Limits::default());
            }
            Op::AppendSealFails => {
                let r = outbox.append(STATION, |_| Err("the signing key is gone".into()));
                prop_assert!(matches!(r, Err(OutboxError::Seal { .. })), "{:?}", r.err());
            }
            Op::AppendPanics => {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    outbox.append(STATION, |_| -> Result<Sealed, String> {
                        panic!("crash while sealing")
                    })
                }));
                prop_assert!(r.is_err());
            }
            Op::Publish { n } => {
                let batch = outbox.oldest(usize::from(n)).expect("oldest");
                let ids: Vec<String> = batch.iter().map(|p| p.record_id.clone()).collect();
                outbox.mark_attempts(&ids).expect("mark attempts");
                for p in batch {
                    prop_assert!(model.pending.contains(&p.record_id));
                    in_flight.insert(p.record_id);
                }
            }
            Op::Ack { pick } | Op::Reject { pick } => {
                let Some((id, _, _)) = model.pick(pick).cloned() else {
                    continue;
                };
                let answer = if matches!(op, Op::Ack { .. }) {
                    Settle::Stored(id.clone())
                } else {
                    Settle::Rejected(id.clone(), "schema".into())
                };
                let changed = outbox
                    .settle(std::slice::from_ref(&answer))
                    .expect("settle");
                prop_assert_eq!(changed, vec![model.settle(&answer)], "settle {:?}", answer);
                in_flight.remove(&id);
            }
            Op::AckBurst { picks } => {
                let answers: Vec<Settle> = picks
                    .iter()
                    .filter_map(|p| model.pick(*p))
                    .map(|(id, _, _)| Settle::Stored(id.clone()))
                    .collect();
                let changed = outbox.settle(&answers).expect("settle burst");
                let expected: Vec<bool> = answers.iter().map(|a| model.settle(a)).collect();
                prop_assert_eq!(changed, expected);
                for answer in &answers {
                    if let Settle::Stored(id) = answer {
                        in_flight.remove(id);
                    }
                }
            }
            Op::Progress { pick, offset } => {
                let Some((id, _, blobs)) = model.pick(pick).cloned() else {
                    continue;
                };
                let Some(blob) = blobs.first() else {
                    continue;
                };
                let offset = u64::from(offset % 200);
                let applied = outbox
                    .set_progress(&[(blob.clone(), offset)])
                    .expect("progress");
                let size = outbox
                    .blob_for_sending(blob)
                    .expect("blob")
                    .map(|b| b.wire.len() as u64);
                let applies = model.pending.contains(&id) && size.is_some_and(|s| offset <= s);
                prop_assert_eq!(applied, usize::from(applies));
                if applies {
                    model.progress.insert(blob.clone(), offset);
                }
            }
            Op::Reconnect => {
                // rumqttc keeps nothing across a clean session: all unanswered records again.
                in_flight.clear();
                let again = outbox.oldest(usize::MAX >> 1).expect("oldest");
                for p in &again {
                    prop_assert!(
                        !model.stored.contains(&p.record_id),
                        "a stored record would be sent again after reconnecting"
                    );
                }
            }
            Op::Crash => {
                drop(outbox);
                outbox = Outbox::open(&path).expect("reopen after a crash");
                in_flight.clear();
            }
            Op::PowerCut => {
                let image = power_cut_image(&path, step);
                drop(outbox);
                path = image;
                outbox = Outbox::open(&path).expect("open the power-cut image");
                in_flight.clear();
            }
        }
        for id in &in_flight {
            prop_assert!(model.pending.contains(id), "in flight but answered: {}", id);
        }
        check(&outbox, &model)?;
    }
    // The chain goes on gapless after whatever happened.
    let expected = model.next_link();
    let (link, _) = outbox
        .append(STATION, |link| Ok(sealed(link, 0)))
        .expect("final append");
    prop_assert_eq!(link, expected);
    Ok(())
}

proptest! {
    // Each case opens SQLite files and fsyncs: 96 cases of up to 40 steps take about 5 s in a debug build.
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn no_interleaving_loses_a_record_redelivers_an_answered_one_or_breaks_the_chain(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        run(ops)?;
    }
}
