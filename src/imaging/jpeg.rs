//! JPEG at the marker level: the standard Huffman tables for DHT-less MJPEG frames, the JFIF
//! density, and joining strips encoded in parallel into one baseline JPEG with restart markers.
//! Everything here walks untrusted bytes with bounds checks and gives up (returns the input or
//! `None`) rather than guess.

use std::borrow::Cow;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DHT: u8 = 0xC4;
const DRI: u8 = 0xDD;
const APP0: u8 = 0xE0;

/// A marker segment before the first scan: marker byte and the byte range of the whole segment.
#[derive(Debug, Clone, Copy)]
struct Segment {
    marker: u8,
    start: usize,
    end: usize,
}

/// The segments from SOI up to and including the first SOS; `None` when malformed.
fn header_segments(jpeg: &[u8]) -> Option<Vec<Segment>> {
    if jpeg.len() < 4 || jpeg[0] != 0xFF || jpeg[1] != SOI {
        return None;
    }
    let mut segments = Vec::new();
    let mut i = 2;
    loop {
        // Fill bytes (0xFF repeated) may precede a marker.
        while i + 1 < jpeg.len() && jpeg[i] == 0xFF && jpeg[i + 1] == 0xFF {
            i += 1;
        }
        if i + 4 > jpeg.len() || jpeg[i] != 0xFF {
            return None;
        }
        let marker = jpeg[i + 1];
        if marker == EOI || (0xD0..=0xD8).contains(&marker) || marker == 0x01 {
            return None; // no scan before the end, or a stray marker without a length
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if len < 2 || i + 2 + len > jpeg.len() {
            return None;
        }
        segments.push(Segment {
            marker,
            start: i,
            end: i + 2 + len,
        });
        if marker == SOS {
            return Some(segments);
        }
        i += 2 + len;
    }
}

/// Huffman-coded frame types (baseline, extended, progressive, lossless), which need DHT.
fn is_huffman_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7)
}

/// `jpeg` with the standard Huffman tables (ITU T.81 K.3) inserted before the first SOS when the
/// frame has none, as UVC MJPEG cameras send them. Other input, including malformed input, is
/// returned unchanged for the decoder to judge.
pub fn ensure_huffman_tables(jpeg: &[u8]) -> Cow<'_, [u8]> {
    let Some(segments) = header_segments(jpeg) else {
        return Cow::Borrowed(jpeg);
    };
    let has_dht = segments.iter().any(|s| s.marker == DHT);
    let huffman = segments.iter().any(|s| is_huffman_sof(s.marker));
    if has_dht || !huffman {
        return Cow::Borrowed(jpeg);
    }
    let sos = segments[segments.len() - 1].start;
    let mut out = Vec::with_capacity(jpeg.len() + 432);
    out.extend_from_slice(&jpeg[..sos]);
    out.extend_from_slice(&standard_dht());
    out.extend_from_slice(&jpeg[sos..]);
    Cow::Owned(out)
}

/// The four standard tables (DC/AC luminance and chrominance) as one DHT segment.
pub fn standard_dht() -> Vec<u8> {
    const DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
    const DC_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
    const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
    let tables: [(u8, &[u8; 16], &[u8]); 4] = [
        (0x00, &DC_BITS, &DC_VALS),
        (0x10, &AC_LUMA_BITS, &AC_LUMA_VALS),
        (0x01, &DC_CHROMA_BITS, &DC_VALS),
        (0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALS),
    ];
    let body: usize = tables.iter().map(|(_, _, v)| 17 + v.len()).sum();
    let mut out = vec![0xFF, DHT];
    out.extend_from_slice(&((body + 2) as u16).to_be_bytes());
    for (class_id, bits, vals) in tables {
        out.push(class_id);
        out.extend_from_slice(bits);
        out.extend_from_slice(vals);
    }
    out
}

#[rustfmt::skip]
const AC_LUMA_VALS: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

#[rustfmt::skip]
const AC_CHROMA_VALS: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

/// Sets the JFIF density to `dpi` dots per inch, adding a JFIF APP0 segment after SOI when the
/// file has none. Leaves unparseable input alone.
pub fn set_density(jpeg: &mut Vec<u8>, dpi: u16) {
    let Some(segments) = header_segments(jpeg) else {
        return;
    };
    if let Some(app0) = segments.first().filter(|s| s.marker == APP0) {
        let body = &jpeg[app0.start + 4..app0.end];
        if body.len() >= 12 && &body[..5] == b"JFIF\0" {
            let at = app0.start + 4 + 7;
            jpeg[at] = 1; // units: dots per inch
            jpeg[at + 1..at + 3].copy_from_slice(&dpi.to_be_bytes());
            jpeg[at + 3..at + 5].copy_from_slice(&dpi.to_be_bytes());
            return;
        }
    }
    let mut app0 = vec![0xFF, APP0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 1];
    app0.extend_from_slice(&dpi.to_be_bytes());
    app0.extend_from_slice(&dpi.to_be_bytes());
    app0.extend_from_slice(&[0, 0]);
    jpeg.splice(2..2, app0);
}

