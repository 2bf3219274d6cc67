//! Geometry: homographies, quadrilaterals, polygon overlap. Coordinates are continuous: pixel
//! `(i, j)` covers `[i, i+1) × [j, j+1)`, its centre is `(i + 0.5, j + 0.5)`.

pub type Pt = (f64, f64);

/// A 3×3 projective transform, row-major.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography(pub [f64; 9]);

impl Homography {
    pub const IDENTITY: Homography = Homography([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);

    pub fn apply(&self, (x, y): Pt) -> Pt {
        let m = &self.0;
        let w = m[6] * x + m[7] * y + m[8];
        (
            (m[0] * x + m[1] * y + m[2]) / w,
            (m[3] * x + m[4] * y + m[5]) / w,
        )
    }

    /// `self ∘ other`: apply `other` first.
    pub fn then_after(&self, other: &Homography) -> Homography {
        let (a, b) = (&self.0, &other.0);
        let mut m = [0.0; 9];
        for r in 0..3 {
            for c in 0..3 {
                m[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
            }
        }
        Homography(m)
    }

    pub fn scale_translate(sx: f64, sy: f64, tx: f64, ty: f64) -> Homography {
        Homography([sx, 0.0, tx, 0.0, sy, ty, 0.0, 0.0, 1.0])
    }

    pub fn rotation_about(deg: f64, (cx, cy): Pt) -> Homography {
        let (s, c) = deg.to_radians().sin_cos();
        Homography([
            c,
            -s,
            cx - c * cx + s * cy,
            s,
            c,
            cy - s * cx - c * cy,
            0.0,
            0.0,
            1.0,
        ])
    }

    /// The transform taking `from[i]` to `to[i]`; `None` when degenerate (three collinear points).
    pub fn from_points(from: &[Pt; 4], to: &[Pt; 4]) -> Option<Homography> {
        let mut a = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let ((x, y), (u, v)) = (from[i], to[i]);
            a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        // Gaussian elimination with partial pivoting on the 8×8 system (last column: right side).
        for col in 0..8 {
            let pivot = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
            if a[pivot][col].abs() < 1e-12 {
                return None;
            }
            a.swap(col, pivot);
            let pivot_row = a[col];
            for (r, row) in a.iter_mut().enumerate() {
                if r != col {
                    let f = row[col] / pivot_row[col];
                    for (v, p) in row.iter_mut().zip(pivot_row.iter()).skip(col) {
                        *v -= f * p;
                    }
                }
            }
        }
        let mut m = [0.0; 9];
        for i in 0..8 {
            m[i] = a[i][8] / a[i][i];
        }
        m[8] = 1.0;
        m.iter().all(|v| v.is_finite()).then_some(Homography(m))
    }
}

pub fn dist(a: Pt, b: Pt) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

/// Signed area (positive when clockwise in image coordinates, y down).
pub fn signed_area(poly: &[Pt]) -> f64 {
    let n = poly.len();
    (0..n)
        .map(|i| {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum::<f64>()
        / 2.0
}

pub fn is_convex(poly: &[Pt]) -> bool {
    let n = poly.len();
    let mut sign = 0.0f64;
    for i in 0..n {
        let (a, b, c) = (poly[i], poly[(i + 1) % n], poly[(i + 2) % n]);
        let cross = (b.0 - a.0) * (c.1 - b.1) - (b.1 - a.1) * (c.0 - b.0);
        if cross.abs() < 1e-9 {
            return false;
        }
        if sign == 0.0 {
            sign = cross.signum();
        } else if cross.signum() != sign {
            return false;
        }
    }
    true
}

/// Interior angle at each corner, degrees.
pub fn corner_angles(q: &[Pt; 4]) -> [f64; 4] {
    std::array::from_fn(|i| {
        let (p, c, n) = (q[(i + 3) % 4], q[i], q[(i + 1) % 4]);
        let (ax, ay, bx, by) = (p.0 - c.0, p.1 - c.1, n.0 - c.0, n.1 - c.1);
        let cos = (ax * bx + ay * by) / ((ax.hypot(ay) * bx.hypot(by)).max(1e-12));
        cos.clamp(-1.0, 1.0).acos().to_degrees()
    })
}

/// Orders four corners clockwise (image coordinates) starting at the page's top-left: the corner
/// whose outgoing edge points most nearly along +x.
pub fn order_corners(q: [Pt; 4]) -> [Pt; 4] {
    let c = (
        q.iter().map(|p| p.0).sum::<f64>() / 4.0,
        q.iter().map(|p| p.1).sum::<f64>() / 4.0,
    );
    let mut v = q.to_vec();
    v.sort_by(|a, b| {
        (a.1 - c.1)
            .atan2(a.0 - c.0)
            .total_cmp(&(b.1 - c.1).atan2(b.0 - c.0))
    });
    let start = (0..4)
        .min_by(|&i, &j| {
            let ang = |k: usize| {
                let (a, b) = (v[k], v[(k + 1) % 4]);
                (b.1 - a.1).atan2(b.0 - a.0).abs()
            };
            ang(i).total_cmp(&ang(j))
        })
        .unwrap_or(0);
    std::array::from_fn(|i| v[(start + i) % 4])
}

/// Intersection of two convex polygons (Sutherland–Hodgman), both clockwise or both not.
fn clip(subject: &[Pt], clipper: &[Pt]) -> Vec<Pt> {
    let orient = signed_area(clipper).signum();
    let inside = |a: Pt, b: Pt, p: Pt| {
        orient * ((b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0)) >= 0.0
    };
    let mut out = subject.to_vec();
    for i in 0..clipper.len() {
        let (a, b) = (clipper[i], clipper[(i + 1) % clipper.len()]);
        let input = std::mem::take(&mut out);
        for j in 0..input.len() {
            let (p, q) = (input[j], input[(j + 1) % input.len()]);
            let (pin, qin) = (inside(a, b, p), inside(a, b, q));
            if pin {
                out.push(p);
            }
            if pin != qin {
                let (d1, d2) = ((q.0 - p.0, q.1 - p.1), (b.0 - a.0, b.1 - a.1));
                let den = d1.0 * d2.1 - d1.1 * d2.0;
                if den.abs() > 1e-12 {
                    let t = ((a.0 - p.0) * d2.1 - (a.1 - p.1) * d2.0) / den;
                    out.push((p.0 + t * d1.0, p.1 + t * d1.1));
                }
            }
        }
        if out.is_empty() {
            break;
        }
    }
    out
}

/// Intersection over union of two convex quadrilaterals.
pub fn iou(a: &[Pt; 4], b: &[Pt; 4]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    if signed_area(&a) < 0.0 {
        a.reverse();
    }
    if signed_area(&b) < 0.0 {
        b.reverse();
    }
    let inter = signed_area(&clip(&a, &b)).abs();
    let union = signed_area(&a).abs() + signed_area(&b).abs() - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homography_maps_the_four_points() {
        let from = [(0.0, 0.0), (100.0, 0.0), (100.0, 140.0), (0.0, 140.0)];
        let to = [(12.0, 20.0), (130.0, 8.0), (140.0, 170.0), (5.0, 160.0)];
        let h = Homography::from_points(&from, &to).unwrap();
        for (f, t) in from.iter().zip(&to) {
            let p = h.apply(*f);
            assert!(dist(p, *t) < 1e-6, "{p:?} vs {t:?}");
        }
        let collinear = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)];
        assert!(Homography::from_points(&collinear, &to).is_none());
    }

    #[test]
    fn iou_of_shifted_squares() {
        let a = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)];
        let b = [(5.0, 0.0), (15.0, 0.0), (15.0, 10.0), (5.0, 10.0)];
        assert!((iou(&a, &b) - 50.0 / 150.0).abs() < 1e-9);
        assert!((iou(&a, &a) - 1.0).abs() < 1e-9);
        let mut r = a;
        r.reverse();
        assert!((iou(&a, &r) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn corners_ordered_from_top_left_clockwise() {
        let q = [(90.0, 110.0), (10.0, 5.0), (12.0, 100.0), (95.0, 10.0)];
        assert_eq!(
            order_corners(q),
            [(10.0, 5.0), (95.0, 10.0), (90.0, 110.0), (12.0, 100.0)]
        );
    }
}
