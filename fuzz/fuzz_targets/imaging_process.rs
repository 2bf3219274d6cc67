//! The imaging pipeline (`imaging::process`) on every format it decodes: camera frames, scanner
//! pages and hot-folder files are untrusted, and a panic here would end a device thread (the
//! station also catches it, `devices::page`, but the pipeline must be total on its own).
//!
//! Random bytes rarely get past a decoder's header, and the corpus is not committed, so most
//! inputs are recipes: a small valid JPEG (a generated document scene), PNG or TIFF (several
//! colour types and depths) is made from the first bytes, then the rest patches its bytes. The
//! pixel budget is 1 MP so oversized headers are refused quickly, as in production at 64 MP.
#![no_main]

use countersign::imaging::testgen::{SceneOptions, scene};
use countersign::imaging::{self, Mode, PageSize, ProcessOptions};
use image::ImageEncoder as _;
use libfuzzer_sys::fuzz_target;

/// A small image of a bright page on a darker ground, `w`×`h`, in the given colour type.
fn raster(w: u32, h: u32, color: image::ExtendedColorType, shade: u8) -> Vec<u8> {
    let channels = match color {
        image::ExtendedColorType::L8 => 1,
        image::ExtendedColorType::La8 => 2,
        image::ExtendedColorType::Rgb8 => 3,
        image::ExtendedColorType::Rgba8 => 4,
        image::ExtendedColorType::L16 => 2,
        _ => 6, // Rgb16
    };
    let mut px = Vec::with_capacity((w * h) as usize * channels);
    for y in 0..h {
        for x in 0..w {
            let inside = x > w / 5 && x < w * 4 / 5 && y > h / 6 && y < h * 5 / 6;
            let v = if inside { 230u8 } else { shade };
            px.extend(std::iter::repeat_n(v, channels));
        }
    }
    px
}

fn encode(kind: u8, w: u32, h: u32, variant: u8, quality: u8) -> Option<Vec<u8>> {
    let colors = [
        image::ExtendedColorType::L8,
        image::ExtendedColorType::La8,
        image::ExtendedColorType::Rgb8,
        image::ExtendedColorType::Rgba8,
        image::ExtendedColorType::L16,
        image::ExtendedColorType::Rgb16,
    ];
    let color = colors[usize::from(variant) % colors.len()];
    let mut out = Vec::new();
    match kind {
        1 => {
            let s = scene(
                u64::from(variant),
                &SceneOptions {
                    width: w as usize,
                    height: h as usize,
                    jpeg_quality: Some(quality.clamp(10, 95)),
                    ..SceneOptions::default()
                },
            );
            return Some(s.jpeg);
        }
        2 => image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&raster(w, h, color, variant), w, h, color)
            .ok()?,
        _ => image::codecs::tiff::TiffEncoder::new(std::io::Cursor::new(&mut out))
            .write_image(&raster(w, h, color, variant), w, h, color)
            .ok()?,
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let opts = ProcessOptions {
        mode: [Mode::Colour, Mode::Grey, Mode::Bw][usize::from(ctl % 3)],
        page: if ctl & 4 == 0 {
            PageSize::A4
        } else {
            PageSize::Detected
        },
        dpi: 50,
        jpeg_quality: 50,
        max_megapixels: 1,
        ..ProcessOptions::default()
    };
    let input = match (ctl >> 3) & 3 {
        0 => rest.to_vec(),
        kind => {
            if rest.len() < 4 {
                return;
            }
            let (recipe, patches) = rest.split_at(4);
            let w = 16 + u32::from(recipe[0]);
            let h = 16 + u32::from(recipe[1]);
            let Some(mut bytes) = encode(kind, w, h, recipe[2], recipe[3]) else {
                return;
            };
            // Each patch: a 16-bit offset into the file and a byte to XOR there.
            for patch in patches.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([patch[0], patch[1]]));
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] ^= patch[2];
                }
            }
            if patches.len() % 3 == 1 {
                // Truncated input (a file still being written, a cut stream).
                let keep = bytes.len() * usize::from(patches[patches.len() - 1]) / 256;
                bytes.truncate(keep);
            }
            bytes
        }
    };
    if let Ok(p) = imaging::process(&input, &opts) {
        assert!(p.width > 0 && p.height > 0);
        assert!(p.jpeg.starts_with(&[0xFF, 0xD8]));
    }
});
