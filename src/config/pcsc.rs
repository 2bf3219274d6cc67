//! `[pcsc]`: PC/SC contactless readers for travel documents (ePassports, exit-entry permits).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::{Bounded, DeviceName};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PcscConfig {
    /// The readers to use, by name: `[pcsc.readers.counter]`. Records name the reader by it.
    #[serde(default)]
    pub readers: BTreeMap<DeviceName, PcscReaderConfig>,
    /// Trusted CSCA certificates for passive authentication: PEM files, DER certificates or ICAO
    /// master lists. Without any, the chain check of every document is `unknown`.
    #[serde(default)]
    pub csca_files: Vec<PathBuf>,
    /// A directory where a case-system command (or a clerk's tool) drops the MRZ of the document
    /// about to be presented, one file per document (`*.mrz`: the MRZ text, or the three lines
    /// document number, birth date, expiry date). The file is taken (deleted) and the next card
    /// on a configured reader is read with it. Until case sessions land, this is the daemon's MRZ
    /// source; `countersign read-document` reads without the daemon.
    #[serde(default)]
    pub mrz_inbox: Option<PathBuf>,
    /// How long an MRZ from the inbox waits for its card.
    #[serde(default = "default_ttl")]
    pub mrz_ttl_secs: Bounded<1, 3600>,
    /// READ BINARY block size under secure messaging (223 = 0xDF fits 3DES and AES).
    #[serde(default = "default_block")]
    pub block_size: Bounded<16, 223>,
    /// Ask for Active Authentication's answer (about 283 bytes for RSA-2048 under secure
    /// messaging) with an extended Le in one exchange. Off (default), a short Le and GET
    /// RESPONSE pieces, which every chip supports; some (Chinese passports) answer nothing to an
    /// extended Le.
    #[serde(default)]
    pub extended_length: bool,
}

/// `[pcsc.readers.<name>]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PcscReaderConfig {
    /// A substring of the PC/SC reader name (names carry slot suffixes: "ACS ACR1252 Dual Reader
    /// [ACR1252 Dual Reader PICC] 00 00").
    #[serde(rename = "match")]
    pub matches: String,
}

fn default_ttl() -> Bounded<1, 3600> {
    Bounded(300)
}
fn default_block() -> Bounded<16, 223> {
    Bounded(223)
}

impl PcscConfig {
    /// The configured reader whose `match` is in `reader` (a PC/SC name).
    pub fn reader_for(&self, reader: &str) -> Option<&DeviceName> {
        self.readers
            .iter()
            .find(|(_, r)| reader.contains(&r.matches))
            .map(|(n, _)| n)
    }

    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        for (name, reader) in &self.readers {
            if reader.matches.trim().is_empty() {
                return Err((
                    format!("pcsc.readers.{name}.match"),
                    "must not be empty".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PcscConfig, String> {
        let de = toml::de::Deserializer::parse(text).map_err(|e| e.message().to_string())?;
        serde_path_to_error::deserialize(de)
            .map_err(|e| format!("{}: {}", e.path(), e.inner().message()))
    }

    #[test]
    fn readers_csca_and_inbox() {
        let c = parse(
            "csca_files = [\"/etc/countersign/csca.pem\"]\nmrz_inbox = \"/run/mrz\"\n[readers.counter]\nmatch = \"Virtual PCD 00 00\"\n",
        )
        .unwrap();
        assert_eq!(
            c.reader_for("Virtual PCD 00 00").map(|n| n.as_str()),
            Some("counter")
        );
        assert_eq!(c.reader_for("Virtual PCD 00 01"), None);
        assert_eq!(c.mrz_ttl_secs.get(), 300);
        assert_eq!(c.block_size.get(), 223);
        assert!(
            parse("[readers.x]\nname = \"y\"\n")
                .unwrap_err()
                .contains("readers.x")
        );
        assert!(
            parse("block_size = 300\n")
                .unwrap_err()
                .contains("block_size")
        );
    }
}
