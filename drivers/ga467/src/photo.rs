//! Optional decoding of the 1024-byte WLT face photo through a vendor library loaded at run time
//! (reference §8). No open decoder exists; every known one is a closed binary. The raw WLT is
//! always what goes into the record; a decoded BMP is an extra, and any failure here leaves the
//! read intact.
//!
//! Supported call signatures (choose the one the library exports):
//!
//! | [`Signature`] | C prototype | Called as |
//! |---|---|---|
//! | `unpack` | `int unpack(const unsigned char *wlt, unsigned char *out, int flag)` | `unpack(wlt, out, 1)` (termb / DLL_File style) |
//! | `hxgc_wlt2bmp` | `int hxgc_Wlt2Bmp(const unsigned char *wlt, unsigned char *bmp, int flag)` | `hxgc_Wlt2Bmp(wlt, bmp, 0)` (Android libwlt2bmp style) |
//!
//! Both must return 1 on success [UNVERIFIED for hxgc_Wlt2Bmp]. The output buffer handed over is
//! 64 KiB (far beyond any known output). It is accepted as a finished 38862-byte BMP when it
//! starts with `BM` and declares that size; otherwise its first 38556 bytes are taken as raw BGR
//! rows in BMP (bottom-up) order and wrapped in a BMP header. Licence-bound decoders
//! (`CV_InitializeEx`/`CV_Decode`) and file-based ones (`GetBmp`) are not supported.
//!
//! A library runs in this process: one that crashes takes the process with it. Configure only
//! libraries you trust, from root-owned paths.

#![allow(unsafe_code)]

use std::ffi::c_int;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::card::PHOTO_LEN;

/// Image width in pixels.
pub const WIDTH: usize = 102;
/// Image height in pixels.
pub const HEIGHT: usize = 126;
/// Raw 24-bit BGR without row padding: 102 × 126 × 3.
pub const RAW_LEN: usize = WIDTH * HEIGHT * 3;
/// Bytes per BMP row: 306 padded to a multiple of 4.
pub const BMP_ROW: usize = 308;
/// BMP file header (14) + BITMAPINFOHEADER (40).
pub const BMP_HEADER_LEN: usize = 54;
/// The whole BMP file: 38862 bytes.
pub const BMP_LEN: usize = BMP_HEADER_LEN + BMP_ROW * HEIGHT;
/// The output buffer handed to the library.
const OUT_CAPACITY: usize = 64 * 1024;

/// Which known call signature the library exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signature {
    /// `int unpack(wlt, out, 1)`.
    Unpack,
    /// `int hxgc_Wlt2Bmp(wlt, bmp, 0)`.
    HxgcWlt2Bmp,
}

impl Signature {
    /// Every supported signature.
    pub const ALL: [Signature; 2] = [Self::Unpack, Self::HxgcWlt2Bmp];

    /// The configuration name: `unpack`, `hxgc_wlt2bmp`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Unpack => "unpack",
            Self::HxgcWlt2Bmp => "hxgc_wlt2bmp",
        }
    }

    /// The inverse of [`Signature::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn symbol(&self) -> &'static [u8] {
        match self {
            Self::Unpack => b"unpack\0",
            Self::HxgcWlt2Bmp => b"hxgc_Wlt2Bmp\0",
        }
    }

    fn flag(&self) -> c_int {
        match self {
            Self::Unpack => 1,
            Self::HxgcWlt2Bmp => 0,
        }
    }
}

/// Why a decoder could not be loaded or a photo decoded.
#[derive(Debug, Error)]
pub enum PhotoError {
    /// The library could not be loaded.
    #[error("cannot load WLT decoder library {}: {source}", path.display())]
    Load {
        /// Path as configured.
        path: PathBuf,
        /// What the dynamic loader said.
        #[source]
        source: libloading::Error,
    },
    /// The library does not export the configured function.
    #[error(
        "WLT decoder library {} does not export {symbol} (signature {signature})",
        path.display()
    )]
    Symbol {
        /// Path as configured.
        path: PathBuf,
        /// The function looked for.
        symbol: &'static str,
        /// The configured signature name.
        signature: &'static str,
        /// What the dynamic loader said.
        #[source]
        source: libloading::Error,
    },
    /// The input is not a 1024-byte WLT photo.
    #[error("WLT photo is {len} bytes, expected {PHOTO_LEN}")]
    WrongInput {
        /// Bytes given.
        len: usize,
    },
    /// The library reported failure.
    #[error("WLT decoder {symbol} returned {code} (1 means success)")]
    Failed {
        /// The function called.
        symbol: &'static str,
        /// Its return value.
        code: i32,
    },
}

type DecodeFn = unsafe extern "C" fn(*const u8, *mut u8, c_int) -> c_int;

/// A loaded vendor decoder.
pub struct WltDecoder {
    signature: Signature,
    decode: DecodeFn,
    path: PathBuf,
    // Keeps the library mapped while `decode` may be called; dropped last.
    _library: libloading::Library,
}

impl std::fmt::Debug for WltDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WltDecoder")
            .field("path", &self.path)
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

