#!/usr/bin/env python3
"""An independent case system for countersign's end-to-end tests.

Subscribes to a station's records over MQTT 5 (paho-mqtt). Each record is a compact JWE (to the
case system's key) wrapping a compact JWS (by the station's key); both layers are opened by two
independent JOSE libraries, joserfc and jwcrypto. Evidence blobs are JWEs too; their plaintext is
checked against the signed manifest. Verified records are acknowledged on the station's acks
topic. Shares no code with countersign.

With --sign-key (a private JWK: Ed25519, P-256 or SM2, as `countersign keygen` writes it) every
answer (progress, stored, rejected) is a signed receipt, a compact JWS (receipt.py; issue 14):
Ed25519/P-256 signed by joserfc, or jwcrypto with --signer jwcrypto; SM2 by gmssl. Without it the
answers are the old unsigned JSON (for stations that still accept it).

Prints one JSON object per received record on stdout (flushed), for the test to read:
  {"record_id", "seq", "prev", "sha256", "joserfc", "jwcrypto", "kid", "alg", "typ",
   "topic", "content_type", "user_properties", "payload", "acked"}
and {"event": "subscribed"} once the subscription is in place.
"""

import argparse
import base64
import hashlib
import json
import pathlib
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from joserfc import jwe as rfc_jwe, jws as rfc_jws
from joserfc.jwk import ECKey, OKPKey
from jwcrypto import jwe as jc_jwe, jwk as jc_jwk, jws as jc_jws

from blob_chunks import BlobAssembler
from receipt import key_alg, make_payload, sign_receipt


