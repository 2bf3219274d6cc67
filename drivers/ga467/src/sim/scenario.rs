//! What happens at a simulated desk, and when: cards placed and removed, the USB adapter
//! unplugged and plugged back, faults and noise. `countersign sim ga467 --scenario FILE` builds one
//! from a file (format in `docs/ga467-simulator.md`); tests build them directly.

use std::time::Duration;

use super::cards::FakeCard;
use super::engine::{Fault, Protocol};
use super::pty::PtySimOptions;

/// A timeline for the pty simulator.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The simulated reader's own line rate: replies are paced at it, and a host whose port is
    /// set to another rate gets line noise instead of answers (as from a real UART).
    pub baud: u32,
    /// GA 467 or a vendor variant.
    pub protocol: Protocol,
    /// Steps in time order (ties keep their order).
    pub steps: Vec<Step>,
    /// Restart the timeline after this long (the legacy placed/removed cycle). `None`: run once,
    /// then keep the last state until stopped.
    pub cycle: Option<Duration>,
}

/// One thing that happens at `at` after the start.
#[derive(Debug, Clone)]
pub struct Step {
    /// Offset from the start of the timeline.
    pub at: Duration,
    /// What happens.
    pub action: Action,
}

/// What can happen at the desk.
#[derive(Debug, Clone)]
pub enum Action {
    /// A card is laid on the antenna (replacing any card there).
    Place(Box<FakeCard>),
    /// The card is taken away.
    Remove,
    /// The USB-serial adapter is pulled: the pty closes and the link disappears.
    Unplug,
    /// It is plugged back in: a new pty appears at the same link.
    Replug,
    /// A fault on the next matching replies.
    Fault(Fault),
    /// Bytes sent before every reply from now on (empty: stop).
    Noise(Vec<u8>),
    /// The simulator exits.
    Exit,
}

impl Scenario {
    /// The steps sorted by time (stable), as the runner needs them.
    pub fn sorted(mut self) -> Self {
        self.steps.sort_by_key(|s| s.at);
        self
    }

    /// The legacy timer: absent, card 0 present, absent, card 1 present, …, cycling.
    pub fn from_timer(opts: &PtySimOptions) -> Self {
        let period = opts.absent + opts.present;
        let mut steps = Vec::new();
        let mut at = Duration::ZERO;
        for card in &opts.cards {
            steps.push(Step {
                at: at + opts.absent,
                action: Action::Place(Box::new(card.clone())),
            });
            at += period;
            steps.push(Step {
                at,
                action: Action::Remove,
            });
        }
        Self {
            baud: opts.baud,
            protocol: Protocol::Ga467,
            steps,
            cycle: (!opts.cards.is_empty() && !period.is_zero()).then_some(at),
        }
    }
}

/// Walks a scenario's steps as time passes.
#[derive(Debug)]
pub(crate) struct Timeline {
    steps: Vec<Step>,
    cycle: Option<Duration>,
    next: usize,
    base: Duration,
}

impl Timeline {
    pub(crate) fn new(scenario: &Scenario) -> Self {
        Self {
            steps: scenario.clone().sorted().steps,
            cycle: scenario.cycle,
            next: 0,
            base: Duration::ZERO,
        }
    }

    /// The actions due at `elapsed` (time since the start), in order.
    pub(crate) fn due(&mut self, elapsed: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        loop {
            while let Some(step) = self.steps.get(self.next) {
                if self.base + step.at > elapsed {
                    break;
                }
                out.push(step.action.clone());
                self.next += 1;
            }
            match self.cycle {
                Some(c) if self.next >= self.steps.len() && elapsed >= self.base + c => {
                    self.base += c;
                    self.next = 0;
                }
                _ => return out,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::sim::fake_resident_cards;

    fn kinds(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Place(c) => format!("place {}", c.number().unwrap_or_default()),
                Action::Remove => "remove".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn timer_starts_absent_and_cycles() {
        let cards: Vec<FakeCard> = fake_resident_cards().into_iter().take(2).collect();
        let (a, b) = (
            cards[0].number().unwrap_or_default(),
            cards[1].number().unwrap_or_default(),
        );
        let opts = PtySimOptions {
            link: PathBuf::new(),
            baud: 115_200,
            present: Duration::from_millis(100),
            absent: Duration::from_millis(50),
            cards,
        };
        let mut t = Timeline::new(&Scenario::from_timer(&opts));
        let at = |ms| Duration::from_millis(ms);
        assert!(t.due(at(10)).is_empty());
        assert_eq!(kinds(&t.due(at(50))), [format!("place {a}")]);
        assert!(t.due(at(100)).is_empty());
        assert_eq!(kinds(&t.due(at(150))), ["remove"]);
        assert_eq!(kinds(&t.due(at(200))), [format!("place {b}")]);
        assert_eq!(kinds(&t.due(at(300))), ["remove"]);
        assert_eq!(kinds(&t.due(at(350))), [format!("place {a}")]);
        // A late tick catches up in order.
        assert_eq!(
            kinds(&t.due(at(610))),
            [
                "remove".to_owned(),
                format!("place {b}"),
                "remove".to_owned()
            ]
        );

        let empty = PtySimOptions {
            cards: Vec::new(),
            ..opts
        };
        let mut t = Timeline::new(&Scenario::from_timer(&empty));
        assert!(t.due(at(10_000)).is_empty());
    }

    #[test]
    fn one_shot_scenarios_keep_their_order() {
        let step = |ms, action| Step {
            at: Duration::from_millis(ms),
            action,
        };
        let scenario = Scenario {
            baud: 9600,
            protocol: Protocol::Ga467,
            steps: vec![
                step(300, Action::Replug),
                step(100, Action::Remove),
                step(200, Action::Unplug),
                step(100, Action::Exit),
            ],
            cycle: None,
        };
        let mut t = Timeline::new(&scenario);
        assert_eq!(
            kinds(&t.due(Duration::from_millis(250))),
            ["remove", "Exit", "Unplug"]
        );
        assert_eq!(kinds(&t.due(Duration::from_secs(100))), ["Replug"]);
        assert!(t.due(Duration::from_secs(1000)).is_empty());
    }
}
