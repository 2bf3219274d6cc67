//! Auto-capture's eye: one capture per new page, once it lies still. Frames are reduced to small
//! grey thumbnails ([`Thumbnail`], 64×48 cell averages: cheap, and blind to sensor noise and
//! JPEG artefacts); the mean absolute difference between consecutive thumbnails is the motion.
//! A view that stays below `motion_threshold` for `still_frames` frames has settled; if it
//! differs from the last settled view by more than `change_threshold` it is a [`Decision::NewView`]
//! (the caller then checks that a page is in view: an emptied desk is a new view too), otherwise
//! [`Decision::SameView`] (the same page after a hand passed over it is not captured twice).

/// Thumbnail size in cells.
pub const THUMB_W: usize = 64;
pub const THUMB_H: usize = 48;

/// A 64×48 grey summary of a frame.
#[derive(Clone, PartialEq)]
pub struct Thumbnail {
    cells: Vec<u8>,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Thumbnail({}x{})", THUMB_W, THUMB_H)
    }
}

impl Thumbnail {
    /// Averages a grey image (`stride` bytes per row) into the cells. `None` when the image is
    /// smaller than the grid or `data` is too short for the given geometry.
    pub fn from_grey(width: usize, height: usize, stride: usize, data: &[u8]) -> Option<Thumbnail> {
        if width < THUMB_W || height < THUMB_H || stride < width {
            return None;
        }
        let needed = stride.checked_mul(height - 1)?.checked_add(width)?;
        if data.len() < needed {
            return None;
        }
        let mut cells = Vec::with_capacity(THUMB_W * THUMB_H);
        for cy in 0..THUMB_H {
            let (y0, y1) = (cy * height / THUMB_H, (cy + 1) * height / THUMB_H);
            for cx in 0..THUMB_W {
                let (x0, x1) = (cx * width / THUMB_W, (cx + 1) * width / THUMB_W);
                let mut sum = 0u64;
                for y in y0..y1 {
                    sum += data[y * stride + x0..y * stride + x1]
                        .iter()
                        .map(|&v| u64::from(v))
                        .sum::<u64>();
                }
                let n = ((y1 - y0) * (x1 - x0)).max(1) as u64;
                cells.push((sum / n) as u8);
            }
        }
        Some(Thumbnail { cells })
    }

