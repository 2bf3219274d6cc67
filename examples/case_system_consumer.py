#!/usr/bin/env python3
"""Reference consumer for case-system integrators: receives a countersign station's records over
MQTT 5, reassembles evidence blobs from their chunks, decrypts (JWE) and verifies (JWS) every
record, checks the hash chain, stores everything to a directory, and acknowledges.

It follows docs/uplink-protocol.md and shares no code with countersign. Requirements:
    pip install paho-mqtt==2.2.0 joserfc==1.8.0
    pip install gmssl==3.2.2     (only to sign answers with an SM2 key, the gm profile)

Usage:
    case_system_consumer.py --port 8883 --station window-01 --station-key station.pub.jwk \\
        --decrypt-key case-system.jwk --sign-key acks/station.jwk --out /srv/records \\
        [--tls-ca ca.pem ...]

--sign-key is the case system's private signing key for its answers (receipts), a JWK as
`countersign keygen --out acks` writes it (acks/station.jwk; `--alg p256` or `--alg sm2` for
P-256 or SM2; a gm-profile station accepts only SM2). The station trusts its public part,
acks/station.pub.jwk, listed in its `[acks] trusted_keys` (or `[commands] trusted_keys`).
--unsigned-acks instead sends the old unsigned JSON answers: only for stations configured with
`[acks] accept_unsigned = true` (anyone who may publish on the acks topic can then take records
out of the station). Exactly one of the two must be given.

What it stores, under OUT/<station>/:
    <seq>-<record_id>.<jwe|jws>   the record exactly as received (the chain hashes these bytes)
    <seq>-<record_id>.json        the verified record (JSON)
    blobs/<blob_id>               each blob's plaintext, checked against the record's manifest
    chain.json                    the last stored sequence number and the hash of its wire bytes
Files are written to a temporary name, fsynced and renamed; the ack is sent only after that.

Messages:
  * countersign/v1/<station>/blobs/<blob_id>: chunks of the blob's wire form, with user
    properties record_id, blob_id, offset, size, chunk_sha256, sha256. Progress is acknowledged
    (status "progress", next_offset N) so an interrupted transfer resumes at N.
  * countersign/v1/<station>/records: the record (compact JWE around a compact JWS, or a plain
    JWS). It is stored once its blobs are complete, then acknowledged (status "stored"); a record
    that fails verification is answered with status "rejected" and a reason. Duplicates are
    acknowledged again.
  * countersign/v1/<station>/acks (QoS 1): the answers. With --sign-key each is a signed receipt,
    a compact JWS (content type application/jose) with the protected header
    {"alg": "EdDSA" | "ES256" | "SM2", "kid": <RFC 7638 thumbprint of the key>,
     "typ": "vnd.countersign.ack+jws"} over exactly one of
      {"station", "record_id", "status": "stored", "record_sha256", "iat"}
      {"station", "record_id", "status": "rejected", "reason" (<= 256 bytes), "record_sha256", "iat"}
      {"station", "record_id", "blob_id", "status": "progress", "next_offset", "blob_sha256", "iat"}
    record_sha256 is "sha256:<hex>" of the record message's exact payload bytes, blob_sha256 the
    `sha256` user property of the blob's chunks, iat the signing time (unix seconds). The hash
    binds the answer to those bytes: it cannot be replayed onto another record. SM2 is
    SM3withSM2 with user id 1234567812345678, signature r||s (docs/record-format.md).
    With --unsigned-acks: {"record_id", "status"[, "reason"]} and
    {"record_id", "blob_id", "status": "progress", "next_offset"}, as JSON.
Prints one JSON line per outcome on stdout ({"event": "stored" | "rejected" | "subscribed", ...}).
"""

import argparse
import base64
import hashlib
import json
import os
import pathlib
import secrets
import ssl
import sys
import time
import warnings

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from joserfc import jwe, jws
from joserfc.jwk import import_key

# Receipts use the alg "EdDSA" (as countersign's records do); joserfc warns that RFC 9864 prefers
# "Ed25519" on every use.
warnings.filterwarnings("ignore", message="EdDSA is deprecated")

ACK_TYP = "vnd.countersign.ack+jws"
MAX_REASON = 256  # bytes of a rejection reason a station keeps
JWS_ALGS = ["EdDSA", "Ed25519", "ES256"]
JWE_ALGS = ["ECDH-ES+A256KW", "A256GCM"]
# joserfc refuses ciphertexts over 64 KiB by default; scanned pages are megabytes.
JWE_REGISTRY = jwe.JWERegistry(algorithms=JWE_ALGS)
JWE_REGISTRY.max_ciphertext_length = 512 * 1024 * 1024


