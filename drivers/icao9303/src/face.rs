//! The face image for the record: JPEG as stored, or JPEG 2000 (JP2 or a raw codestream)
//! decoded with `hayro-jpeg2000` (pure Rust, no unsafe) and encoded as JPEG. The original bytes
//! are always kept as evidence by the caller; this only makes the picture viewable everywhere.

use image::ImageEncoder as _;
use image::codecs::jpeg::JpegEncoder;

use crate::lds::{FaceImage, ImageFormat};

/// JPEG quality of converted faces: high, the source is already lossy and small.
const QUALITY: u8 = 90;

/// Largest image accepted for conversion (ICAO faces are about 480×640).
const MAX_PIXELS: u64 = 4096 * 4096;

/// The face as JPEG: the chip's bytes when already JPEG, else converted. Errors say why.
pub fn to_jpeg(face: &FaceImage) -> Result<Vec<u8>, String> {
    match face.format {
        ImageFormat::Jpeg => Ok(face.bytes.clone()),
        ImageFormat::Jp2 | ImageFormat::J2k => {
            // The decoder is memory-safe, but its bounds checks panic on some malformed
            // codestreams; chip bytes are untrusted, so a panic becomes an error here.
            let bytes = face.bytes.clone();
            std::panic::catch_unwind(move || jpeg2000_to_jpeg(&bytes))
                .unwrap_or_else(|_| Err("the JPEG 2000 decoder failed on this image".into()))
        }
    }
}

fn jpeg2000_to_jpeg(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use hayro_jpeg2000::{DecodeSettings, DecoderContext, Image};
    let image =
        Image::new(bytes, &DecodeSettings::default()).map_err(|e| format!("JPEG 2000: {e:?}"))?;
    let (width, height) = (image.width(), image.height());
    if width == 0 || height == 0 || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "JPEG 2000 image of {width}×{height} pixels is out of range"
        ));
    }
    let alpha = image.has_alpha();
    let channels = usize::from(image.color_space().num_channels());
    let mut context = DecoderContext::default();
    let decoded = image
        .decode(&mut context)
        .map_err(|e| format!("JPEG 2000: {e:?}"))?;
    let samples = decoded.data_u8();
    let per_pixel = channels + usize::from(alpha);
    let pixels = width as usize * height as usize;
    if samples.len() != pixels * per_pixel {
        return Err(format!(
            "JPEG 2000 decoded to {} samples, expected {}",
            samples.len(),
            pixels * per_pixel
        ));
    }
    let (data, color) = match channels {
        1 => (
            samples
                .chunks_exact(per_pixel)
                .map(|p| p[0])
                .collect::<Vec<u8>>(),
            image::ExtendedColorType::L8,
        ),
        3 => (
            samples
                .chunks_exact(per_pixel)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            image::ExtendedColorType::Rgb8,
        ),
        n => {
            return Err(format!(
                "JPEG 2000 image with {n} colour channels is not supported"
            ));
        }
    };
    encode_jpeg(&data, width, height, color)
}

/// Encodes 8-bit grey or RGB pixels as JPEG.
pub fn encode_jpeg(
    pixels: &[u8],
    width: u32,
    height: u32,
    color: image::ExtendedColorType,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, QUALITY)
        .write_image(pixels, width, height, color)
        .map_err(|e| format!("JPEG encoding: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(format: ImageFormat, bytes: &[u8]) -> FaceImage {
        FaceImage {
            format,
            width: 0,
            height: 0,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn jp2_and_raw_codestreams_become_jpeg() {
        for (format, bytes) in [
            (
                ImageFormat::Jp2,
                &include_bytes!("sim/fixtures/face.jp2")[..],
            ),
            (
                ImageFormat::J2k,
                &include_bytes!("sim/fixtures/face.j2k")[..],
            ),
        ] {
            let jpeg = to_jpeg(&face(format, bytes)).unwrap();
            assert_eq!(ImageFormat::sniff(&jpeg), Some(ImageFormat::Jpeg));
            assert!(jpeg.len() > 1000, "{format:?}: {} bytes", jpeg.len());
        }
    }

    #[test]
    fn broken_jpeg2000_is_an_error() {
        let mut bytes = include_bytes!("sim/fixtures/face.j2k").to_vec();
        bytes.truncate(60);
        assert!(to_jpeg(&face(ImageFormat::J2k, &bytes)).is_err());
        assert!(to_jpeg(&face(ImageFormat::Jp2, &[0, 0, 0, 0x0C])).is_err());
    }
}