impl WltDecoder {
    /// Loads `path` and looks up the function of `signature`.
    pub fn load(path: &Path, signature: Signature) -> Result<Self, PhotoError> {
        // SAFETY: loading a library runs its initialisers. The path comes from the operator's
        // configuration (root-owned file), which is the trust boundary the module docs state.
        let library =
            unsafe { libloading::Library::new(path) }.map_err(|source| PhotoError::Load {
                path: path.to_owned(),
                source,
            })?;
        // SAFETY: the symbol is declared with the prototype documented for this signature; the
        // operator chose the signature for this library. The function pointer is copied out and
        // only used while `library` (stored alongside) keeps the code mapped.
        let decode = unsafe { library.get::<DecodeFn>(signature.symbol()) }
            .map(|symbol| *symbol)
            .map_err(|source| PhotoError::Symbol {
                path: path.to_owned(),
                symbol: symbol_name(signature),
                signature: signature.as_str(),
                source,
            })?;
        Ok(Self {
            signature,
            decode,
            path: path.to_owned(),
            _library: library,
        })
    }

    /// The configured signature.
    pub fn signature(&self) -> Signature {
        self.signature
    }

    /// Decodes a 1024-byte WLT photo into a 38862-byte, 102 × 126, 24-bit BMP.
    pub fn decode(&self, wlt: &[u8]) -> Result<Vec<u8>, PhotoError> {
        if wlt.len() != PHOTO_LEN {
            return Err(PhotoError::WrongInput { len: wlt.len() });
        }
        // Copies: the library gets buffers it may read and write freely, larger than any
        // known output.
        let input = wlt.to_vec();
        let mut out = vec![0u8; OUT_CAPACITY];
        // SAFETY: `decode` has the signature's documented prototype; `input` holds the 1024
        // bytes a WLT decoder reads and `out` 64 KiB, above the 38862 bytes any known decoder
        // writes. Both outlive the call.
        let code =
            unsafe { (self.decode)(input.as_ptr(), out.as_mut_ptr(), self.signature.flag()) };
        if code != 1 {
            return Err(PhotoError::Failed {
                symbol: symbol_name(self.signature),
                code,
            });
        }
        Ok(normalise(&out))
    }
}

fn symbol_name(signature: Signature) -> &'static str {
    match signature {
        Signature::Unpack => "unpack",
        Signature::HxgcWlt2Bmp => "hxgc_Wlt2Bmp",
    }
}

/// A finished BMP as is; otherwise raw BGR rows wrapped in a BMP.
fn normalise(out: &[u8]) -> Vec<u8> {
    let declared = out
        .get(2..6)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes);
    if out.starts_with(b"BM") && declared == Some(BMP_LEN as u32) {
        return out.get(..BMP_LEN).unwrap_or_default().to_vec();
    }
    bmp_from_bgr(out.get(..RAW_LEN).unwrap_or_default())
}

/// Wraps 102 × 126 raw BGR rows (bottom-up, unpadded) in a 24-bit BMP file.
pub fn bmp_from_bgr(raw: &[u8]) -> Vec<u8> {
    let mut bmp = Vec::with_capacity(BMP_LEN);
    let u32le = |v: usize| (v as u32).to_le_bytes();
    bmp.extend_from_slice(b"BM");
    bmp.extend_from_slice(&u32le(BMP_LEN));
    bmp.extend_from_slice(&[0; 4]);
    bmp.extend_from_slice(&u32le(BMP_HEADER_LEN));
    bmp.extend_from_slice(&u32le(40));
    bmp.extend_from_slice(&u32le(WIDTH));
    bmp.extend_from_slice(&u32le(HEIGHT));
    bmp.extend_from_slice(&1u16.to_le_bytes());
    bmp.extend_from_slice(&24u16.to_le_bytes());
    bmp.extend_from_slice(&[0; 4]);
    bmp.extend_from_slice(&u32le(BMP_ROW * HEIGHT));
    bmp.extend_from_slice(&u32le(3780)); // 96 dpi
    bmp.extend_from_slice(&u32le(3780));
    bmp.extend_from_slice(&[0; 8]);
    for row in 0..HEIGHT {
        let start = row * WIDTH * 3;
        let pixels = raw.get(start..start + WIDTH * 3).unwrap_or_default();
        bmp.extend_from_slice(pixels);
        bmp.resize(BMP_HEADER_LEN + (row + 1) * BMP_ROW, 0);
    }
    bmp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmp_layout_matches_the_reference() {
        assert_eq!(RAW_LEN, 38_556);
        assert_eq!(BMP_LEN, 38_862);
        let bmp = bmp_from_bgr(&vec![7u8; RAW_LEN]);
        assert_eq!(bmp.len(), BMP_LEN);
        assert_eq!(&bmp[..2], b"BM");
        assert_eq!(bmp[54..54 + 306], [7u8; 306]);
        assert_eq!(bmp[54 + 306..54 + 308], [0, 0]);
        // A finished BMP passes through; garbage becomes a (black) BMP of the right size.
        let mut out = bmp.clone();
        out.resize(OUT_CAPACITY, 0xEE);
        assert_eq!(normalise(&out), bmp);
        assert_eq!(normalise(&[1, 2, 3]).len(), BMP_LEN);
    }

    #[test]
    fn signature_names() {
        for s in Signature::ALL {
            assert_eq!(Signature::from_name(s.as_str()), Some(s));
        }
        assert_eq!(Signature::from_name("GetBmp"), None);
    }

    #[test]
    fn missing_library_is_an_error_naming_the_path() {
        let err = WltDecoder::load(Path::new("/nonexistent/libwlt.so"), Signature::Unpack)
            .expect_err("no such file");
        assert!(err.to_string().contains("/nonexistent/libwlt.so"), "{err}");
    }
}