def emit(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def write_atomic(path: pathlib.Path, data: bytes):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def sha256_ref(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cut(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, cut on a character boundary."""
    return text.encode()[:limit].decode("utf-8", "ignore")


class ReceiptSigner:
    """Signs answers as receipts (compact JWS) with the case system's key: Ed25519 (EdDSA) and
    P-256 (ES256) with joserfc, SM2 (SM3withSM2) with gmssl."""

    def __init__(self, path: str):
        try:
            jwk = json.loads(pathlib.Path(path).read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"--sign-key {path}: cannot read the JWK: {e}") from e
        kty, crv = jwk.get("kty"), jwk.get("crv")
        self.alg = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256",
                    ("EC", "SM2"): "SM2"}.get((kty, crv))
        if self.alg is None:
            raise SystemExit(f"--sign-key {path}: kty {kty!r} crv {crv!r} cannot sign receipts "
                             "(want Ed25519, P-256 or SM2)")
        if "d" not in jwk:
            raise SystemExit(f"--sign-key {path}: no private part \"d\" (give station.jwk, not "
                             "station.pub.jwk)")
        if self.alg == "SM2":
            try:
                from gmssl import sm2
            except ImportError as e:
                raise SystemExit(f"--sign-key {path} is an SM2 key: signing it needs the gmssl "
                                 "package (pip install gmssl==3.2.2)") from e
            self.sm2 = sm2
        try:
            # RFC 7638: the required public members in lexicographic order, no whitespace.
            names = ("crv", "kty", "x") if kty == "OKP" else ("crv", "kty", "x", "y")
            canonical = json.dumps({n: jwk[n] for n in names}, separators=(",", ":"), sort_keys=True)
            self.kid = b64u(hashlib.sha256(canonical.encode()).digest())
            if self.alg == "SM2":
                x, y, d = b64d(jwk["x"]), b64d(jwk["y"]), b64d(jwk["d"])
                if len(x) != 32 or len(y) != 32 or len(d) != 32:
                    raise ValueError("SM2 x, y and d must be 32 bytes each")
                point = x.hex() + y.hex()
                self.signer = sm2.CryptSM2(private_key=d.hex(), public_key=point)
                # gmssl's constructor strips every leading "0"/"4" digit of a point starting
                # "04" (meant for the 04 prefix), which corrupts an x whose first byte is 04.
                self.signer.public_key = point
            else:
                self.key = import_key(jwk)
        except (KeyError, ValueError) as e:
            raise SystemExit(f"--sign-key {path}: not a valid {crv} key: {e!r}") from e
        self.header = {"alg": self.alg, "kid": self.kid, "typ": ACK_TYP}

    def sign(self, payload: dict) -> str:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        if self.alg != "SM2":
            return jws.serialize_compact(self.header, body, self.key, algorithms=[self.alg])
        signing_input = b64u(json.dumps(self.header, separators=(",", ":")).encode()) + "." + b64u(body)
        n = int(self.sm2.default_ecc_table["n"], 16)
        while True:
            # gmssl's own nonce comes from `random` (not a CSPRNG): pass k from `secrets`.
            k = 1 + secrets.randbelow(n - 1)
            sig = self.signer.sign_with_sm3(signing_input.encode("ascii"), "%064x" % k)
            if sig:  # None for the rare k that gives r = 0 or s = 0
                return signing_input + "." + b64u(bytes.fromhex(sig))


class Chunks:
    """Blob reassembly by offset; tolerates repeats, gaps and resumed transfers."""

    def __init__(self):
        self.partial = {}
        self.complete = {}

    def add(self, props, payload):
        try:
            blob_id, record_id = props["blob_id"], props["record_id"]
            offset, size, whole = int(props["offset"]), int(props["size"]), props["sha256"]
            if hashlib.sha256(payload).hexdigest() != props["chunk_sha256"]:
                return None
            if offset < 0 or offset + len(payload) > size:
                return None
        except (KeyError, ValueError):
            return None
        if blob_id in self.complete:
            return record_id, blob_id, size
        st = self.partial.get(blob_id)
        if st is None or st["size"] != size or st["sha256"] != whole:
            st = self.partial[blob_id] = {"size": size, "sha256": whole, "buf": bytearray(), "later": {}}
        st["later"][offset] = payload
        grew = True
        while grew:
            grew = False
            have = len(st["buf"])
            for off, chunk in sorted(st["later"].items()):
                if off + len(chunk) <= have:
                    del st["later"][off]
                elif off <= have:
                    st["buf"] += chunk[have - off:]
                    del st["later"][off]
                    grew = True
                    break
        if len(st["buf"]) == size:
            data = bytes(st["buf"])
            del self.partial[blob_id]
            if sha256_ref(data) != whole:
                return record_id, blob_id, 0  # corrupt as a whole: ask for all of it again
            self.complete[blob_id] = data
        return record_id, blob_id, len(st["buf"]) if blob_id in self.partial else size


class Consumer:
    def __init__(self, args):
        self.args = args
        self.station_key = import_key(json.loads(pathlib.Path(args.station_key).read_text()))
        self.receipts = ReceiptSigner(args.sign_key) if args.sign_key else None
        self.decrypt_key = None
        if args.decrypt_key:
            self.decrypt_key = import_key(json.loads(pathlib.Path(args.decrypt_key).read_text()))
        self.out = pathlib.Path(args.out) / args.station
        (self.out / "blobs").mkdir(parents=True, exist_ok=True)
        self.chain_file = self.out / "chain.json"
        self.chain = json.loads(self.chain_file.read_text()) if self.chain_file.exists() else {}
        self.chunks = Chunks()
        self.waiting = {}  # record_id -> wire, until its blobs (or the record before it) arrive
        self.rejected_seqs = set()
        self.draining = False
        base = f"countersign/v1/{args.station}"
        self.records_topic, self.acks_topic = f"{base}/records", f"{base}/acks"
        self.blobs_prefix = f"{base}/blobs/"

    # -- opening a record --------------------------------------------------------------------
    def open_wire(self, wire: bytes) -> bytes:
        """The plaintext of a compact JWE (5 parts), or the bytes themselves."""
        if wire.count(b".") == 4:
            if self.decrypt_key is None:
                raise ValueError("encrypted, and no --decrypt-key given")
            return jwe.decrypt_compact(wire, self.decrypt_key, registry=JWE_REGISTRY).plaintext
        return wire

    def verify(self, wire: bytes) -> dict:
        inner = self.open_wire(wire)
        if inner.count(b".") != 2:
            raise ValueError("not a compact JWS inside")
        token = jws.deserialize_compact(inner, self.station_key, algorithms=JWS_ALGS)
        return json.loads(token.payload)

    def stored_path(self, record):
        return self.out / f"{record['seq']:012d}-{record['record_id']}.json"

    # -- handling messages -------------------------------------------------------------------
    def on_blob_chunk(self, client, msg):
        props = dict(getattr(msg.properties, "UserProperty", []) or [])
        got = self.chunks.add(props, msg.payload)
        if got is None:
            return
        record_id, blob_id, held = got
        progress = {"record_id": record_id, "blob_id": blob_id, "status": "progress", "next_offset": held}
        if self.receipts:
            # Bound to the whole blob's wire hash every chunk carries (checked by Chunks.add).
            progress = {"station": self.args.station, **progress, "blob_sha256": props["sha256"],
                        "iat": int(time.time())}
        self.publish_answer(client, progress)
        if blob_id in self.chunks.complete:
            self.drain_waiting(client)

    def drain_waiting(self, client):
        """Tries the records held back, until none moves."""
        if self.draining:
            return
        self.draining = True
        try:
            moved = True
            while moved and self.waiting:
                before = len(self.waiting)
                for wire in list(self.waiting.values()):
                    self.on_record(client, wire, retry=True)
                moved = len(self.waiting) < before
        finally:
            self.draining = False

    def on_record(self, client, wire: bytes, retry=False):
        try:
            record = self.verify(wire)
        except Exception as e:  # noqa: BLE001 - any failure to open is a rejection
            self.answer(client, None, wire, "rejected", f"cannot open or verify: {e!r}")
            return
        rid = record.get("record_id")
        if self.stored_path(record).exists():
            self.waiting.pop(rid, None)
            self.answer(client, record, wire, "stored", duplicate=True)
            return
        refs = record.get("evidence", [])
        if any(r["blob_id"] not in self.chunks.complete for r in refs):
            self.waiting[rid] = wire  # the station sends the blobs first; they may still be coming
            return
        # Store in chain order: a record that overtook the one before it waits for it.
        last = self.chain.get("seq", self.args.first_seq - 1)
        if record["seq"] > last + 1 and (record["seq"] - 1) not in self.rejected_seqs:
            self.waiting[rid] = wire
            return
        self.waiting.pop(rid, None)
        blobs = {}
        for ref in refs:
            try:
                plain = self.open_wire(self.chunks.complete[ref["blob_id"]])
            except Exception as e:  # noqa: BLE001
                self.answer(client, record, wire, "rejected", f"blob {ref['blob_id']}: {e!r}")
                return
            if len(plain) != ref["size"] or sha256_ref(plain) != ref["sha256"]:
                self.answer(client, record, wire, "rejected", f"blob {ref['blob_id']} differs from the manifest")
                return
            blobs[ref["blob_id"]] = plain
        chain = self.check_chain(record)
        if chain == "broken":
            self.answer(client, record, wire, "rejected", "prev does not match the previous record")
            return
        ext = "jwe" if wire.count(b".") == 4 else "jws"
        for blob_id, plain in blobs.items():
            write_atomic(self.out / "blobs" / blob_id, plain)
        write_atomic(self.out / f"{record['seq']:012d}-{rid}.{ext}", wire)
        write_atomic(self.stored_path(record), json.dumps(record, ensure_ascii=False).encode())
        last = self.chain.get("seq", 0)
        if record["seq"] > last:
            self.chain = {"seq": record["seq"], "head": sha256_ref(wire)}
            write_atomic(self.chain_file, json.dumps(self.chain).encode())
        for blob_id in blobs:
            self.chunks.complete.pop(blob_id, None)
        self.answer(client, record, wire, "stored", chain=chain, blobs=len(blobs))
        if not retry:
            self.drain_waiting(client)

    def check_chain(self, record) -> str:
        """ok: prev names the record stored before it; gap: that record is not here (yet);
        broken: it is here and prev does not match its bytes."""
        seq, prev = record["seq"], record.get("prev")
        if seq == 1:
            return "ok" if prev is None else "broken"
        before = [p for p in sorted(self.out.glob(f"{seq - 1:012d}-*")) if p.suffix in (".jws", ".jwe")]
        if not before:
            return "gap"
        return "ok" if sha256_ref(before[0].read_bytes()) == prev else "broken"

    def publish_answer(self, client, answer: dict):
        """A receipt (signed with --sign-key) or, with --unsigned-acks, the JSON itself."""
        if self.receipts is None:
            client.publish(self.acks_topic, json.dumps(answer), qos=1)
            return
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/jose"
        client.publish(self.acks_topic, self.receipts.sign(answer), qos=1, properties=props)

    def answer(self, client, record, wire: bytes, status, reason=None, **extra):
        rid = record.get("record_id") if record else None
        if status == "rejected" and record and isinstance(record.get("seq"), int):
            self.rejected_seqs.add(record["seq"])
            self.waiting.pop(rid, None)
        if rid is not None:
            ack = {"record_id": rid, "status": status}
            if self.receipts:
                ack = {"station": self.args.station, **ack}
                if status == "rejected":
                    ack["reason"] = cut(reason or "rejected", MAX_REASON)
                # Bound to the exact bytes received: the answer cannot be moved to another record.
                ack["record_sha256"] = sha256_ref(wire)
                ack["iat"] = int(time.time())
            elif reason:
                ack["reason"] = reason
            self.publish_answer(client, ack)
        report = {"event": status, "record_id": rid}
        if record:
            report["seq"] = record.get("seq")
        if reason:
            report["reason"] = reason
        report.update(extra)
        emit(report)

    def run(self):
        a = self.args
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=a.client_id, protocol=mqtt.MQTTv5)
        if a.tls_ca:
            client.tls_set(ca_certs=a.tls_ca, certfile=a.tls_cert, keyfile=a.tls_key,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if a.username:
            password = pathlib.Path(a.password_file).read_text().strip() if a.password_file else None
            client.username_pw_set(a.username, password)

        def on_connect(client, userdata, flags, reason_code, properties):
            client.subscribe([(self.blobs_prefix + "+", 1), (self.records_topic, 1)])

        def on_subscribe(client, userdata, mid, reason_codes, properties):
            emit({"event": "subscribed"})

        def on_message(client, userdata, msg):
            if msg.topic.startswith(self.blobs_prefix):
                self.on_blob_chunk(client, msg)
            elif msg.topic == self.records_topic:
                self.on_record(client, msg.payload)

        client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
        client.connect(a.host, a.port, keepalive=30)
        client.loop_forever(retry_first_connection=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--station", required=True)
    ap.add_argument("--station-key", required=True, help="the station's public JWK (station.pub.jwk)")
    ap.add_argument("--decrypt-key", help="the case system's private JWK, to open JWE records and blobs")
    ap.add_argument("--out", required=True, help="directory to store records and blobs")
    ap.add_argument("--client-id", default="countersign-reference-consumer")
    ap.add_argument("--first-seq", type=int, default=1,
                    help="the station's first record this case system receives (default 1); records "
                         "are stored in sequence order, a record waits for the one before it")
    ap.add_argument("--tls-ca")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--username")
    ap.add_argument("--password-file")
    acks = ap.add_mutually_exclusive_group(required=True)
    acks.add_argument("--sign-key", help="the case system's private JWK to sign answers with "
                      "(receipts; Ed25519, P-256 or SM2, e.g. station.jwk of `countersign keygen`)")
    acks.add_argument("--unsigned-acks", action="store_true",
                      help="send the old unsigned JSON answers: only for stations with "
                           "[acks] accept_unsigned = true")
    Consumer(ap.parse_args()).run()


if __name__ == "__main__":
    main()
