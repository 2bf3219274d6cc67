//! Frames as cameras deliver them, checked before anyone relies on them: a JPEG must start with
//! SOI, carry a frame header (SOF) and a scan (SOS) and end with EOI (zero padding after it is
//! allowed: UVC buffers are often padded); a PNG needs its signature and IEND. Truncated frames
//! (a USB hiccup) are rejected and the next one is taken. Whether a JPEG carries Huffman tables
//! (UVC MJPEG usually does not) is reported; the repair itself is the imaging module's.
//!
//! Total over any bytes: every path returns an error instead of panicking.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    Jpeg,
    Png,
}

impl FrameFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }
}

/// One frame from a source.
#[derive(Clone)]
pub struct Frame {
    pub bytes: Vec<u8>,
    pub format: FrameFormat,
    pub width: u32,
    pub height: u32,
    /// Counts every frame the source delivered since it was opened, good or bad.
    pub sequence: u64,
    pub at: Instant,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("format", &self.format)
            .field("size", &(self.width, self.height))
            .field("bytes", &self.bytes.len())
            .field("sequence", &self.sequence)
            .finish()
    }
}

/// What a frame check learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub format: FrameFormat,
    pub width: u32,
    pub height: u32,
    /// JPEG only: a DHT segment precedes the scan (false for typical UVC MJPEG).
    pub has_huffman_tables: bool,
}

