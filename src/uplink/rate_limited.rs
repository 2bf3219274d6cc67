//! A log line that anyone on the broker can trigger must not flood the journal: at most one per
//! interval, with the count of those held back.

use std::time::{Duration, Instant};

/// Decides whether to log now; counts the occurrences it holds back.
#[derive(Debug, Clone)]
pub struct RateLimited {
    every: Duration,
    logged_at: Option<Instant>,
    held_back: u64,
}

impl Default for RateLimited {
    fn default() -> Self {
        RateLimited::every(Duration::from_secs(60))
    }
}

impl RateLimited {
    pub fn every(every: Duration) -> RateLimited {
        RateLimited {
            every,
            logged_at: None,
            held_back: 0,
        }
    }

    /// Some(number held back since the last line) when a line may be logged now.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .logged_at
            .is_some_and(|at| now.duration_since(at) < self.every)
        {
            self.held_back += 1;
            return None;
        }
        self.logged_at = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let mut limit = RateLimited::every(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(limit.allow(t0), Some(0));
        for s in 1..10 {
            assert_eq!(limit.allow(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(limit.allow(t0 + Duration::from_secs(10)), Some(9));
    }
}
