//! 8-bit image planes. A frame is kept as YCbCr planes (the JPEG's own form): the decoder skips
//! colour conversion and chroma upsampling, the warp moves a quarter as many chroma samples, and
//! the encoder takes the planes as they are.

/// One 8-bit channel, rows `stride` bytes apart (`stride >= w`).
#[derive(Debug, Clone, Default)]
pub struct Plane {
    pub w: usize,
    pub h: usize,
    pub stride: usize,
    pub data: Vec<u8>,
}

impl Plane {
    pub fn new(w: usize, h: usize) -> Plane {
        Plane {
            w,
            h,
            stride: w,
            data: vec![0; w * h],
        }
    }

    pub fn filled(w: usize, h: usize, value: u8) -> Plane {
        Plane {
            w,
            h,
            stride: w,
            data: vec![value; w * h],
        }
    }

    #[inline]
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.stride + x]
    }

    pub fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.stride..y * self.stride + self.w]
    }

    /// Mean over `k`×`k` boxes (the last partial box averages what it has).
    pub fn box_down(&self, k: usize) -> Plane {
        if k <= 1 {
            return self.clone();
        }
        let (w, h) = (self.w.div_ceil(k), self.h.div_ceil(k));
        let mut out = Plane::new(w, h);
        let mut sums = vec![0u32; w];
        let mut counts = vec![0u32; w];
        for by in 0..h {
            sums.iter_mut().for_each(|s| *s = 0);
            counts.iter_mut().for_each(|c| *c = 0);
            for y in by * k..((by + 1) * k).min(self.h) {
                let row = self.row(y);
                for (x, &v) in row.iter().enumerate() {
                    sums[x / k] += u32::from(v);
                    counts[x / k] += 1;
                }
            }
            let out_row = &mut out.data[by * w..(by + 1) * w];
            for ((o, &s), &c) in out_row.iter_mut().zip(&sums).zip(&counts) {
                *o = ((s + c / 2) / c.max(1)) as u8;
            }
        }
        out
    }

    #[cfg(test)]
    /// Nearest-neighbour 2x upsampling cropped to `w`×`h` (chroma for the pure-Rust encoder).
    pub fn upsample_to(&self, w: usize, h: usize) -> Plane {
        let mut out = Plane::new(w, h);
        let fx = self.w as f32 / w as f32;
        let fy = self.h as f32 / h as f32;
        for y in 0..h {
            let sy = ((y as f32 * fy) as usize).min(self.h.saturating_sub(1));
            let src = self.row(sy);
            let dst = &mut out.data[y * w..(y + 1) * w];
            for (x, d) in dst.iter_mut().enumerate() {
                *d = src[((x as f32 * fx) as usize).min(self.w.saturating_sub(1))];
            }
        }
        out
    }
}

/// A decoded frame: luma at full size and, for colour, two chroma planes of any subsampling.
#[derive(Debug, Clone)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub y: Plane,
    pub chroma: Option<[Plane; 2]>,
}

impl Frame {
    /// Full-range BT.601 (JFIF) conversion of interleaved RGB.
    pub fn from_rgb(width: usize, height: usize, rgb: &[u8], colour: bool) -> Frame {
        let mut y = Plane::new(width, height);
        let mut cb = Plane::new(if colour { width } else { 0 }, height);
        let mut cr = Plane::new(if colour { width } else { 0 }, height);
        for (i, px) in rgb.chunks_exact(3).take(width * height).enumerate() {
            let (r, g, b) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
            y.data[i] = ((19595 * r + 38470 * g + 7471 * b + 32768) >> 16) as u8;
            if colour {
                cb.data[i] = ((-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32767) >> 16)
                    .clamp(0, 255) as u8;
                cr.data[i] = ((32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32767) >> 16)
                    .clamp(0, 255) as u8;
            }
        }
        Frame {
            width,
            height,
            y,
            chroma: colour.then_some([cb, cr]),
        }
    }

    /// A grey frame given neutral chroma when colour output is wanted, or stripped of chroma
    /// when not.
    pub fn gray_as_colour(mut self, colour: bool) -> Frame {
        self.chroma = if !colour {
            None
        } else {
            self.chroma.or_else(|| {
                let (w, h) = (self.width.div_ceil(2), self.height.div_ceil(2));
                Some([Plane::filled(w, h, 128), Plane::filled(w, h, 128)])
            })
        };
        self
    }

    #[cfg(test)]
    /// Interleaved RGB (tests and the pure-Rust paths).
    pub fn to_rgb(&self) -> Vec<u8> {
        let (w, h) = (self.width, self.height);
        let mut out = Vec::with_capacity(w * h * 3);
        let up = self
            .chroma
            .as_ref()
            .map(|[cb, cr]| (cb.upsample_to(w, h), cr.upsample_to(w, h)));
        for yy in 0..h {
            for x in 0..w {
                let l = i32::from(self.y.at(x, yy));
                let (r, g, b) = match &up {
                    Some((cb, cr)) => {
                        let cb = i32::from(cb.data[yy * w + x]) - 128;
                        let cr = i32::from(cr.data[yy * w + x]) - 128;
                        (
                            l + ((91881 * cr + 32768) >> 16),
                            l - ((22554 * cb + 46802 * cr - 32768) >> 16),
                            l + ((116130 * cb + 32768) >> 16),
                        )
                    }
                    None => (l, l, l),
                };
                out.extend([r, g, b].map(|v| v.clamp(0, 255) as u8));
            }
        }
        out
    }
}
