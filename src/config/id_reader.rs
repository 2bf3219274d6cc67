//! `[id_readers.<name>]`: GA 467 ID card SAM readers.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::Bounded;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdReaderConfig {
    /// The serial device; prefer a stable name (`/dev/serial/by-id/...` or a udev symlink).
    pub port: PathBuf,
    /// One of the five reader rates, or `"auto"` to probe them.
    #[serde(default = "default_baud")]
    pub baud: Baud,
    /// How often to look for a card.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_ms: Bounded<50, 10000>,
    /// A card left on the reader is read once; it counts as removed after this many empty polls.
    #[serde(default = "default_rearm")]
    pub rearm_after_empty_polls: Bounded<1, 100>,
    /// Read fingerprints (`30 10`) and keep them in the record.
    #[serde(default)]
    pub fingerprint: bool,
    /// Read the appended address (`30 03`).
    #[serde(default = "default_true")]
    pub appended_address: bool,
    /// Decode the WLT face photo with a vendor library.
    #[serde(default)]
    pub photo_decoder: Option<PhotoDecoderConfig>,
}

/// `[id_readers.<name>.photo_decoder]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoDecoderConfig {
    /// The vendor's shared library.
    pub library: PathBuf,
    /// Which known call signature it exports.
    pub signature: PhotoSignature,
}

/// A WLT decoder call signature (see `ga467::photo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PhotoSignature(pub ga467::photo::Signature);

impl TryFrom<String> for PhotoSignature {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        ga467::photo::Signature::from_name(&value)
            .map(PhotoSignature)
            .ok_or_else(|| {
                let known: Vec<&str> = ga467::photo::Signature::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect();
                format!("must be one of {}; found {value:?}", known.join(", "))
            })
    }
}

impl Serialize for PhotoSignature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

fn default_baud() -> Baud {
    Baud(115200)
}
fn default_poll_interval() -> Bounded<50, 10000> {
    Bounded(500)
}
fn default_rearm() -> Bounded<1, 100> {
    Bounded(2)
}
fn default_true() -> bool {
    true
}

/// The serial speed: a rate GA 467 readers are known to use, or [`Baud::AUTO`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BaudValue")]
pub struct Baud(pub u32);

pub const READER_BAUDS: [u32; 5] = [115200, 57600, 38400, 19200, 9600];

impl Baud {
    /// `baud = "auto"`: probe [`READER_BAUDS`] in order (0 is never a real rate).
    pub const AUTO: Baud = Baud(0);

    /// The fixed rate, or `None` for auto.
    pub fn fixed(self) -> Option<u32> {
        (self != Self::AUTO).then_some(self.0)
    }
}

impl Serialize for Baud {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.fixed() {
            Some(rate) => s.serialize_u32(rate),
            None => s.serialize_str("auto"),
        }
    }
}

/// What the TOML may hold for `baud`.
#[derive(Deserialize)]
#[serde(untagged)]
enum BaudValue {
    Rate(i64),
    Word(String),
}

impl TryFrom<BaudValue> for Baud {
    type Error = String;
    fn try_from(value: BaudValue) -> Result<Self, String> {
        let expected = "must be \"auto\" or one of 115200, 57600, 38400, 19200, 9600";
        match value {
            BaudValue::Word(w) if w == "auto" => Ok(Baud::AUTO),
            BaudValue::Word(w) => Err(format!("{expected}; found {w:?}")),
            BaudValue::Rate(r) => READER_BAUDS
                .iter()
                .find(|b| i64::from(**b) == r)
                .map(|b| Baud(*b))
                .ok_or_else(|| format!("{expected}; found {r}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses one reader table on its own (the rest of the file is covered by `config::tests`).
    /// Errors carry the key and the line/column of the value.
    fn config(reader: &str) -> Result<IdReaderConfig, (String, (usize, usize), String)> {
        let text = format!("port = \"/dev/x\"\n{reader}");
        let de = toml::de::Deserializer::parse(&text)
            .map_err(|e| (String::new(), (0, 0), e.message().to_string()))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let start = inner.span().map_or(0, |s| s.start);
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (key, (line, column), inner.message().to_string())
        })
    }

    #[test]
    fn defaults() {
        let c = config("").unwrap();
        assert_eq!(c.baud, Baud(115200));
        assert_eq!(c.baud.fixed(), Some(115200));
        assert!(!c.fingerprint);
        assert!(c.appended_address);
        assert_eq!(c.photo_decoder, None);
        assert_eq!(c.poll_interval_ms.get(), 500);
        assert_eq!(c.rearm_after_empty_polls.get(), 2);
    }

    #[test]
    fn baud_is_a_known_rate_or_auto() {
        assert_eq!(config("baud = \"auto\"").unwrap().baud, Baud::AUTO);
        assert_eq!(Baud::AUTO.fixed(), None);
        for rate in READER_BAUDS {
            assert_eq!(config(&format!("baud = {rate}")).unwrap().baud, Baud(rate));
        }
        for bad in [
            "baud = \"fast\"",
            "baud = 4800",
            "baud = \"9600\"",
            "baud = 0",
        ] {
            let (key, at, message) = config(bad).unwrap_err();
            assert_eq!(key, "baud", "{bad}: {message}");
            assert!(message.contains("\"auto\""), "{bad}: {message}");
            assert_eq!(at, (2, 8), "{bad}: {message}");
        }
    }

    #[test]
    fn fingerprint_appended_address_and_photo_decoder() {
        let c = config(
            "fingerprint = true\nappended_address = false\n\n[photo_decoder]\nlibrary = \"/opt/vendor/libwlt.so\"\nsignature = \"unpack\"\n",
        )
        .unwrap();
        assert!(c.fingerprint);
        assert!(!c.appended_address);
        assert_eq!(
            c.photo_decoder,
            Some(PhotoDecoderConfig {
                library: PathBuf::from("/opt/vendor/libwlt.so"),
                signature: PhotoSignature(ga467::photo::Signature::Unpack),
            })
        );
        let (key, _, message) =
            config("[photo_decoder]\nlibrary = \"/l.so\"\nsignature = \"GetBmp\"\n").unwrap_err();
        assert_eq!(key, "photo_decoder.signature", "{message}");
        assert!(message.contains("unpack, hxgc_wlt2bmp"), "{message}");
        let (_, _, message) = config("[photo_decoder]\nsignature = \"unpack\"\n").unwrap_err();
        assert!(message.contains("library"), "{message}");
        let (key, _, message) = config("fingerprints = true").unwrap_err();
        assert_eq!(key, "fingerprints", "{message}");
    }
}
