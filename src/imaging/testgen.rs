//! Synthetic camera frames for tests and benchmarks: an A4 page (title, text lines, a table, a
//! red seal, a photo) placed with known rotation and perspective on a background (wood, cloth,
//! desk colours, clutter), with a lighting gradient, shadow, optional glare, blur, sensor noise
//! and JPEG compression; or an empty scene. Deterministic per seed; the ground-truth corners are
//! the page's exact corners in the frame (continuous pixel coordinates).

use super::codec::{EncodeInput, encode};
use super::geom::{Homography, Pt};

/// Small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_CAFE_F00D_D00D)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[a, b)`.
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.range(0.0, 1.0) < p
    }
    pub fn pick(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// What to put in a scene. `Default` is a normal capture.
#[derive(Debug, Clone, Copy)]
pub struct SceneOptions {
    pub width: usize,
    pub height: usize,
    /// No page at all.
    pub empty: bool,
    /// Gaussian blur σ in pixels; `None`: a random small amount (0–0.8).
    pub blur: Option<f64>,
    /// Overall light level (1 normal); `None`: random 0.85–1.1.
    pub light: Option<f64>,
    /// A washed-out specular patch on the page.
    pub glare: bool,
    /// Push the page partly out of the frame.
    pub cut_off: bool,
    /// JPEG quality of the frame; `None`: random 75–95.
    pub jpeg_quality: Option<u8>,
}

impl Default for SceneOptions {
    fn default() -> Self {
        SceneOptions {
            width: 800,
            height: 600,
            empty: false,
            blur: None,
            light: None,
            glare: false,
            cut_off: false,
            jpeg_quality: None,
        }
    }
}

/// A generated frame.
pub struct Scene {
    pub jpeg: Vec<u8>,
    /// The page's corners (top-left, top-right, bottom-right, bottom-left of the page itself).
    pub corners: Option<[Pt; 4]>,
    /// The page's rotation in the frame, degrees (clockwise positive).
    pub rotation: f64,
}

type Rgb = [f32; 3];

/// The page drawn flat, at `w`×`h` pixels, RGB.
struct Texture {
    w: usize,
    h: usize,
    px: Vec<Rgb>,
}

impl Texture {
    fn rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb, alpha: f32) {
        let (w, h) = (self.w as f64, self.h as f64);
        let xa = (x0 * w).max(0.0) as usize;
        let xb = ((x1 * w).min(w)) as usize;
        let ya = (y0 * h).max(0.0) as usize;
        let yb = ((y1 * h).min(h)) as usize;
        for y in ya..yb {
            for x in xa..xb {
                let p = &mut self.px[y * self.w + x];
                for k in 0..3 {
                    p[k] = p[k] * (1.0 - alpha) + c[k] * alpha;
                }
            }
        }
    }

    fn sample(&self, u: f64, v: f64) -> Rgb {
        let x = (u - 0.5).clamp(0.0, (self.w - 1) as f64);
        let y = (v - 0.5).clamp(0.0, (self.h - 1) as f64);
        let (x0, y0) = (x as usize, y as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (ax, ay) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
        let g = |x: usize, y: usize| self.px[y * self.w + x];
        let (a, b, c, d) = (g(x0, y0), g(x1, y0), g(x0, y1), g(x1, y1));
        std::array::from_fn(|k| {
            (a[k] * (1.0 - ax) + b[k] * ax) * (1.0 - ay) + (c[k] * (1.0 - ax) + d[k] * ax) * ay
        })
    }
}

fn page_texture(rng: &mut Rng, w: usize, h: usize) -> Texture {
    let paper = 222.0 + rng.range(0.0, 20.0) as f32;
    let tint = rng.range(-4.0, 4.0) as f32;
    let mut t = Texture {
        w,
        h,
        px: vec![[paper, paper, paper - 4.0 + tint]; w * h],
    };
    let ink = [30.0, 30.0, 38.0];
    let aspect = w as f64 / h as f64;
    // Title.
    t.rect(0.25, 0.06, 0.75, 0.085, ink, 1.0);
    // Text lines of words.
    let line = rng.range(0.014, 0.022);
    let mut y = 0.12;
    let text_end = rng.range(0.35, 0.5);
    while y < text_end {
        let mut x = 0.1 + if rng.chance(0.2) { 0.04 } else { 0.0 };
        let end = if rng.chance(0.15) {
            rng.range(0.4, 0.85)
        } else {
            0.9
        };
        while x < end {
            let wlen = rng.range(0.015, 0.07);
            t.rect(x, y, (x + wlen).min(end), y + line * 0.5, ink, 1.0);
            x += wlen + rng.range(0.008, 0.015);
        }
        y += line * rng.range(1.5, 1.9);
    }
    // A table.
    let (tx0, ty0, tx1, ty1) = (
        0.1,
        text_end + 0.04,
        0.9,
        text_end + 0.04 + rng.range(0.15, 0.25),
    );
    let cols = 3 + rng.pick(3);
    let rows = 4 + rng.pick(4);
    let lw = 0.0025;
    for i in 0..=rows {
        let yy = ty0 + (ty1 - ty0) * i as f64 / rows as f64;
        t.rect(tx0, yy, tx1, yy + lw * aspect, ink, 1.0);
    }
    for j in 0..=cols {
        let xx = tx0 + (tx1 - tx0) * j as f64 / cols as f64;
        t.rect(xx, ty0, xx + lw, ty1 + lw * aspect, ink, 1.0);
    }
    for i in 0..rows {
        for j in 0..cols {
            let cx = tx0 + (tx1 - tx0) * j as f64 / cols as f64 + 0.015;
            let cy = ty0 + (ty1 - ty0) * (i as f64 + 0.35) / rows as f64;
            let len = rng.range(0.03, (tx1 - tx0) / cols as f64 - 0.03);
            t.rect(cx, cy, cx + len, cy + 0.006, ink, 1.0);
        }
    }
    // A photo: smooth colours with blobs.
    let (px0, py0) = (0.1, ty1 + 0.05);
    let (px1, py1) = (px0 + 0.22, (py0 + 0.22 * aspect).min(0.95));
    let base = [
        rng.range(60.0, 200.0),
        rng.range(60.0, 200.0),
        rng.range(60.0, 200.0),
    ];
    let (xa, xb) = ((px0 * w as f64) as usize, (px1 * w as f64) as usize);
    let (ya, yb) = ((py0 * h as f64) as usize, (py1 * h as f64) as usize);
    for yy in ya..yb.min(h) {
        for xx in xa..xb.min(w) {
            let (u, v) = (xx as f64 / w as f64, yy as f64 / h as f64);
            let s = ((u * 40.0).sin() * (v * 30.0).cos() * 40.0) as f32;
            t.px[yy * w + xx] =
                std::array::from_fn(|k| (base[k] as f32 + s + k as f32 * 10.0).clamp(0.0, 255.0));
        }
    }
    // A red seal (ring, star, text dots) over a signature area, blended like ink.
    let (cx, cy) = (rng.range(0.6, 0.75), (py0 + 0.1).min(0.85));
    let r = 0.09;
    let red = [215.0, 35.0, 40.0];
    let (ra, rb) = (
        ((cx - r) * w as f64) as usize,
        ((cx + r) * w as f64) as usize,
    );
    let (ca, cb) = (
        ((cy - r * aspect) * h as f64).max(0.0) as usize,
        ((cy + r * aspect) * h as f64) as usize,
    );
    for yy in ca..cb.min(h) {
        for xx in ra..rb.min(w) {
            let dx = xx as f64 / w as f64 - cx;
            let dy = (yy as f64 / h as f64 - cy) / aspect;
            let d = dx.hypot(dy) / r;
            let ang = dy.atan2(dx);
            let star = d < 0.3 * (1.0 + 0.5 * (ang * 5.0).cos().max(0.0));
            let ring = (0.86..0.97).contains(&d);
            let letters = (0.62..0.76).contains(&d) && (ang * 18.0).sin() > 0.2 && ang < 2.5;
            if ring || star || letters {
                let p = &mut t.px[yy * w + xx];
                for k in 0..3 {
                    p[k] = p[k] * 0.15 + red[k] * 0.85 * (p[k] / paper);
                }
            }
        }
    }
    t
}

/// Lattice value noise in [0, 1].
fn noise(seed: u64, x: f64, y: f64) -> f64 {
    let h = |i: i64, j: i64| {
        let mut z = seed
            ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        z = (z ^ (z >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (z >> 11) as f64 / (1u64 << 53) as f64
    };
    let (i, j) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x.floor(), y - y.floor());
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let a = h(i, j) + (h(i + 1, j) - h(i, j)) * sx;
    let b = h(i, j + 1) + (h(i + 1, j + 1) - h(i, j + 1)) * sx;
    a + (b - a) * sy
}

enum Ground {
    Wood { base: Rgb, freq: f64, angle: f64 },
    Cloth { base: Rgb, period: f64 },
    Desk { base: Rgb },
}

struct Clutter {
    kind: u8,
    c: Pt,
    r: Pt,
    /// Sine and cosine of the rotation.
    angle: (f64, f64),
    colour: Rgb,
}

fn background(rng: &mut Rng, w: usize, h: usize) -> (Ground, Vec<Clutter>) {
    let ground = match rng.pick(4) {
        0 => Ground::Wood {
            base: [
                rng.range(90.0, 170.0) as f32,
                rng.range(55.0, 110.0) as f32,
                rng.range(25.0, 60.0) as f32,
            ],
            freq: rng.range(0.02, 0.06) * 800.0 / w as f64,
            angle: rng.range(0.0, std::f64::consts::PI),
        },
        1 => Ground::Cloth {
            base: [
                rng.range(30.0, 160.0) as f32,
                rng.range(30.0, 160.0) as f32,
                rng.range(30.0, 160.0) as f32,
            ],
            period: rng.range(2.5, 5.0) * w as f64 / 800.0,
        },
        2 => Ground::Desk {
            base: [
                rng.range(120.0, 195.0) as f32,
                rng.range(115.0, 190.0) as f32,
                rng.range(100.0, 185.0) as f32,
            ],
        },
        _ => Ground::Desk {
            base: [
                rng.range(15.0, 70.0) as f32,
                rng.range(15.0, 70.0) as f32,
                rng.range(15.0, 80.0) as f32,
            ],
        },
    };
    let n = rng.pick(5);
    let s = w.min(h) as f64;
    let clutter = (0..n)
        .map(|_| Clutter {
            kind: rng.pick(3) as u8,
            c: (rng.range(0.0, w as f64), rng.range(0.0, h as f64)),
            r: (rng.range(0.03, 0.12) * s, rng.range(0.01, 0.08) * s),
            angle: rng.range(0.0, std::f64::consts::PI).sin_cos(),
            colour: [
                rng.range(0.0, 255.0) as f32,
                rng.range(0.0, 255.0) as f32,
                rng.range(0.0, 255.0) as f32,
            ],
        })
        .collect();
    (ground, clutter)
}

fn ground_at(g: &Ground, seed: u64, x: f64, y: f64) -> Rgb {
    match g {
        Ground::Wood { base, freq, angle } => {
            let (s, c) = angle.sin_cos();
            let u = x * c + y * s;
            let v = -x * s + y * c;
            let grain = (u * freq + 6.0 * noise(seed, u * 0.01, v * 0.002)).sin() * 0.5 + 0.5;
            let k = (0.75 + 0.3 * grain) as f32;
            base.map(|b| b * k)
        }
        Ground::Cloth { base, period } => {
            let weave = ((x / period).sin() * (y / period).sin()) as f32;
            let k = 1.0 + 0.12 * weave + 0.08 * (noise(seed, x * 0.05, y * 0.05) as f32 - 0.5);
            base.map(|b| b * k)
        }
        Ground::Desk { base } => {
            let k = 1.0 + 0.06 * (noise(seed, x * 0.004, y * 0.004) as f32 - 0.5);
            base.map(|b| b * k)
        }
    }
}

fn clutter_at(items: &[Clutter], x: f64, y: f64, under: Rgb) -> Rgb {
    let mut c = under;
    for it in items {
        let (s, co) = it.angle;
        let (dx, dy) = (x - it.c.0, y - it.c.1);
        let (u, v) = (dx * co + dy * s, -dx * s + dy * co);
        let inside = match it.kind {
            0 => (u / it.r.0).powi(2) + (v / it.r.1).powi(2) <= 1.0,
            1 => u.abs() <= it.r.0 && v.abs() <= it.r.1,
            _ => u.abs() <= it.r.0 * 1.5 && v.abs() <= it.r.1 * 0.15,
        };
        if inside {
            c = it.colour;
        }
    }
    c
}

/// Renders one scene.
pub fn scene(seed: u64, o: &SceneOptions) -> Scene {
    let mut rng = Rng::new(seed);
    let (w, h) = (o.width.max(16), o.height.max(16));
    let (ground, clutter) = background(&mut rng, w, h);
    let noise_seed = rng.next_u64();

    // Page placement: size, orientation, rotation, perspective, position.
    let landscape_page = rng.chance(0.2);
    let rotation = if rng.chance(0.15) {
        rng.range(-35.0, 35.0)
    } else {
        rng.range(-12.0, 12.0)
    };
    let (pw, ph) = {
        let s = rng.range(0.55, 0.85);
        let long = s * if landscape_page { w as f64 } else { h as f64 };
        let long = long.min(if landscape_page {
            h as f64 * 1.414 * 0.9
        } else {
            w as f64 * 1.414 * 0.9
        });
        if landscape_page {
            (long, long / 1.414)
        } else {
            (long / 1.414, long)
        }
    };
    let (sr, cr) = rotation.to_radians().sin_cos();
    let half = [
        (-pw / 2.0, -ph / 2.0),
        (pw / 2.0, -ph / 2.0),
        (pw / 2.0, ph / 2.0),
        (-pw / 2.0, ph / 2.0),
    ];
    let jitter = 0.025 * pw.max(ph);
    let mut rel: [Pt; 4] = half.map(|(x, y)| (x * cr - y * sr, x * sr + y * cr));
    for p in &mut rel {
        p.0 += rng.range(-jitter, jitter);
        p.1 += rng.range(-jitter, jitter);
    }
    let (minx, maxx) = rel
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (miny, maxy) = rel
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let margin = 0.03 * w.min(h) as f64;
    // Shrink if the rotated page does not fit with margins.
    let fit = ((w as f64 - 2.0 * margin) / (maxx - minx))
        .min((h as f64 - 2.0 * margin) / (maxy - miny))
        .min(1.0);
    let rel = rel.map(|(x, y)| (x * fit, y * fit));
    let (minx, maxx, miny, maxy) = (minx * fit, maxx * fit, miny * fit, maxy * fit);
    let cx = rng.range(
        margin - minx,
        (w as f64 - margin - maxx).max(margin - minx + 1e-9),
    );
    let mut cy = rng.range(
        margin - miny,
        (h as f64 - margin - maxy).max(margin - miny + 1e-9),
    );
    if o.cut_off {
        cy = h as f64 - maxy * 0.6;
    }
    let corners: [Pt; 4] = rel.map(|(x, y)| (x + cx, y + cy));

    let tex_long = (ph.max(pw) * fit).clamp(64.0, 4000.0);
    // The texture is always the portrait page.
    let (tw, th) = ((tex_long / 1.414) as usize, tex_long as usize);
    let tex = page_texture(&mut rng, tw.max(16), th.max(16));
    // A landscape-placed page is a portrait page turned by 90°: rotate its corner order.
    let tex_rect = [
        (0.0, 0.0),
        (tw as f64, 0.0),
        (tw as f64, th as f64),
        (0.0, th as f64),
    ];
    let page_corners = if landscape_page {
        [corners[1], corners[2], corners[3], corners[0]]
    } else {
        corners
    };
    let to_tex = Homography::from_points(&page_corners, &tex_rect).unwrap_or(Homography::IDENTITY);

    // Lighting: level, gradient, a soft shadow.
    let level = o.light.unwrap_or_else(|| rng.range(0.88, 1.03));
    let (grad_sin, grad_cos) = rng.range(0.0, std::f64::consts::TAU).sin_cos();
    let grad = rng.range(0.0, 0.3);
    let shadow = rng.chance(0.4).then(|| {
        (
            rng.range(0.0, std::f64::consts::TAU).sin_cos(),
            rng.range(-0.3, 0.3),
            rng.range(0.7, 0.88),
        )
    });
    let glare = o.glare.then(|| {
        let t = rng.range(0.3, 0.7);
        let a = (
            corners[0].0 + (corners[2].0 - corners[0].0) * t,
            corners[0].1 + (corners[2].1 - corners[0].1) * t,
        );
        (a, 0.12 * pw.min(ph) * fit)
    });
    let diag = ((w * w + h * h) as f64).sqrt();
    let lines: Vec<(Pt, f64)> = (0..4)
        .map(|i| {
            let (a, b) = (corners[i], corners[(i + 1) % 4]);
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let l = dx.hypot(dy);
            // Inward normal for a clockwise (image coordinates) polygon.
            let n = (-dy / l, dx / l);
            (n, n.0 * a.0 + n.1 * a.1)
        })
        .collect();
    let mut rgb = vec![[0f32; 3]; w * h];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
            let mut c = clutter_at(&clutter, fx, fy, ground_at(&ground, noise_seed, fx, fy));
            if !o.empty {
                let d = lines
                    .iter()
                    .map(|(n, k)| n.0 * fx + n.1 * fy - k)
                    .fold(f64::MAX, f64::min);
                let cov = (d + 0.5).clamp(0.0, 1.0) as f32;
                if cov > 0.0 {
                    let (u, v) = to_tex.apply((fx, fy));
                    let p = tex.sample(u, v);
                    c = std::array::from_fn(|k| c[k] * (1.0 - cov) + p[k] * cov);
                }
            }
            let mut l = level
                * (1.0
                    + grad * ((fx - w as f64 / 2.0) * grad_cos + (fy - h as f64 / 2.0) * grad_sin)
                        / diag
                        * 2.0);
            if let Some((ang, off, depth)) = shadow {
                let t =
                    ((fx - w as f64 / 2.0) * ang.1 + (fy - h as f64 / 2.0) * ang.0) / diag - off;
                l *= 1.0 - (1.0 - depth) * (0.5 + 0.5 * (t / 0.03).clamp(-1.0, 1.0));
            }
            let mut px = c.map(|v| v * l as f32);
            if let Some((g, r)) = glare {
                let e = (-((fx - g.0).powi(2) + (fy - g.1).powi(2)) / (r * r)).exp() as f32;
                px = px.map(|v| v + 400.0 * e);
            }
            rgb[y * w + x] = px;
        }
    }
    let sigma = o.blur.unwrap_or_else(|| rng.range(0.0, 0.8));
    if sigma > 0.05 {
        gaussian(&mut rgb, w, h, sigma);
    }
    let mut bytes = Vec::with_capacity(w * h * 3);
    for p in &rgb {
        for &v in p {
            let n = rng.range(-3.0, 3.0) as f32;
            bytes.push((v + n).round().clamp(0.0, 255.0) as u8);
        }
    }
    let quality = o.jpeg_quality.unwrap_or_else(|| 75 + rng.pick(21) as u8);
    let jpeg = encode_rgb(&bytes, w, h, quality);
    Scene {
        jpeg,
        corners: (!o.empty).then_some(page_corners),
        rotation,
    }
}

