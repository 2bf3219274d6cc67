//! The output page, in parallel: the page is cut into horizontal strips (whole MCU rows); each
//! core warps its strips' planes from the frame, binarises them in black-and-white mode, measures
//! sharpness, and encodes each strip as a JPEG. The strips are then joined into one baseline JPEG
//! with restart markers between them (`jpeg::join_strips`), so encoding, like warping, uses
//! every core.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::codec::{EncodeInput, encode};
use super::error::ImagingError;
use super::geom::Homography;
use super::jpeg::join_strips;
use super::plane::{Frame, Plane};
use super::warp::{plane_map, warp_rows};

pub struct Job<'a> {
    pub frame: &'a Frame,
    /// Output page continuous coordinates → frame continuous coordinates.
    pub h: Homography,
    pub width: usize,
    pub height: usize,
    pub colour: bool,
    /// Black-and-white: the page's local background (a coarse plane over the whole page).
    pub background: Option<&'a Plane>,
    pub quality: u8,
}

pub struct Rendered {
    pub jpeg: Vec<u8>,
    /// Laplacian variance per 64×64 tile of the luma (before binarising).
    pub tiles: Vec<f32>,
    /// CPU time summed over the workers.
    pub warp_ms: f64,
    pub encode_ms: f64,
}

struct Strip {
    jpeg: Vec<u8>,
    tiles: Vec<f32>,
    warp_ms: f64,
    encode_ms: f64,
}

pub fn render(job: &Job<'_>) -> Result<Rendered, ImagingError> {
    let (w, h) = (job.width, job.height);
    let mcu = if job.colour { 16 } else { 8 };
    let mcus_per_row = w.div_ceil(mcu);
    let mcu_rows = h.div_ceil(mcu);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    // Whole MCU rows per strip; one strip's MCUs must fit the 16-bit restart interval.
    let max_rows = (65_535 / mcus_per_row.max(1)).max(1);
    let strip_mcu_rows = mcu_rows.div_ceil(threads).clamp(1, max_rows);
    let strips = mcu_rows.div_ceil(strip_mcu_rows);
    if strips > 1 && (w > 65_535 || h > 65_535) {
        return Err(ImagingError::Encode(format!(
            "{w}x{h} is too large for JPEG"
        )));
    }
    let strip_px = strip_mcu_rows * mcu;

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Strip, ImagingError>>>> =
        Mutex::new((0..strips).map(|_| None).collect());
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= strips {
                break;
            }
            let r0 = i * strip_px;
            let r1 = (r0 + strip_px).min(h);
            let out = strip(job, r0, r1);
            if let Ok(mut all) = results.lock() {
                all[i] = Some(out);
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads.min(strips) {
            s.spawn(work);
        }
        work();
    });
    let results = results
        .into_inner()
        .map_err(|_| ImagingError::Encode("a worker failed".into()))?;
    let mut parts = Vec::with_capacity(strips);
    let (mut tiles, mut warp_ms, mut encode_ms) = (Vec::new(), 0.0, 0.0);
    for r in results {
        let s = r.ok_or_else(|| ImagingError::Encode("a worker failed".into()))??;
        tiles.extend(s.tiles);
        warp_ms += s.warp_ms;
        encode_ms += s.encode_ms;
        parts.push(s.jpeg);
    }
    let restart = (strip_mcu_rows * mcus_per_row) as u16;
    let jpeg = join_strips(&parts, h as u16, restart)
        .ok_or_else(|| ImagingError::Encode("strips could not be joined".into()))?;
    Ok(Rendered {
        jpeg,
        tiles,
        warp_ms,
        encode_ms,
    })
}

