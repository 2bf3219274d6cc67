//! Decoding inputs to planes and encoding planes to JPEG. JPEG goes through libjpeg-turbo (feature
//! `turbojpeg`) or, without it, zune-jpeg and jpeg-encoder; PNG and TIFF through `image`.
//!
//! With libjpeg-turbo the detection image comes from a second, DCT-scaled decode on another core
//! while the full-size decode runs, so detection costs no time on the critical path.

use super::error::{ImagingError, decode_err};
use super::plane::{Frame, Plane};

/// The highest pixel budget `[imaging] max_megapixels` may set (a 16 MP camera has 16).
pub const MAX_MEGAPIXELS: u64 = 100;
/// The default pixel budget of one page: larger inputs are refused from their header, before any
/// pixel is decoded (the transient memory of one page is about 8 bytes per pixel at worst: a
/// 16-bit RGBA PNG decoded, converted to RGB, then to planes; docs/capture.md).
pub const DEFAULT_MEGAPIXELS: u32 = 64;
/// The detection image's longer side is at most this (a power-of-two reduction of the input).
pub const DETECT_MAX_SIDE: usize = 1280;

/// What `decode` returns: the full frame, the detection image, and its reduction factor.
pub struct Decoded {
    pub frame: Frame,
    pub small: Plane,
    pub reduction: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Tiff,
}

pub fn sniff(bytes: &[u8]) -> Result<Format, ImagingError> {
    match bytes {
        [0xFF, 0xD8, ..] => Ok(Format::Jpeg),
        [0x89, b'P', b'N', b'G', ..] => Ok(Format::Png),
        [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => Ok(Format::Tiff),
        _ => Err(ImagingError::UnknownFormat(
            bytes
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
        )),
    }
}

/// Refuses an image whose declared size is zero or over `max_megapixels` (read from its header,
/// so nothing has been allocated for it yet).
fn check_size(width: usize, height: usize, max_megapixels: u32) -> Result<(), ImagingError> {
    let pixels = width as u64 * height as u64;
    let max = u64::from(max_megapixels).min(MAX_MEGAPIXELS);
    if width == 0 || height == 0 || pixels > max * 1_000_000 {
        return Err(ImagingError::Size {
            width: width as u64,
            height: height as u64,
            max,
        });
    }
    Ok(())
}

/// The power-of-two reduction that brings the longer side to at most [`DETECT_MAX_SIDE`].
pub fn reduction_for(width: usize, height: usize) -> usize {
    let mut k = 1;
    while width.max(height).div_ceil(k) > DETECT_MAX_SIDE && k < 8 {
        k *= 2;
    }
    k
}

/// Decodes `bytes` (JPEG with Huffman tables already ensured, PNG or TIFF). `colour` false
/// decodes luma only. Images over `max_megapixels` are refused from their header.
pub fn decode(bytes: &[u8], colour: bool, max_megapixels: u32) -> Result<Decoded, ImagingError> {
    match sniff(bytes)? {
        Format::Jpeg => decode_jpeg(bytes, colour, max_megapixels),
        format => {
            let frame = decode_other(bytes, format, colour, max_megapixels)?;
            let reduction = reduction_for(frame.width, frame.height);
            let small = frame.y.box_down(reduction);
            Ok(Decoded {
                frame,
                small,
                reduction,
            })
        }
    }
}

fn decode_other(
    bytes: &[u8],
    format: Format,
    colour: bool,
    max_megapixels: u32,
) -> Result<Frame, ImagingError> {
    let (name, fmt) = match format {
        Format::Png => ("PNG", image::ImageFormat::Png),
        _ => ("TIFF", image::ImageFormat::Tiff),
    };
    // The decoder's own allocations are bounded too: 8 bytes per pixel of the budget (16-bit RGBA).
    let limits = || {
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(u64::from(max_megapixels).min(MAX_MEGAPIXELS) * 1_000_000 * 8);
        limits
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), fmt);
    reader.limits(limits());
    // IHDR (PNG) or the first IFD's tags (TIFF) only: no pixel is decoded here.
    let (w, h) = reader.into_dimensions().map_err(|e| decode_err(name, e))?;
    check_size(w as usize, h as usize, max_megapixels)?;
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), fmt);
    reader.limits(limits());
    // `into_rgb8` moves an 8-bit RGB image instead of copying it, and the decoded image (16-bit or
    // with alpha) is dropped before the planes are made: one page's peak stays near 5 bytes per
    // pixel for 8-bit RGB, 11 for 16-bit RGBA (docs/capture.md).
    let rgb = reader
        .decode()
        .map_err(|e| decode_err(name, e))?
        .into_rgb8();
    Ok(Frame::from_rgb(
        w as usize,
        h as usize,
        rgb.as_raw(),
        colour,
    ))
}

