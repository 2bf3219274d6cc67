//! The blob chunk protocol (documented for integrators in `docs/uplink-protocol.md`).
//!
//! A blob's wire form (bytes, opaque here) goes to `countersign/v1/<station>/blobs/<blob_id>` in
//! chunks of at most `chunk_bytes`, QoS 1, in order, before the record that binds the blob. Each
//! chunk carries MQTT 5 user properties: `record_id`, `blob_id`, `offset` (of this chunk in the
//! wire form), `size` (of the whole wire form), `chunk_sha256` (hex, of this payload), `sha256`
//! (`sha256:<hex>` of the whole wire form) and `part` (`n/m`, for people reading broker logs).
//! A transfer starts at the case system's last reported progress, so after a disconnect it
//! resumes there instead of at 0; chunks may repeat, and a consumer keeps them by offset.

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use sha2::{Digest, Sha256};

/// A blob being sent: its wire bytes and where the next chunk starts.
pub struct BlobCursor {
    pub record_id: String,
    pub blob_id: String,
    wire: Bytes,
    sha256: String,
    next: usize,
    sent_any: bool,
    resumed_at: usize,
    /// Hashes of the chunks from `resumed_at` on, computed up front (off the async runtime).
    planned: Vec<String>,
    chunk_bytes: usize,
}

/// One chunk message, ready to publish.
pub struct Chunk {
    /// A slice of the blob's bytes (no copy).
    pub payload: Bytes,
    pub properties: PublishProperties,
    /// Where the next chunk starts once this one is handed to the connection.
    pub end: usize,
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
    /// `sha256` is the wire hash kept by the outbox (`sha256:<hex>`), computed here when absent.
    pub fn new(
        record_id: String,
        blob_id: String,
        wire: Vec<u8>,
        resume_at: u64,
        sha256: Option<String>,
        chunk_bytes: usize,
    ) -> BlobCursor {
        let sha256 = sha256.unwrap_or_else(|| format!("sha256:{}", hex(&Sha256::digest(&wire))));
        let chunk_bytes = chunk_bytes.max(1);
        let next = usize::try_from(resume_at)
            .unwrap_or(usize::MAX)
            .min(wire.len());
        let planned = wire[next..]
            .chunks(chunk_bytes)
            .map(|c| hex(&Sha256::digest(c)))
            .collect();
        BlobCursor {
            record_id,
            blob_id,
            wire: Bytes::from(wire),
            sha256,
            next,
            sent_any: false,
            resumed_at: next,
            planned,
            chunk_bytes,
        }
    }

    /// Where this transfer started (the case system's progress when the cursor was made).
    pub fn resumed_at(&self) -> usize {
        self.resumed_at
    }

    pub fn size(&self) -> usize {
        self.wire.len()
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
        let payload = self.wire.slice(start..end);
        let parts = size.div_ceil(chunk_bytes).max(1);
        let part = start / chunk_bytes + 1;
        let properties = PublishProperties {
            content_type: Some("application/octet-stream".into()),
            user_properties: vec![
                ("record_id".into(), self.record_id.clone()),
                ("blob_id".into(), self.blob_id.clone()),
                ("offset".into(), start.to_string()),
                ("size".into(), size.to_string()),
                ("chunk_sha256".into(), self.chunk_hash(start, &payload)),
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

    fn chunk_hash(&self, start: usize, payload: &[u8]) -> String {
        let planned = start
            .checked_sub(self.resumed_at)
            .filter(|d| d % self.chunk_bytes == 0 && payload.len() <= self.chunk_bytes)
            .and_then(|d| self.planned.get(d / self.chunk_bytes));
        match planned {
            Some(h) if start + payload.len() == (start + self.chunk_bytes).min(self.wire.len()) => {
                h.clone()
            }
            _ => hex(&Sha256::digest(payload)),
        }
    }

    /// Where the cursor moves once `chunk` is handed to the connection.
    pub fn commit_to(&mut self, end: usize) {
        self.next = end;
        self.sent_any = true;
    }

    pub fn commit(&mut self, chunk: &Chunk) {
        self.commit_to(chunk.end);
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
        let mut cursor = BlobCursor::new("r".into(), "b".into(), wire.clone(), 0, None, 1000);
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
        let whole = format!("sha256:{}", hex(&Sha256::digest(&wire)));
        let first = BlobCursor::new("r".into(), "b".into(), wire.clone(), 0, None, 1000)
            .next_chunk(1000)
            .unwrap();
        assert_eq!(prop(&first, "sha256"), whole, "computed when not kept");
        let kept = BlobCursor::new(
            "r".into(),
            "b".into(),
            wire.clone(),
            0,
            Some(whole.clone()),
            1000,
        )
        .next_chunk(1000)
        .unwrap();
        assert_eq!(prop(&kept, "sha256"), whole, "the kept hash is used");

        let mut resumed = BlobCursor::new("r".into(), "b".into(), wire.clone(), 1500, None, 1000);
        let first = resumed.next_chunk(1000).unwrap();
        assert_eq!(prop(&first, "offset"), "1500");
        assert_eq!(first.payload, &wire[1500..2500]);
        assert!(resumed.next_chunk(1000).is_none());

        // Everything held already: the last chunk goes once more so the transfer can complete.
        let mut held = BlobCursor::new("r".into(), "b".into(), wire.clone(), 99_999, None, 1000);
        let last = held.next_chunk(1000).unwrap();
        assert_eq!(prop(&last, "offset"), "2000");
        assert_eq!(prop(&last, "part"), "3/3");
        assert!(held.next_chunk(1000).is_none());
    }

    #[test]
    fn an_empty_blob_is_one_empty_chunk() {
        let mut cursor = BlobCursor::new("r".into(), "b".into(), Vec::new(), 0, None, 1000);
        let c = cursor.next_chunk(1000).unwrap();
        assert!(c.payload.is_empty());
        assert_eq!(prop(&c, "size"), "0");
        assert!(cursor.next_chunk(1000).is_none());
    }
}