fn strip(job: &Job<'_>, r0: usize, r1: usize) -> Result<Strip, ImagingError> {
    let t = Instant::now();
    let frame = job.frame;
    let (w, rows) = (job.width, r1 - r0);
    let fw = frame.width as f64;
    let fh = frame.height as f64;
    // Luma: even width and height for 4:2:0 (the encoder reads the padding).
    let (yw, yrows) = if job.colour {
        (w.next_multiple_of(2), rows.next_multiple_of(2))
    } else {
        (w, rows)
    };
    let mut y = vec![0u8; yw * yrows];
    let ymap = plane_map(&job.h, (1.0, 1.0), (1.0, 1.0));
    warp_rows(&frame.y, &ymap, &mut y, yw, yw, r0, yrows, 255);
    let mut chroma = None;
    if let (true, Some([cb, cr])) = (job.colour, &frame.chroma) {
        let (cw, crows) = (w.div_ceil(2), rows.div_ceil(2));
        let mut planes = [vec![0u8; cw * crows], vec![0u8; cw * crows]];
        for (src, out) in [cb, cr].into_iter().zip(planes.iter_mut()) {
            let m = plane_map(&job.h, (src.w as f64 / fw, src.h as f64 / fh), (0.5, 0.5));
            warp_rows(src, &m, out, cw, cw, r0 / 2, crows, 128);
        }
        chroma = Some((planes, cw));
    }
    let tiles = sharpness_tiles(&y, yw, w, rows);
    if let Some(bg) = job.background {
        binarise(&mut y, yw, w, rows, r0, bg, job.width, job.height);
    }
    let warp_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let input = EncodeInput {
        width: w,
        height: rows,
        y: &y,
        y_stride: yw,
        chroma: chroma
            .as_ref()
            .map(|([cb, cr], cw)| (cb.as_slice(), cr.as_slice(), *cw)),
    };
    let jpeg = encode(&input, job.quality)?;
    Ok(Strip {
        jpeg,
        tiles,
        warp_ms,
        encode_ms: t.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Laplacian variance per 64×64 tile, sampled on every second row and column.
fn sharpness_tiles(y: &[u8], stride: usize, w: usize, rows: usize) -> Vec<f32> {
    const T: usize = 64;
    let mut out = Vec::new();
    let mut ty = 0;
    while ty + 8 < rows {
        let mut tx = 0;
        while tx + 8 < w {
            let (mut s, mut s2, mut n) = (0i64, 0i64, 0i64);
            let mut yy = (ty + 1).max(1);
            while yy < (ty + T).min(rows - 1) {
                let mut xx = (tx + 1).max(1);
                while xx < (tx + T).min(w - 1) {
                    let i = yy * stride + xx;
                    let l = 4 * i64::from(y[i])
                        - i64::from(y[i - 1])
                        - i64::from(y[i + 1])
                        - i64::from(y[i - stride])
                        - i64::from(y[i + stride]);
                    s += l;
                    s2 += l * l;
                    n += 1;
                    xx += 2;
                }
                yy += 2;
            }
            if n > 0 {
                let mean = s as f64 / n as f64;
                out.push((s2 as f64 / n as f64 - mean * mean) as f32);
            }
            tx += T;
        }
        ty += T;
    }
    out
}

/// Black where the luma is below 80 % of the local background (bilinear from the coarse plane).
#[allow(clippy::too_many_arguments)]
fn binarise(
    y: &mut [u8],
    stride: usize,
    w: usize,
    rows: usize,
    r0: usize,
    bg: &Plane,
    pw: usize,
    ph: usize,
) {
    let (fx, fy) = (bg.w as f64 / pw as f64, bg.h as f64 / ph as f64);
    for r in 0..rows {
        let by = ((r0 + r) as f64 + 0.5) * fy - 0.5;
        let by0 = by.floor().clamp(0.0, (bg.h - 1) as f64) as usize;
        let by1 = (by0 + 1).min(bg.h - 1);
        let ay = (by - by0 as f64).clamp(0.0, 1.0);
        for x in 0..w {
            let bx = (x as f64 + 0.5) * fx - 0.5;
            let bx0 = bx.floor().clamp(0.0, (bg.w - 1) as f64) as usize;
            let bx1 = (bx0 + 1).min(bg.w - 1);
            let ax = (bx - bx0 as f64).clamp(0.0, 1.0);
            let g = |x: usize, y: usize| f64::from(bg.at(x, y));
            let local = (g(bx0, by0) * (1.0 - ax) + g(bx1, by0) * ax) * (1.0 - ay)
                + (g(bx0, by1) * (1.0 - ax) + g(bx1, by1) * ax) * ay;
            let v = &mut y[r * stride + x];
            *v = if f64::from(*v) < 0.8 * local { 0 } else { 255 };
        }
    }
}