#[cfg(feature = "turbojpeg")]
fn decode_jpeg(bytes: &[u8], colour: bool, max_megapixels: u32) -> Result<Decoded, ImagingError> {
    turbo::decode(bytes, colour, max_megapixels)
}

#[cfg(not(feature = "turbojpeg"))]
fn decode_jpeg(bytes: &[u8], colour: bool, max_megapixels: u32) -> Result<Decoded, ImagingError> {
    let frame = pure::decode(bytes, colour, max_megapixels)?;
    let reduction = reduction_for(frame.width, frame.height);
    let small = frame.y.box_down(reduction);
    Ok(Decoded {
        frame,
        small,
        reduction,
    })
}

/// An image to encode: luma, and for colour 4:2:0 chroma planes of `ceil(w/2)`×`ceil(h/2)`. The
/// luma plane holds at least `w`×`h` (rounded up to even for colour).
pub struct EncodeInput<'a> {
    pub width: usize,
    pub height: usize,
    pub y: &'a [u8],
    pub y_stride: usize,
    pub chroma: Option<(&'a [u8], &'a [u8], usize)>,
}

/// Baseline JPEG, standard Huffman tables, no restart markers (strips are joined later).
pub fn encode(input: &EncodeInput<'_>, quality: u8) -> Result<Vec<u8>, ImagingError> {
    #[cfg(feature = "turbojpeg")]
    {
        turbo::encode(input, quality)
    }
    #[cfg(not(feature = "turbojpeg"))]
    {
        pure::encode(input, quality)
    }
}

/// Which codec this build uses (reported by the benchmark and `process`).
pub const CODEC: &str = if cfg!(feature = "turbojpeg") {
    "libjpeg-turbo 3.1"
} else {
    "zune-jpeg + jpeg-encoder"
};

