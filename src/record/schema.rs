//! The record payload, schema `countersign.record.v0` (the walking-skeleton shape; the record
//! format issue versions it further). Field names are stable English snake_case; personal data
//! appears only here, inside the signed payload, never in topics, properties or info logs.

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "countersign.record.v0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema: String,
    /// UUIDv7: unique, time-ordered, no personal data.
    pub record_id: String,
    pub station: String,
    pub seq: u64,
    /// `sha256:<hex>` of the previous record's exact wire bytes (None for the first).
    pub prev: Option<String>,
    /// When the card was read (RFC 3339, UTC, milliseconds).
    pub captured_at: String,
    /// When the record was signed and committed.
    pub sealed_at: String,
    pub device: DeviceInfo,
    pub identity: Identity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device family, e.g. `ga467` for SAM ID card readers.
    pub kind: String,
    /// The reader's name in the configuration.
    pub name: String,
    /// The SAM module's 16-byte id, hex, as read from the reader (`12 FF`).
    pub sam_id: Option<String>,
}

/// A code as printed on the card with its meaning; `label` is None for codes outside the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coded {
    pub code: String,
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// `resident`, `foreign_permanent_2017`, `foreign_permanent_2023`, `hk_macau_taiwan`.
    pub card_type: String,
    pub name: Option<String>,
    pub sex: Option<Coded>,
    pub nation: Option<Coded>,
    /// `YYYY-MM-DD` when the card holds a well-formed date, else the card's text unchanged.
    pub birth_date: Option<String>,
    pub address: Option<String>,
    /// Always a string (never a JSON number: ID numbers exceed 2^53 and may end in X).
    pub id_number: Option<String>,
    pub issuer: Option<String>,
    pub valid_from: Option<String>,
    /// A date as above, or `long_term` (长期).
    pub valid_until: Option<String>,
    /// Other fields of the card layout, by name (foreign and HK/Macau/Taiwan cards).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub other_fields: std::collections::BTreeMap<String, String>,
    /// The raw 256-byte text block, base64: the fields above are derived from it.
    pub text_raw: String,
    /// The raw 1024-byte WLT photo, base64 (a proprietary format; decoded by plugins only).
    pub photo_wlt: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_record() -> Record {
        Record {
            schema: SCHEMA.into(),
            record_id: "0193b3c4-0000-7000-8000-000000000001".into(),
            station: "window-01".into(),
            seq: 1,
            prev: None,
            captured_at: "2026-11-27T10:00:00.000Z".into(),
            sealed_at: "2026-11-27T10:00:00.010Z".into(),
            device: DeviceInfo {
                kind: "ga467".into(),
                name: "front".into(),
                sam_id: Some("00".repeat(16)),
            },
            identity: Identity {
                card_type: "resident".into(),
                name: Some("测试甲".into()),
                sex: Some(Coded {
                    code: "1".into(),
                    label: Some("male".into()),
                }),
                nation: Some(Coded {
                    code: "01".into(),
                    label: Some("汉".into()),
                }),
                birth_date: Some("1949-12-31".into()),
                address: Some("北京市东城区测试路1号".into()),
                id_number: Some("11010519491231002X".into()),
                issuer: Some("北京市公安局东城分局".into()),
                valid_from: Some("2010-01-01".into()),
                valid_until: Some("long_term".into()),
                other_fields: Default::default(),
                text_raw: String::new(),
                photo_wlt: String::new(),
            },
        }
    }
}
