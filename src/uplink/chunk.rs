//! The blob chunk protocol (documented for integrators in `docs/uplink-protocol.md`).
//!
//! A blob's wire form (bytes, opaque here) goes to `countersign/v1/<station>/blobs/<blob_id>` in
//! chunks of at most `chunk_bytes`, QoS 1, in order, before the record that binds the blob. Each
//! chunk carries MQTT 5 user properties: `record_id`, `blob_id`, `offset` (of this chunk in the
//! wire form), `size` (of the whole wire form), `chunk_sha256` (hex, of this payload), `sha256`
//! (`sha256:<hex>` of the whole wire form) and `part` (`n/m`, for people reading broker logs).
//! A transfer starts at the case system's last reported progress, so after a disconnect it
//! resumes there instead of at 0; chunks may repeat, and a consumer keeps them by offset.

use rumqttc::v5::mqttbytes::v5::PublishProperties;
use sha2::{Digest, Sha256};

/// A blob being sent: its wire bytes and where the next chunk starts.
pub struct BlobCursor {
    pub record_id: String,
    pub blob_id: String,
    wire: Vec<u8>,
    sha256: String,
    next: usize,
    sent_any: bool,
}

/// One chunk message, ready to publish.
pub struct Chunk {
    pub payload: Vec<u8>,
    pub properties: PublishProperties,
    /// Where the next chunk starts once this one is handed to the connection.
    end: usize,
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

impl BlobCursor {
    /// `resume_at` is the case system's reported progress; past the end means "all held", and a
    /// final chunk is still sent so the case system can complete a transfer it lost track of.
    pub fn new(record_id: String, blob_id: String, wire: Vec<u8>, resume_at: u64) -> BlobCursor {
        let sha256 = format!("sha256:{}", hex(&Sha256::digest(&wire)));
        let next = usize::try_from(resume_at)
            .unwrap_or(usize::MAX)
            .min(wire.len());
        BlobCursor {
            record_id,
            blob_id,
            wire,
            sha256,
            next,
            sent_any: false,
        }
    }

    pub fn done(&self) -> bool {
        self.sent_any && self.next >= self.wire.len()
    }

    /// The next chunk, or None when the blob was sent completely. The cursor moves on only on
    /// [`BlobCursor::commit`], so a chunk the connection did not take is built again.
    pub fn peek(&self, chunk_bytes: usize) -> Option<Chunk> {
        let size = self.wire.len();
        if self.done() {
            return None;
        }
        let chunk_bytes = chunk_bytes.max(1);
        // A blob the case system already holds entirely still gets its last chunk once.
        let start = if self.next >= size {
            size.saturating_sub(1) / chunk_bytes * chunk_bytes
        } else {
            self.next
        };
        let end = (start + chunk_bytes).min(size);
        let payload = self.wire[start..end].to_vec();
        let parts = size.div_ceil(chunk_bytes).max(1);
        let part = start / chunk_bytes + 1;
        let properties = PublishProperties {
            content_type: Some("application/octet-stream".into()),
            user_properties: vec![
                ("record_id".into(), self.record_id.clone()),
                ("blob_id".into(), self.blob_id.clone()),
                ("offset".into(), start.to_string()),
                ("size".into(), size.to_string()),
                ("chunk_sha256".into(), hex(&Sha256::digest(&payload))),
                ("sha256".into(), self.sha256.clone()),
                ("part".into(), format!("{part}/{parts}")),
            ],
            ..Default::default()
        };
        Some(Chunk {
            payload,
            properties,
            end,
        })
    }

    pub fn commit(&mut self, chunk: &Chunk) {
        self.next = chunk.end;
        self.sent_any = true;
    }

    /// Test helper and simple loops: peek and commit.
    pub fn next_chunk(&mut self, chunk_bytes: usize) -> Option<Chunk> {
        let chunk = self.peek(chunk_bytes)?;
        self.commit(&chunk);
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop<'a>(c: &'a Chunk, key: &str) -> &'a str {
        c.properties
            .user_properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn chunks_cover_the_blob_and_resume_where_told() {
        let wire: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
        let mut cursor = BlobCursor::new("r".into(), "b".into(), wire.clone(), 0);
        let mut joined = Vec::new();
        let mut offsets = Vec::new();
        while let Some(c) = cursor.next_chunk(1000) {
            assert_eq!(prop(&c, "size"), "2500");
            assert_eq!(prop(&c, "chunk_sha256"), hex(&Sha256::digest(&c.payload)));
            offsets.push(prop(&c, "offset").to_string());
            joined.extend_from_slice(&c.payload);
        }
        assert_eq!(joined, wire);
        assert_eq!(offsets, ["0", "1000", "2000"]);

        let mut resumed = BlobCursor::new("r".into(), "b".into(), wire.clone(), 1500);
        let first = resumed.next_chunk(1000).unwrap();
        assert_eq!(prop(&first, "offset"), "1500");
        assert_eq!(first.payload, &wire[1500..2500]);
        assert!(resumed.next_chunk(1000).is_none());

        // Everything held already: the last chunk goes once more so the transfer can complete.
        let mut held = BlobCursor::new("r".into(), "b".into(), wire.clone(), 99_999);
        let last = held.next_chunk(1000).unwrap();
        assert_eq!(prop(&last, "offset"), "2000");
        assert_eq!(prop(&last, "part"), "3/3");
        assert!(held.next_chunk(1000).is_none());
    }

    #[test]
    fn an_empty_blob_is_one_empty_chunk() {
        let mut cursor = BlobCursor::new("r".into(), "b".into(), Vec::new(), 0);
        let c = cursor.next_chunk(1000).unwrap();
        assert!(c.payload.is_empty());
        assert_eq!(prop(&c, "size"), "0");
        assert!(cursor.next_chunk(1000).is_none());
    }
}
