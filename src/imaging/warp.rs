//! Perspective warp of one plane, bilinear, in fixed point. Source coordinates are computed
//! exactly (f64) every [`SPAN`] output pixels and interpolated linearly in between: over 16 pixels
//! the perspective's curvature is far below 1/256 pixel for document-like homographies, and the
//! inner loop is then integer adds, four loads and three multiplies.

use super::geom::{Homography, Pt};
use super::plane::Plane;

const SPAN: usize = 16;
const FRAC: i64 = 16;
const ONE: i64 = 1 << FRAC;

/// The homography mapping pixel indices of an output plane to pixel indices of a source plane,
/// given `h` on continuous coordinates (output page → input frame) and each plane's size relative
/// to its image (a 4:2:0 chroma plane is 0.5 × 0.5).
pub fn plane_map(h: &Homography, src_scale: Pt, out_scale: Pt) -> Homography {
    let to_cont = Homography::scale_translate(1.0 / out_scale.0, 1.0 / out_scale.1, 0.0, 0.0)
        .then_after(&Homography::scale_translate(1.0, 1.0, 0.5, 0.5));
    let to_index = Homography::scale_translate(1.0, 1.0, -0.5, -0.5).then_after(
        &Homography::scale_translate(src_scale.0, src_scale.1, 0.0, 0.0),
    );
    to_index.then_after(h).then_after(&to_cont)
}

/// Fills output rows `row0..row0 + rows` (each `out_w` wide, `out_stride` apart in `out`) with
/// `src` sampled through `m` (output index → source index); pixels mapping outside get `fill`.
#[allow(clippy::too_many_arguments)]
pub fn warp_rows(
    src: &Plane,
    m: &Homography,
    out: &mut [u8],
    out_stride: usize,
    out_w: usize,
    row0: usize,
    rows: usize,
    fill: u8,
) {
    let (sw, sh) = (src.w as i64, src.h as i64);
    let stride = src.stride;
    let data = &src.data;
    // Source positions are clamped to this box before conversion, so fixed point cannot overflow.
    let lim = |v: f64, max: i64| v.clamp(-2.0, max as f64 + 1.0);
    for r in 0..rows {
        let y = (row0 + r) as f64;
        let line = &mut out[r * out_stride..r * out_stride + out_w];
        let at = |x: f64| -> (i64, i64) {
            let (sx, sy) = m.apply((x, y));
            if !sx.is_finite() || !sy.is_finite() {
                return (-2 * ONE, -2 * ONE);
            }
            (
                (lim(sx, sw) * ONE as f64) as i64,
                (lim(sy, sh) * ONE as f64) as i64,
            )
        };
        let mut x0 = 0;
        let (mut fx, mut fy) = at(0.0);
        while x0 < out_w {
            let n = SPAN.min(out_w - x0);
            let (ex, ey) = at((x0 + n) as f64);
            let (dx, dy) = ((ex - fx) / n as i64, (ey - fy) / n as i64);
            let (mut px, mut py) = (fx, fy);
            for o in &mut line[x0..x0 + n] {
                let (ix, iy) = (px >> FRAC, py >> FRAC);
                if ix >= 0 && iy >= 0 && ix < sw - 1 && iy < sh - 1 {
                    let ax = ((px >> (FRAC - 8)) & 0xFF) as u32;
                    let ay = ((py >> (FRAC - 8)) & 0xFF) as u32;
                    let i = iy as usize * stride + ix as usize;
                    let (p00, p01) = (u32::from(data[i]), u32::from(data[i + 1]));
                    let (p10, p11) = (u32::from(data[i + stride]), u32::from(data[i + stride + 1]));
                    let top = p00 * 256 + (p01 * ax) - (p00 * ax);
                    let bot = p10 * 256 + (p11 * ax) - (p10 * ax);
                    *o = ((top * 256 + bot * ay - top * ay + 32768) >> 16) as u8;
                } else {
                    *o = edge_sample(src, px, py, fill);
                }
                px += dx;
                py += dy;
            }
            x0 += n;
            (fx, fy) = (ex, ey);
        }
    }
}

/// Bilinear with clamping for positions within half a pixel of the border; `fill` beyond.
#[cold]
fn edge_sample(src: &Plane, px: i64, py: i64, fill: u8) -> u8 {
    let (w, h) = (src.w as i64, src.h as i64);
    let half = ONE / 2;
    if px < -half || py < -half || px > (w - 1) * ONE + half || py > (h - 1) * ONE + half {
        return fill;
    }
    let (px, py) = (px.clamp(0, (w - 1) * ONE), py.clamp(0, (h - 1) * ONE));
    let (ix, iy) = ((px >> FRAC) as usize, (py >> FRAC) as usize);
    let (ax, ay) = (px & (ONE - 1), py & (ONE - 1));
    let (ix1, iy1) = ((ix + 1).min(src.w - 1), (iy + 1).min(src.h - 1));
    let g = |x: usize, y: usize| i64::from(src.at(x, y));
    let top = g(ix, iy) * (ONE - ax) + g(ix1, iy) * ax;
    let bot = g(ix, iy1) * (ONE - ax) + g(ix1, iy1) * ax;
    ((top * (ONE - ay) + bot * ay + (1 << (2 * FRAC - 1))) >> (2 * FRAC)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_shift_reproduce_the_source() {
        let mut src = Plane::new(40, 30);
        for (i, v) in src.data.iter_mut().enumerate() {
            *v = (i * 7 % 251) as u8;
        }
        let mut out = vec![0u8; 40 * 30];
        warp_rows(&src, &Homography::IDENTITY, &mut out, 40, 40, 0, 30, 9);
        assert_eq!(out, src.data);
        // One pixel to the right: the last column falls outside.
        let m = Homography::scale_translate(1.0, 1.0, 1.0, 0.0);
        warp_rows(&src, &m, &mut out, 40, 40, 0, 30, 9);
        assert_eq!(out[0], src.data[1]);
        assert_eq!(out[38], src.data[39]);
        assert_eq!(out[39], 9);
        // Far outside: fill.
        let m = Homography::scale_translate(1.0, 1.0, 100.0, 0.0);
        warp_rows(&src, &m, &mut out, 40, 40, 0, 30, 9);
        assert!(out.iter().all(|&v| v == 9));
    }

    #[test]
    fn half_pixel_is_the_mean() {
        let mut src = Plane::new(4, 2);
        src.data = vec![0, 100, 200, 250, 0, 100, 200, 250];
        let m = Homography::scale_translate(1.0, 1.0, 0.5, 0.0);
        let mut out = vec![0u8; 4];
        warp_rows(&src, &m, &mut out, 4, 4, 0, 1, 0);
        assert_eq!(&out[..3], &[50, 150, 225]);
    }

    #[test]
    fn degenerate_maps_do_not_panic() {
        let src = Plane::filled(8, 8, 77);
        let mut out = vec![0u8; 64];
        for m in [
            Homography([0.0; 9]),
            Homography([f64::NAN; 9]),
            Homography([1e300, 0.0, 0.0, 0.0, 1e300, 0.0, 0.0, 0.0, 1.0]),
        ] {
            warp_rows(&src, &m, &mut out, 8, 8, 0, 8, 1);
        }
    }
}
