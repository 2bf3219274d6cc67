//! Format negotiation, kept apart from the ioctls so it is tested without a camera: the largest
//! MJPEG frame size (by pixel count; a still is one full-size stream frame, since mainline
//! `uvcvideo` has no still-image path), then the highest frame rate at that size.

/// Frame sizes as `VIDIOC_ENUM_FRAMESIZES` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sizes {
    Discrete(Vec<(u32, u32)>),
    /// min, max, step (width and height).
    Stepwise {
        min: (u32, u32),
        max: (u32, u32),
        step: (u32, u32),
    },
}

/// A frame interval in seconds, `numerator / denominator` (1/30 is 30 fps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub numerator: u32,
    pub denominator: u32,
}

impl Interval {
    pub fn fps(self) -> f64 {
        if self.numerator == 0 {
            0.0
        } else {
            f64::from(self.denominator) / f64::from(self.numerator)
        }
    }
}

/// Frame intervals as `VIDIOC_ENUM_FRAMEINTERVALS` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intervals {
    Discrete(Vec<Interval>),
    /// The shortest interval possible.
    Stepwise {
        min: Interval,
    },
}

/// The size to ask for: the largest, optionally no larger than `limit` (width, height).
pub fn pick_size(sizes: &Sizes, limit: Option<(u32, u32)>) -> Option<(u32, u32)> {
    let fits = |(w, h): (u32, u32)| limit.is_none_or(|(lw, lh)| w <= lw && h <= lh);
    match sizes {
        Sizes::Discrete(list) => list
            .iter()
            .copied()
            .filter(|&s| s.0 > 0 && s.1 > 0 && fits(s))
            .max_by_key(|&(w, h)| u64::from(w) * u64::from(h)),
        Sizes::Stepwise { min, max, step } => {
            let clamp = |lo: u32, hi: u32, step: u32, want: u32| {
                // A driver listing min > max must not panic the clamp.
                let want = want.max(lo).min(hi.max(lo));
                match (want - lo).checked_div(step) {
                    Some(steps) => lo + steps * step,
                    None => want,
                }
            };
            let (lw, lh) = limit.unwrap_or(*max);
            let w = clamp(min.0, max.0, step.0, lw);
            let h = clamp(min.1, max.1, step.1, lh);
            (w > 0 && h > 0 && fits((w, h))).then_some((w, h))
        }
    }
}

/// The highest frame rate (shortest interval) on offer.
pub fn pick_interval(intervals: &Intervals) -> Option<Interval> {
    let valid = |i: &Interval| i.numerator > 0 && i.denominator > 0;
    match intervals {
        Intervals::Discrete(list) => list
            .iter()
            .copied()
            .filter(valid)
            .max_by(|a, b| a.fps().total_cmp(&b.fps())),
        Intervals::Stepwise { min } => valid(min).then_some(*min),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(n: u32, d: u32) -> Interval {
        Interval {
            numerator: n,
            denominator: d,
        }
    }

    #[test]
    fn the_largest_mjpeg_size_wins_by_area() {
        // A 13 MP document camera's list (Eloam-like), unsorted.
        let sizes = Sizes::Discrete(vec![
            (640, 480),
            (4208, 3120),
            (3264, 2448),
            (1920, 1080),
            (0, 0),
        ]);
        assert_eq!(pick_size(&sizes, None), Some((4208, 3120)));
        assert_eq!(pick_size(&sizes, Some((3264, 2448))), Some((3264, 2448)));
        assert_eq!(pick_size(&sizes, Some((100, 100))), None);
        assert_eq!(pick_size(&Sizes::Discrete(vec![]), None), None);
    }

    #[test]
    fn stepwise_sizes_snap_to_the_step() {
        let sizes = Sizes::Stepwise {
            min: (16, 16),
            max: (4000, 3000),
            step: (16, 8),
        };
        assert_eq!(pick_size(&sizes, None), Some((4000, 3000)));
        assert_eq!(pick_size(&sizes, Some((1000, 1000))), Some((992, 1000)));
    }

    #[test]
    fn the_highest_frame_rate_wins() {
        let list = Intervals::Discrete(vec![iv(1, 5), iv(1, 15), iv(1, 10), iv(0, 30), iv(1, 0)]);
        assert_eq!(pick_interval(&list), Some(iv(1, 15)));
        assert_eq!(
            pick_interval(&Intervals::Stepwise { min: iv(1, 30) }),
            Some(iv(1, 30))
        );
        assert_eq!(pick_interval(&Intervals::Discrete(vec![])), None);
        assert_eq!(iv(1, 15).fps(), 15.0);
    }
}
