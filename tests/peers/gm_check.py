#!/usr/bin/env python3
"""Opens GM-profile countersign records with independent implementations: gmssl for SM2 key
transport (C1C3C2) and SM3withSM2 signatures, the `cryptography` package for SM4-GCM.

usage: gm_check.py OUT_DIR      (OUT_DIR as written by `countersign demo --gm --out OUT_DIR`)
Prints one line per record; exits non-zero on any failure or when there is nothing to check.
"""

import base64
import hashlib
import json
import pathlib
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import sm2


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hex_of(b64: str) -> str:
    return b64d(b64).hex()


def crypt_sm2(private_key, public_key: str, mode=0):
    """gmssl's CryptSM2 with the public point kept as given: its constructor strips every leading
    "0"/"4" digit of a point that starts with "04" (meant for the 04 prefix), which corrupts the
    one key in 256 whose x starts with byte 04."""
    crypt = sm2.CryptSM2(private_key=private_key, public_key=public_key, mode=mode)
    crypt.public_key = public_key
    return crypt


def decrypt(wire: str, case_key: dict) -> tuple[dict, bytes]:
    h, k, iv, c, t = wire.strip().split(".")
    header = json.loads(b64d(h))
    assert header["alg"] == "SM2" and header["enc"] == "SM4GCM", header
    pub = hex_of(case_key["x"]) + hex_of(case_key["y"])
    unwrapper = crypt_sm2(hex_of(case_key["d"]), pub, mode=1)
    encrypted_key = b64d(k)
    assert encrypted_key[0] == 4, "C1 must be an uncompressed point (04||x||y)"
    cek = unwrapper.decrypt(encrypted_key[1:])  # gmssl takes C1 without the 04 byte
    dec = Cipher(algorithms.SM4(cek), modes.GCM(b64d(iv), b64d(t))).decryptor()
    dec.authenticate_additional_data(h.encode())
    return header, dec.update(b64d(c)) + dec.finalize()


def verify(jws: bytes, station_key: dict) -> dict:
    h, p, s = jws.decode().split(".")
    header = json.loads(b64d(h))
    assert header["alg"] == "SM2", header
    pub = hex_of(station_key["x"]) + hex_of(station_key["y"])
    verifier = crypt_sm2(None, pub)
    assert verifier.verify_with_sm3(b64d(s).hex(), f"{h}.{p}".encode()), "bad SM2 signature"
    return json.loads(b64d(p))


def main():
    out = pathlib.Path(sys.argv[1])
    station_key = json.loads((out / "keys/station.pub.jwk").read_text())
    case_key = json.loads((out / "keys/case-system.jwk").read_text())
    files = sorted((out / "records").glob("*.jwe"))
    if not files:
        print("no records", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        try:
            header, inner = decrypt(path.read_text(), case_key)
            assert header["cty"] == "JOSE"
            record = verify(inner, station_key)
            assert record["record_id"] == path.stem
            for ref in record.get("evidence", []):
                _, blob = decrypt((out / "blobs" / f"{ref['blob_id']}.jwe").read_text(), case_key)
                assert "sha256:" + hashlib.sha256(blob).hexdigest() == ref["sha256"]
            print(f"ok {path.name} seq={record['seq']} (gmssl SM2 + cryptography SM4-GCM)")
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAILED {path.name}: {e!r}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
