"""Reassembly of countersign's blob chunks (docs/uplink-protocol.md), for the test case system.

A blob's wire form arrives on countersign/v1/<station>/blobs/<blob_id> in chunks, each with MQTT 5
user properties record_id, blob_id, offset, size, chunk_sha256 (hex of the payload) and sha256
(sha256:<hex> of the whole wire form). Chunks may repeat or arrive after a gap (a broker restart
lost some); they are kept by offset. The contiguous byte count is reported back as progress so
the station resumes there. Shares no code with countersign.
"""

import hashlib


class BlobAssembler:
    def __init__(self):
        self.partial = {}   # blob_id -> {"size", "sha256", "record_id", "buf", "have", "later"}
        self.complete = {}  # blob_id -> wire bytes (whole-blob hash checked)
        self.rejected_chunks = 0

    def add(self, props: dict, payload: bytes):
        """Takes one chunk. Returns (record_id, blob_id, contiguous bytes held, completed now)
        or None when the message is not a valid chunk."""
        try:
            blob_id = props["blob_id"]
            record_id = props["record_id"]
            offset = int(props["offset"])
            size = int(props["size"])
            whole = props["sha256"]
            if hashlib.sha256(payload).hexdigest() != props["chunk_sha256"]:
                raise ValueError("chunk hash")
            if offset < 0 or size < 0 or offset + len(payload) > size:
                raise ValueError("chunk outside the blob")
        except (KeyError, ValueError):
            self.rejected_chunks += 1
            return None
        if blob_id in self.complete:
            return record_id, blob_id, size, False
        st = self.partial.get(blob_id)
        if st is None or st["size"] != size or st["sha256"] != whole:
            st = {"size": size, "sha256": whole, "record_id": record_id,
                  "buf": bytearray(), "later": {}}
            self.partial[blob_id] = st
        have = len(st["buf"])
        if offset <= have < offset + len(payload):
            st["buf"] += payload[have - offset:]
        elif offset > have:
            st["later"][offset] = payload
        # Chunks that arrived early may now follow on.
        progressed = True
        while progressed:
            progressed = False
            have = len(st["buf"])
            for off in sorted(st["later"]):
                chunk = st["later"][off]
                if off <= have < off + len(chunk):
                    st["buf"] += chunk[have - off:]
                    progressed = True
                if off + len(chunk) <= len(st["buf"]):
                    del st["later"][off]
                if progressed:
                    break
        if len(st["buf"]) == size:
            wire = bytes(st["buf"])
            del self.partial[blob_id]
            if "sha256:" + hashlib.sha256(wire).hexdigest() != whole:
                # Corrupt as a whole: start over (report 0 so the station sends it all again).
                return record_id, blob_id, 0, False
            self.complete[blob_id] = wire
            return record_id, blob_id, size, True
        return record_id, blob_id, len(st["buf"]), False

    def get(self, blob_id):
        return self.complete.get(blob_id)

    def missing(self, blob_ids):
        return [b for b in blob_ids if b not in self.complete]