#[cfg(feature = "turbojpeg")]
mod turbo {
    use super::*;
    use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor, Subsamp, YuvImage};

    fn err(e: turbojpeg::Error) -> ImagingError {
        decode_err("JPEG", e)
    }

    pub fn decode(
        bytes: &[u8],
        colour: bool,
        max_megapixels: u32,
    ) -> Result<Decoded, ImagingError> {
        let mut d = Decompressor::new().map_err(err)?;
        let header = d.read_header(bytes).map_err(err)?;
        check_size(header.width, header.height, max_megapixels)?;
        let reduction = reduction_for(header.width, header.height);
        // The detection image on another core while this one decodes the full frame.
        let (small, frame) = std::thread::scope(|s| {
            let small = s.spawn(|| decode_gray(bytes, reduction));
            let frame = decode_full(&mut d, bytes, &header, colour);
            (small.join(), frame)
        });
        let frame = frame?;
        let small = small.map_err(|_| decode_err("JPEG", "decoder thread failed"))??;
        Ok(Decoded {
            frame,
            small,
            reduction,
        })
    }

    fn decode_gray(bytes: &[u8], reduction: usize) -> Result<Plane, ImagingError> {
        let mut d = Decompressor::new().map_err(err)?;
        let header = d.read_header(bytes).map_err(err)?;
        let factor = ScalingFactor::new(1, reduction);
        d.set_scaling_factor(factor).map_err(err)?;
        let (w, h) = (factor.scale(header.width), factor.scale(header.height));
        let mut plane = Plane::new(w, h);
        d.decompress(
            bytes,
            Image {
                pixels: plane.data.as_mut_slice(),
                width: w,
                pitch: w,
                height: h,
                format: PixelFormat::GRAY,
            },
        )
        .map_err(err)?;
        Ok(plane)
    }

    fn decode_full(
        d: &mut Decompressor,
        bytes: &[u8],
        header: &turbojpeg::DecompressHeader,
        colour: bool,
    ) -> Result<Frame, ImagingError> {
        let (w, h) = (header.width, header.height);
        let yuv_ok = matches!(
            header.subsamp,
            Subsamp::None | Subsamp::Sub2x1 | Subsamp::Sub2x2 | Subsamp::Sub1x2
        ) && matches!(header.colorspace, turbojpeg::Colorspace::YCbCr);
        if !colour || header.subsamp == Subsamp::Gray {
            let mut y = Plane::new(w, h);
            d.decompress(
                bytes,
                Image {
                    pixels: y.data.as_mut_slice(),
                    width: w,
                    pitch: w,
                    height: h,
                    format: PixelFormat::GRAY,
                },
            )
            .map_err(err)?;
            return Ok(Frame {
                width: w,
                height: h,
                y,
                chroma: None,
            }
            .gray_as_colour(colour));
        }
        if !yuv_ok {
            // Unusual sampling or colour space (4:1:1, RGB, CMYK...): via RGB.
            let mut rgb = vec![0u8; w * h * 3];
            d.decompress(
                bytes,
                Image {
                    pixels: rgb.as_mut_slice(),
                    width: w,
                    pitch: w * 3,
                    height: h,
                    format: PixelFormat::RGB,
                },
            )
            .map_err(err)?;
            return Ok(Frame::from_rgb(w, h, &rgb, true));
        }
        let mut yuv = YuvImage {
            pixels: Vec::new(),
            width: w,
            align: 1,
            height: h,
            subsamp: header.subsamp,
        };
        let len = turbojpeg::yuv_pixels_len(w, 1, h, header.subsamp).map_err(err)?;
        yuv.pixels = vec![0u8; len];
        d.decompress_to_yuv(bytes, yuv.as_deref_mut())
            .map_err(err)?;
        let (yw, yh) = yuv.y_size();
        let (cw, ch) = yuv.uv_size();
        let mut pixels = yuv.pixels;
        let cr = Plane {
            w: w.div_ceil(header.subsamp.width()),
            h: h.div_ceil(header.subsamp.height()),
            stride: cw,
            data: pixels.split_off(yw * yh + cw * ch),
        };
        let cb = Plane {
            w: cr.w,
            h: cr.h,
            stride: cw,
            data: pixels.split_off(yw * yh),
        };
        let y = Plane {
            w,
            h,
            stride: yw,
            data: pixels,
        };
        Ok(Frame {
            width: w,
            height: h,
            y,
            chroma: Some([cb, cr]),
        })
    }

    pub fn encode(input: &EncodeInput<'_>, quality: u8) -> Result<Vec<u8>, ImagingError> {
        let enc = |e: turbojpeg::Error| ImagingError::Encode(e.to_string());
        let mut c = turbojpeg::Compressor::new().map_err(enc)?;
        c.set_quality(i32::from(quality.clamp(1, 100)))
            .map_err(enc)?;
        match input.chroma {
            Some((cb, cr, c_stride)) => {
                let img = turbojpeg::YuvPlanesImage {
                    y_plane: input.y,
                    u_plane: cb,
                    v_plane: cr,
                    width: input.width,
                    height: input.height,
                    y_stride: input.y_stride,
                    u_stride: c_stride,
                    v_stride: c_stride,
                    subsamp: Subsamp::Sub2x2,
                };
                c.compress_yuv_planes_to_vec(&img).map_err(enc)
            }
            None => {
                c.set_subsamp(Subsamp::Gray).map_err(enc)?;
                c.compress_to_vec(Image {
                    pixels: input.y,
                    width: input.width,
                    pitch: input.y_stride,
                    height: input.height,
                    format: PixelFormat::GRAY,
                })
                .map_err(enc)
            }
        }
    }
}

