//! MQTT topic names. Versioned, one subtree per station, no personal data in any level.

pub const PREFIX: &str = "countersign/v1";

#[derive(Debug, Clone)]
pub struct Topics {
    /// Sealed records, QoS 1, one record per message.
    pub records: String,
    /// The case system's acknowledgements for this station's records (and blob progress).
    pub acks: String,
    /// Prefix of evidence blob chunk topics: `<blobs>/<blob_id>`.
    pub blobs: String,
    /// Retained presence: online/offline, version, devices, outbox depth.
    pub status: String,
    /// The case system's commands (MQTT 5 request/response).
    pub commands: String,
    /// Where responses go when a command names no response topic.
    pub responses: String,
    /// Live events for the clerk's screen (no personal data in clear).
    pub events: String,
}

impl Topics {
    pub fn for_station(station: &str) -> Topics {
        Topics {
            records: format!("{PREFIX}/{station}/records"),
            acks: format!("{PREFIX}/{station}/acks"),
            blobs: format!("{PREFIX}/{station}/blobs"),
            status: format!("{PREFIX}/{station}/status"),
            commands: format!("{PREFIX}/{station}/commands"),
            responses: format!("{PREFIX}/{station}/responses"),
            events: format!("{PREFIX}/{station}/events"),
        }
    }

    pub fn blob(&self, blob_id: &str) -> String {
        format!("{}/{blob_id}", self.blobs)
    }
}

/// The station id in a `countersign/v1/<station>/<leaf>` topic.
pub fn station_of(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
    let (station, _leaf) = rest.split_once('/')?;
    Some(station).filter(|s| !s.is_empty())
}