    /// Mean absolute difference per cell, 0–255.
    pub fn difference(&self, other: &Thumbnail) -> f32 {
        let total: u64 = self
            .cells
            .iter()
            .zip(&other.cells)
            .map(|(&a, &b)| u64::from(a.abs_diff(b)))
            .sum();
        total as f32 / self.cells.len().max(1) as f32
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StillnessOptions {
    /// Mean difference between consecutive thumbnails above which the view is moving.
    pub motion_threshold: f32,
    /// Consecutive still frames (after the motion) before the view counts as settled.
    pub still_frames: u32,
    /// Mean difference from the last settled view above which a settled view is new.
    pub change_threshold: f32,
}

impl Default for StillnessOptions {
    fn default() -> Self {
        Self {
            motion_threshold: 3.0,
            still_frames: 4,
            change_threshold: 8.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// The view changed since the last frame (by this much).
    Moving(f32),
    /// Still for this many frames, not yet settled.
    Settling(u32),
    /// Settled and different from the last settled view (by this much): capture it if a page
    /// is in view.
    NewView(f32),
    /// Settled and the same as the last settled view: nothing to do.
    SameView(f32),
    /// Still lying there, already decided.
    Settled,
}

/// Feeds on thumbnails, one per analysed frame.
#[derive(Debug)]
pub struct StillnessDetector {
    options: StillnessOptions,
    previous: Option<Thumbnail>,
    still: u32,
    decided: bool,
    reference: Option<Thumbnail>,
}

impl StillnessDetector {
    pub fn new(options: StillnessOptions) -> Self {
        Self {
            options,
            previous: None,
            still: 0,
            decided: false,
            reference: None,
        }
    }

    pub fn observe(&mut self, view: Thumbnail) -> Decision {
        let motion = match &self.previous {
            Some(previous) => view.difference(previous),
            None => f32::INFINITY,
        };
        let decision = if motion > self.options.motion_threshold {
            self.still = 0;
            self.decided = false;
            Decision::Moving(if motion.is_finite() { motion } else { 255.0 })
        } else if self.decided {
            Decision::Settled
        } else {
            self.still += 1;
            if self.still < self.options.still_frames {
                Decision::Settling(self.still)
            } else {
                self.decided = true;
                let change = self
                    .reference
                    .as_ref()
                    .map_or(f32::INFINITY, |r| view.difference(r));
                self.reference = Some(view.clone());
                if change > self.options.change_threshold {
                    Decision::NewView(if change.is_finite() { change } else { 255.0 })
                } else {
                    Decision::SameView(change)
                }
            }
        };
        self.previous = Some(view);
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 320;
    const H: usize = 240;

    /// A grey scene: the desk, optionally a page (white, with text lines) and a hand (a dark
    /// blob at `hand_x`), with ±2 noise.
    fn scene(page: Option<(usize, usize)>, hand_x: Option<usize>, seed: u32) -> Thumbnail {
        let mut px = vec![60u8; W * H];
        let mut rng = seed.wrapping_mul(2654435761) | 1;
        if let Some((px0, py0)) = page {
            for y in py0..py0 + 150 {
                for x in px0..px0 + 110 {
                    let text = (y - py0) % 12 < 3 && (x - px0) % 9 < 6 && (y - py0) > 10;
                    px[y * W + x] = if text { 30 } else { 235 };
                }
            }
        }
        if let Some(hx) = hand_x {
            for y in 120..240 {
                for x in hx..(hx + 70).min(W) {
                    px[y * W + x] = 140;
                }
            }
        }
        for p in px.iter_mut() {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            *p = p.saturating_add((rng % 5) as u8).saturating_sub(2);
        }
        Thumbnail::from_grey(W, H, W, &px).unwrap()
    }

    fn new_views(d: &mut StillnessDetector, frames: Vec<Thumbnail>) -> Vec<Decision> {
        frames
            .into_iter()
            .map(|f| d.observe(f))
            .filter(|d| matches!(d, Decision::NewView(_) | Decision::SameView(_)))
            .collect()
    }

    #[test]
    fn one_decision_per_new_page_once_it_lies_still() {
        let mut d = StillnessDetector::new(StillnessOptions::default());
        let mut seed = 0;
        let mut frames = |page: Option<(usize, usize)>, hand: Option<usize>, n: usize| {
            (0..n)
                .map(|_| {
                    seed += 1;
                    scene(page, hand, seed)
                })
                .collect::<Vec<_>>()
        };
        let a = Some((100, 40));
        let b = Some((60, 60));
        // The empty desk at start settles: a new view (no page: the caller captures nothing).
        let empty = new_views(&mut d, frames(None, None, 8));
        assert!(matches!(empty[..], [Decision::NewView(_)]), "{empty:?}");
        // A hand brings page A: moving frames, then A lies still: one new view, however long.
        let mut seq = Vec::new();
        for x in [250, 200, 150, 100, 40] {
            seq.extend(frames(a, Some(x), 1));
        }
        seq.extend(frames(a, None, 30));
        let laid = new_views(&mut d, seq);
        assert!(
            matches!(laid[..], [Decision::NewView(c)] if c > 20.0),
            "{laid:?}"
        );
        // A hand passes over A and leaves: A again, not a new page.
        let mut seq = Vec::new();
        for x in [0, 60, 120, 180, 240] {
            seq.extend(frames(a, Some(x), 1));
        }
        seq.extend(frames(a, None, 10));
        let same = new_views(&mut d, seq);
        assert!(
            matches!(same[..], [Decision::SameView(c)] if c < 2.0),
            "{same:?}"
        );
        // A hand that stops too briefly decides nothing.
        let mut seq = frames(a, Some(100), 2);
        seq.extend(frames(a, Some(180), 2));
        assert!(new_views(&mut d, seq).is_empty());
        // A removed (empty desk: a new view the caller finds no page in), then page B.
        let removed = new_views(&mut d, frames(None, None, 10));
        assert!(matches!(removed[..], [Decision::NewView(_)]), "{removed:?}");
        let next = new_views(&mut d, frames(b, None, 10));
        assert!(matches!(next[..], [Decision::NewView(_)]), "{next:?}");
    }

    #[test]
    fn thumbnails_refuse_bad_geometry() {
        assert!(Thumbnail::from_grey(10, 10, 10, &[0; 100]).is_none());
        assert!(Thumbnail::from_grey(640, 480, 640, &[0; 1000]).is_none());
        assert!(Thumbnail::from_grey(640, 480, 600, &[0; 640 * 480]).is_none());
        assert!(Thumbnail::from_grey(64, 48, 64, &[0; 64 * 48]).is_some());
        assert!(Thumbnail::from_grey(usize::MAX, 48, usize::MAX, &[0; 64]).is_none());
    }
}
