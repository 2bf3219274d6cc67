//! Skew of text lines by projection profile: dark pixels are projected onto the axis
//! perpendicular to a trial angle; the angle whose profile is sharpest (largest sum of squared
//! bin counts) is the text direction. Coarse over ±5° in 0.5° steps, then 0.1° around the best.

use super::plane::Plane;

/// Degrees, positive clockwise (lines descending to the right in image coordinates); `None`
/// when there is too little text to tell.
pub fn skew_degrees(smoothed: &Plane) -> Option<f64> {
    let (w, h) = (smoothed.w, smoothed.h);
    // Dark marks: pixels well below their local surroundings (a 9×9 mean).
    let integral = integral(smoothed);
    let mean = |x: usize, y: usize| {
        let (x0, y0, x1, y1) = (
            x.saturating_sub(4),
            y.saturating_sub(4),
            (x + 5).min(w),
            (y + 5).min(h),
        );
        let s = integral[y1 * (w + 1) + x1] + integral[y0 * (w + 1) + x0]
            - integral[y0 * (w + 1) + x1]
            - integral[y1 * (w + 1) + x0];
        s as f64 / ((x1 - x0) * (y1 - y0)) as f64
    };
    let mut pts = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v = f64::from(smoothed.at(x, y));
            if v < mean(x, y) - 20.0 {
                pts.push((x as f64 - w as f64 / 2.0, y as f64 - h as f64 / 2.0));
            }
        }
    }
    if pts.len() < 200 {
        return None;
    }
    let step = (pts.len() / 40_000).max(1);
    let pts: Vec<(f64, f64)> = pts.into_iter().step_by(step).collect();
    let diag = ((w * w + h * h) as f64).sqrt();
    let score = |deg: f64| {
        let (s, c) = deg.to_radians().sin_cos();
        let mut bins = vec![0u32; diag as usize + 3];
        for &(x, y) in &pts {
            let b = (y * c - x * s + diag / 2.0 + 1.0) as usize;
            if let Some(v) = bins.get_mut(b) {
                *v += 1;
            }
        }
        bins.iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
    };
    let best = |from: f64, to: f64, step: f64| {
        let mut a = from;
        let mut best = (f64::MIN, 0.0);
        while a <= to + 1e-9 {
            let s = score(a);
            if s > best.0 {
                best = (s, a);
            }
            a += step;
        }
        best
    };
    let flat = score(0.0);
    let (_, coarse) = best(-5.0, 5.0, 0.5);
    let (top, fine) = best(coarse - 0.5, coarse + 0.5, 0.1);
    // A profile barely sharper than at 0° is no evidence of skew.
    if top < flat * 1.02 && fine.abs() > 0.05 {
        return Some(0.0);
    }
    Some((fine * 10.0).round() / 10.0)
}

fn integral(p: &Plane) -> Vec<u64> {
    let (w, h) = (p.w, p.h);
    let mut out = vec![0u64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u64;
        for x in 0..w {
            row += u64::from(p.at(x, y));
            out[(y + 1) * (w + 1) + x + 1] = out[y * (w + 1) + x + 1] + row;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_angle_of_ruled_lines() {
        for deg in [-3.2f64, 0.0, 1.7] {
            let (w, h) = (600, 400);
            let mut p = Plane::filled(w, h, 230);
            let (s, c) = deg.to_radians().sin_cos();
            for y in 0..h {
                for x in 0..w {
                    // Rotate back into the line frame: text lines every 16 px, dashes for words.
                    let (xr, yr) = (x as f64 - 300.0, y as f64 - 200.0);
                    let v = yr * c - xr * s;
                    let u = xr * c + yr * s;
                    if v.rem_euclid(16.0) < 3.0 && u.rem_euclid(40.0) < 30.0 && u.abs() < 250.0 {
                        p.data[y * w + x] = 30;
                    }
                }
            }
            let got = skew_degrees(&p).unwrap();
            assert!((got - deg).abs() <= 0.15, "{deg}: {got}");
        }
        assert_eq!(skew_degrees(&Plane::filled(100, 100, 200)), None);
    }
}