def emit(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# joserfc refuses ciphertexts over 64 KiB by default; scanned pages are megabytes.
JWE_REGISTRY = rfc_jwe.JWERegistry(algorithms=["ECDH-ES+A256KW", "A256GCM"])
JWE_REGISTRY.max_ciphertext_length = 512 * 1024 * 1024


def is_jwe(wire: bytes) -> bool:
    return wire.count(b".") == 4


def header_kid(compact: bytes) -> str:
    head = compact.split(b".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(head + b"=" * (-len(head) % 4))).get("kid", "")


class Keyring(dict):
    """JWKs by kid: a case system keeps every key a station (or it) has used."""

    def pick(self, compact: bytes) -> dict:
        kid = header_kid(compact)
        if kid not in self:
            raise KeyError(f"no key for kid {kid!r}")
        return self[kid]


def decrypt_joserfc(wire: bytes, decrypt_json) -> bytes:
    if isinstance(decrypt_json, Keyring):
        decrypt_json = decrypt_json.pick(wire)
    key = OKPKey.import_key(decrypt_json)
    obj = rfc_jwe.decrypt_compact(wire, key, registry=JWE_REGISTRY)
    return obj.plaintext


def decrypt_jwcrypto(wire: bytes, decrypt_json) -> bytes:
    if isinstance(decrypt_json, Keyring):
        decrypt_json = decrypt_json.pick(wire)
    token = jc_jwe.JWE()
    token.deserialize(wire.decode("ascii"), key=jc_jwk.JWK(**decrypt_json))
    return token.payload


def verify_joserfc(wire: bytes, key_json: dict, decrypt_json):
    if is_jwe(wire):
        wire = decrypt_joserfc(wire, decrypt_json)
    if isinstance(key_json, Keyring):
        key_json = key_json.pick(wire)
    key = (OKPKey if key_json["kty"] == "OKP" else ECKey).import_key(key_json)
    obj = rfc_jws.deserialize_compact(wire, key, algorithms=["EdDSA", "Ed25519", "ES256"])
    return obj.headers(), obj.payload


def verify_jwcrypto(wire: bytes, key_json: dict, decrypt_json):
    if is_jwe(wire):
        wire = decrypt_jwcrypto(wire, decrypt_json)
    if isinstance(key_json, Keyring):
        key_json = key_json.pick(wire)
    key = jc_jwk.JWK(**key_json)
    token = jc_jws.JWS()
    token.deserialize(wire.decode("ascii"))
    token.verify(key, alg=None)
    return token.payload


def open_blob(wire: bytes, decrypt_json) -> bytes:
    """A blob's plaintext: blobs travel as compact JWEs to the case system's key."""
    return decrypt_joserfc(wire, decrypt_json) if is_jwe(wire) else wire


def chunk_blob_sha256(msg) -> str:
    """The chunk's `sha256` user property: the whole blob's wire hash (sha256:<hex>)."""
    return dict(getattr(msg.properties, "UserProperty", []))["sha256"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--station", required=True)
    ap.add_argument("--pubkey", required=True, action="append",
                    help="station.pub.jwk (repeat for every key the station has used)")
    ap.add_argument("--decrypt-key", action="append", default=[],
                    help="case-system.jwk (private) to open JWE records and blobs (repeatable)")
    ap.add_argument("--out", help="directory to store each record's wire bytes")
    ap.add_argument("--no-ack", action="store_true", help="observe only, never acknowledge")
    ap.add_argument("--client-id", default="test-case-system")
    ap.add_argument("--sign-key", help="private JWK to sign every answer with (signed receipts); "
                    "without it answers are unsigned JSON")
    ap.add_argument("--signer", choices=["joserfc", "jwcrypto"], default="joserfc",
                    help="library signing Ed25519/P-256 receipts (SM2 always uses gmssl)")
    args = ap.parse_args()
    sign_key = None
    if args.sign_key:
        try:
            sign_key = json.loads(pathlib.Path(args.sign_key).read_text())
            key_alg(sign_key)
            if "d" not in sign_key:
                raise ValueError("no private part \"d\"")
        except (OSError, ValueError) as e:
            ap.error(f"--sign-key {args.sign_key}: {e}")
    signer = "gmssl" if sign_key and key_alg(sign_key) == "SM2" else args.signer

    key_json = Keyring()
    for path in args.pubkey:
        jwk = json.loads(pathlib.Path(path).read_text())
        jwk.pop("d", None)
        key_json[jwk["kid"]] = jwk
    decrypt_json = Keyring()
    for path in args.decrypt_key:
        jwk = json.loads(pathlib.Path(path).read_text())
        decrypt_json[jwk["kid"]] = jwk
    out = pathlib.Path(args.out) if args.out else None
    records_topic = f"countersign/v1/{args.station}/records"
    blobs_topic = f"countersign/v1/{args.station}/blobs/+"
    blobs = BlobAssembler()
    parked = {}  # record_id -> the record message, waiting for its blobs' last chunks
    acks_topic = f"countersign/v1/{args.station}/acks"

    def answer(client, unsigned: dict, **bind):
        """Publishes one answer: signed (bound to the station and hash in `bind`) with
        --sign-key, else the old unsigned JSON."""
        props = Properties(PacketTypes.PUBLISH)
        if sign_key is None:
            if unsigned["status"] != "progress":  # as before signed receipts
                props.ContentType = "application/json"
            body = json.dumps(unsigned)
        else:
            props.ContentType = "application/jose"
            payload = make_payload(args.station, iat=int(time.time()), **unsigned, **bind)
            body = sign_receipt(sign_key, payload, signer)
        client.publish(acks_topic, body, qos=1, properties=props)

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=args.client_id,
        protocol=mqtt.MQTTv5,
    )

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe([(blobs_topic, 1), (records_topic, 1)])

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        emit({"event": "subscribed"})

    def on_message(client, userdata, msg):
        if msg.topic.startswith(blobs_topic[:-1]):
            got = blobs.add(dict(getattr(msg.properties, "UserProperty", [])), msg.payload)
            if got is None:
                return
            record_id, blob_id, held, completed = got
            if not args.no_ack:
                progress = {"record_id": record_id, "blob_id": blob_id,
                            "status": "progress", "next_offset": held}
                # The station checks this against the whole-blob hash every chunk carries.
                answer(client, progress, blob_sha256=chunk_blob_sha256(msg))
            if completed:
                for rid, (parked_msg, waiting) in list(parked.items()):
                    if not blobs.missing(waiting):
                        del parked[rid]
                        on_message(client, userdata, parked_msg)
            return
        wire = msg.payload
        report = {
            "topic": msg.topic,
            "sha256": hashlib.sha256(wire).hexdigest(),
            "content_type": getattr(msg.properties, "ContentType", None),
            "user_properties": getattr(msg.properties, "UserProperty", []),
            "joserfc": False,
            "jwcrypto": False,
            "acked": False,
        }
        try:
            headers, payload = verify_joserfc(wire, key_json, decrypt_json)
            report["joserfc"] = True
            report["kid"] = headers.get("kid")
            report["alg"] = headers.get("alg")
            report["typ"] = headers.get("typ")
        except Exception as e:  # noqa: BLE001 - report any verification failure
            report["joserfc_error"] = repr(e)
            payload = None
        try:
            jc_payload = verify_jwcrypto(wire, key_json, decrypt_json)
            report["jwcrypto"] = True
            payload = payload or jc_payload
        except Exception as e:  # noqa: BLE001
            report["jwcrypto_error"] = repr(e)
        record = json.loads(payload) if payload else {}
        report["encrypted"] = is_jwe(wire)
        report["payload"] = record
        report["record_id"] = record.get("record_id")
        report["seq"] = record.get("seq")
        report["prev"] = record.get("prev")
        # A record can overtake the last chunks of its blobs (a resumed transfer): hold it.
        waiting = blobs.missing([ref["blob_id"] for ref in record.get("evidence", [])])
        if waiting and report["joserfc"] and report["jwcrypto"]:
            parked[record["record_id"]] = (msg, waiting)
            return
        # Every blob the signed manifest names must have arrived with that exact hash and size.
        blobs_ok = True
        for ref in record.get("evidence", []):
            blob = blobs.get(ref["blob_id"])
            try:
                blob = open_blob(blob, decrypt_json) if blob is not None else None
            except Exception:  # noqa: BLE001 - an unreadable blob is a failed blob
                blob = None
            if blob is None or len(blob) != ref["size"] or \
                    "sha256:" + hashlib.sha256(blob).hexdigest() != ref["sha256"]:
                blobs_ok = False
        report["blobs_ok"] = blobs_ok
        verified = report["joserfc"] and report["jwcrypto"] and blobs_ok
        if out and verified:
            (out / f"{record['record_id']}.jwe").write_bytes(wire)
        if not args.no_ack:
            if verified:
                ack = {"record_id": record["record_id"], "status": "stored"}
            else:
                ack = {"record_id": "unknown", "status": "rejected", "reason": "signature"}
            # Both answers bind to the exact bytes received, even one for an unknown record id.
            answer(client, ack, record_sha256="sha256:" + report["sha256"])
            report["acked"] = True
        emit(report)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", args.port, keepalive=30)
    client.loop_forever(retry_first_connection=True)


if __name__ == "__main__":
    main()
