//! The outcome of a chip-authenticity protocol (chip authentication, PACE-CAM, Active
//! Authentication) for a read, as the record reports it: the check's detail starts with
//! [`Authenticity::status`].

/// What a chip-authenticity protocol established. [`crate::ca::ChipAuthentication`] and
/// [`crate::aa::ActiveAuthentication`] are this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticity {
    /// The chip proved it holds the private key of the data group's key, which passive
    /// authentication vouches for: what ran (`ECDH P-256 AES-128`).
    Passed(String),
    /// The chip refused, or its proof does not verify (a possible clone): why.
    Failed(String),
    /// The key's data group (DG14, DG15) is absent, or holds no key for the protocol.
    NotOffered(String),
    /// Offered only in ways countersign does not implement: what.
    NotSupported(String),
    /// The data group, or EF.SOD's signature over its hash, did not pass passive
    /// authentication: the key proves nothing, whatever the chip answered.
    NotTrusted(String),
    /// Not attempted: turned off for this read.
    Skipped(String),
}

impl Authenticity {
    /// `passed`, `failed`, `not_offered`, `not_supported`, `not_trusted`, `skipped`.
    pub fn status(&self) -> &'static str {
        match self {
            Authenticity::Passed(_) => "passed",
            Authenticity::Failed(_) => "failed",
            Authenticity::NotOffered(_) => "not_offered",
            Authenticity::NotSupported(_) => "not_supported",
            Authenticity::NotTrusted(_) => "not_trusted",
            Authenticity::Skipped(_) => "skipped",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Authenticity::Passed(d)
            | Authenticity::Failed(d)
            | Authenticity::NotOffered(d)
            | Authenticity::NotSupported(d)
            | Authenticity::NotTrusted(d)
            | Authenticity::Skipped(d) => d,
        }
    }

    /// A failure the clerk must be warned of (a possible clone, or a key nothing vouches for).
    pub fn is_warning(&self) -> bool {
        matches!(self, Authenticity::Failed(_) | Authenticity::NotTrusted(_))
    }
}

impl std::fmt::Display for Authenticity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status(), self.detail())
    }
}
