//! Readers that do not speak GA 467 frames (reference §10): recognised by shape so that they get
//! one clear "unsupported reader protocol" diagnostic instead of endless retries.
//!
//! * GA preamble with an additive checksum: found by the frame decoder
//!   ([`crate::FrameError::AdditiveChecksum`]).
//! * STX/ETX frames: `02 | len (u16 BE) | … | 03`, where `len` counts either the whole frame or
//!   only the payload between the length field and a one-byte checksum (both shapes are seen).
//! * SW3 21 to standard commands: decided by the reader ([`crate::Reader`]).

/// An STX/ETX frame somewhere in `bytes`, if one is there.
pub fn find_stx_etx(bytes: &[u8]) -> Option<&[u8]> {
    bytes.iter().enumerate().find_map(|(start, b)| {
        if *b != 0x02 {
            return None;
        }
        let rest = bytes.get(start..)?;
        let len = usize::from(u16::from_be_bytes([*rest.get(1)?, *rest.get(2)?]));
        // Whole-frame length, or payload length plus STX, two length bytes, CHK and ETX.
        [len, len + 5].into_iter().find_map(|total| {
            let frame = rest.get(..total)?;
            (total >= 5 && frame.last() == Some(&0x03)).then_some(frame)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::h;

    #[test]
    fn recognises_the_reference_stx_etx_frames() {
        for frame in [
            "02 00 11 03 AA 00 01 02 03 04 05 06 07 08 09 B9 03",
            "02 00 03 32 29 FF E4 03",
            "02 00 02 30 06 36 03",
        ] {
            let bytes = h(frame);
            assert_eq!(find_stx_etx(&bytes), Some(bytes.as_slice()), "{frame}");
            let mut noisy = h("FF 00 13");
            noisy.extend(&bytes);
            assert_eq!(find_stx_etx(&noisy), Some(bytes.as_slice()), "{frame}");
        }
    }

    #[test]
    fn ignores_other_bytes() {
        for bytes in [
            "",
            "02",
            "02 00",
            "02 00 05 01 02",
            "AA AA AA 96 69 00 04 00 00 90 94",
        ] {
            assert_eq!(find_stx_etx(&h(bytes)), None, "{bytes}");
        }
        assert_eq!(find_stx_etx(&[0x02, 0xFF, 0xFF, 0x03]), None);
    }
}
