//! Pages as written by scanimage, checked before anyone else sees them.

/// The file format scanimage writes (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFormat {
    Jpeg,
    Png,
    Tiff,
}

impl PageFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            "tiff" | "tif" => Some(Self::Tiff),
            _ => None,
        }
    }
    /// scanimage's `--format` value.
    pub fn arg(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Tiff => "tiff",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Tiff => "tif",
        }
    }
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Tiff => "image/tiff",
        }
    }
}

/// One scanned page.
#[derive(Clone)]
pub struct Page {
    /// 1-based, in feeder order.
    pub number: u32,
    pub format: PageFormat,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("number", &self.number)
            .field("format", &self.format)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Checks that `bytes` is a whole file of `format`: its signature at the start and its end
/// marker (JPEG EOI, PNG IEND) at the end, so a page cut short by a dying backend is refused.
pub fn check_page(format: PageFormat, bytes: &[u8], max_bytes: u64) -> Result<(), String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if bytes.len() as u64 > max_bytes {
        return Err(format!(
            "{} bytes is more than the limit of {max_bytes}",
            bytes.len()
        ));
    }
    match format {
        PageFormat::Jpeg => {
            if !bytes.starts_with(&[0xFF, 0xD8]) {
                return Err("not a JPEG (no SOI marker at offset 0)".into());
            }
            // Some encoders pad after EOI; accept zero padding only.
            let end = bytes.iter().rposition(|&b| b != 0).unwrap_or(0);
            if end < 1 || bytes[end - 1..=end] != [0xFF, 0xD9] {
                return Err(format!(
                    "JPEG truncated: no EOI marker at the end ({} bytes)",
                    bytes.len()
                ));
            }
        }
        PageFormat::Png => {
            const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
            if !bytes.starts_with(&SIGNATURE) {
                return Err("not a PNG (bad signature at offset 0)".into());
            }
            // The last chunk: length 0, "IEND", CRC.
            if bytes.len() < 20 || &bytes[bytes.len() - 8..bytes.len() - 4] != b"IEND" {
                return Err(format!(
                    "PNG truncated: no IEND chunk at the end ({} bytes)",
                    bytes.len()
                ));
            }
        }
        PageFormat::Tiff => {
            if !(bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*")) {
                return Err("not a TIFF (bad byte-order header at offset 0)".into());
            }
            if bytes.len() < 16 {
                return Err(format!("TIFF truncated ({} bytes)", bytes.len()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_files_pass_and_cut_ones_fail() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 0xFF, 0xD9, 0, 0];
        assert!(check_page(PageFormat::Jpeg, &jpeg, 100).is_ok());
        let err = check_page(PageFormat::Jpeg, &jpeg[..6], 100).unwrap_err();
        assert!(err.contains("EOI"), "{err}");
        assert!(
            check_page(PageFormat::Jpeg, &jpeg, 5)
                .unwrap_err()
                .contains("limit")
        );
        assert!(check_page(PageFormat::Jpeg, &[], 5).is_err());
        assert!(check_page(PageFormat::Jpeg, &[0xFF], 5).is_err());
        assert!(check_page(PageFormat::Jpeg, &[0, 0, 0], 5).is_err());
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        png.extend_from_slice(&[0, 0, 0, 0]);
        png.extend_from_slice(b"IEND");
        png.extend_from_slice(&[0xAE, 0x42, 0x60, 0x82]);
        assert!(check_page(PageFormat::Png, &png, 100).is_ok());
        assert!(check_page(PageFormat::Png, &png[..png.len() - 1], 100).is_err());
        assert!(check_page(PageFormat::Tiff, b"MM\0*\0\0\0\x08\0\0\0\0\0\0\0\0", 100).is_ok());
        assert!(check_page(PageFormat::Tiff, b"MM\0*", 100).is_err());
        assert!(check_page(PageFormat::Tiff, b"P5\n", 100).is_err());
    }
}
