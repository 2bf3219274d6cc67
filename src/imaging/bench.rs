//! Codec entry points for `cargo bench --bench imaging` (the codec comparison against djpeg and
//! cjpeg). Not part of the API.

use super::codec;
use super::error::ImagingError;

/// The pipeline's own decode: YCbCr planes plus the DCT-scaled detection image.
pub fn decode_pipeline(jpeg: &[u8]) -> Result<(usize, usize), ImagingError> {
    let d = codec::decode(jpeg, true, codec::MAX_MEGAPIXELS as u32)?;
    Ok((d.frame.width, d.frame.height))
}

/// Interleaved RGB through libjpeg-turbo (the same work as `djpeg`).
#[cfg(feature = "turbojpeg")]
pub fn decode_rgb_turbo(jpeg: &[u8]) -> Option<(usize, usize, Vec<u8>)> {
    let img = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).ok()?;
    Some((img.width, img.height, img.pixels))
}

/// Like [`decode_rgb_turbo`] into a buffer kept between calls (no fresh 39 MB to fault in, as
/// `djpeg` streaming rows to a file has none).
#[cfg(feature = "turbojpeg")]
pub fn decode_rgb_turbo_into(jpeg: &[u8], buf: &mut Vec<u8>) -> Option<(usize, usize)> {
    let mut d = turbojpeg::Decompressor::new().ok()?;
    let h = d.read_header(jpeg).ok()?;
    buf.resize(h.width * h.height * 3, 0);
    let img = turbojpeg::Image {
        pixels: buf.as_mut_slice(),
        width: h.width,
        pitch: h.width * 3,
        height: h.height,
        format: turbojpeg::PixelFormat::RGB,
    };
    d.decompress(jpeg, img).ok()?;
    Some((h.width, h.height))
}

/// Like [`decode_rgb_zune`] into a buffer kept between calls.
pub fn decode_rgb_zune_into(jpeg: &[u8], buf: &mut Vec<u8>) -> Option<(usize, usize)> {
    let mut d = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(jpeg));
    d.decode_headers().ok()?;
    let info = d.info()?;
    buf.resize(d.output_buffer_size()?, 0);
    d.decode_into(buf).ok()?;
    Some((usize::from(info.width), usize::from(info.height)))
}

/// Baseline 4:2:0 JPEG of RGB through libjpeg-turbo (the same work as `cjpeg`).
#[cfg(feature = "turbojpeg")]
pub fn encode_rgb_turbo(rgb: &[u8], w: usize, h: usize, quality: u8) -> Option<Vec<u8>> {
    let img = turbojpeg::Image {
        pixels: rgb,
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(img, i32::from(quality), turbojpeg::Subsamp::Sub2x2)
        .ok()
        .map(|b| b.to_vec())
}

/// Interleaved RGB through zune-jpeg (the pure-Rust route).
pub fn decode_rgb_zune(jpeg: &[u8]) -> Option<(usize, usize, Vec<u8>)> {
    let mut d = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(jpeg));
    let px = d.decode().ok()?;
    let info = d.info()?;
    Some((usize::from(info.width), usize::from(info.height), px))
}

/// Baseline 4:2:0 JPEG of RGB through jpeg-encoder (the pure-Rust route).
pub fn encode_rgb_jpeg_encoder(rgb: &[u8], w: usize, h: usize, quality: u8) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut out, quality);
    e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    e.encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .ok()?;
    Some(out)
}
