//! Errors of the imaging pipeline. Every input byte is untrusted: a bad image is an error with a
//! reason, never a panic.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ImagingError {
    /// Neither JPEG, PNG nor TIFF by its first bytes.
    #[error("not a JPEG, PNG or TIFF image (first bytes {0})")]
    UnknownFormat(String),
    /// The image could not be decoded (truncated, corrupt, unsupported variant).
    #[error("cannot decode {format} image: {reason}")]
    Decode {
        format: &'static str,
        reason: String,
    },
    /// Dimensions outside what the pipeline accepts (zero, or more pixels than the limit).
    #[error(
        "image of {width}x{height} pixels is outside the accepted size (1 to {max} megapixels)"
    )]
    Size { width: u64, height: u64, max: u64 },
    /// The encoder failed (should not happen on valid dimensions).
    #[error("cannot encode JPEG: {0}")]
    Encode(String),
    /// Options that cannot work (dpi 0, quality 0).
    #[error("invalid option: {0}")]
    Options(String),
    /// The pipeline panicked on this input (a bug; the caller caught it and kept the page).
    #[error("the imaging pipeline failed on this image ({0})")]
    Panicked(String),
}

pub(crate) fn decode_err(format: &'static str, reason: impl std::fmt::Display) -> ImagingError {
    ImagingError::Decode {
        format,
        reason: reason.to_string(),
    }
}