fn gaussian(px: &mut [Rgb], w: usize, h: usize, sigma: f64) {
    let r = (sigma * 3.0).ceil() as isize;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let sum: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / sum).collect();
    let mut tmp = vec![[0f32; 3]; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 3];
            for (i, kv) in k.iter().enumerate() {
                let xx = (x as isize + i as isize - r).clamp(0, w as isize - 1) as usize;
                let p = px[y * w + xx];
                for c in 0..3 {
                    acc[c] += p[c] * kv;
                }
            }
            tmp[y * w + x] = acc;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 3];
            for (i, kv) in k.iter().enumerate() {
                let yy = (y as isize + i as isize - r).clamp(0, h as isize - 1) as usize;
                let p = tmp[yy * w + x];
                for c in 0..3 {
                    acc[c] += p[c] * kv;
                }
            }
            px[y * w + x] = acc;
        }
    }
}

/// JPEG (4:2:0) of interleaved RGB.
pub fn encode_rgb(rgb: &[u8], w: usize, h: usize, quality: u8) -> Vec<u8> {
    let frame = super::plane::Frame::from_rgb(w, h, rgb, true);
    let (yw, yh) = (w.next_multiple_of(2), h.next_multiple_of(2));
    let mut y = vec![0u8; yw * yh];
    for r in 0..yh {
        for c in 0..yw {
            y[r * yw + c] = frame.y.at(c.min(w - 1), r.min(h - 1));
        }
    }
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let half = |p: &super::plane::Plane| {
        let d = p.box_down(2);
        debug_assert_eq!((d.w, d.h), (cw, ch));
        d.data
    };
    let [cb, cr] = frame
        .chroma
        .as_ref()
        .map(|[a, b]| [half(a), half(b)])
        .unwrap_or_default();
    let input = EncodeInput {
        width: w,
        height: h,
        y: &y,
        y_stride: yw,
        chroma: Some((&cb, &cr, cw)),
    };
    encode(&input, quality).unwrap_or_default()
}
