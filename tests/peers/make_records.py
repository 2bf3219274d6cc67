#!/usr/bin/env python3
"""Produces countersign records with independent libraries, for `countersign verify` to check.

usage: make_records.py standard OUT_DIR N     (joserfc: EdDSA JWS inside ECDH-ES+A256KW/A256GCM JWE)
       make_records.py gm OUT_DIR N           (gmssl SM2/SM3 + cryptography SM4-GCM, the GM profile)

Writes OUT_DIR/records/<record_id>.jwe, OUT_DIR/blobs/<blob_id>.jwe and OUT_DIR/keys/
(station.pub.jwk, case-system.jwk with mode 0600). Records form one station's hash chain
(seq 1..N, `prev` = sha256 of the previous record's wire bytes) and each carries one blob.
"""

import base64
import hashlib
import json
import os
import pathlib
import sys
import time
import uuid

STATION = "py-station"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


_last_ms = 0


def uuid7() -> str:
    """RFC 9562 UUIDv7 (Python 3.11 has none): time-ordered, like countersign's record ids."""
    global _last_ms
    ms = max(time.time_ns() // 1_000_000, _last_ms + 1)  # strictly increasing here
    _last_ms = ms
    value = (ms << 80) | (0x7 << 76) | (int.from_bytes(os.urandom(2), "big") & 0xFFF) << 64
    value |= (0b10 << 62) | (int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def record_json(seq, prev, record_id, station_kid, recipient_kid, blob_id, blob):
    record = {
        "schema": "countersign.record.v1",
        "record_id": record_id,
        "kind": "capture",
        "station": STATION,
        "station_kid": station_kid,
        "seq": seq,
        "captured_at": "2026-11-27T10:00:00.000Z",
        "sealed_at": "2026-11-27T10:00:00.010Z",
        "recipient_kid": recipient_kid,
        "devices": [{"kind": "folder", "name": "py"}],
        "evidence": [{
            "blob_id": blob_id, "role": "page", "media_type": "application/octet-stream",
            "size": len(blob), "sha256": sha(blob), "label": "application_form",
        }],
    }
    if prev:
        record["prev"] = prev
    return json.dumps(record, separators=(",", ":")).encode()


def write_keys(out, station_pub, case_priv):
    keys = out / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "station.pub.jwk").write_text(json.dumps(station_pub))
    path = keys / "case-system.jwk"
    path.write_text(json.dumps(case_priv))
    os.chmod(path, 0o600)


def make_standard(out: pathlib.Path, n: int):
    from joserfc import jwe, jws
    from joserfc.jwk import OKPKey

    station = OKPKey.generate_key("Ed25519")
    case = OKPKey.generate_key("X25519")
    station_kid, case_kid = station.thumbprint(), case.thumbprint()
    write_keys(out, station.as_dict(private=False), case.as_dict(private=True))
    prev = None
    for seq in range(1, n + 1):
        record_id, blob_id = uuid7(), uuid7()
        blob = os.urandom(1000 + seq)
        enc_header = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": case_kid,
                      "apu": b64u(STATION.encode()), "apv": b64u(case_kid.encode())}
        blob_wire = jwe.encrypt_compact(enc_header, blob, case)
        (out / "blobs" / f"{blob_id}.jwe").write_text(blob_wire)
        payload = record_json(seq, prev, record_id, station_kid, case_kid, blob_id, blob)
        signed = jws.serialize_compact(
            {"alg": "EdDSA", "kid": station_kid, "typ": "vnd.countersign.record+jws"},
            payload, station, algorithms=["EdDSA"])
        wire = jwe.encrypt_compact(dict(enc_header, cty="JOSE"), signed.encode(), case)
        (out / "records" / f"{record_id}.jwe").write_text(wire)
        prev = sha(wire.encode())


def make_gm(out: pathlib.Path, n: int):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from gmssl import func, sm2

    ecc = sm2.default_ecc_table
    def keypair():
        d = func.random_hex(64)
        pub = sm2.CryptSM2(private_key=d, public_key="")._kg(int(d, 16), ecc["g"])
        return d, pub

    def jwk(d, pub, use, private):
        key = {"kty": "EC", "crv": "SM2", "x": b64u(bytes.fromhex(pub[:64])),
               "y": b64u(bytes.fromhex(pub[64:])), "use": use}
        if private:
            key["d"] = b64u(bytes.fromhex(d))
        return key

    def thumbprint(key):
        members = {k: key[k] for k in ("crv", "kty", "x", "y")}
        return b64u(hashlib.sha256(json.dumps(members, separators=(",", ":"),
                                              sort_keys=True).encode()).digest())

    s_d, s_pub = keypair()
    c_d, c_pub = keypair()
    station_pub = jwk(s_d, s_pub, "sig", False)
    case_priv = jwk(c_d, c_pub, "enc", True)
    station_kid, case_kid = thumbprint(station_pub), thumbprint(case_priv)
    write_keys(out, station_pub, case_priv)
    signer = sm2.CryptSM2(private_key=s_d, public_key=s_pub)
    wrapper = sm2.CryptSM2(private_key=None, public_key=c_pub, mode=1)  # C1C3C2
    # gmssl's constructor strips every leading "0"/"4" digit of a point starting "04" (meant for
    # the 04 prefix), corrupting the one key in 256 whose x starts with byte 04: keep the points.
    signer.public_key, wrapper.public_key = s_pub, c_pub

    def encrypt(plaintext: bytes, cty=None) -> str:
        header = {"alg": "SM2", "enc": "SM4GCM", "kid": case_kid,
                  "apu": b64u(STATION.encode()), "apv": b64u(case_kid.encode())}
        if cty:
            header["cty"] = cty
        header_b64 = b64u(json.dumps(header, separators=(",", ":")).encode())
        cek, iv = os.urandom(16), os.urandom(12)
        # gmssl omits the 04 point-format byte of C1; the GM profile carries it (GB/T 35276).
        encrypted_key = b"\x04" + wrapper.encrypt(cek)
        enc = Cipher(algorithms.SM4(cek), modes.GCM(iv)).encryptor()
        enc.authenticate_additional_data(header_b64.encode())
        ciphertext = enc.update(plaintext) + enc.finalize()
        return ".".join([header_b64, b64u(encrypted_key), b64u(iv), b64u(ciphertext),
                         b64u(enc.tag)])

    prev = None
    for seq in range(1, n + 1):
        record_id, blob_id = uuid7(), uuid7()
        blob = os.urandom(1000 + seq)
        (out / "blobs" / f"{blob_id}.jwe").write_text(encrypt(blob))
        payload = record_json(seq, prev, record_id, station_kid, case_kid, blob_id, blob)
        header = {"alg": "SM2", "kid": station_kid, "typ": "vnd.countersign.record+jws"}
        signing_input = (b64u(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + b64u(payload))
        sig = signer.sign_with_sm3(signing_input.encode())  # hex r||s, default user id
        signed = signing_input + "." + b64u(bytes.fromhex(sig))
        wire = encrypt(signed.encode(), cty="JOSE")
        (out / "records" / f"{record_id}.jwe").write_text(wire)
        prev = sha(wire.encode())


def main():
    profile, out, n = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
    (out / "records").mkdir(parents=True, exist_ok=True)
    (out / "blobs").mkdir(parents=True, exist_ok=True)
    {"standard": make_standard, "gm": make_gm}[profile](out, n)
    print(f"wrote {n} {profile} records to {out}")


if __name__ == "__main__":
    main()
