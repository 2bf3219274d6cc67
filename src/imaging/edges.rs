//! Edge map for detection: binomial smoothing, Sobel, non-maximum suppression with sub-pixel
//! edge positions, hysteresis (Canny), all on the small detection image.

use super::plane::Plane;

/// Separable [1 4 6 4 1]/16 smoothing, `passes` times (σ ≈ 1 per pass), borders clamped.
pub fn smooth(src: &Plane, passes: usize) -> Plane {
    let (w, h) = (src.w, src.h);
    let mut cur = Plane::new(w, h);
    for y in 0..h {
        cur.data[y * w..(y + 1) * w].copy_from_slice(src.row(y));
    }
    if w < 3 || h < 3 {
        return cur;
    }
    let mut tmp = vec![0u16; w * h];
    for _ in 0..passes {
        for y in 0..h {
            let row = &cur.data[y * w..(y + 1) * w];
            let out = &mut tmp[y * w..(y + 1) * w];
            for x in 0..w {
                let g =
                    |d: isize| u16::from(row[(x as isize + d).clamp(0, w as isize - 1) as usize]);
                out[x] = g(-2) + 4 * g(-1) + 6 * g(0) + 4 * g(1) + g(2);
            }
        }
        for y in 0..h {
            let r = |d: isize| (y as isize + d).clamp(0, h as isize - 1) as usize * w;
            let (a, b, c, d, e) = (r(-2), r(-1), r(0), r(1), r(2));
            for x in 0..w {
                let s = u32::from(tmp[a + x])
                    + 4 * u32::from(tmp[b + x])
                    + 6 * u32::from(tmp[c + x])
                    + 4 * u32::from(tmp[d + x])
                    + u32::from(tmp[e + x]);
                cur.data[c + x] = ((s + 128) >> 8) as u8;
            }
        }
    }
    cur
}

/// Edges of a smoothed plane.
pub struct Edges {
    pub w: usize,
    pub h: usize,
    /// Gradient magnitude |gx| + |gy| (Sobel).
    pub mag: Vec<u16>,
    /// Direction sector: 0 horizontal gradient, 1 down-right, 2 vertical, 3 down-left.
    pub dir: Vec<u8>,
    /// Canny edge pixels after hysteresis.
    pub edge: Vec<bool>,
}

const STEPS: [(isize, isize); 4] = [(1, 0), (1, 1), (0, 1), (-1, 1)];

impl Edges {
    pub fn is_edge(&self, x: isize, y: isize) -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < self.w
            && (y as usize) < self.h
            && self.edge[y as usize * self.w + x as usize]
    }

    /// The edge position of pixel `(x, y)` refined along its gradient (parabola through the
    /// magnitudes), in continuous coordinates.
    pub fn subpixel(&self, x: usize, y: usize) -> (f64, f64) {
        let i = y * self.w + x;
        let (dx, dy) = STEPS[usize::from(self.dir[i] & 3)];
        let (xm, ym, xp, yp) = (
            x as isize - dx,
            y as isize - dy,
            x as isize + dx,
            y as isize + dy,
        );
        let inside =
            |a: isize, b: isize| a >= 0 && b >= 0 && (a as usize) < self.w && (b as usize) < self.h;
        let mut off = 0.0;
        if inside(xm, ym) && inside(xp, yp) {
            let m0 = f64::from(self.mag[ym as usize * self.w + xm as usize]);
            let m1 = f64::from(self.mag[i]);
            let m2 = f64::from(self.mag[yp as usize * self.w + xp as usize]);
            let den = m0 - 2.0 * m1 + m2;
            if den < -1e-9 {
                off = (0.5 * (m0 - m2) / den).clamp(-0.5, 0.5);
            }
        }
        (
            x as f64 + 0.5 + off * dx as f64,
            y as f64 + 0.5 + off * dy as f64,
        )
    }
}

/// Sobel, non-maximum suppression and hysteresis between `low` and `high` (|gx| + |gy| units).
pub fn canny(s: &Plane, low: u16, high: u16) -> Edges {
    let (w, h) = (s.w, s.h);
    let mut mag = vec![0u16; w * h];
    let mut dir = vec![0u8; w * h];
    for y in 1..h.saturating_sub(1) {
        let (a, b, c) = ((y - 1) * w, y * w, (y + 1) * w);
        let d = &s.data;
        for x in 1..w - 1 {
            let p = |r: usize, dx: usize| i32::from(d[r + x + dx - 1]);
            let gx = (p(a, 2) + 2 * p(b, 2) + p(c, 2)) - (p(a, 0) + 2 * p(b, 0) + p(c, 0));
            let gy = (p(c, 0) + 2 * p(c, 1) + p(c, 2)) - (p(a, 0) + 2 * p(a, 1) + p(a, 2));
            let (ax, ay) = (gx.abs(), gy.abs());
            mag[b + x] = (ax + ay) as u16;
            dir[b + x] = if ay * 1000 < ax * 414 {
                0
            } else if ay * 414 > ax * 1000 {
                2
            } else if (gx > 0) == (gy > 0) {
                1
            } else {
                3
            };
        }
    }
    // Non-maximum suppression: 2 strong, 1 weak, 0 none.
    let mut class = vec![0u8; w * h];
    for y in 1..h.saturating_sub(1) {
        for x in 1..w - 1 {
            let i = y * w + x;
            let m = mag[i];
            if m < low {
                continue;
            }
            let (dx, dy) = STEPS[usize::from(dir[i])];
            let j1 = (y as isize + dy) as usize * w + (x as isize + dx) as usize;
            let j0 = (y as isize - dy) as usize * w + (x as isize - dx) as usize;
            if m > mag[j0] && m >= mag[j1] {
                class[i] = if m >= high { 2 } else { 1 };
            }
        }
    }
    // Hysteresis: weak pixels connected to strong ones.
    let mut edge = vec![false; w * h];
    let mut stack = Vec::new();
    for i in 0..w * h {
        if class[i] == 2 && !edge[i] {
            edge[i] = true;
            stack.push(i);
            while let Some(j) = stack.pop() {
                let (x, y) = ((j % w) as isize, (j / w) as isize);
                for ny in y - 1..=y + 1 {
                    for nx in x - 1..=x + 1 {
                        if nx < 0 || ny < 0 || nx as usize >= w || ny as usize >= h {
                            continue;
                        }
                        let k = ny as usize * w + nx as usize;
                        if class[k] > 0 && !edge[k] {
                            edge[k] = true;
                            stack.push(k);
                        }
                    }
                }
            }
        }
    }
    Edges {
        w,
        h,
        mag,
        dir,
        edge,
    }
}

/// Otsu's threshold of a plane's histogram.
pub fn otsu(p: &Plane) -> u8 {
    let mut hist = [0u64; 256];
    for y in 0..p.h {
        for &v in p.row(y) {
            hist[usize::from(v)] += 1;
        }
    }
    let total: u64 = hist.iter().sum();
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0u64, 0.0f64, -1.0f64, 128u8);
    for (t, &c) in hist.iter().enumerate() {
        w0 += c;
        sum0 += t as f64 * c as f64;
        let w1 = total - w0;
        if w0 == 0 || w1 == 0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0 as f64, (sum_all - sum0) / w1 as f64);
        let between = w0 as f64 * w1 as f64 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t as u8;
        }
    }
    best_t
}
