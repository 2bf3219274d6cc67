//! Frames to [`Thumbnail`]s for the stillness detector, cheaply: a JPEG is decoded DCT-scaled
//! (1/8, the DC coefficients only), a PNG decoded whole (replays only). The JPEG must carry its
//! Huffman tables (insert them first: UVC MJPEG has none). Decoder errors and panics on hostile
//! bytes come back as errors.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::frame::FrameFormat;
use crate::stillness::{THUMB_H, THUMB_W, Thumbnail};

/// Larger frames are not decoded (a 13 MP camera is 13).
const MAX_PIXELS: u64 = 100_000_000;

pub fn thumbnail(bytes: &[u8], format: FrameFormat) -> Result<Thumbnail, String> {
    match catch_unwind(AssertUnwindSafe(|| match format {
        FrameFormat::Jpeg => jpeg_grey(bytes),
        FrameFormat::Png => png_grey(bytes),
    })) {
        Ok(Ok((w, h, grey))) => Thumbnail::from_grey(w, h, w, &grey)
            .ok_or_else(|| format!("frame of {w}x{h} is smaller than {THUMB_W}x{THUMB_H}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the decoder failed on this frame".into()),
    }
}

fn jpeg_grey(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().map_err(|e| format!("JPEG: {e}"))?;
    let info = decoder.info().ok_or("JPEG: no frame header")?;
    if u64::from(info.width) * u64::from(info.height) > MAX_PIXELS {
        return Err(format!(
            "JPEG of {}x{} is too large",
            info.width, info.height
        ));
    }
    // The smallest DCT scaling that still covers the thumbnail grid.
    let (w, h) = decoder
        .scale(THUMB_W as u16 * 2, THUMB_H as u16 * 2)
        .map_err(|e| format!("JPEG: {e}"))?;
    let pixels = decoder.decode().map_err(|e| format!("JPEG: {e}"))?;
    let (w, h) = (usize::from(w), usize::from(h));
    let info = decoder.info().ok_or("JPEG: no frame header")?;
    let grey = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => pixels,
        jpeg_decoder::PixelFormat::L16 => pixels.chunks_exact(2).map(|p| p[0]).collect(),
        jpeg_decoder::PixelFormat::RGB24 => pixels.chunks_exact(3).map(luma).collect(),
        jpeg_decoder::PixelFormat::CMYK32 => pixels.chunks_exact(4).map(|p| 255 - p[3]).collect(),
    };
    if grey.len() < w * h {
        return Err(format!("JPEG: {} samples for {w}x{h}", grey.len()));
    }
    Ok((w, h, grey))
}

fn png_grey(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| format!("PNG: {e}"))?;
    let (w, h) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    if (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(format!("PNG of {w}x{h} is too large"));
    }
    let size = reader.output_buffer_size().ok_or("PNG: size overflows")?;
    let mut buf = vec![0; size];
    let out = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("PNG: {e}"))?;
    let channels = out.color_type.samples();
    let grey: Vec<u8> = buf[..out.buffer_size()]
        .chunks_exact(channels.max(1))
        .map(|p| if channels >= 3 { luma(p) } else { p[0] })
        .collect();
    let w = out.width as usize;
    let h = out.height as usize;
    if grey.len() < w * h {
        return Err(format!("PNG: {} samples for {w}x{h}", grey.len()));
    }
    Ok((w, h, grey))
}

fn luma(p: &[u8]) -> u8 {
    ((u32::from(p[0]) * 77 + u32::from(p[1]) * 150 + u32::from(p[2]) * 29) >> 8) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey PNG of `w`×`h` with a bright square, encoded with the `png` crate.
    pub fn grey_png(w: u32, h: u32, square: (u32, u32)) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().unwrap();
            let mut px = vec![40u8; (w * h) as usize];
            for y in square.1..(square.1 + 40).min(h) {
                for x in square.0..(square.0 + 40).min(w) {
                    px[(y * w + x) as usize] = 220;
                }
            }
            writer.write_image_data(&px).unwrap();
        }
        out
    }

    #[test]
    fn png_frames_become_thumbnails_that_see_a_moved_square() {
        let a = thumbnail(&grey_png(320, 240, (10, 10)), FrameFormat::Png).unwrap();
        let b = thumbnail(&grey_png(320, 240, (10, 10)), FrameFormat::Png).unwrap();
        let c = thumbnail(&grey_png(320, 240, (200, 150)), FrameFormat::Png).unwrap();
        assert_eq!(a.difference(&b), 0.0);
        assert!(a.difference(&c) > 5.0, "{}", a.difference(&c));
    }

    #[test]
    fn a_large_jpeg_is_decoded_at_an_eighth() {
        let (w, h) = (2048u16, 1536u16);
        let mut px = vec![30u8; usize::from(w) * usize::from(h)];
        for y in 400..1200 {
            for x in 600..1400 {
                px[y * usize::from(w) + x] = 230;
            }
        }
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 85)
            .encode(&px, w, h, jpeg_encoder::ColorType::Luma)
            .unwrap();
        let started = std::time::Instant::now();
        let t = thumbnail(&jpeg, FrameFormat::Jpeg).unwrap();
        let took = started.elapsed();
        let flat = thumbnail(&grey_png(320, 240, (400, 400)), FrameFormat::Png).unwrap();
        assert!(t.difference(&flat) > 20.0);
        eprintln!("3 MP JPEG thumbnail in {took:?}");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(thumbnail(b"\xFF\xD8\xFF\xE0 nonsense", FrameFormat::Jpeg).is_err());
        assert!(thumbnail(b"\x89PNG\r\n\x1a\n nonsense", FrameFormat::Png).is_err());
        assert!(thumbnail(&grey_png(16, 16, (0, 0)), FrameFormat::Png).is_err());
        let whole = grey_png(320, 240, (10, 10));
        for cut in [10, 40, whole.len() / 2] {
            assert!(thumbnail(&whole[..cut], FrameFormat::Png).is_err());
        }
    }
}