/// Why a frame was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameProblem {
    #[error("empty frame (bytesused 0)")]
    Empty,
    #[error("neither JPEG (SOI) nor PNG signature at offset 0")]
    UnknownFormat,
    #[error("JPEG segment at offset {offset}: {reason}")]
    BadSegment { offset: usize, reason: &'static str },
    #[error("JPEG without a frame header (SOF) before its scan")]
    NoFrameHeader,
    #[error("truncated frame: no end marker ({format} of {len} bytes)")]
    Truncated { format: &'static str, len: usize },
    #[error("PNG header unreadable")]
    BadPngHeader,
    #[error("frame of {width}x{height} pixels")]
    BadSize { width: u32, height: u32 },
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DHT: u8 = 0xC4;
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// Checks a whole frame; see the module documentation.
pub fn check(bytes: &[u8]) -> Result<FrameInfo, FrameProblem> {
    if bytes.is_empty() {
        return Err(FrameProblem::Empty);
    }
    if bytes.starts_with(&[0xFF, SOI]) {
        check_jpeg(bytes)
    } else if bytes.starts_with(&PNG_SIGNATURE) {
        check_png(bytes)
    } else {
        Err(FrameProblem::UnknownFormat)
    }
}

/// Whether a JPEG's header carries Huffman tables (false for malformed input).
pub fn has_huffman_tables(bytes: &[u8]) -> bool {
    jpeg_header(bytes).is_ok_and(|h| h.has_dht)
}

struct JpegHeader {
    width: u32,
    height: u32,
    has_dht: bool,
}

/// Walks the marker segments from SOI to the first SOS.
fn jpeg_header(bytes: &[u8]) -> Result<JpegHeader, FrameProblem> {
    let mut pos = 2;
    let mut size = None;
    let mut has_dht = false;
    loop {
        // Fill bytes (0xFF repeated) may precede a marker.
        while bytes.get(pos) == Some(&0xFF) && bytes.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(pos), bytes.get(pos + 1)) else {
            return Err(FrameProblem::BadSegment {
                offset: pos,
                reason: "expected a marker",
            });
        };
        if marker == EOI || marker == SOI || marker == 0 {
            return Err(FrameProblem::BadSegment {
                offset: pos,
                reason: "unexpected marker before the scan",
            });
        }
        let (Some(&hi), Some(&lo)) = (bytes.get(pos + 2), bytes.get(pos + 3)) else {
            return Err(FrameProblem::Truncated {
                format: "JPEG",
                len: bytes.len(),
            });
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < 2 || pos + 2 + len > bytes.len() {
            return Err(FrameProblem::BadSegment {
                offset: pos,
                reason: "segment length runs past the end",
            });
        }
        let body = &bytes[pos + 4..pos + 2 + len];
        match marker {
            DHT => has_dht = true,
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if marker != 0xC8 && marker != 0xCC => {
                if body.len() < 5 {
                    return Err(FrameProblem::BadSegment {
                        offset: pos,
                        reason: "frame header too short",
                    });
                }
                let height = u32::from(u16::from_be_bytes([body[1], body[2]]));
                let width = u32::from(u16::from_be_bytes([body[3], body[4]]));
                size = Some((width, height));
            }
            SOS => {
                let (width, height) = size.ok_or(FrameProblem::NoFrameHeader)?;
                return Ok(JpegHeader {
                    width,
                    height,
                    has_dht,
                });
            }
            _ => {}
        }
        pos += 2 + len;
    }
}

fn check_jpeg(bytes: &[u8]) -> Result<FrameInfo, FrameProblem> {
    let header = jpeg_header(bytes)?;
    let end = bytes.iter().rposition(|&b| b != 0).unwrap_or(0);
    if end < 1 || bytes[end - 1] != 0xFF || bytes[end] != EOI {
        return Err(FrameProblem::Truncated {
            format: "JPEG",
            len: bytes.len(),
        });
    }
    if header.width == 0 || header.height == 0 {
        return Err(FrameProblem::BadSize {
            width: header.width,
            height: header.height,
        });
    }
    Ok(FrameInfo {
        format: FrameFormat::Jpeg,
        width: header.width,
        height: header.height,
        has_huffman_tables: header.has_dht,
    })
}

fn check_png(bytes: &[u8]) -> Result<FrameInfo, FrameProblem> {
    // Signature, then IHDR: length, "IHDR", width, height.
    if bytes.len() < 33 || &bytes[12..16] != b"IHDR" {
        return Err(FrameProblem::BadPngHeader);
    }
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    if bytes.len() < 45 || &bytes[bytes.len() - 8..bytes.len() - 4] != b"IEND" {
        return Err(FrameProblem::Truncated {
            format: "PNG",
            len: bytes.len(),
        });
    }
    if width == 0 || height == 0 {
        return Err(FrameProblem::BadSize { width, height });
    }
    Ok(FrameInfo {
        format: FrameFormat::Png,
        width,
        height,
        has_huffman_tables: false,
    })
}

/// `jpeg` without its DHT segments: a frame as UVC MJPEG cameras send it, made from any JPEG
/// (replays, simulations and tests of the repair). Other bytes are returned unchanged.
pub fn strip_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
    if !jpeg.starts_with(&[0xFF, SOI]) {
        return jpeg.to_vec();
    }
    let mut out = jpeg[..2].to_vec();
    let mut pos = 2;
    while pos + 4 <= jpeg.len() {
        let marker = jpeg[pos + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if marker == SOS || jpeg[pos] != 0xFF || len < 2 || pos + 2 + len > jpeg.len() {
            break;
        }
        if marker != DHT {
            out.extend_from_slice(&jpeg[pos..pos + 2 + len]);
        }
        pos += 2 + len;
    }
    out.extend_from_slice(&jpeg[pos.min(jpeg.len())..]);
    out
}

/// Splits a recorded MJPEG stream (`v4l2-ctl --stream-to`: JPEG frames back to back, perhaps
/// with padding between them) into frames, SOI to the next SOI. Each piece is checked later, so
/// a truncated frame in the recording stays truncated.
pub fn split_mjpeg(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 2 < stream.len() {
        if stream[i] == 0xFF && stream[i + 1] == SOI && stream[i + 2] == 0xFF {
            starts.push(i);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut frames = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(stream.len());
        frames.push(&stream[start..end]);
    }
    frames
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A marker-level JPEG: SOI, APP0, optional DHT, SOF0 of `w`×`h`, SOS, some data, EOI.
    pub fn tiny_jpeg(w: u16, h: u16, dht: bool, fill: u8) -> Vec<u8> {
        let mut j = vec![0xFF, SOI];
        j.extend_from_slice(&[
            0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
        ]);
        if dht {
            j.extend_from_slice(&[0xFF, DHT, 0, 4, 0, 0]);
        }
        let [wh, wl] = w.to_be_bytes();
        let [hh, hl] = h.to_be_bytes();
        j.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, hh, hl, wh, wl, 1, 1, 0x11, 0]);
        j.extend_from_slice(&[0xFF, SOS, 0, 8, 1, 1, 0, 0, 63, 0]);
        j.extend_from_slice(&[fill; 40]);
        j.extend_from_slice(&[0xFF, EOI]);
        j
    }

    #[test]
    fn a_whole_frame_reports_size_and_tables() {
        let info = check(&tiny_jpeg(4160, 3120, false, 0x55)).unwrap();
        assert_eq!((info.width, info.height), (4160, 3120));
        assert!(!info.has_huffman_tables);
        assert!(check(&tiny_jpeg(8, 8, true, 1)).unwrap().has_huffman_tables);
        // Padding after EOI, as in a UVC buffer.
        let mut padded = tiny_jpeg(8, 8, true, 1);
        padded.extend_from_slice(&[0; 100]);
        assert!(check(&padded).is_ok());
    }

    #[test]
    fn truncated_and_odd_frames_are_rejected_without_panicking() {
        let whole = tiny_jpeg(640, 480, false, 0x11);
        for cut in 0..whole.len() - 1 {
            assert!(check(&whole[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(check(&[]), Err(FrameProblem::Empty));
        assert_eq!(check(b"GIF89a"), Err(FrameProblem::UnknownFormat));
        assert!(matches!(
            check(&tiny_jpeg(0, 480, false, 1)),
            Err(FrameProblem::BadSize { .. })
        ));
        // Every byte value at every position of a small frame: no panic.
        let base = tiny_jpeg(16, 16, true, 0x22);
        for pos in 0..base.len() {
            for v in [0x00, 0xFF, 0xD8, 0xD9, 0xDA, 0xC0, 0x7F] {
                let mut b = base.clone();
                b[pos] = v;
                let _ = check(&b);
                let _ = has_huffman_tables(&b);
            }
        }
    }

    #[test]
    fn stripping_the_tables_keeps_everything_else() {
        let with = tiny_jpeg(64, 48, true, 7);
        let without = strip_huffman_tables(&with);
        assert_eq!(without, tiny_jpeg(64, 48, false, 7));
        assert!(!has_huffman_tables(&without));
        for cut in 0..with.len() {
            let _ = strip_huffman_tables(&with[..cut]);
        }
        assert_eq!(strip_huffman_tables(b"xy"), b"xy");
    }

    #[test]
    fn a_recorded_stream_splits_into_frames() {
        let a = tiny_jpeg(8, 8, false, 1);
        let b = tiny_jpeg(8, 8, false, 2);
        let mut stream = a.clone();
        stream.extend_from_slice(&b[..b.len() - 10]); // truncated second frame
        stream.extend_from_slice(&a);
        let frames = split_mjpeg(&stream);
        assert_eq!(frames.len(), 3);
        assert!(check(frames[0]).is_ok());
        assert!(matches!(
            check(frames[1]),
            Err(FrameProblem::Truncated { .. })
        ));
        assert!(check(frames[2]).is_ok());
        assert!(split_mjpeg(&[]).is_empty());
    }
}