/// The JFIF density `(units, x, y)` when present (units 1 = dpi).
pub fn density(jpeg: &[u8]) -> Option<(u8, u16, u16)> {
    let segments = header_segments(jpeg)?;
    let app0 = segments.iter().find(|s| s.marker == APP0)?;
    let body = &jpeg[app0.start + 4..app0.end];
    (body.len() >= 12 && &body[..5] == b"JFIF\0").then(|| {
        (
            body[7],
            u16::from_be_bytes([body[8], body[9]]),
            u16::from_be_bytes([body[10], body[11]]),
        )
    })
}

/// Width, height and component count from the frame header (SOF).
pub fn frame_info(jpeg: &[u8]) -> Option<(u16, u16, u8)> {
    let segments = header_segments(jpeg)?;
    let sof = segments
        .iter()
        .find(|s| matches!(s.marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF))?;
    let b = &jpeg[sof.start + 4..sof.end];
    (b.len() >= 6).then(|| {
        (
            u16::from_be_bytes([b[3], b[4]]),
            u16::from_be_bytes([b[1], b[2]]),
            b[5],
        )
    })
}

/// Joins baseline JPEGs of horizontal strips (same width, tables and sampling; every strip but
/// the last `interval_rows` pixel rows high, a multiple of the MCU height; encoded without
/// restart markers) into one JPEG of `total_height` rows: the first strip's header with the
/// height set and a DRI segment of one strip's MCUs, then each strip's entropy-coded data
/// followed by RSTn. `None` when the strips do not share a header.
pub fn join_strips(strips: &[Vec<u8>], total_height: u16, restart_mcus: u16) -> Option<Vec<u8>> {
    let first = strips.first()?;
    if strips.len() == 1 {
        return Some(first.clone());
    }
    let mut parts = Vec::with_capacity(strips.len());
    for s in strips {
        let segs = header_segments(s)?;
        let sos = *segs.last()?;
        if s.len() < sos.end + 2 || s[s.len() - 2..] != [0xFF, EOI] {
            return None;
        }
        // Restart markers or DRI in a strip would break the numbering.
        if segs.iter().any(|g| g.marker == DRI) {
            return None;
        }
        parts.push((segs, &s[sos.end..s.len() - 2]));
    }
    // Every header must equal the first except for the SOF height.
    let sof_of = |segs: &[Segment]| segs.iter().copied().find(|g| is_huffman_sof(g.marker));
    let (segs0, _) = &parts[0];
    let sof0 = sof_of(segs0)?;
    if sof0.end - sof0.start < 9 {
        return None;
    }
    let head0 = &first[..segs0.last()?.end];
    for (s, (segs, _)) in strips.iter().zip(&parts).skip(1) {
        let head = &s[..segs.last()?.end];
        let sof = sof_of(segs)?;
        if head.len() != head0.len() || sof.start != sof0.start {
            return None;
        }
        let height_at = sof.start + 5;
        let differs = head
            .iter()
            .zip(head0)
            .enumerate()
            .any(|(i, (a, b))| a != b && i != height_at && i != height_at + 1);
        if differs {
            return None;
        }
    }
    let sos_start = segs0.last()?.start;
    let total: usize = parts.iter().map(|(_, d)| d.len() + 2).sum();
    let mut out = Vec::with_capacity(head0.len() + 6 + total + 2);
    out.extend_from_slice(&first[..sos_start]);
    out[sof0.start + 5..sof0.start + 7].copy_from_slice(&total_height.to_be_bytes());
    out.extend_from_slice(&[0xFF, DRI, 0, 4]);
    out.extend_from_slice(&restart_mcus.to_be_bytes());
    out.extend_from_slice(&first[sos_start..segs0.last()?.end]);
    for (i, (_, data)) in parts.iter().enumerate() {
        out.extend_from_slice(data);
        if i + 1 < parts.len() {
            out.extend_from_slice(&[0xFF, 0xD0 + (i % 8) as u8]);
        }
    }
    out.extend_from_slice(&[0xFF, EOI]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_dht_is_the_420_byte_segment() {
        let dht = standard_dht();
        assert_eq!(dht.len(), 420);
        assert_eq!(&dht[..4], &[0xFF, 0xC4, 0x01, 0xA2]);
    }

    #[test]
    fn malformed_input_is_returned_unchanged() {
        for bytes in [
            &b""[..],
            b"\xFF",
            b"\xFF\xD8",
            b"\xFF\xD8\xFF\xC0\xFF\xFF",
            b"GIF89a",
        ] {
            assert!(matches!(ensure_huffman_tables(bytes), Cow::Borrowed(_)));
            let mut v = bytes.to_vec();
            set_density(&mut v, 300);
            assert_eq!(v, bytes);
        }
    }
}