#[cfg(not(feature = "turbojpeg"))]
mod pure {
    use super::*;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;

    pub fn decode(bytes: &[u8], colour: bool, max_megapixels: u32) -> Result<Frame, ImagingError> {
        let out = if colour {
            ColorSpace::YCbCr
        } else {
            ColorSpace::Luma
        };
        let max = 65_500;
        let opts = DecoderOptions::default()
            .set_max_width(max)
            .set_max_height(max)
            .jpeg_set_out_colorspace(out);
        let mut d = zune_jpeg::JpegDecoder::new_with_options(std::io::Cursor::new(bytes), opts);
        d.decode_headers()
            .map_err(|e| decode_err("JPEG", format!("{e:?}")))?;
        let info = d
            .info()
            .ok_or_else(|| decode_err("JPEG", "no frame header"))?;
        let (w, h) = (usize::from(info.width), usize::from(info.height));
        check_size(w, h, max_megapixels)?;
        let pixels = d
            .decode()
            .map_err(|e| decode_err("JPEG", format!("{e:?}")))?;
        let channels = d.output_colorspace().map_or(1, |c| c.num_components());
        if pixels.len() < w * h * channels {
            return Err(decode_err("JPEG", "decoder returned too few pixels"));
        }
        if channels == 1 {
            let y = Plane {
                w,
                h,
                stride: w,
                data: pixels,
            };
            return Ok(Frame {
                width: w,
                height: h,
                y,
                chroma: None,
            }
            .gray_as_colour(colour));
        }
        if d.output_colorspace() != Some(ColorSpace::YCbCr) {
            let rgb: Vec<u8> = pixels
                .chunks_exact(channels)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            return Ok(Frame::from_rgb(w, h, &rgb, true));
        }
        let mut planes = [Plane::new(w, h), Plane::new(w, h), Plane::new(w, h)];
        for (i, px) in pixels.chunks_exact(3).take(w * h).enumerate() {
            planes[0].data[i] = px[0];
            planes[1].data[i] = px[1];
            planes[2].data[i] = px[2];
        }
        let [y, cb, cr] = planes;
        Ok(Frame {
            width: w,
            height: h,
            y,
            chroma: Some([cb, cr]),
        })
    }

    pub fn encode(input: &EncodeInput<'_>, quality: u8) -> Result<Vec<u8>, ImagingError> {
        use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
        let (w, h) = (input.width, input.height);
        let too_big = || ImagingError::Encode(format!("{w}x{h} is too large for JPEG"));
        let (w16, h16) = (
            u16::try_from(w).map_err(|_| too_big())?,
            u16::try_from(h).map_err(|_| too_big())?,
        );
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out, quality.clamp(1, 100));
        let result = match input.chroma {
            Some((cb, cr, cs)) => {
                e.set_sampling_factor(SamplingFactor::F_2_2);
                let mut ycc = Vec::with_capacity(w * h * 3);
                for y in 0..h {
                    for x in 0..w {
                        let c = (y / 2) * cs + x / 2;
                        ycc.extend([input.y[y * input.y_stride + x], cb[c], cr[c]]);
                    }
                }
                e.encode(&ycc, w16, h16, ColorType::Ycbcr)
            }
            None => {
                let mut luma = Vec::with_capacity(w * h);
                for y in 0..h {
                    luma.extend_from_slice(&input.y[y * input.y_stride..y * input.y_stride + w]);
                }
                e.encode(&luma, w16, h16, ColorType::Luma)
            }
        };
        result.map_err(|e| ImagingError::Encode(e.to_string()))?;
        Ok(out)
    }
}
